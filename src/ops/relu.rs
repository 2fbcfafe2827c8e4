//! ReLU, and the residual `relu(a + b)` of a ResNet block, as custom ops
//! with one-pass backward passes.
//!
//! candle differentiates `relu` with a comparison against a zeros tensor, a
//! cast and a product, each a full pass with a fresh tensor; at ResNet
//! activation sizes that costs more than the ReLU itself many times over.
//! Here the backward is one pass over the output gradient and the output.

use super::cpu::{dense_f32, output_buffer};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Elements per rayon task: element-wise work is too cheap to split finer.
const GRAIN: usize = 1 << 14;

/// `max(x, 0)` element-wise (NaN stays NaN, as in PyTorch), with gradient
/// `dy` where the output is positive and zero elsewhere (zero at exactly
/// zero, as in PyTorch; candle's own `relu` passes the gradient there). On
/// devices other than the CPU or for dtypes other than f32 it is candle's
/// `Tensor::relu`.
pub fn relu(x: &Tensor) -> Result<Tensor> {
    if !x.device().is_cpu() || x.dtype() != DType::F32 {
        return x.relu();
    }
    x.contiguous()?.apply_op1(Relu)
}

/// `relu(a + b)` in one pass: the end of a ResNet block (residual branch
/// plus shortcut). Same values as `relu(&(a + b)?)` (the sum is rounded once
/// either way) and the same gradient, `dy * (out > 0)`, for both operands.
/// On devices other than the CPU or for dtypes other than f32 it is exactly
/// that composition.
pub fn add_relu(a: &Tensor, b: &Tensor) -> Result<Tensor> {
    if !a.device().is_cpu() || a.dtype() != DType::F32 || b.dtype() != DType::F32 {
        return (a + b)?.relu();
    }
    if a.dims() != b.dims() {
        return Err(candle_core::Error::ShapeMismatchBinaryOp {
            lhs: a.shape().clone(),
            rhs: b.shape().clone(),
            op: "add_relu",
        });
    }
    a.contiguous()?.apply_op2(&b.contiguous()?, AddRelu)
}

/// The forward op `(a, b) -> max(a + b, 0)`.
struct AddRelu;

impl CustomOp2 for AddRelu {
    fn name(&self) -> &'static str {
        "ablate-add-relu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let a = dense_f32(s1, l1, self.name(), "lhs")?;
        let b = dense_f32(s2, l2, self.name(), "rhs")?;
        let y = zip_map(a, b, |x, z| {
            let v = x + z;
            if v < 0.0 {
                0.0
            } else {
                v
            }
        });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        _a: &Tensor,
        _b: &Tensor,
        y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let g = relu_grad(grad, y)?;
        Ok((Some(g.clone()), Some(g)))
    }
}

/// The forward op `x -> max(x, 0)`.
struct Relu;

impl CustomOp1 for Relu {
    fn name(&self) -> &'static str {
        "ablate-relu"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let x = dense_f32(s, l, self.name(), "input")?;
        // SAFETY: `y` and `x` have the same length, so their chunks pair up
        // exactly and the loop writes every element of `y`.
        let mut y = unsafe { output_buffer(x.len()) };
        y.par_chunks_mut(GRAIN)
            .zip(x.par_chunks(GRAIN))
            .for_each(|(out, src)| {
                for (o, &v) in out.iter_mut().zip(src) {
                    *o = if v < 0.0 { 0.0 } else { v };
                }
            });
        Ok((CpuStorage::F32(y), l.shape().clone()))
    }

    fn bwd(&self, _x: &Tensor, y: &Tensor, grad: &Tensor) -> Result<Option<Tensor>> {
        relu_grad(grad, y).map(Some)
    }
}

/// `f(a[i], b[i])` for every element of two equally long slices, in
/// parallel.
fn zip_map(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "zip_map needs equally long slices");
    // SAFETY: `out`, `a` and `b` have the same length, so their chunks pair
    // up exactly and the loop writes every element of `out`.
    let mut out = unsafe { output_buffer(a.len()) };
    out.par_chunks_mut(GRAIN)
        .zip(a.par_chunks(GRAIN).zip(b.par_chunks(GRAIN)))
        .for_each(|(out, (a, b))| {
            for ((o, &x), &z) in out.iter_mut().zip(a).zip(b) {
                *o = f(x, z);
            }
        });
    out
}

