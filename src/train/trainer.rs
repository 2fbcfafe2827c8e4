//! The training loop: seeded init, balanced sampling, augmentation, Adam
//! with a cosine schedule, validation every epoch, and the best-loss (or
//! last) epoch's weights kept.
//!
//! The loop reports progress through [`TrainEvent`]s and knows nothing about
//! terminals or files.

use super::adam::Adam;
use super::checkpoint::Checkpoint;
use super::config::TrainConfig;
use super::evaluate::evaluate;
use super::sampler::epoch_order;
use super::schedule::Schedule;
use crate::data::batch::{labels_tensor, make_batch, AugmentSeed};
use crate::data::images::ImageStore;
use crate::fetch::weights::resolve_pretrained;
use crate::metrics::ranking::roc_auc;
use crate::model::init::build_seeded;
use crate::model::pretrained::load_pretrained;
use crate::model::resnet::{trainable_vars, ResNet, ResNetConfig};
use crate::seed;
use candle_core::{Device, Tensor};
use candle_nn::{Optimizer, ParamsAdamW, VarMap};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// Why a training run failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The loss became NaN or infinite.
    #[error("training loss is {value} at epoch {epoch}, step {step}: lower the learning rate (training.lr) or check the input images")]
    NonFiniteLoss {
        /// 1-based epoch.
        epoch: usize,
        /// 0-based step within the epoch.
        step: usize,
        /// The offending loss.
        value: f64,
    },
    /// A set needed for training is empty.
    #[error("the {0} set is empty: the split or subsampling left no patches")]
    EmptySet(&'static str),
    /// An invalid hyper-parameter.
    #[error("invalid training configuration: {0}")]
    Config(#[from] crate::setting::InvalidSetting),
    /// Pretrained weights could not be loaded.
    #[error("pretrained weights: {0}")]
    Pretrained(String),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// What happened in one epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub train_loss: f64,
    /// Mean validation loss.
    pub valid_loss: f64,
    /// Validation AUROC (NaN, written empty, when the validation set has one class).
    #[serde(with = "crate::io::nan_as_null")]
    pub valid_auroc: f64,
    /// Learning rate at the epoch's last step.
    pub lr: f64,
    /// Whether this epoch's weights are the best so far (lowest validation loss).
    pub best: bool,
    /// Wall time of the epoch in seconds (kept out of CSVs, which must be
    /// byte-identical across reruns).
    #[serde(skip_serializing, default)]
    pub seconds: f64,
}

/// Progress notifications from the loop.
#[derive(Debug, Clone)]
pub enum TrainEvent {
    /// An epoch starts with this many optimiser steps.
    EpochStart {
        /// 1-based epoch.
        epoch: usize,
        /// Total epochs.
        epochs: usize,
        /// Steps in this epoch.
        steps: usize,
    },
    /// One optimiser step finished.
    Step {
        /// Batch loss.
        loss: f64,
    },
    /// An epoch finished and was validated.
    EpochEnd(EpochRecord),
}

/// The patches a run trains and validates on.
#[derive(Debug, Clone, Copy)]
pub struct TrainData<'a> {
    /// Decoded patches.
    pub store: &'a ImageStore,
    /// Label of every store index (true = positive).
    pub positive: &'a [bool],
    /// Store indices of the training patches.
    pub train: &'a [usize],
    /// Store indices of the validation patches.
    pub valid: &'a [usize],
}

/// A trained model holding the weights of the epoch its configuration
/// keeps (`training.checkpoint`).
pub struct TrainedModel {
    /// The network, with the kept epoch's weights loaded.
    pub model: ResNet,
    /// Its variables (save with [`super::checkpoint::save_checkpoint`]).
    pub varmap: VarMap,
    /// One record per epoch.
    pub history: Vec<EpochRecord>,
    /// 1-based epoch whose weights were kept: the best one, or the last
    /// with `checkpoint = "last-epoch"`.
    pub best_epoch: usize,
}

