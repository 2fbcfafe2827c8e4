//! `ablate report <dir>`: rebuild the tables, figures and report of a
//! results folder from its CSV files.

use super::GlobalArgs;
use crate::report::build_report;
use anyhow::Context;
use std::path::PathBuf;

/// Arguments of `ablate report`.
#[derive(Debug, clap::Args)]
pub struct ReportArgs {
    /// Results folder written by `ablate run` (holds results.csv).
    dir: PathBuf,
}

/// Builds the report and prints what was written.
pub fn run(args: &ReportArgs, global: &GlobalArgs) -> anyhow::Result<i32> {
    let summary = build_report(&args.dir)
        .with_context(|| format!("could not build the report of '{}'", args.dir.display()))?;
    if !global.quiet {
        for note in &summary.notes {
            eprintln!("note: {note}");
        }
        println!(
            "report of {} configuration(s) ({} cells, {} failed): {} comparisons, {} cell tests, {} figures",
            summary.configurations,
            summary.cells,
            summary.failed_cells,
            summary.comparisons,
            summary.cell_tests,
            summary.figures
        );
        println!("wrote '{}'", args.dir.join("report.md").display());
        println!("wrote '{}'", args.dir.join("report.html").display());
    }
    Ok(0)
}
