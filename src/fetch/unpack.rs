//! Unpacking downloaded archives (zip, tar.gz, tar) and finding the public
//! layout's folders inside them.
//!
//! Only regular files and folders are unpacked, each at a relative path made
//! of plain names: an entry with an absolute path, a `..` component, a link
//! or a device refuses the whole archive (nothing outside the target folder
//! is ever written). Two entries with the same path are refused too.

use crate::data::{HARD_DIR, WEAK_DIR};
use std::fs::{self, File};
use std::io::Read;
use std::path::{Component, Path, PathBuf};

/// An archive format, from the file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// `.zip`
    Zip,
    /// `.tar.gz` or `.tgz`
    TarGz,
    /// `.tar`
    Tar,
}

impl ArchiveKind {
    /// The format a file name announces, and the name without its extension.
    pub fn of(name: &str) -> Option<(ArchiveKind, &str)> {
        let lower = name.to_ascii_lowercase();
        [
            (".zip", ArchiveKind::Zip),
            (".tar.gz", ArchiveKind::TarGz),
            (".tgz", ArchiveKind::TarGz),
            (".tar", ArchiveKind::Tar),
        ]
        .into_iter()
        .find(|(ext, _)| lower.ends_with(ext))
        .map(|(ext, kind)| (kind, &name[..name.len() - ext.len()]))
    }
}

/// Why an archive could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    /// The archive is damaged or not of its announced format.
    #[error("cannot read the archive: {0}")]
    Read(String),
    /// An entry would land outside the target folder, or is not a plain file or folder.
    #[error("refusing entry `{entry}`: {reason}")]
    Refused {
        /// The entry's name in the archive.
        entry: String,
        /// Why.
        reason: &'static str,
    },
    /// Writing an unpacked file failed.
    #[error("cannot write '{}': {error}", .path.display())]
    Write {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
    /// The archive holds neither layout folder.
    #[error(
        "it holds neither `{HARD_DIR}/` nor `{WEAK_DIR}/` (top level: {})",
        if .top.is_empty() { "empty".to_string() } else { .top.join(", ") }
    )]
    NoLayout {
        /// Names at the archive's top level.
        top: Vec<String>,
    },
}

/// Unpacks `archive` into the folder `into` (created if needed); returns
/// the number of files written.
pub fn unpack(archive: &Path, kind: ArchiveKind, into: &Path) -> Result<usize, UnpackError> {
    let file = File::open(archive).map_err(|e| UnpackError::Read(e.to_string()))?;
    fs::create_dir_all(into).map_err(|error| UnpackError::Write {
        path: into.to_path_buf(),
        error,
    })?;
    match kind {
        ArchiveKind::Zip => unpack_zip(file, into),
        ArchiveKind::TarGz => unpack_tar(flate2::read::GzDecoder::new(file), into),
        ArchiveKind::Tar => unpack_tar(file, into),
    }
}

fn unpack_zip(file: File, into: &Path) -> Result<usize, UnpackError> {
    let read = |e: zip::result::ZipError| UnpackError::Read(e.to_string());
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(read)?;
    let mut files = 0;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(read)?;
        let name = entry.name().map_err(read)?.into_owned();
        let relative = safe_relative(&name)?;
        if entry.is_symlink() {
            return Err(refused(&name, "links are not unpacked"));
        }
        if entry.is_dir() {
            create_dir(&into.join(relative))?;
        } else {
            write_file(&into.join(relative), &mut entry)?;
            files += 1;
        }
    }
    Ok(files)
}

fn unpack_tar(reader: impl Read, into: &Path) -> Result<usize, UnpackError> {
    let read = |e: std::io::Error| UnpackError::Read(e.to_string());
    let mut archive = tar::Archive::new(reader);
    let mut files = 0;
    for entry in archive.entries().map_err(read)? {
        let mut entry = entry.map_err(read)?;
        let name = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let kind = entry.header().entry_type();
        if kind.is_pax_global_extensions() || kind.is_pax_local_extensions() {
            continue;
        }
        let relative = safe_relative(&name)?;
        if kind.is_dir() {
            create_dir(&into.join(relative))?;
        } else if kind.is_file() {
            write_file(&into.join(relative), &mut entry)?;
            files += 1;
        } else {
            return Err(refused(&name, "only plain files and folders are unpacked"));
        }
    }
    Ok(files)
}

/// The entry name as a relative path of plain components (`\` counts as a
/// separator too, as in archives made on Windows).
fn safe_relative(name: &str) -> Result<PathBuf, UnpackError> {
    let unified = name.replace('\\', "/");
    if unified.starts_with('/') {
        return Err(refused(name, "absolute path"));
    }
    let mut out = PathBuf::new();
    for component in Path::new(&unified).components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(refused(name, "`..` leaves the target folder")),
            Component::RootDir | Component::Prefix(_) => {
                return Err(refused(name, "absolute path"))
            }
        }
    }
    if out.as_os_str().is_empty() {
        return Err(refused(name, "empty path"));
    }
    Ok(out)
}

