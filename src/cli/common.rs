//! Flags of the commands that train without an experiment file (`ablate
//! train`, `ablate pipeline`): data, split, subsampling, model and training
//! settings. They describe a small experiment, written as an experiment
//! file's table and run by the runner like any other: the same defaults
//! (`ablate config --defaults`), seeds, cache and output files as `ablate
//! run`.

use super::run::SettingsArgs;
use crate::data::split::SplitKind;
use crate::experiment::load::{parse_experiment_with, plain};
use crate::experiment::ExperimentConfig;
use crate::runner::{Plan, RunOptions, Stages};
use crate::train::sampler::Sampling;
use anyhow::{Context, Result};
use std::path::{Path, PathBuf};
use toml::Value;

/// `text` with the experiment-file default of `key`, so that help shows the
/// defaults of the one place they are defined.
fn with_default(text: &str, key: &str) -> String {
    let defaults = Value::try_from(ExperimentConfig::defaults()).expect("defaults serialise");
    match key
        .split('.')
        .try_fold(&defaults, |value, part| value.get(part))
    {
        Some(value) => format!("{text} (`{key}`) [default: {}]", plain(value)),
        None => format!("{text} (`{key}`)"),
    }
}

/// Data, split, model and training flags; each sets one experiment-file key.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["data", "synthetic"])))]
pub struct TrainingArgs {
    /// Dataset folder in the public layout (hard_labeled_dataset/,
    /// weakly_labeled_dataset/): `data.path`.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Use the built-in synthetic dataset (generated into the output
    /// folder's cache, `[data.synthetic]`).
    #[arg(long)]
    pub synthetic: bool,
    // `data.synthetic.seed`.
    #[arg(long, help = with_default("Seed of the synthetic dataset", "data.synthetic.seed"))]
    pub synthetic_seed: Option<u64>,
    // `seed`.
    #[arg(long, help = with_default(
        "Root seed: the training seed (initial weights, sample order, augmentation) derives from it as in an experiment file",
        "seed"
    ))]
    pub seed: Option<u64>,
    // `data.split.seed`.
    #[arg(long, help = with_default("Seed of the train/valid/test split", "data.split.seed"))]
    pub split_seed: Option<u64>,
    // `data.split.kind`.
    #[arg(long, value_enum, help = with_default(
        "Split grouped by slide, or the reference's leaky patch-level split",
        "data.split.kind"
    ))]
    pub split: Option<SplitKind>,
    /// Grouped k-fold instead of a single hold-out split, with --fold (`data.split.folds`).
    #[arg(long)]
    pub folds: Option<usize>,
    /// Which fold is the test part, 0-based (`replicate.fold`) [default: 0].
    #[arg(long, requires = "folds")]
    pub fold: Option<usize>,
    /// Keep this fraction of the training positives, the "pos-only"
    /// ablation (`data.pos_fraction`).
    #[arg(long, conflicts_with = "train_fraction")]
    pub pos_fraction: Option<f64>,
    /// Keep this fraction of all training patches, the "entire subset"
    /// ablation (`data.train_fraction`).
    #[arg(long)]
    pub train_fraction: Option<f64>,
    // `model.name`.
    #[arg(long, help = with_default(
        "Model architecture: resnet18, resnet34, or a CPU variant such as resnet10-w16",
        "model.name"
    ))]
    pub model: Option<String>,
    /// Pretrained weights: a name fetched by `ablate fetch weights`
    /// (resnet18.a1_in1k, ...), or a safetensors or PyTorch .pth file with
    /// torchvision parameter names (`model.pretrained`).
    #[arg(long)]
    pub pretrained: Option<PathBuf>,
    // `data.image_size`.
    #[arg(long, help = with_default("Side of the square model input in pixels", "data.image_size"))]
    pub image_size: Option<u32>,
    // `training.epochs`.
    #[arg(long, help = with_default("Training epochs", "training.epochs"))]
    pub epochs: Option<usize>,
    // `training.batch_size`.
    #[arg(long, help = with_default("Training batch size", "training.batch_size"))]
    pub batch_size: Option<usize>,
    // `training.lr`.
    #[arg(long, help = with_default("Initial Adam learning rate", "training.lr"))]
    pub lr: Option<f64>,
    // `training.sampling`.
    #[arg(long, value_enum, help = with_default(
        "How each epoch's samples are drawn",
        "training.sampling"
    ))]
    pub sampling: Option<Sampling>,
    /// Train without augmentation (`training.augment = false`).
    #[arg(long)]
    pub no_augment: bool,
    // `device`.
    #[arg(long, help = with_default(
        "Where tensors live: cpu, cuda or cuda:N (CUDA needs a `--features cuda` build)",
        "device"
    ))]
    pub device: Option<String>,
    /// `--set` (applied after the flags, and written into the output
    /// folder's experiment.toml) and `--reuse-stale-stages`, as for `ablate run`.
    #[command(flatten)]
    pub settings: SettingsArgs,
}

/// Sets a dotted key in `table`, creating tables on the way.
pub(super) fn insert(table: &mut toml::Table, key: &str, value: impl Into<Value>) {
    let mut parts: Vec<&str> = key.split('.').collect();
    let last = parts.pop().expect("a key has a part");
    let mut current = table;
    for part in parts {
        current = current
            .entry(part)
            .or_insert_with(|| Value::Table(toml::Table::new()))
            .as_table_mut()
            .expect("flag keys name tables");
    }
    current.insert(last.to_string(), value.into());
}

