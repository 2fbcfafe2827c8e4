//! ImageNet weights by name: a small catalogue, a per-user cache, fetching
//! with checksum verification, and resolving `model.pretrained`.
//!
//! `ablate fetch weights NAME` downloads the named weights into
//! `WEIGHTS_DIR/NAME/` (by default `$XDG_CACHE_HOME/ablate/weights`, i.e.
//! `~/.cache/ablate/weights`; `ABLATE_CACHE_DIR` replaces
//! `$XDG_CACHE_HOME/ablate`) and writes `fetch.json` beside the file: its
//! address, size and SHA-256, the input normalisation the weights expect,
//! and the date. `model.pretrained = "NAME"` then resolves to that file.
//!
//! What is verified:
//! - `resnet18.a1_in1k`: the whole SHA-256 (and size) of `model.safetensors`
//!   at a fixed revision of the Hugging Face repository `timm/resnet18.a1_in1k`,
//!   pinned here. The expected input normalisation comes from the same
//!   revision's `config.json` (`pretrained_cfg.mean/std`); that small file
//!   has no published checksum: its SHA-256 is recorded when fetched and
//!   checked afterwards, but not against an outside reference.
//! - `resnet18.tv_in1k`, `resnet34.tv_in1k` (torchvision's `.pth` files): the
//!   first 8 hex digits of the SHA-256, which torchvision puts in the file
//!   name (what `torch.hub` checks too). Their normalisation is torchvision's
//!   documented ImageNet mean and standard deviation.
//! - Every use re-hashes the file and compares it with `fetch.json`, so a
//!   cached file that changed is refused, not trained from.
//!
//! A run refuses weights that expect another input normalisation than the
//! one ablate applies (ImageNet mean/std, `crate::data::batch`), and weights
//! of another architecture than `model.name`. A path instead of a name is
//! loaded as it is, without these checks, unless it is a file this command
//! fetched (its `fetch.json` beside it).

use super::digest::{verify_download, Algorithm, Checksum, Mismatch};
use super::http::{Http, HttpError};
use super::FetchEvent;
use crate::model::resnet::ResNetConfig;
use serde::{Deserialize, Serialize};
use std::fs;
use std::path::{Path, PathBuf};

/// Environment variable replacing the per-user cache folder (`$XDG_CACHE_HOME/ablate`).
pub const CACHE_ENV: &str = "ABLATE_CACHE_DIR";
/// Record written beside fetched weights.
pub const RECORD_FILE: &str = "fetch.json";
/// timm's model configuration, kept beside its weights.
const TIMM_CONFIG_FILE: &str = "config.json";

/// Per-channel input normalisation, `(v / 255 - mean) / std`, in RGB order.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Normalization {
    /// Channel means in 0..1 units.
    pub mean: [f64; 3],
    /// Channel standard deviations in 0..1 units.
    pub std: [f64; 3],
}

impl Normalization {
    /// ImageNet's mean and standard deviation (torchvision's and timm's default).
    pub const IMAGENET: Normalization = Normalization {
        mean: [0.485, 0.456, 0.406],
        std: [0.229, 0.224, 0.225],
    };

    /// What ablate's input pipeline applies ([`crate::data::batch`]).
    pub fn pipeline() -> Self {
        use crate::data::batch::{IMAGENET_MEAN, IMAGENET_STD};
        Self {
            mean: IMAGENET_MEAN.map(f64::from),
            std: IMAGENET_STD.map(f64::from),
        }
    }

    /// Equal up to the rounding of single precision.
    pub fn agrees_with(&self, other: &Normalization) -> bool {
        let close =
            |a: &[f64; 3], b: &[f64; 3]| a.iter().zip(b).all(|(x, y)| (x - y).abs() <= 1e-6);
        close(&self.mean, &other.mean) && close(&self.std, &other.std)
    }
}

