//! `comparisons.csv`: paired comparisons over matched replicates (the same
//! seed and fold on both sides), with Holm correction per family.
//!
//! Three kinds of comparison, each over the compared metrics:
//! - `strong_vs_weak`: the strong model against the weak model of the same
//!   cells, in each configuration whose strong model was trained;
//! - `vs_none`: each strategy's strong model against the `none`
//!   configuration with the same values of the other axes. Axes under
//!   `mining.` are ignored in this match, because without mining they
//!   change nothing: one `none` baseline serves every query count;
//! - `vs_random`: each strategy against `random` with all other axes equal
//!   (`random` draws as many negatives as kNN would, so the query count
//!   matters there).
//!
//! A family for Holm's correction is one metric and one kind: every
//! configuration tested that way is one hypothesis of the family. Tests that
//! could not be computed (fewer than two pairs, all differences zero) are
//! left out of their family rather than counted as p = NaN.

use super::load::{Model, ResultsTable, MINING_PREFIX, STRATEGY_AXIS};
use super::summary::number;
use crate::stats::{holm, paired_t_test, wilcoxon};
use std::collections::HashMap;

/// What is compared with what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ComparisonKind {
    /// Strong against weak model of the same configuration.
    StrongVsWeak,
    /// A strategy against no mining.
    VsNone,
    /// A strategy against the random-negatives control.
    VsRandom,
}

impl ComparisonKind {
    /// All kinds, in report order.
    pub const ALL: [ComparisonKind; 3] = [
        ComparisonKind::StrongVsWeak,
        ComparisonKind::VsNone,
        ComparisonKind::VsRandom,
    ];

    /// Name in `comparisons.csv`.
    pub fn name(self) -> &'static str {
        match self {
            ComparisonKind::StrongVsWeak => "strong_vs_weak",
            ComparisonKind::VsNone => "vs_none",
            ComparisonKind::VsRandom => "vs_random",
        }
    }

    /// A sentence for readers.
    pub fn description(self) -> &'static str {
        match self {
            ComparisonKind::StrongVsWeak => "strong model vs weak model of the same cells",
            ComparisonKind::VsNone => "each strategy (strong model) vs no mining (weak model)",
            ComparisonKind::VsRandom => {
                "each strategy (strong model) vs the random-negatives control"
            }
        }
    }
}

/// One paired comparison.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Kind (with the metric, the Holm family).
    pub kind: ComparisonKind,
    /// Compared metric.
    pub metric: String,
    /// Configuration of the treated side.
    pub config: usize,
    /// Model of the treated side.
    pub model: Model,
    /// Configuration of the baseline side.
    pub baseline_config: usize,
    /// Model of the baseline side.
    pub baseline_model: Model,
    /// Matched replicates with the metric on both sides.
    pub n_pairs: usize,
    /// Mean of the treated side over the pairs.
    pub mean: f64,
    /// Mean of the baseline side over the pairs.
    pub baseline_mean: f64,
    /// Mean of treated - baseline.
    pub mean_difference: f64,
    /// Paired t statistic.
    pub t_statistic: f64,
    /// Two-sided paired t-test p-value.
    pub t_p: f64,
    /// Holm-adjusted `t_p` within the family.
    pub t_p_holm: f64,
    /// Two-sided Wilcoxon signed-rank p-value.
    pub wilcoxon_p: f64,
    /// Holm-adjusted `wilcoxon_p` within the family.
    pub wilcoxon_p_holm: f64,
    /// Why a test is missing, if one is.
    pub note: String,
}

/// Which configuration is compared with which, before any metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pairing {
    /// The comparison kind.
    pub kind: ComparisonKind,
    /// Treated configuration and model.
    pub config: usize,
    /// Treated model.
    pub model: Model,
    /// Baseline configuration.
    pub baseline_config: usize,
    /// Baseline model.
    pub baseline_model: Model,
}

/// Every pairing of the table, by kind then configuration order.
pub fn pairings(table: &ResultsTable) -> Vec<Pairing> {
    let mut out = Vec::new();
    let n = table.configurations.len();
    for config in (0..n).filter(|&c| table.strong_trained(c)) {
        out.push(Pairing {
            kind: ComparisonKind::StrongVsWeak,
            config,
            model: Model::Strong,
            baseline_config: config,
            baseline_model: Model::Weak,
        });
    }
    for (kind, baseline, skip) in [
        (ComparisonKind::VsNone, "none", &["none"][..]),
        (ComparisonKind::VsRandom, "random", &["none", "random"][..]),
    ] {
        for config in 0..n {
            if skip.contains(&table.configurations[config].strategy.as_str()) {
                continue;
            }
            let drop_mining = kind == ComparisonKind::VsNone;
            if let Some(b) = find_baseline(table, config, baseline, drop_mining) {
                out.push(Pairing {
                    kind,
                    config,
                    model: Model::Strong,
                    baseline_config: b,
                    baseline_model: Model::Strong,
                });
            }
        }
    }
    out
}

