//! Seeded, stratified bootstrap confidence interval of the AUROC (percentile
//! method).
//!
//! Each resample draws, with replacement, as many positives from the
//! positives and as many negatives from the negatives as the data hold, so
//! every resample keeps the class counts and always has both classes (no
//! resample is ever skipped, and the number of AUROCs equals `resamples`).
//! The interval is the 2.5th and 97.5th percentile of the resampled AUROCs,
//! with numpy's default (`linear`) percentile interpolation.
//!
//! All draws come from one stream, `crate::seed::stream(seed, "bootstrap", &[])`,
//! so the interval is a pure function of (labels, scores, resamples, seed).

use super::StatsError;
use crate::metrics::ranking::roc_auc;
use rand::Rng;

/// Lower percentile of the 95% interval.
const LOW_PERCENT: f64 = 2.5;

/// Upper percentile of the 95% interval.
const HIGH_PERCENT: f64 = 97.5;

/// Percentile bootstrap 95% interval (low, high) of the AUROC of `scores`
/// against `labels` (true = positive), from `resamples` (>= 2) stratified
/// resamples drawn from `seed`. Errors as [`roc_auc`] does (length mismatch,
/// no samples, non-finite score, one class).
pub fn bootstrap_auroc_ci(
    labels: &[bool],
    scores: &[f64],
    resamples: usize,
    seed: u64,
) -> Result<(f64, f64), StatsError> {
    // Validates the input and rejects single-class data up front.
    roc_auc(labels, scores)?;
    if resamples < 2 {
        return Err(StatsError::TooFew {
            what: "bootstrap interval",
            needed: 2,
            got: resamples,
            unit: "resamples",
        });
    }
    let positives = class_scores(labels, scores, true);
    let negatives = class_scores(labels, scores, false);
    let resampled_labels: Vec<bool> = positives
        .iter()
        .map(|_| true)
        .chain(negatives.iter().map(|_| false))
        .collect();
    let mut rng = crate::seed::stream(seed, "bootstrap", &[]);
    let mut resampled = Vec::with_capacity(labels.len());
    let mut aucs = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        resampled.clear();
        for class in [&positives, &negatives] {
            resampled.extend((0..class.len()).map(|_| class[rng.random_range(0..class.len())]));
        }
        aucs.push(roc_auc(&resampled_labels, &resampled)?);
    }
    Ok((
        percentile(&aucs, LOW_PERCENT),
        percentile(&aucs, HIGH_PERCENT),
    ))
}

/// The scores of one class, in input order.
fn class_scores(labels: &[bool], scores: &[f64], class: bool) -> Vec<f64> {
    labels
        .iter()
        .zip(scores)
        .filter(|(&l, _)| l == class)
        .map(|(_, &s)| s)
        .collect()
}

/// The `percent`-th percentile (0..=100) of `values` with linear interpolation
/// between order statistics, as `numpy.percentile`'s default. NaN for no
/// values or a percent outside [0, 100]; values must not contain NaN.
pub fn percentile(values: &[f64], percent: f64) -> f64 {
    if values.is_empty() || !(0.0..=100.0).contains(&percent) {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let position = (sorted.len() - 1) as f64 * percent / 100.0;
    let below = position.floor() as usize;
    let above = (below + 1).min(sorted.len() - 1);
    let fraction = position - below as f64;
    sorted[below] + fraction * (sorted[above] - sorted[below])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ranking::MetricError;

    /// Labels alternating in a fixed pattern and scores shifted by class plus
    /// seeded uniform noise.
    fn synthetic(n: usize, seed: u64) -> (Vec<bool>, Vec<f64>) {
        let mut rng = crate::seed::stream(seed, "bootstrap-test-data", &[n as u64]);
        let labels: Vec<bool> = (0..n).map(|i| i % 3 == 0).collect();
        let scores = labels
            .iter()
            .map(|&l| if l { 0.3 } else { 0.0 } + rng.random::<f64>())
            .collect();
        (labels, scores)
    }

    #[test]
    fn percentile_matches_numpy() {
        // np.percentile([3, 1, 4, 1, 5], q) for q = 0, 2.5, 50, 97.5, 100:
        // 1.0, 1.0, 3.0, 4.9, 5.0; and [1, 2] at 2.5 -> 1.025.
        let v = [3.0, 1.0, 4.0, 1.0, 5.0];
        let expected = [
            (0.0, 1.0),
            (2.5, 1.0),
            (50.0, 3.0),
            (97.5, 4.9),
            (100.0, 5.0),
        ];
        for (q, e) in expected {
            assert!((percentile(&v, q) - e).abs() < 1e-12, "q={q}");
        }
        assert!((percentile(&[1.0, 2.0], 2.5) - 1.025).abs() < 1e-15);
        assert!(percentile(&[], 50.0).is_nan());
        assert!(percentile(&v, 101.0).is_nan());
    }

    #[test]
    fn deterministic_per_seed() {
        let (labels, scores) = synthetic(60, 1);
        let first = bootstrap_auroc_ci(&labels, &scores, 200, 7).expect("valid");
        let again = bootstrap_auroc_ci(&labels, &scores, 200, 7).expect("valid");
        let other = bootstrap_auroc_ci(&labels, &scores, 200, 8).expect("valid");
        assert_eq!(first, again);
        assert_ne!(first, other);
    }

    #[test]
    fn contains_point_estimate_and_narrows_with_n() {
        let width = |n: usize| {
            let (labels, scores) = synthetic(n, 3);
            let point = roc_auc(&labels, &scores).expect("both classes");
            let (low, high) = bootstrap_auroc_ci(&labels, &scores, 500, 11).expect("valid");
            assert!(
                low <= point && point <= high,
                "n={n}: {low} <= {point} <= {high}"
            );
            assert!((0.0..=1.0).contains(&low) && (0.0..=1.0).contains(&high));
            high - low
        };
        let (small, large) = (width(45), width(900));
        // The width shrinks like 1/sqrt(n): 20 times the data, about 4.5 times narrower.
        assert!(
            large < small / 3.0,
            "width {small} at n=45, {large} at n=900"
        );
    }

    #[test]
    fn perfectly_separated_data_give_a_degenerate_interval() {
        // Every stratified resample of separable classes stays separable.
        let labels = [true, true, true, false, false, false];
        let scores = [0.9, 0.8, 0.7, 0.3, 0.2, 0.1];
        assert_eq!(bootstrap_auroc_ci(&labels, &scores, 50, 0), Ok((1.0, 1.0)));
    }

    #[test]
    fn invalid_input() {
        let one_class = bootstrap_auroc_ci(&[true, true], &[0.1, 0.2], 100, 0);
        assert!(matches!(
            one_class,
            Err(StatsError::Metric(MetricError::OneClass { .. }))
        ));
        let too_few = bootstrap_auroc_ci(&[true, false], &[0.6, 0.2], 1, 0);
        assert!(matches!(too_few, Err(StatsError::TooFew { got: 1, .. })));
    }
}
