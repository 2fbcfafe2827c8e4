//! `ablate fetch dataset` and `ablate fetch weights` end to end, against an
//! HTTP server on 127.0.0.1 started by each test (never the internet).

mod common;
#[path = "../src/fetch/test_server.rs"]
mod test_server;

use common::{ablate, run_ok, tiny_dataset, tree_bytes};
use md5::Digest as _;
use serde_json::json;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Output;
use test_server::{Reply, TestServer};

const RECORD: &str = "/api/records/10020633";
const ARCHIVE: &str = "LI_dataset.zip";

fn archive_path() -> String {
    format!("{RECORD}/files/{ARCHIVE}/content")
}

fn md5_hex(bytes: &[u8]) -> String {
    md5::Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The tiny synthetic dataset's two layout folders zipped under one top
/// folder, as a dataset archive usually is.
fn dataset_zip(synth: &Path) -> Vec<u8> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (path, bytes) in tree_bytes(synth) {
        let name = path.to_str().expect("utf-8").replace('\\', "/");
        if name.starts_with("hard_labeled_dataset/") || name.starts_with("weakly_labeled_dataset/")
        {
            zip.start_file(format!("LI_dataset/{name}"), options)
                .expect("start");
            zip.write_all(&bytes).expect("write");
        }
    }
    zip.finish().expect("finish").into_inner()
}

/// Serves record 10020633 listing `files` (name, bytes, stated MD5), each
/// at Zenodo's address; the bytes are served as `reply` says.
fn serve_record(server: &TestServer, files: &[(&str, &[u8], String)]) {
    let entries: Vec<_> = files
        .iter()
        .map(|(name, bytes, md5)| {
            json!({
                "key": name,
                "size": bytes.len(),
                "checksum": format!("md5:{md5}"),
                "links": { "self": server.url(&format!("{RECORD}/files/{name}/content")) }
            })
        })
        .collect();
    let record = json!({
        "id": 10020633,
        "doi": "10.5281/zenodo.10020633",
        "metadata": { "title": "LI dataset (test copy)", "version": "1.0" },
        "files": entries
    });
    server.set(RECORD, Reply::Bytes(record.to_string().into_bytes()));
}

/// A tiny dataset, its zip, and a server offering the zip and a README.
fn setup(dir: &Path) -> (TestServer, PathBuf, Vec<u8>) {
    let synth = tiny_dataset(dir, "synth");
    let zip = dataset_zip(&synth);
    let server = TestServer::start();
    serve_record(
        &server,
        &[
            (ARCHIVE, &zip, md5_hex(&zip)),
            ("README.txt", b"about the data", md5_hex(b"about the data")),
        ],
    );
    server.set(&archive_path(), Reply::Bytes(zip.clone()));
    server.set(
        &format!("{RECORD}/files/README.txt/content"),
        Reply::Bytes(b"about the data".to_vec()),
    );
    (server, synth, zip)
}

fn fetch_dataset(dir: &Path, base_url: &str) -> Output {
    ablate()
        .args([
            "fetch",
            "dataset",
            "--dest",
            "data/public",
            "--base-url",
            base_url,
        ])
        .current_dir(dir)
        .output()
        .expect("ablate runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Every file under `dir` whose name ends in `.part`.
fn part_files(dir: &Path) -> Vec<PathBuf> {
    tree_bytes(dir)
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.to_string_lossy().ends_with(".part"))
        .collect()
}

#[test]
fn dataset_downloads_verifies_unpacks_and_a_run_records_it() {
    let dir = tempfile::tempdir().unwrap();
    let (server, synth, _) = setup(dir.path());
    let output = fetch_dataset(dir.path(), &server.base_url());
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(
        stdout.contains("(Zenodo record 10020633, version 1.0): downloaded 2 of 2 file(s)"),
        "{stdout}"
    );
    let synth_hard = tree_bytes(&synth.join("hard_labeled_dataset"));
    let positives = synth_hard
        .iter()
        .filter(|(p, _)| p.to_string_lossy().starts_with("pos_"))
        .count();
    assert!(
        stdout.contains(&format!(
            "hard-labeled: 120 patches ({positives} positive, {} negative) from 8 slides",
            120 - positives
        )),
        "{stdout}"
    );
    assert!(
        stdout.contains("weakly labeled pool: 80 patches"),
        "{stdout}"
    );
    let public = dir.path().join("data/public");
    for folder in ["hard_labeled_dataset", "weakly_labeled_dataset"] {
        assert!(
            tree_bytes(&public.join(folder)) == tree_bytes(&synth.join(folder)),
            "{folder} differs from the archived files"
        );
    }
    assert_eq!(
        std::fs::read(public.join("README.txt")).unwrap(),
        b"about the data"
    );
    assert!(!public.join(".fetch").exists());
    let provenance: serde_json::Value =
        serde_json::from_slice(&std::fs::read(public.join("provenance.json")).unwrap()).unwrap();
    assert_eq!(provenance["record"], "10020633");
    assert_eq!(provenance["files"][0]["name"], ARCHIVE);
    assert_eq!(
        provenance["contents"].as_array().unwrap().len(),
        120 + 80 + 1
    );

    // A second run verifies and downloads nothing: not even the record.
    server.clear_log();
    let again = fetch_dataset(dir.path(), &server.base_url());
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(
        text(&again.stdout).contains("all 201 files verified, nothing downloaded"),
        "{}",
        text(&again.stdout)
    );
    assert!(server.requests().is_empty(), "{:?}", server.requests());

    // Every manifest.json of a run on this folder records the provenance.
    let experiment = r#"
name = "fetched"
[data]
path = "data/public"
image_size = 32
[model]
name = "resnet10-w8"
[training]
epochs = 1
batch_size = 16
[mining]
strategy = "none"
"#;
    std::fs::write(dir.path().join("exp.toml"), experiment).unwrap();
    run_ok(dir.path(), &["run", "exp.toml", "--output", "out"]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("out/manifest.json")).unwrap())
            .unwrap();
    let recorded = &manifest["inputs"]["datasets"]["data/public"];
    assert_eq!(recorded["record"], "10020633");
    assert_eq!(recorded["version"], "1.0");
    assert_eq!(recorded["contents_sha256"], provenance["contents_sha256"]);
    assert_eq!(recorded["files"], provenance["files"]);
    assert!(recorded.get("contents").is_none());
}

