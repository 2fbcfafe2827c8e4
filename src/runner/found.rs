//! What mining found, by true kind (synthetic data, whose manifest records
//! each patch's kind): which kinds the weak model's false positives were,
//! how common the mimic is in the pool (the base rate a strategy's mined
//! set is compared with), and how well a model tells invasion from mimic.

use crate::data::{Patch, PatchKind};
use crate::metrics::ranking::roc_auc;

/// The negative kinds, in the order of the `fp_*` columns of `results.csv`.
pub const NEGATIVE_KINDS: [PatchKind; 4] = [
    PatchKind::Mimic,
    PatchKind::TumourNest,
    PatchKind::EmptyVessel,
    PatchKind::Stroma,
];

/// Column name of a negative kind's false-positive count (`fp_tumour_nest`).
pub fn fp_column(kind: PatchKind) -> String {
    format!("fp_{}", kind.name().replace('-', "_"))
}

/// False positives per negative kind, in [`NEGATIVE_KINDS`] order; `None`
/// when the patches' kinds are unknown (real data), even without false
/// positives.
pub fn false_positive_kinds(hard: &[Patch], hard_indices: &[usize]) -> Option<[usize; 4]> {
    if hard.iter().any(|p| p.kind.is_none()) {
        return None;
    }
    let mut counts = [0; 4];
    for &i in hard_indices {
        let kind = hard[i].kind?;
        if let Some(slot) = NEGATIVE_KINDS.iter().position(|&k| k == kind) {
            counts[slot] += 1;
        }
    }
    Some(counts)
}

/// Share of mimics in the weakly labeled pool; `None` when kinds are unknown
/// or the pool is empty.
pub fn pool_mimic_fraction(pool: &[Patch]) -> Option<f64> {
    if pool.is_empty() {
        return None;
    }
    let mut mimics = 0;
    for patch in pool {
        if patch.kind? == PatchKind::Mimic {
            mimics += 1;
        }
    }
    Some(mimics as f64 / pool.len() as f64)
}

/// AUROC of the positives against the mimics alone, the negatives that the
/// paper's premise is about: unlike the AUROC over all negatives it does not
/// depend on how many mimics the test split holds. `None` when a test
/// patch's kind is unknown (real data) or the split has no mimic or no
/// positive; `kinds` runs parallel to `scores`.
pub fn auroc_against_mimics(kinds: &[Option<PatchKind>], scores: &[f64]) -> Option<f64> {
    let mut labels = Vec::new();
    let mut kept = Vec::new();
    for (kind, &score) in kinds.iter().zip(scores) {
        match (*kind)? {
            PatchKind::Invasion => labels.push(true),
            PatchKind::Mimic => labels.push(false),
            _ => continue,
        }
        kept.push(score);
    }
    roc_auc(&labels, &kept).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Label;
    use std::path::PathBuf;

    fn patch(kind: Option<PatchKind>) -> Patch {
        Patch {
            path: PathBuf::from("x.png"),
            label: kind.map_or(Label::Negative, PatchKind::label),
            slide: "S1".into(),
            kind,
        }
    }

    #[test]
    fn counts_false_positives_per_negative_kind() {
        use PatchKind::*;
        let hard = [Mimic, Stroma, Mimic, TumourNest, Invasion, EmptyVessel]
            .map(|k| patch(Some(k)))
            .to_vec();
        let pool = [patch(Some(Mimic)), patch(Some(Stroma))];
        assert_eq!(
            false_positive_kinds(&hard, &[0, 2, 3, 5, 1, 0]),
            Some([3, 1, 1, 1])
        );
        assert_eq!(false_positive_kinds(&hard, &[]), Some([0; 4]));
        assert_eq!(pool_mimic_fraction(&pool), Some(0.5));
        assert_eq!(fp_column(TumourNest), "fp_tumour_nest");
    }

    #[test]
    fn results_columns_follow_the_negative_kinds() {
        let columns = crate::runner::results::CELL_COLUMNS;
        let start = columns.iter().position(|c| *c == "fp_mimic").unwrap();
        for (i, &kind) in NEGATIVE_KINDS.iter().enumerate() {
            assert_eq!(columns[start + i], fp_column(kind));
        }
    }

    #[test]
    fn mimic_auroc_ranks_invasions_against_mimics_only() {
        use PatchKind::*;
        let kinds = [Invasion, Mimic, Stroma, Invasion, Mimic, EmptyVessel].map(Some);
        // Stroma and vessel outrank an invasion, but only the mimics count:
        // invasion 0.6 beats mimic 0.5 and loses to mimic 0.7; 0.9 beats both.
        let scores = [0.6, 0.5, 0.95, 0.9, 0.7, 0.99];
        assert_eq!(auroc_against_mimics(&kinds, &scores), Some(0.75));
        let sklearn_ties = [0.6, 0.6, 0.0, 0.9, 0.1, 0.0];
        assert_eq!(auroc_against_mimics(&kinds, &sklearn_ties), Some(0.875));
        let no_mimic = [Invasion, Stroma].map(Some);
        assert_eq!(auroc_against_mimics(&no_mimic, &[0.1, 0.2]), None);
        let unknown = [Some(Invasion), None, Some(Mimic)];
        assert_eq!(auroc_against_mimics(&unknown, &[0.9, 0.1, 0.2]), None);
    }

    #[test]
    fn unknown_kinds_give_none() {
        let unknown = [patch(None)];
        assert_eq!(false_positive_kinds(&unknown, &[0]), None);
        assert_eq!(false_positive_kinds(&unknown, &[]), None);
        assert_eq!(pool_mimic_fraction(&unknown), None);
        assert_eq!(pool_mimic_fraction(&[]), None);
    }
}
