//! Reading `results.csv`: one row per cell and model, grouped into
//! configurations.
//!
//! A *configuration* is one assignment of the experiment's axis columns (the
//! dotted config keys between `cell` and `seed`); the cells of one
//! configuration differ only in their replicate (seed, fold). Everything the
//! report computes is keyed by configuration, model and replicate, so this
//! module resolves those once. Empty fields are missing values (NaN), never
//! errors: failed cells have no metrics.

use super::ReportError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Columns every `results.csv` has, besides the axis and numeric columns.
const FIXED_COLUMNS: [&str; 9] = [
    "cell",
    "seed",
    "fold",
    "model",
    "strategy",
    "num_query",
    "status",
    "error",
    "trained",
];

/// Axis key of the mining strategy.
pub const STRATEGY_AXIS: &str = "mining.strategy";

/// Prefix of the axis keys that only concern mining (irrelevant without it).
pub const MINING_PREFIX: &str = "mining.";

/// Which model of a cell a row describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Model {
    /// Trained on the hard-labeled training split only.
    Weak,
    /// Trained with the mined negatives added (equal to the weak model
    /// when nothing was mined).
    Strong,
}

impl Model {
    /// Both models, weak first.
    pub const BOTH: [Model; 2] = [Model::Weak, Model::Strong];

    /// Name as written in the CSV files.
    pub fn name(self) -> &'static str {
        match self {
            Model::Weak => "weak",
            Model::Strong => "strong",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "weak" => Some(Model::Weak),
            "strong" => Some(Model::Strong),
            _ => None,
        }
    }
}

/// A seed/fold replicate; `fold` is empty without folds.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Replicate {
    /// The training seed.
    pub seed: String,
    /// The fold (empty when the experiment has no folds).
    pub fold: String,
}

impl Replicate {
    /// "seed 1" or "seed 1, fold 2".
    pub fn label(&self) -> String {
        if self.fold.is_empty() {
            format!("seed {}", self.seed)
        } else {
            format!("seed {}, fold {}", self.seed, self.fold)
        }
    }
}

/// One assignment of the axis columns.
#[derive(Debug, Clone, PartialEq)]
pub struct Configuration {
    /// Value of each axis column, in the table's axis order.
    pub values: Vec<String>,
    /// The mining strategy of its cells.
    pub strategy: String,
}

/// One row of `results.csv`.
#[derive(Debug, Clone)]
pub struct ResultRow {
    /// Line in the file (1-based, header = line 1).
    pub line: u64,
    /// Cell index.
    pub cell: usize,
    /// Index into [`ResultsTable::configurations`].
    pub config: usize,
    /// Seed and fold.
    pub replicate: Replicate,
    /// Weak or strong model.
    pub model: Model,
    /// Mining strategy.
    pub strategy: String,
    /// Whether the cell finished (`status` = ok).
    pub ok: bool,
    /// The error of a failed cell.
    pub error: String,
    /// Whether this model was trained (false for the strong row of `none`).
    pub trained: bool,
    /// Numeric columns, aligned with [`ResultsTable::numeric`] (NaN = missing).
    values: Vec<f64>,
}

/// The parsed `results.csv`.
#[derive(Debug, Clone)]
pub struct ResultsTable {
    /// The file it came from.
    pub path: PathBuf,
    /// Axis columns (dotted config keys), in file order.
    pub axes: Vec<String>,
    /// Numeric columns (metrics, counts), in file order.
    pub numeric: Vec<String>,
    /// Distinct configurations, in order of first appearance (matrix order).
    pub configurations: Vec<Configuration>,
    /// All rows, in file order.
    pub rows: Vec<ResultRow>,
    numeric_index: HashMap<String, usize>,
}

impl ResultsTable {
    /// Reads and parses `path`.
    pub fn read(path: &Path) -> Result<Self, ReportError> {
        let bytes = std::fs::read(path).map_err(|source| ReportError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &bytes)
    }

