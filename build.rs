//! The build fingerprint: what identifies the program a cached result came from.
//!
//! Exposed to the crate as `ABLATE_*` environment variables (read by
//! `src/build_info.rs`):
//!
//! - `ABLATE_BUILD_SOURCES`: a hash of every file the binary is built from
//!   (`SOURCES` below: the code, the manifest and lock file, the vendored
//!   crate, the embedded assets), by relative path and content. It does not
//!   depend on git: a commit of the same files, a crates.io tarball and a
//!   dirty checkout with the same content hash alike.
//! - `ABLATE_GIT_REVISION` and `ABLATE_GIT_DIRTY`: the commit the sources were
//!   built from ("unknown" without git or outside a checkout) and, when the
//!   sources differ from it, a hash of the difference (`git diff HEAD` of the
//!   source paths plus the content of their untracked, not ignored files;
//!   empty when clean). Provenance only: they do not enter the fingerprint,
//!   so that committing, or a commit touching only documentation, leaves
//!   cached results valid.
//! - `ABLATE_FEATURES`, `ABLATE_TARGET`, `ABLATE_TARGET_FEATURES`: enabled
//!   cargo features, target triple and CPU features compiled for.
//! - `ABLATE_CANDLE_VERSION` and `ABLATE_CANDLE_PATCH`: candle-core's version
//!   (from Cargo.lock) and, when Cargo.lock resolves it to a local path (the
//!   vendored, patched crate), an id of the patch: a hash of
//!   `vendor/candle-core.patch` if present, else of the vendored sources.
//!   Empty when candle-core comes from the registry unpatched.
//! - `ABLATE_BUILD_FINGERPRINT`: a hash of version, sources, features, target
//!   and candle, the identity stage keys and data records carry.
//!
//! Reruns: cargo reruns this script when a source file changes (watched
//! below, so that ordinary edits of tests, benches or documentation rebuild
//! nothing else) and when git's HEAD or the branch it points to moves.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// What the binary is built from, relative to the package root.
const SOURCES: [&str; 6] = [
    "Cargo.toml",
    "Cargo.lock",
    "build.rs",
    "src",
    "vendor",
    "assets",
];

/// The vendored candle-core and the file of its change.
const CANDLE_DIR: &str = "vendor/candle-core";
const CANDLE_PATCH_FILE: &str = "vendor/candle-core.patch";

/// Hex digits kept of each hash.
const HASH_DIGITS: usize = 16;

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let mut files = BTreeMap::new();
    for source in SOURCES {
        collect_files(&root, &root.join(source), &mut files);
    }
    for path in watched_paths(&root, &SOURCES) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    let sources = hash_files(&files);

    let git = Git::new(&root);
    let revision = git
        .as_ref()
        .map_or("unknown".to_string(), |g| g.revision.clone());
    let dirty = git
        .as_ref()
        .and_then(|g| g.dirty_hash())
        .unwrap_or_default();
    if let Some(git) = &git {
        for path in git.watched_paths() {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }

    // `default` names no code of its own: the features it enables are listed.
    let mut features: Vec<String> = std::env::vars()
        .filter_map(|(key, _)| {
            key.strip_prefix("CARGO_FEATURE_")
                .map(|f| f.to_lowercase().replace('_', "-"))
        })
        .filter(|f| f != "default")
        .collect();
    features.sort();
    let features = features.join(",");
    let target = std::env::var("TARGET").unwrap_or_default();
    let mut target_features: Vec<String> = std::env::var("CARGO_CFG_TARGET_FEATURE")
        .unwrap_or_default()
        .split(',')
        .filter(|f| !f.is_empty())
        .map(str::to_string)
        .collect();
    target_features.sort();
    let target_features = target_features.join(",");

    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap_or_default();
    let (candle_version, candle_from_path) = locked_package(&lock, "candle-core");
    let candle_patch = if candle_from_path {
        candle_patch_id(&root)
    } else {
        String::new()
    };

    let fingerprint = hash_fields(&[
        ("version", env!("CARGO_PKG_VERSION")),
        ("sources", &sources),
        ("features", &features),
        ("target", &target),
        ("target_features", &target_features),
        ("candle_version", &candle_version),
        ("candle_patch", &candle_patch),
    ]);
    for (name, value) in [
        ("ABLATE_BUILD_FINGERPRINT", &fingerprint),
        ("ABLATE_BUILD_SOURCES", &sources),
        ("ABLATE_GIT_REVISION", &revision),
        ("ABLATE_GIT_DIRTY", &dirty),
        ("ABLATE_FEATURES", &features),
        ("ABLATE_TARGET", &target),
        ("ABLATE_TARGET_FEATURES", &target_features),
        ("ABLATE_CANDLE_VERSION", &candle_version),
        ("ABLATE_CANDLE_PATCH", &candle_patch),
    ] {
        println!("cargo:rustc-env={name}={value}");
    }
}

