//! `ablate pipeline`: the four-step method for one configuration, with one
//! or more mining strategies sharing the weak model.

use super::common::TrainingArgs;
use super::progress::EpochBars;
use super::GlobalArgs;
use crate::data::prepare::PreparedData;
use crate::io::write_csv_atomic;
use crate::mining::{MiningConfig, Strategy};
use crate::outputs::{Loss, PredictionRow};
use crate::pipeline::{run_pipeline, ModelOutcome, PipelineOutcome, TrainSpec};
use anyhow::{Context, Result};
use serde::Serialize;
use std::path::PathBuf;

/// Arguments of `ablate pipeline`.
#[derive(Debug, clap::Args)]
pub struct PipelineArgs {
    #[command(flatten)]
    training: TrainingArgs,
    /// Mining strategies to compare (comma-separated); all share one weak model.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "knn-l2")]
    strategy: Vec<Strategy>,
    /// Pool patches taken per false positive.
    #[arg(long, default_value_t = MiningConfig::default().num_query)]
    num_query: usize,
    /// Validation negatives scored at or above this are false positives.
    #[arg(long, default_value_t = MiningConfig::default().fp_threshold)]
    fp_threshold: f64,
    /// Cap on the number of mined patches.
    #[arg(long)]
    max_mined: Option<usize>,
    /// Output folder.
    #[arg(long, default_value = "reports/pipeline")]
    out: PathBuf,
}

/// One row of the pipeline's `metrics.csv`.
#[derive(Debug, Serialize)]
struct PipelineMetricsRow<'a> {
    strategy: &'a str,
    model: &'a str,
    num_query: usize,
    false_positives: usize,
    mined: usize,
    mimic_fraction: Option<f64>,
    train_size: usize,
    best_epoch: usize,
    n: usize,
}

/// One row of `mined.csv`.
#[derive(Debug, Serialize)]
struct MinedRow<'a> {
    strategy: &'a str,
    path: String,
    slide: &'a str,
    kind: Option<&'static str>,
    value: Option<f32>,
    found_by: String,
}

/// One row of `false_positives.csv`.
#[derive(Debug, Serialize)]
struct FalsePositiveRow<'a> {
    path: String,
    slide: &'a str,
    kind: Option<&'static str>,
    score: f64,
}

/// Runs the pipeline and writes its outputs.
pub fn run(args: &PipelineArgs, global: &GlobalArgs) -> Result<()> {
    let model_config = args.training.model_config()?;
    let config = args.training.train_config();
    let device = args.training.device()?;
    let data = args.training.prepare(global.quiet)?;
    let minings: Vec<MiningConfig> = args
        .strategy
        .iter()
        .map(|&strategy| MiningConfig {
            strategy,
            num_query: args.num_query,
            fp_threshold: args.fp_threshold,
            max_mined: args.max_mined,
            ..MiningConfig::default()
        })
        .collect();
    let mut bars: Option<(String, EpochBars)> = None;
    let pretrained = args.training.pretrained.as_deref();
    let spec = TrainSpec {
        model: &model_config,
        pretrained,
        training: &config,
        seed: args.training.seed,
        device: &device,
    };
    let outcome = run_pipeline(spec, &minings, &data, &mut |stage, mining, event| {
        let label = match stage {
            crate::pipeline::Stage::Weak => "weak".to_string(),
            crate::pipeline::Stage::Strong => format!("strong/{}", mining.strategy),
        };
        if bars.as_ref().is_none_or(|(l, _)| *l != label) {
            bars = Some((label.clone(), EpochBars::new(label, global.quiet)));
        }
        bars.as_mut().expect("set above").1.on_event(event);
    })
    .context("pipeline failed")?;
    write_outputs(args, &data, &outcome)?;
    print_summary(args, &outcome);
    Ok(())
}

fn kind_name(data: &PreparedData, store_index: usize) -> Option<&'static str> {
    data.patch(store_index).kind.map(|k| k.name())
}

