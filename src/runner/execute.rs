//! Running a plan: stage by stage, reusing finished artifacts, one weak
//! model group per job, failures recorded per cell.
//!
//! A run may be limited to some stages ([`Stages`]): the stages a weak-model
//! group shares, or each cell's own, or none (tables from the cache only).
//! Such partial runs are how cluster array tasks split an experiment; every
//! stage is computed under a [`StageLock`], so runs that share an output
//! folder never compute one artifact twice at once.
//!
//! Each stage is resolved in the cache ([`ArtifactStore::resolve`]) from the
//! instances of the stages it reads: this build's instance, else (with
//! [`RunOptions::reuse_stale`]) one another build made from the same
//! inputs, else it is computed.

use super::error::{one_line, CellError};
use super::found;
use super::keys::training_seed;
use super::lock::StageLock;
use super::plan::{CellPlan, Plan};
use super::resolve::resolve_data;
use super::store::{ArtifactStore, Resolution, StageRef, StaleStage};
use crate::data::prepare::{decode, split_decoded, DecodedData, PreparedData};
use crate::data::source::{ensure_synthetic, Builds};
use crate::data::PatchKind;
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
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
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
    /// Reuse stages another build made (from the same inputs) instead of
    /// computing them again. Never data of another generator version.
    pub reuse_stale: bool,
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
        /// The error, if it failed (one line).
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

/// The stored false-positive query (features are in `features.safetensors`).
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
    /// False positives per negative kind, in [`found::NEGATIVE_KINDS`]
    /// order (synthetic data; `None` without mining).
    pub false_positive_kinds: Option<[usize; 4]>,
    /// Share of mimics in the pool, the mined set's base rate (synthetic data).
    pub pool_mimic_fraction: Option<f64>,
    /// Test labels (true = positive), in test order.
    pub test_labels: Vec<bool>,
    /// Test patch paths, in test order.
    pub test_paths: Vec<String>,
    /// Test patch kinds, in test order (`None` for real data).
    pub test_kinds: Vec<Option<PatchKind>>,
    /// Pool patch paths of the mined patches.
    pub mined_paths: Vec<String>,
    /// Stages whose artifacts were reused.
    pub cache_hits: Vec<&'static str>,
}

/// The outcome of a cell: its results, or why it failed (shared by the
/// cells of a weak-model group whose common stages failed).
pub type CellOutcome = Result<CellResult, Arc<CellError>>;

/// The outcome of each cell of the plan (`None` when not run).
pub type CellOutcomes = Vec<Option<CellOutcome>>;

/// What a run of a plan did.
#[derive(Debug)]
pub struct Execution {
    /// One outcome per cell of the plan.
    pub outcomes: CellOutcomes,
    /// Stages reused from other builds ([`RunOptions::reuse_stale`]), in
    /// folder order.
    pub reused: Vec<StaleStage>,
}

/// Runs the plan's cells; returns one outcome per cell.
pub fn execute(
    plan: &Plan,
    options: &RunOptions,
    on_event: &(dyn Fn(RunEvent) + Sync),
) -> Execution {
    execute_with(&plan.store(), plan, options, on_event)
}

/// [`execute`] with the cache seen through `store` (whose build computes).
pub fn execute_with(
    store: &ArtifactStore,
    plan: &Plan,
    options: &RunOptions,
    on_event: &(dyn Fn(RunEvent) + Sync),
) -> Execution {
    let groups = plan.weak_groups(options.cells.as_ref());
    let outcomes: Mutex<CellOutcomes> = Mutex::new(vec![None; plan.cells.len()]);
    let data_cache = DataCache::default();
    let reused = Mutex::new(BTreeMap::new());
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
                        store,
                        data_cache: &data_cache,
                        stages: options.stages,
                        reuse_stale: options.reuse_stale,
                        reused: &reused,
                        on_event,
                    };
                    let results = pool.install(|| run_group(&context, &group));
                    let mut all = outcomes.lock().expect("outcomes lock");
                    for (cell, result) in group.iter().zip(results) {
                        // Cells left to a later run (`--stages shared`) have no outcome.
                        let Some(result) = result else { continue };
                        let error = result.as_ref().err().map(|e| one_line(e.as_ref()));
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
    Execution {
        outcomes: outcomes.into_inner().expect("outcomes lock"),
        reused: reused
            .into_inner()
            .expect("reused lock")
            .into_values()
            .collect(),
    }
}

