//! `ablate run` and `ablate plan`: run an experiment file, or show what running it would do.

use super::progress::RunProgress;
use super::GlobalArgs;
use crate::experiment::load::describe;
use crate::experiment::{load_experiment_with, Override};
use crate::runner::calibrate::{load_average, Calibrator};
use crate::runner::error::chain_text;
use crate::runner::estimate::{estimate, ASSUMED_FP_SHARE};
use crate::runner::jobs::Jobs;
use crate::runner::memory::{available_memory, fit_jobs, Bytes, MemoryEstimate};
use crate::runner::resolve::{describe_stale, stale_stages};
use crate::runner::{run_experiment, Plan, RunOptions, Stages};
use anyhow::{Context, Result};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// Arguments of `ablate run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Experiment file (TOML).
    file: PathBuf,
    /// Weak-model groups trained at the same time (threads are split between
    /// them): a number, or `auto`, one job per thread on a CPU and one on a
    /// GPU; never more than the groups left to train. Lowered, with a note,
    /// when that many jobs would not fit in the memory available
    /// (MemAvailable, or the cgroup's limit); see `ablate plan` for the
    /// estimate. Results do not depend on it.
    #[arg(long, default_value_t = Jobs::Auto)]
    jobs: Jobs,
    /// Stop at the first failing cell.
    #[arg(long)]
    fail_fast: bool,
    /// Output folder (default: the file's `output`, else reports/<name>).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Device for every cell, overriding the file's `device`: cpu, cuda or cuda:N.
    #[arg(long)]
    device: Option<String>,
    /// Run only these cells (0-based indices, comma-separated; see `ablate plan`).
    #[arg(long, value_delimiter = ',')]
    cells: Option<Vec<usize>>,
    /// Which stages to compute; the others must be in the cache. `shared`:
    /// dataset, weak models and false-positive queries (cells of strategy
    /// `none` finish); `cell`: each cell's mining and strong model; `cached`:
    /// nothing, only assemble the tables. `shared` and `cell` runs write no
    /// tables and may run side by side on one output folder (cluster array
    /// tasks, see `ablate slurm`).
    #[arg(long, value_enum, default_value_t = Stages::All)]
    stages: Stages,
    #[command(flatten)]
    settings: SettingsArgs,
}

/// Flags that change which settings and cached stages a command sees; the
/// same for `run`, `plan`, `slurm` and `status`, so that they agree on the
/// cells.
#[derive(Debug, Clone, clap::Args)]
pub struct SettingsArgs {
    /// Override a setting of the file (repeatable, applied in order): a
    /// dotted key and a TOML value, e.g. --set training.epochs=3,
    /// --set mining.strategy=random (a bare word is a string),
    /// --set 'matrix.seeds=5', --set 'matrix."mining.strategy"=["none","random"]'.
    /// Checked like the file; recorded in manifest.json and the report.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<Override>,
    /// Reuse cached stages another build of ablate made (a different
    /// version, sources, features or candle patch) from the same settings
    /// and inputs, instead of computing them again; manifest.json lists
    /// them. Synthetic data of another generator version is never reused.
    #[arg(long)]
    pub reuse_stale_stages: bool,
}

impl SettingsArgs {
    /// The settings as arguments of `ablate run` (and `slurm`, `status`).
    pub fn run_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for o in &self.set {
            args.push("--set".to_string());
            args.push(o.text.clone());
        }
        if self.reuse_stale_stages {
            args.push("--reuse-stale-stages".to_string());
        }
        args
    }

    /// The experiment `file`, the `--output` folder when one was given, and
    /// these settings: the arguments that point another `ablate` command
    /// (`run`, `slurm`, `status`) at the same run, each with a leading space.
    pub fn command_tail(&self, file: &Path, output: Option<&Path>) -> String {
        let output = output
            .map(|o| format!(" --output {}", o.display()))
            .unwrap_or_default();
        format!(" {}{output}{}", file.display(), self.shell_words())
    }

    /// [`Self::run_args`] quoted for a shell, each with a leading space.
    fn shell_words(&self) -> String {
        self.run_args()
            .iter()
            .map(|w| {
                if w.starts_with("--") && !w.contains(['=', ' ', '\'', '"']) {
                    format!(" {w}")
                } else {
                    format!(" {}", crate::slurm::script::shell_quote(w))
                }
            })
            .collect()
    }
}

