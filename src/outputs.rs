//! Rows of the CSV files a run writes, with stable column order.

use crate::data::{Label, Patch};
use crate::metrics::binary::BinaryMetrics;
use serde::Serialize;

/// The loss column that precedes the metric columns in the metrics tables.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Loss {
    /// Mean cross-entropy.
    pub loss: f64,
}

/// The leading columns of a row of `metrics.csv`: which model on which split.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluated {
    /// Which model (`model`, `weak`, `strong`).
    pub model: String,
    /// Which split was evaluated (`valid`, `test`).
    pub split: String,
    /// Number of patches evaluated.
    pub n: usize,
}

/// One row of `metrics.csv`; a tuple, so that csv writes the columns of its
/// parts side by side (csv cannot flatten nested structs).
pub type MetricsRow = (Evaluated, Loss, BinaryMetrics);

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
