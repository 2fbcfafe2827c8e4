//! The report as a document of blocks (headings, paragraphs, tables,
//! figures, code), built once from the computed tables and rendered by
//! [`super::markdown`] and [`super::html`], so both say the same thing.

use super::cell_tests::CellTest;
use super::compare::{stars, Comparison, ComparisonKind};
use super::figures::FigureFile;
use super::load::{display_value, Model, ResultsTable, STRATEGY_AXIS};
use super::options::{higher_is_better, metric_label, ReportOptions};
use super::provenance::Provenance;
use super::summary::SummaryRow;
use super::trends::TrendRow;
use crate::stats::Summary;
use std::path::Path;

/// One table cell.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Cell {
    /// Text.
    pub text: String,
    /// Shown in bold (the best value of its column).
    pub bold: bool,
    /// Significance marks shown after the text (`*`, `**`, `†`, `††`).
    pub marks: String,
}

impl Cell {
    /// Plain text.
    pub fn plain(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            ..Self::default()
        }
    }
}

/// A table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Column headings.
    pub header: Vec<String>,
    /// Rows of cells.
    pub rows: Vec<Vec<Cell>>,
    /// Right-aligned (numeric) columns.
    pub numeric: Vec<bool>,
}

/// A block of the document.
#[derive(Debug, Clone, PartialEq)]
pub enum Block {
    /// A heading (level 1 to 3).
    Heading(u8, String),
    /// A paragraph; `backticks` mark code.
    Paragraph(String),
    /// A bulleted list.
    List(Vec<String>),
    /// A table.
    Table(Table),
    /// A figure file with its caption.
    Figure {
        /// PNG path relative to the results folder.
        png: String,
        /// SVG path relative to the results folder.
        svg: String,
        /// Short title.
        title: String,
        /// Caption.
        caption: String,
    },
    /// A code block.
    Code {
        /// Language tag.
        language: String,
        /// Code.
        text: String,
    },
}

/// The whole report.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    /// Title (also the first heading).
    pub title: String,
    /// Content.
    pub blocks: Vec<Block>,
}

/// Everything the report shows.
pub struct Inputs<'a> {
    /// The results folder.
    pub dir: &'a Path,
    /// `results.csv`.
    pub table: &'a ResultsTable,
    /// `[report]` settings.
    pub options: &'a ReportOptions,
    /// Experiment file and manifest.
    pub provenance: &'a Provenance,
    /// Per configuration and model.
    pub summaries: &'a [SummaryRow],
    /// Paired comparisons.
    pub comparisons: &'a [Comparison],
    /// Per-cell DeLong tests.
    pub cell_tests: &'a [CellTest],
    /// Trends of the gain over the random control along numeric axes.
    pub trends: &'a [TrendRow],
    /// Figures drawn.
    pub figures: &'a [FigureFile],
    /// What was skipped and why.
    pub notes: &'a [String],
}

/// A metric value with 3 decimals, or a dash.
pub fn fmt3(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.3}")
    } else {
        "–".into()
    }
}

