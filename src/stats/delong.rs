//! DeLong's test for the difference of two correlated AUROCs measured on the
//! same samples, with the fast midrank algorithm of Sun & Xu (2014).
//!
//! For each score vector the AUROC and its structural components come from
//! three midrankings (all samples, positives only, negatives only):
//! V10 of a positive is the fraction of negatives it outranks (ties count
//! half), V01 of a negative the fraction of positives that outrank it. The
//! covariance of the two AUROCs is S10/m + S01/n, where S10 and S01 are the
//! 2x2 sample covariance matrices (n - 1 denominator) of the components over
//! the m positives and n negatives. The difference is tested with
//! z = (AUC_a - AUC_b) / sqrt(Var(AUC_a) + Var(AUC_b) - 2 Cov), two-sided.
//!
//! `tests/fixtures/stats/delong.json` holds the numpy reference (the
//! `compare_auc_delong_xu` formulation) with the AUROCs cross-checked against
//! scikit-learn.
//!
//! Zero variance, where the reference divides 0 by 0: it arises when the two
//! score vectors rank every positive/negative pair alike (for instance
//! identical scores, or both perfect). Then the AUROCs are equal and this
//! module reports z = 0 and p = 1 (no evidence of a difference) instead of
//! NaN. A zero variance with different AUROCs cannot occur in exact
//! arithmetic; if rounding produced it, z is ±inf and p = 0.

use super::distributions::normal_sf;
use super::ranks::midranks;
use super::{require_finite, StatsError};

/// Outcome of DeLong's test of AUROC(a) = AUROC(b).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DelongResult {
    /// AUROC of `scores_a`.
    pub auc_a: f64,
    /// AUROC of `scores_b`.
    pub auc_b: f64,
    /// auc_a - auc_b.
    pub difference: f64,
    /// difference / sqrt(variance).
    pub z: f64,
    /// Two-sided p-value from the standard normal.
    pub p_value: f64,
    /// Estimated variance of the difference.
    pub variance: f64,
}

/// DeLong's test on `labels` (true = positive) and two score vectors for the
/// same samples. Needs at least two positives and two negatives (the
/// component covariances need two observations each) and finite scores.
pub fn delong(
    labels: &[bool],
    scores_a: &[f64],
    scores_b: &[f64],
) -> Result<DelongResult, StatsError> {
    validate(labels, scores_a, scores_b)?;
    let a = Components::new(labels, scores_a);
    let b = Components::new(labels, scores_b);
    let (m, n) = (a.v10.len() as f64, a.v01.len() as f64);
    let var_a = variance(&a.v10) / m + variance(&a.v01) / n;
    let var_b = variance(&b.v10) / m + variance(&b.v01) / n;
    let cov = covariance(&a.v10, &b.v10) / m + covariance(&a.v01, &b.v01) / n;
    // A variance of a difference is >= 0; clamp rounding below zero.
    let variance = (var_a + var_b - 2.0 * cov).max(0.0);
    let difference = a.auc - b.auc;
    let z = if variance == 0.0 && difference == 0.0 {
        0.0
    } else {
        difference / variance.sqrt()
    };
    Ok(DelongResult {
        auc_a: a.auc,
        auc_b: b.auc,
        difference,
        z,
        p_value: 2.0 * normal_sf(z.abs()),
        variance,
    })
}

/// Lengths, finiteness and class counts.
fn validate(labels: &[bool], scores_a: &[f64], scores_b: &[f64]) -> Result<(), StatsError> {
    for scores in [scores_a, scores_b] {
        if scores.len() != labels.len() {
            return Err(StatsError::LengthMismatch {
                a: labels.len(),
                b: scores.len(),
            });
        }
    }
    require_finite("scores_a", scores_a)?;
    require_finite("scores_b", scores_b)?;
    let positives = labels.iter().filter(|&&l| l).count();
    for (count, unit) in [
        (positives, "positives"),
        (labels.len() - positives, "negatives"),
    ] {
        if count < 2 {
            return Err(StatsError::TooFew {
                what: "DeLong's test",
                needed: 2,
                got: count,
                unit,
            });
        }
    }
    Ok(())
}

/// AUROC and structural components of one score vector.
struct Components {
    auc: f64,
    /// One per positive: fraction of negatives scored lower (ties half).
    v10: Vec<f64>,
    /// One per negative: fraction of positives scored higher (ties half).
    v01: Vec<f64>,
}

impl Components {
    fn new(labels: &[bool], scores: &[f64]) -> Self {
        let pick = |class: bool| -> Vec<f64> {
            scores
                .iter()
                .zip(labels)
                .filter(|(_, &l)| l == class)
                .map(|(&s, _)| s)
                .collect()
        };
        let (positives, negatives) = (pick(true), pick(false));
        let (m, n) = (positives.len() as f64, negatives.len() as f64);
        let all_ranks = midranks(scores).ranks;
        let pick_ranks = |class: bool| -> Vec<f64> {
            all_ranks
                .iter()
                .zip(labels)
                .filter(|(_, &l)| l == class)
                .map(|(&r, _)| r)
                .collect()
        };
        let (tz_pos, tz_neg) = (pick_ranks(true), pick_ranks(false));
        let tx = midranks(&positives).ranks;
        let ty = midranks(&negatives).ranks;
        // A positive's rank among all minus its rank among positives counts
        // the negatives below it (ties half); likewise for negatives.
        let v10: Vec<f64> = tz_pos.iter().zip(&tx).map(|(z, x)| (z - x) / n).collect();
        let v01: Vec<f64> = tz_neg
            .iter()
            .zip(&ty)
            .map(|(z, y)| 1.0 - (z - y) / m)
            .collect();
        let auc = tz_pos.iter().sum::<f64>() / m / n - (m + 1.0) / 2.0 / n;
        Self { auc, v10, v01 }
    }
}

