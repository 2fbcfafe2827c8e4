//! `summary.csv`: per configuration and model, the number of finished
//! replicates and, for each metric, mean, SD, SE and 95% t interval over
//! the seeds/folds (via [`crate::stats::describe`]).
//!
//! A metric's statistics use the replicates where it is defined (an AUROC
//! is missing when a cell failed); `n` counts the finished replicates.

use super::load::{Model, ResultsTable, STRATEGY_AXIS};
use crate::runner::results::{CELL_COLUMNS, METRIC_COLUMNS};
use crate::stats::{describe, Summary};

/// Metrics summarised, in `results.csv`'s column order (those the table
/// has): every metric column but the confusion counts, then the cell columns.
fn summary_metric_columns() -> impl Iterator<Item = &'static str> {
    const CONFUSION_COUNTS: [&str; 4] = ["tp", "fp", "tn", "fn"];
    METRIC_COLUMNS
        .into_iter()
        .filter(|m| !CONFUSION_COUNTS.contains(m))
        .chain(CELL_COLUMNS)
}

/// Summary of one configuration and model.
#[derive(Debug, Clone)]
pub struct SummaryRow {
    /// Index into the table's configurations.
    pub config: usize,
    /// Weak or strong.
    pub model: Model,
    /// Finished replicates.
    pub n: usize,
    /// Failed replicates.
    pub n_failed: usize,
    /// Whether the model was trained (false: strong = weak, nothing mined).
    pub trained: bool,
    /// Per metric, in the order of [`summary_metrics`].
    pub stats: Vec<(String, Summary)>,
}

impl SummaryRow {
    /// The summary of `metric`, if summarised.
    pub fn stat(&self, metric: &str) -> Option<&Summary> {
        self.stats.iter().find(|(m, _)| m == metric).map(|(_, s)| s)
    }
}

/// The metrics to summarise: [`summary_metric_columns`] present in the
/// table, then any extra shown metric.
pub fn summary_metrics(table: &ResultsTable, shown: &[String]) -> Vec<String> {
    let mut metrics: Vec<String> = summary_metric_columns()
        .filter(|m| table.has_column(m))
        .map(|m| m.to_string())
        .collect();
    for m in shown {
        if table.has_column(m) && !metrics.contains(m) {
            metrics.push(m.clone());
        }
    }
    metrics
}

/// One row per configuration and model, in configuration order, weak first.
pub fn summarize(table: &ResultsTable, metrics: &[String]) -> Vec<SummaryRow> {
    let mut rows = Vec::new();
    for config in 0..table.configurations.len() {
        for model in Model::BOTH {
            let all: Vec<_> = table.rows_of(config, model).collect();
            let ok: Vec<_> = all.iter().filter(|r| r.ok).collect();
            let stats = metrics
                .iter()
                .map(|m| {
                    let values: Vec<f64> = ok
                        .iter()
                        .map(|r| table.value(r, m))
                        .filter(|v| v.is_finite())
                        .collect();
                    (m.clone(), describe(&values))
                })
                .collect();
            rows.push(SummaryRow {
                config,
                model,
                n: ok.len(),
                n_failed: all.len() - ok.len(),
                trained: ok.iter().any(|r| r.trained),
                stats,
            });
        }
    }
    rows
}

/// The text of `summary.csv`.
pub fn to_csv(
    table: &ResultsTable,
    rows: &[SummaryRow],
    metrics: &[String],
) -> Result<Vec<u8>, csv::Error> {
    let with_strategy = table.axis_index(STRATEGY_AXIS).is_none();
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = table.axes.clone();
    if with_strategy {
        header.push("strategy".into());
    }
    header.extend(["model", "n", "n_failed", "trained"].map(String::from));
    for m in metrics {
        header.extend(["mean", "sd", "se", "ci95_low", "ci95_high"].map(|s| format!("{m}_{s}")));
    }
    writer.write_record(&header)?;
    for row in rows {
        let config = &table.configurations[row.config];
        let mut record = config.values.clone();
        if with_strategy {
            record.push(config.strategy.clone());
        }
        record.extend([
            row.model.name().to_string(),
            row.n.to_string(),
            row.n_failed.to_string(),
        ]);
        record.push(row.trained.to_string());
        for (_, s) in &row.stats {
            record.extend([s.mean, s.sd, s.se, s.ci95_low, s.ci95_high].map(number));
        }
        writer.write_record(&record)?;
    }
    writer
        .into_inner()
        .map_err(|e| csv::Error::from(std::io::Error::other(e.to_string())))
}

