//! Checksums of downloaded files: MD5 (what Zenodo publishes) and SHA-256
//! (what the weights are pinned by).

use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::fmt;
use std::io::Read;
use std::path::Path;

/// A hash function.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Algorithm {
    /// MD5 (Zenodo's file checksums).
    Md5,
    /// SHA-256.
    Sha256,
}

impl Algorithm {
    /// The name used in `md5:...` / `sha256:...` strings.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Md5 => "md5",
            Algorithm::Sha256 => "sha256",
        }
    }

    /// The lowercase hex digest of the file at `path`.
    pub fn file_hex(self, path: &Path) -> std::io::Result<String> {
        match self {
            Algorithm::Md5 => hash_file::<md5::Md5>(path),
            Algorithm::Sha256 => hash_file::<sha2::Sha256>(path),
        }
    }

    /// The lowercase hex digest of `bytes`.
    pub fn bytes_hex(self, bytes: &[u8]) -> String {
        match self {
            Algorithm::Md5 => hex(&md5::Md5::digest(bytes)),
            Algorithm::Sha256 => hex(&sha2::Sha256::digest(bytes)),
        }
    }
}

/// A checksum a file must have: an algorithm and the expected lowercase hex
/// digest, or a prefix of it (torchvision's file names carry the first 8
/// hex digits of their SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checksum {
    /// The hash function.
    pub algorithm: Algorithm,
    /// Expected digest (lowercase hex), or its first digits.
    pub hex: String,
}

impl Checksum {
    /// Parses `md5:HEX` or `sha256:HEX` (Zenodo's notation); `None` for
    /// another algorithm or a digest that is not hex.
    pub fn parse(text: &str) -> Option<Self> {
        let (name, hex) = text.trim().split_once(':')?;
        let algorithm = match name.trim().to_ascii_lowercase().as_str() {
            "md5" => Algorithm::Md5,
            "sha256" | "sha-256" => Algorithm::Sha256,
            _ => return None,
        };
        Self::new(algorithm, hex)
    }

    /// A checksum from its hex digest (or prefix of at least 8 digits);
    /// `None` when `hex` is not that.
    pub fn new(algorithm: Algorithm, hex: &str) -> Option<Self> {
        let hex = hex.trim().to_ascii_lowercase();
        let full = match algorithm {
            Algorithm::Md5 => 32,
            Algorithm::Sha256 => 64,
        };
        (hex.len() >= 8 && hex.len() <= full && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then_some(Self { algorithm, hex })
    }

    /// Whether a full digest of the same algorithm matches this checksum.
    pub fn matches(&self, actual_hex: &str) -> bool {
        actual_hex.len() >= self.hex.len() && actual_hex.starts_with(&self.hex)
    }
}

impl fmt::Display for Checksum {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.algorithm.name(), self.hex)
    }
}

/// How a downloaded file differs from what it should be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// `size` or `checksum`.
    pub what: &'static str,
    /// The expected value, as shown to the user.
    pub expected: String,
    /// The downloaded file's.
    pub actual: String,
}

/// Checks a downloaded file of `size` bytes at `path` (fresh, or left by an
/// earlier fetch) against the size it should have (when known) and its
/// `checksum`: the file's full digest when both agree; otherwise the file is
/// removed, so nothing unverified stays behind, and the mismatch returned.
/// An error only when the file cannot be read.
pub fn verify_download(
    path: &Path,
    size: u64,
    expected_size: Option<u64>,
    checksum: &Checksum,
) -> std::io::Result<Result<String, Mismatch>> {
    let mismatch = |what, expected: String, actual: String| {
        let _ = std::fs::remove_file(path);
        Err(Mismatch {
            what,
            expected,
            actual,
        })
    };
    if let Some(expected) = expected_size.filter(|&s| s != size) {
        return Ok(mismatch(
            "size",
            format!("{expected} bytes"),
            format!("{size} bytes"),
        ));
    }
    let actual = checksum.algorithm.file_hex(path)?;
    if !checksum.matches(&actual) {
        let actual = Checksum {
            algorithm: checksum.algorithm,
            hex: actual,
        };
        return Ok(mismatch(
            "checksum",
            checksum.to_string(),
            actual.to_string(),
        ));
    }
    Ok(Ok(actual))
}

fn hash_file<D: Digest>(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = D::new();
    let mut buffer = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_of_known_vectors() {
        // RFC 1321 and FIPS 180-2 test vectors.
        assert_eq!(
            Algorithm::Md5.bytes_hex(b"abc"),
            "900150983cd24fb0d6963f7d28e17f72"
        );
        assert_eq!(
            Algorithm::Sha256.bytes_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("abc");
        // Larger than one read buffer, so the file is hashed in pieces.
        let bytes: Vec<u8> = (0..(3 << 20) + 17).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).expect("write");
        for algorithm in [Algorithm::Md5, Algorithm::Sha256] {
            assert_eq!(
                algorithm.file_hex(&path).expect("hash"),
                algorithm.bytes_hex(&bytes)
            );
        }
    }

    #[test]
    fn downloads_that_differ_are_named_and_removed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("file.part");
        let abc = Checksum::new(Algorithm::Md5, "900150983cd24fb0d6963f7d28e17f72").unwrap();
        std::fs::write(&path, b"abc").expect("write");
        let verdict = verify_download(&path, 3, Some(3), &abc).expect("readable");
        assert_eq!(verdict, Ok("900150983cd24fb0d6963f7d28e17f72".to_string()));
        assert!(path.exists());
        let verdict = verify_download(&path, 3, Some(4), &abc).expect("readable");
        assert_eq!(
            verdict,
            Err(Mismatch {
                what: "size",
                expected: "4 bytes".into(),
                actual: "3 bytes".into(),
            })
        );
        assert!(!path.exists());
        std::fs::write(&path, b"abd").expect("write");
        let verdict = verify_download(&path, 3, None, &abc).expect("readable");
        assert_eq!(
            verdict,
            Err(Mismatch {
                what: "checksum",
                expected: "md5:900150983cd24fb0d6963f7d28e17f72".into(),
                actual: format!("md5:{}", Algorithm::Md5.bytes_hex(b"abd")),
            })
        );
        assert!(!path.exists());
    }

    #[test]
    fn checksums_parse_and_match_prefixes() {
        let md5 = Checksum::parse("md5:900150983CD24FB0D6963F7D28E17F72").expect("md5");
        assert_eq!(md5.algorithm, Algorithm::Md5);
        assert!(md5.matches("900150983cd24fb0d6963f7d28e17f72"));
        assert!(!md5.matches("900150983cd24fb0d6963f7d28e17f73"));
        assert_eq!(md5.to_string(), "md5:900150983cd24fb0d6963f7d28e17f72");

        let prefix = Checksum::new(Algorithm::Sha256, "ba7816bf").expect("prefix");
        assert!(prefix.matches(&Algorithm::Sha256.bytes_hex(b"abc")));
        assert!(!prefix.matches(&Algorithm::Sha256.bytes_hex(b"abd")));

        for bad in ["sha1:abc", "md5:xyz12345", "md5:1234", "md5", "md5:"] {
            assert_eq!(Checksum::parse(bad), None, "{bad}");
        }
        assert_eq!(Checksum::new(Algorithm::Md5, &"a".repeat(33)), None);
    }
}
