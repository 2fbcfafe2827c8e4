//! Running a plan: stage by stage, reusing finished artifacts, one weak
//! model group per job, failures recorded per cell.
//!
//! A run may be limited to some stages ([`Stages`]): the stages a weak-model
//! group shares, or each cell's own, or none (tables from the cache only).
//! Such partial runs are how cluster array tasks split an experiment; every
//! stage is computed under a [`StageLock`], so runs that share an output
//! folder never compute one artifact twice at once.

use super::keys::training_seed;
use super::lock::StageLock;
use super::plan::{CellPlan, Plan};
use super::store::{ArtifactStore, StoreError};
use crate::data::prepare::{decode, split_decoded, DecodedData, PreparedData};
use crate::data::source::ensure_synthetic;
use crate::mining::MinedPatch;
use crate::model::init::build_seeded;
use crate::model::resnet::{ResNet, ResNetConfig};
use crate::pipeline::fp_query::FalsePositive;
use crate::pipeline::{
    mine_pool, mining_precision, query, strong_training_set, train_and_test, ModelOutcome, Query,
    Stage, TrainSpec,
};
use crate::train::checkpoint::save_checkpoint;
use crate::train::{EpochRecord, TrainEvent};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// How to run a plan.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Weak-model groups run at the same time.
    pub jobs: usize,
    /// Threads in all; each job gets `threads / jobs`.
    pub threads: usize,
    /// Stop at the first failure.
    pub fail_fast: bool,
    /// Run only these cells (0-based); `None` for all.
    pub cells: Option<BTreeSet<usize>>,
    /// Which stages this run computes; the others must be in the cache.
    pub stages: Stages,
}

/// Which stages a run computes; the stages it does not compute must already
/// be in the cache (a cell that lacks one fails with a message saying so).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Stages {
    /// Every stage: a normal run.
    #[default]
    All,
    /// The stages a weak-model group shares: dataset, weak model and
    /// false-positive queries. Cells that need nothing more (strategy
    /// `none`) finish; mining cells are left to a `cell` run.
    Shared,
    /// Each cell's own stages, mining and strong model; the shared stages
    /// come from the cache.
    Cell,
    /// None: every stage comes from the cache (to assemble the tables).
    Cached,
}

impl Stages {
    /// Whether the run may train weak models and run queries.
    fn computes_shared(self) -> bool {
        matches!(self, Stages::All | Stages::Shared)
    }

    /// Whether the run may mine and train strong models.
    fn computes_cell(self) -> bool {
        matches!(self, Stages::All | Stages::Cell)
    }

    /// Whether the run writes the experiment-wide tables (`results.csv`,
    /// `runs.csv`, `manifest.json`) and so holds the output folder's lock.
    /// Partial runs write neither, so several can share one folder.
    pub fn writes_tables(self) -> bool {
        matches!(self, Stages::All | Stages::Cached)
    }

    /// The value's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Stages::All => "all",
            Stages::Shared => "shared",
            Stages::Cell => "cell",
            Stages::Cached => "cached",
        }
    }
}

/// Progress notifications of a run.
#[derive(Debug, Clone)]
pub enum RunEvent {
    /// A stage starts (or is found in the cache).
    Stage {
        /// Cell index.
        cell: usize,
        /// Stage name.
        stage: &'static str,
        /// Whether its artifact was reused.
        cached: bool,
    },
    /// A training event of a stage.
    Train {
        /// Cell index.
        cell: usize,
        /// `weak` or `strong`.
        stage: &'static str,
        /// The event.
        event: TrainEvent,
    },
    /// A cell finished (successfully or not).
    CellDone {
        /// Cell index.
        cell: usize,
        /// The error, if it failed.
        error: Option<String>,
    },
}

/// A model's stored results.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelRecord {
    /// LI probability of each test patch (in the split's test order).
    pub test_scores: Vec<f64>,
    /// Mean test cross-entropy.
    #[serde(with = "crate::io::nan_as_null")]
    pub test_loss: f64,
    /// Per-epoch history.
    pub history: Vec<EpochRecord>,
    /// Epoch whose weights were kept.
    pub best_epoch: usize,
    /// Training patches (mined included).
    pub train_size: usize,
    /// Wall time of the training in seconds.
    pub seconds: f64,
}

