//! From an experiment to a plan: cells, their stage keys, which trainings
//! are shared, and which are already done.

use super::keys::StageKeys;
use super::resolve::resolve_data;
use super::store::{ArtifactStore, Resolution, StageRef};
use crate::device::DeviceSpec;
use crate::experiment::matrix::Assignment;
use crate::experiment::{Experiment, ExperimentConfig};
use crate::mining::Strategy;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// One cell of the matrix with its stage keys.
#[derive(Debug, Clone)]
pub struct CellPlan {
    /// 0-based position in the matrix expansion.
    pub index: usize,
    /// The cell's axis values.
    pub assignment: Assignment,
    /// Its complete settings.
    pub config: ExperimentConfig,
    /// Its stage keys.
    pub keys: StageKeys,
}

impl CellPlan {
    /// Whether the cell trains a strong model (it mines something).
    pub fn mines(&self) -> bool {
        self.config.mining.strategy != Strategy::None
    }
}

/// The whole experiment, ready to run.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The parsed experiment.
    pub experiment: Experiment,
    /// Output folder (`reports/<name>` unless the file sets `output`).
    pub output: PathBuf,
    /// Every cell, in matrix order.
    pub cells: Vec<CellPlan>,
}

/// How much training a plan needs and saves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanCounts {
    /// Cells in the matrix.
    pub cells: usize,
    /// Trainings if every cell trained its own weak model, and its own strong model when it mines.
    pub naive_trainings: usize,
    /// Distinct weak models.
    pub weak_trainings: usize,
    /// Strong models (at most; identical mined sets share one).
    pub strong_trainings: usize,
    /// Weak models already in the cache.
    pub weak_cached: usize,
}

impl PlanCounts {
    /// Trainings avoided by sharing stages.
    pub fn saved(&self) -> usize {
        self.naive_trainings - self.weak_trainings - self.strong_trainings
    }
}

impl Plan {
    /// Plans an experiment; `output` overrides the experiment's output folder.
    pub fn new(experiment: Experiment, output: Option<PathBuf>) -> Self {
        let output = output
            .or_else(|| experiment.base.output.clone())
            .unwrap_or_else(|| PathBuf::from("reports").join(&experiment.name));
        let cells = experiment
            .cells
            .iter()
            .enumerate()
            .map(|(index, (assignment, config))| CellPlan {
                index,
                assignment: assignment.clone(),
                config: config.clone(),
                keys: StageKeys::of(config),
            })
            .collect();
        Self {
            experiment,
            output,
            cells,
        }
    }

    /// The artifact store of this plan.
    pub fn store(&self) -> ArtifactStore {
        ArtifactStore::new(self.output.join("cache"))
    }

    /// Whether every cell runs on the CPU (see [`super::jobs::Jobs::resolve`]).
    pub fn on_cpu(&self) -> bool {
        self.cells
            .iter()
            .all(|cell| DeviceSpec::parse(&cell.config.device).is_ok_and(|d| d == DeviceSpec::Cpu))
    }

    /// Cells grouped by weak model, groups in order of first appearance.
    pub fn weak_groups(&self, selected: Option<&BTreeSet<usize>>) -> Vec<Vec<usize>> {
        let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
        for cell in &self.cells {
            if selected.is_some_and(|s| !s.contains(&cell.index)) {
                continue;
            }
            match groups.iter_mut().find(|(key, _)| *key == cell.keys.weak) {
                Some((_, members)) => members.push(cell.index),
                None => groups.push((cell.keys.weak.clone(), vec![cell.index])),
            }
        }
        groups.into_iter().map(|(_, members)| members).collect()
    }

    /// Training counts of the plan (`reuse_stale`: weak models of other
    /// builds count as cached).
    pub fn counts(&self, reuse_stale: bool) -> PlanCounts {
        let store = self.store();
        let mut weak_cached = BTreeSet::new();
        for cell in &self.cells {
            if weak_cached.contains(cell.keys.weak.as_str()) {
                continue;
            }
            let data = resolve_data(&store, cell, reuse_stale);
            let inputs: Vec<&StageRef> = data.iter().map(Resolution::target).collect();
            if store
                .resolve("weak", &cell.keys.weak, &inputs, reuse_stale)
                .found()
                .is_some()
            {
                weak_cached.insert(cell.keys.weak.as_str());
            }
        }
        let weak: BTreeSet<&str> = self.cells.iter().map(|c| c.keys.weak.as_str()).collect();
        let strong: BTreeSet<&str> = self
            .cells
            .iter()
            .filter(|c| c.mines())
            .map(|c| c.keys.mining.as_str())
            .collect();
        PlanCounts {
            cells: self.cells.len(),
            naive_trainings: self.cells.len() + self.cells.iter().filter(|c| c.mines()).count(),
            weak_trainings: weak.len(),
            strong_trainings: strong.len(),
            weak_cached: weak_cached.len(),
        }
    }
}