/// The axis values that must match between a configuration and its
/// baseline: all but the strategy, and without `mining.` axes if asked.
fn context(table: &ResultsTable, config: usize, drop_mining: bool) -> Vec<&str> {
    table
        .axes
        .iter()
        .zip(&table.configurations[config].values)
        .filter(|(key, _)| {
            key.as_str() != STRATEGY_AXIS && !(drop_mining && key.starts_with(MINING_PREFIX))
        })
        .map(|(_, value)| value.as_str())
        .collect()
}

/// The configuration of `strategy` matching `config`; one that also matches
/// on the ignored axes is preferred, then the first.
pub fn find_baseline(
    table: &ResultsTable,
    config: usize,
    strategy: &str,
    drop_mining: bool,
) -> Option<usize> {
    let wanted = context(table, config, drop_mining);
    let exact = context(table, config, false);
    let candidates: Vec<usize> = (0..table.configurations.len())
        .filter(|&b| b != config && table.configurations[b].strategy == strategy)
        .filter(|&b| context(table, b, drop_mining) == wanted)
        .collect();
    candidates
        .iter()
        .copied()
        .find(|&b| context(table, b, false) == exact)
        .or_else(|| candidates.first().copied())
}

/// Paired values (treated, baseline) of `metric` over matched replicates, in
/// the treated side's row order.
pub fn paired_values(
    table: &ResultsTable,
    pairing: &Pairing,
    metric: &str,
) -> (Vec<f64>, Vec<f64>) {
    let baseline: HashMap<_, f64> = table
        .ok_rows_of(pairing.baseline_config, pairing.baseline_model)
        .map(|r| (r.replicate.clone(), table.value(r, metric)))
        .collect();
    let mut a = Vec::new();
    let mut b = Vec::new();
    for row in table.ok_rows_of(pairing.config, pairing.model) {
        let treated = table.value(row, metric);
        if let Some(&base) = baseline.get(&row.replicate) {
            if treated.is_finite() && base.is_finite() {
                a.push(treated);
                b.push(base);
            }
        }
    }
    (a, b)
}

/// All comparisons for `metrics`, Holm-adjusted per family.
pub fn compare_all(table: &ResultsTable, metrics: &[String]) -> Vec<Comparison> {
    let plans = pairings(table);
    let mut out = Vec::new();
    for kind in ComparisonKind::ALL {
        for metric in metrics {
            for pairing in plans.iter().filter(|p| p.kind == kind) {
                out.push(compare(table, pairing, metric));
            }
        }
    }
    adjust_families(&mut out);
    out
}

/// One comparison, unadjusted.
fn compare(table: &ResultsTable, pairing: &Pairing, metric: &str) -> Comparison {
    let (a, b) = paired_values(table, pairing, metric);
    let mean = |v: &[f64]| {
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    let mut notes = Vec::new();
    let t = paired_t_test(&a, &b)
        .map_err(|e| notes.push(format!("t-test: {e}")))
        .ok();
    let w = wilcoxon(&a, &b)
        .map_err(|e| notes.push(format!("Wilcoxon: {e}")))
        .ok();
    if t.is_some_and(|t| t.p_value.is_nan()) {
        notes.push("all paired differences are zero".into());
    }
    Comparison {
        kind: pairing.kind,
        metric: metric.to_string(),
        config: pairing.config,
        model: pairing.model,
        baseline_config: pairing.baseline_config,
        baseline_model: pairing.baseline_model,
        n_pairs: a.len(),
        mean: mean(&a),
        baseline_mean: mean(&b),
        mean_difference: t
            .map(|t| t.mean_difference)
            .unwrap_or_else(|| mean(&a) - mean(&b)),
        t_statistic: t.map(|t| t.statistic).unwrap_or(f64::NAN),
        t_p: t.map(|t| t.p_value).unwrap_or(f64::NAN),
        t_p_holm: f64::NAN,
        wilcoxon_p: w.map(|w| w.p_value).unwrap_or(f64::NAN),
        wilcoxon_p_holm: f64::NAN,
        note: notes.join("; "),
    }
}

/// Holm's correction within each (kind, metric) family, over the tests
/// that have a p-value.
fn adjust_families(comparisons: &mut [Comparison]) {
    let mut families: HashMap<(ComparisonKind, String), Vec<usize>> = HashMap::new();
    for (i, c) in comparisons.iter().enumerate() {
        families
            .entry((c.kind, c.metric.clone()))
            .or_default()
            .push(i);
    }
    for members in families.values() {
        let t: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&i| comparisons[i].t_p.is_finite())
            .collect();
        for (&i, p) in t.iter().zip(holm(
            &t.iter().map(|&i| comparisons[i].t_p).collect::<Vec<_>>(),
        )) {
            comparisons[i].t_p_holm = p;
        }
        let w: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&i| comparisons[i].wilcoxon_p.is_finite())
            .collect();
        for (&i, p) in w.iter().zip(holm(
            &w.iter()
                .map(|&i| comparisons[i].wilcoxon_p)
                .collect::<Vec<_>>(),
        )) {
            comparisons[i].wilcoxon_p_holm = p;
        }
    }
}

