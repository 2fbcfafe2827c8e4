//! Training throughput of ablate's ResNets on the CPU: images per second of
//! one Adam step (forward, backward, update) on seeded random inputs.
//!
//! Run through `benches/train_throughput.sh`, which measures PyTorch's
//! torchvision models with the same settings in the same run and prints the
//! ratio. Arguments (after `--`): `--steps N`, `--warmup N`, `--batch N`,
//! `--models resnet18@224,resnet10-w16@64`.

use ablate::model::init::build_seeded;
use ablate::model::resnet::ResNetConfig;
use ablate::seed;
use candle_core::{Device, Tensor};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand_distr::{Distribution, StandardNormal};
use std::time::Instant;

struct Options {
    steps: usize,
    warmup: usize,
    batch: usize,
    models: Vec<(String, usize)>,
}

fn parse_options() -> Options {
    let mut options = Options {
        steps: 5,
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

fn random_batch(
    batch: usize,
    size: usize,
    device: &Device,
) -> candle_core::Result<(Tensor, Tensor)> {
    let mut rng = seed::stream(0, "bench-input", &[]);
    let values: Vec<f32> = (0..batch * 3 * size * size)
        .map(|_| StandardNormal.sample(&mut rng))
        .collect();
    let labels: Vec<u32> = (0..batch as u32).map(|i| i % 2).collect();
    Ok((
        Tensor::from_vec(values, (batch, 3, size, size), device)?,
        Tensor::new(labels, device)?,
    ))
}

fn measure(name: &str, size: usize, options: &Options) -> candle_core::Result<f64> {
    let device = Device::Cpu;
    let config = ResNetConfig::from_name(name, 2).expect("known model name");
    let (model, varmap) = build_seeded(&config, 0, &device)?;
    let params = ParamsAdamW {
        lr: 1e-4,
        weight_decay: 0.0,
        ..ParamsAdamW::default()
    };
    let mut optimizer = AdamW::new(varmap.all_vars(), params)?;
    let (images, labels) = random_batch(options.batch, size, &device)?;
    let mut step = || -> candle_core::Result<()> {
        let logits = model.forward_t(&images, true)?;
        let loss = candle_nn::loss::cross_entropy(&logits, &labels)?;
        optimizer.backward_step(&loss)
    };
    for _ in 0..options.warmup {
        step()?;
    }
    let started = Instant::now();
    for _ in 0..options.steps {
        step()?;
    }
    Ok((options.batch * options.steps) as f64 / started.elapsed().as_secs_f64())
}

fn main() -> candle_core::Result<()> {
    let options = parse_options();
    let threads = candle_core::utils::get_num_threads();
    for (name, size) in &options.models {
        let images_per_s = measure(name, *size, &options)?;
        println!(
            "{{\"framework\": \"candle\", \"model\": \"{name}\", \"image_size\": {size}, \"batch\": {}, \"steps\": {}, \"threads\": {threads}, \"images_per_s\": {images_per_s}}}",
            options.batch, options.steps
        );
    }
    Ok(())
}
