//! Helpers for the integration tests: run the real `ablate` binary in a
//! temporary folder on tiny synthetic data.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `ablate` binary built for these tests.
pub fn ablate() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ablate"));
    command.arg("--quiet");
    command
}

/// Runs `ablate` with `args` in `dir` and returns its output, failing the
/// test on a non-zero exit. The user's cache folder (where `ablate plan`
/// keeps this machine's speeds) is `dir/cache-home`.
pub fn run_ok(dir: &Path, args: &[&str]) -> Output {
    let output = ablate()
        .args(args)
        .current_dir(dir)
        .env("XDG_CACHE_HOME", dir.join("cache-home"))
        .output()
        .expect("ablate runs");
    assert!(
        output.status.success(),
        "ablate {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Flags of a tiny synthetic dataset: 32 px, 120 labeled patches on 8 slides, 80 pool patches.
pub const TINY_SYNTH: [&str; 12] = [
    "--size",
    "32",
    "--hard-patches",
    "120",
    "--hard-slides",
    "8",
    "--pool-patches",
    "80",
    "--pool-slides",
    "4",
    "--seed",
    "5",
];

/// Generates the tiny dataset into `dir/name` and returns its path.
pub fn tiny_dataset(dir: &Path, name: &str) -> PathBuf {
    let out = dir.join(name);
    let mut args = vec!["synth", "--out", out.to_str().expect("utf-8 path")];
    args.extend(TINY_SYNTH);
    run_ok(dir, &args);
    out
}

/// All files under `dir` with their bytes, sorted by relative path.
pub fn tree_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(PathBuf, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).expect("readable dir") {
            let path = entry.expect("entry").path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let bytes = std::fs::read(&path).expect("readable file");
                out.push((
                    path.strip_prefix(root).expect("under root").to_path_buf(),
                    bytes,
                ));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// A 6-cell experiment: 3 strategies x 2 seeds on tiny 32 px data.
pub const TINY_EXPERIMENT: &str = r#"
name = "tiny"
seed = 7

[data]
image_size = 32

[data.synthetic]
size = 32
hard_patches = 120
hard_slides = 8
pool_patches = 80
pool_slides = 4
seed = 5

[model]
name = "resnet10-w8"

[training]
epochs = 2
batch_size = 16

[mining]
num_query = 5
fp_threshold = 0.0

[matrix]
"mining.strategy" = ["none", "knn-l2", "random"]
seeds = 2
"#;
