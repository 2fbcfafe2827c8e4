//! Seeded procedural generator of a synthetic lymphatic-invasion dataset.
//!
//! The public dataset cannot be shipped with the crate, and a study needs data
//! whose ground truth is known, so `ablate synth` draws H&E-like patches in the
//! public dataset's layout:
//!
//! ```text
//! <out>/hard_labeled_dataset/{pos|neg}_{slide}_{x-y}.png   (slides S01..)
//! <out>/weakly_labeled_dataset/{slide}_{x-y}.png           (slides W01.., LI-negative)
//! <out>/manifest.csv                                       path,source,label,slide,kind
//! ```
//!
//! Both sets are PNG, so the file format never tells them apart. The
//! hard-labeled set is mostly easy negatives with few mimics (tumour nests in
//! retraction clefts, which look like invasion but lack an endothelial
//! lining); the weakly labeled pool, from other slides, is rich in mimics.
//! That asymmetry is the premise of hard negative mining.
//!
//! Reproducibility: every patch draws only from its own stream
//! (`synth-patch`, `[source, patch]`), every slide's stain from
//! (`synth-stain`, `[source, slide]`), and the assignment of kinds, slides and
//! coordinates from (`synth-assign`, `[source]`). Patches are rendered in
//! parallel and the output is byte-identical for any thread count.
//!
//! Default non-mimic negative mix: 40 % stroma, 35 % tumour nest, 25 % empty
//! vessel (stroma is the bulk of any slide; nests and vessels are the
//! structures a pathologist must rule out).

pub mod draw;
pub mod kinds;
pub mod noise;
pub mod preview;
pub mod stain;

pub use kinds::{build_scene, render_patch, SceneStyle};
pub use stain::Stain;

use crate::data::{Label, PatchKind, Source, HARD_DIR, MANIFEST_FILE, WEAK_DIR};
use crate::seed::stream;
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

/// Version of the generator's output. Bump it whenever the images (or the
/// manifest) generated for given settings change, so that data and every
/// stage computed from them are regenerated instead of reused: it enters
/// the synthetic data's record (`synth.json`) and the data stage's cache
/// key, and unlike a mere change of build, no flag reuses data of another
/// generator version.
pub const GENERATOR_VERSION: u32 = 4;

/// Settings of the synthetic dataset (also the `ablate synth` flags).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct SynthConfig {
    /// Root seed: the same seed and settings give byte-identical files.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Patch width and height in pixels (at least 32; drawings scale, so any size looks alike).
    #[arg(long, default_value_t = 64)]
    pub size: u32,
    /// Number of hard-labeled patches.
    #[arg(long, default_value_t = 1000)]
    pub hard_patches: usize,
    /// Number of slides the hard-labeled patches come from.
    #[arg(long, default_value_t = 48)]
    pub hard_slides: usize,
    /// Fraction of hard-labeled patches that are positive (lymphatic invasion).
    #[arg(long, default_value_t = 0.3)]
    pub positive_fraction: f64,
    /// Fraction of hard-labeled negatives that are mimics (tumour nest in a retraction cleft).
    #[arg(long, default_value_t = 0.15)]
    pub hard_mimic_fraction: f64,
    /// Number of weakly labeled pool patches (all negative).
    #[arg(long, default_value_t = 1500)]
    pub pool_patches: usize,
    /// Number of LI-negative slides the pool comes from (distinct from the hard-labeled slides).
    #[arg(long, default_value_t = 40)]
    pub pool_slides: usize,
    /// Fraction of pool patches that are mimics.
    #[arg(long, default_value_t = 0.25)]
    pub pool_mimic_fraction: f64,
    /// Weight of plain stroma among the non-mimic negatives.
    #[arg(long, default_value_t = 0.40)]
    pub stroma_share: f64,
    /// Weight of tumour nests in stroma among the non-mimic negatives.
    #[arg(long, default_value_t = 0.35)]
    pub nest_share: f64,
    /// Weight of empty vessels among the non-mimic negatives.
    #[arg(long, default_value_t = 0.25)]
    pub vessel_share: f64,
    /// Scale of per-slide stain variation (0: all slides stained alike; 1: slides
    /// as different as separate staining batches). The wider the spread, the
    /// more of the weak model's false positives are stroma, nests and vessels
    /// rather than mimics; the default 0.7 keeps most of them mimics.
    #[arg(long, default_value_t = 0.7)]
    pub stain_variation: f64,
    /// Visibility of the endothelial lining (flat nuclei and membrane on the wall of
    /// every vessel), the main evidence that tells invasion from its mimic: 0 absent
    /// (then only the cleft's shape, see mimic_lumen_likeness, and the lumen's red
    /// cells and fluid remain), 1 full contrast.
    #[arg(long, default_value_t = 0.8)]
    pub lining_visibility: f64,
    /// How much a mimic's retraction cleft is shaped like a vessel lumen: 0 follows
    /// the nest outline at nearly even width (a second cue besides the lining),
    /// 1 an oval lumen with the nest off-centre, exactly as in invasion.
    #[arg(long, default_value_t = 0.8)]
    pub mimic_lumen_likeness: f64,
    /// Widest mean width of the clear space around the tumour cluster of invasion and
    /// mimic alike, in patch widths, at most 0.15 (each patch draws 35-100 % of it):
    /// the cue that tells both from a plain tumour nest.
    #[arg(long, default_value_t = 0.14)]
    pub space_width: f64,
    /// Share of invasions and mimics alike whose tumour cluster fills its space,
    /// leaving a hairline between cluster and wall (4-12 % of space_width): such
    /// an invasion is told from a plain nest by its lining alone.
    #[arg(long, default_value_t = 0.0)]
    pub filled_fraction: f64,
}