/// A dataset decoded for a split, and the synthetic data stage it came from.
type Decoded = (Arc<PreparedData>, Option<StageRef>);

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
    prepared: HashMap<String, Decoded>,
}

impl DataCache {
    fn get(&self, cell: &CellPlan, context: &GroupContext<'_>) -> Result<Decoded, CellError> {
        let mut loaded = self
            .loaded
            .lock()
            .map_err(|_| CellError::DataCachePoisoned)?;
        if let Some(decoded) = loaded.prepared.get(&cell.keys.split) {
            return Ok(decoded.clone());
        }
        let config = &cell.config;
        let (root, data_ref) = match &config.data.path {
            Some(path) => (path.clone(), None),
            None => {
                let data_ref = synthetic_data(cell, context)?;
                (context.store.dir(&data_ref), Some(data_ref))
            }
        };
        let mut split = config.data.split.clone();
        if split.folds.is_some() {
            split.fold = config.replicate.fold;
        }
        let subsample = config.data.subsample().map_err(CellError::Settings)?;
        let images = match loaded.decoded.get(&cell.keys.data) {
            Some(images) => images.clone(),
            None => {
                let images =
                    decode(&root, config.data.image_size).map_err(|source| CellError::Dataset {
                        root: root.clone(),
                        source,
                    })?;
                loaded
                    .decoded
                    .insert(cell.keys.data.clone(), images.clone());
                images
            }
        };
        let data = split_decoded(&images, &split, &subsample)
            .map_err(|source| CellError::Dataset { root, source })?;
        let decoded = (Arc::new(data), data_ref);
        loaded
            .prepared
            .insert(cell.keys.split.clone(), decoded.clone());
        Ok(decoded)
    }
}

/// The cell's synthetic data: found, or generated into this build's folder.
fn synthetic_data(cell: &CellPlan, context: &GroupContext<'_>) -> Result<StageRef, CellError> {
    let store = context.store;
    let resolution =
        resolve_data(store, cell, context.reuse_stale).expect("synthetic data has a stage");
    if let Some(found) = context.found(&resolution) {
        return Ok(found);
    }
    let own = resolution.target();
    // Runs sharing the output folder must not generate it at once.
    let _lock = lock_stage(&store.dir(own), context.stages)?;
    if !store.is_done(own) {
        ensure_synthetic(&store.dir(own), &cell.config.data.synthetic, Builds::This)
            .map_err(CellError::Synthetic)?;
        store.finish(own, &[])?;
    }
    Ok(own.clone())
}

/// What every group of a run shares.
struct GroupContext<'a> {
    plan: &'a Plan,
    store: &'a ArtifactStore,
    data_cache: &'a DataCache,
    stages: Stages,
    reuse_stale: bool,
    reused: &'a Mutex<BTreeMap<StageRef, StaleStage>>,
    on_event: &'a (dyn Fn(RunEvent) + Sync),
}

impl GroupContext<'_> {
    /// Resolves a stage for this run (see [`ArtifactStore::resolve`]).
    fn resolve(&self, stage: &str, settings: &str, inputs: &[&StageRef]) -> Resolution {
        self.store
            .resolve(stage, settings, inputs, self.reuse_stale)
    }

    /// The instance to read, noting a reused one for the manifest.
    fn found(&self, resolution: &Resolution) -> Option<StageRef> {
        if let Resolution::Reused(stale) = resolution {
            self.reused
                .lock()
                .expect("reused lock")
                .entry(stale.found.clone())
                .or_insert_with(|| stale.as_ref().clone());
        }
        resolution.found().cloned()
    }

    /// Prepares computing `own`, found missing: checks the run may compute
    /// it and waits for its lock. `None` when another run finished it while
    /// this one waited (read it from the cache).
    fn claim(&self, own: &StageRef) -> Result<Option<Option<StageLock>>, CellError> {
        check_computable(self.store, own, self.stages)?;
        let lock = lock_stage(&self.store.dir(own), self.stages)?;
        if self.store.is_done(own) {
            return Ok(None);
        }
        Ok(Some(lock))
    }
}