/// Trains a freshly initialised model.
///
/// All randomness derives from `seed`: the initial weights from
/// `(seed, "model-init")`, sample order from `(seed, "sampler", epoch)` and
/// augmentation from `(seed, "augment", epoch, index)`. Two runs with the same
/// seed start from the same weights, whatever data they train on. With
/// `pretrained` (a weights file, or a name fetched by `ablate fetch weights`,
/// see [`resolve_pretrained`]), the file's weights replace the seeded ones
/// name by name (a head of another shape keeps its seeded values).
pub fn train_model(
    model_config: &ResNetConfig,
    pretrained: Option<&Path>,
    config: &TrainConfig,
    data: TrainData<'_>,
    seed: u64,
    device: &Device,
    on_event: &mut dyn FnMut(TrainEvent),
) -> Result<TrainedModel, TrainError> {
    config.validate()?;
    if data.train.is_empty() {
        return Err(TrainError::EmptySet("training"));
    }
    if data.valid.is_empty() {
        return Err(TrainError::EmptySet("validation"));
    }
    let init_seed = seed::derive_u64(seed, "model-init", &[]);
    let (model, varmap) = build_seeded(model_config, init_seed, device)?;
    if let Some(spec) = pretrained {
        let path = resolve_pretrained(spec, model_config)
            .map_err(|e| TrainError::Pretrained(e.to_string()))?;
        load_pretrained(&varmap, &path, true).map_err(|e| TrainError::Pretrained(e.to_string()))?;
    }
    let trainable = trainable_vars(&varmap);
    let mut optimizer = Adam::new(
        trainable,
        ParamsAdamW {
            lr: config.lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        },
    )?;
    let steps_per_epoch = batches(data.train.len(), config.batch_size);
    if steps_per_epoch == 0 {
        return Err(TrainError::EmptySet(
            "training (a single patch cannot form a batch)",
        ));
    }
    let schedule = Schedule::new(
        config.schedule,
        config.lr,
        config.min_lr,
        steps_per_epoch,
        config.epochs,
    );
    let keep_best = config.checkpoint == Checkpoint::BestValidLoss;
    let train_positive: Vec<bool> = data.train.iter().map(|&i| data.positive[i]).collect();
    let valid_labels: Vec<bool> = data.valid.iter().map(|&i| data.positive[i]).collect();

    let mut history = Vec::with_capacity(config.epochs);
    // The lowest validation loss so far and its epoch, and the weights of
    // that epoch when the best epoch is kept.
    let mut best: Option<(f64, usize)> = None;
    let mut best_weights: Option<BTreeMap<String, Tensor>> = None;
    let mut global_step = 0;
    for epoch in 1..=config.epochs {
        let started = Instant::now();
        on_event(TrainEvent::EpochStart {
            epoch,
            epochs: config.epochs,
            steps: steps_per_epoch,
        });
        let order = epoch_order(
            config.sampling,
            data.train,
            &train_positive,
            seed,
            epoch as u64,
        );
        let mut loss_sum = 0.0;
        for (step, batch) in order
            .chunks(config.batch_size)
            .take(steps_per_epoch)
            .enumerate()
        {
            let lr = schedule.rate(epoch - 1, global_step);
            optimizer.set_learning_rate(lr);
            let augment = config.augment.then_some((
                &config.augmentation,
                AugmentSeed {
                    seed,
                    epoch: epoch as u64,
                    first_draw: (step * config.batch_size) as u64,
                },
            ));
            let images = make_batch(data.store, batch, augment, device)?;
            let targets: Vec<usize> = batch
                .iter()
                .map(|&i| usize::from(data.positive[i]))
                .collect();
            let targets = labels_tensor(&targets, device)?;
            let logits = model.forward_t(&images, true)?;
            let loss = candle_nn::loss::cross_entropy(&logits, &targets)?;
            let value = loss.to_scalar::<f32>()? as f64;
            if !value.is_finite() {
                return Err(TrainError::NonFiniteLoss { epoch, step, value });
            }
            optimizer.backward_step(&loss)?;
            loss_sum += value;
            global_step += 1;
            on_event(TrainEvent::Step { loss: value });
        }
        let valid = evaluate(
            &model,
            data.store,
            data.positive,
            data.valid,
            config.eval_batch_size,
            device,
        )?;
        let valid_auroc = roc_auc(&valid_labels, &valid.scores).unwrap_or(f64::NAN);
        let improved = best.is_none_or(|(loss, _)| valid.loss < loss);
        if improved {
            best = Some((valid.loss, epoch));
            if keep_best {
                best_weights = Some(snapshot(&varmap)?);
            }
        }
        let record = EpochRecord {
            epoch,
            train_loss: loss_sum / steps_per_epoch as f64,
            valid_loss: valid.loss,
            valid_auroc,
            lr: schedule.rate(epoch - 1, global_step.saturating_sub(1)),
            best: improved,
            seconds: started.elapsed().as_secs_f64(),
        };
        on_event(TrainEvent::EpochEnd(record.clone()));
        history.push(record);
    }
    let (_, best_epoch) = best.expect("at least one epoch ran");
    let kept_epoch = match best_weights {
        Some(weights) => {
            restore(&varmap, &weights)?;
            best_epoch
        }
        None => config.epochs,
    };
    Ok(TrainedModel {
        model,
        varmap,
        history,
        best_epoch: kept_epoch,
    })
}

/// Optimiser steps per epoch: a final batch of a single sample is dropped,
/// since train-mode batch norm cannot normalise one sample whose last
/// feature map is 1x1 (PyTorch raises there).
fn batches(samples: usize, batch_size: usize) -> usize {
    samples / batch_size + usize::from(samples % batch_size >= 2)
}

