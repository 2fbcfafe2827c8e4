//! The four-step method: weak model, false-positive query, hard negative
//! mining in the weak pool, strong model.
//!
//! Mined patches join the training split only; the weak and the strong
//! model are evaluated on the same test split, and the strong model starts
//! from the same initial weights as the weak one (same seed).

pub mod fp_query;

use crate::data::prepare::PreparedData;
use crate::data::PatchKind;
use crate::metrics::binary::BinaryMetrics;
use crate::mining::{mine, MinedPatch, MiningConfig, MiningError, MiningInputs, Strategy};
use crate::model::resnet::{ResNet, ResNetConfig};
use crate::seed;
use crate::train::evaluate::{embed_and_score, evaluate, Evaluation};
use crate::train::{train_model, EpochRecord, TrainConfig, TrainData, TrainError, TrainEvent};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use fp_query::{false_positives, FalsePositive};
use std::path::Path;

/// Why a pipeline step failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Training a model failed.
    #[error("{stage} model: {source}")]
    Train {
        /// `weak` or `strong`.
        stage: &'static str,
        /// The training error.
        source: TrainError,
    },
    /// Mining failed.
    #[error(transparent)]
    Mining(#[from] MiningError),
    /// Metrics could not be computed.
    #[error("metrics of the {stage} model: {message}")]
    Metrics {
        /// `weak` or `strong`.
        stage: &'static str,
        /// What went wrong.
        message: String,
    },
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// Which model a result belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Trained on the training split only.
    Weak,
    /// Trained on the training split plus mined negatives.
    Strong,
}

impl Stage {
    /// `weak` or `strong`.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Weak => "weak",
            Stage::Strong => "strong",
        }
    }
}

/// A trained model's results on the test split.
#[derive(Debug, Clone)]
pub struct ModelOutcome {
    /// Scores and loss on the test split (in `split.test` order).
    pub test: Evaluation,
    /// Metrics on the test split.
    pub metrics: BinaryMetrics,
    /// Per-epoch training history.
    pub history: Vec<EpochRecord>,
    /// Epoch whose weights were kept.
    pub best_epoch: usize,
    /// Number of training patches (mined negatives included).
    pub train_size: usize,
}

/// What the weak model contributes to mining: its false positives and the
/// features and scores of the false positives and the pool.
pub struct Query {
    /// The false positives on the validation split.
    pub false_positives: Vec<FalsePositive>,
    /// Pooled features of the false positives, (Q, D).
    pub fp_features: Tensor,
    /// Pooled features of every pool patch, (P, D).
    pub pool_features: Tensor,
    /// The weak model's LI probability for every pool patch.
    pub pool_scores: Vec<f64>,
}

/// What to train: architecture, starting weights, hyper-parameters, seed.
#[derive(Debug, Clone, Copy)]
pub struct TrainSpec<'a> {
    /// The architecture.
    pub model: &'a ResNetConfig,
    /// Optional pretrained weights (torchvision names).
    pub pretrained: Option<&'a Path>,
    /// Hyper-parameters.
    pub training: &'a TrainConfig,
    /// Training seed (initial weights, sampling, augmentation).
    pub seed: u64,
    /// Where tensors live.
    pub device: &'a Device,
}

/// Trains a model on `train` (store indices) and evaluates it on the test split.
pub fn train_and_test(
    stage: Stage,
    spec: TrainSpec<'_>,
    data: &PreparedData,
    train: &[usize],
    on_event: &mut dyn FnMut(TrainEvent),
) -> Result<(ResNet, VarMap, ModelOutcome), PipelineError> {
    let trained = train_model(
        spec.model,
        spec.pretrained,
        spec.training,
        TrainData {
            store: &data.store,
            positive: &data.positive,
            train,
            valid: &data.split.valid,
        },
        spec.seed,
        spec.device,
        on_event,
    )
    .map_err(|source| PipelineError::Train {
        stage: stage.name(),
        source,
    })?;
    let batch = spec.training.eval_batch_size;
    let test = evaluate(
        &trained.model,
        &data.store,
        &data.positive,
        &data.split.test,
        batch,
        spec.device,
    )?;
    let labels: Vec<bool> = data.split.test.iter().map(|&i| data.positive[i]).collect();
    let metrics =
        BinaryMetrics::compute(&labels, &test.scores, spec.training.threshold).map_err(|e| {
            PipelineError::Metrics {
                stage: stage.name(),
                message: e.to_string(),
            }
        })?;
    let outcome = ModelOutcome {
        test,
        metrics,
        history: trained.history,
        best_epoch: trained.best_epoch,
        train_size: train.len(),
    };
    // A stage ends: the next one (embedding, another training) builds its
    // own working set, and the heaps give back the memory of this one.
    crate::alloc::release();
    Ok((trained.model, trained.varmap, outcome))
}

