//! A TFTP download client for `benches/serve.sh`, so that the server, not the
//! client, is what the TFTP rows measure.
//!
//! atftp (the one Debian client with windowsize) spends two system calls per
//! block (pselect, then recvmsg), about 0.2 s of CPU per 64 MiB at blksize
//! 1468 here, which caps any server near 350 MB/s on loopback. This client
//! takes whatever datagrams are queued with one recvmmsg and acknowledges as
//! RFC 7440 says: after every `windowsize` blocks, after the last block, and
//! the last in-order block again after a gap or a timeout. It is written from
//! the RFCs (1350, 2347-2349, 7440) and shares no code with the server.
//!
//! Usage: tftp_get HOST:PORT FILE [--clients N] [--blksize B] [--windowsize W]
//!                 [--tsize] [--verify LOCAL_COPY] [--request-tries N]
//! Without `--windowsize` the request names no window size (as BIOS PXE ROMs
//! and lpxelinux ask); `--tsize` asks for the size as firmware does.
//! Prints `<MB/s> <windowsize the server agreed to>`; N transfers run at once
//! and MB/s is their total bytes over the wall time of all of them.
use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Datagrams taken per recvmmsg call.
const BATCH: usize = 64;
/// Timeouts in a row before a transfer is given up.
const RETRIES: u32 = 5;

/// Command line (see the top of this file).
#[derive(clap::Parser)]
struct Args {
    /// The server, e.g. 127.0.0.1:69.
    server: SocketAddr,
    /// The file to read.
    file: String,
    /// Transfers running at once.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Block size to ask for (RFC 2348).
    #[arg(long, default_value_t = 512)]
    blksize: u16,
    /// Window size to ask for (RFC 7440); none asked when absent.
    #[arg(long)]
    windowsize: Option<u16>,
    /// Ask for the transfer size (RFC 2349), as PXE firmware does.
    #[arg(long)]
    tsize: bool,
    /// Keep the data and compare it with this local copy.
    #[arg(long)]
    verify: Option<String>,
    /// Times the request is sent, one second apart, before the transfer
    /// counts as failed. A request answered only after a resend is noted on
    /// stderr (`answered after N requests, T s`), so a slow server shows
    /// even when nothing fails.
    #[arg(long, default_value_t = RETRIES, value_parser = clap::value_parser!(u32).range(1..))]
    request_tries: u32,
}

/// What one transfer brought back.
struct Received {
    bytes: u64,
    windowsize: u16,
    /// The file's bytes, kept only when asked to verify them.
    data: Vec<u8>,
}

fn request(args: &Args) -> Vec<u8> {
    let mut rrq = vec![0, 1];
    let blksize = args.blksize.to_string();
    let mut parts = vec![args.file.as_str(), "octet", "blksize", &blksize];
    if args.tsize {
        parts.extend(["tsize", "0"]);
    }
    let windowsize = args.windowsize.map(|w| w.to_string());
    if let Some(w) = &windowsize {
        parts.extend(["windowsize", w.as_str()]);
    }
    for part in parts {
        rrq.extend_from_slice(part.as_bytes());
        rrq.push(0);
    }
    rrq
}

/// Option values of an OACK body (`name\0value\0...`).
fn oack_option(body: &[u8], name: &str) -> Option<u16> {
    let mut parts = body.split(|&b| b == 0);
    while let (Some(key), Some(value)) = (parts.next(), parts.next()) {
        if key.eq_ignore_ascii_case(name.as_bytes()) {
            return std::str::from_utf8(value).ok()?.parse().ok();
        }
    }
    None
}

fn ack(sock: &UdpSocket, block: u16) -> io::Result<()> {
    let [hi, lo] = block.to_be_bytes();
    sock.send(&[0, 4, hi, lo]).map(drop)
}

