//! A fixture mirror server on 127.0.0.1:0: serves a directory over HTTP/1.1
//! (GET, HEAD, `Range: bytes=N-`), counts requests, and injects faults per
//! path (redirect, 404, truncation, hang, stall, silence, dropped connection).
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// What to do with requests for one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 302 to `/redirected/<path>`, which serves the file.
    Redirect,
    /// 302 to this location, for every method.
    RedirectTo(String),
    /// 404 for every method.
    NotFound,
    /// HEAD answers 403 (as CDNs with URLs signed for GET do); GET serves.
    HeadForbidden,
    /// GET sends the full Content-Length but only half the body, then closes;
    /// the next `times` GETs do so (HEAD answers normally). It ignores
    /// `Range`: every such answer is a 200 from byte 0.
    DropMidway { times: u32 },
    /// The next `times` GETs answer 503 Service Unavailable.
    Unavailable { times: u32 },
    /// GET answers with headers for the full file, then hangs until the
    /// client gives up (HEAD answers normally).
    Hang,
    /// GET honours `Range` but sends only `bytes` bytes of the body, then
    /// closes: every attempt makes a little progress (HEAD answers normally).
    Trickle { bytes: usize },
    /// GET sends headers and the first `bytes` bytes, then hangs until the
    /// client gives up (HEAD answers normally).
    Stall { bytes: usize },
    /// GET is read but never answered, not even with headers, until the
    /// client gives up (HEAD answers normally).
    Silent,
    /// As a web server with on-the-fly compression: a GET that accepts gzip
    /// gets `Content-Encoding: gzip` (ranges then count compressed bytes);
    /// either way the next `times` GETs send only half their body, then close.
    GzipIfAccepted { times: u32 },
}

/// One request as the server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub range: Option<String>,
    pub accept_encoding: Option<String>,
}

#[derive(Default)]
struct State {
    seen: Vec<Seen>,
    faults: HashMap<String, Fault>,
}

pub struct MirrorServer {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MirrorServer {
    pub fn start(root: &Path) -> MirrorServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding 127.0.0.1:0");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (root, st, sp) = (root.to_path_buf(), state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (root, st, sp) = (root.clone(), st.clone(), sp.clone());
                std::thread::spawn(move || serve(conn, &root, &st, &sp));
            }
        });
        MirrorServer {
            port,
            state,
            stop,
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sets a fault for a mirror path such as `/stable.release.../file`.
    pub fn fault(&self, path: &str, fault: Fault) {
        self.state
            .lock()
            .unwrap()
            .faults
            .insert(path.to_string(), fault);
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    /// The GET requests seen for `path`, in order.
    pub fn gets_of(&self, path: &str) -> Vec<Seen> {
        let seen = &self.state.lock().unwrap().seen;
        seen.iter()
            .filter(|r| r.path == path && r.method == "GET")
            .cloned()
            .collect()
    }

    pub fn reset_requests(&self) {
        self.state.lock().unwrap().seen.clear();
    }
}

impl Drop for MirrorServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut conn: TcpStream, root: &Path, state: &Mutex<State>, stop: &AtomicBool) {
    let Some(req) = read_request(&conn) else {
        return;
    };
    let fault = {
        let mut st = state.lock().unwrap();
        st.seen.push(req.clone());
        let fault = st.faults.get(&req.path).cloned();
        if req.method == "GET" {
            if let Some(next) = fault.as_ref().and_then(used_once) {
                match next {
                    Some(f) => st.faults.insert(req.path.clone(), f),
                    None => st.faults.remove(&req.path),
                };
            }
        }
        fault
    };
    let path = req.path.strip_prefix("/redirected").unwrap_or(&req.path);
    let file = file_for(root, path);
    let get = req.method == "GET";
    match (fault, file) {
        (Some(Fault::NotFound), _) | (_, None) => status(&mut conn, "404 Not Found"),
        (Some(Fault::HeadForbidden), Some(_)) if !get => status(&mut conn, "403 Forbidden"),
        (Some(Fault::Redirect), Some(_)) if !req.path.starts_with("/redirected") => {
            let _ = write!(
                conn,
                "HTTP/1.1 302 Found\r\nLocation: /redirected{}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                req.path
            );
        }
        (Some(Fault::RedirectTo(location)), Some(_)) => {
            let _ = write!(
                conn,
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
        (Some(Fault::Unavailable { .. }), Some(_)) if get => {
            status(&mut conn, "503 Service Unavailable")
        }
        (Some(Fault::Hang), Some(file)) if get => {
            let len = std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0);
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
            );
            hold(&mut conn, stop);
        }
        (Some(Fault::Stall { bytes }), Some(file)) if get => {
            let body = std::fs::read(&file).unwrap();
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(&body[..bytes.min(body.len())]);
            let _ = conn.flush();
            hold(&mut conn, stop);
        }
        (Some(Fault::Silent), Some(_)) if get => hold(&mut conn, stop),
        (Some(Fault::Trickle { bytes }), Some(file)) if get => {
            send_part(&mut conn, &file, &req, bytes);
            let _ = conn.shutdown(Shutdown::Both);
        }
        (Some(Fault::DropMidway { .. }), Some(file)) if get => {
            let body = std::fs::read(&file).unwrap();
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(&body[..body.len() / 2]);
            let _ = conn.flush();
            let _ = conn.shutdown(Shutdown::Both);
        }
        (Some(Fault::GzipIfAccepted { .. }), Some(file)) if get => {
            let gzip = req
                .accept_encoding
                .as_deref()
                .is_some_and(|ae| ae.contains("gzip"));
            let plain = std::fs::read(&file).unwrap();
            let body = if gzip {
                let mut enc =
                    flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                enc.write_all(&plain).unwrap();
                enc.finish().unwrap()
            } else {
                plain
            };
            let start = range_start(&req).filter(|&s| s < body.len());
            let part = &body[start.unwrap_or(0)..];
            let _ = write!(
                conn,
                "HTTP/1.1 {}\r\n",
                if start.is_some() {
                    "206 Partial Content"
                } else {
                    "200 OK"
                }
            );
            if let Some(s) = start {
                let _ = write!(
                    conn,
                    "Content-Range: bytes {s}-{}/{}\r\n",
                    body.len() - 1,
                    body.len()
                );
            }
            if gzip {
                let _ = write!(conn, "Content-Encoding: gzip\r\n");
            }
            let _ = write!(
                conn,
                "Content-Length: {}\r\nConnection: close\r\n\r\n",
                part.len()
            );
            let _ = conn.write_all(&part[..part.len() / 2]);
            let _ = conn.flush();
            let _ = conn.shutdown(Shutdown::Both);
        }
        (_, Some(file)) => send_file(&mut conn, &file, &req),
    }
}

