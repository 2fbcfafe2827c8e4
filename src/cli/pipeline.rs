//! `ablate pipeline`: the four-step method for one configuration, one cell
//! per mining strategy (all sharing the weak model), run like any
//! experiment file.

use super::common::{file_value, insert, TrainingArgs};
use super::GlobalArgs;
use crate::mining::Strategy;
use anyhow::Result;
use std::path::PathBuf;
use toml::Value;

/// Arguments of `ablate pipeline`.
#[derive(Debug, clap::Args)]
pub struct PipelineArgs {
    #[command(flatten)]
    training: TrainingArgs,
    /// Mining strategies to compare (comma-separated): one cell each, all
    /// sharing one weak model (the `[matrix]` axis `mining.strategy`; one
    /// strategy sets `mining.strategy`) [default: knn-l2, the experiment
    /// default].
    #[arg(long, value_enum, value_delimiter = ',')]
    strategy: Vec<Strategy>,
    /// Pool patches taken per false positive (`mining.num_query`).
    #[arg(long)]
    num_query: Option<usize>,
    /// Validation negatives scored at or above this are false positives
    /// (`mining.fp_threshold`).
    #[arg(long)]
    fp_threshold: Option<f64>,
    /// Cap on the number of mined patches (`mining.max_mined`).
    #[arg(long)]
    max_mined: Option<usize>,
    /// Output folder, as for `ablate run`: results.csv, runs.csv,
    /// cells/<i>/ (test predictions, mined patches, training curves, pool
    /// embeddings), manifest.json, experiment.toml (this run as an
    /// experiment file), the report and the cache.
    #[arg(long, visible_alias = "output", default_value = "reports/pipeline")]
    out: PathBuf,
}

/// Runs the method; exit code 1 when a cell failed.
pub fn run(args: &PipelineArgs, global: &GlobalArgs) -> Result<i32> {
    let mut table = args.training.experiment_table("pipeline", &args.out);
    if let Some(n) = args.num_query {
        insert(&mut table, "mining.num_query", n as i64);
    }
    if let Some(threshold) = args.fp_threshold {
        insert(&mut table, "mining.fp_threshold", threshold);
    }
    if let Some(cap) = args.max_mined {
        insert(&mut table, "mining.max_mined", cap as i64);
    }
    match args.strategy.as_slice() {
        [] => {}
        [one] => insert(&mut table, "mining.strategy", file_value(one)),
        several => {
            let values: Vec<Value> = several.iter().map(file_value).collect();
            let mut matrix = toml::Table::new();
            matrix.insert("mining.strategy".into(), Value::Array(values));
            table.insert("matrix".into(), Value::Table(matrix));
        }
    }
    let plan = args.training.plan(&table, &args.out)?;
    let threads = global.threads.unwrap_or_else(crate::threads::all_cores);
    let ran = super::run::run_plan(&plan, &args.training.run_options(threads), global)?;
    super::run::print_test_metrics(&ran.output);
    Ok(ran.code)
}
