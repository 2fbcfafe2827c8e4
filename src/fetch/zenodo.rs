//! Zenodo record metadata: the files of a record with their sizes, MD5
//! checksums and download addresses, read from Zenodo's REST API
//! (`GET {base}/api/records/{id}`).
//!
//! The parser is lenient about where things are, since Zenodo's JSON has
//! changed shape over the years: files may be a list under `files`, or a
//! list or map under `files.entries` or `entries`; a name is `key` or
//! `filename`; a size `size` or `filesize`; a checksum `md5:HEX` or a bare
//! MD5; a download link `links.content`, `links.self` or `links.download`.
//! It is strict about what it needs: every file must have a plain name (no
//! folders, no `..`), a size and an MD5 checksum, or the record is refused.
//!
//! Addresses: a file's own link is used when it lies under the base URL;
//! otherwise (a mirror serving a verbatim copy of Zenodo's JSON, whose links
//! point at zenodo.org) the address is built from the base URL as
//! `{base}/api/records/{id}/files/{name}/content`, Zenodo's own scheme.

use super::digest::{Algorithm, Checksum};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::Value;

/// The public dataset of the reference study.
pub const DATASET_RECORD: u64 = 10020633;
/// Zenodo itself.
pub const DEFAULT_BASE_URL: &str = "https://zenodo.org";

/// Characters escaped in a path segment (all but RFC 3986's unreserved ones).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// What a record holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// `metadata.version`, if the record has one.
    pub version: Option<String>,
    /// The record's DOI, if reported.
    pub doi: Option<String>,
    /// `metadata.title`, if reported.
    pub title: Option<String>,
    /// The files, in the record's order.
    pub files: Vec<RecordFile>,
}

/// One file of a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordFile {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Its MD5 checksum.
    pub checksum: Checksum,
    /// Where to download it.
    pub url: String,
}

/// Why a record's metadata cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// Not JSON.
    #[error("the answer is not JSON: {0}")]
    Json(serde_json::Error),
    /// No file list found.
    #[error("the record lists no files")]
    NoFiles,
    /// A file entry lacks something or is unsafe.
    #[error("file entry {index} ({name}): {problem}")]
    BadFile {
        /// 0-based position in the list.
        index: usize,
        /// Its name, or `?`.
        name: String,
        /// What is wrong.
        problem: String,
    },
}

/// `{base}/api/records/{id}`.
pub fn record_url(base: &str, id: u64) -> String {
    format!("{}/api/records/{id}", base.trim_end_matches('/'))
}

