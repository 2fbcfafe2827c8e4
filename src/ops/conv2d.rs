//! 2-D convolution (NCHW, f32, no bias, dilation 1, one group) as a candle
//! custom op whose forward pass and both backward passes are im2col/col2im
//! plus one GEMM per chunk of images.
//!
//! Images are lowered in chunks: deep layers with few output pixels stack
//! several images side by side in one im2col matrix so each GEMM is wide
//! enough to reuse the weight matrix; shallow layers lower one image at a
//! time and write the GEMM result straight into the output. Parallelism comes
//! from the GEMM (over candle's threads) and from rayon over the rows of
//! im2col and the planes of col2im.
//!
//! Thin layers (see [`direct_conv::suits_forward`]) skip the lowering on
//! CPUs with AVX-512: their forward pass, weight gradient and, at stride 1,
//! input gradient (a forward convolution with flipped kernels) run the
//! direct kernels of [`super::direct_conv`].

use super::conv2d_portable;
use super::cpu::{dense_f32, output_buffer};
use super::direct_conv::{self, Isa};
use super::gemm::{matmul, Mat, MatMut};
use super::geometry::ConvGeometry;
use super::im2col::{batch_to_blocks, blocks_to_batch, col2im, im2col};
use super::scratch::with_scratch;
use super::winograd;
use candle_core::{CpuStorage, CustomOp2, DType, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

/// Output pixels per GEMM for the forward and input-gradient products.
const TARGET_COLS: usize = 2048;
/// Output pixels per GEMM for the weight gradient, whose reduction runs over
/// them: a deeper reduction amortizes each read-modify-write of the gradient.
const WEIGHT_GRAD_TARGET_COLS: usize = 4096;

/// 2-D convolution of `input` (`[n, c, h, w]`) with `weight` (`[k, c, kh, kw]`),
/// stride and zero padding applied to both spatial axes; output `[n, k, oh, ow]`.
///
/// Same result and gradients as `input.conv2d(weight, padding, stride, 1, 1)`
/// (note the argument order: stride before padding, as in PyTorch's layer
/// constructors). On the CPU with f32 operands it runs the im2col/GEMM custom
/// op with its own backward pass; on CUDA, candle's forward convolution with
/// GEMM-based gradients from [`super::conv2d_portable`]; elsewhere candle's
/// `Tensor::conv2d`. Unlike candle 0.11.1's conv2d backward, both also
/// differentiate strided convolutions of non-square inputs whose height and
/// width leave different remainders.
pub fn conv2d(input: &Tensor, weight: &Tensor, stride: usize, padding: usize) -> Result<Tensor> {
    let cpu_f32 =
        input.device().is_cpu() && input.dtype() == DType::F32 && weight.dtype() == DType::F32;
    if !cpu_f32 {
        if input.device().is_cuda() && conv2d_portable::supports(input.dtype()) {
            return conv2d_portable::conv2d_portable(input, weight, stride, padding);
        }
        return input.conv2d(weight, padding, stride, 1, 1);
    }
    // Validate here so a shape error names the user's shapes, not an op's.
    ConvGeometry::new(input.dims(), weight.dims(), stride, padding)?;
    input.contiguous()?.apply_op2(
        &weight.contiguous()?,
        Conv2dForward {
            stride,
            padding,
            epilogue: None,
        },
    )
}

/// `conv2d` followed by an inference-mode batch norm given as its per-channel
/// `(scale, shift)` (see [`super::batch_norm_eval_affine`]) and optionally a
/// ReLU, in one op: the affine map runs on each chunk of the convolution's
/// output right after its GEMM instead of as a separate pass over a new
/// tensor. Values are bit-identical to the three ops in sequence.
///
/// Gradients reach `input` and `weight` (the affine map and the ReLU mask
/// are applied to the output gradient); the batch-norm parameters get none,
/// as is usual for inference-mode batch norm. Returns `None` where the fused
/// op does not run (not CPU f32): the caller then runs the ops one by one.
pub fn conv2d_bn_eval(
    input: &Tensor,
    weight: &Tensor,
    stride: usize,
    padding: usize,
    affine: Vec<(f32, f32)>,
    relu: bool,
) -> Result<Option<Tensor>> {
    let cpu_f32 =
        input.device().is_cpu() && input.dtype() == DType::F32 && weight.dtype() == DType::F32;
    if !cpu_f32 {
        return Ok(None);
    }
    let g = ConvGeometry::new(input.dims(), weight.dims(), stride, padding)?;
    if affine.len() != g.k {
        return Err(candle_core::Error::Msg(format!(
            "conv2d_bn_eval: {} batch-norm channels for a convolution with {} outputs",
            affine.len(),
            g.k
        )));
    }
    let op = Conv2dForward {
        stride,
        padding,
        epilogue: Some(Epilogue { affine, relu }),
    };
    input
        .contiguous()?
        .apply_op2(&weight.contiguous()?, op)
        .map(Some)
}

/// The forward custom op (input, weight) -> output, optionally followed by
/// an inference-mode batch norm (and ReLU) on each output chunk.
struct Conv2dForward {
    stride: usize,
    padding: usize,
    epilogue: Option<Epilogue>,
}

impl CustomOp2 for Conv2dForward {
    fn name(&self) -> &'static str {
        "ablate-conv2d"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = ConvGeometry::new(l1.dims(), l2.dims(), self.stride, self.padding)?;
        let x = dense_f32(s1, l1, self.name(), "input")?;
        let w = dense_f32(s2, l2, self.name(), "weight")?;
        Ok((
            CpuStorage::F32(forward(&g, x, w, self.epilogue.as_ref())),
            Shape::from(g.out_dims().to_vec()),
        ))
    }

    fn bwd(
        &self,
        input: &Tensor,
        weight: &Tensor,
        out: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let Some(epilogue) = &self.epilogue else {
            return conv_grads(self.stride, self.padding, input, weight, grad);
        };
        // Through the ReLU mask and the per-channel scale to the convolution.
        let grad = if epilogue.relu {
            super::relu::relu_grad(grad, out)?
        } else {
            grad.clone()
        };
        let scale: Vec<f32> = epilogue.affine.iter().map(|&(a, _)| a).collect();
        let scale = Tensor::from_vec(scale, (1, epilogue.affine.len(), 1, 1), grad.device())?;
        conv_grads(
            self.stride,
            self.padding,
            input,
            weight,
            &grad.broadcast_mul(&scale)?,
        )
    }
}