/// Arguments of `ablate plan`.
#[derive(Debug, clap::Args)]
pub struct PlanArgs {
    /// Experiment file (TOML).
    file: PathBuf,
    /// Output folder whose cache is consulted (default as for `ablate run`).
    #[arg(long)]
    output: Option<PathBuf>,
    /// Estimate the time of a run with this many jobs (as `ablate run --jobs`:
    /// a number, or `auto`).
    #[arg(long, default_value_t = Jobs::Auto)]
    jobs: Jobs,
    /// Measure this machine's speeds again instead of reusing the ones
    /// cached in ~/.cache/ablate/speeds.json (e.g. once the machine is quiet).
    #[arg(long)]
    recalibrate: bool,
    /// Skip the time estimate (which measures this machine's speeds the
    /// first time a model, input size and batch are planned).
    #[arg(long)]
    no_estimate: bool,
    #[command(flatten)]
    settings: SettingsArgs,
}

/// Loads an experiment file with its overrides and plans it.
pub(super) fn load_plan(
    file: &Path,
    output: Option<PathBuf>,
    device: Option<&str>,
    overrides: &[Override],
) -> Result<Plan> {
    let mut experiment = load_experiment_with(file, overrides)
        .with_context(|| format!("invalid experiment file '{}'", file.display()))?;
    if let Some(device) = device {
        crate::device::DeviceSpec::parse(device).context("--device")?;
        experiment.base.device = device.to_string();
        for (_, config) in &mut experiment.cells {
            config.device = device.to_string();
        }
    }
    Ok(Plan::new(experiment, output))
}

/// Runs every cell and reports what failed; exit code 1 when any cell failed.
pub fn run(args: &RunArgs, global: &GlobalArgs) -> Result<i32> {
    let plan = load_plan(
        &args.file,
        args.output.clone(),
        args.device.as_deref(),
        &args.settings.set,
    )?;
    if args.stages != Stages::Cached {
        crate::runner::inputs::check_pretrained(&plan).context("model.pretrained")?;
    }
    let threads = global.threads.unwrap_or_else(crate::threads::all_cores);
    let cells = args
        .cells
        .as_ref()
        .map(|c| c.iter().copied().collect::<BTreeSet<usize>>());
    if let Some(bad) = cells
        .as_ref()
        .and_then(|c| c.iter().find(|&&i| i >= plan.cells.len()))
    {
        anyhow::bail!(
            "--cells: cell {bad} does not exist (the experiment has {} cells)",
            plan.cells.len()
        );
    }
    let (jobs, note) = jobs_to_start(
        &plan,
        cells.as_ref(),
        args.jobs,
        threads,
        args.stages,
        args.settings.reuse_stale_stages,
    )?;
    if let Some(note) = note {
        eprintln!("note: {note}");
    }
    let options = RunOptions {
        jobs,
        threads,
        fail_fast: args.fail_fast,
        cells,
        stages: args.stages,
        reuse_stale: args.settings.reuse_stale_stages,
    };
    Ok(run_plan(&plan, &options, global)?.code)
}

/// What [`run_plan`] did.
pub(super) struct Ran {
    /// The results folder.
    pub output: PathBuf,
    /// The exit code: 0, or 1 when a cell (or the report) failed.
    pub code: i32,
}

/// Runs a plan (the one path of `run`, `train` and `pipeline`): says which
/// cached stages another build made, runs the cells, prints the summary and
/// builds the report.
pub(super) fn run_plan(plan: &Plan, options: &RunOptions, global: &GlobalArgs) -> Result<Ran> {
    let store = plan.store();
    let selected: Vec<_> = plan
        .cells
        .iter()
        .filter(|c| options.cells.as_ref().is_none_or(|s| s.contains(&c.index)))
        .collect();
    let stale = stale_stages(&store, selected.iter().copied());
    if !stale.is_empty() {
        let what = describe_stale(&store, &stale);
        if options.reuse_stale {
            println!(
                "{} stages in the cache were made by another build ({what}); those computed from \
                 the inputs this run uses are reused (--reuse-stale-stages)",
                stale.len()
            );
        } else {
            println!(
                "{} stages in the cache were made by another build and are computed again ({what}); \
                 --reuse-stale-stages reuses them instead",
                stale.len()
            );
        }
    }
    let progress = RunProgress::new(selected.len(), global.quiet);
    let started = std::time::Instant::now();
    let summary = run_experiment(plan, options, &|event| progress.on_event(event))
        .with_context(|| format!("run of '{}' failed", plan.experiment.path.display()))?;
    progress.finish();
    let counts = summary.counts;
    println!(
        "{} cells: {} done, {} failed, {} not run; {} trainings planned for {} naive ({} saved by sharing stages); {:.1} s",
        counts.cells,
        summary.succeeded,
        summary.failed.len(),
        summary.skipped,
        counts.weak_trainings + counts.strong_trainings,
        counts.naive_trainings,
        counts.saved(),
        started.elapsed().as_secs_f64()
    );
    if !summary.reused.is_empty() {
        println!(
            "reused {} stages made by another build ({}); listed in manifest.json",
            summary.reused.len(),
            describe_stale(&store, &summary.reused)
        );
    }
    let mut report_failed = false;
    if options.stages.writes_tables() {
        println!(
            "results in '{}'",
            summary.output.join("results.csv").display()
        );
        match crate::report::build_report(&summary.output) {
            Ok(report) => println!(
                "report in '{}' ({} figures)",
                summary.output.join("report.md").display(),
                report.figures
            ),
            Err(error) => {
                // The results are written; only the report is missing.
                eprintln!("error: the report could not be built: {error}");
                report_failed = true;
            }
        }
    } else {
        println!(
            "stages in '{}'; a run without --stages (or --stages cached) writes the tables",
            summary.output.join("cache").display()
        );
    }
    for (cell, error) in &summary.failed {
        eprintln!(
            "cell {cell} ({}) failed: {}",
            describe(&plan.cells[*cell].assignment),
            chain_text(error.as_ref())
        );
    }
    let code = if summary.failed.is_empty() && !report_failed {
        0
    } else {
        1
    };
    Ok(Ran {
        output: summary.output,
        code,
    })
}

