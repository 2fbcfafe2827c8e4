//! Command-line interface: argument definitions and one module per command.
//!
//! Library code returns typed errors; this edge turns them into `anyhow`
//! errors with context, prints them, and picks the exit code (0 success,
//! 1 a run finished with failures, 2 an error).

mod common;
mod config;
mod fetch;
mod pipeline;
mod progress;
mod report;
mod run;
mod slurm;
mod speed;
mod status;
mod synth;
mod train;

use clap::{Parser, Subcommand};

/// Reproducible ablation studies of CNN training strategies (hard negative
/// mining for lymphatic-invasion classification) on candle.
#[derive(Debug, Parser)]
#[command(
    name = "ablate",
    version = concat!(
        env!("CARGO_PKG_VERSION"),
        " (build ",
        env!("ABLATE_BUILD_FINGERPRINT"),
        ", revision ",
        env!("ABLATE_GIT_REVISION"),
        ")"
    ),
    about,
    long_about = None
)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

/// Flags accepted by every command.
#[derive(Debug, Clone, clap::Args)]
pub struct GlobalArgs {
    /// Worker threads for tensor maths and image decoding (default: all cores).
    #[arg(long, global = true, env = "ABLATE_THREADS")]
    pub threads: Option<usize>,
    /// Print only errors and final summaries: no progress bars.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Generate the seeded synthetic LI-like dataset in the public layout.
    Synth(synth::SynthArgs),
    /// Train one model and evaluate it on the test split (a one-cell experiment, run as `ablate run` runs it).
    Train(train::TrainArgs),
    /// Run the four-step method (weak model, false-positive query, mining, strong model) for one configuration and one or more mining strategies, as `ablate run` runs an experiment.
    Pipeline(pipeline::PipelineArgs),
    /// Run every cell of an experiment file.
    Run(run::RunArgs),
    /// Show the cells, shared stages and training counts of an experiment file without running it.
    Plan(run::PlanArgs),
    /// Print the experiment-file settings with their defaults.
    Config(config::ConfigArgs),
    /// Rebuild the tables, figures and report of a results folder from its CSV files.
    Report(report::ReportArgs),
    /// Run an experiment's unfinished cells as Slurm job arrays (write the scripts, or submit them).
    Slurm(slurm::SlurmArgs),
    /// Show which cells are done, running, queued, failed (with logs) or missing.
    Status(status::StatusArgs),
    /// Measure training and inference images per second of a model on this machine.
    Speed(speed::SpeedArgs),
    /// Download the paper's inputs: the public dataset, ImageNet weights.
    Fetch(fetch::FetchArgs),
}

/// Runs the command line and returns the process exit code.
pub fn main() -> i32 {
    // candle attaches a backtrace to its errors whenever backtraces are on;
    // keep them for panics only, so error messages stay readable.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    let cli = Cli::parse();
    if let Err(error) = configure_threads(cli.global.threads) {
        eprintln!("error: {error:#}");
        return 2;
    }
    // Every command runs on a worker of the global pool, where the kernels'
    // parallel loops start without a cross-thread hand-off.
    let result = crate::threads::on_pool_thread(|| dispatch(&cli));
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            2
        }
    }
}

/// Runs the parsed command.
fn dispatch(cli: &Cli) -> anyhow::Result<i32> {
    match &cli.command {
        Command::Synth(args) => synth::run(args, &cli.global).map(|()| 0),
        Command::Train(args) => train::run(args, &cli.global),
        Command::Pipeline(args) => pipeline::run(args, &cli.global),
        Command::Run(args) => run::run(args, &cli.global),
        Command::Plan(args) => run::plan(args, &cli.global),
        Command::Config(args) => config::run(args),
        Command::Report(args) => report::run(args, &cli.global),
        Command::Slurm(args) => slurm::run(args, &cli.global),
        Command::Status(args) => status::run(args, &cli.global),
        Command::Speed(args) => speed::run(args).map(|()| 0),
        Command::Fetch(args) => fetch::run(args, &cli.global),
    }
}

/// Sets the thread counts (see [`crate::threads::configure`]) before any
/// thread starts.
fn configure_threads(threads: Option<usize>) -> anyhow::Result<()> {
    if threads == Some(0) {
        anyhow::bail!("--threads must be at least 1");
    }
    let threads = threads.unwrap_or_else(crate::threads::all_cores);
    crate::threads::configure(threads)
        .map_err(|e| anyhow::anyhow!("could not start {threads} worker threads: {e}"))
}
