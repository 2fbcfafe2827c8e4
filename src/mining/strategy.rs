//! Mining strategies: which pool patches join training as negatives.

use super::knn::{nearest_neighbours, Metric};
use super::overlap::OverlapPolicy;
use crate::seed;
use crate::setting::InvalidSetting;
use candle_core::Tensor;
use rand::seq::index::sample;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A mining strategy, as named in experiment files.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// No mining: the result is the weak model.
    None,
    /// For each false positive, its `num_query` nearest pool patches by L2 distance (the paper's).
    KnnL2,
    /// The same by cosine similarity, most similar first.
    KnnCosine,
    /// As many pool patches as `knn-l2` would add (at most `max_mined`),
    /// drawn uniformly: the "more negatives" control.
    Random,
    /// As many pool patches as `knn-l2` would add, those the weak model scores most LI-like.
    Score,
    /// The whole pool: an upper bound on "more negatives".
    All,
}

impl Strategy {
    /// All strategies in a fixed order.
    pub const ALL: [Strategy; 6] = [
        Strategy::None,
        Strategy::KnnL2,
        Strategy::KnnCosine,
        Strategy::Random,
        Strategy::Score,
        Strategy::All,
    ];

    /// Name as written in experiment files and CSVs.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::None => "none",
            Strategy::KnnL2 => "knn-l2",
            Strategy::KnnCosine => "knn-cosine",
            Strategy::Random => "random",
            Strategy::Score => "score",
            Strategy::All => "all",
        }
    }

    /// Whether the strategy needs the false-positive query.
    pub fn needs_queries(self) -> bool {
        matches!(
            self,
            Strategy::KnnL2 | Strategy::KnnCosine | Strategy::Random | Strategy::Score
        )
    }
}

impl std::fmt::Display for Strategy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Settings of the false-positive query and the mining step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MiningConfig {
    /// Which pool patches are added.
    pub strategy: Strategy,
    /// Pool patches taken per false positive (reference default 20).
    pub num_query: usize,
    /// A validation negative scored at or above this is a false positive (reference 0.1).
    pub fp_threshold: f64,
    /// Optional cap on the number of mined patches: kNN keeps the closest,
    /// `score` the highest scored, `random` draws `min(count, cap)`
    /// uniformly, `all` keeps the first by pool index.
    pub max_mined: Option<usize>,
    /// Pool patches whose slide has hard-labeled patches in the validation
    /// or test split: `error` (the default), `drop` (leave them out of
    /// mining) or `keep` (mine them anyway, as the reference did).
    pub overlapping_pool_slides: OverlapPolicy,
}

impl Default for MiningConfig {
    fn default() -> Self {
        Self {
            strategy: Strategy::KnnL2,
            num_query: 20,
            fp_threshold: 0.1,
            max_mined: None,
            overlapping_pool_slides: OverlapPolicy::Error,
        }
    }
}

impl MiningConfig {
    /// Checks values mining cannot run with; the error names the full key.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if self.num_query == 0 {
            return Err(InvalidSetting::range(
                "mining.num_query",
                0,
                "at least 1 pool patch per false positive",
            ));
        }
        if !(0.0..=1.0).contains(&self.fp_threshold) {
            return Err(InvalidSetting::range(
                "mining.fp_threshold",
                self.fp_threshold,
                "a probability in [0, 1]",
            ));
        }
        if self.max_mined == Some(0) {
            return Err(InvalidSetting::range(
                "mining.max_mined",
                0,
                "at least 1 (leave it out for no cap)",
            ));
        }
        Ok(())
    }
}

/// Why mining failed.
#[derive(Debug, thiserror::Error)]
pub enum MiningError {
    /// Feature matrices do not fit together.
    #[error("mining inputs disagree: {0}")]
    Shape(String),
    /// A tensor operation failed.
    #[error(transparent)]
    Candle(#[from] candle_core::Error),
}

/// What mining works on.
#[derive(Debug, Clone, Copy)]
pub struct MiningInputs<'a> {
    /// Pooled features of the false positives, (Q, D).
    pub query_features: &'a Tensor,
    /// Pooled features of the pool, (P, D).
    pub pool_features: &'a Tensor,
    /// The weak model's LI probability for each pool patch (for `score`).
    pub pool_scores: &'a [f64],
    /// Seed of the `random` draw.
    pub seed: u64,
}

