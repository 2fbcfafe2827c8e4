//! All strategies side by side, one panel per metric: bars of the mean over
//! seeds/folds with ±1 SD error bars, and `*` / `**` where the paired
//! t-test against `none` is significant after Holm's correction.
//!
//! Strategies are compared where every other axis is equal. When the
//! experiment crosses strategies with another axis, the setting with the
//! most strategies is shown (on ties the last, in matrix order usually the
//! full-data one); the line plots show the rest.

use super::axis::nice_range;
use super::style::{self, Axis, Frame, LegendEntry, Swatch};
use super::{DrawResult, Figure};
use crate::report::compare::{find_baseline, stars, Comparison, ComparisonKind};
use crate::report::load::{strategy_rank, Model, ResultsTable, STRATEGY_AXIS};
use crate::report::options::{is_unit_interval, metric_label};
use crate::stats::{describe, Summary};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One bar group member.
#[derive(Debug, Clone)]
pub struct Bar {
    /// Strategy name.
    pub strategy: String,
    /// Its configuration.
    pub config: usize,
    /// Per metric: mean, SD, ... of the strong model (`none`: the weak model).
    pub stats: Vec<Summary>,
    /// Per metric: significance marks against `none`.
    pub marks: Vec<&'static str>,
}

/// The figure.
#[derive(Debug, Clone)]
pub struct Bars {
    /// The other axes' setting, as `key=value, ...` (empty when none vary).
    pub context: String,
    /// Metrics, one panel each.
    pub metrics: Vec<String>,
    /// Bars in strategy order.
    pub bars: Vec<Bar>,
}

impl Bars {
    /// The figure, or `None` when no setting has two strategies.
    pub fn build(
        table: &ResultsTable,
        comparisons: &[Comparison],
        metrics: &[String],
    ) -> Option<Self> {
        let strategy_axis = table.axis_index(STRATEGY_AXIS);
        let context = |c: usize| -> Vec<&String> {
            table.configurations[c]
                .values
                .iter()
                .enumerate()
                .filter(|(i, _)| Some(*i) != strategy_axis)
                .map(|(_, v)| v)
                .collect()
        };
        // Groups of mining configurations sharing all other axes, plus their `none` baseline.
        let mut groups: Vec<Vec<usize>> = Vec::new();
        for c in
            (0..table.configurations.len()).filter(|&c| table.configurations[c].strategy != "none")
        {
            match groups.iter_mut().find(|g| context(g[0]) == context(c)) {
                Some(g) => g.push(c),
                None => groups.push(vec![c]),
            }
        }
        for g in &mut groups {
            if let Some(b) = g
                .iter()
                .find_map(|&c| find_baseline(table, c, "none", true))
            {
                g.insert(0, b);
            }
        }
        // max_by_key keeps the last of equal maxima.
        let best = groups.into_iter().max_by_key(|g| g.len())?;
        if best.len() < 2 {
            return None;
        }
        let mut bars: Vec<Bar> = best
            .iter()
            .map(|&config| {
                let rows: Vec<_> = table.ok_rows_of(config, Model::Strong).collect();
                let stats = metrics
                    .iter()
                    .map(|m| {
                        describe(
                            &rows
                                .iter()
                                .map(|r| table.value(r, m))
                                .filter(|v| v.is_finite())
                                .collect::<Vec<_>>(),
                        )
                    })
                    .collect();
                let marks = metrics
                    .iter()
                    .map(|m| {
                        comparisons
                            .iter()
                            .find(|c| {
                                c.kind == ComparisonKind::VsNone
                                    && c.config == config
                                    && &c.metric == m
                            })
                            .map(|c| stars(c.t_p_holm))
                            .unwrap_or("")
                    })
                    .collect();
                Bar {
                    strategy: table.configurations[config].strategy.clone(),
                    config,
                    stats,
                    marks,
                }
            })
            .collect();
        bars.sort_by(|a, b| {
            strategy_rank(&a.strategy)
                .cmp(&strategy_rank(&b.strategy))
                .then(a.strategy.cmp(&b.strategy))
        });
        let representative = best
            .iter()
            .copied()
            .find(|&c| table.configurations[c].strategy != "none")
            .unwrap_or(best[0]);
        let values = &table.configurations[representative].values;
        // Unset (default) axes are left out: the title names what differs from the defaults.
        let context = table
            .varying_axes()
            .into_iter()
            .filter(|&i| Some(i) != strategy_axis && !values[i].is_empty())
            .map(|i| format!("{}={}", table.axes[i], values[i]))
            .collect::<Vec<_>>()
            .join(", ");
        Some(Self {
            context,
            metrics: metrics.to_vec(),
            bars,
        })
    }

