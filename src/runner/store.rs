//! The content-addressed artifact store under `<output>/cache/`.
//!
//! Each stage instance owns `cache/<stage>/<settings>/<build>/`: its
//! settings key ([`super::keys`]) and then the build that computed it, the
//! build fingerprint ([`crate::build_info`]) when the stage's inputs came
//! from the same build, else a hash of the fingerprint and the inputs. Its
//! files are written atomically; `stage.json` (settings, inputs, the build
//! that made it) and then a `done` marker are written last, so a stage
//! interrupted at any point (even by `kill -9`) is simply redone on the
//! next run.
//!
//! A finished instance with the right settings made by another build is
//! *stale*: not reused (the result might differ), but found and reported,
//! and reused when a run asks for it and its inputs are the ones the run
//! uses ([`ArtifactStore::resolve`]).

use super::keys::content_key;
use crate::build_info::BuildInfo;
use crate::io::write_atomic;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Name of the marker file of a finished stage.
const DONE: &str = "done";

/// Name of a stage instance's record.
pub const STAGE_RECORD: &str = "stage.json";

/// Errors reading or writing artifacts, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// I/O failed.
    #[error("could not access '{path}'")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A stored artifact could not be parsed (delete its folder to redo the stage).
    #[error("corrupt artifact '{path}' (delete its folder to compute it again)")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
}

/// One stage instance: `cache/<stage>/<settings>/<build>/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct StageRef {
    /// Stage name (`data`, `weak`, `query`, `mining`, `strong`).
    pub stage: String,
    /// Settings key (build-independent).
    pub settings: String,
    /// The build that computed it (with its inputs).
    pub build: String,
}

impl std::fmt::Display for StageRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}/{}", self.stage, self.settings, self.build)
    }
}

/// `stage.json`: what a stage instance was computed from and by which build.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageRecord {
    /// The instance.
    pub stage: StageRef,
    /// The stage instances it read.
    pub inputs: Vec<StageRef>,
    /// The build that computed it.
    pub build: BuildInfo,
}

/// A finished stage instance made by another build.
#[derive(Debug, Clone, PartialEq)]
pub struct StaleStage {
    /// The instance.
    pub found: StageRef,
    /// Its record.
    pub record: StageRecord,
}

/// Where a stage's artifact is, for a run that reads `inputs`.
#[derive(Debug, Clone, PartialEq)]
pub enum Resolution {
    /// Computed by this build from these inputs.
    Current(StageRef),
    /// Computed by another build from these inputs, and reused (asked for).
    Reused(Box<StaleStage>),
    /// Not reusable: to be computed into `own`. `stale` lists the instances
    /// with the same settings that other builds made.
    Missing {
        /// Where this build computes it.
        own: StageRef,
        /// Instances of other builds, not reused.
        stale: Vec<StaleStage>,
    },
}

impl Resolution {
    /// The instance to read, when there is one.
    pub fn found(&self) -> Option<&StageRef> {
        match self {
            Resolution::Current(found) => Some(found),
            Resolution::Reused(stale) => Some(&stale.found),
            Resolution::Missing { .. } => None,
        }
    }

    /// The instance to read, or the one this build computes.
    pub fn target(&self) -> &StageRef {
        match self {
            Resolution::Missing { own, .. } => own,
            _ => self.found().expect("found"),
        }
    }
}

/// Artifacts of all stages of one experiment, as seen by one build.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    root: PathBuf,
    build: BuildInfo,
}

