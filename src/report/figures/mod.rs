//! The report's figures. Each is a value computed from the tables (pure,
//! testable) that can draw itself on any plotters backend; [`render`] draws
//! it twice, as PNG (for the Markdown report) and SVG (for the HTML report
//! and for papers), into `figures/`.
//!
//! Which figures appear follows from the experiment's axes: a line plot per
//! numeric axis, strategy bars when strategies are compared, ROC/PR curves
//! for one configuration, training curves and the embedding projection when
//! the run wrote their files.

pub mod axis;
pub mod bars;
pub mod embedding;
pub mod gain;
pub mod roc;
pub mod style;
pub mod sweep;
pub mod training;
pub mod typeset;

use super::compare::Comparison;
use super::gains::GainLines;
use super::load::ResultsTable;
use super::options::ReportOptions;
use super::ReportError;
use crate::io::write_atomic;
use image::ImageEncoder;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

/// Folder of the figures inside a results folder.
pub const FIGURES_DIR: &str = "figures";

/// Result of drawing: the message of the first plotters error.
pub type DrawResult = Result<(), String>;

/// Something that can be drawn on any backend.
pub trait Figure {
    /// Size in pixels (PNG) and user units (SVG).
    fn size(&self) -> (u32, u32) {
        (style::WIDTH, style::HEIGHT)
    }

    /// Draws the whole figure on `root`.
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult;
}

/// A figure written to disk, with the text that goes with it.
#[derive(Debug, Clone)]
pub struct FigureFile {
    /// File stem (`bars`, `sweep-data.pos_fraction`, ...).
    pub stem: String,
    /// Short title.
    pub title: String,
    /// Caption: what is drawn and how to read the error bars.
    pub caption: String,
    /// PNG path relative to the results folder.
    pub png: PathBuf,
    /// SVG path relative to the results folder.
    pub svg: PathBuf,
}

/// Renders `figure` to `<dir>/figures/<stem>.png` and `.svg`.
pub fn render(
    figure: &impl Figure,
    dir: &Path,
    stem: &str,
    title: &str,
    caption: String,
) -> Result<FigureFile, ReportError> {
    style::register_fonts().map_err(|message| ReportError::Figure {
        path: dir.join(FIGURES_DIR),
        message,
    })?;
    let png = PathBuf::from(FIGURES_DIR).join(format!("{stem}.png"));
    let svg = PathBuf::from(FIGURES_DIR).join(format!("{stem}.svg"));
    let (width, height) = figure.size();
    let fail = |path: &Path, message: String| ReportError::Figure {
        path: dir.join(path),
        message,
    };
    let mut pixels = vec![0u8; width as usize * height as usize * 3];
    {
        let root =
            typeset::Typeset::raster(BitMapBackend::with_buffer(&mut pixels, (width, height)))
                .into_drawing_area();
        figure.draw(&root).map_err(|m| fail(&png, m))?;
        root.present().map_err(|e| fail(&png, e.to_string()))?;
    }
    let mut encoded = Vec::new();
    image::codecs::png::PngEncoder::new(&mut encoded)
        .write_image(&pixels, width, height, image::ExtendedColorType::Rgb8)
        .map_err(|e| fail(&png, e.to_string()))?;
    write_atomic(&dir.join(&png), &encoded).map_err(|source| ReportError::Write {
        path: dir.join(&png),
        source,
    })?;
    let mut text = String::new();
    {
        let root = typeset::Typeset::vector(SVGBackend::with_string(&mut text, (width, height)))
            .into_drawing_area();
        figure.draw(&root).map_err(|m| fail(&svg, m))?;
        root.present().map_err(|e| fail(&svg, e.to_string()))?;
    }
    write_atomic(&dir.join(&svg), text.as_bytes()).map_err(|source| ReportError::Write {
        path: dir.join(&svg),
        source,
    })?;
    Ok(FigureFile {
        stem: stem.to_string(),
        title: title.to_string(),
        caption,
        png,
        svg,
    })
}

/// What the figures are drawn from.
pub struct FigureInput<'a> {
    /// The results folder.
    pub dir: &'a Path,
    /// Its `results.csv`.
    pub table: &'a ResultsTable,
    /// `[report]` settings.
    pub options: &'a ReportOptions,
    /// Paired comparisons (for significance marks).
    pub comparisons: &'a [Comparison],
    /// Each strategy's gain over the random control along each numeric axis.
    pub gains: &'a [GainLines],
}

/// Draws every figure the results support; what is skipped and why goes to `notes`.
pub fn draw_all(
    input: &FigureInput<'_>,
    notes: &mut Vec<String>,
) -> Result<Vec<FigureFile>, ReportError> {
    let mut files = Vec::new();
    let metrics = &input.options.metrics;
    let replicates = input.table.replicates().len();
    for axis in crate::report::load::numeric_axes(input.table) {
        if let Some(figure) = sweep::Sweep::build(input.table, axis, metrics) {
            let stem = format!("sweep-{}", slug(&input.table.axes[axis]));
            let title = figure.title();
            files.push(render(
                &figure,
                input.dir,
                &stem,
                &title,
                figure.caption(replicates),
            )?);
        }
    }
    for figure in input.gains.iter().map(|g| gain::Gain::new(g, metrics)) {
        let stem = format!("gain-{}", slug(&figure.key));
        let title = figure.title();
        files.push(render(&figure, input.dir, &stem, &title, figure.caption())?);
    }
    match bars::Bars::build(input.table, input.comparisons, metrics) {
        Some(figure) => {
            let title = figure.title();
            files.push(render(
                &figure,
                input.dir,
                "bars",
                &title,
                figure.caption(replicates),
            )?);
        }
        None => notes
            .push("strategy bars skipped: no configuration has two strategies to compare".into()),
    }
    let chosen = roc::chosen_config(input.table, input.options);
    match roc::Roc::build(input.dir, input.table, chosen)? {
        Some(figure) => {
            let title = figure.title();
            files.push(render(&figure, input.dir, "roc", &title, figure.caption())?);
        }
        None => notes
            .push("ROC/PR figure skipped: no predictions.csv for the chosen configuration".into()),
    }
    match training::Training::build(input.dir, input.table, chosen)? {
        Some(figure) => {
            let title = figure.title();
            files.push(render(&figure, input.dir, "training", &title, figure.caption())?);
        }
        None => notes.push("training curves skipped: no history-weak.csv / history-strong.csv in the chosen configuration's cells".into()),
    }
    match embedding::EmbeddingFigure::build(input.dir, input.table, chosen)? {
        Some(figure) => {
            let title = figure.title();
            files.push(render(
                &figure,
                input.dir,
                "embedding",
                &title,
                figure.caption(),
            )?);
        }
        None => notes.push("embedding projection skipped: no cell has embedding.csv".into()),
    }
    Ok(files)
}

/// A file-name-safe form of an axis key (`data.pos_fraction` -> `data-pos_fraction`).
pub fn slug(key: &str) -> String {
    key.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect()
}
