//! The public dataset from its Zenodo record: download, verify, unpack into
//! the public layout, record where it came from, and check it with the
//! project's own loader.
//!
//! Steps, and what each leaves behind if interrupted:
//!
//! 1. If `DEST/provenance.json` exists, every file it lists is checked
//!    (size and SHA-256) and the layout folders may hold nothing else. If
//!    all agree, nothing is downloaded; otherwise the dataset is fetched again.
//! 2. The record's metadata (`{base}/api/records/{id}`) gives the files,
//!    their sizes and MD5 checksums.
//! 3. Each file is downloaded into `DEST/.fetch/NAME.part` (resumed by a
//!    later run), its size and MD5 checked, then renamed to
//!    `DEST/.fetch/NAME`. A file that fails its checksum is deleted and
//!    named in the error.
//! 4. Archives (zip, tar.gz, tar) are unpacked under `DEST/.fetch/`, their
//!    layout folders found (see [`super::unpack::locate_layout`]) and merged;
//!    other files (a README) are kept as they are.
//! 5. The layout folders replace those in `DEST` (only folders that an
//!    earlier fetch wrote: a `DEST` holding data from elsewhere is refused),
//!    `provenance.json` is written (last, atomically: its presence means the
//!    data is complete), and `DEST/.fetch` is removed, archives included.
//! 6. The project's loader reads the result; the counts are reported.
//!
//! `provenance.json` records the record id, version and DOI, every file with
//! its size, MD5 and address, the date, and the SHA-256 of every unpacked
//! file. The summary without the per-file list goes into the `manifest.json`
//! of every run on this folder (see [`Provenance::summary`]).

use super::digest::{verify_download, Algorithm, Mismatch};
use super::http::{Http, HttpError};
use super::unpack::{locate_layout, unpack, ArchiveKind, UnpackError};
use super::zenodo::{parse_record, record_url, Record, RecordError};
use super::FetchEvent;
use crate::data::layout::{load_dataset, LayoutError};
use crate::data::{Label, HARD_DIR, WEAK_DIR};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

/// File beside the data recording where it came from.
pub const PROVENANCE_FILE: &str = "provenance.json";
/// Working folder of an unfinished fetch, inside the destination.
pub const WORK_DIR: &str = ".fetch";
/// Marker inside [`WORK_DIR`]: the layout folders in the destination are
/// being replaced by this command (so a rerun may replace them too).
const INSTALLING: &str = "installing";
/// Largest record metadata accepted.
const RECORD_LIMIT: u64 = 16 << 20;

/// Where the data came from and what it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    /// `zenodo`.
    pub source: String,
    /// Record id (as requested).
    pub record: String,
    /// Record version, if the record states one.
    pub version: Option<String>,
    /// Record DOI, if reported.
    pub doi: Option<String>,
    /// Record title, if reported.
    pub title: Option<String>,
    /// Where the metadata was read.
    pub record_url: String,
    /// When the files were downloaded (UTC, RFC 3339).
    pub retrieved: String,
    /// The record's files as downloaded and verified.
    pub files: Vec<FetchedFile>,
    /// SHA-256 of the `contents` listing (`sha256  path` lines, sorted by path).
    pub contents_sha256: String,
    /// Every file of the dataset with its size and SHA-256, sorted by path.
    pub contents: Vec<ContentFile>,
}

/// One file of the record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchedFile {
    /// File name in the record.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// The record's checksum, verified (`md5:HEX`).
    pub checksum: String,
    /// Where it was downloaded from.
    pub url: String,
    /// Whether it was an archive, unpacked (and then deleted).
    pub unpacked: bool,
}

/// One file of the dataset as it lies in the destination.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentFile {
    /// Path relative to the destination, with `/` separators.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 (hex).
    pub sha256: String,
}

impl Provenance {
    /// Reads `dir/provenance.json`; `None` when there is none.
    pub fn read(dir: &Path) -> Result<Option<Self>, DatasetError> {
        let path = dir.join(PROVENANCE_FILE);
        let text = match fs::read(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(DatasetError::Io { path, error }),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|error| DatasetError::Provenance { path, error })
    }

    /// Everything but the per-file `contents` list (which `contents_sha256`
    /// stands for): what a run's `manifest.json` records.
    pub fn summary(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).expect("provenance serialises");
        if let Some(map) = value.as_object_mut() {
            map.remove("contents");
        }
        value
    }
}

