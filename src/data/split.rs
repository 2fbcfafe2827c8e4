//! Train / validation / test splits of the hard-labeled patches.
//!
//! Patches of one slide are strongly correlated (same stain, same tumour), so a
//! split that puts one slide's patches in both training and test measures
//! memorisation of slides, not generalisation. The default [`SplitKind::Slide`]
//! therefore keeps every slide in exactly one part. The reference study split
//! by patch (its split key was unique per patch); [`SplitKind::Patch`]
//! reproduces that leaky split, for comparison only.
//!
//! Slide-level splits are *stratified group* splits: each part should get close
//! to its target share of patches **and** of positive patches. Slides are
//! shuffled by a seeded stream and assigned greedily, each to the part where it
//! most reduces the squared shortfall of patch and positive shares
//! (`((n - target_n) / N)^2 + ((p - target_p) / P)^2`, summed over parts). The
//! greedy pass is repeated over [`TRIES`] shuffles of the same stream and the
//! best assignment kept (first preferring assignments in which every part
//! holds both classes, then the lowest cost): better balance than one pass,
//! still seed-dependent.
//!
//! All functions are pure: the same patches, fractions and seed give the same
//! split. Indices refer to the given patch slice and each part is sorted.

use super::{Label, Patch};
use crate::seed::stream;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// Number of seeded shuffles tried by a slide-level split; the best is kept.
pub const TRIES: usize = 32;

/// How patches are grouped when splitting.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum SplitKind {
    /// Every slide lies in exactly one part (no leakage between parts).
    #[default]
    Slide,
    /// Patch-level split stratified by label, as the reference (leaks slides).
    Patch,
}

/// One of the three parts of a split.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    /// Training patches.
    Train,
    /// Validation patches (checkpoint selection, false-positive query).
    Valid,
    /// Test patches (final evaluation only).
    Test,
}

impl fmt::Display for Part {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Part::Train => "train",
            Part::Valid => "valid",
            Part::Test => "test",
        })
    }
}

/// Indices into the patch slice, per part, each sorted ascending.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Split {
    /// Training patch indices.
    pub train: Vec<usize>,
    /// Validation patch indices.
    pub valid: Vec<usize>,
    /// Test patch indices.
    pub test: Vec<usize>,
}

impl Split {
    /// The indices of one part.
    pub fn part(&self, part: Part) -> &[usize] {
        match part {
            Part::Train => &self.train,
            Part::Valid => &self.valid,
            Part::Test => &self.test,
        }
    }

    /// The three parts with their names, in the order train, valid, test.
    pub fn parts(&self) -> [(Part, &[usize]); 3] {
        [
            (Part::Train, &self.train),
            (Part::Valid, &self.valid),
            (Part::Test, &self.test),
        ]
    }
}

/// Why a split could not be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SplitError {
    /// A fraction outside (0, 1).
    #[error("{name} is {value}; it must lie strictly between 0 and 1 (e.g. 0.2)")]
    BadFraction {
        /// Parameter name (`test_fraction`, `valid_fraction`).
        name: &'static str,
        /// The given value.
        value: f64,
    },
    /// k-fold with fewer than two folds.
    #[error("k-fold needs k >= 2 folds, got k = {k}")]
    TooFewFolds {
        /// The given number of folds.
        k: usize,
    },
    /// A fold index not below k.
    #[error("fold {fold} does not exist with k = {k}; folds are numbered 0..{k}")]
    FoldOutOfRange {
        /// The given fold.
        fold: usize,
        /// The number of folds.
        k: usize,
    },
    /// Not enough slides to give every part at least one.
    #[error(
        "{slides} slides cannot fill {parts} parts{}; a slide-level split needs at least one slide per part (use fewer folds or more slides)",
        fold_suffix(.fold)
    )]
    TooFewSlides {
        /// Slides available.
        slides: usize,
        /// Parts that need a slide each.
        parts: usize,
        /// The fold, for k-fold splits.
        fold: Option<usize>,
    },
    /// A part lacks one class, so training or evaluation on it is impossible.
    #[error(
        "the {part} part{} has {positives} positive and {negatives} negative patches; it needs both classes (change the seed or fractions, or use more slides)",
        fold_suffix(.fold)
    )]
    MissingClass {
        /// The deficient part.
        part: Part,
        /// The fold, for k-fold splits.
        fold: Option<usize>,
        /// Positive patches in the part.
        positives: usize,
        /// Negative patches in the part.
        negatives: usize,
    },
}

