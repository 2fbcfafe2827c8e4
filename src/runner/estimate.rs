//! How long running a plan takes: the images each remaining stage
//! processes, from the cells' settings and their split, turned into seconds
//! by speeds measured on this machine (see [`super::calibrate`]).
//!
//! A run prepares each dataset once, then runs its weak-model groups, then
//! writes the report. Per group, in seconds:
//!
//! ```text
//! data      patches x generation time     synthetic data whose stage is not cached
//!           + patches x decoding time     every run decodes its datasets once
//! training  epochs x (train x (1 / training speed + augmented batch assembly)
//!                     + valid x (1 / inference speed + batch assembly))
//!           + test x (1 / inference speed + batch assembly)      each weak and strong model not cached
//! query     (valid + pool) x (1 / inference speed + batch assembly)   each query not cached
//! report    REPORT_SECONDS_PER_CELL x cells
//! ```
//!
//! Speeds are images per second of whole Adam steps at the cell's training
//! batch and of inference passes, measured with the threads a job gets
//! (`threads / jobs`). With `--jobs N` the groups go to N workers in plan
//! order, each worker taking the next group when it finishes one (as the
//! runner does); data preparation comes first, since every job waits for it.
//!
//! A strong model trains on the training part plus the mined pool patches,
//! which are unknown until its weak model has run: once a query or a mining
//! is cached its counts are used; before that, [`ASSUMED_FP_SHARE`] of the
//! validation negatives are taken as false positives, and a k-NN union of
//! `F` queries of `k` patches each in a pool of `P` as covering what `F`
//! independent draws would: `P x (1 - (1 - k / P)^F)` patches (the same
//! count for `random` and `score`, which mine as many as k-NN would; the
//! whole pool for `all`; `max_mined` caps it).

use super::plan::{CellPlan, Plan};
use super::resolve::{resolve_cell, CellStages};
use super::store::{ArtifactStore, Resolution};
use crate::data::prepare::{split_dataset, SplitSpec};
use crate::data::source::synthetic_listing;
use crate::data::Dataset;
use crate::mining::Strategy;
use std::collections::{BTreeMap, BTreeSet};

/// Share of the validation negatives assumed to become false positives
/// before any weak model of the plan has run. On the default synthetic
/// world quick.toml's weak models flag 19-45% of them at threshold 0.1
/// (21-50 of about 110, synthetic seeds 0-2); a quarter, mid-range, as the
/// neighbourhoods of similar false positives overlap more than the
/// independent draws of the union formula assume. A weak model trained on
/// far fewer patches flags far more (subset.toml's 10% cells: 94-112), so
/// such plans run longer than estimated.
pub const ASSUMED_FP_SHARE: f64 = 0.25;

/// Seconds of `ablate report` (tables, figures, report files) per cell
/// (measured: 0.25 s for a 9-cell run of `quick.toml`, 3 seeds, on two
/// cores).
pub const REPORT_SECONDS_PER_CELL: f64 = 0.03;

/// What a model speed depends on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpeedKey {
    /// Model name.
    pub model: String,
    /// Input side in pixels.
    pub image_size: usize,
    /// Training batch size.
    pub batch_size: usize,
    /// Evaluation batch size.
    pub eval_batch_size: usize,
    /// Whether training batches are augmented.
    pub augment: bool,
    /// Device (`cpu`, `cuda:0`).
    pub device: String,
    /// Threads of the job.
    pub threads: usize,
}

impl std::fmt::Display for SpeedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} at {} px, batch {}, evaluation batch {}{}, {}, {} thread{}",
            self.model,
            self.image_size,
            self.batch_size,
            self.eval_batch_size,
            if self.augment {
                ""
            } else {
                ", no augmentation"
            },
            self.device,
            self.threads,
            if self.threads == 1 { "" } else { "s" }
        )
    }
}