/// A number for a CSV field: shortest round-trip text, empty for NaN.
pub fn number(value: f64) -> String {
    if value.is_nan() {
        String::new()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::load::tests::{line, HEADER};
    use std::path::Path;

    /// Two configurations (none, knn-l2) x 3 seeds, with known AUROCs.
    pub(crate) fn two_by_three() -> ResultsTable {
        let mut text = format!("{HEADER}\n");
        let weak = [0.80, 0.82, 0.84];
        let strong = [0.85, 0.88, 0.91];
        for seed in 0..3 {
            let w = weak[seed];
            let s = strong[seed];
            let cell = seed;
            text += &line(
                cell,
                "0.3",
                "none",
                seed as u32,
                "weak",
                [w, 0.7, 0.6, 0.9, 0.65],
                true,
            );
            text += "\n";
            text += &line(
                cell,
                "0.3",
                "none",
                seed as u32,
                "strong",
                [w, 0.7, 0.6, 0.9, 0.65],
                false,
            );
            text += "\n";
            let cell = 3 + seed;
            text += &line(
                cell,
                "0.3",
                "knn-l2",
                seed as u32,
                "weak",
                [w, 0.7, 0.6, 0.9, 0.65],
                true,
            );
            text += "\n";
            text += &line(
                cell,
                "0.3",
                "knn-l2",
                seed as u32,
                "strong",
                [s, 0.75, 0.7, 0.92, 0.7],
                true,
            );
            text += "\n";
        }
        ResultsTable::parse(Path::new("results.csv"), text.as_bytes()).unwrap()
    }

    #[test]
    fn groups_by_configuration_and_model() {
        let table = two_by_three();
        let metrics = summary_metrics(&table, &[]);
        let rows = summarize(&table, &metrics);
        assert_eq!(rows.len(), 4);
        let strong = &rows[3];
        assert_eq!(
            (strong.config, strong.model, strong.n, strong.trained),
            (1, Model::Strong, 3, true)
        );
        let auroc = strong.stat("auroc").unwrap();
        // mean(0.85, 0.88, 0.91) = 0.88, sd = 0.03, se = 0.03 / sqrt 3,
        // half-width = t(0.975, 2) * se = 4.302652729749464 * 0.017320508.
        assert!((auroc.mean - 0.88).abs() < 1e-12);
        assert!((auroc.sd - 0.03).abs() < 1e-12);
        assert!((auroc.ci95_high - (0.88 + 4.302652729749464 * 0.03 / 3f64.sqrt())).abs() < 1e-9);
        assert!(!rows[1].trained, "strong row of `none` is the weak model");
        assert!((rows[0].stat("auroc").unwrap().mean - 0.82).abs() < 1e-12);
        // mimic_fraction is empty everywhere: NaN mean, n = 0.
        assert_eq!(rows[0].stat("mimic_fraction").unwrap().n, 0);
    }

    #[test]
    fn csv_has_axis_model_and_metric_columns() {
        let table = two_by_three();
        let metrics = vec!["auroc".to_string()];
        let text =
            String::from_utf8(to_csv(&table, &summarize(&table, &metrics), &metrics).unwrap())
                .unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "data.pos_fraction,mining.strategy,model,n,n_failed,trained,auroc_mean,auroc_sd,auroc_se,auroc_ci95_low,auroc_ci95_high"
        );
        assert!(
            lines[4].starts_with("0.3,knn-l2,strong,3,0,true,0.88"),
            "{}",
            lines[4]
        );
    }
}
