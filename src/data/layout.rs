//! Reading a dataset from the public folder layout.
//!
//! The public dataset (Zenodo record 10020633) is two flat folders under a root:
//!
//! ```text
//! ROOT/hard_labeled_dataset/{pos|neg}_{slide}_{x-y}.png   hard labels in the name
//! ROOT/weakly_labeled_dataset/*.{jpg,jpeg,png}            the weakly labeled pool
//! ROOT/manifest.csv                                       optional: true kinds
//! ```
//!
//! The file name is the authority for a hard patch's label and slide. The slide
//! is everything between the first and the last underscore, so slide ids may
//! themselves contain underscores; `x-y` is two non-negative integers (the
//! patch's position on the slide). Pool names that follow `{slide}_{x-y}` give
//! their slide; any other pool name is its own slide (its file stem), which
//! keeps unrelated patches apart in slide-grouped splits.
//!
//! Decisions about stray entries:
//! - hidden entries (names starting with `.`, e.g. `.DS_Store` or the `._*`
//!   files macOS leaves in archives) are skipped: they are file-system
//!   metadata, never patches;
//! - anything else that is not a patch, including subfolders, is an error. The
//!   layout is flat, and silently skipping a nested folder or a mistyped name
//!   would quietly change the data a study runs on.
//!
//! Errors report everything wrong at once (every bad name, every manifest
//! disagreement), so one run is enough to see what to fix.
//!
//! If `ROOT/manifest.csv` exists (written by the synthetic generator, columns
//! `path,source,label,slide,kind`), it fills [`Patch::kind`]. Its `source` and
//! `label` must agree with the folder and file name, and every row must name an
//! existing patch; its `slide` column is informational (the name decides).
//! Patches the manifest does not mention keep `kind = None`.

use super::{Dataset, Label, Patch, PatchKind, Source, HARD_DIR, MANIFEST_FILE, WEAK_DIR};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

/// Expected name of a hard-labeled patch, shown in error messages.
pub const HARD_PATTERN: &str = "{pos|neg}_{slide}_{x-y}.png, e.g. pos_S01_1024-2048.png";
/// Expected name of a weak-pool patch, shown in error messages.
pub const POOL_PATTERN: &str = "an image named *.jpg, *.jpeg or *.png";

/// Why a dataset folder could not be read.
#[derive(Debug, thiserror::Error)]
pub enum LayoutError {
    /// One or both of the two dataset folders do not exist.
    #[error("{}", missing_folders_message(.root, .missing))]
    MissingFolders {
        /// The dataset root that was given.
        root: PathBuf,
        /// Every expected folder that is missing (or is not a folder).
        missing: Vec<PathBuf>,
    },
    /// A folder exists but could not be listed.
    #[error("cannot list `{}`: {source}", .path.display())]
    ReadDir {
        /// The folder.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Entries whose names do not follow the layout (all of them, across both folders).
    #[error("{}", bad_names_message(.root, .bad))]
    BadNames {
        /// The dataset root.
        root: PathBuf,
        /// Every offending entry.
        bad: Vec<BadName>,
    },
    /// The hard-labeled folder lacks one or both classes.
    #[error("{}", missing_class_message(.folder, .missing))]
    MissingClass {
        /// The hard-labeled folder.
        folder: PathBuf,
        /// The classes with no patch.
        missing: Vec<Label>,
    },
    /// The weakly labeled folder holds no images.
    #[error(
        "the weakly labeled pool `{}` holds no images; expected {POOL_PATTERN}",
        .folder.display()
    )]
    EmptyPool {
        /// The weakly labeled folder.
        folder: PathBuf,
    },
    /// The manifest exists but could not be read or parsed.
    #[error("cannot read manifest `{}`: {message}", .path.display())]
    ManifestRead {
        /// The manifest file.
        path: PathBuf,
        /// What went wrong (with the line, where known).
        message: String,
    },
    /// Manifest rows that disagree with the files (all of them).
    #[error("{}", manifest_mismatch_message(.path, .problems))]
    ManifestMismatch {
        /// The manifest file.
        path: PathBuf,
        /// One line per disagreeing row.
        problems: Vec<String>,
    },
}

