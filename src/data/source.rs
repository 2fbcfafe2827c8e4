//! Where a run's images come from: a folder in the public layout, or the
//! built-in synthetic generator (materialised once into a folder and reused).

use super::synth::{generate, SynthConfig};
use std::path::{Path, PathBuf};

/// File beside generated synthetic data recording the generator settings.
pub const SYNTH_CONFIG_FILE: &str = "synth.json";

/// Errors while preparing a data folder.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The synthetic generator failed.
    #[error("could not generate synthetic data in '{dir}': {message}")]
    Generate {
        /// Target folder.
        dir: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Reading or writing the folder failed.
    #[error("could not prepare '{path}': {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Makes sure `dir` holds synthetic data generated with exactly `config`.
///
/// Data generated earlier with the same settings is reused; otherwise the
/// folder's dataset is regenerated. Returns whether it generated anything.
pub fn ensure_synthetic(dir: &Path, config: &SynthConfig) -> Result<bool, SourceError> {
    let wanted = serde_json::to_string_pretty(config).expect("synth config serialises");
    let record = dir.join(SYNTH_CONFIG_FILE);
    if std::fs::read_to_string(&record).ok().as_deref() == Some(wanted.as_str()) {
        return Ok(false);
    }
    for sub in [super::HARD_DIR, super::WEAK_DIR] {
        let path = dir.join(sub);
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|source| SourceError::Io { path, source })?;
        }
    }
    generate(config, dir).map_err(|e| SourceError::Generate {
        dir: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    // Written last: its presence means the generation completed.
    crate::io::write_atomic(&record, wanted.as_bytes()).map_err(|source| SourceError::Io {
        path: record,
        source,
    })?;
    Ok(true)
}