/// One mined pool patch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MinedPatch {
    /// Index into the pool.
    pub pool_index: usize,
    /// Indices of the false positives that found it (kNN strategies).
    pub found_by: Vec<usize>,
    /// Best distance (L2) or similarity (cosine) to a finding false
    /// positive, or the weak model's score (`score`); `None` otherwise.
    pub value: Option<f32>,
}

/// Selects pool patches with the configured strategy; the result is sorted by pool index.
pub fn mine(
    config: &MiningConfig,
    inputs: MiningInputs<'_>,
) -> Result<Vec<MinedPatch>, MiningError> {
    let pool_len = inputs.pool_scores.len();
    let (pool_rows, _) = inputs.pool_features.dims2()?;
    if pool_rows != pool_len {
        return Err(MiningError::Shape(format!(
            "{pool_rows} pool feature rows but {pool_len} pool scores"
        )));
    }
    let (query_rows, query_dim) = inputs.query_features.dims2()?;
    let pool_dim = inputs.pool_features.dims2()?.1;
    if query_rows > 0 && query_dim != pool_dim {
        return Err(MiningError::Shape(format!(
            "false-positive features have {query_dim} dimensions, pool features {pool_dim}"
        )));
    }
    let mut mined = match config.strategy {
        Strategy::None => Vec::new(),
        Strategy::KnnL2 => knn_union(inputs, config.num_query, Metric::L2)?,
        Strategy::KnnCosine => knn_union(inputs, config.num_query, Metric::Cosine)?,
        Strategy::Random => {
            let count = knn_union(inputs, config.num_query, Metric::L2)?.len();
            // Under a cap, draw the capped number: drawing `count` and then
            // keeping some would favour low pool indices.
            let count = config.max_mined.map_or(count, |cap| count.min(cap));
            let mut rng = seed::stream(inputs.seed, "mining-random", &[]);
            let mut picked = sample(&mut rng, pool_len, count).into_vec();
            picked.sort_unstable();
            picked
                .into_iter()
                .map(|pool_index| MinedPatch {
                    pool_index,
                    found_by: Vec::new(),
                    value: None,
                })
                .collect()
        }
        Strategy::Score => {
            let count = knn_union(inputs, config.num_query, Metric::L2)?.len();
            top_scored(inputs.pool_scores, count)
        }
        Strategy::All => (0..pool_len)
            .map(|pool_index| MinedPatch {
                pool_index,
                found_by: Vec::new(),
                value: None,
            })
            .collect(),
    };
    if let Some(cap) = config.max_mined {
        apply_cap(&mut mined, cap, config.strategy);
    }
    mined.sort_by_key(|m| m.pool_index);
    Ok(mined)
}

/// Union over queries of each query's `k` nearest pool patches.
fn knn_union(
    inputs: MiningInputs<'_>,
    k: usize,
    metric: Metric,
) -> Result<Vec<MinedPatch>, MiningError> {
    if inputs.query_features.dims2()?.0 == 0 || k == 0 {
        return Ok(Vec::new());
    }
    let neighbours = nearest_neighbours(inputs.query_features, inputs.pool_features, k, metric)?;
    let mut union: BTreeMap<usize, MinedPatch> = BTreeMap::new();
    for (query, list) in neighbours.iter().enumerate() {
        for neighbour in list {
            let entry = union.entry(neighbour.index).or_insert(MinedPatch {
                pool_index: neighbour.index,
                found_by: Vec::new(),
                value: Some(neighbour.value),
            });
            entry.found_by.push(query);
            let best = entry.value.expect("kNN entries carry a value");
            let closer = match metric {
                Metric::L2 => neighbour.value < best,
                Metric::Cosine => neighbour.value > best,
            };
            if closer {
                entry.value = Some(neighbour.value);
            }
        }
    }
    Ok(union.into_values().collect())
}