impl ModelRecord {
    /// The stored form of a trained model's results, with its training time.
    fn new(outcome: ModelOutcome, seconds: f64) -> Self {
        Self {
            test_scores: outcome.test.scores,
            test_loss: outcome.test.loss,
            history: outcome.history,
            best_epoch: outcome.best_epoch,
            train_size: outcome.train_size,
            seconds,
        }
    }
}

/// The stored false-positive query (features are in `query.safetensors`).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct QueryRecord {
    false_positives: Vec<FalsePositive>,
    pool_scores: Vec<f64>,
}

/// Everything the results table needs about one finished cell.
#[derive(Debug, Clone)]
pub struct CellResult {
    /// The weak model.
    pub weak: ModelRecord,
    /// The strong model (the weak one when nothing was mined).
    pub strong: ModelRecord,
    /// Whether a strong model was trained.
    pub strong_trained: bool,
    /// False positives on validation (0 for `none`).
    pub false_positives: usize,
    /// The mined pool patches.
    pub mined: Vec<MinedPatch>,
    /// Share of mimics among the mined (synthetic data).
    pub mimic_fraction: Option<f64>,
    /// Test labels (true = positive), in test order.
    pub test_labels: Vec<bool>,
    /// Test patch paths, in test order.
    pub test_paths: Vec<String>,
    /// Pool patch paths of the mined patches.
    pub mined_paths: Vec<String>,
    /// Stages whose artifacts were reused.
    pub cache_hits: Vec<&'static str>,
}

/// The outcome of each cell of the plan (`None` when not run).
pub type CellOutcomes = Vec<Option<Result<CellResult, String>>>;

/// Runs the plan's cells; returns one outcome per cell.
pub fn execute(
    plan: &Plan,
    options: &RunOptions,
    on_event: &(dyn Fn(RunEvent) + Sync),
) -> CellOutcomes {
    let store = plan.store();
    let groups = plan.weak_groups(options.cells.as_ref());
    let outcomes: Mutex<CellOutcomes> = Mutex::new(vec![None; plan.cells.len()]);
    let data_cache = DataCache::default();
    let next = Mutex::new(0usize);
    let stop = AtomicBool::new(false);
    let jobs = options.jobs.clamp(1, groups.len().max(1));
    let threads_per_job = (options.threads / jobs).max(1);
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads_per_job)
                    .build();
                let pool = match pool {
                    Ok(pool) => pool,
                    Err(e) => {
                        eprintln!("could not start a job's threads: {e}");
                        return;
                    }
                };
                loop {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let group = {
                        let mut next = next.lock().expect("queue lock");
                        let Some(group) = groups.get(*next) else {
                            return;
                        };
                        *next += 1;
                        group.clone()
                    };
                    let context = GroupContext {
                        plan,
                        store: &store,
                        data_cache: &data_cache,
                        stages: options.stages,
                        on_event,
                    };
                    let results = pool.install(|| run_group(&context, &group));
                    let mut all = outcomes.lock().expect("outcomes lock");
                    for (cell, result) in group.iter().zip(results) {
                        // Cells left to a later run (`--stages shared`) have no outcome.
                        let Some(result) = result else { continue };
                        let error = result.as_ref().err().cloned();
                        if error.is_some() && options.fail_fast {
                            stop.store(true, Ordering::SeqCst);
                        }
                        on_event(RunEvent::CellDone { cell: *cell, error });
                        all[*cell] = Some(result);
                    }
                }
            });
        }
    });
    outcomes.into_inner().expect("outcomes lock")
}

/// Decoded datasets shared between the groups of a run: the images by data
/// key (one decoded copy however many splits, folds and subsamples use
/// them), the splits by split key.
#[derive(Default)]
struct DataCache {
    loaded: Mutex<LoadedData>,
}

/// The maps of a [`DataCache`].
#[derive(Default)]
struct LoadedData {
    decoded: HashMap<String, DecodedData>,
    prepared: HashMap<String, Arc<PreparedData>>,
}