/// " of fold i" for k-fold errors, nothing for holdout splits.
fn fold_suffix(fold: &Option<usize>) -> String {
    fold.map(|f| format!(" of fold {f}")).unwrap_or_default()
}

/// Splits into train / valid / test: `test_fraction` of the patches (and of
/// the positives) to test, then `valid_fraction` of the rest to valid.
///
/// The reference uses 0.2 and 0.2 (64/16/20). With [`SplitKind::Slide`] no
/// slide is in two parts and the shares are met as closely as whole slides
/// allow. Errors on fractions outside (0, 1), fewer than 3 slides (slide
/// level), or a part without positives or negatives.
pub fn holdout(
    patches: &[Patch],
    test_fraction: f64,
    valid_fraction: f64,
    seed: u64,
    kind: SplitKind,
) -> Result<Split, SplitError> {
    check_fraction("test_fraction", test_fraction)?;
    check_fraction("valid_fraction", valid_fraction)?;
    let split = match kind {
        SplitKind::Slide => holdout_by_slide(patches, test_fraction, valid_fraction, seed)?,
        SplitKind::Patch => holdout_by_patch(patches, test_fraction, valid_fraction, seed),
    };
    check_classes(&split, patches, None)?;
    Ok(split)
}

/// Fold `fold` of a k-fold split: the dataset is partitioned once into `k`
/// test parts (the same for every fold of one seed), fold `fold` tests on part
/// `fold`, and `valid_fraction` of the remaining patches become valid.
///
/// With [`SplitKind::Slide`] the test parts are groups of whole slides balanced
/// in patches and positives, and valid is a group of whole slides too. With
/// [`SplitKind::Patch`] the test parts are stratified by label. Errors on
/// k < 2, `fold >= k`, a bad fraction, too few slides, or a part without
/// positives or negatives.
pub fn kfold(
    patches: &[Patch],
    k: usize,
    fold: usize,
    valid_fraction: f64,
    seed: u64,
    kind: SplitKind,
) -> Result<Split, SplitError> {
    if k < 2 {
        return Err(SplitError::TooFewFolds { k });
    }
    if fold >= k {
        return Err(SplitError::FoldOutOfRange { fold, k });
    }
    check_fraction("valid_fraction", valid_fraction)?;
    let split = match kind {
        SplitKind::Slide => kfold_by_slide(patches, k, fold, valid_fraction, seed)?,
        SplitKind::Patch => kfold_by_patch(patches, k, fold, valid_fraction, seed),
    };
    check_classes(&split, patches, Some(fold))?;
    Ok(split)
}

/// Errors unless `0 < value < 1`.
fn check_fraction(name: &'static str, value: f64) -> Result<(), SplitError> {
    if value > 0.0 && value < 1.0 {
        Ok(())
    } else {
        Err(SplitError::BadFraction { name, value })
    }
}

/// Errors with [`SplitError::MissingClass`] for the first part lacking a class.
fn check_classes(split: &Split, patches: &[Patch], fold: Option<usize>) -> Result<(), SplitError> {
    for (part, indices) in split.parts() {
        let positives = count_positives(patches, indices);
        let negatives = indices.len() - positives;
        if positives == 0 || negatives == 0 {
            return Err(SplitError::MissingClass {
                part,
                fold,
                positives,
                negatives,
            });
        }
    }
    Ok(())
}

/// Number of positive patches among `indices`.
fn count_positives(patches: &[Patch], indices: &[usize]) -> usize {
    indices
        .iter()
        .filter(|&&i| patches[i].label == Label::Positive)
        .count()
}

/// The patches of one slide and their counts.
#[derive(Debug, Clone)]
struct Group {
    members: Vec<usize>,
    patches: f64,
    positives: f64,
}

/// Groups patch indices by slide, in slide-name order (so that the result
/// does not depend on the order of the patch slice beyond the indices).
fn slide_groups(patches: &[Patch], indices: impl IntoIterator<Item = usize>) -> Vec<Group> {
    let mut by_slide: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for i in indices {
        by_slide
            .entry(patches[i].slide.as_str())
            .or_default()
            .push(i);
    }
    by_slide
        .into_values()
        .map(|members| Group {
            patches: members.len() as f64,
            positives: count_positives(patches, &members) as f64,
            members,
        })
        .collect()
}

