//! The Winograd convolution of images with transformed kernels: the
//! forward pass, and the input gradient as the forward convolution of the
//! output gradient with the flipped kernels.

use super::grid::{pieces_by_position, pieces_by_position_ref, Grid};
use super::matrices::Tiling;
use super::{cpu_buffer, Budget};
use crate::ops::scratch::with_scratch;
use rayon::prelude::*;

/// `out = conv(x, u)` for transformed kernels `u` (`A^2` planes of
/// `inputs x outputs`): in chunks where the transformed kernels stay in
/// cache, else in rounds.
pub(super) fn convolve<const M: usize, const A: usize, T: Tiling<M, A>>(
    grid: &Grid<M, A>,
    x: &[f32],
    u: &[f32],
    out: &mut [f32],
    budget: &Budget,
) {
    assert_eq!(u.len(), A * A * grid.p.inputs * grid.p.outputs);
    assert_eq!(x.len(), grid.p.n * grid.p.in_image());
    assert_eq!(out.len(), grid.p.n * grid.p.out_image());
    if 4 * u.len() > budget.kernels_in_cache {
        convolve_rounds::<M, A, T>(grid, x, u, out, budget);
    } else {
        convolve_chunks::<M, A, T>(grid, x, u, out, budget);
    }
}

/// How [`convolve_chunks`] splits a batch: tasks of whole images, each
/// transformed and multiplied chunk by chunk on one thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ChunkPlan {
    images_per_task: usize,
    /// Tile rows per chunk (a chunk may span several of a task's images).
    rows_per_chunk: usize,
}

impl ChunkPlan {
    fn new<const M: usize, const A: usize>(grid: &Grid<M, A>, budget: &Budget) -> Self {
        let target = (budget.chunk_bytes / grid.tile_bytes()).max(budget.min_chunk_tiles);
        let tiles_per_image = grid.tiles_per_image();
        if tiles_per_image >= target {
            return Self {
                images_per_task: 1,
                rows_per_chunk: target.div_ceil(grid.tw).min(grid.th),
            };
        }
        let by_budget = target / tiles_per_image;
        let by_tasks = (grid.p.n / budget.min_tasks).max(1);
        let at_least = budget.min_chunk_tiles.div_ceil(tiles_per_image);
        let images_per_task = by_budget.min(by_tasks).max(at_least).clamp(1, grid.p.n);
        Self {
            images_per_task,
            rows_per_chunk: images_per_task * grid.th,
        }
    }
}

/// [`convolve`] for layers whose transformed kernels stay in cache: each
/// task (a group of images) runs chunk by chunk, transforms, products and
/// inverse transforms of one chunk on one thread with the chunk in cache.
fn convolve_chunks<const M: usize, const A: usize, T: Tiling<M, A>>(
    grid: &Grid<M, A>,
    x: &[f32],
    u: &[f32],
    out: &mut [f32],
    budget: &Budget,
) {
    let plan = ChunkPlan::new(grid, budget);
    let (in_image, out_image) = (grid.p.in_image(), grid.p.out_image());
    let (staged_in, staged_out) = grid.staged_lens();
    let staged_len = staged_in.max(staged_out);
    let chunk_tiles = plan.rows_per_chunk * grid.tw;
    let (v_len, products_len) = (A * A * chunk_tiles * grid.cp, A * A * chunk_tiles * grid.kp);
    out.par_chunks_mut(plan.images_per_task * out_image)
        .zip(x.par_chunks(plan.images_per_task * in_image))
        .for_each(|(out, x)| {
            let total_rows = out.len() / out_image * grid.th;
            // Each chunk's transforms write every float of `v` and
            // `products` that its products and inverse transforms read.
            with_scratch(staged_len + v_len, products_len, |scratch, products| {
                let (staged, v) = scratch.split_at_mut(staged_len);
                for first in (0..total_rows).step_by(plan.rows_per_chunk) {
                    let rows = first..(first + plan.rows_per_chunk).min(total_rows);
                    let tiles = rows.len() * grid.tw;
                    let (v_plane, p_plane) = (tiles * grid.cp, tiles * grid.kp);
                    let v = &mut v[..A * A * v_plane];
                    let products = &mut products[..A * A * p_plane];
                    let mut v_planes: Vec<&mut [f32]> = v.chunks_exact_mut(v_plane).collect();
                    grid.inputs::<T>(x, rows.clone(), &mut v_planes, staged);
                    for ((pe, ve), ue) in products
                        .chunks_exact_mut(p_plane)
                        .zip(v.chunks_exact(v_plane))
                        .zip(u.chunks_exact(u.len() / (A * A)))
                    {
                        grid.product(tiles, ve, ue, pe);
                    }
                    let p_planes: Vec<&[f32]> = products.chunks_exact(p_plane).collect();
                    grid.outputs::<T>(&p_planes, rows, out, staged);
                }
            });
        });
}