impl DataCache {
    fn get(
        &self,
        cell: &CellPlan,
        store: &ArtifactStore,
        stages: Stages,
    ) -> Result<Arc<PreparedData>, String> {
        let mut loaded = self
            .loaded
            .lock()
            .map_err(|_| "data cache poisoned".to_string())?;
        if let Some(data) = loaded.prepared.get(&cell.keys.split) {
            return Ok(data.clone());
        }
        let config = &cell.config;
        let root: PathBuf = match &config.data.path {
            Some(path) => path.clone(),
            None => {
                let dir = store.dir("data", &cell.keys.data);
                // Runs sharing the output folder must not generate it at once.
                let _lock = lock_stage(&dir, stages)?;
                ensure_synthetic(&dir, &config.data.synthetic).map_err(|e| e.to_string())?;
                dir
            }
        };
        let mut split = config.data.split.clone();
        if split.folds.is_some() {
            split.fold = config.replicate.fold;
        }
        let subsample = config.data.subsample()?;
        let decoded = match loaded.decoded.get(&cell.keys.data) {
            Some(decoded) => decoded.clone(),
            None => {
                let decoded = decode(&root, config.data.image_size)
                    .map_err(|e| format!("dataset '{}': {e}", root.display()))?;
                loaded
                    .decoded
                    .insert(cell.keys.data.clone(), decoded.clone());
                decoded
            }
        };
        let data = split_decoded(&decoded, &split, &subsample)
            .map_err(|e| format!("dataset '{}': {e}", root.display()))?;
        let data = Arc::new(data);
        loaded
            .prepared
            .insert(cell.keys.split.clone(), data.clone());
        Ok(data)
    }
}

/// What every group of a run shares.
struct GroupContext<'a> {
    plan: &'a Plan,
    store: &'a ArtifactStore,
    data_cache: &'a DataCache,
    stages: Stages,
    on_event: &'a (dyn Fn(RunEvent) + Sync),
}

/// Runs the cells of one weak-model group; one result per cell, `None` for
/// a cell whose own stages are left to a later run.
fn run_group(
    context: &GroupContext<'_>,
    group: &[usize],
) -> Vec<Option<Result<CellResult, String>>> {
    let GroupContext {
        plan,
        store,
        data_cache,
        stages,
        on_event,
    } = *context;
    let first = &plan.cells[group[0]];
    let shared = (|| {
        let data = data_cache.get(first, store, stages)?;
        let model_config =
            ResNetConfig::from_name(&first.config.model.name, 2).map_err(|e| e.to_string())?;
        let device = crate::device::open_device(&first.config.device).map_err(|e| e.to_string())?;
        let mut weak_stage =
            WeakStage::new(first, store, data.clone(), model_config, stages, device);
        weak_stage.record(on_event)?;
        Ok::<_, String>((data, weak_stage))
    })();
    let (data, mut weak_stage) = match shared {
        Ok(shared) => shared,
        Err(error) => return group.iter().map(|_| Some(Err(error.clone()))).collect(),
    };
    group
        .iter()
        .map(|&index| {
            let cell = &plan.cells[index];
            if stages == Stages::Shared && cell.mines() {
                // Only the query, which the group's cells share; mining and
                // the strong model are the cell's own.
                if !store.is_done("mining", &cell.keys.mining) {
                    if let Err(error) = weak_stage.query(cell, on_event) {
                        return Some(Err(error));
                    }
                }
                return None;
            }
            Some(finish_cell(cell, context, &data, &mut weak_stage))
        })
        .collect()
}

/// Runs one cell's remaining stages and writes its embedding file.
fn finish_cell(
    cell: &CellPlan,
    context: &GroupContext<'_>,
    data: &Arc<PreparedData>,
    weak_stage: &mut WeakStage<'_>,
) -> Result<CellResult, String> {
    let GroupContext {
        plan,
        store,
        stages,
        on_event,
        ..
    } = *context;
    let result =
        run_cell(cell, store, data, weak_stage, stages, on_event).map_err(|e| e.to_string())?;
    if cell.mines() {
        let query = load_query(store, &cell.keys.query)?;
        let path = plan
            .output
            .join("cells")
            .join(cell.index.to_string())
            .join("embedding.csv");
        write_embedding(&path, data, &query, &result.mined)?;
    }
    Ok(result)
}

