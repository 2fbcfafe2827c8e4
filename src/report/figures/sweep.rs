//! A metric against a numeric axis (training fraction, positive fraction,
//! queries per false positive, ...): one line per strategy, mean ± 1 SD over
//! the seeds/folds, one panel per metric.
//!
//! Lines show strong models; `none` is the weak model. When the axis is a
//! mining setting, `none` does not depend on it and is drawn flat (dashed,
//! with a ±1 SD band) across the whole axis; without a `none` strategy the
//! weak model is drawn instead, so mining always has its reference. Other
//! numeric axes are held at their unset (default) value where the
//! experiment has one, the way one-at-a-time ablations are laid out;
//! otherwise each of their values gets its own line.

use super::axis::{format_value, nice_range};
use super::style::{self, Axis, Frame, LegendEntry, Marker, Swatch, MARKERS, PALETTE};
use super::{DrawResult, Figure};
use crate::report::load::{
    numeric_axes, strategy_rank, Model, Replicate, ResultRow, ResultsTable, MINING_PREFIX,
    STRATEGY_AXIS,
};
use crate::report::options::{axis_label, is_unit_interval, metric_label, strategy_label};
use crate::stats::{describe, Summary};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One point of a line: summaries of each metric at one axis value.
#[derive(Debug, Clone)]
pub struct SweepPoint {
    /// Axis value (NaN for a flat series).
    pub x: f64,
    /// Per metric, in the figure's metric order.
    pub stats: Vec<Summary>,
}

/// One line (or flat reference) of the figure.
#[derive(Debug, Clone)]
pub struct SweepSeries {
    /// Legend text.
    pub label: String,
    /// Strategy it shows (`None` for the weak-model reference).
    pub strategy: Option<String>,
    /// Colour.
    pub color: RGBColor,
    /// Marker.
    pub marker: Marker,
    /// Drawn flat across the axis (independent of it).
    pub flat: bool,
    /// Points, by increasing x.
    pub points: Vec<SweepPoint>,
}

/// The figure for one numeric axis.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// The axis key.
    pub key: String,
    /// Metrics, one panel each.
    pub metrics: Vec<String>,
    /// Whether x is drawn on a log scale (counts spanning a decade or more).
    pub log_x: bool,
    /// Distinct axis values with data.
    pub xs: Vec<f64>,
    /// Lines, then flat references.
    pub series: Vec<SweepSeries>,
}

/// Groups configurations by a key, keeping first-appearance order.
fn group<K: PartialEq>(configs: &[usize], key: impl Fn(usize) -> K) -> Vec<(K, Vec<usize>)> {
    let mut groups: Vec<(K, Vec<usize>)> = Vec::new();
    for &c in configs {
        let k = key(c);
        match groups.iter_mut().find(|(g, _)| *g == k) {
            Some((_, members)) => members.push(c),
            None => groups.push((k, vec![c])),
        }
    }
    groups
}

/// Summaries of each metric over rows, one row per replicate (the first).
fn summarize(table: &ResultsTable, rows: &[&ResultRow], metrics: &[String]) -> Vec<Summary> {
    let mut seen: Vec<&Replicate> = Vec::new();
    let unique: Vec<&&ResultRow> = rows
        .iter()
        .filter(|r| {
            let new = !seen.contains(&&r.replicate);
            seen.push(&r.replicate);
            new
        })
        .collect();
    metrics
        .iter()
        .map(|m| {
            describe(
                &unique
                    .iter()
                    .map(|r| table.value(r, m))
                    .filter(|v| v.is_finite())
                    .collect::<Vec<_>>(),
            )
        })
        .collect()
}

