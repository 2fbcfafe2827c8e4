//! `ablate report` end to end on a results folder made up here (no training):
//! every output file is written, `summary.csv` holds the hand-computed
//! numbers, and the report does not depend on where the folder lies.

mod common;

use common::{ablate, run_ok};
use std::fs;
use std::path::Path;

const HEADER: &str = "cell,data.pos_fraction,mining.strategy,seed,fold,model,strategy,num_query,status,error,n_test,loss,auroc,auprc,sensitivity,specificity,precision,f1,accuracy,tp,fp,tn,fn,false_positives,mined,mimic_fraction,train_size,best_epoch,trained";

const EXPERIMENT: &str = r#"name = "tiny-report"
seed = 0

[matrix]
"data.pos_fraction" = [0.1, 0.5]
"mining.strategy" = ["none", "knn-l2"]
seeds = 3

[report]
metrics = ["auroc", "sensitivity"]
"#;

const MANIFEST: &str = r#"{"ablate_version": "0.1.0", "candle_version": "0.11.1", "git_commit": null, "device": "cpu",
"experiment_file": "exp.toml", "config_hash": "abc123", "cells": 12, "resolved_cells": [],
"started": "2026-01-01T00:00:00Z", "finished": "2026-01-01T00:10:00Z"}"#;

/// The weak model's AUROC of a configuration and seed; knn-l2's strong model adds 0.05.
fn weak_auroc(pos: &str, seed: usize) -> f64 {
    (if pos == "0.1" { 0.70 } else { 0.80 }) + 0.01 * seed as f64
}

/// Test predictions: 8 positives and 12 negatives; `shift` separates them more.
fn predictions(shift: f64, strong: bool) -> String {
    let mut text = String::new();
    for (model, extra) in [("weak", 0.0), ("strong", shift)] {
        if model == "strong" && !strong {
            continue;
        }
        for i in 0..20 {
            let positive = i < 8;
            // Interleaved scores: positives mostly above negatives, more so with `extra`.
            let base = (i * 7 % 20) as f64 / 20.0;
            let score = if positive {
                (base + 0.3 + extra).min(1.0)
            } else {
                base * 0.8
            };
            text += &format!("{model},hard/p{i}.png,{},{score}\n", u8::from(positive));
        }
    }
    format!("model,path,label,score\n{text}")
}

/// Writes a 2 x 2 configuration x 3 seed results folder.
fn write_results(dir: &Path) {
    let mut csv = format!("{HEADER}\n");
    let mut cell = 0;
    for pos in ["0.1", "0.5"] {
        for strategy in ["none", "knn-l2"] {
            for seed in 0..3 {
                let weak = weak_auroc(pos, seed);
                let strong = if strategy == "none" {
                    weak
                } else {
                    weak + 0.05
                };
                for (model, auroc, trained) in
                    [("weak", weak, true), ("strong", strong, strategy != "none")]
                {
                    let sens = auroc - 0.1;
                    csv += &format!(
                        "{cell},{pos},{strategy},{seed},,{model},{strategy},20,ok,,20,0.4,{auroc},{auroc},{sens},0.8,0.7,0.7,0.75,6,2,10,2,3,9,,40,4,{trained}\n"
                    );
                }
                let cell_dir = dir.join("cells").join(cell.to_string());
                fs::create_dir_all(&cell_dir).unwrap();
                fs::write(
                    cell_dir.join("predictions.csv"),
                    predictions(0.1 + 0.05 * seed as f64, strategy != "none"),
                )
                .unwrap();
                cell += 1;
            }
        }
    }
    fs::write(dir.join("results.csv"), csv).unwrap();
    fs::write(dir.join("experiment.toml"), EXPERIMENT).unwrap();
    fs::write(dir.join("manifest.json"), MANIFEST).unwrap();
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_tree(&path, &target);
        } else {
            fs::copy(&path, &target).unwrap();
        }
    }
}

/// The summary.csv row of a configuration and model, as column -> value.
fn summary_row(
    text: &str,
    pos: &str,
    strategy: &str,
    model: &str,
) -> std::collections::HashMap<String, String> {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row = lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|r| r[0] == pos && r[1] == strategy && r[2] == model);
    let row = row.unwrap_or_else(|| panic!("no summary row {pos} {strategy} {model} in\n{text}"));
    header
        .iter()
        .zip(row)
        .map(|(h, v)| (h.to_string(), v.to_string()))
        .collect()
}

fn number(row: &std::collections::HashMap<String, String>, column: &str) -> f64 {
    row[column]
        .parse()
        .unwrap_or_else(|_| panic!("{column} = '{}'", row[column]))
}

