//! Settings keys of stages: a hash of exactly the settings a stage's output
//! depends on, including the settings keys of the stages it reads.
//!
//! Cells that agree on a stage's settings share its artifact: every mining
//! strategy and query count of one (data, split, model, training, seed)
//! reuses one weak model, one false-positive query and one pool embedding.
//!
//! These keys do not depend on the build: the cache stores each stage under
//! its settings key and then the build that computed it
//! ([`super::store`]), so that a stage made by another build is found, and
//! reported, as stale. Synthetic data's key includes the generator version
//! ([`crate::data::synth::GENERATOR_VERSION`]): data of another generator
//! version, and every stage computed from it, is never even stale.

use crate::data::synth::GENERATOR_VERSION;
use crate::experiment::ExperimentConfig;
use crate::seed;
use serde::Serialize;
use serde_json::json;

/// Hash of a serialisable value, as 16 hex digits.
pub fn content_key(value: &impl Serialize) -> String {
    let bytes = serde_json::to_vec(value).expect("stage settings serialise");
    blake3::hash(&bytes).to_hex()[..16].to_string()
}

/// The training seed of a cell: from the root seed and its seed replicate.
pub fn training_seed(config: &ExperimentConfig) -> u64 {
    seed::derive_u64(config.seed, "train", &[config.replicate.seed])
}

/// The stage keys of one cell that can be known before running it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StageKeys {
    /// The dataset files (synthetic settings or folder, and input size).
    pub data: String,
    /// The dataset plus split, fold and subsampling.
    pub split: String,
    /// The weak model: split plus model, training settings and training seed.
    pub weak: String,
    /// The false-positive query and embeddings: weak model plus threshold.
    pub query: String,
    /// The mined set: query plus strategy settings.
    pub mining: String,
}

impl StageKeys {
    /// Computes the keys of a cell's settings.
    pub fn of(config: &ExperimentConfig) -> Self {
        Self::with_generator(config, GENERATOR_VERSION)
    }

    /// The keys of a cell's settings with synthetic data of generator
    /// version `generator_version`.
    fn with_generator(config: &ExperimentConfig, generator_version: u32) -> Self {
        let data_source = match &config.data.path {
            Some(path) => json!({ "path": path }),
            None => json!({
                "synthetic": config.data.synthetic,
                "generator_version": generator_version,
            }),
        };
        let data =
            content_key(&json!({ "source": data_source, "image_size": config.data.image_size }));
        let mut split_spec = config.data.split.clone();
        if split_spec.folds.is_some() {
            split_spec.fold = config.replicate.fold;
        }
        let split = content_key(&json!({
            "data": data,
            "split": split_spec,
            "subsample": config.data.subsample().ok(),
        }));
        let weak = content_key(&json!({
            "split": split,
            "model": config.model,
            "training": config.training,
            "seed": training_seed(config),
            // Kernels differ between devices, and so do the trained weights.
            "device": config.device,
        }));
        let query =
            content_key(&json!({ "weak": weak, "fp_threshold": config.mining.fp_threshold }));
        let mining = content_key(&json!({
            "query": query,
            "strategy": config.mining.strategy,
            "num_query": config.mining.num_query,
            "max_mined": config.mining.max_mined,
            "overlapping_pool_slides": config.mining.overlapping_pool_slides,
        }));
        Self {
            data,
            split,
            weak,
            query,
            mining,
        }
    }

    /// The strong model's key: the weak model's settings plus the mined set.
    pub fn strong(&self, mined_pool_indices: &[usize]) -> String {
        content_key(&json!({ "weak": self.weak, "mined": mined_pool_indices }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mining::Strategy;

    #[test]
    fn strategies_share_the_weak_model_but_not_the_mining() {
        let base = ExperimentConfig::defaults();
        let mut other = base.clone();
        other.mining.strategy = Strategy::Random;
        other.mining.num_query = 50;
        let (a, b) = (StageKeys::of(&base), StageKeys::of(&other));
        assert_eq!(a.weak, b.weak);
        assert_eq!(a.query, b.query);
        assert_ne!(a.mining, b.mining);
    }

    #[test]
    fn seeds_folds_and_training_change_the_weak_model() {
        let base = ExperimentConfig::defaults();
        let key = |f: &dyn Fn(&mut ExperimentConfig)| {
            let mut c = base.clone();
            f(&mut c);
            StageKeys::of(&c).weak
        };
        let original = key(&|_| {});
        assert_ne!(original, key(&|c| c.replicate.seed = 1));
        assert_ne!(original, key(&|c| c.training.epochs += 1));
        assert_ne!(original, key(&|c| c.data.pos_fraction = Some(0.5)));
        // The fold replicate matters only with folds.
        assert_eq!(original, key(&|c| c.replicate.fold = 2));
        let with_folds = key(&|c| c.data.split.folds = Some(3));
        assert_ne!(
            with_folds,
            key(&|c| {
                c.data.split.folds = Some(3);
                c.replicate.fold = 2;
            })
        );
    }

    #[test]
    fn the_generator_version_changes_synthetic_data_and_everything_after_it() {
        let synthetic = ExperimentConfig::defaults();
        let (now, next) = (
            StageKeys::of(&synthetic),
            StageKeys::with_generator(&synthetic, GENERATOR_VERSION + 1),
        );
        assert_ne!(now.data, next.data);
        assert_ne!(now.weak, next.weak);
        assert_ne!(now.mining, next.mining);
        assert_ne!(now.strong(&[1]), next.strong(&[1]));
        // A folder of images is not generated.
        let mut folder = synthetic;
        folder.data.path = Some("data/real".into());
        assert_eq!(
            StageKeys::of(&folder),
            StageKeys::with_generator(&folder, GENERATOR_VERSION + 1)
        );
    }

    #[test]
    fn strong_key_follows_the_mined_set() {
        let keys = StageKeys::of(&ExperimentConfig::defaults());
        assert_eq!(keys.strong(&[1, 2]), keys.strong(&[1, 2]));
        assert_ne!(keys.strong(&[1, 2]), keys.strong(&[1, 3]));
    }
}
