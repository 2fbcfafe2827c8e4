//! The Student t and standard normal distributions: CDF, survival function
//! and quantile.
//!
//! The t tail is P(T > t) = I_x(df/2, 1/2) / 2 with x = df / (df + t²), through
//! the regularized incomplete beta function of [`super::special`]; x and
//! 1 - x are formed without cancellation so that tail probabilities keep their
//! relative precision. Quantiles invert the tail by safeguarded Newton steps
//! on ln P(T > e^u) as a function of u = ln t: the log tail is close to linear
//! in u for heavy tails and concave for light ones, so the steps converge in a
//! handful of iterations from any start. `tests/fixtures/stats/distributions.json`
//! compares everything with scipy.stats (df 1..100 and up to 1e6): within a
//! few 1e-15 for df <= 100; for very large df the continued fraction loses
//! digits (about 1e-11 relative at df = 1e6, see [`super::special`]).

use super::special::{erfc, inc_beta_with_logs, ln_beta};
use std::f64::consts::{FRAC_1_SQRT_2, PI};

/// Survival function P(T > t) of Student's t with `df` > 0 degrees of freedom
/// (`df = inf` is the standard normal). NaN for NaN input or df <= 0.
pub fn student_t_sf(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if df.is_infinite() {
        return normal_sf(t);
    }
    if t == 0.0 {
        return 0.5;
    }
    let (upper, lower) = t_tails(t.abs(), df);
    if t > 0.0 {
        upper
    } else {
        lower
    }
}

/// Cumulative distribution P(T <= t) of Student's t (see [`student_t_sf`]).
pub fn student_t_cdf(t: f64, df: f64) -> f64 {
    student_t_sf(-t, df)
}

/// (P(T > t), P(T <= t)) for t > 0, each with full relative precision.
fn t_tails(t: f64, df: f64) -> (f64, f64) {
    if t.is_infinite() {
        return (0.0, 1.0);
    }
    // x = df/(df + t²), y = t²/(df + t²) and their logs, via whichever
    // ratio cannot overflow.
    let (x, y, ln_x, ln_y) = if t * t >= df {
        let r = df / t / t;
        // r underflows for |t| > 1e154 while x^(df/2) may not: take ln r from logs.
        let ln_r = if r > 1e-300 {
            r.ln()
        } else {
            df.ln() - 2.0 * t.ln()
        };
        let ln_1p_r = r.ln_1p();
        (r / (1.0 + r), 1.0 / (1.0 + r), ln_r - ln_1p_r, -ln_1p_r)
    } else {
        let s = t / df * t;
        let ln_1p_s = s.ln_1p();
        (1.0 / (1.0 + s), s / (1.0 + s), -ln_1p_s, s.ln() - ln_1p_s)
    };
    let (ix, ix_complement) = inc_beta_with_logs(df / 2.0, 0.5, x, y, ln_x, ln_y);
    let upper = 0.5 * ix;
    (upper, 0.5 + 0.5 * ix_complement)
}

/// Density of Student's t, used only for Newton steps.
fn student_t_pdf(t: f64, df: f64) -> f64 {
    let ln_kernel = if t * t >= df {
        // ln(1 + t²/df) without forming t² (overflow for huge t).
        2.0 * t.abs().ln() - df.ln() + (df / t / t).ln_1p()
    } else {
        (t / df * t).ln_1p()
    };
    (-0.5 * df.ln() - ln_beta(df / 2.0, 0.5) - 0.5 * (df + 1.0) * ln_kernel).exp()
}

/// Quantile (inverse CDF) of Student's t: the t with P(T <= t) = p.
/// Returns -inf for p = 0, +inf for p = 1 and NaN outside [0, 1] or for
/// df <= 0; `df = inf` gives the normal quantile.
pub fn student_t_quantile(p: f64, df: f64) -> f64 {
    if df.is_nan() || df <= 0.0 {
        return f64::NAN;
    }
    if df.is_infinite() {
        return normal_quantile(p);
    }
    quantile_by_tail(p, |t| student_t_sf(t, df), |t| student_t_pdf(t, df))
}