/// Gradients of input and weight from the output gradient `grad`.
fn conv_grads(
    stride: usize,
    padding: usize,
    input: &Tensor,
    weight: &Tensor,
    grad: &Tensor,
) -> Result<(Option<Tensor>, Option<Tensor>)> {
    let grad = grad.contiguous()?;
    // The network's input image needs no gradient; skipping it saves the
    // largest col2im of the whole backward pass.
    let grad_input = if input.track_op() {
        let op = Conv2dInputGrad {
            stride,
            padding,
            input: input.dims().to_vec(),
        };
        Some(grad.apply_op2_no_bwd(weight, &op)?)
    } else {
        None
    };
    let grad_weight = if weight.track_op() {
        let op = Conv2dWeightGrad {
            stride,
            padding,
            weight: weight.dims().to_vec(),
        };
        Some(input.apply_op2_no_bwd(&grad, &op)?)
    } else {
        None
    };
    Ok((grad_input, grad_weight))
}

/// The input-gradient op (grad of output, weight) -> grad of input.
struct Conv2dInputGrad {
    stride: usize,
    padding: usize,
    input: Vec<usize>,
}

impl CustomOp2 for Conv2dInputGrad {
    fn name(&self) -> &'static str {
        "ablate-conv2d-grad-input"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = ConvGeometry::new(&self.input, l2.dims(), self.stride, self.padding)?;
        check_grad_dims(&g, l1.dims(), self.name())?;
        let dy = dense_f32(s1, l1, self.name(), "grad")?;
        let w = dense_f32(s2, l2, self.name(), "weight")?;
        Ok((
            CpuStorage::F32(input_grad(&g, dy, w)),
            Shape::from(self.input.clone()),
        ))
    }
}

/// The weight-gradient op (input, grad of output) -> grad of weight.
struct Conv2dWeightGrad {
    stride: usize,
    padding: usize,
    weight: Vec<usize>,
}

impl CustomOp2 for Conv2dWeightGrad {
    fn name(&self) -> &'static str {
        "ablate-conv2d-grad-weight"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = ConvGeometry::new(l1.dims(), &self.weight, self.stride, self.padding)?;
        check_grad_dims(&g, l2.dims(), self.name())?;
        let x = dense_f32(s1, l1, self.name(), "input")?;
        let dy = dense_f32(s2, l2, self.name(), "grad")?;
        Ok((
            CpuStorage::F32(weight_grad(&g, x, dy)),
            Shape::from(self.weight.clone()),
        ))
    }
}

fn check_grad_dims(g: &ConvGeometry, dims: &[usize], op: &'static str) -> Result<()> {
    if dims == g.out_dims() {
        Ok(())
    } else {
        Err(candle_core::Error::ShapeMismatchBinaryOp {
            lhs: Shape::from(dims.to_vec()),
            rhs: Shape::from(g.out_dims().to_vec()),
            op,
        })
    }
}

/// The chunks `(first image, images)` a batch of `n` is lowered in.
fn chunks(n: usize, per_chunk: usize) -> impl Iterator<Item = (usize, usize)> {
    (0..n)
        .step_by(per_chunk)
        .map(move |n0| (n0, per_chunk.min(n - n0)))
}