/// Parses the JSON of record `id` fetched from `base`.
pub fn parse_record(json: &[u8], base: &str, id: u64) -> Result<Record, RecordError> {
    let root: Value = serde_json::from_slice(json).map_err(RecordError::Json)?;
    let metadata = root.get("metadata");
    let text = |v: Option<&Value>| -> Option<String> {
        match v? {
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let entries = file_entries(&root).ok_or(RecordError::NoFiles)?;
    if entries.is_empty() {
        return Err(RecordError::NoFiles);
    }
    let base = base.trim_end_matches('/');
    let files = entries
        .iter()
        .enumerate()
        .map(|(index, (key, entry))| parse_file(index, key.as_deref(), entry, base, id))
        .collect::<Result<Vec<_>, _>>()?;
    let mut seen = std::collections::BTreeSet::new();
    for (index, file) in files.iter().enumerate() {
        if !seen.insert(file.name.as_str()) {
            return Err(RecordError::BadFile {
                index,
                name: file.name.clone(),
                problem: "the name appears twice".into(),
            });
        }
    }
    Ok(Record {
        version: text(metadata.and_then(|m| m.get("version"))),
        doi: text(root.get("doi"))
            .or_else(|| text(metadata.and_then(|m| m.get("doi"))))
            .or_else(|| text(root.pointer("/pids/doi/identifier"))),
        title: text(metadata.and_then(|m| m.get("title"))),
        files,
    })
}

/// The file entries, each with the map key it was found under (if any).
fn file_entries(root: &Value) -> Option<Vec<(Option<String>, &Value)>> {
    let candidates = [
        root.get("files"),
        root.pointer("/files/entries"),
        root.get("entries"),
    ];
    for candidate in candidates.into_iter().flatten() {
        match candidate {
            Value::Array(items) => return Some(items.iter().map(|v| (None, v)).collect()),
            // `files` may be `{ "enabled": true, "entries": ... }`: only a map
            // whose values are all objects is a map of files.
            Value::Object(map) if !map.is_empty() && map.values().all(Value::is_object) => {
                return Some(map.iter().map(|(k, v)| (Some(k.clone()), v)).collect());
            }
            _ => {}
        }
    }
    None
}

fn parse_file(
    index: usize,
    map_key: Option<&str>,
    entry: &Value,
    base: &str,
    id: u64,
) -> Result<RecordFile, RecordError> {
    let field = |names: &[&str]| names.iter().find_map(|n| entry.get(*n));
    let name = field(&["key", "filename"])
        .and_then(Value::as_str)
        .or(map_key)
        .map(str::to_string);
    let bad = |problem: &str| RecordError::BadFile {
        index,
        name: name.clone().unwrap_or_else(|| "?".into()),
        problem: problem.to_string(),
    };
    let name = name.clone().ok_or_else(|| bad("no file name"))?;
    if !is_plain_file_name(&name) {
        return Err(bad(
            "not a plain file name (folders, `..` and hidden names are refused)",
        ));
    }
    let size = field(&["size", "filesize"])
        .and_then(|v| v.as_u64().or_else(|| v.as_str()?.parse().ok()))
        .ok_or_else(|| bad("no size"))?;
    let checksum_text = field(&["checksum"])
        .and_then(Value::as_str)
        .ok_or_else(|| bad("no checksum"))?;
    let checksum = if checksum_text.contains(':') {
        Checksum::parse(checksum_text)
    } else {
        Checksum::new(Algorithm::Md5, checksum_text)
    }
    .filter(|c| c.algorithm == Algorithm::Md5 && c.hex.len() == 32)
    .ok_or_else(|| bad(&format!("checksum `{checksum_text}` is not an MD5")))?;
    let link = ["content", "self", "download"]
        .iter()
        .find_map(|k| entry.get("links")?.get(*k)?.as_str())
        .filter(|link| link.starts_with(&format!("{base}/")));
    let url = match link {
        Some(link) => link.to_string(),
        None => format!(
            "{base}/api/records/{id}/files/{}/content",
            utf8_percent_encode(&name, SEGMENT)
        ),
    };
    Ok(RecordFile {
        name,
        size,
        checksum,
        url,
    })
}

/// A name that can only mean a file directly inside the destination folder.
pub fn is_plain_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && !name.contains(['/', '\\', '\0'])
        && !name.chars().any(char::is_control)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const MD5: &str = "0123456789abcdef0123456789abcdef";

    fn parse(value: Value) -> Result<Record, RecordError> {
        parse_record(
            value.to_string().as_bytes(),
            "https://zenodo.org/",
            DATASET_RECORD,
        )
    }

    #[test]
    fn current_zenodo_shape() {
        let record = parse(json!({
            "id": 10020633,
            "doi": "10.5281/zenodo.10020633",
            "metadata": { "title": "LI dataset", "version": "1.0" },
            "files": [
                {
                    "key": "hard_labeled_dataset.zip",
                    "size": 1234,
                    "checksum": format!("md5:{MD5}"),
                    "links": { "self": "https://zenodo.org/api/records/10020633/files/hard_labeled_dataset.zip/content" }
                },
                { "key": "read me.txt", "size": "7", "checksum": MD5 }
            ]
        }))
        .expect("record");
        assert_eq!(record.version.as_deref(), Some("1.0"));
        assert_eq!(record.doi.as_deref(), Some("10.5281/zenodo.10020633"));
        assert_eq!(record.title.as_deref(), Some("LI dataset"));
        assert_eq!(record.files.len(), 2);
        assert_eq!(record.files[0].size, 1234);
        assert_eq!(record.files[0].checksum.to_string(), format!("md5:{MD5}"));
        assert_eq!(
            record.files[0].url,
            "https://zenodo.org/api/records/10020633/files/hard_labeled_dataset.zip/content"
        );
        // No link: Zenodo's scheme, with the name escaped.
        assert_eq!(
            record.files[1].url,
            "https://zenodo.org/api/records/10020633/files/read%20me.txt/content"
        );
    }

    #[test]
    fn entries_maps_and_foreign_links() {
        let record = parse_record(
            json!({
                "files": { "enabled": true, "entries": {
                    "data.zip": {
                        "size": 5,
                        "checksum": format!("md5:{MD5}"),
                        "links": { "content": "https://zenodo.org/api/records/1/files/data.zip/content" }
                    }
                }},
                "pids": { "doi": { "identifier": "10.5281/zenodo.1" } }
            })
            .to_string()
            .as_bytes(),
            "http://127.0.0.1:8000",
            1,
        )
        .expect("record");
        assert_eq!(record.version, None);
        assert_eq!(record.doi.as_deref(), Some("10.5281/zenodo.1"));
        assert_eq!(record.files[0].name, "data.zip");
        // The link points away from the mirror: the mirror's address is used.
        assert_eq!(
            record.files[0].url,
            "http://127.0.0.1:8000/api/records/1/files/data.zip/content"
        );
    }

    #[test]
    fn unusable_records_say_why() {
        let file = |key: &str, checksum: &str| json!({ "files": [{ "key": key, "size": 1, "checksum": checksum }] });
        let msg = |v: Value| parse(v).expect_err("refused").to_string();
        assert_eq!(msg(json!({ "id": 1 })), "the record lists no files");
        assert_eq!(msg(json!({ "files": [] })), "the record lists no files");
        assert!(msg(file("../evil.zip", MD5)).contains("not a plain file name"));
        assert!(msg(file("a/b.zip", MD5)).contains("(a/b.zip): not a plain file name"));
        assert!(msg(file(".hidden", MD5)).contains("not a plain file name"));
        assert!(msg(file("a.zip", "sha256:0123456789abcdef")).contains("is not an MD5"));
        assert!(msg(json!({ "files": [{ "key": "a.zip", "checksum": MD5 }] })).contains("no size"));
        assert!(msg(json!({ "files": [{ "key": "a", "size": 1, "checksum": MD5 }, { "key": "a", "size": 1, "checksum": MD5 }] })).contains("appears twice"));
        assert!(parse_record(b"<html>", DEFAULT_BASE_URL, 1)
            .expect_err("html")
            .to_string()
            .starts_with("the answer is not JSON"));
    }
}
