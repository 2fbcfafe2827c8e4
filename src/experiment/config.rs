//! The typed experiment configuration: one cell's complete settings.
//!
//! Every section denies unknown keys, has documented defaults (`ablate
//! config --defaults` prints them all) and checks its values' ranges
//! ([`ExperimentConfig::validate`], which loading a file runs on every cell).

use crate::data::prepare::SplitSpec;
use crate::data::subsample::Subsample;
use crate::data::synth::{SynthConfig, SynthError};
use crate::mining::MiningConfig;
use crate::model::resnet::ResNetConfig;
use crate::setting::InvalidSetting;
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
    /// Checks the data settings, the synthetic generator's and the split's
    /// included; the error names the full key.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        let max = crate::data::synth::MAX_SIZE;
        if !(1..=max).contains(&self.image_size) {
            return Err(InvalidSetting::range(
                "data.image_size",
                self.image_size,
                &format!("a side between 1 and {max} pixels"),
            ));
        }
        self.synthetic.validate().map_err(|e| match e {
            SynthError::InvalidConfig {
                field,
                value,
                expected,
            } => InvalidSetting::within("data.synthetic", field, value, &expected),
            other => InvalidSetting::new("data.synthetic", other.to_string()),
        })?;
        self.split.validate()?;
        for (key, value) in [
            ("data.pos_fraction", self.pos_fraction),
            ("data.train_fraction", self.train_fraction),
        ] {
            if let Some(f) = value.filter(|&f| !(f > 0.0 && f <= 1.0)) {
                return Err(InvalidSetting::range(
                    key,
                    f,
                    "a fraction in (0, 1], e.g. 0.3",
                ));
            }
        }
        if let Some(r) = self.neg_pos_ratio.filter(|&r| !(r > 0.0 && r.is_finite())) {
            return Err(InvalidSetting::range(
                "data.neg_pos_ratio",
                r,
                "a positive ratio, e.g. 2.0",
            ));
        }
        self.subsample().map(|_| ()).map_err(|message| {
            let key = if self.pos_fraction.is_some() {
                "data.pos_fraction"
            } else {
                "data.train_fraction"
            };
            InvalidSetting::new(key, message)
        })
    }

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

impl ModelConfig {
    /// Checks that the architecture exists.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        ResNetConfig::from_name(&self.name, 2)
            .map(|_| ())
            .map_err(|e| {
                InvalidSetting::new(
                    "model.name",
                    format!("`model.name` = \"{}\": {e}", self.name),
                )
            })
    }
}

impl ExperimentConfig {
    /// The settings of an experiment file with no keys: every default.
    pub fn defaults() -> Self {
        toml::from_str("").expect("an empty experiment is valid")
    }

    /// Checks every section (data with its synthetic generator and split,
    /// model, training with its augmentation, mining, device, replicate
    /// and `[report]`); the first problem found, naming its full key.
    /// `[matrix]` is checked when the file is expanded into cells.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        self.data.validate()?;
        self.model.validate()?;
        self.training.validate()?;
        self.mining.validate()?;
        crate::device::DeviceSpec::parse(&self.device).map_err(|e| {
            InvalidSetting::new("device", format!("`device` = \"{}\": {e}", self.device))
        })?;
        match self.data.split.folds {
            None if self.replicate.fold != 0 => {
                return Err(InvalidSetting::new(
                    "data.split.folds",
                    "the matrix has fold replicates (`folds`) but `data.split.folds` is not set",
                ))
            }
            Some(k) if self.replicate.fold >= k => {
                return Err(InvalidSetting::new(
                    "data.split.folds",
                    format!(
                        "fold {} does not exist: `data.split.folds` = {k}",
                        self.replicate.fold
                    ),
                ))
            }
            _ => {}
        }
        Ok(())
    }
}