impl Default for SynthConfig {
    fn default() -> Self {
        Self {
            seed: 0,
            size: 64,
            hard_patches: 1000,
            hard_slides: 48,
            positive_fraction: 0.3,
            hard_mimic_fraction: 0.15,
            pool_patches: 1500,
            pool_slides: 40,
            pool_mimic_fraction: 0.25,
            stroma_share: 0.40,
            nest_share: 0.35,
            vessel_share: 0.25,
            stain_variation: 0.7,
            lining_visibility: 0.8,
            mimic_lumen_likeness: 0.8,
            space_width: 0.14,
            filled_fraction: 0.0,
        }
    }
}

/// Largest patch side accepted (a 4096 px patch is already 48 MiB of pixels).
pub const MAX_SIZE: u32 = 4096;

impl SynthConfig {
    /// Checks every setting; the error names the offending field and value.
    pub fn validate(&self) -> Result<(), SynthError> {
        if !(32..=MAX_SIZE).contains(&self.size) {
            return Err(invalid(
                "size",
                self.size,
                format!("a patch side between 32 and {MAX_SIZE} pixels"),
            ));
        }
        for (field, count) in [
            ("hard_patches", self.hard_patches),
            ("hard_slides", self.hard_slides),
            ("pool_patches", self.pool_patches),
            ("pool_slides", self.pool_slides),
        ] {
            if count == 0 {
                return Err(invalid(field, count, "a count of at least 1".into()));
            }
        }
        if self.hard_slides > self.hard_patches {
            return Err(invalid(
                "hard_slides",
                self.hard_slides,
                format!(
                    "at most hard_patches ({}) so that every slide has a patch",
                    self.hard_patches
                ),
            ));
        }
        if self.pool_slides > self.pool_patches {
            return Err(invalid(
                "pool_slides",
                self.pool_slides,
                format!(
                    "at most pool_patches ({}) so that every slide has a patch",
                    self.pool_patches
                ),
            ));
        }
        for (field, value) in [
            ("positive_fraction", self.positive_fraction),
            ("hard_mimic_fraction", self.hard_mimic_fraction),
            ("pool_mimic_fraction", self.pool_mimic_fraction),
            ("stroma_share", self.stroma_share),
            ("nest_share", self.nest_share),
            ("vessel_share", self.vessel_share),
            ("lining_visibility", self.lining_visibility),
            ("mimic_lumen_likeness", self.mimic_lumen_likeness),
            ("filled_fraction", self.filled_fraction),
        ] {
            if !(0.0..=1.0).contains(&value) {
                return Err(invalid(field, value, "a fraction in [0, 1]".into()));
            }
        }
        let share_sum = self.stroma_share + self.nest_share + self.vessel_share;
        if share_sum <= 0.0 {
            return Err(invalid(
                "stroma_share",
                self.stroma_share,
                "stroma_share + nest_share + vessel_share > 0 (at least one negative kind)".into(),
            ));
        }
        if !(0.0..=0.15).contains(&self.space_width) {
            return Err(invalid(
                "space_width",
                self.space_width,
                "a width in [0, 0.15] patch widths".into(),
            ));
        }
        if !(0.0..=4.0).contains(&self.stain_variation) {
            return Err(invalid(
                "stain_variation",
                self.stain_variation,
                "a scale in [0, 4]".into(),
            ));
        }
        Ok(())
    }