/// Prints the test metrics of every model in `results.csv` (for the
/// commands without an experiment file, whose users expect the numbers).
pub(super) fn print_test_metrics(output: &Path) {
    let path = output.join("results.csv");
    let Ok(mut reader) = csv::Reader::from_path(&path) else {
        return;
    };
    let Ok(header) = reader.headers().cloned() else {
        return;
    };
    let column = |name: &str| header.iter().position(|h| h == name);
    let names = [
        "cell",
        "strategy",
        "model",
        "status",
        "trained",
        "mined",
        "auroc",
        "auprc",
        "sensitivity",
        "specificity",
    ];
    let Some(columns) = names
        .iter()
        .map(|n| column(n))
        .collect::<Option<Vec<usize>>>()
    else {
        return;
    };
    println!(
        "{:>4}  {:<11}{:<7}{:>6}{:>8}{:>8}{:>8}{:>8}",
        "cell", "strategy", "model", "mined", "AUROC", "AUPRC", "sens", "spec"
    );
    let mut weak_rows = BTreeSet::new();
    for record in reader.records().flatten() {
        let field = |i: usize| record.get(columns[i]).unwrap_or("");
        // A strong row that trained nothing repeats the weak model, and
        // cells that share a weak model repeat its row.
        if field(3) != "ok" || field(4) != "true" {
            continue;
        }
        let metrics: Vec<String> = (6..10).map(|i| field(i).to_string()).collect();
        if field(2) == "weak" && !weak_rows.insert(metrics) {
            continue;
        }
        let number = |i: usize| {
            field(i)
                .parse::<f64>()
                .map_or("-".to_string(), |v| format!("{v:.4}"))
        };
        println!(
            "{:>4}  {:<11}{:<7}{:>6}{:>8}{:>8}{:>8}{:>8}",
            field(0),
            field(1),
            field(2),
            field(5),
            number(6),
            number(7),
            number(8),
            number(9)
        );
    }
}

/// The jobs a run of `plan`'s `selected` cells starts for `--jobs`: resolved
/// against the weak-model groups with stages left to compute
/// ([`Jobs::resolve`]), then lowered to the jobs that fit in the memory
/// available, with a note saying why; an error when not even one fits.
/// `ablate run` starts this many and `ablate plan` estimates with it.
fn jobs_to_start(
    plan: &Plan,
    selected: Option<&BTreeSet<usize>>,
    requested: Jobs,
    threads: usize,
    stages: Stages,
    reuse_stale: bool,
) -> Result<(usize, Option<String>)> {
    let store = plan.store();
    let work: BTreeSet<usize> = plan
        .cells
        .iter()
        .filter(|cell| selected.is_none_or(|s| s.contains(&cell.index)))
        .filter(|cell| match stages {
            Stages::Cached => false,
            Stages::Shared => !crate::runner::shared_cached(&store, cell, reuse_stale),
            Stages::All | Stages::Cell => !crate::runner::cell_cached(&store, cell, reuse_stale),
        })
        .map(|cell| cell.index)
        .collect();
    let groups = plan.weak_groups(Some(&work)).len();
    let wanted = requested.resolve(threads, groups, plan.on_cpu());
    let Some(estimate) = MemoryEstimate::of(plan, Some(&work))? else {
        return Ok((wanted, None));
    };
    let (jobs, note) = fit_jobs(wanted, &estimate, available_memory().as_ref())?;
    Ok((jobs, note.map(|note| format!("--jobs {requested}: {note}"))))
}