/// Measured speeds of one [`SpeedKey`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ModelSpeed {
    /// Images per second of training steps (forward, backward, Adam).
    pub train_images_per_s: f64,
    /// Images per second of inference passes.
    pub inference_images_per_s: f64,
    /// Seconds per image of assembling a training batch (augmented unless
    /// the key says otherwise).
    pub augmented_batch_seconds: f64,
    /// Seconds per image of assembling a batch without augmentation.
    pub batch_seconds: f64,
}

/// What data preparation speeds depend on: the synthetic patch size (0 for
/// a dataset on disk) and the input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DataKey {
    /// Side of the generated patches (`data.synthetic.size`); 0 when the
    /// data is a folder and nothing is generated.
    pub synthetic_size: u32,
    /// Side the patches are decoded and resized to.
    pub image_size: u32,
}

/// Measured data preparation speeds of one [`DataKey`].
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DataSpeed {
    /// Seconds per generated and written synthetic patch.
    pub generate_seconds: f64,
    /// Seconds per patch read, decoded and resized.
    pub decode_seconds: f64,
}

/// Where an estimate's speeds come from.
pub trait Speeds {
    /// The speeds of a model configuration.
    fn model(&mut self, key: &SpeedKey) -> Result<ModelSpeed, String>;
    /// The data preparation speeds of a data configuration.
    fn data(&mut self, key: &DataKey) -> Result<DataSpeed, String>;
}

/// One training: the images it visits.
#[derive(Debug, Clone, PartialEq)]
struct Training {
    key: SpeedKey,
    epochs: usize,
    train: f64,
    valid: f64,
    test: f64,
}

/// One unit of remaining work.
#[derive(Debug, Clone, PartialEq)]
enum Work {
    /// Generate `patches` synthetic patches.
    Generate { key: DataKey, patches: f64 },
    /// Decode `patches` images.
    Decode { key: DataKey, patches: f64 },
    /// Train (and test) a model.
    Train(Training),
    /// Embed and score `images` (validation and pool) with a weak model.
    Query { key: SpeedKey, images: f64 },
}

/// The estimated wall time of a plan and its parts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Wall time in seconds.
    pub seconds: f64,
    /// Data generation and decoding, seconds.
    pub data: f64,
    /// Weak and strong trainings: their number and summed seconds.
    pub trainings: usize,
    /// Summed seconds of the trainings (over all jobs).
    pub training: f64,
    /// Summed seconds of the queries.
    pub query: f64,
    /// The report, seconds.
    pub report: f64,
    /// Jobs the groups were spread over.
    pub jobs: usize,
    /// Whether some strong model's training set size was assumed (see the
    /// module docs) rather than read from the cache.
    pub assumed_mining: bool,
}