/// Counts of a loaded dataset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DatasetCounts {
    /// Hard-labeled positive patches.
    pub positive: usize,
    /// Hard-labeled negative patches.
    pub negative: usize,
    /// Slides of the hard-labeled patches.
    pub hard_slides: usize,
    /// Patches of the weakly labeled pool.
    pub pool: usize,
    /// Slides of the pool (a pool patch whose name gives none is its own slide).
    pub pool_slides: usize,
}

/// What [`fetch_dataset`] did.
#[derive(Debug, Clone)]
pub struct DatasetOutcome {
    /// The provenance now beside the data.
    pub provenance: Provenance,
    /// Files downloaded by this run (not those already complete).
    pub downloaded: Vec<String>,
    /// Bytes transferred by this run.
    pub bytes: u64,
    /// Whether the data was already complete and verified (no request made).
    pub verified_existing: bool,
    /// What the loader found.
    pub counts: DatasetCounts,
}

/// What to fetch and where.
#[derive(Debug, Clone, Copy)]
pub struct DatasetRequest<'a> {
    /// Destination folder (gets the layout folders and `provenance.json`).
    pub dest: &'a Path,
    /// Zenodo or a mirror, e.g. `https://zenodo.org`.
    pub base_url: &'a str,
    /// Record id.
    pub record: u64,
}

/// Why the dataset could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum DatasetError {
    /// A request failed.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// The record's metadata is unusable.
    #[error("cannot use the record metadata from {url}: {problem}")]
    Record {
        /// Where it was read.
        url: String,
        /// What is wrong with it.
        problem: RecordError,
    },
    /// A downloaded file is not the one the record describes.
    #[error(
        "{file}: {what} does not match the record (expected {expected}, got {actual}); \
         the download was deleted, run the command again to download it anew"
    )]
    Mismatch {
        /// The file's name in the record.
        file: String,
        /// `checksum` or `size`.
        what: &'static str,
        /// The record's value.
        expected: String,
        /// The downloaded file's.
        actual: String,
    },
    /// An archive could not be unpacked.
    #[error("cannot unpack {file}: {problem}")]
    Unpack {
        /// The archive's name in the record.
        file: String,
        /// Why.
        problem: UnpackError,
    },
    /// Two archives hold the same file.
    #[error("{path} is in more than one of the record's archives")]
    Duplicate {
        /// The file, relative to the destination.
        path: String,
    },
    /// The record's archives lack a layout folder.
    #[error("none of the record's archives holds a `{folder}/` folder")]
    MissingFolder {
        /// The layout folder.
        folder: &'static str,
    },
    /// The destination holds data this command did not write.
    #[error(
        "'{}' exists and was not written by `ablate fetch dataset` (no {PROVENANCE_FILE} beside it); \
         move it away or choose another --dest",
        .path.display()
    )]
    Foreign {
        /// The existing folder.
        path: PathBuf,
    },
    /// `provenance.json` is unreadable.
    #[error("cannot read '{}': {error}", .path.display())]
    Provenance {
        /// The file.
        path: PathBuf,
        /// The parse error.
        error: serde_json::Error,
    },
    /// A file could not be read, written or moved.
    #[error("'{}': {error}", .path.display())]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The data is in place but the loader refuses it.
    #[error("the fetched dataset does not load: {0}")]
    Layout(LayoutError),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> DatasetError + '_ {
    move |error| DatasetError::Io {
        path: path.to_path_buf(),
        error,
    }
}

