//! Training curves of the chosen configuration: training and validation
//! loss per epoch (left) and validation AUROC (right), weak and strong
//! model, every seed/fold thin and the per-epoch mean thick; a ring marks
//! the epoch whose checkpoint was kept.

use super::axis::{format_value, nice_range, nice_step};
use super::style::{self, Axis, Frame, LegendEntry, Marker, Swatch};
use super::{DrawResult, Figure};
use crate::report::cells::{read_history, Epoch};
use crate::report::load::{Model, ResultsTable};
use crate::report::ReportError;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// Reads one quantity of an epoch.
type Value = fn(&Epoch) -> f64;

/// Histories of one model.
#[derive(Debug, Clone)]
pub struct ModelHistory {
    /// Which model.
    pub model: Model,
    /// One history per replicate.
    pub runs: Vec<Vec<Epoch>>,
}

/// The figure.
#[derive(Debug, Clone)]
pub struct Training {
    /// Configuration label.
    pub label: String,
    /// Weak, then strong when present.
    pub models: Vec<ModelHistory>,
}

/// Per-epoch mean of `value` over runs (epochs present in any run).
fn mean_by_epoch(runs: &[Vec<Epoch>], value: Value) -> Vec<(f64, f64)> {
    let mut epochs: Vec<f64> = runs.iter().flatten().map(|e| e.epoch).collect();
    epochs.sort_by(f64::total_cmp);
    epochs.dedup();
    epochs
        .into_iter()
        .filter_map(|epoch| {
            let values: Vec<f64> = runs
                .iter()
                .flatten()
                .filter(|e| e.epoch == epoch)
                .map(value)
                .filter(|v| v.is_finite())
                .collect();
            (!values.is_empty()).then(|| (epoch, values.iter().sum::<f64>() / values.len() as f64))
        })
        .collect()
}

impl Training {
    /// Reads the histories of `config`'s finished cells; `None` when there are none.
    pub fn build(
        dir: &Path,
        table: &ResultsTable,
        config: usize,
    ) -> Result<Option<Self>, ReportError> {
        let cells: Vec<usize> = table
            .ok_rows_of(config, Model::Weak)
            .map(|r| r.cell)
            .collect();
        let mut models = Vec::new();
        for model in Model::BOTH {
            let mut runs = Vec::new();
            for &cell in &cells {
                if let Some(history) = read_history(dir, cell, model)? {
                    if !history.is_empty() {
                        runs.push(history);
                    }
                }
            }
            if !runs.is_empty() {
                models.push(ModelHistory { model, runs });
            }
        }
        Ok((!models.is_empty()).then(|| Self {
            label: table.short_label(config),
            models,
        }))
    }

    /// Figure title.
    pub fn title(&self) -> String {
        format!("Training curves ({})", self.label)
    }

    /// Caption for the report.
    pub fn caption(&self) -> String {
        format!(
            "Training (dashed) and validation (solid) loss, and validation AUROC, per epoch for {}: every seed/fold thin, \
             the per-epoch mean thick; rings mark the epoch whose checkpoint was kept (lowest validation loss).",
            self.label
        )
    }

    fn color(model: Model) -> RGBColor {
        match model {
            Model::Weak => style::GREY,
            Model::Strong => style::BLUE,
        }
    }

