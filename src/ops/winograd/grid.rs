//! The tiles of one convolution and the moves between its images and its
//! transformed tiles, tile row by tile row.

use super::matrices::Tiling;
use super::tiles::{gradient_tiles, input_tiles, output_tiles, padded, stage, unstage};
use crate::ops::gemm::{matmul_serial, Mat, MatMut};
use crate::ops::geometry::ConvGeometry;
use std::ops::Range;

/// The sizes of one convolution as the tile code sees it: `inputs`
/// channels in, `outputs` out, the same plane size on both sides (3x3
/// kernels, stride 1, padding 1).
#[derive(Debug, Clone, Copy)]
pub(super) struct Planes {
    pub(super) n: usize,
    pub(super) inputs: usize,
    pub(super) outputs: usize,
    pub(super) h: usize,
    pub(super) w: usize,
}

impl Planes {
    /// The planes of `g`, after checking that `g` is a convolution the
    /// tiles compute and that the operands' lengths fit it.
    ///
    /// # Panics
    /// If either check fails: the callers' dispatch guarantees both.
    pub(super) fn of(g: &ConvGeometry, input: usize, weight: usize) -> Self {
        assert!(
            super::supports(g),
            "winograd: unsupported convolution {g:?}"
        );
        assert!(
            input == g.n * g.c * g.h * g.w && weight == g.k * g.c * 9,
            "winograd: operand lengths do not match {g:?}"
        );
        Self {
            n: g.n,
            inputs: g.c,
            outputs: g.k,
            h: g.h,
            w: g.w,
        }
    }

    /// The planes of the input gradient's convolution: channels swapped.
    pub(super) fn transposed(self) -> Self {
        Self {
            inputs: self.outputs,
            outputs: self.inputs,
            ..self
        }
    }

    /// Floats of one input image.
    pub(super) fn in_image(&self) -> usize {
        self.inputs * self.h * self.w
    }

    /// Floats of one output image.
    pub(super) fn out_image(&self) -> usize {
        self.outputs * self.h * self.w
    }
}

/// The tiles of one convolution: `th x tw` tiles of `M x M` output pixels
/// per image, channels padded to whole transform blocks, and the staged
/// row widths. Tile rows are numbered across images (`b * th + ty`).
#[derive(Debug, Clone, Copy)]
pub(super) struct Grid<const M: usize, const A: usize> {
    pub(super) p: Planes,
    /// Tile rows and columns per image.
    pub(super) th: usize,
    pub(super) tw: usize,
    /// Input and output channels padded to whole transform blocks.
    pub(super) cp: usize,
    pub(super) kp: usize,
    /// Staged columns of input rows (`M * tw + 2`: one of padding on each
    /// side) and of output rows (`M * tw`).
    in_width: usize,
    out_width: usize,
}

impl<const M: usize, const A: usize> Grid<M, A> {
    pub(super) fn new(p: Planes) -> Self {
        let tw = p.w.div_ceil(M);
        Self {
            p,
            th: p.h.div_ceil(M),
            tw,
            cp: padded(p.inputs),
            kp: padded(p.outputs),
            in_width: M * tw + 2,
            out_width: M * tw,
        }
    }

    pub(super) fn tiles_per_image(&self) -> usize {
        self.th * self.tw
    }

    /// Bytes of one tile's transformed input and product.
    pub(super) fn tile_bytes(&self) -> usize {
        4 * A * A * (self.cp + self.kp)
    }

    /// Floats of the staging buffer of [`Self::inputs`], and of the one of
    /// [`Self::gradients`] and [`Self::outputs`].
    pub(super) fn staged_lens(&self) -> (usize, usize) {
        (A * self.in_width * self.cp, M * self.out_width * self.kp)
    }