/// Where the expected normalisation of a catalogue entry comes from.
#[derive(Debug, Clone, Copy)]
pub enum NormalizationSource {
    /// Stated by the publisher (and where).
    Documented(Normalization, &'static str),
    /// `pretrained_cfg.mean/std` of timm's `config.json` at this address.
    TimmConfig(&'static str),
}

/// One entry of the catalogue.
#[derive(Debug, Clone, Copy)]
pub struct KnownWeights {
    /// The name `ablate fetch weights` and `model.pretrained` take.
    pub name: &'static str,
    /// What the weights are.
    pub description: &'static str,
    /// The `model.name` they fit.
    pub architecture: &'static str,
    /// Where they are published.
    pub url: &'static str,
    /// File name in the cache.
    pub file: &'static str,
    /// Expected SHA-256 (hex), whole or its first digits.
    pub sha256: &'static str,
    /// Expected size in bytes, when pinned.
    pub size: Option<u64>,
    /// The input normalisation they were trained with.
    pub normalization: NormalizationSource,
}

/// `model.safetensors` and `config.json` of `timm/resnet18.a1_in1k` at a
/// fixed revision (46,807,446 bytes; SHA-256 below).
const TIMM_RESNET18_A1_WEIGHTS: &str = "https://huggingface.co/timm/resnet18.a1_in1k/resolve/491b427b45c94c7fb0e78b5474cc919aff584bbf/model.safetensors";
const TIMM_RESNET18_A1_CONFIG: &str = "https://huggingface.co/timm/resnet18.a1_in1k/resolve/491b427b45c94c7fb0e78b5474cc919aff584bbf/config.json";

/// The weights `ablate fetch weights` knows.
pub static CATALOG: &[KnownWeights] = &[
    KnownWeights {
        name: "resnet18.a1_in1k",
        description: "timm's ImageNet-1k ResNet-18 (ResNet strikes back, A1 recipe), safetensors: \
                      the weights of the reference's timm.create_model(\"resnet18\", pretrained=True) (timm 0.9.7)",
        architecture: "resnet18",
        url: TIMM_RESNET18_A1_WEIGHTS,
        file: "model.safetensors",
        sha256: "80c49dee3da4822c009c5a7fe591e9223c5a2cfcf95a4067ca4dfb5a7b89c612",
        size: Some(46_807_446),
        normalization: NormalizationSource::TimmConfig(TIMM_RESNET18_A1_CONFIG),
    },
    KnownWeights {
        name: "resnet18.tv_in1k",
        description: "torchvision's ImageNet-1k ResNet-18 (IMAGENET1K_V1), PyTorch state dict",
        architecture: "resnet18",
        url: "https://download.pytorch.org/models/resnet18-f37072fd.pth",
        file: "resnet18-f37072fd.pth",
        sha256: "f37072fd",
        size: None,
        normalization: NormalizationSource::Documented(
            Normalization::IMAGENET,
            "torchvision's ResNet18_Weights.IMAGENET1K_V1 transforms",
        ),
    },
    KnownWeights {
        name: "resnet34.tv_in1k",
        description: "torchvision's ImageNet-1k ResNet-34 (IMAGENET1K_V1), PyTorch state dict",
        architecture: "resnet34",
        url: "https://download.pytorch.org/models/resnet34-b627a593.pth",
        file: "resnet34-b627a593.pth",
        sha256: "b627a593",
        size: None,
        normalization: NormalizationSource::Documented(
            Normalization::IMAGENET,
            "torchvision's ResNet34_Weights.IMAGENET1K_V1 transforms",
        ),
    },
];

/// The catalogue entry called `name`.
pub fn known(name: &str) -> Option<&'static KnownWeights> {
    CATALOG.iter().find(|w| w.name == name)
}

/// The catalogue entry called `name`, or an error listing the known names.
pub fn lookup(name: &str) -> Result<&'static KnownWeights, WeightsError> {
    known(name).ok_or_else(|| unknown(name, CATALOG))
}

fn unknown(name: &str, catalog: &[KnownWeights]) -> WeightsError {
    WeightsError::Unknown {
        name: name.to_string(),
        suggestion: catalog
            .iter()
            .map(|w| (strsim::levenshtein(name, w.name), w.name))
            .filter(|(d, _)| *d <= 3)
            .min()
            .map(|(_, n)| n),
        known: catalog.iter().map(|w| w.name).collect(),
    }
}

/// What `fetch.json` records about fetched weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightsRecord {
    /// Catalogue name.
    pub name: String,
    /// Where the file was downloaded from.
    pub url: String,
    /// File name beside this record.
    pub file: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the file (hex).
    pub sha256: String,
    /// What the download was checked against.
    pub verified_against: String,
    /// The input normalisation the weights expect.
    pub normalization: Normalization,
    /// Where that normalisation comes from.
    pub normalization_source: String,
    /// SHA-256 of the `config.json` kept beside timm weights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_sha256: Option<String>,
    /// When the file was downloaded (UTC, RFC 3339).
    pub retrieved: String,
}

