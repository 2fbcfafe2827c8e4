//! The Winograd kernels against the f64 definition of the convolution, on
//! odd plane and channel counts, in both splits of the work (chunks and
//! rounds) and on any number of threads.

use super::backward::weight_grad;
use super::convolve::convolve;
use super::grid::{Grid, Planes};
use super::matrices::{Tiling, F2, F4};
use super::{choose, weights, Budget, Variant};
use crate::ops::geometry::ConvGeometry;
use crate::ops::testing::{
    conv_definition, input_grad_definition, relative_error, seeded_vec, weight_grad_definition,
};

/// Largest error of F(2x2, 3x3) against the f64 definition, relative to
/// the largest magnitude of the reference (output or gradient).
pub(crate) const F2_BOUND: f64 = 3e-6;
/// The same for F(4x4, 3x3).
pub(crate) const F4_BOUND: f64 = 2e-5;

/// Forces rounds of one image or a few tiles and transform blocks of one
/// tile row: every seam between rounds and blocks is crossed.
const SMALL_ROUNDS: Budget = Budget {
    kernels_in_cache: 0,
    chunk_bytes: 0,
    min_chunk_tiles: 1,
    min_tasks: 1,
    round_bytes: 0,
    min_round_tiles: 2,
};

/// Forces chunks (whatever the kernels' size) of one tile row.
const SMALL_CHUNKS: Budget = Budget {
    kernels_in_cache: usize::MAX,
    chunk_bytes: 0,
    min_chunk_tiles: 1,
    min_tasks: 1,
    round_bytes: 0,
    min_round_tiles: 2,
};

/// Seeded operands of one convolution: input, weight, output gradient.
pub(crate) struct Operands {
    pub(crate) x: Vec<f32>,
    pub(crate) w: Vec<f32>,
    pub(crate) dy: Vec<f32>,
}

impl Operands {
    pub(crate) fn seeded(g: &ConvGeometry, seed: u64) -> Self {
        Self {
            x: seeded_vec(g.n * g.c * g.in_pixels(), seed),
            w: seeded_vec(g.k * g.patch_len(), seed + 1),
            dy: seeded_vec(g.n * g.k * g.out_pixels(), seed + 2),
        }
    }

    /// Output, input gradient and weight gradient by the definition.
    pub(crate) fn definition(&self, g: &ConvGeometry) -> [Vec<f64>; 3] {
        [
            conv_definition(g, &self.x, &self.w),
            input_grad_definition(g, &self.dy, &self.w),
            weight_grad_definition(g, &self.x, &self.dy),
        ]
    }
}

/// Output, input gradient and weight gradient through the tiles, with the
/// given budget.
fn run<const M: usize, const A: usize, T: Tiling<M, A>>(
    g: &ConvGeometry,
    ops: &Operands,
    budget: &Budget,
) -> [Vec<f32>; 3] {
    let planes = Planes::of(g, ops.x.len(), ops.w.len());
    let u = weights::transform::<M, A, T>(&ops.w, g.k, g.c, false);
    let mut y = vec![f32::NAN; ops.dy.len()];
    convolve::<M, A, T>(&Grid::new(planes), &ops.x, &u, &mut y, budget);
    let u = weights::transform::<M, A, T>(&ops.w, g.k, g.c, true);
    let mut dx = vec![f32::NAN; ops.x.len()];
    convolve::<M, A, T>(
        &Grid::new(planes.transposed()),
        &ops.dy,
        &u,
        &mut dx,
        budget,
    );
    let dw = weight_grad::<M, A, T>(&Grid::new(planes), &ops.x, &ops.dy, budget);
    [y, dx, dw]
}

fn run_variant(
    variant: Variant,
    g: &ConvGeometry,
    ops: &Operands,
    budget: &Budget,
) -> [Vec<f32>; 3] {
    match variant {
        Variant::F2 => run::<2, 4, F2>(g, ops, budget),
        Variant::F4 => run::<4, 6, F4>(g, ops, budget),
    }
}

pub(crate) fn bound(variant: Variant) -> f64 {
    match variant {
        Variant::F2 => F2_BOUND,
        Variant::F4 => F4_BOUND,
    }
}

fn geometry(n: usize, c: usize, (h, w): (usize, usize), k: usize) -> ConvGeometry {
    ConvGeometry::new(&[n, c, h, w], &[k, c, 3, 3], 1, 1).expect("valid convolution")
}

