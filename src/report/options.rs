//! The optional `[report]` table of the experiment file, and the names
//! readers see for metrics, axes and strategies.
//!
//! ```toml
//! [report]
//! metrics = ["auroc", "auprc", "sensitivity", "specificity"]  # figures and tables
//! roc_cell = 4   # ROC/PR and training curves for the configuration of cell 4
//! ```
//!
//! The table is read here, from the experiment file's text, rather than
//! through the experiment settings: it changes only how results are shown,
//! never what is run. Other keys of the file are ignored. Loading an
//! experiment checks the table's form first ([`validate_table`]), so a typo
//! fails before a long run rather than at its report.

use super::load::ResultsTable;
use super::ReportError;
use crate::setting::InvalidSetting;
use std::path::Path;

/// Keys of the `[report]` table.
const REPORT_KEYS: [&str; 2] = ["metrics", "roc_cell"];

/// Checks a `[report]` table without results: known keys, `metrics` a
/// non-empty list of `results.csv` metric columns, `roc_cell` a cell index
/// below `cells`.
pub fn validate_table(report: &toml::Table, cells: usize) -> Result<(), InvalidSetting> {
    for key in report.keys() {
        if !REPORT_KEYS.contains(&key.as_str()) {
            let close = REPORT_KEYS
                .iter()
                .find(|known| strsim::levenshtein(key, known) <= 2)
                .map(|known| format!("; did you mean `{known}`?"))
                .unwrap_or_default();
            return Err(InvalidSetting::new(
                format!("report.{key}"),
                format!("unknown key `report.{key}`, expected one of `metrics`, `roc_cell`{close}"),
            ));
        }
    }
    if let Some(value) = report.get("metrics") {
        let known: Vec<&str> = crate::runner::results::numeric_columns().collect();
        let expected = format!("a non-empty list of metric names from {}", known.join(", "));
        let names = value
            .as_array()
            .filter(|list| !list.is_empty())
            .ok_or_else(|| InvalidSetting::range("report.metrics", value, &expected))?;
        for name in names {
            if !name.as_str().is_some_and(|n| known.contains(&n)) {
                return Err(InvalidSetting::range(
                    "report.metrics",
                    name,
                    &format!("metric names from {}", known.join(", ")),
                ));
            }
        }
    }
    if let Some(value) = report.get("roc_cell") {
        let in_range = value
            .as_integer()
            .and_then(|c| usize::try_from(c).ok())
            .is_some_and(|c| c < cells);
        if !in_range {
            return Err(InvalidSetting::range(
                "report.roc_cell",
                value,
                &format!("a cell index from 0 to {}", cells.saturating_sub(1)),
            ));
        }
    }
    Ok(())
}

/// Metrics shown when `[report] metrics` is absent.
pub const DEFAULT_METRICS: [&str; 4] = ["auroc", "auprc", "sensitivity", "specificity"];

/// Metrics always compared between configurations (the shown ones are added).
pub const COMPARED_METRICS: [&str; 5] = ["auroc", "auprc", "sensitivity", "specificity", "f1"];

/// Settings of the report.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    /// Metrics shown in the tables and figures, in order.
    pub metrics: Vec<String>,
    /// Cell whose configuration gets the ROC/PR and training figures.
    pub roc_cell: Option<usize>,
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self {
            metrics: DEFAULT_METRICS.iter().map(|m| m.to_string()).collect(),
            roc_cell: None,
        }
    }
}