impl ArtifactStore {
    /// A store rooted at `root` (created on first write) for this build.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self::for_build(root, BuildInfo::current())
    }

    /// A store rooted at `root` as seen by `build` (what it computes goes
    /// under `build`'s fingerprint; other builds' stages are stale).
    pub fn for_build(root: impl Into<PathBuf>, build: BuildInfo) -> Self {
        Self {
            root: root.into(),
            build,
        }
    }

    /// The build this store computes for.
    pub fn build(&self) -> &BuildInfo {
        &self.build
    }

    /// The folder of one stage instance.
    pub fn dir(&self, stage: &StageRef) -> PathBuf {
        self.root
            .join(&stage.stage)
            .join(&stage.settings)
            .join(&stage.build)
    }

    /// Whether a stage instance finished.
    pub fn is_done(&self, stage: &StageRef) -> bool {
        self.dir(stage).join(DONE).is_file()
    }

    /// The instance this build computes for `stage` with `settings` from
    /// `inputs`: under the build fingerprint when every input is this
    /// build's, else under a hash of the fingerprint and the inputs (so that
    /// a stage computed from another build's artifact never passes for
    /// this build's own).
    pub fn own(&self, stage: &str, settings: &str, inputs: &[&StageRef]) -> StageRef {
        let fingerprint = &self.build.fingerprint;
        let build = if inputs.iter().all(|i| i.build == *fingerprint) {
            fingerprint.clone()
        } else {
            content_key(&serde_json::json!({ "build": fingerprint, "inputs": inputs }))
        };
        StageRef {
            stage: stage.to_string(),
            settings: settings.to_string(),
            build,
        }
    }

    /// Where `stage` with `settings` is for a run reading `inputs`: this
    /// build's instance when finished; else, with `reuse_stale`, an
    /// instance another build finished from the same inputs; else missing,
    /// with the instances other builds made.
    pub fn resolve(
        &self,
        stage: &str,
        settings: &str,
        inputs: &[&StageRef],
        reuse_stale: bool,
    ) -> Resolution {
        let own = self.own(stage, settings, inputs);
        if self.is_done(&own) {
            return Resolution::Current(own);
        }
        let stale = self.stale(stage, settings);
        if reuse_stale {
            let reusable = stale.iter().find(|s| {
                s.record.inputs.len() == inputs.len()
                    && s.record.inputs.iter().zip(inputs).all(|(a, b)| a == *b)
            });
            if let Some(found) = reusable {
                return Resolution::Reused(Box::new(found.clone()));
            }
        }
        Resolution::Missing { own, stale }
    }

    /// Finished instances of `stage` with `settings` that other builds made,
    /// in folder order.
    pub fn stale(&self, stage: &str, settings: &str) -> Vec<StaleStage> {
        let folder = self.root.join(stage).join(settings);
        let Ok(entries) = std::fs::read_dir(&folder) else {
            return Vec::new();
        };
        let mut builds: Vec<String> = entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .collect();
        builds.sort();
        builds
            .into_iter()
            .filter_map(|build| {
                let found = StageRef {
                    stage: stage.to_string(),
                    settings: settings.to_string(),
                    build,
                };
                if !self.is_done(&found) {
                    return None;
                }
                let record: StageRecord = self.read_json(&found, STAGE_RECORD).ok()?;
                (record.stage == found && record.build.fingerprint != self.build.fingerprint)
                    .then_some(StaleStage { found, record })
            })
            .collect()
    }

    /// Marks a stage instance finished (after all its files are written):
    /// writes its record, then the `done` marker.
    pub fn finish(&self, stage: &StageRef, inputs: &[&StageRef]) -> Result<(), StoreError> {
        let record = StageRecord {
            stage: stage.clone(),
            inputs: inputs.iter().map(|&i| i.clone()).collect(),
            build: self.build.clone(),
        };
        self.write_json(stage, STAGE_RECORD, &record)?;
        let path = self.dir(stage).join(DONE);
        write_atomic(&path, b"").map_err(|source| StoreError::Io { path, source })
    }

    /// Writes a JSON artifact atomically.
    pub fn write_json(
        &self,
        stage: &StageRef,
        file: &str,
        value: &impl Serialize,
    ) -> Result<(), StoreError> {
        let path = self.dir(stage).join(file);
        let bytes = serde_json::to_vec_pretty(value).expect("artifacts serialise");
        write_atomic(&path, &bytes).map_err(|source| StoreError::Io { path, source })
    }

    /// Reads a JSON artifact.
    pub fn read_json<T: DeserializeOwned>(
        &self,
        stage: &StageRef,
        file: &str,
    ) -> Result<T, StoreError> {
        read_json(&self.dir(stage).join(file))
    }
}