/// Prints the cells, the shared stages, the training counts, the memory a
/// job needs and the estimated time.
pub fn plan(args: &PlanArgs, global: &GlobalArgs) -> Result<i32> {
    let plan = load_plan(&args.file, args.output.clone(), None, &args.settings.set)?;
    let reuse_stale = args.settings.reuse_stale_stages;
    let counts = plan.counts(reuse_stale);
    println!(
        "experiment '{}': {} cells, output '{}'",
        plan.experiment.name,
        counts.cells,
        plan.output.display()
    );
    for cell in &plan.cells {
        println!(
            "  cell {:>3}  weak {}  {}",
            cell.index,
            &cell.keys.weak[..8],
            describe(&cell.assignment)
        );
    }
    let groups = plan.weak_groups(None);
    println!(
        "stages: {} weak models (shared by {} cells; {} already cached), up to {} strong models",
        counts.weak_trainings, counts.cells, counts.weak_cached, counts.strong_trainings
    );
    println!(
        "trainings: {} instead of {} ({} saved by sharing); {} weak-model groups",
        counts.weak_trainings + counts.strong_trainings,
        counts.naive_trainings,
        counts.saved(),
        groups.len()
    );
    let store = plan.store();
    let stale = stale_stages(&store, &plan.cells);
    if !stale.is_empty() {
        println!(
            "stale: {} stages in the cache were made by another build ({}); `ablate run` computes them again{}",
            stale.len(),
            describe_stale(&store, &stale),
            if reuse_stale {
                ", except those --reuse-stale-stages reuses"
            } else {
                " (--reuse-stale-stages reuses them)"
            }
        );
    }
    if let Err(e) = crate::runner::inputs::check_pretrained(&plan) {
        println!("model.pretrained: {e}");
    }
    if let Some(memory) = MemoryEstimate::of(&plan, None)? {
        let available = available_memory();
        let fit = available
            .as_ref()
            .map(|a| {
                format!(
                    "; {} jobs fit in {} ({})",
                    memory.jobs_that_fit(a.bytes),
                    Bytes(a.bytes),
                    a.source
                )
            })
            .unwrap_or_default();
        println!(
            "memory: about {} per job ({}) and {} of decoded images{fit}",
            Bytes(memory.per_job),
            memory.largest,
            Bytes(memory.shared)
        );
    }
    if args.no_estimate {
        return Ok(0);
    }
    let threads = global.threads.unwrap_or_else(crate::threads::all_cores);
    let mut calibrator = Calibrator::new(args.recalibrate);
    let jobs = match jobs_to_start(&plan, None, args.jobs, threads, Stages::All, reuse_stale) {
        Ok((jobs, note)) => {
            if let Some(note) = note {
                println!("note: {note}");
            }
            jobs
        }
        Err(e) => {
            println!("no time estimate: {e:#}");
            return Ok(0);
        }
    };
    match estimate(&plan, None, jobs, threads, reuse_stale, &mut calibrator) {
        Ok(e) => {
            let per_job = (threads / e.jobs).max(1);
            println!(
                "estimated time with --jobs {} ({} job{}, {per_job} thread{}{}): {} (data {}, {} trainings {}, queries {}, report {}{})",
                args.jobs,
                e.jobs,
                if e.jobs > 1 { "s" } else { "" },
                if per_job > 1 { "s" } else { "" },
                if e.jobs > 1 { " each" } else { "" },
                human_duration(e.seconds),
                human_duration(e.data),
                e.trainings,
                human_duration(e.training),
                human_duration(e.query),
                human_duration(e.report),
                if e.jobs > 1 { "; trainings and queries summed over the jobs" } else { "" }
            );
            if e.assumed_mining {
                println!(
                    "  strong models' mined patches assumed: {:.0}% of the validation negatives as false positives, until the weak models' queries are cached",
                    100.0 * ASSUMED_FP_SHARE
                );
            }
            println!("  speeds of this machine:");
            for line in &calibrator.report {
                println!("    {line}");
            }
            if let Some(load) = load_average() {
                println!(
                    "  load average now: {load:.2} (speeds measured under load predict a run under the same load; `--recalibrate` measures again)"
                );
            }
        }
        Err(e) => println!("no time estimate: {e}"),
    }
    Ok(0)
}

/// `1 h 02 min`, `3 min 20 s`, `12 s`.
fn human_duration(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_tails_point_at_the_same_run_for_a_shell() {
        let settings = SettingsArgs {
            set: vec![
                "training.epochs=3".parse().unwrap(),
                "mining.strategy=\"random\"".parse().unwrap(),
            ],
            reuse_stale_stages: true,
        };
        let file = Path::new("experiments/quick.toml");
        assert_eq!(
            settings.command_tail(file, Some(Path::new("out"))),
            " experiments/quick.toml --output out --set 'training.epochs=3' \
             --set 'mining.strategy=\"random\"' --reuse-stale-stages"
        );
        let none = SettingsArgs {
            set: Vec::new(),
            reuse_stale_stages: false,
        };
        assert_eq!(none.command_tail(file, None), " experiments/quick.toml");
    }
}
