//! The per-cell files under `cells/<cell>/`: test predictions, training
//! histories and pool embeddings.
//!
//! Each reader returns `Ok(None)` when its file is absent (older runs, cells
//! without mining), so the figure that needs it is skipped; a file that
//! exists but is malformed is an error naming its line.

use super::load::{csv_error, parse_number, Model};
use super::ReportError;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Folder of cell `cell` in a results folder.
pub fn cell_dir(dir: &Path, cell: usize) -> PathBuf {
    dir.join("cells").join(cell.to_string())
}

/// Labels and scores of one model on the test split.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    /// True = positive (LI).
    pub labels: Vec<bool>,
    /// Predicted probability of LI.
    pub scores: Vec<f64>,
}

impl Scores {
    /// Number of positives.
    pub fn positives(&self) -> usize {
        self.labels.iter().filter(|&&l| l).count()
    }
}

/// A cell's test predictions: the weak model's, and the strong model's when trained.
#[derive(Debug, Clone, PartialEq)]
pub struct Predictions {
    /// The weak model.
    pub weak: Scores,
    /// The strong model, aligned with `weak` patch by patch.
    pub strong: Option<Scores>,
}

impl Predictions {
    /// Scores of `model` (`None`: not in the file).
    pub fn of(&self, model: Model) -> Option<&Scores> {
        match model {
            Model::Weak => Some(&self.weak),
            Model::Strong => self.strong.as_ref(),
        }
    }
}

/// A CSV file as a header-indexed table of string records.
struct Table {
    path: PathBuf,
    columns: HashMap<String, usize>,
    records: Vec<csv::StringRecord>,
}

impl Table {
    /// Reads `path`; `None` when absent.
    fn read(path: &Path) -> Result<Option<Self>, ReportError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ReportError::Read {
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        let mut reader = csv::Reader::from_reader(bytes.as_slice());
        let columns = reader
            .headers()
            .map_err(|e| csv_error(path, &e))?
            .iter()
            .enumerate()
            .map(|(i, h)| (h.to_string(), i))
            .collect();
        let records = reader
            .records()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| csv_error(path, &e))?;
        Ok(Some(Self {
            path: path.to_path_buf(),
            columns,
            records,
        }))
    }

    fn column(&self, name: &str) -> Result<usize, ReportError> {
        self.columns
            .get(name)
            .copied()
            .ok_or_else(|| ReportError::MissingColumn {
                path: self.path.clone(),
                column: name.to_string(),
            })
    }

    fn error(&self, record: &csv::StringRecord, message: String) -> ReportError {
        let line = record.position().map(|p| p.line() as usize).unwrap_or(0);
        ReportError::Parse {
            path: self.path.clone(),
            line,
            message,
        }
    }

    fn number(
        &self,
        record: &csv::StringRecord,
        column: usize,
        name: &str,
    ) -> Result<f64, ReportError> {
        parse_number(record.get(column).unwrap_or("").trim())
            .map_err(|m| self.error(record, format!("column `{name}`: {m}")))
    }
}

/// Reads `cells/<cell>/predictions.csv` (`model,path,label,score`).
pub fn read_predictions(dir: &Path, cell: usize) -> Result<Option<Predictions>, ReportError> {
    let Some(table) = Table::read(&cell_dir(dir, cell).join("predictions.csv"))? else {
        return Ok(None);
    };
    let (model_col, path_col, label_col, score_col) = (
        table.column("model")?,
        table.column("path")?,
        table.column("label")?,
        table.column("score")?,
    );
    let mut weak: Vec<(String, bool, f64)> = Vec::new();
    let mut strong: Vec<(String, bool, f64)> = Vec::new();
    for record in &table.records {
        let label = match record.get(label_col).unwrap_or("").trim() {
            "1" | "true" | "positive" => true,
            "0" | "false" | "negative" => false,
            other => {
                return Err(table.error(record, format!("column `label`: '{other}' is not 0 or 1")))
            }
        };
        let score = table.number(record, score_col, "score")?;
        let entry = (record.get(path_col).unwrap_or("").to_string(), label, score);
        match record.get(model_col).unwrap_or("") {
            "weak" => weak.push(entry),
            "strong" => strong.push(entry),
            other => {
                return Err(table.error(
                    record,
                    format!("column `model`: '{other}' is neither weak nor strong"),
                ))
            }
        }
    }
    let strong = if strong.is_empty() {
        None
    } else {
        Some(align(&table.path, &weak, strong)?)
    };
    let weak = Scores {
        labels: weak.iter().map(|e| e.1).collect(),
        scores: weak.iter().map(|e| e.2).collect(),
    };
    Ok(Some(Predictions { weak, strong }))
}

