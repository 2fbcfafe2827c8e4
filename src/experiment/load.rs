//! Reading an experiment file into validated cell settings, with errors that
//! name the file, line, column and key path.

use super::config::ExperimentConfig;
use super::matrix::{Assignment, Matrix, MatrixError};
use super::overrides::Override;
use crate::setting::InvalidSetting;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::Value;

/// A problem with an experiment file.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("could not read '{path}': {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// TOML syntax or a key/value of the base settings.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong, with the key path and accepted values where known.
        message: String,
    },
    /// A setting of the file outside its valid range.
    #[error("{}{}: {source}", .path.display(), .line.map(|l| format!(":{l}")).unwrap_or_default())]
    Setting {
        /// The file.
        path: PathBuf,
        /// 1-based line of the key, where it can be found.
        line: Option<usize>,
        /// The setting and what is wrong with it.
        source: InvalidSetting,
    },
    /// A problem in `[matrix]`.
    #[error("{path}: {source}")]
    Matrix {
        /// The file.
        path: PathBuf,
        /// The matrix error.
        source: MatrixError,
    },
    /// A matrix value that does not fit its key.
    #[error("{path}: matrix axis `{key}` = {value}: {message}")]
    AxisValue {
        /// The file.
        path: PathBuf,
        /// The axis key.
        key: String,
        /// The offending value.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// A `--set` override that does not fit the experiment.
    #[error("{path}: --set {text}: {message}")]
    Override {
        /// The file.
        path: PathBuf,
        /// The override as given.
        text: String,
        /// What is wrong, naming the key.
        message: String,
    },
    /// A combination of settings a cell cannot run with.
    #[error("{path}: cell {cell}: {message}")]
    Cell {
        /// The file.
        path: PathBuf,
        /// The cell's assignment.
        cell: String,
        /// What is wrong.
        message: String,
    },
}

/// An experiment file, parsed: base settings, the matrix, and every cell.
#[derive(Debug, Clone)]
pub struct Experiment {
    /// The file it came from.
    pub path: PathBuf,
    /// Experiment name (from the file or its stem).
    pub name: String,
    /// The file's text (kept for the report).
    pub text: String,
    /// The `--set` overrides applied to it, in order.
    pub overrides: Vec<Override>,
    /// Base settings (before axis values).
    pub base: ExperimentConfig,
    /// Axis keys, in a stable order (the columns that tell cells apart).
    pub axis_keys: Vec<String>,
    /// One entry per cell: its axis values and its complete settings.
    pub cells: Vec<(Assignment, ExperimentConfig)>,
}

/// Reads and validates an experiment file.
pub fn load_experiment(path: &Path) -> Result<Experiment, LoadError> {
    load_experiment_with(path, &[])
}

/// Reads an experiment file, applies `overrides` and validates the result.
pub fn load_experiment_with(path: &Path, overrides: &[Override]) -> Result<Experiment, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
        path: path.into(),
        source,
    })?;
    parse_experiment_with(path, &text, overrides)
}

/// Parses experiment text; `path` is used in messages and for the default name.
pub fn parse_experiment(path: &Path, text: &str) -> Result<Experiment, LoadError> {
    parse_experiment_with(path, text, &[])
}

