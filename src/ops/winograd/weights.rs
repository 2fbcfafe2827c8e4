//! Kernel transforms: 3x3 kernels to the `A x A` Winograd domain (`G g G^T`)
//! and weight gradients back (`G^T dU G`).
//!
//! Transformed kernels are `A^2` planes, one per element, each an
//! `inputs x outputs` row-major matrix: the right-hand factor of the
//! element's GEMM. Both transforms run on blocks of [`LANE`] output
//! channels (vectorised like the tile transforms) and in parallel over
//! input channels, each task writing its own rows of every plane; the
//! arithmetic of each value is fixed, so results do not depend on threads.

use super::cpu_buffer;
use super::grid::pieces_by_position;
use super::matrices::Tiling;
use super::tiles::{combine, load, store, unroll, Block, LANE};
use rayon::prelude::*;

/// Input channels per parallel task.
const ROWS_PER_TASK: usize = 8;

/// Stores the first `n` lanes of `value` at the start of `dst`: a whole
/// block, or (out of line, so the whole-block path stays a plain vector
/// store) the first `n` lanes of the channels' last block.
#[inline(always)]
fn store_first(dst: &mut [f32], value: &Block, n: usize) {
    if n == LANE {
        store(dst, 0, value);
    } else {
        store_part(dst, value, n);
    }
}

#[cold]
#[inline(never)]
fn store_part(dst: &mut [f32], value: &Block, n: usize) {
    dst[..n].copy_from_slice(&value[..n]);
}

/// The `n` floats at `offset` of `data` as the first lanes of a block (see
/// [`store_first`]); the other lanes are zero.
#[inline(always)]
fn load_first(data: &[f32], offset: usize, n: usize) -> Block {
    if n == LANE {
        load(data, offset)
    } else {
        load_part(data, offset, n)
    }
}

#[cold]
#[inline(never)]
fn load_part(data: &[f32], offset: usize, n: usize) -> Block {
    let mut lanes = [0.0; LANE];
    lanes[..n].copy_from_slice(&data[offset..offset + n]);
    lanes
}

/// The Winograd transform `G g G^T` of every kernel of `w` (`[k, c, 3, 3]`):
/// planes of `c x k` (`flipped` false: inputs are the convolution's input
/// channels) or, with `flipped`, of `k x c` holding each kernel rotated by
/// 180 degrees (the kernels of the input gradient's convolution).
pub(super) fn transform<const M: usize, const A: usize, T: Tiling<M, A>>(
    w: &[f32],
    k: usize,
    c: usize,
    flipped: bool,
) -> Vec<f32> {
    assert_eq!(w.len(), k * c * 9);
    let (inputs, outputs) = if flipped { (k, c) } else { (c, k) };
    let g = &T::MATRICES.g;
    // SAFETY: every element is written below before `u` is returned: the
    // tasks cover every row of every plane, and each row's blocks every
    // output column.
    let mut u = unsafe { cpu_buffer(A * A * inputs * outputs) };
    let tasks = pieces_by_position(&mut u, A * A, ROWS_PER_TASK * outputs);
    tasks
        .into_par_iter()
        .enumerate()
        .for_each(|(task, mut planes)| {
            let rows = planes[0].len() / outputs;
            for row in 0..rows {
                let input = task * ROWS_PER_TASK + row;
                for ob in (0..outputs).step_by(LANE) {
                    let n = LANE.min(outputs - ob);
                    // The block's kernels, tap by tap: taps[ky * 3 + kx][lane].
                    let mut taps = [[0.0f32; LANE]; 9];
                    for lane in 0..n {
                        let (kk, cc) = match flipped {
                            true => (input, ob + lane),
                            false => (ob + lane, input),
                        };
                        let kernel = &w[(kk * c + cc) * 9..][..9];
                        for (tap, values) in taps.iter_mut().enumerate() {
                            values[lane] = kernel[if flipped { 8 - tap } else { tap }];
                        }
                    }
                    // Row i of G g, then element (i, j) of (G g) G^T.
                    unroll!(i < A => {
                        let mut gg = [[0.0; LANE]; 3];
                        unroll!(kx < 3 => {
                            gg[kx] = combine(&g[i], &[taps[kx], taps[3 + kx], taps[6 + kx]]);
                        });
                        unroll!(j < A => {
                            let value = combine(&g[j], &gg);
                            store_first(&mut planes[i * A + j][row * outputs + ob..], &value, n);
                        });
                    });
                }
            }
        });
    u
}

/// The weight gradient `G^T dU G` (`[k, c, 3, 3]`) from the gradient of the
/// transformed kernels, `A^2` planes of `c x k`.
pub(super) fn gradient<const M: usize, const A: usize, T: Tiling<M, A>>(
    du: &[f32],
    k: usize,
    c: usize,
) -> Vec<f32> {
    assert_eq!(du.len(), A * A * c * k);
    let gt = &T::MATRICES.gt;
    let kp = k.div_ceil(LANE) * LANE;
    // dw_t[c][tap][k] first, each input channel's rows in one piece.
    // SAFETY: every element (padding lanes included: the blocks of `LANE`
    // output channels cover `0..kp`) is written below before it is read.
    let mut dw_t = unsafe { cpu_buffer(c * 9 * kp) };
    dw_t.par_chunks_mut(ROWS_PER_TASK * 9 * kp)
        .enumerate()
        .for_each(|(task, out)| {
            for (row, out) in out.chunks_exact_mut(9 * kp).enumerate() {
                let cc = task * ROWS_PER_TASK + row;
                for kb in (0..k).step_by(LANE) {
                    let n = LANE.min(k - kb);
                    // Column kx of dU G, then element (ky, kx) of G^T (dU G).
                    unroll!(kx < 3 => {
                        let mut dug = [[0.0; LANE]; A];
                        unroll!(i < A => {
                            let mut row = [[0.0; LANE]; A];
                            unroll!(j < A => {
                                if gt[kx][j] != 0.0 {
                                    row[j] = load_first(du, ((i * A + j) * c + cc) * k + kb, n);
                                }
                            });
                            dug[i] = combine(&gt[kx], &row);
                        });
                        unroll!(ky < 3 => {
                            store(out, (ky * 3 + kx) * kp + kb, &combine(&gt[ky], &dug));
                        });
                    });
                }
            }
        });
    // dw[k][c * 9 + tap], sixteen output channels per task: each block of
    // dw_t is read once and scattered to sixteen rows.
    let row_len = c * 9;
    // SAFETY: every row of every task's block is written at every column
    // `0..row_len` below before `dw` is returned.
    let mut dw = unsafe { cpu_buffer(k * row_len) };
    dw.par_chunks_mut(LANE * row_len)
        .enumerate()
        .for_each(|(block, rows)| {
            let kb = block * LANE;
            for i in 0..row_len {
                let values = load(&dw_t, i * kp + kb);
                for (row, &value) in rows.chunks_exact_mut(row_len).zip(&values) {
                    row[i] = value;
                }
            }
        });
    dw
}