/// Estimates the wall time of running `plan`'s `selected` cells (all with
/// `None`) with `jobs` jobs and `threads` threads in all; stages resolve in
/// the cache as for a run with `reuse_stale`.
pub fn estimate(
    plan: &Plan,
    selected: Option<&BTreeSet<usize>>,
    jobs: usize,
    threads: usize,
    reuse_stale: bool,
    speeds: &mut dyn Speeds,
) -> Result<Estimate, String> {
    let store = plan.store();
    let groups = plan.weak_groups(selected);
    let jobs = jobs.clamp(1, groups.len().max(1));
    let threads = (threads / jobs).max(1);
    let mut listings: BTreeMap<String, Dataset> = BTreeMap::new();
    let mut prepared_data: BTreeSet<String> = BTreeSet::new();
    let mut assumed_mining = false;
    let mut data_work = Vec::new();
    let mut group_work = Vec::new();
    for group in &groups {
        let first = &plan.cells[group[0]];
        if prepared_data.insert(first.keys.data.clone()) {
            let data = resolve_cell(&store, first, reuse_stale).data;
            let listing = listing(first, &store, data.as_ref())?;
            data_work.extend(data_preparation(first, data.as_ref(), &listing));
            listings.insert(first.keys.data.clone(), listing);
        }
        let listing = &listings[&first.keys.data];
        let mut work = Vec::new();
        let mut queries = BTreeSet::new();
        let mut strong = BTreeSet::new();
        for &index in group {
            let cell = &plan.cells[index];
            let stages = resolve_cell(&store, cell, reuse_stale);
            let sizes = SplitSizes::of(cell, listing)?;
            let key = speed_key(cell, threads);
            let training = |train: f64| Training {
                key: key.clone(),
                epochs: cell.config.training.epochs,
                train,
                valid: sizes.valid,
                test: sizes.test,
            };
            if index == group[0] && stages.weak.found().is_none() {
                work.push(Work::Train(training(sizes.train)));
            }
            if !cell.mines() || stages.complete() {
                continue;
            }
            let found =
                |stage: &Option<Resolution>| stage.as_ref().is_some_and(|s| s.found().is_some());
            let query_cached = found(&stages.query) || found(&stages.mining);
            if !query_cached && queries.insert(cell.keys.query.clone()) {
                work.push(Work::Query {
                    key: key.clone(),
                    images: sizes.valid + sizes.pool,
                });
            }
            if strong.insert(cell.keys.mining.clone()) {
                let (mined, assumed) = mined_patches(cell, &store, &stages, &sizes);
                assumed_mining |= assumed;
                if mined > 0.0 {
                    work.push(Work::Train(training(sizes.train + mined)));
                }
            }
        }
        group_work.push(work);
    }
    let mut estimate = Estimate {
        seconds: 0.0,
        data: 0.0,
        trainings: 0,
        training: 0.0,
        query: 0.0,
        report: REPORT_SECONDS_PER_CELL * selected.map_or(plan.cells.len(), |s| s.len()) as f64,
        jobs,
        assumed_mining,
    };
    for work in &data_work {
        estimate.data += seconds(work, speeds)?;
    }
    let mut workers = vec![0.0f64; jobs];
    for work in &group_work {
        let mut group_seconds = 0.0;
        for item in work {
            let s = seconds(item, speeds)?;
            match item {
                Work::Train(_) => {
                    estimate.trainings += 1;
                    estimate.training += s;
                }
                _ => estimate.query += s,
            }
            group_seconds += s;
        }
        let free = workers
            .iter_mut()
            .min_by(|a, b| a.total_cmp(b))
            .expect("at least one job");
        *free += group_seconds;
    }
    let makespan = workers.iter().copied().fold(0.0, f64::max);
    estimate.seconds = estimate.data + makespan + estimate.report;
    Ok(estimate)
}

/// Seconds of one unit of work.
fn seconds(work: &Work, speeds: &mut dyn Speeds) -> Result<f64, String> {
    Ok(match work {
        Work::Generate { key, patches } => patches * speeds.data(key)?.generate_seconds,
        Work::Decode { key, patches } => patches * speeds.data(key)?.decode_seconds,
        Work::Query { key, images } => {
            let speed = speeds.model(key)?;
            images * (1.0 / speed.inference_images_per_s + speed.batch_seconds)
        }
        Work::Train(t) => {
            let speed = speeds.model(&t.key)?;
            let train = 1.0 / speed.train_images_per_s + speed.augmented_batch_seconds;
            let infer = 1.0 / speed.inference_images_per_s + speed.batch_seconds;
            t.epochs as f64 * (t.train * train + t.valid * infer) + t.test * infer
        }
    })
}

/// The speed key of a cell run by a job of `threads` threads.
fn speed_key(cell: &CellPlan, threads: usize) -> SpeedKey {
    let c = &cell.config;
    SpeedKey {
        model: c.model.name.clone(),
        image_size: c.data.image_size as usize,
        batch_size: c.training.batch_size,
        eval_batch_size: c.training.eval_batch_size,
        augment: c.training.augment,
        device: c.device.clone(),
        threads,
    }
}

/// The dataset of a cell as listed on disk, or as its synthetic data (whose
/// stage resolves to `synthetic`) would be listed once generated.
fn listing(
    cell: &CellPlan,
    store: &ArtifactStore,
    synthetic: Option<&Resolution>,
) -> Result<Dataset, String> {
    let data = &cell.config.data;
    match (&data.path, synthetic) {
        (Some(path), _) => crate::data::layout::load_dataset(path).map_err(|e| {
            format!(
                "dataset '{}': {} (`ablate fetch dataset` downloads the public one)",
                path.display(),
                super::error::one_line(&e)
            )
        }),
        (None, stage) => {
            let own = || store.own("data", &cell.keys.data, &[]);
            let dir = store.dir(&stage.map_or_else(own, |s| s.target().clone()));
            synthetic_listing(&data.synthetic, &dir).map_err(|e| super::error::one_line(&e))
        }
    }
}