/// Fetches (or verifies) the dataset of `request.record` into `request.dest`
/// (see the module docs).
pub fn fetch_dataset(
    request: DatasetRequest<'_>,
    http: &Http,
    on_event: &mut dyn FnMut(FetchEvent),
) -> Result<DatasetOutcome, DatasetError> {
    let dest = request.dest;
    let work = dest.join(WORK_DIR);
    let existing = Provenance::read(dest).unwrap_or_else(|e| {
        // Written atomically by this command: unreadable means edited.
        on_event(FetchEvent::Note(format!("{e}; fetching the dataset again")));
        None
    });
    let ours =
        existing.is_some() || work.join(INSTALLING).exists() || dest.join(PROVENANCE_FILE).exists();
    match &existing {
        Some(provenance) if provenance.record == request.record.to_string() => {
            on_event(FetchEvent::Note(format!(
                "checking the {} files in '{}' against {PROVENANCE_FILE}",
                provenance.contents.len(),
                dest.display()
            )));
            let problems = verify_contents(dest, provenance)?;
            if problems.is_empty() {
                if work.exists() {
                    fs::remove_dir_all(&work).map_err(io_error(&work))?;
                }
                return Ok(DatasetOutcome {
                    provenance: provenance.clone(),
                    downloaded: Vec::new(),
                    bytes: 0,
                    verified_existing: true,
                    counts: count(dest)?,
                });
            }
            on_event(FetchEvent::Note(format!(
                "{} file(s) differ from the fetched dataset ({}{}); fetching it again",
                problems.len(),
                problems[0],
                if problems.len() > 1 { ", ..." } else { "" }
            )));
        }
        // Data of another record, or none at all: the layout folders may be
        // replaced only if an earlier fetch wrote them.
        _ if ours => {}
        _ => {
            for folder in [HARD_DIR, WEAK_DIR] {
                let path = dest.join(folder);
                if path.exists() {
                    return Err(DatasetError::Foreign { path });
                }
            }
        }
    }

    let url = record_url(request.base_url, request.record);
    on_event(FetchEvent::Note(format!("reading {url}")));
    let json = http.get_bytes(&url, RECORD_LIMIT)?;
    let record = parse_record(&json, request.base_url, request.record).map_err(|problem| {
        DatasetError::Record {
            url: url.clone(),
            problem,
        }
    })?;
    fs::create_dir_all(&work).map_err(io_error(&work))?;
    let mut downloaded = Vec::new();
    let mut bytes = 0;
    for file in &record.files {
        if download_verified(http, &work, file, on_event)? {
            downloaded.push(file.name.clone());
            bytes += file.size;
        }
    }
    let retrieved = crate::runner::manifest::rfc3339(std::time::SystemTime::now());
    install(dest, &work, &record, on_event)?;
    let contents = list_contents(dest, &record)?;
    let provenance = Provenance {
        source: "zenodo".into(),
        record: request.record.to_string(),
        version: record.version.clone(),
        doi: record.doi.clone(),
        title: record.title.clone(),
        record_url: url,
        retrieved,
        files: record
            .files
            .iter()
            .map(|f| FetchedFile {
                name: f.name.clone(),
                size: f.size,
                checksum: f.checksum.to_string(),
                url: f.url.clone(),
                unpacked: ArchiveKind::of(&f.name).is_some(),
            })
            .collect(),
        contents_sha256: listing_digest(&contents),
        contents,
    };
    let text = serde_json::to_vec_pretty(&provenance).expect("provenance serialises");
    let path = dest.join(PROVENANCE_FILE);
    crate::io::write_atomic(&path, &text).map_err(io_error(&path))?;
    fs::remove_dir_all(&work).map_err(io_error(&work))?;
    Ok(DatasetOutcome {
        provenance,
        downloaded,
        bytes,
        verified_existing: false,
        counts: count(dest)?,
    })
}

/// Makes sure `work/NAME` is the record's file, downloading it if needed;
/// returns whether anything was downloaded.
fn download_verified(
    http: &Http,
    work: &Path,
    file: &super::zenodo::RecordFile,
    on_event: &mut dyn FnMut(FetchEvent),
) -> Result<bool, DatasetError> {
    let target = work.join(&file.name);
    if target.is_file() {
        // A file that differs is removed and downloaded again.
        let size = fs::metadata(&target).map_err(io_error(&target))?.len();
        let earlier = verify_download(&target, size, Some(file.size), &file.checksum)
            .map_err(io_error(&target))?;
        if earlier.is_ok() {
            on_event(FetchEvent::Note(format!(
                "{}: downloaded earlier, checksum verified",
                file.name
            )));
            return Ok(false);
        }
    }
    let part = work.join(format!("{}.part", file.name));
    let size = http.download(&file.url, &part, Some(file.size), &mut |progress| {
        on_event(FetchEvent::Download {
            file: file.name.clone(),
            progress,
        })
    })?;
    let verdict =
        verify_download(&part, size, Some(file.size), &file.checksum).map_err(io_error(&part))?;
    if let Err(Mismatch {
        what,
        expected,
        actual,
    }) = verdict
    {
        return Err(DatasetError::Mismatch {
            file: file.name.clone(),
            what,
            expected,
            actual,
        });
    }
    fs::rename(&part, &target).map_err(io_error(&target))?;
    Ok(true)
}

