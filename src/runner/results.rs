//! The tables a run writes: `results.csv` (deterministic: byte-identical
//! for the same experiment, whatever was cached or how many jobs ran),
//! `runs.csv` (durations and cache hits), per-cell predictions and mined lists.

use super::error::one_line;
use super::execute::{CellOutcomes, CellResult, ModelRecord};
use super::found::{auroc_against_mimics, NEGATIVE_KINDS};
use super::plan::{CellPlan, Plan};
use crate::experiment::load::plain;
use crate::experiment::matrix::{FOLD_KEY, SEED_KEY};
use crate::io::write_atomic;
use crate::metrics::binary::BinaryMetrics;
use std::path::Path;

/// Metric columns of `results.csv`, in order: the test loss, the
/// [`BinaryMetrics`], and the AUROC of invasion against mimic alone
/// (synthetic data, see [`super::found::auroc_against_mimics`]).
pub const METRIC_COLUMNS: [&str; 13] = [
    "loss",
    "auroc",
    "auprc",
    "sensitivity",
    "specificity",
    "precision",
    "f1",
    "accuracy",
    "tp",
    "fp",
    "tn",
    "fn",
    "auroc_mimic",
];

/// Columns of `results.csv` about the cell's data and mining, after the
/// metrics: the weak model's false positives (in all and, for synthetic
/// data, per negative kind in [`NEGATIVE_KINDS`] order), the mined set's
/// size and mimic share, and the pool's mimic share (its base rate).
pub const CELL_COLUMNS: [&str; 10] = [
    "false_positives",
    "mined",
    "mimic_fraction",
    "pool_mimic_fraction",
    "fp_mimic",
    "fp_tumour_nest",
    "fp_empty_vessel",
    "fp_stroma",
    "train_size",
    "best_epoch",
];

/// Every numeric column of `results.csv` (the names `[report] metrics` may use).
pub fn numeric_columns() -> impl Iterator<Item = &'static str> {
    std::iter::once("n_test")
        .chain(METRIC_COLUMNS)
        .chain(CELL_COLUMNS)
}

/// Axis columns: every matrix key except the replicates (which have their own columns).
pub fn axis_columns(plan: &Plan) -> Vec<String> {
    plan.experiment
        .axis_keys
        .iter()
        .filter(|k| k.as_str() != SEED_KEY && k.as_str() != FOLD_KEY)
        .cloned()
        .collect()
}

/// The value of a dotted key in serialised settings (`None` when unset).
fn setting<'a>(settings: &'a toml::Value, key: &str) -> Option<&'a toml::Value> {
    key.split('.')
        .try_fold(settings, |value, part| value.get(part))
}

