//! Running an experiment: plan the cells, run their stages with a
//! content-addressed cache, and write the result tables.
//!
//! A run limited to some stages (`Stages::Shared` or `Stages::Cell`, the
//! building blocks of cluster array tasks) writes only the cache and its
//! cells' own files, and takes no folder lock, so that many such runs can
//! share one output folder; a plain or `Stages::Cached` run assembles the
//! tables afterwards.

pub mod calibrate;
pub mod error;
pub mod estimate;
pub mod execute;
pub mod found;
pub mod inputs;
pub mod jobs;
pub mod keys;
pub mod lock;
pub mod manifest;
pub mod memory;
pub mod plan;
pub mod resolve;
pub mod results;
pub mod store;

pub use error::CellError;
pub use execute::{execute, RunEvent, RunOptions, Stages};
pub use plan::{Plan, PlanCounts};
pub use resolve::{cell_cached, shared_cached};

use crate::io::write_atomic;
use manifest::Manifest;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;
use store::StaleStage;

/// Errors that stop a whole run (a failing cell does not).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Another run holds the output folder.
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    /// A result file could not be written.
    #[error("could not write '{}'", path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// What failed.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Cells that finished.
    pub succeeded: usize,
    /// Cells that failed, with their errors.
    pub failed: Vec<(usize, Arc<CellError>)>,
    /// Stages reused from other builds (`RunOptions::reuse_stale`).
    pub reused: Vec<StaleStage>,
    /// Cells not run (not selected, or stopped by `--fail-fast`).
    pub skipped: usize,
    /// The plan's training counts.
    pub counts: PlanCounts,
    /// Where the results are.
    pub output: PathBuf,
}

/// Runs every selected cell and writes `results.csv`, `runs.csv`,
/// `manifest.json` and the per-cell files into the plan's output folder
/// (only the per-cell files when `options.stages` is a partial run's).
pub fn run_experiment(
    plan: &Plan,
    options: &RunOptions,
    on_event: &(dyn Fn(RunEvent) + Sync),
) -> Result<RunSummary, RunError> {
    let tables = options.stages.writes_tables();
    let _lock = if tables {
        Some(lock::RunLock::acquire(&plan.output)?)
    } else {
        None
    };
    let started = SystemTime::now();
    let counts = plan.counts(options.reuse_stale);
    let execution = execute(plan, options, on_event);
    let outcomes = &execution.outcomes;
    let out = &plan.output;
    if !tables {
        write_cell_files(out, plan, outcomes)?;
        return Ok(summarise(&execution, counts, out));
    }
    let write = |file: &str, bytes: Result<Vec<u8>, csv::Error>| {
        let path = out.join(file);
        let bytes = bytes.map_err(|e| RunError::Write {
            path: path.clone(),
            source: e.into(),
        })?;
        write_atomic(&path, &bytes).map_err(|e| RunError::Write {
            path,
            source: e.into(),
        })
    };
    write("results.csv", results::results_csv(plan, outcomes))?;
    write("runs.csv", results::runs_csv(plan, outcomes))?;
    write_cell_files(out, plan, outcomes)?;
    let manifest = Manifest::new(plan, options, &execution.reused, started);
    let json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    write("manifest.json", Ok(json))?;
    write(
        "experiment.toml",
        Ok(plan.experiment.text.as_bytes().to_vec()),
    )?;
    Ok(summarise(&execution, counts, out))
}

/// Writes each finished cell's files under `cells/<index>/`.
fn write_cell_files(
    out: &std::path::Path,
    plan: &Plan,
    outcomes: &execute::CellOutcomes,
) -> Result<(), RunError> {
    results::write_cell_files(out, plan, outcomes).map_err(|e| RunError::Write {
        path: out.join("cells"),
        source: e.into(),
    })
}

/// Counts the outcomes.
fn summarise(
    execution: &execute::Execution,
    counts: PlanCounts,
    out: &std::path::Path,
) -> RunSummary {
    let mut summary = RunSummary {
        succeeded: 0,
        failed: Vec::new(),
        reused: execution.reused.clone(),
        skipped: 0,
        counts,
        output: out.to_path_buf(),
    };
    for (index, outcome) in execution.outcomes.iter().enumerate() {
        match outcome {
            Some(Ok(_)) => summary.succeeded += 1,
            Some(Err(e)) => summary.failed.push((index, e.clone())),
            None => summary.skipped += 1,
        }
    }
    summary
}
