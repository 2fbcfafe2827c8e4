//! Subsampling of the training split, for the data-scarcity and imbalance
//! ablations.
//!
//! The reference study's "entire subset" ablation keeps a fraction of all
//! training patches (lack of data) and its "pos-only" ablation keeps a fraction
//! of the training positives with all negatives (class imbalance). A
//! [`Subsample`] selects such a subset of the *training* indices only:
//! validation and test must stay whole, so that every arm of an ablation is
//! selected and evaluated on identical patches. Never apply it to them.
//!
//! Selection: the training indices of each class are sorted, shuffled by the
//! stream `seed::stream(seed, "subsample", &[class])` and the first `m` kept,
//! so the result is deterministic, independent of the input order, and (as a
//! side effect) smaller fractions of one seed are subsets of larger ones.
//!
//! Rounding: every kept count is `round(x)` with halves rounded away from zero
//! (`f64::round`). A rule that keeps no patch of a class is an error, not a
//! silent clamp to one: the class balance would otherwise differ from what the
//! configuration says.
//!
//! Serialized adjacently tagged, e.g. in TOML
//! `subsample = { mode = "fraction", value = 0.3 }` or `{ mode = "all" }`.

use super::{Label, Patch};
use crate::seed::stream;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

/// Which training patches to keep.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "mode", content = "value", rename_all = "kebab-case")]
pub enum Subsample {
    /// Keep every training patch.
    #[default]
    All,
    /// "Entire subset": keep `round(f * n_c)` patches of each class `c`
    /// (stratified by label), `0 < f <= 1`.
    Fraction(f64),
    /// "Pos-only": keep `round(f * n_pos)` positives and all negatives,
    /// `0 < f <= 1`.
    PositiveFraction(f64),
    /// Reach a negative:positive ratio `r > 0` by dropping patches, never
    /// adding: if the positives exceed `n_neg / r`, keep `round(n_neg / r)`
    /// positives and all negatives; otherwise (positives too few) keep all
    /// positives and `round(r * n_pos)` negatives.
    NegPosRatio(f64),
}

/// Why a subsample could not be taken.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SubsampleError {
    /// A fraction outside (0, 1] or a ratio that is not positive and finite.
    #[error("{mode} value {value} is out of range; {expected}")]
    BadValue {
        /// The subsample mode.
        mode: &'static str,
        /// The given value.
        value: f64,
        /// The allowed range.
        expected: &'static str,
    },
    /// The training split lacks a class altogether.
    #[error("the training split has no {class} patches ({available} indices in all); subsampling needs both classes")]
    MissingClass {
        /// The absent class.
        class: &'static str,
        /// Training indices given.
        available: usize,
    },
    /// The rule would keep no patch of a class.
    #[error("{mode} {value} keeps 0 of {available} {class} training patches (rounding to nearest); raise the value or use more data")]
    NothingKept {
        /// The subsample mode.
        mode: &'static str,
        /// The given value.
        value: f64,
        /// The class that would vanish.
        class: &'static str,
        /// Training patches of that class.
        available: usize,
    },
    /// A training index beyond the patch slice.
    #[error("training index {index} is out of range for {len} patches")]
    IndexOutOfRange {
        /// The offending index.
        index: usize,
        /// Number of patches.
        len: usize,
    },
}