/// The strong scores in the weak model's patch order; both must cover the
/// same test patches with the same labels (the method's shared test set).
fn align(
    path: &Path,
    weak: &[(String, bool, f64)],
    strong: Vec<(String, bool, f64)>,
) -> Result<Scores, ReportError> {
    let mismatch = |message: String| ReportError::Invalid {
        path: path.to_path_buf(),
        message,
    };
    if strong.len() != weak.len() {
        return Err(mismatch(format!(
            "{} weak and {} strong predictions; both models must be tested on the same patches",
            weak.len(),
            strong.len()
        )));
    }
    let by_path: HashMap<&str, (bool, f64)> = strong
        .iter()
        .map(|(p, l, s)| (p.as_str(), (*l, *s)))
        .collect();
    let mut scores = Scores {
        labels: Vec::with_capacity(weak.len()),
        scores: Vec::with_capacity(weak.len()),
    };
    for (p, label, _) in weak {
        let &(strong_label, score) = by_path
            .get(p.as_str())
            .ok_or_else(|| mismatch(format!("patch '{p}' has a weak but no strong prediction")))?;
        if strong_label != *label {
            return Err(mismatch(format!(
                "patch '{p}' has different labels for the weak and strong model"
            )));
        }
        scores.labels.push(*label);
        scores.scores.push(score);
    }
    Ok(scores)
}

/// One epoch of a training history.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Epoch {
    /// Epoch number.
    pub epoch: f64,
    /// Mean training loss.
    pub train_loss: f64,
    /// Validation loss.
    pub valid_loss: f64,
    /// Validation AUROC.
    pub valid_auroc: f64,
    /// Whether this epoch's checkpoint was kept.
    pub best: bool,
}

/// Reads `cells/<cell>/history-<model>.csv` (`epoch,train_loss,valid_loss,valid_auroc,lr,best`).
pub fn read_history(
    dir: &Path,
    cell: usize,
    model: Model,
) -> Result<Option<Vec<Epoch>>, ReportError> {
    let file = format!("history-{}.csv", model.name());
    let Some(table) = Table::read(&cell_dir(dir, cell).join(file))? else {
        return Ok(None);
    };
    let (epoch, train) = (table.column("epoch")?, table.column("train_loss")?);
    let (valid, auroc) = (table.column("valid_loss")?, table.column("valid_auroc")?);
    let best = table.columns.get("best").copied();
    let mut epochs = Vec::new();
    for record in &table.records {
        let is_best = best
            .map(|b| matches!(record.get(b).unwrap_or("").trim(), "true" | "1"))
            .unwrap_or(false);
        epochs.push(Epoch {
            epoch: table.number(record, epoch, "epoch")?,
            train_loss: table.number(record, train, "train_loss")?,
            valid_loss: table.number(record, valid, "valid_loss")?,
            valid_auroc: table.number(record, auroc, "valid_auroc")?,
            best: is_best,
        });
    }
    Ok(Some(epochs))
}

/// Pool embeddings of a mining cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding {
    /// Patch kind (synthetic data) per row.
    pub kinds: Vec<String>,
    /// Role per row: `pool`, `fp` or `mined`.
    pub roles: Vec<String>,
    /// Feature vector per row.
    pub features: Vec<Vec<f64>>,
}

