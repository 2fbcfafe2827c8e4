//! `ablate train`: train one model and evaluate it on the test split, as a
//! one-cell experiment (mining strategy `none`) run like any experiment
//! file.

use super::common::{insert, TrainingArgs};
use super::GlobalArgs;
use crate::runner::resolve::resolve_cell;
use anyhow::Result;
use std::path::PathBuf;

/// Arguments of `ablate train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    #[command(flatten)]
    training: TrainingArgs,
    /// Output folder, as for `ablate run`: results.csv, runs.csv,
    /// cells/0/ (test predictions, training curve), manifest.json,
    /// experiment.toml (this run as an experiment file), the report, and
    /// cache/ with the model's checkpoint.
    #[arg(long, visible_alias = "output", default_value = "reports/train")]
    out: PathBuf,
}

/// Trains and evaluates the model; exit code 1 when it failed.
pub fn run(args: &TrainArgs, global: &GlobalArgs) -> Result<i32> {
    let mut table = args.training.experiment_table("train", &args.out);
    insert(&mut table, "mining.strategy", "none");
    let plan = args.training.plan(&table, &args.out)?;
    let threads = global.threads.unwrap_or_else(crate::threads::all_cores);
    let options = args.training.run_options(threads);
    let ran = super::run::run_plan(&plan, &options, global)?;
    super::run::print_test_metrics(&ran.output);
    let store = plan.store();
    if let Some(cell) = plan.cells.first() {
        let stages = resolve_cell(&store, cell, options.reuse_stale);
        if let Some(weak) = stages.weak.found() {
            println!(
                "model checkpoint: '{}'",
                store.dir(weak).join("model.safetensors").display()
            );
        }
    }
    Ok(ran.code)
}
