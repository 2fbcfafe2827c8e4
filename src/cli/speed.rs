//! `ablate speed`: training and inference images per second of one model on
//! this machine, on seeded random input, as one JSON line per measurement
//! (what the benchmark scripts compare against PyTorch), with the FLOPs per
//! image (`ablate::model::cost`) and the GFLOP/s they make.

use crate::model::cost::ModelCost;
use crate::model::resnet::ResNetConfig;
use crate::train::throughput::{inference_images_per_second, training_images_per_second};
use anyhow::{Context, Result};

/// Arguments of `ablate speed`.
#[derive(Debug, clap::Args)]
pub struct SpeedArgs {
    /// Model architecture: resnet18, resnet34, or a variant such as resnet10-w16.
    #[arg(long, default_value = "resnet18")]
    model: String,
    /// Side of the square input in pixels.
    #[arg(long, default_value_t = 224)]
    image_size: usize,
    /// Images per step.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Measured steps.
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Unmeasured steps before the clock starts.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Device: cpu, cuda or cuda:N.
    #[arg(long, default_value = "cpu")]
    device: String,
    /// What to measure.
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    mode: Mode,
    /// Winograd tiles for the 3x3 stride-1 convolutions where they are
    /// faster (`on`), or every convolution on the im2col GEMM and direct
    /// kernels (`off`), to measure the difference (CPU only).
    #[arg(long, value_enum, default_value_t = Switch::On)]
    winograd: Switch,
}

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Switch {
    On,
    Off,
}

/// Signature shared by the training and inference measurements.
type Measure =
    fn(&ResNetConfig, usize, usize, usize, usize, &candle_core::Device) -> candle_core::Result<f64>;

/// Which passes `ablate speed` times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Mode {
    /// Full Adam training steps.
    Train,
    /// Eval-mode forward passes.
    Inference,
    /// Both, training first.
    Both,
}

/// Measures and prints one JSON line per mode.
pub fn run(args: &SpeedArgs) -> Result<()> {
    let model = ResNetConfig::from_name(&args.model, 2).context("--model")?;
    let device = crate::device::open_device(&args.device).context("--device")?;
    let threads = candle_core::utils::get_num_threads();
    crate::ops::set_winograd(args.winograd == Switch::On);
    let modes: &[Mode] = match args.mode {
        Mode::Both => &[Mode::Train, Mode::Inference],
        Mode::Train => &[Mode::Train],
        Mode::Inference => &[Mode::Inference],
    };
    let cost = ModelCost::of(&model, args.image_size);
    for &mode in modes {
        let (measure, flops) = match mode {
            Mode::Inference => (inference_images_per_second as Measure, cost.forward_flops),
            _ => (training_images_per_second as Measure, cost.training_flops),
        };
        let images_per_s = measure(
            &model,
            args.image_size,
            args.batch,
            args.warmup,
            args.steps,
            &device,
        )
        .with_context(|| format!("measuring {} speed of {}", mode.label(), args.model))?;
        let line = serde_json::json!({
            "framework": "ablate",
            "mode": mode.label(),
            "model": args.model,
            "image_size": args.image_size,
            "batch": args.batch,
            "steps": args.steps,
            "device": args.device,
            "threads": threads,
            "winograd": args.winograd == Switch::On,
            "images_per_s": images_per_s,
            "flops_per_image": flops,
            "gflops": images_per_s * flops as f64 / 1e9,
        });
        println!("{line}");
    }
    Ok(())
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Train => "train",
            Mode::Inference => "inference",
            Mode::Both => "both",
        }
    }
}
