//! im2col and its adjoint col2im: the lowering that turns a convolution into
//! one matrix product.
//!
//! For a chunk of `nb` images the im2col matrix has one row per (input
//! channel, kernel row, kernel column) and one column per (image, output
//! pixel): row `(c * kh + i) * kw + j`, column `b * oh * ow + y * ow + x`
//! holds input pixel `(c, y * stride + i - padding, x * stride + j - padding)`
//! of image `b`, or zero where that falls into the padding. The forward
//! convolution is `weight[k, patch] x col`, the weight gradient is
//! `grad[k, cols] x col^T`, and the input gradient is col2im applied to
//! `weight^T x grad`. When a chunk holds several images, GEMM results come
//! back with the batch in the columns and are moved to NCHW by
//! [`blocks_to_batch`] (and gradients the other way by [`batch_to_blocks`]).

use super::geometry::ConvGeometry;
use rayon::prelude::*;

/// The output positions `o` whose input position `o * stride + tap - padding`
/// falls inside `0..in_len`, as a half-open range (empty when none does).
pub(crate) fn valid_range(
    out_len: usize,
    in_len: usize,
    stride: usize,
    padding: usize,
    tap: usize,
) -> (usize, usize) {
    let lo = if tap >= padding {
        0
    } else {
        (padding - tap).div_ceil(stride)
    };
    let hi = if in_len + padding <= tap {
        0
    } else {
        out_len.min((in_len - 1 + padding - tap) / stride + 1)
    };
    (lo.min(hi), hi)
}

/// Where one kernel tap reads along one axis, in stride phases: output
/// position `o` in `outputs` (half-open, see [`valid_range`]) reads input
/// position `o * stride + tap - padding = stride * (o + shift) + phase`,
/// i.e. pixel `o + shift` of the axis's stride phase `phase`; the other
/// outputs see padding.
pub(crate) struct StrideTap {
    pub(crate) phase: usize,
    pub(crate) shift: isize,
    pub(crate) outputs: (usize, usize),
}

impl StrideTap {
    pub(crate) fn new(
        out_len: usize,
        in_len: usize,
        stride: usize,
        padding: usize,
        tap: usize,
    ) -> Self {
        let (offset, s) = (tap as isize - padding as isize, stride as isize);
        StrideTap {
            phase: offset.rem_euclid(s) as usize,
            shift: offset.div_euclid(s),
            outputs: valid_range(out_len, in_len, stride, padding, tap),
        }
    }
}

/// Fills `col` (`patch_len x nb * out_pixels`, dense) with the im2col matrix
/// of images `n0..n0 + nb` of the dense NCHW input `x`.
///
/// Strided convolutions first split each input plane into its stride
/// phases (see [`PhasePlanes`]), so that every kernel tap reads a shifted
/// window of one phase with unit stride: whole rows are copied instead of
/// gathered one pixel at a time.
///
/// Small output planes (at most [`SMALL_PLANE`] pixels) go through a
/// [`TapTable`] instead.
pub(crate) fn im2col(g: &ConvGeometry, x: &[f32], n0: usize, nb: usize, col: &mut [f32]) {
    if g.out_pixels() <= SMALL_PLANE {
        im2col_table(g, x, n0, nb, col);
    } else {
        im2col_rows(g, x, n0, nb, col);
    }
}

/// Output planes of at most this many pixels are lowered and raised through
/// a [`TapTable`]: with rows of a few pixels, per-row bounds, block copies
/// and padding fills cost more than the data they move.
const SMALL_PLANE: usize = 64;

/// [`im2col`] by whole rows of stride phases.
fn im2col_rows(g: &ConvGeometry, x: &[f32], n0: usize, nb: usize, col: &mut [f32]) {
    let (p, chw, taps) = (g.out_pixels(), g.c * g.in_pixels(), g.kh * g.kw);
    assert_eq!(col.len(), g.patch_len() * nb * p, "im2col: buffer size");
    assert!(x.len() >= (n0 + nb) * chw, "im2col: input too short");
    let images = &x[n0 * chw..][..nb * chw];
    let planes = if g.stride == 1 {
        PhasePlanes::unit_stride(g, images)
    } else {
        PhasePlanes::split(g, images, nb)
    };
    col.par_chunks_mut(nb * p).enumerate().for_each(|(r, row)| {
        let (c, tap) = (r / taps, r % taps);
        let window = planes.window(g, tap / g.kw, tap % g.kw);
        for (b, out) in row.chunks_exact_mut(p).enumerate() {
            window.gather(planes.plane(b * g.c + c, window.phase), g, out);
        }
    });
}