/// Runs the weak model on validation (false positives) and embeds the
/// false positives and the whole pool, each once, in batches.
pub fn query(
    weak: &ResNet,
    data: &PreparedData,
    config: &TrainConfig,
    fp_threshold: f64,
    device: &Device,
) -> Result<Query, PipelineError> {
    let batch = config.eval_batch_size;
    // One pass over validation gives both the scores of the query and the
    // features of the false positives it finds.
    let (valid_features, valid_scores) =
        embed_and_score(weak, &data.store, &data.split.valid, batch, device)?;
    let fps = false_positives(
        &data.split.valid,
        &valid_scores,
        &data.positive,
        fp_threshold,
    );
    let rows: Vec<u32> = data
        .split
        .valid
        .iter()
        .enumerate()
        .filter(|(_, &index)| fps.iter().any(|fp| fp.hard_index == index))
        .map(|(row, _)| row as u32)
        .collect();
    let rows = Tensor::new(rows, valid_features.device())?;
    let fp_features = valid_features.index_select(&rows, 0)?;
    let (pool_features, pool_scores) =
        embed_and_score(weak, &data.store, &data.pool_indices(), batch, device)?;
    // A stage ends (see `train_and_test`).
    crate::alloc::release();
    Ok(Query {
        false_positives: fps,
        fp_features,
        pool_features,
        pool_scores,
    })
}

/// Selects pool patches for one mining configuration.
pub fn mine_pool(
    query: &Query,
    mining: &MiningConfig,
    seed: u64,
) -> Result<Vec<MinedPatch>, PipelineError> {
    let inputs = MiningInputs {
        query_features: &query.fp_features,
        pool_features: &query.pool_features,
        pool_scores: &query.pool_scores,
        seed: seed::derive_u64(seed, "mining", &[]),
    };
    Ok(mine(mining, inputs)?)
}

/// Training indices of the strong model: the training split plus the mined pool patches.
pub fn strong_training_set(data: &PreparedData, mined: &[MinedPatch]) -> Vec<usize> {
    let mut train = data.split.train.clone();
    train.extend(mined.iter().map(|m| data.pool_offset + m.pool_index));
    train
}

/// Share of mined patches whose true kind is the mimic (`None` without a manifest or with nothing mined).
pub fn mining_precision(data: &PreparedData, mined: &[MinedPatch]) -> Option<f64> {
    if mined.is_empty() {
        return None;
    }
    let kinds: Option<Vec<PatchKind>> = mined
        .iter()
        .map(|m| data.dataset.pool[m.pool_index].kind)
        .collect();
    let kinds = kinds?;
    Some(kinds.iter().filter(|&&k| k == PatchKind::Mimic).count() as f64 / kinds.len() as f64)
}

/// Results of one strategy in a pipeline run.
pub struct StrategyOutcome {
    /// The mining settings.
    pub mining: MiningConfig,
    /// The mined pool patches.
    pub mined: Vec<MinedPatch>,
    /// Share of mimics among them (synthetic data).
    pub precision: Option<f64>,
    /// The strong model's results; for `none` (or nothing mined) this is the weak model.
    pub strong: ModelOutcome,
    /// Whether a strong model was trained (false when it would equal the weak one).
    pub strong_trained: bool,
}

/// Everything one pipeline run produced.
pub struct PipelineOutcome {
    /// The weak model's results.
    pub weak: ModelOutcome,
    /// The weak model's false positives on validation.
    pub false_positives: Vec<FalsePositive>,
    /// One entry per requested strategy, in request order.
    pub strategies: Vec<StrategyOutcome>,
}