/// Runs the cells of one weak-model group; one result per cell, `None` for
/// a cell whose own stages are left to a later run.
fn run_group(context: &GroupContext<'_>, group: &[usize]) -> Vec<Option<CellOutcome>> {
    let GroupContext {
        plan,
        stages,
        on_event,
        ..
    } = *context;
    let first = &plan.cells[group[0]];
    let shared = (|| {
        let (data, data_ref) = context.data_cache.get(first, context)?;
        let name = &first.config.model.name;
        let model_config = ResNetConfig::from_name(name, 2).map_err(|source| CellError::Model {
            name: name.clone(),
            source,
        })?;
        let device = crate::device::open_device(&first.config.device)?;
        let mut weak_stage =
            WeakStage::new(first, context, data.clone(), data_ref, model_config, device);
        weak_stage.record(on_event)?;
        Ok::<_, CellError>((data, weak_stage))
    })();
    let (data, mut weak_stage) = match shared {
        Ok(shared) => shared,
        Err(error) => {
            let error = Arc::new(error);
            return group.iter().map(|_| Some(Err(error.clone()))).collect();
        }
    };
    group
        .iter()
        .map(|&index| {
            let cell = &plan.cells[index];
            if stages == Stages::Shared && cell.mines() {
                // Only the query, which the group's cells share; mining and
                // the strong model are the cell's own.
                let query = weak_stage.resolve_query(cell);
                let mining = context.resolve("mining", &cell.keys.mining, &[query.target()]);
                if mining.found().is_none() {
                    if let Err(error) = weak_stage.query(cell, &query, on_event) {
                        return Some(Err(Arc::new(error)));
                    }
                }
                return None;
            }
            Some(finish_cell(cell, context, &data, &mut weak_stage).map_err(Arc::new))
        })
        .collect()
}

/// Runs one cell's remaining stages and writes its embedding file.
fn finish_cell(
    cell: &CellPlan,
    context: &GroupContext<'_>,
    data: &Arc<PreparedData>,
    weak_stage: &mut WeakStage<'_>,
) -> Result<CellResult, CellError> {
    let (result, query) = run_cell(cell, context, data, weak_stage)?;
    if cell.mines() {
        let query = match query {
            Some(query) => query,
            None => {
                let resolution = weak_stage.resolve_query(cell);
                weak_stage.query(cell, &resolution, context.on_event)?.0
            }
        };
        let path = context
            .plan
            .output
            .join("cells")
            .join(cell.index.to_string())
            .join("embedding.csv");
        write_embedding(&path, data, &query, &result.mined)?;
    }
    Ok(result)
}

/// Checks that a run limited to `stages` may compute stage instance
/// `stage` (its artifact is not in the cache). Synthetic data may always
/// be generated.
fn check_computable(
    store: &ArtifactStore,
    stage: &StageRef,
    stages: Stages,
) -> Result<(), CellError> {
    let allowed = match stage.stage.as_str() {
        "data" => true,
        "weak" | "query" => stages.computes_shared(),
        _ => stages.computes_cell(),
    };
    if allowed {
        return Ok(());
    }
    Err(CellError::NotComputed {
        stage: stage.clone(),
        dir: store.dir(stage),
        stages: stages.name(),
    })
}

/// Waits for the lock of a stage folder. On a filesystem without file
/// locks, a run that holds the whole output folder goes on without it;
/// partial runs, which share the folder, cannot.
fn lock_stage(dir: &Path, stages: Stages) -> Result<Option<StageLock>, CellError> {
    match StageLock::acquire(dir) {
        Ok(lock) => Ok(Some(lock)),
        Err(error) if error.is_unsupported() && stages.writes_tables() => Ok(None),
        Err(source) => Err(CellError::Lock {
            dir: dir.to_path_buf(),
            source,
        }),
    }
}

