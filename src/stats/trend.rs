//! Linear trend of a response against a numeric setting: the least-squares
//! line, and the two-sided t-test of a zero slope, as
//! `scipy.stats.linregress`.
//!
//! With `n` points, `s_xx`, `s_xy` and `s_yy` the mean squared deviations and
//! cross-deviation from the means, the slope is `s_xy / s_xx`, the
//! correlation `r = s_xy / sqrt(s_xx s_yy)`, and
//! `t = r sqrt(df / ((1 - r + 1e-20)(1 + r + 1e-20)))` with `df = n - 2`
//! (scipy's guard against `r = ±1`). The slope's standard error is
//! `sqrt((1 - r²) s_yy / s_xx / df)`.
//!
//! A constant response follows scipy 1.17 too: its correlation is
//! undefined (0/0), so the statistic, the p-value and the slope's standard
//! error are NaN, while the slope is 0 (the fixture `constant_response`
//! pins this).

use super::describe::mean;
use super::distributions::{student_t_quantile, student_t_sf};
use super::{require_finite, StatsError};

/// scipy's guard in the t statistic, so that `r = ±1` gives a huge finite `t`.
const TINY: f64 = 1.0e-20;

/// A fitted line and the test of its slope.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// Least-squares slope: change of the response per unit of the setting.
    pub slope: f64,
    /// Least-squares intercept (response at setting 0).
    pub intercept: f64,
    /// Pearson correlation of setting and response.
    pub r: f64,
    /// Standard error of the slope.
    pub slope_stderr: f64,
    /// The t statistic of the slope (the sign of the slope).
    pub statistic: f64,
    /// Two-sided p-value of a zero slope.
    pub p_value: f64,
    /// Degrees of freedom, `n - 2`.
    pub df: f64,
}

impl Trend {
    /// The slope's two-sided 95% confidence interval, `slope ± t(0.975, df)
    /// stderr` (NaN where the standard error is).
    pub fn slope_ci95(&self) -> (f64, f64) {
        let half = student_t_quantile(0.975, self.df) * self.slope_stderr;
        (self.slope - half, self.slope + half)
    }
}

