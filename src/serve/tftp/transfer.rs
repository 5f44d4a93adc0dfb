//! One read transfer on its own socket (its own TID, RFC 1350 §4): optional OACK
//! handshake, then DATA windows driven by [`Window`], retransmitting on timeout
//! up to a retry limit. The socket is connected to the client, so the kernel
//! drops datagrams from any other address or port.
use std::fs::File;
use std::io;
use std::net::UdpSocket;
use std::ops::RangeInclusive;
use std::time::Duration;

use super::options::Negotiated;
use super::packet::{self, Packet};
use super::window::{wire, AckOutcome, Window};
use super::{gso, sock};

/// How a transfer ended.
#[derive(Debug)]
pub(crate) enum Outcome {
    Complete,
    /// The client sent an ERROR (e.g. code 8 after a tsize probe): a normal end;
    /// its code goes to the transfer log.
    ClientError(u16),
    TimedOut,
    Io(io::Error),
}

impl Outcome {
    /// The `result=` word of the log line.
    pub(crate) fn label(&self) -> String {
        match self {
            Outcome::Complete => "ok".into(),
            Outcome::ClientError(code) => format!("aborted:{code}"),
            Outcome::TimedOut => "timeout".into(),
            Outcome::Io(err) => format!("error:{}", err.kind()),
        }
    }
}

/// The result of [`run`]: outcome and file bytes the client acknowledged.
#[derive(Debug)]
pub(crate) struct Report {
    pub outcome: Outcome,
    pub bytes: u64,
    /// Whether any ACK or ERROR came back from the client.
    pub heard: bool,
}

impl Report {
    /// Timed out without a single answer: the client never took this
    /// transfer (it took another, or went away).
    pub(crate) fn unanswered(&self) -> bool {
        matches!(self.outcome, Outcome::TimedOut) && !self.heard
    }
}

/// Serves `file` (`size` bytes) to the peer `sock` is connected to.
pub(crate) fn run(
    sock: &UdpSocket,
    file: &File,
    size: u64,
    neg: &Negotiated,
    retries: u32,
) -> Report {
    let ended = |outcome| Report {
        outcome,
        bytes: 0,
        heard: false,
    };
    if let Err(err) = sock.set_read_timeout(Some(neg.timeout)) {
        return ended(Outcome::Io(err));
    }
    if !neg.oack.is_empty() {
        let oack = packet::encode_oack(&neg.oack);
        if let Err(outcome) = handshake(sock, &oack, retries) {
            return ended(outcome);
        }
    }
    let mut window = Window::new(size, neg.blksize, neg.windowsize);
    let outcome = send_all(sock, file, size, neg.blksize, &mut window, retries);
    let bytes = (window.acked_blocks() * u64::from(neg.blksize)).min(size);
    Report {
        outcome,
        bytes,
        // The OACK's ACK 0, or an ACK of a block.
        heard: !neg.oack.is_empty() || window.acked_blocks() > 0,
    }
}

/// What arrived while waiting.
enum Event {
    Ack(u16),
    Error(u16),
    Timeout,
    Other,
}