#[test]
fn an_interrupted_download_resumes_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let (server, synth, zip) = setup(dir.path());
    let half = zip.len() / 2;
    server.set(
        &archive_path(),
        Reply::Cut {
            body: zip.clone(),
            at: half,
            times: 100,
        },
    );
    let output = fetch_dataset(dir.path(), &server.base_url());
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "download of {} broke off after {half} bytes of {}",
            server.url(&archive_path()),
            zip.len()
        )) && stderr.contains("run the command again to resume it"),
        "{stderr}"
    );
    let public = dir.path().join("data/public");
    let part = public.join(".fetch").join(format!("{ARCHIVE}.part"));
    assert_eq!(std::fs::read(&part).unwrap(), &zip[..half]);
    assert!(!public.join("hard_labeled_dataset").exists());

    // The next run asks for the rest only.
    server.set(&archive_path(), Reply::Bytes(zip.clone()));
    server.clear_log();
    let output = fetch_dataset(dir.path(), &server.base_url());
    assert!(output.status.success(), "{}", text(&output.stderr));
    let ranges: Vec<Option<String>> = server
        .requests_for(&archive_path())
        .into_iter()
        .map(|r| r.range)
        .collect();
    assert_eq!(ranges, [Some(format!("bytes={half}-"))]);
    for folder in ["hard_labeled_dataset", "weakly_labeled_dataset"] {
        assert!(
            tree_bytes(&public.join(folder)) == tree_bytes(&synth.join(folder)),
            "{folder} differs after resuming"
        );
    }
    assert!(part_files(&public).is_empty());
}

#[test]
fn a_wrong_checksum_names_the_file_and_leaves_no_partial_data() {
    let dir = tempfile::tempdir().unwrap();
    let (server, _, zip) = setup(dir.path());
    let wrong = md5_hex(b"another archive");
    serve_record(&server, &[(ARCHIVE, &zip, wrong.clone())]);
    let output = fetch_dataset(dir.path(), &server.base_url());
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{ARCHIVE}: checksum does not match the record (expected md5:{wrong}, got md5:{})",
            md5_hex(&zip)
        )),
        "{stderr}"
    );
    let public = dir.path().join("data/public");
    for absent in [
        "hard_labeled_dataset",
        "weakly_labeled_dataset",
        "provenance.json",
    ] {
        assert!(!public.join(absent).exists(), "{absent}");
    }
    assert!(part_files(&public).is_empty());
    assert!(tree_bytes(&public).is_empty(), "{:?}", tree_bytes(&public));
}

#[test]
fn a_missing_record_or_file_and_an_unreachable_host_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let server = TestServer::start();
    let output = fetch_dataset(dir.path(), &server.base_url());
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stderr).trim(),
        format!(
            "error: could not fetch the dataset (Zenodo record 10020633) into 'data/public': \
             {} answered HTTP 404 (Not Found)",
            server.url(RECORD)
        )
    );

    serve_record(&server, &[(ARCHIVE, b"zip", md5_hex(b"zip"))]);
    let output = fetch_dataset(dir.path(), &server.base_url());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "{} answered HTTP 404",
            server.url(&archive_path())
        )),
        "{stderr}"
    );

    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let base = format!("http://127.0.0.1:{closed}");
    let output = fetch_dataset(dir.path(), &base);
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot reach {base}{RECORD}: ")),
        "{stderr}"
    );
}