/// Builds `results.csv`: one row per cell and model (weak, strong); axis
/// columns hold each cell's effective value of the axis key.
pub fn results_csv(plan: &Plan, outcomes: &CellOutcomes) -> Result<Vec<u8>, csv::Error> {
    let axes = axis_columns(plan);
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = vec!["cell".into()];
    header.extend(axes.iter().cloned());
    header.extend(
        [
            "seed",
            "fold",
            "model",
            "strategy",
            "num_query",
            "status",
            "error",
            "n_test",
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    header.extend(METRIC_COLUMNS.iter().map(|s| s.to_string()));
    header.extend(CELL_COLUMNS.iter().map(|s| s.to_string()));
    header.push("trained".into());
    writer.write_record(&header)?;
    for (cell, outcome) in plan.cells.iter().zip(outcomes) {
        let Some(outcome) = outcome else { continue };
        let settings = toml::Value::try_from(&cell.config).expect("settings serialise");
        let axis_values: Vec<String> = axes
            .iter()
            .map(|k| setting(&settings, k).map(plain).unwrap_or_default())
            .collect();
        for stage in ["weak", "strong"] {
            let mut row: Vec<String> = vec![cell.index.to_string()];
            row.extend(axis_values.iter().cloned());
            let folds = cell.config.data.split.folds.is_some();
            row.push(cell.config.replicate.seed.to_string());
            row.push(if folds {
                cell.config.replicate.fold.to_string()
            } else {
                String::new()
            });
            row.push(stage.to_string());
            row.push(cell.config.mining.strategy.name().to_string());
            row.push(cell.config.mining.num_query.to_string());
            match outcome {
                Ok(result) => {
                    row.extend(["ok".to_string(), String::new()]);
                    row.extend(model_columns(cell, result, stage));
                }
                Err(error) => {
                    row.extend(["failed".to_string(), one_line(error.as_ref())]);
                    row.extend(std::iter::repeat_n(
                        String::new(),
                        1 + METRIC_COLUMNS.len() + CELL_COLUMNS.len() + 1,
                    ));
                }
            }
            writer.write_record(&row)?;
        }
    }
    writer
        .into_inner()
        .map_err(|e| csv::Error::from(std::io::Error::other(e.to_string())))
}

/// The metric and mining columns of one model of a finished cell.
fn model_columns(cell: &CellPlan, result: &CellResult, stage: &str) -> Vec<String> {
    let (record, trained) = match stage {
        "weak" => (&result.weak, true),
        _ => (&result.strong, result.strong_trained),
    };
    let metrics = metrics_of(cell, result, record);
    let number = |v: f64| {
        if v.is_nan() {
            String::new()
        } else {
            v.to_string()
        }
    };
    let mut row = vec![
        record.test_scores.len().to_string(),
        number(record.test_loss),
    ];
    match metrics {
        Some(m) => {
            row.extend(
                [
                    m.auroc,
                    m.auprc,
                    m.sensitivity,
                    m.specificity,
                    m.precision,
                    m.f1,
                    m.accuracy,
                ]
                .map(number),
            );
            row.extend([m.tp, m.fp, m.tn, m.fn_].map(|v| v.to_string()));
        }
        None => row.extend(std::iter::repeat_n(String::new(), 11)),
    }
    row.push(
        auroc_against_mimics(&result.test_kinds, &record.test_scores)
            .map(number)
            .unwrap_or_default(),
    );
    let is_strong = stage == "strong";
    row.push(result.false_positives.to_string());
    row.push(if is_strong { result.mined.len() } else { 0 }.to_string());
    row.push(if is_strong {
        result.mimic_fraction.map(number).unwrap_or_default()
    } else {
        String::new()
    });
    row.push(result.pool_mimic_fraction.map(number).unwrap_or_default());
    match result.false_positive_kinds {
        Some(counts) => row.extend(counts.map(|n| n.to_string())),
        None => row.extend(std::iter::repeat_n(String::new(), NEGATIVE_KINDS.len())),
    }
    row.push(record.train_size.to_string());
    row.push(record.best_epoch.to_string());
    row.push(trained.to_string());
    row
}

/// Test metrics recomputed from the stored scores.
fn metrics_of(cell: &CellPlan, result: &CellResult, record: &ModelRecord) -> Option<BinaryMetrics> {
    BinaryMetrics::compute(
        &result.test_labels,
        &record.test_scores,
        cell.config.training.threshold,
    )
    .ok()
}

/// `runs.csv`: per cell, the training durations and which stages came from the cache.
pub fn runs_csv(plan: &Plan, outcomes: &CellOutcomes) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record([
        "cell",
        "status",
        "weak_seconds",
        "strong_seconds",
        "cache_hits",
    ])?;
    for (cell, outcome) in plan.cells.iter().zip(outcomes) {
        let Some(outcome) = outcome else { continue };
        let row = match outcome {
            Ok(r) => vec![
                cell.index.to_string(),
                "ok".into(),
                format!("{:.3}", r.weak.seconds),
                if r.strong_trained {
                    format!("{:.3}", r.strong.seconds)
                } else {
                    String::new()
                },
                r.cache_hits.join(";"),
            ],
            Err(_) => vec![
                cell.index.to_string(),
                "failed".into(),
                String::new(),
                String::new(),
                String::new(),
            ],
        };
        writer.write_record(&row)?;
    }
    writer
        .into_inner()
        .map_err(|e| csv::Error::from(std::io::Error::other(e.to_string())))
}

/// Writes each finished cell's test predictions, mined list and training
/// histories (`history-weak.csv`, `history-strong.csv`) under `cells/<index>/`.
pub fn write_cell_files(out: &Path, plan: &Plan, outcomes: &CellOutcomes) -> std::io::Result<()> {
    for (cell, outcome) in plan.cells.iter().zip(outcomes) {
        let Some(Ok(result)) = outcome else { continue };
        let dir = out.join("cells").join(cell.index.to_string());
        let mut predictions = csv::Writer::from_writer(Vec::new());
        predictions.write_record(["model", "path", "label", "score"])?;
        let mut models = vec![("weak", &result.weak)];
        if result.strong_trained {
            models.push(("strong", &result.strong));
        }
        for (name, record) in models {
            for ((path, &label), score) in result
                .test_paths
                .iter()
                .zip(&result.test_labels)
                .zip(&record.test_scores)
            {
                predictions.write_record([
                    name,
                    path,
                    if label { "1" } else { "0" },
                    &score.to_string(),
                ])?;
            }
        }
        write_atomic(
            &dir.join("predictions.csv"),
            &predictions.into_inner().map_err(|e| e.into_error())?,
        )?;
        let mut mined = csv::Writer::from_writer(Vec::new());
        mined.write_record(["path", "value", "found_by"])?;
        for (patch, path) in result.mined.iter().zip(&result.mined_paths) {
            let found_by: Vec<String> = patch.found_by.iter().map(|q| q.to_string()).collect();
            mined.write_record([
                path.as_str(),
                &patch.value.map(|v| v.to_string()).unwrap_or_default(),
                &found_by.join(";"),
            ])?;
        }
        write_atomic(
            &dir.join("mined.csv"),
            &mined.into_inner().map_err(|e| e.into_error())?,
        )?;
        let mut histories = vec![("weak", &result.weak)];
        if result.strong_trained {
            histories.push(("strong", &result.strong));
        }
        for (name, record) in histories {
            let mut history = csv::Writer::from_writer(Vec::new());
            for epoch in &record.history {
                history.serialize(epoch)?;
            }
            let bytes = history.into_inner().map_err(|e| e.into_error())?;
            write_atomic(&dir.join(format!("history-{name}.csv")), &bytes)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::PatchKind;
    use crate::experiment::load::parse_experiment;

    fn record(test_scores: Vec<f64>) -> ModelRecord {
        ModelRecord {
            test_scores,
            test_loss: 0.5,
            history: Vec::new(),
            best_epoch: 1,
            train_size: 10,
            seconds: 1.0,
        }
    }

    /// The `auroc_mimic` cells of `results.csv`, weak row then strong row.
    fn mimic_aurocs(test_kinds: Vec<Option<PatchKind>>) -> Vec<String> {
        let text = "name = \"t\"\n[mining]\nstrategy = \"random\"\n";
        let experiment = parse_experiment(Path::new("t.toml"), text).unwrap();
        let plan = Plan::new(experiment, None);
        let labels = vec![true, false, true, false, false];
        let result = CellResult {
            // Invasions 0.9 and 0.4; mimics 0.5 and 0.1; stroma 0.95.
            weak: record(vec![0.9, 0.5, 0.4, 0.1, 0.95]),
            // The strong model ranks both invasions above both mimics.
            strong: record(vec![0.9, 0.3, 0.6, 0.2, 0.95]),
            strong_trained: true,
            false_positives: 0,
            mined: Vec::new(),
            mimic_fraction: None,
            false_positive_kinds: None,
            pool_mimic_fraction: None,
            test_labels: labels,
            test_paths: (0..5).map(|i| format!("p{i}.png")).collect(),
            test_kinds,
            mined_paths: Vec::new(),
            cache_hits: Vec::new(),
        };
        let csv = results_csv(&plan, &vec![Some(Ok(result))]).unwrap();
        let mut reader = csv::Reader::from_reader(csv.as_slice());
        let column = reader
            .headers()
            .unwrap()
            .iter()
            .position(|c| c == "auroc_mimic")
            .unwrap();
        reader
            .records()
            .map(|row| row.unwrap()[column].to_string())
            .collect()
    }

    #[test]
    fn each_model_gets_its_own_mimic_auroc_and_real_data_none() {
        use PatchKind::*;
        let kinds = [Invasion, Mimic, Invasion, Mimic, Stroma]
            .map(Some)
            .to_vec();
        assert_eq!(mimic_aurocs(kinds), ["0.75", "1"]);
        assert_eq!(mimic_aurocs(vec![None; 5]), ["", ""]);
    }
}
