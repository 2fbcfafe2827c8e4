//! This machine's speeds for `ablate plan`'s estimate (see
//! [`super::estimate`]): measured the first time a configuration is asked
//! for, then kept in the user's cache folder
//! (`$XDG_CACHE_HOME/ablate/speeds.json`, else `~/.cache/ablate/speeds.json`)
//! for this binary on this machine. A file written by another build of
//! `ablate` or on another CPU is measured anew.
//!
//! A model's speeds are those of [`crate::train::throughput`] (whole Adam
//! steps at the training batch, inference passes at the evaluation batch)
//! for about [`TARGET_SECONDS`] each, with the threads a job gets, plus the
//! time to assemble a batch from decoded images (with and without
//! augmentation). Data speeds come from generating and decoding a small
//! synthetic dataset ([`CALIBRATION_PATCHES`] patches).

use super::estimate::{DataKey, DataSpeed, ModelSpeed, SpeedKey, Speeds};
use crate::data::augment::AugmentConfig;
use crate::data::batch::{make_batch, AugmentSeed};
use crate::data::images::ImageStore;
use crate::data::synth::SynthConfig;
use crate::model::resnet::ResNetConfig;
use crate::train::throughput::{inference_images_per_second, training_images_per_second};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Seconds each model speed is measured for (at least one step).
pub const TARGET_SECONDS: f64 = 1.5;

/// Patches generated and decoded to measure data preparation.
pub const CALIBRATION_PATCHES: usize = 64;

/// One measurement with when and under what load it was taken.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Measured<T> {
    /// The speeds.
    pub speed: T,
    /// Seconds since the Unix epoch.
    pub unix_time: u64,
    /// One-minute load average then (Linux).
    pub load: Option<f64>,
}

/// The cache file's content.
#[derive(Debug, Default, Serialize, Deserialize)]
struct SpeedFile {
    /// Hash of the `ablate` binary that measured.
    binary: String,
    /// CPU model and logical cores.
    machine: String,
    models: BTreeMap<String, Measured<ModelSpeed>>,
    data: BTreeMap<String, Measured<DataSpeed>>,
}

/// Measures speeds on demand, reusing (and extending) the cache file.
pub struct Calibrator {
    path: Option<PathBuf>,
    file: SpeedFile,
    recalibrate: bool,
    /// When the calibrator was made: with `recalibrate`, only measurements
    /// from then on are reused.
    since: u64,
    /// What was asked for: a line per model or data key, saying whether it
    /// was measured now or read from the cache.
    pub report: Vec<String>,
}

impl Calibrator {
    /// A calibrator using the user's cache file; `recalibrate` measures
    /// everything again (and replaces the cached values).
    pub fn new(recalibrate: bool) -> Self {
        let path = cache_file();
        let stamp = (binary_hash(), machine());
        let file = path
            .as_deref()
            .and_then(|path| std::fs::read(path).ok())
            .and_then(|bytes| serde_json::from_slice::<SpeedFile>(&bytes).ok())
            .filter(|file| (file.binary.clone(), file.machine.clone()) == stamp)
            .unwrap_or_else(|| SpeedFile {
                binary: stamp.0,
                machine: stamp.1,
                ..SpeedFile::default()
            });
        Self {
            path,
            file,
            recalibrate,
            since: unix_time(),
            report: Vec::new(),
        }
    }

    /// Writes the cache file (nothing when there is no cache folder; a
    /// failed write only costs a measurement next time).
    fn save(&self) {
        if let Some(path) = &self.path {
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let json = serde_json::to_vec_pretty(&self.file).expect("speeds serialise");
            let _ = crate::io::write_atomic(path, &json);
        }
    }

    /// Reads `key` from `entries` unless recalibrating (or measured during
    /// this session), else measures it, and reports which.
    fn lookup<T: Copy>(
        &mut self,
        label: String,
        entries: impl Fn(&mut SpeedFile) -> &mut BTreeMap<String, Measured<T>>,
        describe: impl Fn(&T) -> String,
        measure: impl FnOnce() -> Result<T, String>,
    ) -> Result<T, String> {
        let now = unix_time();
        let oldest_usable = if self.recalibrate { self.since } else { 0 };
        if let Some(found) = entries(&mut self.file).get(&label).copied() {
            if found.unix_time >= oldest_usable {
                if !self.report.iter().any(|line| line.starts_with(&label)) {
                    self.report.push(format!(
                        "{label}: {} (cached, measured {} ago{})",
                        describe(&found.speed),
                        ago(now.saturating_sub(found.unix_time)),
                        load_text(found.load)
                    ));
                }
                return Ok(found.speed);
            }
        }
        let load = load_average();
        let speed = measure()?;
        let measured = Measured {
            speed,
            unix_time: now,
            load,
        };
        entries(&mut self.file).insert(label.clone(), measured);
        self.report.push(format!(
            "{label}: {} (measured now{})",
            describe(&speed),
            load_text(load)
        ));
        self.save();
        Ok(speed)
    }
}

