//! The cell manifest: which cells each array task runs (`tasks.tsv`).
//!
//! Tasks are numbered per stage from 0; an array task finds its cells by
//! its stage and number (its array index plus the offset of its part of a
//! split array). The file is tab-separated with a header line:
//! `stage  task  cells`, cells comma-separated.

use super::SlurmError;
use std::collections::BTreeSet;
use std::path::Path;

/// The array a task belongs to; the names are `ablate run --stages` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TaskStage {
    /// Weak model and queries of one weak-model group.
    Shared,
    /// Mining and strong model of one cell or a pack of cells.
    Cell,
}

impl TaskStage {
    /// The name used in files, job names and `--stages`.
    pub fn name(self) -> &'static str {
        match self {
            TaskStage::Shared => "shared",
            TaskStage::Cell => "cell",
        }
    }

    /// The stage of a name written by [`TaskStage::name`].
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "shared" => Some(TaskStage::Shared),
            "cell" => Some(TaskStage::Cell),
            _ => None,
        }
    }
}

/// One array task.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    /// Its array.
    pub stage: TaskStage,
    /// Its number among the tasks of its stage (0-based).
    pub index: usize,
    /// The cells it runs (0-based matrix indices).
    pub cells: Vec<usize>,
}

/// What the task planning needs to know about a pending cell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CellNeeds {
    /// The cell mines (it has its own stages after the shared ones).
    pub mines: bool,
    /// Its weak model and query are already in the cache.
    pub shared_cached: bool,
}

/// Plans the tasks of a submission. `groups` are the experiment's
/// weak-model groups (every cell), `pending` the cells to run, `pack` the
/// cells per cell-stage task.
///
/// A group gets a shared task when one of its pending cells lacks a shared
/// stage; that task lists all the group's pending cells (the ones of
/// strategy `none` finish there, and all get its markers). Every pending
/// mining cell gets a place in a cell task, packs filled in group order.
pub fn plan_tasks(
    groups: &[Vec<usize>],
    pending: &BTreeSet<usize>,
    needs: impl Fn(usize) -> CellNeeds,
    pack: usize,
) -> Vec<Task> {
    let mut shared = Vec::new();
    let mut mining = Vec::new();
    for group in groups {
        let members: Vec<usize> = group
            .iter()
            .copied()
            .filter(|c| pending.contains(c))
            .collect();
        // A pending cell that does not mine needs only the shared stages.
        let needs_shared = members.iter().any(|&c| {
            let n = needs(c);
            !n.shared_cached || !n.mines
        });
        if needs_shared {
            shared.push(Task {
                stage: TaskStage::Shared,
                index: shared.len(),
                cells: members.clone(),
            });
        }
        mining.extend(members.into_iter().filter(|&c| needs(c).mines));
    }
    let cell_tasks = mining
        .chunks(pack.max(1))
        .enumerate()
        .map(|(index, cells)| Task {
            stage: TaskStage::Cell,
            index,
            cells: cells.to_vec(),
        });
    shared.into_iter().chain(cell_tasks).collect()
}

/// The tasks of one stage, in order.
pub fn of_stage(tasks: &[Task], stage: TaskStage) -> Vec<&Task> {
    tasks.iter().filter(|t| t.stage == stage).collect()
}

/// Header of `tasks.tsv`.
const HEADER: &str = "stage\ttask\tcells";

/// Renders `tasks.tsv`.
pub fn manifest_tsv(tasks: &[Task]) -> String {
    let mut text = format!("{HEADER}\n");
    for task in tasks {
        let cells: Vec<String> = task.cells.iter().map(|c| c.to_string()).collect();
        text.push_str(&format!(
            "{}\t{}\t{}\n",
            task.stage.name(),
            task.index,
            cells.join(",")
        ));
    }
    text
}

