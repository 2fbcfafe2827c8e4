//! Training hyper-parameters.

use super::checkpoint::Checkpoint;
use super::sampler::Sampling;
use super::schedule::ScheduleKind;
use crate::data::augment::AugmentConfig;
use crate::setting::InvalidSetting;
use serde::{Deserialize, Serialize};

/// Hyper-parameters of one training run. Defaults follow the paper's method
/// (Adam, lr 1e-4, no weight decay, cosine annealing, batch 32, eval batch
/// 256, class-balanced sampling, best-validation-loss checkpoint) except the
/// number of epochs, which is sized for CPU runs on small patches.
/// `schedule = "reference"` and `checkpoint = "last-epoch"` reproduce what
/// the reference implementation actually ran instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Number of passes over the training set (reference: 30).
    pub epochs: usize,
    /// Training batch size (reference: 32).
    pub batch_size: usize,
    /// Batch size for validation, test and embedding (reference: 256).
    pub eval_batch_size: usize,
    /// Initial Adam learning rate (reference: 1e-4).
    pub lr: f64,
    /// Learning rate reached at the last step of cosine annealing (the
    /// reference schedule's `eta_min`).
    pub min_lr: f64,
    /// Learning-rate schedule: `cosine` (annealed every step over the whole
    /// run) or `reference` (the reference implementation's: `T_max` = 10 x
    /// batches per epoch, stepped once per epoch, so nearly constant).
    pub schedule: ScheduleKind,
    /// Weights a run ends with: `best-valid-loss` (lowest validation loss)
    /// or `last-epoch` (what the reference implementation tested).
    pub checkpoint: Checkpoint,
    /// How each epoch's samples are drawn.
    pub sampling: Sampling,
    /// Whether training patches are augmented.
    pub augment: bool,
    /// Augmentation probabilities and strengths.
    pub augmentation: AugmentConfig,
    /// Probability threshold for the threshold metrics.
    pub threshold: f64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch_size: 32,
            eval_batch_size: 256,
            lr: 1e-4,
            min_lr: 0.0,
            schedule: ScheduleKind::Cosine,
            checkpoint: Checkpoint::BestValidLoss,
            sampling: Sampling::Balanced,
            augment: true,
            augmentation: AugmentConfig::default(),
            threshold: 0.5,
        }
    }
}

impl TrainConfig {
    /// Checks values a run cannot start with (augmentation included); the
    /// error names the full key.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if self.epochs == 0 {
            return Err(InvalidSetting::range("training.epochs", 0, "at least 1"));
        }
        for (key, size) in [
            ("training.batch_size", self.batch_size),
            ("training.eval_batch_size", self.eval_batch_size),
        ] {
            if size == 0 {
                return Err(InvalidSetting::range(key, 0, "at least 1"));
            }
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return Err(InvalidSetting::range(
                "training.lr",
                self.lr,
                "a positive number",
            ));
        }
        if !(self.min_lr.is_finite() && self.min_lr >= 0.0 && self.min_lr <= self.lr) {
            return Err(InvalidSetting::range(
                "training.min_lr",
                self.min_lr,
                &format!("a number in [0, training.lr = {}]", self.lr),
            ));
        }
        if !(0.0..=1.0).contains(&self.threshold) {
            return Err(InvalidSetting::range(
                "training.threshold",
                self.threshold,
                "a probability in [0, 1]",
            ));
        }
        self.augmentation.validate().map_err(|e| {
            InvalidSetting::within("training.augmentation", e.key, &e.value, e.expected)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_checked_and_named() {
        type Spoil = fn(&mut TrainConfig);
        let cases: [(&str, Spoil); 8] = [
            ("training.epochs", |c| c.epochs = 0),
            ("training.batch_size", |c| c.batch_size = 0),
            ("training.eval_batch_size", |c| c.eval_batch_size = 0),
            ("training.lr", |c| c.lr = -1e-4),
            ("training.lr", |c| c.lr = f64::NAN),
            ("training.min_lr", |c| c.min_lr = 1.0),
            ("training.threshold", |c| c.threshold = 1.5),
            ("training.augmentation.flip_p", |c| {
                c.augmentation.flip_p = 3.0
            }),
        ];
        assert_eq!(TrainConfig::default().validate(), Ok(()));
        for (key, spoil) in cases {
            let mut config = TrainConfig::default();
            spoil(&mut config);
            let error = config.validate().unwrap_err();
            assert_eq!(error.key, key);
            assert!(
                error.to_string().starts_with(&format!("`{key}` = ")),
                "{error}"
            );
        }
    }
}
