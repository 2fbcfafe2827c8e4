//! Moving activations between NCHW tensors and Winograd tiles: staging
//! rows channel-innermost, and the tile transforms on those rows.
//!
//! The transforms run on blocks of [`LANE`] channels: every pixel of a
//! staged row holds its channels side by side, so one tile's transform is
//! the same few additions and scalings applied to `LANE` channels at once,
//! which the compiler turns into vector instructions without any gather.
//! Channel counts are padded to whole blocks ([`padded`]); staged padding
//! channels are zero, and whatever lands in the padding channels of a
//! transformed product is never read back.
//!
//! Each transform is separable: rows first, then columns, with the terms
//! of every sum added in index order (zero coefficients skipped), so a
//! tile's result does not depend on where or with how many threads it is
//! computed.

use super::matrices::Tiling;

/// Channels per transform block: one AVX-512 register, two AVX2 ones.
pub(super) const LANE: usize = 16;

/// One channel block.
pub(super) type Block = [f32; LANE];

/// `channels` rounded up to whole [`LANE`] blocks.
pub(super) fn padded(channels: usize) -> usize {
    channels.div_ceil(LANE) * LANE
}

/// Runs `$body` once for each `$i` in `0..$n` (`$n` at most 6) with `$i`
/// a literal: the transforms' loops, unrolled so that the compiler sees
/// every coefficient as a constant and drops the zero ones and the
/// multiplications by one (a rolled loop loads and tests them at run time).
macro_rules! unroll {
    ($i:ident < $n:expr => $body:block) => {
        unroll!(@ $i, $n, $body, 0, 1, 2, 3, 4, 5)
    };
    (@ $i:ident, $n:expr, $body:block, $($k:literal),*) => {
        $(
            if $k < $n {
                let $i: usize = $k;
                $body
            }
        )*
    };
}
pub(super) use unroll;

/// `sum_j coeffs[j] * inputs[j]` lane by lane, terms in index order, zero
/// coefficients skipped (the sum starts from -0, the additive identity).
#[inline(always)]
pub(super) fn combine<const N: usize>(coeffs: &[f32; N], inputs: &[Block; N]) -> Block {
    let mut out = [-0.0f32; LANE];
    for j in 0..N {
        let c = coeffs[j];
        if c != 0.0 {
            for (o, &x) in out.iter_mut().zip(&inputs[j]) {
                *o += c * x;
            }
        }
    }
    out
}

/// The block at `offset` of `data`.
#[inline(always)]
pub(super) fn load(data: &[f32], offset: usize) -> Block {
    let src = &data[offset..offset + LANE];
    let mut out = [0.0; LANE];
    out.copy_from_slice(src);
    out
}

/// Stores `value` at `offset` of `data`.
#[inline(always)]
pub(super) fn store(data: &mut [f32], offset: usize, value: &Block) {
    let dst = &mut data[offset..offset + LANE];
    for (d, &v) in dst.iter_mut().zip(value) {
        *d = v;
    }
}

/// Copies `rows` rows of one image (`channels x h x w`, NCHW) into `dst`
/// as `[row][column][channel]` with `width` columns and `cp` channels per
/// pixel. Staged row `r` is image row `y0 + r` and staged column `s` image
/// column `s - shift`; rows and columns outside the image and channels from
/// `channels` to `cp` are zero.
#[allow(clippy::too_many_arguments)]
pub(super) fn stage(
    image: &[f32],
    (channels, h, w): (usize, usize, usize),
    y0: isize,
    rows: usize,
    shift: usize,
    width: usize,
    cp: usize,
    dst: &mut [f32],
) {
    debug_assert!(shift + w <= width && channels <= cp);
    let row_len = width * cp;
    for (r, row) in dst[..rows * row_len].chunks_exact_mut(row_len).enumerate() {
        let y = y0 + r as isize;
        if y < 0 || y >= h as isize {
            row.fill(0.0);
            continue;
        }
        let y = y as usize;
        row[..shift * cp].fill(0.0);
        row[(shift + w) * cp..].fill(0.0);
        let pixels = &mut row[shift * cp..(shift + w) * cp];
        if channels < cp {
            for pixel in pixels.chunks_exact_mut(cp) {
                pixel[channels..].fill(0.0);
            }
        }
        // Eight channels at a time: each pixel's eight values are written
        // together, one cache line for eight read streams.
        let mut ch = 0;
        while ch + 8 <= channels {
            let src: [&[f32]; 8] = std::array::from_fn(|i| &image[((ch + i) * h + y) * w..][..w]);
            for (x, pixel) in pixels.chunks_exact_mut(cp).enumerate() {
                let dst: &mut [f32; 8] = (&mut pixel[ch..ch + 8]).try_into().expect("8 floats");
                for (d, s) in dst.iter_mut().zip(&src) {
                    *d = s[x];
                }
            }
            ch += 8;
        }
        for ch in ch..channels {
            let src = &image[(ch * h + y) * w..][..w];
            for (pixel, &value) in pixels.chunks_exact_mut(cp).zip(src) {
                pixel[ch] = value;
            }
        }
    }
}

