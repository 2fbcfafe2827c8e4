//! Test helpers shared by the op tests: seeded tensors, tensor differences,
//! and central finite differences of a weighted-sum loss.

use crate::seed;
use candle_core::{DType, Device, Result, Tensor};
use rand::Rng;

/// A CPU f32 tensor of the given dims with values uniform in `[-1, 1)`,
/// drawn from the seed stream `(seed, "ops-test")`.
pub(crate) fn seeded(dims: &[usize], seed: u64) -> Tensor {
    let mut rng = seed::stream(seed, "ops-test", &[]);
    let n: usize = dims.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    Tensor::from_vec(values, dims, &Device::Cpu).expect("dims match the value count")
}

/// The largest absolute element-wise difference of two same-shaped tensors.
pub(crate) fn max_abs_diff(a: &Tensor, b: &Tensor) -> f32 {
    assert_eq!(a.dims(), b.dims(), "compared tensors differ in shape");
    let d = (a - b).and_then(|d| d.abs()?.flatten_all()?.max(0)?.to_scalar::<f32>());
    d.expect("difference of CPU f32 tensors")
}

/// The largest absolute element of a tensor.
pub(crate) fn max_abs(a: &Tensor) -> f32 {
    a.abs()
        .and_then(|t| t.flatten_all()?.max(0)?.to_scalar::<f32>())
        .expect("CPU f32 tensor")
}

/// `sum(y * r)` accumulated in f64, the scalar loss the gradient tests use.
pub(crate) fn weighted_sum(y: &Tensor, r: &Tensor) -> Result<f64> {
    y.to_dtype(DType::F64)?
        .mul(&r.to_dtype(DType::F64)?)?
        .sum_all()?
        .to_scalar::<f64>()
}

/// Compares `analytic` (the gradient of `sum(f(inputs) * r)` with respect to
/// `inputs[which]`) with central differences at `samples` seeded positions;
/// returns the largest absolute error.
pub(crate) fn finite_diff_error(
    f: &dyn Fn(&[Tensor]) -> Result<Tensor>,
    inputs: &[Tensor],
    which: usize,
    r: &Tensor,
    analytic: &Tensor,
    samples: usize,
    eps: f32,
) -> f32 {
    let base: Vec<f32> = inputs[which]
        .flatten_all()
        .and_then(|t| t.to_vec1())
        .expect("f32 input");
    let grad: Vec<f32> = analytic
        .flatten_all()
        .and_then(|t| t.to_vec1())
        .expect("f32 gradient");
    let dims = inputs[which].dims().to_vec();
    let mut rng = seed::stream(7, "ops-test-fd", &[which as u64]);
    let loss_at = |idx: usize, delta: f32| {
        let mut v = base.clone();
        v[idx] += delta;
        let mut args = inputs.to_vec();
        args[which] = Tensor::from_vec(v, dims.as_slice(), &Device::Cpu).expect("same dims");
        weighted_sum(&f(&args).expect("op runs"), r).expect("loss")
    };
    (0..samples)
        .map(|_| {
            let idx = rng.random_range(0..base.len());
            let numeric = (loss_at(idx, eps) - loss_at(idx, -eps)) / (2.0 * eps as f64);
            (numeric - grad[idx] as f64).abs() as f32
        })
        .fold(0.0, f32::max)
}