/// Reads and parses a JSON file.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, StoreError> {
    let bytes = std::fs::read(path).map_err(|source| StoreError::Io {
        path: path.into(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|source| StoreError::Corrupt {
        path: path.into(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn other_build() -> BuildInfo {
        BuildInfo {
            fingerprint: "0123456789abcdef".into(),
            sources: "fedcba9876543210".into(),
            ..BuildInfo::current()
        }
    }

    #[test]
    fn done_marker_and_json_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::new(dir.path());
        let weak = store.own("weak", "abc", &[]);
        assert_eq!(
            store.dir(&weak),
            dir.path()
                .join("weak/abc")
                .join(crate::build_info::fingerprint())
        );
        assert!(!store.is_done(&weak));
        store
            .write_json(&weak, "x.json", &vec![0.1f64, 1.0 / 3.0])
            .unwrap();
        assert!(!store.is_done(&weak), "files alone do not finish a stage");
        store.finish(&weak, &[]).unwrap();
        assert!(store.is_done(&weak));
        let back: Vec<f64> = store.read_json(&weak, "x.json").unwrap();
        assert_eq!(back, vec![0.1, 1.0 / 3.0]);
        std::fs::write(store.dir(&weak).join("x.json"), b"{").unwrap();
        let error = store.read_json::<Vec<f64>>(&weak, "x.json").unwrap_err();
        assert!(
            error.to_string().contains("corrupt artifact") && error.to_string().contains("x.json"),
            "{error}"
        );
        assert!(std::error::Error::source(&error).is_some());
    }

    #[test]
    fn stages_of_another_build_are_stale_and_reused_only_from_the_same_inputs() {
        let dir = tempfile::tempdir().unwrap();
        let old = ArtifactStore::for_build(dir.path(), other_build());
        let new = ArtifactStore::new(dir.path());
        // The old build made data and a weak model from it.
        let old_data = old.own("data", "d", &[]);
        old.finish(&old_data, &[]).unwrap();
        let old_weak = old.own("weak", "w", &[&old_data]);
        old.finish(&old_weak, &[&old_data]).unwrap();
        assert_eq!(old_weak.build, "0123456789abcdef");

        // The new build does not reuse them, but finds them.
        let data = new.resolve("data", "d", &[], false);
        let Resolution::Missing { own, stale } = &data else {
            panic!("{data:?}")
        };
        assert_eq!(own.build, crate::build_info::fingerprint());
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].found, old_data);
        assert_eq!(stale[0].record.build.differences(new.build()), ["sources"]);

        // Asked to, it reuses the data, and then the weak model made from them.
        let Resolution::Reused(reused) = new.resolve("data", "d", &[], true) else {
            panic!()
        };
        assert_eq!(reused.found, old_data);
        let weak = new.resolve("weak", "w", &[&old_data], true);
        assert_eq!(weak.found(), Some(&old_weak));
        // A weak model made from other data is not reused...
        let new_data = new.own("data", "d", &[]);
        new.finish(&new_data, &[]).unwrap();
        let weak = new.resolve("weak", "w", &[&new_data], true);
        assert!(matches!(&weak, Resolution::Missing { stale, .. } if stale.len() == 1));
        assert_eq!(weak.target().build, crate::build_info::fingerprint());
        // ...and what this build computes from another build's data goes
        // elsewhere than what it computes from its own.
        let mixed = new.own("weak", "w", &[&old_data]);
        assert_ne!(mixed.build, weak.target().build);
        assert_ne!(mixed.build, old_weak.build);
        new.finish(&mixed, &[&old_data]).unwrap();
        assert_eq!(
            new.resolve("weak", "w", &[&old_data], false),
            Resolution::Current(mixed)
        );
        // This build's own instances are never stale.
        assert!(new.stale("data", "d").iter().all(|s| s.found == old_data));
        assert!(new.stale("weak", "w").iter().all(|s| s.found == old_weak));
    }
}
