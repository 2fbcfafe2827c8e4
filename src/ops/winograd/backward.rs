//! The weight gradient of a Winograd convolution: the transformed input
//! tiles times the transformed output-gradient tiles, summed over the
//! batch, transformed back to 3x3 kernels.

use super::grid::{pieces_by_position, Grid};
use super::matrices::Tiling;
use super::{cpu_buffer, weights, Budget};
use crate::ops::scratch::with_scratch;
use rayon::prelude::*;

/// The weight gradient (`[outputs, inputs, 3, 3]`) from the input `x` and
/// output gradient `dy` of the convolution `grid`.
///
/// The batch's tile rows go in rounds of a fixed size (from the budget and
/// the layer's shape alone); each round's tiles are transformed in
/// parallel blocks, then each element's gradient `dU[e] += V[e]^T dP[e]`
/// runs as one GEMM over the round's tiles, the elements in parallel. So
/// each `dU[e]` sums the same rounds in the same order on any number of
/// threads.
pub(super) fn weight_grad<const M: usize, const A: usize, T: Tiling<M, A>>(
    grid: &Grid<M, A>,
    x: &[f32],
    dy: &[f32],
    budget: &Budget,
) -> Vec<f32> {
    let (p, cp, kp, tw) = (&grid.p, grid.cp, grid.kp, grid.tw);
    assert_eq!(x.len(), p.n * p.in_image());
    assert_eq!(dy.len(), p.n * p.out_image());
    let total_rows = p.n * grid.th;
    let round_tiles = (budget.round_bytes / grid.tile_bytes()).max(budget.min_round_tiles);
    let round_rows = round_tiles.div_ceil(tw).min(total_rows);
    // Transform tasks of about one forward chunk each.
    let chunk_tiles = (budget.chunk_bytes / grid.tile_bytes()).max(budget.min_chunk_tiles);
    let block_rows = chunk_tiles.div_ceil(tw).min(round_rows);
    let (staged_in, staged_out) = grid.staged_lens();
    // SAFETY: each round reads only the first `A * A * tiles * cp` floats
    // of `v` and `A * A * tiles * kp` of `dp`, after its transform blocks
    // (which cover all of the round's tile rows) wrote every channel,
    // padding included, of every tile.
    let mut v = unsafe { cpu_buffer(A * A * round_rows * tw * cp) };
    // SAFETY: see `v`.
    let mut dp = unsafe { cpu_buffer(A * A * round_rows * tw * kp) };
    // SAFETY: `total_rows > 0`, so there is a first round; its GEMMs
    // (without accumulation, which do not read their destination) write
    // every float of `du`, and only later rounds accumulate.
    let mut du = unsafe { cpu_buffer(A * A * p.inputs * p.outputs) };
    for (round, first) in (0..total_rows).step_by(round_rows).enumerate() {
        let rows = round_rows.min(total_rows - first);
        let tiles = rows * tw;
        let v = &mut v[..A * A * tiles * cp];
        let dp = &mut dp[..A * A * tiles * kp];
        let v_blocks = pieces_by_position(v, A * A, block_rows * tw * cp);
        let dp_blocks = pieces_by_position(dp, A * A, block_rows * tw * kp);
        v_blocks
            .into_par_iter()
            .zip(dp_blocks)
            .enumerate()
            .for_each(|(block, (mut v_planes, mut dp_planes))| {
                let start = first + block * block_rows;
                let end = (start + block_rows).min(first + rows);
                with_scratch(staged_in, staged_out, |sx, sdy| {
                    grid.inputs::<T>(x, start..end, &mut v_planes, sx);
                    grid.gradients::<T>(dy, start..end, &mut dp_planes, sdy);
                });
            });
        du.par_chunks_mut(p.inputs * p.outputs)
            .zip(v.par_chunks(tiles * cp))
            .zip(dp.par_chunks(tiles * kp))
            .for_each(|((du, ve), de)| grid.kernel_gradient(tiles, ve, de, du, round > 0));
    }
    weights::gradient::<M, A, T>(&du, p.outputs, p.inputs)
}