/// Target patch and positive counts of one part.
#[derive(Debug, Clone, Copy)]
struct Target {
    patches: f64,
    positives: f64,
}

/// Targets proportional to `shares` (which sum to 1) of the groups' totals.
fn targets(groups: &[Group], shares: &[f64]) -> Vec<Target> {
    let (n, p) = totals(groups);
    shares
        .iter()
        .map(|s| Target {
            patches: s * n,
            positives: s * p,
        })
        .collect()
}

/// Total patches and positives of the groups.
fn totals(groups: &[Group]) -> (f64, f64) {
    groups
        .iter()
        .fold((0.0, 0.0), |(n, p), g| (n + g.patches, p + g.positives))
}

/// Assigns every group to a part (index into `targets`), balancing patch and
/// positive counts; best of [`TRIES`] seeded greedy passes, preferring
/// assignments without empty parts, then with fewer parts lacking a class.
fn assign_groups(groups: &[Group], targets: &[Target], rng: &mut ChaCha8Rng) -> Vec<usize> {
    let (n, p) = totals(groups);
    // Guard the normalisers: a dataset without positives still gets a split
    // (which `check_classes` then rejects with a clear message).
    let scale = (n.max(1.0), p.max(1.0));
    let mut order: Vec<usize> = (0..groups.len()).collect();
    let mut best: Option<(Quality, Vec<usize>)> = None;
    for _ in 0..TRIES {
        order.shuffle(rng);
        let assignment = greedy_pass(groups, targets, &order, scale);
        let key = quality(groups, targets, &assignment, scale);
        if best.as_ref().is_none_or(|(q, _)| key.better_than(q)) {
            best = Some((key, assignment));
        }
    }
    best.map(|(_, a)| a).unwrap_or_default()
}

/// One greedy pass: each group, in `order`, goes to the part whose cost it
/// increases least (ties to the lower part index). Once no more groups remain
/// than parts are empty, only empty parts are eligible, so that every part
/// gets a group whenever there are enough groups.
fn greedy_pass(
    groups: &[Group],
    targets: &[Target],
    order: &[usize],
    scale: (f64, f64),
) -> Vec<usize> {
    let mut filled = vec![(0.0, 0.0); targets.len()];
    let mut assignment = vec![0; groups.len()];
    for (placed, &g) in order.iter().enumerate() {
        let group = &groups[g];
        let empty = filled.iter().filter(|&&(n, _)| n == 0.0).count();
        let only_empty = order.len() - placed <= empty;
        let mut best = (f64::INFINITY, 0);
        for (part, (target, &(n, p))) in targets.iter().zip(&filled).enumerate() {
            if only_empty && n > 0.0 {
                continue;
            }
            let before = part_cost(n, p, target, scale);
            let after = part_cost(n + group.patches, p + group.positives, target, scale);
            if after - before < best.0 {
                best = (after - before, part);
            }
        }
        let part = best.1;
        filled[part].0 += group.patches;
        filled[part].1 += group.positives;
        assignment[g] = part;
    }
    assignment
}

/// Squared shortfall (or excess) of a part's patch and positive shares.
fn part_cost(n: f64, p: f64, target: &Target, scale: (f64, f64)) -> f64 {
    ((n - target.patches) / scale.0).powi(2) + ((p - target.positives) / scale.1).powi(2)
}

/// How good an assignment is; lower is better, compared field by field.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Quality {
    /// Parts without any patch.
    empty: usize,
    /// Parts without positives or without negatives (empty ones included).
    lacking: usize,
    /// Total squared shortfall of patch and positive shares.
    cost: f64,
}

impl Quality {
    /// Whether `self` is strictly better than `other`.
    fn better_than(&self, other: &Quality) -> bool {
        (self.empty, self.lacking) < (other.empty, other.lacking)
            || ((self.empty, self.lacking) == (other.empty, other.lacking)
                && self.cost < other.cost)
    }
}