impl Subsample {
    /// Kebab-case name of the mode, as serialized.
    pub fn mode(&self) -> &'static str {
        match self {
            Subsample::All => "all",
            Subsample::Fraction(_) => "fraction",
            Subsample::PositiveFraction(_) => "positive-fraction",
            Subsample::NegPosRatio(_) => "neg-pos-ratio",
        }
    }

    /// Selects the training indices to keep (sorted ascending), seeded.
    ///
    /// `train` are indices into `patches` (the training split only; never
    /// pass validation or test indices). Errors if a value is out of range,
    /// `train` lacks a class, an index is out of range, or the rule would
    /// keep no patch of a class.
    pub fn apply(
        &self,
        train: &[usize],
        patches: &[Patch],
        seed: u64,
    ) -> Result<Vec<usize>, SubsampleError> {
        self.check_value()?;
        let [negatives, positives] = split_by_class(train, patches)?;
        let (n_neg, n_pos) = (negatives.len(), positives.len());
        let (keep_neg, keep_pos) = match *self {
            Subsample::All => (n_neg, n_pos),
            Subsample::Fraction(f) => {
                (round_count(f * n_neg as f64), round_count(f * n_pos as f64))
            }
            Subsample::PositiveFraction(f) => (n_neg, round_count(f * n_pos as f64)),
            Subsample::NegPosRatio(r) => {
                let wanted_pos = n_neg as f64 / r;
                if wanted_pos <= n_pos as f64 {
                    (n_neg, round_count(wanted_pos))
                } else {
                    (round_count(r * n_pos as f64).min(n_neg), n_pos)
                }
            }
        };
        self.check_kept(Label::Negative, keep_neg, n_neg)?;
        self.check_kept(Label::Positive, keep_pos, n_pos)?;
        let mut kept = take_seeded(negatives, keep_neg, seed, Label::Negative);
        kept.extend(take_seeded(positives, keep_pos, seed, Label::Positive));
        kept.sort_unstable();
        Ok(kept)
    }

    /// The numeric parameter, where the mode has one.
    fn value(&self) -> Option<f64> {
        match *self {
            Subsample::All => None,
            Subsample::Fraction(v) | Subsample::PositiveFraction(v) | Subsample::NegPosRatio(v) => {
                Some(v)
            }
        }
    }

    /// Errors unless fractions lie in (0, 1] and ratios are positive and finite.
    fn check_value(&self) -> Result<(), SubsampleError> {
        let (value, ok, expected) = match *self {
            Subsample::All => return Ok(()),
            Subsample::Fraction(f) | Subsample::PositiveFraction(f) => (
                f,
                f > 0.0 && f <= 1.0,
                "a fraction must lie in (0, 1], e.g. 0.3",
            ),
            Subsample::NegPosRatio(r) => (
                r,
                r > 0.0 && r.is_finite(),
                "a ratio must be positive and finite, e.g. 2.0",
            ),
        };
        if ok {
            Ok(())
        } else {
            Err(SubsampleError::BadValue {
                mode: self.mode(),
                value,
                expected,
            })
        }
    }

    /// Errors with [`SubsampleError::NothingKept`] when `keep` is 0.
    fn check_kept(
        &self,
        label: Label,
        keep: usize,
        available: usize,
    ) -> Result<(), SubsampleError> {
        if keep > 0 {
            return Ok(());
        }
        Err(SubsampleError::NothingKept {
            mode: self.mode(),
            value: self.value().unwrap_or(1.0),
            class: class_name(label),
            available,
        })
    }
}

/// "negative" or "positive".
fn class_name(label: Label) -> &'static str {
    match label {
        Label::Negative => "negative",
        Label::Positive => "positive",
    }
}

/// `round(x)` (halves away from zero) as a count.
fn round_count(x: f64) -> usize {
    x.round() as usize
}

/// Training indices by class, each sorted: `[negatives, positives]`.
fn split_by_class(train: &[usize], patches: &[Patch]) -> Result<[Vec<usize>; 2], SubsampleError> {
    let mut out = [Vec::new(), Vec::new()];
    for &index in train {
        let patch = patches.get(index).ok_or(SubsampleError::IndexOutOfRange {
            index,
            len: patches.len(),
        })?;
        out[patch.label.index()].push(index);
    }
    for (members, label) in out.iter_mut().zip([Label::Negative, Label::Positive]) {
        if members.is_empty() {
            return Err(SubsampleError::MissingClass {
                class: class_name(label),
                available: train.len(),
            });
        }
        members.sort_unstable();
    }
    Ok(out)
}

