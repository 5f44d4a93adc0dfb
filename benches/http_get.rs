//! An HTTP download client for `benches/serve.sh`, so that the servers, not
//! the clients, are what the HTTP rows measure.
//!
//! On loopback the data is copied once, by the receiver: 32 curl processes
//! copying 2-3 GB/s out of their sockets take most of two cores, and every
//! server then measures the same. This client moves the body from the socket
//! to /dev/null with splice(2) through a 1 MiB pipe, which hands the kernel's pages
//! along without copying them, so the rest of the CPU is left to the server and
//! the TCP stack. It speaks just enough HTTP/1.1 for one GET per connection.
//!
//! Usage: http_get HOST:PORT PATH [--clients N] [--repeat K] [--verify LOCAL_COPY]
//! Prints the total MB/s of N clients running at once, each downloading K
//! times in turn (with `--verify`, the bodies are read normally and compared
//! byte for byte with LOCAL_COPY).
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::time::Instant;

/// Command line (see the top of this file).
#[derive(clap::Parser)]
struct Args {
    /// The server, e.g. 127.0.0.1:8080.
    server: SocketAddr,
    /// The path to GET.
    path: String,
    /// Downloads running at once.
    #[arg(long, default_value_t = 1)]
    clients: usize,
    /// Downloads each client makes in turn.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Read bodies normally and compare them with this local copy.
    #[arg(long)]
    verify: Option<String>,
}

/// Reads the response head; returns the body bytes that came with it and the
/// Content-Length.
fn read_head(stream: &mut TcpStream) -> Result<(Vec<u8>, u64), String> {
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let end = loop {
        let n = stream.read(&mut chunk).map_err(|e| e.to_string())?;
        if n == 0 {
            return Err("connection closed before the head ended".into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 64 * 1024 {
            return Err("response head too long".into());
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!(
            "unexpected status: {}",
            head.lines().next().unwrap_or("")
        ));
    }
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<u64>().ok())?
        })
        .ok_or("no Content-Length")?;
    Ok((buf[end..].to_vec(), length))
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` has room for the two descriptors pipe2 writes.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nobody else.
    let pipe = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // A pipe holds 16 pages by default, so each splice moved at most 64 KiB
    // and the client's own calls capped the fastest servers (measured: a
    // minimal sendfile server 6.0 GB/s with 32 clients through 64 KiB pipes,
    // 8.9 GB/s through 1 MiB ones). 1 MiB is the default pipe-max-size, so an
    // unprivileged client may ask for it; if refused, the default stays.
    // SAFETY: F_SETPIPE_SZ on a pipe descriptor we own.
    unsafe { libc::fcntl(pipe.1.as_raw_fd(), libc::F_SETPIPE_SZ, PIPE_BYTES) };
    Ok(pipe)
}

/// The pipe size asked for (see `pipe`).
const PIPE_BYTES: libc::c_int = 1 << 20;

/// Moves `len` bytes from `from` to `to` through `pipe` without copying.
fn splice_all(from: RawFd, to: RawFd, pipe: &(OwnedFd, OwnedFd), mut len: u64) -> io::Result<()> {
    const TURN: usize = PIPE_BYTES as usize;
    while len > 0 {
        // SAFETY: plain file descriptors, null offsets (streams).
        let n = unsafe {
            libc::splice(
                from,
                std::ptr::null_mut(),
                pipe.1.as_raw_fd(),
                std::ptr::null_mut(),
                (len as usize).min(TURN),
                libc::SPLICE_F_MOVE,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let mut left = n as usize;
        while left > 0 {
            // SAFETY: as above.
            let m = unsafe {
                libc::splice(
                    pipe.0.as_raw_fd(),
                    std::ptr::null_mut(),
                    to,
                    std::ptr::null_mut(),
                    left,
                    libc::SPLICE_F_MOVE,
                )
            };
            if m <= 0 {
                return Err(io::Error::last_os_error());
            }
            left -= m as usize;
        }
        len -= n as u64;
    }
    Ok(())
}

/// One GET; returns the body's length, and the body itself when verifying.
fn download(args: &Args) -> Result<(u64, Vec<u8>), String> {
    let mut stream = TcpStream::connect(args.server).map_err(|e| e.to_string())?;
    let request = format!(
        "GET /{} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        args.path.trim_start_matches('/'),
        args.server
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let (mut early, length) = read_head(&mut stream)?;
    let rest = length - early.len() as u64;
    if args.verify.is_some() {
        let mut body = std::mem::take(&mut early);
        body.reserve(rest as usize);
        (&mut stream)
            .take(rest)
            .read_to_end(&mut body)
            .map_err(|e| e.to_string())?;
        return Ok((body.len() as u64, body));
    }
    let null = File::options()
        .write(true)
        .open("/dev/null")
        .map_err(|e| e.to_string())?;
    let pipe = pipe().map_err(|e| e.to_string())?;
    splice_all(stream.as_raw_fd(), null.as_raw_fd(), &pipe, rest)
        .map_err(|e| format!("body: {e}"))?;
    Ok((length, Vec::new()))
}

fn main() {
    // `cargo test --all-targets` runs bench targets without arguments: say
    // what this is and succeed, so the test command stays green.
    if std::env::args().len() == 1 {
        println!("http_get: a client for benches/serve.sh; see the top of benches/http_get.rs");
        return;
    }
    let args = <Args as clap::Parser>::parse();
    let want = args.verify.as_ref().map(|local| {
        std::fs::read(local).unwrap_or_else(|e| {
            eprintln!("http_get: reading {local}: {e}");
            std::process::exit(1);
        })
    });
    let start = Instant::now();
    let results: Vec<Result<(u64, Vec<u8>), String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..args.clients)
            .map(|_| {
                scope.spawn(|| {
                    (0..args.repeat)
                        .map(|_| download(&args))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec![Err("client panicked".into())])
            })
            .collect()
    });
    let seconds = start.elapsed().as_secs_f64();
    let mut total = 0u64;
    for result in results {
        match result {
            Ok((bytes, body)) => {
                if want.as_ref().is_some_and(|w| *w != body) {
                    eprintln!("http_get: {} differs from the local copy", args.path);
                    std::process::exit(1);
                }
                total += bytes;
            }
            Err(e) => {
                eprintln!("http_get: {}: {e}", args.path);
                std::process::exit(1);
            }
        }
    }
    println!("{:.1}", total as f64 / seconds / 1e6);
}
