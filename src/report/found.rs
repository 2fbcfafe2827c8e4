//! The report's "What mining found" table: per mining configuration, the
//! weak model's false positives by true kind, the mined set's mimic share and
//! the pool's base rate it is compared with (synthetic data, whose results
//! carry the kinds).

use super::document::{fmt3, mean_sd, Block, Cell, ConfigColumns, Table};
use super::load::ResultsTable;
use super::summary::SummaryRow;
use crate::data::PatchKind;
use crate::runner::found::{fp_column, NEGATIVE_KINDS};

/// Mean of a summarised column, or NaN.
fn mean(row: &SummaryRow, column: &str) -> f64 {
    row.stat(column).map_or(f64::NAN, |s| s.mean)
}

/// A mean with one decimal (counts averaged over replicates), or a dash.
fn fmt1(value: f64) -> String {
    if value.is_finite() {
        format!("{value:.1}")
    } else {
        "–".into()
    }
}

/// The section, or nothing when the results carry no kinds (real data) or
/// no configuration mined.
pub fn blocks(table: &ResultsTable, summaries: &[SummaryRow]) -> Vec<Block> {
    let mimic_fp = fp_column(PatchKind::Mimic);
    if !table.has_column(&mimic_fp) || !table.has_column("pool_mimic_fraction") {
        return Vec::new();
    }
    let mining: Vec<&SummaryRow> = summaries
        .iter()
        .filter(|s| s.model == super::load::Model::Strong && s.trained && s.n > 0)
        .collect();
    // Real data: the kind columns exist but hold no value.
    if !mining
        .iter()
        .any(|s| mean(s, "pool_mimic_fraction").is_finite())
    {
        return Vec::new();
    }
    let columns = ConfigColumns::of(table);
    let mut header = columns.header(table);
    let labelled = header.len();
    header.push("n".into());
    header.push("false positives".into());
    header.extend(
        NEGATIVE_KINDS
            .iter()
            .map(|k| format!("of which {}", k.name())),
    );
    header.extend([
        "mined".to_string(),
        "mimic share of mined".to_string(),
        "pool base rate".to_string(),
        "enrichment".to_string(),
    ]);
    let mut rows = Vec::new();
    for s in mining {
        let mut row = columns.cells(table, s.config);
        row.push(Cell::plain(s.n.to_string()));
        row.push(Cell::plain(fmt1(mean(s, "false_positives"))));
        for kind in NEGATIVE_KINDS {
            row.push(Cell::plain(fmt1(mean(s, &fp_column(kind)))));
        }
        row.push(Cell::plain(fmt1(mean(s, "mined"))));
        let share = s.stat("mimic_fraction");
        row.push(Cell::plain(share.map_or_else(|| "–".into(), mean_sd)));
        let base = mean(s, "pool_mimic_fraction");
        row.push(Cell::plain(fmt3(base)));
        let enrichment = share.map_or(f64::NAN, |st| st.mean) / base;
        row.push(Cell::plain(if enrichment.is_finite() {
            format!("{enrichment:.2}×")
        } else {
            "–".into()
        }));
        rows.push(row);
    }
    let mut numeric = vec![false; header.len()];
    for n in numeric.iter_mut().skip(labelled) {
        *n = true;
    }
    vec![
        Block::Heading(2, "What mining found".into()),
        Block::Paragraph(
            "Per mining configuration, means over seeds/folds: the weak model's false positives on the validation \
             split (score ≥ the mining threshold) by true kind, the size of the mined set, the share of mimics \
             (tumour nests in retraction clefts) in it (mean ± SD), the share of mimics in the whole weakly labeled \
             pool, and their ratio. A strategy that finds look-alikes has an enrichment well above 1; the random \
             control sits near 1."
                .into(),
        ),
        Block::Table(Table {
            header,
            rows,
            numeric,
        }),
    ]
}