    /// How scenes are drawn: the difficulty settings of the generator.
    pub fn scene_style(&self) -> SceneStyle {
        SceneStyle {
            lining_visibility: self.lining_visibility as f32,
            mimic_lumen_likeness: self.mimic_lumen_likeness as f32,
            space_width: self.space_width as f32,
            filled_fraction: self.filled_fraction as f32,
        }
    }

    /// Exact number of patches of each kind in `source` (in [`PatchKind::ALL`] order).
    pub fn kind_counts(&self, source: Source) -> [usize; 5] {
        let (total, positive, mimic) = match source {
            Source::Hard => (
                self.hard_patches,
                self.positive_fraction,
                self.hard_mimic_fraction,
            ),
            Source::Weak => (self.pool_patches, 0.0, self.pool_mimic_fraction),
        };
        let positives = round_count(total, positive);
        let negatives = total - positives;
        let mimics = round_count(negatives, mimic);
        let mix = apportion(
            negatives - mimics,
            &[self.stroma_share, self.nest_share, self.vessel_share],
        );
        [positives, mix[0], mix[1], mix[2], mimics]
    }
}

fn invalid(field: &'static str, value: impl fmt::Display, expected: String) -> SynthError {
    SynthError::InvalidConfig {
        field,
        value: value.to_string(),
        expected,
    }
}

/// Errors of the synthetic dataset generator.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    /// A setting is out of range.
    #[error("invalid synth setting `{field}` (--{}) = {value}: expected {expected}", field.replace('_', "-"))]
    InvalidConfig {
        /// Field name (as in the config file; the flag is the same with dashes).
        field: &'static str,
        /// The rejected value.
        value: String,
        /// What would be accepted.
        expected: String,
    },
    /// The output folder already holds patches this dataset would not write;
    /// mixing them in would silently change the dataset.
    #[error("{dir} already holds {count} file(s) that this dataset does not contain (e.g. {example}); generate into an empty folder or delete them")]
    StaleFiles {
        /// The folder.
        dir: PathBuf,
        /// How many foreign files it holds.
        count: usize,
        /// One of them.
        example: String,
    },
    /// Reading or writing a file failed.
    #[error("cannot read or write synthetic dataset path {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The preview contact sheet could not be drawn.
    #[error("cannot draw the synthetic data preview: {message}")]
    Preview {
        /// What the drawing backend reported.
        message: String,
    },
    /// PNG encoding failed.
    #[error("cannot encode patch {path} as PNG: {source}")]
    Encode {
        /// The patch.
        path: PathBuf,
        /// The cause.
        source: image::ImageError,
    },
}

/// Number of patches of each kind in one source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct KindCounts {
    /// Lymphatic invasion (positive).
    pub invasion: usize,
    /// Plain stroma.
    pub stroma: usize,
    /// Tumour nest in stroma.
    pub tumour_nest: usize,
    /// Empty vessel.
    pub empty_vessel: usize,
    /// Tumour nest in a retraction cleft.
    pub mimic: usize,
}

impl KindCounts {
    /// Count of one kind.
    pub fn get(&self, kind: PatchKind) -> usize {
        match kind {
            PatchKind::Invasion => self.invasion,
            PatchKind::Stroma => self.stroma,
            PatchKind::TumourNest => self.tumour_nest,
            PatchKind::EmptyVessel => self.empty_vessel,
            PatchKind::Mimic => self.mimic,
        }
    }

    fn add(&mut self, kind: PatchKind) {
        let slot = match kind {
            PatchKind::Invasion => &mut self.invasion,
            PatchKind::Stroma => &mut self.stroma,
            PatchKind::TumourNest => &mut self.tumour_nest,
            PatchKind::EmptyVessel => &mut self.empty_vessel,
            PatchKind::Mimic => &mut self.mimic,
        };
        *slot += 1;
    }