/// One folder entry that is not a valid patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadName {
    /// Path relative to the dataset root.
    pub path: PathBuf,
    /// What was expected there.
    pub expected: &'static str,
}

/// Reads the dataset under `root`: hard-labeled patches, weak pool and, if
/// present, the manifest of true kinds. Both patch lists are sorted by path,
/// and every [`Patch::path`] is relative to `root`.
pub fn load_dataset(root: &Path) -> Result<Dataset, LayoutError> {
    let hard_dir = root.join(HARD_DIR);
    let weak_dir = root.join(WEAK_DIR);
    let missing: Vec<PathBuf> = [&hard_dir, &weak_dir]
        .into_iter()
        .filter(|dir| !dir.is_dir())
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(LayoutError::MissingFolders {
            root: root.to_path_buf(),
            missing,
        });
    }

    let mut bad = Vec::new();
    let mut hard = Vec::new();
    for entry in list_entries(&hard_dir)? {
        let path = Path::new(HARD_DIR).join(&entry.name);
        match entry
            .is_file
            .then(|| parse_hard_name(&entry.name))
            .flatten()
        {
            Some((label, slide)) => hard.push(Patch {
                path,
                label,
                slide,
                kind: None,
            }),
            None => bad.push(BadName {
                path,
                expected: HARD_PATTERN,
            }),
        }
    }
    let mut pool = Vec::new();
    for entry in list_entries(&weak_dir)? {
        let path = Path::new(WEAK_DIR).join(&entry.name);
        match entry
            .is_file
            .then(|| parse_pool_name(&entry.name))
            .flatten()
        {
            Some(slide) => pool.push(Patch {
                path,
                label: Label::Negative,
                slide,
                kind: None,
            }),
            None => bad.push(BadName {
                path,
                expected: POOL_PATTERN,
            }),
        }
    }
    if !bad.is_empty() {
        bad.sort_by(|a, b| a.path.cmp(&b.path));
        return Err(LayoutError::BadNames {
            root: root.to_path_buf(),
            bad,
        });
    }

    let missing_classes: Vec<Label> = [Label::Positive, Label::Negative]
        .into_iter()
        .filter(|label| !hard.iter().any(|p| p.label == *label))
        .collect();
    if !missing_classes.is_empty() {
        return Err(LayoutError::MissingClass {
            folder: hard_dir,
            missing: missing_classes,
        });
    }
    if pool.is_empty() {
        return Err(LayoutError::EmptyPool { folder: weak_dir });
    }

    hard.sort_by(|a, b| a.path.cmp(&b.path));
    pool.sort_by(|a, b| a.path.cmp(&b.path));
    let manifest = root.join(MANIFEST_FILE);
    if manifest.is_file() {
        apply_manifest(&manifest, &mut hard, &mut pool)?;
    }
    Ok(Dataset {
        root: root.to_path_buf(),
        hard,
        pool,
    })
}

/// A visible folder entry.
struct Entry {
    /// The entry's file name (lossily decoded; a non-UTF-8 name then fails to parse).
    name: String,
    /// Whether it is a regular file (symbolic links are followed).
    is_file: bool,
}

/// Lists the non-hidden entries of `dir`.
fn list_entries(dir: &Path) -> Result<Vec<Entry>, LayoutError> {
    let read_err = |source| LayoutError::ReadDir {
        path: dir.to_path_buf(),
        source,
    };
    let mut entries = Vec::new();
    for entry in fs::read_dir(dir).map_err(read_err)? {
        let entry = entry.map_err(read_err)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        // `fs::metadata` follows links, so a link to a patch counts as a patch.
        let is_file = fs::metadata(entry.path())
            .map(|m| m.is_file())
            .unwrap_or(false);
        entries.push(Entry { name, is_file });
    }
    Ok(entries)
}