/// For every kernel tap and output pixel, the offset within an input plane
/// of the pixel it reads, or [`TapTable::PADDING`].
struct TapTable {
    offsets: Vec<u32>,
    out_pixels: usize,
}

impl TapTable {
    /// Marks a tap that reads the zero padding.
    const PADDING: u32 = u32::MAX;

    fn new(g: &ConvGeometry) -> Self {
        let mut offsets = Vec::with_capacity(g.kh * g.kw * g.out_pixels());
        for i in 0..g.kh {
            for j in 0..g.kw {
                for oy in 0..g.oh {
                    for ox in 0..g.ow {
                        let y = (oy * g.stride + i).checked_sub(g.padding);
                        let x = (ox * g.stride + j).checked_sub(g.padding);
                        offsets.push(match (y, x) {
                            (Some(y), Some(x)) if y < g.h && x < g.w => (y * g.w + x) as u32,
                            _ => Self::PADDING,
                        });
                    }
                }
            }
        }
        Self {
            offsets,
            out_pixels: g.out_pixels(),
        }
    }

    /// The offsets of tap `tap` (`i * kw + j`), one per output pixel.
    fn tap(&self, tap: usize) -> &[u32] {
        &self.offsets[tap * self.out_pixels..][..self.out_pixels]
    }
}

/// [`im2col`] through a [`TapTable`]: one table lookup per entry.
fn im2col_table(g: &ConvGeometry, x: &[f32], n0: usize, nb: usize, col: &mut [f32]) {
    let (p, hw, taps) = (g.out_pixels(), g.in_pixels(), g.kh * g.kw);
    assert_eq!(col.len(), g.patch_len() * nb * p, "im2col: buffer size");
    assert!(x.len() >= (n0 + nb) * g.c * hw, "im2col: input too short");
    assert!(
        hw < TapTable::PADDING as usize,
        "im2col: plane too large for a table"
    );
    let table = TapTable::new(g);
    col.par_chunks_mut(nb * p).enumerate().for_each(|(r, row)| {
        let (c, offsets) = (r / taps, table.tap(r % taps));
        for (b, out) in row.chunks_exact_mut(p).enumerate() {
            let plane = &x[((n0 + b) * g.c + c) * hw..][..hw];
            for (v, &offset) in out.iter_mut().zip(offsets) {
                *v = plane.get(offset as usize).copied().unwrap_or(0.0);
            }
        }
    });
}

/// The planes im2col reads: the input planes themselves for unit stride;
/// for stride `s > 1` every input plane split into its `s * s` stride
/// phases, phase `(a, b)` holding pixels `(a + s * t, b + s * u)` in a
/// `ceil(h / s) x ceil(w / s)` plane (entries past a phase's own extent are
/// zero and never selected).
struct PhasePlanes<'a> {
    data: std::borrow::Cow<'a, [f32]>,
    /// Rows and width of every stored plane.
    rows: usize,
    width: usize,
    /// Phases per input plane (`stride^2`).
    phases: usize,
}

impl<'a> PhasePlanes<'a> {
    fn unit_stride(g: &ConvGeometry, images: &'a [f32]) -> Self {
        PhasePlanes {
            data: std::borrow::Cow::Borrowed(images),
            rows: g.h,
            width: g.w,
            phases: 1,
        }
    }