    /// All patches.
    pub fn total(&self) -> usize {
        PatchKind::ALL.iter().map(|&k| self.get(k)).sum()
    }

    /// Positive (invasion) patches.
    pub fn positives(&self) -> usize {
        self.invasion
    }
}

/// What [`generate`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SynthSummary {
    /// Hard-labeled patches per kind.
    pub hard: KindCounts,
    /// Weakly labeled pool patches per kind.
    pub pool: KindCounts,
    /// Hard-labeled slides.
    pub hard_slides: usize,
    /// Pool slides.
    pub pool_slides: usize,
}

impl fmt::Display for SynthSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, counts, slides) in [
            ("hard-labeled", &self.hard, self.hard_slides),
            ("weak pool", &self.pool, self.pool_slides),
        ] {
            write!(
                f,
                "{name}: {} patches from {slides} slides (",
                counts.total()
            )?;
            let parts: Vec<String> = PatchKind::ALL
                .iter()
                .map(|&k| format!("{} {}", k.name(), counts.get(k)))
                .collect();
            writeln!(f, "{})", parts.join(", "))?;
        }
        Ok(())
    }
}

/// One patch to be drawn: where it goes and what it shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedPatch {
    /// Hard-labeled set or weak pool.
    pub source: Source,
    /// Index within its source (the patch's stream index).
    pub index: usize,
    /// Index of its slide within the source (the stain's stream index).
    pub slide_index: usize,
    /// Slide id, e.g. `S07` or `W12`.
    pub slide: String,
    /// Position of the patch on its slide, in level-0 pixels.
    pub x: u64,
    /// Position of the patch on its slide, in level-0 pixels.
    pub y: u64,
    /// What it shows.
    pub kind: PatchKind,
}

impl PlannedPatch {
    /// Path relative to the dataset root, with `/` separators.
    pub fn path(&self) -> String {
        match self.source {
            Source::Hard => {
                let prefix = if self.kind.label() == Label::Positive {
                    "pos"
                } else {
                    "neg"
                };
                format!(
                    "{HARD_DIR}/{prefix}_{}_{}-{}.png",
                    self.slide, self.x, self.y
                )
            }
            Source::Weak => format!("{WEAK_DIR}/{}_{}-{}.png", self.slide, self.x, self.y),
        }
    }
}

/// Stream index of a source.
fn source_index(source: Source) -> u64 {
    match source {
        Source::Hard => 0,
        Source::Weak => 1,
    }
}

/// Grid step of patch coordinates on a slide (level-0 pixels).
const COORD_STEP: u64 = 256;
/// Slide width in grid steps (about 100k px, a typical whole-slide width).
const GRID_COLS: u64 = 400;
/// Minimum slide height in grid steps.
const GRID_ROWS: u64 = 300;

/// Decides, for every patch of both sources, its kind, slide and coordinates.
/// Slides get different numbers of patches (weights drawn per slide, at
/// least one patch each) and each slide about the same mix of kinds (within a
/// patch or two of each).
pub fn plan(config: &SynthConfig) -> Result<Vec<PlannedPatch>, SynthError> {
    config.validate()?;
    let mut all = plan_source(config, Source::Hard);
    all.extend(plan_source(config, Source::Weak));
    Ok(all)
}

fn plan_source(config: &SynthConfig, source: Source) -> Vec<PlannedPatch> {
    let (total, slides, prefix) = match source {
        Source::Hard => (config.hard_patches, config.hard_slides, "S"),
        Source::Weak => (config.pool_patches, config.pool_slides, "W"),
    };
    let mut rng = stream(config.seed, "synth-assign", &[source_index(source)]);
    let kinds = interleave_kinds(&mut rng, config.kind_counts(source));
    let weights: Vec<f64> = (0..slides).map(|_| rng.random_range(0.5..1.5)).collect();
    let sizes: Vec<usize> = apportion(total - slides, &weights)
        .into_iter()
        .map(|n| n + 1)
        .collect();
    let width = slides.to_string().len().max(2);
    let mut planned = Vec::with_capacity(total);
    let mut kinds = kinds.into_iter();
    for (slide_index, &size) in sizes.iter().enumerate() {
        let slide = format!("{prefix}{:0width$}", slide_index + 1);
        for (x, y) in slide_coordinates(&mut rng, size) {
            let kind = kinds.next().expect("slide sizes sum to the patch count");
            planned.push(PlannedPatch {
                source,
                index: planned.len(),
                slide_index,
                slide: slide.clone(),
                x,
                y,
                kind,
            });
        }
    }
    planned
}

