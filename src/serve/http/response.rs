//! Writing responses: the status line and headers (always with an exact
//! Content-Length, never chunked), content types by file name, and file bodies
//! sent with sendfile(2) so large images never pass through user space.
use std::fs::File;
use std::io::{self, Write};
use std::net::TcpStream;

use crate::clock;

pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        206 => "Partial Content",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        416 => "Range Not Satisfiable",
        431 => "Request Header Fields Too Large",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

/// Media type by file name. Ignition configs are JSON (Ignition itself does not
/// care, but proxies and browsers do).
pub(crate) fn content_type(path: &str) -> &'static str {
    let name = path.rsplit('/').next().unwrap_or(path);
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    match ext.as_deref() {
        Some("ign" | "json") => "application/json",
        Some("ipxe" | "cfg" | "txt" | "sh" | "conf" | "env") => "text/plain; charset=utf-8",
        Some("yaml" | "yml" | "bu") => "application/yaml",
        Some("html" | "htm") => "text/html; charset=utf-8",
        Some("gz") => "application/gzip",
        Some("xz") => "application/x-xz",
        Some("zst") => "application/zstd",
        Some("bz2") => "application/x-bzip2",
        Some("tar") => "application/x-tar",
        Some("iso") => "application/x-iso9660-image",
        Some("asc" | "sig") => "application/pgp-signature",
        Some("pem" | "crt") => "application/x-pem-file",
        _ if name.ends_with("SUMS") => "text/plain; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// A response head under construction.
pub(crate) struct Head {
    text: String,
}

impl Head {
    pub(crate) fn new(status: u16, keep_alive: bool) -> Head {
        let mut text = format!("HTTP/1.1 {status} {}\r\n", reason(status));
        text.push_str("Server: pxebuild\r\n");
        text.push_str(&format!(
            "Date: {}\r\n",
            clock::http_date(clock::now_ms() / 1000)
        ));
        text.push_str(if keep_alive {
            "Connection: keep-alive\r\n"
        } else {
            "Connection: close\r\n"
        });
        Head { text }
    }

    pub(crate) fn header(mut self, name: &str, value: &str) -> Head {
        self.text.push_str(name);
        self.text.push_str(": ");
        self.text.push_str(value);
        self.text.push_str("\r\n");
        self
    }

    pub(crate) fn finish(mut self) -> String {
        self.text.push_str("\r\n");
        self.text
    }
}

/// A complete small response (errors, 204) with a text body.
pub(crate) fn simple(
    stream: &mut TcpStream,
    status: u16,
    keep_alive: bool,
    head_only: bool,
    extra: &[(&str, &str)],
) -> io::Result<()> {
    let body = if status == 204 {
        String::new()
    } else {
        format!("{status} {}\n", reason(status))
    };
    let mut head = Head::new(status, keep_alive);
    for (name, value) in extra {
        head = head.header(name, value);
    }
    if status != 204 {
        head = head
            .header("Content-Type", "text/plain; charset=utf-8")
            .header("Content-Length", &body.len().to_string());
    }
    let mut out = head.finish().into_bytes();
    if !head_only {
        out.extend_from_slice(body.as_bytes());
    }
    stream.write_all(&out)
}

/// Writes a response head and `len` bytes of `file` from `offset`; returns the
/// body bytes sent and how the body ended, or the error that stopped the head. Connections run with TCP_NODELAY so that small responses
/// leave at once, but during a body Nagle's rule is back on: a segment smaller
/// than the MSS (on loopback, 64 KiB) waits while earlier data is unacked
/// instead of leaving as a small segment of its own at every edge of the
/// client's window. Turning TCP_NODELAY back on at the end sends the tail at
/// once, so no response waits for a delayed ACK. Measured on loopback against
/// TCP_NODELAY throughout, clients splicing to /dev/null: +19% with 32 of them,
/// +12% with one; curl clients unchanged (docs/serve.md). TCP_CORK (nginx's
/// `tcp_nopush`) was measured too and not kept: it holds segments until a whole
/// MSS of window is open, which cost one curl client 37%.
pub(crate) fn send_head_and_body(
    stream: &TcpStream,
    head: &[u8],
    file: &File,
    offset: u64,
    len: u64,
) -> io::Result<(u64, io::Result<()>)> {
    let _ = stream.set_nodelay(false);
    let _push = PushTail(stream);
    write_head(stream, head)?;
    Ok(send_file(stream, file, offset, len))
}

/// Restores TCP_NODELAY when a body ends, whichever way it ends; setting it
/// sends whatever Nagle's rule still holds.
struct PushTail<'a>(&'a TcpStream);

