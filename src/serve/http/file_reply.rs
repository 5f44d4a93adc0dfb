//! Answers a GET or HEAD with a file of the tree: the validators
//! (conditional requests, 304), Range (206, 416), then the body by sendfile.
//! Shared by the plain file server (`conn`) and the OCI pull API (`oci`),
//! which adds its media types and digest headers.
use std::net::TcpStream;

use super::conditional::{self, Outcome, Validators};
use super::range::{self, RangeReply};
use super::request::Request;
use super::response::{self, Head};
use crate::serve::log::Entry;
use crate::serve::root::Opened;

/// Sends the file (or the requested range of it) with a given `Content-Type` and `extra` headers (the OCI API's
/// media types and digests) on every answer but 416.
pub(crate) fn send_with(
    stream: &mut TcpStream,
    req: &Request,
    opened: &Opened,
    keep: bool,
    entry: &mut Entry<'_>,
    content_type: &str,
    extra: &[(&str, &str)],
) -> (bool, String) {
    use std::io::Write;
    let size = opened.size;
    let etag = format!("\"{:x}-{:x}-{:x}\"", opened.id.1, size, opened.mtime);
    let modified = crate::clock::http_date(opened.mtime);
    let validators = Validators {
        etag: &etag,
        modified: opened.mtime,
    };
    let now = crate::clock::now_ms() / 1000;
    let range_header = match conditional::evaluate(&req.conditions(), &validators, now) {
        Outcome::Send { use_range } => req.range.as_deref().filter(|_| use_range),
        Outcome::NotModified => {
            // No body and no Content-Length (RFC 9110 15.4.5): the validators only.
            entry.status = Some(304);
            let mut head = Head::new(304, keep)
                .header("ETag", &etag)
                .header("Last-Modified", &modified);
            for (name, value) in extra {
                head = head.header(name, value);
            }
            let head = head.finish();
            return match stream.write_all(head.as_bytes()) {
                Ok(()) => (keep, "ok".into()),
                Err(err) => (false, format!("error:{}", err.kind())),
            };
        }
        Outcome::PreconditionFailed => {
            entry.status = Some(412);
            let written = response::simple(stream, 412, keep, req.method == "HEAD", &[]);
            return (keep && written.is_ok(), "refused:precondition".into());
        }
    };
    let (status, start, len) = match range::evaluate(range_header, size) {
        RangeReply::Full => (200, 0, size),
        RangeReply::Partial { start, end } => (206, start, end - start + 1),
        RangeReply::Unsatisfiable => (416, 0, 0),
    };
    entry.status = Some(status);
    let mut head = Head::new(status, keep).header("Accept-Ranges", "bytes");
    head = match status {
        416 => head
            .header("Content-Range", &format!("bytes */{size}"))
            .header("Content-Length", "0"),
        _ => head
            .header("Content-Type", content_type)
            .header("Content-Length", &len.to_string())
            .header("ETag", &etag)
            .header("Last-Modified", &modified),
    };
    if status != 416 {
        for (name, value) in extra {
            head = head.header(name, value);
        }
    }
    if status == 206 {
        head = head.header(
            "Content-Range",
            &format!("bytes {start}-{}/{size}", start + len - 1),
        );
    }
    let head = head.finish();
    if req.method == "HEAD" || status == 416 || len == 0 {
        return match stream.write_all(head.as_bytes()) {
            Ok(()) => (keep, "ok".into()),
            Err(err) => (false, format!("error:{}", err.kind())),
        };
    }
    let sent = response::send_head_and_body(stream, head.as_bytes(), &opened.file, start, len);
    let (sent, outcome) = match sent {
        Ok(body) => body,
        Err(err) => return (false, format!("error:{}", err.kind())),
    };
    entry.bytes = sent;
    match outcome {
        Ok(()) => (keep, "ok".into()),
        Err(err) => (false, format!("aborted:{}", err.kind())),
    }
}