/// Receives up to `bufs.len()` queued datagrams, waiting for the first one up
/// to the socket's timeout; returns their lengths.
fn recv_batch(sock: &UdpSocket, bufs: &mut [Vec<u8>], lens: &mut Vec<usize>) -> io::Result<()> {
    let mut iovs: Vec<libc::iovec> = bufs
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        })
        .collect();
    // SAFETY: mmsghdr is plain data; zero is a valid empty header.
    let mut msgs: Vec<libc::mmsghdr> = vec![unsafe { std::mem::zeroed() }; iovs.len()];
    for (msg, iov) in msgs.iter_mut().zip(iovs.iter_mut()) {
        msg.msg_hdr.msg_iov = iov;
        msg.msg_hdr.msg_iovlen = 1;
    }
    // SAFETY: every header points at one live iovec over a live buffer.
    let n = unsafe {
        libc::recvmmsg(
            sock.as_raw_fd(),
            msgs.as_mut_ptr(),
            msgs.len() as u32,
            libc::MSG_WAITFORONE,
            std::ptr::null_mut(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    lens.clear();
    lens.extend(msgs[..n as usize].iter().map(|m| m.msg_len as usize));
    Ok(())
}

fn transfer(args: &Args) -> Result<Received, String> {
    // Loopback for a loopback server, else whichever address routes to it.
    let local = if args.server.ip().is_loopback() {
        "127.0.0.1:0"
    } else {
        "0.0.0.0:0"
    };
    let sock = UdpSocket::bind(local).map_err(|e| e.to_string())?;
    // Room for bursts while this thread is descheduled (beyond rmem_max
    // only as root; otherwise the kernel's cap applies).
    let size: libc::c_int = 8 << 20;
    for option in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
        // SAFETY: a valid socket and a c_int option value.
        let rc = unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                option,
                (&size as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            )
        };
        if rc == 0 {
            break;
        }
    }
    sock.set_read_timeout(Some(Duration::from_secs(1)))
        .map_err(|e| e.to_string())?;

    let mut bufs: Vec<Vec<u8>> = vec![vec![0u8; usize::from(args.blksize) + 4]; BATCH];
    let mut lens = Vec::with_capacity(BATCH);
    // The request goes out again after each second without a reply, up to
    // `--request-tries` times, as PXE firmware and loaders retransmit it: a
    // busy server that answers late is slow, not failed. The reply comes from
    // the transfer's own port (its TID): talk to it only.
    let rrq = request(args);
    let mut tries = 0;
    let asked = Instant::now();
    let (n, tid) = loop {
        sock.send_to(&rrq, args.server).map_err(|e| e.to_string())?;
        match sock.recv_from(&mut bufs[0]) {
            Ok(reply) => break reply,
            Err(e)
                if tries + 1 < args.request_tries
                    && matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
            {
                tries += 1
            }
            Err(e) => return Err(format!("no reply to {} requests: {e}", tries + 1)),
        }
    };
    if tries > 0 {
        eprintln!(
            "tftp_get: {}: answered after {} requests, {:.1} s",
            args.file,
            tries + 1,
            asked.elapsed().as_secs_f64()
        );
    }
    sock.connect(tid).map_err(|e| e.to_string())?;
    let first = bufs[0][..n].to_vec();
    let mut got = Received {
        bytes: 0,
        windowsize: 1,
        data: Vec::new(),
    };
    let mut blksize = 512usize;
    let mut pending: Vec<Vec<u8>> = Vec::new();
    match first.get(..2) {
        Some([0, 6]) => {
            blksize = oack_option(&first[2..], "blksize").map_or(512, usize::from);
            got.windowsize = oack_option(&first[2..], "windowsize").unwrap_or(1);
            ack(&sock, 0).map_err(|e| e.to_string())?;
        }
        // No options understood: the first DATA block came at once.
        Some([0, 3]) => pending.push(first),
        _ => return Err(format!("unexpected reply {:?}", &first[..n.min(4)])),
    }

    let keep = args.verify.is_some();
    let mut last: u16 = 0; // last in-order block
    let mut acked: u16 = 0; // last block acknowledged
    let mut in_window: u16 = 0;
    let mut timeouts = 0;
    loop {
        if pending.is_empty() {
            match recv_batch(&sock, &mut bufs, &mut lens) {
                Ok(()) => timeouts = 0,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    timeouts += 1;
                    if timeouts > RETRIES {
                        return Err("timed out".into());
                    }
                    ack(&sock, last).map_err(|e| e.to_string())?;
                    acked = last;
                    in_window = 0;
                    continue;
                }
                Err(e) => return Err(e.to_string()),
            }
        } else {
            lens.clear();
            let packet = pending.pop().expect("one pending packet");
            bufs[0][..packet.len()].copy_from_slice(&packet);
            lens.push(packet.len());
        }
        for (buf, &len) in bufs.iter().zip(lens.iter()) {
            let packet = &buf[..len];
            match packet.get(..4) {
                Some([0, 3, hi, lo]) => {
                    let block = u16::from_be_bytes([*hi, *lo]);
                    if block != last.wrapping_add(1) {
                        // A duplicate, or a gap: RFC 7440 has the receiver ack
                        // the last block it has in order, once per gap.
                        if block != last && acked != last {
                            ack(&sock, last).map_err(|e| e.to_string())?;
                            acked = last;
                            in_window = 0;
                        }
                        continue;
                    }
                    last = block;
                    got.bytes += (len - 4) as u64;
                    if keep {
                        got.data.extend_from_slice(&packet[4..]);
                    }
                    in_window += 1;
                    if len - 4 < blksize {
                        ack(&sock, last).map_err(|e| e.to_string())?;
                        return Ok(got);
                    }
                    if in_window == got.windowsize {
                        ack(&sock, last).map_err(|e| e.to_string())?;
                        acked = last;
                        in_window = 0;
                    }
                }
                Some([0, 5, ..]) => {
                    let text = String::from_utf8_lossy(&packet[4..]);
                    return Err(format!("server error: {}", text.trim_end_matches('\0')));
                }
                _ => {}
            }
        }
    }
}

fn main() {
    // `cargo test --all-targets` runs bench targets without arguments: say
    // what this is and succeed, so the test command stays green.
    if std::env::args().len() == 1 {
        println!("tftp_get: a client for benches/serve.sh; see the top of benches/tftp_get.rs");
        return;
    }
    let args = <Args as clap::Parser>::parse();
    let start = Instant::now();
    let results: Vec<Result<Received, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..args.clients)
            .map(|_| scope.spawn(|| transfer(&args)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("client panicked".into())))
            .collect()
    });
    let seconds = start.elapsed().as_secs_f64();
    let mut total = 0u64;
    let mut windowsize = 0;
    for result in results {
        match result {
            Ok(got) => {
                if let Some(local) = &args.verify {
                    let want = std::fs::read(local).unwrap_or_else(|e| {
                        eprintln!("tftp_get: reading {local}: {e}");
                        std::process::exit(1);
                    });
                    if got.data != want {
                        eprintln!("tftp_get: {} differs from {local}", args.file);
                        std::process::exit(1);
                    }
                }
                total += got.bytes;
                windowsize = got.windowsize;
            }
            Err(e) => {
                eprintln!("tftp_get: {}: {e}", args.file);
                std::process::exit(1);
            }
        }
    }
    println!("{:.1} {windowsize}", total as f64 / seconds / 1e6);
}
