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

/// The dataset that [`ensure_synthetic`] would write for `config` into
/// `dir`, listed as [`super::layout::load_dataset`] would list it (same
/// paths, labels, slides, kinds and order), without drawing an image: what
/// `ablate plan` splits to count a run's images before the data exists.
pub fn synthetic_listing(config: &SynthConfig, dir: &Path) -> Result<super::Dataset, SourceError> {
    let planned = super::synth::plan(config).map_err(|e| SourceError::Generate {
        dir: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    let (mut hard, mut pool): (Vec<_>, Vec<_>) = planned
        .iter()
        .map(|patch| {
            let entry = super::Patch {
                path: PathBuf::from(patch.path()),
                label: match patch.source {
                    super::Source::Hard => patch.kind.label(),
                    super::Source::Weak => super::Label::Negative,
                },
                slide: patch.slide.clone(),
                kind: Some(patch.kind),
            };
            (patch.source, entry)
        })
        .partition(|(source, _)| *source == super::Source::Hard);
    let strip = |part: &mut Vec<(super::Source, super::Patch)>| {
        let mut patches: Vec<super::Patch> = part.drain(..).map(|(_, p)| p).collect();
        patches.sort_by(|a, b| a.path.cmp(&b.path));
        patches
    };
    Ok(super::Dataset {
        root: dir.to_path_buf(),
        hard: strip(&mut hard),
        pool: strip(&mut pool),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listing_is_what_generating_and_loading_gives() {
        let dir = tempfile::tempdir().unwrap();
        let config = SynthConfig {
            size: 32,
            hard_patches: 40,
            hard_slides: 4,
            pool_patches: 30,
            pool_slides: 3,
            ..SynthConfig::default()
        };
        let listed = synthetic_listing(&config, dir.path()).unwrap();
        ensure_synthetic(dir.path(), &config).unwrap();
        let loaded = super::super::layout::load_dataset(dir.path()).unwrap();
        assert_eq!(listed, loaded);
        assert_eq!((listed.hard.len(), listed.pool.len()), (40, 30));
    }
}
