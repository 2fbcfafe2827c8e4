//! The content-addressed artifact store under `<output>/cache/`.
//!
//! Each stage instance owns `cache/<stage>/<key>/`. Its files are written
//! atomically and a `done` marker is written last, so a stage interrupted at
//! any point (even by `kill -9`) is simply redone on the next run.

use crate::io::write_atomic;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Name of the marker file of a finished stage.
const DONE: &str = "done";

/// Errors reading or writing artifacts, naming the file.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// I/O failed.
    #[error("could not access '{path}': {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A stored artifact could not be parsed (delete its folder to redo the stage).
    #[error("corrupt artifact '{path}': {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        message: String,
    },
}

/// Artifacts of all stages of one experiment.
#[derive(Debug, Clone)]
pub struct ArtifactStore {
    root: PathBuf,
}

impl ArtifactStore {
    /// A store rooted at `root` (created on first write).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The folder of one stage instance.
    pub fn dir(&self, stage: &str, key: &str) -> PathBuf {
        self.root.join(stage).join(key)
    }

    /// Whether a stage instance finished.
    pub fn is_done(&self, stage: &str, key: &str) -> bool {
        self.dir(stage, key).join(DONE).is_file()
    }

    /// Marks a stage instance finished (after all its files are written).
    pub fn mark_done(&self, stage: &str, key: &str) -> Result<(), StoreError> {
        let path = self.dir(stage, key).join(DONE);
        write_atomic(&path, b"").map_err(|source| StoreError::Io { path, source })
    }

    /// Writes a JSON artifact atomically.
    pub fn write_json(
        &self,
        stage: &str,
        key: &str,
        file: &str,
        value: &impl Serialize,
    ) -> Result<(), StoreError> {
        let path = self.dir(stage, key).join(file);
        let bytes = serde_json::to_vec_pretty(value).expect("artifacts serialise");
        write_atomic(&path, &bytes).map_err(|source| StoreError::Io { path, source })
    }

    /// Reads a JSON artifact.
    pub fn read_json<T: DeserializeOwned>(
        &self,
        stage: &str,
        key: &str,
        file: &str,
    ) -> Result<T, StoreError> {
        let path = self.dir(stage, key).join(file);
        read_json(&path)
    }
}

/// Reads and parses a JSON file.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, StoreError> {
    let bytes = std::fs::read(path).map_err(|source| StoreError::Io {
        path: path.into(),
        source,
    })?;
    serde_json::from_slice(&bytes).map_err(|e| StoreError::Corrupt {
        path: path.into(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn done_marker_and_json_roundtrip() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::new(dir.path());
        assert!(!store.is_done("weak", "abc"));
        store
            .write_json("weak", "abc", "x.json", &vec![0.1f64, 1.0 / 3.0])
            .unwrap();
        assert!(
            !store.is_done("weak", "abc"),
            "files alone do not finish a stage"
        );
        store.mark_done("weak", "abc").unwrap();
        assert!(store.is_done("weak", "abc"));
        let back: Vec<f64> = store.read_json("weak", "abc", "x.json").unwrap();
        assert_eq!(back, vec![0.1, 1.0 / 3.0]);
        std::fs::write(store.dir("weak", "abc").join("x.json"), b"{").unwrap();
        let error = store
            .read_json::<Vec<f64>>("weak", "abc", "x.json")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("corrupt artifact") && error.contains("x.json"),
            "{error}"
        );
    }
}