/// Checks that a run limited to `stages` may compute stage `stage` (its
/// artifact `key` is not in the cache).
fn check_computable(
    store: &ArtifactStore,
    stage: &str,
    key: &str,
    stages: Stages,
) -> Result<(), String> {
    let shared = matches!(stage, "weak" | "query");
    let allowed = if shared {
        stages.computes_shared()
    } else {
        stages.computes_cell()
    };
    if allowed {
        return Ok(());
    }
    let needed = if shared {
        "the run of its shared stages (`--stages shared`) did not finish"
    } else {
        "the run of its own stages (`--stages cell`) did not finish"
    };
    Err(format!(
        "{stage} stage '{}' is not in the cache: {needed}, and this run (`--stages {}`) does not compute it; see `ablate status`, or run `ablate run` without `--stages`",
        store.dir(stage, key).display(),
        stages.name()
    ))
}

/// Waits for the lock of a stage folder. On a filesystem without file
/// locks, a run that holds the whole output folder goes on without it;
/// partial runs, which share the folder, cannot.
fn lock_stage(dir: &std::path::Path, stages: Stages) -> Result<Option<StageLock>, String> {
    match StageLock::acquire(dir) {
        Ok(lock) => Ok(Some(lock)),
        Err(error) if error.is_unsupported() && stages.writes_tables() => Ok(None),
        Err(error) => Err(error.to_string()),
    }
}

/// Prepares computing stage instance (`stage`, `key`), found not done:
/// checks the run may compute it and waits for its lock. `None` when
/// another run finished it while this one waited (read it from the cache).
fn claim_stage(
    store: &ArtifactStore,
    stage: &str,
    key: &str,
    stages: Stages,
) -> Result<Option<Option<StageLock>>, String> {
    check_computable(store, stage, key, stages)?;
    let lock = lock_stage(&store.dir(stage, key), stages)?;
    if store.is_done(stage, key) {
        return Ok(None);
    }
    Ok(Some(lock))
}

/// Writes the pool and false-positive features of a mining cell with each
/// patch's role (`pool`, `mined`, `fp`) and true kind, for the report's projection.
fn write_embedding(
    path: &std::path::Path,
    data: &PreparedData,
    query: &Query,
    mined: &[MinedPatch],
) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("could not write '{}': {e}", path.display());
    let pool: Vec<Vec<f32>> = query.pool_features.to_vec2().map_err(|e| fail(&e))?;
    let fps: Vec<Vec<f32>> = query.fp_features.to_vec2().map_err(|e| fail(&e))?;
    let dims = pool.first().map_or(0, Vec::len);
    let mined: BTreeSet<usize> = mined.iter().map(|m| m.pool_index).collect();
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["path".to_string(), "kind".into(), "role".into()];
    header.extend((0..dims).map(|d| format!("x{d}")));
    writer.write_record(&header).map_err(|e| fail(&e))?;
    let mut write_row = |patch: &crate::data::Patch, role: &str, features: &[f32]| {
        let mut row = vec![
            path_string(&patch.path),
            patch.kind.map_or(String::new(), |k| k.name().to_string()),
            role.to_string(),
        ];
        row.extend(features.iter().map(|v| v.to_string()));
        writer.write_record(&row)
    };
    for (j, features) in pool.iter().enumerate() {
        let role = if mined.contains(&j) { "mined" } else { "pool" };
        write_row(&data.dataset.pool[j], role, features).map_err(|e| fail(&e))?;
    }
    for (fp, features) in query.false_positives.iter().zip(&fps) {
        write_row(&data.dataset.hard[fp.hard_index], "fp", features).map_err(|e| fail(&e))?;
    }
    let bytes = writer.into_inner().map_err(|e| fail(&e.to_string()))?;
    crate::io::write_atomic(path, &bytes).map_err(|e| fail(&e))
}

/// The weak model of a group: its record, and the network when needed.
struct WeakStage<'a> {
    cell: &'a CellPlan,
    store: &'a ArtifactStore,
    data: Arc<PreparedData>,
    model_config: ResNetConfig,
    record: Option<ModelRecord>,
    cached: bool,
    model: Option<ResNet>,
    queries: HashMap<String, Arc<Query>>,
    stages: Stages,
    device: Device,
}