    /// Transforms the input tiles of tile rows `rows` (numbered from the
    /// first image of `x`) into `planes` (`A^2` planes of `tiles x cp`),
    /// the first row's tiles at tile 0.
    pub(super) fn inputs<T: Tiling<M, A>>(
        &self,
        x: &[f32],
        rows: Range<usize>,
        planes: &mut [&mut [f32]],
        staged: &mut [f32],
    ) {
        let (p, image_len) = (&self.p, self.p.in_image());
        let first = rows.start;
        for row in rows {
            let (b, ty) = (row / self.th, row % self.th);
            let image = &x[b * image_len..][..image_len];
            let y0 = (M * ty) as isize - 1;
            let shape = (p.inputs, p.h, p.w);
            stage(image, shape, y0, A, 1, self.in_width, self.cp, staged);
            let t0 = (row - first) * self.tw;
            input_tiles::<M, A, T>(staged, self.in_width, self.cp, self.tw, planes, t0);
        }
    }

    /// As [`Self::inputs`] for the output-gradient tiles (`A dY A^T`) of
    /// `dy`, into planes of `tiles x kp`.
    pub(super) fn gradients<T: Tiling<M, A>>(
        &self,
        dy: &[f32],
        rows: Range<usize>,
        planes: &mut [&mut [f32]],
        staged: &mut [f32],
    ) {
        let (p, image_len) = (&self.p, self.p.out_image());
        let first = rows.start;
        for row in rows {
            let (b, ty) = (row / self.th, row % self.th);
            let image = &dy[b * image_len..][..image_len];
            let (shape, y0) = ((p.outputs, p.h, p.w), (M * ty) as isize);
            stage(image, shape, y0, M, 0, self.out_width, self.kp, staged);
            let t0 = (row - first) * self.tw;
            gradient_tiles::<M, A, T>(staged, self.out_width, self.kp, self.tw, planes, t0);
        }
    }

    /// The inverse transform of the products `planes` (`A^2` planes of
    /// `tiles x kp`) of tile rows `rows` into the output images `out`
    /// (numbered as for [`Self::inputs`]).
    pub(super) fn outputs<T: Tiling<M, A>>(
        &self,
        planes: &[&[f32]],
        rows: Range<usize>,
        out: &mut [f32],
        staged: &mut [f32],
    ) {
        let (p, image_len) = (&self.p, self.p.out_image());
        let first = rows.start;
        for row in rows {
            let (b, ty) = (row / self.th, row % self.th);
            let t0 = (row - first) * self.tw;
            output_tiles::<M, A, T>(planes, t0, self.tw, self.kp, staged, self.out_width);
            let y0 = M * ty;
            let valid = M.min(p.h - y0);
            let image = &mut out[b * image_len..][..image_len];
            let shape = (p.outputs, p.h, p.w);
            unstage(staged, valid, self.out_width, self.kp, shape, y0, image);
        }
    }

    /// The product `P[e] = V[e] U[e]` of one element on this thread:
    /// `tiles` transformed inputs `v` (`tiles x cp`), its transformed
    /// kernels `u` (`inputs x outputs`), into `product` (`tiles x kp`),
    /// whose padding channels `outputs..kp` are set to zero: the inverse
    /// transform reads whole blocks of channels, so every float of the
    /// first `tiles * kp` is written.
    pub(super) fn product(&self, tiles: usize, v: &[f32], u: &[f32], product: &mut [f32]) {
        let p = &self.p;
        matmul_serial(
            MatMut::strided(product, tiles, p.outputs, self.kp),
            Mat::strided(v, tiles, p.inputs, self.cp),
            Mat::dense(u, p.inputs, p.outputs),
            false,
        );
        if self.kp > p.outputs {
            for row in product[..tiles * self.kp].chunks_exact_mut(self.kp) {
                row[p.outputs..].fill(0.0);
            }
        }
    }

    /// Adds (or with `accumulate` false, writes) one element's weight
    /// gradient `dU[e] = V[e]^T dP[e]` over `tiles` tiles: `v` is `tiles x
    /// cp`, `dp` `tiles x kp`, `du` `inputs x outputs`.
    pub(super) fn kernel_gradient(
        &self,
        tiles: usize,
        v: &[f32],
        dp: &[f32],
        du: &mut [f32],
        accumulate: bool,
    ) {
        let p = &self.p;
        matmul_serial(
            MatMut::dense(du, p.inputs, p.outputs),
            Mat::strided(v, tiles, p.inputs, self.cp).t(),
            Mat::strided(dp, tiles, p.outputs, self.kp),
            accumulate,
        );
    }
}

