//! How much memory a run needs, and how many jobs fit in the memory the
//! machine has left.
//!
//! A job (`ablate run --jobs N`) runs one weak-model group at a time and
//! trains its models one after another, so it needs the memory of its
//! largest training; the decoded images are loaded once and shared by all
//! jobs. From a cell's settings and its model's layer shapes
//! ([`ModelCost`]), on the CPU:
//!
//! ```text
//! per job = RUNTIME_BYTES                                     code, thread stacks, scratch, heaps
//!         + parameters x 4 B x MODEL_COPIES                   weights, gradients, Adam's moments, snapshots
//!         + batch x training activations x 4 B x TRAINING_COPIES   kept for the backward pass, gradients
//!         + eval batch x inference activations x 4 B           the largest block of an inference batch
//! shared  = (hard + pool patches) x image size² x 3 B         per decoded dataset
//! ```
//!
//! On a GPU the tensors live in device memory, and a job needs only its
//! runtime on the host. The constants were fitted to the peak resident
//! memory (`/usr/bin/time -v`) of `ablate train` and `ablate pipeline` runs
//! of ResNet-18 and ResNet-10-w16 at 64 and 128 px, batches 32 and 64
//! (README, "Memory"): the estimate is above every measured peak, by 6-33%
//! (most for the small models, whose runtime dominates). A whole `ablate run`
//! of quick.toml with `--jobs 1` peaks 5% below its estimate (it peaked 5%
//! above when quick.toml trained 10 seeds of 16 epochs).
//!
//! The memory left is `MemAvailable` of `/proc/meminfo`, or less when the
//! process's cgroup (v1 or v2) has a limit: the limit minus the cgroup's
//! usage without its reclaimable page cache (`inactive_file`).

use super::plan::Plan;
use crate::model::cost::ModelCost;
use crate::model::resnet::ResNetConfig;
use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;
#[cfg(test)]
use std::path::PathBuf;

/// Memory of a job besides its tensors: the binary, thread stacks, the
/// convolutions' per-thread scratch buffers and the allocator's heaps.
pub const RUNTIME_BYTES: u64 = 40 << 20;

/// Copies of the parameters a training holds at its peak: weights,
/// gradients, Adam's two moments, the best epoch's snapshot (two while a
/// new best replaces it), and the weak model kept for the false-positive
/// query while the strong one trains.
pub const MODEL_COPIES: u64 = 7;

/// The activations a training step keeps for its backward pass, times
/// this: their gradients while the backward pass runs, and the blocks of
/// the step's working set parked between steps (see [`crate::alloc`]).
pub const TRAINING_COPIES: f64 = 2.5;

/// What one cell's training needs: its model, input and batch sizes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct JobShape {
    /// Model name (`resnet18`).
    pub model: String,
    /// Side of the input in pixels.
    pub image_size: usize,
    /// Training batch size.
    pub batch_size: usize,
    /// Evaluation batch size.
    pub eval_batch_size: usize,
    /// Whether tensors live on the CPU (else on a GPU).
    pub cpu: bool,
}

impl JobShape {
    /// Estimated peak bytes of one job training this shape (see the module
    /// docs); errors for an unknown model name.
    pub fn bytes(&self) -> Result<u64, crate::model::resnet::ResNetConfigError> {
        if !self.cpu {
            return Ok(RUNTIME_BYTES);
        }
        let cost = ModelCost::of(&ResNetConfig::from_name(&self.model, 2)?, self.image_size);
        let float = 4;
        let training = self.batch_size as u64 * cost.training_activations * float;
        Ok(RUNTIME_BYTES
            + cost.parameters * float * MODEL_COPIES
            + (training as f64 * TRAINING_COPIES).ceil() as u64
            + self.eval_batch_size as u64 * cost.inference_activations * float)
    }
}

impl fmt::Display for JobShape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} at {} px, batch {}, evaluation batch {}",
            self.model, self.image_size, self.batch_size, self.eval_batch_size
        )?;
        if !self.cpu {
            f.write_str(", tensors on the GPU")?;
        }
        Ok(())
    }
}

