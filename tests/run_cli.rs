//! `ablate run` and `ablate plan` end to end on a tiny synthetic experiment.

mod common;

use common::{ablate, run_ok, TINY_EXPERIMENT};
use std::path::Path;
use std::time::{Duration, Instant};

fn write_experiment(dir: &Path, text: &str) -> String {
    let path = dir.join("exp.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

fn results(dir: &Path, output: &str) -> Vec<u8> {
    std::fs::read(dir.join(output).join("results.csv")).unwrap()
}

#[test]
fn jobs_two_equals_jobs_one_and_weak_models_are_shared() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_experiment(dir.path(), TINY_EXPERIMENT);
    let plan = |jobs: &str| {
        let args = [
            "--threads",
            "2",
            "plan",
            &file,
            "--output",
            "one",
            "--jobs",
            jobs,
        ];
        String::from_utf8(run_ok(dir.path(), &args).stdout).unwrap()
    };
    let first = plan("2");
    assert!(first.contains("6 cells"), "{first}");
    assert!(first.contains("2 weak models"), "{first}");
    // Memory per job, and the time estimate for two jobs of one thread
    // each, from speeds measured now...
    for needle in [
        "memory: about ",
        "estimated time with --jobs 2 (1 thread each)",
        "resnet10-w8 at 32 px, batch 16, evaluation batch 256, cpu, 1 thread: training",
        "(measured now",
    ] {
        assert!(first.contains(needle), "expected {needle:?} in:\n{first}");
    }
    // ...then read from the cache (under the test's folder).
    let again = plan("2");
    assert!(
        again.contains("(cached, measured ") && !again.contains("(measured now"),
        "{again}"
    );
    run_ok(
        dir.path(),
        &["run", &file, "--output", "one", "--jobs", "1"],
    );
    run_ok(
        dir.path(),
        &[
            "run",
            &file,
            "--output",
            "two",
            "--jobs",
            "2",
            "--threads",
            "2",
        ],
    );
    let one = results(dir.path(), "one");
    assert!(
        one == results(dir.path(), "two"),
        "--jobs 2 results differ from --jobs 1"
    );
    let text = String::from_utf8(one).unwrap();
    assert_eq!(text.lines().count(), 1 + 6 * 2, "{text}");
    assert!(text.lines().skip(1).all(|l| l.contains(",ok,")), "{text}");
    // Per-cell files: predictions, mined list, training curves, embeddings of mining cells.
    for file in [
        "predictions.csv",
        "mined.csv",
        "history-weak.csv",
        "history-strong.csv",
        "embedding.csv",
    ] {
        assert!(
            dir.path().join("one/cells/3").join(file).is_file(),
            "cells/3/{file} missing"
        );
    }
    let history = std::fs::read_to_string(dir.path().join("one/cells/3/history-weak.csv")).unwrap();
    assert_eq!(
        history.lines().next().unwrap(),
        "epoch,train_loss,valid_loss,valid_auroc,lr,best"
    );
    assert_eq!(history.lines().count(), 1 + 2, "two epochs:\n{history}");
    // The report is built at the end of the run.
    assert!(
        dir.path().join("one/report.md").is_file() && dir.path().join("one/summary.csv").is_file()
    );
    // One weak model per seed, shared by the three strategies.
    let weak_models = std::fs::read_dir(dir.path().join("one/cache/weak"))
        .unwrap()
        .count();
    assert_eq!(weak_models, 2);
    // A rerun reuses everything and reproduces the table.
    run_ok(dir.path(), &["run", &file, "--output", "one"]);
    assert!(text.as_bytes() == results(dir.path(), "one"));
    let runs = std::fs::read_to_string(dir.path().join("one/runs.csv")).unwrap();
    assert!(runs.lines().skip(1).all(|l| l.contains("weak")), "{runs}");
}

#[test]
fn killed_run_resumes_to_the_same_results() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_experiment(dir.path(), TINY_EXPERIMENT);
    run_ok(dir.path(), &["run", &file, "--output", "reference"]);

    let mut child = ablate()
        .args(["run", &file, "--output", "killed"])
        .current_dir(dir.path())
        .spawn()
        .unwrap();
    // Kill once the first stage artifact exists, in the middle of the run.
    let marker_dir = dir.path().join("killed/cache/weak");
    let started = Instant::now();
    loop {
        let done = std::fs::read_dir(&marker_dir)
            .map(|entries| entries.flatten().any(|e| e.path().join("done").exists()))
            .unwrap_or(false);
        if done || started.elapsed() > Duration::from_secs(120) {
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        !dir.path().join("killed/results.csv").exists(),
        "the run was killed before it finished"
    );
    run_ok(dir.path(), &["run", &file, "--output", "killed"]);
    assert!(
        results(dir.path(), "reference") == results(dir.path(), "killed"),
        "resumed results differ"
    );
}

#[test]
fn bad_experiment_files_name_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[mining]\nstratgy = \"knn-l2\"\n",
            vec!["exp.toml:2:1", "mining.stratgy", "did you mean `strategy`"],
        ),
        (
            "[training]\nepochs = \"ten\"\n",
            vec!["exp.toml:2:", "invalid type"],
        ),
        (
            "[matrix]\n\"training.epochs\" = []\n",
            vec!["`training.epochs`", "non-empty list"],
        ),
        (
            "[matrix]\n\"mining.strategy\" = [\"knn-l3\"]\n",
            vec!["mining.strategy", "knn-l3", "did you mean `knn-l2`"],
        ),
    ];
    for (text, expected) in cases {
        let file = write_experiment(dir.path(), text);
        let output = ablate()
            .args(["plan", &file])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{text}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        for needle in expected {
            assert!(stderr.contains(needle), "expected {needle:?} in:\n{stderr}");
        }
    }
}

#[test]
fn cuda_without_the_feature_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_experiment(dir.path(), "device = \"cuda:0\"\n");
    let output = ablate()
        .args(["run", &file])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if cfg!(not(feature = "cuda")) {
        assert_eq!(output.status.code(), Some(1), "{stderr}");
        assert!(stderr.contains("--features cuda"), "{stderr}");
    }
    let file = write_experiment(dir.path(), "device = \"gpu\"\n");
    let output = ablate()
        .args(["plan", &file])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr.contains("unknown device `gpu`"), "{stderr}");
}