/// The kinds of a source in patch order, interleaved so that every run of
/// consecutive patches (a slide) carries each kind in proportion, up to about
/// one patch: the `j`-th of `n` patches of a kind sits at `(j + u) / n`
/// (jittered systematic sampling, `u` uniform in [0, 1)). Every slide thus
/// holds the same mix, and so does any slide-grouped split: the share of
/// mimics in test, validation and training is the configured one, not a
/// draw that could leave a split without them.
fn interleave_kinds(rng: &mut impl Rng, counts: [usize; 5]) -> Vec<PatchKind> {
    let mut keyed: Vec<(f64, PatchKind)> = PatchKind::ALL
        .iter()
        .zip(counts)
        .flat_map(|(&kind, n)| (0..n).map(move |j| (j, n, kind)))
        .map(|(j, n, kind)| ((j as f64 + rng.random::<f64>()) / n as f64, kind))
        .collect();
    keyed.sort_by(|a, b| a.0.total_cmp(&b.0));
    keyed.into_iter().map(|(_, kind)| kind).collect()
}

/// `count` distinct grid positions on one slide, in drawing order.
fn slide_coordinates(rng: &mut impl Rng, count: usize) -> Vec<(u64, u64)> {
    // Keep the grid at least 4x larger than needed so rejection stays cheap.
    let rows = GRID_ROWS.max((4 * count as u64).div_ceil(GRID_COLS));
    let mut seen = BTreeSet::new();
    let mut out = Vec::with_capacity(count);
    while out.len() < count {
        let cell = (rng.random_range(0..GRID_COLS), rng.random_range(0..rows));
        if seen.insert(cell) {
            out.push((cell.0 * COORD_STEP, cell.1 * COORD_STEP));
        }
    }
    out
}

/// `round(total * fraction)`, half away from zero.
fn round_count(total: usize, fraction: f64) -> usize {
    ((total as f64 * fraction).round() as usize).min(total)
}

/// Splits `total` in proportion to `weights` (largest-remainder method; ties
/// go to the earlier weight), so the parts sum exactly to `total`.
fn apportion(total: usize, weights: &[f64]) -> Vec<usize> {
    let sum: f64 = weights.iter().sum();
    if total == 0 || sum <= 0.0 {
        return vec![0; weights.len()];
    }
    let quotas: Vec<f64> = weights.iter().map(|w| total as f64 * w / sum).collect();
    let mut parts: Vec<usize> = quotas.iter().map(|q| q.floor() as usize).collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| {
        (quotas[b] - quotas[b].floor())
            .total_cmp(&(quotas[a] - quotas[a].floor()))
            .then(a.cmp(&b))
    });
    let missing = total.saturating_sub(parts.iter().sum());
    for &i in order.iter().cycle().take(missing) {
        parts[i] += 1;
    }
    parts
}

/// One manifest line.
#[derive(Debug, Serialize)]
struct ManifestRow<'a> {
    path: String,
    source: Source,
    label: Label,
    slide: &'a str,
    kind: &'static str,
}

/// Draws the dataset described by `config` into `out` (created if missing):
/// both patch folders, the contact sheet [`preview::PREVIEW_FILE`] and
/// `manifest.csv`. Fails without writing anything if a patch folder already
/// holds files this dataset would not contain.
pub fn generate(config: &SynthConfig, out: &Path) -> Result<SynthSummary, SynthError> {
    let planned = plan(config)?;
    check_no_stale_files(out, &planned)?;
    for dir in [HARD_DIR, WEAK_DIR] {
        let dir = out.join(dir);
        std::fs::create_dir_all(&dir).map_err(|source| SynthError::Io { path: dir, source })?;
    }
    let style = config.scene_style();
    let hard_stains = slide_stains(config, Source::Hard);
    let pool_stains = slide_stains(config, Source::Weak);
    planned.par_iter().try_for_each(|patch| {
        let image = render_planned(config, &style, &hard_stains, &pool_stains, patch);
        let path = out.join(patch.path());
        let bytes = encode_png(&image).map_err(|source| SynthError::Encode {
            path: path.clone(),
            source,
        })?;
        write_renamed(&path, &bytes).map_err(|source| SynthError::Io { path, source })
    })?;
    preview::write_preview(config, &out.join(preview::PREVIEW_FILE))?;
    write_manifest(out, &planned)?;
    Ok(summarise(config, &planned))
}