/// Writes the pool and false-positive features of a mining cell with each
/// patch's role (`pool`, `mined`, `fp`) and true kind, for the report's projection.
fn write_embedding(
    path: &Path,
    data: &PreparedData,
    query: &Query,
    mined: &[MinedPatch],
) -> Result<(), CellError> {
    let fail = |source: Box<dyn std::error::Error + Send + Sync>| CellError::Write {
        path: path.to_path_buf(),
        source,
    };
    let pool: Vec<Vec<f32>> = query.pool_features.to_vec2().map_err(|e| fail(e.into()))?;
    let fps: Vec<Vec<f32>> = query.fp_features.to_vec2().map_err(|e| fail(e.into()))?;
    let dims = pool.first().map_or(0, Vec::len);
    let mined: BTreeSet<usize> = mined.iter().map(|m| m.pool_index).collect();
    let mut writer = csv::Writer::from_writer(Vec::new());
    let mut header = vec!["path".to_string(), "kind".into(), "role".into()];
    header.extend((0..dims).map(|d| format!("x{d}")));
    writer.write_record(&header).map_err(|e| fail(e.into()))?;
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
        write_row(&data.dataset.pool[j], role, features).map_err(|e| fail(e.into()))?;
    }
    for (fp, features) in query.false_positives.iter().zip(&fps) {
        write_row(&data.dataset.hard[fp.hard_index], "fp", features).map_err(|e| fail(e.into()))?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|e| fail(e.into_error().into()))?;
    crate::io::write_atomic(path, &bytes).map_err(|e| fail(e.into()))
}

/// The weak model of a group: its record, and the network when needed.
struct WeakStage<'a> {
    cell: &'a CellPlan,
    context: &'a GroupContext<'a>,
    data: Arc<PreparedData>,
    /// The synthetic data stage the dataset came from.
    data_ref: Option<StageRef>,
    model_config: ResNetConfig,
    record: Option<ModelRecord>,
    /// The weak model's stage instance (once resolved).
    found: Option<StageRef>,
    cached: bool,
    model: Option<ResNet>,
    queries: HashMap<StageRef, Arc<Query>>,
    device: Device,
}

impl<'a> WeakStage<'a> {
    fn new(
        cell: &'a CellPlan,
        context: &'a GroupContext<'a>,
        data: Arc<PreparedData>,
        data_ref: Option<StageRef>,
        model_config: ResNetConfig,
        device: Device,
    ) -> Self {
        Self {
            cell,
            context,
            data,
            data_ref,
            model_config,
            record: None,
            found: None,
            cached: false,
            model: None,
            queries: HashMap::new(),
            device,
        }
    }

    /// The stage instances a model trained on this group's data reads.
    fn data_inputs(&self) -> Vec<&StageRef> {
        self.data_ref.iter().collect()
    }

    /// The weak model's record, training it if it is not in the cache.
    fn record(&mut self, on_event: &(dyn Fn(RunEvent) + Sync)) -> Result<ModelRecord, CellError> {
        if let Some(record) = &self.record {
            return Ok(record.clone());
        }
        let context = self.context;
        let store = context.store;
        let cell = self.cell.index;
        let resolution = context.resolve("weak", &self.cell.keys.weak, &self.data_inputs());
        let own = resolution.target().clone();
        let lock = match context.found(&resolution) {
            Some(_) => None,
            None => context.claim(&own)?,
        };
        let Some(_lock) = lock else {
            on_event(RunEvent::Stage {
                cell,
                stage: "weak",
                cached: true,
            });
            self.cached = true;
            let record: ModelRecord = store.read_json(&own, "model.json")?;
            self.record = Some(record.clone());
            self.found = Some(own);
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
        )?;
        let record = ModelRecord::new(outcome, started.elapsed().as_secs_f64());
        let path = store.dir(&own).join("model.safetensors");
        save_checkpoint(&varmap, &path).map_err(|source| CellError::Tensors {
            action: "write",
            path,
            source,
        })?;
        store.write_json(&own, "model.json", &record)?;
        store.finish(&own, &self.data_inputs())?;
        self.model = Some(model);
        self.record = Some(record.clone());
        self.found = Some(own);
        Ok(record)
    }

    /// The weak model's stage instance (after [`WeakStage::record`]).
    fn found(&self) -> &StageRef {
        self.found
            .as_ref()
            .expect("the weak model is resolved first")
    }

    /// The weak network (loaded from its checkpoint when it came from the cache).
    fn model(&mut self) -> Result<&ResNet, CellError> {
        if self.model.is_none() {
            let (model, mut varmap) = build_seeded(&self.model_config, 0, &self.device)
                .map_err(|e| CellError::Step(e.into()))?;
            let path = self
                .context
                .store
                .dir(self.found())
                .join("model.safetensors");
            varmap.load(&path).map_err(|source| CellError::Tensors {
                action: "read",
                path,
                source,
            })?;
            self.model = Some(model);
        }
        Ok(self.model.as_ref().expect("set above"))
    }

