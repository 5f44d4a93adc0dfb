//! The TFTP listener: receives requests on the well-known port and hands each to
//! its own thread and socket, bound to the address the request arrived on, so one
//! slow or vanished client never holds up another. Write requests and malformed
//! datagrams get an ERROR packet; every request ends in one log line.
//!
//! A request repeated from the same client port while its first transfer runs
//! (boot ROMs resend an RRQ whose answer is slow; OVMF asks again right after
//! its tsize probe) starts a transfer of its own, as tftpd-hpa does: the server
//! cannot know which answer the client took, and dropping or cancelling either
//! one can strand the client. The client talks to one of them; the other, never
//! answered, ends with `result=duplicate` instead of a timeout, so the node's
//! log shows no failure that did not happen.
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Result;

use super::options::{self, Limits};
use super::packet::{self, ErrorCode, Mode, Packet, Request};
use super::{sock, transfer};
use crate::serve::log::Entry;
use crate::serve::root::Refusal;
use crate::serve::{BusyGuard, Shared};

/// How often the receive loop looks at the shutdown flag.
const POLL: Duration = Duration::from_millis(200);

/// Receive buffer asked for on the request port. A rack powering on sends its
/// requests in a burst; the default (about 208 KiB, some 700 small requests
/// counting the kernel's overhead) dropped two thirds of a burst of 1100.
const REQUEST_BUFFER: usize = 4 << 20;

pub(crate) fn bind(addr: SocketAddr) -> Result<UdpSocket> {
    let sock = UdpSocket::bind(addr)?;
    // Root (before dropping privileges) may exceed net.core.rmem_max; others
    // get what the limit allows, which is still no less than the default.
    if rustix::net::sockopt::set_socket_recv_buffer_size_force(&sock, REQUEST_BUFFER).is_err() {
        let _ = rustix::net::sockopt::set_socket_recv_buffer_size(&sock, REQUEST_BUFFER);
    }
    sock::enable_pktinfo(&sock)?;
    sock.set_read_timeout(Some(POLL))?;
    Ok(sock)
}

/// Receives requests until shutdown.
pub(crate) fn serve(listener: UdpSocket, shared: Arc<Shared>) {
    let listen_ip = listener.local_addr().map(|a| a.ip()).ok();
    let mut buf = vec![0u8; 65_536];
    let sessions = Arc::new(Sessions::default());
    while !shared.shutdown.load(Ordering::SeqCst) {
        let got = match sock::recv_with_local(&listener, &mut buf) {
            Ok(got) => got,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                crate::warn!("tftp: receiving: {e}");
                continue;
            }
        };
        let local = got
            .local
            .or(listen_ip)
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        let datagram = buf[..got.len].to_vec();
        start_session(&listener, &shared, &sessions, datagram, got.peer, local);
    }
}

/// Running sessions: how many in all, and per client endpoint the requests
/// seen while any of its sessions runs. One lock, so the cap and the
/// per-endpoint counts always agree.
#[derive(Default)]
struct Sessions {
    table: Mutex<Table>,
}

#[derive(Default)]
struct Table {
    live: usize,
    peers: HashMap<SocketAddr, Endpoint>,
}

#[derive(Default)]
struct Endpoint {
    live: usize,
    requests: u64,
}

impl Sessions {
    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a datagram from `peer` that starts a session, unless `max`
    /// sessions run already; returns the number of requests (RRQ, WRQ) from
    /// that endpoint so far, and whether another of its sessions was running.
    fn arrive(&self, peer: SocketAddr, request: bool, max: usize) -> Option<(u64, bool)> {
        let mut table = self.table();
        if table.live >= max {
            return None;
        }
        table.live += 1;
        let endpoint = table.peers.entry(peer).or_default();
        let overlapped = endpoint.live > 0;
        endpoint.live += 1;
        endpoint.requests += u64::from(request);
        Some((endpoint.requests, overlapped))
    }

    /// Whether `peer` sent another request after request number `nth`.
    fn asked_again(&self, peer: SocketAddr, nth: u64) -> bool {
        self.table()
            .peers
            .get(&peer)
            .is_some_and(|e| e.requests > nth)
    }

    fn leave(&self, peer: SocketAddr) {
        let mut table = self.table();
        table.live -= 1;
        if let Some(endpoint) = table.peers.get_mut(&peer) {
            endpoint.live -= 1;
            if endpoint.live == 0 {
                table.peers.remove(&peer);
            }
        }
    }
}

