//! Reading one request head off a connection, with limits: the head must fit in
//! [`MAX_HEAD`] bytes and arrive within the timeout once it has started; an idle
//! keep-alive connection is closed after the idle timeout. Parsing is httparse;
//! the result is an owned [`Request`] holding only what the server uses.
use std::io::{self, Read};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::conditional::Conditions;

/// Largest request head accepted (request line + headers).
pub(crate) const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    /// The request target as sent (`/a/b%20c?x=y`).
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    pub range: Option<String>,
    pub if_range: Option<String>,
    pub if_match: Option<String>,
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
    pub if_unmodified_since: Option<String>,
    pub connection: Option<String>,
    pub content_length: Option<u64>,
    pub chunked: bool,
    pub cookie: Option<String>,
    /// The Host field as sent (the status page checks it).
    pub host: Option<String>,
}

impl Request {
    /// The precondition fields, for [`super::conditional::evaluate`].
    pub fn conditions(&self) -> Conditions<'_> {
        Conditions {
            if_match: self.if_match.as_deref(),
            if_none_match: self.if_none_match.as_deref(),
            if_modified_since: self.if_modified_since.as_deref(),
            if_unmodified_since: self.if_unmodified_since.as_deref(),
            if_range: self.if_range.as_deref(),
        }
    }

    /// Whether the client wants the connection kept open after this response.
    pub(crate) fn keep_alive(&self) -> bool {
        let tokens = self
            .connection
            .as_deref()
            .unwrap_or("")
            .to_ascii_lowercase();
        let has = |word: &str| tokens.split(',').any(|t| t.trim() == word);
        if self.minor == 0 {
            has("keep-alive")
        } else {
            !has("close")
        }
    }
}

/// Why no request could be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// Clean close, idle timeout, or a reset: close without a response.
    Gone,
    /// Reply with this status, then close.
    Status(u16),
}

/// Reads the next request head; bytes past it stay in `buf` (pipelining).
pub(crate) fn read_head(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    idle: Duration,
    head_limit: Duration,
) -> Result<Request, HeadError> {
    let mut started: Option<Instant> = (!buf.is_empty()).then(Instant::now);
    loop {
        if !buf.is_empty() {
            match parse(buf) {
                Ok(Some((request, used))) => {
                    buf.drain(..used);
                    return Ok(request);
                }
                Ok(None) if buf.len() >= MAX_HEAD => return Err(HeadError::Status(431)),
                Ok(None) => {}
                Err(status) => return Err(HeadError::Status(status)),
            }
        }
        let timeout = match started {
            None => idle,
            Some(t) => head_limit.checked_sub(t.elapsed()).ok_or(HeadError::Gone)?,
        };
        let _ = stream.set_read_timeout(Some(timeout.max(Duration::from_millis(1))));
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) => return Err(HeadError::Gone),
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                started.get_or_insert_with(Instant::now);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Err(HeadError::Gone),
        }
    }
}

/// Parses a complete head from `buf`: `Ok(None)` means more bytes are needed.
pub fn parse(buf: &[u8]) -> Result<Option<(Request, usize)>, u16> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let used = match req.parse(buf) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(431),
        Err(httparse::Error::Version) => return Err(505),
        Err(_) => return Err(400),
    };
    let mut out = Request {
        method: req.method.unwrap_or_default().to_string(),
        target: req.path.unwrap_or_default().to_string(),
        minor: req.version.unwrap_or(1),
        ..Request::default()
    };
    let mut hosts = 0;
    for header in req.headers.iter() {
        let value = || String::from_utf8_lossy(header.value).trim().to_string();
        match header.name.to_ascii_lowercase().as_str() {
            "host" => {
                hosts += 1;
                out.host = Some(value());
            }
            "range" => out.range = Some(value()),
            "if-range" => out.if_range = Some(value()),
            // Lists may be split over several fields (RFC 9110 5.3).
            "if-match" => append(&mut out.if_match, value()),
            "if-none-match" => append(&mut out.if_none_match, value()),
            "if-modified-since" => out.if_modified_since = Some(value()),
            "if-unmodified-since" => out.if_unmodified_since = Some(value()),
            "connection" => out.connection = Some(value()),
            "cookie" => out.cookie = Some(value()),
            "content-length" => {
                out.content_length = Some(content_length(out.content_length, &value())?)
            }
            "transfer-encoding" => out.chunked = true,
            _ => {}
        }
    }
    // RFC 9112 3.2: an HTTP/1.1 request without Host, or any request with
    // more than one, gets 400. (Boot loaders send it: Syslinux with HTTP/1.0,
    // iPXE and Ignition with HTTP/1.1.)
    if hosts > 1 || (out.minor >= 1 && hosts == 0) {
        return Err(400);
    }
    Ok(Some((out, used)))
}