/// The first `keep` of `members` after a shuffle seeded by (seed, class).
fn take_seeded(mut members: Vec<usize>, keep: usize, seed: u64, label: Label) -> Vec<usize> {
    if keep < members.len() {
        members.shuffle(&mut stream(seed, "subsample", &[label.index() as u64]));
        members.truncate(keep);
    }
    members
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    /// 30 positives then 70 negatives, over 10 slides.
    fn patches() -> Vec<Patch> {
        (0..100)
            .map(|i| Patch {
                path: PathBuf::from(format!("hard_labeled_dataset/p_{i}.png")),
                label: if i < 30 {
                    Label::Positive
                } else {
                    Label::Negative
                },
                slide: format!("S{}", i % 10),
                kind: None,
            })
            .collect()
    }

    /// (negatives, positives) among `kept`.
    fn counts(patches: &[Patch], kept: &[usize]) -> (usize, usize) {
        let pos = kept
            .iter()
            .filter(|&&i| patches[i].label == Label::Positive)
            .count();
        (kept.len() - pos, pos)
    }

    fn all() -> Vec<usize> {
        (0..100).collect()
    }

    #[test]
    fn exact_counts_per_mode() {
        let p = patches();
        let cases = [
            (Subsample::All, (70, 30)),
            // round(0.3 * 70) = 21, round(0.3 * 30) = 9.
            (Subsample::Fraction(0.3), (21, 9)),
            // round(0.25 * 70) = 17.5 -> 18, round(0.25 * 30) = 7.5 -> 8.
            (Subsample::Fraction(0.25), (18, 8)),
            (Subsample::PositiveFraction(0.1), (70, 3)),
            (Subsample::PositiveFraction(0.5), (70, 15)),
            // 70 / 3 = 23.33 positives wanted <= 30: drop positives.
            (Subsample::NegPosRatio(3.0), (70, 23)),
            // 70 / 2 = 35 positives wanted > 30: keep 30, drop negatives to 60.
            (Subsample::NegPosRatio(2.0), (60, 30)),
            // Ratio above the current one (70/30) with exact fit.
            (Subsample::NegPosRatio(7.0), (70, 10)),
        ];
        for (rule, expected) in cases {
            let kept = rule.apply(&all(), &p, 1).unwrap();
            assert_eq!(counts(&p, &kept), expected, "{rule:?}");
            assert!(kept.windows(2).all(|w| w[0] < w[1]), "{rule:?} not sorted");
        }
    }

    #[test]
    fn keeps_only_given_training_indices() {
        let p = patches();
        let train: Vec<usize> = (0..100).filter(|i| i % 2 == 0).collect();
        let kept = Subsample::Fraction(0.5).apply(&train, &p, 4).unwrap();
        assert!(kept.iter().all(|i| train.contains(i)));
        // 15 positives, 35 negatives: round(7.5) = 8, round(17.5) = 18.
        assert_eq!(counts(&p, &kept), (18, 8));
    }

    #[test]
    fn deterministic_seeded_and_order_independent() {
        let p = patches();
        let rule = Subsample::Fraction(0.3);
        let a = rule.apply(&all(), &p, 9).unwrap();
        let reversed: Vec<usize> = all().into_iter().rev().collect();
        assert_eq!(a, rule.apply(&reversed, &p, 9).unwrap());
        assert_ne!(a, rule.apply(&all(), &p, 10).unwrap());
    }

    #[test]
    fn errors_name_the_problem() {
        let p = patches();
        let err = Subsample::Fraction(0.0).apply(&all(), &p, 0).unwrap_err();
        assert!(
            err.to_string().contains("fraction value 0 is out of range"),
            "{err}"
        );
        assert!(Subsample::PositiveFraction(1.5)
            .apply(&all(), &p, 0)
            .is_err());
        assert!(Subsample::NegPosRatio(f64::INFINITY)
            .apply(&all(), &p, 0)
            .is_err());
        // round(0.01 * 30) = 0 positives.
        let err = Subsample::PositiveFraction(0.01)
            .apply(&all(), &p, 0)
            .unwrap_err();
        assert_eq!(
            err,
            SubsampleError::NothingKept {
                mode: "positive-fraction",
                value: 0.01,
                class: "positive",
                available: 30
            }
        );
        let negatives_only: Vec<usize> = (30..100).collect();
        let err = Subsample::All.apply(&negatives_only, &p, 0).unwrap_err();
        assert!(err.to_string().contains("no positive patches"), "{err}");
        let err = Subsample::All.apply(&[100], &p, 0).unwrap_err();
        assert_eq!(
            err,
            SubsampleError::IndexOutOfRange {
                index: 100,
                len: 100
            }
        );
    }

    #[test]
    fn serde_is_adjacently_tagged() {
        let json = serde_json::to_string(&Subsample::PositiveFraction(0.3)).unwrap();
        assert_eq!(json, r#"{"mode":"positive-fraction","value":0.3}"#);
        let all: Subsample = serde_json::from_str(r#"{"mode":"all"}"#).unwrap();
        assert_eq!(all, Subsample::All);
        let toml_rule: Subsample = toml::from_str("mode = \"neg-pos-ratio\"\nvalue = 2.0").unwrap();
        assert_eq!(toml_rule, Subsample::NegPosRatio(2.0));
    }
}