/// Floats of scratch for `rows x (images_per_chunk * out_pixels)` unless
/// the chunk needs no such buffer (`needed` false).
fn buffer_len(g: &ConvGeometry, rows: usize, per_chunk: usize, needed: bool) -> usize {
    if needed {
        rows * per_chunk * g.out_pixels()
    } else {
        0
    }
}

/// Forward pass: the direct kernel for thin layers, Winograd tiles for
/// the 3x3 stride-1 layers [`winograd::choose`] picks, else
/// `out[b] = weight[k, patch] x im2col(x[b])` per chunk.
fn forward(g: &ConvGeometry, x: &[f32], w: &[f32], epilogue: Option<&Epilogue>) -> Vec<f32> {
    let isa = Isa::detect();
    let whole = if direct_conv::suits_forward(g, isa) {
        // SAFETY: the direct kernel writes every output pixel before the
        // epilogue or anything else reads `out`.
        let mut out = unsafe { output_buffer(g.n * g.k * g.out_pixels()) };
        direct_conv::forward(g, x, w, &mut out, isa);
        Some(out)
    } else {
        winograd::choose(g).map(|variant| winograd::forward(g, x, w, variant))
    };
    match whole {
        Some(mut out) => {
            if let Some(epilogue) = epilogue {
                epilogue.apply(&mut out, g.k, g.out_pixels());
            }
            out
        }
        None => forward_lowered(g, x, w, epilogue),
    }
}

/// Forward pass: `out[b] = weight[k, patch] x im2col(x[b])` per chunk.
fn forward_lowered(
    g: &ConvGeometry,
    x: &[f32],
    w: &[f32],
    epilogue: Option<&Epilogue>,
) -> Vec<f32> {
    let (p, pl, chw) = (g.out_pixels(), g.patch_len(), g.c * g.in_pixels());
    let per_chunk = g.images_per_chunk(TARGET_COLS);
    let direct = g.is_pointwise() && per_chunk == 1;
    let col_len = buffer_len(g, pl, per_chunk, !direct);
    let stacked_len = buffer_len(g, g.k, per_chunk, per_chunk > 1);
    let weight = Mat::dense(w, g.k, pl);
    // SAFETY: the chunks cover all `g.n` images, and every chunk's GEMM
    // (without accumulation, so it does not read its destination) or its
    // stacking writes its whole slice before anything reads `out`.
    let mut out = unsafe { output_buffer(g.n * g.k * p) };
    with_scratch(col_len, stacked_len, |col, stacked| {
        for (n0, nb) in chunks(g.n, per_chunk) {
            let cols = nb * p;
            let col_mat = if direct {
                Mat::dense(&x[n0 * chw..][..chw], pl, p)
            } else {
                im2col(g, x, n0, nb, &mut col[..pl * cols]);
                Mat::dense(col, pl, cols)
            };
            let out_chunk = &mut out[n0 * g.k * p..][..nb * g.k * p];
            if nb == 1 {
                matmul(MatMut::dense(out_chunk, g.k, p), weight, col_mat, false);
            } else {
                let stacked = &mut stacked[..g.k * cols];
                matmul(MatMut::dense(stacked, g.k, cols), weight, col_mat, false);
                blocks_to_batch(stacked, g.k, p, nb, out_chunk);
            }
            if let Some(epilogue) = epilogue {
                // While the chunk is still in cache.
                epilogue.apply(out_chunk, g.k, p);
            }
        }
    });
    out
}

/// A per-output-channel affine map, optionally followed by ReLU, applied to
/// a convolution's output: an inference-mode batch norm folded into the
/// convolution.
struct Epilogue {
    /// `(scale, shift)` per output channel.
    affine: Vec<(f32, f32)>,
    relu: bool,
}

impl Epilogue {
    /// `out` holds whole images of `channels` planes of `p` pixels.
    fn apply(&self, out: &mut [f32], channels: usize, p: usize) {
        out.par_chunks_mut(p).enumerate().for_each(|(q, plane)| {
            let (a, b) = self.affine[q % channels];
            for v in plane.iter_mut() {
                let y = a * *v + b;
                *v = if self.relu && y < 0.0 { 0.0 } else { y };
            }
        });
    }
}

/// The output gradient of images `n0..n0 + nb` as a `[k, nb * p]` matrix,
/// borrowed when `nb == 1` and copied into `buf` otherwise.
fn grad_blocks<'a>(
    g: &ConvGeometry,
    dy: &'a [f32],
    n0: usize,
    nb: usize,
    buf: &'a mut [f32],
) -> Mat<'a> {
    let (p, kp) = (g.out_pixels(), g.k * g.out_pixels());
    let src = &dy[n0 * kp..][..nb * kp];
    if nb == 1 {
        return Mat::dense(src, g.k, p);
    }
    let buf = &mut buf[..nb * kp];
    batch_to_blocks(src, g.k, p, nb, buf);
    Mat::dense(buf, g.k, nb * p)
}

