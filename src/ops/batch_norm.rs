//! Batch normalization over the channel axis of `[N, C, ...]` tensors:
//! a fused training-mode custom op with the closed-form backward pass
//! (optionally with the following ReLU folded in), inference mode as the
//! same op with the running statistics fixed, and the running-statistics
//! update.
//!
//! Training forward reads `x` twice per channel (mean, then centered sum of
//! squares, the second read from cache) and writes `y` once. Backward reads
//! `dy` and `x` once for the two per-channel sums and once more to write
//! `dx = gamma * invstd / m * (m * dy - sum(dy) - xhat * sum(dy * xhat))`.
//! candle's equivalent op chain materializes every intermediate tensor in
//! both directions.

use super::cpu::{dense_f32, output_buffer};
use super::OpsError;
use candle_core::{
    CpuStorage, CustomOp1, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor,
};
use rayon::prelude::*;

/// Training-mode batch norm of `x` (`[N, C, ...]`) with per-channel scale
/// `gamma` and shift `beta` (both `[C]`), normalizing with the statistics of
/// this batch.
///
/// Returns `(y, mean, var)`: the normalized output (differentiable with
/// respect to `x`, `gamma` and `beta`), and the per-channel batch mean and
/// *biased* variance (`[C]`, detached), from which the caller updates its
/// running statistics (see [`running_stats_update`]). On the CPU with f32
/// operands this is one fused custom op; elsewhere it is candle's op chain.
pub fn batch_norm_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    train(x, gamma, beta, eps, false)
}

/// [`batch_norm_train`] followed by ReLU, fused: `y = max(bn(x), 0)`.
///
/// Saves the ReLU's own pass forward and, above all, candle's ReLU backward
/// (a comparison, a cast, a product and a gradient sum, each a full pass
/// with a fresh tensor): the fused backward applies the ReLU mask inside
/// batch norm's two passes. The gradient at exactly zero is zero, as in
/// PyTorch.
pub fn batch_norm_relu_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    train(x, gamma, beta, eps, true)
}

fn train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
    relu: bool,
) -> Result<(Tensor, Tensor, Tensor)> {
    let shape = BnShape::for_training(x.dims(), gamma.dims(), beta.dims())?;
    let fast = x.device().is_cpu() && [x, gamma, beta].iter().all(|t| t.dtype() == DType::F32);
    if !fast {
        let (y, mean, var) = generic_train(x, gamma, beta, eps)?;
        return Ok((if relu { y.relu()? } else { y }, mean, var));
    }
    let x = x.contiguous()?;
    let stats = x.apply_op1_no_bwd(&BnStats { shape })?;
    let (mean, var) = (stats.get(0)?, stats.get(1)?);
    let invstd = inverse_std(&var.to_vec1::<f32>()?, eps);
    let op = BnNormalize {
        shape,
        mean: mean.to_vec1()?,
        invstd,
        relu,
        batch_stats: true,
    };
    let y = x.apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op)?;
    Ok((y, mean, var))
}

/// Inference-mode batch norm: normalizes `x` (`[N, C, ...]`) with the
/// running statistics `running_mean` and `running_var` (`[C]`), then scales
/// by `gamma` and shifts by `beta`.
///
/// Differentiable with respect to `x`, `gamma` and `beta`; the running
/// statistics are constants, as PyTorch's buffers are. On the CPU with f32
/// operands it is one pass over `x` (the same custom op as training, with
/// fixed statistics); elsewhere it is candle's op chain.
pub fn batch_norm_eval(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    eps: f64,
) -> Result<Tensor> {
    eval(x, [gamma, beta, running_mean, running_var], eps, false)
}

/// [`batch_norm_eval`] followed by ReLU, fused on the fast path.
pub fn batch_norm_relu_eval(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    eps: f64,
) -> Result<Tensor> {
    eval(x, [gamma, beta, running_mean, running_var], eps, true)
}

/// The per-channel `(scale, shift)` of inference-mode batch norm,
/// `scale = gamma / sqrt(var + eps)`, `shift = beta - mean * scale`, computed
/// exactly as [`batch_norm_eval`] computes them (for fusing it into the
/// preceding convolution, [`super::conv2d_bn_eval`]).
pub fn batch_norm_eval_affine(
    gamma: &Tensor,
    beta: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    eps: f64,
) -> Result<Vec<(f32, f32)>> {
    let [gamma, beta, mean, var] = [gamma, beta, running_mean, running_var]
        .map(|t| t.to_dtype(DType::F32).and_then(|t| t.to_vec1::<f32>()));
    let (gamma, beta, mean, var) = (gamma?, beta?, mean?, var?);
    Ok(fold_affine(&gamma, &beta, &mean, &inverse_std(&var, eps)))
}

