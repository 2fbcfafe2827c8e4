//! The typed experiment configuration: one cell's complete settings.
//!
//! Every section denies unknown keys and has documented defaults
//! (`ablate config --defaults` prints them all).

use crate::data::prepare::SplitSpec;
use crate::data::subsample::Subsample;
use crate::data::synth::SynthConfig;
use crate::mining::MiningConfig;
use crate::train::TrainConfig;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// One cell's settings (the file's base settings with the cell's axis values applied).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExperimentConfig {
    /// Experiment name; default: the file name without extension.
    #[serde(default)]
    pub name: Option<String>,
    /// Root seed every cell's seeds derive from.
    #[serde(default)]
    pub seed: u64,
    /// Output folder; default `reports/<name>`.
    #[serde(default)]
    pub output: Option<PathBuf>,
    /// Where tensors live: `cpu`, `cuda` or `cuda:N` (CUDA needs a `--features cuda` build).
    #[serde(default = "default_device")]
    pub device: String,
    /// The dataset and its split.
    #[serde(default)]
    pub data: DataConfig,
    /// The network.
    #[serde(default)]
    pub model: ModelConfig,
    /// Training hyper-parameters (weak and strong models alike).
    #[serde(default)]
    pub training: TrainConfig,
    /// False-positive query and mining.
    #[serde(default)]
    pub mining: MiningConfig,
    /// Replicate values of the cell (set by `[matrix] seeds/folds`).
    #[serde(default)]
    pub replicate: Replicate,
    /// The axes of the experiment (see [`super::matrix`]).
    #[serde(default, skip_serializing)]
    pub matrix: Option<toml::Table>,
    /// Report settings (`metrics = [...]`, `roc_cell = N`), read by `ablate report`.
    #[serde(default, skip_serializing)]
    pub report: Option<toml::Table>,
}

fn default_device() -> String {
    "cpu".into()
}

/// Replicate indices of a cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct Replicate {
    /// Training-seed replicate; the training seed derives from (root seed, this).
    pub seed: u64,
    /// Fold index (used when `data.split.folds` is set).
    pub fold: usize,
}

/// Where the images come from and how they are split and subsampled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// Folder in the public layout; when absent the synthetic dataset is used.
    pub path: Option<PathBuf>,
    /// Synthetic generator settings (used when `path` is absent).
    pub synthetic: SynthConfig,
    /// Side of the square model input in pixels.
    pub image_size: u32,
    /// Train/valid/test split.
    pub split: SplitSpec,
    /// Keep this fraction of the training positives ("pos-only").
    pub pos_fraction: Option<f64>,
    /// Keep this fraction of all training patches ("entire subset").
    pub train_fraction: Option<f64>,
    /// Drop training positives to reach this negative:positive ratio.
    pub neg_pos_ratio: Option<f64>,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            path: None,
            synthetic: SynthConfig::default(),
            image_size: 64,
            split: SplitSpec::default(),
            pos_fraction: None,
            train_fraction: None,
            neg_pos_ratio: None,
        }
    }
}

impl DataConfig {
    /// The training-set subsampling these settings ask for.
    pub fn subsample(&self) -> Result<Subsample, String> {
        match (self.pos_fraction, self.train_fraction, self.neg_pos_ratio) {
            (None, None, None) => Ok(Subsample::All),
            (Some(f), None, None) => Ok(Subsample::PositiveFraction(f)),
            (None, Some(f), None) => Ok(Subsample::Fraction(f)),
            (None, None, Some(r)) => Ok(Subsample::NegPosRatio(r)),
            _ => Err(
                "set at most one of data.pos_fraction, data.train_fraction, data.neg_pos_ratio"
                    .into(),
            ),
        }
    }
}

/// The network and its starting weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Architecture: resnet18, resnet34, or a CPU variant such as resnet10-w16.
    pub name: String,
    /// Optional pretrained weights: a name fetched by `ablate fetch weights`
    /// (e.g. `resnet18.a1_in1k`), or a safetensors or PyTorch `.pth` file
    /// with torchvision parameter names.
    pub pretrained: Option<PathBuf>,
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            name: "resnet10-w16".into(),
            pretrained: None,
        }
    }
}

impl ExperimentConfig {
    /// The settings of an experiment file with no keys: every default.
    pub fn defaults() -> Self {
        toml::from_str("").expect("an empty experiment is valid")
    }
}
