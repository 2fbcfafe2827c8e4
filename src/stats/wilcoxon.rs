//! Wilcoxon signed-rank test, two-sided, as `scipy.stats.wilcoxon(a, b)` with
//! its defaults (`zero_method="wilcox"`, `correction=False`, `method="auto"`)
//! in scipy 1.17 (the version the fixtures come from).
//!
//! Zero differences are dropped; the remaining |a - b| get midranks, and the
//! statistic is min(R+, R-), the smaller rank sum of one sign. scipy's `auto`
//! rule picks how the p-value is computed, and this module copies it, with n
//! the number of pairs *including* zero differences:
//! - n > 50: normal approximation;
//! - no ties among |d| and no zeros: the exact null distribution of R+ (all
//!   2^n sign patterns of ranks 1..n equally likely);
//! - ties or zeros and n <= 13: scipy runs a permutation test that enumerates
//!   every sign flip, i.e. the exact distribution of R+ over the *tied*
//!   midranks; computed here by counting over doubled (integer) ranks;
//! - ties or zeros and 14 <= n <= 50: normal approximation.
//!
//! The normal approximation uses mean m(m+1)/4 and variance
//! (m(m+1)(2m+1) - Σ(t³ - t)/2) / 24 over the m non-zero differences and tie
//! groups t, without continuity correction. Consequence of scipy's rule kept
//! on purpose: if every difference is 0, the p-value is 1 for n <= 13 and NaN
//! for n > 13 (0/0 in the normal approximation).

use super::distributions::normal_sf;
use super::paired::paired_differences;
use super::ranks::midranks;
use super::StatsError;

/// Above this many pairs scipy always uses the normal approximation.
const EXACT_MAX_N: usize = 50;

/// Up to this many pairs scipy enumerates sign flips when there are ties or zeros.
const PERMUTATION_MAX_N: usize = 13;

/// How the p-value was computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WilcoxonMethod {
    /// Exact null distribution of R+ with ranks 1..n (no ties, no zeros).
    Exact,
    /// Exact enumeration of sign flips over tied midranks (scipy's permutation test).
    Permutation,
    /// Normal approximation with tie correction, no continuity correction.
    Asymptotic,
}

/// Result of the two-sided Wilcoxon signed-rank test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WilcoxonResult {
    /// min(R+, R-), as scipy reports for the two-sided test.
    pub statistic: f64,
    /// Two-sided p-value.
    pub p_value: f64,
    /// Rank sum of the positive differences a - b.
    pub r_plus: f64,
    /// Number of non-zero differences that were ranked.
    pub n_nonzero: usize,
    /// How the p-value was computed.
    pub method: WilcoxonMethod,
}

/// Two-sided Wilcoxon signed-rank test of `a` against `b` (same length, at
/// least one pair, finite values); see the module documentation.
pub fn wilcoxon(a: &[f64], b: &[f64]) -> Result<WilcoxonResult, StatsError> {
    let differences = paired_differences(a, b)?;
    let n = differences.len();
    if n == 0 {
        return Err(StatsError::TooFew {
            what: "Wilcoxon signed-rank test",
            needed: 1,
            got: 0,
            unit: "pairs",
        });
    }
    let nonzero: Vec<f64> = differences.into_iter().filter(|&d| d != 0.0).collect();
    let magnitudes: Vec<f64> = nonzero.iter().map(|d| d.abs()).collect();
    let ranking = midranks(&magnitudes);
    let rank_sum = |positive: bool| -> f64 {
        nonzero
            .iter()
            .zip(&ranking.ranks)
            .filter(|(&d, _)| (d > 0.0) == positive)
            .map(|(_, r)| r)
            .sum()
    };
    let (r_plus, r_minus) = (rank_sum(true), rank_sum(false));
    let has_ties = ranking.tie_sizes.iter().any(|&t| t > 1);
    let has_zeros = nonzero.len() < n;
    let method = choose_method(n, has_ties || has_zeros);
    let p_value = match method {
        WilcoxonMethod::Exact | WilcoxonMethod::Permutation => {
            sign_flip_p_value(&ranking.ranks, r_plus)
        }
        WilcoxonMethod::Asymptotic => asymptotic_p_value(nonzero.len(), &ranking.tie_sizes, r_plus),
    };
    Ok(WilcoxonResult {
        statistic: r_plus.min(r_minus),
        p_value,
        r_plus,
        n_nonzero: nonzero.len(),
        method,
    })
}

/// scipy's `method="auto"` rule (n counts zero differences too).
fn choose_method(n: usize, ties_or_zeros: bool) -> WilcoxonMethod {
    if n > EXACT_MAX_N {
        WilcoxonMethod::Asymptotic
    } else if !ties_or_zeros {
        WilcoxonMethod::Exact
    } else if n <= PERMUTATION_MAX_N {
        WilcoxonMethod::Permutation
    } else {
        WilcoxonMethod::Asymptotic
    }
}

/// Two-sided p-value 2 min(P(R+ <= r), P(R+ >= r)), capped at 1, under the
/// null hypothesis that each rank's sign is a fair coin flip.
///
/// Ranks are midranks, hence multiples of 1/2: doubling them gives integers,
/// and the null distribution is counted exactly by dynamic programming over
/// subsets (counts stay below 2^50 for n <= 50, so f64 holds them exactly).
/// Without ties this is scipy's exact distribution; with ties it equals the
/// full enumeration of scipy's permutation test (flipping a zero difference
/// changes nothing, so zeros only scale all counts alike).
fn sign_flip_p_value(ranks: &[f64], r_plus: f64) -> f64 {
    let doubled: Vec<usize> = ranks.iter().map(|r| (2.0 * r).round() as usize).collect();
    let total: usize = doubled.iter().sum();
    let mut counts = vec![0.0_f64; total + 1];
    counts[0] = 1.0;
    let mut reach = 0;
    for &w in &doubled {
        // Descending, so each rank joins a subset at most once.
        for s in (0..=reach).rev() {
            if counts[s] != 0.0 {
                counts[s + w] += counts[s];
            }
        }
        reach += w;
    }
    let observed = (2.0 * r_plus).round() as usize;
    let all = 2f64.powi(ranks.len() as i32);
    let at_most: f64 = counts[..=observed].iter().sum();
    let at_least: f64 = counts[observed..].iter().sum();
    (2.0 * at_most.min(at_least) / all).min(1.0)
}

