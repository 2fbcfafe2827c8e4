//! Mining's gain over the random-negatives control against a numeric axis:
//! for every mining strategy, the strong model's metric minus the random
//! control's, paired on the seed/fold and on every other axis value, mean and
//! 95% t interval over the pairs, one panel per metric.
//!
//! This is the figure of the negative controls: where look-alikes are
//! already common in the hard-labeled set, or absent from the pool, a
//! strategy that finds them has nothing left to add and its gain should
//! fall to zero (the dashed line). Other axes that vary get a line per value.

use super::axis::{format_value, nice_range};
use super::style::{self, Axis, Frame, LegendEntry, Swatch, MARKERS, PALETTE};
use super::{DrawResult, Figure};
use crate::report::gains::{GainLines, CONTROL};
use crate::report::options::{axis_label, metric_label, strategy_label};
use crate::stats::{describe, Summary};
use plotters::coord::Shift;
use plotters::prelude::*;

/// One line: a strategy (and a setting of the other varying axes).
#[derive(Debug, Clone)]
pub struct GainSeries {
    /// Legend text.
    pub label: String,
    /// Colour.
    pub color: RGBColor,
    /// Per axis value: the paired differences' summary for each metric.
    pub points: Vec<(f64, Vec<Summary>)>,
}

/// The figure for one numeric axis.
#[derive(Debug, Clone)]
pub struct Gain {
    /// The axis key.
    pub key: String,
    /// Metrics, one panel each.
    pub metrics: Vec<String>,
    /// Distinct axis values with a gain.
    pub xs: Vec<f64>,
    /// Lines.
    pub series: Vec<GainSeries>,
}

impl Gain {
    /// The figure of the gain lines along one axis ([`GainLines`]).
    pub fn new(gains: &GainLines, metrics: &[String]) -> Self {
        let mut strategies: Vec<&String> = gains.lines.iter().map(|l| &l.strategy).collect();
        strategies.dedup();
        let one_per_strategy = gains.lines.len() == strategies.len();
        let series = gains
            .lines
            .iter()
            .enumerate()
            .map(|(i, line)| {
                let suffix = if line.setting.is_empty() {
                    String::new()
                } else {
                    format!(", {}", line.setting)
                };
                GainSeries {
                    label: format!(
                        "{} − {}{suffix}",
                        strategy_label(&line.strategy),
                        strategy_label(CONTROL)
                    ),
                    color: if one_per_strategy {
                        style::strategy_color(&line.strategy)
                    } else {
                        PALETTE[i % PALETTE.len()]
                    },
                    points: line
                        .points
                        .iter()
                        .map(|(x, d)| (*x, d.iter().map(|v| describe(v)).collect()))
                        .collect(),
                }
            })
            .collect();
        Self {
            key: gains.key.clone(),
            metrics: metrics.to_vec(),
            xs: gains.xs.clone(),
            series,
        }
    }

    /// Figure title.
    pub fn title(&self) -> String {
        format!(
            "Gain over the random control vs {}",
            axis_label(&self.key).to_lowercase()
        )
    }

    /// Caption for the report.
    pub fn caption(&self) -> String {
        format!(
            "Strong model of each mining strategy minus the strong model of the random-negatives control \
             (as many pool patches, drawn uniformly), paired on seed/fold and on every other setting, against \
             `{}`: mean and 95% t interval over the pairs. Above the dashed zero line, mining beats adding the same \
             number of random negatives; a negative control should bring the gain to zero. The section \
             \"Trend of the gain over the random control\" tests whether the gain changes along the axis.",
            self.key
        )
    }

    fn draw_panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        index: usize,
    ) -> DrawResult {
        let metric = &self.metrics[index];
        let (lo, hi) = (self.xs[0], self.xs[self.xs.len() - 1]);
        let pad = (hi - lo) * 0.06;
        let x_axis = Axis {
            low: lo - pad,
            high: hi + pad,
            ticks: self.xs.clone(),
        };
        let (mut y_lo, mut y_hi) = (0.0f64, 0.0f64);
        for s in &self.series {
            for (_, stats) in &s.points {
                let st = &stats[index];
                for v in [st.mean, st.ci95_low, st.ci95_high] {
                    if v.is_finite() {
                        y_lo = y_lo.min(v);
                        y_hi = y_hi.max(v);
                    }
                }
            }
        }
        let range = nice_range(y_lo, y_hi, (f64::NEG_INFINITY, f64::INFINITY), 5);
        let y_axis = Axis::from_range(&range);
        let decimals = self
            .xs
            .iter()
            .map(|&x| format_value(x).split_once('.').map_or(0, |(_, d)| d.len()))
            .max()
            .unwrap_or(0);
        let caption = format!("Δ {}", metric_label(metric));
        let x_desc = axis_label(&self.key);
        let frame = Frame {
            caption: &caption,
            x: &x_axis,
            y: &y_axis,
            x_desc: &x_desc,
            y_desc: "",
            x_format: &|v| format!("{v:.decimals$}"),
            y_format: &|v| range.format(*v),
            x_grid: true,
        };
        let mut chart = style::chart(area, &frame)?;
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x_axis.low, 0.0), (x_axis.high, 0.0)],
                16,
                10,
                style::GREY.stroke_width(3),
            ))
            .map_err(|e| e.to_string())?;
        let clamp = |v: f64| v.clamp(range.low, range.high);
        let unit = (x_axis.high - x_axis.low) * 0.014;
        let count = self.series.len() as f64;
        for (i, s) in self.series.iter().enumerate() {
            let dodge = unit * (i as f64 - (count - 1.0) / 2.0);
            let points: Vec<(f64, &Summary)> = s
                .points
                .iter()
                .map(|(x, stats)| (x + dodge, &stats[index]))
                .filter(|(_, st)| st.mean.is_finite())
                .collect();
            let line: Vec<(f64, f64)> = points.iter().map(|(x, st)| (*x, st.mean)).collect();
            style::polyline(&mut chart, &line, s.color.to_rgba(), 3)?;
            for (x, st) in &points {
                if st.ci95_low.is_finite() && st.ci95_high.is_finite() {
                    style::error_bar(
                        &mut chart,
                        *x,
                        clamp(st.ci95_low),
                        clamp(st.ci95_high),
                        s.color,
                    )?;
                }
                style::marker(
                    &mut chart,
                    (*x, st.mean),
                    MARKERS[i % MARKERS.len()],
                    s.color.filled(),
                    8,
                )?;
            }
        }
        Ok(())
    }
}

