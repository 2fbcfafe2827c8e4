//! Holm-Bonferroni step-down correction of p-values for multiple comparisons,
//! as `statsmodels.stats.multitest.multipletests(method="holm")[1]`.
//!
//! Sorted ascending, the k-th smallest of m p-values (k from 0) is multiplied
//! by m - k; a running maximum keeps the adjusted values monotone, and values
//! above 1 become 1. Adjusted values are returned in input order.
//!
//! NaN p-values are handled as statsmodels does: they sort last, still count
//! in m, and stay NaN. Inputs are expected in [0, 1]; others are not checked.

/// Holm-adjusted p-values, in the order of `p_values`.
pub fn holm(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    // NaN sorts last, as numpy's argsort places it.
    order.sort_by(|&i, &j| {
        let (a, b) = (p_values[i], p_values[j]);
        a.is_nan().cmp(&b.is_nan()).then(a.total_cmp(&b))
    });
    let mut adjusted = vec![0.0; m];
    let mut running = f64::NEG_INFINITY;
    for (k, &index) in order.iter().enumerate() {
        let raw = p_values[index] * (m - k) as f64;
        // np.maximum.accumulate propagates NaN.
        running = if raw.is_nan() || running.is_nan() {
            f64::NAN
        } else {
            running.max(raw)
        };
        adjusted[index] = if running > 1.0 { 1.0 } else { running };
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::fixtures::{cases, load, nums, Deviation};

    #[test]
    fn hand_computed() {
        // Sorted 0.01, 0.02, 0.03, 0.04 times 4, 3, 2, 1: 0.04, 0.06, 0.06, 0.04
        // -> running max 0.04, 0.06, 0.06, 0.06.
        let adjusted = holm(&[0.01, 0.04, 0.03, 0.02]);
        let expected = [0.04, 0.06, 0.06, 0.06];
        for (a, e) in adjusted.iter().zip(expected) {
            assert!((a - e).abs() < 1e-15, "{adjusted:?}");
        }
        assert_eq!(holm(&[0.6, 0.5]), vec![1.0, 1.0]);
        assert!(holm(&[]).is_empty());
    }

    #[test]
    fn matches_statsmodels() {
        let fixture = load(include_str!("../../tests/fixtures/stats/holm.json"));
        let mut dev = Deviation::new(1e-10);
        for (i, case) in cases(&fixture).iter().enumerate() {
            let adjusted = holm(&nums(&case["p_values"]));
            let expected = nums(&case["corrected"]);
            assert_eq!(adjusted.len(), expected.len());
            for (j, (&a, &e)) in adjusted.iter().zip(&expected).enumerate() {
                dev.check(a, e, &format!("case {i}[{j}]"));
            }
        }
        eprintln!("holm: {dev}");
    }
}
