//! Writing responses: the status line and headers (always with an exact
//! Content-Length, never chunked), content types by file name, and file bodies
//! sent with sendfile(2) so large images never pass through user space.
use std::fs::File;
use std::io::{self, Write};
use std::net::TcpStream;

use crate::clock;

pub fn reason(status: u16) -> &'static str {
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
pub fn content_type(path: &str) -> &'static str {
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
pub struct Head {
    text: String,
}

impl Head {
    pub fn new(status: u16, keep_alive: bool) -> Head {
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

    pub fn header(mut self, name: &str, value: &str) -> Head {
        self.text.push_str(name);
        self.text.push_str(": ");
        self.text.push_str(value);
        self.text.push_str("\r\n");
        self
    }

    pub fn finish(mut self) -> String {
        self.text.push_str("\r\n");
        self.text
    }
}

/// A complete small response (errors, 204) with a text body.
pub fn simple(
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

/// Writes a response head that a body will follow: MSG_MORE lets the kernel
/// put the head and the start of the body in one segment (what nginx gets from
/// TCP_NOPUSH), instead of a small packet of its own.
pub fn write_head(stream: &TcpStream, mut head: &[u8]) -> io::Result<()> {
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
pub fn send_file(
    stream: &TcpStream,
    file: &File,
    mut offset: u64,
    len: u64,
) -> (u64, io::Result<()>) {
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
