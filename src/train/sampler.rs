//! Which training patches each epoch visits, and in which order.
//!
//! The reference draws batches with a class-balanced weighted sampler
//! (weight 1/class count, with replacement, one epoch = as many draws as
//! training patches). The draws of epoch `e` come from the stream
//! `(seed, "sampler", [e])`, so they do not depend on anything else.

use crate::seed;
use rand::Rng;
use serde::{Deserialize, Serialize};

/// How an epoch's samples are drawn from the training set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Sampling {
    /// Class-balanced draws with replacement (weights 1/class count), as the reference.
    #[default]
    Balanced,
    /// Every training patch once per epoch, shuffled.
    Shuffle,
}

/// Draws the sample order of one epoch.
///
/// `train` holds the training patches' indices and `positive` says, for each
/// of them (same order), whether it is positive. Returns indices taken from
/// `train`, `train.len()` of them.
pub fn epoch_order(
    sampling: Sampling,
    train: &[usize],
    positive: &[bool],
    seed: u64,
    epoch: u64,
) -> Vec<usize> {
    assert_eq!(
        train.len(),
        positive.len(),
        "one class flag per training index"
    );
    let mut rng = seed::stream(seed, "sampler", &[epoch]);
    match sampling {
        Sampling::Shuffle => {
            let mut order = train.to_vec();
            // Fisher-Yates with our own stream (rand's `shuffle` is fine too,
            // but spelling it out pins the algorithm across rand versions).
            for i in (1..order.len()).rev() {
                let j = rng.random_range(0..=i);
                order.swap(i, j);
            }
            order
        }
        Sampling::Balanced => {
            let positives: Vec<usize> = train
                .iter()
                .zip(positive)
                .filter(|(_, &p)| p)
                .map(|(&i, _)| i)
                .collect();
            let negatives: Vec<usize> = train
                .iter()
                .zip(positive)
                .filter(|(_, &p)| !p)
                .map(|(&i, _)| i)
                .collect();
            if positives.is_empty() || negatives.is_empty() {
                // One class only: balanced draws degenerate to uniform draws.
                return (0..train.len())
                    .map(|_| train[rng.random_range(0..train.len())])
                    .collect();
            }
            // Weights 1/count per class give each class half of the mass;
            // drawing the class first, then a member uniformly, is the same
            // distribution as a weighted draw over all patches.
            (0..train.len())
                .map(|_| {
                    let class = if rng.random_bool(0.5) {
                        &positives
                    } else {
                        &negatives
                    };
                    class[rng.random_range(0..class.len())]
                })
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toy() -> (Vec<usize>, Vec<bool>) {
        let train: Vec<usize> = (100..200).collect();
        let positive: Vec<bool> = (0..100).map(|i| i < 10).collect();
        (train, positive)
    }

    #[test]
    fn shuffle_is_a_permutation_and_seeded() {
        let (train, positive) = toy();
        let a = epoch_order(Sampling::Shuffle, &train, &positive, 3, 0);
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, train);
        assert_eq!(a, epoch_order(Sampling::Shuffle, &train, &positive, 3, 0));
        assert_ne!(a, epoch_order(Sampling::Shuffle, &train, &positive, 3, 1));
        assert_ne!(a, train);
    }

    #[test]
    fn balanced_draws_half_positives() {
        let (train, positive) = toy();
        let mut drawn_pos = 0usize;
        let mut total = 0usize;
        for epoch in 0..50 {
            let order = epoch_order(Sampling::Balanced, &train, &positive, 9, epoch);
            assert_eq!(order.len(), train.len());
            assert!(order.iter().all(|i| train.contains(i)));
            drawn_pos += order.iter().filter(|&&i| i < 110).count();
            total += order.len();
        }
        // 10% positives in the set, ~50% in the draws.
        let share = drawn_pos as f64 / total as f64;
        assert!((share - 0.5).abs() < 0.03, "positive share {share}");
    }
}