impl<'a> WeakStage<'a> {
    fn new(
        cell: &'a CellPlan,
        store: &'a ArtifactStore,
        data: Arc<PreparedData>,
        model_config: ResNetConfig,
        stages: Stages,
        device: Device,
    ) -> Self {
        Self {
            cell,
            store,
            data,
            model_config,
            record: None,
            cached: false,
            model: None,
            queries: HashMap::new(),
            stages,
            device,
        }
    }

    /// The weak model's record, training it if it is not in the cache.
    fn record(&mut self, on_event: &(dyn Fn(RunEvent) + Sync)) -> Result<ModelRecord, String> {
        if let Some(record) = &self.record {
            return Ok(record.clone());
        }
        let key = &self.cell.keys.weak;
        let cell = self.cell.index;
        let lock = if self.store.is_done("weak", key) {
            None
        } else {
            claim_stage(self.store, "weak", key, self.stages)?
        };
        let Some(_lock) = lock else {
            on_event(RunEvent::Stage {
                cell,
                stage: "weak",
                cached: true,
            });
            self.cached = true;
            let record: ModelRecord = self
                .store
                .read_json("weak", key, "model.json")
                .map_err(|e| e.to_string())?;
            self.record = Some(record.clone());
            return Ok(record);
        };
        on_event(RunEvent::Stage {
            cell,
            stage: "weak",
            cached: false,
        });
        let started = Instant::now();
        let config = &self.cell.config;
        let spec = TrainSpec {
            model: &self.model_config,
            pretrained: config.model.pretrained.as_deref(),
            training: &config.training,
            seed: training_seed(config),
            device: &self.device,
        };
        let (model, varmap, outcome) = train_and_test(
            Stage::Weak,
            spec,
            &self.data,
            &self.data.split.train,
            &mut |event| {
                on_event(RunEvent::Train {
                    cell,
                    stage: "weak",
                    event,
                })
            },
        )
        .map_err(|e| e.to_string())?;
        let record = ModelRecord::new(outcome, started.elapsed().as_secs_f64());
        let dir = self.store.dir("weak", key);
        save_checkpoint(&varmap, &dir.join("model.safetensors")).map_err(|e| e.to_string())?;
        self.store
            .write_json("weak", key, "model.json", &record)
            .map_err(|e| e.to_string())?;
        self.store
            .mark_done("weak", key)
            .map_err(|e| e.to_string())?;
        self.model = Some(model);
        self.record = Some(record.clone());
        Ok(record)
    }

    /// The weak network (loaded from its checkpoint when it came from the cache).
    fn model(&mut self) -> Result<&ResNet, String> {
        if self.model.is_none() {
            let (model, mut varmap) =
                build_seeded(&self.model_config, 0, &self.device).map_err(|e| e.to_string())?;
            let path = self
                .store
                .dir("weak", &self.cell.keys.weak)
                .join("model.safetensors");
            varmap
                .load(&path)
                .map_err(|e| format!("could not load '{}': {e}", path.display()))?;
            self.model = Some(model);
        }
        Ok(self.model.as_ref().expect("set above"))
    }

    /// The false-positive query at a cell's threshold (from the cache when done).
    fn query(
        &mut self,
        cell: &CellPlan,
        on_event: &(dyn Fn(RunEvent) + Sync),
    ) -> Result<(Arc<Query>, bool), String> {
        let key = cell.keys.query.clone();
        if let Some(query) = self.queries.get(&key) {
            return Ok((query.clone(), true));
        }
        let lock = if self.store.is_done("query", &key) {
            None
        } else {
            claim_stage(self.store, "query", &key, self.stages)?
        };
        let cached = lock.is_none();
        on_event(RunEvent::Stage {
            cell: cell.index,
            stage: "query",
            cached,
        });
        let query = if cached {
            load_query(self.store, &key)?
        } else {
            let training = cell.config.training.clone();
            let threshold = cell.config.mining.fp_threshold;
            let data = self.data.clone();
            let device = self.device.clone();
            let query = query(self.model()?, &data, &training, threshold, &device)
                .map_err(|e| e.to_string())?;
            save_query(self.store, &key, &query)?;
            drop(lock);
            query
        };
        let query = Arc::new(query);
        self.queries.insert(key, query.clone());
        Ok((query, cached))
    }
}