/// Generation (synthetic data whose stage is not available) and decoding of
/// a cell's dataset.
fn data_preparation(
    cell: &CellPlan,
    synthetic: Option<&Resolution>,
    listing: &Dataset,
) -> Vec<Work> {
    let data = &cell.config.data;
    let patches = (listing.hard.len() + listing.pool.len()) as f64;
    let generated = data.path.is_some() || synthetic.is_some_and(|s| s.found().is_some());
    let key = DataKey {
        synthetic_size: if generated { 0 } else { data.synthetic.size },
        image_size: data.image_size,
    };
    let mut work = Vec::new();
    if !generated {
        work.push(Work::Generate { key, patches });
    }
    work.push(Work::Decode { key, patches });
    work
}

/// The sizes of a cell's split.
#[derive(Debug, Clone, Copy, PartialEq)]
struct SplitSizes {
    train: f64,
    valid: f64,
    valid_negatives: f64,
    test: f64,
    pool: f64,
}

impl SplitSizes {
    fn of(cell: &CellPlan, listing: &Dataset) -> Result<Self, String> {
        let data = &cell.config.data;
        let mut split: SplitSpec = data.split.clone();
        if split.folds.is_some() {
            split.fold = cell.config.replicate.fold;
        }
        let subsample = data.subsample()?;
        let parts = split_dataset(listing, &split, &subsample).map_err(|e| e.to_string())?;
        let negatives = parts
            .valid
            .iter()
            .filter(|&&i| listing.hard[i].label != crate::data::Label::Positive)
            .count();
        Ok(Self {
            train: parts.train.len() as f64,
            valid: parts.valid.len() as f64,
            valid_negatives: negatives as f64,
            test: parts.test.len() as f64,
            pool: listing.pool.len() as f64,
        })
    }
}

/// Pool patches a cell's strong model adds to the training part, and
/// whether that number was assumed (see the module docs).
fn mined_patches(
    cell: &CellPlan,
    store: &ArtifactStore,
    stages: &CellStages,
    sizes: &SplitSizes,
) -> (f64, bool) {
    if let Some(mined) = &stages.mined {
        return (mined.len() as f64, false);
    }
    let known_fps = stages
        .query
        .as_ref()
        .and_then(Resolution::found)
        .and_then(|query| {
            let record: serde_json::Value = store.read_json(query, "query.json").ok()?;
            record
                .get("false_positives")?
                .as_array()
                .map(|a| a.len() as f64)
        });
    let fps = known_fps.unwrap_or(ASSUMED_FP_SHARE * sizes.valid_negatives);
    let mining = &cell.config.mining;
    (
        expected_mined(
            mining.strategy,
            mining.num_query,
            mining.max_mined,
            fps,
            sizes.pool,
        ),
        known_fps.is_none(),
    )
}