/// The body length from a Content-Length field, given what earlier fields
/// said. RFC 9112 6.3: a list of equal values (`5, 5`, or the field repeated)
/// is one length; different values make the framing unknowable, which a proxy
/// in front of the server could read differently (request smuggling): 400.
fn content_length(earlier: Option<u64>, field: &str) -> Result<u64, u16> {
    let mut length = earlier;
    for item in field.split(',') {
        let item = item.trim();
        if item.is_empty() || !item.bytes().all(|b| b.is_ascii_digit()) {
            return Err(400);
        }
        let value: u64 = item.parse().map_err(|_| 400u16)?;
        if length.is_some_and(|known| known != value) {
            return Err(400);
        }
        length = Some(value);
    }
    length.ok_or(400)
}

fn append(list: &mut Option<String>, more: String) {
    *list = Some(match list.take() {
        Some(earlier) => format!("{earlier}, {more}"),
        None => more,
    });
}

/// The path of an origin-form target (`/a/b`) or of an absolute-form one
/// (`http://host:8080/a/b`, which RFC 9112 3.2.2 says a server must accept),
/// %-decoded, without query or fragment. `None` for other forms (`*`,
/// authority-form) or bytes that do not decode to UTF-8.
pub fn decode_path(target: &str) -> Option<String> {
    let target = strip_scheme_and_authority(target).unwrap_or(target);
    let path = match target.split(['?', '#']).next()? {
        // `http://host` and `http://host?q` name the root.
        "" => "/",
        path => path,
    };
    if !path.starts_with('/') {
        return None;
    }
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `/a/b?q` of `http://host:port/a/b?q` (scheme case-insensitive); `None` for a
/// target that is not in absolute form.
fn strip_scheme_and_authority(target: &str) -> Option<&str> {
    let (scheme, rest) = target.split_once("://")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return None;
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    (authority_end > 0).then(|| &rest[authority_end..])
}

/// The MAC in a Syslinux `Cookie: _Syslinux_BOOTIF=01-aa-bb-…` header.
pub(crate) fn syslinux_mac(cookie: &str) -> Option<String> {
    cookie.split(';').find_map(|part| {
        let value = part.trim().strip_prefix("_Syslinux_BOOTIF=")?;
        let mac = value.strip_prefix("01-")?;
        (mac.len() == 17).then(|| mac.replace('-', ":").to_ascii_lowercase())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_syslinux_request() {
        let head = b"GET /boot/vmlinuz HTTP/1.0\r\nUser-Agent: Syslinux/6.04\r\nConnection: close\r\nCookie: _Syslinux_ip=10.0.0.11:10.0.0.1:0.0.0.0:255.255.255.0; _Syslinux_BOOTIF=01-52-54-00-77-00-01\r\n\r\nNEXT";
        let (req, used) = parse(head).unwrap().unwrap();
        assert_eq!(&head[used..], b"NEXT");
        assert_eq!(
            (req.method.as_str(), req.target.as_str(), req.minor),
            ("GET", "/boot/vmlinuz", 0)
        );
        assert!(!req.keep_alive());
        assert_eq!(
            syslinux_mac(req.cookie.as_deref().unwrap()).as_deref(),
            Some("52:54:00:77:00:01")
        );
    }

    #[test]
    fn keep_alive_rules() {
        let parsed = |h: &[u8]| parse(h).unwrap().unwrap().0;
        assert!(parsed(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n").keep_alive());
        assert!(!parsed(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n").keep_alive());
        assert!(!parsed(b"GET / HTTP/1.0\r\n\r\n").keep_alive());
        assert!(parsed(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive());
    }

    #[test]
    fn incomplete_and_bad_heads() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\nHost: x\r\n"), Ok(None));
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nHost: h\r\nContent-Length: x\r\n\r\n"),
            Err(400)
        );
        assert_eq!(parse(b"\x01\x02 / HTTP/1.1\r\n\r\n"), Err(400));
    }

    #[test]
    fn host_is_required_once_in_http_1_1() {
        assert_eq!(parse(b"GET / HTTP/1.1\r\n\r\n"), Err(400));
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"),
            Err(400)
        );
        assert_eq!(
            parse(b"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n"),
            Err(400)
        );
        // HTTP/1.0 may leave it out (Syslinux sends it anyway).
        assert!(parse(b"GET / HTTP/1.0\r\n\r\n").unwrap().is_some());
        // An empty Host is allowed (RFC 9112 3.2: no authority in the target).
        assert!(parse(b"GET / HTTP/1.1\r\nHost:\r\n\r\n").unwrap().is_some());
    }

    #[test]
    fn content_length_must_be_one_number() {
        let length = |head: &[u8]| parse(head).map(|r| r.unwrap().0.content_length);
        assert_eq!(
            length(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n"),
            Ok(Some(5))
        );
        // The same value repeated, in one field or several, is one length.
        assert_eq!(
            length(
                b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 5\r\nContent-Length: 5\r\n\r\n"
            ),
            Ok(Some(5))
        );
        for bad in [
            &b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n"[..],
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5, 6\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n",
        ] {
            assert_eq!(length(bad), Err(400), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn path_decoding() {
        assert_eq!(decode_path("/a%20b/c?x=1").as_deref(), Some("/a b/c"));
        assert_eq!(
            decode_path("/%2e%2e/etc/passwd").as_deref(),
            Some("/../etc/passwd")
        );
        assert_eq!(decode_path("/%252e").as_deref(), Some("/%2e"));
        assert_eq!(decode_path("/a%2").as_deref(), None);
        assert_eq!(decode_path("/%ff").as_deref(), None);
        assert_eq!(decode_path("*"), None);
        assert_eq!(decode_path("host:8080"), None, "authority-form");
        assert_eq!(decode_path("ftp://host/x"), None);
        assert_eq!(decode_path("http:///x"), None, "no authority");
    }

    #[test]
    fn absolute_form_targets() {
        assert_eq!(decode_path("http://host/x").as_deref(), Some("/x"));
        assert_eq!(
            decode_path("HTTP://10.0.0.2:8080/a%20b?q=1").as_deref(),
            Some("/a b")
        );
        assert_eq!(decode_path("http://host").as_deref(), Some("/"));
        assert_eq!(decode_path("http://host?q").as_deref(), Some("/"));
        assert_eq!(
            decode_path("http://host/%2e%2e/x").as_deref(),
            Some("/../x"),
            "decoded like any path, for the resolver to refuse"
        );
    }

    #[test]
    fn precondition_fields() {
        let head = b"GET / HTTP/1.1\r\nHost: h\r\nIf-None-Match: \"a\"\r\nIf-None-Match: W/\"b\"\r\nIf-Match: *\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\nIf-Unmodified-Since: x\r\n\r\n";
        let req = parse(head).unwrap().unwrap().0;
        assert_eq!(req.if_none_match.as_deref(), Some("\"a\", W/\"b\""));
        assert_eq!(req.if_match.as_deref(), Some("*"));
        assert_eq!(
            req.if_modified_since.as_deref(),
            Some("Sun, 06 Nov 1994 08:49:37 GMT")
        );
        assert_eq!(req.if_unmodified_since.as_deref(), Some("x"));
    }
}