/// Why weights could not be fetched or used.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    /// Not a catalogue name (and no such file).
    #[error("unknown weights `{name}`{}; known names: {}. To use a file, give its path",
        .suggestion.map(|s| format!(" (did you mean `{s}`?)")).unwrap_or_default(),
        .known.join(", "))]
    Unknown {
        /// The name given.
        name: String,
        /// The closest known name, if close.
        suggestion: Option<&'static str>,
        /// Every known name.
        known: Vec<&'static str>,
    },
    /// No folder for the cache could be determined.
    #[error("no per-user cache folder (neither {CACHE_ENV}, XDG_CACHE_HOME nor HOME is set); set {CACHE_ENV}")]
    NoCache,
    /// The weights have not been fetched.
    #[error("weights `{name}` are not in '{}'; fetch them with:\n    {command}", .dir.display())]
    NotFetched {
        /// Catalogue name.
        name: String,
        /// Where they were looked for.
        dir: PathBuf,
        /// The command that fetches them.
        command: String,
    },
    /// A request failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The download is not the published file.
    #[error(
        "{file} from {url}: {what} does not match (expected {expected}, got {actual}); \
         the download was deleted"
    )]
    Mismatch {
        /// File name.
        file: String,
        /// Where it came from.
        url: String,
        /// `checksum` or `size`.
        what: &'static str,
        /// Expected value.
        expected: String,
        /// Found value.
        actual: String,
    },
    /// A cached file differs from what was fetched.
    #[error(
        "'{}' differs from what was fetched ({problem}); fetch it again with:\n    {command}",
        .path.display()
    )]
    Changed {
        /// The cached file.
        path: PathBuf,
        /// What differs.
        problem: String,
        /// The command that fetches it again.
        command: String,
    },
    /// The weights expect another input normalisation than ablate applies.
    #[error(
        "weights `{name}` expect inputs normalised with mean {:?} and std {:?} ({stated_in}), \
         but ablate normalises with ImageNet's mean {:?} and std {:?}; they would see \
         inputs they were not trained on. Use weights trained with ImageNet normalisation, \
         or train from scratch (no model.pretrained)",
        .expected.mean, .expected.std, .applied.mean, .applied.std
    )]
    Normalization {
        /// Catalogue name.
        name: String,
        /// What the weights expect.
        expected: Box<Normalization>,
        /// Where that is stated.
        stated_in: String,
        /// What ablate applies.
        applied: Box<Normalization>,
    },
    /// The weights are for another network.
    #[error(
        "weights `{name}` are a {architecture} (layers {:?}, width {}), but the model has \
         layers {:?} and width {}; set model.name = \"{architecture}\"",
        .expected.layers, .expected.base_width, .found.layers, .found.base_width
    )]
    Architecture {
        /// Catalogue name.
        name: String,
        /// The architecture the weights fit.
        architecture: &'static str,
        /// Its configuration.
        expected: Box<ResNetConfig>,
        /// The model's configuration.
        found: Box<ResNetConfig>,
    },
    /// timm's `config.json` lacks the normalisation.
    #[error("{url} gives no usable pretrained_cfg.mean and pretrained_cfg.std")]
    Config {
        /// Where it was read.
        url: String,
    },
    /// A file could not be read or written.
    #[error("'{}': {error}", .path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// `fetch.json` is unreadable.
    #[error("cannot read '{}': {error}", .path.display())]
    Record {
        /// The file.
        path: PathBuf,
        /// The parse error.
        error: serde_json::Error,
    },
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> WeightsError + '_ {
    move |error| WeightsError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// The per-user cache folder: `$ABLATE_CACHE_DIR`, else
/// `$XDG_CACHE_HOME/ablate` (`~/.cache/ablate`; the platform's cache folder
/// elsewhere).
pub fn cache_root() -> Result<PathBuf, WeightsError> {
    match std::env::var_os(CACHE_ENV) {
        Some(dir) if !dir.is_empty() => Ok(PathBuf::from(dir)),
        _ => dirs::cache_dir()
            .map(|d| d.join("ablate"))
            .ok_or(WeightsError::NoCache),
    }
}

/// Where fetched weights go by default: `cache_root()/weights`.
pub fn default_weights_dir() -> Result<PathBuf, WeightsError> {
    Ok(cache_root()?.join("weights"))
}

/// The command that fetches `name` into the default folder.
pub fn fetch_command(name: &str) -> String {
    format!("ablate fetch weights {name}")
}

/// `url` with its scheme and host replaced by `base` (a mirror with the
/// same paths), or `url` itself.
pub fn mirrored(url: &str, base: Option<&str>) -> String {
    let Some(base) = base else {
        return url.to_string();
    };
    let path = url
        .split_once("://")
        .and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("/");
    format!("{}{path}", base.trim_end_matches('/'))
}

/// What to fetch and where.
#[derive(Debug, Clone, Copy)]
pub struct WeightsRequest<'a> {
    /// The catalogue entry.
    pub entry: &'a KnownWeights,
    /// The weights folder (entries go to `dir/NAME/`).
    pub dir: &'a Path,
    /// A mirror replacing the scheme and host of the entry's addresses.
    pub base_url: Option<&'a str>,
}

