//! Differentiable max pooling with padding.
//!
//! The ResNet stem pools with a 3x3 window, stride 2 and padding 1. candle's
//! `max_pool2d` has no padding argument, and its backward pass is only
//! implemented when the kernel equals the stride, so it cannot train a ResNet.
//! This module builds the same pooling out of ops that all have gradients:
//!
//! 1. pad both spatial axes with `-inf` (the identity of `max`, so padding
//!    never wins a window, exactly like PyTorch's implicit padding);
//! 2. without gradient tracking, find each window's argmax: reshape every
//!    padded axis `L = s * B` into `(B, s)`, so that window tap `d` of output
//!    `i` (element `s * i + d`) is the plain `narrow` view (block `i + d / s`,
//!    phase `d % s`); stack the `k * k` tap views and take `argmax` over them;
//! 3. turn the tap numbers into flat indices into the padded plane and
//!    `gather` the values.
//!
//! On the CPU (f32) the same pooling runs as one custom op instead
//! (`crate::ops::max_pool2d_cpu`): a single pass that keeps each window's
//! argmax, and a backward pass that adds each output gradient to it.
//!
//! The forward value is an exact copy of the window maximum. The gradient
//! flows only through `gather`, whose backward is a single `scatter_add`, so
//! the backward pass costs one pass over the output instead of the many
//! element-wise ops that a chain of `maximum`s would need. `argmax` keeps the
//! first maximal tap in raster order (row, then column), so ties route the
//! whole gradient to the first maximal element of the window, as PyTorch does.

use candle_core::{Result, Tensor};

/// Square max pooling over the last two axes of an `(N, C, H, W)` tensor,
/// with PyTorch's `nn.MaxPool2d(kernel, stride, padding)` semantics
/// (`ceil_mode = false`, `dilation = 1`): output size
/// `(H + 2 * padding - kernel) / stride + 1` per axis.
///
/// Differentiable with respect to `x`; on ties the gradient goes to the first
/// maximal element of the window (row-major), as in PyTorch. Errors if `kernel`
/// or `stride` is zero, if `padding > kernel / 2` (PyTorch's rule: otherwise a
/// window could lie entirely in the padding), or if an axis is too small for
/// one window.
pub fn max_pool2d(x: &Tensor, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
    if kernel == 0 || stride == 0 {
        candle_core::bail!("max_pool2d: kernel ({kernel}) and stride ({stride}) must be >= 1");
    }
    if padding > kernel / 2 {
        candle_core::bail!(
            "max_pool2d: padding {padding} must be at most half the kernel {kernel} \
             (as in PyTorch), otherwise a window can lie entirely in the padding"
        );
    }
    let (_, _, h, w) = x.dims4()?;
    pooled_len(h, kernel, stride, padding)?;
    pooled_len(w, kernel, stride, padding)?;
    if x.device().is_cpu() && x.dtype() == candle_core::DType::F32 {
        crate::ops::max_pool2d_cpu(x, kernel, stride, padding)
    } else {
        max_pool2d_composed(x, kernel, stride, padding)
    }
}

/// [`max_pool2d`] composed of candle ops that all have gradients (steps 1 to
/// 3 of the module docs), for every device and dtype; arguments already
/// checked. Padding is minus infinity, so a window whose real elements are
/// all minus infinity may route its gradient into the padding (the CPU op
/// sends it to the window's first real element, as PyTorch does).
fn max_pool2d_composed(x: &Tensor, kernel: usize, stride: usize, padding: usize) -> Result<Tensor> {
    let (n, c, h, w) = x.dims4()?;
    let (ho, wo) = (
        pooled_len(h, kernel, stride, padding)?,
        pooled_len(w, kernel, stride, padding)?,
    );
    // Blocks of `stride` elements per axis, so that every tap `i + d / stride`
    // of every output `i` exists.
    let (bh, bw) = (ho + (kernel - 1) / stride, wo + (kernel - 1) / stride);
    let (hp, wp) = (bh * stride, bw * stride);
    let padded = pad_to(&pad_to(x, 2, padding, hp)?, 3, padding, wp)?;

    let tap = window_argmax(&padded.detach(), kernel, stride, (bh, bw), (ho, wo))?;
    let index = tap_to_flat_index(&tap, kernel, stride, wp)?;
    padded
        .flatten_from(2)?
        .gather(&index.reshape((n, c, ho * wo))?, 2)?
        .reshape((n, c, ho, wo))
}