impl Sweep {
    /// The figure for `axis`, or `None` when fewer than two axis values have lines.
    pub fn build(table: &ResultsTable, axis: usize, metrics: &[String]) -> Option<Self> {
        let key = table.axes[axis].clone();
        let x_of = |c: usize| table.configurations[c].values[axis].parse::<f64>().ok();
        let mut kept: Vec<usize> = (0..table.configurations.len())
            .filter(|&c| x_of(c).is_some())
            .collect();
        for other in numeric_axes(table).into_iter().filter(|&o| o != axis) {
            let unset = |c: &usize| table.configurations[*c].values[other].is_empty();
            if kept.iter().any(unset) {
                kept.retain(unset);
            }
        }
        let mining_axis = key.starts_with(MINING_PREFIX);
        let is_none = |c: &usize| table.configurations[*c].strategy == "none";
        let has_none = kept.iter().any(is_none);
        let lines: Vec<usize> = kept
            .iter()
            .copied()
            .filter(|c| !(mining_axis && is_none(c)))
            .collect();
        let mut xs: Vec<f64> = lines.iter().filter_map(|&c| x_of(c)).collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        if xs.len() < 2 {
            return None;
        }
        let others: Vec<usize> = (0..table.axes.len())
            .filter(|&i| i != axis && table.axes[i] != STRATEGY_AXIS)
            .filter(|&i| {
                lines.iter().any(|&c| {
                    table.configurations[c].values[i] != table.configurations[lines[0]].values[i]
                })
            })
            .collect();
        let suffix = |c: usize, axes: &[usize]| -> String {
            axes.iter()
                .map(|&i| {
                    let short = table.axes[i]
                        .rsplit('.')
                        .next()
                        .unwrap_or(&table.axes[i])
                        .to_string();
                    format!(
                        ", {short}={}",
                        crate::report::load::display_value(&table.configurations[c].values[i])
                    )
                })
                .collect()
        };
        let values_at = |c: usize, axes: &[usize]| -> Vec<String> {
            axes.iter()
                .map(|&i| table.configurations[c].values[i].clone())
                .collect()
        };
        let mut series = Vec::new();
        // Lines: one per strategy and setting of the other varying axes.
        let mut groups = group(&lines, |c| {
            (
                table.configurations[c].strategy.clone(),
                values_at(c, &others),
            )
        });
        groups.sort_by_key(|((strategy, _), _)| strategy_rank(strategy));
        for ((strategy, _), members) in groups {
            let points = xs
                .iter()
                .filter_map(|&x| {
                    let rows: Vec<&ResultRow> = members
                        .iter()
                        .filter(|&&c| x_of(c) == Some(x))
                        .flat_map(|&c| table.ok_rows_of(c, Model::Strong))
                        .collect();
                    (!rows.is_empty()).then(|| SweepPoint {
                        x,
                        stats: summarize(table, &rows, metrics),
                    })
                })
                .collect();
            series.push(SweepSeries {
                label: strategy_label(&strategy) + &suffix(members[0], &others),
                strategy: Some(strategy),
                color: style::GREY,
                marker: Marker::Circle,
                flat: false,
                points,
            });
        }
        // The reference: `none` or the weak model.
        let non_mining: Vec<usize> = others
            .iter()
            .copied()
            .filter(|&i| !table.axes[i].starts_with(MINING_PREFIX))
            .collect();
        let reference: Vec<usize> = if has_none && mining_axis {
            kept.iter().copied().filter(is_none).collect()
        } else {
            lines.clone()
        };
        let model = if has_none { Model::Strong } else { Model::Weak };
        if mining_axis || !has_none {
            for (_, members) in group(&reference, |c| values_at(c, &non_mining)) {
                let rows_at = |x: Option<f64>| -> Vec<&ResultRow> {
                    members
                        .iter()
                        .filter(|&&c| x.is_none() || x_of(c) == x)
                        .flat_map(|&c| table.ok_rows_of(c, model))
                        .collect()
                };
                let points: Vec<SweepPoint> = if mining_axis {
                    vec![SweepPoint {
                        x: f64::NAN,
                        stats: summarize(table, &rows_at(None), metrics),
                    }]
                } else {
                    xs.iter()
                        .filter_map(|&x| {
                            let rows = rows_at(Some(x));
                            (!rows.is_empty()).then(|| SweepPoint {
                                x,
                                stats: summarize(table, &rows, metrics),
                            })
                        })
                        .collect()
                };
                let label = if has_none {
                    strategy_label("none")
                } else {
                    "weak model".to_string()
                };
                series.push(SweepSeries {
                    label: label + &suffix(members[0], &non_mining),
                    strategy: has_none.then(|| "none".to_string()),
                    color: style::GREY,
                    marker: Marker::Circle,
                    flat: mining_axis,
                    points,
                });
            }
        }
        assign_styles(&mut series);
        series.sort_by_key(|s| s.strategy.as_deref().map(strategy_rank).unwrap_or(0));
        let log_x = xs[0] > 0.0 && xs[xs.len() - 1] > 1.0 && xs[xs.len() - 1] / xs[0] >= 10.0;
        Some(Self {
            key,
            metrics: metrics.to_vec(),
            log_x,
            xs,
            series,
        })
    }

    /// Figure title.
    pub fn title(&self) -> String {
        format!("Test metrics vs {}", axis_label(&self.key).to_lowercase())
    }

    /// Caption for the report.
    pub fn caption(&self, replicates: usize) -> String {
        let mut text = format!(
            "Test metrics against `{}`: mean ± 1 SD over the seeds/folds of each configuration ({replicates} replicate{}). \
             Mining strategies show their strong model; `none` and \"weak model\" show the model without mining.",
            self.key,
            if replicates == 1 { "" } else { "s" }
        );
        if self.series.iter().any(|s| s.flat) {
            text += " Dashed lines with a shaded ±1 SD band do not depend on this axis.";
        }
        if self.log_x {
            text += " The axis is logarithmic.";
        }
        text
    }