/// The gradient through a ReLU whose output is `y`: `dy * (y > 0)`; on
/// devices other than the CPU or for dtypes other than f32, candle's ops.
pub(crate) fn relu_grad(dy: &Tensor, y: &Tensor) -> Result<Tensor> {
    if !dy.device().is_cpu() || dy.dtype() != DType::F32 || y.dtype() != DType::F32 {
        return dy * y.gt(0.0)?.to_dtype(dy.dtype())?;
    }
    dy.contiguous()?
        .apply_op2_no_bwd(&y.contiguous()?, &ReluGrad)
}

/// The backward op `(dy, y) -> dy * (y > 0)`.
struct ReluGrad;

impl CustomOp2 for ReluGrad {
    fn name(&self) -> &'static str {
        "ablate-relu-grad"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let dy = dense_f32(s1, l1, self.name(), "grad")?;
        let y = dense_f32(s2, l2, self.name(), "output")?;
        let dx = zip_map(dy, y, |d, v| if v > 0.0 { d } else { 0.0 });
        Ok((CpuStorage::F32(dx), l1.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{finite_diff_error, seeded};
    use candle_core::{Device, Var};

    #[test]
    fn values_and_gradient_by_hand() {
        let x = Var::new(&[-2.0f32, -0.0, 0.0, 0.5, 3.0, f32::NAN], &Device::Cpu).unwrap();
        let y = relu(x.as_tensor()).unwrap();
        let v = y.to_vec1::<f32>().unwrap();
        assert_eq!(&v[..5], &[0.0, 0.0, 0.0, 0.5, 3.0]);
        assert!(v[5].is_nan());
        let g = Tensor::new(&[1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], &Device::Cpu).unwrap();
        let grads = (&y * &g).unwrap().sum_all().unwrap().backward().unwrap();
        let dx = grads.get(x.as_tensor()).unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(&dx[..5], &[0.0, 0.0, 0.0, 4.0, 5.0]);
    }

    #[test]
    fn add_relu_matches_the_composition_and_its_gradients() {
        let (a, b) = (seeded(&[3, 5, 40, 41], 21), seeded(&[3, 5, 40, 41], 22));
        let r = seeded(&[3, 5, 40, 41], 23);
        let (av, bv) = (Var::from_tensor(&a).unwrap(), Var::from_tensor(&b).unwrap());
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let ours = add_relu(av.as_tensor(), bv.as_tensor()).unwrap();
        let composed = relu(&(av.as_tensor() + bv.as_tensor()).unwrap()).unwrap();
        assert_eq!(flat(&ours), flat(&composed));
        let grads = (&ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let expected = (&r * composed.gt(0.0).unwrap().to_dtype(DType::F32).unwrap()).unwrap();
        assert_eq!(flat(grads.get(av.as_tensor()).unwrap()), flat(&expected));
        assert_eq!(flat(grads.get(bv.as_tensor()).unwrap()), flat(&expected));
        assert!(add_relu(&a, &seeded(&[3, 5, 40, 40], 24)).is_err());
    }

    #[test]
    fn matches_candle_and_finite_differences() {
        // Large enough for several rayon tasks; seeded values are never exactly 0.
        let x = seeded(&[3, 5, 40, 41], 11);
        let r = seeded(&[3, 5, 40, 41], 12);
        let xv = Var::from_tensor(&x).unwrap();
        let ours = relu(xv.as_tensor()).unwrap();
        let theirs = x.relu().unwrap();
        let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert_eq!(flat(&ours), flat(&theirs));
        let grads = (&ours * &r).unwrap().sum_all().unwrap().backward().unwrap();
        let dx = grads.get(xv.as_tensor()).unwrap();
        let expected = (&r * x.gt(0.0).unwrap().to_dtype(DType::F32).unwrap()).unwrap();
        assert_eq!(flat(dx), flat(&expected));
        let f = |a: &[Tensor]| relu(&a[0]);
        let err = finite_diff_error(&f, &[x], 0, &r, dx, 16, 1e-3);
        assert!(err < 1e-3, "finite differences off by {err}");
    }
}
