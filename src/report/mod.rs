//! `ablate report`: the tables and figures of a paper's ablation section,
//! regenerated from the CSV files of a results folder and nothing else.
//!
//! Data flows one way: [`load`] reads `results.csv` (and [`cells`] the
//! per-cell files when a figure or test needs them); [`summary`],
//! [`compare`], [`cell_tests`], [`gains`] and [`trends`] compute the tables; [`figures`] draws
//! them; [`document`] assembles one report that [`markdown`] and [`html`]
//! render. Every file is written atomically, so a report can be rebuilt any
//! number of times, also from a copied folder.

pub mod cell_tests;
pub mod cells;
pub mod compare;
pub mod curves;
pub mod document;
pub mod figures;
pub mod found;
pub mod gains;
pub mod html;
pub mod load;
pub mod markdown;
pub mod options;
pub mod pca;
pub mod provenance;
pub mod summary;
pub mod trends;

use crate::io::write_atomic;
use std::path::{Path, PathBuf};

/// The results table a report is built from.
pub const RESULTS_FILE: &str = "results.csv";

/// Why a report could not be built. Messages name the file (and line).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be read.
    #[error(
        "could not read '{path}': {source}; is this a results folder written by `ablate run`?"
    )]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("could not write '{path}': {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A malformed line.
    #[error("'{path}' line {line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line (header = 1).
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A required column is absent.
    #[error("'{path}' has no column `{column}`; write it with `ablate run` (or add the column)")]
    MissingColumn {
        /// The file.
        path: PathBuf,
        /// The column.
        column: String,
    },
    /// `results.csv` has a header but no rows.
    #[error(
        "'{path}' has no result rows; run the experiment with `ablate run <experiment file>` first"
    )]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// Contents that contradict each other or a setting.
    #[error("'{path}': {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A figure could not be drawn.
    #[error("could not draw '{path}': {message}")]
    Figure {
        /// The figure file.
        path: PathBuf,
        /// The drawing error.
        message: String,
    },
}

/// What [`build_report`] wrote.
#[derive(Debug, Clone)]
pub struct ReportSummary {
    /// The results folder.
    pub dir: PathBuf,
    /// Configurations (distinct axis settings).
    pub configurations: usize,
    /// Finished cells.
    pub cells: usize,
    /// Failed cells.
    pub failed_cells: usize,
    /// Rows of `comparisons.csv`.
    pub comparisons: usize,
    /// Rows of `cell_tests.csv`.
    pub cell_tests: usize,
    /// Figures drawn (each as PNG and SVG).
    pub figures: usize,
    /// Every file written, in order.
    pub files: Vec<PathBuf>,
    /// What was skipped and why (absent optional files, untestable cells).
    pub notes: Vec<String>,
}

/// Builds the report of the results folder `dir`: `summary.csv`,
/// `comparisons.csv`, `cell_tests.csv`, `gain_trends.csv` (only its header
/// unless a numeric axis has a gain over the random control),
/// `figures/*.png|svg`, `report.md`
/// and `report.html`, all inside `dir`.
pub fn build_report(dir: &Path) -> Result<ReportSummary, ReportError> {
    let table = load::ResultsTable::read(&dir.join(RESULTS_FILE))?;
    let provenance = provenance::Provenance::read(dir)?;
    let options = options::ReportOptions::parse(
        provenance.experiment_text.as_deref(),
        &provenance.experiment_path,
        &table,
    )?;
    let mut notes = Vec::new();
    let mut files = Vec::new();

    let metrics = summary::summary_metrics(&table, &options.metrics);
    let summaries = summary::summarize(&table, &metrics);
    let comparisons = compare::compare_all(&table, &options.compared_metrics(&table));
    let cell_tests = cell_tests::run(&table, dir, &mut notes)?;
    // The gain lines along each numeric axis, for the trend table and the
    // gain figures alike.
    let gain_lines = gains::GainLines::all(&table, &options.metrics);
    let trend_rows = trends::trend_rows(&gain_lines, &options.metrics);
    // Tables first: a figure that fails to draw loses none of them.
    write_csv(
        dir,
        "summary.csv",
        summary::to_csv(&table, &summaries, &metrics),
        &mut files,
    )?;
    write_csv(
        dir,
        "comparisons.csv",
        compare::to_csv(&table, &comparisons),
        &mut files,
    )?;
    write_csv(
        dir,
        "cell_tests.csv",
        cell_tests::to_csv(&table, &cell_tests),
        &mut files,
    )?;
    write_csv(
        dir,
        "gain_trends.csv",
        trends::to_csv(&trend_rows),
        &mut files,
    )?;

    let input = figures::FigureInput {
        dir,
        table: &table,
        options: &options,
        comparisons: &comparisons,
        gains: &gain_lines,
    };
    let figure_files = figures::draw_all(&input, &mut notes)?;
    for f in &figure_files {
        files.push(dir.join(&f.png));
        files.push(dir.join(&f.svg));
    }
    let document = document::build(&document::Inputs {
        dir,
        table: &table,
        options: &options,
        provenance: &provenance,
        summaries: &summaries,
        comparisons: &comparisons,
        cell_tests: &cell_tests,
        trends: &trend_rows,
        figures: &figure_files,
        notes: &notes,
    });
    write(
        dir,
        "report.md",
        markdown::render(&document).as_bytes(),
        &mut files,
    )?;
    write(
        dir,
        "report.html",
        html::render(&document, dir)?.as_bytes(),
        &mut files,
    )?;
    Ok(ReportSummary {
        dir: dir.to_path_buf(),
        configurations: table.configurations.len(),
        cells: table.ok_cells().len(),
        failed_cells: table.failed_cells().len(),
        comparisons: comparisons.len(),
        cell_tests: cell_tests.len(),
        figures: figure_files.len(),
        files,
        notes,
    })
}

/// Writes `dir/name` atomically and records it.
fn write(
    dir: &Path,
    name: &str,
    bytes: &[u8],
    files: &mut Vec<PathBuf>,
) -> Result<(), ReportError> {
    let path = dir.join(name);
    write_atomic(&path, bytes).map_err(|source| ReportError::Write {
        path: path.clone(),
        source,
    })?;
    files.push(path);
    Ok(())
}

/// Writes a serialised CSV table.
fn write_csv(
    dir: &Path,
    name: &str,
    bytes: Result<Vec<u8>, csv::Error>,
    files: &mut Vec<PathBuf>,
) -> Result<(), ReportError> {
    let bytes = bytes.map_err(|e| ReportError::Write {
        path: dir.join(name),
        source: std::io::Error::other(e.to_string()),
    })?;
    write(dir, name, &bytes, files)
}