/// The memory a run needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryEstimate {
    /// Bytes one job needs at most (its largest training).
    pub per_job: u64,
    /// The training that needs them.
    pub largest: JobShape,
    /// Bytes all jobs share: the decoded images.
    pub shared: u64,
}

impl MemoryEstimate {
    /// The estimate for the selected cells of a plan (all when `selected`
    /// is `None`); `None` when no cell is selected.
    pub fn of(
        plan: &Plan,
        selected: Option<&std::collections::BTreeSet<usize>>,
    ) -> Result<Option<Self>, crate::model::resnet::ResNetConfigError> {
        let mut largest: Option<(u64, JobShape)> = None;
        let mut datasets: BTreeMap<&str, u64> = BTreeMap::new();
        for cell in &plan.cells {
            if selected.is_some_and(|s| !s.contains(&cell.index)) {
                continue;
            }
            let c = &cell.config;
            let shape = JobShape {
                model: c.model.name.clone(),
                image_size: c.data.image_size as usize,
                batch_size: c.training.batch_size,
                eval_batch_size: c.training.eval_batch_size,
                cpu: !c.device.starts_with("cuda"),
            };
            let bytes = shape.bytes()?;
            if largest.as_ref().is_none_or(|(most, _)| bytes > *most) {
                largest = Some((bytes, shape));
            }
            datasets.entry(&cell.keys.data).or_insert_with(|| {
                let patches = match &c.data.path {
                    Some(path) => count_patches(path),
                    None => (c.data.synthetic.hard_patches + c.data.synthetic.pool_patches) as u64,
                };
                let side = u64::from(c.data.image_size);
                patches * side * side * 3
            });
        }
        Ok(largest.map(|(per_job, largest)| MemoryEstimate {
            per_job,
            largest,
            shared: datasets.values().sum(),
        }))
    }

    /// Jobs that fit in `available` bytes (0 when not even one does).
    pub fn jobs_that_fit(&self, available: u64) -> usize {
        let left = available.saturating_sub(self.shared);
        (left / self.per_job.max(1)) as usize
    }
}

/// Image files of a dataset folder (hard-labeled and pool); 0 when unreadable.
fn count_patches(root: &Path) -> u64 {
    [crate::data::HARD_DIR, crate::data::WEAK_DIR]
        .iter()
        .filter_map(|dir| std::fs::read_dir(root.join(dir)).ok())
        .map(|entries| entries.count() as u64)
        .sum()
}

/// Memory the run may use, and where the number comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvailableMemory {
    /// Bytes.
    pub bytes: u64,
    /// `MemAvailable in /proc/meminfo`, or the cgroup file that limits it.
    pub source: String,
}

/// The memory this process may still use (Linux; `None` elsewhere or when
/// `/proc/meminfo` cannot be read).
pub fn available_memory() -> Option<AvailableMemory> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let system = AvailableMemory {
        bytes: meminfo_field(&meminfo, "MemAvailable")?,
        source: "MemAvailable in /proc/meminfo".into(),
    };
    let cgroup = std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|text| cgroup_available(&text, Path::new("/sys/fs/cgroup")));
    Some(match cgroup {
        Some(limited) if limited.bytes < system.bytes => limited,
        _ => system,
    })
}

/// A `kB` field of `/proc/meminfo`, in bytes.
fn meminfo_field(meminfo: &str, name: &str) -> Option<u64> {
    meminfo.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(':')?;
        let kib: u64 = value.trim().strip_suffix("kB")?.trim().parse().ok()?;
        Some(kib * 1024)
    })
}

/// The memory left under the cgroup limit of the process whose
/// `/proc/self/cgroup` is `cgroups`, with the cgroup filesystem at `root`:
/// v2 (`memory.max`, `memory.current`) or v1 (`memory/memory.limit_in_bytes`,
/// `memory.usage_in_bytes`), usage counted without `inactive_file`. `None`
/// without a limit.
fn cgroup_available(cgroups: &str, root: &Path) -> Option<AvailableMemory> {
    cgroups
        .lines()
        .find_map(|line| cgroup_line_available(line, root))
}

