//! The four steps of the method, each a function: weak model
//! ([`train_and_test`]), false-positive query ([`query`]), hard negative
//! mining in the weak pool ([`mine_pool`]), strong model
//! ([`strong_training_set`], [`train_and_test`]). The runner
//! ([`crate::runner`]) chains them, caching each step's result; every
//! command (`run`, `pipeline`, `train`) goes through it.
//!
//! Mined patches join the training split only; the weak and the strong
//! model are evaluated on the same test split, and the strong model starts
//! from the same initial weights as the weak one (same seed).

pub mod fp_query;

use crate::data::prepare::PreparedData;
use crate::data::PatchKind;
use crate::metrics::binary::BinaryMetrics;
use crate::mining::{
    eligible_pool, mine, MinedPatch, MiningConfig, MiningError, MiningInputs, OverlapError,
};
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
    /// The pool holds patches of held-out slides.
    #[error(transparent)]
    PoolOverlap(#[from] OverlapError),
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

/// Selects pool patches for one mining configuration, from the pool
/// patches `mining.overlapping_pool_slides` allows (see
/// [`crate::mining::overlap`]); pool indices refer to the whole pool.
pub fn mine_pool(
    data: &PreparedData,
    query: &Query,
    mining: &MiningConfig,
    seed: u64,
) -> Result<Vec<MinedPatch>, PipelineError> {
    let eligible = eligible_pool(
        &data.dataset.hard,
        &data.dataset.pool,
        &data.split,
        mining.overlapping_pool_slides,
    )?;
    let seed = seed::derive_u64(seed, "mining", &[]);
    if eligible.len() == query.pool_scores.len() {
        let inputs = MiningInputs {
            query_features: &query.fp_features,
            pool_features: &query.pool_features,
            pool_scores: &query.pool_scores,
            seed,
        };
        return Ok(mine(mining, inputs)?);
    }
    let rows: Vec<u32> = eligible.iter().map(|&j| j as u32).collect();
    let rows = Tensor::new(rows, query.pool_features.device())?;
    let pool_features = query.pool_features.index_select(&rows, 0)?;
    let pool_scores: Vec<f64> = eligible.iter().map(|&j| query.pool_scores[j]).collect();
    let inputs = MiningInputs {
        query_features: &query.fp_features,
        pool_features: &pool_features,
        pool_scores: &pool_scores,
        seed,
    };
    let mut mined = mine(mining, inputs)?;
    for patch in &mut mined {
        patch.pool_index = eligible[patch.pool_index];
    }
    Ok(mined)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::prepare::{prepare, SplitSpec};
    use crate::data::subsample::Subsample;
    use crate::data::synth::{generate, SynthConfig};
    use crate::mining::Strategy;
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

    /// What running the method once gives: the weak model, its false
    /// positives, and per strategy the mined set and the strong model.
    struct Outcome {
        weak: ModelOutcome,
        false_positives: Vec<FalsePositive>,
        strategies: Vec<(Strategy, Vec<MinedPatch>, ModelOutcome)>,
    }

    /// The steps chained as the runner chains them, for the strategies
    /// `none`, `knn-l2` and `random`.
    fn run(data: &PreparedData) -> Outcome {
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
        let (weak_model, _, weak) =
            train_and_test(Stage::Weak, spec, data, &data.split.train, &mut |_| {}).unwrap();
        // Threshold 0 makes every validation negative a false positive, so mining always finds patches.
        let query = query(&weak_model, data, &training, 0.0, &Device::Cpu).unwrap();
        let strategies = [Strategy::None, Strategy::KnnL2, Strategy::Random]
            .into_iter()
            .map(|strategy| {
                let mining = MiningConfig {
                    strategy,
                    num_query: 3,
                    fp_threshold: 0.0,
                    ..MiningConfig::default()
                };
                let mined = if strategy == Strategy::None {
                    Vec::new()
                } else {
                    mine_pool(data, &query, &mining, spec.seed).unwrap()
                };
                let strong = if mined.is_empty() {
                    weak.clone()
                } else {
                    let train = strong_training_set(data, &mined);
                    train_and_test(Stage::Strong, spec, data, &train, &mut |_| {})
                        .unwrap()
                        .2
                };
                (strategy, mined, strong)
            })
            .collect();
        Outcome {
            weak,
            false_positives: query.false_positives,
            strategies,
        }
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
        for (strategy, mined, strong) in &outcome.strategies {
            let train = strong_training_set(&data, mined);
            assert!(
                train.iter().all(|i| !held_out.contains(i)),
                "{strategy}: mined into valid/test"
            );
            let pool: Vec<usize> = train
                .iter()
                .copied()
                .filter(|&i| i >= data.pool_offset)
                .collect();
            assert_eq!(pool.len(), mined.len());
            // Weak and strong are scored on the same test patches, in the same order.
            assert_eq!(strong.test.scores.len(), data.split.test.len());
            assert_eq!(strong.train_size, data.split.train.len() + mined.len());
        }
        assert_eq!(outcome.weak.test.scores.len(), data.split.test.len());
        let (_, none_mined, none) = &outcome.strategies[0];
        assert!(none_mined.is_empty());
        assert_eq!(none.test.scores, outcome.weak.test.scores);
        let ((_, knn_mined, knn), (_, random_mined, _)) =
            (&outcome.strategies[1], &outcome.strategies[2]);
        assert!(!knn_mined.is_empty());
        assert_eq!(
            random_mined.len(),
            knn_mined.len(),
            "the random control draws as many as kNN mines"
        );
        assert_ne!(knn.test.scores, outcome.weak.test.scores);
    }

    #[test]
    fn reruns_are_identical() {
        let dir = tempfile::tempdir().unwrap();
        let data = tiny_data(dir.path());
        let (a, b) = (run(&data), run(&data));
        assert_eq!(a.weak.test.scores, b.weak.test.scores);
        for (x, y) in a.strategies.iter().zip(&b.strategies) {
            assert_eq!(x.1, y.1);
            assert_eq!(x.2.test.scores, y.2.test.scores);
        }
    }

    #[test]
    fn pool_patches_of_held_out_slides_are_refused_dropped_or_kept() {
        use crate::mining::OverlapPolicy;
        let dir = tempfile::tempdir().unwrap();
        let mut data = tiny_data(dir.path());
        // Pool patches 0 and 1 claim a test and a validation slide.
        let test_slide = data.dataset.hard[data.split.test[0]].slide.clone();
        let valid_slide = data.dataset.hard[data.split.valid[0]].slide.clone();
        let dataset = std::sync::Arc::make_mut(&mut data.dataset);
        dataset.pool[0].slide = test_slide.clone();
        dataset.pool[1].slide = valid_slide.clone();
        // One false positive at the origin; pool patches 0 and 1 sit on it,
        // the others farther out in order.
        let pool_len = data.dataset.pool.len();
        let pool: Vec<f32> = (0..pool_len)
            .flat_map(|j| [j.saturating_sub(1) as f32, 0.0])
            .collect();
        let query = Query {
            false_positives: Vec::new(),
            fp_features: Tensor::new(&[[0.0f32, 0.0]], &Device::Cpu).unwrap(),
            pool_features: Tensor::from_vec(pool, (pool_len, 2), &Device::Cpu).unwrap(),
            pool_scores: vec![0.5; pool_len],
        };
        let mining = |strategy, policy| MiningConfig {
            strategy,
            num_query: 3,
            overlapping_pool_slides: policy,
            ..MiningConfig::default()
        };
        let mined = |strategy, policy| {
            let found = mine_pool(&data, &query, &mining(strategy, policy), 1).unwrap();
            found.iter().map(|m| m.pool_index).collect::<Vec<_>>()
        };
        let error = mine_pool(
            &data,
            &query,
            &mining(Strategy::KnnL2, OverlapPolicy::Error),
            1,
        )
        .expect_err("held-out slides in the pool are an error")
        .to_string();
        assert!(
            error.contains(&format!(" {test_slide} (test"))
                && error.contains(&format!(" {valid_slide} (valid")),
            "{error}"
        );
        assert_eq!(mined(Strategy::KnnL2, OverlapPolicy::Keep), [0, 1, 2]);
        // Dropped: the nearest of the rest, with indices of the whole pool.
        assert_eq!(mined(Strategy::KnnL2, OverlapPolicy::Drop), [2, 3, 4]);
        let all = mined(Strategy::All, OverlapPolicy::Drop);
        assert_eq!(all, (2..pool_len).collect::<Vec<_>>());
        let random = mined(Strategy::Random, OverlapPolicy::Drop);
        assert!(
            random.len() == 3 && random.iter().all(|&j| j >= 2),
            "{random:?}"
        );
    }
}