/// Significance marks of an adjusted p-value: `**` below 0.01, `*` below 0.05.
pub fn stars(p: f64) -> &'static str {
    if p < 0.01 {
        "**"
    } else if p < 0.05 {
        "*"
    } else {
        ""
    }
}

/// The text of `comparisons.csv`.
pub fn to_csv(table: &ResultsTable, comparisons: &[Comparison]) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header: Vec<String> = vec!["kind".into(), "metric".into()];
    header.extend(table.axes.iter().cloned());
    header.extend(
        [
            "strategy",
            "model",
            "baseline",
            "baseline_strategy",
            "baseline_model",
            "n_pairs",
            "mean",
            "baseline_mean",
            "mean_difference",
            "t_statistic",
            "t_p",
            "t_p_holm",
            "wilcoxon_p",
            "wilcoxon_p_holm",
            "note",
        ]
        .map(String::from),
    );
    writer.write_record(&header)?;
    for c in comparisons {
        let config = &table.configurations[c.config];
        let baseline = &table.configurations[c.baseline_config];
        let mut record = vec![c.kind.name().to_string(), c.metric.clone()];
        record.extend(config.values.iter().cloned());
        record.extend([
            config.strategy.clone(),
            c.model.name().into(),
            table.config_label(c.baseline_config),
            baseline.strategy.clone(),
            c.baseline_model.name().into(),
            c.n_pairs.to_string(),
        ]);
        record.extend(
            [
                c.mean,
                c.baseline_mean,
                c.mean_difference,
                c.t_statistic,
                c.t_p,
                c.t_p_holm,
                c.wilcoxon_p,
                c.wilcoxon_p_holm,
            ]
            .map(number),
        );
        record.push(c.note.clone());
        writer.write_record(&record)?;
    }
    writer
        .into_inner()
        .map_err(|e| csv::Error::from(std::io::Error::other(e.to_string())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::load::tests::{line, HEADER};
    use crate::report::summary::tests::two_by_three;
    use std::path::Path;

    #[test]
    fn strong_vs_weak_and_vs_none_are_paired_by_seed() {
        let table = two_by_three();
        let plans = pairings(&table);
        // knn-l2 (config 1) is trained: strong vs weak; vs none: config 0.
        assert_eq!(plans.len(), 2, "{plans:?}");
        assert_eq!(plans[0].kind, ComparisonKind::StrongVsWeak);
        assert_eq!(
            (plans[1].kind, plans[1].config, plans[1].baseline_config),
            (ComparisonKind::VsNone, 1, 0)
        );
        let (a, b) = paired_values(&table, &plans[1], "auroc");
        assert_eq!(a, vec![0.85, 0.88, 0.91]);
        assert_eq!(b, vec![0.80, 0.82, 0.84]);
        let all = compare_all(&table, &["auroc".to_string()]);
        let c = &all[1];
        // d = 0.05, 0.06, 0.07: mean 0.06, sd 0.01, t = 0.06 / (0.01 / sqrt 3) = 10.392.
        assert!((c.mean_difference - 0.06).abs() < 1e-12);
        assert!(
            (c.t_statistic - 6.0 * 3f64.sqrt()).abs() < 1e-6,
            "{}",
            c.t_statistic
        );
        // Exact Wilcoxon with 3 positive differences: p = 2 / 2^3 = 0.25.
        assert!((c.wilcoxon_p - 0.25).abs() < 1e-12);
        // A family of one: Holm leaves p unchanged.
        assert_eq!(c.t_p_holm, c.t_p);
    }

    #[test]
    fn pairs_skip_missing_replicates_and_failed_cells() {
        let mut text = format!("{HEADER}\n");
        for (cell, strategy, seed, auroc) in [
            (0, "none", 0, 0.8),
            (1, "none", 1, 0.82),
            (2, "knn-l2", 0, 0.9),
            (3, "knn-l2", 2, 0.95),
        ] {
            for model in ["weak", "strong"] {
                text += &line(
                    cell,
                    "0.3",
                    strategy,
                    seed,
                    model,
                    [auroc, 0.7, 0.6, 0.9, 0.65],
                    strategy != "none",
                );
                text += "\n";
            }
        }
        text += "4,0.3,knn-l2,1,,strong,knn-l2,20,failed,x,,,,,,,,,,,,,,,,,,,\n";
        let table = ResultsTable::parse(Path::new("r.csv"), text.as_bytes()).unwrap();
        let plan = pairings(&table)
            .into_iter()
            .find(|p| p.kind == ComparisonKind::VsNone)
            .unwrap();
        let (a, b) = paired_values(&table, &plan, "auroc");
        assert_eq!(
            (a, b),
            (vec![0.9], vec![0.8]),
            "only seed 0 is on both sides"
        );
        let c = compare_all(&table, &["auroc".to_string()])
            .into_iter()
            .find(|c| c.kind == ComparisonKind::VsNone);
        let c = c.unwrap();
        assert!(c.t_p.is_nan() && c.note.contains("t-test"), "{}", c.note);
        assert!(c.t_p_holm.is_nan());
    }

    /// Configurations (pos_fraction x strategy), strategy `none` ignoring
    /// its query count, and Holm within one family.
    #[test]
    fn baselines_match_other_axes_and_holm_is_per_family() {
        let header = HEADER.replace(
            "data.pos_fraction,mining.strategy",
            "data.pos_fraction,mining.num_query,mining.strategy",
        );
        let mut text = format!("{header}\n");
        let mut cell = 0;
        let rows: [(&str, &str, &str, [f64; 3]); 5] = [
            ("0.1", "20", "none", [0.70, 0.72, 0.71]),
            ("0.5", "20", "none", [0.80, 0.82, 0.81]),
            ("0.1", "5", "knn-l2", [0.75, 0.78, 0.76]),
            ("0.5", "5", "knn-l2", [0.83, 0.88, 0.84]),
            ("0.5", "5", "random", [0.81, 0.83, 0.80]),
        ];
        for (pos, nq, strategy, aurocs) in rows {
            for (seed, auroc) in aurocs.iter().enumerate() {
                for model in ["weak", "strong"] {
                    let l = line(
                        cell,
                        pos,
                        strategy,
                        seed as u32,
                        model,
                        [*auroc, 0.7, 0.6, 0.9, 0.65],
                        strategy != "none",
                    );
                    text += &l.replacen(
                        &format!(",{pos},{strategy},"),
                        &format!(",{pos},{nq},{strategy},"),
                        1,
                    );
                    text += "\n";
                }
                cell += 1;
            }
        }
        let table = ResultsTable::parse(Path::new("r.csv"), text.as_bytes()).unwrap();
        assert_eq!(
            find_baseline(&table, 2, "none", true),
            Some(0),
            "num_query ignored against none"
        );
        assert_eq!(find_baseline(&table, 3, "none", true), Some(1));
        assert_eq!(
            find_baseline(&table, 2, "random", false),
            None,
            "no random at pos 0.1"
        );
        assert_eq!(find_baseline(&table, 3, "random", false), Some(4));
        let all = compare_all(&table, &["auroc".to_string()]);
        let vs_none: Vec<&Comparison> = all
            .iter()
            .filter(|c| c.kind == ComparisonKind::VsNone)
            .collect();
        assert_eq!(vs_none.len(), 3, "knn-l2 x 2 and random");
        let raw: Vec<f64> = vs_none.iter().map(|c| c.t_p).collect();
        let adjusted = holm(&raw);
        for (c, p) in vs_none.iter().zip(adjusted) {
            assert_eq!(c.t_p_holm, p);
        }
        let vs_random: Vec<&Comparison> = all
            .iter()
            .filter(|c| c.kind == ComparisonKind::VsRandom)
            .collect();
        assert_eq!(vs_random.len(), 1);
        assert_eq!(
            vs_random[0].t_p_holm, vs_random[0].t_p,
            "its own family of one"
        );
        assert!(vs_none.iter().all(|c| c.t_p_holm >= c.t_p));
    }

    #[test]
    fn star_thresholds() {
        assert_eq!(stars(0.009), "**");
        assert_eq!(stars(0.01), "*");
        assert_eq!(stars(0.049), "*");
        assert_eq!(stars(0.05), "");
        assert_eq!(stars(f64::NAN), "");
    }
}