    /// Figure title.
    pub fn title(&self) -> String {
        if self.context.is_empty() {
            "Mining strategies compared".to_string()
        } else {
            format!("Mining strategies compared ({})", self.context)
        }
    }

    /// Caption for the report.
    pub fn caption(&self, replicates: usize) -> String {
        format!(
            "Mean test metrics of each strategy's strong model (`none`: the weak model) over {replicates} seeds/folds; \
             error bars ±1 SD. Marks: * p < 0.05, ** p < 0.01, paired t-test against `none` on matched seeds/folds, \
             Holm-corrected within each metric. Bars start at the axis minimum, not at 0."
        )
    }

    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        index: usize,
    ) -> DrawResult {
        let metric = &self.metrics[index];
        let k = self.bars.len();
        let x_axis = Axis {
            low: -0.6,
            high: k as f64 - 0.4,
            ticks: (0..k).map(|i| i as f64).collect(),
        };
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for bar in &self.bars {
            let s = bar.stats[index];
            let sd = if s.sd.is_finite() { s.sd } else { 0.0 };
            if s.mean.is_finite() {
                lo = lo.min(s.mean - sd);
                hi = hi.max(s.mean + sd);
            }
        }
        let bounds = if is_unit_interval(metric) {
            (0.0, 1.0)
        } else {
            (0.0, f64::INFINITY)
        };
        let range = nice_range(lo, hi, bounds, 5);
        // Headroom above the top tick for the significance marks.
        let y_axis = Axis {
            low: range.low,
            high: range.high + range.step * 0.7,
            ticks: range.ticks(),
        };
        let names: Vec<String> = self.bars.iter().map(|b| b.strategy.clone()).collect();
        let caption = metric_label(metric);
        let frame = Frame {
            caption: &caption,
            x: &x_axis,
            y: &y_axis,
            x_desc: "",
            y_desc: "",
            x_format: &|v| names.get(v.round() as usize).cloned().unwrap_or_default(),
            y_format: &|v| range.format(*v),
            x_grid: false,
        };
        let mut chart = style::chart(area, &frame)?;
        let clamp = |v: f64| v.clamp(y_axis.low, y_axis.high);
        for (i, bar) in self.bars.iter().enumerate() {
            let s = bar.stats[index];
            if !s.mean.is_finite() {
                continue;
            }
            let x = i as f64;
            let color = style::strategy_color(&bar.strategy);
            let rect = Rectangle::new(
                [(x - 0.36, y_axis.low), (x + 0.36, clamp(s.mean))],
                color.mix(0.85).filled(),
            );
            chart
                .draw_series(std::iter::once(rect))
                .map_err(|e| e.to_string())?;
            let top = if s.sd.is_finite() {
                style::error_bar(
                    &mut chart,
                    x,
                    clamp(s.mean - s.sd),
                    clamp(s.mean + s.sd),
                    style::INK,
                )?;
                clamp(s.mean + s.sd)
            } else {
                clamp(s.mean)
            };
            if !bar.marks[index].is_empty() {
                style::label_above(
                    &mut chart,
                    bar.marks[index],
                    (x, top),
                    4,
                    style::CAPTION_SIZE,
                )?;
            }
        }
        Ok(())
    }
}

impl Figure for Bars {
    fn size(&self) -> (u32, u32) {
        (style::WIDTH, style::height_for_panels(self.metrics.len()))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let legend: Vec<LegendEntry> = self
            .bars
            .iter()
            .map(|b| LegendEntry {
                label: crate::report::options::strategy_label(&b.strategy),
                swatch: Swatch::Bar(style::strategy_color(&b.strategy)),
            })
            .collect();
        let subtitle =
            "mean ± 1 SD over seeds/folds;  * p < 0.05, ** p < 0.01 vs none (paired t-test, Holm)";
        style::header_and_panels(
            root,
            &self.title(),
            Some(subtitle),
            &legend,
            self.metrics.len(),
            |panel, i| self.draw_panel(panel, i),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::compare::compare_all;
    use crate::report::summary::tests::two_by_three;

    #[test]
    fn bars_include_none_and_marks_from_holm() {
        let table = two_by_three();
        let metrics = vec!["auroc".to_string()];
        let comparisons = compare_all(&table, &metrics);
        let bars = Bars::build(&table, &comparisons, &metrics).unwrap();
        let names: Vec<&str> = bars.bars.iter().map(|b| b.strategy.as_str()).collect();
        assert_eq!(names, vec!["none", "knn-l2"]);
        assert!((bars.bars[1].stats[0].mean - 0.88).abs() < 1e-12);
        // t = 10.39, df 2: p = 0.0091 < 0.01.
        assert_eq!(bars.bars[1].marks[0], "**");
        assert_eq!(bars.bars[0].marks[0], "");
        assert_eq!(bars.context, "");
    }
}