    /// Splits the `nb` images of `images` (dense NCHW) into stride phases.
    fn split(g: &ConvGeometry, images: &[f32], nb: usize) -> PhasePlanes<'static> {
        let s = g.stride;
        let (rows, width) = (g.h.div_ceil(s), g.w.div_ceil(s));
        let per_input = s * s * rows * width;
        let mut data = vec![0.0; nb * g.c * per_input];
        data.par_chunks_mut(per_input)
            .zip(images.par_chunks(g.in_pixels()))
            .for_each(|(phases, plane)| {
                for (y, line) in plane.chunks_exact(g.w).enumerate() {
                    let (a, t) = (y % s, y / s);
                    let row = |b: usize| ((a * s + b) * rows + t) * width;
                    if s == 2 {
                        // The common case (ResNet downsampling) as one
                        // deinterleaving pass the compiler vectorizes.
                        let (even, odd) =
                            phases[row(0)..row(1) + width].split_at_mut(row(1) - row(0));
                        let pairs = line.chunks_exact(2);
                        if let [last] = pairs.remainder() {
                            even[g.w / 2] = *last;
                        }
                        for ((e, o), pair) in even.iter_mut().zip(odd.iter_mut()).zip(pairs) {
                            *e = pair[0];
                            *o = pair[1];
                        }
                        continue;
                    }
                    for (b, pixels) in (0..s).map(|b| (b, line.iter().skip(b).step_by(s))) {
                        for (o, &v) in phases[row(b)..][..width].iter_mut().zip(pixels) {
                            *o = v;
                        }
                    }
                }
            });
        PhasePlanes {
            data: std::borrow::Cow::Owned(data),
            rows,
            width,
            phases: s * s,
        }
    }

    /// Phase `phase` of input plane `q` (`image * channels + channel`).
    fn plane(&self, q: usize, phase: usize) -> &[f32] {
        let len = self.rows * self.width;
        &self.data[(q * self.phases + phase) * len..][..len]
    }

    /// The window kernel tap `(i, j)` reads.
    fn window(&self, g: &ConvGeometry, i: usize, j: usize) -> TapWindow {
        let row = StrideTap::new(g.oh, g.h, g.stride, g.padding, i);
        let col = StrideTap::new(g.ow, g.w, g.stride, g.padding, j);
        TapWindow {
            phase: row.phase * g.stride + col.phase,
            width: self.width,
            row_shift: row.shift,
            col_shift: col.shift,
            rows: row.outputs,
            cols: col.outputs,
        }
    }
}

/// What one kernel tap sees of a (phase) plane: output pixel `(y, x)` reads
/// plane pixel `(y + row_shift, x + col_shift)` for `y` in `rows` and `x` in
/// `cols` (half-open ranges), and zero padding elsewhere.
struct TapWindow {
    phase: usize,
    /// Width of the plane read.
    width: usize,
    row_shift: isize,
    col_shift: isize,
    rows: (usize, usize),
    cols: (usize, usize),
}

impl TapWindow {
    /// Writes into `out` (`oh x ow`) the pixels of `plane` this tap sees.
    fn gather(&self, plane: &[f32], g: &ConvGeometry, out: &mut [f32]) {
        let ((y_lo, y_hi), (x_lo, x_hi)) = (self.rows, self.cols);
        if x_lo == x_hi || y_lo == y_hi {
            out.fill(0.0);
            return;
        }
        out[..y_lo * g.ow].fill(0.0);
        out[y_hi * g.ow..].fill(0.0);
        // Plane index of output pixel (y, x_lo); non-negative inside the window.
        let source = |y: usize| {
            ((y as isize + self.row_shift) * self.width as isize + x_lo as isize + self.col_shift)
                as usize
        };
        if g.ow == self.width {
            // Output rows are as wide as plane rows: the window is one
            // contiguous block, moved with one copy; the columns outside
            // x_lo..x_hi picked up neighbouring rows' pixels and are zeroed.
            let start = y_lo * g.ow + x_lo;
            let len = (y_hi - 1) * g.ow + x_hi - start;
            out[start..start + len].copy_from_slice(&plane[source(y_lo)..][..len]);
            for row in out[y_lo * g.ow..y_hi * g.ow].chunks_exact_mut(g.ow) {
                row[..x_lo].fill(0.0);
                row[x_hi..].fill(0.0);
            }
            return;
        }
        for y in y_lo..y_hi {
            let dst = &mut out[y * g.ow..][..g.ow];
            dst[..x_lo].fill(0.0);
            dst[x_hi..].fill(0.0);
            dst[x_lo..x_hi].copy_from_slice(&plane[source(y)..][..x_hi - x_lo]);
        }
    }
}