/// Expected mined patches of `fps` false positives (see the module docs).
fn expected_mined(
    strategy: Strategy,
    num_query: usize,
    max_mined: Option<usize>,
    fps: f64,
    pool: f64,
) -> f64 {
    let mined = match strategy {
        Strategy::None => 0.0,
        Strategy::All => pool,
        Strategy::KnnL2 | Strategy::KnnCosine | Strategy::Random | Strategy::Score => {
            if pool == 0.0 {
                0.0
            } else {
                let k = (num_query as f64).min(pool);
                pool * (1.0 - (1.0 - k / pool).powf(fps))
            }
        }
    };
    max_mined.map_or(mined, |cap| mined.min(cap as f64)).round()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::store::StageRef;
    use std::path::Path;

    /// Fixed speeds: training 100 images/s, inference 400, batch assembly
    /// 1 ms (augmented) and 0.5 ms per image, generation 2 ms and decoding
    /// 1 ms per patch; counts the distinct keys asked for.
    #[derive(Default)]
    struct Fixed {
        models: BTreeSet<SpeedKey>,
    }

    impl Speeds for Fixed {
        fn model(&mut self, key: &SpeedKey) -> Result<ModelSpeed, String> {
            self.models.insert(key.clone());
            Ok(ModelSpeed {
                train_images_per_s: 100.0,
                inference_images_per_s: 400.0,
                augmented_batch_seconds: 0.001,
                batch_seconds: 0.0005,
            })
        }

        fn data(&mut self, _: &DataKey) -> Result<DataSpeed, String> {
            Ok(DataSpeed {
                generate_seconds: 0.002,
                decode_seconds: 0.001,
            })
        }
    }

    /// Marks this build's instance of a stage finished.
    fn finish(store: &ArtifactStore, stage: &str, key: &str, inputs: &[&StageRef]) -> StageRef {
        let own = store.own(stage, key, inputs);
        store.finish(&own, inputs).unwrap();
        own
    }

    fn plan(text: &str, output: &Path) -> Plan {
        let experiment =
            crate::experiment::load::parse_experiment(Path::new("t.toml"), text).unwrap();
        Plan::new(experiment, Some(output.to_path_buf()))
    }

    const SMALL: &str = r#"
        name = "t"
        [data]
        image_size = 32
        [data.synthetic]
        hard_patches = 100
        hard_slides = 10
        pool_patches = 50
        pool_slides = 5
        [training]
        epochs = 2
        [mining]
        num_query = 4
        [matrix]
        "mining.strategy" = ["none", "knn-l2", "all"]
        seeds = 2
    "#;

    #[test]
    fn the_estimate_counts_every_stage_from_the_split() {
        let dir = tempfile::tempdir().unwrap();
        let plan = plan(SMALL, dir.path());
        let first = &plan.cells[0];
        let listing = listing(first, &plan.store(), None).unwrap();
        let sizes = SplitSizes::of(first, &listing).unwrap();
        let (train, valid, test) = (sizes.train, sizes.valid, sizes.test);
        assert_eq!(train + valid + test, 100.0);
        let mut speeds = Fixed::default();
        let e = estimate(&plan, None, 1, 2, false, &mut speeds).unwrap();
        // Generation and decoding of 150 patches, once.
        assert!((e.data - 150.0 * 0.003).abs() < 1e-9, "{}", e.data);
        // Per seed: a weak model, a query, a k-NN strong model and an `all`
        // strong model (the whole pool of 50).
        let knn = expected_mined(
            Strategy::KnnL2,
            4,
            None,
            ASSUMED_FP_SHARE * sizes.valid_negatives,
            50.0,
        );
        let training =
            |train: f64| 2.0 * (train * (0.01 + 0.001) + valid * (0.0025 + 0.0005)) + test * 0.003;
        let per_seed = training(train) + training(train + knn) + training(train + 50.0);
        assert_eq!(e.trainings, 6);
        assert!((e.training - 2.0 * per_seed).abs() < 1e-9);
        assert!((e.query - 2.0 * (valid + 50.0) * 0.003).abs() < 1e-9);
        assert!(e.assumed_mining);
        let report = 6.0 * REPORT_SECONDS_PER_CELL;
        assert!((e.seconds - (e.data + e.training + e.query + report)).abs() < 1e-9);
        // One speed key: one model, one job of two threads.
        assert_eq!(speeds.models.len(), 1);
        assert_eq!(speeds.models.first().unwrap().threads, 2);
    }

    #[test]
    fn jobs_split_the_threads_and_run_groups_side_by_side() {
        let dir = tempfile::tempdir().unwrap();
        let plan = plan(SMALL, dir.path());
        let one = estimate(&plan, None, 1, 2, false, &mut Fixed::default()).unwrap();
        let mut speeds = Fixed::default();
        let two = estimate(&plan, None, 2, 2, false, &mut speeds).unwrap();
        assert_eq!(speeds.models.first().unwrap().threads, 1);
        // Two equal groups on two workers: half the group time (the fixed
        // speeds do not depend on threads), the same data and report.
        let groups = one.seconds - one.data - one.report;
        assert!((two.seconds - (two.data + groups / 2.0 + two.report)).abs() < 1e-9);
        // More jobs than groups: still two.
        assert_eq!(
            estimate(&plan, None, 8, 8, false, &mut Fixed::default())
                .unwrap()
                .jobs,
            2
        );
    }

    #[test]
    fn cached_stages_cost_nothing_but_decoding() {
        let dir = tempfile::tempdir().unwrap();
        let plan = plan(SMALL, dir.path());
        let store = plan.store();
        let data = finish(&store, "data", &plan.cells[0].keys.data, &[]);
        for cell in &plan.cells {
            let weak = finish(&store, "weak", &cell.keys.weak, &[&data]);
            let query = store.own("query", &cell.keys.query, &[&weak]);
            let mining = store.own("mining", &cell.keys.mining, &[&query]);
            store
                .write_json(
                    &mining,
                    "mined.json",
                    &serde_json::json!({ "mined": [], "false_positives": [] }),
                )
                .unwrap();
            store.finish(&mining, &[&query]).unwrap();
        }
        let e = estimate(&plan, None, 1, 2, false, &mut Fixed::default()).unwrap();
        assert_eq!((e.trainings, e.training, e.query), (0, 0.0, 0.0));
        assert!(
            (e.data - 150.0 * 0.001).abs() < 1e-9,
            "only decoding: {}",
            e.data
        );
        assert!(!e.assumed_mining);
    }

    #[test]
    fn known_false_positives_replace_the_assumption() {
        let dir = tempfile::tempdir().unwrap();
        let plan = plan(SMALL, dir.path());
        let store = plan.store();
        let cell = plan.cells.iter().find(|c| c.mines()).unwrap();
        let data = store.own("data", &cell.keys.data, &[]);
        let weak = store.own("weak", &cell.keys.weak, &[&data]);
        let query = store.own("query", &cell.keys.query, &[&weak]);
        let fps: Vec<u32> = (0..7).collect();
        store
            .write_json(
                &query,
                "query.json",
                &serde_json::json!({ "false_positives": fps, "pool_scores": [] }),
            )
            .unwrap();
        let stages = resolve_cell(&store, cell, false);
        let sizes = SplitSizes::of(cell, &listing(cell, &store, None).unwrap()).unwrap();
        let assumed = mined_patches(cell, &store, &stages, &sizes);
        assert!(assumed.1, "an unfinished query is not read");
        store.finish(&query, &[&weak]).unwrap();
        let stages = resolve_cell(&store, cell, false);
        let expected = expected_mined(cell.config.mining.strategy, 4, None, 7.0, 50.0);
        assert_eq!(
            mined_patches(cell, &store, &stages, &sizes),
            (expected, false)
        );
    }

    #[test]
    fn expected_mined_patches() {
        // 10 queries of 5 in a pool of 100: 100 x (1 - 0.95^10) = 40.1.
        assert_eq!(expected_mined(Strategy::KnnL2, 5, None, 10.0, 100.0), 40.0);
        assert_eq!(
            expected_mined(Strategy::Random, 5, Some(30), 10.0, 100.0),
            30.0
        );
        assert_eq!(expected_mined(Strategy::All, 5, None, 10.0, 100.0), 100.0);
        assert_eq!(expected_mined(Strategy::None, 5, None, 10.0, 100.0), 0.0);
        // No false positives, no pool: nothing.
        assert_eq!(expected_mined(Strategy::KnnL2, 5, None, 0.0, 100.0), 0.0);
        assert_eq!(expected_mined(Strategy::Score, 5, None, 3.0, 0.0), 0.0);
        // More neighbours than patches: the whole pool.
        assert_eq!(
            expected_mined(Strategy::KnnCosine, 50, None, 2.0, 20.0),
            20.0
        );
    }
}
