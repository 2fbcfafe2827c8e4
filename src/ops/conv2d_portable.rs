//! 2-D convolution whose gradients are composed of device-generic tensor ops
//! (padding, strided views, stacking and one matrix product per gradient),
//! for accelerators where the CPU kernels of [`super::conv2d`] do not run.
//!
//! candle's own convolution backward computes the input gradient with a
//! naive transposed-convolution kernel, on CUDA as on the CPU. Here the
//! forward pass is candle's convolution (im2col plus a cuBLAS GEMM on CUDA)
//! and the backward pass lowers both gradients to GEMMs, so every FLOP of a
//! training step runs in a BLAS kernel:
//!
//! - weight gradient: `dW = dY · colᵀ`, where `col` is the im2col matrix of
//!   the input, built from `s × s` stride phases of the padded input, each
//!   kernel tap being a plain (unstrided) window of one phase;
//! - input gradient: per stride phase `(a, b)` of the padded input, a GEMM of
//!   the kernel taps that land on that phase with the matching windows of
//!   the zero-padded output gradient; the phases are then interleaved back.
//!
//! Both are exact reformulations (same products, different summation order),
//! checked against the CPU op and finite differences on the CPU, where this
//! module runs unchanged.

use super::geometry::ConvGeometry;
use candle_core::{CustomOp3, DType, IndexOp, Layout, Result, Shape, Tensor};

/// Convolution with candle's forward pass and a GEMM-based backward pass on
/// any device; same arguments as [`super::conv2d`].
pub(crate) fn conv2d_portable(
    input: &Tensor,
    weight: &Tensor,
    stride: usize,
    padding: usize,
) -> Result<Tensor> {
    let geometry = ConvGeometry::new(input.dims(), weight.dims(), stride, padding)?;
    let output = input
        .detach()
        .conv2d(&weight.detach(), padding, stride, 1, 1)?
        .contiguous()?;
    // The output is computed without a graph; the pass-through op takes
    // input and weight as arguments so backpropagation reaches them through
    // `ConvGrads::bwd`.
    output.apply_op3(input, weight, ConvGrads { geometry })
}

/// The pass-through op `(output, input, weight) -> output` whose backward
/// pass is the convolution's.
struct ConvGrads {
    geometry: ConvGeometry,
}

/// The op's forward pass: a copy of the (contiguous) convolution output.
fn pass_through<S: candle_core::backend::BackendStorage>(
    storage: &S,
    layout: &Layout,
) -> Result<(S, Shape)> {
    if !layout.is_contiguous() || layout.start_offset() != 0 {
        return Err(super::OpsError::Layout {
            op: "ablate-conv2d-portable",
            operand: "output",
        }
        .into());
    }
    Ok((storage.try_clone(layout)?, layout.shape().clone()))
}

impl CustomOp3 for ConvGrads {
    fn name(&self) -> &'static str {
        "ablate-conv2d-portable"
    }

    fn cpu_fwd(
        &self,
        s1: &candle_core::CpuStorage,
        l1: &Layout,
        _: &candle_core::CpuStorage,
        _: &Layout,
        _: &candle_core::CpuStorage,
        _: &Layout,
    ) -> Result<(candle_core::CpuStorage, Shape)> {
        pass_through(s1, l1)
    }

    #[cfg(feature = "cuda")]
    fn cuda_fwd(
        &self,
        s1: &candle_core::CudaStorage,
        l1: &Layout,
        _: &candle_core::CudaStorage,
        _: &Layout,
        _: &candle_core::CudaStorage,
        _: &Layout,
    ) -> Result<(candle_core::CudaStorage, Shape)> {
        pass_through(s1, l1)
    }

    fn bwd(
        &self,
        _output: &Tensor,
        input: &Tensor,
        weight: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let g = &self.geometry;
        // [k, n, oh, ow]: output channels first, the layout both GEMMs want.
        let grad_t = grad.transpose(0, 1)?.contiguous()?;
        let grad_input = if input.track_op() {
            Some(input_grad(g, &grad_t, weight)?)
        } else {
            None
        };
        let grad_weight = if weight.track_op() {
            Some(weight_grad(g, input, &grad_t)?)
        } else {
            None
        };
        Ok((None, grad_input, grad_weight))
    }
}

/// Length of one stride phase of the padded input along an axis of size
/// `size`: long enough to hold the padded input and every kernel tap's
/// window of `out` positions.
fn phase_len(size: usize, padding: usize, kernel: usize, out: usize, stride: usize) -> usize {
    (size + 2 * padding)
        .div_ceil(stride)
        .max((kernel - 1) / stride + out)
}