/// Whether a file or folder is left out of the sources: hidden files
/// (`.cargo_vcs_info.json`, editor swap files) and build output folders.
fn skipped(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    name.starts_with('.') || name == "target" || name.ends_with(".tmp")
}

/// Adds every file under `path` (or `path` itself) to `files`, keyed by its
/// path relative to `root` with `/` separators.
fn collect_files(root: &Path, path: &Path, files: &mut BTreeMap<String, PathBuf>) {
    if skipped(path) {
        return;
    }
    if path.is_dir() {
        let Ok(entries) = std::fs::read_dir(path) else {
            return;
        };
        for entry in entries.flatten() {
            collect_files(root, &entry.path(), files);
        }
    } else if path.is_file() {
        let relative = path.strip_prefix(root).unwrap_or(path);
        let key = relative
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        files.insert(key, path.to_path_buf());
    }
}

/// The paths cargo watches for the sources: a folder as a whole (so that
/// new files count) unless a build output folder lies under it, which would
/// rerun this script at every build (after `cargo test` inside the vendored
/// crate); then its entries one by one.
fn watched_paths(root: &Path, sources: &[&str]) -> Vec<PathBuf> {
    fn is_build_output(path: &Path) -> bool {
        path.is_dir() && path.file_name().is_some_and(|n| n == "target")
    }
    fn has_build_output(path: &Path) -> bool {
        std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| {
                let path = entry.path();
                is_build_output(&path) || (path.is_dir() && has_build_output(&path))
            })
    }
    fn visit(path: &Path, out: &mut Vec<PathBuf>) {
        if is_build_output(path) || !path.exists() {
            return;
        }
        if path.is_dir() && has_build_output(path) {
            for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
                visit(&entry.path(), out);
            }
        } else {
            out.push(path.to_path_buf());
        }
    }
    let mut out = Vec::new();
    for source in sources {
        visit(&root.join(source), &mut out);
    }
    out
}

/// A hash of files by relative path and content.
fn hash_files(files: &BTreeMap<String, PathBuf>) -> String {
    let mut hasher = blake3::Hasher::new();
    for (name, path) in files {
        let bytes = std::fs::read(path).unwrap_or_default();
        hasher.update(name.as_bytes());
        hasher.update(&[0]);
        hasher.update(&(bytes.len() as u64).to_le_bytes());
        hasher.update(&bytes);
    }
    short(hasher)
}

/// A hash of named fields, each length-prefixed so that no two lists collide.
fn hash_fields(fields: &[(&str, &str)]) -> String {
    let mut hasher = blake3::Hasher::new();
    for (name, value) in fields {
        for part in [name.as_bytes(), value.as_bytes()] {
            hasher.update(&(part.len() as u64).to_le_bytes());
            hasher.update(part);
        }
    }
    short(hasher)
}

fn short(hasher: blake3::Hasher) -> String {
    hasher.finalize().to_hex()[..HASH_DIGITS].to_string()
}

/// The version of a package in Cargo.lock and whether it comes from a local
/// path (a lock entry without `source`: a `[patch]` or path dependency).
fn locked_package(lock: &str, name: &str) -> (String, bool) {
    let Some(block) = lock.split("[[package]]").find(|block| {
        block
            .lines()
            .any(|l| l.trim() == format!("name = \"{name}\""))
    }) else {
        return ("unknown".into(), false);
    };
    let version = block
        .lines()
        .find_map(|l| l.trim().strip_prefix("version = "))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap_or_else(|| "unknown".into());
    let from_path = !block.lines().any(|l| l.trim().starts_with("source = "));
    (version, from_path)
}