/// `1 / sqrt(var + eps)` per channel, in f64 then rounded once.
fn inverse_std(var: &[f32], eps: f64) -> Vec<f32> {
    var.iter()
        .map(|&v| (1.0 / (v as f64 + eps).sqrt()) as f32)
        .collect()
}

/// The per-channel `(a, b)` with `bn(x) = a * x + b`: `a = gamma * invstd`,
/// `b = beta - mean * a`. Every batch-norm path (training, inference, the
/// fold into a convolution) takes them from here, so they agree bit for bit.
fn fold_affine(gamma: &[f32], beta: &[f32], mean: &[f32], invstd: &[f32]) -> Vec<(f32, f32)> {
    (0..gamma.len())
        .map(|ch| {
            let a = gamma[ch] * invstd[ch];
            (a, beta[ch] - mean[ch] * a)
        })
        .collect()
}

/// Inference-mode batch norm with parameters `[gamma, beta, mean, var]`.
fn eval(x: &Tensor, params: [&Tensor; 4], eps: f64, relu: bool) -> Result<Tensor> {
    let [gamma, beta, mean, var] = params;
    let shape = BnShape::new(x.dims(), gamma.dims(), beta.dims())?;
    if mean.dims() != [shape.c] || var.dims() != [shape.c] {
        return Err(OpsError::BatchNormShape {
            input: x.dims().to_vec(),
            gamma: gamma.dims().to_vec(),
            beta: beta.dims().to_vec(),
            reason: "running_mean and running_var must be [C] like gamma and beta",
        }
        .into());
    }
    let fast = x.device().is_cpu() && params.iter().chain([&x]).all(|t| t.dtype() == DType::F32);
    if !fast {
        return generic_eval(x, params, eps, relu);
    }
    let invstd = inverse_std(&var.to_vec1::<f32>()?, eps);
    let op = BnNormalize {
        shape,
        mean: mean.to_vec1()?,
        invstd,
        relu,
        batch_stats: false,
    };
    x.contiguous()?
        .apply_op3(&gamma.contiguous()?, &beta.contiguous()?, op)
}

/// The running statistics after one training batch, as PyTorch updates
/// them: `(1 - momentum) * running + momentum * batch`, with the batch
/// variance made unbiased by `count / (count - 1)`, where `count` is the
/// number of values per channel (`x.elem_count() / C`). Returns detached
/// `(new_mean, new_var)`.
pub fn running_stats_update(
    running_mean: &Tensor,
    running_var: &Tensor,
    batch_mean: &Tensor,
    batch_var: &Tensor,
    count: usize,
    momentum: f64,
) -> Result<(Tensor, Tensor)> {
    let unbias = count as f64 / (count.max(2) - 1) as f64;
    let mean = ((running_mean * (1.0 - momentum))? + (batch_mean * momentum)?)?;
    let var = ((running_var * (1.0 - momentum))? + (batch_var * (momentum * unbias))?)?;
    Ok((mean.detach(), var.detach()))
}

/// The sizes batch norm works with: `x` seen as `[n, c, s]`.
#[derive(Debug, Clone, Copy)]
struct BnShape {
    n: usize,
    c: usize,
    s: usize,
}

impl BnShape {
    fn new(x: &[usize], gamma: &[usize], beta: &[usize]) -> std::result::Result<Self, OpsError> {
        let fail = |reason| OpsError::BatchNormShape {
            input: x.to_vec(),
            gamma: gamma.to_vec(),
            beta: beta.to_vec(),
            reason,
        };
        let (n, c) = match x {
            [n, c, ..] => (*n, *c),
            _ => return Err(fail("input must have rank 2 or more")),
        };
        if gamma != [c] || beta != [c] {
            return Err(fail(
                "gamma and beta must be [C] with C the input's second dim",
            ));
        }
        Ok(Self {
            n,
            c,
            s: x[2..].iter().product(),
        })
    }

    /// [`BnShape::new`], also requiring the two values per channel that
    /// batch statistics need.
    fn for_training(
        x: &[usize],
        gamma: &[usize],
        beta: &[usize],
    ) -> std::result::Result<Self, OpsError> {
        let shape = Self::new(x, gamma, beta)?;
        if shape.count() < 2 {
            return Err(OpsError::BatchNormShape {
                input: x.to_vec(),
                gamma: gamma.to_vec(),
                beta: beta.to_vec(),
                reason: "training needs more than one value per channel",
            });
        }
        Ok(shape)
    }

