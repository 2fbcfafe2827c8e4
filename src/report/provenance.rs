//! What produced a results folder: the experiment file's text and the facts
//! of `manifest.json` (versions, build, overrides, config hash, start and end).
//!
//! Both files are optional for the report (a folder assembled by hand still
//! gets its tables), but a file that exists and cannot be parsed is an error.

use super::ReportError;
use std::path::{Path, PathBuf};

/// Name of the experiment file copy in a results folder.
pub const EXPERIMENT_FILE: &str = "experiment.toml";

/// Name of the run manifest in a results folder.
pub const MANIFEST_FILE: &str = "manifest.json";

/// The provenance of a results folder.
#[derive(Debug, Clone, Default)]
pub struct Provenance {
    /// Text of `experiment.toml`, if present.
    pub experiment_text: Option<String>,
    /// Path of `experiment.toml`.
    pub experiment_path: PathBuf,
    /// Facts of `manifest.json`, if present.
    pub manifest: Option<ManifestFacts>,
}

/// The manifest fields the report shows (absent fields are `None`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ManifestFacts {
    /// ablate's version.
    pub ablate_version: Option<String>,
    /// candle-core's version.
    pub candle_version: Option<String>,
    /// Id of the change to the vendored candle-core (`None`: unpatched or unknown).
    pub candle_patch: Option<String>,
    /// Git commit the binary was built from.
    pub git_commit: Option<String>,
    /// Hash of the uncommitted changes the binary was built with.
    pub uncommitted: Option<String>,
    /// The build fingerprint.
    pub build_fingerprint: Option<String>,
    /// The `--set` overrides of the run.
    pub overrides: Vec<String>,
    /// Whether the run could reuse stages of other builds.
    pub reuse_stale_stages: bool,
    /// How many stages it reused from other builds.
    pub reused_stages: usize,
    /// Device the run used.
    pub device: Option<String>,
    /// The experiment file that was run.
    pub experiment_file: Option<String>,
    /// Hash of the experiment file's text.
    pub config_hash: Option<String>,
    /// Start time.
    pub started: Option<String>,
    /// End time.
    pub finished: Option<String>,
}

impl Provenance {
    /// Reads `experiment.toml` and `manifest.json` from `dir` when present.
    pub fn read(dir: &Path) -> Result<Self, ReportError> {
        let experiment_path = dir.join(EXPERIMENT_FILE);
        let experiment_text = read_optional(&experiment_path)?;
        let manifest_path = dir.join(MANIFEST_FILE);
        let manifest = match read_optional(&manifest_path)? {
            None => None,
            Some(text) => Some(ManifestFacts::parse(&manifest_path, &text)?),
        };
        Ok(Self {
            experiment_text,
            experiment_path,
            manifest,
        })
    }

    /// The experiment's `name`, if the file has one.
    pub fn experiment_name(&self) -> Option<String> {
        let doc: toml::Table = toml::from_str(self.experiment_text.as_deref()?).ok()?;
        doc.get("name")?.as_str().map(str::to_string)
    }
}

impl ManifestFacts {
    /// Picks the known fields out of the manifest's JSON.
    pub fn parse(path: &Path, text: &str) -> Result<Self, ReportError> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| ReportError::Parse {
                path: path.to_path_buf(),
                line: e.line(),
                message: format!("not valid JSON: {e}"),
            })?;
        let field = |key: &str| match value.get(key) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            Some(serde_json::Value::Null) | None => None,
            Some(other) => Some(other.to_string()),
        };
        let build = |key: &str| match value.get("build").and_then(|b| b.get(key)) {
            Some(serde_json::Value::String(s)) => Some(s.clone()),
            _ => None,
        };
        let overrides = value
            .get("overrides")
            .and_then(|o| o.as_array())
            .map(|items| {
                items
                    .iter()
                    .filter_map(|o| o.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            ablate_version: field("ablate_version"),
            candle_version: field("candle_version"),
            candle_patch: field("candle_patch"),
            git_commit: field("git_commit"),
            uncommitted: build("dirty"),
            build_fingerprint: build("fingerprint"),
            overrides,
            reuse_stale_stages: value
                .get("reuse_stale_stages")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            reused_stages: value
                .get("reused_stages")
                .and_then(|v| v.as_array())
                .map_or(0, Vec::len),
            device: field("device"),
            experiment_file: field("experiment_file"),
            config_hash: field("config_hash"),
            started: field("started"),
            finished: field("finished"),
        })
    }
}

/// The text of `path`, or `None` when it does not exist.
fn read_optional(path: &Path) -> Result<Option<String>, ReportError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(ReportError::Read {
            path: path.to_path_buf(),
            source,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_fields_and_errors() {
        let text = r#"{"ablate_version": "0.1.0", "git_commit": null, "config_hash": "abc", "threads": 4}"#;
        let facts = ManifestFacts::parse(Path::new("m.json"), text).unwrap();
        assert_eq!(facts.ablate_version.as_deref(), Some("0.1.0"));
        assert_eq!(facts.git_commit, None);
        assert_eq!(facts.config_hash.as_deref(), Some("abc"));
        assert!(facts.overrides.is_empty() && facts.build_fingerprint.is_none());
        let text = r#"{"candle_patch": "p1", "build": {"fingerprint": "f1", "dirty": "d1"},
            "overrides": ["training.epochs=3"], "reuse_stale_stages": true,
            "reused_stages": [{"stage": "weak/a/b"}]}"#;
        let facts = ManifestFacts::parse(Path::new("m.json"), text).unwrap();
        assert_eq!(facts.candle_patch.as_deref(), Some("p1"));
        assert_eq!(facts.build_fingerprint.as_deref(), Some("f1"));
        assert_eq!(facts.uncommitted.as_deref(), Some("d1"));
        assert_eq!(facts.overrides, ["training.epochs=3"]);
        assert!(facts.reuse_stale_stages);
        assert_eq!(facts.reused_stages, 1);
        let error = ManifestFacts::parse(Path::new("m.json"), "{\n oops")
            .unwrap_err()
            .to_string();
        assert!(error.contains("'m.json' line 2"), "{error}");
    }

    #[test]
    fn missing_files_are_absent_not_errors() {
        let dir = tempfile::tempdir().unwrap();
        let p = Provenance::read(dir.path()).unwrap();
        assert!(p.experiment_text.is_none() && p.manifest.is_none());
        std::fs::write(dir.path().join(EXPERIMENT_FILE), "name = \"subset\"\n").unwrap();
        assert_eq!(
            Provenance::read(dir.path())
                .unwrap()
                .experiment_name()
                .as_deref(),
            Some("subset")
        );
    }
}
