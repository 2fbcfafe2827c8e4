//! Winograd convolution for 3x3, stride-1, padding-1 layers: forward pass,
//! input gradient and weight gradient with fewer multiplications than the
//! direct definition.
//!
//! A tiling F(m x m, 3 x 3) (see [`matrices`]) turns each `a x a` input
//! tile (`a = m + 2`, overlapping by 2) and each kernel into `a^2`
//! transformed values; the convolution becomes, per transform element `e`,
//! one matrix product `P[e] = V[e] U[e]` of the transformed tiles
//! (`tiles x inputs`) and kernels (`inputs x outputs`), and the inverse
//! transform of `P` gives `m x m` output pixels per tile. F(4x4, 3x3) does
//! 36 multiplications per tile and channel pair where the direct
//! convolution does 144 (4x fewer); F(2x2, 3x3) 16 for 36 (2.25x).
//!
//! - **Forward**: the products run through the `gemm` crate on chunks of
//!   tile rows small enough for the transformed tiles to stay in cache,
//!   each chunk on one thread (parallel over groups of images).
//! - **Input gradient**: the forward convolution of the output gradient
//!   with the kernels rotated by 180 degrees and input and output channels
//!   swapped (padding `3 - 1 - 1 = 1` again).
//! - **Weight gradient**: the input tiles and the output-gradient tiles
//!   (`A dY A^T`) are transformed, `dU[e] = V[e]^T dP[e]` is summed over
//!   every tile of the batch (in rounds of tiles, one GEMM per element and
//!   round, parallel over elements) and transformed back (`G^T dU G`).
//!
//! Every sum runs in an order fixed by the layer's shape alone (transform
//! terms in index order, GEMM reductions over fixed chunks, rounds in
//! batch order), so results are deterministic and independent of the
//! thread count.
//!
//! Accuracy: the transforms' rounding adds to that of the products. Against
//! the f64 definition, F(4x4, 3x3) with the points used here stays within
//! a few 1e-6 of the output's largest magnitude on ResNet layers (about ten
//! times the error of the direct f32 convolution, the usual price of
//! Winograd in f32); the tests bound every kernel on every layer shape of
//! the shipped models.

mod backward;
mod convolve;
mod grid;
mod matrices;
#[cfg(test)]
pub(super) mod tests;
mod tiles;
mod weights;

use self::grid::{Grid, Planes};
use self::matrices::{Tiling, F2, F4};
use super::cpu::output_buffer;
use super::geometry::ConvGeometry;
use std::sync::atomic::{AtomicBool, Ordering};

/// The tiling a layer runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Variant {
    /// F(2x2, 3x3).
    F2,
    /// F(4x4, 3x3).
    F4,
}

/// How the batch's tiles are grouped: sizes that keep the transformed
/// tiles in cache and the GEMMs wide enough. They depend on the layer's
/// shape only, never on the thread count, so neither do the results.
#[derive(Debug, Clone, Copy)]
pub(super) struct Budget {
    /// Bytes of transformed kernels that stay in a core's L2 cache next to
    /// a chunk of tiles; layers with more run in rounds (see
    /// `convolve::convolve`), reading each transformed kernel once per
    /// round rather than once per chunk.
    pub(super) kernels_in_cache: usize,
    /// Bytes of transformed tiles (inputs and products) per chunk.
    pub(super) chunk_bytes: usize,
    /// Fewest tiles per chunk: each chunk's GEMMs read all transformed
    /// kernels once.
    pub(super) min_chunk_tiles: usize,
    /// Tasks a batch splits into at least where chunks keep
    /// `min_chunk_tiles`: enough to balance a few threads.
    pub(super) min_tasks: usize,
    /// Bytes of transformed tiles per round.
    pub(super) round_bytes: usize,
    /// Fewest tiles per round: each round reads (and for the weight
    /// gradient writes) all transformed kernels once.
    pub(super) min_round_tiles: usize,
}

