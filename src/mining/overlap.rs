//! Pool patches from held-out slides.
//!
//! The weakly labeled pool should come from other slides than the
//! hard-labeled set. Where a pool patch shares its slide with hard-labeled
//! patches of the validation or test split, mining it would carry a
//! held-out slide into training: the strong model would train on tissue it
//! is then selected (validation) or scored (test) on. Such patches are an
//! error by default, naming the slides; `mining.overlapping_pool_slides`
//! may drop them from the pool instead, or keep them (the reference
//! implementation's behaviour, which never looked).
//!
//! Pool patches of training slides are fine: those slides are in training
//! already.

use crate::data::split::{Part, Split};
use crate::data::Patch;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// What mining does with pool patches whose slide is in the validation or
/// test split, as named in experiment files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OverlapPolicy {
    /// Fail, naming the slides.
    #[default]
    Error,
    /// Leave those patches out of the pool that mining draws from.
    Drop,
    /// Mine them like any other pool patch (leaks held-out slides into
    /// training; only to reproduce the reference).
    Keep,
}

/// Pool patches whose slides are held out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", overlap_message(.slides))]
pub struct OverlapError {
    /// Each held-out slide with pool patches: its name, the held-out parts
    /// it is in, and how many pool patches it has.
    pub slides: Vec<OverlappingSlide>,
}

/// A held-out slide that also has pool patches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlappingSlide {
    /// The slide id.
    pub slide: String,
    /// The held-out parts (validation, test) with hard-labeled patches of it.
    pub parts: Vec<Part>,
    /// Pool patches of the slide.
    pub pool_patches: usize,
}

fn overlap_message(slides: &[OverlappingSlide]) -> String {
    let patches: usize = slides.iter().map(|s| s.pool_patches).sum();
    let mut message = format!(
        "{patches} weakly labeled pool patch(es) come from {} slide(s) whose hard-labeled patches are in the validation or test split:",
        slides.len()
    );
    for s in slides {
        let parts: Vec<String> = s.parts.iter().map(Part::to_string).collect();
        let _ = write!(
            message,
            " {} ({}, {} pool patch(es));",
            s.slide,
            parts.join(" and "),
            s.pool_patches
        );
    }
    message.pop();
    message.push_str(
        ". Mining them would train on held-out slides. Set mining.overlapping_pool_slides = \"drop\" to leave them out of mining (or \"keep\" to mine them anyway, as the reference implementation did)",
    );
    message
}

/// The pool indices mining may draw from under `policy`: every pool patch,
/// or (with [`OverlapPolicy::Drop`]) those whose slide has no hard-labeled
/// patch in the validation or test part of `split`. `split` indexes `hard`.
/// With [`OverlapPolicy::Error`], any such patch is an error.
pub fn eligible_pool(
    hard: &[Patch],
    pool: &[Patch],
    split: &Split,
    policy: OverlapPolicy,
) -> Result<Vec<usize>, OverlapError> {
    if policy == OverlapPolicy::Keep {
        return Ok((0..pool.len()).collect());
    }
    let mut held_out: BTreeMap<&str, Vec<Part>> = BTreeMap::new();
    for part in [Part::Valid, Part::Test] {
        for &i in split.part(part) {
            let parts = held_out.entry(hard[i].slide.as_str()).or_default();
            if !parts.contains(&part) {
                parts.push(part);
            }
        }
    }
    let mut overlapping: BTreeMap<&str, usize> = BTreeMap::new();
    let mut eligible = Vec::with_capacity(pool.len());
    for (j, patch) in pool.iter().enumerate() {
        if held_out.contains_key(patch.slide.as_str()) {
            *overlapping.entry(patch.slide.as_str()).or_default() += 1;
        } else {
            eligible.push(j);
        }
    }
    if policy == OverlapPolicy::Error && !overlapping.is_empty() {
        let slides = overlapping
            .into_iter()
            .map(|(slide, pool_patches)| OverlappingSlide {
                slide: slide.to_string(),
                parts: held_out[slide].clone(),
                pool_patches,
            })
            .collect();
        return Err(OverlapError { slides });
    }
    Ok(eligible)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{Label, Source};
    use std::path::PathBuf;

    fn patch(slide: &str, label: Label, source: Source) -> Patch {
        let folder = match source {
            Source::Hard => "hard_labeled_dataset",
            Source::Weak => "weakly_labeled_dataset",
        };
        Patch {
            path: PathBuf::from(format!("{folder}/{slide}_0-0.png")),
            label,
            slide: slide.to_string(),
            kind: None,
        }
    }

    /// Hard slides A (train), B (valid), C (test), D (valid and test);
    /// pool slides A, B, C, D, W (W only in the pool).
    fn fixture() -> (Vec<Patch>, Vec<Patch>, Split) {
        let hard: Vec<Patch> = ["A", "A", "B", "C", "D", "D"]
            .iter()
            .map(|s| patch(s, Label::Negative, Source::Hard))
            .collect();
        let split = Split {
            train: vec![0, 1],
            valid: vec![2, 4],
            test: vec![3, 5],
        };
        let pool = ["A", "B", "B", "C", "D", "W", "W"]
            .iter()
            .map(|s| patch(s, Label::Negative, Source::Weak))
            .collect();
        (hard, pool, split)
    }

    #[test]
    fn held_out_slides_in_the_pool_are_an_error_naming_them() {
        let (hard, pool, split) = fixture();
        let error = eligible_pool(&hard, &pool, &split, OverlapPolicy::Error).unwrap_err();
        let names: Vec<&str> = error.slides.iter().map(|s| s.slide.as_str()).collect();
        assert_eq!(names, ["B", "C", "D"], "training slide A is fine");
        assert_eq!(error.slides[0].pool_patches, 2);
        assert_eq!(error.slides[2].parts, [Part::Valid, Part::Test]);
        let message = error.to_string();
        assert!(
            message.starts_with("4 weakly labeled pool patch(es) come from 3 slide(s)")
                && message.contains(" B (valid, 2 pool patch(es)); C (test, 1 pool patch(es)); D (valid and test, 1 pool patch(es)).")
                && message.contains("mining.overlapping_pool_slides = \"drop\""),
            "{message}"
        );
    }

    #[test]
    fn drop_leaves_them_out_and_keep_keeps_everything() {
        let (hard, pool, split) = fixture();
        let dropped = eligible_pool(&hard, &pool, &split, OverlapPolicy::Drop).unwrap();
        assert_eq!(dropped, [0, 5, 6]);
        let kept = eligible_pool(&hard, &pool, &split, OverlapPolicy::Keep).unwrap();
        assert_eq!(kept, (0..7).collect::<Vec<_>>());
    }

    #[test]
    fn a_pool_of_other_slides_passes_whole() {
        let (hard, _, split) = fixture();
        let pool: Vec<Patch> = ["W", "X"]
            .iter()
            .map(|s| patch(s, Label::Negative, Source::Weak))
            .collect();
        let eligible = eligible_pool(&hard, &pool, &split, OverlapPolicy::Error).unwrap();
        assert_eq!(eligible, [0, 1]);
    }
}
