//! Threshold-free ranking metrics: ROC and precision-recall curves, AUROC and
//! average precision, with scikit-learn's definitions.
//!
//! All four functions start from the same binary classification curve: the
//! scores sorted in decreasing order, one operating point per *distinct* score
//! (tied scores form a single point, so their order never matters), with the
//! cumulative true- and false-positive counts at each point. This is
//! scikit-learn's `confusion_matrix_at_thresholds`, and the functions here
//! reproduce `roc_curve(drop_intermediate=False)`, `roc_auc_score`,
//! `precision_recall_curve` and `average_precision_score` for binary labels;
//! `tests/fixtures/metrics.json` (written by `scripts/make_metric_fixtures.py`)
//! pins them against scikit-learn to 1e-12.
//!
//! Where scikit-learn only warns, this module decides:
//! - AUROC and the ROC curve need both classes; with one class they return
//!   [`MetricError::OneClass`] (scikit-learn returns NaN with a warning).
//! - Average precision and the precision-recall curve keep scikit-learn's values
//!   with one class: without positives recall is 1 at every threshold and AP is
//!   0; without negatives precision is 1 everywhere and AP is 1.
//! - Scores must be finite (scikit-learn rejects NaN and infinity too).

use std::cmp::Ordering;

/// Why a metric could not be computed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricError {
    /// Labels and scores must pair up one to one.
    #[error(
        "labels and scores differ in length ({labels} labels, {scores} scores); pass one score per labeled sample"
    )]
    LengthMismatch {
        /// Number of labels.
        labels: usize,
        /// Number of scores.
        scores: usize,
    },
    /// No samples at all.
    #[error("no samples: metrics need at least one label/score pair")]
    Empty,
    /// A score is NaN or infinite.
    #[error(
        "score {index} is {value}; scores must be finite numbers (check the model output for NaN or overflow)"
    )]
    NonFiniteScore {
        /// Position of the first offending score.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// The metric is undefined with a single class.
    #[error(
        "{metric} is undefined with only one class present ({positives} positive, {negatives} negative labels); evaluate on a set holding both classes"
    )]
    OneClass {
        /// The metric that was asked for.
        metric: &'static str,
        /// Number of positive labels.
        positives: usize,
        /// Number of negative labels.
        negatives: usize,
    },
    /// The decision threshold is NaN.
    #[error("decision threshold is NaN; pass a number such as 0.5")]
    NanThreshold,
}

/// A receiver operating characteristic curve, as scikit-learn's
/// `roc_curve(drop_intermediate=False)`.
#[derive(Debug, Clone, PartialEq)]
pub struct RocCurve {
    /// False-positive rate at each threshold, increasing from 0 to 1.
    pub fpr: Vec<f64>,
    /// True-positive rate at each threshold, increasing from 0 to 1.
    pub tpr: Vec<f64>,
    /// Decreasing thresholds: `+inf` (nothing predicted positive), then each
    /// distinct score; a sample is predicted positive iff score >= threshold.
    pub thresholds: Vec<f64>,
}

/// A precision-recall curve, as scikit-learn's `precision_recall_curve`.
#[derive(Debug, Clone, PartialEq)]
pub struct PrCurve {
    /// Precision at each threshold, then a final 1 (the point at recall 0).
    pub precision: Vec<f64>,
    /// Recall at each threshold (decreasing), then a final 0.
    pub recall: Vec<f64>,
    /// Increasing distinct scores; one fewer than `precision` and `recall`.
    pub thresholds: Vec<f64>,
}

/// Cumulative counts at each distinct score, from the highest score down.
struct ClfCurve {
    /// True positives among samples with score >= threshold.
    tps: Vec<u64>,
    /// False positives among samples with score >= threshold.
    fps: Vec<u64>,
    /// The distinct scores, decreasing.
    thresholds: Vec<f64>,
}