fn save_query(store: &ArtifactStore, key: &str, query: &Query) -> Result<(), String> {
    let tensors: HashMap<String, Tensor> = [
        ("fp_features".to_string(), query.fp_features.clone()),
        ("pool_features".to_string(), query.pool_features.clone()),
    ]
    .into();
    let path = store.dir("query", key).join("features.safetensors");
    crate::io::write_atomic_with(&path, |tmp| {
        candle_core::safetensors::save(&tensors, tmp).map_err(std::io::Error::other)
    })
    .map_err(|e| format!("could not write '{}': {e}", path.display()))?;
    let record = QueryRecord {
        false_positives: query.false_positives.clone(),
        pool_scores: query.pool_scores.clone(),
    };
    store
        .write_json("query", key, "query.json", &record)
        .map_err(|e| e.to_string())?;
    store.mark_done("query", key).map_err(|e| e.to_string())
}

fn load_query(store: &ArtifactStore, key: &str) -> Result<Query, String> {
    let path = store.dir("query", key).join("features.safetensors");
    let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu)
        .map_err(|e| format!("could not read '{}': {e}", path.display()))?;
    let mut take = |name: &str| {
        tensors
            .remove(name)
            .ok_or_else(|| format!("'{}' lacks {name}", path.display()))
    };
    let fp_features = take("fp_features")?;
    let pool_features = take("pool_features")?;
    let record: QueryRecord = store
        .read_json("query", key, "query.json")
        .map_err(|e| e.to_string())?;
    Ok(Query {
        false_positives: record.false_positives,
        fp_features,
        pool_features,
        pool_scores: record.pool_scores,
    })
}

/// Runs (or reuses) the query, mining and strong stages of one cell.
fn run_cell(
    cell: &CellPlan,
    store: &ArtifactStore,
    data: &PreparedData,
    weak_stage: &mut WeakStage<'_>,
    stages: Stages,
    on_event: &(dyn Fn(RunEvent) + Sync),
) -> Result<CellResult, CellError> {
    let weak = weak_stage.record(on_event)?;
    let mut cache_hits = Vec::new();
    // The weak model is reused unless this is the cell that trained it.
    if weak_stage.cached || cell.index != weak_stage.cell.index {
        cache_hits.push("weak");
    }
    let (mined, false_positives) = if cell.mines() {
        let key = &cell.keys.mining;
        let lock = if store.is_done("mining", key) {
            None
        } else {
            claim_stage(store, "mining", key, stages)?
        };
        if let Some(_lock) = lock {
            let (query, cached) = weak_stage.query(cell, on_event)?;
            if cached {
                cache_hits.push("query");
            }
            on_event(RunEvent::Stage {
                cell: cell.index,
                stage: "mining",
                cached: false,
            });
            let mined = mine_pool(&query, &cell.config.mining, training_seed(&cell.config))
                .map_err(|e| e.to_string())?;
            let record = MiningRecord {
                mined,
                false_positives: query.false_positives.len(),
            };
            store.write_json("mining", key, "mined.json", &record)?;
            store.mark_done("mining", key)?;
            (record.mined, record.false_positives)
        } else {
            on_event(RunEvent::Stage {
                cell: cell.index,
                stage: "mining",
                cached: true,
            });
            cache_hits.push("mining");
            let stored: MiningRecord = store.read_json("mining", key, "mined.json")?;
            (stored.mined, stored.false_positives)
        }
    } else {
        (Vec::new(), 0)
    };
    let (strong, strong_trained) = if mined.is_empty() {
        (weak.clone(), false)
    } else {
        let pool_indices: Vec<usize> = mined.iter().map(|m| m.pool_index).collect();
        let key = cell.keys.strong(&pool_indices);
        let lock = if store.is_done("strong", &key) {
            None
        } else {
            claim_stage(store, "strong", &key, stages)?
        };
        if lock.is_none() {
            on_event(RunEvent::Stage {
                cell: cell.index,
                stage: "strong",
                cached: true,
            });
            cache_hits.push("strong");
            (store.read_json("strong", &key, "model.json")?, true)
        } else {
            on_event(RunEvent::Stage {
                cell: cell.index,
                stage: "strong",
                cached: false,
            });
            let started = Instant::now();
            let train = strong_training_set(data, &mined);
            let config = &cell.config;
            let spec = TrainSpec {
                model: &weak_stage.model_config,
                pretrained: config.model.pretrained.as_deref(),
                training: &config.training,
                seed: training_seed(config),
                device: &weak_stage.device,
            };
            let (_, _, outcome) = train_and_test(Stage::Strong, spec, data, &train, &mut |event| {
                on_event(RunEvent::Train {
                    cell: cell.index,
                    stage: "strong",
                    event,
                })
            })
            .map_err(|e| e.to_string())?;
            let record = ModelRecord::new(outcome, started.elapsed().as_secs_f64());
            store.write_json("strong", &key, "model.json", &record)?;
            store.mark_done("strong", &key)?;
            drop(lock);
            (record, true)
        }
    };
    let test_labels = data.split.test.iter().map(|&i| data.positive[i]).collect();
    let test_paths = data
        .split
        .test
        .iter()
        .map(|&i| path_string(&data.patch(i).path))
        .collect();
    let mined_paths = mined
        .iter()
        .map(|m| path_string(&data.dataset.pool[m.pool_index].path))
        .collect();
    Ok(CellResult {
        mimic_fraction: mining_precision(data, &mined),
        weak,
        strong,
        strong_trained,
        false_positives,
        mined,
        test_labels,
        test_paths,
        mined_paths,
        cache_hits,
    })
}

