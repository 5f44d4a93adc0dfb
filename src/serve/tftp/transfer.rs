//! One read transfer on its own socket (its own TID, RFC 1350 §4): optional OACK
//! handshake, then DATA windows driven by [`Window`], retransmitting on timeout
//! up to a retry limit. The socket is connected to the client, so the kernel
//! drops datagrams from any other address or port.
use std::fs::File;
use std::io;
use std::net::UdpSocket;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use super::options::Negotiated;
use super::packet::{self, Packet};
use super::window::{wire, AckOutcome, Window};
use super::{gso, sock};

/// How a transfer ended.
#[derive(Debug)]
pub enum Outcome {
    Complete,
    /// The client sent an ERROR (e.g. code 8 after a tsize probe): a normal end.
    ClientError(u16, String),
    TimedOut,
    Io(io::Error),
}

impl Outcome {
    /// The `result=` word of the log line.
    pub fn label(&self) -> String {
        match self {
            Outcome::Complete => "ok".into(),
            Outcome::ClientError(code, _) => format!("aborted:{code}"),
            Outcome::TimedOut => "timeout".into(),
            Outcome::Io(err) => format!("error:{}", err.kind()),
        }
    }
}

/// The result of [`run`]: outcome and file bytes the client acknowledged.
#[derive(Debug)]
pub struct Report {
    pub outcome: Outcome,
    pub bytes: u64,
}

/// Serves `file` (`size` bytes) to the peer `sock` is connected to.
pub fn run(sock: &UdpSocket, file: &File, size: u64, neg: &Negotiated, retries: u32) -> Report {
    if let Err(err) = sock.set_read_timeout(Some(neg.timeout)) {
        return Report {
            outcome: Outcome::Io(err),
            bytes: 0,
        };
    }
    if !neg.oack.is_empty() {
        let oack = packet::encode_oack(&neg.oack);
        if let Err(outcome) = handshake(sock, &oack, retries) {
            return Report { outcome, bytes: 0 };
        }
    }
    let mut window = Window::new(size, neg.blksize, neg.windowsize);
    let outcome = send_all(sock, file, size, neg.blksize, &mut window, retries);
    let bytes = (window.acked_blocks() * u64::from(neg.blksize)).min(size);
    Report { outcome, bytes }
}

/// What arrived while waiting.
enum Event {
    Ack(u16),
    Error(u16, String),
    Timeout,
    Other,
}

fn wait(sock: &UdpSocket, buf: &mut [u8]) -> Result<Event, Outcome> {
    match sock.recv(buf) {
        Ok(n) => Ok(match packet::parse(&buf[..n]) {
            Ok(Packet::Ack(block)) => Event::Ack(block),
            Ok(Packet::Error { code, message }) => Event::Error(code, message),
            _ => Event::Other,
        }),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(Event::Timeout)
        }
        // ICMP port unreachable: the client is gone.
        Err(e) => Err(Outcome::Io(e)),
    }
}

fn handshake(sock: &UdpSocket, oack: &[u8], retries: u32) -> Result<(), Outcome> {
    let mut buf = [0u8; 1024];
    let mut tries = 0;
    sock.send(oack).map_err(Outcome::Io)?;
    loop {
        match wait(sock, &mut buf)? {
            Event::Ack(0) => return Ok(()),
            Event::Error(code, message) => return Err(Outcome::ClientError(code, message)),
            Event::Timeout => {
                tries += 1;
                if tries > retries {
                    return Err(Outcome::TimedOut);
                }
                sock.send(oack).map_err(Outcome::Io)?;
            }
            Event::Ack(_) | Event::Other => {}
        }
    }
}

fn send_all(
    sock: &UdpSocket,
    file: &File,
    size: u64,
    blksize: u16,
    window: &mut Window,
    retries: u32,
) -> Outcome {
    let mut data = Vec::new();
    let mut buf = [0u8; 1024];
    let mut tries = 0;
    let mut gso_ok = true;
    let mut send =
        |window: &Window| send_window(sock, file, size, blksize, window, &mut data, &mut gso_ok);
    if let Err(err) = send(window) {
        return Outcome::Io(err);
    }
    loop {
        let event = match wait(sock, &mut buf) {
            Ok(event) => event,
            Err(outcome) => return outcome,
        };
        let resend = match event {
            Event::Ack(block) => match window.on_ack(block) {
                AckOutcome::Done => return Outcome::Complete,
                AckOutcome::Send => {
                    tries = 0;
                    true
                }
                AckOutcome::Ignore => false,
            },
            Event::Error(code, message) => return Outcome::ClientError(code, message),
            Event::Timeout => {
                tries += 1;
                if tries > retries {
                    return Outcome::TimedOut;
                }
                true
            }
            Event::Other => false,
        };
        if resend {
            if let Err(err) = send(window) {
                return Outcome::Io(err);
            }
        }
    }
}

/// Sends every block of the window: the DATA packets are laid out back to back
/// in `data` and go out in one segmented send ([`gso`]), or by one sendmmsg
/// where the kernel refuses segmentation.
fn send_window(
    sock: &UdpSocket,
    file: &File,
    size: u64,
    blksize: u16,
    window: &Window,
    data: &mut Vec<u8>,
    gso_ok: &mut bool,
) -> io::Result<()> {
    let span = window.span();
    let offset = (span.start() - 1) * u64::from(blksize);
    let len = (span.end() * u64::from(blksize))
        .min(size)
        .saturating_sub(offset) as usize;
    let blocks = (span.end() - span.start() + 1) as usize;
    let segment = 4 + usize::from(blksize);
    // The window as DATA packets back to back; the last block may be short or
    // empty, so the buffer ends with a short (maybe header-only) record.
    data.resize(
        (blocks - 1) * segment + 4 + (len - (blocks - 1) * usize::from(blksize)),
        0,
    );
    for (i, index) in span.clone().enumerate() {
        let at = i * segment;
        packet::write_data_header(&mut data[at..at + 4], wire(index));
        let start = at + 4;
        let end = (start + usize::from(blksize)).min(data.len());
        let file_at = offset + (i * usize::from(blksize)) as u64;
        file.read_exact_at(&mut data[start..end], file_at)?;
    }
    if *gso_ok {
        match gso::send_records(sock, data, segment) {
            Ok(()) => return Ok(()),
            // Refused (old kernel, route without it): plain datagrams from now on.
            Err(err)
                if matches!(
                    err.raw_os_error(),
                    Some(libc::EINVAL | libc::EIO | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
                ) =>
            {
                *gso_ok = false
            }
            Err(err) => return Err(err),
        }
    }
    let headers: Vec<[u8; 4]> = data
        .chunks(segment)
        .map(|rec| [rec[0], rec[1], rec[2], rec[3]])
        .collect();
    let payloads: Vec<&[u8]> = data.chunks(segment).map(|rec| &rec[4..]).collect();
    sock::send_batch(sock, &headers, &payloads)
}

/// Default retransmission timeout when the client does not negotiate one.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Retransmissions of one packet or window before a transfer is abandoned.
pub const RETRIES: u32 = 5;
