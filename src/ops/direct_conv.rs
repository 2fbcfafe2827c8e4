//! Direct (im2col-free) convolution kernels for thin layers: the forward
//! pass, and the weight gradient, of convolutions with few output channels.
//!
//! im2col writes one float per kernel tap and output pixel, and the GEMM
//! then does `k` multiply-adds per float written; with the 16 output
//! channels of a narrow ResNet's stem and first stage, the lowering costs as
//! much as the product. These kernels skip it: each image is copied once into
//! zero-padded *stride phases* (for stride `s`, the `s x s` sub-images
//! `padded[py::s, px::s]`), after which every kernel tap of every output
//! pixel is a unit-stride read at a fixed offset, and a tile of output
//! channels by 16-pixel vectors accumulates in registers over all taps.
//!
//! The kernels are generic over [`Simd`] and run on AVX-512 registers where
//! the CPU has them (an [`Avx512`] value, made by a runtime check, proves
//! it); the convolution op only picks them there (see
//! [`suits_forward`]). The portable lanes run the same arithmetic on any CPU,
//! bit for bit, which is how the tests check these kernels everywhere.
//! Results never depend on the thread count: each output value is one fused
//! multiply-add chain in a fixed tap order, and the weight gradient sums
//! fixed groups of images in a fixed order.

use super::geometry::ConvGeometry;
#[cfg(target_arch = "x86_64")]
use super::lanes::Avx512;
use super::lanes::{Lanes, Portable, PortableLanes, Simd, LANES};
use super::scratch::with_scratch;
use rayon::prelude::*;

/// Output channels one forward tile computes.
const FWD_CHANNELS: usize = 8;
/// Output vectors (16 pixels each) one forward tile computes.
const FWD_VECTORS: usize = 3;
/// Output channels one weight-gradient tile covers.
const WGRAD_CHANNELS: usize = 4;
/// Kernel taps one weight-gradient tile covers.
const WGRAD_TAPS: usize = 6;
/// Images whose weight gradients one task sums before the fixed-order
/// reduction across tasks.
const WGRAD_IMAGES_PER_TASK: usize = 4;
/// Widest layer (output channels) the direct kernels are used for: beyond
/// it the GEMM amortizes im2col well.
const MAX_DIRECT_CHANNELS: usize = 32;

/// The instruction set a kernel runs with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    /// AVX-512F registers (x86-64 CPUs that have them).
    Avx512,
    /// Portable lanes (any CPU).
    Portable,
}

impl Isa {
    /// AVX-512 if this CPU has it, else portable.
    pub(crate) fn detect() -> Self {
        #[cfg(target_arch = "x86_64")]
        if Avx512::detect().is_some() {
            return Self::Avx512;
        }
        Self::Portable
    }
}

/// Whether the direct forward kernel should run `g` (with `isa`): thin
/// layers whose channels fill whole tiles and whose rows fill at least one
/// whole vector, on CPUs with AVX-512 (the portable lanes are kept for
/// other CPUs' correctness, not speed).
pub(crate) fn suits_forward(g: &ConvGeometry, isa: Isa) -> bool {
    suits(g, isa) && g.k.is_multiple_of(FWD_CHANNELS)
}

/// Whether the direct weight-gradient kernel should run `g` (see
/// [`suits_forward`]).
pub(crate) fn suits_weight_grad(g: &ConvGeometry, isa: Isa) -> bool {
    suits(g, isa) && g.k.is_multiple_of(WGRAD_CHANNELS)
}

fn suits(g: &ConvGeometry, isa: Isa) -> bool {
    isa == Isa::Avx512 && g.k <= MAX_DIRECT_CHANNELS && g.ow >= LANES
}

