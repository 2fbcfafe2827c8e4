//! Step 2 of the method: the weak model's false positives on the validation split.

use serde::{Deserialize, Serialize};

/// A validation negative the weak model scored at or above the threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct FalsePositive {
    /// Index into the hard-labeled set.
    pub hard_index: usize,
    /// The weak model's LI probability.
    pub score: f64,
}

/// The negatives among `indices` whose score is at least `threshold`, in input order.
///
/// `scores[i]` belongs to `indices[i]`; `positive[j]` is the label of hard patch `j`.
pub fn false_positives(
    indices: &[usize],
    scores: &[f64],
    positive: &[bool],
    threshold: f64,
) -> Vec<FalsePositive> {
    indices
        .iter()
        .zip(scores)
        .filter(|(&index, &score)| !positive[index] && score >= threshold)
        .map(|(&hard_index, &score)| FalsePositive { hard_index, score })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_negatives_at_or_above_threshold() {
        let positive = vec![false, true, false, false, true];
        let indices = vec![4, 0, 2, 1, 3];
        let scores = vec![0.9, 0.1, 0.05, 0.95, 0.2];
        let fps = false_positives(&indices, &scores, &positive, 0.1);
        assert_eq!(
            fps,
            vec![
                FalsePositive {
                    hard_index: 0,
                    score: 0.1
                },
                FalsePositive {
                    hard_index: 3,
                    score: 0.2
                }
            ]
        );
    }
}