/// Parses experiment text with `overrides` applied to its table before it
/// is validated: the file's own errors name its line and column, the
/// overrides' errors the override.
pub fn parse_experiment_with(
    path: &Path,
    text: &str,
    overrides: &[Override],
) -> Result<Experiment, LoadError> {
    toml::from_str::<ExperimentConfig>(text).map_err(|e| located(path, text, &e))?;
    let mut doc: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| located(path, text, &e))?;
    apply_overrides(path, &mut doc, overrides)?;
    let base = ExperimentConfig::deserialize(Value::Table(doc.clone()))
        .expect("every override was checked");
    let matrix = Matrix::parse(base.matrix.as_ref()).map_err(|source| {
        match overrides
            .iter()
            .rev()
            .find(|o| o.changes_matrix_entry(source.key()))
        {
            Some(o) => override_error(path, o, source.to_string()),
            None => LoadError::Matrix {
                path: path.into(),
                source,
            },
        }
    })?;
    let axes = matrix.axis_keys();
    if let Some((o, axis)) = overrides.iter().find_map(|o| {
        let setting = o.setting()?;
        // The axis replaces the setting, or the table the setting is in;
        // setting a table that holds an axis keeps the axis's values.
        let axis = axes
            .iter()
            .find(|a| **a == setting || setting.starts_with(&format!("{a}.")))?;
        Some((o, axis))
    }) {
        return Err(override_error(
            path,
            o,
            format!(
                "`{axis}` is an axis of [matrix], whose values replace it in every cell; \
                 change the axis instead (--set 'matrix.\"{axis}\"=[...]')"
            ),
        ));
    }
    doc.remove("matrix");
    let name = base.name.clone().unwrap_or_else(|| {
        path.file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "experiment".into())
    });
    let axis_keys = matrix.axis_keys();
    let setting_error = |source: InvalidSetting| LoadError::Setting {
        path: path.into(),
        line: key_line(text, &source.key),
        source,
    };
    // A base setting no axis changes is wrong in every cell: name its line.
    if let Err(CellProblem::Invalid(error)) = settings_for(&doc, &Assignment::new()) {
        if !axis_keys.iter().any(|axis| overlaps(&error.key, axis)) {
            return Err(setting_error(error));
        }
    }
    // Check every axis value on its own, so an error names one key.
    for cell in matrix.expand() {
        for (key, value) in &cell {
            let single: Assignment = [(key.clone(), value.clone())].into();
            let problem = match settings_for(&doc, &single) {
                Ok(_) => continue,
                Err(problem) => problem,
            };
            // A base value another axis replaces is that axis's business.
            if let CellProblem::Invalid(error) = &problem {
                let other_axes = axis_keys.iter().filter(|axis| *axis != key);
                if other_axes
                    .into_iter()
                    .any(|axis| overlaps(&error.key, axis))
                {
                    continue;
                }
            }
            let error = LoadError::AxisValue {
                path: path.into(),
                key: key.clone(),
                value: value.to_string(),
                message: problem.to_string(),
            };
            let axis = matrix.entry_of(key);
            return Err(
                match overrides
                    .iter()
                    .rev()
                    .find(|o| o.changes_matrix_entry(axis))
                {
                    Some(o) => {
                        let text = error.to_string();
                        let prefix = format!("{}: ", path.display());
                        override_error(path, o, text.strip_prefix(&prefix).unwrap_or(&text).into())
                    }
                    None => error,
                },
            );
        }
    }
    let mut cells = Vec::new();
    for assignment in matrix.expand() {
        let config = settings_for(&doc, &assignment).map_err(|problem| LoadError::Cell {
            path: path.into(),
            cell: describe(&assignment),
            message: problem.to_string(),
        })?;
        cells.push((assignment, config));
    }
    if let Some(report) = &base.report {
        crate::report::options::validate_table(report, cells.len()).map_err(setting_error)?;
    }
    Ok(Experiment {
        path: path.into(),
        name,
        text: text.to_string(),
        overrides: overrides.to_vec(),
        base,
        axis_keys,
        cells,
    })
}

/// Applies the overrides in order; an override that breaks the settings is
/// an error naming it: a key or value the file could not have either, or a
/// check of the base settings that held before it.
fn apply_overrides(
    path: &Path,
    doc: &mut toml::Table,
    overrides: &[Override],
) -> Result<(), LoadError> {
    let mut base_valid = settings_for(doc, &Assignment::new()).is_ok();
    for o in overrides {
        o.apply(doc)
            .map_err(|e| override_error(path, o, e.to_string()))?;
        ExperimentConfig::deserialize(Value::Table(doc.clone())).map_err(|e| {
            let mut message = with_suggestion(e.message());
            let (parents, last) = o.path.split_at(o.path.len() - 1);
            if message.contains(&format!("unknown field `{}`", last[0])) {
                let key = if parents.is_empty() {
                    last[0].clone()
                } else {
                    format!("{}.{}", parents.join("."), last[0])
                };
                message = message.replacen(
                    &format!("unknown field `{}`", last[0]),
                    &format!("unknown key `{key}`"),
                    1,
                );
            } else if !message.contains('`') {
                message = format!("`{}`: {message}", o.key());
            }
            override_error(path, o, message)
        })?;
        match settings_for(doc, &Assignment::new()) {
            Ok(_) => base_valid = true,
            Err(problem) if base_valid => return Err(override_error(path, o, problem.to_string())),
            Err(_) => {}
        }
    }
    Ok(())
}

