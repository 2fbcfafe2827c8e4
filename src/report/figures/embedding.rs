//! Pool embeddings projected to two dimensions by PCA: pool patches
//! coloured by their kind (synthetic data), the false positives used as
//! queries as triangles, and the mined negatives ringed.
//!
//! The cell is the first of the chosen configuration with an
//! `embedding.csv`, else the first cell that has one.

use super::axis::{format_value, nice_range};
use super::style::{self, Axis, Frame, LegendEntry, Marker, Swatch, PALETTE};
use super::{DrawResult, Figure};
use crate::report::cells::read_embedding;
use crate::report::load::{Model, ResultsTable};
use crate::report::pca::{pca_2d, Projection};
use crate::report::ReportError;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// Seed of the PCA start vectors.
const PCA_SEED: u64 = 0;

/// The figure.
#[derive(Debug, Clone)]
pub struct EmbeddingFigure {
    /// The cell shown.
    pub cell: usize,
    /// Its configuration's label.
    pub label: String,
    /// Distinct kinds, in colour order.
    pub kinds: Vec<String>,
    /// Per row: index into `kinds`.
    pub kind_of: Vec<usize>,
    /// Per row: role (`pool`, `fp`, `mined`).
    pub roles: Vec<String>,
    /// The projection.
    pub projection: Projection,
}

impl EmbeddingFigure {
    /// Finds a cell with `embedding.csv` (the chosen configuration's first) and projects it.
    pub fn build(
        dir: &Path,
        table: &ResultsTable,
        config: usize,
    ) -> Result<Option<Self>, ReportError> {
        let mut cells: Vec<usize> = table
            .ok_rows_of(config, Model::Weak)
            .map(|r| r.cell)
            .collect();
        cells.extend(
            table
                .ok_cells()
                .into_iter()
                .filter(|c| !cells.contains(c))
                .collect::<Vec<_>>(),
        );
        for cell in cells {
            let Some(embedding) = read_embedding(dir, cell)? else {
                continue;
            };
            let Some(projection) = pca_2d(&embedding.features, PCA_SEED) else {
                continue;
            };
            let mut kinds: Vec<String> = embedding.kinds.clone();
            kinds.sort();
            kinds.dedup();
            let kind_of = embedding
                .kinds
                .iter()
                .map(|k| kinds.iter().position(|x| x == k).unwrap_or(0))
                .collect();
            let config = table
                .rows
                .iter()
                .find(|r| r.cell == cell)
                .map(|r| r.config)
                .unwrap_or(config);
            return Ok(Some(Self {
                cell,
                label: table.short_label(config),
                kinds,
                kind_of,
                roles: embedding.roles,
                projection,
            }));
        }
        Ok(None)
    }

    /// Figure title.
    pub fn title(&self) -> String {
        format!("Pool embeddings, PCA (cell {}: {})", self.cell, self.label)
    }

    /// Caption for the report.
    pub fn caption(&self) -> String {
        let count = |role: &str| self.roles.iter().filter(|r| r.as_str() == role).count();
        format!(
            "Weak-model features of the weakly labeled pool (cell {}) projected on their first two principal components \
             ({:.0}% and {:.0}% of the variance), coloured by patch kind; triangles: the {} false positives used as queries; \
             rings: the {} mined negatives.",
            self.cell,
            100.0 * self.projection.explained[0],
            100.0 * self.projection.explained[1],
            count("fp"),
            count("mined")
        )
    }

    fn kind_color(&self, kind: usize) -> RGBColor {
        // Vermillion is kept for the queries.
        let palette: Vec<RGBColor> = PALETTE
            .iter()
            .copied()
            .filter(|&c| c != style::VERMILLION)
            .collect();
        palette[kind % palette.len()]
    }
}

impl Figure for EmbeddingFigure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let mut legend: Vec<LegendEntry> = self
            .kinds
            .iter()
            .enumerate()
            .map(|(i, k)| LegendEntry {
                label: k.clone(),
                swatch: Swatch::Point(self.kind_color(i), Marker::Circle),
            })
            .collect();
        legend.push(LegendEntry {
            label: "false positive (query)".into(),
            swatch: Swatch::Point(style::VERMILLION, Marker::Triangle),
        });
        legend.push(LegendEntry {
            label: "mined negative".into(),
            swatch: Swatch::Point(style::INK, Marker::Ring),
        });
        let area = style::header(root, &self.title(), None, &legend)?;
        let points = &self.projection.points;
        let span = |f: fn(&(f64, f64)) -> f64| {
            points
                .iter()
                .map(f)
                .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
                    (a.min(v), b.max(v))
                })
        };
        let axis = |(lo, hi): (f64, f64)| {
            let pad = (hi - lo) * 0.04;
            Axis::from_range(&nice_range(
                lo - pad,
                hi + pad,
                (f64::NEG_INFINITY, f64::INFINITY),
                6,
            ))
        };
        let (x_axis, y_axis) = (axis(span(|p| p.0)), axis(span(|p| p.1)));
        let x_desc = format!(
            "PC1 ({:.0}% of variance)",
            100.0 * self.projection.explained[0]
        );
        let y_desc = format!(
            "PC2 ({:.0}% of variance)",
            100.0 * self.projection.explained[1]
        );
        let frame = Frame {
            caption: "",
            x: &x_axis,
            y: &y_axis,
            x_desc: &x_desc,
            y_desc: &y_desc,
            x_format: &|v| format_value(*v),
            y_format: &|v| format_value(*v),
            x_grid: true,
        };
        let mut chart = style::chart(&area, &frame)?;
        let rows = || self.roles.iter().enumerate();
        for (i, _) in rows().filter(|(_, r)| r.as_str() != "fp") {
            let color = self.kind_color(self.kind_of[i]);
            style::marker(
                &mut chart,
                points[i],
                Marker::Circle,
                color.mix(0.55).filled(),
                5,
            )?;
        }
        for (i, _) in rows().filter(|(_, r)| r.as_str() == "mined") {
            style::marker(
                &mut chart,
                points[i],
                Marker::Ring,
                style::INK.stroke_width(2),
                10,
            )?;
        }
        for (i, _) in rows().filter(|(_, r)| r.as_str() == "fp") {
            style::marker(
                &mut chart,
                points[i],
                Marker::Triangle,
                style::VERMILLION.filled(),
                10,
            )?;
        }
        Ok(())
    }
}
