//! A small HTTP/1.1 server on 127.0.0.1 for the download tests.
//!
//! It serves fixed bodies by path and can misbehave on purpose: ignore
//! `Range` requests, cut an answer off part-way, or answer with an error
//! status. Every request is logged (path and `Range` header) so that tests
//! can tell what was downloaded. One connection is served at a time and each
//! answer closes its connection, which is all a blocking client needs.
//!
//! The integration tests include this file too (`#[path]`), so it depends on
//! the standard library only.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

/// How the server answers the requests for one path.
#[derive(Debug, Clone)]
pub enum Reply {
    /// The body, honouring `Range: bytes=N-` with `206 Partial Content`.
    Bytes(Vec<u8>),
    /// The whole body with `200 OK`, whatever the request's `Range`.
    IgnoreRange(Vec<u8>),
    /// As [`Reply::Bytes`], but each of the next `times` answers announces
    /// the full length and closes the connection once it has sent the body
    /// up to byte offset `at` (an answer starting at or beyond `at` sends
    /// no body at all).
    Cut {
        /// The whole body.
        body: Vec<u8>,
        /// Offset at which answers stop.
        at: usize,
        /// How many answers are cut before the path is served normally.
        times: usize,
    },
    /// This status with a short text body.
    Status(u16),
}

/// One logged request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// Request path, e.g. `/api/records/1`.
    pub path: String,
    /// The `Range` header, if any.
    pub range: Option<String>,
}

#[derive(Default)]
struct State {
    routes: HashMap<String, Reply>,
    log: Vec<Request>,
}

/// A running server; it stops when dropped.
pub struct TestServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    /// Starts a server on a free port of 127.0.0.1 with no routes (every path is a 404).
    pub fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("local address");
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        // A client that hangs up early is its own business.
                        let _ = serve(stream, &state);
                    }
                }
            })
        };
        Self {
            addr,
            state,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The full URL of `path` (which starts with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url())
    }

    /// Serves `reply` for `path` from now on.
    pub fn set(&self, path: &str, reply: Reply) {
        self.lock().routes.insert(path.to_string(), reply);
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<Request> {
        self.lock().log.clone()
    }

    /// The requests so far for `path`.
    pub fn requests_for(&self, path: &str) -> Vec<Request> {
        self.lock()
            .log
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// Forgets the logged requests.
    pub fn clear_log(&self) {
        self.lock().log.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Reads one request from `stream` and answers it.
fn serve(stream: TcpStream, state: &Mutex<State>) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_string();
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            if name.trim().eq_ignore_ascii_case("range") {
                range = Some(value.trim().to_string());
            }
        }
    }
    let reply = {
        let mut state = state.lock().unwrap_or_else(PoisonError::into_inner);
        state.log.push(Request {
            path: path.clone(),
            range: range.clone(),
        });
        let reply = state.routes.get(&path).cloned();
        // A cut answer counts down; the path is served normally afterwards.
        if let Some(Reply::Cut { body, at, times }) = &reply {
            let next = if *times > 1 {
                Reply::Cut {
                    body: body.clone(),
                    at: *at,
                    times: times - 1,
                }
            } else {
                Reply::Bytes(body.clone())
            };
            state.routes.insert(path.clone(), next);
        }
        reply
    };
    let mut stream = stream;
    let start = range.as_deref().and_then(range_start);
    match reply {
        None => answer(&mut stream, 404, &[], b"not found", None),
        Some(Reply::Status(status)) => answer(&mut stream, status, &[], b"error", None),
        Some(Reply::IgnoreRange(body)) => answer(&mut stream, 200, &[], &body, None),
        Some(Reply::Bytes(body)) => answer_range(&mut stream, &body, start, None),
        Some(Reply::Cut { body, at, .. }) => answer_range(&mut stream, &body, start, Some(at)),
    }
}

/// `N` of `bytes=N-`.
fn range_start(header: &str) -> Option<usize> {
    header
        .strip_prefix("bytes=")?
        .strip_suffix('-')?
        .parse()
        .ok()
}

/// Answers with the part of `body` from `start` (206), or all of it (200),
/// sending body bytes only up to offset `cut` when given.
fn answer_range(
    stream: &mut TcpStream,
    body: &[u8],
    start: Option<usize>,
    cut: Option<usize>,
) -> std::io::Result<()> {
    match start {
        Some(start) if start >= body.len() => answer(
            stream,
            416,
            &[format!("Content-Range: bytes */{}", body.len())],
            b"",
            None,
        ),
        Some(start) => {
            let header = format!(
                "Content-Range: bytes {start}-{}/{}",
                body.len() - 1,
                body.len()
            );
            let limit = cut.map(|at| at.saturating_sub(start));
            answer(stream, 206, &[header], &body[start..], limit)
        }
        None => answer(stream, 200, &[], body, cut),
    }
}

/// Writes a response announcing `body.len()` bytes but sending at most `limit`.
fn answer(
    stream: &mut TcpStream,
    status: u16,
    headers: &[String],
    body: &[u8],
    limit: Option<usize>,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        206 => "Partial Content",
        404 => "Not Found",
        416 => "Range Not Satisfiable",
        500 => "Internal Server Error",
        _ => "Status",
    };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for header in headers {
        head.push_str(header);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    let sent = limit.map_or(body.len(), |l| l.min(body.len()));
    stream.write_all(&body[..sent])?;
    stream.flush()?;
    if sent < body.len() {
        stream.shutdown(std::net::Shutdown::Both)?;
    }
    Ok(())
}