/// Input gradient: `col2im(weight^T x grad)` per chunk, or for thin
/// stride-1 layers the direct forward kernel (see [`transposed_geometry`]),
/// or for the layers whose forward pass runs Winograd tiles the Winograd
/// convolution of the gradient with the flipped kernels.
fn input_grad(g: &ConvGeometry, dy: &[f32], w: &[f32]) -> Vec<f32> {
    let isa = Isa::detect();
    if let Some(gt) = transposed_geometry(g) {
        if direct_conv::suits_forward(&gt, isa) {
            // SAFETY: the direct kernel writes every output pixel (here
            // every input pixel of `g`) before `dx` is returned.
            let mut dx = unsafe { output_buffer(g.n * g.c * g.in_pixels()) };
            direct_conv::forward(&gt, dy, &flipped_kernels(g, w), &mut dx, isa);
            return dx;
        }
    }
    if let Some(variant) = winograd::choose(g) {
        return winograd::input_grad(g, dy, w, variant);
    }
    input_grad_lowered(g, dy, w)
}

/// Input gradient: `col2im(weight^T x grad)` per chunk.
fn input_grad_lowered(g: &ConvGeometry, dy: &[f32], w: &[f32]) -> Vec<f32> {
    let (p, pl, chw) = (g.out_pixels(), g.patch_len(), g.c * g.in_pixels());
    let per_chunk = g.images_per_chunk(TARGET_COLS);
    let direct = g.is_pointwise() && per_chunk == 1;
    let dcol_len = buffer_len(g, pl, per_chunk, !direct);
    let dy_len = buffer_len(g, g.k, per_chunk, per_chunk > 1);
    let weight_t = Mat::dense(w, g.k, pl).t();
    // SAFETY: the chunks cover all `g.n` images, and the GEMM (pointwise,
    // without accumulation) or col2im writes every image plane whole
    // before `dx` is returned.
    let mut dx = unsafe { output_buffer(g.n * chw) };
    with_scratch(dcol_len, dy_len, |dcol, dy_buf| {
        for (n0, nb) in chunks(g.n, per_chunk) {
            let grad = grad_blocks(g, dy, n0, nb, dy_buf);
            let dx_chunk = &mut dx[n0 * chw..][..nb * chw];
            if direct {
                matmul(MatMut::dense(dx_chunk, pl, p), weight_t, grad, false);
            } else {
                let dcol = &mut dcol[..pl * nb * p];
                matmul(MatMut::dense(dcol, pl, nb * p), weight_t, grad, false);
                col2im(g, dcol, nb, dx_chunk);
            }
        }
    });
    dx
}

/// The input gradient of a stride-1 convolution is a forward convolution:
/// the output gradient convolved with [`flipped_kernels`], padded by
/// `kernel - 1 - padding`. Its geometry, or `None` for strided
/// convolutions, non-square kernels and paddings as wide as the kernel.
fn transposed_geometry(g: &ConvGeometry) -> Option<ConvGeometry> {
    if g.stride != 1 || g.kh != g.kw || g.padding >= g.kh {
        return None;
    }
    let padding = g.kh - 1 - g.padding;
    let gt = ConvGeometry::new(&g.out_dims(), &[g.c, g.k, g.kh, g.kw], 1, padding).ok()?;
    debug_assert_eq!((gt.oh, gt.ow), (g.h, g.w));
    Some(gt)
}

/// The kernels `w` (`[k, c, kh, kw]`) flipped in both spatial axes with
/// input and output channels swapped: `[c, k, kh, kw]`.
fn flipped_kernels(g: &ConvGeometry, w: &[f32]) -> Vec<f32> {
    let taps = g.kh * g.kw;
    let mut flipped = vec![0.0; w.len()];
    for k in 0..g.k {
        for c in 0..g.c {
            let src = &w[(k * g.c + c) * taps..][..taps];
            let dst = &mut flipped[(c * g.k + k) * taps..][..taps];
            for (d, &value) in dst.iter_mut().zip(src.iter().rev()) {
                *d = value;
            }
        }
    }
    flipped
}

/// Weight gradient: the direct kernel for thin layers, Winograd tiles where
/// the forward pass runs them, else [`weight_grad_lowered`].
fn weight_grad(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    if g.n == 0 {
        return vec![0.0; g.k * g.patch_len()];
    }
    let isa = Isa::detect();
    if direct_conv::suits_weight_grad(g, isa) {
        return direct_conv::weight_grad(g, x, dy, isa);
    }
    if let Some(variant) = winograd::choose(g) {
        return winograd::weight_grad(g, x, dy, variant);
    }
    weight_grad_lowered(g, x, dy)
}