/// Parses `{pos|neg}_{slide}_{x-y}.png` into label and slide.
fn parse_hard_name(name: &str) -> Option<(Label, String)> {
    let (stem, ext) = name.rsplit_once('.')?;
    if !ext.eq_ignore_ascii_case("png") {
        return None;
    }
    let (prefix, rest) = stem.split_once('_')?;
    let label = match prefix {
        "pos" => Label::Positive,
        "neg" => Label::Negative,
        _ => return None,
    };
    let slide = parse_slide_and_position(rest)?;
    Some((label, slide))
}

/// Parses a pool name: its slide from `{slide}_{x-y}`, else its stem.
fn parse_pool_name(name: &str) -> Option<String> {
    let (stem, ext) = name.rsplit_once('.')?;
    let is_image = ["jpg", "jpeg", "png"]
        .iter()
        .any(|e| ext.eq_ignore_ascii_case(e));
    if !is_image || stem.is_empty() {
        return None;
    }
    Some(parse_slide_and_position(stem).unwrap_or_else(|| stem.to_string()))
}

/// Splits `{slide}_{x-y}` at the last underscore; the slide must be non-empty.
fn parse_slide_and_position(text: &str) -> Option<String> {
    let (slide, position) = text.rsplit_once('_')?;
    let (x, y) = position.split_once('-')?;
    let is_number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (!slide.is_empty() && is_number(x) && is_number(y)).then(|| slide.to_string())
}

/// One manifest row; the `slide` column is not read (the file name decides).
#[derive(Debug, Deserialize)]
struct ManifestRow {
    path: String,
    source: Source,
    label: Label,
    kind: Option<PatchKind>,
}

/// Fills `kind` from the manifest, checking every row against the files.
fn apply_manifest(
    manifest: &Path,
    hard: &mut [Patch],
    pool: &mut [Patch],
) -> Result<(), LayoutError> {
    let read_err = |message: String| LayoutError::ManifestRead {
        path: manifest.to_path_buf(),
        message,
    };
    let mut reader = csv::Reader::from_path(manifest).map_err(|e| read_err(e.to_string()))?;
    let headers = reader
        .headers()
        .map_err(|e| read_err(e.to_string()))?
        .clone();

    // Where each patch lives: (source, index into its list).
    let mut index: HashMap<PathBuf, (Source, usize)> = HashMap::new();
    index.extend(
        hard.iter()
            .enumerate()
            .map(|(i, p)| (p.path.clone(), (Source::Hard, i))),
    );
    index.extend(
        pool.iter()
            .enumerate()
            .map(|(i, p)| (p.path.clone(), (Source::Weak, i))),
    );

    let mut problems = Vec::new();
    let mut seen: HashMap<PathBuf, u64> = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| read_err(e.to_string()))?;
        let line = record.position().map_or(0, |p| p.line());
        let row: ManifestRow = record
            .deserialize(Some(&headers))
            .map_err(|e| read_err(e.to_string()))?;
        let path = PathBuf::from(&row.path);
        if let Some(first) = seen.insert(path.clone(), line) {
            problems.push(format!("line {line}: `{}` repeats line {first}", row.path));
            continue;
        }
        let Some(&(source, i)) = index.get(&path) else {
            problems.push(format!(
                "line {line}: `{}` is not a patch file of the dataset",
                row.path
            ));
            continue;
        };
        if row.source != source {
            problems.push(format!(
                "line {line}: `{}` has source {} but lies in the {} folder",
                row.path,
                source_name(row.source),
                source_name(source)
            ));
        }
        let patch = match source {
            Source::Hard => &mut hard[i],
            Source::Weak => &mut pool[i],
        };
        if row.label != patch.label {
            problems.push(format!(
                "line {line}: `{}` has label {} but its file name says {}",
                row.path,
                label_name(row.label),
                label_name(patch.label)
            ));
        }
        patch.kind = row.kind;
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(LayoutError::ManifestMismatch {
            path: manifest.to_path_buf(),
            problems,
        })
    }
}

/// Lower-case label name as written in manifests.
fn label_name(label: Label) -> &'static str {
    match label {
        Label::Positive => "positive",
        Label::Negative => "negative",
    }
}

