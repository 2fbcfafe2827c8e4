//! Reading an experiment file into validated cell settings, with errors that
//! name the file, line, column and key path.

use super::config::ExperimentConfig;
use super::matrix::{Assignment, Matrix, MatrixError};
use super::overrides::Override;
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
    // Check every axis value on its own first, so an error names one key.
    for cell in matrix.expand() {
        for (key, value) in &cell {
            let single: Assignment = [(key.clone(), value.clone())].into();
            settings_for(&doc, &single).map_err(|message| {
                let error = LoadError::AxisValue {
                    path: path.into(),
                    key: key.clone(),
                    value: value.to_string(),
                    message,
                };
                let axis = matrix.entry_of(key);
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
                }
            })?;
        }
    }
    let mut cells = Vec::new();
    for assignment in matrix.expand() {
        let config = settings_for(&doc, &assignment).map_err(|message| LoadError::Cell {
            path: path.into(),
            cell: describe(&assignment),
            message,
        })?;
        cells.push((assignment, config));
    }
    Ok(Experiment {
        path: path.into(),
        name,
        text: text.to_string(),
        overrides: overrides.to_vec(),
        base,
        axis_keys: matrix.axis_keys(),
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
            Err(message) if base_valid => return Err(override_error(path, o, message)),
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

/// The base document with `assignment` applied, deserialised and validated.
fn settings_for(doc: &toml::Table, assignment: &Assignment) -> Result<ExperimentConfig, String> {
    let mut doc = doc.clone();
    for (key, value) in assignment {
        set_path(&mut doc, key, value.clone())?;
    }
    let config = ExperimentConfig::deserialize(Value::Table(doc))
        .map_err(|e| with_suggestion(e.message()))?;
    config.training.validate()?;
    config.data.subsample()?;
    crate::device::DeviceSpec::parse(&config.device).map_err(|e| format!("device: {e}"))?;
    match config.data.split.folds {
        None if config.replicate.fold != 0 => {
            Err("the matrix has fold replicates but data.split.folds is not set".to_string())
        }
        Some(k) if config.replicate.fold >= k => Err(format!(
            "fold {} does not exist: data.split.folds = {k}",
            config.replicate.fold
        )),
        _ => Ok(config),
    }
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
            "exp.toml: --set training.epochs=0: training.epochs must be at least 1"
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
}
