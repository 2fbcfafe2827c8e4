//! Paired t-test between two configurations measured on the same seeds or
//! folds, two-sided, as `scipy.stats.ttest_rel`.
//!
//! The test works on the differences d = a - b: t = mean(d) / (sd(d) / sqrt n)
//! with n - 1 degrees of freedom.
//!
//! Zero variance of the differences follows scipy rather than inventing a
//! value: if every difference is exactly 0 the statistic and p-value are NaN
//! (0/0: the test is undefined, not "no difference"); if every difference is
//! the same non-zero number the statistic is ±inf and the p-value 0.
//! Differences that are only *nearly* equal (0.85 - 0.83 vs 0.87 - 0.85 differ
//! in the last bit) give a huge but finite t, as in scipy.

use super::describe::{mean, sample_variance};
use super::distributions::student_t_sf;
use super::{require_finite, StatsError};

/// Result of a two-sided paired test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TestResult {
    /// The t statistic (positive when `a` is larger on average).
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Mean of a - b.
    pub mean_difference: f64,
    /// Degrees of freedom, n - 1.
    pub df: f64,
}

/// Paired two-sided t-test of `a` against `b` (same length, at least two
/// pairs, finite values). See the module documentation for zero variance.
pub fn paired_t_test(a: &[f64], b: &[f64]) -> Result<TestResult, StatsError> {
    let differences = paired_differences(a, b)?;
    let n = differences.len();
    if n < 2 {
        return Err(StatsError::TooFew {
            what: "paired t-test",
            needed: 2,
            got: n,
            unit: "pairs",
        });
    }
    let mean_difference = mean(&differences);
    let se = (sample_variance(&differences, mean_difference) / n as f64).sqrt();
    // 0/0 = NaN and c/0 = ±inf are exactly scipy's zero-variance results.
    let statistic = mean_difference / se;
    let df = (n - 1) as f64;
    Ok(TestResult {
        statistic,
        p_value: 2.0 * student_t_sf(statistic.abs(), df),
        mean_difference,
        df,
    })
}

/// a - b elementwise, after checking lengths and finiteness.
pub(crate) fn paired_differences(a: &[f64], b: &[f64]) -> Result<Vec<f64>, StatsError> {
    if a.len() != b.len() {
        return Err(StatsError::LengthMismatch {
            a: a.len(),
            b: b.len(),
        });
    }
    require_finite("first sample", a)?;
    require_finite("second sample", b)?;
    Ok(a.iter().zip(b).map(|(x, y)| x - y).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixtures::{cases, load, num, nums, Deviation};

    #[test]
    fn hand_computed() {
        // d = 0, 1, 1: mean 2/3, sd 1/sqrt 3, t = (2/3)/(1/3) = 2, df 2;
        // p = 2 P(T2 > 2) = 1 - 2/sqrt 6 (closed form for df = 2).
        let r = paired_t_test(&[1.0, 3.0, 4.0], &[1.0, 2.0, 3.0]).expect("valid");
        assert!((r.statistic - 2.0).abs() < 1e-14);
        assert_eq!(r.df, 2.0);
        assert!((r.p_value - (1.0 - 2.0 / 6f64.sqrt())).abs() < 1e-14);
        // Swapping the samples flips the sign only.
        let s = paired_t_test(&[1.0, 2.0, 3.0], &[1.0, 3.0, 4.0]).expect("valid");
        assert_eq!((s.statistic, s.p_value), (-r.statistic, r.p_value));
    }

    #[test]
    fn zero_variance_follows_scipy() {
        let same = paired_t_test(&[0.5, 0.75], &[0.5, 0.75]).expect("valid");
        assert!(same.statistic.is_nan() && same.p_value.is_nan());
        let shifted = paired_t_test(&[0.75, 1.0], &[0.5, 0.75]).expect("valid");
        assert_eq!((shifted.statistic, shifted.p_value), (f64::INFINITY, 0.0));
    }

    #[test]
    fn invalid_input() {
        assert_eq!(
            paired_t_test(&[1.0], &[1.0, 2.0]),
            Err(StatsError::LengthMismatch { a: 1, b: 2 })
        );
        assert!(matches!(
            paired_t_test(&[1.0], &[2.0]),
            Err(StatsError::TooFew { got: 1, .. })
        ));
        assert!(matches!(
            paired_t_test(&[1.0, f64::NAN], &[2.0, 3.0]),
            Err(StatsError::NonFinite { index: 1, .. })
        ));
    }

    #[test]
    fn matches_scipy() {
        let fixture = load(include_str!("../../tests/fixtures/stats/paired_t.json"));
        let mut dev = Deviation::new(1e-10);
        for case in cases(&fixture) {
            let name = case["name"].as_str().expect("name");
            let r = paired_t_test(&nums(&case["a"]), &nums(&case["b"])).expect(name);
            // Statistics reach ~1e16 for nearly constant differences: scale them.
            dev.check_scaled(
                r.statistic,
                num(&case["statistic"]),
                &format!("{name}.statistic"),
            );
            dev.check(r.p_value, num(&case["p_value"]), &format!("{name}.p_value"));
            dev.check(
                r.mean_difference,
                num(&case["mean_difference"]),
                &format!("{name}.mean_difference"),
            );
            dev.check(r.df, num(&case["df"]), &format!("{name}.df"));
        }
        eprintln!("paired t: {dev}");
    }
}