/// A running session's place in [`Sessions`], given back when it ends.
struct Running<'a> {
    sessions: &'a Sessions,
    peer: SocketAddr,
    nth: u64,
    /// Another session from the same endpoint was running when this began.
    overlapped: bool,
}

impl Running<'_> {
    /// Whether the client sent this request again, or this is the repeat:
    /// either way one of the two transfers is the one it does not take.
    fn repeated(&self) -> bool {
        self.overlapped || self.sessions.asked_again(self.peer, self.nth)
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        self.sessions.leave(self.peer);
    }
}

fn start_session(
    listener: &UdpSocket,
    shared: &Arc<Shared>,
    sessions: &Arc<Sessions>,
    datagram: Vec<u8>,
    peer: SocketAddr,
    local: IpAddr,
) {
    let max = shared.config.max_tftp_sessions;
    let Some((nth, overlapped)) = sessions.arrive(peer, is_request(&datagram), max) else {
        let reply = packet::encode_error(ErrorCode::NotDefined, "server busy, try again");
        let _ = listener.send_to(&reply, peer);
        log_busy(shared, &datagram, peer);
        return;
    };
    let (shared, sessions_in_thread) = (shared.clone(), sessions.clone());
    let spawned = thread::Builder::new()
        .name("tftp-session".into())
        .stack_size(256 * 1024)
        .spawn(move || {
            let _busy = BusyGuard::new(&shared.busy);
            let running = Running {
                sessions: &sessions_in_thread,
                peer,
                nth,
                overlapped,
            };
            session(&shared, &datagram, peer, local, &running);
        });
    if let Err(err) = spawned {
        sessions.leave(peer);
        crate::warn!("tftp: cannot start a session thread: {err}");
    }
}

/// Over the session cap: the refused request's log line, so a node that
/// failed to boot shows why.
fn log_busy(shared: &Shared, datagram: &[u8], peer: SocketAddr) {
    let path = match packet::parse(datagram) {
        Ok(Packet::Rrq(req) | Packet::Wrq(req)) => Some(logged_path(&req.filename)),
        _ => None,
    };
    let node = shared.node_for(peer.ip(), None);
    shared.log.write(&Entry {
        proto: "tftp",
        client: Some(peer),
        node: node.as_deref(),
        path: path.as_deref(),
        result: "refused:busy",
        ..Entry::default()
    });
}

/// A requested name as the log spells paths: as the manifest does
/// (`tftp/…`), the name verbatim after it (refused names too).
fn logged_path(filename: &str) -> String {
    crate::layout::tftp_path(filename)
}

/// A read or write request, by its opcode.
fn is_request(datagram: &[u8]) -> bool {
    matches!(datagram, [0, 1 | 2, ..])
}

/// One request, start to finish, on a fresh socket (the transfer's TID).
fn session(shared: &Shared, datagram: &[u8], peer: SocketAddr, local: IpAddr, running: &Running) {
    let started = Instant::now();
    let (peer, local) = (sock::unmap(peer), local.to_canonical());
    let sock = match UdpSocket::bind(SocketAddr::new(local, 0))
        .and_then(|s| s.connect(peer).map(|()| s))
    {
        Ok(sock) => sock,
        Err(err) => {
            crate::warn!("tftp: socket for {peer} from {local}: {err}");
            return;
        }
    };
    let mut entry = Entry {
        proto: "tftp",
        client: Some(peer),
        ..Entry::default()
    };
    let node = shared.node_for(peer.ip(), None);
    entry.node = node.as_deref();
    match packet::parse(datagram) {
        Ok(Packet::Rrq(req)) => read_request(shared, &sock, peer, &req, started, running),
        Ok(Packet::Wrq(req)) => {
            reply_error(&sock, ErrorCode::AccessViolation, "read-only server");
            let logged = logged_path(&req.filename);
            let refused = Entry {
                path: Some(&logged),
                result: "refused:write",
                ..entry
            };
            shared.log.write(&refused);
        }
        // A stray ERROR (e.g. an abort sent to the wrong port) needs no answer.
        Ok(Packet::Error { .. }) => {}
        Ok(_) => reply_error(
            &sock,
            ErrorCode::IllegalOperation,
            "expected a read request",
        ),
        Err(err) => {
            reply_error(
                &sock,
                ErrorCode::IllegalOperation,
                &format!("malformed request: {err}"),
            );
            entry.result = "malformed";
            shared.log.write(&entry);
        }
    }
}