    /// Values per channel.
    fn count(&self) -> usize {
        self.n * self.s
    }

    /// The `n` planes of channel `ch` in a dense `[n, c, s]` slice.
    fn planes<'a>(&self, data: &'a [f32], ch: usize) -> impl Iterator<Item = &'a [f32]> + 'a {
        let (c, s) = (self.c, self.s);
        (0..self.n).map(move |b| &data[(b * c + ch) * s..][..s])
    }

    /// Rayon's minimum planes per task, so tiny planes are not one task each.
    fn min_planes(&self) -> usize {
        (4096 / self.s.max(1)).max(1)
    }
}

/// `sum(f(v))` over `values`, accumulated in independent f32 lanes (so the
/// loop vectorizes) and combined in f64.
fn lane_sum(values: &[f32], f: impl Fn(f32) -> f32) -> f64 {
    const LANES: usize = 16;
    let mut acc = [0.0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let tail: f64 = chunks.remainder().iter().map(|&v| f(v) as f64).sum();
    for chunk in chunks {
        for (a, &v) in acc.iter_mut().zip(chunk) {
            *a += f(v);
        }
    }
    tail + acc.iter().map(|&a| a as f64).sum::<f64>()
}

/// `sum(f(a, b))` over paired values, like [`lane_sum`].
fn lane_sum2(a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32) -> f64 {
    const LANES: usize = 16;
    let mut acc = [0.0f32; LANES];
    let (ca, cb) = (a.chunks_exact(LANES), b.chunks_exact(LANES));
    let tail: f64 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(&x, &y)| f(x, y) as f64)
        .sum();
    for (xa, xb) in ca.zip(cb) {
        for ((acc, &x), &y) in acc.iter_mut().zip(xa).zip(xb) {
            *acc += f(x, y);
        }
    }
    tail + acc.iter().map(|&v| v as f64).sum::<f64>()
}

/// Per-channel batch statistics: `x` -> `[2, C]` (mean, biased variance).
struct BnStats {
    shape: BnShape,
}

impl CustomOp1 for BnStats {
    fn name(&self) -> &'static str {
        "ablate-batch-norm-stats"
    }

    fn cpu_fwd(&self, s: &CpuStorage, l: &Layout) -> Result<(CpuStorage, Shape)> {
        let sh = self.shape;
        let x = dense_f32(s, l, self.name(), "input")?;
        let count = sh.count() as f64;
        let stats: Vec<(f32, f32)> = (0..sh.c)
            .into_par_iter()
            .map(|ch| {
                // Two passes: the second reads the channel from cache and
                // avoids the cancellation of E[x^2] - E[x]^2.
                let mean = sh.planes(x, ch).map(|p| lane_sum(p, |v| v)).sum::<f64>() / count;
                let m = mean as f32;
                let var = sh
                    .planes(x, ch)
                    .map(|p| lane_sum(p, |v| (v - m) * (v - m)))
                    .sum::<f64>()
                    / count;
                (m, var as f32)
            })
            .collect();
        let (mean, var): (Vec<f32>, Vec<f32>) = stats.into_iter().unzip();
        Ok((
            CpuStorage::F32([mean, var].concat()),
            Shape::from((2, sh.c)),
        ))
    }
}

/// The normalization itself, `(x, gamma, beta) -> y`, with the statistics
/// fixed at construction and an optional fused ReLU.
struct BnNormalize {
    shape: BnShape,
    mean: Vec<f32>,
    invstd: Vec<f32>,
    relu: bool,
    /// Whether the statistics are this batch's (training), so that `x`'s
    /// gradient flows through them too, or running statistics (inference).
    batch_stats: bool,
}

impl BnNormalize {
    /// The per-channel `(a, b)` with `bn(x) = a * x + b`. Forward and backward
    /// both take them from here, so the backward pass recomputes exactly the
    /// forward's pre-activations when it rebuilds the ReLU mask.
    fn affine(&self, gamma: &[f32], beta: &[f32]) -> Vec<(f32, f32)> {
        fold_affine(&gamma[..self.shape.c], beta, &self.mean, &self.invstd)
    }
}

