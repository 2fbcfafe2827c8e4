//! `ablate train`: train one model on a dataset and evaluate it on the test split.

use super::common::TrainingArgs;
use super::progress::EpochBars;
use super::GlobalArgs;
use crate::io::{write_atomic, write_csv_atomic};
use crate::metrics::binary::BinaryMetrics;
use crate::outputs::{Evaluated, Loss, MetricsRow, PredictionRow};
use crate::train::checkpoint::save_checkpoint;
use crate::train::evaluate::evaluate;
use crate::train::{train_model, TrainData, TrainedModel};
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};

/// Arguments of `ablate train`.
#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    #[command(flatten)]
    training: TrainingArgs,
    /// Output folder for metrics, predictions and the best checkpoint.
    #[arg(long, default_value = "reports/train")]
    out: PathBuf,
}

/// Trains, evaluates and writes the outputs.
pub fn run(args: &TrainArgs, global: &GlobalArgs) -> Result<()> {
    let model_config = args.training.model_config()?;
    let config = args.training.train_config();
    let data = args.training.prepare(global.quiet)?;
    let device = args.training.device()?;
    let mut bars = EpochBars::new("model", global.quiet);
    let trained = train_model(
        &model_config,
        args.training.pretrained.as_deref(),
        &config,
        TrainData {
            store: &data.store,
            positive: &data.positive,
            train: &data.split.train,
            valid: &data.split.valid,
        },
        args.training.seed,
        &device,
        &mut |event| bars.on_event(event),
    )
    .context("training failed")?;

    let mut metrics_rows = Vec::new();
    let mut prediction_rows = Vec::new();
    for (name, indices) in [("valid", &data.split.valid), ("test", &data.split.test)] {
        let eval = evaluate(
            &trained.model,
            &data.store,
            &data.positive,
            indices,
            config.eval_batch_size,
            &device,
        )?;
        let labels: Vec<bool> = indices.iter().map(|&i| data.positive[i]).collect();
        let metrics = BinaryMetrics::compute(&labels, &eval.scores, config.threshold)
            .with_context(|| format!("could not compute metrics on the {name} split"))?;
        let evaluated = Evaluated {
            model: "model".into(),
            split: name.into(),
            n: indices.len(),
        };
        metrics_rows.push((evaluated, Loss { loss: eval.loss }, metrics));
        for (&index, &score) in indices.iter().zip(&eval.scores) {
            prediction_rows.push(PredictionRow::new("model", name, data.patch(index), score));
        }
    }
    write_outputs(&args.out, &metrics_rows, &prediction_rows, &trained)?;
    let (test, _, metrics) = &metrics_rows[1];
    println!(
        "test: AUROC {:.4}  AUPRC {:.4}  sensitivity {:.4}  specificity {:.4}  (n = {}, best epoch {}); outputs in '{}'",
        metrics.auroc,
        metrics.auprc,
        metrics.sensitivity,
        metrics.specificity,
        test.n,
        trained.best_epoch,
        args.out.display()
    );
    Ok(())
}

/// Writes metrics, predictions, training history and the best checkpoint.
fn write_outputs(
    out: &Path,
    metrics: &[MetricsRow],
    predictions: &[PredictionRow],
    trained: &TrainedModel,
) -> Result<()> {
    let context = |file: &str| format!("could not write '{}'", out.join(file).display());
    write_csv_atomic(&out.join("metrics.csv"), metrics).with_context(|| context("metrics.csv"))?;
    write_csv_atomic(&out.join("predictions.csv"), predictions)
        .with_context(|| context("predictions.csv"))?;
    write_csv_atomic(&out.join("history.csv"), &trained.history)
        .with_context(|| context("history.csv"))?;
    let timings: Vec<f64> = trained.history.iter().map(|r| r.seconds).collect();
    let timings = serde_json::json!({ "epoch_seconds": timings, "best_epoch": trained.best_epoch });
    write_atomic(
        &out.join("timings.json"),
        serde_json::to_string_pretty(&timings)?.as_bytes(),
    )
    .with_context(|| context("timings.json"))?;
    save_checkpoint(&trained.varmap, &out.join("best.safetensors"))
        .with_context(|| context("best.safetensors"))?;
    Ok(())
}