impl ReportOptions {
    /// Reads `[report]` from the experiment file's text (`None`: no file),
    /// checking names against the results.
    pub fn parse(
        text: Option<&str>,
        path: &Path,
        results: &ResultsTable,
    ) -> Result<Self, ReportError> {
        let mut options = Self::default();
        let Some(text) = text else { return Ok(options) };
        let invalid = |message: String| ReportError::Invalid {
            path: path.to_path_buf(),
            message,
        };
        let doc: toml::Table =
            toml::from_str(text).map_err(|e| invalid(format!("not valid TOML: {e}")))?;
        let Some(report) = doc.get("report") else {
            return Ok(options);
        };
        let report = report
            .as_table()
            .ok_or_else(|| invalid("`report` must be a table ([report])".into()))?;
        if let Some(value) = report.get("metrics") {
            options.metrics = parse_metrics(value, results).map_err(invalid)?;
        }
        if let Some(value) = report.get("roc_cell") {
            let cell = value
                .as_integer()
                .and_then(|c| usize::try_from(c).ok())
                .ok_or_else(|| {
                    invalid(format!(
                        "`report.roc_cell` = {value} must be a cell index (0, 1, ...)"
                    ))
                })?;
            if !results.rows.iter().any(|r| r.cell == cell) {
                let last = results.rows.iter().map(|r| r.cell).max().unwrap_or(0);
                return Err(invalid(format!(
                    "`report.roc_cell` = {cell} is not a cell of '{}' (cells 0 to {last})",
                    results.path.display()
                )));
            }
            options.roc_cell = Some(cell);
        }
        Ok(options)
    }

    /// Metrics to compare: [`COMPARED_METRICS`] then the shown ones, without repeats.
    pub fn compared_metrics(&self, results: &ResultsTable) -> Vec<String> {
        let mut metrics: Vec<String> = Vec::new();
        for m in COMPARED_METRICS
            .iter()
            .map(|m| m.to_string())
            .chain(self.metrics.iter().cloned())
        {
            if results.has_column(&m) && !metrics.contains(&m) {
                metrics.push(m);
            }
        }
        metrics
    }
}

/// `metrics = [...]`: non-empty, each a numeric column of the results.
fn parse_metrics(value: &toml::Value, results: &ResultsTable) -> Result<Vec<String>, String> {
    let list = value
        .as_array()
        .ok_or("`report.metrics` must be a list of metric names")?;
    let mut metrics = Vec::new();
    for item in list {
        let name = item
            .as_str()
            .ok_or_else(|| format!("`report.metrics`: {item} is not a metric name"))?;
        if !results.has_column(name) {
            return Err(format!(
                "`report.metrics`: unknown metric '{name}'; choose from {}",
                results.numeric.join(", ")
            ));
        }
        if !metrics.iter().any(|m| m == name) {
            metrics.push(name.to_string());
        }
    }
    if metrics.is_empty() {
        return Err("`report.metrics` is empty; name at least one metric, e.g. [\"auroc\"]".into());
    }
    Ok(metrics)
}

/// Whether larger values of a metric are better (loss and error counts are not).
pub fn higher_is_better(metric: &str) -> bool {
    !matches!(metric, "loss" | "fp" | "fn" | "false_positives") && !metric.starts_with("fp_")
}

/// Whether a metric lies in [0, 1] (so axes may be clamped there).
pub fn is_unit_interval(metric: &str) -> bool {
    matches!(
        metric,
        "auroc"
            | "auroc_mimic"
            | "auprc"
            | "sensitivity"
            | "specificity"
            | "precision"
            | "f1"
            | "accuracy"
            | "mimic_fraction"
            | "pool_mimic_fraction"
    )
}

/// A metric's name for readers.
pub fn metric_label(metric: &str) -> String {
    match metric {
        "auroc" => "AUROC".into(),
        "auroc_mimic" => "AUROC, invasion vs mimic".into(),
        "auprc" => "AUPRC".into(),
        "f1" => "F1".into(),
        "loss" => "Test loss".into(),
        "n_test" => "Test patches".into(),
        "false_positives" => "False positives".into(),
        "mined" => "Mined negatives".into(),
        "mimic_fraction" => "Mimic fraction of mined".into(),
        "pool_mimic_fraction" => "Mimic fraction of pool".into(),
        "fp_mimic" => "False positives: mimics".into(),
        "train_size" => "Training patches".into(),
        "best_epoch" => "Best epoch".into(),
        other => {
            let mut chars = other.chars();
            chars
                .next()
                .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
                .unwrap_or_default()
        }
    }
}