/// Splits each of the `planes` equal planes of `data` into pieces of
/// `piece` floats and groups the pieces by position: entry `i` holds piece
/// `i` of every plane, in plane order. Parallel tasks that each fill a
/// range of tiles of every element get disjoint slices this way.
pub(super) fn pieces_by_position(
    data: &mut [f32],
    planes: usize,
    piece: usize,
) -> Vec<Vec<&mut [f32]>> {
    let plane_len = data.len() / planes;
    let mut grouped: Vec<Vec<&mut [f32]>> = (0..plane_len.div_ceil(piece))
        .map(|_| Vec::with_capacity(planes))
        .collect();
    for plane in data.chunks_exact_mut(plane_len) {
        for (group, part) in grouped.iter_mut().zip(plane.chunks_mut(piece)) {
            group.push(part);
        }
    }
    grouped
}

/// [`pieces_by_position`] for reading.
pub(super) fn pieces_by_position_ref(
    data: &[f32],
    planes: usize,
    piece: usize,
) -> Vec<Vec<&[f32]>> {
    let plane_len = data.len() / planes;
    let mut grouped: Vec<Vec<&[f32]>> = (0..plane_len.div_ceil(piece))
        .map(|_| Vec::with_capacity(planes))
        .collect();
    for plane in data.chunks_exact(plane_len) {
        for (group, part) in grouped.iter_mut().zip(plane.chunks(piece)) {
            group.push(part);
        }
    }
    grouped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_group_equal_positions_of_every_plane() {
        let mut data: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let groups = pieces_by_position(&mut data, 2, 4);
        // Planes [0..6) and [6..12), pieces of 4: [0..4) [4..6) per plane.
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].len(), 2);
        assert_eq!(groups[0][1], &[6.0, 7.0, 8.0, 9.0]);
        assert_eq!(groups[1][0], &[4.0, 5.0]);
        let read = pieces_by_position_ref(&data, 3, 3);
        assert_eq!(read.len(), 2);
        assert_eq!(read[1][2], &[11.0]);
    }

    #[test]
    fn products_write_every_channel_padding_included() {
        // 3 outputs padded to one block of 16: the inverse transform reads
        // all 16 channels of every tile, so the product writes them all.
        let p = Planes {
            n: 1,
            inputs: 2,
            outputs: 3,
            h: 4,
            w: 4,
        };
        let grid = Grid::<2, 4>::new(p);
        let (tiles, cp, kp) = (3, grid.cp, grid.kp);
        let v: Vec<f32> = (0..tiles * cp).map(|i| i as f32).collect();
        let u = [1.0, 0.0, 2.0, 0.0, 1.0, 3.0];
        let mut product = vec![f32::NAN; tiles * kp + 1];
        grid.product(tiles, &v, &u, &mut product);
        for t in 0..tiles {
            let (a, b) = (v[t * cp], v[t * cp + 1]);
            let row = &product[t * kp..][..kp];
            assert_eq!(&row[..3], &[a, b, 2.0 * a + 3.0 * b]);
            assert!(row[3..].iter().all(|&x| x == 0.0), "{row:?}");
        }
        assert!(product[tiles * kp].is_nan(), "nothing past the tiles");
    }

    #[test]
    fn grid_covers_the_planes_with_tiles() {
        let p = Planes {
            n: 2,
            inputs: 3,
            outputs: 17,
            h: 7,
            w: 9,
        };
        let grid = Grid::<4, 6>::new(p);
        assert_eq!((grid.th, grid.tw, grid.cp, grid.kp), (2, 3, 16, 32));
        assert_eq!(grid.staged_lens(), (6 * 14 * 16, 4 * 12 * 32));
        let back = p.transposed();
        assert_eq!((back.inputs, back.outputs), (17, 3));
    }
}