/// Where the zero-padded stride phases of one image live in a buffer, and
/// where each kernel tap and output vector reads from them.
///
/// Phase `(py, px)` of channel `c` is a `rows x row_len` plane whose value
/// at `(r, q)` is the zero-padded input at `(r * s + py - padding,
/// q * s + px - padding)`. Output pixel `(oy, ox)` reads tap `(ky, kx)` at
/// plane `(c, ky % s, kx % s)`, position `(oy + ky / s, ox + kx / s)`.
/// Output rows are covered by 16-pixel vectors; the planes are wide enough
/// for the last vector's excess lanes, and every column no real output
/// pixel reads is zero, so excess lanes never see a pixel the convolution
/// does not use.
struct PhaseLayout {
    stride: usize,
    padding: usize,
    rows: usize,
    row_len: usize,
    /// Output width.
    ow: usize,
    /// Kernel width.
    kw: usize,
    vectors_per_row: usize,
    /// Output vectors per image and channel (`oh * vectors_per_row`).
    vectors: usize,
    /// Start of every tap's window, in `(c, ky, kx)` order.
    taps: Vec<usize>,
}

impl PhaseLayout {
    fn new(g: &ConvGeometry) -> Self {
        let s = g.stride;
        let vectors_per_row = g.ow.div_ceil(LANES);
        let rows = g.oh + (g.kh - 1) / s;
        let row_len = vectors_per_row * LANES + (g.kw - 1) / s;
        let plane = rows * row_len;
        let mut taps = Vec::with_capacity(g.patch_len());
        for c in 0..g.c {
            for ky in 0..g.kh {
                for kx in 0..g.kw {
                    let phase = c * s * s + (ky % s) * s + kx % s;
                    taps.push(phase * plane + (ky / s) * row_len + kx / s);
                }
            }
        }
        Self {
            stride: s,
            padding: g.padding,
            rows,
            row_len,
            ow: g.ow,
            kw: g.kw,
            vectors_per_row,
            vectors: g.oh * vectors_per_row,
            taps,
        }
    }

    /// Floats of one image's planes.
    fn image_len(&self, channels: usize) -> usize {
        channels * self.stride * self.stride * self.rows * self.row_len
    }

    /// One past the last float any tap window of any output vector reads.
    fn reach(&self) -> usize {
        let last_vector = self.plane_offset(self.vectors.saturating_sub(1));
        self.taps
            .iter()
            .max()
            .map_or(0, |&tap| tap + last_vector + LANES)
    }

    /// Offset of output vector `v`'s first pixel within a plane.
    fn plane_offset(&self, v: usize) -> usize {
        (v / self.vectors_per_row) * self.row_len + (v % self.vectors_per_row) * LANES
    }

    /// Offset of output vector `v` within an output plane of width `ow`,
    /// and how many of its lanes are real pixels.
    fn output_span(&self, v: usize) -> (usize, usize) {
        let (oy, seg) = (v / self.vectors_per_row, v % self.vectors_per_row);
        (
            oy * self.ow + seg * LANES,
            (self.ow - seg * LANES).min(LANES),
        )
    }