/// An axis key's name for readers.
pub fn axis_label(key: &str) -> String {
    match key {
        "data.train_fraction" => "Fraction of training patches kept".into(),
        "data.pos_fraction" => "Fraction of training positives kept".into(),
        "data.neg_pos_ratio" => "Negatives per positive".into(),
        "mining.num_query" => "Queries per false positive".into(),
        "mining.fp_threshold" => "False-positive threshold".into(),
        "training.epochs" => "Epochs".into(),
        other => other.to_string(),
    }
}

/// A strategy's name for readers: `none` is the weak model.
pub fn strategy_label(strategy: &str) -> String {
    match strategy {
        "none" => "none (weak model)".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::load::tests::{line, HEADER};

    fn results() -> ResultsTable {
        let text = format!(
            "{HEADER}\n{}\n{}\n",
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
                3,
                "0.1",
                "none",
                0,
                "strong",
                [0.8, 0.7, 0.6, 0.9, 0.65],
                false
            )
        );
        ResultsTable::parse(Path::new("results.csv"), text.as_bytes()).unwrap()
    }

    #[test]
    fn defaults_without_file_or_table() {
        let r = results();
        assert_eq!(
            ReportOptions::parse(None, Path::new("e.toml"), &r).unwrap(),
            ReportOptions::default()
        );
        let o = ReportOptions::parse(
            Some("name = \"x\"\n[matrix]\nseeds = 2\n"),
            Path::new("e.toml"),
            &r,
        )
        .unwrap();
        assert_eq!(o.metrics, DEFAULT_METRICS);
    }

    #[test]
    fn reads_metrics_and_roc_cell() {
        let r = results();
        let text =
            "[report]\nmetrics = [\"f1\", \"auroc\", \"f1\"]\nroc_cell = 3\nfigures = [\"x\"]\n";
        let o = ReportOptions::parse(Some(text), Path::new("e.toml"), &r).unwrap();
        assert_eq!(o.metrics, vec!["f1", "auroc"]);
        assert_eq!(o.roc_cell, Some(3));
        assert_eq!(
            o.compared_metrics(&r),
            vec!["auroc", "auprc", "sensitivity", "specificity", "f1"]
        );
    }

    #[test]
    fn rejects_unknown_metric_and_cell_naming_the_key() {
        let r = results();
        let e = ReportOptions::parse(
            Some("[report]\nmetrics = [\"aucroc\"]\n"),
            Path::new("e.toml"),
            &r,
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("'e.toml'") && e.contains("aucroc") && e.contains("auroc"),
            "{e}"
        );
        let e = ReportOptions::parse(Some("[report]\nroc_cell = 7\n"), Path::new("e.toml"), &r)
            .unwrap_err()
            .to_string();
        assert!(e.contains("roc_cell") && e.contains("cells 0 to 3"), "{e}");
    }

    #[test]
    fn labels() {
        assert_eq!(metric_label("auroc"), "AUROC");
        assert_eq!(metric_label("sensitivity"), "Sensitivity");
        assert!(!higher_is_better("loss"));
        assert_eq!(strategy_label("none"), "none (weak model)");
    }

    #[test]
    fn the_table_is_checked_without_results() {
        let check = |text: &str| {
            let table: toml::Table = text.parse().unwrap();
            validate_table(&table, 4)
        };
        assert_eq!(
            check("metrics = [\"auroc\", \"mined\"]\nroc_cell = 3"),
            Ok(())
        );
        let cases = [
            (
                "metric = [\"auroc\"]",
                "report.metric",
                "did you mean `metrics`?",
            ),
            ("metrics = []", "report.metrics", "a non-empty list"),
            ("metrics = \"auroc\"", "report.metrics", "a non-empty list"),
            (
                "metrics = [\"aurco\"]",
                "report.metrics",
                "= \"aurco\": expected metric names",
            ),
            ("roc_cell = 4", "report.roc_cell", "from 0 to 3"),
            ("roc_cell = -1", "report.roc_cell", "from 0 to 3"),
        ];
        for (text, key, message) in cases {
            let error = check(text).unwrap_err();
            assert_eq!(error.key, key, "{text}");
            assert!(error.message.contains(message), "{text}: {error}");
        }
    }
}
