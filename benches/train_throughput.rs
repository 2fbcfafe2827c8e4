//! Training and inference throughput of ablate's ResNets on the CPU: images
//! per second of one Adam step (forward, backward, update) and of one
//! eval-mode forward pass, on seeded random inputs, with the FLOPs per image
//! of each (see `ablate::model::cost`); and the GFLOP/s of the `gemm` crate's
//! fp32 matrix product (the GEMM ablate's convolutions run on), the
//! machine's reference speed.
//!
//! Run through `benches/train_throughput.sh`, which alternates these
//! measurements with PyTorch's of the same models and prints the ratios.
//! Arguments (after `--`): `--steps N` (at least N measured steps),
//! `--seconds S` (more steps if needed to measure about S seconds, default
//! 4), `--warmup N`, `--batch N`, `--models resnet18@224,resnet10-w16@64`,
//! `--modes train,inference`, `--gemm 2048,4096` (square sizes; only the
//! GEMM is measured when given).

use ablate::model::cost::ModelCost;
use ablate::model::resnet::ResNetConfig;
use ablate::train::throughput::{inference_images_per_second, training_images_per_second};
use candle_core::Device;
use std::time::Instant;

struct Options {
    steps: usize,
    seconds: f64,
    warmup: usize,
    batch: usize,
    models: Vec<(String, usize)>,
    modes: Vec<String>,
    gemm: Vec<usize>,
}

fn parse_options() -> Options {
    let mut options = Options {
        steps: 5,
        seconds: 4.0,
        warmup: 2,
        batch: 32,
        models: vec![("resnet18".into(), 224), ("resnet10-w16".into(), 64)],
        modes: vec!["train".into(), "inference".into()],
        gemm: Vec::new(),
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--steps" => options.steps = value.parse().expect("--steps takes a number"),
            "--seconds" => options.seconds = value.parse().expect("--seconds takes a number"),
            "--warmup" => options.warmup = value.parse().expect("--warmup takes a number"),
            "--batch" => options.batch = value.parse().expect("--batch takes a number"),
            "--models" => {
                options.models = value
                    .split(',')
                    .map(|spec| {
                        let (name, size) = spec.split_once('@').expect("model@size");
                        (name.to_string(), size.parse().expect("size is a number"))
                    })
                    .collect()
            }
            "--modes" => options.modes = value.split(',').map(str::to_string).collect(),
            "--gemm" => {
                options.gemm = value
                    .split(',')
                    .map(|n| n.parse().expect("--gemm takes sizes"))
                    .collect()
            }
            // `cargo bench` passes `--bench`; ignore flags we do not know.
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    options
}

/// The allocator the `ablate` binary uses (large tensors on huge pages).
#[global_allocator]
static ALLOCATOR: ablate::alloc::HugePageAllocator = ablate::alloc::HugePageAllocator;

fn main() -> candle_core::Result<()> {
    // Measure as the CLI runs: same thread setup, work on a pool worker.
    ablate::threads::configure(ablate::threads::all_cores()).expect("thread pool starts");
    ablate::threads::on_pool_thread(run)
}

fn run() -> candle_core::Result<()> {
    let options = parse_options();
    let threads = candle_core::utils::get_num_threads();
    if !options.gemm.is_empty() {
        for &n in &options.gemm {
            let gflops = gemm_gflops(n);
            println!(
                "{{\"framework\": \"ablate\", \"kind\": \"gemm\", \"n\": {n}, \"threads\": {threads}, \"gflops\": {gflops}}}"
            );
        }
        return Ok(());
    }
    for (name, size) in &options.models {
        let config = ResNetConfig::from_name(name, 2).expect("known model name");
        let cost = ModelCost::of(&config, *size);
        for mode in &options.modes {
            let (measure, flops) = match mode.as_str() {
                "train" => (training_images_per_second as Measure, cost.training_flops),
                "inference" => (inference_images_per_second as Measure, cost.forward_flops),
                other => panic!("unknown mode {other:?} (train or inference)"),
            };
            // A one-step probe sizes the run to about `--seconds`.
            let probe = measure(&config, *size, options.batch, 1, 1, &Device::Cpu)?;
            let steps = options
                .steps
                .max((options.seconds * probe / options.batch as f64).ceil() as usize);
            let images_per_s = measure(
                &config,
                *size,
                options.batch,
                options.warmup,
                steps,
                &Device::Cpu,
            )?;
            println!(
                "{{\"framework\": \"ablate\", \"kind\": \"model\", \"mode\": \"{mode}\", \"model\": \"{name}\", \"image_size\": {size}, \"batch\": {}, \"steps\": {steps}, \"threads\": {threads}, \"images_per_s\": {images_per_s}, \"flops_per_image\": {flops}}}",
                options.batch
            );
        }
    }
    Ok(())
}

/// Signature shared by the training and inference measurements.
type Measure = fn(&ResNetConfig, usize, usize, usize, usize, &Device) -> candle_core::Result<f64>;

/// GFLOP/s (`2 n^3` per product) of the `gemm` crate's f32 `n x n` product
/// with ablate's threads (as `ablate::ops` calls it): the best of three
/// timed products after one warm-up.
fn gemm_gflops(n: usize) -> f64 {
    let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 * 0.25).collect();
    let b: Vec<f32> = (0..n * n).map(|i| (i % 5) as f32 * 0.5).collect();
    let mut c = vec![0.0f32; n * n];
    let mut product = || ablate::ops::square_matmul(&mut c, &a, &b, n);
    product();
    let best = (0..3)
        .map(|_| {
            let started = Instant::now();
            product();
            started.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min);
    2.0 * (n as f64).powi(3) / best / 1e9
}