/// Unpacks the archives, merges their layout folders and moves them and the
/// other files into `dest`.
fn install(
    dest: &Path,
    work: &Path,
    record: &Record,
    on_event: &mut dyn FnMut(FetchEvent),
) -> Result<(), DatasetError> {
    let staging = work.join("unpacked");
    let tree = work.join("tree");
    for dir in [&staging, &tree] {
        if dir.exists() {
            fs::remove_dir_all(dir).map_err(io_error(dir))?;
        }
    }
    for file in &record.files {
        let Some((kind, stem)) = ArchiveKind::of(&file.name) else {
            continue;
        };
        on_event(FetchEvent::Note(format!("unpacking {}", file.name)));
        let unpack_error = |problem| DatasetError::Unpack {
            file: file.name.clone(),
            problem,
        };
        let into = staging.join(&file.name);
        unpack(&work.join(&file.name), kind, &into).map_err(unpack_error)?;
        for found in locate_layout(&into, stem).map_err(unpack_error)? {
            merge(&found.path, &tree.join(found.folder), found.folder)?;
        }
    }
    for folder in [HARD_DIR, WEAK_DIR] {
        if !tree.join(folder).is_dir() {
            return Err(DatasetError::MissingFolder { folder });
        }
    }
    let marker = work.join(INSTALLING);
    fs::write(&marker, b"").map_err(io_error(&marker))?;
    for folder in [HARD_DIR, WEAK_DIR] {
        let target = dest.join(folder);
        if target.exists() {
            fs::remove_dir_all(&target).map_err(io_error(&target))?;
        }
        fs::rename(tree.join(folder), &target).map_err(io_error(&target))?;
    }
    for file in record
        .files
        .iter()
        .filter(|f| ArchiveKind::of(&f.name).is_none())
    {
        let target = dest.join(&file.name);
        fs::rename(work.join(&file.name), &target).map_err(io_error(&target))?;
    }
    Ok(())
}

/// Moves every visible file under `from` to the same relative place under
/// `to`; a file already there is a duplicate.
fn merge(from: &Path, to: &Path, label: &str) -> Result<(), DatasetError> {
    fs::create_dir_all(to).map_err(io_error(to))?;
    let mut names = fs::read_dir(from)
        .and_then(|entries| {
            entries
                .map(|e| e.map(|e| e.file_name()))
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(io_error(from))?;
    names.sort();
    for name in names {
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let (error, target) = (from.join(&name), to.join(&name));
        let label = format!("{label}/{}", name.to_string_lossy());
        if error.is_dir() {
            merge(&error, &target, &label)?;
        } else if target.exists() {
            return Err(DatasetError::Duplicate { path: label });
        } else {
            fs::rename(&error, &target).map_err(io_error(&target))?;
        }
    }
    Ok(())
}

/// Every visible file under the layout folders, plus the record's files
/// that are not archives, with sizes and SHA-256, sorted by path.
fn list_contents(dest: &Path, record: &Record) -> Result<Vec<ContentFile>, DatasetError> {
    let mut paths = layout_files(dest)?;
    paths.extend(
        record
            .files
            .iter()
            .filter(|f| ArchiveKind::of(&f.name).is_none())
            .map(|f| f.name.clone()),
    );
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let full = dest.join(&path);
            let size = fs::metadata(&full).map_err(io_error(&full))?.len();
            let sha256 = Algorithm::Sha256.file_hex(&full).map_err(io_error(&full))?;
            Ok(ContentFile { path, size, sha256 })
        })
        .collect()
}

/// Relative paths (with `/`) of the visible files under the layout folders.
fn layout_files(dest: &Path) -> Result<Vec<String>, DatasetError> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) -> Result<(), DatasetError> {
        for entry in fs::read_dir(dir).map_err(io_error(dir))? {
            let entry = entry.map_err(io_error(dir))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let relative = format!("{prefix}/{name}");
            if entry.path().is_dir() {
                walk(&entry.path(), &relative, out)?;
            } else {
                out.push(relative);
            }
        }
        Ok(())
    }
    let mut out = Vec::new();
    for folder in [HARD_DIR, WEAK_DIR] {
        let dir = dest.join(folder);
        if dir.is_dir() {
            walk(&dir, folder, &mut out)?;
        }
    }
    Ok(out)
}