/// The stain of every slide of `source`, each from its own stream.
fn slide_stains(config: &SynthConfig, source: Source) -> Vec<Stain> {
    let slides = match source {
        Source::Hard => config.hard_slides,
        Source::Weak => config.pool_slides,
    };
    (0..slides as u64)
        .map(|slide| {
            Stain::sample(
                &mut stream(config.seed, "synth-stain", &[source_index(source), slide]),
                config.stain_variation as f32,
            )
        })
        .collect()
}

/// Draws one planned patch from its own stream with its slide's stain.
fn render_planned(
    config: &SynthConfig,
    style: &SceneStyle,
    hard_stains: &[Stain],
    pool_stains: &[Stain],
    patch: &PlannedPatch,
) -> image::RgbImage {
    let stain = match patch.source {
        Source::Hard => &hard_stains[patch.slide_index],
        Source::Weak => &pool_stains[patch.slide_index],
    };
    let mut rng = stream(
        config.seed,
        "synth-patch",
        &[source_index(patch.source), patch.index as u64],
    );
    render_patch(patch.kind, style, stain, config.size, &mut rng)
}

/// Writes a patch to a temporary sibling and renames it into place, so a
/// killed run never leaves a truncated PNG under the final name. Unlike
/// [`crate::io::write_atomic`] it does not flush each file to disk: one
/// `fsync` per patch costs about 6 ms, which would make writing 2,500
/// patches take 15 s. The manifest, written last with `write_atomic`, marks a
/// complete dataset.
fn write_renamed(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp_name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    tmp_name.push(format!(".{}.tmp", std::process::id()));
    let tmp = path.with_file_name(tmp_name);
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
}

fn encode_png(image: &image::RgbImage) -> Result<Vec<u8>, image::ImageError> {
    let mut bytes = Vec::new();
    image.write_with_encoder(image::codecs::png::PngEncoder::new(&mut bytes))?;
    Ok(bytes)
}

fn write_manifest(out: &Path, planned: &[PlannedPatch]) -> Result<(), SynthError> {
    let mut rows: Vec<ManifestRow> = planned
        .iter()
        .map(|p| ManifestRow {
            path: p.path(),
            source: p.source,
            label: p.kind.label(),
            slide: &p.slide,
            kind: p.kind.name(),
        })
        .collect();
    rows.sort_by(|a, b| a.path.cmp(&b.path));
    let path = out.join(MANIFEST_FILE);
    crate::io::write_csv_atomic(&path, &rows).map_err(|source| SynthError::Io { path, source })
}

fn summarise(config: &SynthConfig, planned: &[PlannedPatch]) -> SynthSummary {
    let mut summary = SynthSummary {
        hard: KindCounts::default(),
        pool: KindCounts::default(),
        hard_slides: config.hard_slides,
        pool_slides: config.pool_slides,
    };
    for patch in planned {
        match patch.source {
            Source::Hard => summary.hard.add(patch.kind),
            Source::Weak => summary.pool.add(patch.kind),
        }
    }
    summary
}

/// Refuses to mix a new dataset with foreign files in the patch folders.
fn check_no_stale_files(out: &Path, planned: &[PlannedPatch]) -> Result<(), SynthError> {
    let expected: HashSet<String> = planned.iter().map(PlannedPatch::path).collect();
    for dir_name in [HARD_DIR, WEAK_DIR] {
        let dir = out.join(dir_name);
        if !dir.exists() {
            continue;
        }
        let entries = std::fs::read_dir(&dir).map_err(|source| SynthError::Io {
            path: dir.clone(),
            source,
        })?;
        let mut foreign = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| SynthError::Io {
                path: dir.clone(),
                source,
            })?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !expected.contains(&format!("{dir_name}/{name}")) {
                foreign.push(name);
            }
        }
        foreign.sort();
        if let Some(example) = foreign.first() {
            return Err(SynthError::StaleFiles {
                dir,
                count: foreign.len(),
                example: example.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