/// A p-value: 3 decimals, "< 0.001" below that, a dash when missing.
pub fn fmt_p(p: f64) -> String {
    if !p.is_finite() {
        "–".into()
    } else if p < 0.001 {
        "< 0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// Builds the document.
pub fn build(inputs: &Inputs<'_>) -> Document {
    let name = inputs
        .provenance
        .experiment_name()
        .or_else(|| {
            inputs
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "experiment".into());
    let title = format!("Ablation report: {name}");
    let mut blocks = vec![
        Block::Heading(1, title.clone()),
        Block::Paragraph(overview(inputs)),
    ];
    let failed = inputs.table.failed_cells();
    if !failed.is_empty() {
        blocks.push(Block::List(
            failed
                .iter()
                .map(|&cell| {
                    let error = inputs
                        .table
                        .rows
                        .iter()
                        .find(|r| r.cell == cell)
                        .map(|r| r.error.as_str())
                        .unwrap_or("");
                    format!("cell {cell} failed: {error}")
                })
                .collect(),
        ));
    }
    blocks.push(Block::Heading(2, "Results".into()));
    blocks.push(Block::Paragraph(
        "Test metrics, mean ± SD over seeds/folds (n = finished replicates). Bold: the best mean of each column. \
         Marks on strong models: * p < 0.05, ** p < 0.01 against `none` (no mining); † p < 0.05, †† p < 0.01 against the \
         weak model of the same cells; paired t-tests on matched seeds/folds, Holm-corrected within each metric and kind \
         of comparison. Strategy `none` trains no strong model, so only its weak model is listed."
            .into(),
    ));
    blocks.push(Block::Table(results_table(inputs)));
    if !inputs.figures.is_empty() {
        blocks.push(Block::Heading(2, "Figures".into()));
        for (i, f) in inputs.figures.iter().enumerate() {
            blocks.push(Block::Figure {
                png: path_text(&f.png),
                svg: path_text(&f.svg),
                title: format!("Figure {}. {}", i + 1, f.title),
                caption: f.caption.clone(),
            });
        }
    }
    blocks.extend(super::found::blocks(inputs.table, inputs.summaries));
    blocks.extend(comparison_blocks(inputs));
    blocks.extend(super::trends::blocks(
        inputs.trends,
        &inputs.options.metrics,
    ));
    blocks.extend(cell_test_blocks(inputs));
    blocks.extend(provenance_blocks(inputs));
    if !inputs.notes.is_empty() {
        blocks.push(Block::Heading(2, "Notes".into()));
        blocks.push(Block::List(inputs.notes.to_vec()));
    }
    Document { title, blocks }
}

/// Forward-slash relative path.
fn path_text(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

/// The opening paragraph: what was run.
fn overview(inputs: &Inputs<'_>) -> String {
    let t = inputs.table;
    let cells = t.ok_cells().len() + t.failed_cells().len();
    let replicates = t.replicates().len();
    let axes: Vec<String> = t
        .varying_axes()
        .into_iter()
        .map(|i| format!("`{}`", t.axes[i]))
        .collect();
    let varying = if axes.is_empty() {
        "no varying axis".to_string()
    } else {
        format!("varying {}", axes.join(", "))
    };
    format!(
        "{cells} cell{}: {} configuration{} ({varying}) × {replicates} seed/fold replicate{}; {} failed. \
         Everything below is computed by `ablate report` from the CSV files of this folder \
         (`summary.csv`, `comparisons.csv`, `cell_tests.csv` hold the full tables).",
        plural(cells),
        t.configurations.len(),
        plural(t.configurations.len()),
        plural(replicates),
        t.failed_cells().len()
    )
}

/// "s" unless there is exactly one.
fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// The columns that name a configuration in a table: the varying axes, and
/// the strategy unless it is one of them.
pub struct ConfigColumns {
    axes: Vec<usize>,
    show_strategy: bool,
}

impl ConfigColumns {
    /// The naming columns of `table`'s configurations.
    pub fn of(table: &ResultsTable) -> Self {
        let axes = table.varying_axes();
        let show_strategy = table
            .axis_index(STRATEGY_AXIS)
            .is_none_or(|i| !axes.contains(&i));
        Self {
            axes,
            show_strategy,
        }
    }

    /// Their header texts.
    pub fn header(&self, table: &ResultsTable) -> Vec<String> {
        let mut header: Vec<String> = self.axes.iter().map(|&i| table.axes[i].clone()).collect();
        if self.show_strategy {
            header.push("strategy".into());
        }
        header
    }

    /// Their cells for configuration `config`.
    pub fn cells(&self, table: &ResultsTable, config: usize) -> Vec<Cell> {
        let config = &table.configurations[config];
        let mut row: Vec<Cell> = self
            .axes
            .iter()
            .map(|&i| Cell::plain(display_value(&config.values[i])))
            .collect();
        if self.show_strategy {
            row.push(Cell::plain(config.strategy.clone()));
        }
        row
    }
}

/// "mean ± SD" with three decimals, or the mean alone when the SD is not
/// finite (a single replicate).
pub fn mean_sd(stat: &Summary) -> String {
    if stat.sd.is_finite() {
        format!("{} ± {}", fmt3(stat.mean), fmt3(stat.sd))
    } else {
        fmt3(stat.mean)
    }
}

/// The mean ± SD table with best values in bold and significance marks.
fn results_table(inputs: &Inputs<'_>) -> Table {
    let t = inputs.table;
    let metrics = &inputs.options.metrics;
    let columns = ConfigColumns::of(t);
    let mut header = columns.header(t);
    header.extend(["model".to_string(), "n".to_string()]);
    header.extend(metrics.iter().map(|m| metric_label(m)));
    let shown: Vec<&SummaryRow> = inputs
        .summaries
        .iter()
        .filter(|s| s.model == Model::Weak || (s.trained && s.n > 0))
        .collect();
    let best: Vec<f64> = metrics
        .iter()
        .map(|m| {
            let means = shown
                .iter()
                .filter_map(|s| s.stat(m))
                .map(|s| s.mean)
                .filter(|v| v.is_finite());
            if higher_is_better(m) {
                means.fold(f64::NEG_INFINITY, f64::max)
            } else {
                means.fold(f64::INFINITY, f64::min)
            }
        })
        .collect();
    let mut rows = Vec::new();
    for s in shown {
        let mut row = columns.cells(t, s.config);
        row.push(Cell::plain(s.model.name()));
        row.push(Cell::plain(s.n.to_string()));
        for (m, &best) in metrics.iter().zip(&best) {
            let Some(stat) = s.stat(m) else {
                row.push(Cell::plain("–"));
                continue;
            };
            let text = mean_sd(stat);
            let mut marks = String::new();
            if s.model == Model::Strong {
                marks += comparison_marks(inputs.comparisons, ComparisonKind::VsNone, s.config, m);
                marks += &stars(holm_p(
                    inputs.comparisons,
                    ComparisonKind::StrongVsWeak,
                    s.config,
                    m,
                ))
                .replace('*', "†");
            }
            row.push(Cell {
                text,
                bold: stat.mean.is_finite() && stat.mean == best,
                marks,
            });
        }
        rows.push(row);
    }
    let mut numeric = vec![false; header.len()];
    for n in numeric.iter_mut().skip(header.len() - metrics.len() - 1) {
        *n = true;
    }
    Table {
        header,
        rows,
        numeric,
    }
}

/// The Holm-adjusted t-test p of a comparison (NaN when absent).
fn holm_p(comparisons: &[Comparison], kind: ComparisonKind, config: usize, metric: &str) -> f64 {
    comparisons
        .iter()
        .find(|c| c.kind == kind && c.config == config && c.metric == metric)
        .map(|c| c.t_p_holm)
        .unwrap_or(f64::NAN)
}

fn comparison_marks(
    comparisons: &[Comparison],
    kind: ComparisonKind,
    config: usize,
    metric: &str,
) -> &'static str {
    stars(holm_p(comparisons, kind, config, metric))
}

/// The axis values where `baseline` differs from `config` (its short name).
fn baseline_label(table: &ResultsTable, config: usize, baseline: usize) -> String {
    let (a, b) = (
        &table.configurations[config].values,
        &table.configurations[baseline].values,
    );
    let parts: Vec<String> = (0..table.axes.len())
        .filter(|&i| a[i] != b[i])
        .map(|i| format!("{}={}", table.axes[i], display_value(&b[i])))
        .collect();
    if parts.is_empty() {
        format!("strategy {}", table.configurations[baseline].strategy)
    } else {
        parts.join(", ")
    }
}

/// The exact two-sided Wilcoxon signed-rank test cannot go below
/// `2 / 2^n` with `n` pairs: up to 5 pairs it can never reach 0.05.
fn wilcoxon_floor(fewest_pairs: Option<usize>) -> String {
    match fewest_pairs {
        Some(n @ 1..=5) => format!(
            " (with {n} pairs it cannot go below p = {})",
            2.0 / f64::from(1u32 << n)
        ),
        _ => String::new(),
    }
}

/// One table per comparison kind: a row per compared pair of
/// configurations, per shown metric the mean difference and its
/// Holm-adjusted paired t-test p.
fn comparison_blocks(inputs: &Inputs<'_>) -> Vec<Block> {
    let t = inputs.table;
    let metrics = &inputs.options.metrics;
    let mut blocks = vec![
        Block::Heading(2, "Paired comparisons".into()),
        Block::Paragraph(format!(
            "Mean differences over seeds/folds matched on both sides (Δ = compared − baseline) and the p-value of the \
             two-sided paired t-test, Holm-corrected within each metric and kind of comparison (bold: < 0.05). \
             `comparisons.csv` adds the uncorrected p-values, the Wilcoxon signed-rank test{} and every compared metric.",
            wilcoxon_floor(
                inputs
                    .comparisons
                    .iter()
                    .map(|c| c.n_pairs)
                    .filter(|&n| n > 0)
                    .min()
            )
        )),
    ];
    for kind in ComparisonKind::ALL {
        let mut pairs: Vec<(usize, usize)> = Vec::new();
        for c in inputs.comparisons.iter().filter(|c| c.kind == kind) {
            if !pairs.contains(&(c.config, c.baseline_config)) {
                pairs.push((c.config, c.baseline_config));
            }
        }
        if pairs.is_empty() {
            continue;
        }
        blocks.push(Block::Heading(3, capitalise(kind.description())));
        let mut header = vec!["configuration".to_string()];
        if kind != ComparisonKind::StrongVsWeak {
            header.push("baseline".into());
        }
        header.push("n".into());
        for m in metrics {
            header.push(format!("Δ {}", metric_label(m)));
            header.push("Holm p".into());
        }
        let mut numeric = vec![false; header.len() - 1 - 2 * metrics.len()];
        numeric.resize(header.len(), true);
        let mut table = Table {
            header,
            rows: Vec::new(),
            numeric,
        };
        for (config, baseline) in pairs {
            let mut row = vec![Cell::plain(t.short_label(config))];
            if kind != ComparisonKind::StrongVsWeak {
                row.push(Cell::plain(baseline_label(t, config, baseline)));
            }
            let found = |m: &String| {
                inputs.comparisons.iter().find(|c| {
                    c.kind == kind
                        && c.config == config
                        && c.baseline_config == baseline
                        && &c.metric == m
                })
            };
            let n = metrics
                .iter()
                .filter_map(found)
                .map(|c| c.n_pairs)
                .max()
                .unwrap_or(0);
            row.push(Cell::plain(n.to_string()));
            for m in metrics {
                match found(m) {
                    Some(c) => {
                        let delta = if c.mean_difference.is_finite() {
                            format!("{:+.3}", c.mean_difference)
                        } else {
                            "–".into()
                        };
                        row.push(Cell::plain(delta));
                        row.push(Cell {
                            text: fmt_p(c.t_p_holm),
                            bold: c.t_p_holm < 0.05,
                            marks: String::new(),
                        });
                    }
                    None => row.extend([Cell::plain("–"), Cell::plain("–")]),
                }
            }
            table.rows.push(row);
        }
        blocks.push(Block::Table(table));
    }
    blocks
}

fn capitalise(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().collect::<String>() + chars.as_str())
        .unwrap_or_default()
}

/// The DeLong table.
fn cell_test_blocks(inputs: &Inputs<'_>) -> Vec<Block> {
    if inputs.cell_tests.is_empty() {
        return Vec::new();
    }
    let t = inputs.table;
    let mut table = Table {
        header: [
            "cell",
            "configuration",
            "replicate",
            "test (pos)",
            "weak AUROC [95% CI]",
            "strong AUROC [95% CI]",
            "Δ",
            "z",
            "p",
            "Holm",
        ]
        .map(String::from)
        .to_vec(),
        rows: Vec::new(),
        numeric: vec![true, false, false, true, true, true, true, true, true, true],
    };
    for c in inputs.cell_tests {
        let ci = |a: &super::cell_tests::AurocInterval| {
            format!("{} [{}, {}]", fmt3(a.auroc), fmt3(a.low), fmt3(a.high))
        };
        table.rows.push(vec![
            Cell::plain(c.cell.to_string()),
            Cell::plain(t.short_label(c.config)),
            Cell::plain(c.replicate.label()),
            Cell::plain(format!("{} ({})", c.n_test, c.positives)),
            Cell::plain(ci(&c.weak)),
            Cell::plain(ci(&c.strong)),
            Cell::plain(format!("{:+.3}", c.delong.difference)),
            Cell::plain(format!("{:.2}", c.delong.z)),
            Cell::plain(fmt_p(c.delong.p_value)),
            Cell {
                text: fmt_p(c.p_holm),
                bold: c.p_holm < 0.05,
                marks: String::new(),
            },
        ]);
    }
    vec![
        Block::Heading(2, "Per-cell tests: strong vs weak AUROC".into()),
        Block::Paragraph(format!(
            "For each cell with a trained strong model: DeLong's test of the two AUROCs on the shared test set \
             (Δ = strong − weak), and stratified bootstrap 95% intervals ({} resamples, seeded by the cell index). \
             Holm: corrected over all cells.",
            super::cell_tests::BOOTSTRAP_RESAMPLES
        )),
        Block::Table(table),
    ]
}

/// Versions, hashes, times, the experiment file and how to rerun.
fn provenance_blocks(inputs: &Inputs<'_>) -> Vec<Block> {
    let t = inputs.table;
    let mut facts = Vec::new();
    let mut seeds: Vec<String> = t.replicates().into_iter().map(|r| r.seed).collect();
    seeds.dedup();
    seeds.sort_by_key(|s| s.parse::<u64>().unwrap_or(u64::MAX));
    seeds.dedup();
    let mut folds: Vec<String> = t
        .replicates()
        .into_iter()
        .map(|r| r.fold)
        .filter(|f| !f.is_empty())
        .collect();
    folds.sort();
    folds.dedup();
    let mut experiment_file = "experiment.toml".to_string();
    let mut rerun_flags = String::new();
    if let Some(m) = &inputs.provenance.manifest {
        let candle = m
            .candle_version
            .as_ref()
            .map(|version| match &m.candle_patch {
                Some(patch) => format!("{version} (patched: {patch}, see vendor/README.md)"),
                None => version.clone(),
            });
        let commit = m.git_commit.as_ref().map(|commit| match &m.uncommitted {
            Some(diff) => format!("{commit} with uncommitted changes (diff hash {diff})"),
            None => commit.clone(),
        });
        let fields = [
            ("ablate version", &m.ablate_version),
            ("candle version", &candle),
            ("git commit", &commit),
            ("build fingerprint", &m.build_fingerprint),
            ("device", &m.device),
            ("experiment file", &m.experiment_file),
            ("config hash", &m.config_hash),
            ("started", &m.started),
            ("finished", &m.finished),
        ];
        for (name, value) in fields {
            facts.push(format!(
                "{name}: `{}`",
                value.as_deref().unwrap_or("unknown")
            ));
        }
        if !m.overrides.is_empty() {
            let sets: Vec<String> = m.overrides.iter().map(|o| format!("`--set {o}`")).collect();
            facts.push(format!("overrides: {}", sets.join(", ")));
        }
        if m.reused_stages > 0 {
            facts.push(format!(
                "stages reused from other builds (`--reuse-stale-stages`): {}, listed in manifest.json",
                m.reused_stages
            ));
        }
        if let Some(file) = &m.experiment_file {
            experiment_file = file.clone();
        }
        for o in &m.overrides {
            rerun_flags.push_str(&format!(" --set {}", crate::slurm::script::shell_quote(o)));
        }
        if m.reuse_stale_stages {
            rerun_flags.push_str(" --reuse-stale-stages");
        }
    } else {
        facts.push("manifest.json: not found in this folder".into());
    }
    facts.push(format!("seeds: {}", seeds.join(", ")));
    if !folds.is_empty() {
        facts.push(format!("folds: {}", folds.join(", ")));
    }
    let mut blocks = vec![Block::Heading(2, "Provenance".into()), Block::List(facts)];
    if let Some(text) = &inputs.provenance.experiment_text {
        blocks.push(Block::Heading(3, "Experiment file".into()));
        blocks.push(Block::Code {
            language: "toml".into(),
            text: text.trim_end().to_string(),
        });
    }
    blocks.push(Block::Heading(3, "Rerun".into()));
    blocks.push(Block::Paragraph(
        "Run the experiment (finished cells are reused from the cache), then rebuild this report from its CSV files:".into(),
    ));
    blocks.push(Block::Code {
        language: "sh".into(),
        text: format!(
            "ablate run {experiment_file}{rerun_flags}\nablate report {}",
            inputs.dir.display()
        ),
    });
    blocks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn number_formats() {
        assert_eq!(fmt3(0.91234), "0.912");
        assert_eq!(fmt3(f64::NAN), "–");
        assert_eq!(fmt_p(0.0004), "< 0.001");
        assert_eq!(fmt_p(0.0123), "0.012");
        assert_eq!(fmt_p(f64::NAN), "–");
        assert_eq!(capitalise("each strategy"), "Each strategy");
    }

    #[test]
    fn the_wilcoxon_floor_is_stated_while_it_blocks_significance() {
        assert_eq!(
            wilcoxon_floor(Some(3)),
            " (with 3 pairs it cannot go below p = 0.25)"
        );
        assert_eq!(
            wilcoxon_floor(Some(5)),
            " (with 5 pairs it cannot go below p = 0.0625)"
        );
        assert_eq!(wilcoxon_floor(Some(6)), "");
        assert_eq!(wilcoxon_floor(None), "");
    }
}
