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
fn jobs_auto_equals_jobs_one_and_weak_models_are_shared() {
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
        "estimated time with --jobs 2 (2 jobs, 1 thread each)",
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
    // The default is one job per thread, at most one per weak-model group.
    let auto = plan("auto");
    assert!(
        auto.contains("estimated time with --jobs auto (2 jobs, 1 thread each)"),
        "{auto}"
    );
    run_ok(
        dir.path(),
        &["run", &file, "--output", "one", "--jobs", "1"],
    );
    run_ok(
        dir.path(),
        &["--threads", "2", "run", &file, "--output", "two"],
    );
    let jobs_run = |output: &str| {
        let manifest = std::fs::read_to_string(dir.path().join(output).join("manifest.json"));
        let manifest: serde_json::Value = serde_json::from_str(&manifest.unwrap()).unwrap();
        manifest["jobs"].as_u64().unwrap()
    };
    assert_eq!((jobs_run("one"), jobs_run("two")), (1, 2));
    // With every group done, `plan` counts the groups left, as `run` does.
    let done = plan("auto");
    assert!(
        done.contains("estimated time with --jobs auto (1 job, 2 threads)"),
        "{done}"
    );
    let one = results(dir.path(), "one");
    assert!(
        one == results(dir.path(), "two"),
        "--jobs auto results differ from --jobs 1"
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
        // cache/weak/<settings>/<build>/done
        let done = std::fs::read_dir(&marker_dir)
            .map(|settings| {
                settings.flatten().any(|s| {
                    std::fs::read_dir(s.path())
                        .map(|builds| builds.flatten().any(|b| b.path().join("done").exists()))
                        .unwrap_or(false)
                })
            })
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

/// Two cells (none, knn-l2) sharing one weak model, on tiny data.
const SMALL_EXPERIMENT: &str = r#"
name = "small"
seed = 3

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
epochs = 1
batch_size = 16

[mining]
num_query = 5
fp_threshold = 0.0

[matrix]
"mining.strategy" = ["none", "knn-l2"]
"#;

/// Copies a folder tree.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// The stage folders of a cache: `cache/<stage>/<settings>/<build>`.
fn stage_folders(cache: &Path) -> Vec<std::path::PathBuf> {
    let mut folders = Vec::new();
    for stage in std::fs::read_dir(cache).unwrap().flatten() {
        for settings in std::fs::read_dir(stage.path()).unwrap().flatten() {
            for build in std::fs::read_dir(settings.path()).unwrap().flatten() {
                folders.push(build.path());
            }
        }
    }
    folders.sort();
    folders
}

/// Makes every stage of `output`'s cache look made by another build: its
/// folder moves from the build fingerprint to `fake`, and its records
/// (`stage.json`, the synthetic data's `synth.json`) name `fake` with other
/// sources.
fn fake_another_build(output: &Path, fingerprint: &str, fake: &str) -> usize {
    let folders = stage_folders(&output.join("cache"));
    for folder in &folders {
        assert_eq!(folder.file_name().unwrap(), fingerprint);
        for record in ["stage.json", "synth.json"] {
            let path = folder.join(record);
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let mut value: serde_json::Value =
                serde_json::from_str(&text.replace(fingerprint, fake)).unwrap();
            value["build"]["sources"] = "0000000000000000".into();
            std::fs::write(&path, serde_json::to_vec_pretty(&value).unwrap()).unwrap();
        }
        std::fs::rename(folder, folder.with_file_name(fake)).unwrap();
    }
    folders.len()
}

/// The `cache_hits` column of `runs.csv`, by cell.
fn cache_hits(dir: &Path, output: &str) -> Vec<String> {
    std::fs::read_to_string(dir.join(output).join("runs.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.rsplit(',').next().unwrap().to_string())
        .collect()
}

fn manifest(output: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(output.join("manifest.json")).unwrap()).unwrap()
}

fn stdout_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A cache made by another build is not reused: the run computes every
/// stage again and says why; `--reuse-stale-stages` reuses it and the
/// manifest lists what it reused; synthetic data of another generator
/// version is generated again even then.
#[test]
fn stages_of_another_build_are_recomputed_unless_reuse_is_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let file = write_experiment(dir, SMALL_EXPERIMENT);
    run_ok(dir, &["run", &file, "--output", "one"]);
    let reference = results(dir, "one");
    // What a run that computes everything reuses: cell 1 the weak model
    // cell 0 trained.
    let computed_all = cache_hits(dir, "one");
    assert_eq!(computed_all, ["", "weak"]);
    let fingerprint = manifest(&dir.join("one"))["build"]["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    // data, weak, query, mining and strong of the knn-l2 cell.
    let fake = "0123456789abcdef";
    assert_eq!(fake_another_build(&dir.join("one"), &fingerprint, fake), 5);
    copy_tree(&dir.join("one"), &dir.join("two"));
    copy_tree(&dir.join("one"), &dir.join("three"));

    // plan and status see the stale stages; status counts their cells missing.
    let plan = stdout_of(&run_ok(dir, &["plan", &file, "--output", "two"]));
    assert!(plan.contains("stale: 5 stages"), "{plan}");
    assert!(plan.contains("0 already cached"), "{plan}");
    let status = ablate()
        .args(["status", &file, "--output", "two"])
        .current_dir(dir)
        .output()
        .unwrap();
    let text = stdout_of(&status);
    assert_eq!(status.status.code(), Some(1), "{text}");
    assert!(
        text.contains("0 done") && text.contains("stale: 5 stages"),
        "{text}"
    );

    // A plain run computes everything again and says why.
    let output = run_ok(dir, &["run", &file, "--output", "one"]);
    let text = stdout_of(&output);
    assert!(
        text.contains("5 stages in the cache were made by another build and are computed again")
            && text.contains("1 data, 1 weak, 1 query, 1 mining, 1 strong")
            && text.contains(&format!("build {fake}"))
            && text.contains("which differs from this build in sources")
            && text.contains("--reuse-stale-stages"),
        "{text}"
    );
    assert_eq!(cache_hits(dir, "one"), computed_all);
    assert!(results(dir, "one") == reference);
    assert_eq!(stage_folders(&dir.join("one/cache")).len(), 10);
    assert_eq!(
        manifest(&dir.join("one"))["reused_stages"],
        serde_json::json!([])
    );

    // Asked to, a run reuses them all and records which.
    let status = run_ok(
        dir,
        &["status", &file, "--output", "two", "--reuse-stale-stages"],
    );
    assert!(
        stdout_of(&status).contains("2 done"),
        "{}",
        stdout_of(&status)
    );
    let output = run_ok(
        dir,
        &["run", &file, "--output", "two", "--reuse-stale-stages"],
    );
    let text = stdout_of(&output);
    assert!(
        text.contains("reused 5 stages made by another build"),
        "{text}"
    );
    assert!(results(dir, "two") == reference);
    assert_eq!(cache_hits(dir, "two"), ["weak", "weak;mining;strong"]);
    assert_eq!(
        stage_folders(&dir.join("two/cache")).len(),
        5,
        "nothing computed"
    );
    let manifest_two = manifest(&dir.join("two"));
    assert_eq!(manifest_two["reuse_stale_stages"], true);
    let reused = manifest_two["reused_stages"].as_array().unwrap();
    assert_eq!(reused.len(), 5);
    assert!(reused.iter().all(
        |r| r["made_by"]["fingerprint"] == fake && r["stage"].as_str().unwrap().ends_with(fake)
    ));
    let report = std::fs::read_to_string(dir.join("two/report.md")).unwrap();
    assert!(report.contains("--reuse-stale-stages"), "{report}");

    // Synthetic data of another generator version is generated again even
    // so, and nothing computed from the old data is reused.
    let data_folders = |output: &str| -> Vec<std::path::PathBuf> {
        let data = dir.join(output).join("cache/data");
        stage_folders(&dir.join(output).join("cache"))
            .into_iter()
            .filter(|f| f.starts_with(&data))
            .collect()
    };
    let data = data_folders("three").remove(0);
    let record_path = data.join("synth.json");
    let mut record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record_path).unwrap()).unwrap();
    record["generator_version"] = 0.into();
    std::fs::write(&record_path, serde_json::to_vec(&record).unwrap()).unwrap();
    run_ok(
        dir,
        &["run", &file, "--output", "three", "--reuse-stale-stages"],
    );
    assert_eq!(cache_hits(dir, "three"), computed_all);
    assert_eq!(
        manifest(&dir.join("three"))["reused_stages"],
        serde_json::json!([])
    );
    let data = data_folders("three");
    assert_eq!(data.len(), 2, "{data:?}");
    assert!(data.iter().any(|f| f.ends_with(&fingerprint)), "{data:?}");
    assert!(results(dir, "three") == reference);
}

#[test]
fn set_overrides_change_the_run_and_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let file = write_experiment(dir, TINY_EXPERIMENT);
    let plan = |sets: &[&str]| {
        let mut args = vec!["plan", file.as_str()];
        for set in sets {
            args.extend(["--set", set]);
        }
        stdout_of(&run_ok(dir, &args))
    };
    assert!(plan(&[]).contains("6 cells"));
    assert!(plan(&["matrix.seeds=1"]).contains("3 cells"));
    assert!(plan(&[
        "matrix.\"mining.strategy\"=[\"none\", \"random\"]",
        "matrix.seeds=3"
    ])
    .contains("6 cells"));
    let sets = [
        "training.epochs=1",
        "matrix.\"mining.strategy\"=[\"none\"]",
        "matrix.seeds=1",
        "name=\"override\"",
    ];
    let mut args = vec!["run", file.as_str()];
    for set in &sets {
        args.extend(["--set", set]);
    }
    run_ok(dir, &args);
    // The name, and so the output folder, came from --set.
    let out = dir.join("reports/override");
    let table = std::fs::read_to_string(out.join("results.csv")).unwrap();
    assert_eq!(table.lines().count(), 1 + 2, "{table}");
    let history = std::fs::read_to_string(out.join("cells/0/history-weak.csv")).unwrap();
    assert_eq!(history.lines().count(), 1 + 1, "one epoch:\n{history}");
    let recorded: Vec<String> = manifest(&out)["overrides"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o.as_str().unwrap().to_string())
        .collect();
    assert_eq!(recorded, sets);
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    assert!(
        report.contains("--set 'training.epochs=1' --set 'matrix.\"mining.strategy\"=[\"none\"]'"),
        "{report}"
    );
}

