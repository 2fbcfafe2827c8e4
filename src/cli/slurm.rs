//! `ablate slurm`: write (and with `--submit`, submit) the job arrays that
//! run an experiment's unfinished cells on a Slurm cluster.

use super::run::{load_plan, SettingsArgs};
use super::GlobalArgs;
use crate::runner::shared_cached;
use crate::slurm::script::{
    collect_script, plan_jobs, split_array, submit_script, task_script, Paths, Resources,
};
use crate::slurm::status::{cell_states, CellState, Queue};
use crate::slurm::submit::{max_array_size, submit, DEFAULT_MAX_ARRAY_SIZE};
use crate::slurm::tasks::{manifest_tsv, of_stage, plan_tasks, CellNeeds, TaskStage};
use crate::slurm::Layout;
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Arguments of `ablate slurm`.
#[derive(Debug, clap::Args)]
pub struct SlurmArgs {
    /// Experiment file (TOML).
    file: PathBuf,
    /// Slurm partition of every job.
    #[arg(long)]
    partition: Option<String>,
    /// GPUs of each array task.
    #[arg(long)]
    gpus_per_task: Option<u32>,
    /// CPUs of each job, also its thread count (default: the cluster's, usually 1).
    #[arg(long)]
    cpus_per_task: Option<u32>,
    /// Time limit of each job, in Slurm's format (e.g. 4:00:00 or 1-00:00:00).
    #[arg(long)]
    time: Option<String>,
    /// At most this many tasks of an array at once (`%K`).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    max_parallel: Option<u32>,
    /// Mining cells per cell task (pack short cells into one job).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pack: u32,
    /// Another sbatch option for every job, written as an `#SBATCH` line
    /// (repeatable; e.g. --sbatch=--mem=16G --sbatch=--account=lab).
    #[arg(long = "sbatch", value_name = "OPTION", allow_hyphen_values = true)]
    sbatch: Vec<String>,
    /// Output folder (default: the file's `output`, else reports/<name>).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Submit the jobs with sbatch (otherwise only write them, with a submit.sh).
    #[arg(long)]
    submit: bool,
    /// Carried into every job's `ablate run`.
    #[command(flatten)]
    settings: SettingsArgs,
}

/// Writes the scripts and the manifest of the cells not done, and submits them if asked.
pub fn run(args: &SlurmArgs, _global: &GlobalArgs) -> Result<i32> {
    let cwd = std::env::current_dir().context("could not read the current folder")?;
    let experiment_file = std::path::absolute(&args.file)
        .with_context(|| format!("invalid path '{}'", args.file.display()))?;
    let plan = load_plan(&args.file, args.output.clone(), None, &args.settings.set)?;
    let reuse_stale = args.settings.reuse_stale_stages;
    let output = cwd.join(&plan.output);
    let layout = Layout::new(&output);
    // The queue first: markers read afterwards never look lost merely
    // because their task ended in between.
    let queue = match Queue::query() {
        Ok(queue) => Some(queue),
        Err(error) if args.submit => return Err(error).context("cannot submit"),
        Err(_) => None,
    };
    let states = cell_states(&plan, &layout, queue.as_ref(), reuse_stale)?;
    let pending: BTreeSet<usize> = states
        .iter()
        .enumerate()
        .filter(|(_, s)| !matches!(s, CellState::Done) && !s.in_flight())
        .map(|(i, _)| i)
        .collect();
    let done = states.iter().filter(|s| **s == CellState::Done).count();
    let in_flight = states.iter().filter(|s| s.in_flight()).count();
    let name = &plan.experiment.name;
    if pending.is_empty() {
        println!(
            "experiment '{name}': {done} of {} cells done, {in_flight} queued or running; nothing to submit",
            plan.cells.len()
        );
        return Ok(0);
    }
    let store = plan.store();
    let needs = |c: usize| CellNeeds {
        mines: plan.cells[c].mines(),
        shared_cached: shared_cached(&store, &plan.cells[c], reuse_stale),
    };
    let tasks = plan_tasks(&plan.weak_groups(None), &pending, needs, args.pack as usize);
    let shared = of_stage(&tasks, TaskStage::Shared).len();
    let cell = of_stage(&tasks, TaskStage::Cell).len();
    let max_array = match max_array_size() {
        Ok(size) => size,
        Err(error) if args.submit => return Err(error).context("cannot submit"),
        Err(_) => {
            println!("scontrol unavailable: arrays split at Slurm's default MaxArraySize {DEFAULT_MAX_ARRAY_SIZE}");
            DEFAULT_MAX_ARRAY_SIZE
        }
    };
    let max_parallel = args.max_parallel.map(|k| k as usize);
    let jobs = plan_jobs(shared, cell, max_array, max_parallel);
    let generation = layout.new_generation()?;
    let paths = Paths {
        ablate: std::env::current_exe().context("could not locate the ablate binary")?,
        experiment: experiment_file,
        output: output.clone(),
        workdir: cwd,
        generation: generation.clone(),
        markers: layout.markers(),
        logs: layout.logs(),
    };
    let resources = Resources {
        partition: args.partition.clone(),
        gpus_per_task: args.gpus_per_task,
        cpus_per_task: args.cpus_per_task,
        time: args.time.clone(),
        extra: args.sbatch.clone(),
    };
    let pending_list: Vec<usize> = pending.iter().copied().collect();
    write(&generation.join("tasks.tsv"), &manifest_tsv(&tasks))?;
    let settings = args.settings.run_args();
    write(
        &paths.task_script(),
        &task_script(name, &resources, &paths, &settings),
    )?;
    write(
        &paths.collect_script(),
        &collect_script(name, &resources, &paths, &settings),
    )?;
    let submit_sh = generation.join("submit.sh");
    write(
        &submit_sh,
        &submit_script(name, &jobs, &paths, &pending_list),
    )?;
    println!(
        "experiment '{name}': {done} of {} cells done, {in_flight} queued or running; {} to run: \
         {shared} shared-stage tasks (weak models), {cell} cell tasks (strong models), in {} jobs{}",
        plan.cells.len(),
        pending.len(),
        jobs.len(),
        if split_array(shared.max(cell), max_array).len() > 1 {
            format!(" (arrays split at MaxArraySize {max_array})")
        } else {
            String::new()
        }
    );
    println!("scripts and cell manifest in '{}'", generation.display());
    if !args.submit {
        println!("submit with: bash {}", submit_sh.display());
        return Ok(0);
    }
    clear_markers(&layout, &pending_list)?;
    let ids = submit(name, &jobs, &paths)?;
    for (job, id) in jobs.iter().zip(&ids) {
        let what = match (&job.kind, &job.array) {
            (crate::slurm::script::JobKind::Tasks(stage), Some(array)) => format!(
                "{} tasks {}..{} (--array={})",
                stage.name(),
                array.offset,
                array.offset + array.len - 1,
                array.spec()
            ),
            _ => "collect (results.csv)".to_string(),
        };
        println!("submitted job {id}: {what}");
    }
    println!(
        "follow with: ablate status{}",
        args.settings
            .command_tail(&args.file, args.output.as_deref())
    );
    Ok(0)
}

/// Removes the running and failed markers of cells about to be resubmitted.
fn clear_markers(layout: &Layout, cells: &[usize]) -> Result<()> {
    for cell in cells {
        for suffix in ["running", "failed"] {
            let path = layout.markers().join(format!("{cell}.{suffix}"));
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("could not remove '{}'", path.display()))
                }
            }
        }
    }
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    crate::io::write_atomic(path, text.as_bytes())
        .with_context(|| format!("could not write '{}'", path.display()))
}
