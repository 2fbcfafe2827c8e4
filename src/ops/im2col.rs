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

/// Fills `col` (`patch_len x nb * out_pixels`, dense) with the im2col matrix
/// of images `n0..n0 + nb` of the dense NCHW input `x`.
pub(crate) fn im2col(g: &ConvGeometry, x: &[f32], n0: usize, nb: usize, col: &mut [f32]) {
    let (p, hw, taps) = (g.out_pixels(), g.in_pixels(), g.kh * g.kw);
    assert_eq!(col.len(), g.patch_len() * nb * p, "im2col: buffer size");
    assert!(x.len() >= (n0 + nb) * g.c * hw, "im2col: input too short");
    col.par_chunks_mut(nb * p).enumerate().for_each(|(r, row)| {
        let (c, tap) = (r / taps, r % taps);
        let (i, j) = (tap / g.kw, tap % g.kw);
        for (b, out) in row.chunks_exact_mut(p).enumerate() {
            let plane = &x[((n0 + b) * g.c + c) * hw..][..hw];
            gather_tap(g, plane, i, j, out);
        }
    });
}

/// True when output rows are as wide as input rows and the stride is 1
/// ("same" convolutions): a tap's whole window is then one contiguous block
/// of the input plane, shifted, and can be moved with one copy.
fn rows_align(g: &ConvGeometry) -> bool {
    g.stride == 1 && g.ow == g.w
}

/// Writes into `out` (`oh x ow`) the input pixels kernel tap `(i, j)` sees.
fn gather_tap(g: &ConvGeometry, plane: &[f32], i: usize, j: usize, out: &mut [f32]) {
    let (y_lo, y_hi) = valid_range(g.oh, g.h, g.stride, g.padding, i);
    let (x_lo, x_hi) = valid_range(g.ow, g.w, g.stride, g.padding, j);
    if x_lo == x_hi || y_lo == y_hi {
        out.fill(0.0);
        return;
    }
    out[..y_lo * g.ow].fill(0.0);
    out[y_hi * g.ow..].fill(0.0);
    if rows_align(g) {
        // One copy of the block from (y_lo, x_lo) to (y_hi - 1, x_hi); the
        // columns outside x_lo..x_hi picked up neighbouring rows' pixels and
        // are zeroed after.
        let start = y_lo * g.ow + x_lo;
        let len = (y_hi - 1) * g.ow + x_hi - start;
        let src = (y_lo + i - g.padding) * g.w + x_lo + j - g.padding;
        out[start..start + len].copy_from_slice(&plane[src..src + len]);
        for row in out[y_lo * g.ow..y_hi * g.ow].chunks_exact_mut(g.ow) {
            row[..x_lo].fill(0.0);
            row[x_hi..].fill(0.0);
        }
        return;
    }
    for y in y_lo..y_hi {
        let src = &plane[(y * g.stride + i - g.padding) * g.w..][..g.w];
        let dst = &mut out[y * g.ow..][..g.ow];
        dst[..x_lo].fill(0.0);
        dst[x_hi..].fill(0.0);
        let first = x_lo * g.stride + j - g.padding;
        if g.stride == 1 {
            dst[x_lo..x_hi].copy_from_slice(&src[first..first + (x_hi - x_lo)]);
        } else {
            // Fixed-size groups of `stride` let the compiler vectorize the
            // strided read; the last pixel may lack a full group.
            let (body, last) = dst[x_lo..x_hi].split_at_mut(x_hi - x_lo - 1);
            let groups = src[first..first + body.len() * g.stride].chunks_exact(g.stride);
            for (d, group) in body.iter_mut().zip(groups) {
                *d = group[0];
            }
            last[0] = src[first + body.len() * g.stride];
        }
    }
}