#[test]
fn bad_overrides_name_the_key_and_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_experiment(dir.path(), TINY_EXPERIMENT);
    let cases: [(&str, &[&str]); 6] = [
        (
            "mining.stratgy=knn-l2",
            &[
                "--set mining.stratgy=knn-l2",
                "unknown key `mining.stratgy`",
                "did you mean `strategy`",
            ],
        ),
        (
            "training.epochs=ten",
            &["--set training.epochs=ten", "invalid type", "usize"],
        ),
        (
            "training.epochs=0",
            &[
                "--set training.epochs=0",
                "`training.epochs` = 0: expected at least 1",
            ],
        ),
        (
            "matrix.\"mining.strategy\"=[\"knn-l3\"]",
            &[
                "--set matrix.\"mining.strategy\"=[\"knn-l3\"]",
                "matrix axis `mining.strategy`",
                "did you mean `knn-l2`",
            ],
        ),
        (
            "mining.strategy=random",
            &[
                "--set mining.strategy=random",
                "`mining.strategy` is an axis of [matrix]",
            ],
        ),
        ("training.epochs", &["--set", "not KEY=VALUE"]),
    ];
    for (set, expected) in cases {
        let output = ablate()
            .args(["plan", &file, "--set", set])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(2), "{set}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        for needle in expected {
            assert!(stderr.contains(needle), "expected {needle:?} in:\n{stderr}");
        }
    }
}