impl Budget {
    /// Sizes for current x86 servers (1-2 MiB of L2 per core): a chunk of
    /// tiles in half of L2, rounds of 8 MiB.
    pub(super) const DEFAULT: Budget = Budget {
        kernels_in_cache: 1 << 20,
        chunk_bytes: 1 << 20,
        min_chunk_tiles: 64,
        min_tasks: 8,
        round_bytes: 8 << 20,
        min_round_tiles: 256,
    };
}

/// A buffer for results whose every element a kernel writes before any is
/// read (see [`super::cpu::output_buffer`]).
///
/// # Safety
/// As for [`super::cpu::output_buffer`]: the caller writes all `len`
/// elements before reading any.
unsafe fn cpu_buffer(len: usize) -> Vec<f32> {
    // SAFETY: this function's contract is `output_buffer`'s.
    unsafe { output_buffer(len) }
}

/// Whether [`choose`] may pick a tiling at all (see [`set_enabled`]).
static ENABLED: AtomicBool = AtomicBool::new(true);

/// Lets the CPU convolutions run Winograd tiles where [`choose`] expects
/// them to be faster (`true`, the default), or keeps every convolution on
/// the lowered GEMM and the direct kernels (`false`), process-wide: for
/// measuring what the tiles gain (`ablate speed --winograd off`). Results
/// differ between the two in the last bits, so runs meant to be compared
/// or cached together keep the default.
pub fn set_enabled(enabled: bool) {
    ENABLED.store(enabled, Ordering::Relaxed);
}

/// Fewest input and output channels for which the tiles pay: the tile
/// transforms cost about as much as 44 multiply-adds of the element GEMMs
/// per transformed value, which thin layers do not win back (16 channels
/// on 16x16 planes: parity with the direct kernels).
const MIN_CHANNELS: usize = 32;
/// Tiles per batch over which the kernel transforms amortise to half the
/// element GEMMs' time: each transformed kernel value is written, read and
/// transformed back at about the cost of 64 of its multiply-adds
/// (ResNet-18's 512-channel 7x7 layer, batch 8 against 32).
const KERNEL_TRANSFORM_TILES: f64 = 64.0;
/// Estimated speedup below which a layer keeps its current path.
const MIN_SPEEDUP: f64 = 1.2;

/// The tiling to run `g` with, or `None` where the lowered GEMM (or the
/// direct kernels) are expected to be about as fast or faster.
///
/// The estimate of a tiling's speedup is its reduction of multiplications,
/// `9 h w / (tiles a^2)` (4 for F(4x4) on planes that are whole tiles,
/// less where tiles overhang the plane: 7x7 planes take 8x8 of tiles),
/// discounted by the kernel transforms, which the batch's tiles share:
/// `reduction / (1 + KERNEL_TRANSFORM_TILES / (n tiles))`. The tiling with
/// the larger estimate runs if it reaches [`MIN_SPEEDUP`] and the layer has
/// [`MIN_CHANNELS`] on both sides. Measured single-threaded at batch 32
/// (forward and both gradients against the lowered path): F(4x4) 2.2x on
/// 64 channels at 16x16 and 128 at 8x8, 2.7x on 32 at 8x8, 1.5x on 512 at
/// 7x7; F(2x2) 1.7x on 64 channels at 4x4 and 1.4x on 256; none for 512
/// and 128 channels on 2x2 planes (0.8x and 1.15x), where the rule keeps
/// the lowered path.
pub(crate) fn choose(g: &ConvGeometry) -> Option<Variant> {
    if !ENABLED.load(Ordering::Relaxed) || !supports(g) || g.c < MIN_CHANNELS || g.k < MIN_CHANNELS
    {
        return None;
    }
    let estimate = |m: usize| {
        let a2 = ((m + 2) * (m + 2)) as f64;
        let tiles = (g.h.div_ceil(m) * g.w.div_ceil(m)) as f64;
        let reduction = 9.0 * (g.h * g.w) as f64 / (tiles * a2);
        reduction / (1.0 + KERNEL_TRANSFORM_TILES / (g.n as f64 * tiles))
    };
    let (variant, speedup) = [(Variant::F2, estimate(2)), (Variant::F4, estimate(4))]
        .into_iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("two candidates");
    (speedup >= MIN_SPEEDUP).then_some(variant)
}