impl ClfCurve {
    /// Total positives (true positives at the lowest threshold).
    fn positives(&self) -> u64 {
        self.tps.last().copied().unwrap_or(0)
    }

    /// Total negatives (false positives at the lowest threshold).
    fn negatives(&self) -> u64 {
        self.fps.last().copied().unwrap_or(0)
    }
}

/// Checks that labels and scores pair up, are non-empty and finite.
pub(crate) fn validate(labels: &[bool], scores: &[f64]) -> Result<(), MetricError> {
    if labels.len() != scores.len() {
        return Err(MetricError::LengthMismatch {
            labels: labels.len(),
            scores: scores.len(),
        });
    }
    if labels.is_empty() {
        return Err(MetricError::Empty);
    }
    if let Some((index, &value)) = scores.iter().enumerate().find(|(_, s)| !s.is_finite()) {
        return Err(MetricError::NonFiniteScore { index, value });
    }
    Ok(())
}

/// Builds the cumulative counts per distinct score (validated input).
fn clf_curve(labels: &[bool], scores: &[f64]) -> ClfCurve {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    // Scores are finite here, so `partial_cmp` always succeeds; `-0.0` and
    // `0.0` compare equal, as in numpy, and therefore form one threshold.
    order.sort_by(|&a, &b| scores[b].partial_cmp(&scores[a]).unwrap_or(Ordering::Equal));
    let mut curve = ClfCurve {
        tps: Vec::new(),
        fps: Vec::new(),
        thresholds: Vec::new(),
    };
    let (mut tp, mut fp) = (0u64, 0u64);
    for (rank, &i) in order.iter().enumerate() {
        if labels[i] {
            tp += 1;
        } else {
            fp += 1;
        }
        // A point closes where the next (lower) score differs, or at the end.
        let last_of_tie = order
            .get(rank + 1)
            .is_none_or(|&next| scores[next] != scores[i]);
        if last_of_tie {
            curve.tps.push(tp);
            curve.fps.push(fp);
            curve.thresholds.push(scores[i]);
        }
    }
    curve
}

/// Errors with [`MetricError::OneClass`] unless both classes are present.
fn require_both_classes(curve: &ClfCurve, metric: &'static str) -> Result<(), MetricError> {
    let (positives, negatives) = (curve.positives(), curve.negatives());
    if positives == 0 || negatives == 0 {
        return Err(MetricError::OneClass {
            metric,
            positives: positives as usize,
            negatives: negatives as usize,
        });
    }
    Ok(())
}

/// The ROC curve with every distinct score as a threshold (scikit-learn's
/// `roc_curve(y_true, y_score, drop_intermediate=False)`).
///
/// The first point is (0, 0) at threshold `+inf`. Errors if lengths differ,
/// the input is empty, a score is not finite, or one class is absent.
pub fn roc_curve(labels: &[bool], scores: &[f64]) -> Result<RocCurve, MetricError> {
    validate(labels, scores)?;
    let curve = clf_curve(labels, scores);
    require_both_classes(&curve, "the ROC curve")?;
    let (p, n) = (curve.positives() as f64, curve.negatives() as f64);
    let mut roc = RocCurve {
        fpr: vec![0.0],
        tpr: vec![0.0],
        thresholds: vec![f64::INFINITY],
    };
    roc.fpr.extend(curve.fps.iter().map(|&fp| fp as f64 / n));
    roc.tpr.extend(curve.tps.iter().map(|&tp| tp as f64 / p));
    roc.thresholds.extend_from_slice(&curve.thresholds);
    Ok(roc)
}