/// What [`fetch_weights`] did.
#[derive(Debug, Clone)]
pub struct WeightsOutcome {
    /// The weights file.
    pub path: PathBuf,
    /// Its record.
    pub record: WeightsRecord,
    /// Whether this run downloaded it (false: the cached copy verified).
    pub downloaded: bool,
}

/// Fetches the weights of `request.entry` into `request.dir/NAME/`, or
/// verifies the copy already there.
pub fn fetch_weights(
    request: WeightsRequest<'_>,
    http: &Http,
    on_event: &mut dyn FnMut(FetchEvent),
) -> Result<WeightsOutcome, WeightsError> {
    let entry = request.entry;
    let folder = request.dir.join(entry.name);
    let path = folder.join(entry.file);
    if let Some(record) = read_record(&folder).ok().flatten() {
        match verify(entry, &folder, &record, &fetch_command(entry.name)) {
            Ok(()) => {
                return Ok(WeightsOutcome {
                    path,
                    record,
                    downloaded: false,
                })
            }
            Err(e) => on_event(FetchEvent::Note(format!(
                "the cached copy fails verification ({e}); fetching it again"
            ))),
        }
    }
    let record_path = folder.join(RECORD_FILE);
    if record_path.exists() {
        fs::remove_file(&record_path).map_err(io_error(&record_path))?;
    }
    let url = mirrored(entry.url, request.base_url);
    let part = folder.join(format!("{}.part", entry.file));
    on_event(FetchEvent::Note(format!("downloading {url}")));
    let size = http.download(&url, &part, entry.size, &mut |progress| {
        on_event(FetchEvent::Download {
            file: entry.file.to_string(),
            progress,
        })
    })?;
    let expected = pinned_checksum(entry);
    let sha256 =
        match verify_download(&part, size, entry.size, &expected).map_err(io_error(&part))? {
            Ok(sha256) => sha256,
            Err(Mismatch {
                what,
                expected,
                actual,
            }) => {
                return Err(WeightsError::Mismatch {
                    file: entry.file.to_string(),
                    url,
                    what,
                    expected,
                    actual,
                })
            }
        };
    let (normalization, normalization_source, config_sha256) = match entry.normalization {
        NormalizationSource::Documented(n, error) => (n, error.to_string(), None),
        NormalizationSource::TimmConfig(config_url) => {
            let config_url = mirrored(config_url, request.base_url);
            let bytes = http.get_bytes(&config_url, 1 << 20)?;
            let n = timm_normalization(&bytes).ok_or_else(|| WeightsError::Config {
                url: config_url.clone(),
            })?;
            let config_path = folder.join(TIMM_CONFIG_FILE);
            crate::io::write_atomic(&config_path, &bytes).map_err(io_error(&config_path))?;
            let digest = Algorithm::Sha256.bytes_hex(&bytes);
            (n, format!("{config_url} (pretrained_cfg)"), Some(digest))
        }
    };
    if !normalization.agrees_with(&Normalization::pipeline()) {
        on_event(FetchEvent::Note(format!(
            "note: {} expects mean {:?} and std {:?}, not the ImageNet normalisation ablate applies; runs will refuse these weights",
            entry.name, normalization.mean, normalization.std
        )));
    }
    fs::rename(&part, &path).map_err(io_error(&path))?;
    let record = WeightsRecord {
        name: entry.name.to_string(),
        url,
        file: entry.file.to_string(),
        size,
        sha256,
        verified_against: match entry.sha256.len() {
            64 => format!("{expected} (pinned by ablate)"),
            _ => format!("{expected} (prefix in the published file name)"),
        },
        normalization,
        normalization_source,
        config_sha256,
        retrieved: crate::runner::manifest::rfc3339(std::time::SystemTime::now()),
    };
    let text = serde_json::to_vec_pretty(&record).expect("record serialises");
    crate::io::write_atomic(&record_path, &text).map_err(io_error(&record_path))?;
    Ok(WeightsOutcome {
        path,
        record,
        downloaded: true,
    })
}

fn pinned_checksum(entry: &KnownWeights) -> Checksum {
    Checksum::new(Algorithm::Sha256, entry.sha256).expect("catalogue checksums are hex")
}

/// `pretrained_cfg.mean/std` (or top-level `mean/std`) of timm's `config.json`.
fn timm_normalization(json: &[u8]) -> Option<Normalization> {
    let value: serde_json::Value = serde_json::from_slice(json).ok()?;
    let triple = |key: &str| -> Option<[f64; 3]> {
        let array = value
            .pointer(&format!("/pretrained_cfg/{key}"))
            .or_else(|| value.get(key))?
            .as_array()?;
        match array.as_slice() {
            [a, b, c] => Some([a.as_f64()?, b.as_f64()?, c.as_f64()?]),
            _ => None,
        }
    };
    Some(Normalization {
        mean: triple("mean")?,
        std: triple("std")?,
    })
}

