//! Whether mining's gain over the random control changes along a numeric
//! axis: for every gain line ([`GainLines`], the lines of the gain figures), the paired
//! differences (strategy − random, one per seed/fold and axis value) are
//! regressed on the axis value by least squares, and the slope is tested
//! against zero (two-sided t-test, as `scipy.stats.linregress`). The
//! p-values are Holm-corrected within each axis and metric, over its lines
//! (as the paired comparisons are within each metric and kind).
//!
//! This reads a negative control as one test rather than level by level: a
//! gain that falls as look-alikes become common in the hard-labeled set
//! has a negative slope, while a gain that is within noise everywhere has
//! none.

use super::document::{fmt_p, Block, Cell, Table};
use super::gains::{GainLines, CONTROL};
use super::options::{axis_label, metric_label, strategy_label};
use crate::stats::{holm, linear_trend, Trend};
use std::collections::BTreeMap;

/// One line's trend for one metric.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendRow {
    /// The numeric axis (its key in the experiment file).
    pub axis: String,
    /// The mining strategy compared with the random control.
    pub strategy: String,
    /// The other axes that vary between lines (see [`super::gains::GainLine`]).
    pub setting: String,
    /// The metric whose difference is regressed.
    pub metric: String,
    /// Paired differences in the fit.
    pub pairs: usize,
    /// Distinct axis values among them.
    pub levels: usize,
    /// The fitted line and the test of its slope.
    pub trend: Trend,
    /// The slope's p-value, Holm-corrected within the axis and metric.
    pub p_holm: f64,
}

/// The trend of every gain line (built for `metrics`) with a testable slope.
pub fn trend_rows(gain_lines: &[GainLines], metrics: &[String]) -> Vec<TrendRow> {
    let mut rows = Vec::new();
    for gains in gain_lines {
        for line in &gains.lines {
            for (m, metric) in metrics.iter().enumerate() {
                let (xs, differences) = line.pairs(m);
                let Ok(trend) = linear_trend(&xs, &differences) else {
                    continue; // fewer than three pairs, or one axis value
                };
                rows.push(TrendRow {
                    axis: gains.key.clone(),
                    strategy: line.strategy.clone(),
                    setting: line.setting.clone(),
                    metric: metric.clone(),
                    pairs: xs.len(),
                    levels: line.points.iter().filter(|(_, d)| !d[m].is_empty()).count(),
                    trend,
                    p_holm: f64::NAN,
                });
            }
        }
    }
    adjust_families(&mut rows);
    rows
}

/// Holm within each (axis, metric), as the paired comparisons are within
/// each metric and kind; as there, a line without a p-value (a constant
/// gain's is NaN) is left out of its family and keeps NaN.
fn adjust_families(rows: &mut [TrendRow]) {
    let mut families: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        if row.trend.p_value.is_finite() {
            let family = (row.axis.clone(), row.metric.clone());
            families.entry(family).or_default().push(i);
        }
    }
    for members in families.values() {
        let p: Vec<f64> = members.iter().map(|&i| rows[i].trend.p_value).collect();
        for (&i, adjusted) in members.iter().zip(holm(&p)) {
            rows[i].p_holm = adjusted;
        }
    }
}

/// `gain_trends.csv`: one row per axis, line and metric.
pub fn to_csv(rows: &[TrendRow]) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record([
        "axis",
        "strategy",
        "control",
        "setting",
        "metric",
        "n_pairs",
        "n_levels",
        "slope",
        "slope_ci95_low",
        "slope_ci95_high",
        "intercept",
        "r",
        "t_statistic",
        "df",
        "p",
        "p_holm",
    ])?;
    for row in rows {
        let t = &row.trend;
        let (low, high) = t.slope_ci95();
        let mut record = vec![
            row.axis.clone(),
            row.strategy.clone(),
            CONTROL.to_string(),
            row.setting.clone(),
            row.metric.clone(),
            row.pairs.to_string(),
            row.levels.to_string(),
        ];
        record.extend(
            [
                t.slope,
                low,
                high,
                t.intercept,
                t.r,
                t.statistic,
                t.df,
                t.p_value,
                row.p_holm,
            ]
            .map(super::summary::number),
        );
        writer.write_record(&record)?;
    }
    writer
        .into_inner()
        .map_err(|e| csv::Error::from(std::io::Error::other(e.to_string())))
}