/// Weight gradient: `grad x im2col(x)^T` per chunk, summed over chunks.
///
/// Both factors are contiguous along the reduction (pixel) axis, which the
/// GEMM packs slowly (one strided stream per row of a wide AVX-512 panel).
/// So the gradient block is transposed into pixel-major order first (it is
/// the smaller factor), the product is formed as `dW^T = im2col(x) x grad^T`
/// with every operand in the layout the GEMM streams, and `dW^T` is
/// transposed once at the end.
fn weight_grad_lowered(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (p, pl, chw) = (g.out_pixels(), g.patch_len(), g.c * g.in_pixels());
    let per_chunk = g.images_per_chunk(WEIGHT_GRAD_TARGET_COLS);
    let direct = g.is_pointwise() && per_chunk == 1;
    let col_len = buffer_len(g, pl, per_chunk, !direct);
    let dy_len = buffer_len(g, g.k, per_chunk, true);
    // SAFETY: `g.n > 0`, so there is a first chunk; its GEMM writes all of
    // `dw_t` without reading it, and only later ones accumulate.
    let mut dw_t = unsafe { output_buffer(pl * g.k) };
    with_scratch(col_len, dy_len, |col, dy_t| {
        for (i, (n0, nb)) in chunks(g.n, per_chunk).enumerate() {
            let cols = nb * p;
            let col_mat = if direct {
                Mat::dense(&x[n0 * chw..][..chw], pl, p)
            } else {
                im2col(g, x, n0, nb, &mut col[..pl * cols]);
                Mat::dense(col, pl, cols)
            };
            let dy_t = &mut dy_t[..cols * g.k];
            pixels_major(&dy[n0 * g.k * p..][..nb * g.k * p], g.k, p, dy_t);
            matmul(
                MatMut::dense(&mut dw_t, pl, g.k),
                col_mat,
                Mat::dense(dy_t, cols, g.k),
                i > 0,
            );
        }
    });
    // `dw_t` is `pl x k`; as one "image" of `pl` channels by `k` pixels,
    // its pixel-major form is `dw` (`k x pl`).
    // SAFETY: `pixels_major` writes every element of its destination (one
    // image of `pl` channels by `g.k` pixels) before `dw` is returned.
    let mut dw = unsafe { output_buffer(g.k * pl) };
    pixels_major(&dw_t, pl, g.k, &mut dw);
    dw
}