/// Survival function of the standard normal, 0.5 erfc(z / sqrt 2) as scipy's
/// `norm.sf`.
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z * FRAC_1_SQRT_2)
}

/// Cumulative distribution of the standard normal.
pub fn normal_cdf(z: f64) -> f64 {
    normal_sf(-z)
}

/// Quantile of the standard normal (inverse of [`normal_cdf`]).
pub fn normal_quantile(p: f64) -> f64 {
    quantile_by_tail(p, normal_sf, |z| (-0.5 * z * z).exp() / (2.0 * PI).sqrt())
}

/// Most Newton/bisection steps of the quantile search.
const MAX_STEPS: usize = 300;

/// Largest Newton step in u = ln t, so a poor first step cannot jump to where
/// the tail underflows.
const MAX_LOG_STEP: f64 = 20.0;

/// Inverts a symmetric distribution given its upper tail and density.
fn quantile_by_tail(p: f64, tail: impl Fn(f64) -> f64, pdf: impl Fn(f64) -> f64) -> f64 {
    if p.is_nan() || !(0.0..=1.0).contains(&p) {
        return f64::NAN;
    }
    if p == 0.0 {
        return f64::NEG_INFINITY;
    }
    if p == 1.0 {
        return f64::INFINITY;
    }
    if p == 0.5 {
        return 0.0;
    }
    // For p > 0.5, 1 - p is exact (Sterbenz), so nothing is lost here.
    let (q, sign) = if p < 0.5 { (p, -1.0) } else { (1.0 - p, 1.0) };
    sign * solve_upper_tail(q, tail, pdf)
}