/// Scores an assignment of groups to parts.
fn quality(
    groups: &[Group],
    targets: &[Target],
    assignment: &[usize],
    scale: (f64, f64),
) -> Quality {
    let mut filled = vec![(0.0, 0.0); targets.len()];
    for (group, &part) in groups.iter().zip(assignment) {
        filled[part].0 += group.patches;
        filled[part].1 += group.positives;
    }
    Quality {
        empty: filled.iter().filter(|&&(n, _)| n == 0.0).count(),
        lacking: filled.iter().filter(|&&(n, p)| p == 0.0 || p == n).count(),
        cost: targets
            .iter()
            .zip(&filled)
            .map(|(t, &(n, p))| part_cost(n, p, t, scale))
            .sum(),
    }
}

/// Collects the members of the groups assigned to `part`, sorted.
fn members_of(groups: &[Group], assignment: &[usize], part: usize) -> Vec<usize> {
    let mut out: Vec<usize> = groups
        .iter()
        .zip(assignment)
        .filter(|(_, &a)| a == part)
        .flat_map(|(g, _)| g.members.iter().copied())
        .collect();
    out.sort_unstable();
    out
}

/// Slide-level holdout: parts 0 = train, 1 = valid, 2 = test.
fn holdout_by_slide(
    patches: &[Patch],
    test_fraction: f64,
    valid_fraction: f64,
    seed: u64,
) -> Result<Split, SplitError> {
    let groups = slide_groups(patches, 0..patches.len());
    if groups.len() < 3 {
        return Err(SplitError::TooFewSlides {
            slides: groups.len(),
            parts: 3,
            fold: None,
        });
    }
    let valid_share = valid_fraction * (1.0 - test_fraction);
    let shares = [
        1.0 - test_fraction - valid_share,
        valid_share,
        test_fraction,
    ];
    let mut rng = stream(seed, "split/holdout-slide", &[]);
    let assignment = assign_groups(&groups, &targets(&groups, &shares), &mut rng);
    Ok(Split {
        train: members_of(&groups, &assignment, 0),
        valid: members_of(&groups, &assignment, 1),
        test: members_of(&groups, &assignment, 2),
    })
}

/// Slide-level fold: k balanced slide groups, then a grouped valid part.
fn kfold_by_slide(
    patches: &[Patch],
    k: usize,
    fold: usize,
    valid_fraction: f64,
    seed: u64,
) -> Result<Split, SplitError> {
    let groups = slide_groups(patches, 0..patches.len());
    if groups.len() < k {
        return Err(SplitError::TooFewSlides {
            slides: groups.len(),
            parts: k,
            fold: None,
        });
    }
    // The fold partition depends on (seed, k) only, so that the k test parts
    // of one seed partition the dataset.
    let shares = vec![1.0 / k as f64; k];
    let mut rng = stream(seed, "split/kfold-slide", &[k as u64]);
    let assignment = assign_groups(&groups, &targets(&groups, &shares), &mut rng);
    let test = members_of(&groups, &assignment, fold);
    let rest = slide_groups(
        patches,
        (0..patches.len()).filter(|i| test.binary_search(i).is_err()),
    );
    if rest.len() < 2 {
        return Err(SplitError::TooFewSlides {
            slides: rest.len(),
            parts: 2,
            fold: Some(fold),
        });
    }
    let mut rng = stream(seed, "split/kfold-slide-valid", &[k as u64, fold as u64]);
    let rest_targets = targets(&rest, &[1.0 - valid_fraction, valid_fraction]);
    let rest_assignment = assign_groups(&rest, &rest_targets, &mut rng);
    Ok(Split {
        train: members_of(&rest, &rest_assignment, 0),
        valid: members_of(&rest, &rest_assignment, 1),
        test,
    })
}

/// Indices of each label, in order: `[negatives, positives]`.
fn by_label(patches: &[Patch], indices: impl IntoIterator<Item = usize>) -> [Vec<usize>; 2] {
    let mut out = [Vec::new(), Vec::new()];
    for i in indices {
        out[patches[i].label.index()].push(i);
    }
    out
}

/// `round(fraction * n)` as a count (halves away from zero).
fn share(fraction: f64, n: usize) -> usize {
    (fraction * n as f64).round() as usize
}

