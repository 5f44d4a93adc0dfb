//! HTTP/1.1 (and 1.0), read-only: GET and HEAD of regular files with exact
//! Content-Length, single byte ranges, conditional requests, keep-alive,
//! `/beacon/<node>/<milestone>`, and the OCI pull API under `/v2/`.
//!
//! One thread per connection with a small stack, capped at
//! `max_http_connections`; every read and write has a timeout, so idle or stalled
//! clients cost a sleeping thread for a bounded time and never a worker another
//! client is waiting for. [`conn`] handles a connection, [`request`] reads heads,
//! [`conditional`] evaluates the `If-*` fields, [`range`] evaluates Range,
//! [`response`] writes (sendfile for bodies), [`oci`] answers pulls.
pub mod conditional;
pub(crate) mod conn;
mod file_reply;
pub mod oci;
pub mod range;
pub mod request;
pub(crate) mod response;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::Result;

use crate::serve::Shared;

pub(crate) fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr)
}

/// Accepts connections until the listener is shut down.
pub(crate) fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let open = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if shared.shutdown.load(Ordering::SeqCst) {
            break;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(err) => {
                // EMFILE and friends: back off briefly instead of spinning.
                crate::warn!("http: accept: {err}");
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if let Err(err) = start(stream, &shared, &open) {
            crate::warn!("http: cannot start a connection thread: {err}");
        }
    }
}

fn start(stream: TcpStream, shared: &Arc<Shared>, open: &Arc<AtomicUsize>) -> Result<()> {
    if open.load(Ordering::SeqCst) >= shared.config.max_http_connections {
        refuse_busy(stream, shared);
        return Ok(());
    }
    open.fetch_add(1, Ordering::SeqCst);
    let shared = shared.clone();
    let counter = open.clone();
    let spawned = thread::Builder::new()
        .name("http-conn".into())
        .stack_size(128 * 1024)
        .spawn(move || {
            conn::serve_connection(stream, &shared);
            counter.fetch_sub(1, Ordering::SeqCst);
        });
    if spawned.is_err() {
        open.fetch_sub(1, Ordering::SeqCst);
    }
    spawned.map(drop).map_err(Into::into)
}

/// Over the connection cap: a quick 503 without reading the request, and a
/// log line, so a node that failed to boot shows why.
fn refuse_busy(mut stream: TcpStream, shared: &Shared) {
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let _ = response::simple(&mut stream, 503, false, false, &[("Retry-After", "1")]);
    let client = conn::peer_of(&stream);
    let node = client.and_then(|peer| shared.node_for(peer.ip(), None));
    shared.log.write(&crate::serve::log::Entry {
        proto: "http",
        client,
        node: node.as_deref(),
        status: Some(503),
        result: "refused:busy",
        ..Default::default()
    });
}