/// True when output rows are as wide as input rows and the stride is 1
/// ("same" convolutions): a tap's whole window is then one contiguous block
/// of the input plane, shifted, and col2im can add it with one pass.
fn rows_align(g: &ConvGeometry) -> bool {
    g.stride == 1 && g.ow == g.w
}

/// Overwrites `dx` (images `n0..n0 + nb`, dense NCHW, exactly `nb` images
/// long) with col2im of `col`: every entry of `col` is added back to the input
/// pixel it was gathered from, so `dx` receives the gradient with respect to
/// the input when `col` holds the gradient with respect to the im2col matrix.
/// `col` is scratch: entries that map into the padding are zeroed.
///
/// Small output planes (at most [`SMALL_PLANE`] pixels) go through a
/// [`TapTable`]. Both ways add each input pixel's contributions in tap order.
pub(crate) fn col2im(g: &ConvGeometry, col: &mut [f32], nb: usize, dx: &mut [f32]) {
    if g.out_pixels() <= SMALL_PLANE {
        col2im_table(g, col, nb, dx);
    } else {
        col2im_rows(g, col, nb, dx);
    }
}

/// [`col2im`] through a [`TapTable`]: one table lookup per entry.
fn col2im_table(g: &ConvGeometry, col: &[f32], nb: usize, dx: &mut [f32]) {
    let (p, hw, taps) = (g.out_pixels(), g.in_pixels(), g.kh * g.kw);
    assert_eq!(col.len(), g.patch_len() * nb * p, "col2im: buffer size");
    assert_eq!(dx.len(), nb * g.c * hw, "col2im: output size");
    assert!(
        hw < TapTable::PADDING as usize,
        "col2im: plane too large for a table"
    );
    let (table, cols) = (TapTable::new(g), nb * p);
    dx.par_chunks_mut(hw).enumerate().for_each(|(q, plane)| {
        let (b, c) = (q / g.c, q % g.c);
        plane.fill(0.0);
        for tap in 0..taps {
            let src = &col[(c * taps + tap) * cols + b * p..][..p];
            for (&v, &offset) in src.iter().zip(table.tap(tap)) {
                if let Some(d) = plane.get_mut(offset as usize) {
                    *d += v;
                }
            }
        }
    });
}

/// [`col2im`] by whole rows (row-aligned blocks where rows align).
fn col2im_rows(g: &ConvGeometry, col: &mut [f32], nb: usize, dx: &mut [f32]) {
    let (p, hw, taps) = (g.out_pixels(), g.in_pixels(), g.kh * g.kw);
    assert_eq!(col.len(), g.patch_len() * nb * p, "col2im: buffer size");
    assert_eq!(dx.len(), nb * g.c * hw, "col2im: output size");
    let cols = nb * p;
    if rows_align(g) {
        zero_padding_columns(g, col, nb);
    }
    let col = &*col;
    // Each tap's valid output rows and columns, computed once for all planes.
    let windows: Vec<TapRanges> = (0..taps)
        .map(|tap| TapRanges::new(g, tap / g.kw, tap % g.kw))
        .collect();
    dx.par_chunks_mut(hw).enumerate().for_each(|(q, plane)| {
        let (b, c) = (q / g.c, q % g.c);
        plane.fill(0.0);
        for (tap, window) in windows.iter().enumerate() {
            let src = &col[(c * taps + tap) * cols + b * p..][..p];
            scatter_tap(g, src, window, plane);
        }
    });
}

/// Kernel tap `(i, j)` and the output rows and columns whose input pixel
/// it sees inside the image (half-open ranges, see [`valid_range`]).
struct TapRanges {
    i: usize,
    j: usize,
    rows: (usize, usize),
    cols: (usize, usize),
}

impl TapRanges {
    fn new(g: &ConvGeometry, i: usize, j: usize) -> Self {
        TapRanges {
            i,
            j,
            rows: valid_range(g.oh, g.h, g.stride, g.padding, i),
            cols: valid_range(g.ow, g.w, g.stride, g.padding, j),
        }
    }
}

