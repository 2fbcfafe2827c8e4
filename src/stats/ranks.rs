//! Midranks: 1-based ranks with tied values sharing the average of the ranks
//! they span (scipy's `rankdata(method="average")`).
//!
//! Rank tests (Wilcoxon) and the fast DeLong algorithm both start here; the
//! sizes of the tie groups feed the Wilcoxon variance correction.

/// Midranks of `values` and the sizes of their tie groups.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranking {
    /// Rank of each value, in input order; ties get the mean of their ranks.
    pub ranks: Vec<f64>,
    /// Number of values in each group of equal values, smallest value first.
    pub tie_sizes: Vec<usize>,
}

/// Ranks `values` (which must not contain NaN: NaN compares unequal to
/// itself and would form singleton groups). Equal values, including -0.0
/// and 0.0, share a rank.
pub fn midranks(values: &[f64]) -> Ranking {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    let mut ranks = vec![0.0; values.len()];
    let mut tie_sizes = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        // total_cmp orders -0.0 just before 0.0, so == still groups them.
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        // Positions start..end hold ranks start+1..=end; their mean:
        let rank = (start + end + 1) as f64 / 2.0;
        for &index in &order[start..end] {
            ranks[index] = rank;
        }
        tie_sizes.push(end - start);
        start = end;
    }
    Ranking { ranks, tie_sizes }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ties_share_the_mean_rank() {
        // scipy.stats.rankdata([3, 2, 1, 2, 2, 2, 1]) = [7, 4.5, 1.5, 4.5, 4.5, 4.5, 1.5].
        let ranking = midranks(&[3.0, 2.0, 1.0, 2.0, 2.0, 2.0, 1.0]);
        assert_eq!(ranking.ranks, vec![7.0, 4.5, 1.5, 4.5, 4.5, 4.5, 1.5]);
        assert_eq!(ranking.tie_sizes, vec![2, 4, 1]);
    }

    #[test]
    fn distinct_values_and_signed_zero() {
        let ranking = midranks(&[0.3, -1.0, 0.0, -0.0]);
        assert_eq!(ranking.ranks, vec![4.0, 1.0, 2.5, 2.5]);
        assert_eq!(ranking.tie_sizes, vec![1, 2, 1]);
        assert!(midranks(&[]).ranks.is_empty());
    }
}
