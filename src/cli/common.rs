//! Arguments shared by the commands that train: data source, split,
//! subsampling, model and training settings.

use crate::data::prepare::{prepare, PreparedData, SplitSpec};
use crate::data::source::ensure_synthetic;
use crate::data::split::SplitKind;
use crate::data::subsample::Subsample;
use crate::data::synth::SynthConfig;
use crate::model::resnet::ResNetConfig;
use crate::train::sampler::Sampling;
use crate::train::TrainConfig;
use anyhow::{Context, Result};
use std::path::PathBuf;

/// Data, split, model and training flags.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["data", "synthetic"])))]
pub struct TrainingArgs {
    /// Dataset folder in the public layout (hard_labeled_dataset/, weakly_labeled_dataset/).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Use the built-in synthetic dataset (generated into --synthetic-dir if absent).
    #[arg(long)]
    pub synthetic: bool,
    /// Folder for the generated synthetic dataset.
    #[arg(long, default_value = "data/synthetic")]
    pub synthetic_dir: PathBuf,
    /// Seed of the synthetic dataset.
    #[arg(long, default_value_t = 0)]
    pub synthetic_seed: u64,
    /// Training seed: initial weights, sample order, augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Seed of the train/valid/test split.
    #[arg(long, default_value_t = 0)]
    pub split_seed: u64,
    /// Split grouped by slide, or the reference's leaky patch-level split.
    #[arg(long, value_enum, default_value_t = SplitKind::Slide)]
    pub split: SplitKind,
    /// Grouped k-fold instead of a single hold-out split (with --fold).
    #[arg(long)]
    pub folds: Option<usize>,
    /// Which fold is the test part (0-based).
    #[arg(long, default_value_t = 0, requires = "folds")]
    pub fold: usize,
    /// Keep this fraction of the training positives ("pos-only" ablation).
    #[arg(long, conflicts_with = "train_fraction")]
    pub pos_fraction: Option<f64>,
    /// Keep this fraction of all training patches ("entire subset" ablation).
    #[arg(long)]
    pub train_fraction: Option<f64>,
    /// Model architecture: resnet18, resnet34, or a CPU variant such as resnet10-w16.
    #[arg(long, default_value = "resnet10-w16")]
    pub model: String,
    /// Pretrained weights: a name fetched by `ablate fetch weights` (resnet18.a1_in1k, ...),
    /// or a safetensors or PyTorch .pth file with torchvision parameter names.
    #[arg(long)]
    pub pretrained: Option<PathBuf>,
    /// Side of the square input in pixels.
    #[arg(long, default_value_t = 64)]
    pub image_size: u32,
    /// Training epochs.
    #[arg(long, default_value_t = TrainConfig::default().epochs)]
    pub epochs: usize,
    /// Training batch size.
    #[arg(long, default_value_t = TrainConfig::default().batch_size)]
    pub batch_size: usize,
    /// Initial Adam learning rate (cosine-annealed per step).
    #[arg(long, default_value_t = TrainConfig::default().lr)]
    pub lr: f64,
    /// How each epoch's samples are drawn.
    #[arg(long, value_enum, default_value_t = Sampling::Balanced)]
    pub sampling: Sampling,
    /// Train without augmentation.
    #[arg(long)]
    pub no_augment: bool,
    /// Where tensors live: cpu, cuda or cuda:N (CUDA needs a `--features cuda` build).
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

impl TrainingArgs {
    /// The device named by `--device`.
    pub fn device(&self) -> Result<candle_core::Device> {
        crate::device::open_device(&self.device).context("--device")
    }

    /// The model configuration named by `--model`.
    pub fn model_config(&self) -> Result<ResNetConfig> {
        ResNetConfig::from_name(&self.model, 2)
            .with_context(|| format!("invalid --model '{}'", self.model))
    }

    /// Training hyper-parameters from the flags.
    pub fn train_config(&self) -> TrainConfig {
        TrainConfig {
            epochs: self.epochs,
            batch_size: self.batch_size,
            lr: self.lr,
            sampling: self.sampling,
            augment: !self.no_augment,
            ..TrainConfig::default()
        }
    }

    /// Lists, decodes and splits the data (generating synthetic data when asked).
    pub fn prepare(&self, quiet: bool) -> Result<PreparedData> {
        let root = self.data_root(quiet)?;
        let split = SplitSpec {
            kind: self.split,
            folds: self.folds,
            fold: self.fold,
            seed: self.split_seed,
            ..SplitSpec::default()
        };
        let subsample = match (self.pos_fraction, self.train_fraction) {
            (Some(f), _) => Subsample::PositiveFraction(f),
            (_, Some(f)) => Subsample::Fraction(f),
            _ => Subsample::All,
        };
        prepare(&root, self.image_size, &split, &subsample)
            .with_context(|| format!("could not prepare the dataset in '{}'", root.display()))
    }

    /// The dataset folder: `--data`, or the synthetic dataset, generated when needed.
    fn data_root(&self, quiet: bool) -> Result<PathBuf> {
        if let Some(dir) = &self.data {
            return Ok(dir.clone());
        }
        let config = SynthConfig {
            seed: self.synthetic_seed,
            size: self.image_size.max(64),
            ..SynthConfig::default()
        };
        let generated = ensure_synthetic(&self.synthetic_dir, &config)?;
        if generated && !quiet {
            eprintln!(
                "generated synthetic data in '{}'",
                self.synthetic_dir.display()
            );
        }
        Ok(self.synthetic_dir.clone())
    }
}