/// [`cgroup_available`] for one line of `/proc/self/cgroup`.
fn cgroup_line_available(line: &str, root: &Path) -> Option<AvailableMemory> {
    let mut fields = line.splitn(3, ':');
    let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
    let path = path.trim_start_matches('/');
    let (base, limit, usage, inactive) = if controllers.is_empty() {
        (
            root.to_path_buf(),
            "memory.max",
            "memory.current",
            "inactive_file",
        )
    } else if controllers.split(',').any(|c| c == "memory") {
        (
            root.join("memory"),
            "memory.limit_in_bytes",
            "memory.usage_in_bytes",
            "total_inactive_file",
        )
    } else {
        return None;
    };
    // In a container the cgroup's own folder is usually mounted as the
    // root; try the full path first.
    let dir = [base.join(path), base]
        .into_iter()
        .find(|dir| dir.join(limit).exists())?;
    let read = |file: &str| std::fs::read_to_string(dir.join(file)).ok();
    // "max" (v2) or a page-rounded i64::MAX (v1) mean no limit.
    let max = read(limit)?
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|&max| max < 1 << 60)?;
    let used: u64 = read(usage)?.trim().parse().ok()?;
    let reclaimable = read("memory.stat")
        .and_then(|stat| {
            stat.lines().find_map(|l| {
                let (key, value) = l.split_once(' ')?;
                (key == inactive).then(|| value.trim().parse().ok())?
            })
        })
        .unwrap_or(0);
    Some(AvailableMemory {
        bytes: max.saturating_sub(used.saturating_sub(reclaimable)),
        source: format!("the cgroup limit in {}", dir.join(limit).display()),
    })
}

/// Why a run cannot start: not even one job fits in memory.
#[derive(Debug, thiserror::Error)]
#[error(
    "not enough memory for one job: a job needs about {need} ({shape}) and the decoded images {shared}, \
     but {available} is available ({origin}); lower training.eval_batch_size, training.batch_size \
     or data.image_size, use a smaller model, or free memory"
)]
pub struct NotEnoughMemory {
    /// Bytes per job, formatted.
    need: Bytes,
    /// The largest training.
    shape: JobShape,
    /// Shared bytes, formatted.
    shared: Bytes,
    /// Available bytes, formatted.
    available: Bytes,
    /// Where the available number comes from.
    origin: String,
}

/// The jobs a run uses: the `wanted` number (already at most one per
/// weak-model group, see [`super::jobs::Jobs::resolve`]), or fewer when they
/// would not fit in `available` memory, with a note saying why; an error
/// when not even one fits. `available` `None` (unknown) keeps `wanted`.
pub fn fit_jobs(
    wanted: usize,
    estimate: &MemoryEstimate,
    available: Option<&AvailableMemory>,
) -> Result<(usize, Option<String>), NotEnoughMemory> {
    let Some(available) = available else {
        return Ok((wanted, None));
    };
    let fit = estimate.jobs_that_fit(available.bytes);
    if fit == 0 {
        return Err(NotEnoughMemory {
            need: Bytes(estimate.per_job),
            shape: estimate.largest.clone(),
            shared: Bytes(estimate.shared),
            available: Bytes(available.bytes),
            origin: available.source.clone(),
        });
    }
    if fit >= wanted {
        return Ok((wanted, None));
    }
    let note = format!(
        "{wanted} jobs lowered to {fit}: each job needs about {} ({}) and the decoded images {}, \
         and {} is available ({})",
        Bytes(estimate.per_job),
        estimate.largest,
        Bytes(estimate.shared),
        Bytes(available.bytes),
        available.source
    );
    Ok((fit, Some(note)))
}