    /// Writes the phases of one image (`c x h x w`) into `planes`.
    fn fill(&self, image: &[f32], h: usize, w: usize, planes: &mut [f32]) {
        let s = self.stride;
        let p = self.padding as isize;
        let mut rows = planes.chunks_exact_mut(self.row_len);
        for channel in image.chunks_exact(h * w) {
            for py in 0..s {
                for px in 0..s {
                    // Columns q with 0 <= q * s + px - p < w that outputs
                    // read: tap kx = px + j * s reads q = ox + j.
                    let read_cols = match self.kw > px {
                        true => self.ow + (self.kw - 1 - px) / s,
                        false => 0,
                    };
                    let first = self.padding.saturating_sub(px).div_ceil(s).min(read_cols);
                    let end = ((w as isize + p - px as isize).max(0) as usize)
                        .div_ceil(s)
                        .min(read_cols)
                        .max(first);
                    for r in 0..self.rows {
                        let row = rows.next().expect("planes sized by image_len");
                        let y = (r * s + py) as isize - p;
                        if y < 0 || y >= h as isize {
                            row.fill(0.0);
                            continue;
                        }
                        let src = &channel[y as usize * w..][..w];
                        row[..first].fill(0.0);
                        row[end..].fill(0.0);
                        let x0 = (first * s + px) as isize - p;
                        let dst = &mut row[first..end];
                        if s == 1 {
                            dst.copy_from_slice(&src[x0 as usize..][..dst.len()]);
                        } else {
                            for (i, value) in dst.iter_mut().enumerate() {
                                *value = src[x0 as usize + i * s];
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Forward convolution `out = conv(x, w)` of the whole batch, parallel over
/// images. `g.k` must be a multiple of [`FWD_CHANNELS`].
pub(crate) fn forward(g: &ConvGeometry, x: &[f32], w: &[f32], out: &mut [f32], isa: Isa) {
    assert!(
        g.k.is_multiple_of(FWD_CHANNELS),
        "direct forward needs whole tiles"
    );
    let layout = PhaseLayout::new(g);
    let taps = g.patch_len();
    // Weights tap-major: one tap's output channels are adjacent.
    let mut weight_t = vec![0.0; taps * g.k];
    for (k, filter) in w.chunks_exact(taps).enumerate() {
        for (t, &value) in filter.iter().enumerate() {
            weight_t[t * g.k + k] = value;
        }
    }
    let (chw, kp) = (g.c * g.in_pixels(), g.k * g.out_pixels());
    assert!(x.len() == g.n * chw && w.len() == g.k * taps && out.len() == g.n * kp);
    out.par_chunks_mut(kp)
        .zip(x.par_chunks(chw))
        .for_each(|(out_image, image)| {
            with_scratch(layout.image_len(g.c), 0, |planes, _| {
                layout.fill(image, g.h, g.w, planes);
                forward_image(g, &layout, &weight_t, planes, out_image, isa);
            });
        });
}

fn forward_image(
    g: &ConvGeometry,
    layout: &PhaseLayout,
    weight_t: &[f32],
    planes: &[f32],
    out: &mut [f32],
    isa: Isa,
) {
    assert!(layout.reach() <= planes.len() && weight_t.len() == layout.taps.len() * g.k);
    assert_eq!(out.len(), g.k * g.out_pixels());
    #[cfg(target_arch = "x86_64")]
    if let (Isa::Avx512, Some(avx512)) = (isa, Avx512::detect()) {
        // SAFETY: the bounds of every access were checked above.
        unsafe { forward_image_avx512(avx512, g, layout, weight_t, planes, out) };
        return;
    }
    // SAFETY: the bounds of every access were checked above.
    unsafe { forward_image_lanes(Portable, g, layout, weight_t, planes, out) }
}

/// [`forward_image_lanes`] on AVX-512, compiled for it so that the lane
/// methods inline to single instructions (`avx512` proves the CPU has it).
///
/// # Safety
/// As for [`forward_image_lanes`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn forward_image_avx512(
    avx512: Avx512,
    g: &ConvGeometry,
    layout: &PhaseLayout,
    weight_t: &[f32],
    planes: &[f32],
    out: &mut [f32],
) {
    // SAFETY: forwarded from the caller.
    unsafe { forward_image_lanes(avx512, g, layout, weight_t, planes, out) }
}

/// # Safety
/// Every tap window of every output vector lies inside `planes`.
#[inline(always)]
unsafe fn forward_image_lanes<S: Simd>(
    simd: S,
    g: &ConvGeometry,
    layout: &PhaseLayout,
    weight_t: &[f32],
    planes: &[f32],
    out: &mut [f32],
) {
    let vectors = layout.vectors;
    for k0 in (0..g.k).step_by(FWD_CHANNELS) {
        let mut v = 0;
        while v + FWD_VECTORS <= vectors {
            // SAFETY: forwarded from the caller.
            unsafe {
                forward_tile::<S, FWD_VECTORS>(simd, g, layout, weight_t, planes, out, k0, v)
            };
            v += FWD_VECTORS;
        }
        for v in v..vectors {
            // SAFETY: forwarded from the caller.
            unsafe { forward_tile::<S, 1>(simd, g, layout, weight_t, planes, out, k0, v) };
        }
    }
}

/// Output channels `k0..k0 + FWD_CHANNELS` at output vectors `v0..v0 + V`.
///
/// # Safety
/// As for [`forward_image_lanes`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn forward_tile<S: Simd, const V: usize>(
    simd: S,
    g: &ConvGeometry,
    layout: &PhaseLayout,
    weight_t: &[f32],
    planes: &[f32],
    out: &mut [f32],
    k0: usize,
    v0: usize,
) {
    let base: [usize; V] = std::array::from_fn(|i| layout.plane_offset(v0 + i));
    let mut acc = [[simd.zero(); V]; FWD_CHANNELS];
    let planes = planes.as_ptr();
    for (&tap, weights) in layout.taps.iter().zip(weight_t.chunks_exact(g.k)) {
        // SAFETY: the caller guarantees every window is in bounds.
        let xs: [S::Lanes; V] =
            std::array::from_fn(|i| unsafe { simd.load(planes.add(tap + base[i])) });
        let weights = &weights[k0..k0 + FWD_CHANNELS];
        for (row, &weight) in acc.iter_mut().zip(weights) {
            let weight = simd.splat(weight);
            for (sum, &x) in row.iter_mut().zip(&xs) {
                *sum = weight.mul_add(x, *sum);
            }
        }
    }
    let plane_len = g.out_pixels();
    for (kk, row) in acc.iter().enumerate() {
        let out_plane = &mut out[(k0 + kk) * plane_len..][..plane_len];
        for (i, sum) in row.iter().enumerate() {
            let (offset, len) = layout.output_span(v0 + i);
            let dst = &mut out_plane[offset..offset + len];
            // SAFETY: `dst` holds exactly `len` floats.
            unsafe { sum.store_first(dst.as_mut_ptr(), len) };
        }
    }
}

/// Weight gradient `dW[k, c, ky, kx] = sum over images and output pixels of
/// dy[k, pixel] * x[c, pixel's tap (ky, kx)]`. `g.k` must be a multiple of
/// [`WGRAD_CHANNELS`].
pub(crate) fn weight_grad(g: &ConvGeometry, x: &[f32], dy: &[f32], isa: Isa) -> Vec<f32> {
    assert!(
        g.k.is_multiple_of(WGRAD_CHANNELS),
        "direct weight gradient needs whole tiles"
    );
    let layout = PhaseLayout::new(g);
    let taps = g.patch_len();
    let (chw, kp) = (g.c * g.in_pixels(), g.k * g.out_pixels());
    assert!(x.len() == g.n * chw && dy.len() == g.n * kp);
    let tasks = g.n.div_ceil(WGRAD_IMAGES_PER_TASK);
    let partials: Vec<Vec<[f32; LANES]>> = (0..tasks)
        .into_par_iter()
        .map(|task| {
            let first = task * WGRAD_IMAGES_PER_TASK;
            let images = first..(first + WGRAD_IMAGES_PER_TASK).min(g.n);
            let mut partial = vec![[0.0; LANES]; g.k * taps];
            let dy_len = g.k * layout.vectors * LANES;
            with_scratch(layout.image_len(g.c), dy_len, |planes, dy_vectors| {
                for b in images {
                    layout.fill(&x[b * chw..][..chw], g.h, g.w, planes);
                    pad_to_vectors(&dy[b * kp..][..kp], g, &layout, dy_vectors);
                    weight_grad_image(g, &layout, planes, dy_vectors, &mut partial, isa);
                }
            });
            partial
        })
        .collect();
    // Tasks in order, then each (k, tap)'s lanes in a fixed tree.
    let mut total = vec![Portable.zero(); g.k * taps];
    for partial in &partials {
        for (sum, lanes) in total.iter_mut().zip(partial) {
            *sum = sum.add(PortableLanes::from(*lanes));
        }
    }
    total.iter().map(|lanes| lanes.sum()).collect()
}

/// Copies one image's output gradient (`k x oh x ow`) into whole 16-pixel
/// vectors per row, zero beyond `ow`.
fn pad_to_vectors(dy: &[f32], g: &ConvGeometry, layout: &PhaseLayout, out: &mut [f32]) {
    let row_len = layout.vectors_per_row * LANES;
    for (src, dst) in dy.chunks_exact(g.ow).zip(out.chunks_exact_mut(row_len)) {
        dst[..g.ow].copy_from_slice(src);
        dst[g.ow..].fill(0.0);
    }
}

/// Adds one image's lane-wise weight-gradient sums to `partial` (`k x taps`
/// lane vectors).
fn weight_grad_image(
    g: &ConvGeometry,
    layout: &PhaseLayout,
    planes: &[f32],
    dy_vectors: &[f32],
    partial: &mut [[f32; LANES]],
    isa: Isa,
) {
    let vectors = layout.vectors;
    assert!(layout.reach() <= planes.len() && dy_vectors.len() == g.k * vectors * LANES);
    assert_eq!(partial.len(), g.k * layout.taps.len());
    #[cfg(target_arch = "x86_64")]
    if let (Isa::Avx512, Some(avx512)) = (isa, Avx512::detect()) {
        // SAFETY: the bounds of every access were checked above.
        unsafe { weight_grad_avx512(avx512, g, layout, planes, dy_vectors, partial) };
        return;
    }
    // SAFETY: the bounds of every access were checked above.
    unsafe { weight_grad_lanes(Portable, g, layout, planes, dy_vectors, partial) }
}

/// [`weight_grad_lanes`] on AVX-512 (see [`forward_image_avx512`]).
///
/// # Safety
/// As for [`weight_grad_lanes`].
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn weight_grad_avx512(
    avx512: Avx512,
    g: &ConvGeometry,
    layout: &PhaseLayout,
    planes: &[f32],
    dy_vectors: &[f32],
    partial: &mut [[f32; LANES]],
) {
    // SAFETY: forwarded from the caller.
    unsafe { weight_grad_lanes(avx512, g, layout, planes, dy_vectors, partial) }
}

/// # Safety
/// Every tap window of every output vector lies inside `planes`, and
/// `dy_vectors` holds `g.k` planes of whole vectors.
#[inline(always)]
unsafe fn weight_grad_lanes<S: Simd>(
    simd: S,
    g: &ConvGeometry,
    layout: &PhaseLayout,
    planes: &[f32],
    dy_vectors: &[f32],
    partial: &mut [[f32; LANES]],
) {
    let taps = layout.taps.len();
    for k0 in (0..g.k).step_by(WGRAD_CHANNELS) {
        let mut t = 0;
        while t + WGRAD_TAPS <= taps {
            // SAFETY: forwarded from the caller.
            unsafe {
                weight_grad_tile::<S, WGRAD_TAPS>(simd, layout, planes, dy_vectors, partial, k0, t)
            };
            t += WGRAD_TAPS;
        }
        for t in t..taps {
            // SAFETY: forwarded from the caller.
            unsafe { weight_grad_tile::<S, 1>(simd, layout, planes, dy_vectors, partial, k0, t) };
        }
    }
}

/// Output channels `k0..k0 + WGRAD_CHANNELS` by taps `t0..t0 + T`, summed
/// over all output vectors of one image.
///
/// # Safety
/// As for [`weight_grad_lanes`].
#[inline(always)]
unsafe fn weight_grad_tile<S: Simd, const T: usize>(
    simd: S,
    layout: &PhaseLayout,
    planes: &[f32],
    dy_vectors: &[f32],
    partial: &mut [[f32; LANES]],
    k0: usize,
    t0: usize,
) {
    let taps: [usize; T] = std::array::from_fn(|j| layout.taps[t0 + j]);
    let vectors = layout.vectors;
    let dy_plane = vectors * LANES;
    let (planes, dy) = (planes.as_ptr(), dy_vectors.as_ptr());
    let mut acc = [[simd.zero(); T]; WGRAD_CHANNELS];
    for v in 0..vectors {
        let base = layout.plane_offset(v);
        // SAFETY: the caller guarantees both reads are in bounds.
        let dys: [S::Lanes; WGRAD_CHANNELS] = std::array::from_fn(|kk| unsafe {
            simd.load(dy.add((k0 + kk) * dy_plane + v * LANES))
        });
        // SAFETY: as above.
        let xs: [S::Lanes; T] =
            std::array::from_fn(|j| unsafe { simd.load(planes.add(taps[j] + base)) });
        for (row, &d) in acc.iter_mut().zip(&dys) {
            for (sum, &x) in row.iter_mut().zip(&xs) {
                *sum = d.mul_add(x, *sum);
            }
        }
    }
    let all_taps = layout.taps.len();
    for (kk, row) in acc.iter().enumerate() {
        for (j, sum) in row.iter().enumerate() {
            let slot = &mut partial[(k0 + kk) * all_taps + t0 + j];
            // SAFETY: `slot` holds LANES floats.
            let updated = unsafe { simd.load(slot.as_ptr()) }.add(*sum);
            *slot = updated.to_array();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::testing::{close, max_abs_diff, seeded, CONV_CASES};
    use candle_core::{Device, Tensor};

    fn flat(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
    }

    /// Every geometry of the shared cases, with output channels rounded up
    /// to whole tiles, plus the narrow ResNet's stem and a layer whose rows
    /// span several vectors with a partial last one.
    fn geometries() -> Vec<ConvGeometry> {
        let mut all: Vec<ConvGeometry> = CONV_CASES
            .iter()
            .map(|cs| {
                let k = cs.k.div_ceil(FWD_CHANNELS) * FWD_CHANNELS;
                ConvGeometry::new(
                    &[cs.n, cs.c, cs.h, cs.w],
                    &[k, cs.c, cs.kh, cs.kw],
                    cs.stride,
                    cs.padding,
                )
                .unwrap()
            })
            .collect();
        all.push(ConvGeometry::new(&[2, 3, 64, 64], &[16, 3, 7, 7], 2, 3).unwrap());
        all.push(ConvGeometry::new(&[3, 5, 37, 41], &[8, 5, 3, 3], 1, 1).unwrap());
        all.push(ConvGeometry::new(&[1, 4, 9, 35], &[8, 4, 5, 3], 3, 2).unwrap());
        all
    }

    fn operands(g: &ConvGeometry, seed: u64) -> (Tensor, Tensor) {
        (
            seeded(&[g.n, g.c, g.h, g.w], seed),
            seeded(&[g.k, g.c, g.kh, g.kw], seed + 1),
        )
    }

    fn isas() -> Vec<Isa> {
        let mut isas = vec![Isa::Portable];
        if Isa::detect() == Isa::Avx512 {
            isas.push(Isa::Avx512);
        }
        isas
    }

    #[test]
    fn forward_matches_candle_bit_identically_across_isas() {
        for (i, g) in geometries().iter().enumerate() {
            let (x, w) = operands(g, 40 + 2 * i as u64);
            let reference = x.conv2d(&w, g.padding, g.stride, 1, 1).unwrap();
            let mut results = Vec::new();
            for isa in isas() {
                let mut out = vec![f32::NAN; g.n * g.k * g.out_pixels()];
                forward(g, &flat(&x), &flat(&w), &mut out, isa);
                let ours =
                    Tensor::from_vec(out.clone(), g.out_dims().to_vec(), &Device::Cpu).unwrap();
                let diff = max_abs_diff(&ours, &reference);
                assert!(close(diff, &reference), "{g:?} {isa:?}: differs by {diff}");
                results.push(out.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            }
            assert!(
                results.windows(2).all(|r| r[0] == r[1]),
                "{g:?}: ISAs differ"
            );
        }
    }

    #[test]
    fn weight_grad_matches_its_definition_bit_identically_across_isas() {
        for (i, g) in geometries().iter().enumerate() {
            let (x, _) = operands(g, 80 + 2 * i as u64);
            let dy = seeded(&g.out_dims(), 300 + i as u64);
            let reference = naive_weight_grad(g, &flat(&x), &flat(&dy));
            let reference =
                Tensor::from_vec(reference, (g.k, g.c, g.kh, g.kw), &Device::Cpu).unwrap();
            let mut results = Vec::new();
            for isa in isas() {
                let dw = weight_grad(g, &flat(&x), &flat(&dy), isa);
                let ours =
                    Tensor::from_vec(dw.clone(), (g.k, g.c, g.kh, g.kw), &Device::Cpu).unwrap();
                let diff = max_abs_diff(&ours, &reference);
                assert!(close(diff, &reference), "{g:?} {isa:?}: differs by {diff}");
                results.push(dw.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
            }
            assert!(
                results.windows(2).all(|r| r[0] == r[1]),
                "{g:?}: ISAs differ"
            );
        }
    }

    /// The weight gradient by its definition, in f64.
    fn naive_weight_grad(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
        let mut dw = vec![0.0f64; g.k * g.patch_len()];
        for b in 0..g.n {
            for k in 0..g.k {
                for c in 0..g.c {
                    for ky in 0..g.kh {
                        for kx in 0..g.kw {
                            let mut sum = 0.0;
                            for oy in 0..g.oh {
                                for ox in 0..g.ow {
                                    let y = (oy * g.stride + ky) as isize - g.padding as isize;
                                    let xx = (ox * g.stride + kx) as isize - g.padding as isize;
                                    if y < 0 || xx < 0 || y >= g.h as isize || xx >= g.w as isize {
                                        continue;
                                    }
                                    let xi = ((b * g.c + c) * g.h + y as usize) * g.w + xx as usize;
                                    let di = ((b * g.k + k) * g.oh + oy) * g.ow + ox;
                                    sum += x[xi] as f64 * dy[di] as f64;
                                }
                            }
                            dw[((k * g.c + c) * g.kh + ky) * g.kw + kx] += sum;
                        }
                    }
                }
            }
        }
        dw.into_iter().map(|v| v as f32).collect()
    }

    #[test]
    fn results_do_not_depend_on_the_thread_count() {
        // 9 images: tasks of 4, 4 and 1 image for the weight gradient.
        let g = ConvGeometry::new(&[9, 3, 20, 18], &[8, 3, 5, 5], 2, 2).unwrap();
        let (x, w) = operands(&g, 7);
        let (x, w, dy) = (flat(&x), flat(&w), flat(&seeded(&g.out_dims(), 8)));
        for isa in isas() {
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .unwrap();
                pool.install(|| {
                    let mut out = vec![0.0; g.n * g.k * g.out_pixels()];
                    forward(&g, &x, &w, &mut out, isa);
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    (bits(&out), bits(&weight_grad(&g, &x, &dy, isa)))
                })
            };
            assert!(run(1) == run(3), "{isa:?}: thread counts differ");
        }
    }

    #[test]
    fn excess_lanes_never_meet_unread_pixels() {
        // Infinity in a column no output pixel reads (the last one, beyond
        // the last stride-2 window) must not reach the weight gradient as
        // 0 * inf = NaN through the last vector's excess lanes.
        let g = ConvGeometry::new(&[1, 1, 6, 20], &[4, 1, 3, 3], 2, 0).unwrap();
        let mut x = vec![1.0; 6 * 20];
        for row in x.chunks_exact_mut(20) {
            row[19] = f32::INFINITY;
        }
        let dy = vec![1.0; g.k * g.out_pixels()];
        for isa in isas() {
            let dw = weight_grad(&g, &x, &dy, isa);
            assert!(dw.iter().all(|v| v.is_finite()), "{isa:?}: {dw:?}");
            // Each tap sums oh * ow = 2 * 9 ones.
            assert!(dw.iter().all(|&v| v == 18.0), "{isa:?}: {dw:?}");
        }
    }
}