/// A setting as the experiment file spells it.
pub(super) fn file_value(value: &impl serde::Serialize) -> Value {
    Value::try_from(value).expect("settings serialise")
}

fn path_value(path: &Path) -> Value {
    Value::String(path.to_string_lossy().into_owned())
}

impl TrainingArgs {
    /// The experiment file these flags describe: name, output folder and
    /// every key a flag sets (the rest keep their defaults).
    pub fn experiment_table(&self, name: &str, output: &Path) -> toml::Table {
        let mut table = toml::Table::new();
        let t = &mut table;
        insert(t, "name", name);
        insert(t, "output", path_value(output));
        if let Some(seed) = self.seed {
            insert(t, "seed", seed as i64);
        }
        if let Some(device) = &self.device {
            insert(t, "device", device.as_str());
        }
        if let Some(dir) = &self.data {
            insert(t, "data.path", path_value(dir));
        }
        if let Some(size) = self.image_size {
            insert(t, "data.image_size", i64::from(size));
        }
        if let Some(f) = self.pos_fraction {
            insert(t, "data.pos_fraction", f);
        }
        if let Some(f) = self.train_fraction {
            insert(t, "data.train_fraction", f);
        }
        if let Some(seed) = self.synthetic_seed {
            insert(t, "data.synthetic.seed", seed as i64);
        }
        if let Some(kind) = &self.split {
            insert(t, "data.split.kind", file_value(kind));
        }
        if let Some(folds) = self.folds {
            insert(t, "data.split.folds", folds as i64);
        }
        if let Some(seed) = self.split_seed {
            insert(t, "data.split.seed", seed as i64);
        }
        if let Some(model) = &self.model {
            insert(t, "model.name", model.as_str());
        }
        if let Some(path) = &self.pretrained {
            insert(t, "model.pretrained", path_value(path));
        }
        if let Some(epochs) = self.epochs {
            insert(t, "training.epochs", epochs as i64);
        }
        if let Some(batch) = self.batch_size {
            insert(t, "training.batch_size", batch as i64);
        }
        if let Some(lr) = self.lr {
            insert(t, "training.lr", lr);
        }
        if let Some(sampling) = &self.sampling {
            insert(t, "training.sampling", file_value(sampling));
        }
        if self.no_augment {
            insert(t, "training.augment", false);
        }
        if let Some(fold) = self.fold {
            insert(t, "replicate.fold", fold as i64);
        }
        table
    }

    /// Plans the experiment of `table` (from [`Self::experiment_table`]
    /// with the command's own keys added) with the `--set` overrides
    /// applied, as one experiment file: the run writes it to
    /// `<output>/experiment.toml`, and `ablate run` on it reruns the same.
    pub fn plan(&self, table: &toml::Table, output: &Path) -> Result<Plan> {
        let path = output.join("experiment.toml");
        let text = |table: &toml::Table| -> Result<String> {
            let body =
                toml::to_string(table).context("the settings could not be written as TOML")?;
            Ok(format!(
                "# Written by the ablate command line; `ablate run` on this file reruns it.\n{body}"
            ))
        };
        // Checked with the overrides apart first, so that errors name them.
        parse_experiment_with(&path, &text(table)?, &self.settings.set)
            .context("invalid settings on the command line")?;
        let mut table = table.clone();
        for o in &self.settings.set {
            o.apply(&mut table)?;
        }
        let experiment = parse_experiment_with(&path, &text(&table)?, &[])
            .context("invalid settings on the command line")?;
        Ok(Plan::new(experiment, None))
    }

    /// How to run it: all stages, one job.
    pub fn run_options(&self, threads: usize) -> RunOptions {
        RunOptions {
            jobs: 1,
            threads,
            fail_fast: false,
            cells: None,
            stages: Stages::All,
            reuse_stale: self.settings.reuse_stale_stages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        training: TrainingArgs,
    }

    #[test]
    fn flags_set_only_their_keys_and_help_shows_the_file_defaults() {
        let cli = Cli::parse_from([
            "x",
            "--synthetic",
            "--seed",
            "3",
            "--epochs",
            "2",
            "--split",
            "patch",
            "--no-augment",
            "--folds",
            "3",
            "--fold",
            "1",
        ]);
        let table = cli.training.experiment_table("train", Path::new("out"));
        let expected: toml::Table = r#"
            name = "train"
            output = "out"
            seed = 3
            [data.split]
            kind = "patch"
            folds = 3
            [training]
            epochs = 2
            augment = false
            [replicate]
            fold = 1
        "#
        .parse()
        .unwrap();
        assert_eq!(table, expected);
        let defaults = ExperimentConfig::defaults();
        let help = with_default("Training epochs", "training.epochs");
        assert_eq!(
            help,
            format!(
                "Training epochs (`training.epochs`) [default: {}]",
                defaults.training.epochs
            )
        );
        assert_eq!(
            with_default("Model", "model.name"),
            format!("Model (`model.name`) [default: {}]", defaults.model.name)
        );
        // Keys the defaults leave unset show no default.
        assert_eq!(with_default("Path", "data.path"), "Path (`data.path`)");
    }
}