    /// Where a cell's false-positive query is, computing nothing.
    fn resolve_query(&self, cell: &CellPlan) -> Resolution {
        self.context
            .resolve("query", &cell.keys.query, &[self.found()])
    }

    /// The false-positive query at a cell's threshold (from the cache when
    /// `resolution` found it) and whether it came from the cache.
    fn query(
        &mut self,
        cell: &CellPlan,
        resolution: &Resolution,
        on_event: &(dyn Fn(RunEvent) + Sync),
    ) -> Result<(Arc<Query>, bool), CellError> {
        let context = self.context;
        let target = resolution.target().clone();
        if let Some(query) = self.queries.get(&target) {
            return Ok((query.clone(), true));
        }
        let lock = match context.found(resolution) {
            Some(_) => None,
            None => context.claim(&target)?,
        };
        let cached = lock.is_none();
        on_event(RunEvent::Stage {
            cell: cell.index,
            stage: "query",
            cached,
        });
        let query = if cached {
            load_query(context.store, &target)?
        } else {
            let training = cell.config.training.clone();
            let threshold = cell.config.mining.fp_threshold;
            let data = self.data.clone();
            let device = self.device.clone();
            let weak = self.found().clone();
            let query = query(self.model()?, &data, &training, threshold, &device)?;
            save_query(context.store, &target, &weak, &query)?;
            drop(lock);
            query
        };
        let query = Arc::new(query);
        self.queries.insert(target, query.clone());
        Ok((query, cached))
    }
}

fn save_query(
    store: &ArtifactStore,
    target: &StageRef,
    weak: &StageRef,
    query: &Query,
) -> Result<(), CellError> {
    let tensors: HashMap<String, Tensor> = [
        ("fp_features".to_string(), query.fp_features.clone()),
        ("pool_features".to_string(), query.pool_features.clone()),
    ]
    .into();
    let path = store.dir(target).join("features.safetensors");
    crate::io::write_atomic_with(&path, |tmp| {
        candle_core::safetensors::save(&tensors, tmp).map_err(std::io::Error::other)
    })
    .map_err(|e| CellError::Write {
        path: path.clone(),
        source: e.into(),
    })?;
    let record = QueryRecord {
        false_positives: query.false_positives.clone(),
        pool_scores: query.pool_scores.clone(),
    };
    store.write_json(target, "query.json", &record)?;
    store.finish(target, &[weak])?;
    Ok(())
}

fn load_query(store: &ArtifactStore, found: &StageRef) -> Result<Query, CellError> {
    let path = store.dir(found).join("features.safetensors");
    let mut tensors = candle_core::safetensors::load(&path, &Device::Cpu).map_err(|source| {
        CellError::Tensors {
            action: "read",
            path: path.clone(),
            source,
        }
    })?;
    let mut take = |name: &'static str| {
        tensors
            .remove(name)
            .ok_or_else(|| CellError::MissingTensor {
                path: path.clone(),
                name,
            })
    };
    let fp_features = take("fp_features")?;
    let pool_features = take("pool_features")?;
    let record: QueryRecord = store.read_json(found, "query.json")?;
    Ok(Query {
        false_positives: record.false_positives,
        fp_features,
        pool_features,
        pool_scores: record.pool_scores,
    })
}