/// The inverse of [`stage`] for outputs: writes staged rows
/// (`[row][column][channel]`, `width` columns, `cp` channels per pixel) to
/// rows `y0 .. y0 + rows` of one image (`channels x h x w`), columns
/// `0..w` from staged columns `0..w`.
#[allow(clippy::too_many_arguments)]
pub(super) fn unstage(
    src: &[f32],
    rows: usize,
    width: usize,
    cp: usize,
    (channels, h, w): (usize, usize, usize),
    y0: usize,
    image: &mut [f32],
) {
    debug_assert!(w <= width && y0 + rows <= h);
    let row_len = width * cp;
    for (r, row) in src[..rows * row_len].chunks_exact(row_len).enumerate() {
        let pixels = &row[..w * cp];
        let mut ch = 0;
        while ch + 8 <= channels {
            let mut dst: [&mut [f32]; 8] = {
                let mut planes = image[ch * h * w..(ch + 8) * h * w].chunks_exact_mut(h * w);
                std::array::from_fn(|_| {
                    let plane = planes.next().expect("8 planes");
                    &mut plane[(y0 + r) * w..][..w]
                })
            };
            for (x, pixel) in pixels.chunks_exact(cp).enumerate() {
                let values: &[f32; 8] = pixel[ch..ch + 8].try_into().expect("8 floats");
                for (d, &v) in dst.iter_mut().zip(values) {
                    d[x] = v;
                }
            }
            ch += 8;
        }
        for ch in ch..channels {
            let dst = &mut image[(ch * h + y0 + r) * w..][..w];
            for (d, pixel) in dst.iter_mut().zip(pixels.chunks_exact(cp)) {
                *d = pixel[ch];
            }
        }
    }
}

/// Transforms the `tiles` input tiles of one staged tile row (`A` rows of
/// `width` columns and `cp` channels, see [`stage`]): tile `tx` covers staged
/// columns `M * tx .. M * tx + A`. Element `e = i * A + j` of tile `tx`
/// goes to `planes[e][(t0 + tx) * cp ..][..cp]`.
pub(super) fn input_tiles<const M: usize, const A: usize, T: Tiling<M, A>>(
    staged: &[f32],
    width: usize,
    cp: usize,
    tiles: usize,
    planes: &mut [&mut [f32]],
    t0: usize,
) {
    assert_eq!(planes.len(), A * A);
    assert!(staged.len() >= A * width * cp && M * (tiles - 1) + A <= width);
    let bt = &T::MATRICES.bt;
    for tx in 0..tiles {
        let out = (t0 + tx) * cp;
        for cb in (0..cp).step_by(LANE) {
            let base = M * tx * cp + cb;
            // Column j of d B, then column j of B^T (d B). Inputs with a
            // zero coefficient are not loaded.
            unroll!(j < A => {
                let mut column = [[0.0; LANE]; A];
                unroll!(i < A => {
                    let mut row = [[0.0; LANE]; A];
                    unroll!(jj < A => {
                        if bt[j][jj] != 0.0 {
                            row[jj] = load(staged, base + (i * width + jj) * cp);
                        }
                    });
                    column[i] = combine(&bt[j], &row);
                });
                unroll!(i < A => {
                    store(planes[i * A + j], out + cb, &combine(&bt[i], &column));
                });
            });
        }
    }
}

/// The inverse transform of one tile row's products: tile `tx`'s elements
/// `planes[e][(t0 + tx) * cp ..][..cp]` become the `M x M` output block at
/// staged rows `0..M`, columns `M * tx ..` of `staged` (`width` columns of
/// `cp` channels).
pub(super) fn output_tiles<const M: usize, const A: usize, T: Tiling<M, A>>(
    planes: &[&[f32]],
    t0: usize,
    tiles: usize,
    cp: usize,
    staged: &mut [f32],
    width: usize,
) {
    assert_eq!(planes.len(), A * A);
    assert!(staged.len() >= M * width * cp && M * tiles <= width);
    let at = &T::MATRICES.at;
    for tx in 0..tiles {
        let src = (t0 + tx) * cp;
        for cb in (0..cp).step_by(LANE) {
            // Column c of P A, then column c of A^T (P A).
            unroll!(c < M => {
                let mut column = [[0.0; LANE]; A];
                unroll!(i < A => {
                    let mut row = [[0.0; LANE]; A];
                    unroll!(j < A => {
                        if at[c][j] != 0.0 {
                            row[j] = load(planes[i * A + j], src + cb);
                        }
                    });
                    column[i] = combine(&at[c], &row);
                });
                unroll!(r < M => {
                    let offset = (r * width + M * tx + c) * cp + cb;
                    store(staged, offset, &combine(&at[r], &column));
                });
            });
        }
    }
}

/// The output-gradient transform `A dY A^T` of one staged tile row of
/// output gradients (`M` rows of `width` columns and `cp` channels, zero
/// outside the image): tile `tx` covers staged columns `M * tx ..
/// M * tx + M`; element `e` goes to `planes[e][(t0 + tx) * cp ..][..cp]`.
pub(super) fn gradient_tiles<const M: usize, const A: usize, T: Tiling<M, A>>(
    staged: &[f32],
    width: usize,
    cp: usize,
    tiles: usize,
    planes: &mut [&mut [f32]],
    t0: usize,
) {
    assert_eq!(planes.len(), A * A);
    assert!(staged.len() >= M * width * cp && M * tiles <= width);
    let a = &T::MATRICES.a;
    for tx in 0..tiles {
        let out = (t0 + tx) * cp;
        for cb in (0..cp).step_by(LANE) {
            let base = M * tx * cp + cb;
            // Column j of dY A^T, then column j of A (dY A^T).
            unroll!(j < A => {
                let mut column = [[0.0; LANE]; M];
                unroll!(r < M => {
                    let mut row = [[0.0; LANE]; M];
                    unroll!(c < M => {
                        if a[j][c] != 0.0 {
                            row[c] = load(staged, base + (r * width + c) * cp);
                        }
                    });
                    column[r] = combine(&a[j], &row);
                });
                unroll!(i < A => {
                    store(planes[i * A + j], out + cb, &combine(&a[i], &column));
                });
            });
        }
    }
}