/// The report's section: one table per axis, a row per line, per metric
/// the slope with its 95% interval and the Holm-corrected p.
pub fn blocks(rows: &[TrendRow], metrics: &[String]) -> Vec<Block> {
    if rows.is_empty() {
        return Vec::new();
    }
    let mut blocks = vec![
        Block::Heading(2, "Trend of the gain over the random control".into()),
        Block::Paragraph(
            "Each strategy's paired differences from the random control (the points of the gain figures, one per \
             seed/fold and axis value) regressed on the axis value by least squares: the slope is the change of the \
             gain per unit of the axis, with its 95% t interval, and the p-value tests a zero slope (two-sided, as \
             `scipy.stats.linregress`), Holm-corrected over the lines of each axis and metric (bold: < 0.05). A gain that falls along \
             the axis has a negative slope. `gain_trends.csv` adds the uncorrected p-values and the fits."
                .into(),
        ),
    ];
    let mut axes: Vec<&String> = rows.iter().map(|r| &r.axis).collect();
    axes.dedup();
    for axis in axes {
        blocks.push(Block::Heading(3, format!("Along {}", axis_label(axis))));
        let mut header = vec!["line".to_string(), "n".to_string()];
        for m in metrics {
            header.push(format!("slope of Δ {}", metric_label(m)));
            header.push("95% CI".into());
            header.push("Holm p".into());
        }
        let mut numeric = vec![false, true];
        numeric.resize(header.len(), true);
        let mut table = Table {
            header,
            rows: Vec::new(),
            numeric,
        };
        let mut lines: Vec<(&String, &String)> = rows
            .iter()
            .filter(|r| &r.axis == axis)
            .map(|r| (&r.strategy, &r.setting))
            .collect();
        lines.dedup();
        for (strategy, setting) in lines {
            let of_line: Vec<&TrendRow> = rows
                .iter()
                .filter(|r| &r.axis == axis && &r.strategy == strategy && &r.setting == setting)
                .collect();
            let mut label = format!("{} − {}", strategy_label(strategy), strategy_label(CONTROL));
            if !setting.is_empty() {
                label += &format!(", {setting}");
            }
            let pairs = of_line.iter().map(|r| r.pairs).max().unwrap_or(0);
            let mut cells = vec![Cell::plain(label), Cell::plain(pairs.to_string())];
            for m in metrics {
                match of_line.iter().find(|r| &r.metric == m) {
                    Some(r) => {
                        let (low, high) = r.trend.slope_ci95();
                        cells.push(Cell::plain(signed(r.trend.slope)));
                        cells.push(Cell::plain(format!("{} to {}", signed(low), signed(high))));
                        cells.push(Cell {
                            text: fmt_p(r.p_holm),
                            bold: r.p_holm < 0.05,
                            marks: String::new(),
                        });
                    }
                    None => cells.extend([Cell::plain("–"), Cell::plain("–"), Cell::plain("–")]),
                }
            }
            table.rows.push(cells);
        }
        blocks.push(Block::Table(table));
    }
    blocks
}