/// Bytes as `1.2 GB` / `350 MB` (powers of 1000, as `free -h` does not;
/// one decimal from 1 GB up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bytes = self.0 as f64;
        if bytes >= 1e9 {
            write!(f, "{:.1} GB", bytes / 1e9)
        } else {
            write!(f, "{:.0} MB", bytes / 1e6)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes `(path, text)` files under `root`; returns `root`.
    fn write_files(root: &Path, files: &[(&str, &str)]) -> PathBuf {
        for (path, text) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
            std::fs::write(path, text).expect("write");
        }
        root.to_path_buf()
    }

    fn shape(model: &str, image_size: usize, batch_size: usize) -> JobShape {
        JobShape {
            model: model.into(),
            image_size,
            batch_size,
            eval_batch_size: 256,
            cpu: true,
        }
    }

    #[test]
    fn the_estimate_follows_the_documented_formula() {
        let job = shape("resnet18", 64, 32);
        let cost = ModelCost::of(&ResNetConfig::from_name("resnet18", 2).unwrap(), 64);
        let expected = RUNTIME_BYTES
            + cost.parameters * 4 * MODEL_COPIES
            + (32 * cost.training_activations * 4) * 5 / 2
            + 256 * cost.inference_activations * 4;
        assert_eq!(job.bytes().unwrap(), expected);
        // 41.9 MB + 7 x 44.7 MB + 2.5 x 63.4 MB + 96.5 MB.
        assert_eq!(job.bytes().unwrap() / 1_000_000, 609);
        // Larger batches, images and models need more; a GPU job only its runtime.
        let bytes = |s: JobShape| s.bytes().unwrap();
        assert!(bytes(shape("resnet18", 64, 64)) > bytes(job.clone()));
        assert!(bytes(shape("resnet18", 128, 32)) > bytes(job.clone()));
        assert!(bytes(shape("resnet10-w16", 64, 32)) < bytes(job.clone()));
        let gpu = JobShape { cpu: false, ..job };
        assert_eq!(bytes(gpu), RUNTIME_BYTES);
        assert!(shape("resnet7", 64, 32).bytes().is_err());
    }

    fn estimate(per_job: u64, shared: u64) -> MemoryEstimate {
        MemoryEstimate {
            per_job,
            largest: shape("resnet18", 224, 32),
            shared,
        }
    }

    fn available(bytes: u64) -> AvailableMemory {
        AvailableMemory {
            bytes,
            source: "MemAvailable in /proc/meminfo".into(),
        }
    }

    #[test]
    fn jobs_are_kept_lowered_or_refused_by_the_memory_left() {
        let gb = 1_000_000_000;
        let need = estimate(2 * gb, gb);
        // 1 GB shared + 4 x 2 GB fit in 9.5 GB.
        let roomy = available(9_500_000_000);
        assert_eq!(fit_jobs(4, &need, Some(&roomy)).unwrap(), (4, None));
        // Unknown memory: the request stands.
        assert_eq!(fit_jobs(8, &need, None).unwrap(), (8, None));
        // 6 GB: (6 - 1) / 2 = 2 jobs.
        assert_eq!(
            fit_jobs(2, &need, Some(&available(6 * gb))).unwrap(),
            (2, None)
        );
        let (jobs, note) = fit_jobs(4, &need, Some(&available(6 * gb))).unwrap();
        assert_eq!(jobs, 2);
        assert_eq!(
            note.unwrap(),
            "4 jobs lowered to 2: each job needs about 2.0 GB (resnet18 at 224 px, batch 32, \
             evaluation batch 256) and the decoded images 1.0 GB, and 6.0 GB is available \
             (MemAvailable in /proc/meminfo)"
        );
        // 2.5 GB: not even one job.
        let error = fit_jobs(1, &need, Some(&available(2_500_000_000))).unwrap_err();
        assert_eq!(
            error.to_string(),
            "not enough memory for one job: a job needs about 2.0 GB (resnet18 at 224 px, batch 32, \
             evaluation batch 256) and the decoded images 1.0 GB, but 2.5 GB is available \
             (MemAvailable in /proc/meminfo); lower training.eval_batch_size, training.batch_size \
             or data.image_size, use a smaller model, or free memory"
        );
    }

    #[test]
    fn a_plan_needs_its_largest_training_and_each_dataset_once() {
        let text = r#"
            name = "t"
            [data]
            image_size = 32
            [matrix]
            "model.name" = ["resnet10-w16", "resnet18"]
            "data.pos_fraction" = [0.5, 1.0]
        "#;
        let experiment =
            crate::experiment::load::parse_experiment(Path::new("t.toml"), text).unwrap();
        let plan = Plan::new(experiment, None);
        let all = MemoryEstimate::of(&plan, None).unwrap().unwrap();
        assert_eq!(all.largest, shape("resnet18", 32, 32));
        assert_eq!(all.per_job, shape("resnet18", 32, 32).bytes().unwrap());
        // Subsamples share the decoded images: one dataset of 1,000 + 1,500 patches.
        assert_eq!(all.shared, 2500 * 32 * 32 * 3);
        let small: std::collections::BTreeSet<usize> = plan
            .cells
            .iter()
            .filter(|c| c.config.model.name == "resnet10-w16")
            .map(|c| c.index)
            .collect();
        assert_eq!(small.len(), 2);
        let some = MemoryEstimate::of(&plan, Some(&small)).unwrap().unwrap();
        assert_eq!(some.largest, shape("resnet10-w16", 32, 32));
        assert!(MemoryEstimate::of(&plan, Some(&[].into()))
            .unwrap()
            .is_none());
    }

    #[test]
    fn meminfo_and_cgroup_limits_are_read() {
        let meminfo = "MemTotal:       24683636 kB\nMemAvailable:   20269608 kB\n";
        assert_eq!(
            meminfo_field(meminfo, "MemAvailable"),
            Some(20269608 * 1024)
        );
        assert_eq!(meminfo_field(meminfo, "MemFree"), None);
        let dir = tempfile::tempdir().unwrap();
        // v2, the cgroup's folder under the root.
        let v2 = write_files(
            &dir.path().join("v2"),
            &[
                ("job/memory.max", "4000000000\n"),
                ("job/memory.current", "1500000000\n"),
                (
                    "job/memory.stat",
                    "anon 1\ninactive_file 500000000\nactive_file 2\n",
                ),
            ],
        );
        let limited = cgroup_available("0::/job\n", &v2).unwrap();
        assert_eq!(limited.bytes, 3_000_000_000);
        assert!(
            limited.source.ends_with("job/memory.max"),
            "{}",
            limited.source
        );
        // v1, mounted as the root (a container), without a limit.
        let v1 = write_files(
            &dir.path().join("v1"),
            &[
                ("memory/memory.limit_in_bytes", "9223372036854771712\n"),
                ("memory/memory.usage_in_bytes", "20198907904\n"),
            ],
        );
        let cgroups = "5:devices:/\n4:memory:/process_api/b24\n0::/\n";
        assert_eq!(cgroup_available(cgroups, &v1), None);
        // The same with a limit of 2 GB, 1.2 GB used, 0.2 GB reclaimable.
        write_files(
            &v1,
            &[
                ("memory/memory.limit_in_bytes", "2000000000\n"),
                ("memory/memory.usage_in_bytes", "1200000000\n"),
                (
                    "memory/memory.stat",
                    "cache 5\ntotal_inactive_file 200000000\n",
                ),
            ],
        );
        assert_eq!(cgroup_available(cgroups, &v1).unwrap().bytes, 1_000_000_000);
        // v2 "max": no limit.
        write_files(&v2, &[("job/memory.max", "max\n")]);
        assert_eq!(cgroup_available("0::/job\n", &v2), None);
    }

    #[test]
    fn bytes_print_in_megabytes_or_gigabytes() {
        assert_eq!(Bytes(349_600_000).to_string(), "350 MB");
        assert_eq!(Bytes(1_240_000_000).to_string(), "1.2 GB");
    }
}
