//! What is done, running, queued, failed and missing.
//!
//! A cell is done when the cache's done markers say all its stages are (the
//! same test a run uses to skip work). Otherwise the task markers under
//! `slurm/cells/` say whether a task runs it now (`<i>.running`: job, host,
//! start, log) or has failed on it (`<i>.failed`: job, exit status, end and
//! log for each failure); `squeue` tells whether a submitted task that
//! will run it is still queued, and whether a task marked running still
//! exists (a task killed without a chance to write its marker is "lost").

use super::submit::parse_jobs;
use super::tasks::parse_manifest;
use super::{Layout, SlurmError};
use crate::runner::plan::Plan;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A task running a cell (`<i>.running`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    /// Array task, `<array job id>_<index>`.
    pub job: String,
    /// Node.
    pub host: String,
    /// Start (UTC).
    pub started: String,
    /// The task's output file.
    pub log: PathBuf,
}

/// A failed task on a cell (a line of `<i>.failed`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// Array task, `<array job id>_<index>`.
    pub job: String,
    /// Its exit status (143: cancelled or out of time).
    pub exit: String,
    /// End (UTC).
    pub ended: String,
    /// The task's output file.
    pub log: PathBuf,
}

/// The four tab-separated fields of a marker line.
fn fields(line: &str) -> Option<[&str; 4]> {
    let fields: Vec<&str> = line.split('\t').collect();
    fields.try_into().ok()
}

/// Parses a running marker (`None` when it is malformed, e.g. half-written).
pub fn parse_running(text: &str) -> Option<Running> {
    let [job, host, started, log] = fields(text.lines().next()?)?;
    Some(Running {
        job: job.into(),
        host: host.into(),
        started: started.into(),
        log: log.into(),
    })
}

/// Parses a failure marker, one failure a line; malformed lines are skipped.
pub fn parse_failures(text: &str) -> Vec<Failure> {
    text.lines()
        .filter_map(fields)
        .map(|[job, exit, ended, log]| Failure {
            job: job.into(),
            exit: exit.into(),
            ended: ended.into(),
            log: log.into(),
        })
        .collect()
}

/// The jobs in Slurm's queue, one array task a line, with their states.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Queue {
    jobs: BTreeMap<String, String>,
}

impl Queue {
    /// The arguments of the `squeue` call whose output [`Queue::parse`] reads.
    pub fn squeue_args() -> Vec<String> {
        ["--noheader", "--array", "--me", "--format=%i %T"]
            .map(String::from)
            .to_vec()
    }

    /// Parses `squeue --noheader --array --format='%i %T'` output.
    pub fn parse(text: &str) -> Self {
        let jobs = text
            .lines()
            .filter_map(|line| {
                let mut words = line.split_whitespace();
                Some((words.next()?.to_string(), words.next()?.to_string()))
            })
            .collect();
        Self { jobs }
    }

    /// Asks `squeue` for the current user's jobs.
    pub fn query() -> Result<Self, SlurmError> {
        super::submit::run_command("squeue", &Self::squeue_args()).map(|text| Self::parse(&text))
    }

    /// The state of a job or array task (`PENDING`, `RUNNING`, ...), if queued.
    pub fn state(&self, job: &str) -> Option<&str> {
        self.jobs.get(job).map(String::as_str)
    }
}

/// Where a cell stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CellState {
    /// All its stages are in the cache.
    Done,
    /// A task runs it.
    Running(Running),
    /// A submitted task that will run it waits in the queue.
    Queued {
        /// That array task.
        job: String,
    },
    /// Tasks failed on it (latest last).
    Failed(Vec<Failure>),
    /// Marked running, but its task is gone from the queue without recording
    /// an end (killed hard, or its node failed).
    Lost(Running),
    /// Not done and nothing submitted for it.
    Missing,
}

impl CellState {
    /// Whether a cluster job has it in hand (resubmitting it would run it twice).
    pub fn in_flight(&self) -> bool {
        matches!(self, CellState::Running(_) | CellState::Queued { .. })
    }
}