/// Area under the ROC curve (scikit-learn's `roc_auc_score` for binary labels).
///
/// Trapezoidal rule over the ROC points of the distinct scores, so a tie
/// between a positive and a negative counts one half. The area is accumulated
/// in integer counts and divided once, which is exact up to that division.
/// Errors as [`roc_curve`]; in particular with only one class (scikit-learn
/// returns NaN there).
pub fn roc_auc(labels: &[bool], scores: &[f64]) -> Result<f64, MetricError> {
    validate(labels, scores)?;
    let curve = clf_curve(labels, scores);
    require_both_classes(&curve, "AUROC")?;
    // Twice the area in units of (1 negative) x (1 positive): each step adds
    // dfp * (tp_before + tp_after), the doubled trapezoid.
    let (mut doubled, mut prev_tp, mut prev_fp) = (0u128, 0u64, 0u64);
    for (&tp, &fp) in curve.tps.iter().zip(&curve.fps) {
        doubled += u128::from(fp - prev_fp) * u128::from(prev_tp + tp);
        (prev_tp, prev_fp) = (tp, fp);
    }
    let cells = curve.positives() as f64 * curve.negatives() as f64;
    Ok(doubled as f64 / (2.0 * cells))
}

/// The precision-recall curve (scikit-learn's `precision_recall_curve`,
/// `drop_intermediate=False`).
///
/// Points run from the lowest distinct score (everything predicted positive)
/// to the highest, then a final point (precision 1, recall 0) without a
/// threshold. Without positives recall is 1 at every threshold, as in
/// scikit-learn. Errors if lengths differ, the input is empty or a score is
/// not finite.
pub fn precision_recall_curve(labels: &[bool], scores: &[f64]) -> Result<PrCurve, MetricError> {
    validate(labels, scores)?;
    let curve = clf_curve(labels, scores);
    let positives = curve.positives();
    let points = curve.tps.iter().zip(&curve.fps).rev();
    let mut pr = PrCurve {
        precision: points
            .clone()
            .map(|(&tp, &fp)| tp as f64 / (tp + fp) as f64)
            .collect(),
        recall: points.map(|(&tp, _)| recall_at(tp, positives)).collect(),
        thresholds: curve.thresholds.iter().rev().copied().collect(),
    };
    pr.precision.push(1.0);
    pr.recall.push(0.0);
    Ok(pr)
}

/// Recall with `tp` true positives of `positives`, 1 when there are none
/// (scikit-learn's convention on the precision-recall curve).
fn recall_at(tp: u64, positives: u64) -> f64 {
    if positives == 0 {
        1.0
    } else {
        tp as f64 / positives as f64
    }
}

/// Average precision (scikit-learn's `average_precision_score`).
///
/// `AP = sum_n (R_n - R_{n-1}) P_n` over the distinct scores from the highest
/// down, with `R_0 = 0`: a step function, not the trapezoid (which is
/// optimistic). Without positives AP is 0, without negatives 1, as in
/// scikit-learn. Errors if lengths differ, the input is empty or a score is
/// not finite.
pub fn average_precision(labels: &[bool], scores: &[f64]) -> Result<f64, MetricError> {
    validate(labels, scores)?;
    let curve = clf_curve(labels, scores);
    let positives = curve.positives();
    if positives == 0 {
        // Every precision is 0, so every recall step contributes nothing.
        return Ok(0.0);
    }
    let mut ap = 0.0;
    let mut prev_tp = 0u64;
    for (&tp, &fp) in curve.tps.iter().zip(&curve.fps) {
        let recall_step = (tp - prev_tp) as f64 / positives as f64;
        ap += recall_step * (tp as f64 / (tp + fp) as f64);
        prev_tp = tp;
    }
    Ok(ap)
}

/// scikit-learn reference values, shared by the tests of both metric modules.
#[cfg(test)]
pub(crate) mod fixtures {
    use serde::Deserialize;

    /// Tolerance for every comparison against scikit-learn.
    pub const TOLERANCE: f64 = 1e-12;

    /// The fixture file: cases with scikit-learn's outputs.
    #[derive(Deserialize)]
    struct File {
        cases: Vec<Case>,
    }