    /// Parses the text of a `results.csv` (`path` is only named in errors).
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self, ReportError> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(bytes);
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| csv_error(path, &e))?
            .iter()
            .map(str::to_string)
            .collect();
        let columns = Columns::locate(path, &header)?;
        let axes = header[1..columns.seed].to_vec();
        let numeric: Vec<String> = columns.numeric.iter().map(|&i| header[i].clone()).collect();
        let numeric_index = numeric
            .iter()
            .enumerate()
            .map(|(i, name)| (name.clone(), i))
            .collect();
        let mut table = ResultsTable {
            path: path.to_path_buf(),
            axes,
            numeric,
            configurations: Vec::new(),
            rows: Vec::new(),
            numeric_index,
        };
        for record in reader.records() {
            let record = record.map_err(|e| csv_error(path, &e))?;
            let row = table.parse_row(&columns, &header, &record)?;
            table.rows.push(row);
        }
        if table.rows.is_empty() {
            return Err(ReportError::Empty {
                path: path.to_path_buf(),
            });
        }
        Ok(table)
    }

    /// Parses one record and registers its configuration.
    fn parse_row(
        &mut self,
        columns: &Columns,
        header: &[String],
        record: &csv::StringRecord,
    ) -> Result<ResultRow, ReportError> {
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let field = |i: usize| record.get(i).unwrap_or("").trim();
        let invalid = |column: &str, message: String| ReportError::Parse {
            path: self.path.clone(),
            line: line as usize,
            message: format!("column `{column}`: {message}"),
        };
        let cell = field(0)
            .parse::<usize>()
            .map_err(|_| invalid("cell", format!("'{}' is not a cell index", field(0))))?;
        let model = Model::parse(field(columns.model)).ok_or_else(|| {
            invalid(
                "model",
                format!("'{}' is neither `weak` nor `strong`", field(columns.model)),
            )
        })?;
        let status = field(columns.status);
        let ok = match status {
            "ok" => true,
            "failed" => false,
            other => {
                return Err(invalid(
                    "status",
                    format!("'{other}' is neither `ok` nor `failed`"),
                ))
            }
        };
        let trained = match field(columns.trained) {
            "true" => true,
            "false" | "" => false,
            other => {
                return Err(invalid(
                    "trained",
                    format!("'{other}' is neither `true` nor `false`"),
                ))
            }
        };
        let mut values = Vec::with_capacity(columns.numeric.len());
        for &i in &columns.numeric {
            values.push(parse_number(field(i)).map_err(|m| invalid(&header[i], m))?);
        }
        let axis_values: Vec<String> = (1..columns.seed).map(|i| field(i).to_string()).collect();
        let strategy = field(columns.strategy).to_string();
        let config = self.configuration_index(axis_values, &strategy);
        Ok(ResultRow {
            line,
            cell,
            config,
            replicate: Replicate {
                seed: field(columns.seed).to_string(),
                fold: field(columns.fold).to_string(),
            },
            model,
            strategy,
            ok,
            error: field(columns.error).to_string(),
            trained,
            values,
        })
    }

    /// The index of the configuration with these axis values, added if new.
    fn configuration_index(&mut self, values: Vec<String>, strategy: &str) -> usize {
        if let Some(i) = self.configurations.iter().position(|c| c.values == values) {
            return i;
        }
        self.configurations.push(Configuration {
            values,
            strategy: strategy.to_string(),
        });
        self.configurations.len() - 1
    }

    /// Whether the table has a numeric column `name`.
    pub fn has_column(&self, name: &str) -> bool {
        self.numeric_index.contains_key(name)
    }

    /// The value of numeric column `name` in `row` (NaN when missing or unknown).
    pub fn value(&self, row: &ResultRow, name: &str) -> f64 {
        self.numeric_index
            .get(name)
            .map(|&i| row.values[i])
            .unwrap_or(f64::NAN)
    }

    /// Position of an axis column.
    pub fn axis_index(&self, key: &str) -> Option<usize> {
        self.axes.iter().position(|a| a == key)
    }

    /// Rows of one configuration and model, in file order.
    pub fn rows_of(&self, config: usize, model: Model) -> impl Iterator<Item = &ResultRow> {
        self.rows
            .iter()
            .filter(move |r| r.config == config && r.model == model)
    }

    /// Finished rows of one configuration and model.
    pub fn ok_rows_of(&self, config: usize, model: Model) -> impl Iterator<Item = &ResultRow> {
        self.rows_of(config, model).filter(|r| r.ok)
    }

    /// Whether any finished strong row of `config` was trained.
    pub fn strong_trained(&self, config: usize) -> bool {
        self.ok_rows_of(config, Model::Strong).any(|r| r.trained)
    }

    /// Distinct replicates, in order of first appearance.
    pub fn replicates(&self) -> Vec<Replicate> {
        let mut seen: Vec<Replicate> = Vec::new();
        for row in &self.rows {
            if !seen.contains(&row.replicate) {
                seen.push(row.replicate.clone());
            }
        }
        seen
    }

    /// Distinct strategies, in the fixed order of [`strategy_rank`].
    pub fn strategies(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for config in &self.configurations {
            if !names.contains(&config.strategy) {
                names.push(config.strategy.clone());
            }
        }
        names.sort_by(|a, b| strategy_rank(a).cmp(&strategy_rank(b)).then(a.cmp(b)));
        names
    }

    /// The axis values of a configuration as `key=value` pairs, leaving out
    /// axes that never vary (they add nothing to a label).
    pub fn config_label(&self, config: usize) -> String {
        let parts: Vec<String> = self
            .varying_axes()
            .into_iter()
            .map(|i| {
                format!(
                    "{}={}",
                    self.axes[i],
                    display_value(&self.configurations[config].values[i])
                )
            })
            .collect();
        if parts.is_empty() {
            "all cells".to_string()
        } else {
            parts.join(", ")
        }
    }

    /// Like [`Self::config_label`] without the unset (default) axes: short
    /// enough for a figure title.
    pub fn short_label(&self, config: usize) -> String {
        let values = &self.configurations[config].values;
        let parts: Vec<String> = self
            .varying_axes()
            .into_iter()
            .filter(|&i| !values[i].is_empty())
            .map(|i| format!("{}={}", self.axes[i], values[i]))
            .collect();
        if parts.is_empty() {
            "default settings".to_string()
        } else {
            parts.join(", ")
        }
    }

    /// Axes with more than one distinct value.
    pub fn varying_axes(&self) -> Vec<usize> {
        (0..self.axes.len())
            .filter(|&i| {
                let first = &self.configurations[0].values[i];
                self.configurations.iter().any(|c| &c.values[i] != first)
            })
            .collect()
    }

    /// Distinct cell indices of finished cells, ascending.
    pub fn ok_cells(&self) -> Vec<usize> {
        let mut cells: Vec<usize> = self.rows.iter().filter(|r| r.ok).map(|r| r.cell).collect();
        cells.sort_unstable();
        cells.dedup();
        cells
    }

    /// Distinct cell indices of failed cells, ascending.
    pub fn failed_cells(&self) -> Vec<usize> {
        let mut cells: Vec<usize> = self.rows.iter().filter(|r| !r.ok).map(|r| r.cell).collect();
        cells.sort_unstable();
        cells.dedup();
        cells
    }
}