#[test]
fn definitions_match_candle() {
    // The f64 references every test here relies on, against candle's
    // convolution and its gradients (strided and padded too).
    use crate::ops::testing::{run_conv, seeded};
    for (i, &(stride, padding)) in [(1, 1), (2, 1), (1, 0), (2, 2)].iter().enumerate() {
        let x = seeded(&[2, 3, 9, 9], 10 + i as u64);
        let w = seeded(&[4, 3, 3, 3], 20 + i as u64);
        let g = ConvGeometry::new(x.dims(), w.dims(), stride, padding).unwrap();
        let r = seeded(&g.out_dims(), 30 + i as u64);
        let candle = run_conv(|x, w| x.conv2d(w, padding, stride, 1, 1), &x, &w, &r);
        let flat = |t: &candle_core::Tensor| t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let (xs, ws, rs) = (flat(&x), flat(&w), flat(&r));
        assert!(relative_error(&flat(&candle.y), &conv_definition(&g, &xs, &ws)) < 1e-6);
        let dx = input_grad_definition(&g, &rs, &ws);
        assert!(relative_error(&flat(&candle.grad_x), &dx) < 1e-6);
        let dw = weight_grad_definition(&g, &xs, &rs);
        assert!(relative_error(&flat(&candle.grad_w), &dw) < 1e-6);
    }
}

#[test]
fn odd_planes_and_channels_in_chunks_and_rounds() {
    // Planes smaller than one tile, planes that leave partial tiles on
    // either axis, channel counts that are not whole transform blocks.
    let cases = [
        (3, 3, (1, 1), 5),
        (2, 17, (2, 2), 3),
        (3, 5, (3, 3), 17),
        (2, 40, (5, 5), 33),
        (3, 17, (7, 7), 40),
        (2, 3, (6, 9), 18),
        (2, 20, (13, 11), 7),
    ];
    for (i, &(n, c, hw, k)) in cases.iter().enumerate() {
        let g = geometry(n, c, hw, k);
        let ops = Operands::seeded(&g, 100 + 10 * i as u64);
        let reference = ops.definition(&g);
        for variant in [Variant::F2, Variant::F4] {
            for (name, budget) in [
                ("default", Budget::DEFAULT),
                ("small rounds", SMALL_ROUNDS),
                ("small chunks", SMALL_CHUNKS),
            ] {
                let got = run_variant(variant, &g, &ops, &budget);
                for ((what, got), reference) in ["y", "dx", "dw"].iter().zip(&got).zip(&reference) {
                    let error = relative_error(got, reference);
                    assert!(
                        error <= bound(variant),
                        "{variant:?} {name} n {n} c {c} {hw:?} k {k}: {what} off by {error:.2e}"
                    );
                }
            }
        }
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let g = geometry(5, 40, (10, 13), 24);
    let ops = Operands::seeded(&g, 7);
    for variant in [Variant::F2, Variant::F4] {
        for budget in [Budget::DEFAULT, SMALL_ROUNDS, SMALL_CHUNKS] {
            let on = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .expect("thread pool");
                let results = pool.install(|| run_variant(variant, &g, &ops, &budget));
                results.map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<u32>>())
            };
            let one = on(1);
            assert_eq!(one, on(3), "{variant:?} {budget:?}");
            assert_eq!(one, on(2), "{variant:?} {budget:?}");
        }
    }
}

#[test]
fn dispatch_picks_tiles_where_they_pay() {
    let at = |n: usize, channels: usize, side: usize| {
        choose(&geometry(n, channels, (side, side), channels))
    };
    // ResNet-18 at 224 px, batch 32: F(4x4) on every stage.
    for (channels, side) in [(64, 56), (128, 28), (256, 14), (512, 7)] {
        assert_eq!(
            at(32, channels, side),
            Some(Variant::F4),
            "{channels} @ {side}"
        );
    }
    // At 64 px: F(2x2) on 4x4 planes, nothing on 2x2 ones.
    assert_eq!(at(32, 64, 16), Some(Variant::F4));
    assert_eq!(at(32, 256, 4), Some(Variant::F2));
    assert_eq!(at(32, 512, 2), None);
    // The kernel transforms of 512 channels need more than 8 images of 7x7.
    assert_eq!(at(8, 512, 7), None);
    // Thin layers and planes of one pixel keep their path.
    assert_eq!(at(32, 16, 16), None);
    assert_eq!(at(256, 128, 1), None);
    // Only 3x3, stride 1, padding 1.
    let strided = ConvGeometry::new(&[32, 64, 56, 56], &[64, 64, 3, 3], 2, 1).unwrap();
    assert_eq!(choose(&strided), None);
    let pointwise = ConvGeometry::new(&[32, 64, 56, 56], &[64, 64, 1, 1], 1, 0).unwrap();
    assert_eq!(choose(&pointwise), None);
}