impl Drop for PushTail<'_> {
    fn drop(&mut self) {
        let _ = self.0.set_nodelay(true);
    }
}

/// Writes a response head that a body will follow: MSG_MORE lets the kernel
/// put the head and the start of the body in one segment (what nginx gets from
/// TCP_NOPUSH), instead of a small packet of its own.
fn write_head(stream: &TcpStream, mut head: &[u8]) -> io::Result<()> {
    while !head.is_empty() {
        match rustix::net::send(stream, head, rustix::net::SendFlags::MORE) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => head = &head[n..],
            Err(rustix::io::Errno::INTR) => {}
            Err(err) => return Err(err.into()),
        }
    }
    Ok(())
}

/// Sends `len` bytes of `file` from `offset` with sendfile; returns bytes sent.
/// The socket's send timeout is the stall limit: a send that moves nothing for
/// that long fails with EAGAIN, which ends the body as `TimedOut` (the client
/// stopped reading) and the connection with it. Blocking sendfile measured
/// 5-7% faster with 32 curl clients than non-blocking sends with a poll of
/// our own, which would only move the same wait out of the kernel.
fn send_file(stream: &TcpStream, file: &File, mut offset: u64, len: u64) -> (u64, io::Result<()>) {
    let end = offset + len;
    let start = offset;
    while offset < end {
        let chunk = (end - offset).min(1 << 30) as usize;
        match rustix::fs::sendfile(stream, file, Some(&mut offset), chunk) {
            Ok(0) => {
                let err = io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while sending");
                return (offset - start, Err(err));
            }
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => {}
            Err(rustix::io::Errno::AGAIN) => {
                let err = io::Error::new(io::ErrorKind::TimedOut, "client stopped reading");
                return (offset - start, Err(err));
            }
            Err(err) => return (offset - start, Err(err.into())),
        }
    }
    (offset - start, Ok(()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::TcpListener;

    /// A connected loopback pair, the server side with TCP_NODELAY as
    /// connections run: (server side, client side).
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        server.set_nodelay(true).unwrap();
        (server, client)
    }

    fn file_with(bytes: &[u8]) -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("body");
        std::fs::write(&path, bytes).unwrap();
        let file = File::open(&path).unwrap();
        (dir, file)
    }

    #[test]
    fn head_and_range_arrive_and_nodelay_comes_back() {
        let (server, mut client) = pair();
        let (_dir, file) = file_with(b"0123456789");
        let (sent, outcome) = send_head_and_body(&server, b"HEAD\r\n\r\n", &file, 2, 5).unwrap();
        outcome.unwrap();
        assert_eq!(sent, 5);
        // Left off, the next small response on this keep-alive connection
        // could wait for a delayed ACK behind this body's tail.
        assert!(server.nodelay().unwrap());
        drop(server);
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"HEAD\r\n\r\n23456");
    }

    #[test]
    fn nodelay_comes_back_when_the_client_is_gone() {
        let (server, client) = pair();
        drop(client);
        let (_dir, file) = file_with(&vec![7u8; 4 << 20]);
        server
            .set_write_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        // The closed peer stops the head or the body, never neither.
        let failed = match send_head_and_body(&server, b"HEAD\r\n\r\n", &file, 0, 4 << 20) {
            Ok((_, outcome)) => outcome.is_err(),
            Err(_) => true,
        };
        assert!(failed, "a 4 MiB body went whole to a closed peer");
        assert!(server.nodelay().unwrap());
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type("ignition/cp1/install.ign"), "application/json");
        assert_eq!(content_type("boot.ipxe"), "text/plain; charset=utf-8");
        assert_eq!(
            content_type("flatcar/1/flatcar_production_pxe_image.cpio.gz"),
            "application/gzip"
        );
        assert_eq!(
            content_type("sysext/k/SHA256SUMS"),
            "text/plain; charset=utf-8"
        );
        assert_eq!(content_type("boot/vmlinuz"), "application/octet-stream");
    }

    #[test]
    fn head_has_status_and_connection() {
        let head = Head::new(206, false).header("Content-Length", "5").finish();
        assert!(
            head.starts_with("HTTP/1.1 206 Partial Content\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nConnection: close\r\n"));
        assert!(head.ends_with("Content-Length: 5\r\n\r\n"));
    }
}
