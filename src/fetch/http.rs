//! HTTP(S) downloads: a blocking client on rustls (no system TLS library),
//! small GETs for metadata, and resumable file downloads.
//!
//! A file is downloaded into a partial file (`NAME.part`) beside its
//! destination. When a partial file exists, the download resumes with
//! `Range: bytes=N-`; a server that answers `200` instead of `206` (no range
//! support), resumes at another offset, or refuses the range, gets the file
//! from the start again. A connection that breaks off mid-body is retried
//! (resuming) until three attempts in a row have added nothing; the partial
//! file is then kept, so that running the command again resumes it. Checking
//! the result is the caller's job (checksums); this module only moves bytes.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Attempts in a row that may add no byte before a download gives up.
const STALLED_ATTEMPTS: usize = 3;

/// Why a download failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// No answer: the host is unknown or unreachable, or the connection was refused.
    #[error("cannot reach {url}: {error}")]
    Connect {
        /// The URL.
        url: String,
        /// The client's error.
        error: Box<ureq::Error>,
    },
    /// The server answered with an error status.
    #[error("{url} answered HTTP {status}{}", reason(*.status))]
    Status {
        /// The URL.
        url: String,
        /// The HTTP status.
        status: u16,
    },
    /// The body stopped before its end, again and again.
    #[error(
        "download of {url} broke off after {done} bytes{}: {message}; run the command again to resume it",
        .total.map(|t| format!(" of {t}")).unwrap_or_default()
    )]
    Interrupted {
        /// The URL.
        url: String,
        /// Bytes now in the partial file.
        done: u64,
        /// The expected size, when known.
        total: Option<u64>,
        /// The last error.
        message: String,
    },
    /// A metadata answer was larger than expected.
    #[error("{url} sent more than {limit} bytes, more than expected for metadata")]
    TooLarge {
        /// The URL.
        url: String,
        /// The limit.
        limit: u64,
    },
    /// The partial file could not be read or written.
    #[error("cannot write '{}': {error}", .path.display())]
    Io {
        /// The partial file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
}

fn reason(status: u16) -> String {
    ureq::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .map(|r| format!(" ({r})"))
        .unwrap_or_default()
}

/// Progress of one download.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A transfer starts with `done` bytes already in the partial file.
    Start {
        /// Expected size, when known.
        total: Option<u64>,
        /// Bytes already there.
        done: u64,
    },
    /// The partial file now holds `done` bytes.
    Advance {
        /// Bytes in the partial file.
        done: u64,
    },
}

/// A blocking HTTP client with timeouts suited to large downloads.
pub struct Http {
    agent: ureq::Agent,
}

impl Default for Http {
    fn default() -> Self {
        Self::new()
    }
}

/// How one transfer attempt ended short of success.
enum Failure {
    /// Retrying will not help.
    Fatal(HttpError),
    /// The transfer broke off; a retry resumes.
    Interrupted(String),
}

