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
    assert_mimic_auroc_matches_the_predictions(dir, &results);

    // The experiment file the pipeline wrote reruns it from the cache.
    run_ok(dir, &["run", "pipe/experiment.toml"]);
    assert!(read(&dir.join("pipe"), "results.csv") == results.as_bytes());
    let runs = String::from_utf8(read(&dir.join("pipe"), "runs.csv")).unwrap();
    for line in runs.lines().skip(1) {
        assert!(line.contains("weak"), "everything cached: {runs}");
    }
}

/// AUROC of invasions against mimics by counting pairs (ties count half).
fn pairwise_auroc(positives: &[f64], negatives: &[f64]) -> f64 {
    let mut wins = 0.0;
    for p in positives {
        for n in negatives {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    wins / (positives.len() * negatives.len()) as f64
}

/// `auroc_mimic` of the knn-l2 cell's strong model equals the AUROC of its
/// test predictions restricted to invasions and mimics, with the kinds from
/// the synthetic data's manifest.
fn assert_mimic_auroc_matches_the_predictions(dir: &Path, results: &str) {
    let kinds: std::collections::HashMap<String, String> =
        String::from_utf8(read(&dir.join("data"), "manifest.csv"))
            .unwrap()
            .lines()
            .skip(1)
            .map(|line| {
                let fields: Vec<&str> = line.split(',').collect();
                (fields[0].to_string(), fields[4].to_string())
            })
            .collect();
    let predictions =
        String::from_utf8(read(&dir.join("pipe"), "cells/1/predictions.csv")).unwrap();
    let (mut invasions, mut mimics) = (Vec::new(), Vec::new());
    for line in predictions.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        if fields[0] != "strong" {
            continue;
        }
        let score: f64 = fields[3].parse().unwrap();
        match kinds[fields[1]].as_str() {
            "invasion" => invasions.push(score),
            "mimic" => mimics.push(score),
            _ => {}
        }
    }
    assert!(
        !invasions.is_empty() && !mimics.is_empty(),
        "the tiny test split holds invasions and mimics"
    );
    let header: Vec<&str> = results.lines().next().unwrap().split(',').collect();
    let column = header.iter().position(|c| *c == "auroc_mimic").unwrap();
    let row = results
        .lines()
        .find(|line| line.starts_with("1,knn-l2,") && line.contains(",strong,"))
        .unwrap();
    let reported: f64 = row.split(',').nth(column).unwrap().parse().unwrap();
    let expected = pairwise_auroc(&invasions, &mimics);
    assert!(
        (reported - expected).abs() < 1e-12,
        "auroc_mimic {reported}, from the predictions {expected}"
    );
}