/// Runs (or reuses) the query, mining and strong stages of one cell; the
/// query too when it was loaded or computed.
fn run_cell(
    cell: &CellPlan,
    context: &GroupContext<'_>,
    data: &PreparedData,
    weak_stage: &mut WeakStage<'_>,
) -> Result<(CellResult, Option<Arc<Query>>), CellError> {
    let store = context.store;
    let on_event = context.on_event;
    let weak = weak_stage.record(on_event)?;
    let mut cache_hits = Vec::new();
    // The weak model is reused unless this is the cell that trained it.
    if weak_stage.cached || cell.index != weak_stage.cell.index {
        cache_hits.push("weak");
    }
    let mut loaded_query = None;
    let (mined, false_positives) = if cell.mines() {
        let query_resolution = weak_stage.resolve_query(cell);
        let resolution = context.resolve("mining", &cell.keys.mining, &[query_resolution.target()]);
        let own = resolution.target().clone();
        let lock = match context.found(&resolution) {
            Some(_) => None,
            None => context.claim(&own)?,
        };
        if let Some(_lock) = lock {
            let (query, cached) = weak_stage.query(cell, &query_resolution, on_event)?;
            if cached {
                cache_hits.push("query");
            }
            on_event(RunEvent::Stage {
                cell: cell.index,
                stage: "mining",
                cached: false,
            });
            let mined = mine_pool(
                data,
                &query,
                &cell.config.mining,
                training_seed(&cell.config),
            )?;
            let record = MiningRecord {
                mined,
                false_positives: query
                    .false_positives
                    .iter()
                    .map(|fp| fp.hard_index)
                    .collect(),
            };
            store.write_json(&own, "mined.json", &record)?;
            store.finish(&own, &[query_resolution.target()])?;
            loaded_query = Some(query);
            (record.mined, record.false_positives)
        } else {
            on_event(RunEvent::Stage {
                cell: cell.index,
                stage: "mining",
                cached: true,
            });
            cache_hits.push("mining");
            let stored: MiningRecord = store.read_json(&own, "mined.json")?;
            (stored.mined, stored.false_positives)
        }
    } else {
        (Vec::new(), Vec::new())
    };
    let (strong, strong_trained) = if mined.is_empty() {
        (weak.clone(), false)
    } else {
        let pool_indices: Vec<usize> = mined.iter().map(|m| m.pool_index).collect();
        let inputs = weak_stage.data_inputs();
        let resolution = context.resolve("strong", &cell.keys.strong(&pool_indices), &inputs);
        let own = resolution.target().clone();
        let lock = match context.found(&resolution) {
            Some(_) => None,
            None => context.claim(&own)?,
        };
        if let Some(lock) = lock {
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
            let (_, _, outcome) =
                train_and_test(Stage::Strong, spec, data, &train, &mut |event| {
                    on_event(RunEvent::Train {
                        cell: cell.index,
                        stage: "strong",
                        event,
                    })
                })?;
            let record = ModelRecord::new(outcome, started.elapsed().as_secs_f64());
            store.write_json(&own, "model.json", &record)?;
            store.finish(&own, &inputs)?;
            drop(lock);
            (record, true)
        } else {
            on_event(RunEvent::Stage {
                cell: cell.index,
                stage: "strong",
                cached: true,
            });
            cache_hits.push("strong");
            (store.read_json(&own, "model.json")?, true)
        }
    };
    let test_labels = data.split.test.iter().map(|&i| data.positive[i]).collect();
    let test_paths = data
        .split
        .test
        .iter()
        .map(|&i| path_string(&data.patch(i).path))
        .collect();
    let test_kinds = data
        .split
        .test
        .iter()
        .map(|&i| data.patch(i).kind)
        .collect();
    let mined_paths = mined
        .iter()
        .map(|m| path_string(&data.dataset.pool[m.pool_index].path))
        .collect();
    let result = CellResult {
        mimic_fraction: mining_precision(data, &mined),
        false_positive_kinds: cell
            .mines()
            .then(|| found::false_positive_kinds(&data.dataset.hard, &false_positives))
            .flatten(),
        pool_mimic_fraction: found::pool_mimic_fraction(&data.dataset.pool),
        weak,
        strong,
        strong_trained,
        false_positives: false_positives.len(),
        mined,
        test_labels,
        test_paths,
        test_kinds,
        mined_paths,
        cache_hits,
    };
    Ok((result, loaded_query))
}

/// Stored mining result (`mined.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct MiningRecord {
    /// The mined pool patches.
    pub(super) mined: Vec<MinedPatch>,
    /// The false positives the mining started from, as hard-labeled indices.
    pub(super) false_positives: Vec<usize>,
}

fn path_string(path: &Path) -> String {
    path.to_string_lossy().replace('\\', "/")
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
                ("data", true),
                ("weak", shared),
                ("query", shared),
                ("mining", own),
                ("strong", own),
            ] {
                let instance = store.own(stage, "k", &[]);
                assert_eq!(
                    check_computable(&store, &instance, stages).is_ok(),
                    allowed,
                    "{stages:?} {stage}"
                );
            }
        }
        let weak = store.own("weak", "abc", &[]);
        let message = check_computable(&store, &weak, Stages::Cell)
            .unwrap_err()
            .to_string();
        let folder = store.dir(&weak);
        assert!(folder.starts_with(dir.path().join("weak").join("abc")));
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
