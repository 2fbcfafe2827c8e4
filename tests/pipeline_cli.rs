//! `ablate pipeline` is an experiment like any other: its flags and the
//! equivalent experiment file give byte-identical results.

mod common;

use ablate::data::PatchKind;
use ablate::runner::found::auroc_against_mimics;
use common::{run_ok, tiny_dataset};
use std::collections::HashMap;
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

/// The AUROC of `model`'s test predictions in `cell`, restricted to
/// invasions and mimics by the `kinds` the dataset's manifest records; the
/// weak model's predictions where the cell trained no strong model.
fn mimic_auroc_of_predictions(
    dir: &Path,
    kinds: &HashMap<String, PatchKind>,
    cell: usize,
    model: &str,
) -> f64 {
    let predictions = String::from_utf8(read(
        &dir.join("pipe"),
        &format!("cells/{cell}/predictions.csv"),
    ))
    .unwrap();
    let rows: Vec<Vec<&str>> = predictions
        .lines()
        .skip(1)
        .map(|line| line.split(',').collect())
        .collect();
    let model = if rows.iter().any(|r| r[0] == model) {
        model
    } else {
        "weak"
    };
    let (test_kinds, scores): (Vec<Option<PatchKind>>, Vec<f64>) = rows
        .iter()
        .filter(|r| r[0] == model)
        .map(|r| (Some(kinds[r[1]]), r[3].parse::<f64>().unwrap()))
        .unzip();
    auroc_against_mimics(&test_kinds, &scores)
        .expect("the tiny test split holds invasions and mimics")
}

/// Every model's `auroc_mimic` equals the AUROC of its own test predictions
/// restricted to invasions and mimics: the column follows the test split's
/// order and kinds. (The tiny models happen to rank the few test mimics
/// alike; `runner::results` tests that each model gets its own value.)
fn assert_mimic_auroc_matches_the_predictions(dir: &Path, results: &str) {
    let dataset = ablate::data::layout::load_dataset(&dir.join("data")).unwrap();
    let kinds: HashMap<String, PatchKind> = dataset
        .hard
        .iter()
        .map(|p| (p.path.to_string_lossy().replace('\\', "/"), p.kind.unwrap()))
        .collect();
    let header: Vec<&str> = results.lines().next().unwrap().split(',').collect();
    let column = header.iter().position(|c| *c == "auroc_mimic").unwrap();
    let mut checked = 0;
    for line in results.lines().skip(1) {
        let fields: Vec<&str> = line.split(',').collect();
        let (cell, model) = (fields[0].parse().unwrap(), fields[4]);
        let reported: f64 = fields[column].parse().unwrap();
        let expected = mimic_auroc_of_predictions(dir, &kinds, cell, model);
        assert!(
            (reported - expected).abs() < 1e-12,
            "cell {cell} {model}: auroc_mimic {reported}, from the predictions {expected}"
        );
        checked += 1;
    }
    assert_eq!(checked, 6, "{results}");
}