/// Overwrites `dx` (images `n0..n0 + nb`, dense NCHW, exactly `nb` images
/// long) with col2im of `col`: every entry of `col` is added back to the input
/// pixel it was gathered from, so `dx` receives the gradient with respect to
/// the input when `col` holds the gradient with respect to the im2col matrix.
/// `col` is scratch: entries that map into the padding are zeroed.
pub(crate) fn col2im(g: &ConvGeometry, col: &mut [f32], nb: usize, dx: &mut [f32]) {
    let (p, hw, taps) = (g.out_pixels(), g.in_pixels(), g.kh * g.kw);
    assert_eq!(col.len(), g.patch_len() * nb * p, "col2im: buffer size");
    assert_eq!(dx.len(), nb * g.c * hw, "col2im: output size");
    let cols = nb * p;
    if rows_align(g) {
        zero_padding_columns(g, col, nb);
    }
    let col = &*col;
    dx.par_chunks_mut(hw).enumerate().for_each(|(q, plane)| {
        let (b, c) = (q / g.c, q % g.c);
        plane.fill(0.0);
        for tap in 0..taps {
            let src = &col[(c * taps + tap) * cols + b * p..][..p];
            scatter_tap(g, src, tap / g.kw, tap % g.kw, plane);
        }
    });
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
fn scatter_tap(g: &ConvGeometry, src: &[f32], i: usize, j: usize, plane: &mut [f32]) {
    let (y_lo, y_hi) = valid_range(g.oh, g.h, g.stride, g.padding, i);
    let (x_lo, x_hi) = valid_range(g.ow, g.w, g.stride, g.padding, j);
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
        let mut col = vec![f32::NAN; 4 * 2];
        im2col(&g, &x, 0, 1, &mut col);
        assert_eq!(col, [1.0, 2.0, 2.0, 3.0, 4.0, 5.0, 5.0, 6.0]);
        // With padding 1, stride 2: out 2x2; tap (0, 0) sees only x[0][1]... at (1, 1).
        let g = ConvGeometry::new(&[1, 1, 2, 3], &[1, 1, 2, 2], 2, 1).unwrap();
        let mut col = vec![f32::NAN; 4 * 4];
        im2col(&g, &x, 0, 1, &mut col);
        assert_eq!(&col[..4], &[0.0, 0.0, 0.0, 5.0]);
        assert_eq!(&col[12..], &[1.0, 3.0, 0.0, 0.0]);
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
            let mut col = vec![f32::NAN; n];
            im2col(&g, &x, 0, g.n, &mut col);
            let mut dx = vec![f32::NAN; x.len()];
            col2im(&g, &mut y.clone(), g.n, &mut dx);
            let lhs: f32 = col.iter().zip(&y).map(|(a, b)| a * b).sum();
            let rhs: f32 = x.iter().zip(&dx).map(|(a, b)| a * b).sum();
            assert_eq!(lhs, rhs, "{g:?}");
        }
    }

    #[test]
    fn row_aligned_copy_matches_the_per_row_gather() {
        // A "same" 3x3 convolution takes the block path; its result must equal
        // the direct definition, checked pixel by pixel.
        let g = ConvGeometry::new(&[1, 2, 4, 5], &[1, 2, 3, 3], 1, 1).unwrap();
        assert!(rows_align(&g));
        let x: Vec<f32> = (0..40).map(|v| v as f32 + 1.0).collect();
        let mut col = vec![f32::NAN; g.patch_len() * g.out_pixels()];
        im2col(&g, &x, 0, 1, &mut col);
        for (r, row) in col.chunks_exact(g.out_pixels()).enumerate() {
            let (c, i, j) = (r / 9, r % 9 / 3, r % 3);
            for (o, &v) in row.iter().enumerate() {
                let (y, xx) = ((o / 5 + i) as isize - 1, (o % 5 + j) as isize - 1);
                let inside = (0..4).contains(&y) && (0..5).contains(&xx);
                let expected = if inside {
                    x[c * 20 + y as usize * 5 + xx as usize]
                } else {
                    0.0
                };
                assert_eq!(v, expected, "row {r} pixel {o}");
            }
        }
    }
}
