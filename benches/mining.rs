//! Hard negative mining: ablate's mining step against the reference's
//! approach on the same data and model.
//!
//! ablate embeds the false positives and the pool once each, in batches, and
//! ranks neighbours from one matrix product. The reference re-embeds the
//! whole pool for every false positive and computes distances pair by pair.
//! Both select the same patches (checked here); the ratio of their times is
//! printed. Arguments (after `--`): `--fps N` (default 12, as in the
//! reference's development run), `--pool N` (default 1500), `--size PX`
//! (default 64), `--model NAME` (default resnet10-w16), `--queries K` (20).

use ablate::data::images::ImageStore;
use ablate::data::layout::load_dataset;
use ablate::data::synth::{generate, SynthConfig};
use ablate::mining::{nearest_neighbours, Metric};
use ablate::model::init::build_seeded;
use ablate::model::resnet::ResNetConfig;
use ablate::train::evaluate::embed;
use candle_core::Device;
use std::time::Instant;

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The allocator the `ablate` binary uses (large tensors on huge pages).
#[global_allocator]
static ALLOCATOR: ablate::alloc::HugePageAllocator = ablate::alloc::HugePageAllocator;

fn main() -> anyhow::Result<()> {
    // Measure as the CLI runs: same thread setup, work on a pool worker.
    ablate::threads::configure(ablate::threads::all_cores()).expect("thread pool starts");
    ablate::threads::on_pool_thread(run)
}

fn run() -> anyhow::Result<()> {
    let (fps, pool_size, size, k) = (
        arg("--fps", 12),
        arg("--pool", 1500),
        arg("--size", 64) as u32,
        arg("--queries", 20),
    );
    let model_name = std::env::args()
        .skip_while(|a| a != "--model")
        .nth(1)
        .unwrap_or_else(|| "resnet10-w16".into());
    let dir = tempfile::tempdir()?;
    let synth = SynthConfig {
        size: size.max(32),
        hard_patches: 200,
        hard_slides: 8,
        pool_patches: pool_size,
        ..SynthConfig::default()
    };
    generate(&synth, dir.path())?;
    let dataset = load_dataset(dir.path())?;
    let hard = ImageStore::load(dir.path(), &dataset.hard, size)?;
    let pool = ImageStore::load(dir.path(), &dataset.pool, size)?;
    let device = Device::Cpu;
    let (model, _) = build_seeded(&ResNetConfig::from_name(&model_name, 2)?, 0, &device)?;
    let fp_indices: Vec<usize> = (0..fps).collect();
    let pool_indices: Vec<usize> = (0..pool.len()).collect();

    // ablate: one embedding pass per set, one matrix product.
    let started = Instant::now();
    let fp_features = embed(&model, &hard, &fp_indices, 256, &device)?;
    let pool_features = embed(&model, &pool, &pool_indices, 256, &device)?;
    let ours = nearest_neighbours(&fp_features, &pool_features, k, Metric::L2)?;
    let ours_seconds = started.elapsed().as_secs_f64();

    // Reference: for every false positive, embed the whole pool again and
    // compute each distance on its own.
    let started = Instant::now();
    let mut reference = Vec::with_capacity(fps);
    for fp in 0..fps {
        let query: Vec<f32> = embed(&model, &hard, &[fp], 256, &device)?
            .flatten_all()?
            .to_vec1()?;
        let pool_rows: Vec<Vec<f32>> =
            embed(&model, &pool, &pool_indices, 256, &device)?.to_vec2()?;
        let mut distances: Vec<(f32, usize)> = pool_rows
            .iter()
            .enumerate()
            .map(|(j, row)| {
                (
                    row.iter()
                        .zip(&query)
                        .map(|(a, b)| (a - b) * (a - b))
                        .sum::<f32>()
                        .sqrt(),
                    j,
                )
            })
            .collect();
        distances.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        reference.push(
            distances
                .into_iter()
                .take(k)
                .map(|(_, j)| j)
                .collect::<Vec<_>>(),
        );
    }
    let reference_seconds = started.elapsed().as_secs_f64();

    let agree = ours.iter().zip(&reference).all(|(a, b)| {
        let a: std::collections::BTreeSet<usize> = a.iter().map(|n| n.index).collect();
        let b: std::collections::BTreeSet<usize> = b.iter().copied().collect();
        // Near-ties may order differently between the two distance formulas.
        a.intersection(&b).count() + 1 >= k
    });
    println!(
        "model {model_name}, {size} px, {fps} false positives, pool {}, {k} queries each",
        pool.len()
    );
    println!("ablate (embed once, one matrix product): {ours_seconds:.3} s");
    println!("per-FP re-embedding (reference):       {reference_seconds:.3} s");
    println!(
        "speed-up: {:.1}x; same selections: {agree}",
        reference_seconds / ours_seconds
    );
    Ok(())
}
