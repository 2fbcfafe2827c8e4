//! Running an experiment: plan the cells, run their stages with a
//! content-addressed cache, and write the result tables.

pub mod execute;
pub mod keys;
pub mod lock;
pub mod manifest;
pub mod plan;
pub mod results;
pub mod store;

pub use execute::{execute, RunEvent, RunOptions};
pub use plan::{Plan, PlanCounts};

use crate::io::write_atomic;
use manifest::Manifest;
use std::path::PathBuf;
use std::time::SystemTime;

/// Errors that stop a whole run (a failing cell does not).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Another run holds the output folder.
    #[error(transparent)]
    Lock(#[from] lock::LockError),
    /// A result file could not be written.
    #[error("could not write '{path}': {message}")]
    Write {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct RunSummary {
    /// Cells that finished.
    pub succeeded: usize,
    /// Cells that failed, with their errors.
    pub failed: Vec<(usize, String)>,
    /// Cells not run (not selected, or stopped by `--fail-fast`).
    pub skipped: usize,
    /// The plan's training counts.
    pub counts: PlanCounts,
    /// Where the results are.
    pub output: PathBuf,
}

/// Runs every selected cell and writes `results.csv`, `runs.csv`,
/// `manifest.json` and the per-cell files into the plan's output folder.
pub fn run_experiment(
    plan: &Plan,
    options: &RunOptions,
    on_event: &(dyn Fn(RunEvent) + Sync),
) -> Result<RunSummary, RunError> {
    let _lock = lock::RunLock::acquire(&plan.output)?;
    let started = SystemTime::now();
    let counts = plan.counts();
    let outcomes = execute(plan, options, on_event);
    let out = &plan.output;
    let write = |file: &str, bytes: Result<Vec<u8>, csv::Error>| {
        let path = out.join(file);
        let bytes = bytes.map_err(|e| RunError::Write {
            path: path.clone(),
            message: e.to_string(),
        })?;
        write_atomic(&path, &bytes).map_err(|e| RunError::Write {
            path,
            message: e.to_string(),
        })
    };
    write("results.csv", results::results_csv(plan, &outcomes))?;
    write("runs.csv", results::runs_csv(plan, &outcomes))?;
    results::write_cell_files(out, plan, &outcomes).map_err(|e| RunError::Write {
        path: out.join("cells"),
        message: e.to_string(),
    })?;
    let manifest = Manifest::new(plan, options.threads, options.jobs, started);
    let json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
    write("manifest.json", Ok(json))?;
    write_atomic(
        &out.join("experiment.toml"),
        plan.experiment.text.as_bytes(),
    )
    .map_err(|e| RunError::Write {
        path: out.join("experiment.toml"),
        message: e.to_string(),
    })?;
    let mut summary = RunSummary {
        succeeded: 0,
        failed: Vec::new(),
        skipped: 0,
        counts,
        output: out.clone(),
    };
    for (index, outcome) in outcomes.iter().enumerate() {
        match outcome {
            Some(Ok(_)) => summary.succeeded += 1,
            Some(Err(e)) => summary.failed.push((index, e.clone())),
            None => summary.skipped += 1,
        }
    }
    Ok(summary)
}