/// Whether `g` is a convolution these kernels compute: 3x3 kernels,
/// stride 1, padding 1, and nothing empty.
pub(crate) fn supports(g: &ConvGeometry) -> bool {
    g.kh == 3
        && g.kw == 3
        && g.stride == 1
        && g.padding == 1
        && g.n > 0
        && g.c > 0
        && g.k > 0
        && g.h > 0
        && g.w > 0
}

/// Forward convolution of `x` (`[n, c, h, w]`) with `w` (`[k, c, 3, 3]`).
///
/// # Panics
/// If `g` is not [`supports`]ed or the slices do not match it.
pub(crate) fn forward(g: &ConvGeometry, x: &[f32], w: &[f32], variant: Variant) -> Vec<f32> {
    match variant {
        Variant::F2 => forward_with::<2, 4, F2>(g, x, w),
        Variant::F4 => forward_with::<4, 6, F4>(g, x, w),
    }
}

/// Input gradient of the convolution `g` from the output gradient `dy`.
///
/// # Panics
/// As for [`forward`].
pub(crate) fn input_grad(g: &ConvGeometry, dy: &[f32], w: &[f32], variant: Variant) -> Vec<f32> {
    match variant {
        Variant::F2 => input_grad_with::<2, 4, F2>(g, dy, w),
        Variant::F4 => input_grad_with::<4, 6, F4>(g, dy, w),
    }
}

/// Weight gradient (`[k, c, 3, 3]`) of the convolution `g` from its input
/// `x` and output gradient `dy`.
///
/// # Panics
/// As for [`forward`].
pub(crate) fn weight_grad(g: &ConvGeometry, x: &[f32], dy: &[f32], variant: Variant) -> Vec<f32> {
    match variant {
        Variant::F2 => weight_grad_with::<2, 4, F2>(g, x, dy),
        Variant::F4 => weight_grad_with::<4, 6, F4>(g, x, dy),
    }
}

fn forward_with<const M: usize, const A: usize, T: Tiling<M, A>>(
    g: &ConvGeometry,
    x: &[f32],
    w: &[f32],
) -> Vec<f32> {
    let planes = Planes::of(g, x.len(), w.len());
    let u = weights::transform::<M, A, T>(w, g.k, g.c, false);
    // SAFETY: `convolve` writes every output pixel (each tile row's
    // inverse transform writes its rows of every output channel) and reads
    // none of `out`.
    let mut out = unsafe { cpu_buffer(g.n * planes.out_image()) };
    convolve::convolve::<M, A, T>(&Grid::new(planes), x, &u, &mut out, &Budget::DEFAULT);
    out
}

fn input_grad_with<const M: usize, const A: usize, T: Tiling<M, A>>(
    g: &ConvGeometry,
    dy: &[f32],
    w: &[f32],
) -> Vec<f32> {
    let planes = Planes::of(g, g.n * g.c * g.h * g.w, w.len()).transposed();
    let u = weights::transform::<M, A, T>(w, g.k, g.c, true);
    // SAFETY: as in `forward_with`: `convolve` writes every pixel and
    // reads none of `dx`.
    let mut dx = unsafe { cpu_buffer(g.n * planes.out_image()) };
    convolve::convolve::<M, A, T>(&Grid::new(planes), dy, &u, &mut dx, &Budget::DEFAULT);
    dx
}

fn weight_grad_with<const M: usize, const A: usize, T: Tiling<M, A>>(
    g: &ConvGeometry,
    x: &[f32],
    dy: &[f32],
) -> Vec<f32> {
    let planes = Planes::of(g, x.len(), g.k * g.c * 9);
    backward::weight_grad::<M, A, T>(&Grid::new(planes), x, dy, &Budget::DEFAULT)
}
