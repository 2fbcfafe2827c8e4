//! Rows of the CSV files a run writes, with stable column order.

use crate::data::{Label, Patch};
use crate::metrics::binary::BinaryMetrics;
use serde::Serialize;

/// The metric columns shared by the metrics tables (csv cannot flatten
/// nested structs, so the fields are spelled out).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MetricColumns {
    /// Mean cross-entropy.
    pub loss: f64,
    /// Area under the ROC curve.
    pub auroc: f64,
    /// Average precision.
    pub auprc: f64,
    /// Recall of the positive class.
    pub sensitivity: f64,
    /// Recall of the negative class.
    pub specificity: f64,
    /// Precision of the positive class.
    pub precision: f64,
    /// F1 of the positive class.
    pub f1: f64,
    /// Accuracy.
    pub accuracy: f64,
    /// True positives at the threshold.
    pub tp: u64,
    /// False positives.
    pub fp: u64,
    /// True negatives.
    pub tn: u64,
    /// False negatives.
    #[serde(rename = "fn")]
    pub fn_: u64,
}

impl MetricColumns {
    /// The columns of `metrics` with the loss.
    pub fn new(loss: f64, m: &BinaryMetrics) -> Self {
        Self {
            loss,
            auroc: m.auroc,
            auprc: m.auprc,
            sensitivity: m.sensitivity,
            specificity: m.specificity,
            precision: m.precision,
            f1: m.f1,
            accuracy: m.accuracy,
            tp: m.tp,
            fp: m.fp,
            tn: m.tn,
            fn_: m.fn_,
        }
    }
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

/// One row of `metrics.csv`; serialised as a tuple so that csv writes the
/// columns of both parts side by side.
pub type MetricsRow = (Evaluated, MetricColumns);

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
