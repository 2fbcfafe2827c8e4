//! `ablate status`: which cells of an experiment are done, running, queued,
//! failed (with their logs) or missing, from the cache, the cluster tasks'
//! markers and Slurm's queue.

use super::run::{load_plan, SettingsArgs};
use super::GlobalArgs;
use crate::experiment::load::describe;
use crate::runner::resolve::{describe_stale, stale_stages};
use crate::slurm::status::{cell_states, latest_collect, CellState, Queue};
use crate::slurm::Layout;
use anyhow::Result;
use std::path::PathBuf;

/// Arguments of `ablate status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Experiment file (TOML).
    file: PathBuf,
    /// Output folder (default: the file's `output`, else reports/<name>).
    #[arg(long)]
    output: Option<PathBuf>,
    /// As given to `ablate run` or `ablate slurm`.
    #[command(flatten)]
    settings: SettingsArgs,
}

/// At most this many cells listed one per line in a section.
const LIST_LIMIT: usize = 50;

/// Prints the state of every cell; exit code 0 when all are done, else 1.
pub fn run(args: &StatusArgs, _global: &GlobalArgs) -> Result<i32> {
    let plan = load_plan(&args.file, args.output.clone(), None, &args.settings.set)?;
    let layout = Layout::new(&plan.output);
    let queue = Queue::query().ok();
    let reuse_stale = args.settings.reuse_stale_stages;
    let states = cell_states(&plan, &layout, queue.as_ref(), reuse_stale)?;
    let count = |f: fn(&CellState) -> bool| states.iter().filter(|s| f(s)).count();
    let done = count(|s| matches!(s, CellState::Done));
    let running = count(|s| matches!(s, CellState::Running(_)));
    let queued = count(|s| matches!(s, CellState::Queued { .. }));
    let failed = count(|s| matches!(s, CellState::Failed(_) | CellState::Lost(_)));
    let missing = count(|s| matches!(s, CellState::Missing));
    println!(
        "experiment '{}': {} cells: {done} done, {running} running, {queued} queued, {failed} failed, {missing} missing",
        plan.experiment.name,
        states.len()
    );
    if queue.is_none() {
        println!(
            "(squeue unavailable: running markers are trusted and queued tasks are not shown)"
        );
    }
    let label = |cell: usize| format!("cell {cell} ({})", describe(&plan.cells[cell].assignment));
    section("running", &states, |cell, state| match state {
        CellState::Running(r) => Some(format!(
            "{}: task {} on {} since {}, log {}",
            label(cell),
            r.job,
            r.host,
            r.started,
            r.log.display()
        )),
        _ => None,
    });
    section("queued", &states, |cell, state| match state {
        CellState::Queued { job } => Some(format!("{}: task {job}", label(cell))),
        _ => None,
    });
    section("failed", &states, |cell, state| match state {
        CellState::Failed(failures) => {
            let mut text = label(cell);
            for f in failures.iter().rev() {
                text.push_str(&format!(
                    "\n      task {} exited {} at {}, log {}",
                    f.job,
                    f.exit,
                    f.ended,
                    f.log.display()
                ));
            }
            Some(text)
        }
        CellState::Lost(r) => Some(format!(
            "{}: task {} on {} (started {}) left the queue without recording an end \
             (killed, or its node failed), log {}",
            label(cell),
            r.job,
            r.host,
            r.started,
            r.log.display()
        )),
        _ => None,
    });
    let missing_cells: Vec<usize> = states
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, CellState::Missing))
        .map(|(i, _)| i)
        .collect();
    if !missing_cells.is_empty() {
        println!("missing: cells {}", ranges(&missing_cells));
    }
    let store = plan.store();
    let stale = stale_stages(&store, &plan.cells);
    if !stale.is_empty() {
        println!(
            "stale: {} stages in the cache were made by another build ({}); {}",
            stale.len(),
            describe_stale(&store, &stale),
            if reuse_stale {
                "those made from the same inputs count as done (--reuse-stale-stages)"
            } else {
                "their cells count as missing until computed again (or pass --reuse-stale-stages)"
            }
        );
    }
    let results = plan.output.join("results.csv");
    match std::fs::metadata(&results).and_then(|m| m.modified()) {
        Ok(time) => println!(
            "tables: '{}' written {}",
            results.display(),
            crate::runner::manifest::rfc3339(time)
        ),
        Err(_) => println!("tables: '{}' not written yet", results.display()),
    }
    if let (Some(id), Some(queue)) = (latest_collect(&layout)?, &queue) {
        if let Some(state) = queue.state(&id) {
            println!("collect job {id}: {}", state.to_lowercase());
        }
    }
    if failed + missing > 0 {
        println!(
            "resubmit the failed and missing cells with: ablate slurm{} --submit",
            args.settings
                .command_tail(&args.file, args.output.as_deref())
        );
    }
    Ok(if done == states.len() { 0 } else { 1 })
}

/// Prints the lines of the cells `line` describes, under a heading.
fn section(
    heading: &str,
    states: &[CellState],
    line: impl Fn(usize, &CellState) -> Option<String>,
) {
    let lines: Vec<String> = states
        .iter()
        .enumerate()
        .filter_map(|(cell, state)| line(cell, state))
        .collect();
    if lines.is_empty() {
        return;
    }
    println!("{heading}:");
    for text in lines.iter().take(LIST_LIMIT) {
        println!("  {text}");
    }
    if lines.len() > LIST_LIMIT {
        println!("  ... and {} more", lines.len() - LIST_LIMIT);
    }
}

/// `0-3, 5, 7-8` for sorted cell numbers.
fn ranges(cells: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cells.len() {
        let start = cells[i];
        while i + 1 < cells.len() && cells[i + 1] == cells[i] + 1 {
            i += 1;
        }
        parts.push(if cells[i] == start {
            start.to_string()
        } else {
            format!("{start}-{}", cells[i])
        });
        i += 1;
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_ranges() {
        assert_eq!(ranges(&[]), "");
        assert_eq!(ranges(&[4]), "4");
        assert_eq!(ranges(&[0, 1, 2, 3, 5, 7, 8]), "0-3, 5, 7-8");
    }
}