/// Gradient of the weight, `[k, c, kh, kw]`, from the input `[n, c, h, w]`
/// and the output gradient in `[k, n, oh, ow]` layout.
fn weight_grad(g: &ConvGeometry, input: &Tensor, grad_t: &Tensor) -> Result<Tensor> {
    let s = g.stride;
    let (hq, wq) = (
        phase_len(g.h, g.padding, g.kh, g.oh, s),
        phase_len(g.w, g.padding, g.kw, g.ow, s),
    );
    // [s, s, c, n, hq, wq]: phase (a, b) holds padded rows a, a + s, ...
    let phases = input
        .transpose(0, 1)?
        .pad_with_zeros(2, g.padding, hq * s - g.h - g.padding)?
        .pad_with_zeros(3, g.padding, wq * s - g.w - g.padding)?
        .reshape((g.c, g.n, hq, s, wq, s))?
        .permute((3, 5, 0, 1, 2, 4))?
        .contiguous()?;
    // Tap (i, j) at output (y, x) reads padded (y s + i, x s + j), which is
    // row y + i / s, column x + j / s of phase (i % s, j % s).
    let mut taps = Vec::with_capacity(g.kh * g.kw);
    for i in 0..g.kh {
        for j in 0..g.kw {
            taps.push(
                phases
                    .i((i % s, j % s))?
                    .narrow(2, i / s, g.oh)?
                    .narrow(3, j / s, g.ow)?,
            );
        }
    }
    // [c * kh * kw, n * oh * ow], rows in the weight's (c, kh, kw) order.
    let col = Tensor::stack(&taps, 1)?.reshape((g.patch_len(), g.n * g.out_pixels()))?;
    grad_t
        .reshape((g.k, g.n * g.out_pixels()))?
        .matmul(&col.t()?)?
        .reshape((g.k, g.c, g.kh, g.kw))
}

/// Gradient of the input, `[n, c, h, w]`, from the output gradient in
/// `[k, n, oh, ow]` layout and the weight `[k, c, kh, kw]`.
fn input_grad(g: &ConvGeometry, grad_t: &Tensor, weight: &Tensor) -> Result<Tensor> {
    let s = g.stride;
    let (hq, wq) = (
        phase_len(g.h, g.padding, g.kh, g.oh, s),
        phase_len(g.w, g.padding, g.kw, g.ow, s),
    );
    // Phase row y receives tap i = a + s * iq from output row y - iq: pad
    // the gradient so every such window is in range.
    let (top, left) = ((g.kh - 1) / s, (g.kw - 1) / s);
    let padded = grad_t
        .pad_with_zeros(2, top, hq - g.oh)?
        .pad_with_zeros(3, left, wq - g.ow)?;
    let weight_taps = weight.reshape((g.k, g.c, g.kh * g.kw))?;
    let mut phases = Vec::with_capacity(s * s);
    for a in 0..s {
        for b in 0..s {
            let taps: Vec<(usize, usize)> = (a..g.kh)
                .step_by(s)
                .flat_map(|i| (b..g.kw).step_by(s).map(move |j| (i, j)))
                .collect();
            if taps.is_empty() {
                phases.push(Tensor::zeros(
                    (g.c, g.n, hq, wq),
                    grad_t.dtype(),
                    grad_t.device(),
                )?);
                continue;
            }
            let windows = taps
                .iter()
                .map(|&(i, j)| {
                    padded
                        .narrow(2, top - i / s, hq)?
                        .narrow(3, left - j / s, wq)
                })
                .collect::<Result<Vec<_>>>()?;
            // [k * taps, n * hq * wq], rows in (k, tap) order.
            let col = Tensor::stack(&windows, 1)?.reshape((g.k * taps.len(), g.n * hq * wq))?;
            let tap_index: Vec<u32> = taps.iter().map(|&(i, j)| (i * g.kw + j) as u32).collect();
            let tap_index = Tensor::new(tap_index.as_slice(), weight.device())?;
            // [c, k * taps], columns in the same (k, tap) order.
            let kernel = weight_taps
                .index_select(&tap_index, 2)?
                .transpose(0, 1)?
                .contiguous()?
                .reshape((g.c, g.k * taps.len()))?;
            phases.push(kernel.matmul(&col)?.reshape((g.c, g.n, hq, wq))?);
        }
    }
    // Interleave the phases back into the padded input and crop the padding.
    Tensor::stack(&phases, 0)?
        .reshape((s, s, g.c, g.n, hq, wq))?
        .permute((2, 3, 4, 0, 5, 1))?
        .contiguous()?
        .reshape((g.c, g.n, hq * s, wq * s))?
        .narrow(2, g.padding, g.h)?
        .narrow(3, g.padding, g.w)?
        .transpose(0, 1)?
        .contiguous()
}

