//! ROC and precision-recall curves of the weak and strong model for one
//! configuration: every seed/fold as a thin line, the mean curve thick
//! (vertical averaging on a fixed grid, see [`crate::report::curves`]).
//!
//! The configuration is `[report] roc_cell`'s, else the first one using
//! `knn-l2` (the paper's method), else the first with a trained strong
//! model, else the first.

use super::axis::nice_range;
use super::style::{self, Axis, Frame, LegendEntry, Swatch};
use super::{DrawResult, Figure};
use crate::report::cells::read_predictions;
use crate::report::curves::{grid, mean_curve, pr_curve, precision_at, roc_curve, tpr_at};
use crate::report::load::{Model, ResultsTable};
use crate::report::options::ReportOptions;
use crate::report::ReportError;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// The configuration shown in the ROC/PR and training figures.
pub fn chosen_config(table: &ResultsTable, options: &ReportOptions) -> usize {
    if let Some(row) = options
        .roc_cell
        .and_then(|cell| table.rows.iter().find(|r| r.cell == cell))
    {
        return row.config;
    }
    let n = table.configurations.len();
    (0..n)
        .find(|&c| table.configurations[c].strategy == "knn-l2")
        .or_else(|| (0..n).find(|&c| table.strong_trained(c)))
        .unwrap_or(0)
}

/// The curves of one model over the replicates.
#[derive(Debug, Clone)]
pub struct ModelCurves {
    /// Which model.
    pub model: Model,
    /// ROC curve per replicate.
    pub rocs: Vec<Vec<(f64, f64)>>,
    /// PR curve per replicate.
    pub prs: Vec<Vec<(f64, f64)>>,
    /// Vertically averaged ROC.
    pub mean_roc: Vec<(f64, f64)>,
    /// Averaged interpolated precision.
    pub mean_pr: Vec<(f64, f64)>,
    /// AUROC per replicate.
    pub aurocs: Vec<f64>,
}

/// The figure.
#[derive(Debug, Clone)]
pub struct Roc {
    /// Configuration label.
    pub label: String,
    /// Weak, then strong when trained.
    pub models: Vec<ModelCurves>,
    /// Share of positives in the test sets (the PR chance level).
    pub prevalence: f64,
}

impl Roc {
    /// Reads the predictions of every finished cell of `config`; `None` when there are none.
    pub fn build(
        dir: &Path,
        table: &ResultsTable,
        config: usize,
    ) -> Result<Option<Self>, ReportError> {
        let mut cells: Vec<usize> = table
            .ok_rows_of(config, Model::Weak)
            .map(|r| r.cell)
            .collect();
        cells.dedup();
        let mut per_model: Vec<ModelCurves> = Model::BOTH
            .iter()
            .map(|&model| ModelCurves {
                model,
                rocs: Vec::new(),
                prs: Vec::new(),
                mean_roc: Vec::new(),
                mean_pr: Vec::new(),
                aurocs: Vec::new(),
            })
            .collect();
        let (mut positives, mut total) = (0usize, 0usize);
        for cell in cells {
            let Some(predictions) = read_predictions(dir, cell)? else {
                continue;
            };
            positives += predictions.weak.positives();
            total += predictions.weak.labels.len();
            for curves in per_model.iter_mut() {
                if let Some(scores) = predictions.of(curves.model) {
                    let roc = roc_curve(&scores.labels, &scores.scores);
                    if roc.is_empty() {
                        continue;
                    }
                    curves.aurocs.push(
                        crate::metrics::ranking::roc_auc(&scores.labels, &scores.scores)
                            .unwrap_or(f64::NAN),
                    );
                    curves.rocs.push(roc);
                    curves.prs.push(pr_curve(&scores.labels, &scores.scores));
                }
            }
        }
        per_model.retain(|m| !m.rocs.is_empty());
        if per_model.is_empty() {
            return Ok(None);
        }
        for m in per_model.iter_mut() {
            m.mean_roc = mean_curve(&m.rocs, tpr_at);
            // Every ROC curve starts at (0, 0); the grid's first point is the
            // vertical segment's top.
            m.mean_roc.insert(0, (0.0, 0.0));
            m.mean_pr = mean_curve(&m.prs, precision_at);
        }
        Ok(Some(Self {
            label: table.short_label(config),
            models: per_model,
            prevalence: positives as f64 / total.max(1) as f64,
        }))
    }