/// [`convolve`] for layers with large transformed kernels: rounds of whole
/// images, each transformed in parallel over its images, multiplied in
/// parallel over the elements (one GEMM per element over all the round's
/// tiles, so each transformed kernel is read once per round) and
/// transformed back in parallel over its images.
fn convolve_rounds<const M: usize, const A: usize, T: Tiling<M, A>>(
    grid: &Grid<M, A>,
    x: &[f32],
    u: &[f32],
    out: &mut [f32],
    budget: &Budget,
) {
    let tiles_per_image = grid.tiles_per_image();
    let round_tiles = (budget.round_bytes / grid.tile_bytes()).max(budget.min_round_tiles);
    let per_round = (round_tiles / tiles_per_image).clamp(1, grid.p.n);
    let (in_image, out_image) = (grid.p.in_image(), grid.p.out_image());
    let (staged_in, staged_out) = grid.staged_lens();
    let (cp, kp) = (grid.cp, grid.kp);
    // SAFETY: each round reads only the first `A * A * tiles * cp` floats
    // of `v` and `A * A * tiles * kp` of `products`, after writing them:
    // the input transforms write every channel (padding included) of
    // every tile of the round, and each element's product every channel
    // of every tile (`Grid::product` zeroes the padding channels), all
    // before the products and the inverse transforms read them.
    let mut v = unsafe { cpu_buffer(A * A * per_round * tiles_per_image * cp) };
    // SAFETY: see `v`.
    let mut products = unsafe { cpu_buffer(A * A * per_round * tiles_per_image * kp) };
    for (x, out) in x
        .chunks(per_round * in_image)
        .zip(out.chunks_mut(per_round * out_image))
    {
        let tiles = x.len() / in_image * tiles_per_image;
        let v = &mut v[..A * A * tiles * cp];
        let products = &mut products[..A * A * tiles * kp];
        pieces_by_position(v, A * A, tiles_per_image * cp)
            .into_par_iter()
            .enumerate()
            .for_each(|(b, mut planes)| {
                with_scratch(staged_in, 0, |staged, _| {
                    let rows = b * grid.th..(b + 1) * grid.th;
                    grid.inputs::<T>(x, rows, &mut planes, staged);
                });
            });
        products
            .par_chunks_mut(tiles * kp)
            .zip(v.par_chunks(tiles * cp))
            .zip(u.par_chunks(u.len() / (A * A)))
            .for_each(|((pe, ve), ue)| grid.product(tiles, ve, ue, pe));
        pieces_by_position_ref(products, A * A, tiles_per_image * kp)
            .into_par_iter()
            .zip(out.par_chunks_mut(out_image))
            .for_each(|(planes, out)| {
                with_scratch(staged_out, 0, |staged, _| {
                    grid.outputs::<T>(&planes, 0..grid.th, out, staged);
                });
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::winograd::grid::Planes;

    fn planes(n: usize, channels: usize, side: usize) -> Planes {
        Planes {
            n,
            inputs: channels,
            outputs: channels,
            h: side,
            w: side,
        }
    }

    #[test]
    fn chunks_hold_whole_tile_rows_and_enough_tiles() {
        let budget = Budget::DEFAULT;
        // ResNet-18's 56x56x64 layer, F(4x4): 14 x 14 tiles of 18 KiB, 56
        // in the 1 MiB budget, rounded up to the 64-tile minimum: chunks of
        // 5 tile rows.
        let plan = ChunkPlan::new(&Grid::<4, 6>::new(planes(32, 64, 56)), &budget);
        assert_eq!(
            plan,
            ChunkPlan {
                images_per_task: 1,
                rows_per_chunk: 5
            }
        );
        // 4x4 tiles per image: 64 tiles need 4 images, 8 tasks for 32.
        let plan = ChunkPlan::new(&Grid::<4, 6>::new(planes(32, 32, 16)), &budget);
        assert_eq!(
            plan,
            ChunkPlan {
                images_per_task: 4,
                rows_per_chunk: 16
            }
        );
        // One image: one task however small.
        let plan = ChunkPlan::new(&Grid::<2, 4>::new(planes(1, 32, 4)), &budget);
        assert_eq!(
            plan,
            ChunkPlan {
                images_per_task: 1,
                rows_per_chunk: 2
            }
        );
    }
}