impl CustomOp3 for BnNormalize {
    fn name(&self) -> &'static str {
        "ablate-batch-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let sh = self.shape;
        let x = dense_f32(s1, l1, self.name(), "input")?;
        let gamma = dense_f32(s2, l2, self.name(), "gamma")?;
        let beta = dense_f32(s3, l3, self.name(), "beta")?;
        let affine = self.affine(gamma, beta);
        // SAFETY: `y` has `x.len()` elements, a whole number of planes of
        // `sh.s`; every plane's loop writes each of its elements (its source
        // plane has the same length) before `y` is returned.
        let mut y = unsafe { output_buffer(x.len()) };
        y.par_chunks_mut(sh.s)
            .with_min_len(sh.min_planes())
            .enumerate()
            .for_each(|(q, out)| {
                let (a, b) = affine[q % sh.c];
                let src = &x[q * sh.s..][..sh.s];
                if self.relu {
                    for (o, &v) in out.iter_mut().zip(src) {
                        *o = relu(a * v + b);
                    }
                } else {
                    for (o, &v) in out.iter_mut().zip(src) {
                        *o = a * v + b;
                    }
                }
            });
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    fn bwd(
        &self,
        x: &Tensor,
        gamma: &Tensor,
        beta: &Tensor,
        _y: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let grad = grad.contiguous()?;
        let gamma_v = gamma.to_vec1::<f32>()?;
        let mask = if self.relu {
            Some(self.affine(&gamma_v, &beta.to_vec1()?))
        } else {
            None
        };
        let need_sums = gamma.track_op() || beta.track_op() || (self.batch_stats && x.track_op());
        let sums = if need_sums {
            let op = BnGradSums {
                shape: self.shape,
                mean: self.mean.clone(),
                invstd: self.invstd.clone(),
                mask: mask.clone(),
            };
            Some(grad.apply_op2_no_bwd(x, &op)?)
        } else {
            None
        };
        let grad_x = match (&sums, x.track_op()) {
            (_, false) => None,
            (Some(sums), true) if self.batch_stats => {
                let op = BnGradInput::batch_stats(self, &gamma_v, &sums.to_vec2()?, mask);
                Some(grad.apply_op2_no_bwd(x, &op)?)
            }
            _ => {
                let op = BnGradInput::fixed_stats(self, &gamma_v, mask);
                Some(grad.apply_op2_no_bwd(x, &op)?)
            }
        };
        let sum = |row| sums.as_ref().map(|s| s.get(row)).transpose();
        let grad_gamma = if gamma.track_op() { sum(1)? } else { None };
        let grad_beta = if beta.track_op() { sum(0)? } else { None };
        Ok((grad_x, grad_gamma, grad_beta))
    }
}

/// ReLU that keeps NaN (as PyTorch does) instead of mapping it to zero.
#[inline]
fn relu(v: f32) -> f32 {
    if v < 0.0 {
        0.0
    } else {
        v
    }
}

/// The gradient reaching batch norm's output when a fused ReLU follows:
/// `d` where the pre-activation `a * v + b` was positive, else zero.
#[inline]
fn gated(d: f32, v: f32, (a, b): (f32, f32)) -> f32 {
    if a * v + b > 0.0 {
        d
    } else {
        0.0
    }
}

/// The per-channel sums of the backward pass: `(dy, x)` -> `[2, C]`
/// holding `sum(g)` (beta's gradient) and `sum(g * xhat)` (gamma's), where
/// `g` is `dy`, masked by the fused ReLU's pre-activation `a * x + b > 0`
/// when there is one.
struct BnGradSums {
    shape: BnShape,
    mean: Vec<f32>,
    invstd: Vec<f32>,
    mask: Option<Vec<(f32, f32)>>,
}

impl CustomOp2 for BnGradSums {
    fn name(&self) -> &'static str {
        "ablate-batch-norm-grad-sums"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let sh = self.shape;
        let dy = dense_f32(s1, l1, self.name(), "grad")?;
        let x = dense_f32(s2, l2, self.name(), "input")?;
        let sums: Vec<(f32, f32)> = (0..sh.c)
            .into_par_iter()
            .map(|ch| {
                let m = self.mean[ch];
                let mut sum_g = 0.0f64;
                let mut sum_g_xc = 0.0f64;
                for (g, v) in sh.planes(dy, ch).zip(sh.planes(x, ch)) {
                    if let Some(mask) = &self.mask {
                        let ab = mask[ch];
                        sum_g += lane_sum2(g, v, |d, v| gated(d, v, ab));
                        sum_g_xc += lane_sum2(g, v, |d, v| gated(d, v, ab) * (v - m));
                    } else {
                        sum_g += lane_sum(g, |d| d);
                        sum_g_xc += lane_sum2(g, v, |d, v| d * (v - m));
                    }
                }
                (sum_g as f32, (sum_g_xc * self.invstd[ch] as f64) as f32)
            })
            .collect();
        let (sum_g, sum_g_xhat): (Vec<f32>, Vec<f32>) = sums.into_iter().unzip();
        Ok((
            CpuStorage::F32([sum_g, sum_g_xhat].concat()),
            Shape::from((2, sh.c)),
        ))
    }
}