/// Parses `tasks.tsv` (`path` is for messages).
pub fn parse_manifest(path: &Path, text: &str) -> Result<Vec<Task>, SlurmError> {
    let mut tasks = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if number == 0 && line == HEADER || line.is_empty() {
            continue;
        }
        let error = |message: String| SlurmError::Parse {
            path: path.to_path_buf(),
            line: number + 1,
            message,
        };
        let fields: Vec<&str> = line.split('\t').collect();
        let [stage, index, cells] = fields[..] else {
            return Err(error(format!(
                "expected 3 tab-separated fields (stage, task, cells), found {}",
                fields.len()
            )));
        };
        let stage = TaskStage::parse(stage)
            .ok_or_else(|| error(format!("unknown stage `{stage}` (shared or cell)")))?;
        let index = index
            .parse()
            .map_err(|_| error(format!("task `{index}` is not a number")))?;
        let cells = cells
            .split(',')
            .map(|c| c.parse::<usize>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| error(format!("cells `{cells}` are not comma-separated numbers")))?;
        tasks.push(Task {
            stage,
            index,
            cells,
        });
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Cells 0..6 of two groups {0, 2, 4} and {1, 3, 5}; 0 and 1 do not mine.
    fn groups() -> Vec<Vec<usize>> {
        vec![vec![0, 2, 4], vec![1, 3, 5]]
    }

    fn cells(tasks: &[Task], stage: TaskStage) -> Vec<Vec<usize>> {
        of_stage(tasks, stage)
            .iter()
            .map(|t| t.cells.clone())
            .collect()
    }

    #[test]
    fn fresh_matrix_has_one_shared_task_per_group_and_one_cell_task_per_mining_cell() {
        let pending: BTreeSet<usize> = (0..6).collect();
        let needs = |c: usize| CellNeeds {
            mines: c >= 2,
            shared_cached: false,
        };
        let tasks = plan_tasks(&groups(), &pending, needs, 1);
        assert_eq!(
            cells(&tasks, TaskStage::Shared),
            [vec![0, 2, 4], vec![1, 3, 5]]
        );
        assert_eq!(
            cells(&tasks, TaskStage::Cell),
            [vec![2], vec![4], vec![3], vec![5]]
        );
        let indices: Vec<usize> = of_stage(&tasks, TaskStage::Cell)
            .iter()
            .map(|t| t.index)
            .collect();
        assert_eq!(indices, [0, 1, 2, 3]);
    }

    #[test]
    fn packs_and_resubmission_of_one_cell() {
        let all: BTreeSet<usize> = (0..6).collect();
        let needs = |c: usize| CellNeeds {
            mines: c >= 2,
            shared_cached: false,
        };
        let tasks = plan_tasks(&groups(), &all, needs, 3);
        assert_eq!(cells(&tasks, TaskStage::Cell), [vec![2, 4, 3], vec![5]]);
        // Only cell 3 left, its weak model and query cached: no shared task.
        let pending: BTreeSet<usize> = [3].into();
        let cached = |c: usize| CellNeeds {
            mines: c >= 2,
            shared_cached: true,
        };
        let tasks = plan_tasks(&groups(), &pending, cached, 1);
        assert_eq!(
            tasks,
            [Task {
                stage: TaskStage::Cell,
                index: 0,
                cells: vec![3]
            }]
        );
        // A pending `none` cell always needs its group's shared task.
        let pending: BTreeSet<usize> = [1, 3].into();
        let tasks = plan_tasks(&groups(), &pending, cached, 1);
        assert_eq!(cells(&tasks, TaskStage::Shared), [vec![1, 3]]);
        assert_eq!(cells(&tasks, TaskStage::Cell), [vec![3]]);
    }

    #[test]
    fn manifest_round_trips_and_names_bad_lines() {
        let tasks = vec![
            Task {
                stage: TaskStage::Shared,
                index: 0,
                cells: vec![0, 2, 4],
            },
            Task {
                stage: TaskStage::Cell,
                index: 0,
                cells: vec![2],
            },
        ];
        let text = manifest_tsv(&tasks);
        assert_eq!(text, "stage\ttask\tcells\nshared\t0\t0,2,4\ncell\t0\t2\n");
        let path = Path::new("tasks.tsv");
        assert_eq!(parse_manifest(path, &text).unwrap(), tasks);
        let error = parse_manifest(path, "stage\ttask\tcells\nstrong\t0\t1\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("line 2") && error.contains("unknown stage `strong`"),
            "{error}"
        );
        let error = parse_manifest(path, "cell\t0\t1;2\n")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("line 1") && error.contains("`1;2`"),
            "{error}"
        );
    }
}