/// A slope with its sign and 3 decimals, or a dash.
fn signed(value: f64) -> String {
    if value.is_finite() {
        format!("{value:+.3}")
    } else {
        "–".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::load::tests::line;
    use crate::report::load::ResultsTable;
    use std::path::Path;

    const HEADER: &str = "cell,data.synthetic.hard_mimic_fraction,mining.strategy,seed,fold,model,strategy,num_query,status,error,n_test,loss,auroc,auprc,sensitivity,specificity,precision,f1,accuracy,tp,fp,tn,fn,false_positives,mined,mimic_fraction,train_size,best_epoch,trained";
    const LEVELS: [f64; 3] = [0.05, 0.15, 0.3];
    const SEEDS: u32 = 4;

    /// A seed's jitter of a strategy's gain, so that the fit has residuals.
    fn jitter(seed: u32) -> f64 {
        0.003 * f64::from((seed * 7) % 4)
    }

    /// hard_mimic_fraction 0.05 / 0.15 / 0.3 x four seeds, strategies none,
    /// random and `mining`: each mining strategy's AUROC is random's plus
    /// its gain at the level plus [`jitter`].
    fn table(mining: &[(&str, [f64; 3])]) -> ResultsTable {
        let mut text = format!("{HEADER}\n");
        let mut cell = 0;
        for (level, x) in LEVELS.iter().enumerate() {
            let mut strategies = vec![("none", None), ("random", None)];
            strategies.extend(mining.iter().map(|(s, gains)| (*s, Some(gains[level]))));
            for (strategy, gain) in strategies {
                for seed in 0..SEEDS {
                    let base = 0.9 + 0.01 * f64::from(seed);
                    let auroc = base + gain.map_or(0.0, |g| g + jitter(seed));
                    for model in ["weak", "strong"] {
                        let trained = model == "weak" || strategy != "none";
                        let m = [auroc, 0.8, 0.7, 0.9, 0.75];
                        text += &line(cell, &x.to_string(), strategy, seed, model, m, trained);
                        text.push('\n');
                    }
                    cell += 1;
                }
            }
        }
        ResultsTable::parse(Path::new("results.csv"), text.as_bytes()).unwrap()
    }

    /// The fit of `gains` (plus the seeds' jitter) on the levels, computed
    /// directly.
    fn direct_fit(gains: [f64; 3]) -> Trend {
        let (mut x, mut y) = (Vec::new(), Vec::new());
        for (level, gain) in LEVELS.iter().zip(gains) {
            for seed in 0..SEEDS {
                x.push(*level);
                y.push(gain + jitter(seed));
            }
        }
        linear_trend(&x, &y).unwrap()
    }

    #[test]
    fn regresses_the_paired_differences_on_the_axis() {
        let falling = [0.08, 0.05, 0.0];
        let metrics = ["auroc".to_string()];
        let gains = GainLines::all(&table(&[("knn-l2", falling)]), &metrics);
        let rows = trend_rows(&gains, &metrics);
        assert_eq!(rows.len(), 1, "random and none get no line");
        let row = &rows[0];
        assert_eq!(row.axis, "data.synthetic.hard_mimic_fraction");
        assert_eq!(
            (row.strategy.as_str(), row.setting.as_str()),
            ("knn-l2", "")
        );
        assert_eq!((row.pairs, row.levels), (12, 3));
        let want = direct_fit(falling);
        assert!(row.trend.slope < 0.0 && row.trend.p_value < 0.05);
        assert!((row.trend.slope - want.slope).abs() < 1e-12);
        assert!((row.trend.p_value - want.p_value).abs() < 1e-9);
        // One line in its family: Holm leaves the p-value as it is.
        assert_eq!(row.p_holm, row.trend.p_value);
    }

    #[test]
    fn holm_corrects_over_the_lines_of_an_axis() {
        let (falling, flat) = ([0.08, 0.05, 0.0], [0.01, 0.0, 0.01]);
        let table = table(&[("knn-l2", falling), ("knn-cosine", flat)]);
        let metrics = ["auroc".to_string()];
        let rows = trend_rows(&GainLines::all(&table, &metrics), &metrics);
        assert_eq!(rows.len(), 2);
        let p: Vec<f64> = rows.iter().map(|r| r.trend.p_value).collect();
        let adjusted: Vec<f64> = rows.iter().map(|r| r.p_holm).collect();
        assert_eq!(adjusted, holm(&p));
        let of = |s: &str| rows.iter().find(|r| r.strategy == s).unwrap();
        assert!(of("knn-l2").p_holm < 0.05 && of("knn-cosine").p_holm > 0.05);

        let csv = String::from_utf8(to_csv(&rows).unwrap()).unwrap();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(
            lines[0].starts_with("axis,strategy,control,setting,metric,n_pairs,n_levels,slope,")
        );
        let knn = lines.iter().find(|l| l.contains(",knn-l2,")).unwrap();
        assert!(knn.starts_with("data.synthetic.hard_mimic_fraction,knn-l2,random,,auroc,12,3,-"));

        let blocks = blocks(&rows, &metrics);
        let Some(Block::Table(shown)) = blocks.last() else {
            panic!("the section ends with a table")
        };
        // Columns: line, n, then slope, interval and Holm p per metric.
        let bold: Vec<(String, bool)> = shown
            .rows
            .iter()
            .map(|r| (r[0].text.clone(), r[4].bold))
            .collect();
        assert!(
            bold.contains(&("knn-l2 − random".to_string(), true)),
            "{bold:?}"
        );
        assert!(
            bold.contains(&("knn-cosine − random".to_string(), false)),
            "{bold:?}"
        );
    }

    #[test]
    fn a_line_without_a_p_value_stays_out_of_its_family() {
        let row = |strategy: &str, p_value: f64| TrendRow {
            axis: "data.synthetic.hard_mimic_fraction".into(),
            strategy: strategy.into(),
            setting: String::new(),
            metric: "auroc".into(),
            pairs: 24,
            levels: 3,
            trend: Trend {
                slope: 0.0,
                intercept: 0.0,
                r: f64::NAN,
                slope_stderr: f64::NAN,
                statistic: f64::NAN,
                p_value,
                df: 22.0,
            },
            p_holm: f64::NAN,
        };
        let mut rows = vec![row("knn-l2", 0.02), row("knn-cosine", f64::NAN)];
        adjust_families(&mut rows);
        assert_eq!(
            rows[0].p_holm, 0.02,
            "one member with a p-value: no correction"
        );
        assert!(rows[1].p_holm.is_nan());
    }

    #[test]
    fn no_section_without_a_trend() {
        assert!(blocks(&[], &["auroc".to_string()]).is_empty());
        // A single level has no slope to fit.
        let mut text = format!("{HEADER}\n");
        for (cell, strategy) in ["knn-l2", "random"].iter().enumerate() {
            for seed in 0..3 {
                let m = [0.9, 0.8, 0.7, 0.9, 0.75];
                text += &line(
                    cell * 3 + seed as usize,
                    "0.15",
                    strategy,
                    seed,
                    "strong",
                    m,
                    true,
                );
                text.push('\n');
            }
        }
        let table = ResultsTable::parse(Path::new("results.csv"), text.as_bytes()).unwrap();
        let metrics = ["auroc".to_string()];
        assert!(trend_rows(&GainLines::all(&table, &metrics), &metrics).is_empty());
    }
}