/// Runs the method for several mining configurations, sharing one weak
/// model, one false-positive query and one pool embedding between them.
pub fn run_pipeline(
    spec: TrainSpec<'_>,
    minings: &[MiningConfig],
    data: &PreparedData,
    on_event: &mut dyn FnMut(Stage, &MiningConfig, TrainEvent),
) -> Result<PipelineOutcome, PipelineError> {
    let weak_label = MiningConfig {
        strategy: Strategy::None,
        ..MiningConfig::default()
    };
    let (weak_model, _, weak) =
        train_and_test(Stage::Weak, spec, data, &data.split.train, &mut |e| {
            on_event(Stage::Weak, &weak_label, e)
        })?;
    let (config, device, seed) = (spec.training, spec.device, spec.seed);
    // One query per distinct false-positive threshold (usually just one).
    let mut queries: Vec<(f64, Query)> = Vec::new();
    let mut strategies = Vec::with_capacity(minings.len());
    for mining in minings {
        if mining.strategy == Strategy::None {
            let strong = weak.clone();
            strategies.push(StrategyOutcome {
                mining: mining.clone(),
                mined: Vec::new(),
                precision: None,
                strong,
                strong_trained: false,
            });
            continue;
        }
        let position = match queries.iter().position(|(t, _)| *t == mining.fp_threshold) {
            Some(position) => position,
            None => {
                queries.push((
                    mining.fp_threshold,
                    query(&weak_model, data, config, mining.fp_threshold, device)?,
                ));
                queries.len() - 1
            }
        };
        let mined = mine_pool(&queries[position].1, mining, seed)?;
        let precision = mining_precision(data, &mined);
        let (strong, strong_trained) = if mined.is_empty() {
            // Same seed, same training set: the strong model would be the weak one.
            (weak.clone(), false)
        } else {
            let train = strong_training_set(data, &mined);
            let (_, _, strong) = train_and_test(Stage::Strong, spec, data, &train, &mut |e| {
                on_event(Stage::Strong, mining, e)
            })?;
            (strong, true)
        };
        strategies.push(StrategyOutcome {
            mining: mining.clone(),
            mined,
            precision,
            strong,
            strong_trained,
        });
    }
    let false_positives = queries
        .into_iter()
        .next()
        .map(|(_, q)| q.false_positives)
        .unwrap_or_default();
    Ok(PipelineOutcome {
        weak,
        false_positives,
        strategies,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::prepare::{prepare, SplitSpec};
    use crate::data::subsample::Subsample;
    use crate::data::synth::{generate, SynthConfig};
    use std::collections::BTreeSet;

    fn tiny_data(dir: &Path) -> PreparedData {
        let synth = SynthConfig {
            size: 32,
            hard_patches: 120,
            hard_slides: 8,
            pool_patches: 80,
            pool_slides: 4,
            seed: 2,
            ..SynthConfig::default()
        };
        generate(&synth, dir).unwrap();
        prepare(dir, 32, &SplitSpec::default(), &Subsample::All).unwrap()
    }

    fn run(data: &PreparedData) -> PipelineOutcome {
        let model = ResNetConfig::from_name("resnet10-w8", 2).unwrap();
        let training = TrainConfig {
            epochs: 1,
            batch_size: 16,
            ..TrainConfig::default()
        };
        let spec = TrainSpec {
            model: &model,
            pretrained: None,
            training: &training,
            seed: 1,
            device: &Device::Cpu,
        };
        // Threshold 0 makes every validation negative a false positive, so mining always finds patches.
        let minings: Vec<MiningConfig> = [Strategy::None, Strategy::KnnL2, Strategy::Random]
            .into_iter()
            .map(|strategy| MiningConfig {
                strategy,
                num_query: 3,
                fp_threshold: 0.0,
                max_mined: None,
            })
            .collect();
        run_pipeline(spec, &minings, data, &mut |_, _, _| {}).unwrap()
    }

    #[test]
    fn mined_patches_join_training_only_and_models_share_the_test_set() {
        let dir = tempfile::tempdir().unwrap();
        let data = tiny_data(dir.path());
        let outcome = run(&data);
        let held_out: BTreeSet<usize> = data
            .split
            .valid
            .iter()
            .chain(&data.split.test)
            .copied()
            .collect();
        assert!(!outcome.false_positives.is_empty());
        for strategy in &outcome.strategies {
            let train = strong_training_set(&data, &strategy.mined);
            assert!(
                train.iter().all(|i| !held_out.contains(i)),
                "{}: mined into valid/test",
                strategy.mining.strategy
            );
            let mined: Vec<usize> = train
                .iter()
                .copied()
                .filter(|&i| i >= data.pool_offset)
                .collect();
            assert_eq!(mined.len(), strategy.mined.len());
            // Weak and strong are scored on the same test patches, in the same order.
            assert_eq!(strategy.strong.test.scores.len(), data.split.test.len());
            assert_eq!(
                strategy.strong.train_size,
                data.split.train.len() + strategy.mined.len()
            );
        }
        assert_eq!(outcome.weak.test.scores.len(), data.split.test.len());
        let none = &outcome.strategies[0];
        assert!(!none.strong_trained && none.mined.is_empty());
        assert_eq!(none.strong.test.scores, outcome.weak.test.scores);
        let (knn, random) = (&outcome.strategies[1], &outcome.strategies[2]);
        assert!(knn.strong_trained && !knn.mined.is_empty());
        assert_eq!(
            random.mined.len(),
            knn.mined.len(),
            "the random control draws as many as kNN mines"
        );
        assert_ne!(knn.strong.test.scores, outcome.weak.test.scores);
    }

    #[test]
    fn reruns_are_identical() {
        let dir = tempfile::tempdir().unwrap();
        let data = tiny_data(dir.path());
        let (a, b) = (run(&data), run(&data));
        assert_eq!(a.weak.test.scores, b.weak.test.scores);
        for (x, y) in a.strategies.iter().zip(&b.strategies) {
            assert_eq!(x.mined, y.mined);
            assert_eq!(x.strong.test.scores, y.strong.test.scores);
        }
    }
}