/// Zeroes the entries of `col` whose column falls into the horizontal
/// padding, so that [`scatter_tap`] can add whole row-aligned blocks (the
/// zeroed entries land on neighbouring rows' pixels and add nothing).
fn zero_padding_columns(g: &ConvGeometry, col: &mut [f32], nb: usize) {
    let taps = g.kh * g.kw;
    col.par_chunks_mut(nb * g.out_pixels())
        .enumerate()
        .for_each(|(r, row)| {
            let j = (r % taps) % g.kw;
            let (x_lo, x_hi) = valid_range(g.ow, g.w, g.stride, g.padding, j);
            for out_row in row.chunks_exact_mut(g.ow) {
                out_row[..x_lo].fill(0.0);
                out_row[x_hi.max(x_lo)..].fill(0.0);
            }
        });
}

/// Adds `src` (`oh x ow`, the values of kernel tap `(i, j)`) onto the input
/// pixels that tap saw. With [`rows_align`], `src` must have its padding
/// columns zeroed (see [`zero_padding_columns`]).
fn scatter_tap(g: &ConvGeometry, src: &[f32], tap: &TapRanges, plane: &mut [f32]) {
    let (i, j) = (tap.i, tap.j);
    let ((y_lo, y_hi), (x_lo, x_hi)) = (tap.rows, tap.cols);
    if x_lo == x_hi || y_lo == y_hi {
        return;
    }
    if rows_align(g) {
        let start = y_lo * g.ow + x_lo;
        let len = (y_hi - 1) * g.ow + x_hi - start;
        let dst = (y_lo + i - g.padding) * g.w + x_lo + j - g.padding;
        for (d, v) in plane[dst..dst + len]
            .iter_mut()
            .zip(&src[start..start + len])
        {
            *d += *v;
        }
        return;
    }
    for y in y_lo..y_hi {
        let dst = &mut plane[(y * g.stride + i - g.padding) * g.w..][..g.w];
        let s = &src[y * g.ow + x_lo..y * g.ow + x_hi];
        let first = x_lo * g.stride + j - g.padding;
        if g.stride == 1 {
            for (d, v) in dst[first..first + s.len()].iter_mut().zip(s) {
                *d += *v;
            }
        } else {
            let (body, last) = s.split_at(s.len() - 1);
            let groups = dst[first..first + body.len() * g.stride].chunks_exact_mut(g.stride);
            for (group, v) in groups.zip(body) {
                group[0] += *v;
            }
            dst[first + body.len() * g.stride] += last[0];
        }
    }
}

/// Copies `src` (`rows x nb * p`: `nb` column blocks of `p`) into `dst`
/// (`nb x rows x p`, dense): the GEMM's batch-in-columns layout back to NCHW.
pub(crate) fn blocks_to_batch(src: &[f32], rows: usize, p: usize, nb: usize, dst: &mut [f32]) {
    assert!(
        src.len() == rows * nb * p && dst.len() == src.len(),
        "blocks_to_batch: sizes"
    );
    dst.par_chunks_mut(p).enumerate().for_each(|(q, out)| {
        let (b, r) = (q / rows, q % rows);
        out.copy_from_slice(&src[r * nb * p + b * p..][..p]);
    });
}