    /// x in drawing units.
    fn display(&self, x: f64) -> f64 {
        if self.log_x {
            x.log10()
        } else {
            x
        }
    }

    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        index: usize,
    ) -> DrawResult {
        let metric = &self.metrics[index];
        let shown: Vec<f64> = self.xs.iter().map(|&x| self.display(x)).collect();
        let (lo, hi) = (shown[0], shown[shown.len() - 1]);
        let pad = (hi - lo) * 0.06;
        let x_axis = Axis {
            low: lo - pad,
            high: hi + pad,
            ticks: shown,
        };
        let (mut y_lo, mut y_hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for s in &self.series {
            for p in &s.points {
                let Summary { mean, sd, .. } = p.stats[index];
                let sd = if sd.is_finite() { sd } else { 0.0 };
                if mean.is_finite() {
                    y_lo = y_lo.min(mean - sd);
                    y_hi = y_hi.max(mean + sd);
                }
            }
        }
        let bounds = if is_unit_interval(metric) {
            (0.0, 1.0)
        } else {
            (0.0, f64::INFINITY)
        };
        let range = nice_range(y_lo, y_hi, bounds, 5);
        let y_axis = Axis::from_range(&range);
        let log = self.log_x;
        let decimals = self
            .xs
            .iter()
            .map(|&x| decimals_of(&format_value(x)))
            .max()
            .unwrap_or(0);
        let (caption, x_desc) = (metric_label(metric), axis_label(&self.key));
        let frame = Frame {
            caption: &caption,
            x: &x_axis,
            y: &y_axis,
            x_desc: &x_desc,
            y_desc: "",
            // The same decimals on every tick: 0.5, 0.7, 1.0 rather than 0.5, 0.7, 1.
            x_format: &|v| format!("{:.*}", decimals, if log { 10f64.powf(*v) } else { *v }),
            y_format: &|v| range.format(*v),
            x_grid: true,
        };
        let mut chart = style::chart(area, &frame)?;
        let clamp = |v: f64| v.clamp(range.low, range.high);
        for s in self.series.iter().filter(|s| s.flat) {
            let Summary { mean, sd, .. } = s.points[0].stats[index];
            if !mean.is_finite() {
                continue;
            }
            if sd.is_finite() {
                let band = Rectangle::new(
                    [
                        (x_axis.low, clamp(mean - sd)),
                        (x_axis.high, clamp(mean + sd)),
                    ],
                    s.color.mix(0.13).filled(),
                );
                chart
                    .draw_series(std::iter::once(band))
                    .map_err(|e| e.to_string())?;
            }
            let line = DashedLineSeries::new(
                vec![(x_axis.low, mean), (x_axis.high, mean)],
                16,
                10,
                s.color.stroke_width(4),
            );
            chart.draw_series(line).map_err(|e| e.to_string())?;
        }
        let lines: Vec<&SweepSeries> = self.series.iter().filter(|s| !s.flat).collect();
        let unit = (x_axis.high - x_axis.low) * 0.014;
        for (i, s) in lines.iter().enumerate() {
            let points: Vec<(f64, Summary)> = s
                .points
                .iter()
                .filter(|p| p.stats[index].mean.is_finite())
                .map(|p| {
                    // Dodge error bars apart among the lines that have a point at this x.
                    let here: Vec<usize> = (0..lines.len())
                        .filter(|&j| {
                            lines[j]
                                .points
                                .iter()
                                .any(|q| q.x == p.x && q.stats[index].mean.is_finite())
                        })
                        .collect();
                    let rank = here.iter().position(|&j| j == i).unwrap_or(0) as f64;
                    let dodge = unit * (rank - (here.len() as f64 - 1.0) / 2.0);
                    (self.display(p.x) + dodge, p.stats[index])
                })
                .collect();
            let line: Vec<(f64, f64)> = points.iter().map(|(x, st)| (*x, st.mean)).collect();
            style::polyline(&mut chart, &line, s.color.to_rgba(), 3)?;
            for (x, st) in &points {
                if st.sd.is_finite() {
                    style::error_bar(
                        &mut chart,
                        *x,
                        clamp(st.mean - st.sd),
                        clamp(st.mean + st.sd),
                        s.color,
                    )?;
                }
                style::marker(&mut chart, (*x, st.mean), s.marker, s.color.filled(), 8)?;
            }
        }
        Ok(())
    }
}

/// Decimals shown in a formatted number ("0.25" -> 2, "20" -> 0).
fn decimals_of(text: &str) -> usize {
    text.split_once('.').map(|(_, d)| d.len()).unwrap_or(0)
}

