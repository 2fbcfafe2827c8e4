//! Each mining strategy's gain over the random-negatives control along a
//! numeric axis: the strong model's metric minus the control's strong
//! model's, paired on the seed/fold and on every other axis value. The gain
//! figures ([`super::figures::gain`]) draw these differences and the trend
//! table ([`super::trends`]) regresses them on the axis.

use super::load::{display_value, Model, ResultsTable, STRATEGY_AXIS};
use std::collections::BTreeMap;

/// The control every strategy is compared with.
pub const CONTROL: &str = "random";

/// A line's identity: strategy rank, strategy, values of the other axes.
type LineKey = (usize, String, Vec<String>);
/// A line's paired differences: axis value (as bits) -> per metric.
type LinePoints = BTreeMap<u64, Vec<Vec<f64>>>;

/// One strategy's gain (at one setting of the other varying axes) along the axis.
#[derive(Debug, Clone, PartialEq)]
pub struct GainLine {
    /// The mining strategy compared with the control.
    pub strategy: String,
    /// The other axes that vary between lines, as `name=value` (the name is
    /// the key's last part) joined by `, `; empty when nothing else varies.
    pub setting: String,
    /// Per axis value, ascending: per metric, the finite paired differences.
    pub points: Vec<(f64, Vec<Vec<f64>>)>,
}

impl GainLine {
    /// Every (axis value, difference) pair of metric `m`.
    pub fn pairs(&self, m: usize) -> (Vec<f64>, Vec<f64>) {
        self.points
            .iter()
            .flat_map(|(x, d)| d[m].iter().map(move |&v| (*x, v)))
            .unzip()
    }
}

/// The gain lines along one numeric axis.
#[derive(Debug, Clone, PartialEq)]
pub struct GainLines {
    /// The axis (its key in the experiment file).
    pub key: String,
    /// Distinct axis values with a gain, ascending.
    pub xs: Vec<f64>,
    /// Lines, by strategy (in the order of `Strategy::ALL`) and setting.
    pub lines: Vec<GainLine>,
}

impl GainLines {
    /// The lines along `axis` for `metrics`, or `None` unless some strategy
    /// has a random control to be paired with at two or more axis values.
    pub fn build(table: &ResultsTable, axis: usize, metrics: &[String]) -> Option<Self> {
        let x_of = |c: usize| table.configurations[c].values[axis].parse::<f64>().ok();
        // Configurations agree on everything but the strategy (and the axis
        // itself, which places the point).
        let others: Vec<usize> = (0..table.axes.len())
            .filter(|&i| i != axis && table.axes[i] != STRATEGY_AXIS)
            .collect();
        let setting = |c: usize| -> Vec<String> {
            others
                .iter()
                .map(|&i| table.configurations[c].values[i].clone())
                .collect()
        };
        let find_control = |c: usize| {
            (0..table.configurations.len()).find(|&r| {
                table.configurations[r].strategy == CONTROL
                    && x_of(r) == x_of(c)
                    && setting(r) == setting(c)
            })
        };
        // (strategy, other settings) -> x -> differences per metric.
        let mut lines: BTreeMap<LineKey, LinePoints> = BTreeMap::new();
        for c in 0..table.configurations.len() {
            let strategy = &table.configurations[c].strategy;
            if strategy == CONTROL || strategy == "none" {
                continue;
            }
            let (Some(x), Some(control)) = (x_of(c), find_control(c)) else {
                continue;
            };
            let mut differences = vec![Vec::new(); metrics.len()];
            for row in table.ok_rows_of(c, Model::Strong) {
                let Some(base) = table
                    .ok_rows_of(control, Model::Strong)
                    .find(|b| b.replicate == row.replicate)
                else {
                    continue;
                };
                for (m, metric) in metrics.iter().enumerate() {
                    let d = table.value(row, metric) - table.value(base, metric);
                    if d.is_finite() {
                        differences[m].push(d);
                    }
                }
            }
            if differences.iter().all(Vec::is_empty) {
                continue;
            }
            let key = (
                super::load::strategy_rank(strategy),
                strategy.clone(),
                setting(c),
            );
            lines
                .entry(key)
                .or_default()
                .insert(x.to_bits(), differences);
        }
        let mut xs: Vec<f64> = lines
            .values()
            .flat_map(|points| points.keys().map(|&b| f64::from_bits(b)))
            .collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        if xs.len() < 2 {
            return None;
        }
        let varying: Vec<usize> = (0..others.len())
            .filter(|&k| {
                let mut values = lines.keys().map(|(_, _, s)| &s[k]);
                let first = values.next();
                values.any(|v| Some(v) != first)
            })
            .collect();
        let lines = lines
            .into_iter()
            .map(|((_, strategy, values), points)| {
                let setting = varying
                    .iter()
                    .map(|&k| {
                        let key = &table.axes[others[k]];
                        let short = key.rsplit('.').next().unwrap_or(key);
                        format!("{short}={}", display_value(&values[k]))
                    })
                    .collect::<Vec<_>>()
                    .join(", ");
                let mut points: Vec<(f64, Vec<Vec<f64>>)> = points
                    .into_iter()
                    .map(|(bits, d)| (f64::from_bits(bits), d))
                    .collect();
                points.sort_by(|a, b| a.0.total_cmp(&b.0));
                GainLine {
                    strategy,
                    setting,
                    points,
                }
            })
            .collect();
        Some(Self {
            key: table.axes[axis].clone(),
            xs,
            lines,
        })
    }

    /// The lines along every numeric axis that has them.
    pub fn all(table: &ResultsTable, metrics: &[String]) -> Vec<Self> {
        super::load::numeric_axes(table)
            .into_iter()
            .filter_map(|axis| Self::build(table, axis, metrics))
            .collect()
    }
}