/// The input gradient, `(dy, x)` -> `dx`, as `a * g + b * (x - mean) + c`
/// per channel (the closed form with its per-channel factors folded), with
/// `g` the possibly ReLU-masked output gradient as in [`BnGradSums`].
struct BnGradInput {
    shape: BnShape,
    mean: Vec<f32>,
    coef: Vec<[f32; 3]>,
    mask: Option<Vec<(f32, f32)>>,
}

impl BnGradInput {
    /// Training: folds `dx = gamma * invstd / m * (m * g - sum_g - xhat *
    /// sum_g_xhat)`, with `xhat = (x - mean) * invstd`, into three factors
    /// per channel.
    fn batch_stats(
        fwd: &BnNormalize,
        gamma: &[f32],
        sums: &[Vec<f32>],
        mask: Option<Vec<(f32, f32)>>,
    ) -> Self {
        let m = fwd.shape.count() as f64;
        let coef = (0..fwd.shape.c)
            .map(|ch| {
                let invstd = fwd.invstd[ch] as f64;
                let k = gamma[ch] as f64 * invstd / m;
                let (sum_g, sum_g_xhat) = (sums[0][ch] as f64, sums[1][ch] as f64);
                [
                    (k * m) as f32,
                    (-k * invstd * sum_g_xhat) as f32,
                    (-k * sum_g) as f32,
                ]
            })
            .collect();
        Self {
            shape: fwd.shape,
            mean: fwd.mean.clone(),
            coef,
            mask,
        }
    }

    /// Inference: the statistics are constants, so `dx = gamma * invstd * g`.
    fn fixed_stats(fwd: &BnNormalize, gamma: &[f32], mask: Option<Vec<(f32, f32)>>) -> Self {
        let coef = (0..fwd.shape.c)
            .map(|ch| [gamma[ch] * fwd.invstd[ch], 0.0, 0.0])
            .collect();
        Self {
            shape: fwd.shape,
            mean: fwd.mean.clone(),
            coef,
            mask,
        }
    }
}

impl CustomOp2 for BnGradInput {
    fn name(&self) -> &'static str {
        "ablate-batch-norm-grad-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let sh = self.shape;
        let dy = dense_f32(s1, l1, self.name(), "grad")?;
        let x = dense_f32(s2, l2, self.name(), "input")?;
        // SAFETY: as for the forward pass: every plane of `sh.s` elements is
        // written whole (its `dy` and `x` planes have the same length).
        let mut dx = unsafe { output_buffer(x.len()) };
        dx.par_chunks_mut(sh.s)
            .with_min_len(sh.min_planes())
            .enumerate()
            .for_each(|(q, out)| {
                let ch = q % sh.c;
                let ([a, b, c], m) = (self.coef[ch], self.mean[ch]);
                let (g, v) = (&dy[q * sh.s..][..sh.s], &x[q * sh.s..][..sh.s]);
                let values = out.iter_mut().zip(g).zip(v);
                if let Some(mask) = &self.mask {
                    let ab = mask[ch];
                    for ((o, &d), &v) in values {
                        *o = a * gated(d, v, ab) + b * (v - m) + c;
                    }
                } else {
                    for ((o, &d), &v) in values {
                        *o = a * d + b * (v - m) + c;
                    }
                }
            });
        Ok((CpuStorage::F32(dx), l2.shape().clone()))
    }
}

/// Training-mode batch norm from candle's generic ops: the fallback off the
/// CPU, and the reference the fused op is tested against.
fn generic_train(
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    eps: f64,
) -> Result<(Tensor, Tensor, Tensor)> {
    let rank = x.rank();
    let c = x.dim(1)?;
    let axes: Vec<usize> = (0..rank).filter(|&d| d != 1).collect();
    let mut bshape = vec![1; rank];
    bshape[1] = c;
    let mean = x.mean_keepdim(axes.as_slice())?;
    let centered = x.broadcast_sub(&mean)?;
    let var = centered.sqr()?.mean_keepdim(axes.as_slice())?;
    let y = centered
        .broadcast_div(&(&var + eps)?.sqrt()?)?
        .broadcast_mul(&gamma.reshape(bshape.as_slice())?)?
        .broadcast_add(&beta.reshape(bshape.as_slice())?)?;
    Ok((y, mean.flatten_all()?.detach(), var.flatten_all()?.detach()))
}

