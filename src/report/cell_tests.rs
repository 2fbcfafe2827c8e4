//! `cell_tests.csv`: within each cell whose strong model was trained, is the
//! strong model's AUROC different from the weak model's on the shared test
//! set? DeLong's test for correlated AUROCs, and a seeded stratified
//! bootstrap 95% interval of each AUROC.
//!
//! The bootstrap seed is the cell index, and both models use it, so their
//! intervals come from the same resamples and a rerun gives the same
//! numbers. DeLong p-values are also Holm-adjusted over all cells (one
//! family: "does mining change the AUROC of this cell").

use super::cells::{read_predictions, Predictions};
use super::load::{Model, Replicate, ResultsTable};
use super::summary::number;
use super::ReportError;
use crate::stats::{bootstrap_auroc_ci, delong, holm, DelongResult};
use rayon::prelude::*;
use std::path::Path;

/// Bootstrap resamples per interval.
pub const BOOTSTRAP_RESAMPLES: usize = 1000;

/// An AUROC with its bootstrap 95% interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AurocInterval {
    /// The AUROC on the test set.
    pub auroc: f64,
    /// 2.5th percentile of the bootstrap AUROCs.
    pub low: f64,
    /// 97.5th percentile of the bootstrap AUROCs.
    pub high: f64,
}

/// The test of one cell.
#[derive(Debug, Clone)]
pub struct CellTest {
    /// Cell index.
    pub cell: usize,
    /// Its configuration.
    pub config: usize,
    /// Its seed and fold.
    pub replicate: Replicate,
    /// Test patches.
    pub n_test: usize,
    /// Positive test patches.
    pub positives: usize,
    /// Weak model's AUROC.
    pub weak: AurocInterval,
    /// Strong model's AUROC.
    pub strong: AurocInterval,
    /// DeLong's test with a = strong, b = weak (difference = strong - weak).
    pub delong: DelongResult,
    /// Holm-adjusted DeLong p over all cells.
    pub p_holm: f64,
}

/// Tests every finished cell with a trained strong model. Cells without a
/// predictions file, or whose test set cannot be tested (one class, too few
/// of a class), are listed in `notes` and skipped.
pub fn run(
    table: &ResultsTable,
    dir: &Path,
    notes: &mut Vec<String>,
) -> Result<Vec<CellTest>, ReportError> {
    let cells: Vec<(usize, usize, Replicate)> = table
        .rows
        .iter()
        .filter(|r| r.ok && r.model == Model::Strong && r.trained)
        .map(|r| (r.cell, r.config, r.replicate.clone()))
        .collect();
    let outcomes: Vec<Result<Result<CellTest, String>, ReportError>> = cells
        .par_iter()
        .map(|(cell, config, replicate)| {
            Ok(match read_predictions(dir, *cell)? {
                None => Err(format!(
                    "cell {cell}: no cells/{cell}/predictions.csv; DeLong test skipped"
                )),
                Some(p) => test_cell(*cell, *config, replicate, &p),
            })
        })
        .collect();
    let mut tests = Vec::new();
    for outcome in outcomes {
        match outcome? {
            Ok(test) => tests.push(test),
            Err(note) => notes.push(note),
        }
    }
    let adjusted = holm(&tests.iter().map(|t| t.delong.p_value).collect::<Vec<_>>());
    for (test, p) in tests.iter_mut().zip(adjusted) {
        test.p_holm = p;
    }
    Ok(tests)
}