/// Reads `cells/<cell>/embedding.csv` (`path,kind,role,x0,x1,...`).
pub fn read_embedding(dir: &Path, cell: usize) -> Result<Option<Embedding>, ReportError> {
    let Some(table) = Table::read(&cell_dir(dir, cell).join("embedding.csv"))? else {
        return Ok(None);
    };
    let (kind, role) = (table.column("kind")?, table.column("role")?);
    let mut features_cols: Vec<(usize, usize)> = table
        .columns
        .iter()
        .filter_map(|(name, &i)| {
            name.strip_prefix('x')
                .and_then(|n| n.parse::<usize>().ok())
                .map(|n| (n, i))
        })
        .collect();
    features_cols.sort_unstable();
    if features_cols.is_empty() {
        return Err(ReportError::MissingColumn {
            path: table.path.clone(),
            column: "x0".into(),
        });
    }
    let mut embedding = Embedding {
        kinds: Vec::new(),
        roles: Vec::new(),
        features: Vec::new(),
    };
    for record in &table.records {
        let mut row = Vec::with_capacity(features_cols.len());
        for &(n, i) in &features_cols {
            let v = table.number(record, i, &format!("x{n}"))?;
            if !v.is_finite() {
                return Err(table.error(
                    record,
                    format!("column `x{n}`: features must be finite numbers"),
                ));
            }
            row.push(v);
        }
        embedding
            .kinds
            .push(record.get(kind).unwrap_or("").to_string());
        embedding
            .roles
            .push(record.get(role).unwrap_or("").to_string());
        embedding.features.push(row);
    }
    Ok(Some(embedding))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, cell: usize, name: &str, text: &str) {
        let d = cell_dir(dir, cell);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), text).unwrap();
    }

    #[test]
    fn predictions_align_strong_to_weak_by_path() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            2,
            "predictions.csv",
            "model,path,label,score\nweak,a,1,0.9\nweak,b,0,0.2\nstrong,b,0,0.1\nstrong,a,1,0.95\n",
        );
        let p = read_predictions(dir.path(), 2).unwrap().unwrap();
        assert_eq!(
            p.weak,
            Scores {
                labels: vec![true, false],
                scores: vec![0.9, 0.2]
            }
        );
        assert_eq!(
            p.strong.unwrap(),
            Scores {
                labels: vec![true, false],
                scores: vec![0.95, 0.1]
            }
        );
        assert!(read_predictions(dir.path(), 3).unwrap().is_none());
        write(
            dir.path(),
            4,
            "predictions.csv",
            "model,path,label,score\nweak,a,1,0.9\nstrong,c,1,0.95\n",
        );
        let e = read_predictions(dir.path(), 4).unwrap_err().to_string();
        assert!(
            e.contains("patch 'a'") && e.contains("predictions.csv"),
            "{e}"
        );
        write(
            dir.path(),
            5,
            "predictions.csv",
            "model,path,label,score\nweak,a,1,high\n",
        );
        let e = read_predictions(dir.path(), 5).unwrap_err().to_string();
        assert!(e.contains("line 2") && e.contains("`score`"), "{e}");
    }

    #[test]
    fn history_and_embedding() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), 0, "history-weak.csv", "epoch,train_loss,valid_loss,valid_auroc,lr,best\n0,0.7,0.6,0.8,0.001,false\n1,0.5,0.5,0.9,0.0005,true\n");
        let h = read_history(dir.path(), 0, Model::Weak).unwrap().unwrap();
        assert_eq!(h.len(), 2);
        assert!(h[1].best && !h[0].best);
        assert_eq!(h[1].valid_auroc, 0.9);
        assert!(read_history(dir.path(), 0, Model::Strong)
            .unwrap()
            .is_none());
        write(
            dir.path(),
            0,
            "embedding.csv",
            "path,kind,role,x1,x0\na,mimic,pool,2,1\nb,stroma,fp,4,3\n",
        );
        let e = read_embedding(dir.path(), 0).unwrap().unwrap();
        assert_eq!(
            e.features,
            vec![vec![1.0, 2.0], vec![3.0, 4.0]],
            "columns ordered x0, x1"
        );
        assert_eq!(e.roles, vec!["pool", "fp"]);
        write(
            dir.path(),
            1,
            "embedding.csv",
            "path,kind,role\na,mimic,pool\n",
        );
        assert!(read_embedding(dir.path(), 1)
            .unwrap_err()
            .to_string()
            .contains("x0"));
    }
}