/// Whether every stage of a cell is in the cache (a run would only read it).
pub fn cell_cached(store: &ArtifactStore, cell: &CellPlan) -> bool {
    if !store.is_done("weak", &cell.keys.weak) {
        return false;
    }
    if !cell.mines() {
        return true;
    }
    if !store.is_done("mining", &cell.keys.mining) {
        return false;
    }
    match store.read_json::<MiningRecord>("mining", &cell.keys.mining, "mined.json") {
        // Nothing mined: the weak model stands in for the strong one.
        Ok(record) if record.mined.is_empty() => true,
        Ok(record) => {
            let pool: Vec<usize> = record.mined.iter().map(|m| m.pool_index).collect();
            store.is_done("strong", &cell.keys.strong(&pool))
        }
        Err(_) => false,
    }
}

/// Whether the stages a cell shares with its weak-model group are in the
/// cache: the weak model and, for a mining cell, its query (or its mining,
/// which needs no query any more).
pub fn shared_cached(store: &ArtifactStore, cell: &CellPlan) -> bool {
    store.is_done("weak", &cell.keys.weak)
        && (!cell.mines()
            || store.is_done("mining", &cell.keys.mining)
            || store.is_done("query", &cell.keys.query))
}

/// Stored mining result.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct MiningRecord {
    mined: Vec<MinedPatch>,
    false_positives: usize,
}

fn path_string(path: &std::path::Path) -> String {
    path.to_string_lossy().replace('\\', "/")
}

/// A cell-level failure message.
#[derive(Debug)]
struct CellError(String);

impl std::fmt::Display for CellError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<String> for CellError {
    fn from(message: String) -> Self {
        Self(message)
    }
}

impl From<StoreError> for CellError {
    fn from(error: StoreError) -> Self {
        Self(error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_runs_compute_only_their_stages() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArtifactStore::new(dir.path());
        // (stages, may train weak models and query, may mine and train strong models)
        let cases = [
            (Stages::All, true, true),
            (Stages::Shared, true, false),
            (Stages::Cell, false, true),
            (Stages::Cached, false, false),
        ];
        for (stages, shared, own) in cases {
            for (stage, allowed) in [
                ("weak", shared),
                ("query", shared),
                ("mining", own),
                ("strong", own),
            ] {
                assert_eq!(
                    check_computable(&store, stage, "k", stages).is_ok(),
                    allowed,
                    "{stages:?} {stage}"
                );
            }
        }
        let message = check_computable(&store, "weak", "abc", Stages::Cell).unwrap_err();
        let folder = dir.path().join("weak").join("abc");
        assert!(
            message.contains(&folder.display().to_string())
                && message.contains("`--stages shared`")
                && message.contains("this run (`--stages cell`)"),
            "{message}"
        );
        // Only full and cached runs write the tables (and lock the folder).
        let tables: Vec<bool> = cases.iter().map(|c| c.0.writes_tables()).collect();
        assert_eq!(tables, [true, false, false, true]);
    }
}