impl Http {
    /// A client with a 30 s connect timeout and a 60 s limit per read (so a
    /// stalled transfer fails instead of hanging), HTTP errors as statuses,
    /// proxies from the environment (`HTTPS_PROXY`, ...).
    pub fn new() -> Self {
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            .timeout_per_read(Some(Duration::from_secs(60)))
            .user_agent(format!("ablate/{}", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Self { agent }
    }

    /// The body of `url` (metadata: a record, a config file), at most `limit` bytes.
    pub fn get_bytes(&self, url: &str, limit: u64) -> Result<Vec<u8>, HttpError> {
        let mut response = self.agent.get(url).call().map_err(|e| connect(url, e))?;
        let status = response.status().as_u16();
        if status != 200 {
            return Err(HttpError::Status {
                url: url.to_string(),
                status,
            });
        }
        let mut body = Vec::new();
        response
            .body_mut()
            .as_reader()
            .take(limit + 1)
            .read_to_end(&mut body)
            .map_err(|e| HttpError::Interrupted {
                url: url.to_string(),
                done: body.len() as u64,
                total: None,
                message: e.to_string(),
            })?;
        if body.len() as u64 > limit {
            return Err(HttpError::TooLarge {
                url: url.to_string(),
                limit,
            });
        }
        Ok(body)
    }

    /// Downloads `url` into the partial file `part`, resuming what is there
    /// (see the module docs). `expected_size`, when known, is the size the
    /// finished file must have: a partial file of that size is taken as
    /// complete without a request, a larger one is started over. Returns the
    /// size of the finished partial file.
    pub fn download(
        &self,
        url: &str,
        part: &Path,
        expected_size: Option<u64>,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<u64, HttpError> {
        let mut stalled = 0;
        loop {
            let before = file_len(part);
            match self.attempt(url, part, expected_size, on_progress) {
                Ok(size) => return Ok(size),
                Err(Failure::Fatal(error)) => return Err(error),
                Err(Failure::Interrupted(message)) => {
                    let after = file_len(part);
                    stalled = if after > before { 0 } else { stalled + 1 };
                    if stalled >= STALLED_ATTEMPTS {
                        return Err(HttpError::Interrupted {
                            url: url.to_string(),
                            done: after,
                            total: expected_size,
                            message,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(250 * stalled as u64));
                }
            }
        }
    }

    /// One request: resume or restart, then copy the body into `part`.
    fn attempt(
        &self,
        url: &str,
        part: &Path,
        expected_size: Option<u64>,
        on_progress: &mut dyn FnMut(Progress),
    ) -> Result<u64, Failure> {
        let io = |error| {
            Failure::Fatal(HttpError::Io {
                path: part.to_path_buf(),
                error,
            })
        };
        let mut have = file_len(part);
        if let Some(size) = expected_size {
            if have > size {
                truncate(part).map_err(io)?;
                have = 0;
            } else if have == size && size > 0 {
                return Ok(have);
            }
        }
        let mut request = self.agent.get(url);
        if have > 0 {
            request = request.header("Range", format!("bytes={have}-"));
        }
        let mut response = request
            .call()
            .map_err(|e| Failure::Fatal(connect(url, e)))?;
        let status = response.status().as_u16();
        let resumed = match status {
            206 if have > 0 => {
                let start = response
                    .headers()
                    .get("content-range")
                    .and_then(|v| v.to_str().ok())
                    .and_then(content_range_start);
                if start != Some(have) {
                    truncate(part).map_err(io)?;
                    return Err(Failure::Interrupted(format!(
                        "the server resumed at {start:?} instead of byte {have}"
                    )));
                }
                true
            }
            200 => false,
            416 if have > 0 => {
                truncate(part).map_err(io)?;
                return Err(Failure::Interrupted(
                    "the server refused to resume the partial file".into(),
                ));
            }
            _ => {
                return Err(Failure::Fatal(HttpError::Status {
                    url: url.to_string(),
                    status,
                }))
            }
        };
        let start = if resumed { have } else { 0 };
        let announced = response.body().content_length().map(|n| n + start);
        let mut file = if resumed {
            OpenOptions::new().append(true).open(part)
        } else {
            if let Some(dir) = part.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(io)?;
            }
            File::create(part)
        }
        .map_err(io)?;
        on_progress(Progress::Start {
            total: expected_size.or(announced),
            done: start,
        });
        let mut reader = response.body_mut().as_reader();
        let mut buffer = vec![0u8; 1 << 16];
        let mut done = start;
        loop {
            let n = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    file.flush().map_err(io)?;
                    return Err(Failure::Interrupted(e.to_string()));
                }
            };
            file.write_all(&buffer[..n]).map_err(io)?;
            done += n as u64;
            on_progress(Progress::Advance { done });
        }
        file.sync_all().map_err(io)?;
        Ok(done)
    }
}

fn connect(url: &str, error: ureq::Error) -> HttpError {
    HttpError::Connect {
        url: url.to_string(),
        error: Box::new(error),
    }
}

fn file_len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn truncate(path: &Path) -> std::io::Result<()> {
    File::create(path).map(drop)
}

/// `N` of `bytes N-M/T`.
fn content_range_start(header: &str) -> Option<u64> {
    let range = header.trim().strip_prefix("bytes")?.trim_start();
    range.split('-').next()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::test_server::{Reply, TestServer};

    fn body(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 % 256) as u8).collect()
    }

    fn download(
        server: &TestServer,
        path: &str,
        part: &Path,
        size: Option<u64>,
    ) -> Result<u64, HttpError> {
        Http::new().download(&server.url(path), part, size, &mut |_| {})
    }