/// Rewrites `nb` images of `channels x p` values (NCHW order) as one
/// `nb * p x channels` matrix: row `b * p + pixel` holds that pixel's
/// channels.
fn pixels_major(src: &[f32], channels: usize, p: usize, dst: &mut [f32]) {
    /// Side of the square blocks transposed at a time: one block's reads
    /// and writes both stay within a few cache lines.
    const BLOCK: usize = 8;
    debug_assert_eq!(src.len(), dst.len());
    dst.par_chunks_mut(channels * p)
        .zip(src.par_chunks(channels * p))
        .for_each(|(out, image)| {
            for p0 in (0..p).step_by(BLOCK) {
                let pixels = p0..(p0 + BLOCK).min(p);
                for c0 in (0..channels).step_by(BLOCK) {
                    for c in c0..(c0 + BLOCK).min(channels) {
                        let column = &image[c * p..][pixels.clone()];
                        for (pixel, &value) in pixels.clone().zip(column) {
                            out[pixel * channels + c] = value;
                        }
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{
        close, conv_operands as operands, finite_diff_error, max_abs_diff, run_conv as run, seeded,
        ConvCase as Case, CONV_CASES as CASES,
    };
    use candle_core::{Device, Var};

    /// Whether candle 0.11.1's conv2d backward handles the case: it derives
    /// the transposed convolution's output padding from the height alone, so
    /// with stride > 1 it fails when height and width leave different
    /// remainders. Those cases are checked by finite differences only.
    fn candle_backward_works(cs: &Case) -> bool {
        let g = ConvGeometry::new(
            &[cs.n, cs.c, cs.h, cs.w],
            &[cs.k, cs.c, cs.kh, cs.kw],
            cs.stride,
            cs.padding,
        )
        .unwrap();
        let reach = |o: usize, k: usize| (o - 1) * cs.stride + k - 2 * cs.padding;
        cs.h - reach(g.oh, cs.kh) == cs.w - reach(g.ow, cs.kw)
    }

    #[test]
    fn candle_backward_fails_where_expected() {
        let cs = CASES[2];
        assert!(!candle_backward_works(&cs));
        let (x, w, r) = operands(&cs, 50);
        let (xv, wv) = (Var::from_tensor(&x).unwrap(), Var::from_tensor(&w).unwrap());
        let y = xv
            .conv2d(wv.as_tensor(), cs.padding, cs.stride, 1, 1)
            .unwrap();
        assert!((&y * &r).unwrap().sum_all().unwrap().backward().is_err());
    }

    #[test]
    fn matches_candle_forward_and_gradients() {
        for (i, cs) in CASES.iter().enumerate() {
            let (x, w, r) = operands(cs, 100 + 10 * i as u64);
            if !candle_backward_works(cs) {
                let ours = conv2d(&x, &w, cs.stride, cs.padding).unwrap();
                let theirs = x.conv2d(&w, cs.padding, cs.stride, 1, 1).unwrap();
                let dy = max_abs_diff(&ours, &theirs);
                eprintln!("{cs:?}: max |diff| y {dy:.2e} (candle has no backward here)");
                assert!(close(dy, &theirs), "{cs:?}: output differs by {dy}");
                continue;
            }
            let ours = run(|x, w| conv2d(x, w, cs.stride, cs.padding), &x, &w, &r);
            let theirs = run(|x, w| x.conv2d(w, cs.padding, cs.stride, 1, 1), &x, &w, &r);
            let dy = max_abs_diff(&ours.y, &theirs.y);
            let dx = max_abs_diff(&ours.grad_x, &theirs.grad_x);
            let dw = max_abs_diff(&ours.grad_w, &theirs.grad_w);
            eprintln!("{cs:?}: max |diff| y {dy:.2e}, dx {dx:.2e}, dw {dw:.2e}");
            assert!(close(dy, &theirs.y), "{cs:?}: output differs by {dy}");
            assert!(
                close(dx, &theirs.grad_x),
                "{cs:?}: input gradient differs by {dx}"
            );
            assert!(
                close(dw, &theirs.grad_w),
                "{cs:?}: weight gradient differs by {dw}"
            );
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        for (i, cs) in CASES.iter().enumerate() {
            let (x, w, r) = operands(cs, 500 + 10 * i as u64);
            let ours = run(|x, w| conv2d(x, w, cs.stride, cs.padding), &x, &w, &r);
            let f = |args: &[Tensor]| conv2d(&args[0], &args[1], cs.stride, cs.padding);
            let inputs = [x, w];
            // The loss is linear in each operand, so only rounding remains,
            // and a wide step keeps it small next to the step: Winograd
            // tiles round every output a perturbed input or weight reaches
            // differently (about 1e-5 each for F(4x4)), which a step of 1e-2
            // would magnify to a few 1e-3.
            let ex = finite_diff_error(&f, &inputs, 0, &r, &ours.grad_x, 8, 0.25);
            let ew = finite_diff_error(&f, &inputs, 1, &r, &ours.grad_w, 8, 0.25);
            eprintln!("{cs:?}: finite differences max |err| dx {ex:.2e}, dw {ew:.2e}");
            assert!(
                ex < 2e-3 && ew < 2e-3,
                "{cs:?}: finite differences off by {ex} / {ew}"
            );
        }
    }

    #[test]
    fn batch_norm_folded_into_the_convolution_is_bit_identical() {
        for (i, cs) in CASES.iter().enumerate() {
            let (x, w, r) = operands(cs, 700 + 10 * i as u64);
            let k = cs.k;
            let gamma = seeded(&[k], 1);
            let beta = seeded(&[k], 2);
            let mean = seeded(&[k], 3);
            let var = (seeded(&[k], 4).abs().unwrap() + 0.5).unwrap();
            for relu in [false, true] {
                let affine =
                    crate::ops::batch_norm_eval_affine(&gamma, &beta, &mean, &var, 1e-5).unwrap();
                let fused = |x: &Tensor, w: &Tensor| {
                    conv2d_bn_eval(x, w, cs.stride, cs.padding, affine.clone(), relu)
                        .map(|y| y.expect("CPU f32 runs fused"))
                };
                let separate = |x: &Tensor, w: &Tensor| {
                    let y = conv2d(x, w, cs.stride, cs.padding)?;
                    match relu {
                        true => {
                            crate::ops::batch_norm_relu_eval(&y, &gamma, &beta, &mean, &var, 1e-5)
                        }
                        false => crate::ops::batch_norm_eval(&y, &gamma, &beta, &mean, &var, 1e-5),
                    }
                };
                let ours = run(fused, &x, &w, &r);
                let theirs = run(separate, &x, &w, &r);
                let flat = |t: &Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
                assert_eq!(flat(&ours.y), flat(&theirs.y), "{cs:?} relu {relu}: values");
                let dx = max_abs_diff(&ours.grad_x, &theirs.grad_x);
                let dw = max_abs_diff(&ours.grad_w, &theirs.grad_w);
                assert!(
                    close(dx, &theirs.grad_x) && close(dw, &theirs.grad_w),
                    "{cs:?} relu {relu}: gradients differ by {dx} / {dw}"
                );
            }
        }
    }

    #[test]
    fn shared_cases_reach_every_direct_kernel() {
        // On AVX-512 CPUs the candle and finite-difference tests above then
        // run the direct forward, weight-gradient and input-gradient paths.
        let geometries: Vec<ConvGeometry> = CASES
            .iter()
            .map(|cs| {
                let (input, weight) = ([cs.n, cs.c, cs.h, cs.w], [cs.k, cs.c, cs.kh, cs.kw]);
                ConvGeometry::new(&input, &weight, cs.stride, cs.padding).unwrap()
            })
            .collect();
        let isa = Isa::Avx512;
        assert!(geometries
            .iter()
            .any(|g| direct_conv::suits_forward(g, isa)));
        assert!(geometries
            .iter()
            .any(|g| direct_conv::suits_weight_grad(g, isa) && g.stride > 1));
        assert!(geometries.iter().any(|g| {
            transposed_geometry(g).is_some_and(|gt| direct_conv::suits_forward(&gt, isa))
        }));
    }

    #[test]
    fn shared_cases_reach_both_winograd_tilings() {
        // The candle, finite-difference and batch-norm tests above then run
        // the Winograd forward pass and both gradients through the op.
        let chosen: Vec<_> = CASES
            .iter()
            .filter_map(|cs| {
                let (input, weight) = ([cs.n, cs.c, cs.h, cs.w], [cs.k, cs.c, cs.kh, cs.kw]);
                winograd::choose(&ConvGeometry::new(&input, &weight, cs.stride, cs.padding).ok()?)
            })
            .collect();
        assert!(chosen.contains(&winograd::Variant::F2));
        assert!(chosen.contains(&winograd::Variant::F4));
    }

    /// Every 3x3 stride-1 layer `(channels, plane side)` of the shipped
    /// models at the shipped input sizes (224 and 64 px).
    fn resnet_layers() -> std::collections::BTreeSet<(usize, usize)> {
        use crate::model::resnet::{ResNetConfig, KNOWN_NAMES};
        let out =
            |side: usize, kernel: usize, padding: usize| (side + 2 * padding - kernel) / 2 + 1;
        let mut layers = std::collections::BTreeSet::new();
        for name in KNOWN_NAMES {
            let config = ResNetConfig::from_name(name, 2).expect("known name");
            for size in [224, 64] {
                // Stem 7x7/2, max pool 3x3/2, then a stride-2 stage start.
                let mut side = out(out(size, 7, 3), 3, 1);
                for (stage, &width) in config.stage_widths().iter().enumerate() {
                    if stage > 0 {
                        side = out(side, 3, 1);
                    }
                    layers.insert((width, side));
                }
            }
        }
        layers
    }

    #[test]
    fn winograd_on_every_resnet_layer_within_its_bound_of_the_definition() {
        // Forward pass, input and weight gradient of both tilings and of the
        // lowered path against the f64 definition, on the full layer shapes
        // at batch 1 (2 for planes of 8x8 and less). The bounds are relative
        // to the largest magnitude of each reference.
        use crate::ops::testing::relative_error;
        use crate::ops::winograd::tests::{bound, Operands};
        use crate::ops::winograd::Variant;
        let layers = resnet_layers();
        assert_eq!(layers.len(), 24, "{layers:?}");
        for (i, &(channels, side)) in layers.iter().enumerate() {
            let n = if side > 8 { 1 } else { 2 };
            let input = [n, channels, side, side];
            let g = ConvGeometry::new(&input, &[channels, channels, 3, 3], 1, 1).unwrap();
            let ops = Operands::seeded(&g, 300 + 10 * i as u64);
            let reference = ops.definition(&g);
            let lowered = [
                forward_lowered(&g, &ops.x, &ops.w, None),
                input_grad_lowered(&g, &ops.dy, &ops.w),
                weight_grad_lowered(&g, &ops.x, &ops.dy),
            ];
            let errors = |got: &[Vec<f32>; 3]| -> [f64; 3] {
                std::array::from_fn(|j| relative_error(&got[j], &reference[j]))
            };
            let lowered = errors(&lowered);
            let show = |e: [f64; 3]| format!("{:.1e} {:.1e} {:.1e}", e[0], e[1], e[2]);
            let mut line = format!("{channels:>3} ch @ {side:>2}: lowered {}", show(lowered));
            for variant in [Variant::F2, Variant::F4] {
                let tiled = errors(&[
                    winograd::forward(&g, &ops.x, &ops.w, variant),
                    winograd::input_grad(&g, &ops.dy, &ops.w, variant),
                    winograd::weight_grad(&g, &ops.x, &ops.dy, variant),
                ]);
                line += &format!(", {variant:?} {}", show(tiled));
                for (what, error) in ["y", "dx", "dw"].iter().zip(tiled) {
                    assert!(
                        error <= bound(variant),
                        "{variant:?} on {channels} channels at {side}x{side}: {what} off by {error:.2e}"
                    );
                }
            }
            eprintln!("{line}");
        }
    }

    #[test]
    fn stride_one_input_gradient_as_a_forward_convolution() {
        // The direct input gradient (forced to portable lanes so every CPU
        // runs it) against col2im, for kernels 1, 3, 5 and every padding
        // below the kernel size.
        for (i, (kernel, padding)) in [(1, 0), (3, 0), (3, 1), (3, 2), (5, 2), (5, 4)]
            .into_iter()
            .enumerate()
        {
            let g =
                ConvGeometry::new(&[2, 8, 11, 17], &[4, 8, kernel, kernel], 1, padding).unwrap();
            let flat = |t: Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let dy = flat(seeded(&g.out_dims(), 60 + i as u64));
            let w = flat(seeded(&[g.k, g.c, kernel, kernel], 70 + i as u64));
            let gt = transposed_geometry(&g).expect("stride 1, padding < kernel");
            let mut direct = vec![f32::NAN; g.n * g.c * g.in_pixels()];
            direct_conv::forward(
                &gt,
                &dy,
                &flipped_kernels(&g, &w),
                &mut direct,
                Isa::Portable,
            );
            let lowered = input_grad_lowered(&g, &dy, &w);
            let worst = direct
                .iter()
                .zip(&lowered)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(
                worst < 1e-4,
                "kernel {kernel} padding {padding}: off by {worst}"
            );
        }
        let strided = ConvGeometry::new(&[1, 8, 9, 9], &[8, 8, 3, 3], 2, 1).unwrap();
        assert!(transposed_geometry(&strided).is_none());
    }

    #[test]
    fn hand_computed_convolution() {
        // 1x1x3x3 input 1..9, one 2x2 kernel of ones, stride 1, padding 0:
        // each output is the sum of a 2x2 window.
        let x = Tensor::arange(1.0f32, 10.0, &Device::Cpu)
            .unwrap()
            .reshape((1, 1, 3, 3))
            .unwrap();
        let w = Tensor::ones((1, 1, 2, 2), DType::F32, &Device::Cpu).unwrap();
        let y = conv2d(&x, &w, 1, 0)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(y, [12.0, 16.0, 24.0, 28.0]);
        // Padding 1, stride 2: windows over the padded 5x5 image, e.g. the
        // first sees only x[0][0] = 1 and the last 5 + 6 + 8 + 9.
        let y = conv2d(&x, &w, 2, 1)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(y, [1.0, 5.0, 11.0, 28.0]);
    }

    #[test]
    fn skips_the_gradient_of_a_constant_input() {
        let cs = CASES[1];
        assert!(candle_backward_works(&cs));
        let (x, w, r) = operands(&cs, 900);
        let wv = Var::from_tensor(&w).unwrap();
        let y = conv2d(&x, wv.as_tensor(), cs.stride, cs.padding).unwrap();
        let grads = (&y * &r).unwrap().sum_all().unwrap().backward().unwrap();
        assert!(grads.get(&x).is_none());
        let theirs = run(|x, w| x.conv2d(w, cs.padding, cs.stride, 1, 1), &x, &w, &r);
        let dw = max_abs_diff(grads.get(wv.as_tensor()).unwrap(), &theirs.grad_w);
        assert!(close(dw, &theirs.grad_w));
    }

    #[test]
    fn accepts_strided_views_and_falls_back_for_f64() {
        let x = seeded(&[2, 3, 12, 9], 40).transpose(2, 3).unwrap();
        let w = seeded(&[4, 3, 3, 3], 41);
        let ours = conv2d(&x, &w, 2, 1).unwrap();
        let theirs = x.conv2d(&w, 1, 2, 1, 1).unwrap();
        assert!(close(max_abs_diff(&ours, &theirs), &theirs));
        let (x64, w64) = (
            x.to_dtype(DType::F64).unwrap(),
            w.to_dtype(DType::F64).unwrap(),
        );
        let y64 = conv2d(&x64, &w64, 2, 1).unwrap();
        assert_eq!(y64.dtype(), DType::F64);
        assert!(close(
            max_abs_diff(&y64.to_dtype(DType::F32).unwrap(), &theirs),
            &theirs
        ));
    }

    #[test]
    fn rejects_bad_shapes_with_the_shapes_in_the_message() {
        let x = seeded(&[1, 4, 8, 8], 1);
        let w = seeded(&[2, 3, 3, 3], 2);
        let err = conv2d(&x, &w, 1, 1).unwrap_err().to_string();
        assert!(
            err.contains("[1, 4, 8, 8]") && err.contains("[2, 3, 3, 3]"),
            "{err}"
        );
    }
}