/// A cell's state from its done-ness, its markers, the array tasks ever
/// submitted for it (`<array id>_<index>`) and the queue (`None` when
/// `squeue` could not be asked: running markers are then trusted and
/// nothing counts as queued).
pub fn derive_state(
    done: bool,
    running: Option<Running>,
    failures: Vec<Failure>,
    tasks: &[String],
    queue: Option<&Queue>,
) -> CellState {
    if done {
        return CellState::Done;
    }
    if let Some(running) = running {
        return match queue {
            Some(queue) if queue.state(&running.job).is_none() => CellState::Lost(running),
            _ => CellState::Running(running),
        };
    }
    if let Some(queue) = queue {
        if let Some(job) = tasks.iter().find(|t| queue.state(t).is_some()) {
            return CellState::Queued { job: job.clone() };
        }
    }
    if failures.is_empty() {
        CellState::Missing
    } else {
        CellState::Failed(failures)
    }
}

/// For each cell, the array tasks of every submission that run it.
pub fn submitted_tasks(layout: &Layout) -> Result<BTreeMap<usize, Vec<String>>, SlurmError> {
    let mut map: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for generation in layout.generations()? {
        let jobs_path = generation.join("jobs.tsv");
        let Some(jobs_text) = read_optional(&jobs_path)? else {
            continue;
        };
        let tasks_path = generation.join("tasks.tsv");
        let tasks_text = read_optional(&tasks_path)?.unwrap_or_default();
        let tasks = parse_manifest(&tasks_path, &tasks_text)?;
        for job in parse_jobs(&jobs_path, &jobs_text)? {
            let Some(stage) = job.stage else { continue };
            for index in 0..job.count {
                let number = job.offset + index;
                let task = tasks.iter().find(|t| t.stage == stage && t.index == number);
                for &cell in task.map_or(&[][..], |t| &t.cells[..]) {
                    map.entry(cell)
                        .or_default()
                        .push(format!("{}_{index}", job.id));
                }
            }
        }
    }
    Ok(map)
}

/// The collect job of the latest submission that has one: its id.
pub fn latest_collect(layout: &Layout) -> Result<Option<String>, SlurmError> {
    for generation in layout.generations()?.iter().rev() {
        let path = generation.join("jobs.tsv");
        if let Some(text) = read_optional(&path)? {
            if let Some(job) = parse_jobs(&path, &text)?
                .into_iter()
                .find(|j| j.stage.is_none())
            {
                return Ok(Some(job.id));
            }
        }
    }
    Ok(None)
}

/// The state of every cell of the plan, in order. Ask the queue before
/// calling this: markers read after the queue never look lost merely
/// because their task ended in between.
pub fn cell_states(
    plan: &Plan,
    layout: &Layout,
    queue: Option<&Queue>,
    reuse_stale: bool,
) -> Result<Vec<CellState>, SlurmError> {
    let store = plan.store();
    let submitted = submitted_tasks(layout)?;
    let markers = layout.markers();
    plan.cells
        .iter()
        .map(|cell| {
            let done = crate::runner::cell_cached(&store, cell, reuse_stale);
            let running = read_optional(&markers.join(format!("{}.running", cell.index)))?
                .and_then(|t| parse_running(&t));
            let failures = read_optional(&markers.join(format!("{}.failed", cell.index)))?
                .map(|t| parse_failures(&t))
                .unwrap_or_default();
            let tasks = submitted.get(&cell.index).map_or(&[][..], |t| &t[..]);
            Ok(derive_state(done, running, failures, tasks, queue))
        })
        .collect()
}