/// DeLong and bootstrap intervals of one cell's predictions.
pub fn test_cell(
    cell: usize,
    config: usize,
    replicate: &Replicate,
    p: &Predictions,
) -> Result<CellTest, String> {
    let strong = p
        .strong
        .as_ref()
        .ok_or_else(|| format!("cell {cell}: predictions.csv has no strong model rows"))?;
    let labels = &p.weak.labels;
    let result = delong(labels, &strong.scores, &p.weak.scores)
        .map_err(|e| format!("cell {cell}: DeLong: {e}"))?;
    let interval = |scores: &[f64], auroc: f64| {
        bootstrap_auroc_ci(labels, scores, BOOTSTRAP_RESAMPLES, cell as u64)
            .map(|(low, high)| AurocInterval { auroc, low, high })
            .map_err(|e| format!("cell {cell}: bootstrap: {e}"))
    };
    Ok(CellTest {
        cell,
        config,
        replicate: replicate.clone(),
        n_test: labels.len(),
        positives: p.weak.positives(),
        weak: interval(&p.weak.scores, result.auc_b)?,
        strong: interval(&strong.scores, result.auc_a)?,
        delong: result,
        p_holm: f64::NAN,
    })
}

/// The text of `cell_tests.csv`.
pub fn to_csv(table: &ResultsTable, tests: &[CellTest]) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = vec!["cell".into()];
    header.extend(table.axes.iter().cloned());
    header.extend(
        [
            "seed",
            "fold",
            "strategy",
            "n_test",
            "positives",
            "weak_auroc",
            "weak_ci95_low",
            "weak_ci95_high",
            "strong_auroc",
            "strong_ci95_low",
            "strong_ci95_high",
            "difference",
            "z",
            "delong_p",
            "delong_p_holm",
        ]
        .map(String::from),
    );
    writer.write_record(&header)?;
    for t in tests {
        let config = &table.configurations[t.config];
        let mut record = vec![t.cell.to_string()];
        record.extend(config.values.iter().cloned());
        record.extend([
            t.replicate.seed.clone(),
            t.replicate.fold.clone(),
            config.strategy.clone(),
            t.n_test.to_string(),
            t.positives.to_string(),
        ]);
        record.extend(
            [
                t.weak.auroc,
                t.weak.low,
                t.weak.high,
                t.strong.auroc,
                t.strong.low,
                t.strong.high,
                t.delong.difference,
                t.delong.z,
                t.delong.p_value,
                t.p_holm,
            ]
            .map(number),
        );
        writer.write_record(&record)?;
    }
    writer
        .into_inner()
        .map_err(|e| csv::Error::from(std::io::Error::other(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::ranking::roc_auc;
    use crate::report::cells::Scores;

    #[test]
    fn delong_orientation_and_intervals() {
        let labels = vec![true, true, true, false, false, false, true, false];
        let weak = vec![0.6, 0.4, 0.7, 0.5, 0.3, 0.65, 0.2, 0.1];
        let strong = vec![0.9, 0.8, 0.7, 0.2, 0.3, 0.1, 0.6, 0.4];
        let p = Predictions {
            weak: Scores {
                labels: labels.clone(),
                scores: weak.clone(),
            },
            strong: Some(Scores {
                labels: labels.clone(),
                scores: strong.clone(),
            }),
        };
        let replicate = Replicate {
            seed: "0".into(),
            fold: String::new(),
        };
        let t = test_cell(7, 0, &replicate, &p).unwrap();
        assert_eq!(t.weak.auroc, roc_auc(&labels, &weak).unwrap());
        assert_eq!(t.strong.auroc, 1.0);
        assert!((t.delong.difference - (t.strong.auroc - t.weak.auroc)).abs() < 1e-15);
        assert!(t.weak.low <= t.weak.auroc && t.weak.auroc <= t.weak.high);
        assert_eq!((t.n_test, t.positives), (8, 4));
        // Same cell, same seed: same interval.
        assert_eq!(test_cell(7, 0, &replicate, &p).unwrap().weak, t.weak);
        let one_class = Predictions {
            weak: Scores {
                labels: vec![true; 4],
                scores: vec![0.1, 0.2, 0.3, 0.4],
            },
            strong: Some(Scores {
                labels: vec![true; 4],
                scores: vec![0.1, 0.2, 0.3, 0.4],
            }),
        };
        assert!(test_cell(1, 0, &replicate, &one_class)
            .unwrap_err()
            .contains("cell 1"));
    }
}