fn wait(sock: &UdpSocket, buf: &mut [u8]) -> Result<Event, Outcome> {
    match sock.recv(buf) {
        Ok(n) => Ok(match packet::parse(&buf[..n]) {
            Ok(Packet::Ack(block)) => Event::Ack(block),
            Ok(Packet::Error { code, .. }) => Event::Error(code),
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
            Event::Error(code) => return Err(Outcome::ClientError(code)),
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
    let mut sender = Sender::new(sock, file, size, blksize);
    let mut buf = [0u8; 1024];
    let mut tries = 0;
    if let Err(err) = sender.send(window) {
        return abort(sock, err);
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
            Event::Error(code) => return Outcome::ClientError(code),
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
            if let Err(err) = sender.send(window) {
                return abort(sock, err);
            }
        }
    }
}

/// Ends a transfer the server cannot go on with (the file shrank or could not
/// be read, or sending failed) with an ERROR, so the client does not wait out
/// its timeouts (RFC 1350 section 7). Best effort: the socket may be what failed.
fn abort(sock: &UdpSocket, err: io::Error) -> Outcome {
    let message = if err.kind() == io::ErrorKind::UnexpectedEof {
        "file changed during the transfer"
    } else {
        "read error"
    };
    let _ = sock.send(&packet::encode_error(
        packet::ErrorCode::NotDefined,
        message,
    ));
    Outcome::Io(err)
}

/// A window's DATA packets laid out back to back (`4 + blksize` bytes each; the
/// last may be short or header-only), ready for one segmented send.
#[derive(Default)]
struct Records {
    span: Option<RangeInclusive<u64>>,
    bytes: Vec<u8>,
}

/// Buffers one vectored read may take (Linux's `IOV_MAX`).
const IOV_MAX: usize = 1024;

/// The file a transfer serves, read into DATA records window by window.
struct Blocks<'a> {
    file: &'a File,
    size: u64,
    blksize: u16,
}

impl Blocks<'_> {
    /// Reads `span`'s blocks into `records`: headers written in place, then one
    /// vectored read that scatters the file bytes into the records' payloads, so
    /// a window costs one system call and no buffer besides the records.
    fn fill(&self, records: &mut Records, span: RangeInclusive<u64>) -> io::Result<()> {
        records.span = None;
        let blksize = u64::from(self.blksize);
        let offset = (span.start() - 1) * blksize;
        let payload = |index: u64| {
            let start = (index - 1) * blksize;
            (index * blksize).min(self.size).saturating_sub(start) as usize
        };
        records.bytes.clear();
        for index in span.clone() {
            records
                .bytes
                .extend_from_slice(&packet::data_header(wire(index)));
            // The final block may be short or empty.
            records
                .bytes
                .resize(records.bytes.len() + payload(index), 0);
        }
        let mut slices: Vec<io::IoSliceMut<'_>> = Vec::with_capacity(span.clone().count());
        let mut rest = records.bytes.as_mut_slice();
        for index in span.clone() {
            let (record, after) = rest.split_at_mut(4 + payload(index));
            slices.push(io::IoSliceMut::new(&mut record[4..]));
            rest = after;
        }
        let mut slices = slices.as_mut_slice();
        let mut at = offset;
        while slices.iter().any(|slice| !slice.is_empty()) {
            let batch = slices.len().min(IOV_MAX);
            let n = rustix::io::preadv(self.file, &mut slices[..batch], at)?;
            if n == 0 {
                // The file is shorter than when the transfer began.
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
            io::IoSliceMut::advance_slices(&mut slices, n);
            at += n as u64;
        }
        records.span = Some(span);
        Ok(())
    }
}

/// Sends windows, reading the next one ahead: after a window goes out, the
/// blocks a full ACK leads to are read while the client is still receiving, so
/// the ACK is answered with a send alone. In lock step the client and server
/// otherwise take turns, and every microsecond the server spends between ACK and
/// send is throughput lost.
struct Sender<'a> {
    sock: &'a UdpSocket,
    blocks: Blocks<'a>,
    current: Records,
    ahead: Records,
    gso_ok: bool,
}

impl<'a> Sender<'a> {
    fn new(sock: &'a UdpSocket, file: &'a File, size: u64, blksize: u16) -> Sender<'a> {
        Sender {
            sock,
            blocks: Blocks {
                file,
                size,
                blksize,
            },
            current: Records::default(),
            ahead: Records::default(),
            gso_ok: true,
        }
    }

    /// Sends the window's blocks (again, after a timeout), then reads ahead.
    fn send(&mut self, window: &Window) -> io::Result<()> {
        let span = window.span();
        if self.current.span.as_ref() != Some(&span) {
            if self.ahead.span.as_ref() == Some(&span) {
                std::mem::swap(&mut self.current, &mut self.ahead);
            } else {
                self.blocks.fill(&mut self.current, span)?;
            }
        }
        self.transmit()?;
        match window.next_span() {
            Some(next) if self.ahead.span.as_ref() != Some(&next) => {
                self.blocks.fill(&mut self.ahead, next)
            }
            _ => Ok(()),
        }
    }

    /// Puts `current` on the wire: one segmented send ([`gso`]), or one
    /// sendmmsg where the kernel refuses segmentation.
    fn transmit(&mut self) -> io::Result<()> {
        let segment = 4 + usize::from(self.blocks.blksize);
        let data = &self.current.bytes;
        if self.gso_ok {
            match gso::send_records(self.sock, data, segment) {
                Ok(()) => return Ok(()),
                // Refused (old kernel, route without it): plain datagrams from now on.
                Err(err)
                    if matches!(
                        err.raw_os_error(),
                        Some(libc::EINVAL | libc::EIO | libc::ENOPROTOOPT | libc::EOPNOTSUPP)
                    ) =>
                {
                    self.gso_ok = false
                }
                Err(err) => return Err(err),
            }
        }
        let headers: Vec<[u8; 4]> = data
            .chunks(segment)
            .map(|rec| [rec[0], rec[1], rec[2], rec[3]])
            .collect();
        let payloads: Vec<&[u8]> = data.chunks(segment).map(|rec| &rec[4..]).collect();
        sock::send_batch(self.sock, &headers, &payloads)
    }
}

/// Default retransmission timeout when the client does not negotiate one.
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Retransmissions of one packet or window before a transfer is abandoned.
pub(crate) const RETRIES: u32 = 5;
