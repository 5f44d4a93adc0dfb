//! One HTTP connection: read a head, answer it, repeat while keep-alive holds.
//! Every answered request ends in one transfer log line.
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::file_reply;
use super::request::{self, HeadError, Request};
use super::response;
use crate::serve::log::Entry;
use crate::serve::root::{Opened, Refusal};
use crate::serve::{BusyGuard, Shared};

/// Largest request body read and discarded (beacons may POST a little JSON).
const MAX_BODY: u64 = 64 * 1024;
/// Time allowed for a whole request head once its first byte arrived.
const HEAD_LIMIT: Duration = Duration::from_secs(10);

/// The next request head on `stream`, or `None` when the connection is done:
/// the client went away, or a malformed head was answered with its status.
/// Shared with the admin listener, so both read heads under the same limits.
pub(crate) fn next_head(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    idle: Duration,
) -> Option<Request> {
    match request::read_head(stream, buf, idle, HEAD_LIMIT) {
        Ok(req) => Some(req),
        Err(HeadError::Gone) => None,
        Err(HeadError::Status(status)) => {
            let _ = response::simple(stream, status, false, false, &[]);
            None
        }
    }
}

pub(crate) fn serve_connection(mut stream: TcpStream, shared: &Shared) {
    let Some(peer) = peer_of(&stream) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(shared.config.http_timeout));
    let mut buf = Vec::new();
    loop {
        let Some(req) = next_head(&mut stream, &mut buf, shared.config.http_timeout) else {
            return;
        };
        let _busy = BusyGuard::new(&shared.busy);
        let keep = answer(&mut stream, &mut buf, peer, &req, shared);
        if !keep || shared.shutdown.load(Ordering::SeqCst) {
            return;
        }
    }
}

/// The client's address; IPv4 clients of a dual-stack listener are logged
/// and matched as IPv4.
pub(crate) fn peer_of(stream: &TcpStream) -> Option<SocketAddr> {
    let peer = stream.peer_addr().ok()?;
    Some(SocketAddr::new(peer.ip().to_canonical(), peer.port()))
}

/// Answers one request; returns whether the connection may stay open.
fn answer(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    peer: SocketAddr,
    req: &Request,
    shared: &Shared,
) -> bool {
    let started = Instant::now();
    let mut keep = req.keep_alive();
    if !discard_body(stream, buf, req) {
        keep = false;
    }
    let mac = req.cookie.as_deref().and_then(request::syslinux_mac);
    let node = shared.node_for(peer.ip(), mac.as_deref());
    let mut entry = Entry {
        proto: "http",
        client: Some(peer),
        node: node.as_deref(),
        ..Entry::default()
    };
    let Some(path) = request::decode_path(&req.target) else {
        entry.path = Some(&req.target);
        return reply(stream, shared, &mut entry, 400, false, req, &[]);
    };
    if path.starts_with("/beacon/") {
        return answer_beacon(stream, shared, &mut entry, &path[1..], req, keep);
    }
    // Logged as the manifest spells paths (`http/…`), like the files it serves.
    let logged = format!("{}{path}", crate::layout::HTTP);
    entry.path = Some(&logged);
    if super::oci::is_oci(&path) {
        let mac = mac.as_deref();
        return super::oci::answer(
            stream,
            shared,
            &mut entry,
            &path[1..],
            req,
            keep,
            mac,
            started,
        );
    }
    if req.method != "GET" && req.method != "HEAD" {
        return reply(
            stream,
            shared,
            &mut entry,
            405,
            keep,
            req,
            &[("Allow", "GET, HEAD")],
        );
    }
    let opened = match shared.http_root.open(&path[1..]) {
        Ok(opened) => opened,
        Err(refusal) => {
            let status = match refusal {
                Refusal::NotFound | Refusal::NotAFile => 404,
                _ => 403,
            };
            let result = format!("refused:{}", refusal.as_str());
            entry.result = if status == 404 { "not-found" } else { &result };
            return reply(stream, shared, &mut entry, status, keep, req, &[]);
        }
    };
    let verdict = shared.judge(crate::layout::HTTP, &opened, peer.ip(), mac.as_deref());
    entry.node = verdict.node.as_deref().or(entry.node);
    entry.path = Some(&verdict.path);
    if let Some(owner) = &verdict.refused {
        let result = format!("refused:belongs-to-{}", owner.node);
        entry.result = &result;
        return reply(stream, shared, &mut entry, 403, keep, req, &[]);
    }
    let (keep, result) = send(stream, req, &opened, keep, &mut entry);
    entry.ms = started.elapsed().as_millis();
    entry.result = &result;
    shared.log.write(&entry);
    keep
}