/// Sort key of a strategy name: the order of the crate's strategy list
/// (`none` first, as the baseline), unknown names last.
pub fn strategy_rank(name: &str) -> usize {
    crate::mining::strategy::Strategy::ALL
        .iter()
        .position(|s| s.name() == name)
        .unwrap_or(usize::MAX)
}

/// Axes whose set values are all numbers, with at least two distinct ones.
pub fn numeric_axes(table: &ResultsTable) -> Vec<usize> {
    (0..table.axes.len())
        .filter(|&i| table.axes[i] != STRATEGY_AXIS)
        .filter(|&i| {
            let mut values: Vec<f64> = Vec::new();
            for config in &table.configurations {
                let text = &config.values[i];
                if text.is_empty() {
                    continue;
                }
                match text.parse::<f64>() {
                    Ok(v) if v.is_finite() => values.push(v),
                    _ => return false,
                }
            }
            values.sort_by(f64::total_cmp);
            values.dedup();
            values.len() >= 2
        })
        .collect()
}

/// An axis value as shown to readers: empty (the key was unset) as "default".
pub fn display_value(value: &str) -> &str {
    if value.is_empty() {
        "default"
    } else {
        value
    }
}

/// Where the fixed columns are.
struct Columns {
    seed: usize,
    fold: usize,
    model: usize,
    strategy: usize,
    status: usize,
    error: usize,
    trained: usize,
    numeric: Vec<usize>,
}

