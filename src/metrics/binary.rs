//! Threshold metrics of a binary classifier, and one summary row per evaluation.
//!
//! A sample is predicted positive iff its score is `>= threshold` (scikit-learn's
//! `y_pred = y_score >= threshold`; the reference study uses 0.5 on the
//! predicted LI probability). Ratios with an empty denominator are 0, as
//! scikit-learn's `zero_division=0`.
//!
//! [`BinaryMetrics`] is one flat row (f64 and u64 fields, plain names) meant to
//! be written as a CSV line or JSON object. With one class absent, AUROC is NaN
//! (undefined; serde_json writes it as `null`, the csv crate as `NaN`), AUPRC is
//! scikit-learn's average precision (0 without positives, 1 without
//! negatives), and the threshold metrics are computed as usual.

use super::ranking::{average_precision, roc_auc, validate, MetricError};
use serde::Serialize;

/// Counts of a binary confusion matrix at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct ConfusionMatrix {
    /// Positives predicted positive.
    pub tp: u64,
    /// Negatives predicted positive.
    pub fp: u64,
    /// Negatives predicted negative.
    pub tn: u64,
    /// Positives predicted negative.
    #[serde(rename = "fn")]
    pub fn_: u64,
}

impl ConfusionMatrix {
    /// Counts outcomes with "predicted positive iff score >= threshold".
    ///
    /// Errors if lengths differ, the input is empty, a score is not finite or
    /// the threshold is NaN.
    pub fn from_scores(
        labels: &[bool],
        scores: &[f64],
        threshold: f64,
    ) -> Result<Self, MetricError> {
        validate(labels, scores)?;
        if threshold.is_nan() {
            return Err(MetricError::NanThreshold);
        }
        let mut cm = Self::default();
        for (&label, &score) in labels.iter().zip(scores) {
            match (label, score >= threshold) {
                (true, true) => cm.tp += 1,
                (false, true) => cm.fp += 1,
                (false, false) => cm.tn += 1,
                (true, false) => cm.fn_ += 1,
            }
        }
        Ok(cm)
    }

    /// Number of samples.
    pub fn total(&self) -> u64 {
        self.tp + self.fp + self.tn + self.fn_
    }

    /// Recall of the positive class, TP / (TP + FN); 0 without positives.
    pub fn sensitivity(&self) -> f64 {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// Recall of the negative class, TN / (TN + FP); 0 without negatives.
    pub fn specificity(&self) -> f64 {
        ratio(self.tn, self.tn + self.fp)
    }

    /// Precision of the positive class, TP / (TP + FP); 0 when nothing is
    /// predicted positive.
    pub fn precision(&self) -> f64 {
        ratio(self.tp, self.tp + self.fp)
    }

    /// F1 of the positive class, 2 TP / (2 TP + FP + FN) (the harmonic mean of
    /// precision and recall, in scikit-learn's form); 0 when undefined. Not
    /// the micro-average over both classes, which equals accuracy.
    pub fn f1(&self) -> f64 {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }

    /// (TP + TN) / all; 0 for an empty matrix.
    pub fn accuracy(&self) -> f64 {
        ratio(self.tp + self.tn, self.total())
    }
}

/// `numerator / denominator`, or 0 when the denominator is 0 (`zero_division=0`).
fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

/// All reported metrics of one evaluation, as one flat CSV/JSON row.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BinaryMetrics {
    /// Area under the ROC curve; NaN when one class is absent.
    pub auroc: f64,
    /// Average precision (scikit-learn's step-function AUPRC).
    pub auprc: f64,
    /// TP / (TP + FN) at the threshold.
    pub sensitivity: f64,
    /// TN / (TN + FP) at the threshold.
    pub specificity: f64,
    /// TP / (TP + FP) at the threshold.
    pub precision: f64,
    /// F1 of the positive class at the threshold.
    pub f1: f64,
    /// (TP + TN) / all at the threshold.
    pub accuracy: f64,
    /// True positives at the threshold.
    pub tp: u64,
    /// False positives at the threshold.
    pub fp: u64,
    /// True negatives at the threshold.
    pub tn: u64,
    /// False negatives at the threshold.
    #[serde(rename = "fn")]
    pub fn_: u64,
}

impl BinaryMetrics {
    /// Computes every metric; predicted positive iff score >= `threshold`.
    ///
    /// Errors if lengths differ, the input is empty, a score is not finite or
    /// the threshold is NaN. A missing class is not an error: AUROC is then NaN.
    pub fn compute(labels: &[bool], scores: &[f64], threshold: f64) -> Result<Self, MetricError> {
        let cm = ConfusionMatrix::from_scores(labels, scores, threshold)?;
        let auroc = match roc_auc(labels, scores) {
            Ok(auc) => auc,
            Err(MetricError::OneClass { .. }) => f64::NAN,
            Err(other) => return Err(other),
        };
        Ok(Self {
            auroc,
            auprc: average_precision(labels, scores)?,
            sensitivity: cm.sensitivity(),
            specificity: cm.specificity(),
            precision: cm.precision(),
            f1: cm.f1(),
            accuracy: cm.accuracy(),
            tp: cm.tp,
            fp: cm.fp,
            tn: cm.tn,
            fn_: cm.fn_,
        })
    }

