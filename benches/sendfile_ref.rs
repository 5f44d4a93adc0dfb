//! A reference HTTP server for `benches/serve.sh`: the least a server can do
//! to send a file, so the HTTP rows can show how far pxebuild and nginx are
//! from it.
//!
//! The serve issue set its HTTP goals against "a small std server with
//! sendfile". This is that server: one thread per connection, the request
//! head read until its blank line, a 200 with Content-Length, then the whole
//! file in sendfile(2) calls. No ranges, no timeouts, no logging, no path
//! checks beyond refusing `..`: never point it at anything but a bench tree.
//!
//! Usage: sendfile_ref ROOT [--port N]
//! Prints `listening on PORT` once bound (port 0 picks a free one).
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;

/// Command line (see the top of this file).
#[derive(clap::Parser)]
struct Args {
    /// Directory whose files are served.
    root: PathBuf,
    /// Port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 0)]
    port: u16,
}

fn main() {
    // `cargo test --all-targets` runs bench targets without arguments: say
    // what this is and succeed, so the test command stays green.
    if std::env::args().len() == 1 {
        println!(
            "sendfile_ref: a reference server for benches/serve.sh; see benches/sendfile_ref.rs"
        );
        return;
    }
    let args = <Args as clap::Parser>::parse();
    let listener = TcpListener::bind(("127.0.0.1", args.port)).unwrap_or_else(|e| {
        eprintln!("sendfile_ref: binding port {}: {e}", args.port);
        std::process::exit(1);
    });
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(0);
    println!("listening on {port}");
    io::stdout().flush().ok();
    for stream in listener.incoming().flatten() {
        let root = args.root.clone();
        std::thread::spawn(move || {
            // A client that goes away simply ends its thread.
            let _ = serve_connection(stream, &root);
        });
    }
}

/// Answers GET requests on one keep-alive connection until the client closes it.
fn serve_connection(mut stream: TcpStream, root: &std::path::Path) -> io::Result<()> {
    let mut buf = vec![0u8; 8192];
    let mut filled = 0;
    loop {
        let Some(end) = find_blank_line(&buf[..filled]) else {
            if filled == buf.len() {
                return Err(io::Error::other("request head too long"));
            }
            let n = stream.read(&mut buf[filled..])?;
            if n == 0 {
                return Ok(());
            }
            filled += n;
            continue;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        buf.copy_within(end + 4..filled, 0);
        filled -= end + 4;
        let target = head.split(' ').nth(1).unwrap_or("/");
        let file = if target.contains("..") {
            None
        } else {
            File::open(root.join(target.trim_start_matches('/'))).ok()
        };
        let Some(file) = file else {
            stream.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")?;
            continue;
        };
        let len = file.metadata()?.len();
        write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Length: {len}\r\nContent-Type: application/octet-stream\r\n\r\n"
        )?;
        send_file(&stream, &file, len)?;
    }
}

fn find_blank_line(bytes: &[u8]) -> Option<usize> {
    bytes.windows(4).position(|w| w == b"\r\n\r\n")
}

/// The whole file in as few sendfile(2) calls as the socket allows.
fn send_file(stream: &TcpStream, file: &File, len: u64) -> io::Result<()> {
    let mut offset: libc::off_t = 0;
    while (offset as u64) < len {
        let left = (len - offset as u64) as usize;
        // SAFETY: both descriptors are open for the duration of the call and
        // `offset` is a valid, exclusively borrowed off_t.
        let sent =
            unsafe { libc::sendfile(stream.as_raw_fd(), file.as_raw_fd(), &mut offset, left) };
        match sent {
            n if n > 0 => {}
            0 => return Err(io::Error::other("file shrank while sending")),
            _ => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
        }
    }
    Ok(())
}