#[test]
fn report_of_a_copied_folder_has_every_output_and_known_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let original = dir.path().join("original");
    write_results(&original);
    let copy = dir.path().join("elsewhere").join("copy");
    copy_tree(&original, &copy);
    run_ok(dir.path(), &["report", copy.to_str().unwrap()]);

    let files = [
        "summary.csv",
        "comparisons.csv",
        "cell_tests.csv",
        "gain_trends.csv",
        "report.md",
        "report.html",
        "figures/sweep-data-pos_fraction.png",
        "figures/sweep-data-pos_fraction.svg",
        "figures/bars.png",
        "figures/bars.svg",
        "figures/roc.png",
        "figures/roc.svg",
    ];
    for file in files {
        let path = copy.join(file);
        assert!(
            path.is_file() && fs::metadata(&path).unwrap().len() > 0,
            "missing {}",
            path.display()
        );
    }
    assert!(
        !original.join("summary.csv").exists(),
        "the original folder is untouched"
    );
    let png = fs::read(copy.join("figures/bars.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");

    // knn-l2 at pos 0.5: strong AUROC 0.85, 0.86, 0.87 -> mean 0.86, sd 0.01,
    // 95% t interval 0.86 ± 4.302652729749464 * 0.01 / sqrt 3.
    let summary = fs::read_to_string(copy.join("summary.csv")).unwrap();
    let strong = summary_row(&summary, "0.5", "knn-l2", "strong");
    assert_eq!(strong["n"], "3");
    assert_eq!(strong["trained"], "true");
    assert!((number(&strong, "auroc_mean") - 0.86).abs() < 1e-12);
    assert!((number(&strong, "auroc_sd") - 0.01).abs() < 1e-12);
    assert!((number(&strong, "auroc_se") - 0.01 / 3f64.sqrt()).abs() < 1e-12);
    let half = 4.302652729749464 * 0.01 / 3f64.sqrt();
    assert!((number(&strong, "auroc_ci95_high") - (0.86 + half)).abs() < 1e-9);
    let weak = summary_row(&summary, "0.1", "none", "weak");
    assert!((number(&weak, "auroc_mean") - 0.71).abs() < 1e-12);
    assert!((number(&weak, "sensitivity_mean") - 0.61).abs() < 1e-12);

    // Strong vs none at pos 0.5: a constant +0.05 on every seed.
    let comparisons = fs::read_to_string(copy.join("comparisons.csv")).unwrap();
    let line = comparisons
        .lines()
        .find(|l| l.starts_with("vs_none,auroc,0.5,knn-l2"))
        .unwrap_or_else(|| panic!("no vs_none row in\n{comparisons}"));
    assert!(line.contains(",3,0.86,0.81,"), "{line}");

    // No random control, so no gain to follow along pos_fraction: the
    // trends table has its header alone.
    let trends = fs::read_to_string(copy.join("gain_trends.csv")).unwrap();
    assert_eq!(trends.lines().count(), 1, "{trends}");
    assert!(trends.starts_with("axis,strategy,control,"), "{trends}");

    // One DeLong test per knn-l2 cell (6), none for `none`.
    let tests = fs::read_to_string(copy.join("cell_tests.csv")).unwrap();
    assert_eq!(tests.lines().count(), 1 + 6, "{tests}");

    let markdown = fs::read_to_string(copy.join("report.md")).unwrap();
    for expected in [
        "# Ablation report: tiny-report",
        "](figures/bars.png)",
        "config hash: `abc123`",
        "```toml\nname = \"tiny-report\"",
        "ablate run exp.toml",
        "**0.860 ± 0.010**",
    ] {
        assert!(
            markdown.contains(expected),
            "report.md lacks {expected:?}:\n{markdown}"
        );
    }
    let html = fs::read_to_string(copy.join("report.html")).unwrap();
    assert!(
        html.contains("<svg") && !html.contains("figures/bars.png"),
        "figures are inlined"
    );

    // Same inputs elsewhere: the same tables and pictures.
    run_ok(dir.path(), &["report", original.to_str().unwrap()]);
    for file in [
        "summary.csv",
        "comparisons.csv",
        "cell_tests.csv",
        "figures/roc.png",
        "figures/bars.svg",
    ] {
        assert_eq!(
            fs::read(original.join(file)).unwrap(),
            fs::read(copy.join(file)).unwrap(),
            "{file} differs"
        );
    }
}

#[test]
fn missing_or_broken_results_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let output = ablate()
        .args(["report", "nowhere"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("nowhere/results.csv"), "{stderr}");

    let broken = dir.path().join("broken");
    write_results(&broken);
    let text = fs::read_to_string(broken.join("results.csv"))
        .unwrap()
        .replacen(",0.7,", ",seventy,", 1);
    fs::write(broken.join("results.csv"), text).unwrap();
    let output = ablate()
        .args(["report", "broken"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("results.csv' line 2") && stderr.contains("seventy"),
        "{stderr}"
    );
}