/// Patch-level holdout stratified by label: per class, a seeded shuffle, then
/// `round(test_fraction * n)` to test and `round(valid_fraction * rest)` to valid.
fn holdout_by_patch(
    patches: &[Patch],
    test_fraction: f64,
    valid_fraction: f64,
    seed: u64,
) -> Split {
    let mut split = Split::default();
    for (class, mut members) in by_label(patches, 0..patches.len()).into_iter().enumerate() {
        members.shuffle(&mut stream(seed, "split/holdout-patch", &[class as u64]));
        let n_test = share(test_fraction, members.len());
        let n_valid = share(valid_fraction, members.len() - n_test);
        split.test.extend_from_slice(&members[..n_test]);
        split
            .valid
            .extend_from_slice(&members[n_test..n_test + n_valid]);
        split.train.extend_from_slice(&members[n_test + n_valid..]);
    }
    sort_parts(split)
}

/// Patch-level fold: per class, a seeded shuffle dealt round-robin into k
/// parts (negatives continue the positives' rotation, so part sizes differ by
/// at most one); valid is a stratified patch-level share of the rest.
fn kfold_by_patch(
    patches: &[Patch],
    k: usize,
    fold: usize,
    valid_fraction: f64,
    seed: u64,
) -> Split {
    let mut split = Split::default();
    let mut rest = Vec::new();
    let mut dealt = 0;
    for (class, mut members) in by_label(patches, 0..patches.len()).into_iter().enumerate() {
        members.shuffle(&mut stream(
            seed,
            "split/kfold-patch",
            &[k as u64, class as u64],
        ));
        for i in members {
            if dealt % k == fold {
                split.test.push(i);
            } else {
                rest.push(i);
            }
            dealt += 1;
        }
    }
    for (class, mut members) in by_label(patches, rest).into_iter().enumerate() {
        let purpose = "split/kfold-patch-valid";
        members.shuffle(&mut stream(
            seed,
            purpose,
            &[k as u64, fold as u64, class as u64],
        ));
        let n_valid = share(valid_fraction, members.len());
        split.valid.extend_from_slice(&members[..n_valid]);
        split.train.extend_from_slice(&members[n_valid..]);
    }
    sort_parts(split)
}