/// SHA-256 of the `sha256  path` lines of a sorted listing.
fn listing_digest(contents: &[ContentFile]) -> String {
    let text: String = contents
        .iter()
        .map(|c| format!("{}  {}\n", c.sha256, c.path))
        .collect();
    Algorithm::Sha256.bytes_hex(text.as_bytes())
}

/// Every way the files in `dest` differ from the provenance's listing.
fn verify_contents(dest: &Path, provenance: &Provenance) -> Result<Vec<String>, DatasetError> {
    let mut problems = Vec::new();
    if listing_digest(&provenance.contents) != provenance.contents_sha256 {
        problems.push(format!("{PROVENANCE_FILE}: its listing was edited"));
    }
    for file in &provenance.contents {
        let path = dest.join(&file.path);
        match fs::metadata(&path) {
            Err(_) => problems.push(format!("{}: missing", file.path)),
            Ok(meta) if meta.len() != file.size => problems.push(format!("{}: changed", file.path)),
            Ok(_) => {
                let sha256 = Algorithm::Sha256.file_hex(&path).map_err(io_error(&path))?;
                if sha256 != file.sha256 {
                    problems.push(format!("{}: changed", file.path));
                }
            }
        }
    }
    let listed: BTreeSet<&str> = provenance
        .contents
        .iter()
        .map(|c| c.path.as_str())
        .collect();
    for path in layout_files(dest)? {
        if !listed.contains(path.as_str()) {
            problems.push(format!("{path}: not part of the fetched dataset"));
        }
    }
    Ok(problems)
}