fn refused(name: &str, reason: &'static str) -> UnpackError {
    UnpackError::Refused {
        entry: name.to_string(),
        reason,
    }
}

fn create_dir(path: &Path) -> Result<(), UnpackError> {
    fs::create_dir_all(path).map_err(|error| UnpackError::Write {
        path: path.to_path_buf(),
        error,
    })
}

fn write_file(path: &Path, content: &mut impl Read) -> Result<(), UnpackError> {
    let write = |error| UnpackError::Write {
        path: path.to_path_buf(),
        error,
    };
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent).map_err(write)?;
    }
    let mut file = File::options()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(write)?;
    // A read error here is a damaged archive (a CRC mismatch, a truncated stream).
    std::io::copy(content, &mut file).map_err(|e| match e.kind() {
        std::io::ErrorKind::InvalidData | std::io::ErrorKind::UnexpectedEof => {
            UnpackError::Read(format!("{}: {e}", path.display()))
        }
        _ => write(e),
    })?;
    Ok(())
}

/// A layout folder found in an unpacked archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundFolder {
    /// Where its files are.
    pub path: PathBuf,
    /// Which layout folder it is ([`HARD_DIR`] or [`WEAK_DIR`]).
    pub folder: &'static str,
}

/// Finds the layout folders in the unpacked archive at `root`.
///
/// Folders named `hard_labeled_dataset` / `weakly_labeled_dataset` are
/// looked for at the top level, descending through a single top-level
/// folder (`dataset/hard_labeled_dataset/...`) as often as needed; hidden
/// entries and macOS's `__MACOSX` are ignored. An archive named after a
/// layout folder (`hard_labeled_dataset.zip`) whose files sit at its top
/// level (or in one folder) holds that folder's files.
pub fn locate_layout(root: &Path, archive_stem: &str) -> Result<Vec<FoundFolder>, UnpackError> {
    let mut dir = root.to_path_buf();
    let top = visible_entries(root)?
        .iter()
        .map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect::<Vec<_>>();
    loop {
        let entries = visible_entries(&dir)?;
        let found: Vec<FoundFolder> = entries
            .iter()
            .filter(|p| p.is_dir())
            .filter_map(|p| {
                let name = p.file_name()?.to_str()?;
                [HARD_DIR, WEAK_DIR]
                    .into_iter()
                    .find(|f| *f == name)
                    .map(|folder| FoundFolder {
                        path: p.clone(),
                        folder,
                    })
            })
            .collect();
        if !found.is_empty() {
            return Ok(found);
        }
        match entries.as_slice() {
            [only] if only.is_dir() => dir = only.clone(),
            _ => break,
        }
    }
    match [HARD_DIR, WEAK_DIR]
        .into_iter()
        .find(|f| *f == archive_stem)
    {
        Some(folder) => Ok(vec![FoundFolder { path: dir, folder }]),
        None => Err(UnpackError::NoLayout { top }),
    }
}

