//! Training throughput of ablate's ResNets on the CPU: images per second of
//! one Adam step (forward, backward, update) on seeded random inputs.
//!
//! Run through `benches/train_throughput.sh`, which measures PyTorch's
//! torchvision models with the same settings in the same run and prints the
//! ratio. Arguments (after `--`): `--steps N`, `--warmup N`, `--batch N`,
//! `--models resnet18@224,resnet10-w16@64`.

use ablate::model::resnet::ResNetConfig;
use ablate::train::throughput::training_images_per_second;
use candle_core::Device;

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

fn measure(name: &str, size: usize, options: &Options) -> candle_core::Result<f64> {
    let config = ResNetConfig::from_name(name, 2).expect("known model name");
    training_images_per_second(
        &config,
        size,
        options.batch,
        options.warmup,
        options.steps,
        &Device::Cpu,
    )
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
