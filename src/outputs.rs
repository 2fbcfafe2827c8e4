//! Rows of the CSV files a run writes, with stable column order.

use crate::data::{Label, Patch};
use crate::metrics::binary::BinaryMetrics;
use serde::Serialize;

/// One row of `metrics.csv`: a model evaluated on one split.
#[derive(Debug, Clone, Serialize)]
pub struct MetricsRow {
    /// Which model (`model`, `weak`, `strong`).
    pub model: String,
    /// Which split was evaluated (`valid`, `test`).
    pub split: String,
    /// Number of patches evaluated.
    pub n: usize,
    /// Mean cross-entropy.
    pub loss: f64,
    /// Threshold and ranking metrics.
    #[serde(flatten)]
    pub metrics: BinaryMetrics,
}

/// One row of `predictions.csv`.
#[derive(Debug, Clone, Serialize)]
pub struct PredictionRow {
    /// Which model produced the score.
    pub model: String,
    /// Which split the patch belongs to.
    pub split: String,
    /// Patch path relative to the dataset root.
    pub path: String,
    /// Slide identifier.
    pub slide: String,
    /// True label.
    pub label: Label,
    /// Predicted probability of lymphatic invasion.
    pub score: f64,
}

impl PredictionRow {
    /// A row for `patch` scored `score` by `model` on `split`.
    pub fn new(model: &str, split: &str, patch: &Patch, score: f64) -> Self {
        Self {
            model: model.to_string(),
            split: split.to_string(),
            path: patch.path.to_string_lossy().replace('\\', "/"),
            slide: patch.slide.clone(),
            label: patch.label,
            score,
        }
    }
}