/// Lower-case source name as written in manifests.
fn source_name(source: Source) -> &'static str {
    match source {
        Source::Hard => "hard",
        Source::Weak => "weak",
    }
}

fn missing_folders_message(root: &Path, missing: &[PathBuf]) -> String {
    let mut text = format!(
        "`{}` is not a dataset root: it must contain `{HARD_DIR}/` and `{WEAK_DIR}/`; missing:",
        root.display()
    );
    for path in missing {
        let _ = write!(text, "\n  {}", path.display());
    }
    text
}

fn bad_names_message(root: &Path, bad: &[BadName]) -> String {
    let mut text = format!(
        "{} entr{} under `{}` do not follow the dataset layout (rename, move or remove them):",
        bad.len(),
        if bad.len() == 1 { "y" } else { "ies" },
        root.display()
    );
    for entry in bad {
        let _ = write!(
            text,
            "\n  {}: expected {}",
            entry.path.display(),
            entry.expected
        );
    }
    text
}

fn missing_class_message(folder: &Path, missing: &[Label]) -> String {
    let names: Vec<String> = missing
        .iter()
        .map(|l| match l {
            Label::Positive => "positive (pos_*.png)".to_string(),
            Label::Negative => "negative (neg_*.png)".to_string(),
        })
        .collect();
    format!(
        "`{}` holds no {} patches; both classes are needed ({HARD_PATTERN})",
        folder.display(),
        names.join(" and no ")
    )
}