/// Normal approximation with tie correction, two-sided; NaN when nothing is
/// left to rank (variance 0), as in scipy.
fn asymptotic_p_value(m: usize, tie_sizes: &[usize], r_plus: f64) -> f64 {
    let count = m as f64;
    let mean = count * (count + 1.0) * 0.25;
    let ties: f64 = tie_sizes
        .iter()
        .map(|&t| {
            let t = t as f64;
            t * t * t - t
        })
        .sum();
    let variance = (count * (count + 1.0) * (2.0 * count + 1.0) - ties / 2.0) / 24.0;
    let z = (r_plus - mean) / variance.sqrt();
    2.0 * normal_sf(z.abs())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixtures::{cases, load, num, nums, Deviation};

    #[test]
    fn exact_hand_computed() {
        // n = 3, all differences positive: R+ = 6, R- = 0; P(R+ = 6) = 1/8, so
        // p = 2/8. One negative smallest difference: R+ = 5, P(R+ >= 5) = 2/8.
        let r = wilcoxon(&[1.0, 2.0, 3.0], &[0.9, 1.8, 2.7]).expect("valid");
        assert_eq!(
            (r.statistic, r.r_plus, r.method),
            (0.0, 6.0, WilcoxonMethod::Exact)
        );
        assert!((r.p_value - 0.25).abs() < 1e-15);
        let r = wilcoxon(&[1.0, 2.0, 3.0], &[1.1, 1.8, 2.7]).expect("valid");
        assert_eq!((r.statistic, r.r_plus), (1.0, 5.0));
        assert!((r.p_value - 0.5).abs() < 1e-15);
    }

    #[test]
    fn permutation_with_ties_hand_computed() {
        // d = (1, 1, -2): midranks 1.5, 1.5, 3; R+ = 3. Sign patterns of
        // (1.5, 1.5, 3): sums 0, 1.5, 1.5, 3, 3, 4.5, 4.5, 6; P(R+ <= 3) = 5/8,
        // P(R+ >= 3) = 5/8, so p = min(1, 10/8) = 1.
        let r = wilcoxon(&[2.0, 2.0, 0.0], &[1.0, 1.0, 2.0]).expect("valid");
        assert_eq!(r.method, WilcoxonMethod::Permutation);
        assert_eq!((r.r_plus, r.statistic), (3.0, 3.0));
        assert_eq!(r.p_value, 1.0);
        // d = (1, 1, 2, 0): zero dropped; R+ = 6 of the sums above: P = 1/8, p = 1/4.
        let r = wilcoxon(&[2.0, 2.0, 4.0, 1.0], &[1.0, 1.0, 2.0, 1.0]).expect("valid");
        assert_eq!((r.n_nonzero, r.method), (3, WilcoxonMethod::Permutation));
        assert!((r.p_value - 0.25).abs() < 1e-15);
    }

    #[test]
    fn all_zero_differences_follow_scipy() {
        let r = wilcoxon(&[0.5; 5], &[0.5; 5]).expect("valid");
        assert_eq!((r.statistic, r.p_value, r.n_nonzero), (0.0, 1.0, 0));
        let r = wilcoxon(&[0.5; 20], &[0.5; 20]).expect("valid");
        assert_eq!(r.method, WilcoxonMethod::Asymptotic);
        assert!(r.p_value.is_nan());
    }

    #[test]
    fn method_rule() {
        assert_eq!(choose_method(50, false), WilcoxonMethod::Exact);
        assert_eq!(choose_method(51, false), WilcoxonMethod::Asymptotic);
        assert_eq!(choose_method(13, true), WilcoxonMethod::Permutation);
        assert_eq!(choose_method(14, true), WilcoxonMethod::Asymptotic);
        assert!(matches!(wilcoxon(&[], &[]), Err(StatsError::TooFew { .. })));
    }

    #[test]
    fn matches_scipy() {
        let fixture = load(include_str!("../../tests/fixtures/stats/wilcoxon.json"));
        let mut dev = Deviation::new(1e-10);
        let mut seen = [false; 3];
        for case in cases(&fixture) {
            let name = case["name"].as_str().expect("name");
            let r = wilcoxon(&nums(&case["a"]), &nums(&case["b"])).expect(name);
            let expected_method = match case["method"].as_str().expect("method") {
                "exact" => WilcoxonMethod::Exact,
                "permutation" => WilcoxonMethod::Permutation,
                "asymptotic" => WilcoxonMethod::Asymptotic,
                other => panic!("unknown method {other}"),
            };
            assert_eq!(r.method, expected_method, "{name}");
            seen[expected_method as usize] = true;
            dev.check(
                r.statistic,
                num(&case["statistic"]),
                &format!("{name}.statistic"),
            );
            dev.check(r.p_value, num(&case["p_value"]), &format!("{name}.p_value"));
        }
        assert_eq!(seen, [true; 3], "fixture must cover every method");
        eprintln!("wilcoxon: {dev}");
    }
}