/// Strategy colours when each strategy has one line, otherwise the palette;
/// markers in turn.
fn assign_styles(series: &mut [SweepSeries]) {
    let lines: Vec<&str> = series
        .iter()
        .filter(|s| !s.flat)
        .filter_map(|s| s.strategy.as_deref())
        .collect();
    let one_per_strategy = (1..lines.len()).all(|i| !lines[..i].contains(&lines[i]));
    for (next, s) in series.iter_mut().enumerate() {
        s.color = match (&s.strategy, one_per_strategy) {
            (Some(strategy), true) => style::strategy_color(strategy),
            (None, true) => style::GREY,
            _ => PALETTE[next % PALETTE.len()],
        };
        s.marker = MARKERS[next % MARKERS.len()];
    }
}

impl Figure for Sweep {
    fn size(&self) -> (u32, u32) {
        (style::WIDTH, style::height_for_panels(self.metrics.len()))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let legend: Vec<LegendEntry> = self
            .series
            .iter()
            .map(|s| LegendEntry {
                label: s.label.clone(),
                swatch: if s.flat {
                    Swatch::Dashed(s.color)
                } else {
                    Swatch::Line(s.color, Some(s.marker))
                },
            })
            .collect();
        style::header_and_panels(
            root,
            &self.title(),
            Some("mean ± 1 SD over seeds/folds"),
            &legend,
            self.metrics.len(),
            |panel, i| self.draw_panel(panel, i),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::load::tests::{line, HEADER};
    use std::path::Path;

    /// pos_fraction {0.1, 0.5} x strategy {none, knn-l2} x 2 seeds.
    fn table() -> ResultsTable {
        let mut text = format!("{HEADER}\n");
        let mut cell = 0;
        for pos in ["0.1", "0.5"] {
            for strategy in ["none", "knn-l2"] {
                for seed in 0..2u32 {
                    let base = if pos == "0.1" { 0.7 } else { 0.8 };
                    let weak = base + 0.01 * seed as f64;
                    let strong = if strategy == "none" {
                        weak
                    } else {
                        weak + 0.05
                    };
                    text += &line(
                        cell,
                        pos,
                        strategy,
                        seed,
                        "weak",
                        [weak, 0.5, 0.5, 0.5, 0.5],
                        true,
                    );
                    text += "\n";
                    text += &line(
                        cell,
                        pos,
                        strategy,
                        seed,
                        "strong",
                        [strong, 0.5, 0.5, 0.5, 0.5],
                        strategy != "none",
                    );
                    text += "\n";
                    cell += 1;
                }
            }
        }
        ResultsTable::parse(Path::new("results.csv"), text.as_bytes()).unwrap()
    }

    #[test]
    fn one_line_per_strategy_with_means_over_seeds() {
        let t = table();
        assert_eq!(numeric_axes(&t), vec![0]);
        let s = Sweep::build(&t, 0, &["auroc".to_string()]).unwrap();
        assert_eq!(s.xs, vec![0.1, 0.5]);
        assert!(!s.log_x);
        let labels: Vec<&str> = s.series.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, vec!["none (weak model)", "knn-l2"]);
        assert!(s.series.iter().all(|s| !s.flat));
        let knn = &s.series[1];
        assert!((knn.points[0].stats[0].mean - 0.755).abs() < 1e-12);
        assert!((knn.points[1].stats[0].mean - 0.855).abs() < 1e-12);
        assert_eq!(knn.points[1].stats[0].n, 2);
        assert_eq!(knn.color, style::BLUE);
    }

    #[test]
    fn mining_axis_draws_none_flat_and_log_scale() {
        let header = HEADER.replace(
            "data.pos_fraction,mining.strategy",
            "mining.num_query,mining.strategy",
        );
        let mut text = format!("{header}\n");
        let mut cell = 0;
        for (nq, strategy) in [
            ("20", "none"),
            ("5", "knn-l2"),
            ("20", "knn-l2"),
            ("100", "knn-l2"),
        ] {
            for seed in 0..2u32 {
                for model in ["weak", "strong"] {
                    text += &line(
                        cell,
                        nq,
                        strategy,
                        seed,
                        model,
                        [0.8, 0.5, 0.5, 0.5, 0.5],
                        strategy != "none",
                    );
                    text += "\n";
                }
                cell += 1;
            }
        }
        let t = ResultsTable::parse(Path::new("r.csv"), text.as_bytes()).unwrap();
        let s = Sweep::build(&t, 0, &["auroc".to_string()]).unwrap();
        assert!(s.log_x);
        assert_eq!(s.xs, vec![5.0, 20.0, 100.0]);
        let flat: Vec<&SweepSeries> = s.series.iter().filter(|s| s.flat).collect();
        assert_eq!(flat.len(), 1);
        assert_eq!(flat[0].points[0].stats[0].n, 2);
        assert_eq!(s.series.iter().filter(|s| !s.flat).count(), 1);
    }
}