    /// One labeled score vector and scikit-learn's metrics on it.
    #[derive(Deserialize)]
    pub struct Case {
        pub name: String,
        pub labels: Vec<u8>,
        pub scores: Vec<f64>,
        /// `None` where scikit-learn returns NaN (one class).
        pub roc_auc: Option<f64>,
        pub average_precision: f64,
        /// `None` where the curve is undefined (one class).
        pub roc_curve: Option<Roc>,
        pub pr_curve: Pr,
        pub threshold: f64,
        pub confusion: Confusion,
        pub precision: f64,
        pub recall: f64,
        pub specificity: f64,
        pub f1: f64,
        pub accuracy: f64,
    }

    /// `roc_curve(drop_intermediate=False)`; the leading `inf` threshold is `null`.
    #[derive(Deserialize)]
    pub struct Roc {
        pub fpr: Vec<f64>,
        pub tpr: Vec<f64>,
        pub thresholds: Vec<Option<f64>>,
    }

    /// `precision_recall_curve`.
    #[derive(Deserialize)]
    pub struct Pr {
        pub precision: Vec<f64>,
        pub recall: Vec<f64>,
        pub thresholds: Vec<f64>,
    }

    /// `confusion_matrix` at `threshold` (predicted positive iff score >= threshold).
    #[derive(Deserialize)]
    pub struct Confusion {
        pub tp: u64,
        pub fp: u64,
        pub tn: u64,
        #[serde(rename = "fn")]
        pub fn_: u64,
    }

    /// All fixture cases.
    pub fn cases() -> Vec<Case> {
        let text = include_str!("../../tests/fixtures/metrics.json");
        let file: File = serde_json::from_str(text).expect("tests/fixtures/metrics.json parses");
        assert!(file.cases.len() >= 8, "fixture file lost cases");
        file.cases
    }

    /// The case's labels as booleans (1 = positive).
    pub fn labels_of(case: &Case) -> Vec<bool> {
        case.labels.iter().map(|&l| l == 1).collect()
    }

    /// Asserts `|actual - expected| <= TOLERANCE`.
    pub fn assert_close(actual: f64, expected: f64, what: &str) {
        assert!(
            (actual - expected).abs() <= TOLERANCE,
            "{what}: got {actual}, expected {expected}"
        );
    }

