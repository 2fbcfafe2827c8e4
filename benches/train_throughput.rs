//! Training and inference throughput of ablate's ResNets on the CPU: images
//! per second of one Adam step (forward, backward, update) and of one
//! eval-mode forward pass, on seeded random inputs.
//!
//! Run through `benches/train_throughput.sh`, which measures PyTorch's
//! torchvision models with the same settings in the same run and prints the
//! ratio. Arguments (after `--`): `--steps N` (at least N measured steps),
//! `--seconds S` (more steps if needed to measure about S seconds, default
//! 4), `--warmup N`, `--batch N`,
//! `--models resnet18@224,resnet10-w16@64`.

use ablate::model::resnet::ResNetConfig;
use ablate::train::throughput::{inference_images_per_second, training_images_per_second};
use candle_core::Device;

struct Options {
    steps: usize,
    seconds: f64,
    warmup: usize,
    batch: usize,
    models: Vec<(String, usize)>,
}

fn parse_options() -> Options {
    let mut options = Options {
        steps: 5,
        seconds: 4.0,
        warmup: 2,
        batch: 32,
        models: vec![("resnet18".into(), 224), ("resnet10-w16".into(), 64)],
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
    for (name, size) in &options.models {
        let config = ResNetConfig::from_name(name, 2).expect("known model name");
        for (mode, measure) in [
            ("train", training_images_per_second as Measure),
            ("inference", inference_images_per_second),
        ] {
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
                "{{\"framework\": \"candle\", \"mode\": \"{mode}\", \"model\": \"{name}\", \"image_size\": {size}, \"batch\": {}, \"steps\": {steps}, \"threads\": {threads}, \"images_per_s\": {images_per_s}}}",
                options.batch
            );
        }
    }
    Ok(())
}

/// Signature shared by the training and inference measurements.
type Measure = fn(&ResNetConfig, usize, usize, usize, usize, &Device) -> candle_core::Result<f64>;