/// Reads `folder/fetch.json`; `None` when absent.
fn read_record(folder: &Path) -> Result<Option<WeightsRecord>, WeightsError> {
    let path = folder.join(RECORD_FILE);
    match fs::read(&path) {
        Ok(text) => serde_json::from_slice(&text)
            .map(Some)
            .map_err(|error| WeightsError::Record { path, error }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(WeightsError::Io { path, error }),
    }
}

/// Checks that the file in `folder` is what `record` says and what the
/// catalogue pins.
fn verify(
    entry: &KnownWeights,
    folder: &Path,
    record: &WeightsRecord,
    command: &str,
) -> Result<(), WeightsError> {
    let path = folder.join(entry.file);
    let changed = |problem: String| WeightsError::Changed {
        path: path.clone(),
        problem,
        command: command.to_string(),
    };
    if record.file != entry.file || record.name != entry.name {
        return Err(changed(format!("{RECORD_FILE} describes another file")));
    }
    let size = match fs::metadata(&path) {
        Ok(meta) => meta.len(),
        Err(_) => return Err(changed("the file is missing".into())),
    };
    if size != record.size {
        return Err(changed(format!("{size} bytes instead of {}", record.size)));
    }
    let sha256 = Algorithm::Sha256.file_hex(&path).map_err(io_error(&path))?;
    if sha256 != record.sha256 || !pinned_checksum(entry).matches(&sha256) {
        return Err(changed(format!(
            "sha256:{sha256}, expected sha256:{}",
            record.sha256
        )));
    }
    if let Some(expected) = &record.config_sha256 {
        let config = folder.join(TIMM_CONFIG_FILE);
        let bytes = fs::read(&config).unwrap_or_default();
        if &Algorithm::Sha256.bytes_hex(&bytes) != expected {
            return Err(changed(format!("{TIMM_CONFIG_FILE} changed or is missing")));
        }
    }
    Ok(())
}

/// The weights file `model.pretrained` names, checked for use with `model`.
///
/// A catalogue name resolves to the cache (`default_weights_dir()/NAME/`),
/// which must hold verified weights of the model's architecture and of
/// ablate's input normalisation; a missing file is an error that prints the
/// fetch command. Anything else is a path (see the module docs).
pub fn resolve_pretrained(spec: &Path, model: &ResNetConfig) -> Result<PathBuf, WeightsError> {
    let is_name = spec.to_str().is_some_and(|s| known(s).is_some());
    // The cache folder matters only for names and files that were fetched.
    let dir = match default_weights_dir() {
        Ok(dir) => dir,
        Err(e) if is_name => return Err(e),
        Err(_) => PathBuf::new(),
    };
    resolve_in(spec, model, &dir, CATALOG)
}

/// [`resolve_pretrained`] with an explicit weights folder and catalogue.
fn resolve_in(
    spec: &Path,
    model: &ResNetConfig,
    dir: &Path,
    catalog: &[KnownWeights],
) -> Result<PathBuf, WeightsError> {
    let find = |name: &str| catalog.iter().find(|w| w.name == name);
    if let Some(entry) = spec.to_str().and_then(find) {
        let folder = dir.join(entry.name);
        let command = fetch_command(entry.name);
        let record = match read_record(&folder)? {
            Some(record) => record,
            None => {
                return Err(WeightsError::NotFetched {
                    name: entry.name.to_string(),
                    dir: dir.to_path_buf(),
                    command,
                })
            }
        };
        verify(entry, &folder, &record, &command)?;
        check_use(entry, &record, model)?;
        return Ok(folder.join(entry.file));
    }
    if spec.is_file() {
        let folder = spec.parent().unwrap_or(Path::new(""));
        if let Ok(Some(record)) = read_record(folder) {
            let same_file = spec.file_name().and_then(|n| n.to_str()) == Some(&record.file);
            if let Some(entry) = find(&record.name).filter(|_| same_file) {
                verify(entry, folder, &record, &fetch_command(entry.name))?;
                check_use(entry, &record, model)?;
            }
        }
        return Ok(spec.to_path_buf());
    }
    if let Some(name) = spec.to_str().filter(|s| looks_like_a_name(s)) {
        return Err(unknown(name, catalog));
    }
    // A missing path: the loader names it.
    Ok(spec.to_path_buf())
}

/// A bare word without a weights-file extension, like `resnet18.a1_in1k`.
fn looks_like_a_name(text: &str) -> bool {
    let extension = Path::new(text)
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    !text.contains(['/', '\\'])
        && !matches!(
            extension.as_deref(),
            Some("safetensors" | "pth" | "pt" | "bin" | "ckpt")
        )
}

/// Refuses weights of another normalisation or architecture than `model`'s run.
fn check_use(
    entry: &KnownWeights,
    record: &WeightsRecord,
    model: &ResNetConfig,
) -> Result<(), WeightsError> {
    let applied = Normalization::pipeline();
    if !record.normalization.agrees_with(&applied) {
        return Err(WeightsError::Normalization {
            name: entry.name.to_string(),
            expected: Box::new(record.normalization),
            stated_in: record.normalization_source.clone(),
            applied: Box::new(applied),
        });
    }
    let expected = ResNetConfig::from_name(entry.architecture, model.num_classes)
        .expect("catalogue architectures are valid");
    if expected.layers != model.layers || expected.base_width != model.base_width {
        return Err(WeightsError::Architecture {
            name: entry.name.to_string(),
            architecture: entry.architecture,
            expected: Box::new(expected),
            found: Box::new(model.clone()),
        });
    }
    Ok(())
}

/// The `fetch.json` record of the weights `spec` names (a catalogue name or
/// a fetched file), without re-hashing: what a run's manifest records.
pub fn describe_pretrained(spec: &Path) -> Option<WeightsRecord> {
    let folder = match spec.to_str().and_then(known) {
        Some(entry) => default_weights_dir().ok()?.join(entry.name),
        None => spec.parent()?.to_path_buf(),
    };
    let record = read_record(&folder).ok().flatten()?;
    let same = known(spec.to_str()?).is_some()
        || spec.file_name().and_then(|n| n.to_str()) == Some(record.file.as_str());
    same.then_some(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::test_server::{Reply, TestServer};

    fn leak(text: String) -> &'static str {
        Box::leak(text.into_boxed_str())
    }

    fn weights_bytes(len: usize, salt: u8) -> Vec<u8> {
        (0..len).map(|i| (i * 31 % 253) as u8 ^ salt).collect()
    }

    /// A catalogue entry published at `https://example.org/models/NAME.pth`
    /// (the tests serve it from a mirror).
    fn entry(
        name: &str,
        body: &[u8],
        sha_digits: usize,
        normalization: NormalizationSource,
    ) -> KnownWeights {
        KnownWeights {
            name: leak(name.to_string()),
            description: "test weights",
            architecture: "resnet10-w16",
            url: leak(format!("https://example.org/models/{name}.pth")),
            file: leak(format!("{name}.pth")),
            sha256: leak(Algorithm::Sha256.bytes_hex(body)[..sha_digits].to_string()),
            size: None,
            normalization,
        }
    }

    const DOCUMENTED: NormalizationSource =
        NormalizationSource::Documented(Normalization::IMAGENET, "test documentation");

    fn fetch(
        server: &TestServer,
        entry: &KnownWeights,
        dir: &Path,
    ) -> (Result<WeightsOutcome, WeightsError>, Vec<String>) {
        let mut notes = Vec::new();
        let result = fetch_weights(
            WeightsRequest {
                entry,
                dir,
                base_url: Some(&server.base_url()),
            },
            &Http::new(),
            &mut |event| {
                if let FetchEvent::Note(note) = event {
                    notes.push(note)
                }
            },
        );
        (result, notes)
    }

    fn model(name: &str) -> ResNetConfig {
        ResNetConfig::from_name(name, 2).expect("model")
    }

    #[test]
    fn fetch_verifies_records_and_reuses_the_cache() {
        let server = TestServer::start();
        let body = weights_bytes(70_000, 1);
        server.set("/models/w.pth", Reply::Bytes(body.clone()));
        let entry = entry("w", &body, 64, DOCUMENTED);
        let dir = tempfile::tempdir().expect("tempdir");

        let (outcome, _) = fetch(&server, &entry, dir.path());
        let outcome = outcome.expect("fetch");
        assert!(outcome.downloaded);
        assert_eq!(outcome.path, dir.path().join("w/w.pth"));
        assert_eq!(fs::read(&outcome.path).expect("file"), body);
        let record = read_record(&dir.path().join("w"))
            .expect("read")
            .expect("record");
        assert_eq!(record, outcome.record);
        assert_eq!(record.url, server.url("/models/w.pth"));
        assert_eq!(record.size, 70_000);
        assert_eq!(record.sha256, Algorithm::Sha256.bytes_hex(&body));
        assert!(record.verified_against.ends_with("(pinned by ablate)"));
        assert_eq!(record.normalization, Normalization::IMAGENET);
        assert_eq!(record.normalization_source, "test documentation");
        assert!(!dir.path().join("w/w.pth.part").exists());

        // Fetched again: verified, nothing requested.
        server.clear_log();
        let (again, _) = fetch(&server, &entry, dir.path());
        assert!(!again.expect("cached").downloaded);
        assert!(server.requests().is_empty());

        // A damaged cache is fetched again.
        fs::write(&outcome.path, b"damaged").expect("write");
        let (repaired, notes) = fetch(&server, &entry, dir.path());
        assert!(repaired.expect("repair").downloaded);
        assert!(notes[0].contains("fails verification"), "{notes:?}");
        assert_eq!(fs::read(&outcome.path).expect("file"), body);
    }

    #[test]
    fn a_wrong_download_is_deleted_and_named() {
        let server = TestServer::start();
        let published = weights_bytes(5_000, 2);
        let entry = entry("tv", &published, 8, DOCUMENTED);
        server.set("/models/tv.pth", Reply::Bytes(weights_bytes(5_000, 3)));
        let dir = tempfile::tempdir().expect("tempdir");
        let (result, _) = fetch(&server, &entry, dir.path());
        let msg = result.expect_err("wrong bytes").to_string();
        assert!(
            msg.starts_with(&format!(
                "tv.pth from {}: checksum does not match (expected sha256:{}, got sha256:",
                server.url("/models/tv.pth"),
                entry.sha256
            )),
            "{msg}"
        );
        assert!(msg.ends_with("the download was deleted"), "{msg}");
        let left: Vec<_> = fs::read_dir(dir.path().join("tv"))
            .expect("folder")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert!(left.is_empty(), "{left:?}");

        // The right bytes pass the 8-digit prefix check.
        server.set("/models/tv.pth", Reply::Bytes(published));
        let (outcome, _) = fetch(&server, &entry, dir.path());
        let record = outcome.expect("fetch").record;
        assert!(
            record
                .verified_against
                .ends_with("(prefix in the published file name)"),
            "{}",
            record.verified_against
        );

        server.set("/models/tv.pth", Reply::Status(404));
        let other = tempfile::tempdir().expect("tempdir");
        let (result, _) = fetch(&server, &entry, other.path());
        assert!(result.expect_err("404").to_string().contains("HTTP 404"));
    }

    #[test]
    fn timm_config_gives_the_normalisation_runs_check() {
        let server = TestServer::start();
        let body = weights_bytes(3_000, 4);
        server.set("/models/t.pth", Reply::Bytes(body.clone()));
        let source = NormalizationSource::TimmConfig("https://example.org/cfg/config.json");
        let entry = entry("t", &body, 64, source);
        let catalog = [entry];
        let config = |mean: &str, std: &str| {
            format!(
                r#"{{"architecture": "resnet10", "pretrained_cfg": {{"mean": {mean}, "std": {std}, "crop_pct": 0.95}}}}"#
            )
        };
        let dir = tempfile::tempdir().expect("tempdir");
        server.set(
            "/cfg/config.json",
            Reply::Bytes(config("[0.485, 0.456, 0.406]", "[0.229, 0.224, 0.225]").into_bytes()),
        );
        let (outcome, _) = fetch(&server, &entry, dir.path());
        let record = outcome.expect("fetch").record;
        assert!(record.normalization.agrees_with(&Normalization::IMAGENET));
        assert_eq!(
            record.normalization_source,
            format!("{} (pretrained_cfg)", server.url("/cfg/config.json"))
        );
        assert!(dir.path().join("t/config.json").is_file());
        let path = resolve_in(Path::new("t"), &model("resnet10-w16"), dir.path(), &catalog)
            .expect("resolves");
        assert_eq!(path, dir.path().join("t/t.pth"));

        // Weights trained on inputs scaled to [-1, 1] are refused by runs.
        let other = tempfile::tempdir().expect("tempdir");
        server.set(
            "/cfg/config.json",
            Reply::Bytes(config("[0.5, 0.5, 0.5]", "[0.5, 0.5, 0.5]").into_bytes()),
        );
        let (outcome, notes) = fetch(&server, &entry, other.path());
        outcome.expect("fetched all the same");
        assert!(
            notes.iter().any(|n| n.contains("runs will refuse")),
            "{notes:?}"
        );
        let msg = resolve_in(
            Path::new("t"),
            &model("resnet10-w16"),
            other.path(),
            &catalog,
        )
        .expect_err("other normalisation")
        .to_string();
        assert!(
            msg.starts_with("weights `t` expect inputs normalised with mean [0.5, 0.5, 0.5] and std [0.5, 0.5, 0.5]"),
            "{msg}"
        );

        // A config without the normalisation is an error naming its address.
        let third = tempfile::tempdir().expect("tempdir");
        server.set(
            "/cfg/config.json",
            Reply::Bytes(b"{\"pretrained_cfg\": {}}".to_vec()),
        );
        let (result, _) = fetch(&server, &entry, third.path());
        assert_eq!(
            result.expect_err("no mean").to_string(),
            format!(
                "{} gives no usable pretrained_cfg.mean and pretrained_cfg.std",
                server.url("/cfg/config.json")
            )
        );
        assert!(!third.path().join("t/t.pth").exists());
    }

    #[test]
    fn names_resolve_in_the_cache_and_paths_stay_paths() {
        let server = TestServer::start();
        let body = weights_bytes(2_000, 5);
        server.set("/models/n.pth", Reply::Bytes(body.clone()));
        let catalog = [entry("n", &body, 64, DOCUMENTED)];
        let dir = tempfile::tempdir().expect("tempdir");
        let small = model("resnet10-w16");

        let msg = resolve_in(Path::new("n"), &small, dir.path(), &catalog)
            .expect_err("not fetched")
            .to_string();
        assert_eq!(
            msg,
            format!(
                "weights `n` are not in '{}'; fetch them with:\n    ablate fetch weights n",
                dir.path().display()
            )
        );

        let (outcome, _) = fetch(&server, &catalog[0], dir.path());
        let path = outcome.expect("fetch").path;
        assert_eq!(
            resolve_in(Path::new("n"), &small, dir.path(), &catalog).expect("name"),
            path
        );
        // The fetched file by its path gets the same checks.
        assert_eq!(
            resolve_in(&path, &small, dir.path(), &catalog).expect("path"),
            path
        );
        let msg = resolve_in(&path, &model("resnet18"), dir.path(), &catalog)
            .expect_err("architecture")
            .to_string();
        assert_eq!(
            msg,
            "weights `n` are a resnet10-w16 (layers [1, 1, 1, 1], width 16), but the model has \
             layers [2, 2, 2, 2] and width 64; set model.name = \"resnet10-w16\""
        );

        fs::write(&path, weights_bytes(2_000, 6)).expect("tamper");
        let msg = resolve_in(Path::new("n"), &small, dir.path(), &catalog)
            .expect_err("changed")
            .to_string();
        assert!(
            msg.contains("differs from what was fetched (sha256:")
                && msg.ends_with("fetch it again with:\n    ablate fetch weights n"),
            "{msg}"
        );

        // Plain files, missing files and unknown names.
        let plain = dir.path().join("mine.safetensors");
        fs::write(&plain, b"anything").expect("write");
        assert_eq!(
            resolve_in(&plain, &small, dir.path(), &catalog).expect("plain"),
            plain
        );
        let missing = dir.path().join("missing.safetensors");
        assert_eq!(
            resolve_in(&missing, &small, dir.path(), &catalog).expect("missing path"),
            missing
        );
        let msg = resolve_in(Path::new("nn"), &small, dir.path(), &catalog)
            .expect_err("unknown")
            .to_string();
        assert_eq!(
            msg,
            "unknown weights `nn` (did you mean `n`?); known names: n. To use a file, give its path"
        );
    }

    #[test]
    fn mirrors_keep_the_path() {
        assert_eq!(
            mirrored(
                "https://download.pytorch.org/models/resnet18-f37072fd.pth",
                Some("http://127.0.0.1:9/")
            ),
            "http://127.0.0.1:9/models/resnet18-f37072fd.pth"
        );
        assert_eq!(mirrored("https://a.b/c", None), "https://a.b/c");
    }

    #[test]
    fn the_paper_experiment_starts_from_the_reference_weights() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/paper.toml");
        let experiment = crate::experiment::load_experiment(&path).expect("paper.toml loads");
        let entry = known("resnet18.a1_in1k").expect("catalogued");
        assert!(!experiment.cells.is_empty());
        for (_, cell) in &experiment.cells {
            assert_eq!(
                cell.model.pretrained.as_deref(),
                Some(Path::new(entry.name))
            );
            assert_eq!(cell.model.name, entry.architecture);
        }
    }

    #[test]
    fn the_catalogue_is_consistent() {
        // The input pipeline's constants are the ImageNet normalisation.
        assert!(Normalization::pipeline().agrees_with(&Normalization::IMAGENET));
        for entry in CATALOG {
            let checksum = pinned_checksum(entry);
            assert!(
                checksum.hex.len() == 64 || entry.file.contains(&checksum.hex),
                "{}",
                entry.name
            );
            assert!(
                entry.url.ends_with(&format!("/{}", entry.file)),
                "{}",
                entry.name
            );
            assert!(
                ResNetConfig::from_name(entry.architecture, 2).is_ok(),
                "{}",
                entry.name
            );
            assert_eq!(known(entry.name).map(|e| e.name), Some(entry.name));
            assert!(!looks_like_a_name(entry.file), "{}", entry.file);
        }
        assert!(looks_like_a_name("resnet18.a1_in1k"));
        assert!(!looks_like_a_name("weights/resnet18.safetensors"));
        assert!(!looks_like_a_name("resnet18.pth"));
    }
}