/// Loads the dataset with the project's loader and counts it.
fn count(dest: &Path) -> Result<DatasetCounts, DatasetError> {
    let dataset = load_dataset(dest).map_err(DatasetError::Layout)?;
    let slides = |patches: &[crate::data::Patch]| {
        patches
            .iter()
            .map(|p| p.slide.as_str())
            .collect::<BTreeSet<_>>()
            .len()
    };
    Ok(DatasetCounts {
        positive: dataset
            .hard
            .iter()
            .filter(|p| p.label == Label::Positive)
            .count(),
        negative: dataset
            .hard
            .iter()
            .filter(|p| p.label == Label::Negative)
            .count(),
        hard_slides: slides(&dataset.hard),
        pool: dataset.pool.len(),
        pool_slides: slides(&dataset.pool),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::test_server::{Reply, TestServer};
    use serde_json::json;
    use std::io::Write;

    const RECORD: u64 = 4242;

    fn zip_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in entries {
            zip.start_file(*name, options).expect("start");
            zip.write_all(bytes).expect("write");
        }
        zip.finish().expect("finish").into_inner()
    }

    fn tar_gz_bytes(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        for (name, bytes) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            tar.append_data(&mut header, name, *bytes).expect("append");
        }
        tar.into_inner().expect("tar").finish().expect("gz")
    }

    /// Serves record `RECORD` with these files; `md5_of` may lie about one.
    fn serve(server: &TestServer, files: &[(&str, Vec<u8>)], wrong_md5: Option<&str>) {
        let entries: Vec<_> = files
            .iter()
            .map(|(name, bytes)| {
                let path = format!("/api/records/{RECORD}/files/{name}/content");
                server.set(&path, Reply::Bytes(bytes.clone()));
                let md5 = if wrong_md5 == Some(*name) {
                    Algorithm::Md5.bytes_hex(b"something else")
                } else {
                    Algorithm::Md5.bytes_hex(bytes)
                };
                json!({
                    "key": name,
                    "size": bytes.len(),
                    "checksum": format!("md5:{md5}"),
                    "links": { "self": server.url(&path) }
                })
            })
            .collect();
        let record = json!({
            "id": RECORD,
            "doi": "10.5281/zenodo.4242",
            "metadata": { "title": "test record", "version": "2.0" },
            "files": entries
        });
        server.set(
            &format!("/api/records/{RECORD}"),
            Reply::Bytes(record.to_string().into_bytes()),
        );
    }

    fn fetch(
        server: &TestServer,
        dest: &Path,
    ) -> (Result<DatasetOutcome, DatasetError>, Vec<String>) {
        let mut notes = Vec::new();
        let base = server.base_url();
        let result = fetch_dataset(
            DatasetRequest {
                dest,
                base_url: &base,
                record: RECORD,
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

    fn record_files() -> Vec<(&'static str, Vec<u8>)> {
        vec![
            (
                "hard_labeled_dataset.zip",
                zip_bytes(&[
                    ("pos_S1_0-0.png", b"p1"),
                    ("pos_S2_1-1.png", b"p2"),
                    ("neg_S1_2-2.png", b"n1"),
                    ("neg_S3_3-3.png", b"n2"),
                ]),
            ),
            (
                "pool.tar.gz",
                tar_gz_bytes(&[
                    ("pool/weakly_labeled_dataset/W1_0-0.jpg", b"w1"),
                    ("pool/weakly_labeled_dataset/other.jpg", b"w2"),
                    ("pool/weakly_labeled_dataset/._other.jpg", b"junk"),
                ]),
            ),
            ("README.md", b"read me".to_vec()),
        ]
    }

    #[test]
    fn archives_unpack_into_the_layout_and_a_rerun_only_verifies() {
        let server = TestServer::start();
        serve(&server, &record_files(), None);
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("public");
        let (outcome, _) = fetch(&server, &dest);
        let outcome = outcome.expect("fetch");
        assert!(!outcome.verified_existing);
        assert_eq!(outcome.downloaded.len(), 3);
        assert_eq!(
            outcome.counts,
            DatasetCounts {
                positive: 2,
                negative: 2,
                hard_slides: 3,
                pool: 2,
                pool_slides: 2
            }
        );
        assert_eq!(
            fs::read(dest.join("hard_labeled_dataset/pos_S2_1-1.png")).unwrap(),
            b"p2"
        );
        assert_eq!(
            fs::read(dest.join("weakly_labeled_dataset/other.jpg")).unwrap(),
            b"w2"
        );
        assert_eq!(fs::read(dest.join("README.md")).unwrap(), b"read me");
        assert!(!dest.join("weakly_labeled_dataset/._other.jpg").exists());
        assert!(!dest.join(WORK_DIR).exists());

        let provenance = Provenance::read(&dest).expect("read").expect("provenance");
        assert_eq!(provenance, outcome.provenance);
        assert_eq!(provenance.record, "4242");
        assert_eq!(provenance.version.as_deref(), Some("2.0"));
        assert_eq!(provenance.doi.as_deref(), Some("10.5281/zenodo.4242"));
        assert_eq!(provenance.record_url, server.url("/api/records/4242"));
        let unpacked: Vec<bool> = provenance.files.iter().map(|f| f.unpacked).collect();
        assert_eq!(unpacked, [true, true, false]);
        let paths: Vec<&str> = provenance
            .contents
            .iter()
            .map(|c| c.path.as_str())
            .collect();
        assert_eq!(
            paths,
            [
                "README.md",
                "hard_labeled_dataset/neg_S1_2-2.png",
                "hard_labeled_dataset/neg_S3_3-3.png",
                "hard_labeled_dataset/pos_S1_0-0.png",
                "hard_labeled_dataset/pos_S2_1-1.png",
                "weakly_labeled_dataset/W1_0-0.jpg",
                "weakly_labeled_dataset/other.jpg",
            ]
        );
        assert_eq!(
            provenance.contents[0].sha256,
            Algorithm::Sha256.bytes_hex(b"read me")
        );
        let summary = provenance.summary();
        assert!(summary.get("contents").is_none());
        assert_eq!(
            summary["contents_sha256"],
            json!(provenance.contents_sha256)
        );

        // A rerun checks the files and asks the server nothing.
        server.clear_log();
        let (again, notes) = fetch(&server, &dest);
        let again = again.expect("verify");
        assert!(again.verified_existing);
        assert_eq!(again.counts, outcome.counts);
        assert!(server.requests().is_empty(), "{:?}", server.requests());
        assert!(notes[0].contains("checking the 7 files"), "{notes:?}");

        // A changed and an extra file: fetched again, restored.
        fs::write(dest.join("hard_labeled_dataset/neg_S1_2-2.png"), b"edited").unwrap();
        fs::write(dest.join("weakly_labeled_dataset/extra.jpg"), b"x").unwrap();
        let (repaired, notes) = fetch(&server, &dest);
        assert!(!repaired.expect("repair").verified_existing);
        assert!(
            notes[1].starts_with("2 file(s) differ from the fetched dataset (hard_labeled_dataset/neg_S1_2-2.png: changed"),
            "{notes:?}"
        );
        assert_eq!(
            fs::read(dest.join("hard_labeled_dataset/neg_S1_2-2.png")).unwrap(),
            b"n1"
        );
        assert!(!dest.join("weakly_labeled_dataset/extra.jpg").exists());

        // An unreadable provenance file: the folder is still ours, fetched again.
        fs::write(dest.join(PROVENANCE_FILE), b"{ not json").unwrap();
        let (refetched, notes) = fetch(&server, &dest);
        assert!(!refetched.expect("refetch").verified_existing);
        assert!(notes[0].contains("fetching the dataset again"), "{notes:?}");
        assert!(Provenance::read(&dest).expect("read").is_some());
    }

    #[test]
    fn a_wrong_checksum_names_the_file_and_installs_nothing() {
        let server = TestServer::start();
        serve(&server, &record_files(), Some("pool.tar.gz"));
        let dir = tempfile::tempdir().expect("tempdir");
        let dest = dir.path().join("public");
        let (result, _) = fetch(&server, &dest);
        let msg = result.expect_err("bad checksum").to_string();
        assert!(
            msg.starts_with(&format!(
                "pool.tar.gz: checksum does not match the record (expected md5:{}, got md5:",
                Algorithm::Md5.bytes_hex(b"something else")
            )),
            "{msg}"
        );
        assert!(msg.contains("the download was deleted"), "{msg}");
        for gone in [
            HARD_DIR,
            WEAK_DIR,
            PROVENANCE_FILE,
            ".fetch/pool.tar.gz.part",
            ".fetch/pool.tar.gz",
        ] {
            assert!(!dest.join(gone).exists(), "{gone}");
        }
        // The verified archive stays for the next run, which does not download it
        // again; the failure stopped before the README.
        assert!(dest.join(".fetch/hard_labeled_dataset.zip").is_file());
        serve(&server, &record_files(), None);
        server.clear_log();
        let (outcome, _) = fetch(&server, &dest);
        assert_eq!(
            outcome.expect("fetch").downloaded,
            ["pool.tar.gz", "README.md"]
        );
        assert!(server
            .requests()
            .iter()
            .all(|r| !r.path.contains("hard_labeled_dataset.zip")));
    }

    #[test]
    fn data_from_elsewhere_is_left_alone() {
        let server = TestServer::start();
        serve(&server, &record_files(), None);
        let dir = tempfile::tempdir().expect("tempdir");
        fs::create_dir_all(dir.path().join(HARD_DIR)).unwrap();
        // Leftovers of a failed download do not make the folder ours.
        fs::create_dir_all(dir.path().join(WORK_DIR)).unwrap();
        let (result, _) = fetch(&server, dir.path());
        let msg = result.expect_err("foreign").to_string();
        assert!(
            msg.contains("was not written by `ablate fetch dataset`"),
            "{msg}"
        );
        assert!(server.requests().is_empty());
    }

    #[test]
    fn archives_must_give_each_folder_and_file_once() {
        let server = TestServer::start();
        let hard = zip_bytes(&[
            ("hard_labeled_dataset/pos_S1_0-0.png", b"p"),
            ("hard_labeled_dataset/neg_S1_0-1.png", b"n"),
        ]);
        serve(&server, &[("a.zip", hard.clone())], None);
        let dir = tempfile::tempdir().expect("tempdir");
        let (result, _) = fetch(&server, &dir.path().join("one"));
        assert_eq!(
            result.expect_err("no pool").to_string(),
            "none of the record's archives holds a `weakly_labeled_dataset/` folder"
        );
        serve(&server, &[("a.zip", hard.clone()), ("b.zip", hard)], None);
        let (result, _) = fetch(&server, &dir.path().join("two"));
        assert_eq!(
            result.expect_err("twice").to_string(),
            "hard_labeled_dataset/neg_S1_0-1.png is in more than one of the record's archives"
        );
        let odd = zip_bytes(&[("images/x.png", b"x")]);
        serve(&server, &[("odd.zip", odd)], None);
        let (result, _) = fetch(&server, &dir.path().join("three"));
        assert_eq!(
            result.expect_err("no layout").to_string(),
            "cannot unpack odd.zip: it holds neither `hard_labeled_dataset/` nor `weakly_labeled_dataset/` (top level: images)"
        );
    }
}