/// A copy of every variable's current value.
fn snapshot(varmap: &VarMap) -> candle_core::Result<BTreeMap<String, Tensor>> {
    let data = varmap.data().lock().expect("varmap lock");
    data.iter()
        .map(|(name, var)| Ok((name.clone(), var.as_tensor().copy()?)))
        .collect()
}

/// Puts snapshot values back into the variables.
fn restore(varmap: &VarMap, weights: &BTreeMap<String, Tensor>) -> candle_core::Result<()> {
    let data = varmap.data().lock().expect("varmap lock");
    for (name, value) in weights {
        if let Some(var) = data.get(name) {
            var.set(value)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::prepare::{prepare, PreparedData, SplitSpec};
    use crate::data::subsample::Subsample;
    use crate::data::synth::{generate, SynthConfig};
    use crate::train::schedule::ScheduleKind;

    #[test]
    fn a_trailing_single_sample_is_dropped() {
        assert_eq!(batches(64, 32), 2);
        assert_eq!(batches(65, 32), 2);
        assert_eq!(batches(66, 32), 3);
        assert_eq!(batches(1, 32), 0);
        assert_eq!(batches(5, 32), 1);
    }

    fn tiny_data(dir: &Path) -> PreparedData {
        let synth = SynthConfig {
            size: 32,
            hard_patches: 90,
            hard_slides: 9,
            pool_patches: 8,
            pool_slides: 2,
            seed: 5,
            // Pinned, so that recalibrating the world's defaults does not
            // change the fixture the tests below assert on.
            mimic_lumen_likeness: 0.5,
            stain_variation: 1.0,
            ..SynthConfig::default()
        };
        generate(&synth, dir).unwrap();
        prepare(dir, 32, &SplitSpec::default(), &Subsample::All).unwrap()
    }

    fn train(data: &PreparedData, config: &TrainConfig) -> TrainedModel {
        let model = ResNetConfig::from_name("resnet10-w8", 2).unwrap();
        let inputs = TrainData {
            store: &data.store,
            positive: &data.positive,
            train: &data.split.train,
            valid: &data.split.valid,
        };
        train_model(&model, None, config, inputs, 3, &Device::Cpu, &mut |_| {}).unwrap()
    }

    fn valid_loss(data: &PreparedData, trained: &TrainedModel) -> f64 {
        let store = &data.store;
        let valid = &data.split.valid;
        evaluate(
            &trained.model,
            store,
            &data.positive,
            valid,
            64,
            &Device::Cpu,
        )
        .unwrap()
        .loss
    }

    #[test]
    fn the_checkpoint_setting_picks_the_kept_weights() {
        let dir = tempfile::tempdir().unwrap();
        let data = tiny_data(dir.path());
        let config = TrainConfig {
            epochs: 4,
            batch_size: 16,
            lr: 3e-2,
            augment: false,
            ..TrainConfig::default()
        };
        let best = train(&data, &config);
        let last = train(
            &data,
            &TrainConfig {
                checkpoint: Checkpoint::LastEpoch,
                ..config.clone()
            },
        );
        // Same seed, same steps: the two runs differ only in what they keep.
        let losses = |t: &TrainedModel| -> Vec<(f64, f64)> {
            t.history
                .iter()
                .map(|r| (r.train_loss, r.valid_loss))
                .collect()
        };
        assert_eq!(losses(&best), losses(&last));
        assert!(
            best.best_epoch < 4,
            "the fixture needs a best epoch before the last: {:?}",
            best.history
        );
        assert_eq!(last.best_epoch, 4);
        // Each model is the kept epoch's: its validation loss is that epoch's.
        for trained in [&best, &last] {
            let recorded = trained.history[trained.best_epoch - 1].valid_loss;
            assert_eq!(valid_loss(&data, trained), recorded);
        }
    }

    #[test]
    fn the_reference_schedule_holds_the_rate_through_each_epoch() {
        let dir = tempfile::tempdir().unwrap();
        let data = tiny_data(dir.path());
        let config = TrainConfig {
            epochs: 3,
            batch_size: 16,
            schedule: ScheduleKind::Reference,
            augment: false,
            ..TrainConfig::default()
        };
        let trained = train(&data, &config);
        let steps = batches(data.split.train.len(), 16);
        let reference = crate::train::schedule::ReferenceSchedule {
            base_lr: config.lr,
            min_lr: config.min_lr,
            steps_per_epoch: steps,
        };
        let rates: Vec<f64> = trained.history.iter().map(|r| r.lr).collect();
        let expected: Vec<f64> = (0..3).map(|epoch| reference.rate(epoch)).collect();
        assert_eq!(rates, expected);
        assert_eq!(rates[0], config.lr);
        assert!(rates[2] < rates[1] && rates[2] > 0.99 * config.lr);
    }
}