fn write_outputs(
    args: &PipelineArgs,
    data: &PreparedData,
    outcome: &PipelineOutcome,
) -> Result<()> {
    let out = &args.out;
    let context = |file: &str| format!("could not write '{}'", out.join(file).display());
    let fps = &outcome.false_positives;
    let mut rows = vec![(
        PipelineMetricsRow {
            strategy: "-",
            model: "weak",
            num_query: args.num_query,
            false_positives: fps.len(),
            mined: 0,
            mimic_fraction: None,
            train_size: outcome.weak.train_size,
            best_epoch: outcome.weak.best_epoch,
            n: outcome.weak.test.scores.len(),
        },
        Loss {
            loss: outcome.weak.test.loss,
        },
        outcome.weak.metrics,
    )];
    for s in &outcome.strategies {
        rows.push((
            PipelineMetricsRow {
                strategy: s.mining.strategy.name(),
                model: "strong",
                num_query: s.mining.num_query,
                false_positives: fps.len(),
                mined: s.mined.len(),
                mimic_fraction: s.precision,
                train_size: s.strong.train_size,
                best_epoch: s.strong.best_epoch,
                n: s.strong.test.scores.len(),
            },
            Loss {
                loss: s.strong.test.loss,
            },
            s.strong.metrics,
        ));
    }
    write_csv_atomic(&out.join("metrics.csv"), &rows).with_context(|| context("metrics.csv"))?;

    let mut mined_rows = Vec::new();
    for s in &outcome.strategies {
        for m in &s.mined {
            let store_index = data.pool_offset + m.pool_index;
            let found_by: Vec<String> = m
                .found_by
                .iter()
                .map(|&q| {
                    data.patch(fps[q].hard_index)
                        .path
                        .to_string_lossy()
                        .into_owned()
                })
                .collect();
            mined_rows.push(MinedRow {
                strategy: s.mining.strategy.name(),
                path: data.patch(store_index).path.to_string_lossy().into_owned(),
                slide: &data.patch(store_index).slide,
                kind: kind_name(data, store_index),
                value: m.value,
                found_by: found_by.join(";"),
            });
        }
    }
    write_csv_atomic(&out.join("mined.csv"), &mined_rows).with_context(|| context("mined.csv"))?;

    let fp_rows: Vec<FalsePositiveRow> = fps
        .iter()
        .map(|fp| FalsePositiveRow {
            path: data
                .patch(fp.hard_index)
                .path
                .to_string_lossy()
                .into_owned(),
            slide: &data.patch(fp.hard_index).slide,
            kind: kind_name(data, fp.hard_index),
            score: fp.score,
        })
        .collect();
    write_csv_atomic(&out.join("false_positives.csv"), &fp_rows)
        .with_context(|| context("false_positives.csv"))?;

    let mut predictions = Vec::new();
    let mut add = |model: &str, o: &ModelOutcome| {
        for (&index, &score) in data.split.test.iter().zip(&o.test.scores) {
            predictions.push(PredictionRow::new(model, "test", data.patch(index), score));
        }
    };
    add("weak", &outcome.weak);
    for s in outcome.strategies.iter().filter(|s| s.strong_trained) {
        add(&format!("strong/{}", s.mining.strategy), &s.strong);
    }
    write_csv_atomic(&out.join("predictions.csv"), &predictions)
        .with_context(|| context("predictions.csv"))?;
    Ok(())
}

fn print_summary(args: &PipelineArgs, outcome: &PipelineOutcome) {
    println!(
        "{} false positives on validation; outputs in '{}'",
        outcome.false_positives.len(),
        args.out.display()
    );
    println!(
        "{:<12}{:>7}{:>8}{:>8}{:>8}{:>8}{:>8}",
        "model", "mined", "mimic", "AUROC", "AUPRC", "sens", "spec"
    );
    let line = |name: &str, mined: usize, precision: Option<f64>, o: &ModelOutcome| {
        let precision = precision.map_or("-".to_string(), |p| format!("{p:.3}"));
        println!(
            "{:<12}{:>7}{:>8}{:>8.4}{:>8.4}{:>8.4}{:>8.4}",
            name,
            mined,
            precision,
            o.metrics.auroc,
            o.metrics.auprc,
            o.metrics.sensitivity,
            o.metrics.specificity
        );
    };
    line("weak", 0, None, &outcome.weak);
    for s in &outcome.strategies {
        line(
            s.mining.strategy.name(),
            s.mined.len(),
            s.precision,
            &s.strong,
        );
    }
}
