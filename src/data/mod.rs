//! Patches, their labels and where they come from.
//!
//! Real and synthetic data share one representation: a [`Dataset`] read from
//! the public dataset's folder layout (see [`layout`]). The synthetic
//! generator ([`synth`]) writes that same layout, plus a manifest recording
//! each patch's true kind.

pub mod augment;
pub mod batch;
pub mod images;
pub mod layout;
pub mod prepare;
pub mod source;
pub mod split;
pub mod subsample;
pub mod synth;

use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Folder of hard-labeled patches inside a dataset root.
pub const HARD_DIR: &str = "hard_labeled_dataset";
/// Folder of the weakly labeled (LI-negative slides) pool inside a dataset root.
pub const WEAK_DIR: &str = "weakly_labeled_dataset";
/// Optional manifest of true patch kinds (written by `ablate synth`).
pub const MANIFEST_FILE: &str = "manifest.csv";

/// Binary lymphatic-invasion label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Label {
    /// No lymphatic invasion (class 0).
    Negative,
    /// Lymphatic invasion (class 1).
    Positive,
}

impl Label {
    /// Class index used by the model head: 0 negative, 1 positive.
    pub fn index(self) -> usize {
        match self {
            Label::Negative => 0,
            Label::Positive => 1,
        }
    }

    /// `1.0` for positive, `0.0` for negative.
    pub fn as_f64(self) -> f64 {
        self.index() as f64
    }
}

/// The true histological kind of a synthetic patch (unknown for real data).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PatchKind {
    /// Tumour cells inside a vessel lumen lined by endothelium: lymphatic invasion.
    Invasion,
    /// Plain eosinophilic stroma.
    Stroma,
    /// A tumour nest in stroma, no vessel.
    TumourNest,
    /// An empty lymphatic or blood vessel.
    EmptyVessel,
    /// A tumour nest in a retraction cleft (clear halo, no endothelium): looks like LI.
    Mimic,
}

impl PatchKind {
    /// All kinds, in a fixed order.
    pub const ALL: [PatchKind; 5] = [
        PatchKind::Invasion,
        PatchKind::Stroma,
        PatchKind::TumourNest,
        PatchKind::EmptyVessel,
        PatchKind::Mimic,
    ];

    /// The label a pathologist would give this kind.
    pub fn label(self) -> Label {
        match self {
            PatchKind::Invasion => Label::Positive,
            _ => Label::Negative,
        }
    }

    /// Kebab-case name as written in manifests.
    pub fn name(self) -> &'static str {
        match self {
            PatchKind::Invasion => "invasion",
            PatchKind::Stroma => "stroma",
            PatchKind::TumourNest => "tumour-nest",
            PatchKind::EmptyVessel => "empty-vessel",
            PatchKind::Mimic => "mimic",
        }
    }
}

/// Which part of a dataset a patch belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The hard-labeled (pathologist-annotated) set.
    Hard,
    /// The weakly labeled pool (patches of LI-negative slides).
    Weak,
}

/// One image patch and what is known about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Patch {
    /// Path relative to the dataset root, e.g. `hard_labeled_dataset/pos_S01_10-20.png`.
    pub path: PathBuf,
    /// Hard label, or `Negative` for the weak pool.
    pub label: Label,
    /// Slide identifier (used for grouped splits).
    pub slide: String,
    /// True kind, where a manifest records it (synthetic data).
    pub kind: Option<PatchKind>,
}

/// A dataset: the hard-labeled set and the weakly labeled pool.
#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    /// Dataset root folder.
    pub root: PathBuf,
    /// Hard-labeled patches, sorted by path.
    pub hard: Vec<Patch>,
    /// Weak-pool patches, sorted by path.
    pub pool: Vec<Patch>,
}