/// Writes a small response and its log line.
fn reply(
    stream: &mut TcpStream,
    shared: &Shared,
    entry: &mut Entry<'_>,
    status: u16,
    keep: bool,
    req: &Request,
    extra: &[(&str, &str)],
) -> bool {
    let written = response::simple(stream, status, keep, req.method == "HEAD", extra);
    entry.status = Some(status);
    if entry.result.is_empty() {
        entry.result = if status < 400 { "ok" } else { "refused" };
    }
    shared.log.write(entry);
    keep && written.is_ok()
}

/// `/beacon/<node>/<milestone>`: 204 and a milestone line in the log.
fn answer_beacon<'a>(
    stream: &mut TcpStream,
    shared: &Shared,
    entry: &mut Entry<'a>,
    beacon: &'a str,
    req: &Request,
    keep: bool,
) -> bool {
    entry.path = Some(beacon);
    let beacon = &beacon["beacon/".len()..];
    let token = |s: &str| {
        !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    let parts: Vec<&str> = beacon.split('/').collect();
    let (node, milestone) = match parts.as_slice() {
        [node, milestone] if token(node) && token(milestone) => (*node, *milestone),
        _ => {
            entry.result = "refused:bad-beacon";
            return reply(stream, shared, entry, 404, keep, req, &[]);
        }
    };
    if !matches!(req.method.as_str(), "GET" | "HEAD" | "POST" | "PUT") {
        return reply(
            stream,
            shared,
            entry,
            405,
            keep,
            req,
            &[("Allow", "GET, HEAD, POST, PUT")],
        );
    }
    let nodes = shared.nodes();
    let peer = entry.client.map(|c| c.ip());
    match (nodes.ip_of(node), peer) {
        (None, _) => {
            // A timeline for a name the manifest does not know would only mislead.
            entry.result = "refused:unknown-node";
            return reply(stream, shared, entry, 404, keep, req, &[]);
        }
        (Some(ip), Some(peer)) if ip != peer.to_canonical() => {
            // Same rule as the node's Ignition: only the node's own address may
            // write its timeline, so `--status` cannot be spoofed from the rack.
            if nodes.ip_check() {
                let result = format!("refused:belongs-to-{node}");
                let mut refused = Entry {
                    result: &result,
                    ..entry.clone()
                };
                return reply(stream, shared, &mut refused, 403, keep, req, &[]);
            }
            crate::verbose!("beacon for {node} from {peer}, accepted: --no-ip-check is set");
        }
        _ => {}
    }
    entry.path = None;
    entry.node = Some(node);
    entry.milestone = Some(milestone);
    let detail = crate::serve::detail::from_target(&req.target);
    let mut logged = Entry {
        detail: detail.as_deref(),
        ..entry.clone()
    };
    reply(stream, shared, &mut logged, 204, keep, req, &[])
}

/// Reads and drops a small request body so the next request parses; false when
/// the body cannot be skipped (chunked, too large, stalled): close afterwards.
fn discard_body(stream: &mut TcpStream, buf: &mut Vec<u8>, req: &Request) -> bool {
    if req.chunked {
        return false;
    }
    let len = req.content_length.unwrap_or(0);
    if len > MAX_BODY {
        return false;
    }
    let in_buf = (len as usize).min(buf.len());
    buf.drain(..in_buf);
    let rest = len - in_buf as u64;
    rest == 0 || io::copy(&mut Read::by_ref(stream).take(rest), &mut io::sink()).ok() == Some(rest)
}

/// Sends the file (or the requested range of it); returns (keep-alive, result).
fn send(
    stream: &mut TcpStream,
    req: &Request,
    opened: &Opened,
    keep: bool,
    entry: &mut Entry<'_>,
) -> (bool, String) {
    let content_type = response::content_type(&opened.rel);
    file_reply::send_with(stream, req, opened, keep, entry, content_type, &[])
}