/// Copies `src` (`nb x rows x p`, dense NCHW images) into `dst`
/// (`rows x nb * p`): the inverse of [`blocks_to_batch`].
pub(crate) fn batch_to_blocks(src: &[f32], rows: usize, p: usize, nb: usize, dst: &mut [f32]) {
    assert!(
        src.len() == rows * nb * p && dst.len() == src.len(),
        "batch_to_blocks: sizes"
    );
    dst.par_chunks_mut(nb * p).enumerate().for_each(|(r, out)| {
        for (b, block) in out.chunks_exact_mut(p).enumerate() {
            block.copy_from_slice(&src[(b * rows + r) * p..][..p]);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    type Lowering = fn(&ConvGeometry, &[f32], usize, usize, &mut [f32]);
    type Raising = fn(&ConvGeometry, &mut [f32], usize, &mut [f32]);

    /// Both ways to lower (by rows, by table), whatever the plane size.
    const LOWERINGS: [Lowering; 2] = [im2col_rows, im2col_table];
    /// The matching ways back.
    const RAISINGS: [Raising; 2] = [col2im_rows, |g, col, nb, dx| col2im_table(g, col, nb, dx)];

    #[test]
    fn valid_range_clips_padding() {
        // 3-tap kernel, padding 1, stride 1 over 5 pixels: tap 0 misses output 0,
        // tap 2 misses output 4.
        assert_eq!(valid_range(5, 5, 1, 1, 0), (1, 5));
        assert_eq!(valid_range(5, 5, 1, 1, 1), (0, 5));
        assert_eq!(valid_range(5, 5, 1, 1, 2), (0, 4));
        // Stride 2, padding 3, 7 taps over 8 pixels (out 4): tap 0 reads -3,-1,1,3.
        assert_eq!(valid_range(4, 8, 2, 3, 0), (2, 4));
        // A 7-tap kernel with padding 3 over a single pixel: only the centre
        // tap sees it; the outer taps lie wholly in the padding.
        assert_eq!(valid_range(1, 1, 1, 3, 3), (0, 1));
        let (lo, hi) = valid_range(1, 1, 1, 3, 0);
        assert!(lo == hi && hi <= 1, "{lo}..{hi}");
        let (lo, hi) = valid_range(1, 1, 1, 3, 6);
        assert!(lo == hi && hi <= 1, "{lo}..{hi}");
    }

    #[test]
    fn im2col_of_a_small_image_by_hand() {
        // One 1-channel 2x3 image, 2x2 kernel, stride 1, padding 0: out 1x2.
        let g = ConvGeometry::new(&[1, 1, 2, 3], &[1, 1, 2, 2], 1, 0).unwrap();
        let x = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
        let padded = ConvGeometry::new(&[1, 1, 2, 3], &[1, 1, 2, 2], 2, 1).unwrap();
        for lower in LOWERINGS {
            let mut col = vec![f32::NAN; 4 * 2];
            lower(&g, &x, 0, 1, &mut col);
            assert_eq!(col, [1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 5.0, 6.0]);
            // With padding 1, stride 2: out 2x2; tap (0, 0) sees only x[0][1]... at (1, 1).
            let mut col = vec![f32::NAN; 4 * 4];
            lower(&padded, &x, 0, 1, &mut col);
            assert_eq!(&col[..4], &[0.0, 0.0, 0.0, 5.0]);
            assert_eq!(&col[12..], &[1.0, 3.0, 0.0, 0.0]);
        }
    }

    #[test]
    fn batch_blocks_round_trip() {
        // Two images of 2 rows x 3 pixels.
        let batch: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let mut blocks = vec![0.0; 12];
        batch_to_blocks(&batch, 2, 3, 2, &mut blocks);
        assert_eq!(
            blocks,
            [0.0, 1.0, 2.0, 6.0, 7.0, 8.0, 3.0, 4.0, 5.0, 9.0, 10.0, 11.0]
        );
        let mut back = vec![0.0; 12];
        blocks_to_batch(&blocks, 2, 3, 2, &mut back);
        assert_eq!(back, batch);
    }

    #[test]
    fn col2im_is_the_adjoint_of_im2col() {
        // <im2col(x), y> == <x, col2im(y)> for arbitrary x and y; the
        // geometries cover strided, row-aligned ("same") and wide-padding cases.
        for (input, weight, stride, padding) in [
            ([2, 3, 5, 7], [4, 3, 3, 3], 2, 1),
            ([2, 3, 5, 7], [4, 3, 3, 3], 1, 1),
            ([1, 2, 6, 4], [1, 2, 5, 5], 1, 2),
            ([2, 2, 4, 5], [1, 2, 3, 3], 1, 3),
        ] {
            let g = ConvGeometry::new(&input, &weight, stride, padding).unwrap();
            let len = input.iter().product::<usize>();
            let x: Vec<f32> = (0..len).map(|v| ((v * 37 % 11) as f32) - 5.0).collect();
            let n = g.patch_len() * g.n * g.out_pixels();
            let y: Vec<f32> = (0..n).map(|v| ((v * 13 % 7) as f32) - 3.0).collect();
            let mut raised = Vec::new();
            for (lower, raise) in LOWERINGS.iter().zip(RAISINGS) {
                let mut col = vec![f32::NAN; n];
                lower(&g, &x, 0, g.n, &mut col);
                let mut dx = vec![f32::NAN; x.len()];
                raise(&g, &mut y.clone(), g.n, &mut dx);
                let lhs: f32 = col.iter().zip(&y).map(|(a, b)| a * b).sum();
                let rhs: f32 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
                assert_eq!(lhs, rhs, "{g:?}");
                raised.push(dx);
            }
            // Same sums in the same order: bit-identical.
            assert_eq!(raised[0], raised[1], "{g:?}: rows and table differ");
        }
    }

    /// im2col by its definition, one pixel at a time.
    fn reference_im2col(g: &ConvGeometry, x: &[f32]) -> Vec<f32> {
        let (p, taps) = (g.out_pixels(), g.kh * g.kw);
        let mut col = vec![0.0; g.patch_len() * g.n * p];
        for (r, row) in col.chunks_exact_mut(g.n * p).enumerate() {
            let (c, i, j) = (r / taps, r % taps / g.kw, r % g.kw);
            for (o, v) in row.iter_mut().enumerate() {
                let (b, y, xx) = (o / p, o % p / g.ow, o % g.ow);
                let iy = (y * g.stride + i) as isize - g.padding as isize;
                let ix = (xx * g.stride + j) as isize - g.padding as isize;
                if (0..g.h as isize).contains(&iy) && (0..g.w as isize).contains(&ix) {
                    *v = x[((b * g.c + c) * g.h + iy as usize) * g.w + ix as usize];
                }
            }
        }
        col
    }

    #[test]
    fn im2col_matches_its_definition_for_every_stride_and_padding() {
        // Row-aligned "same" convolutions (one block copy per tap), strided
        // ones (stride phases, with odd and even sizes so that phases differ
        // in extent, the row-aligned phase copy included), paddings wider than
        // the kernel reaches, and kernels smaller than the stride.
        for (input, weight, stride, padding) in [
            ([1, 2, 4, 5], [1, 2, 3, 3], 1, 1),
            ([2, 3, 7, 6], [2, 3, 3, 3], 1, 0),
            ([2, 3, 8, 8], [4, 3, 7, 7], 2, 3),
            ([2, 3, 9, 7], [4, 3, 7, 7], 2, 3),
            ([2, 2, 5, 7], [1, 2, 3, 3], 2, 1),
            ([1, 3, 6, 6], [2, 3, 1, 1], 2, 0),
            ([1, 2, 10, 11], [1, 2, 3, 3], 3, 2),
            ([1, 1, 7, 5], [1, 1, 2, 2], 3, 0),
            ([2, 2, 4, 5], [1, 2, 3, 3], 1, 3),
            ([1, 1, 3, 3], [1, 1, 5, 5], 2, 4),
        ] {
            let g = ConvGeometry::new(&input, &weight, stride, padding).unwrap();
            let len = input.iter().product::<usize>();
            let x: Vec<f32> = (0..len).map(|v| v as f32 + 1.0).collect();
            let expected = reference_im2col(&g, &x);
            let last: Vec<f32> = expected
                .chunks_exact(g.n * g.out_pixels())
                .flat_map(|row| &row[(g.n - 1) * g.out_pixels()..])
                .copied()
                .collect();
            for lower in LOWERINGS {
                let mut col = vec![f32::NAN; expected.len()];
                lower(&g, &x, 0, g.n, &mut col);
                assert_eq!(col, expected, "{g:?}");
                // One image at a time, from the middle of the batch.
                let mut col = vec![f32::NAN; last.len()];
                lower(&g, &x, g.n - 1, 1, &mut col);
                assert_eq!(col, last, "{g:?}, last image");
            }
        }
    }
}