/// Whether the portable path handles this dtype: the float types candle's
/// matmul and convolution support on accelerators.
pub(crate) fn supports(dtype: DType) -> bool {
    matches!(dtype, DType::F32 | DType::F16 | DType::BF16 | DType::F64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::conv2d;
    use crate::ops::testing::{
        close, conv_operands, finite_diff_error, max_abs_diff, run_conv, CONV_CASES,
    };

    #[test]
    fn matches_the_cpu_op_on_every_case() {
        for (i, cs) in CONV_CASES.iter().enumerate() {
            let (x, w, r) = conv_operands(cs, 1000 + 10 * i as u64);
            let ours = run_conv(
                |x, w| conv2d_portable(x, w, cs.stride, cs.padding),
                &x,
                &w,
                &r,
            );
            let reference = run_conv(|x, w| conv2d(x, w, cs.stride, cs.padding), &x, &w, &r);
            let dy = max_abs_diff(&ours.y, &reference.y);
            let dx = max_abs_diff(&ours.grad_x, &reference.grad_x);
            let dw = max_abs_diff(&ours.grad_w, &reference.grad_w);
            eprintln!("{cs:?}: max |diff| y {dy:.2e}, dx {dx:.2e}, dw {dw:.2e}");
            assert!(close(dy, &reference.y), "{cs:?}: output differs by {dy}");
            assert!(close(dx, &reference.grad_x), "{cs:?}: dx differs by {dx}");
            assert!(close(dw, &reference.grad_w), "{cs:?}: dw differs by {dw}");
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        for (i, cs) in CONV_CASES.iter().enumerate() {
            let (x, w, r) = conv_operands(cs, 2000 + 10 * i as u64);
            let ours = run_conv(
                |x, w| conv2d_portable(x, w, cs.stride, cs.padding),
                &x,
                &w,
                &r,
            );
            let f = |args: &[Tensor]| conv2d_portable(&args[0], &args[1], cs.stride, cs.padding);
            let inputs = [x, w];
            let ex = finite_diff_error(&f, &inputs, 0, &r, &ours.grad_x, 8, 1e-2);
            let ew = finite_diff_error(&f, &inputs, 1, &r, &ours.grad_w, 8, 1e-2);
            assert!(
                ex < 2e-3 && ew < 2e-3,
                "{cs:?}: finite differences off by {ex} / {ew}"
            );
        }
    }

    #[test]
    fn stride_three_and_a_kernel_smaller_than_the_stride() {
        // Phases without any tap (1x1 kernel, stride 3) and uneven phase
        // lengths; not in the shared cases because ResNets never do this.
        for (kernel, stride, padding) in [(1, 3, 0), (3, 3, 1), (5, 3, 2), (2, 2, 0)] {
            let x = crate::ops::testing::seeded(&[2, 3, 11, 13], 40 + kernel as u64);
            let w = crate::ops::testing::seeded(&[4, 3, kernel, kernel], 50);
            let g = ConvGeometry::new(x.dims(), w.dims(), stride, padding).unwrap();
            let r = crate::ops::testing::seeded(&g.out_dims(), 60);
            let ours = run_conv(|x, w| conv2d_portable(x, w, stride, padding), &x, &w, &r);
            let reference = run_conv(|x, w| conv2d(x, w, stride, padding), &x, &w, &r);
            let dx = max_abs_diff(&ours.grad_x, &reference.grad_x);
            let dw = max_abs_diff(&ours.grad_w, &reference.grad_w);
            assert!(
                close(dx, &reference.grad_x) && close(dw, &reference.grad_w),
                "kernel {kernel} stride {stride} padding {padding}: dx {dx}, dw {dw}"
            );
        }
    }

    #[test]
    fn a_constant_input_gets_no_gradient() {
        let cs = CONV_CASES[1];
        let (x, w, r) = conv_operands(&cs, 3000);
        let wv = candle_core::Var::from_tensor(&w).unwrap();
        let y = conv2d_portable(&x, wv.as_tensor(), cs.stride, cs.padding).unwrap();
        let grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&x).is_none());
        assert!(grads.get(wv.as_tensor()).is_some());
    }
}