fn manifest_mismatch_message(path: &Path, problems: &[String]) -> String {
    let mut text = format!(
        "manifest `{}` disagrees with the dataset files in {} row(s) (regenerate the dataset or fix the rows):",
        path.display(),
        problems.len()
    );
    for problem in problems {
        let _ = write!(text, "\n  {problem}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Creates `root/rel` (with parent folders) holding a few bytes.
    fn touch(root: &Path, rel: &str) {
        let path = root.join(rel);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, b"not an image").unwrap();
    }

    /// A valid minimal layout.
    fn minimal(root: &Path) {
        touch(root, "hard_labeled_dataset/pos_S01_0-0.png");
        touch(root, "hard_labeled_dataset/neg_S02_10-20.png");
        touch(root, "weakly_labeled_dataset/W01_5-6.jpg");
    }

    #[test]
    fn parses_hard_names_with_underscored_slides() {
        assert_eq!(
            parse_hard_name("pos_S01_1024-2048.png"),
            Some((Label::Positive, "S01".into()))
        );
        assert_eq!(
            parse_hard_name("neg_GC_2019_07_0-12.PNG"),
            Some((Label::Negative, "GC_2019_07".into()))
        );
        for bad in [
            "pos_S01_1024-2048.jpg", // wrong extension
            "Pos_S01_1-2.png",       // prefix is case-sensitive
            "pos_1-2.png",           // no slide
            "pos__1-2.png",          // empty slide
            "pos_S01_1-.png",        // empty y
            "pos_S01_-1-2.png",      // negative x
            "pos_S01_1-2-3.png",     // three numbers
            "pos_S01_a-2.png",       // not a number
            "pos_S01_1-2",           // no extension
            "other_S01_1-2.png",     // unknown class
        ] {
            assert_eq!(parse_hard_name(bad), None, "{bad}");
        }
    }

    #[test]
    fn parses_pool_names() {
        assert_eq!(parse_pool_name("W_03_100-200.JPEG"), Some("W_03".into()));
        assert_eq!(parse_pool_name("patch_17.jpg"), Some("patch_17".into()));
        assert_eq!(parse_pool_name("12-34.png"), Some("12-34".into()));
        assert_eq!(parse_pool_name("_1-2.png"), Some("_1-2".into()));
        assert_eq!(parse_pool_name("notes.txt"), None);
        assert_eq!(parse_pool_name(".jpg"), None);
        assert_eq!(parse_pool_name("noext"), None);
    }

    #[test]
    fn loads_sorted_relative_patches_and_skips_hidden_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(root, "hard_labeled_dataset/pos_S_2_3-4.png");
        touch(root, "hard_labeled_dataset/neg_S1_0-0.png");
        touch(root, "hard_labeled_dataset/.DS_Store");
        touch(root, "hard_labeled_dataset/._pos_S1_0-0.png");
        touch(root, "weakly_labeled_dataset/b.PNG");
        touch(root, "weakly_labeled_dataset/a_9-9.jpg");
        let data = load_dataset(root).unwrap();
        assert_eq!(data.root, root);
        let hard: Vec<_> = data
            .hard
            .iter()
            .map(|p| (p.path.clone(), p.label, p.slide.as_str()))
            .collect();
        assert_eq!(
            hard,
            vec![
                (
                    PathBuf::from("hard_labeled_dataset/neg_S1_0-0.png"),
                    Label::Negative,
                    "S1"
                ),
                (
                    PathBuf::from("hard_labeled_dataset/pos_S_2_3-4.png"),
                    Label::Positive,
                    "S_2"
                ),
            ]
        );
        let pool: Vec<_> = data
            .pool
            .iter()
            .map(|p| (p.path.clone(), p.label, p.slide.as_str()))
            .collect();
        assert_eq!(
            pool,
            vec![
                (
                    PathBuf::from("weakly_labeled_dataset/a_9-9.jpg"),
                    Label::Negative,
                    "a"
                ),
                (
                    PathBuf::from("weakly_labeled_dataset/b.PNG"),
                    Label::Negative,
                    "b"
                ),
            ]
        );
        assert!(data.hard.iter().chain(&data.pool).all(|p| p.kind.is_none()));
    }

    #[test]
    fn missing_folders_are_all_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_dataset(dir.path()).unwrap_err();
        let LayoutError::MissingFolders { missing, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(
            missing,
            &vec![dir.path().join(HARD_DIR), dir.path().join(WEAK_DIR)]
        );
        let text = err.to_string();
        assert!(
            text.contains(&dir.path().join(WEAK_DIR).display().to_string()),
            "{text}"
        );

        touch(dir.path(), "hard_labeled_dataset/pos_S_1-1.png");
        let err = load_dataset(dir.path()).unwrap_err();
        let LayoutError::MissingFolders { missing, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(missing, &vec![dir.path().join(WEAK_DIR)]);
    }

    #[test]
    fn every_bad_name_is_listed_with_its_pattern() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        minimal(root);
        touch(root, "hard_labeled_dataset/positive_S1_1-1.png");
        touch(root, "hard_labeled_dataset/neg_S1_1_1.png");
        touch(root, "weakly_labeled_dataset/readme.txt");
        fs::create_dir(root.join("weakly_labeled_dataset/nested")).unwrap();
        let err = load_dataset(root).unwrap_err();
        let LayoutError::BadNames { bad, .. } = &err else {
            panic!("{err}")
        };
        let paths: Vec<_> = bad.iter().map(|b| b.path.to_str().unwrap()).collect();
        assert_eq!(
            paths,
            vec![
                "hard_labeled_dataset/neg_S1_1_1.png",
                "hard_labeled_dataset/positive_S1_1-1.png",
                "weakly_labeled_dataset/nested",
                "weakly_labeled_dataset/readme.txt",
            ]
        );
        let text = err.to_string();
        assert!(text.starts_with("4 entries under"), "{text}");
        assert!(
            text.contains("neg_S1_1_1.png: expected {pos|neg}_{slide}_{x-y}.png"),
            "{text}"
        );
        assert!(
            text.contains("positive_S1_1-1.png: expected {pos|neg}"),
            "{text}"
        );
        assert!(
            text.contains("readme.txt: expected an image named"),
            "{text}"
        );
    }

    #[test]
    fn a_missing_class_names_the_class_and_folder() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(root, "hard_labeled_dataset/neg_S1_1-1.png");
        touch(root, "weakly_labeled_dataset/w.jpg");
        let err = load_dataset(root).unwrap_err();
        let LayoutError::MissingClass { folder, missing } = &err else {
            panic!("{err}")
        };
        assert_eq!(folder, &root.join(HARD_DIR));
        assert_eq!(missing, &vec![Label::Positive]);
        let text = err.to_string();
        assert!(text.contains("no positive (pos_*.png) patches"), "{text}");
        assert!(
            text.contains(&root.join(HARD_DIR).display().to_string()),
            "{text}"
        );

        fs::remove_file(root.join("hard_labeled_dataset/neg_S1_1-1.png")).unwrap();
        let err = load_dataset(root).unwrap_err();
        let LayoutError::MissingClass { missing, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(missing, &vec![Label::Positive, Label::Negative]);
    }

    #[test]
    fn an_empty_pool_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        touch(root, "hard_labeled_dataset/neg_S1_1-1.png");
        touch(root, "hard_labeled_dataset/pos_S1_1-2.png");
        touch(root, "weakly_labeled_dataset/.hidden.jpg");
        let err = load_dataset(root).unwrap_err();
        let LayoutError::EmptyPool { folder } = &err else {
            panic!("{err}")
        };
        assert_eq!(folder, &root.join(WEAK_DIR));
        assert!(err.to_string().contains("holds no images"));
    }

    #[test]
    fn manifest_fills_kinds() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        minimal(root);
        fs::write(
            root.join(MANIFEST_FILE),
            "path,source,label,slide,kind\n\
             hard_labeled_dataset/pos_S01_0-0.png,hard,positive,S01,invasion\n\
             weakly_labeled_dataset/W01_5-6.jpg,weak,negative,W01,mimic\n",
        )
        .unwrap();
        let data = load_dataset(root).unwrap();
        assert_eq!(data.hard[1].kind, Some(PatchKind::Invasion)); // pos_ sorts after neg_
        assert_eq!(data.hard[0].kind, None); // not in the manifest
        assert_eq!(data.pool[0].kind, Some(PatchKind::Mimic));
    }

    #[test]
    fn manifest_disagreements_are_all_listed() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        minimal(root);
        fs::write(
            root.join(MANIFEST_FILE),
            "path,source,label,slide,kind\n\
             hard_labeled_dataset/pos_S01_0-0.png,hard,negative,S01,stroma\n\
             hard_labeled_dataset/pos_S09_0-0.png,hard,positive,S09,invasion\n\
             weakly_labeled_dataset/W01_5-6.jpg,hard,negative,W01,mimic\n\
             weakly_labeled_dataset/W01_5-6.jpg,weak,negative,W01,mimic\n",
        )
        .unwrap();
        let err = load_dataset(root).unwrap_err();
        let LayoutError::ManifestMismatch { problems, .. } = &err else {
            panic!("{err}")
        };
        assert_eq!(
            problems,
            &vec![
                "line 2: `hard_labeled_dataset/pos_S01_0-0.png` has label negative but its file name says positive"
                    .to_string(),
                "line 3: `hard_labeled_dataset/pos_S09_0-0.png` is not a patch file of the dataset".to_string(),
                "line 4: `weakly_labeled_dataset/W01_5-6.jpg` has source hard but lies in the weak folder"
                    .to_string(),
                "line 5: `weakly_labeled_dataset/W01_5-6.jpg` repeats line 4".to_string(),
            ]
        );
        assert!(err.to_string().contains("in 4 row(s)"));
    }

    #[test]
    fn unreadable_manifest_reports_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        minimal(root);
        fs::write(
            root.join(MANIFEST_FILE),
            "path,source,label,slide,kind\nhard_labeled_dataset/pos_S01_0-0.png,hard,positive,S01,unicorn\n",
        )
        .unwrap();
        let err = load_dataset(root).unwrap_err();
        let LayoutError::ManifestRead { path, message } = &err else {
            panic!("{err}")
        };
        assert_eq!(path, &root.join(MANIFEST_FILE));
        assert!(message.contains("unicorn"), "{message}");
    }
}