/// The id of the vendored candle-core's change: a hash of its patch file, or
/// of the vendored sources while there is no patch file.
fn candle_patch_id(root: &Path) -> String {
    let patch = root.join(CANDLE_PATCH_FILE);
    let mut files = BTreeMap::new();
    if patch.is_file() {
        files.insert("candle-core.patch".to_string(), patch);
    } else {
        let dir = root.join(CANDLE_DIR);
        collect_files(&dir, &dir, &mut files);
        if files.is_empty() {
            return "unknown".into();
        }
    }
    hash_files(&files)
}

/// The git checkout the package is built in.
struct Git {
    root: PathBuf,
    revision: String,
}

impl Git {
    /// `None` without git, outside a checkout, or before the first commit.
    fn new(root: &Path) -> Option<Self> {
        let git = Self {
            root: root.to_path_buf(),
            revision: String::new(),
        };
        let revision = git.text(&["rev-parse", "--verify", "--quiet", "HEAD"])?;
        Some(Self { revision, ..git })
    }

    /// Runs git in the package root; its standard output when it succeeds.
    fn output(&self, args: &[&str]) -> Option<Vec<u8>> {
        let output = Command::new("git")
            .arg("--no-optional-locks")
            .args(args)
            .current_dir(&self.root)
            .output()
            .ok()?;
        output.status.success().then_some(output.stdout)
    }

    fn text(&self, args: &[&str]) -> Option<String> {
        let bytes = self.output(args)?;
        Some(String::from_utf8_lossy(&bytes).trim().to_string())
    }

    /// A hash of how the sources differ from HEAD, `None` when they do not.
    fn dirty_hash(&self) -> Option<String> {
        let with_sources = |args: &[&str]| -> Option<Vec<u8>> {
            let mut all: Vec<&str> = args.to_vec();
            all.push("--");
            all.extend(SOURCES);
            self.output(&all)
        };
        let diff = with_sources(&["diff", "HEAD", "--binary", "--no-ext-diff"])?;
        let untracked = with_sources(&["ls-files", "-z", "--others", "--exclude-standard"])?;
        if diff.is_empty() && untracked.is_empty() {
            return None;
        }
        let mut hasher = blake3::Hasher::new();
        hasher.update(&diff);
        for name in untracked.split(|&b| b == 0).filter(|n| !n.is_empty()) {
            let path = self.root.join(String::from_utf8_lossy(name).as_ref());
            let bytes = std::fs::read(&path).unwrap_or_default();
            hasher.update(name);
            hasher.update(&[0]);
            hasher.update(&(bytes.len() as u64).to_le_bytes());
            hasher.update(&bytes);
        }
        Some(short(hasher))
    }

    /// Git's files that move with the revision: HEAD, the branch it points
    /// to (its folder while the branch is only in the packed refs, so that a
    /// commit creating its loose ref is seen) and the packed refs.
    fn watched_paths(&self) -> Vec<PathBuf> {
        let absolute = |relative: String| {
            let path = PathBuf::from(relative);
            if path.is_absolute() {
                path
            } else {
                self.root.join(path)
            }
        };
        let mut paths = Vec::new();
        if let Some(head) = self.text(&["rev-parse", "--git-path", "HEAD"]) {
            paths.push(absolute(head));
        }
        if let Some(branch) = self.text(&["symbolic-ref", "-q", "HEAD"]) {
            if let Some(file) = self.text(&["rev-parse", "--git-path", &branch]) {
                let file = absolute(file);
                match file.parent() {
                    Some(folder) if !file.exists() => paths.push(folder.to_path_buf()),
                    _ => paths.push(file),
                }
            }
        }
        if let Some(packed) = self.text(&["rev-parse", "--git-path", "packed-refs"]) {
            paths.push(absolute(packed));
        }
        paths.retain(|p| p.exists());
        paths
    }
}