/// Output length of a pooled axis of length `len`, or an error when not even one
/// window fits.
fn pooled_len(len: usize, kernel: usize, stride: usize, padding: usize) -> Result<usize> {
    let padded = len + 2 * padding;
    if padded < kernel {
        candle_core::bail!(
            "max_pool2d: axis of length {len} (padded {padded}) is shorter than the kernel {kernel}"
        );
    }
    Ok((padded - kernel) / stride + 1)
}

/// For each output position, the number `di * kernel + dj` of the first
/// maximal tap of its window (`u32`, shape `N x C x Ho x Wo`). `padded` has
/// spatial size `(blocks.0 * stride, blocks.1 * stride)` and no gradient.
fn window_argmax(
    padded: &Tensor,
    kernel: usize,
    stride: usize,
    blocks: (usize, usize),
    out: (usize, usize),
) -> Result<Tensor> {
    let (n, c, _, _) = padded.dims4()?;
    // One strided pass moves the column phase in front of the column block,
    // so that every tap view below reads runs of `Wo` contiguous elements and
    // the stacking copy works block-wise.
    let split = padded
        .reshape((n, c, blocks.0, stride, blocks.1, stride))?
        .permute((0, 1, 2, 3, 5, 4))?
        .contiguous()?;
    let mut taps = Vec::with_capacity(kernel * kernel);
    for di in 0..kernel {
        let rows = split
            .narrow(2, di / stride, out.0)?
            .narrow(3, di % stride, 1)?;
        for dj in 0..kernel {
            let view = rows
                .narrow(4, dj % stride, 1)?
                .narrow(5, dj / stride, out.1)?;
            taps.push(view.unsqueeze(0)?);
        }
    }
    // Stacking along a new leading axis copies each view once into a
    // contiguous tensor; argmax then keeps the first maximum along that axis.
    Tensor::cat(&taps, 0)?
        .reshape((kernel * kernel, n, c, out.0, out.1))?
        .argmax(0)
}

/// Converts tap numbers into flat indices into the padded `hp x wp` plane:
/// output `(i, j)`, tap `(di, dj)` reads element
/// `(stride * i + di) * wp + stride * j + dj`. One `gather` from a
/// `(taps, Ho * Wo)` table of these indices.
fn tap_to_flat_index(tap: &Tensor, kernel: usize, stride: usize, wp: usize) -> Result<Tensor> {
    let (n, c, ho, wo) = tap.dims4()?;
    let mut table = Vec::with_capacity(kernel * kernel * ho * wo);
    for t in 0..kernel * kernel {
        let (di, dj) = (t / kernel, t % kernel);
        for i in 0..ho {
            for j in 0..wo {
                let flat = (stride * i + di) * wp + stride * j + dj;
                let flat = u32::try_from(flat).map_err(|_| {
                    candle_core::Error::Msg(format!(
                        "max_pool2d: padded plane too large for u32 indices ({wp} columns)"
                    ))
                })?;
                table.push(flat);
            }
        }
    }
    let table = Tensor::from_vec(table, (kernel * kernel, ho * wo), tap.device())?;
    table.gather(&tap.reshape((n * c, ho * wo))?, 0)
}