/// The `count` highest-scored pool patches (ties: lower index first).
fn top_scored(scores: &[f64], count: usize) -> Vec<MinedPatch> {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    order
        .into_iter()
        .take(count)
        .map(|pool_index| MinedPatch {
            pool_index,
            found_by: Vec::new(),
            value: Some(scores[pool_index] as f32),
        })
        .collect()
}

/// Keeps the `cap` best mined patches: closest for kNN, highest score for
/// `score`, lowest pool index otherwise (`random` draws at most `cap`, so
/// nothing is cut there).
fn apply_cap(mined: &mut Vec<MinedPatch>, cap: usize, strategy: Strategy) {
    let key = |m: &MinedPatch| m.value.unwrap_or(0.0);
    match strategy {
        Strategy::KnnL2 => mined.sort_by(|a, b| {
            key(a)
                .total_cmp(&key(b))
                .then(a.pool_index.cmp(&b.pool_index))
        }),
        Strategy::KnnCosine | Strategy::Score => mined.sort_by(|a, b| {
            key(b)
                .total_cmp(&key(a))
                .then(a.pool_index.cmp(&b.pool_index))
        }),
        _ => mined.sort_by_key(|m| m.pool_index),
    }
    mined.truncate(cap);
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn inputs_fixture() -> (Tensor, Tensor, Vec<f64>) {
        // Two queries on a line; pool points at known positions.
        let queries = Tensor::new(&[[0.0f32, 0.0], [10.0, 0.0]], &Device::Cpu).unwrap();
        let pool = Tensor::new(
            &[
                [1.0f32, 0.0],
                [2.0, 0.0],
                [9.0, 0.0],
                [5.0, 0.0],
                [11.0, 0.0],
                [30.0, 0.0],
            ],
            &Device::Cpu,
        )
        .unwrap();
        let scores = vec![0.1, 0.9, 0.3, 0.8, 0.2, 0.95];
        (queries, pool, scores)
    }

    fn run(strategy: Strategy, num_query: usize, cap: Option<usize>) -> Vec<MinedPatch> {
        let (q, p, s) = inputs_fixture();
        let config = MiningConfig {
            strategy,
            num_query,
            max_mined: cap,
            ..MiningConfig::default()
        };
        mine(
            &config,
            MiningInputs {
                query_features: &q,
                pool_features: &p,
                pool_scores: &s,
                seed: 4,
            },
        )
        .unwrap()
    }

    fn indices(m: &[MinedPatch]) -> Vec<usize> {
        m.iter().map(|x| x.pool_index).collect()
    }

    #[test]
    fn knn_l2_takes_the_union_and_records_finders() {
        let mined = run(Strategy::KnnL2, 3, None);
        // Query 0 -> 0 (1), 1 (2), 3 (5); query 1 -> 2 (1), 4 (1), 3 (5): union {0,1,2,3,4}.
        assert_eq!(indices(&mined), vec![0, 1, 2, 3, 4]);
        let shared = &mined[3];
        assert_eq!(shared.found_by, vec![0, 1]);
        assert_eq!(shared.value, Some(5.0));
    }

    #[test]
    fn controls_match_the_knn_count() {
        let knn = run(Strategy::KnnL2, 3, None).len();
        let random = run(Strategy::Random, 3, None);
        assert_eq!(random.len(), knn);
        assert_eq!(random, run(Strategy::Random, 3, None), "seeded");
        let score = run(Strategy::Score, 3, None);
        // The five highest scores: 5 (0.95), 1 (0.9), 3 (0.8), 2 (0.3), 4 (0.2).
        assert_eq!(indices(&score), vec![1, 2, 3, 4, 5]);
        assert_eq!(run(Strategy::All, 3, None).len(), 6);
        assert!(run(Strategy::None, 3, None).is_empty());
    }

    #[test]
    fn cap_keeps_the_closest() {
        let mined = run(Strategy::KnnL2, 3, Some(3));
        // Distances: 0 -> 1, 1 -> 2, 2 -> 1, 3 -> 5, 4 -> 1; the three closest are 0, 2, 4.
        assert_eq!(indices(&mined), vec![0, 2, 4]);
    }

    #[test]
    fn no_queries_mine_nothing_but_all() {
        let (_, p, s) = inputs_fixture();
        let q = Tensor::zeros((0, 2), candle_core::DType::F32, &Device::Cpu).unwrap();
        for strategy in [
            Strategy::KnnL2,
            Strategy::KnnCosine,
            Strategy::Random,
            Strategy::Score,
        ] {
            let config = MiningConfig {
                strategy,
                ..MiningConfig::default()
            };
            let inputs = MiningInputs {
                query_features: &q,
                pool_features: &p,
                pool_scores: &s,
                seed: 0,
            };
            assert!(mine(&config, inputs).unwrap().is_empty(), "{strategy}");
        }
    }

    #[test]
    fn mismatched_dimensions_are_an_error() {
        let (_, p, s) = inputs_fixture();
        let q = Tensor::zeros((1, 3), candle_core::DType::F32, &Device::Cpu).unwrap();
        let inputs = MiningInputs {
            query_features: &q,
            pool_features: &p,
            pool_scores: &s,
            seed: 0,
        };
        let error = mine(&MiningConfig::default(), inputs)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("3 dimensions") && error.contains("pool features 2"),
            "{error}"
        );
    }

    #[test]
    fn capped_random_draws_the_capped_count_uniformly() {
        // Six pool patches, one query whose 4 nearest form the kNN count;
        // a cap of 2 must draw every one of the 15 pairs equally often (the
        // uncapped draw of 4 cut to its 2 lowest indices favours low ones).
        let query = Tensor::new(&[[0.0f32, 0.0]], &Device::Cpu).unwrap();
        let pool: Vec<f32> = (0..6).flat_map(|i| [i as f32, 0.0]).collect();
        let pool = Tensor::from_vec(pool, (6, 2), &Device::Cpu).unwrap();
        let scores = vec![0.5; 6];
        let config = MiningConfig {
            strategy: Strategy::Random,
            num_query: 4,
            max_mined: Some(2),
            ..MiningConfig::default()
        };
        let draws = 3000;
        let mut counts: BTreeMap<Vec<usize>, usize> = BTreeMap::new();
        for seed in 0..draws {
            let inputs = MiningInputs {
                query_features: &query,
                pool_features: &pool,
                pool_scores: &scores,
                seed,
            };
            let mined = mine(&config, inputs).unwrap();
            assert_eq!(mined.len(), 2);
            *counts.entry(indices(&mined)).or_default() += 1;
        }
        assert_eq!(counts.len(), 15, "every pair is drawn: {counts:?}");
        let expected = draws as f64 / 15.0;
        let chi_square: f64 = counts
            .values()
            .map(|&n| (n as f64 - expected).powi(2) / expected)
            .sum();
        // scipy.stats.chi2.ppf(0.999, 14): uniform draws exceed it once in 1000.
        let critical = 36.12327368039813;
        assert!(chi_square < critical, "chi-square {chi_square}: {counts:?}");
        // A cap above the kNN count draws the kNN count.
        let uncapped = MiningConfig {
            max_mined: Some(10),
            ..config
        };
        let inputs = MiningInputs {
            query_features: &query,
            pool_features: &pool,
            pool_scores: &scores,
            seed: 0,
        };
        assert_eq!(mine(&uncapped, inputs).unwrap().len(), 4);
    }

    #[test]
    fn invalid_settings_name_their_key() {
        assert_eq!(MiningConfig::default().validate(), Ok(()));
        type Spoil = fn(&mut MiningConfig);
        let cases: [(&str, Spoil); 3] = [
            ("mining.num_query", |c| c.num_query = 0),
            ("mining.fp_threshold", |c| c.fp_threshold = 1.5),
            ("mining.max_mined", |c| c.max_mined = Some(0)),
        ];
        for (key, spoil) in cases {
            let mut config = MiningConfig::default();
            spoil(&mut config);
            assert_eq!(config.validate().unwrap_err().key, key);
        }
    }
}