fn override_error(path: &Path, o: &Override, message: String) -> LoadError {
    LoadError::Override {
        path: path.into(),
        text: o.text.clone(),
        message,
    }
}

/// `key=value, ...` of an assignment, for messages and labels.
pub fn describe(assignment: &Assignment) -> String {
    if assignment.is_empty() {
        return "(base)".into();
    }
    assignment
        .iter()
        .map(|(k, v)| format!("{k}={}", plain(v)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A value without TOML quoting for strings.
pub fn plain(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Whether two dotted keys name the same setting or one contains the other.
fn overlaps(a: &str, b: &str) -> bool {
    let within = |inner: &str, outer: &str| {
        inner
            .strip_prefix(outer)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
    };
    within(a, b) || within(b, a)
}

/// Why a cell's settings are not usable.
#[derive(Debug)]
enum CellProblem {
    /// The document does not deserialise (unknown key, wrong type).
    Parse(String),
    /// A value outside its range.
    Invalid(InvalidSetting),
}

impl std::fmt::Display for CellProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CellProblem::Parse(message) => f.write_str(message),
            CellProblem::Invalid(error) => error.fmt(f),
        }
    }
}

/// The base document with `assignment` applied, deserialised and validated.
fn settings_for(
    doc: &toml::Table,
    assignment: &Assignment,
) -> Result<ExperimentConfig, CellProblem> {
    let mut doc = doc.clone();
    for (key, value) in assignment {
        set_path(&mut doc, key, value.clone()).map_err(CellProblem::Parse)?;
    }
    let config = ExperimentConfig::deserialize(Value::Table(doc))
        .map_err(|e| CellProblem::Parse(with_suggestion(e.message())))?;
    config.validate().map_err(CellProblem::Invalid)?;
    Ok(config)
}

/// The 1-based line that sets dotted `key` in TOML `text`: under its
/// `[table]` header (or a parent's, with a dotted key), or as a dotted key
/// at the top. `None` when it is not written there (a default, or a form
/// this simple scan does not follow, such as an inline table).
fn key_line(text: &str, key: &str) -> Option<usize> {
    let mut section = String::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with("[[") {
            section = "\u{0}".into(); // arrays of tables hold no settings
            continue;
        }
        if let Some(header) = line.strip_prefix('[') {
            let header = header.split(']').next().unwrap_or_default();
            section = unquote_path(header);
            continue;
        }
        let Some((name, _)) = line.split_once('=') else {
            continue;
        };
        if line.starts_with('#') {
            continue;
        }
        let name = unquote_path(name);
        let full = if section.is_empty() {
            name
        } else {
            format!("{section}.{name}")
        };
        if full == key {
            return Some(index + 1);
        }
    }
    None
}

/// A TOML key path without spaces around dots or quotes around parts.
fn unquote_path(path: &str) -> String {
    path.split('.')
        .map(|part| part.trim().trim_matches(|c| c == '"' || c == '\''))
        .collect::<Vec<_>>()
        .join(".")
}

/// Sets a dotted key, creating tables on the way.
fn set_path(doc: &mut toml::Table, key: &str, value: Value) -> Result<(), String> {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().expect("split yields at least one part");
    let mut table = doc;
    for part in parts {
        let entry = table
            .entry(part.to_string())
            .or_insert_with(|| Value::Table(toml::Table::new()));
        table = entry
            .as_table_mut()
            .ok_or_else(|| format!("`{part}` in `{key}` is not a table"))?;
    }
    table.insert(last.to_string(), value);
    Ok(())
}

/// A toml error placed at its line and column, with the key path and a suggestion.
fn located(path: &Path, text: &str, error: &toml::de::Error) -> LoadError {
    let (line, column) = error
        .span()
        .map_or((1, 1), |span| line_column(text, span.start));
    let mut message = with_suggestion(error.message());
    if let Some(section) = section_at(text, line) {
        message = message.replacen("unknown field `", &format!("unknown key `{section}."), 1);
    }
    LoadError::Invalid {
        path: path.into(),
        line,
        column,
        message,
    }
}

fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, column)
}

/// The `[table]` header in force at a 1-based line.
fn section_at(text: &str, line: usize) -> Option<String> {
    text.lines()
        .take(line)
        .filter_map(|l| {
            let l = l.trim();
            (l.starts_with('[') && !l.starts_with("[["))
                .then(|| l.trim_matches(|c| c == '[' || c == ']').trim().to_string())
        })
        .last()
}