/// Fits `y` against `x` by least squares and tests the slope (two-sided).
/// Needs at least three points, finite values, and two distinct `x`.
pub fn linear_trend(x: &[f64], y: &[f64]) -> Result<Trend, StatsError> {
    if x.len() != y.len() {
        return Err(StatsError::LengthMismatch {
            a: x.len(),
            b: y.len(),
        });
    }
    let n = x.len();
    if n < 3 {
        return Err(StatsError::TooFew {
            what: "linear trend",
            needed: 3,
            got: n,
            unit: "points",
        });
    }
    require_finite("settings", x)?;
    require_finite("responses", y)?;
    if x.iter().all(|&v| v == x[0]) {
        return Err(StatsError::NoSpread {
            what: "linear trend",
        });
    }
    let (x_mean, y_mean) = (mean(x), mean(y));
    // Mean squared deviations and cross-deviation from the means.
    let (mut s_xx, mut s_xy, mut s_yy) = (0.0, 0.0, 0.0);
    for (&a, &b) in x.iter().zip(y) {
        let (dx, dy) = (a - x_mean, b - y_mean);
        s_xx += dx * dx;
        s_xy += dx * dy;
        s_yy += dy * dy;
    }
    let (s_xx, s_xy, s_yy) = (s_xx / n as f64, s_xy / n as f64, s_yy / n as f64);
    // `s_xx > 0` here; a constant response (`s_yy = 0`, hence `s_xy = 0`)
    // has no correlation, as scipy's 0/0 gives.
    let r = if s_yy == 0.0 {
        f64::NAN
    } else {
        (s_xy / (s_xx * s_yy).sqrt()).clamp(-1.0, 1.0)
    };
    let slope = s_xy / s_xx;
    let df = (n - 2) as f64;
    let statistic = r * (df / ((1.0 - r + TINY) * (1.0 + r + TINY))).sqrt();
    Ok(Trend {
        slope,
        intercept: y_mean - slope * x_mean,
        r,
        slope_stderr: ((1.0 - r * r) * s_yy / s_xx / df).sqrt(),
        statistic,
        p_value: 2.0 * student_t_sf(statistic.abs(), df),
        df,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixtures::{cases, load, num, nums, Deviation};

    #[test]
    fn hand_computed() {
        // x = 0, 1, 2, 3; y = 1, 3, 2, 4: s_xx = 5/4, s_xy = 1, s_yy = 5/4, so
        // slope = r = 0.8, intercept 2.5 - 0.8 * 1.5 = 1.3,
        // t = 0.8 sqrt(2 / 0.36) = (4/3) sqrt 2, stderr = sqrt(0.36 / 2).
        let t = linear_trend(&[0.0, 1.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 4.0]).expect("valid");
        assert!((t.slope - 0.8).abs() < 1e-15);
        assert!((t.intercept - 1.3).abs() < 1e-15);
        assert!((t.r - 0.8).abs() < 1e-15);
        assert_eq!(t.df, 2.0);
        assert!((t.statistic - 4.0 / 3.0 * 2f64.sqrt()).abs() < 1e-12);
        assert!((t.slope_stderr - 0.18f64.sqrt()).abs() < 1e-15);
        // df = 2: P(|T| > t) = 1 - t / sqrt(2 + t^2) = 1 - 0.8.
        assert!((t.p_value - 0.2).abs() < 1e-12);
        // The interval is symmetric about the slope and holds 0 (p > 0.05).
        let (low, high) = t.slope_ci95();
        assert!(low < 0.0 && (low + high - 1.6).abs() < 1e-12);
    }

    #[test]
    fn a_falling_response_has_a_negative_slope_and_statistic() {
        let x = [0.05, 0.05, 0.15, 0.15, 0.3, 0.3, 0.5, 0.5];
        let y = [0.09, 0.07, 0.1, 0.12, 0.02, 0.04, 0.0, 0.01];
        let t = linear_trend(&x, &y).expect("valid");
        assert!(t.slope < 0.0 && t.statistic < 0.0 && t.p_value < 0.05);
        // Shifting every response leaves the slope and the test unchanged.
        let shifted: Vec<f64> = y.iter().map(|v| v + 1.0).collect();
        let s = linear_trend(&x, &shifted).expect("valid");
        assert!((s.slope - t.slope).abs() < 1e-12 && (s.p_value - t.p_value).abs() < 1e-9);
    }

    #[test]
    fn degenerate_input_follows_scipy() {
        // Points on a line: r = 1, a huge t, p = 0 to rounding.
        let line = linear_trend(&[1.0, 2.0, 3.0], &[2.0, 4.0, 6.0]).expect("valid");
        assert_eq!(line.r, 1.0);
        assert!(line.p_value < 1e-9 && line.slope_stderr == 0.0);
        // A constant response: slope 0, undefined correlation and test.
        let flat = linear_trend(&[1.0, 2.0, 3.0], &[0.5, 0.5, 0.5]).expect("valid");
        assert_eq!(flat.slope, 0.0);
        assert!(flat.r.is_nan() && flat.p_value.is_nan() && flat.slope_stderr.is_nan());
    }

    #[test]
    fn invalid_input() {
        assert_eq!(
            linear_trend(&[1.0, 2.0], &[1.0, 2.0, 3.0]),
            Err(StatsError::LengthMismatch { a: 2, b: 3 })
        );
        assert!(matches!(
            linear_trend(&[1.0, 2.0], &[1.0, 2.0]),
            Err(StatsError::TooFew { got: 2, .. })
        ));
        assert_eq!(
            linear_trend(&[0.3, 0.3, 0.3], &[1.0, 2.0, 3.0]),
            Err(StatsError::NoSpread {
                what: "linear trend"
            })
        );
        assert!(matches!(
            linear_trend(&[1.0, 2.0, 3.0], &[1.0, f64::INFINITY, 3.0]),
            Err(StatsError::NonFinite { index: 1, .. })
        ));
    }

    #[test]
    fn matches_scipy() {
        let fixture = load(include_str!("../../tests/fixtures/stats/trend.json"));
        let mut dev = Deviation::new(1e-10);
        for case in cases(&fixture) {
            let name = case["name"].as_str().expect("name");
            let t = linear_trend(&nums(&case["x"]), &nums(&case["y"])).expect(name);
            let check = |dev: &mut Deviation, actual: f64, key: &str| {
                dev.check_scaled(actual, num(&case[key]), &format!("{name}.{key}"))
            };
            check(&mut dev, t.slope, "slope");
            check(&mut dev, t.intercept, "intercept");
            check(&mut dev, t.r, "r");
            check(&mut dev, t.slope_stderr, "stderr");
            check(&mut dev, t.p_value, "p_value");
            let (low, high) = t.slope_ci95();
            check(&mut dev, low, "slope_ci95_low");
            check(&mut dev, high, "slope_ci95_high");
        }
        eprintln!("linear trend: {dev}");
    }
}
