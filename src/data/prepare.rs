//! From a dataset folder to decoded, split training data.

use super::images::ImageStore;
use super::layout::load_dataset;
use super::split::{holdout, kfold, Split, SplitKind};
use super::subsample::Subsample;
use super::Dataset;
use crate::setting::InvalidSetting;
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::sync::Arc;

/// How the hard-labeled set is split into train, validation and test.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SplitSpec {
    /// `slide` (grouped, the default) or `patch` (the reference's leaky split, for comparison only).
    pub kind: SplitKind,
    /// Share of patches held out for test (ignored with folds).
    pub test_fraction: f64,
    /// Share of the remaining patches used for validation.
    pub valid_fraction: f64,
    /// Number of grouped folds; `None` for a single hold-out split.
    pub folds: Option<usize>,
    /// Which fold is the test part (0-based; with `folds`).
    pub fold: usize,
    /// Seed of the split (independent of the training seed).
    pub seed: u64,
}

impl Default for SplitSpec {
    fn default() -> Self {
        Self {
            kind: SplitKind::Slide,
            test_fraction: 0.2,
            valid_fraction: 0.2,
            folds: None,
            fold: 0,
            seed: 0,
        }
    }
}

impl SplitSpec {
    /// Checks the settings a split cannot be made with; the error names the
    /// full key (`data.split.*`).
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        for (key, value) in [
            ("data.split.test_fraction", self.test_fraction),
            ("data.split.valid_fraction", self.valid_fraction),
        ] {
            if !(value > 0.0 && value < 1.0) {
                return Err(InvalidSetting::range(
                    key,
                    value,
                    "a fraction strictly between 0 and 1, e.g. 0.2",
                ));
            }
        }
        match self.folds {
            Some(k) if k < 2 => Err(InvalidSetting::range(
                "data.split.folds",
                k,
                "at least 2 folds (leave it out for a single hold-out split)",
            )),
            Some(k) if self.fold >= k => Err(InvalidSetting::range(
                "data.split.fold",
                self.fold,
                &format!("a fold index from 0 to {} (data.split.folds = {k})", k - 1),
            )),
            _ => Ok(()),
        }
    }
}

/// Errors while preparing data, each naming what failed.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// The folder layout is wrong.
    #[error(transparent)]
    Layout(#[from] super::layout::LayoutError),
    /// Images could not be decoded.
    #[error(transparent)]
    Images(#[from] super::images::ImageError),
    /// The split is impossible.
    #[error(transparent)]
    Split(#[from] super::split::SplitError),
    /// Subsampling is impossible.
    #[error(transparent)]
    Subsample(#[from] super::subsample::SubsampleError),
}

/// A dataset folder listed and decoded at one image size: what every
/// split, fold and subsample of it shares (cloning shares the images).
#[derive(Clone)]
pub struct DecodedData {
    /// Patches and pool as listed on disk.
    pub dataset: Arc<Dataset>,
    /// Decoded patches: the hard-labeled set, then the pool.
    pub store: Arc<ImageStore>,
}

/// Lists the dataset at `root` and decodes every patch at `image_size`.
pub fn decode(root: &Path, image_size: u32) -> Result<DecodedData, PrepareError> {
    let dataset = load_dataset(root)?;
    let all: Vec<super::Patch> = dataset.hard.iter().chain(&dataset.pool).cloned().collect();
    let store = ImageStore::load(root, &all, image_size)?;
    Ok(DecodedData {
        dataset: Arc::new(dataset),
        store: Arc::new(store),
    })
}

/// The decoded dataset with its split.
///
/// Hard-labeled patches and pool patches share one image store: store index
/// `i < pool_offset` is `dataset.hard[i]`, and `pool_offset + j` is
/// `dataset.pool[j]`, so mined pool patches join training by index. Splits
/// of one [`DecodedData`] share its images.
pub struct PreparedData {
    /// Patches and pool as listed on disk.
    pub dataset: Arc<Dataset>,
    /// Decoded patches: the hard-labeled set, then the pool.
    pub store: Arc<ImageStore>,
    /// Label of each store index (true = positive; pool patches are negative).
    pub positive: Vec<bool>,
    /// Train/valid/test indices into `dataset.hard` (train after subsampling).
    pub split: Split,
    /// Store index of the first pool patch (= number of hard-labeled patches).
    pub pool_offset: usize,
}

impl PreparedData {
    /// Store indices of every pool patch.
    pub fn pool_indices(&self) -> Vec<usize> {
        (self.pool_offset..self.pool_offset + self.dataset.pool.len()).collect()
    }

    /// The patch at a store index.
    pub fn patch(&self, store_index: usize) -> &super::Patch {
        match store_index.checked_sub(self.pool_offset) {
            Some(j) => &self.dataset.pool[j],
            None => &self.dataset.hard[store_index],
        }
    }
}

/// Lists, decodes and splits the dataset at `root`, then subsamples the training part.
///
/// Validation and test are never subsampled.
pub fn prepare(
    root: &Path,
    image_size: u32,
    split: &SplitSpec,
    subsample: &Subsample,
) -> Result<PreparedData, PrepareError> {
    split_decoded(&decode(root, image_size)?, split, subsample)
}

/// Splits already decoded data, then subsamples the training part (see
/// [`prepare`]); the result shares the decoded images.
pub fn split_decoded(
    decoded: &DecodedData,
    split: &SplitSpec,
    subsample: &Subsample,
) -> Result<PreparedData, PrepareError> {
    let dataset = &decoded.dataset;
    let positive = dataset
        .hard
        .iter()
        .chain(&dataset.pool)
        .map(|p| p.label == super::Label::Positive)
        .collect();
    let pool_offset = dataset.hard.len();
    Ok(PreparedData {
        dataset: Arc::clone(&decoded.dataset),
        store: Arc::clone(&decoded.store),
        positive,
        split: split_dataset(dataset, split, subsample)?,
        pool_offset,
    })
}

/// The train/valid/test parts of a listed dataset's hard-labeled patches,
/// the training part subsampled; no image is read.
pub fn split_dataset(
    dataset: &Dataset,
    split: &SplitSpec,
    subsample: &Subsample,
) -> Result<Split, PrepareError> {
    let mut parts = match split.folds {
        Some(k) => kfold(
            &dataset.hard,
            k,
            split.fold,
            split.valid_fraction,
            split.seed,
            split.kind,
        )?,
        None => holdout(
            &dataset.hard,
            split.test_fraction,
            split.valid_fraction,
            split.seed,
            split.kind,
        )?,
    };
    parts.train = subsample.apply(&parts.train, &dataset.hard, split.seed)?;
    Ok(parts)
}