impl Speeds for Calibrator {
    fn model(&mut self, key: &SpeedKey) -> Result<ModelSpeed, String> {
        self.lookup(
            key.to_string(),
            |file| &mut file.models,
            |s| {
                format!(
                    "training {:.1} images/s, inference {:.1} images/s, batch assembly {:.2} ms/image",
                    s.train_images_per_s,
                    s.inference_images_per_s,
                    s.augmented_batch_seconds * 1e3
                )
            },
            || measure_model(key),
        )
    }

    fn data(&mut self, key: &DataKey) -> Result<DataSpeed, String> {
        let label = match key.synthetic_size {
            0 => format!("decoding at {} px", key.image_size),
            size => format!(
                "synthetic data at {size} px, decoded at {} px",
                key.image_size
            ),
        };
        self.lookup(
            label,
            |file| &mut file.data,
            |s| {
                format!(
                    "generation {:.2} ms/patch, decoding {:.2} ms/patch",
                    s.generate_seconds * 1e3,
                    s.decode_seconds * 1e3
                )
            },
            || measure_data(key),
        )
    }
}

/// Measures a model's speeds with `key.threads` threads.
fn measure_model(key: &SpeedKey) -> Result<ModelSpeed, String> {
    let model = ResNetConfig::from_name(&key.model, 2).map_err(|e| e.to_string())?;
    let device = crate::device::open_device(&key.device).map_err(|e| e.to_string())?;
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(key.threads)
        .build()
        .map_err(|e| format!("could not start {} threads: {e}", key.threads))?;
    pool.install(|| {
        let measure = |speed: Measure, batch: usize| -> candle_core::Result<f64> {
            // One warm-up and one timed step, then more steps if that took
            // less than the target.
            let started = Instant::now();
            let probe = speed(&model, key.image_size, batch, 1, 1, &device)?;
            if started.elapsed().as_secs_f64() >= TARGET_SECONDS {
                return Ok(probe);
            }
            let steps = (TARGET_SECONDS * probe / batch as f64).ceil().max(2.0) as usize;
            speed(&model, key.image_size, batch, 1, steps, &device)
        };
        let train = measure(training_images_per_second, key.batch_size);
        let inference = measure(inference_images_per_second, key.eval_batch_size);
        let (batch, augmented) = batch_assembly(key.image_size, key.augment, &device);
        Ok(ModelSpeed {
            train_images_per_s: train.map_err(|e| e.to_string())?,
            inference_images_per_s: inference.map_err(|e| e.to_string())?,
            augmented_batch_seconds: augmented,
            batch_seconds: batch,
        })
    })
}

/// Signature of the throughput measurements.
type Measure =
    fn(&ResNetConfig, usize, usize, usize, usize, &candle_core::Device) -> candle_core::Result<f64>;

/// Seconds per image of assembling batches of 64 random images of `size`,
/// without and with augmentation (the same without when `augment` is off).
fn batch_assembly(size: usize, augment: bool, device: &candle_core::Device) -> (f64, f64) {
    let images: Vec<image::RgbImage> = (0..64u32)
        .map(|i| {
            image::RgbImage::from_fn(size as u32, size as u32, |x, y| {
                image::Rgb([(x * 7 + i) as u8, (y * 5 + i) as u8, (x ^ y) as u8])
            })
        })
        .collect();
    let Ok(store) = ImageStore::from_images(images, size as u32) else {
        return (0.0, 0.0);
    };
    let indices: Vec<usize> = (0..store.len()).collect();
    let config = AugmentConfig::default();
    let time = |augmented: bool| {
        let seed = AugmentSeed {
            seed: 0,
            epoch: 0,
            first_draw: 0,
        };
        let started = Instant::now();
        let ok = make_batch(
            &store,
            &indices,
            augmented.then_some((&config, seed)),
            device,
        );
        ok.map_or(0.0, |_| {
            started.elapsed().as_secs_f64() / indices.len() as f64
        })
    };
    let plain = time(false);
    (plain, if augment { time(true) } else { plain })
}