/// Sorts every part ascending.
fn sort_parts(mut split: Split) -> Split {
    split.train.sort_unstable();
    split.valid.sort_unstable();
    split.test.sort_unstable();
    split
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeSet, HashSet};
    use std::path::PathBuf;

    /// 48 slides, 10..=33 patches each (1000 in all), 29% positives overall
    /// but unevenly spread (some slides have none, some mostly positives).
    fn dataset() -> Vec<Patch> {
        const RATES: [f64; 6] = [0.0, 0.1, 0.2, 0.35, 0.5, 0.65];
        let mut patches = Vec::new();
        for s in 0..48usize {
            let n = 10 + (s * 7) % 23 + usize::from(s < 7);
            let pos = (n as f64 * RATES[s % RATES.len()]).round() as usize;
            for j in 0..n {
                let label = if j < pos {
                    Label::Positive
                } else {
                    Label::Negative
                };
                patches.push(Patch {
                    path: PathBuf::from(format!("hard_labeled_dataset/p_S{s:02}_{j}.png")),
                    label,
                    slide: format!("S{s:02}"),
                    kind: None,
                });
            }
        }
        patches
    }

    fn slides_of<'a>(patches: &'a [Patch], indices: &[usize]) -> BTreeSet<&'a str> {
        indices.iter().map(|&i| patches[i].slide.as_str()).collect()
    }

    /// Every index exactly once, each part sorted.
    fn assert_partition(split: &Split, n: usize) {
        let mut all: Vec<usize> = split
            .parts()
            .iter()
            .flat_map(|(_, p)| p.iter().copied())
            .collect();
        for (part, indices) in split.parts() {
            assert!(indices.windows(2).all(|w| w[0] < w[1]), "{part} not sorted");
        }
        all.sort_unstable();
        assert_eq!(all, (0..n).collect::<Vec<_>>());
    }

    fn assert_no_shared_slide(patches: &[Patch], split: &Split) {
        let parts = split.parts();
        for (a, pa) in &parts {
            for (b, pb) in &parts {
                if a != b {
                    let shared: Vec<_> = slides_of(patches, pa)
                        .intersection(&slides_of(patches, pb))
                        .copied()
                        .collect();
                    assert!(shared.is_empty(), "{a} and {b} share slides {shared:?}");
                }
            }
        }
    }

    /// Part's share of all patches and of all positives.
    fn shares(patches: &[Patch], indices: &[usize]) -> (f64, f64) {
        let total_pos = patches
            .iter()
            .filter(|p| p.label == Label::Positive)
            .count();
        (
            indices.len() as f64 / patches.len() as f64,
            count_positives(patches, indices) as f64 / total_pos as f64,
        )
    }

    fn assert_share(patches: &[Patch], indices: &[usize], target: f64, what: &str) {
        let (n, p) = shares(patches, indices);
        assert!(
            (n - target).abs() <= 0.02,
            "{what}: patch share {n:.3}, target {target}"
        );
        assert!(
            (p - target).abs() <= 0.02,
            "{what}: positive share {p:.3}, target {target}"
        );
    }

    #[test]
    fn dataset_matches_description() {
        let patches = dataset();
        assert_eq!(patches.len(), 1000);
        let pos = patches
            .iter()
            .filter(|p| p.label == Label::Positive)
            .count();
        assert!((pos as f64 / 1000.0 - 0.3).abs() < 0.02, "{pos} positives");
    }

    #[test]
    fn slide_holdout_is_grouped_and_balanced() {
        let patches = dataset();
        for seed in 0..5 {
            let split = holdout(&patches, 0.2, 0.2, seed, SplitKind::Slide).unwrap();
            assert_partition(&split, patches.len());
            assert_no_shared_slide(&patches, &split);
            assert_share(&patches, &split.test, 0.2, "test");
            assert_share(&patches, &split.valid, 0.16, "valid");
            assert_share(&patches, &split.train, 0.64, "train");
        }
    }

    #[test]
    fn holdout_is_deterministic_and_seeded() {
        let patches = dataset();
        for kind in [SplitKind::Slide, SplitKind::Patch] {
            let a = holdout(&patches, 0.2, 0.2, 7, kind).unwrap();
            assert_eq!(a, holdout(&patches, 0.2, 0.2, 7, kind).unwrap());
            let b = holdout(&patches, 0.2, 0.2, 8, kind).unwrap();
            assert_ne!(a.test, b.test, "{kind:?}");
        }
    }

    #[test]
    fn patch_holdout_mixes_slides_with_exact_counts() {
        let patches = dataset();
        let split = holdout(&patches, 0.2, 0.2, 3, SplitKind::Patch).unwrap();
        assert_partition(&split, patches.len());
        let pos = patches
            .iter()
            .filter(|p| p.label == Label::Positive)
            .count();
        let neg = patches.len() - pos;
        // Per class: round(0.2 n) to test, round(0.2 rest) to valid.
        let test_pos = share(0.2, pos);
        let test_neg = share(0.2, neg);
        assert_eq!(count_positives(&patches, &split.test), test_pos);
        assert_eq!(split.test.len(), test_pos + test_neg);
        assert_eq!(
            split.valid.len(),
            share(0.2, pos - test_pos) + share(0.2, neg - test_neg)
        );
        let shared = slides_of(&patches, &split.train)
            .intersection(&slides_of(&patches, &split.test))
            .count();
        assert!(
            shared > 20,
            "a patch-level split should leak most slides, got {shared}"
        );
    }

    #[test]
    fn kfold_test_parts_partition_the_dataset() {
        let patches = dataset();
        for kind in [SplitKind::Slide, SplitKind::Patch] {
            let mut tests = Vec::new();
            for fold in 0..5 {
                let split = kfold(&patches, 5, fold, 0.2, 11, kind).unwrap();
                assert_partition(&split, patches.len());
                if kind == SplitKind::Slide {
                    assert_no_shared_slide(&patches, &split);
                    assert_share(&patches, &split.test, 0.2, &format!("fold {fold} test"));
                    let (rest_n, _) = shares(&patches, &split.test);
                    let valid_share =
                        split.valid.len() as f64 / (patches.len() as f64 * (1.0 - rest_n));
                    assert!(
                        (valid_share - 0.2).abs() <= 0.03,
                        "fold {fold} valid share {valid_share}"
                    );
                }
                tests.extend(split.test);
            }
            tests.sort_unstable();
            assert_eq!(tests, (0..patches.len()).collect::<Vec<_>>(), "{kind:?}");
        }
    }

    #[test]
    fn kfold_is_deterministic_and_seeded() {
        let patches = dataset();
        let a = kfold(&patches, 3, 1, 0.2, 5, SplitKind::Slide).unwrap();
        assert_eq!(a, kfold(&patches, 3, 1, 0.2, 5, SplitKind::Slide).unwrap());
        assert_ne!(
            a.test,
            kfold(&patches, 3, 1, 0.2, 6, SplitKind::Slide)
                .unwrap()
                .test
        );
        let folds: HashSet<Vec<usize>> = (0..3)
            .map(|f| {
                kfold(&patches, 3, f, 0.2, 5, SplitKind::Slide)
                    .unwrap()
                    .test
            })
            .collect();
        assert_eq!(folds.len(), 3);
    }

    #[test]
    fn patch_kfold_sizes_differ_by_at_most_one() {
        let patches = dataset();
        let sizes: Vec<usize> = (0..3)
            .map(|f| {
                kfold(&patches, 3, f, 0.2, 1, SplitKind::Patch)
                    .unwrap()
                    .test
                    .len()
            })
            .collect();
        assert_eq!(sizes.iter().sum::<usize>(), 1000);
        assert!(
            sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
            "{sizes:?}"
        );
    }

    #[test]
    fn errors_name_the_problem() {
        let patches = dataset();
        assert_eq!(
            kfold(&patches, 1, 0, 0.2, 0, SplitKind::Slide),
            Err(SplitError::TooFewFolds { k: 1 })
        );
        let err = kfold(&patches, 3, 3, 0.2, 0, SplitKind::Slide).unwrap_err();
        assert_eq!(err, SplitError::FoldOutOfRange { fold: 3, k: 3 });
        let err = holdout(&patches, 1.0, 0.2, 0, SplitKind::Slide).unwrap_err();
        assert!(err.to_string().contains("test_fraction is 1"), "{err}");
        let two_slides: Vec<Patch> = patches
            .iter()
            .filter(|p| p.slide == "S01" || p.slide == "S02")
            .cloned()
            .collect();
        let err = holdout(&two_slides, 0.2, 0.2, 0, SplitKind::Slide).unwrap_err();
        assert_eq!(
            err,
            SplitError::TooFewSlides {
                slides: 2,
                parts: 3,
                fold: None
            }
        );
        let err = kfold(&patches, 49, 0, 0.2, 0, SplitKind::Slide).unwrap_err();
        assert!(
            err.to_string().contains("48 slides cannot fill 49 parts"),
            "{err}"
        );
    }

    #[test]
    fn part_without_positives_is_reported() {
        // S00 and S06 have no positives, S04 has half: with one slide per
        // part, two parts lack positives.
        let patches: Vec<Patch> = dataset()
            .into_iter()
            .filter(|p| ["S00", "S06", "S04"].contains(&p.slide.as_str()))
            .collect();
        let err = holdout(&patches, 0.2, 0.2, 0, SplitKind::Slide).unwrap_err();
        match &err {
            SplitError::MissingClass {
                positives,
                negatives,
                fold: None,
                ..
            } => {
                assert_eq!(*positives, 0);
                assert!(*negatives > 0);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert!(err.to_string().contains("needs both classes"), "{err}");
        let err = kfold(&patches, 2, 1, 0.2, 0, SplitKind::Slide).unwrap_err();
        assert!(err.to_string().contains("valid part of fold 1"), "{err}");
        // Fold 0 tests on two of the three slides, leaving one for train and valid.
        let err = kfold(&patches, 2, 0, 0.2, 0, SplitKind::Slide).unwrap_err();
        assert_eq!(
            err,
            SplitError::TooFewSlides {
                slides: 1,
                parts: 2,
                fold: Some(0)
            }
        );
    }

    #[test]
    fn split_kind_serde_is_kebab_case() {
        assert_eq!(
            serde_json::to_string(&SplitKind::Slide).unwrap(),
            "\"slide\""
        );
        let kind: SplitKind = serde_json::from_str("\"patch\"").unwrap();
        assert_eq!(kind, SplitKind::Patch);
    }
}