/// Inference-mode batch norm from candle's generic ops: the fallback off the
/// CPU, and the reference the fast path is tested against.
fn generic_eval(x: &Tensor, params: [&Tensor; 4], eps: f64, relu: bool) -> Result<Tensor> {
    let [gamma, beta, mean, var] = params;
    let mut bshape = vec![1; x.rank()];
    bshape[1] = x.dim(1)?;
    let scale = gamma.mul(&(var.detach() + eps)?.sqrt()?.recip()?)?;
    let shift = beta.sub(&mean.detach().mul(&scale)?)?;
    let y = x
        .broadcast_mul(&scale.reshape(bshape.as_slice())?)?
        .broadcast_add(&shift.reshape(bshape.as_slice())?)?;
    if relu {
        y.relu()
    } else {
        Ok(y)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{finite_diff_error, max_abs, max_abs_diff, seeded};
    use candle_core::{Device, Var};

    const EPS: f64 = 1e-5;

    /// Input shapes covering rank 4 (batch 1 and 3, odd channels), rank 3 and
    /// rank 2 (one value per sample and channel).
    const SHAPES: &[&[usize]] = &[
        &[3, 5, 9, 12],
        &[1, 3, 7, 7],
        &[4, 3, 5],
        &[6, 4],
        &[2, 7, 20, 20],
    ];

    struct Outcome {
        y: Tensor,
        mean: Tensor,
        var: Tensor,
        grads: [Tensor; 3],
    }

    type BnFn = fn(&Tensor, &Tensor, &Tensor, f64) -> Result<(Tensor, Tensor, Tensor)>;

    fn run(f: BnFn, x: &Tensor, gamma: &Tensor, beta: &Tensor, r: &Tensor) -> Outcome {
        let vars = [x, gamma, beta].map(|t| Var::from_tensor(t).unwrap());
        let (y, mean, var) = f(
            vars[0].as_tensor(),
            vars[1].as_tensor(),
            vars[2].as_tensor(),
            EPS,
        )
        .unwrap();
        let grads = (&y * r).unwrap().sum_all().unwrap().backward().unwrap();
        let grads = vars.map(|v| grads.get(v.as_tensor()).expect("gradient").clone());
        Outcome {
            y,
            mean,
            var,
            grads,
        }
    }

    /// Operands with a channel offset so the mean is far from zero, which
    /// would expose a cancelling variance formula.
    fn operands(dims: &[usize], seed: u64) -> (Tensor, Tensor, Tensor, Tensor) {
        let c = dims[1];
        let x = (seeded(dims, seed) * 2.0).unwrap();
        let mut bdims = vec![1; dims.len()];
        bdims[1] = c;
        let offset = Tensor::arange(0.0f32, c as f32, &Device::Cpu)
            .unwrap()
            .reshape(bdims)
            .unwrap();
        let x = x.broadcast_add(&(offset * 3.0).unwrap()).unwrap();
        let gamma = (seeded(&[c], seed + 1) + 1.5).unwrap();
        let beta = seeded(&[c], seed + 2);
        (x, gamma, beta, seeded(dims, seed + 3))
    }

    fn close(diff: f32, reference: &Tensor, tol: f32) -> bool {
        diff <= tol * (1.0 + max_abs(reference))
    }

    #[test]
    fn hand_computed_batch_norm() {
        // Channel 0 holds 1, 3 (mean 2, var 1); channel 1 holds 2, 6 (mean 4, var 4).
        let x = Tensor::new(&[[1.0f32, 2.0], [3.0, 6.0]], &Device::Cpu).unwrap();
        let gamma = Tensor::new(&[1.0f32, 2.0], &Device::Cpu).unwrap();
        let beta = Tensor::new(&[0.0f32, 1.0], &Device::Cpu).unwrap();
        let (y, mean, var) = batch_norm_train(&x, &gamma, &beta, 0.0).unwrap();
        assert_eq!(y.to_vec2::<f32>().unwrap(), [[-1.0, -1.0], [1.0, 3.0]]);
        assert_eq!(mean.to_vec1::<f32>().unwrap(), [2.0, 4.0]);
        assert_eq!(var.to_vec1::<f32>().unwrap(), [1.0, 4.0]);
    }

    #[test]
    fn matches_the_generic_formula_and_its_gradients() {
        for (i, dims) in SHAPES.iter().enumerate() {
            let (x, gamma, beta, r) = operands(dims, 300 + 10 * i as u64);
            let ours = run(batch_norm_train, &x, &gamma, &beta, &r);
            let theirs = run(generic_train, &x, &gamma, &beta, &r);
            let dy = max_abs_diff(&ours.y, &theirs.y);
            let dm = max_abs_diff(&ours.mean, &theirs.mean);
            let dv = max_abs_diff(&ours.var, &theirs.var);
            assert!(
                close(dy, &theirs.y, 1e-5) && close(dm, &theirs.mean, 1e-6),
                "{dims:?}: y {dy}, mean {dm}"
            );
            assert!(close(dv, &theirs.var, 1e-5), "{dims:?}: var {dv}");
            for (name, (a, b)) in ["x", "gamma", "beta"]
                .iter()
                .zip(ours.grads.iter().zip(&theirs.grads))
            {
                let d = max_abs_diff(a, b);
                eprintln!("{dims:?}: max |diff| y {dy:.2e}, d{name} {d:.2e}");
                assert!(close(d, b, 1e-4), "{dims:?}: d{name} differs by {d}");
            }
        }
    }

    fn generic_relu(
        x: &Tensor,
        g: &Tensor,
        b: &Tensor,
        eps: f64,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let (y, mean, var) = generic_train(x, g, b, eps)?;
        Ok((y.relu()?, mean, var))
    }

    #[test]
    fn fused_relu_matches_batch_norm_then_relu() {
        for (i, dims) in SHAPES.iter().enumerate() {
            let (x, gamma, beta, r) = operands(dims, 400 + 10 * i as u64);
            // Shift beta so that a good share of pre-activations is negative.
            let beta = (beta - 0.3).unwrap();
            let ours = run(batch_norm_relu_train, &x, &gamma, &beta, &r);
            let theirs = run(generic_relu, &x, &gamma, &beta, &r);
            let dy = max_abs_diff(&ours.y, &theirs.y);
            assert!(close(dy, &theirs.y, 1e-5), "{dims:?}: y {dy}");
            let zeros = ours
                .y
                .eq(0.0)
                .unwrap()
                .to_dtype(DType::F32)
                .unwrap()
                .mean_all()
                .unwrap();
            let zeros = zeros.to_scalar::<f32>().unwrap();
            assert!(
                zeros > 0.2 && zeros < 0.8,
                "{dims:?}: {zeros} of outputs clipped"
            );
            for (name, (a, b)) in ["x", "gamma", "beta"]
                .iter()
                .zip(ours.grads.iter().zip(&theirs.grads))
            {
                let d = max_abs_diff(a, b);
                eprintln!("{dims:?} relu: max |diff| y {dy:.2e}, d{name} {d:.2e}");
                assert!(close(d, b, 1e-4), "{dims:?}: d{name} differs by {d}");
            }
            let f = |a: &[Tensor]| Ok(batch_norm_relu_train(&a[0], &a[1], &a[2], EPS)?.0);
            let inputs = [x, gamma, beta];
            for (which, name) in ["x", "gamma", "beta"].iter().enumerate() {
                let err = finite_diff_error(&f, &inputs, which, &r, &ours.grads[which], 8, 1e-3);
                let tol = 1e-2 * (1.0 + max_abs(&ours.grads[which]));
                assert!(err < tol, "{dims:?} relu: d{name} off by {err}");
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        for (i, dims) in SHAPES.iter().enumerate() {
            let (x, gamma, beta, r) = operands(dims, 700 + 10 * i as u64);
            let ours = run(batch_norm_train, &x, &gamma, &beta, &r);
            let f = |a: &[Tensor]| Ok(batch_norm_train(&a[0], &a[1], &a[2], EPS)?.0);
            let inputs = [x, gamma, beta];
            for (which, name) in ["x", "gamma", "beta"].iter().enumerate() {
                let err = finite_diff_error(&f, &inputs, which, &r, &ours.grads[which], 8, 1e-2);
                eprintln!("{dims:?}: finite differences max |err| d{name} {err:.2e}");
                assert!(
                    err < 5e-3 * (1.0 + max_abs(&ours.grads[which])),
                    "{dims:?}: d{name} off by {err}"
                );
            }
        }
    }

    #[test]
    fn eval_mode_uses_running_statistics() {
        let x = Tensor::new(&[[1.0f32, 2.0], [3.0, 6.0]], &Device::Cpu).unwrap();
        let gamma = Tensor::new(&[1.0f32, 2.0], &Device::Cpu).unwrap();
        let beta = Tensor::new(&[0.0f32, 1.0], &Device::Cpu).unwrap();
        let rm = Tensor::new(&[1.0f32, 2.0], &Device::Cpu).unwrap();
        let rv = Tensor::new(&[4.0f32, 1.0], &Device::Cpu).unwrap();
        // Channel 0: (x - 1) / 2; channel 1: 2 * (x - 2) + 1.
        let y = batch_norm_eval(&x, &gamma, &beta, &rm, &rv, 0.0).unwrap();
        assert_eq!(y.to_vec2::<f32>().unwrap(), [[0.0, 1.0], [1.0, 9.0]]);
        // With beta0 = -0.5 channel 0 becomes (x - 1) / 2 - 0.5: -0.5 and 0.5.
        let beta = Tensor::new(&[-0.5f32, 1.0], &Device::Cpu).unwrap();
        let y = batch_norm_relu_eval(&x, &gamma, &beta, &rm, &rv, 0.0).unwrap();
        assert_eq!(y.to_vec2::<f32>().unwrap(), [[0.0, 1.0], [0.5, 9.0]]);
        // A single sample with one value per channel is fine at inference.
        let one = Tensor::new(&[[3.0f32, 6.0]], &Device::Cpu).unwrap();
        let y = batch_norm_eval(&one, &gamma, &beta, &rm, &rv, 0.0).unwrap();
        assert_eq!(y.to_vec2::<f32>().unwrap(), [[0.5, 9.0]]);
    }

    #[test]
    fn eval_matches_the_op_chain_and_its_gradients() {
        let dims = [3, 5, 6, 7];
        let (x, gamma, beta, r) = operands(&dims, 60);
        // Running statistics near the batch's, so the ReLU clips some outputs.
        let rm = (Tensor::arange(0.0f32, 5.0, &Device::Cpu).unwrap() * 3.0).unwrap();
        let rv = (seeded(&[5], 62).abs().unwrap() + 0.5).unwrap();
        for fused in [false, true] {
            let vars = [&x, &gamma, &beta].map(|t| Var::from_tensor(t).unwrap());
            let [xv, gv, bv] = vars.each_ref().map(|v| v.as_tensor());
            let f = if fused {
                batch_norm_relu_eval
            } else {
                batch_norm_eval
            };
            let fast = f(xv, gv, bv, &rm, &rv, EPS).unwrap();
            let chain = generic_eval(xv, [gv, bv, &rm, &rv], EPS, fused).unwrap();
            let dy = max_abs_diff(&fast, &chain);
            assert!(close(dy, &chain, 1e-5), "fused {fused}: y {dy}");
            let grads = |y: &Tensor| {
                let g = (y * &r).unwrap().sum_all().unwrap().backward().unwrap();
                vars.each_ref()
                    .map(|v| g.get(v.as_tensor()).expect("gradient").clone())
            };
            for (a, b) in grads(&fast).iter().zip(&grads(&chain)) {
                let d = max_abs_diff(a, b);
                assert!(close(d, b, 1e-5), "fused {fused}: gradient differs by {d}");
            }
        }
    }

    #[test]
    fn running_update_unbiases_the_variance() {
        let ones = Tensor::new(&[1.0f32], &Device::Cpu).unwrap();
        let batch_mean = Tensor::new(&[3.0f32], &Device::Cpu).unwrap();
        let batch_var = Tensor::new(&[2.0f32], &Device::Cpu).unwrap();
        // 5 values per channel: unbiased var 2 * 5 / 4 = 2.5.
        let (m, v) = running_stats_update(&ones, &ones, &batch_mean, &batch_var, 5, 0.1).unwrap();
        let (m, v) = (
            m.to_vec1::<f32>().unwrap()[0],
            v.to_vec1::<f32>().unwrap()[0],
        );
        assert!((m - 1.2).abs() < 1e-6 && (v - 1.15).abs() < 1e-6, "{m} {v}");
    }

    #[test]
    fn rejects_bad_shapes() {
        let x = seeded(&[2, 3, 4, 4], 1);
        let p = seeded(&[4], 2);
        let err = batch_norm_train(&x, &p, &p, EPS).unwrap_err().to_string();
        assert!(
            err.contains("[2, 3, 4, 4]") && err.contains("gamma"),
            "{err}"
        );
        let one = seeded(&[1, 3], 3);
        let g = seeded(&[3], 4);
        assert!(batch_norm_train(&one, &g, &g, EPS).is_err());
    }
}
