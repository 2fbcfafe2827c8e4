//! The build this binary is: version, sources, features, target and the
//! vendored candle-core, summed up in one fingerprint (computed by
//! `build.rs`).
//!
//! Every cached stage and every generated dataset records the fingerprint
//! of the build that made it; a later build with another fingerprint does
//! not reuse them unless asked to (`ablate run --reuse-stale-stages`). The
//! fingerprint hashes the *content* of the sources, so a commit of the same
//! files, or a commit touching only documentation or tests, keeps it; the
//! git revision and whether the sources had uncommitted changes are
//! recorded beside it as provenance.

use serde::{Deserialize, Serialize};

/// Identity and provenance of a build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildInfo {
    /// Hash of version, sources, features, target and candle: the identity
    /// cache keys carry.
    pub fingerprint: String,
    /// The crate version.
    pub version: String,
    /// Hash of the files the binary is built from (code, manifest, lock
    /// file, vendored crate, assets).
    pub sources: String,
    /// Git commit the sources were built from; `None` outside a git checkout.
    pub revision: Option<String>,
    /// Hash of the uncommitted changes to the sources; `None` when there
    /// were none (or no checkout).
    pub dirty: Option<String>,
    /// Enabled cargo features, comma-separated.
    pub features: String,
    /// Target triple.
    pub target: String,
    /// CPU features compiled for, comma-separated.
    pub target_features: String,
    /// candle-core's version.
    pub candle_version: String,
    /// Id of the change to the vendored candle-core; `None` when candle-core
    /// is the registry's, unpatched.
    pub candle_patch: Option<String>,
}

/// The fingerprint of this binary's build.
pub fn fingerprint() -> &'static str {
    env!("ABLATE_BUILD_FINGERPRINT")
}

/// `None` for an empty string.
fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_string())
}

impl BuildInfo {
    /// This binary's build.
    pub fn current() -> Self {
        let revision = env!("ABLATE_GIT_REVISION");
        Self {
            fingerprint: fingerprint().to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            sources: env!("ABLATE_BUILD_SOURCES").to_string(),
            revision: (revision != "unknown").then(|| revision.to_string()),
            dirty: non_empty(env!("ABLATE_GIT_DIRTY")),
            features: env!("ABLATE_FEATURES").to_string(),
            target: env!("ABLATE_TARGET").to_string(),
            target_features: env!("ABLATE_TARGET_FEATURES").to_string(),
            candle_version: env!("ABLATE_CANDLE_VERSION").to_string(),
            candle_patch: non_empty(env!("ABLATE_CANDLE_PATCH")),
        }
    }

    /// The revision with its state: `f7f33d5c1a2b`, `f7f33d5c1a2b+dirty.9e0f1a2b`,
    /// or `unknown revision`.
    pub fn revision_text(&self) -> String {
        let Some(revision) = &self.revision else {
            return "unknown revision".into();
        };
        let short = &revision[..revision.len().min(12)];
        match &self.dirty {
            Some(diff) => format!("{short}+dirty.{}", &diff[..diff.len().min(8)]),
            None => short.to_string(),
        }
    }

    /// candle as built: `0.11.1` or `0.11.1 (patched: 1a2b3c4d5e6f7a8b)`.
    pub fn candle_text(&self) -> String {
        match &self.candle_patch {
            Some(patch) => format!("{} (patched: {patch})", self.candle_version),
            None => self.candle_version.clone(),
        }
    }

    /// One line: `build 1a2b3c4d5e6f7a8b (ablate 0.1.0, f7f33d5c1a2b, features: cuda)`.
    pub fn describe(&self) -> String {
        let features = if self.features.is_empty() {
            String::new()
        } else {
            format!(", features: {}", self.features)
        };
        format!(
            "build {} (ablate {}, {}{features})",
            self.fingerprint,
            self.version,
            self.revision_text()
        )
    }

    /// What makes `other` another build than `self`, by name: `version`,
    /// `sources`, `features`, `target`, `candle` (empty when the
    /// fingerprints agree; `fingerprint` when only they differ).
    pub fn differences(&self, other: &BuildInfo) -> Vec<&'static str> {
        if self.fingerprint == other.fingerprint {
            return Vec::new();
        }
        let mut names = Vec::new();
        if self.version != other.version {
            names.push("version");
        }
        if self.sources != other.sources {
            names.push("sources");
        }
        if self.features != other.features {
            names.push("features");
        }
        if self.target != other.target || self.target_features != other.target_features {
            names.push("target");
        }
        if self.candle_version != other.candle_version || self.candle_patch != other.candle_patch {
            names.push("candle");
        }
        if names.is_empty() {
            names.push("fingerprint");
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn current_build_is_complete() {
        let build = BuildInfo::current();
        assert_eq!(build.fingerprint.len(), 16);
        assert!(build.fingerprint.chars().all(|c| c.is_ascii_hexdigit()));
        assert_eq!(build.sources.len(), 16);
        assert_eq!(build.version, env!("CARGO_PKG_VERSION"));
        assert!(!build.target.is_empty() && build.candle_version != "unknown");
        if let Some(revision) = &build.revision {
            assert!(revision.len() >= 40, "{revision}");
        }
        // The workspace builds candle-core from vendor/ through [patch].
        assert!(build.candle_patch.is_some(), "{build:?}");
        assert!(build.candle_text().contains("patched"));
    }

    #[test]
    fn differences_name_what_changed() {
        let build = BuildInfo::current();
        assert!(build.differences(&build).is_empty());
        let mut other = build.clone();
        other.fingerprint = "0".repeat(16);
        assert_eq!(build.differences(&other), ["fingerprint"]);
        other.sources = "x".into();
        other.candle_patch = None;
        assert_eq!(build.differences(&other), ["sources", "candle"]);
        // Revision and uncommitted changes are provenance, not identity.
        other = build.clone();
        other.revision = Some("f".repeat(40));
        other.dirty = Some("abc".into());
        assert!(build.differences(&other).is_empty());
        assert_eq!(
            other.revision_text(),
            format!("{}+dirty.abc", "f".repeat(12))
        );
    }
}
