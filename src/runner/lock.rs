//! Locks: one table-writing run at a time per output folder, and one
//! computation at a time per stage instance.
//!
//! The folder lock file holds the owner's process id. A lock left by a
//! process that no longer exists (after `kill -9`) is taken over; a live
//! owner makes the second run stop with a message naming it.
//!
//! Stage locks let runs of disjoint cells share one output folder (the array
//! tasks of a cluster job): whoever computes a stage instance holds an
//! advisory `flock` on `<stage folder>/.lock`, and a second run needing the
//! same instance waits, then reads the finished artifact instead of
//! computing it again. The operating system (or the NFS server) releases an
//! `flock` when its holder dies, so a killed task leaves no stale lock.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Why the lock could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another live process holds the lock.
    #[error("another ablate run (process {pid}) is writing to '{dir}'; wait for it to finish or stop it (lock file '{lock}')")]
    Busy {
        /// Its process id.
        pid: u32,
        /// The output folder.
        dir: PathBuf,
        /// The lock file.
        lock: PathBuf,
    },
    /// A stage lock could not be taken.
    #[error("could not lock '{path}': {source}; runs that share an output folder need a filesystem with file locks (flock; on Lustre mount with `-o flock`)")]
    Stage {
        /// The stage's lock file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The lock file could not be written.
    #[error("could not create the lock file '{path}': {source}")]
    Io {
        /// The lock file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// A held lock; released when dropped.
#[derive(Debug)]
pub struct RunLock {
    path: PathBuf,
}

impl RunLock {
    /// Takes the lock of output folder `dir`.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        std::fs::create_dir_all(dir).map_err(|source| LockError::Io {
            path: dir.into(),
            source,
        })?;
        let path = dir.join(".ablate.lock");
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    write!(file, "{}", std::process::id()).map_err(|source| LockError::Io {
                        path: path.clone(),
                        source,
                    })?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let owner = std::fs::read_to_string(&path)
                        .ok()
                        .and_then(|s| s.trim().parse::<u32>().ok());
                    match owner {
                        Some(pid) if process_alive(pid) => {
                            return Err(LockError::Busy {
                                pid,
                                dir: dir.into(),
                                lock: path,
                            });
                        }
                        // Stale (owner gone) or unreadable: remove and retry once.
                        _ => {
                            let _ = std::fs::remove_file(&path);
                        }
                    }
                }
                Err(source) => return Err(LockError::Io { path, source }),
            }
        }
        Err(LockError::Io {
            path,
            source: std::io::Error::other("lock file keeps reappearing"),
        })
    }
}

impl Drop for RunLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Name of a stage instance's lock file, inside its folder.
const STAGE_LOCK: &str = ".lock";

/// An exclusive lock on one stage instance, held while it is computed;
/// released when dropped (or when the holding process dies).
#[derive(Debug)]
pub struct StageLock {
    _file: std::fs::File,
}

impl StageLock {
    /// Waits until no other process computes the stage instance in folder
    /// `dir` (created if absent), then takes its lock.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let path = dir.join(STAGE_LOCK);
        let stage_error = |source| LockError::Stage {
            path: path.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(stage_error)?;
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(stage_error)?;
        // `File::lock` (flock, std since Rust 1.89): released by the kernel
        // when the holder dies, so a killed task leaves no stale lock.
        file.lock().map_err(stage_error)?;
        Ok(Self { _file: file })
    }
}

impl LockError {
    /// Whether the filesystem offers no file locks at all (as opposed to a failure).
    pub fn is_unsupported(&self) -> bool {
        matches!(self, LockError::Stage { source, .. } if source.kind() == std::io::ErrorKind::Unsupported)
    }
}

/// Whether a process exists (Linux: its `/proc` entry). Elsewhere every
/// recorded owner counts as alive, so a stale lock must be deleted by hand.
fn process_alive(pid: u32) -> bool {
    if Path::new("/proc/self").exists() {
        Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_is_refused_and_stale_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let lock = RunLock::acquire(dir.path()).unwrap();
        let error = RunLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(
            error.contains(&format!("process {}", std::process::id())),
            "{error}"
        );
        drop(lock);
        // A lock whose owner does not exist (pid beyond pid_max) is stale.
        std::fs::write(dir.path().join(".ablate.lock"), "4194305").unwrap();
        let _lock = RunLock::acquire(dir.path()).unwrap();
    }

    #[test]
    fn stage_lock_makes_the_second_holder_wait() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::time::Duration;
        let dir = tempfile::tempdir().unwrap();
        let stage = dir.path().join("weak").join("abc");
        let first = StageLock::acquire(&stage).unwrap();
        let released = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| {
                // flock locks belong to open files, so a second open file in
                // this same process conflicts like another process would.
                let _second = StageLock::acquire(&stage).unwrap();
                released.load(Ordering::SeqCst)
            });
            std::thread::sleep(Duration::from_millis(200));
            released.store(true, Ordering::SeqCst);
            drop(first);
            assert!(
                waiter.join().unwrap(),
                "the second lock was granted while the first was held"
            );
        });
        // The lock file stays (removing it would race with waiters) and is hidden.
        assert!(stage.join(".lock").is_file());
    }
}