/// A file's text, `None` when it does not exist.
fn read_optional(path: &Path) -> Result<Option<String>, SlurmError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(SlurmError::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn running() -> Running {
        Running {
            job: "12_1".into(),
            host: "node3".into(),
            started: "2026-11-26T10:00:00Z".into(),
            log: "/r/slurm/logs/ablate-x-cell-12_1.out".into(),
        }
    }

    #[test]
    fn markers_parse() {
        let text = "12_1\tnode3\t2026-11-26T10:00:00Z\t/r/slurm/logs/ablate-x-cell-12_1.out\n";
        assert_eq!(parse_running(text), Some(running()));
        assert_eq!(parse_running("12_1\tnode3\n"), None);
        let failed = "11_0\t1\t2026-11-26T09:00:00Z\t/l/a.out\n\
                      broken line\n\
                      12_1\t143\t2026-11-26T10:00:00Z\t/l/b.out\n";
        let failures = parse_failures(failed);
        assert_eq!(failures.len(), 2);
        assert_eq!(failures[0].exit, "1");
        assert_eq!(failures[1].job, "12_1");
        assert_eq!(failures[1].log, PathBuf::from("/l/b.out"));
    }

    #[test]
    fn squeue_output_parses() {
        let queue = Queue::parse("12_0 RUNNING\n12_1 PENDING\n  13 PENDING\n\n");
        assert_eq!(queue.state("12_0"), Some("RUNNING"));
        assert_eq!(queue.state("12_1"), Some("PENDING"));
        assert_eq!(queue.state("13"), Some("PENDING"));
        assert_eq!(queue.state("12_2"), None);
    }

    #[test]
    fn states_follow_cache_markers_and_queue() {
        let queue = Queue::parse("12_1 RUNNING\n14_0 PENDING\n");
        let failure = Failure {
            job: "11_0".into(),
            exit: "1".into(),
            ended: "2026-11-26T09:00:00Z".into(),
            log: "/l/a.out".into(),
        };
        let tasks = |ids: &[&str]| ids.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        // The cache wins over any marker.
        assert_eq!(
            derive_state(true, Some(running()), vec![], &[], Some(&queue)),
            CellState::Done
        );
        assert_eq!(
            derive_state(false, Some(running()), vec![], &[], Some(&queue)),
            CellState::Running(running())
        );
        // Marked running but gone from the queue.
        let empty = Queue::default();
        assert_eq!(
            derive_state(false, Some(running()), vec![], &[], Some(&empty)),
            CellState::Lost(running())
        );
        // Without squeue the marker is trusted.
        assert_eq!(
            derive_state(false, Some(running()), vec![], &[], None),
            CellState::Running(running())
        );
        // A failure with a resubmitted task still pending is queued.
        assert_eq!(
            derive_state(
                false,
                None,
                vec![failure.clone()],
                &tasks(&["11_0", "14_0"]),
                Some(&queue)
            ),
            CellState::Queued { job: "14_0".into() }
        );
        assert_eq!(
            derive_state(
                false,
                None,
                vec![failure.clone()],
                &tasks(&["11_0"]),
                Some(&queue)
            ),
            CellState::Failed(vec![failure])
        );
        assert_eq!(
            derive_state(false, None, vec![], &tasks(&["11_0"]), Some(&queue)),
            CellState::Missing
        );
        assert!(CellState::Queued { job: "1_0".into() }.in_flight());
        assert!(!CellState::Lost(running()).in_flight());
    }

    #[test]
    fn submitted_tasks_map_array_indices_to_cells() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        let generation = layout.new_generation().unwrap();
        std::fs::write(
            generation.join("tasks.tsv"),
            "stage\ttask\tcells\nshared\t0\t0,2\ncell\t0\t2\ncell\t1\t4\ncell\t2\t5\n",
        )
        .unwrap();
        // The cell array was split: tasks 0-1 in job 21, task 2 in job 22.
        std::fs::write(
            generation.join("jobs.tsv"),
            "stage\toffset\tcount\tjob\nshared\t0\t1\t20\ncell\t0\t2\t21\ncell\t2\t1\t22\ncollect\t0\t1\t23\n",
        )
        .unwrap();
        // A generation never submitted does not count.
        let unsubmitted = layout.new_generation().unwrap();
        std::fs::write(unsubmitted.join("tasks.tsv"), "cell\t0\t0\n").unwrap();
        let map = submitted_tasks(&layout).unwrap();
        assert_eq!(map[&0], ["20_0"]);
        assert_eq!(map[&2], ["20_0", "21_0"]);
        assert_eq!(map[&4], ["21_1"]);
        assert_eq!(map[&5], ["22_0"]);
        assert_eq!(latest_collect(&layout).unwrap().as_deref(), Some("23"));
    }
}