    #[test]
    fn a_cut_transfer_resumes_with_a_range_request() {
        let server = TestServer::start();
        let data = body(300_000);
        server.set(
            "/f",
            Reply::Cut {
                body: data.clone(),
                at: 120_000,
                times: 1,
            },
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let part = dir.path().join("f.part");
        let mut events = Vec::new();
        let size = Http::new()
            .download(&server.url("/f"), &part, Some(300_000), &mut |p| {
                if let Progress::Start { .. } = p {
                    events.push(p)
                }
            })
            .expect("download");
        assert_eq!(size, 300_000);
        assert_eq!(std::fs::read(&part).expect("read"), data);
        let ranges: Vec<Option<String>> = server.requests().into_iter().map(|r| r.range).collect();
        assert_eq!(ranges, [None, Some("bytes=120000-".into())]);
        assert_eq!(
            events,
            [
                Progress::Start {
                    total: Some(300_000),
                    done: 0
                },
                Progress::Start {
                    total: Some(300_000),
                    done: 120_000
                }
            ]
        );
    }

    #[test]
    fn a_stalled_transfer_keeps_its_part_for_the_next_run() {
        let server = TestServer::start();
        let data = body(50_000);
        server.set(
            "/f",
            Reply::Cut {
                body: data.clone(),
                at: 20_000,
                times: 100,
            },
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let part = dir.path().join("f.part");
        let err = download(&server, "/f", &part, None).expect_err("keeps breaking off");
        let msg = err.to_string();
        assert!(
            msg.contains("broke off after 20000 bytes") && msg.contains("run the command again"),
            "{msg}"
        );
        // The first attempt and three that added nothing.
        assert_eq!(server.requests().len(), 1 + STALLED_ATTEMPTS);
        assert_eq!(std::fs::read(&part).expect("part"), &data[..20_000]);

        // The next run resumes where the last one stopped.
        server.set("/f", Reply::Bytes(data.clone()));
        server.clear_log();
        download(&server, "/f", &part, Some(50_000)).expect("resume");
        assert_eq!(std::fs::read(&part).expect("read"), data);
        assert_eq!(server.requests()[0].range.as_deref(), Some("bytes=20000-"));
    }

    #[test]
    fn a_server_without_range_support_restarts_the_file() {
        let server = TestServer::start();
        let data = body(10_000);
        server.set("/f", Reply::IgnoreRange(data.clone()));
        let dir = tempfile::tempdir().expect("tempdir");
        let part = dir.path().join("f.part");
        // A stale partial file with wrong bytes.
        std::fs::write(&part, vec![0xAAu8; 4_000]).expect("write");
        download(&server, "/f", &part, Some(10_000)).expect("download");
        assert_eq!(std::fs::read(&part).expect("read"), data);
        assert_eq!(server.requests()[0].range.as_deref(), Some("bytes=4000-"));
    }

    #[test]
    fn complete_and_oversized_parts() {
        let server = TestServer::start();
        let data = body(1_000);
        server.set("/f", Reply::Bytes(data.clone()));
        let dir = tempfile::tempdir().expect("tempdir");
        let part = dir.path().join("f.part");
        // Already complete: no request.
        std::fs::write(&part, &data).expect("write");
        download(&server, "/f", &part, Some(1_000)).expect("complete");
        assert!(server.requests().is_empty());
        // Without a known size the server decides: 416, then a fresh start.
        download(&server, "/f", &part, None).expect("416 then restart");
        assert_eq!(std::fs::read(&part).expect("read"), data);
        let ranges: Vec<Option<String>> = server.requests().into_iter().map(|r| r.range).collect();
        assert_eq!(ranges, [Some("bytes=1000-".into()), None]);
        // Longer than expected: started over.
        std::fs::write(&part, vec![1u8; 1_500]).expect("write");
        download(&server, "/f", &part, Some(1_000)).expect("restart");
        assert_eq!(std::fs::read(&part).expect("read"), data);
    }

    #[test]
    fn errors_name_the_url() {
        let server = TestServer::start();
        server.set("/gone", Reply::Status(404));
        let dir = tempfile::tempdir().expect("tempdir");
        let part = dir.path().join("f.part");
        let msg = download(&server, "/gone", &part, None)
            .expect_err("404")
            .to_string();
        assert_eq!(
            msg,
            format!("{} answered HTTP 404 (Not Found)", server.url("/gone"))
        );
        assert!(!part.exists());
        let msg = Http::new()
            .get_bytes(&server.url("/missing"), 100)
            .expect_err("404")
            .to_string();
        assert!(msg.contains("HTTP 404"), "{msg}");

        server.set("/big", Reply::Bytes(body(101)));
        let msg = Http::new()
            .get_bytes(&server.url("/big"), 100)
            .expect_err("too large")
            .to_string();
        assert!(msg.contains("more than 100 bytes"), "{msg}");

        // A port nothing listens on.
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            listener.local_addr().expect("addr").port()
        };
        let url = format!("http://127.0.0.1:{closed}/f");
        let msg = Http::new()
            .download(&url, &part, None, &mut |_| {})
            .expect_err("refused")
            .to_string();
        assert!(msg.starts_with(&format!("cannot reach {url}: ")), "{msg}");
    }

    #[test]
    fn content_range_starts() {
        assert_eq!(content_range_start("bytes 100-199/200"), Some(100));
        assert_eq!(content_range_start("bytes */200"), None);
        assert_eq!(content_range_start("items 1-2/3"), None);
    }
}
