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
/// non-square inputs, batch 1, and each path of the CPU op (lowered, direct
/// kernels, both Winograd tilings).
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
    case(2, 32, (9, 30), 32, 3, 1, 1), // Winograd F(2x2, 3x3)
    case(9, 32, (8, 12), 32, 3, 1, 1), // Winograd F(4x4, 3x3)
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

/// The convolution `g` of `x` with `w` by its definition, in f64.
pub(crate) fn conv_definition(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f64> {
    let mut y = vec![0.0f64; g.n * g.k * g.out_pixels()];
    for_each_tap_row(g, |b, k, c, tap, (oy, iy), (ox, ix, len)| {
        let weight = w[(k * g.c + c) * g.kh * g.kw + tap] as f64;
        let out = &mut y[((b * g.k + k) * g.oh + oy) * g.ow..][..g.ow];
        let row = &x[((b * g.c + c) * g.h + iy) * g.w..][..g.w];
        for i in 0..len {
            out[ox + i] += weight * row[ix + i * g.stride] as f64;
        }
    });
    y
}

/// The input gradient of the convolution `g` from the output gradient `dy`,
/// by its definition, in f64.
pub(crate) fn input_grad_definition(g: &ConvGeometry, dy: &[f32], w: &[f32]) -> Vec<f64> {
    let mut dx = vec![0.0f64; g.n * g.c * g.in_pixels()];
    for_each_tap_row(g, |b, k, c, tap, (oy, iy), (ox, ix, len)| {
        let weight = w[(k * g.c + c) * g.kh * g.kw + tap] as f64;
        let grad = &dy[((b * g.k + k) * g.oh + oy) * g.ow..][..g.ow];
        let row = &mut dx[((b * g.c + c) * g.h + iy) * g.w..][..g.w];
        for i in 0..len {
            row[ix + i * g.stride] += weight * grad[ox + i] as f64;
        }
    });
    dx
}

/// The weight gradient of the convolution `g` from its input `x` and output
/// gradient `dy`, by its definition, in f64.
pub(crate) fn weight_grad_definition(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f64> {
    let mut dw = vec![0.0f64; g.k * g.patch_len()];
    for_each_tap_row(g, |b, k, c, tap, (oy, iy), (ox, ix, len)| {
        let grad = &dy[((b * g.k + k) * g.oh + oy) * g.ow..][..g.ow];
        let row = &x[((b * g.c + c) * g.h + iy) * g.w..][..g.w];
        let sum: f64 = (0..len)
            .map(|i| grad[ox + i] as f64 * row[ix + i * g.stride] as f64)
            .sum();
        dw[(k * g.c + c) * g.kh * g.kw + tap] += sum;
    });
    dw
}

/// Calls `f(image, output channel, input channel, tap, (output row, input
/// row), (first output column, its input column, columns))` for every run
/// of products of the convolution `g` along one output row that does not
/// fall into the padding: output column `ox + i` reads input column
/// `ix + i * stride`.
fn for_each_tap_row(
    g: &ConvGeometry,
    mut f: impl FnMut(usize, usize, usize, usize, (usize, usize), (usize, usize, usize)),
) {
    let valid = |out_len: usize, in_len: usize, tap: usize| {
        super::im2col::valid_range(out_len, in_len, g.stride, g.padding, tap)
    };
    for b in 0..g.n {
        for k in 0..g.k {
            for c in 0..g.c {
                for ky in 0..g.kh {
                    let (y0, y1) = valid(g.oh, g.h, ky);
                    for kx in 0..g.kw {
                        let (x0, x1) = valid(g.ow, g.w, kx);
                        if x0 >= x1 {
                            continue;
                        }
                        let ix = x0 * g.stride + kx - g.padding;
                        for oy in y0..y1 {
                            let iy = oy * g.stride + ky - g.padding;
                            f(b, k, c, ky * g.kw + kx, (oy, iy), (x0, ix, x1 - x0));
                        }
                    }
                }
            }
        }
    }
}

/// The largest absolute difference between `got` and the f64 `reference`,
/// relative to the reference's largest magnitude.
pub(crate) fn relative_error(got: &[f32], reference: &[f64]) -> f64 {
    assert_eq!(got.len(), reference.len(), "compared lengths differ");
    let scale = reference.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    let worst = got
        .iter()
        .zip(reference)
        .fold(0.0f64, |m, (&a, &b)| m.max((a as f64 - b).abs()));
    worst / scale.max(f64::MIN_POSITIVE)
}

/// `len` seeded values uniform in `[-1, 1)` (see [`seeded`]).
pub(crate) fn seeded_vec(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = seed::stream(seed, "ops-test", &[]);
    (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect()
}