impl Figure for Gain {
    fn size(&self) -> (u32, u32) {
        (style::WIDTH, style::height_for_panels(self.metrics.len()))
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> DrawResult {
        let legend: Vec<LegendEntry> = self
            .series
            .iter()
            .enumerate()
            .map(|(i, s)| LegendEntry {
                label: s.label.clone(),
                swatch: Swatch::Line(s.color, Some(MARKERS[i % MARKERS.len()])),
            })
            .collect();
        style::header_and_panels(
            root,
            &self.title(),
            Some("paired differences, mean and 95% t interval"),
            &legend,
            self.metrics.len(),
            |panel, i| self.draw_panel(panel, i),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::load::tests::line;
    use crate::report::load::ResultsTable;
    use std::path::Path;

    const HEADER: &str = "cell,data.synthetic.hard_mimic_fraction,mining.strategy,seed,fold,model,strategy,num_query,status,error,n_test,loss,auroc,auprc,sensitivity,specificity,precision,f1,accuracy,tp,fp,tn,fn,false_positives,mined,mimic_fraction,train_size,best_epoch,trained";

    /// hard_mimic_fraction {0.05, 0.3} x strategy {none, knn-l2, random} x 3 seeds;
    /// knn-l2's AUROC is random's + gain(x) + a seed-dependent jitter.
    fn table() -> ResultsTable {
        let mut text = format!("{HEADER}\n");
        let mut cell = 0;
        for (x, gain) in [(0.05, 0.04), (0.3, 0.0)] {
            for strategy in ["none", "knn-l2", "random"] {
                for seed in 0..3 {
                    let base = 0.9 + 0.01 * seed as f64;
                    let auroc = match strategy {
                        "knn-l2" => base + gain + 0.002 * seed as f64,
                        _ => base,
                    };
                    for model in ["weak", "strong"] {
                        let m = [auroc, 0.8, 0.7, 0.9, 0.75];
                        let trained = model == "weak" || strategy != "none";
                        text += &line(cell, &x.to_string(), strategy, seed, model, m, trained);
                        text.push('\n');
                    }
                    cell += 1;
                }
            }
        }
        ResultsTable::parse(Path::new("results.csv"), text.as_bytes()).unwrap()
    }

    #[test]
    fn pairs_each_strategy_with_the_random_control_per_seed() {
        let table = table();
        let metrics = vec!["auroc".to_string()];
        let gains: Vec<Gain> = GainLines::all(&table, &metrics)
            .iter()
            .map(|g| Gain::new(g, &metrics))
            .collect();
        assert_eq!(gains.len(), 1);
        let gain = &gains[0];
        assert_eq!(gain.key, "data.synthetic.hard_mimic_fraction");
        assert_eq!(gain.xs, vec![0.05, 0.3]);
        assert_eq!(gain.series.len(), 1, "none and random get no line");
        let points = &gain.series[0].points;
        // Differences 0.04, 0.042, 0.044 at 0.05; 0, 0.002, 0.004 at 0.3.
        assert!((points[0].1[0].mean - 0.042).abs() < 1e-12);
        assert!((points[1].1[0].mean - 0.002).abs() < 1e-12);
        assert!((points[0].1[0].sd - 0.002).abs() < 1e-12);
        assert_eq!(points[0].1[0].n, 3);
        assert!(gain.series[0].label.contains("random"));
    }

    #[test]
    fn no_figure_without_a_random_control() {
        let mut text = format!("{HEADER}\n");
        for (cell, x) in [0.05, 0.3].iter().enumerate() {
            let m = [0.9, 0.8, 0.7, 0.9, 0.75];
            text += &line(cell, &x.to_string(), "knn-l2", 0, "strong", m, true);
            text.push('\n');
        }
        let table = ResultsTable::parse(Path::new("results.csv"), text.as_bytes()).unwrap();
        assert!(GainLines::all(&table, &["auroc".to_string()]).is_empty());
    }
}