/// Pads `dim` of `x` with `left` elements of `-inf` in front and as many
/// `-inf` (or truncation) at the end as needed for a total length `total`.
fn pad_to(x: &Tensor, dim: usize, left: usize, total: usize) -> Result<Tensor> {
    let len = x.dim(dim)?;
    // Elements past `total` are never read by any window; dropping them keeps
    // the reshape exact.
    let kept = len.min(total - left);
    let right = total - left - kept;
    let body = if kept < len {
        x.narrow(dim, 0, kept)?
    } else {
        x.clone()
    };
    if left == 0 && right == 0 {
        return body.contiguous();
    }
    let mut parts = Vec::with_capacity(3);
    if left > 0 {
        parts.push(neg_inf_like(x, dim, left)?);
    }
    parts.push(body);
    if right > 0 {
        parts.push(neg_inf_like(x, dim, right)?);
    }
    Tensor::cat(&parts, dim)
}

/// A tensor of `-inf` shaped like `x` except for `count` elements along `dim`.
fn neg_inf_like(x: &Tensor, dim: usize, count: usize) -> Result<Tensor> {
    let mut dims = x.dims().to_vec();
    dims[dim] = count;
    Tensor::full(f32::NEG_INFINITY, dims, x.device())?.to_dtype(x.dtype())
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Var};
    use rand::Rng;

    /// A pooling implementation under test: the dispatching entry point
    /// (the CPU op for f32 on the CPU) or the composed-op version.
    type PoolFn = fn(&Tensor, usize, usize, usize) -> Result<Tensor>;

    /// Deterministic test input with distinct values (no ties), mixing signs.
    fn input(n: usize, c: usize, h: usize, w: usize, seed: u64) -> Vec<f32> {
        let mut rng = crate::seed::stream(seed, "pool-test", &[]);
        let count = n * c * h * w;
        // A random permutation of distinct values guarantees a unique maximum.
        let mut vals: Vec<f32> = (0..count).map(|i| i as f32 * 0.37 - 20.0).collect();
        for i in (1..count).rev() {
            let j = rng.random_range(0..=i);
            vals.swap(i, j);
        }
        vals
    }

    struct Naive {
        out: Vec<f32>,
        /// Flat input index of each output's maximum.
        argmax: Vec<usize>,
        ho: usize,
        wo: usize,
    }

    /// Direct loop over windows, skipping padded positions.
    fn naive(x: &[f32], dims: (usize, usize, usize, usize), k: usize, s: usize, p: usize) -> Naive {
        let (n, c, h, w) = dims;
        let ho = (h + 2 * p - k) / s + 1;
        let wo = (w + 2 * p - k) / s + 1;
        let mut out = Vec::new();
        let mut argmax = Vec::new();
        for plane in 0..n * c {
            for i in 0..ho {
                for j in 0..wo {
                    let mut best = f32::NEG_INFINITY;
                    let mut best_idx = usize::MAX;
                    for di in 0..k {
                        for dj in 0..k {
                            let r = (i * s + di) as isize - p as isize;
                            let q = (j * s + dj) as isize - p as isize;
                            if r < 0 || q < 0 || r >= h as isize || q >= w as isize {
                                continue;
                            }
                            let idx = plane * h * w + r as usize * w + q as usize;
                            if x[idx] > best {
                                best = x[idx];
                                best_idx = idx;
                            }
                        }
                    }
                    out.push(best);
                    argmax.push(best_idx);
                }
            }
        }
        Naive {
            out,
            argmax,
            ho,
            wo,
        }
    }

    const SHAPES: [(usize, usize, usize, usize); 6] = [
        (2, 3, 8, 8),
        (1, 2, 9, 9),
        (2, 1, 7, 10),
        (1, 1, 3, 3),
        (1, 2, 16, 15),
        (1, 1, 1, 1),
    ];

    fn forward_matches_naive_loop_with(pool: PoolFn) -> Result<()> {
        for (k, s, p) in [
            (3, 2, 1),
            (2, 2, 0),
            (3, 1, 1),
            (3, 3, 0),
            (3, 3, 1),
            (1, 1, 0),
            (5, 2, 2),
        ] {
            for (seed, &dims) in SHAPES.iter().enumerate() {
                let (n, c, h, w) = dims;
                if h + 2 * p < k || w + 2 * p < k {
                    continue;
                }
                let x = input(n, c, h, w, seed as u64);
                let expected = naive(&x, dims, k, s, p);
                let t = Tensor::from_vec(x, dims, &Device::Cpu)?;
                let y = pool(&t, k, s, p)?;
                assert_eq!(y.dims(), &[n, c, expected.ho, expected.wo]);
                let got = y.flatten_all()?.to_vec1::<f32>()?;
                assert_eq!(got, expected.out, "k{k} s{s} p{p} {dims:?}");
            }
        }
        Ok(())
    }

    #[test]
    fn forward_matches_naive_loop() -> Result<()> {
        forward_matches_naive_loop_with(max_pool2d)?;
        forward_matches_naive_loop_with(max_pool2d_composed)
    }

    fn forward_equals_candle_max_pool_on_padded_input_with(pool: PoolFn) -> Result<()> {
        // candle's own max_pool2d (no padding argument) on an explicitly
        // -inf padded input is the reference the stem must reproduce.
        for (seed, &(n, c, h, w)) in SHAPES.iter().enumerate() {
            let x = Tensor::from_vec(input(n, c, h, w, seed as u64), (n, c, h, w), &Device::Cpu)?;
            let ninf = |dims: (usize, usize, usize, usize)| {
                Tensor::full(f32::NEG_INFINITY, dims, &Device::Cpu)
            };
            let xp = Tensor::cat(&[ninf((n, c, 1, w))?, x.clone(), ninf((n, c, 1, w))?], 2)?;
            let xp = Tensor::cat(&[ninf((n, c, h + 2, 1))?, xp, ninf((n, c, h + 2, 1))?], 3)?;
            let reference = xp.max_pool2d_with_stride(3, 2)?;
            let ours = pool(&x, 3, 2, 1)?;
            assert_eq!(ours.dims(), reference.dims());
            let diff = (ours - reference)?.abs()?.flatten_all()?.max(0)?;
            assert_eq!(diff.to_scalar::<f32>()?, 0.0);
        }
        Ok(())
    }

    #[test]
    fn forward_equals_candle_max_pool_on_padded_input() -> Result<()> {
        forward_equals_candle_max_pool_on_padded_input_with(max_pool2d)?;
        forward_equals_candle_max_pool_on_padded_input_with(max_pool2d_composed)
    }

    /// Pools `x` (`dims`) with `(kernel, stride, padding)`, checks the
    /// output against the naive loop and the gradient of
    /// `loss = sum(pool(x) * g)`: `d loss / d x[a]` is the sum of `g` over
    /// the outputs whose (first) maximum is at `a` (windows overlap at
    /// stride 2, so one input can collect several contributions).
    fn assert_routes_like_naive(
        pool: PoolFn,
        x: Vec<f32>,
        dims: (usize, usize, usize, usize),
        (k, s, p): (usize, usize, usize),
        g: impl Fn(usize) -> f32,
    ) -> Result<()> {
        let (n, c, _, _) = dims;
        let reference = naive(&x, dims, k, s, p);
        let g: Vec<f32> = (0..reference.out.len()).map(g).collect();
        let mut expected = vec![0f32; x.len()];
        for (o, &a) in reference.argmax.iter().enumerate() {
            expected[a] += g[o];
        }
        let var = Var::from_vec(x, dims, &Device::Cpu)?;
        let gt = Tensor::from_vec(g, (n, c, reference.ho, reference.wo), &Device::Cpu)?;
        let y = pool(var.as_tensor(), k, s, p)?;
        assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, reference.out);
        let grads = (y * gt)?.sum_all()?.backward()?;
        let grad = grads
            .get(var.as_tensor())
            .expect("gradient of the input")
            .flatten_all()?
            .to_vec1::<f32>()?;
        assert_eq!(grad, expected, "k{k} s{s} p{p} {dims:?}");
        Ok(())
    }

    fn gradient_routes_to_window_maximum_with(pool: PoolFn) -> Result<()> {
        for (k, s, p) in [(3, 2, 1), (2, 2, 0), (3, 1, 1)] {
            for (seed, &dims) in SHAPES.iter().enumerate() {
                let (n, c, h, w) = dims;
                if h + 2 * p < k || w + 2 * p < k {
                    continue;
                }
                let x = input(n, c, h, w, seed as u64 + 100);
                let g = |o: usize| 1.0 + (o % 7) as f32 * 0.25;
                assert_routes_like_naive(pool, x, dims, (k, s, p), g)?;
            }
        }
        Ok(())
    }

    #[test]
    fn gradient_routes_to_window_maximum() -> Result<()> {
        gradient_routes_to_window_maximum_with(max_pool2d)?;
        gradient_routes_to_window_maximum_with(max_pool2d_composed)
    }

    #[test]
    fn gradient_matches_finite_differences() -> Result<()> {
        // Central differences in f64 on an odd and an even size; with distinct
        // values and a small step no window changes its argmax.
        for dims in [(1, 2, 7, 7), (1, 1, 6, 6)] {
            let (n, c, h, w) = dims;
            let x: Vec<f64> = input(n, c, h, w, 5).iter().map(|&v| v as f64).collect();
            let ho = (h - 1) / 2 + 1;
            let wts: Vec<f64> = (0..n * c * ho * ho)
                .map(|i| (i as f64 * 0.7).sin())
                .collect();
            let wt = Tensor::from_vec(wts, (n, c, ho, ho), &Device::Cpu)?;
            let f = |xs: &[f64]| -> Result<f64> {
                let t = Tensor::from_vec(xs.to_vec(), dims, &Device::Cpu)?;
                (max_pool2d(&t, 3, 2, 1)? * &wt)?
                    .sum_all()?
                    .to_scalar::<f64>()
            };
            let var = Var::from_vec(x.clone(), dims, &Device::Cpu)?;
            let loss = (max_pool2d(var.as_tensor(), 3, 2, 1)? * &wt)?.sum_all()?;
            let grads = loss.backward()?;
            let grad = grads
                .get(var.as_tensor())
                .expect("gradient of the input")
                .flatten_all()?
                .to_vec1::<f64>()?;
            let eps = 1e-3;
            for i in 0..x.len() {
                let mut plus = x.clone();
                plus[i] += eps;
                let mut minus = x.clone();
                minus[i] -= eps;
                let numeric = (f(&plus)? - f(&minus)?) / (2.0 * eps);
                assert!(
                    (numeric - grad[i]).abs() < 1e-9,
                    "{dims:?} elem {i}: {numeric} vs {}",
                    grad[i]
                );
            }
        }
        Ok(())
    }

    fn ties_send_the_gradient_to_the_first_maximum_with(
        pool: PoolFn,
        values: &[f32],
    ) -> Result<()> {
        // A constant 5x5 input: every window is one big tie. PyTorch routes
        // each output's gradient to the first real element of its window in
        // raster order: windows start at rows/columns -1, 1, 3 (padding
        // first), so the first real element is at rows/columns 0, 1, 3.
        // Minus infinity ties the same way in the CPU op (padding never
        // wins); the composed version pads with minus infinity, so there a
        // window of minus infinities may send its gradient into the padding.
        for &value in values {
            let var = Var::from_vec(vec![value; 25], (1, 1, 5, 5), &Device::Cpu)?;
            let y = pool(var.as_tensor(), 3, 2, 1)?;
            assert_eq!(y.dims(), &[1, 1, 3, 3]);
            assert_eq!(y.flatten_all()?.to_vec1::<f32>()?, vec![value; 9]);
            let grads = y.sum_all()?.backward()?;
            let grad = grads
                .get(var.as_tensor())
                .expect("gradient of the input")
                .flatten_all()?
                .to_vec1::<f32>()?;
            let mut expected = vec![0f32; 25];
            for r in [0, 1, 3] {
                for c in [0, 1, 3] {
                    expected[r * 5 + c] = 1.0;
                }
            }
            assert_eq!(grad, expected, "constant {value}");
        }
        Ok(())
    }

    #[test]
    fn ties_send_the_gradient_to_the_first_maximum() -> Result<()> {
        ties_send_the_gradient_to_the_first_maximum_with(max_pool2d, &[1.0, f32::NEG_INFINITY])?;
        ties_send_the_gradient_to_the_first_maximum_with(max_pool2d_composed, &[1.0])
    }

    fn ties_anywhere_go_to_the_first_maximum_in_raster_order_with(pool: PoolFn) -> Result<()> {
        // Three distinct values only: windows tie across rows and columns
        // at once (e.g. at (0, 2) and (1, 0)), where raster order picks the
        // earlier row whatever the columns.
        for (k, s, p) in [(3, 2, 1), (3, 1, 1), (2, 2, 0), (5, 2, 2)] {
            for (seed, &dims) in SHAPES.iter().enumerate() {
                let (n, c, h, w) = dims;
                if h + 2 * p < k || w + 2 * p < k {
                    continue;
                }
                let x: Vec<f32> = input(n, c, h, w, seed as u64 + 200)
                    .iter()
                    .map(|v| (v.to_bits() % 3) as f32)
                    .collect();
                let g = |o: usize| 1.0 + o as f32;
                assert_routes_like_naive(pool, x, dims, (k, s, p), g)?;
            }
        }
        Ok(())
    }

    #[test]
    fn ties_anywhere_go_to_the_first_maximum_in_raster_order() -> Result<()> {
        ties_anywhere_go_to_the_first_maximum_in_raster_order_with(max_pool2d)?;
        ties_anywhere_go_to_the_first_maximum_in_raster_order_with(max_pool2d_composed)
    }

    #[test]
    fn a_nan_is_the_maximum_of_its_windows() -> Result<()> {
        // 4x4 input, 3x3 windows at stride 2 with padding 1: output rows
        // (and columns) see input rows 0..2 and 1..4.
        let pool = |x: Vec<f32>| -> Result<(Vec<f32>, Vec<f32>)> {
            let var = Var::from_vec(x, (1, 1, 4, 4), &Device::Cpu)?;
            let y = max_pool2d(var.as_tensor(), 3, 2, 1)?;
            let grads = y.sum_all()?.backward()?;
            let grad = grads.get(var.as_tensor()).expect("gradient of the input");
            Ok((
                y.flatten_all()?.to_vec1::<f32>()?,
                grad.flatten_all()?.to_vec1::<f32>()?,
            ))
        };
        // A NaN at (1, 1) lies in every window.
        let mut x: Vec<f32> = (0..16).map(|v| v as f32).collect();
        x[5] = f32::NAN;
        let (y, grad) = pool(x)?;
        assert!(y.iter().all(|v| v.is_nan()), "{y:?}");
        assert_eq!(grad[5], 4.0);
        // A NaN at (3, 0) only in the bottom-left window; a second NaN at
        // (2, 1) comes first in raster order there and takes the gradient.
        let mut x: Vec<f32> = (0..16).map(|v| v as f32).collect();
        x[12] = f32::NAN;
        let (y, _) = pool(x.clone())?;
        assert_eq!([y[0], y[1], y[3]], [5.0, 7.0, 15.0]);
        assert!(y[2].is_nan());
        x[9] = f32::NAN;
        let (y, grad) = pool(x)?;
        assert!(y[2].is_nan() && y[3].is_nan());
        assert_eq!((grad[9], grad[12]), (2.0, 0.0));
        Ok(())
    }

    #[test]
    fn rejects_bad_arguments() {
        let x = Tensor::zeros((1, 1, 4, 4), DType::F32, &Device::Cpu).expect("zeros");
        assert!(max_pool2d(&x, 0, 1, 0).is_err());
        assert!(max_pool2d(&x, 3, 0, 1).is_err());
        assert!(max_pool2d(&x, 3, 2, 2).is_err());
        assert!(max_pool2d(&x, 7, 2, 1).is_err());
        let flat = Tensor::zeros((4, 4), DType::F32, &Device::Cpu).expect("zeros");
        assert!(max_pool2d(&flat, 3, 2, 1).is_err());
    }
}
