//! Running an experiment matrix on a Slurm cluster, Slurm doing the scheduling.
//!
//! `ablate slurm FILE` turns the cells that are not done into job arrays
//! whose tasks call `ablate run FILE --cells ... --stages ...` on the shared
//! filesystem, all writing the one content-addressed cache of the output folder:
//!
//! 1. **shared** array: one task per weak-model group with work left. It
//!    trains the group's weak model and runs its false-positive queries
//!    (`--stages shared`), finishing the cells that need nothing more
//!    (strategy `none`). Groups have disjoint weak models, so no two tasks
//!    train the same one.
//! 2. **cell** array (`--dependency=afterany` on the shared array): one task
//!    per mining cell, or per pack of cells, mining and training the strong
//!    model (`--stages cell`). Such a task never trains a weak model: a cell
//!    whose shared task failed fails at once with a message saying so, while
//!    the other groups' cells go on (with `afterok`, one failed weak model
//!    would hold back every strong model). Two cells that mine the same set
//!    share a strong model; the runner's per-stage file locks make the second
//!    wait for the first instead of training it again.
//! 3. **collect** job (`afterany` on everything): `ablate run FILE --stages
//!    cached` assembles `results.csv` and the other tables from the cache.
//!
//! Nothing runs on the login node meanwhile. Each task records its cells'
//! state in markers under `slurm/cells/` (running, or failed with the log's
//! path); a cell's completion is read from the cache's done markers, so
//! resubmitting submits exactly the cells that are neither done nor queued
//! or running. Arrays longer than the cluster's `MaxArraySize` are split;
//! with `--max-parallel K` every array is throttled with `%K` and the parts
//! of a split array run one after another, so that at most K tasks of a
//! stage run at once.
//!
//! Layout under `<output>/slurm/`: `cells/<i>.running|.failed` markers,
//! `logs/` (every job's output), and one numbered folder per generation
//! (`1/`, `2/`, ...) with the task manifest `tasks.tsv`, the scripts
//! `task.sbatch`, `collect.sbatch` and `submit.sh`, and `jobs.tsv` (the
//! submitted job ids).

pub mod script;
pub mod status;
pub mod submit;
pub mod tasks;

use std::path::{Path, PathBuf};

/// Errors of preparing, submitting or inspecting cluster jobs.
#[derive(Debug, thiserror::Error)]
pub enum SlurmError {
    /// A file or folder could not be read or written.
    #[error("could not access '{path}': {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A Slurm command could not be started or failed.
    #[error("`{command}` failed: {message}; is Slurm installed and SLURM_CONF or /etc/slurm/slurm.conf set up on this machine?")]
    Command {
        /// The command line.
        command: String,
        /// Its error output or the reason it did not start.
        message: String,
    },
    /// A file written by `ablate slurm` or by a task has unexpected content.
    #[error("'{path}' line {line}: {message}; delete the file (or its submission folder) if it was edited by hand")]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Submission stopped after some jobs were submitted.
    #[error(
        "sbatch failed after submitting jobs {submitted:?} (cancel them with `scancel`): {message}"
    )]
    PartlySubmitted {
        /// The job ids already submitted.
        submitted: Vec<String>,
        /// The failure.
        message: String,
    },
}

impl SlurmError {
    /// An I/O error on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// The cluster files of one output folder (`<output>/slurm/`).
#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    /// The layout of output folder `output`.
    pub fn new(output: &Path) -> Self {
        Self {
            root: output.join("slurm"),
        }
    }

    /// `<output>/slurm/`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Folder of the per-cell state markers.
    pub fn markers(&self) -> PathBuf {
        self.root.join("cells")
    }

    /// Folder of the jobs' output files.
    pub fn logs(&self) -> PathBuf {
        self.root.join("logs")
    }

    /// The numbered generation folders (`slurm/1`, `slurm/2`, ...), in order.
    pub fn generations(&self) -> Result<Vec<PathBuf>, SlurmError> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(SlurmError::io(&self.root, e)),
        };
        let mut numbered: Vec<(u64, PathBuf)> = entries
            .flatten()
            .filter_map(|entry| {
                let number = entry.file_name().to_str()?.parse::<u64>().ok()?;
                entry.path().is_dir().then(|| (number, entry.path()))
            })
            .collect();
        numbered.sort();
        Ok(numbered.into_iter().map(|(_, path)| path).collect())
    }

    /// Creates the next generation folder (one past the highest).
    pub fn new_generation(&self) -> Result<PathBuf, SlurmError> {
        std::fs::create_dir_all(&self.root).map_err(|e| SlurmError::io(&self.root, e))?;
        let mut next = self
            .generations()?
            .last()
            .and_then(|p| p.file_name()?.to_str()?.parse::<u64>().ok())
            .map_or(1, |n| n + 1);
        loop {
            let dir = self.root.join(next.to_string());
            match std::fs::create_dir(&dir) {
                Ok(()) => return Ok(dir),
                // Another `ablate slurm` took this number meanwhile.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => next += 1,
                Err(e) => return Err(SlurmError::io(&dir, e)),
            }
        }
    }
}

/// A name usable in job names and file names: characters other than
/// letters, digits, `-`, `_` and `.` become `_`.
pub fn safe_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generations_are_numbered_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path());
        assert!(layout.generations().unwrap().is_empty());
        let first = layout.new_generation().unwrap();
        assert_eq!(first, dir.path().join("slurm/1"));
        // A stray folder with a bigger number moves the next one past it;
        // non-numbered folders do not count.
        std::fs::create_dir_all(dir.path().join("slurm/9")).unwrap();
        std::fs::create_dir_all(dir.path().join("slurm/logs")).unwrap();
        assert_eq!(
            layout.new_generation().unwrap(),
            dir.path().join("slurm/10")
        );
        let names: Vec<_> = layout
            .generations()
            .unwrap()
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
            .collect();
        assert_eq!(names, ["1", "9", "10"]);
    }

    #[test]
    fn safe_names() {
        assert_eq!(safe_name("paper"), "paper");
        assert_eq!(safe_name("my exp/v2"), "my_exp_v2");
        assert_eq!(safe_name("a.b-c_d"), "a.b-c_d");
    }
}