impl Columns {
    fn locate(path: &Path, header: &[String]) -> Result<Self, ReportError> {
        let find = |name: &str| {
            header
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| ReportError::MissingColumn {
                    path: path.to_path_buf(),
                    column: name.to_string(),
                })
        };
        if header.first().map(String::as_str) != Some("cell") {
            return Err(ReportError::MissingColumn {
                path: path.to_path_buf(),
                column: "cell".into(),
            });
        }
        let columns = Columns {
            seed: find("seed")?,
            fold: find("fold")?,
            model: find("model")?,
            strategy: find("strategy")?,
            status: find("status")?,
            error: find("error")?,
            trained: find("trained")?,
            numeric: Vec::new(),
        };
        find("num_query")?;
        // Everything after the fixed block that is not a fixed column is numeric.
        let numeric = (columns.seed..header.len())
            .filter(|&i| !FIXED_COLUMNS.contains(&header[i].as_str()))
            .collect();
        Ok(Columns { numeric, ..columns })
    }
}

/// Parses a numeric field; empty is missing (NaN).
pub fn parse_number(text: &str) -> Result<f64, String> {
    if text.is_empty() {
        return Ok(f64::NAN);
    }
    text.parse::<f64>()
        .map_err(|_| format!("'{text}' is not a number"))
}

/// A CSV syntax error, with its line when known.
pub(crate) fn csv_error(path: &Path, error: &csv::Error) -> ReportError {
    let line = error.position().map(|p| p.line() as usize).unwrap_or(0);
    ReportError::Parse {
        path: path.to_path_buf(),
        line,
        message: error.to_string(),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Header of a results table with two axes.
    pub const HEADER: &str = "cell,data.pos_fraction,mining.strategy,seed,fold,model,strategy,num_query,status,error,n_test,loss,auroc,auprc,sensitivity,specificity,precision,f1,accuracy,tp,fp,tn,fn,false_positives,mined,mimic_fraction,train_size,best_epoch,trained";

    /// One result line: only auroc, auprc, sensitivity, specificity and f1 are set.
    pub fn line(
        cell: usize,
        pos: &str,
        strategy: &str,
        seed: u32,
        model: &str,
        m: [f64; 5],
        trained: bool,
    ) -> String {
        format!(
            "{cell},{pos},{strategy},{seed},,{model},{strategy},20,ok,,100,0.5,{},{},{},{},0.5,{},0.8,1,2,3,4,5,6,,100,3,{trained}",
            m[0], m[1], m[2], m[3], m[4]
        )
    }

    #[test]
    fn parses_axes_configurations_and_missing_values() {
        let text = format!(
            "{HEADER}\n{}\n{}\n1,0.1,knn-l2,0,,weak,knn-l2,20,failed,boom,,,,,,,,,,,,,,,,,,,\n",
            line(
                0,
                "0.1",
                "none",
                0,
                "weak",
                [0.8, 0.7, 0.6, 0.9, 0.65],
                true
            ),
            line(
                0,
                "0.1",
                "none",
                0,
                "strong",
                [0.8, 0.7, 0.6, 0.9, 0.65],
                false
            ),
        );
        let table = ResultsTable::parse(Path::new("r.csv"), text.as_bytes()).unwrap();
        assert_eq!(table.axes, vec!["data.pos_fraction", "mining.strategy"]);
        assert_eq!(table.configurations.len(), 2);
        assert_eq!(table.configurations[1].strategy, "knn-l2");
        let failed = &table.rows[2];
        assert!(!failed.ok);
        assert_eq!(failed.error, "boom");
        assert!(table.value(failed, "auroc").is_nan());
        assert_eq!(table.value(&table.rows[0], "auroc"), 0.8);
        assert_eq!(table.rows[0].line, 2);
        assert!(!table.rows[1].trained);
        assert_eq!(table.config_label(1), "mining.strategy=knn-l2");
        assert_eq!(table.failed_cells(), vec![1]);
        assert_eq!(table.ok_cells(), vec![0]);
    }

    #[test]
    fn errors_name_file_line_and_column() {
        let text = format!(
            "{HEADER}\n{}\n",
            line(
                0,
                "0.1",
                "none",
                0,
                "weak",
                [0.8, 0.7, 0.6, 0.9, 0.65],
                true
            )
        )
        .replace(",0.8,", ",zero,");
        let error = ResultsTable::parse(Path::new("r.csv"), text.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("'r.csv' line 2")
                && error.contains("`auroc`")
                && error.contains("'zero'"),
            "{error}"
        );
        let error = ResultsTable::parse(Path::new("r.csv"), b"cell,a,b\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("seed"), "{error}");
        let error =
            ResultsTable::parse(Path::new("r.csv"), format!("{HEADER}\n").as_bytes()).unwrap_err();
        assert!(matches!(error, ReportError::Empty { .. }));
    }
}
