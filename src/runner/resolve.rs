//! How a cell's stages resolve in the cache, computing nothing: done by this
//! build, reusable from another build (when asked), or missing, with the
//! stale instances other builds left. The run resolves each stage the same
//! way as it goes; `ablate plan`, `status` and `slurm` use this to count
//! what is done and what is stale.

use super::execute::MiningRecord;
use super::plan::CellPlan;
use super::store::{ArtifactStore, Resolution, StageRef, StaleStage};
use crate::data::source::{Builds, SynthRecord};
use std::collections::BTreeMap;

/// Where the synthetic data of a cell are (`None` for a data folder). Data
/// of another build are reused only when their record shows the generator
/// version and settings of this build: data of another generator version
/// are always generated again.
pub fn resolve_data(
    store: &ArtifactStore,
    cell: &CellPlan,
    reuse_stale: bool,
) -> Option<Resolution> {
    if cell.config.data.path.is_some() {
        return None;
    }
    let resolution = store.resolve("data", &cell.keys.data, &[], reuse_stale);
    Some(match resolution {
        Resolution::Reused(stale) => {
            let fits = SynthRecord::read(&store.dir(&stale.found))
                .is_some_and(|r| r.fits(&cell.config.data.synthetic, Builds::Any));
            if fits {
                Resolution::Reused(stale)
            } else {
                Resolution::Missing {
                    own: store.own("data", &cell.keys.data, &[]),
                    stale: vec![*stale],
                }
            }
        }
        other => other,
    })
}

/// The resolution of each stage of a cell.
#[derive(Debug, Clone)]
pub struct CellStages {
    /// Synthetic data (`None` for a data folder).
    pub data: Option<Resolution>,
    /// The weak model.
    pub weak: Resolution,
    /// The false-positive query (`None` when the cell does not mine).
    pub query: Option<Resolution>,
    /// The mined set (`None` when the cell does not mine).
    pub mining: Option<Resolution>,
    /// The strong model: `None` when the cell does not mine, nothing was
    /// mined, or the mined set is not known yet.
    pub strong: Option<Resolution>,
    /// The mined set, when known.
    pub mined: Option<Vec<usize>>,
}

impl CellStages {
    /// Whether every stage of the cell is available (a run would only read).
    pub fn complete(&self) -> bool {
        self.weak.found().is_some()
            && match &self.mining {
                None => true,
                Some(mining) => {
                    mining.found().is_some()
                        && (self.mined.as_ref().is_some_and(Vec::is_empty)
                            || self.strong.as_ref().is_some_and(|s| s.found().is_some()))
                }
            }
    }

    /// Whether the stages the cell shares with its weak-model group are
    /// available: the weak model and, for a mining cell, its query (or its
    /// mining, which needs no query any more).
    pub fn shared_complete(&self) -> bool {
        self.weak.found().is_some()
            && (self.mining.as_ref().is_none_or(|m| m.found().is_some())
                || self.query.as_ref().is_some_and(|q| q.found().is_some()))
    }

    /// Every resolution, data first.
    fn all(&self) -> impl Iterator<Item = &Resolution> {
        self.data
            .iter()
            .chain([&self.weak])
            .chain(&self.query)
            .chain(&self.mining)
            .chain(&self.strong)
    }
}

/// Resolves every stage of `cell` as a run with `reuse_stale` would.
pub fn resolve_cell(store: &ArtifactStore, cell: &CellPlan, reuse_stale: bool) -> CellStages {
    let data = resolve_data(store, cell, reuse_stale);
    let data_input: Vec<&StageRef> = data.iter().map(Resolution::target).collect();
    let weak = store.resolve("weak", &cell.keys.weak, &data_input, reuse_stale);
    let mut stages = CellStages {
        weak: weak.clone(),
        query: None,
        mining: None,
        strong: None,
        mined: None,
        data: data.clone(),
    };
    if !cell.mines() {
        return stages;
    }
    let query = store.resolve("query", &cell.keys.query, &[weak.target()], reuse_stale);
    let mining = store.resolve("mining", &cell.keys.mining, &[query.target()], reuse_stale);
    let mined = mining.found().and_then(|found| mined_set(store, found));
    if let Some(mined) = &mined {
        if !mined.is_empty() {
            stages.strong =
                Some(store.resolve("strong", &cell.keys.strong(mined), &data_input, reuse_stale));
        }
    }
    stages.query = Some(query);
    stages.mining = Some(mining);
    stages.mined = mined;
    stages
}

/// The pool indices a finished mining stage selected.
fn mined_set(store: &ArtifactStore, mining: &StageRef) -> Option<Vec<usize>> {
    let record: MiningRecord = store.read_json(mining, "mined.json").ok()?;
    Some(record.mined.iter().map(|m| m.pool_index).collect())
}

/// Whether every stage of a cell is available (a run would only read it).
pub fn cell_cached(store: &ArtifactStore, cell: &CellPlan, reuse_stale: bool) -> bool {
    resolve_cell(store, cell, reuse_stale).complete()
}

/// Whether the stages a cell shares with its weak-model group are available.
pub fn shared_cached(store: &ArtifactStore, cell: &CellPlan, reuse_stale: bool) -> bool {
    resolve_cell(store, cell, reuse_stale).shared_complete()
}

/// The stale stage instances of some cells: finished by other builds, with
/// the settings this build needs. Strong models count when the stale mined
/// set they were trained on is known.
pub fn stale_stages<'a>(
    store: &ArtifactStore,
    cells: impl IntoIterator<Item = &'a CellPlan>,
) -> Vec<StaleStage> {
    let mut found: BTreeMap<StageRef, StaleStage> = BTreeMap::new();
    let mut add = |stale: &[StaleStage]| {
        for s in stale {
            found.entry(s.found.clone()).or_insert_with(|| s.clone());
        }
    };
    for cell in cells {
        let stages = resolve_cell(store, cell, false);
        for resolution in stages.all() {
            if let Resolution::Missing { stale, .. } = resolution {
                add(stale);
            }
        }
        // Strong models trained on the mined sets of stale minings.
        if let Some(Resolution::Missing { stale, .. }) = &stages.mining {
            for mining in stale {
                if let Some(mined) = mined_set(store, &mining.found).filter(|m| !m.is_empty()) {
                    add(&store.stale("strong", &cell.keys.strong(&mined)));
                }
            }
        }
    }
    found.into_values().collect()
}

/// What the stale stages are, for a message: how many of each stage and
/// which builds made them, with what differs from this build
/// (`2 weak, 6 mining, 4 strong, made by build 0123... (ablate 0.1.0,
/// f7f33d5c1a2b), which differs from this build in sources`).
pub fn describe_stale(store: &ArtifactStore, stale: &[StaleStage]) -> String {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for name in ["data", "weak", "query", "mining", "strong"] {
        let n = stale.iter().filter(|s| s.found.stage == name).count();
        if n > 0 {
            counts.push((name.to_string(), n));
        }
    }
    let counts: Vec<String> = counts
        .iter()
        .map(|(name, n)| format!("{n} {name}"))
        .collect();
    let mut builds: BTreeMap<String, String> = BTreeMap::new();
    for s in stale {
        let made_by = &s.record.build;
        builds
            .entry(made_by.fingerprint.clone())
            .or_insert_with(|| {
                let differences = store.build().differences(made_by).join(", ");
                format!(
                    "{}, which differs from this build in {differences}",
                    made_by.describe()
                )
            });
    }
    let builds: Vec<String> = builds.into_values().collect();
    format!("{}, made by {}", counts.join(", "), builds.join("; "))
}