    /// Figure title.
    pub fn title(&self) -> String {
        format!("ROC and precision-recall curves ({})", self.label)
    }

    /// Caption for the report.
    pub fn caption(&self) -> String {
        let n = self.models[0].rocs.len();
        format!(
            "Test-set ROC (left) and precision-recall (right) curves of the weak and strong model for {}: \
             {n} {} as thin lines, their mean as a thick line (ROC: vertical averaging of the TPR on a fixed FPR grid; \
             PR: interpolated precision, the best precision at that recall or above, averaged on a fixed recall grid). Dashed: chance level.",
            self.label,
            if n == 1 { "replicate" } else { "seeds/folds" }
        )
    }

    fn color(model: Model) -> RGBColor {
        match model {
            Model::Weak => style::GREY,
            Model::Strong => style::BLUE,
        }
    }

    fn draw_curves<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        roc: bool,
    ) -> DrawResult {
        let unit = Axis::from_range(&nice_range(0.0, 1.0, (0.0, 1.0), 5));
        let (caption, x_desc, y_desc) = if roc {
            ("ROC", "False positive rate", "True positive rate")
        } else {
            ("Precision-recall", "Recall", "Precision")
        };
        let frame = Frame {
            caption,
            x: &unit,
            y: &unit,
            x_desc,
            y_desc,
            x_format: &|v| format!("{v:.1}"),
            y_format: &|v| format!("{v:.1}"),
            x_grid: true,
        };
        let mut chart = style::chart(area, &frame)?;
        let chance = if roc {
            vec![(0.0, 0.0), (1.0, 1.0)]
        } else {
            vec![(0.0, self.prevalence), (1.0, self.prevalence)]
        };
        chart
            .draw_series(DashedLineSeries::new(
                chance,
                12,
                8,
                style::INK.mix(0.45).stroke_width(2),
            ))
            .map_err(|e| e.to_string())?;
        for m in &self.models {
            let color = Self::color(m.model);
            for curve in if roc { &m.rocs } else { &m.prs } {
                // PR curves as interpolated precision, like their mean: raw
                // precision saw-tooths at every negative.
                let points: Vec<(f64, f64)> = if roc {
                    curve.clone()
                } else {
                    grid()
                        .into_iter()
                        .map(|r| (r, precision_at(curve, r)))
                        .collect()
                };
                style::polyline(&mut chart, &points, color.mix(0.35), 2)?;
            }
        }
        for m in &self.models {
            let mean = if roc { &m.mean_roc } else { &m.mean_pr };
            style::polyline(&mut chart, mean, Self::color(m.model).to_rgba(), 5)?;
        }
        Ok(())
    }
}

impl Figure for Roc {
    fn size(&self) -> (u32, u32) {
        (style::WIDTH, 900)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let legend: Vec<LegendEntry> = self
            .models
            .iter()
            .map(|m| {
                let mean = m.aurocs.iter().sum::<f64>() / m.aurocs.len() as f64;
                LegendEntry {
                    label: format!("{} model (mean AUROC {mean:.3})", m.model.name()),
                    swatch: Swatch::Line(Self::color(m.model), None),
                }
            })
            .collect();
        let subtitle = "thin: single seeds/folds; thick: mean curve";
        let area = style::header(root, &self.title(), Some(subtitle), &legend)?;
        let panels = style::panels(&area, 2);
        self.draw_curves(&panels[0], true)?;
        self.draw_curves(&panels[1], false)
    }
}