/// Entries of `dir` that are not hidden and not `__MACOSX`, sorted.
fn visible_entries(dir: &Path) -> Result<Vec<PathBuf>, UnpackError> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| UnpackError::Read(e.to_string()))? {
        let entry = entry.map_err(|e| UnpackError::Read(e.to_string()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with('.') && name != "__MACOSX" {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    /// A zip of `(name, bytes)` entries; a name ending in `/` is a folder.
    fn zip_of(path: &Path, entries: &[(&str, &[u8])]) {
        let mut zip = zip::ZipWriter::new(File::create(path).expect("create"));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for (name, bytes) in entries {
            if let Some(dir) = name.strip_suffix('/') {
                zip.add_directory(dir, options).expect("dir");
            } else {
                zip.start_file(*name, options).expect("start");
                zip.write_all(bytes).expect("write");
            }
        }
        zip.finish().expect("finish");
    }

    fn tar_gz_of(path: &Path, entries: &[(&str, &[u8])]) {
        let gz = flate2::write::GzEncoder::new(
            File::create(path).expect("create"),
            flate2::Compression::fast(),
        );
        let mut tar = tar::Builder::new(gz);
        for (name, bytes) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_entry_type(tar::EntryType::Regular);
            // Written raw, so that unsafe names reach the archive as they are.
            header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
            header.set_cksum();
            tar.append(&header, *bytes).expect("append");
        }
        tar.into_inner().expect("tar").finish().expect("gz");
    }

    fn files_under(root: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![root.to_path_buf()];
        while let Some(dir) = stack.pop() {
            for entry in fs::read_dir(&dir).expect("read dir") {
                let path = entry.expect("entry").path();
                if path.is_dir() {
                    stack.push(path);
                } else {
                    out.push(
                        path.strip_prefix(root)
                            .expect("under root")
                            .to_string_lossy()
                            .into_owned(),
                    );
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn archive_kinds_from_names() {
        assert_eq!(ArchiveKind::of("a.zip"), Some((ArchiveKind::Zip, "a")));
        assert_eq!(
            ArchiveKind::of("data.TAR.GZ"),
            Some((ArchiveKind::TarGz, "data"))
        );
        assert_eq!(ArchiveKind::of("x.tgz"), Some((ArchiveKind::TarGz, "x")));
        assert_eq!(ArchiveKind::of("x.tar"), Some((ArchiveKind::Tar, "x")));
        assert_eq!(ArchiveKind::of("readme.txt"), None);
    }

    #[test]
    fn zip_in_a_top_folder_unpacks_and_is_located() {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = dir.path().join("data.zip");
        zip_of(
            &archive,
            &[
                ("LI/", b""),
                ("LI/hard_labeled_dataset/pos_S1_0-0.png", b"p"),
                ("LI/hard_labeled_dataset/neg_S1_0-1.png", b"n"),
                ("LI/weakly_labeled_dataset/w.jpg", b"w"),
                ("LI/README.txt", b"r"),
                ("__MACOSX/LI/._README.txt", b"junk"),
            ],
        );
        let out = dir.path().join("out");
        assert_eq!(unpack(&archive, ArchiveKind::Zip, &out).expect("unpack"), 5);
        assert_eq!(
            fs::read(out.join("LI/weakly_labeled_dataset/w.jpg")).unwrap(),
            b"w"
        );
        let found = locate_layout(&out, "data").expect("layout");
        assert_eq!(
            found,
            [
                FoundFolder {
                    path: out.join("LI/hard_labeled_dataset"),
                    folder: HARD_DIR
                },
                FoundFolder {
                    path: out.join("LI/weakly_labeled_dataset"),
                    folder: WEAK_DIR
                },
            ]
        );
    }

    #[test]
    fn an_archive_named_after_a_folder_holds_its_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let archive = dir.path().join("weakly_labeled_dataset.tar.gz");
        tar_gz_of(&archive, &[("a.jpg", b"a"), ("b.jpg", b"b")]);
        let out = dir.path().join("out");
        assert_eq!(
            unpack(&archive, ArchiveKind::TarGz, &out).expect("unpack"),
            2
        );
        assert_eq!(files_under(&out), ["a.jpg", "b.jpg"]);
        let found = locate_layout(&out, "weakly_labeled_dataset").expect("layout");
        assert_eq!(
            found,
            [FoundFolder {
                path: out.clone(),
                folder: WEAK_DIR
            }]
        );
        let err = locate_layout(&out, "other").expect_err("no layout");
        assert_eq!(
            err.to_string(),
            "it holds neither `hard_labeled_dataset/` nor `weakly_labeled_dataset/` (top level: a.jpg, b.jpg)"
        );
    }

    #[test]
    fn entries_leaving_the_folder_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        for (name, reason) in [
            ("../evil.png", "`..` leaves the target folder"),
            ("ok/../../evil.png", "`..` leaves the target folder"),
            ("/etc/evil.png", "absolute path"),
            ("..\\evil.png", "`..` leaves the target folder"),
        ] {
            let archive = dir.path().join("bad.zip");
            zip_of(&archive, &[("fine.png", b"f"), (name, b"x")]);
            let err = unpack(&archive, ArchiveKind::Zip, &out).expect_err(name);
            assert_eq!(
                err.to_string(),
                format!("refusing entry `{name}`: {reason}"),
                "{name}"
            );
            let tgz = dir.path().join("bad.tar.gz");
            tar_gz_of(&tgz, &[(name, b"x")]);
            let err = unpack(&tgz, ArchiveKind::TarGz, &out).expect_err(name);
            assert!(
                err.to_string().starts_with("refusing entry"),
                "{name}: {err}"
            );
            let _ = fs::remove_dir_all(&out);
        }
        assert!(!dir.path().join("evil.png").exists());
    }

    #[test]
    fn links_and_damaged_archives_are_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let out = dir.path().join("out");
        let archive = dir.path().join("link.zip");
        {
            let mut zip = zip::ZipWriter::new(File::create(&archive).expect("create"));
            let options = zip::write::SimpleFileOptions::default();
            zip.add_symlink("escape", "/etc/passwd", options)
                .expect("symlink");
            zip.finish().expect("finish");
        }
        let err = unpack(&archive, ArchiveKind::Zip, &out).expect_err("symlink");
        assert_eq!(
            err.to_string(),
            "refusing entry `escape`: links are not unpacked"
        );

        let tgz = dir.path().join("link.tar.gz");
        {
            let gz = flate2::write::GzEncoder::new(
                File::create(&tgz).expect("create"),
                flate2::Compression::fast(),
            );
            let mut tar = tar::Builder::new(gz);
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            tar.append_link(&mut header, "escape", "/etc/passwd")
                .expect("link");
            tar.into_inner().expect("tar").finish().expect("gz");
        }
        let err = unpack(&tgz, ArchiveKind::TarGz, &out).expect_err("symlink");
        assert!(
            err.to_string().contains("only plain files and folders"),
            "{err}"
        );

        let damaged = dir.path().join("damaged.zip");
        fs::write(&damaged, b"PK\x03\x04 not really a zip").expect("write");
        let err = unpack(&damaged, ArchiveKind::Zip, &out).expect_err("damaged");
        assert!(
            err.to_string().starts_with("cannot read the archive"),
            "{err}"
        );
    }
}
