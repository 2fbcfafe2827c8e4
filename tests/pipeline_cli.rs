//! `ablate pipeline` is an experiment like any other: its flags and the
//! equivalent experiment file give byte-identical results.

mod common;

use common::{run_ok, tiny_dataset};
use std::path::Path;

/// The experiment file the pipeline flags below describe.
const EQUIVALENT: &str = r#"
seed = 1

[data]
path = "data"
image_size = 32

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
"#;

fn read(dir: &Path, file: &str) -> Vec<u8> {
    std::fs::read(dir.join(file)).unwrap_or_else(|e| panic!("'{file}': {e}"))
}

#[test]
fn pipeline_flags_and_the_experiment_file_give_identical_results() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    tiny_dataset(dir, "data");
    let output = run_ok(
        dir,
        &[
            "pipeline",
            "--data",
            "data",
            "--strategy",
            "none,knn-l2,random",
            "--seed",
            "1",
            "--model",
            "resnet10-w8",
            "--image-size",
            "32",
            "--epochs",
            "2",
            "--batch-size",
            "16",
            "--num-query",
            "5",
            "--fp-threshold",
            "0",
            "--out",
            "pipe",
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(stdout.contains("3 cells: 3 done"), "{stdout}");
    std::fs::write(dir.join("exp.toml"), EQUIVALENT).unwrap();
    run_ok(dir, &["run", "exp.toml", "--output", "file"]);

    let mut files = vec!["results.csv".to_string()];
    for cell in 0..3 {
        for file in ["predictions.csv", "mined.csv", "history-weak.csv"] {
            files.push(format!("cells/{cell}/{file}"));
        }
    }
    for cell in 1..3 {
        for file in ["history-strong.csv", "embedding.csv"] {
            files.push(format!("cells/{cell}/{file}"));
        }
    }
    for file in &files {
        let (a, b) = (read(&dir.join("pipe"), file), read(&dir.join("file"), file));
        assert!(
            a == b,
            "{file} differs between `ablate pipeline` and the experiment file"
        );
    }
    let results = String::from_utf8(read(&dir.join("pipe"), "results.csv")).unwrap();
    assert!(
        results.starts_with("cell,mining.strategy,seed,fold,model,strategy,"),
        "{results}"
    );
    assert_eq!(results.matches(",ok,").count(), 6, "{results}");

    // The experiment file the pipeline wrote reruns it from the cache.
    run_ok(dir, &["run", "pipe/experiment.toml"]);
    assert!(read(&dir.join("pipe"), "results.csv") == results.as_bytes());
    let runs = String::from_utf8(read(&dir.join("pipe"), "runs.csv")).unwrap();
    for line in runs.lines().skip(1) {
        assert!(line.contains("weak"), "everything cached: {runs}");
    }
}