/// Adds "did you mean `x`?" to serde's unknown-field and unknown-variant messages.
fn with_suggestion(message: &str) -> String {
    let message = message.trim().to_string();
    let Some(found) = between(&message, "unknown field `", "`")
        .or_else(|| between(&message, "unknown variant `", "`"))
    else {
        return message;
    };
    let candidates: Vec<&str> = message
        .split("expected")
        .nth(1)
        .map(|rest| rest.split('`').skip(1).step_by(2).collect())
        .unwrap_or_default();
    let best = candidates
        .iter()
        .map(|c| (strsim::levenshtein(found, c), *c))
        .filter(|(distance, c)| *distance <= (c.len() / 3).max(2))
        .min();
    match best {
        Some((_, c)) => format!("{message}; did you mean `{c}`?"),
        None => message,
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = text.find(start)? + start.len();
    let to = text[from..].find(end)? + from;
    Some(&text[from..to])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Experiment, LoadError> {
        parse_experiment(Path::new("exp.toml"), text)
    }

    #[test]
    fn cells_get_axis_values() {
        let e = parse(
            "seed = 5\n[training]\nepochs = 2\n[matrix]\n\"mining.strategy\" = [\"none\", \"random\"]\n\"training.epochs\" = [1, 3]\nseeds = 2\n",
        )
        .unwrap();
        assert_eq!(e.name, "exp");
        assert_eq!(e.cells.len(), 8);
        let (assignment, config) = &e.cells[7];
        assert_eq!(
            describe(assignment),
            "mining.strategy=random, replicate.seed=1, training.epochs=3"
        );
        assert_eq!(config.training.epochs, 3);
        assert_eq!(config.replicate.seed, 1);
        assert_eq!(config.seed, 5);
        assert_eq!(config.mining.strategy, crate::mining::Strategy::Random);
    }

    #[test]
    fn unknown_key_names_line_key_and_suggestion() {
        let error = parse("seed = 1\n\n[mining]\nstratgy = \"knn-l2\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("exp.toml:4:1: unknown key `mining.stratgy`"),
            "{error}"
        );
        assert!(error.contains("did you mean `strategy`?"), "{error}");
    }

    #[test]
    fn wrong_type_names_the_line() {
        let error = parse("[training]\nepochs = \"many\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("exp.toml:2:"), "{error}");
        assert!(error.contains("invalid type"), "{error}");
    }

    #[test]
    fn bad_axis_values_name_the_axis() {
        let error = parse("[matrix]\n\"mining.strategy\" = [\"knn-l3\"]\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("matrix axis `mining.strategy` = \"knn-l3\""),
            "{error}"
        );
        assert!(error.contains("did you mean `knn-l2`?"), "{error}");
        let error = parse("[matrix]\n\"mining.nope\" = [1]\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("matrix axis `mining.nope`") && error.contains("unknown field `nope`"),
            "{error}"
        );
        let error = parse("[matrix]\n\"training.epochs\" = []\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("`training.epochs` must be a non-empty list"),
            "{error}"
        );
    }

    fn with(text: &str, sets: &[&str]) -> Result<Experiment, LoadError> {
        let overrides: Vec<Override> = sets.iter().map(|s| s.parse().unwrap()).collect();
        parse_experiment_with(Path::new("exp.toml"), text, &overrides)
    }

    #[test]
    fn overrides_change_settings_and_axes() {
        let text = "seed = 5\n[training]\nepochs = 2\n[matrix]\n\"mining.strategy\" = [\"none\", \"random\"]\n";
        let e = with(text, &["training.epochs=4", "matrix.seeds=3"]).unwrap();
        assert_eq!(e.cells.len(), 6);
        assert!(e.cells.iter().all(|(_, c)| c.training.epochs == 4));
        assert_eq!(e.base.training.epochs, 4);
        assert_eq!(e.overrides.len(), 2);
        assert_eq!(e.text, text, "the file's text is kept as written");
        let e = with(text, &["matrix.\"mining.strategy\"=[\"knn-l2\"]"]).unwrap();
        assert_eq!(e.cells.len(), 1);
        assert_eq!(e.cells[0].1.mining.strategy, crate::mining::Strategy::KnnL2);
        // A table holding an axis may be set; the axis keeps its values.
        let e = with(
            "[matrix]\n\"data.synthetic.seed\" = [1, 2]\n",
            &["data.synthetic={ size = 32 }"],
        )
        .unwrap();
        let seeds: Vec<u64> = e.cells.iter().map(|(_, c)| c.data.synthetic.seed).collect();
        assert_eq!(seeds, [1, 2]);
        assert!(e.cells.iter().all(|(_, c)| c.data.synthetic.size == 32));
    }

    #[test]
    fn override_errors_name_the_override_and_file_errors_their_line() {
        let text = "[training]\nepochs = 2\n[matrix]\n\"mining.strategy\" = [\"none\"]\n";
        let error = |sets: &[&str]| with(text, sets).unwrap_err().to_string();
        assert_eq!(
            error(&["training.epochs=0"]),
            "exp.toml: --set training.epochs=0: `training.epochs` = 0: expected at least 1"
        );
        let e = error(&["training.epoch=3"]);
        assert!(
            e.starts_with("exp.toml: --set training.epoch=3: unknown key `training.epoch`")
                && e.contains("did you mean `epochs`?"),
            "{e}"
        );
        let e = error(&["mining.strategy=random"]);
        assert!(
            e.contains("`mining.strategy` is an axis of [matrix]"),
            "{e}"
        );
        let e = error(&["matrix.\"mining.strategy\"=[]"]);
        assert!(
            e.starts_with("exp.toml: --set matrix.\"mining.strategy\"=[]: matrix axis"),
            "{e}"
        );
        let e = error(&["matrix.\"training.epochs\"=[0]"]);
        assert!(
            e.starts_with(
                "exp.toml: --set matrix.\"training.epochs\"=[0]: matrix axis `training.epochs` = 0"
            ),
            "{e}"
        );
        // The file's own errors keep their line, whatever the overrides.
        let e = with("[training]\nepochs = \"two\"\n", &["seed=1"])
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("exp.toml:2:"), "{e}");
    }

    #[test]
    fn conflicting_cell_settings_are_reported_per_cell() {
        let error =
            parse("[data]\npos_fraction = 0.5\n[matrix]\n\"data.train_fraction\" = [0.3]\n")
                .unwrap_err()
                .to_string();
        assert!(
            error.contains("at most one of data.pos_fraction"),
            "{error}"
        );
    }

    /// Loads `text`, expecting a setting error at `line` naming `key`.
    fn setting_error(text: &str, line: usize, key: &str, detail: &str) {
        let error = parse(text).unwrap_err();
        let message = error.to_string();
        match &error {
            LoadError::Setting {
                line: found,
                source,
                ..
            } => {
                assert_eq!(*found, Some(line), "{message}");
                assert_eq!(source.key, key, "{message}");
            }
            other => panic!("expected a setting error, got {other:?}"),
        }
        assert!(
            message.starts_with(&format!("exp.toml:{line}: `{key}`")) && message.contains(detail),
            "{message}"
        );
    }

    #[test]
    fn data_settings_are_checked() {
        setting_error(
            "[data]\nimage_size = 0\n",
            2,
            "data.image_size",
            "between 1 and",
        );
        setting_error(
            "seed = 1\n[data]\npos_fraction = 1.5\n",
            3,
            "data.pos_fraction",
            "a fraction in (0, 1]",
        );
        setting_error(
            "[data]\nneg_pos_ratio = -2.0\n",
            2,
            "data.neg_pos_ratio",
            "a positive ratio",
        );
    }

    #[test]
    fn split_settings_are_checked() {
        setting_error(
            "[data.split]\nvalid_fraction = 1.0\n",
            2,
            "data.split.valid_fraction",
            "strictly between 0 and 1",
        );
        setting_error(
            "[data]\nsplit.folds = 1\n",
            2,
            "data.split.folds",
            "at least 2 folds",
        );
    }

    #[test]
    fn synthetic_settings_are_checked() {
        setting_error(
            "[data.synthetic]\nsize = 16\n",
            2,
            "data.synthetic.size",
            "between 32 and",
        );
    }

    #[test]
    fn model_settings_are_checked() {
        setting_error(
            "[model]\nname = \"resnet19\"\n",
            2,
            "model.name",
            "\"resnet19\"",
        );
    }

    #[test]
    fn training_settings_are_checked() {
        setting_error(
            "[training]\nepochs = 3\nlr = 0.0\n",
            3,
            "training.lr",
            "a positive number",
        );
    }

    #[test]
    fn augmentation_settings_are_checked() {
        setting_error(
            "[training]\nepochs = 3\n\n[training.augmentation]\nflip_p = 3\n",
            5,
            "training.augmentation.flip_p",
            "= 3: expected a probability in [0, 1]",
        );
        setting_error(
            "[training]\naugmentation.blur_limit = 4\n",
            2,
            "training.augmentation.blur_limit",
            "an odd number",
        );
    }

    #[test]
    fn mining_settings_are_checked() {
        setting_error(
            "[mining]\nfp_threshold = -0.1\n",
            2,
            "mining.fp_threshold",
            "a probability",
        );
        let error = parse("[mining]\noverlapping_pool_slides = \"dorp\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.starts_with("exp.toml:2:") && error.contains("did you mean `drop`?"),
            "{error}"
        );
    }

    #[test]
    fn device_settings_are_checked() {
        setting_error("device = \"gpu\"\n", 1, "device", "\"gpu\"");
    }

    #[test]
    fn report_settings_are_checked() {
        setting_error(
            "[report]\nmetrics = [\"aurco\"]\n",
            2,
            "report.metrics",
            "expected metric names",
        );
        // Two cells: 0 and 1.
        setting_error(
            "[matrix]\n\"mining.strategy\" = [\"none\", \"random\"]\n[report]\nroc_cell = 2\n",
            4,
            "report.roc_cell",
            "from 0 to 1",
        );
    }

    #[test]
    fn matrix_values_are_checked_against_their_ranges() {
        let error = parse("[matrix]\n\"training.augmentation.flip_p\" = [0.5, 3.0]\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("matrix axis `training.augmentation.flip_p` = 3.0")
                && error.contains("expected a probability in [0, 1]"),
            "{error}"
        );
        // A base value that every cell replaces is not used, so not an error.
        let e =
            parse("[training]\nepochs = 0\n[matrix]\n\"training.epochs\" = [1, 2]\nseeds = 2\n")
                .unwrap();
        assert_eq!(e.cells.len(), 4);
        let error = parse("[matrix]\nfolds = 3\n").unwrap_err().to_string();
        assert!(error.contains("`data.split.folds` is not set"), "{error}");
    }

    #[test]
    fn the_shipped_experiments_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|e| e == "toml"))
            .collect();
        files.sort();
        assert!(files.len() >= 8, "{files:?}");
        for file in &files {
            if let Err(error) = load_experiment(file) {
                panic!("{error}");
            }
        }
        // The reference run is the first cell of its file: patch split,
        // per-epoch schedule, last epoch; the paper's method is the last
        // configuration.
        use crate::data::split::SplitKind;
        use crate::train::checkpoint::Checkpoint;
        use crate::train::schedule::ScheduleKind;
        let e = load_experiment(&dir.join("paper-reference-run.toml")).unwrap();
        assert_eq!(e.cells.len(), 72);
        let reference = &e.cells[0].1;
        assert_eq!(reference.data.split.kind, SplitKind::Patch);
        assert_eq!(reference.training.schedule, ScheduleKind::Reference);
        assert_eq!(reference.training.checkpoint, Checkpoint::LastEpoch);
        let paper = &e.cells[71].1;
        assert_eq!(paper.data.split.kind, SplitKind::Slide);
        assert_eq!(paper.training.schedule, ScheduleKind::Cosine);
        assert_eq!(paper.training.checkpoint, Checkpoint::BestValidLoss);
    }

    #[test]
    fn schedule_and_checkpoint_choices_train_their_own_weak_models() {
        // Stage keys hash the whole training section, so cells that differ
        // only in these choices never share a cached weak model.
        let e = parse(
            "[matrix]\n\"training.schedule\" = [\"cosine\", \"reference\"]\n\"training.checkpoint\" = [\"best-valid-loss\", \"last-epoch\"]\n",
        )
        .unwrap();
        let keys: std::collections::BTreeSet<String> = e
            .cells
            .iter()
            .map(|(_, config)| crate::runner::keys::StageKeys::of(config).weak)
            .collect();
        assert_eq!(keys.len(), 4);
    }
}