    /// Asserts equal lengths and elementwise closeness (equal infinities pass).
    pub fn assert_slice_close(actual: &[f64], expected: &[f64], what: &str) {
        assert_eq!(actual.len(), expected.len(), "{what}: length");
        for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
            if a.is_infinite() || e.is_infinite() {
                assert_eq!(a, e, "{what}[{i}]");
            } else {
                assert_close(a, e, &format!("{what}[{i}]"));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{assert_close, assert_slice_close, cases, labels_of};
    use super::*;

    #[test]
    fn hand_computed_small_case() {
        // Scores 0.9(+) 0.8(-) 0.7(+) 0.1(-): pairs (pos > neg) = 3 of 4.
        let labels = [true, false, true, false];
        let scores = [0.9, 0.8, 0.7, 0.1];
        assert_close(roc_auc(&labels, &scores).unwrap(), 0.75, "auc");
        // AP = 0.5 * 1 + 0.5 * 2/3.
        assert_close(
            average_precision(&labels, &scores).unwrap(),
            0.5 + 1.0 / 3.0,
            "ap",
        );
        let roc = roc_curve(&labels, &scores).unwrap();
        assert_eq!(roc.fpr, vec![0.0, 0.0, 0.5, 0.5, 1.0]);
        assert_eq!(roc.tpr, vec![0.0, 0.5, 0.5, 1.0, 1.0]);
        assert_eq!(roc.thresholds, vec![f64::INFINITY, 0.9, 0.8, 0.7, 0.1]);
        let pr = precision_recall_curve(&labels, &scores).unwrap();
        assert_eq!(pr.recall, vec![1.0, 1.0, 0.5, 0.5, 0.0]);
        assert_eq!(pr.thresholds, vec![0.1, 0.7, 0.8, 0.9]);
    }

    #[test]
    fn tie_between_classes_counts_half() {
        let labels = [true, false];
        assert_close(roc_auc(&labels, &[0.5, 0.5]).unwrap(), 0.5, "tied auc");
        assert_close(
            average_precision(&labels, &[0.5, 0.5]).unwrap(),
            0.5,
            "tied ap",
        );
        // -0.0 and 0.0 are one threshold, as in numpy.
        let roc = roc_curve(&labels, &[0.0, -0.0]).unwrap();
        assert_eq!(roc.thresholds.len(), 2);
    }

    #[test]
    fn errors_name_the_problem() {
        let err = roc_auc(&[true, false], &[0.1]).unwrap_err();
        assert_eq!(
            err,
            MetricError::LengthMismatch {
                labels: 2,
                scores: 1
            }
        );
        assert!(err.to_string().contains("2 labels, 1 scores"));
        let err = average_precision(&[true, false], &[0.1, f64::NAN]).unwrap_err();
        assert!(matches!(err, MetricError::NonFiniteScore { index: 1, .. }));
        assert!(err.to_string().contains("NaN"));
        let err = roc_auc(&[true, true], &[0.1, 0.2]).unwrap_err();
        assert!(err.to_string().contains("only one class"), "{err}");
        assert!(err.to_string().contains("2 positive, 0 negative"), "{err}");
        assert!(roc_curve(&[false], &[0.1]).is_err());
        assert_eq!(roc_auc(&[], &[]).unwrap_err(), MetricError::Empty);
        assert!(precision_recall_curve(&[true], &[f64::INFINITY]).is_err());
    }

    #[test]
    fn one_class_average_precision_follows_sklearn() {
        assert_eq!(average_precision(&[false, false], &[0.2, 0.9]), Ok(0.0));
        assert_eq!(average_precision(&[true, true], &[0.2, 0.9]), Ok(1.0));
        let pr = precision_recall_curve(&[false, false], &[0.2, 0.9]).unwrap();
        assert_eq!(pr.recall, vec![1.0, 1.0, 0.0]);
        assert_eq!(pr.precision, vec![0.0, 0.0, 1.0]);
    }

    #[test]
    fn matches_sklearn_fixtures() {
        for case in cases() {
            let labels = labels_of(&case);
            let name = case.name.as_str();
            match case.roc_auc {
                Some(expected) => {
                    let auc = roc_auc(&labels, &case.scores).unwrap();
                    assert_close(auc, expected, &format!("{name}: roc_auc"));
                }
                None => assert!(roc_auc(&labels, &case.scores).is_err(), "{name}"),
            }
            let ap = average_precision(&labels, &case.scores).unwrap();
            assert_close(ap, case.average_precision, &format!("{name}: AP"));
            match &case.roc_curve {
                Some(expected) => {
                    let roc = roc_curve(&labels, &case.scores).unwrap();
                    assert_slice_close(&roc.fpr, &expected.fpr, &format!("{name}: fpr"));
                    assert_slice_close(&roc.tpr, &expected.tpr, &format!("{name}: tpr"));
                    let thresholds: Vec<f64> = expected
                        .thresholds
                        .iter()
                        .map(|t| t.unwrap_or(f64::INFINITY))
                        .collect();
                    assert_slice_close(
                        &roc.thresholds,
                        &thresholds,
                        &format!("{name}: roc thresholds"),
                    );
                }
                None => assert!(roc_curve(&labels, &case.scores).is_err(), "{name}"),
            }
            let pr = precision_recall_curve(&labels, &case.scores).unwrap();
            let expected = &case.pr_curve;
            assert_slice_close(
                &pr.precision,
                &expected.precision,
                &format!("{name}: precision curve"),
            );
            assert_slice_close(
                &pr.recall,
                &expected.recall,
                &format!("{name}: recall curve"),
            );
            assert_slice_close(
                &pr.thresholds,
                &expected.thresholds,
                &format!("{name}: pr thresholds"),
            );
        }
    }
}