/// The t > 0 with tail(t) = q, for 0 < q < 1/2.
fn solve_upper_tail(q: f64, tail: impl Fn(f64) -> f64, pdf: impl Fn(f64) -> f64) -> f64 {
    let ln_q = q.ln();
    // g(u) = ln tail(e^u) - ln q decreases in u; [lo, hi] brackets its root.
    let (mut lo, mut hi) = (f64::NEG_INFINITY, f64::INFINITY);
    let mut u = 0.0_f64;
    for _ in 0..MAX_STEPS {
        let t = u.exp();
        let upper = tail(t);
        let g = upper.ln() - ln_q;
        if g == 0.0 {
            return t;
        }
        if g > 0.0 {
            lo = u;
        } else {
            hi = u;
        }
        // dg/du = -pdf(t) t / tail(t).
        let slope = -pdf(t) * t / upper;
        let newton = u - (g / slope).clamp(-MAX_LOG_STEP, MAX_LOG_STEP);
        let next = if newton.is_finite() && newton > lo && newton < hi {
            newton
        } else if lo.is_finite() && hi.is_finite() {
            0.5 * (lo + hi)
        } else if lo.is_finite() {
            lo + MAX_LOG_STEP
        } else {
            hi - MAX_LOG_STEP
        };
        // u is ln t, so a change in u is a relative change in t.
        if (next - u).abs() <= 4.0 * f64::EPSILON || hi - lo <= 4.0 * f64::EPSILON {
            return next.exp();
        }
        u = next;
    }
    u.exp()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixtures::{load, num, nums, Deviation};

    #[test]
    fn closed_forms() {
        // df = 1 is the Cauchy distribution: cdf = 1/2 + atan(t)/pi.
        for t in [-30.0, -2.0, -0.5, 0.25, 1.0, 7.0, 1e8] {
            let expected = 0.5 + f64::atan(t) / PI;
            assert!((student_t_cdf(t, 1.0) - expected).abs() < 5e-15, "t={t}");
        }
        // df = 2: cdf = 1/2 + t / (2 sqrt(2 + t²)), quantile (2p - 1) sqrt(2 / (4p(1 - p))).
        for t in [-3.0_f64, 0.3, 2.0, 50.0] {
            let expected = 0.5 + t / (2.0 * (2.0 + t * t).sqrt());
            assert!((student_t_cdf(t, 2.0) - expected).abs() < 5e-15, "t={t}");
        }
        let q = student_t_quantile(0.975, 2.0);
        let closed = 0.95 * (2.0 / (4.0 * 0.975 * 0.025_f64)).sqrt();
        assert!((q - closed).abs() < 1e-13, "{q} vs {closed}");
        // Normal: 1.959963984540054 is the 97.5% quantile.
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-14);
        assert!((student_t_quantile(0.975, f64::INFINITY) - 1.959_963_984_540_054).abs() < 1e-14);
    }

    #[test]
    fn edge_cases() {
        assert_eq!(student_t_sf(0.0, 3.0), 0.5);
        assert_eq!(student_t_sf(f64::INFINITY, 3.0), 0.0);
        assert_eq!(student_t_sf(f64::NEG_INFINITY, 3.0), 1.0);
        assert!(student_t_sf(1.0, 0.0).is_nan());
        assert!(student_t_sf(f64::NAN, 3.0).is_nan());
        assert_eq!(student_t_quantile(0.0, 3.0), f64::NEG_INFINITY);
        assert_eq!(student_t_quantile(1.0, 3.0), f64::INFINITY);
        assert_eq!(student_t_quantile(0.5, 3.0), 0.0);
        assert!(student_t_quantile(1.5, 3.0).is_nan());
        assert!(student_t_quantile(0.3, -1.0).is_nan());
        // Huge |t| must not overflow t².
        // P(T > 1e200) ~ 1e-1000 for df = 5: underflows to 0, not NaN.
        assert_eq!(student_t_sf(1e200, 5.0), 0.0);
        let far = student_t_cdf(-1e200, 1.0);
        assert!(
            ((far - 1.0 / (PI * 1e200)) * PI * 1e200).abs() < 1e-13,
            "{far:e}"
        );
    }

    #[test]
    fn quantile_inverts_cdf() {
        for df in [1.0, 2.5, 7.0, 40.0, 1e4] {
            for p in [1e-12, 0.01, 0.2, 0.6, 0.99] {
                let t = student_t_quantile(p, df);
                let back = student_t_cdf(t, df);
                assert!(((back - p) / p).abs() < 1e-12, "df={df} p={p} back={back}");
            }
        }
    }

    #[test]
    fn matches_scipy() {
        let fixture = load(include_str!(
            "../../tests/fixtures/stats/distributions.json"
        ));
        let xs = nums(&fixture["x"]);
        let ps = nums(&fixture["p"]);
        let rows = fixture["t"].as_array().expect("t rows");
        assert!(rows.len() >= 100, "fixture lost rows");
        // Index 0: df <= 100 (the sizes in use), 1: df up to 1e6.
        let mut prob_dev = [Deviation::new(1e-10), Deviation::new(1e-10)];
        let mut ppf_dev = [Deviation::new(1e-10), Deviation::new(1e-10)];
        for row in rows {
            let df = num(&row["df"]);
            let group = usize::from(df > 100.0);
            let (cdf, sf, ppf) = (nums(&row["cdf"]), nums(&row["sf"]), nums(&row["ppf"]));
            for (i, &x) in xs.iter().enumerate() {
                let what = format!("df={df} x={x}");
                prob_dev[group].check(student_t_cdf(x, df), cdf[i], &format!("cdf {what}"));
                prob_dev[group].check(student_t_sf(x, df), sf[i], &format!("sf {what}"));
            }
            for (i, &p) in ps.iter().enumerate() {
                // Quantiles reach 3e9 (df = 1, p = 1e-10): compare relative to size.
                let what = format!("df={df} p={p}");
                ppf_dev[group].check_scaled(student_t_quantile(p, df), ppf[i], &what);
            }
        }
        let z = nums(&fixture["normal_z"]);
        let sf = nums(&fixture["normal_sf"]);
        let mut normal_dev = Deviation::new(1e-10);
        for (&z, &expected) in z.iter().zip(&sf) {
            normal_dev.check(normal_sf(z), expected, &format!("z={z}"));
        }
        eprintln!("t cdf/sf, df <= 100: {}", prob_dev[0]);
        eprintln!("t cdf/sf, df > 100: {}", prob_dev[1]);
        eprintln!("t ppf (relative), df <= 100: {}", ppf_dev[0]);
        eprintln!("t ppf (relative), df > 100: {}", ppf_dev[1]);
        eprintln!("normal sf: {normal_dev}");
    }
}