/// Sample variance (n - 1 denominator).
fn variance(x: &[f64]) -> f64 {
    covariance(x, x)
}

/// Sample covariance (n - 1 denominator), as `np.cov`.
fn covariance(x: &[f64], y: &[f64]) -> f64 {
    let len = x.len() as f64;
    let (mean_x, mean_y) = (x.iter().sum::<f64>() / len, y.iter().sum::<f64>() / len);
    let products: f64 = x
        .iter()
        .zip(y)
        .map(|(a, b)| (a - mean_x) * (b - mean_y))
        .sum();
    products / (len - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ranking::roc_auc;
    use crate::stats::fixtures::{cases, load, num, nums, Deviation};

    #[test]
    fn hand_computed_small_case() {
        // a: positives 0.9, 0.4, negatives 0.5, 0.1: 3 of 4 pairs ordered
        // -> AUC 3/4. b separates perfectly (AUC 1).
        let labels = [true, true, false, false];
        let a = [0.9, 0.4, 0.5, 0.1];
        let b = [0.9, 0.8, 0.5, 0.1];
        let r = delong(&labels, &a, &b).expect("valid");
        assert_eq!((r.auc_a, r.auc_b), (0.75, 1.0));
        // a: V10 = (1, 0.5) var 1/8, V01 = (1 - 0.5, 1 - 0) = (0.5, 1) var 1/8;
        // Var a = 1/8/2 + 1/8/2 = 1/8. b: V10 = (1, 1), V01 = (1, 1): var 0, cov 0.
        assert!((r.variance - 0.125).abs() < 1e-15);
        assert!((r.z - -0.25 / 0.125f64.sqrt()).abs() < 1e-15);
    }

    #[test]
    fn identical_scores_give_p_one() {
        let labels = [true, false, true, false, false];
        let s = [0.3, 0.2, 0.9, 0.4, 0.1];
        let r = delong(&labels, &s, &s).expect("valid");
        assert_eq!(
            (r.difference, r.variance, r.z, r.p_value),
            (0.0, 0.0, 0.0, 1.0)
        );
    }

    #[test]
    fn invalid_input() {
        let labels = [true, false, false];
        assert!(matches!(
            delong(&labels, &[0.1, 0.2, 0.3], &[0.1, 0.2, 0.3]),
            Err(StatsError::TooFew {
                unit: "positives",
                got: 1,
                ..
            })
        ));
        assert!(matches!(
            delong(&labels, &[0.1, 0.2], &[0.1, 0.2, 0.3]),
            Err(StatsError::LengthMismatch { .. })
        ));
        assert!(matches!(
            delong(
                &[true, true, false, false],
                &[0.1, 0.2, 0.3, 0.4],
                &[0.1, f64::NAN, 0.3, 0.4]
            ),
            Err(StatsError::NonFinite { index: 1, .. })
        ));
    }

    #[test]
    fn matches_reference_and_sklearn() {
        let fixture = load(include_str!("../../tests/fixtures/stats/delong.json"));
        let mut dev = Deviation::new(1e-10);
        let mut auc_dev = Deviation::new(1e-12);
        for case in cases(&fixture) {
            let name = case["name"].as_str().expect("name");
            let labels: Vec<bool> = case["labels"]
                .as_array()
                .expect("labels")
                .iter()
                .map(|l| l.as_u64() == Some(1))
                .collect();
            let (a, b) = (nums(&case["scores_a"]), nums(&case["scores_b"]));
            let r = delong(&labels, &a, &b).expect(name);
            for (field, actual) in [
                ("auc_a", r.auc_a),
                ("auc_b", r.auc_b),
                ("difference", r.difference),
                ("variance", r.variance),
                ("z", r.z),
                ("p_value", r.p_value),
            ] {
                dev.check(actual, num(&case[field]), &format!("{name}.{field}"));
            }
            auc_dev.check(
                r.auc_a,
                num(&case["sklearn_auc_a"]),
                &format!("{name} sklearn a"),
            );
            auc_dev.check(
                r.auc_b,
                num(&case["sklearn_auc_b"]),
                &format!("{name} sklearn b"),
            );
            let metric = roc_auc(&labels, &a).expect("both classes");
            auc_dev.check(r.auc_a, metric, &format!("{name} metrics::roc_auc"));
        }
        eprintln!("delong: {dev}; AUROC vs sklearn and metrics::roc_auc: {auc_dev}");
    }
}