fn reply_error(sock: &UdpSocket, code: ErrorCode, message: &str) {
    let _ = sock.send(&packet::encode_error(code, message));
}

fn read_request(
    shared: &Shared,
    sock: &UdpSocket,
    peer: SocketAddr,
    req: &Request,
    started: Instant,
    running: &Running,
) {
    let mac = crate::layout::mac_from_pxelinux_name(&req.filename);
    let fallback_node = shared.node_for(peer.ip(), mac.as_deref());
    let logged = logged_path(&req.filename);
    let mut entry = Entry {
        proto: "tftp",
        client: Some(peer),
        node: fallback_node.as_deref(),
        path: Some(&logged),
        ..Entry::default()
    };
    if req.mode == Mode::Mail {
        reply_error(
            sock,
            ErrorCode::IllegalOperation,
            "mail mode is not supported",
        );
        entry.result = "refused:mail-mode";
        return shared.log.write(&entry);
    }
    let opened = match shared.tftp_root.open(&req.filename) {
        Ok(opened) => opened,
        Err(refusal) => {
            let (code, text) = match refusal {
                Refusal::NotFound | Refusal::NotAFile => {
                    (ErrorCode::FileNotFound, "file not found")
                }
                _ => (ErrorCode::AccessViolation, "access violation"),
            };
            reply_error(sock, code, text);
            let result = format!("refused:{}", refusal.as_str());
            entry.result = if refusal == Refusal::NotFound {
                "not-found"
            } else {
                &result
            };
            return shared.log.write(&entry);
        }
    };
    let verdict = shared.judge(crate::layout::TFTP, &opened, peer.ip(), mac.as_deref());
    entry.node = verdict.node.as_deref();
    entry.path = Some(&verdict.path);
    if let Some(owner) = &verdict.refused {
        reply_error(sock, ErrorCode::AccessViolation, "access violation");
        let result = format!("refused:belongs-to-{}", owner.node);
        entry.result = &result;
        return shared.log.write(&entry);
    }
    let neg = options::negotiate(&req.options, &limits(shared, sock), opened.size);
    let report = transfer::run(sock, &opened.file, opened.size, &neg, transfer::RETRIES);
    let result = if report.unanswered() && running.repeated() {
        "duplicate".to_string()
    } else {
        report.outcome.label()
    };
    entry.bytes = report.bytes;
    entry.ms = started.elapsed().as_millis();
    entry.result = &result;
    shared.log.write(&entry);
}

/// Server limits for this transfer: blksize never above what fits the path MTU.
fn limits(shared: &Shared, sock: &UdpSocket) -> Limits {
    let ipv6 = matches!(sock.local_addr(), Ok(SocketAddr::V6(_)));
    let mtu_cap = sock::path_mtu(sock).map_or(1468, |mtu| sock::blksize_for_mtu(mtu, ipv6));
    Limits {
        blksize_max: shared.config.tftp_blksize_max.min(mtu_cap),
        windowsize_max: shared.config.tftp_windowsize_max,
        default_timeout: transfer::DEFAULT_TIMEOUT,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_cap_and_count_repeats_per_endpoint() {
        let sessions = Sessions::default();
        let a: SocketAddr = "10.0.0.11:2000".parse().unwrap();
        let b: SocketAddr = "10.0.0.12:2000".parse().unwrap();
        assert_eq!(sessions.arrive(a, true, 2), Some((1, false)));
        // The same endpoint asks again while its first transfer runs.
        assert_eq!(sessions.arrive(a, true, 2), Some((2, true)));
        assert!(sessions.asked_again(a, 1) && !sessions.asked_again(a, 2));
        assert_eq!(sessions.arrive(b, true, 2), None, "at the cap");
        sessions.leave(a);
        assert_eq!(sessions.arrive(b, true, 2), Some((1, false)));
        sessions.leave(a);
        sessions.leave(b);
        assert_eq!(sessions.table().live, 0);
        assert!(
            sessions.table().peers.is_empty(),
            "ended endpoints are forgotten"
        );
        // A datagram that is not a request starts a session without counting.
        assert_eq!(sessions.arrive(a, false, 2), Some((0, false)));
    }
}