    /// The confusion matrix the threshold metrics come from.
    pub fn confusion(&self) -> ConfusionMatrix {
        ConfusionMatrix {
            tp: self.tp,
            fp: self.fp,
            tn: self.tn,
            fn_: self.fn_,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ranking::fixtures::{assert_close, cases, labels_of};

    #[test]
    fn threshold_is_inclusive() {
        let cm =
            ConfusionMatrix::from_scores(&[true, false, true], &[0.5, 0.5, 0.49], 0.5).unwrap();
        assert_eq!(
            cm,
            ConfusionMatrix {
                tp: 1,
                fp: 1,
                tn: 0,
                fn_: 1
            }
        );
    }

    #[test]
    fn hand_computed_metrics() {
        // tp 2, fp 1, tn 3, fn 2.
        let labels = [true, true, true, true, false, false, false, false];
        let scores = [0.9, 0.6, 0.4, 0.1, 0.7, 0.3, 0.2, 0.0];
        let m = BinaryMetrics::compute(&labels, &scores, 0.5).unwrap();
        assert_eq!((m.tp, m.fp, m.tn, m.fn_), (2, 1, 3, 2));
        assert_close(m.sensitivity, 0.5, "sensitivity");
        assert_close(m.specificity, 0.75, "specificity");
        assert_close(m.precision, 2.0 / 3.0, "precision");
        assert_close(m.f1, 4.0 / 7.0, "f1");
        assert_close(m.accuracy, 5.0 / 8.0, "accuracy");
        // Pairs pos > neg: 0.9 beats 4, 0.6 beats 3, 0.4 beats 3, 0.1 beats 1.
        assert_close(m.auroc, 11.0 / 16.0, "auroc");
        assert_eq!(m.confusion().total(), 8);
    }

    #[test]
    fn one_class_gives_nan_auroc_and_threshold_metrics() {
        let m = BinaryMetrics::compute(&[false, false, false], &[0.1, 0.6, 0.7], 0.5).unwrap();
        assert!(m.auroc.is_nan());
        assert_eq!(m.auprc, 0.0);
        assert_eq!((m.tp, m.fp, m.tn, m.fn_), (0, 2, 1, 0));
        assert_close(m.specificity, 1.0 / 3.0, "specificity");
        assert_eq!((m.sensitivity, m.precision, m.f1), (0.0, 0.0, 0.0));
    }

    #[test]
    fn invalid_input_is_an_error() {
        assert!(BinaryMetrics::compute(&[true], &[0.1, 0.2], 0.5).is_err());
        assert!(BinaryMetrics::compute(&[true, false], &[0.1, f64::NAN], 0.5).is_err());
        assert_eq!(
            BinaryMetrics::compute(&[true, false], &[0.1, 0.2], f64::NAN),
            Err(MetricError::NanThreshold)
        );
        assert_eq!(
            BinaryMetrics::compute(&[], &[], 0.5),
            Err(MetricError::Empty)
        );
    }

    #[test]
    fn serializes_with_plain_column_names() {
        let m = BinaryMetrics::compute(&[true, false], &[0.8, 0.3], 0.5).unwrap();
        let json = serde_json::to_value(m).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for key in [
            "auroc",
            "auprc",
            "sensitivity",
            "specificity",
            "precision",
            "f1",
            "accuracy",
            "tp",
            "fp",
            "tn",
            "fn",
        ] {
            assert!(keys.contains(&key), "missing column {key} in {keys:?}");
        }
        assert_eq!(json["fn"], 0);
    }

    #[test]
    fn matches_sklearn_fixtures() {
        for case in cases() {
            let name = case.name.as_str();
            let labels = labels_of(&case);
            let m = BinaryMetrics::compute(&labels, &case.scores, case.threshold).unwrap();
            let c = &case.confusion;
            assert_eq!(
                (m.tp, m.fp, m.tn, m.fn_),
                (c.tp, c.fp, c.tn, c.fn_),
                "{name}: confusion"
            );
            match case.roc_auc {
                Some(expected) => assert_close(m.auroc, expected, &format!("{name}: auroc")),
                None => assert!(m.auroc.is_nan(), "{name}: auroc should be NaN"),
            }
            assert_close(m.auprc, case.average_precision, &format!("{name}: auprc"));
            assert_close(m.precision, case.precision, &format!("{name}: precision"));
            assert_close(m.sensitivity, case.recall, &format!("{name}: recall"));
            assert_close(
                m.specificity,
                case.specificity,
                &format!("{name}: specificity"),
            );
            assert_close(m.f1, case.f1, &format!("{name}: f1"));
            assert_close(m.accuracy, case.accuracy, &format!("{name}: accuracy"));
        }
    }
}
