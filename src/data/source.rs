//! Where a run's images come from: a folder in the public layout, or the
//! built-in synthetic generator (materialised once into a folder and reused).

use super::synth::{generate, SynthConfig, GENERATOR_VERSION};
use crate::build_info::BuildInfo;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// File beside generated synthetic data recording how it was generated.
pub const SYNTH_CONFIG_FILE: &str = "synth.json";

/// Errors while preparing a data folder.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The synthetic generator failed.
    #[error("could not generate synthetic data in '{dir}'")]
    Generate {
        /// Target folder.
        dir: PathBuf,
        /// What went wrong.
        source: super::synth::SynthError,
    },
    /// Reading or writing the folder failed.
    #[error("could not prepare '{path}'")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// The record of generated synthetic data (`synth.json`): generator version,
/// the build that ran the generator, and the settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthRecord {
    /// [`GENERATOR_VERSION`] of the generator that drew the images.
    pub generator_version: u32,
    /// The build that generated them.
    pub build: BuildInfo,
    /// The generator settings.
    pub settings: SynthConfig,
}

/// Which builds' data may be reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Builds {
    /// Only data this build generated.
    This,
    /// Data any build generated (with the same generator version).
    Any,
}

impl SynthRecord {
    /// The record of data this build generates with `settings`.
    pub fn new(settings: &SynthConfig) -> Self {
        Self {
            generator_version: GENERATOR_VERSION,
            build: BuildInfo::current(),
            settings: settings.clone(),
        }
    }

    /// Reads the record of the data in `dir` (`None` when absent or not a
    /// record, as written by an older version).
    pub fn read(dir: &Path) -> Option<Self> {
        let text = std::fs::read_to_string(dir.join(SYNTH_CONFIG_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Whether the recorded data are what this build would generate with
    /// `settings`: same settings and generator version always, same build
    /// unless `builds` is [`Builds::Any`].
    pub fn fits(&self, settings: &SynthConfig, builds: Builds) -> bool {
        self.generator_version == GENERATOR_VERSION
            && self.settings == *settings
            && (builds == Builds::Any || self.build.fingerprint == crate::build_info::fingerprint())
    }
}

/// Makes sure `dir` holds synthetic data generated with exactly `config` by
/// this build's generator.
///
/// Data generated earlier with the same settings and generator version (by
/// this build, or by any build with [`Builds::Any`]) is reused; otherwise the
/// folder's dataset is regenerated. Returns whether it generated anything.
pub fn ensure_synthetic(
    dir: &Path,
    config: &SynthConfig,
    builds: Builds,
) -> Result<bool, SourceError> {
    if SynthRecord::read(dir).is_some_and(|record| record.fits(config, builds)) {
        return Ok(false);
    }
    let record_path = dir.join(SYNTH_CONFIG_FILE);
    // Removed first: an interrupted generation must not look complete.
    match std::fs::remove_file(&record_path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(source) => {
            return Err(SourceError::Io {
                path: record_path,
                source,
            })
        }
    }
    for sub in [super::HARD_DIR, super::WEAK_DIR] {
        let path = dir.join(sub);
        if path.exists() {
            std::fs::remove_dir_all(&path).map_err(|source| SourceError::Io { path, source })?;
        }
    }
    generate(config, dir).map_err(|source| SourceError::Generate {
        dir: dir.to_path_buf(),
        source,
    })?;
    let record = SynthRecord::new(config);
    let text = serde_json::to_string_pretty(&record).expect("synth record serialises");
    // Written last: its presence means the generation completed.
    crate::io::write_atomic(&record_path, text.as_bytes()).map_err(|source| SourceError::Io {
        path: record_path,
        source,
    })?;
    Ok(true)
}

/// The dataset that [`ensure_synthetic`] would write for `config` into
/// `dir`, listed as [`super::layout::load_dataset`] would list it (same
/// paths, labels, slides, kinds and order), without drawing an image: what
/// `ablate plan` splits to count a run's images before the data exists.
pub fn synthetic_listing(config: &SynthConfig, dir: &Path) -> Result<super::Dataset, SourceError> {
    let planned = super::synth::plan(config).map_err(|source| SourceError::Generate {
        dir: dir.to_path_buf(),
        source,
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

    fn tiny() -> SynthConfig {
        SynthConfig {
            size: 32,
            hard_patches: 12,
            hard_slides: 4,
            pool_patches: 6,
            pool_slides: 2,
            ..SynthConfig::default()
        }
    }

    /// Rewrites the record in `dir` with `change` applied.
    fn tamper(dir: &Path, change: impl FnOnce(&mut serde_json::Value)) {
        let path = dir.join(SYNTH_CONFIG_FILE);
        let mut value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        change(&mut value);
        std::fs::write(&path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
    }

    #[test]
    fn data_of_another_generator_version_is_regenerated_even_from_any_build() {
        let dir = tempfile::tempdir().unwrap();
        let config = tiny();
        assert!(ensure_synthetic(dir.path(), &config, Builds::This).unwrap());
        assert!(!ensure_synthetic(dir.path(), &config, Builds::This).unwrap());
        let record = SynthRecord::read(dir.path()).unwrap();
        assert_eq!(record.generator_version, GENERATOR_VERSION);
        assert_eq!(record.build, BuildInfo::current());

        // Made by another build: regenerated, unless any build will do.
        tamper(dir.path(), |v| {
            v["build"]["fingerprint"] = "0123456789abcdef".into()
        });
        assert!(!ensure_synthetic(dir.path(), &config, Builds::Any).unwrap());
        assert!(ensure_synthetic(dir.path(), &config, Builds::This).unwrap());
        assert_eq!(SynthRecord::read(dir.path()).unwrap(), record);

        // Another generator version: always regenerated.
        tamper(dir.path(), |v| {
            v["generator_version"] = (GENERATOR_VERSION + 1).into()
        });
        let stray = dir.path().join(crate::data::HARD_DIR).join("stray.png");
        std::fs::write(&stray, b"x").unwrap();
        assert!(ensure_synthetic(dir.path(), &config, Builds::Any).unwrap());
        assert!(!stray.exists(), "the old images are removed");
        assert_eq!(SynthRecord::read(dir.path()).unwrap(), record);

        // Other settings, or a record in an older format: regenerated.
        let other = SynthConfig {
            seed: 9,
            ..config.clone()
        };
        assert!(ensure_synthetic(dir.path(), &other, Builds::Any).unwrap());
        std::fs::write(
            dir.path().join(SYNTH_CONFIG_FILE),
            serde_json::to_string_pretty(&config).unwrap(),
        )
        .unwrap();
        assert!(SynthRecord::read(dir.path()).is_none());
        assert!(ensure_synthetic(dir.path(), &config, Builds::Any).unwrap());
    }

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
        ensure_synthetic(dir.path(), &config, Builds::This).unwrap();
        let loaded = super::super::layout::load_dataset(dir.path()).unwrap();
        assert_eq!(listed, loaded);
        assert_eq!((listed.hard.len(), listed.pool.len()), (40, 30));
    }
}