/// Generates and decodes a small synthetic dataset like `key`'s.
fn measure_data(key: &DataKey) -> Result<DataSpeed, String> {
    static CALLS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ablate-calibrate-{}-{call}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let half = CALIBRATION_PATCHES / 2;
    let config = SynthConfig {
        size: key.synthetic_size.max(key.image_size).clamp(32, 1024),
        hard_patches: half,
        hard_slides: 4,
        pool_patches: half,
        pool_slides: 4,
        ..SynthConfig::default()
    };
    let result = (|| {
        let started = Instant::now();
        crate::data::synth::generate(&config, &dir).map_err(|e| e.to_string())?;
        let generated = started.elapsed().as_secs_f64();
        let started = Instant::now();
        crate::data::prepare::decode(&dir, key.image_size).map_err(|e| e.to_string())?;
        let decoded = started.elapsed().as_secs_f64();
        let patches = (2 * half) as f64;
        Ok(DataSpeed {
            generate_seconds: if key.synthetic_size == 0 {
                0.0
            } else {
                generated / patches
            },
            decode_seconds: decoded / patches,
        })
    })();
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// `$XDG_CACHE_HOME/ablate/speeds.json`, else `~/.cache/ablate/speeds.json`.
fn cache_file() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cache")))?;
    Some(base.join("ablate").join("speeds.json"))
}

/// A hash of the running binary (empty when it cannot be read).
fn binary_hash() -> String {
    std::env::current_exe()
        .and_then(std::fs::read)
        .map(|bytes| blake3::hash(&bytes).to_hex()[..16].to_string())
        .unwrap_or_default()
}

/// The CPU model and the number of logical cores.
fn machine() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    format!("{model}, {} cores", crate::threads::all_cores())
}

/// The one-minute load average (Linux).
pub fn load_average() -> Option<f64> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

fn load_text(load: Option<f64>) -> String {
    load.map_or(String::new(), |l| format!(" at load {l:.2}"))
}

fn unix_time() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `5 s`, `3 min`, `2 h`, `4 days`.
fn ago(seconds: u64) -> String {
    match seconds {
        0..=59 => format!("{seconds} s"),
        60..=3599 => format!("{} min", seconds / 60),
        3600..=172_799 => format!("{} h", seconds / 3600),
        _ => format!("{} days", seconds / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measured_speeds_are_positive_and_cached_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let key = SpeedKey {
            model: "resnet10-w4".into(),
            image_size: 32,
            batch_size: 4,
            eval_batch_size: 8,
            augment: true,
            device: "cpu".into(),
            threads: 1,
        };
        let speed = measure_model(&key).unwrap();
        for value in [speed.train_images_per_s, speed.inference_images_per_s] {
            assert!(value.is_finite() && value > 0.0, "{speed:?}");
        }
        assert!(speed.augmented_batch_seconds > 0.0 && speed.batch_seconds > 0.0);
        let data = measure_data(&DataKey {
            synthetic_size: 32,
            image_size: 32,
        })
        .unwrap();
        assert!(data.generate_seconds > 0.0 && data.decode_seconds > 0.0);
        // A calibrator over a file of this binary: read, not measured again.
        let path = dir.path().join("speeds.json");
        let mut file = SpeedFile {
            binary: binary_hash(),
            machine: machine(),
            ..SpeedFile::default()
        };
        let stored = Measured {
            speed,
            unix_time: 1,
            load: Some(0.5),
        };
        file.models.insert(key.to_string(), stored);
        std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
        let mut calibrator = Calibrator {
            path: Some(path.clone()),
            file: serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap(),
            recalibrate: false,
            since: unix_time(),
            report: Vec::new(),
        };
        assert_eq!(calibrator.model(&key).unwrap(), speed);
        assert!(
            calibrator.report[0].contains("(cached, measured ")
                && calibrator.report[0].contains("at load 0.50"),
            "{:?}",
            calibrator.report
        );
    }

    #[test]
    fn durations_ago_read_naturally() {
        assert_eq!(ago(5), "5 s");
        assert_eq!(ago(600), "10 min");
        assert_eq!(ago(7200), "2 h");
        assert_eq!(ago(3 * 86_400), "3 days");
    }
}
