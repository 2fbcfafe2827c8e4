//! Summary of repeated measurements (seeds, folds): mean, standard deviation,
//! standard error and a 95% Student t confidence interval for the mean.
//!
//! Definitions follow numpy/scipy: `sd` is `np.std(ddof=1)`, `se` is
//! `scipy.stats.sem`, and the interval is
//! `scipy.stats.t.interval(0.95, n - 1, loc=mean, scale=se)`.
//!
//! Degenerate sizes are not errors, because a summary table must still be
//! printable: with n = 1 the mean is the value and `sd`, `se` and the interval
//! are NaN (no spread can be estimated from one run); with n = 0 everything
//! is NaN. Identical values give sd = 0 and the interval (mean, mean).
//! Non-finite values propagate into the result.

use super::distributions::student_t_quantile;

/// Two-sided confidence level of [`Summary`]'s interval.
pub const CONFIDENCE: f64 = 0.95;

/// Summary statistics of one sample.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    /// Number of values.
    pub n: usize,
    /// Arithmetic mean.
    pub mean: f64,
    /// Sample standard deviation (n - 1 in the denominator).
    pub sd: f64,
    /// Standard error of the mean, sd / sqrt(n).
    pub se: f64,
    /// Lower end of the 95% t interval for the mean.
    pub ci95_low: f64,
    /// Upper end of the 95% t interval for the mean.
    pub ci95_high: f64,
}

/// Summarizes `values`; see the module documentation for n < 2.
pub fn describe(values: &[f64]) -> Summary {
    let n = values.len();
    let mean = mean(values);
    if n < 2 {
        return Summary {
            n,
            mean,
            sd: f64::NAN,
            se: f64::NAN,
            ci95_low: f64::NAN,
            ci95_high: f64::NAN,
        };
    }
    let sd = sample_variance(values, mean).sqrt();
    let se = sd / (n as f64).sqrt();
    let df = (n - 1) as f64;
    let low_quantile = student_t_quantile((1.0 - CONFIDENCE) / 2.0, df);
    let high_quantile = student_t_quantile((1.0 + CONFIDENCE) / 2.0, df);
    Summary {
        n,
        mean,
        sd,
        se,
        ci95_low: mean + se * low_quantile,
        ci95_high: mean + se * high_quantile,
    }
}

/// Arithmetic mean (NaN when empty).
pub(crate) fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len() as f64
}

/// Sample variance with n - 1 in the denominator, by the two-pass formula
/// (the one-pass sum of squares cancels badly for values near 0.9 ± 0.01).
pub(crate) fn sample_variance(values: &[f64], mean: f64) -> f64 {
    let squares: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    squares / (values.len() - 1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixtures::{cases, load, num, nums, Deviation};

    #[test]
    fn hand_computed_three_values() {
        // 1, 2, 3: mean 2, sd 1, se 1/sqrt 3, t_{0.975, 2} = 4.302652729749462
        // (scipy.stats.t.ppf(0.975, 2)).
        let s = describe(&[1.0, 2.0, 3.0]);
        assert_eq!(s.n, 3);
        assert!((s.mean - 2.0).abs() < 1e-15 && (s.sd - 1.0).abs() < 1e-15);
        let half = 4.302_652_729_749_462 / 3f64.sqrt();
        assert!((s.ci95_low - (2.0 - half)).abs() < 1e-13);
        assert!((s.ci95_high - (2.0 + half)).abs() < 1e-13);
    }

    #[test]
    fn degenerate_sizes() {
        let one = describe(&[0.8]);
        assert_eq!((one.n, one.mean), (1, 0.8));
        assert!(one.sd.is_nan() && one.se.is_nan());
        assert!(one.ci95_low.is_nan() && one.ci95_high.is_nan());
        let none = describe(&[]);
        assert_eq!(none.n, 0);
        assert!(none.mean.is_nan() && none.sd.is_nan());
        let constant = describe(&[0.75; 4]);
        assert_eq!(
            (constant.sd, constant.ci95_low, constant.ci95_high),
            (0.0, 0.75, 0.75)
        );
    }

    #[test]
    fn matches_scipy() {
        let fixture = load(include_str!("../../tests/fixtures/stats/describe.json"));
        let mut dev = Deviation::new(1e-10);
        for case in cases(&fixture) {
            let name = case["name"].as_str().expect("name");
            let s = describe(&nums(&case["values"]));
            assert_eq!(s.n as u64, case["n"].as_u64().expect("n"), "{name}");
            for (field, actual) in [
                ("mean", s.mean),
                ("sd", s.sd),
                ("se", s.se),
                ("ci95_low", s.ci95_low),
                ("ci95_high", s.ci95_high),
            ] {
                dev.check(actual, num(&case[field]), &format!("{name}.{field}"));
            }
        }
        eprintln!("describe: {dev}");
    }
}
