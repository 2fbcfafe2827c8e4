//! Test helpers shared by the op tests: seeded tensors, tensor differences,
//! and central finite differences of a weighted-sum loss.

use super::ConvGeometry;
use crate::seed;
use candle_core::{DType, Device, Result, Tensor, Var};
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

/// One test convolution: input `[n, c, h, w]`, weight `[k, c, kh, kw]`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConvCase {
    pub(crate) n: usize,
    pub(crate) c: usize,
    pub(crate) h: usize,
    pub(crate) w: usize,
    pub(crate) k: usize,
    pub(crate) kh: usize,
    pub(crate) kw: usize,
    pub(crate) stride: usize,
    pub(crate) padding: usize,
}

const fn case(
    n: usize,
    c: usize,
    hw: (usize, usize),
    k: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
) -> ConvCase {
    ConvCase {
        n,
        c,
        h: hw.0,
        w: hw.1,
        k,
        kh: kernel,
        kw: kernel,
        stride,
        padding,
    }
}

/// Convolutions covering strides 1/2, paddings 0/1/3, 1x1/3x3/7x7 kernels,
/// non-square inputs and batch 1.
pub(crate) const CONV_CASES: &[ConvCase] = &[
    case(1, 3, (9, 12), 5, 3, 1, 1),   // non-square, stride 1, batch 1
    case(3, 5, (9, 11), 7, 3, 2, 1),   // stride 2, batch 3, odd channels
    case(3, 5, (9, 12), 7, 3, 2, 1),   // stride 2, height and width of different parity
    case(1, 3, (9, 12), 4, 3, 1, 0),   // no padding
    case(3, 3, (7, 5), 2, 3, 1, 3),    // padding wider than the kernel reach
    case(3, 3, (11, 10), 5, 7, 2, 3),  // ResNet stem kernel
    case(2, 3, (12, 10), 4, 7, 2, 3),  // ResNet stem kernel, even sizes
    case(1, 3, (6, 6), 2, 7, 1, 3),    // 7x7 kernel over a smaller image
    case(3, 5, (8, 6), 7, 1, 1, 0),    // pointwise, images stacked in one GEMM
    case(1, 5, (8, 6), 7, 1, 1, 0),    // pointwise, direct GEMM on the input
    case(3, 4, (9, 9), 3, 1, 2, 0),    // 1x1 stride-2 downsample
    case(5, 2, (28, 30), 3, 3, 1, 1),  // chunks of 3 + 2 images
    case(2, 3, (46, 46), 2, 1, 1, 0),  // pointwise, one image per GEMM
    case(2, 2, (48, 50), 3, 3, 2, 1),  // larger image, stride 2
    case(2, 8, (10, 37), 8, 3, 1, 1),  // thin stride-1 layer (direct kernels on AVX-512)
    case(2, 3, (18, 40), 16, 7, 2, 3), // thin stem (direct kernels on AVX-512)
    case(3, 16, (9, 35), 8, 3, 2, 1),  // thin stride-2 layer (direct forward and weight grad)
];

/// A convolution's output and the gradients of `sum(y * r)`.
pub(crate) struct ConvOutcome {
    pub(crate) y: Tensor,
    pub(crate) grad_x: Tensor,
    pub(crate) grad_w: Tensor,
}

/// Runs `f(x, w)` on fresh variables and backpropagates `sum(y * r)`.
pub(crate) fn run_conv(
    f: impl Fn(&Tensor, &Tensor) -> Result<Tensor>,
    x: &Tensor,
    w: &Tensor,
    r: &Tensor,
) -> ConvOutcome {
    let (xv, wv) = (Var::from_tensor(x).unwrap(), Var::from_tensor(w).unwrap());
    let y = f(xv.as_tensor(), wv.as_tensor()).unwrap();
    let grads = (&y * r).unwrap().sum_all().unwrap().backward().unwrap();
    let grad_x = grads.get(xv.as_tensor()).expect("input gradient").clone();
    let grad_w = grads.get(wv.as_tensor()).expect("weight gradient").clone();
    ConvOutcome { y, grad_x, grad_w }
}

/// Seeded input, weight and loss weights `r` for one case.
pub(crate) fn conv_operands(cs: &ConvCase, seed: u64) -> (Tensor, Tensor, Tensor) {
    let x = seeded(&[cs.n, cs.c, cs.h, cs.w], seed);
    let w = seeded(&[cs.k, cs.c, cs.kh, cs.kw], seed + 1);
    let g = ConvGeometry::new(x.dims(), w.dims(), cs.stride, cs.padding).unwrap();
    (x, w, seeded(&g.out_dims(), seed + 2))
}

/// Relative error bound for sums of a few hundred products of O(1) terms.
pub(crate) fn close(diff: f32, reference: &Tensor) -> bool {
    diff <= 2e-5 * (1.0 + max_abs(reference))
}