    fn epochs_axis(&self) -> (Axis, f64) {
        let all: Vec<f64> = self
            .models
            .iter()
            .flat_map(|m| m.runs.iter().flatten().map(|e| e.epoch))
            .collect();
        let (lo, hi) = all
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &e| {
                (a.min(e), b.max(e))
            });
        let step = nice_step(hi - lo, 6).max(1.0).round();
        let first = (lo / step).ceil() * step;
        let ticks: Vec<f64> = (0..)
            .map(|k| first + k as f64 * step)
            .take_while(|&t| t <= hi + 1e-9)
            .collect();
        // Room for the checkpoint rings at the first and last epoch.
        let pad = ((hi - lo) * 0.04).max(0.5);
        (
            Axis {
                low: lo - pad,
                high: hi + pad,
                ticks,
            },
            step,
        )
    }

    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        loss: bool,
    ) -> DrawResult {
        let (x_axis, _) = self.epochs_axis();
        let curves: Vec<(Value, bool)> = if loss {
            vec![
                (|e: &Epoch| e.train_loss, true),
                (|e: &Epoch| e.valid_loss, false),
            ]
        } else {
            vec![(|e: &Epoch| e.valid_auroc, false)]
        };
        let values: Vec<f64> = self
            .models
            .iter()
            .flat_map(|m| m.runs.iter().flatten())
            .flat_map(|e| curves.iter().map(move |(f, _)| f(e)))
            .filter(|v| v.is_finite())
            .collect();
        let (lo, hi) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| {
                (a.min(v), b.max(v))
            });
        let bounds = if loss {
            (0.0, f64::INFINITY)
        } else {
            (0.0, 1.0)
        };
        let range = nice_range(lo, hi, bounds, 5);
        let caption = if loss { "Loss" } else { "Validation AUROC" };
        let y_axis = Axis::from_range(&range);
        let frame = Frame {
            caption,
            x: &x_axis,
            y: &y_axis,
            x_desc: "Epoch",
            y_desc: "",
            x_format: &|v| format_value(*v),
            y_format: &|v| range.format(*v),
            x_grid: true,
        };
        let mut chart = style::chart(area, &frame)?;
        for m in &self.models {
            let color = Self::color(m.model);
            for &(value, dashed) in &curves {
                for run in &m.runs {
                    let points: Vec<(f64, f64)> = run
                        .iter()
                        .map(|e| (e.epoch, value(e)))
                        .filter(|p| p.1.is_finite())
                        .collect();
                    draw_line(&mut chart, points, color.mix(0.3).stroke_width(2), dashed)?;
                }
                draw_line(
                    &mut chart,
                    mean_by_epoch(&m.runs, value),
                    color.stroke_width(4),
                    dashed,
                )?;
            }
            for run in &m.runs {
                // The kept checkpoint is the last epoch that improved the validation loss.
                if let Some(e) = run.iter().rev().find(|e| e.best) {
                    let y = if loss { e.valid_loss } else { e.valid_auroc };
                    if y.is_finite() {
                        style::marker(
                            &mut chart,
                            (e.epoch, y),
                            Marker::Ring,
                            color.stroke_width(3),
                            9,
                        )?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A solid or dashed polyline.
fn draw_line<DB: DrawingBackend>(
    chart: &mut style::Chart<'_, DB>,
    points: Vec<(f64, f64)>,
    s: ShapeStyle,
    dashed: bool,
) -> DrawResult {
    if dashed {
        chart
            .draw_series(DashedLineSeries::new(points, 10, 7, s))
            .map(|_| ())
            .map_err(|e| e.to_string())
    } else {
        style::polyline(chart, &points, s.color, s.stroke_width)
    }
}

impl Figure for Training {
    fn size(&self) -> (u32, u32) {
        (style::WIDTH, 900)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let mut legend = Vec::new();
        for m in &self.models {
            let color = Self::color(m.model);
            legend.push(LegendEntry {
                label: format!("{} train loss", m.model.name()),
                swatch: Swatch::Dashed(color),
            });
            legend.push(LegendEntry {
                label: format!("{} validation", m.model.name()),
                swatch: Swatch::Line(color, None),
            });
        }
        legend.push(LegendEntry {
            label: "kept checkpoint".into(),
            swatch: Swatch::Point(style::INK, Marker::Ring),
        });
        let area = style::header(
            root,
            &self.title(),
            Some("thin: single seeds/folds; thick: mean per epoch"),
            &legend,
        )?;
        let panels = style::panels(&area, 2);
        self.draw_panel(&panels[0], true)?;
        self.draw_panel(&panels[1], false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn epoch(epoch: f64, valid_auroc: f64) -> Epoch {
        Epoch {
            epoch,
            train_loss: 0.5,
            valid_loss: 0.4,
            valid_auroc,
            best: false,
        }
    }

    #[test]
    fn mean_over_runs_of_unequal_length() {
        let runs = vec![
            vec![epoch(0.0, 0.6), epoch(1.0, 0.8)],
            vec![epoch(0.0, 0.7)],
        ];
        let mean = mean_by_epoch(&runs, |e| e.valid_auroc);
        assert_eq!(mean.len(), 2);
        assert!((mean[0].1 - 0.65).abs() < 1e-12);
        assert_eq!(mean[1], (1.0, 0.8));
    }
}