/// `ablate fetch weights ...` with the cache in `cache`.
fn fetch_weights(dir: &Path, cache: &Path, args: &[&str]) -> Output {
    ablate()
        .args(["fetch", "weights"])
        .args(args)
        .env("ABLATE_CACHE_DIR", cache)
        .current_dir(dir)
        .output()
        .expect("ablate runs")
}

#[test]
fn weights_are_checked_against_the_published_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let server = TestServer::start();
    // Bytes that are not torchvision's file (its SHA-256 starts with f37072fd).
    let fake =
        std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/pth/tiny.pth"))
            .unwrap();
    server.set("/models/resnet18-f37072fd.pth", Reply::Bytes(fake.clone()));
    let base = server.base_url();
    let output = fetch_weights(
        dir.path(),
        &cache,
        &["resnet18.tv_in1k", "--base-url", &base],
    );
    assert_eq!(output.status.code(), Some(2));
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "resnet18-f37072fd.pth from {}: checksum does not match (expected sha256:f37072fd, got sha256:",
            server.url("/models/resnet18-f37072fd.pth")
        )) && stderr.contains("the download was deleted"),
        "{stderr}"
    );
    assert_eq!(
        server.requests_for("/models/resnet18-f37072fd.pth").len(),
        1
    );
    assert!(tree_bytes(&cache).is_empty(), "{:?}", tree_bytes(&cache));

    // timm's file is pinned by size too.
    server.set(
        "/timm/resnet18.a1_in1k/resolve/491b427b45c94c7fb0e78b5474cc919aff584bbf/model.safetensors",
        Reply::Bytes(fake.clone()),
    );
    let output = fetch_weights(
        dir.path(),
        &cache,
        &["resnet18.a1_in1k", "--base-url", &base],
    );
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains(&format!(
            "model.safetensors from {base}/timm/resnet18.a1_in1k/resolve/491b427b45c94c7fb0e78b5474cc919aff584bbf/model.safetensors: \
             size does not match (expected 46807446 bytes, got {} bytes)",
            fake.len()
        )),
        "{stderr}"
    );

    let output = fetch_weights(
        dir.path(),
        &cache,
        &["resnet34.tv_in1k", "--base-url", &base],
    );
    assert!(
        text(&output.stderr).contains("/models/resnet34-b627a593.pth answered HTTP 404"),
        "{}",
        text(&output.stderr)
    );
    let output = fetch_weights(
        dir.path(),
        &cache,
        &["resnet34.tv_in1k", "--base-url", "http://127.0.0.1:1"],
    );
    assert!(
        text(&output.stderr)
            .contains("cannot reach http://127.0.0.1:1/models/resnet34-b627a593.pth"),
        "{}",
        text(&output.stderr)
    );
    let output = fetch_weights(dir.path(), &cache, &["resnet18.a1_in1"]);
    assert!(
        text(&output.stderr)
            .contains("unknown weights `resnet18.a1_in1` (did you mean `resnet18.a1_in1k`?)"),
        "{}",
        text(&output.stderr)
    );
}

#[test]
fn named_weights_resolve_in_the_cache_or_say_how_to_fetch_them() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    let list = fetch_weights(dir.path(), &cache, &["--list"]);
    assert!(list.status.success());
    let stdout = text(&list.stdout);
    for name in ["resnet18.a1_in1k", "resnet18.tv_in1k", "resnet34.tv_in1k"] {
        assert!(stdout.contains(name), "{stdout}");
    }
    assert!(
        stdout.contains(&format!(
            "weights folder: '{}'",
            cache.join("weights").display()
        )),
        "{stdout}"
    );

    // A run stops before its first cell, printing the command to run.
    let experiment = r#"
name = "pretrained"
[data]
image_size = 32
[data.synthetic]
size = 32
hard_patches = 40
hard_slides = 4
pool_patches = 20
pool_slides = 2
[model]
name = "resnet18"
pretrained = "resnet18.a1_in1k"
[mining]
strategy = "none"
"#;
    std::fs::write(dir.path().join("exp.toml"), experiment).unwrap();
    let output = ablate()
        .args(["run", "exp.toml"])
        .env("ABLATE_CACHE_DIR", &cache)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert_eq!(
        text(&output.stderr).trim(),
        format!(
            "error: model.pretrained: weights `resnet18.a1_in1k` are not in '{}'; fetch them with:\n    ablate fetch weights resnet18.a1_in1k",
            cache.join("weights").display()
        )
    );
    assert!(!dir.path().join("reports/pretrained/results.csv").exists());
}