/// For a counted fault, what remains after one use (`Some(None)`: it is used up).
fn used_once(fault: &Fault) -> Option<Option<Fault>> {
    match fault {
        Fault::DropMidway { times } if *times > 1 => {
            Some(Some(Fault::DropMidway { times: times - 1 }))
        }
        Fault::Unavailable { times } if *times > 1 => {
            Some(Some(Fault::Unavailable { times: times - 1 }))
        }
        Fault::GzipIfAccepted { times } if *times > 1 => {
            Some(Some(Fault::GzipIfAccepted { times: times - 1 }))
        }
        Fault::DropMidway { .. } | Fault::Unavailable { .. } | Fault::GzipIfAccepted { .. } => {
            Some(None)
        }
        _ => None,
    }
}

fn read_request(conn: &TcpStream) -> Option<Seen> {
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut range = None;
    let mut accept_encoding = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 || header.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.trim().eq_ignore_ascii_case("range") {
                range = Some(value.trim().to_string());
            }
            if name.trim().eq_ignore_ascii_case("accept-encoding") {
                accept_encoding = Some(value.trim().to_string());
            }
        }
    }
    Some(Seen {
        method,
        path,
        range,
        accept_encoding,
    })
}

fn file_for(root: &Path, path: &str) -> Option<PathBuf> {
    let rel = path.trim_start_matches('/');
    if rel.split('/').any(|s| s == ".." || s.is_empty()) {
        return None;
    }
    let file = root.join(rel);
    file.is_file().then_some(file)
}

fn status(conn: &mut TcpStream, status: &str) {
    let _ = write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
}

/// Holds the connection open, sending nothing, until the client closes it.
fn hold(conn: &mut TcpStream, stop: &AtomicBool) {
    let mut sink = [0u8; 64];
    while !stop.load(Ordering::SeqCst) && matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
}

fn send_file(conn: &mut TcpStream, file: &Path, req: &Seen) {
    send_part(conn, file, req, usize::MAX);
}

/// Answers as `send_file` does (honouring `Range`) but sends at most `limit`
/// bytes of the body.
fn send_part(conn: &mut TcpStream, file: &Path, req: &Seen, limit: usize) {
    let body = std::fs::read(file).unwrap();
    let start = range_start(req);
    let (head, part) = match start {
        Some(s) if s < body.len() => (
            format!(
                "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {s}-{}/{}\r\nContent-Length: {}\r\n",
                body.len() - 1,
                body.len(),
                body.len() - s
            ),
            &body[s..],
        ),
        Some(_) => {
            status(conn, "416 Range Not Satisfiable");
            return;
        }
        None => (
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n", body.len()),
            &body[..],
        ),
    };
    let _ = write!(conn, "{head}Connection: close\r\n\r\n");
    if req.method != "HEAD" {
        let _ = conn.write_all(&part[..limit.min(part.len())]);
    }
}

/// The start of a `Range: bytes=N-` request.
fn range_start(req: &Seen) -> Option<usize> {
    req.range
        .as_deref()
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok())
}
