//! `data:` URLs for inline and local contents.
//!
//! Like Butane, the shortest of three encodings wins: percent-escaped text
//! (`data:,…`), base64 (`data:;base64,…`), and — where the field allows it —
//! gzip at best compression then base64, which also sets `compression: gzip`.
//! Ties keep the earlier candidate, so the choice is deterministic. flate2's
//! gzip header has mtime 0 and no file name, so the bytes are reproducible.
use std::io::Write;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use flate2::write::GzEncoder;
use flate2::Compression;

/// An encoded payload: the URL and the compression Ignition must undo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub url: String,
    pub gzip: bool,
}

/// Encodes `data` as the shortest `data:` URL; gzip only when `allow_gzip`.
pub fn encode(data: &[u8], allow_gzip: bool) -> Encoded {
    let mut best = Encoded {
        url: format!("data:,{}", escape(data)),
        gzip: false,
    };
    let b64 = format!("data:;base64,{}", STANDARD.encode(data));
    if b64.len() < best.url.len() {
        best.url = b64;
    }
    if allow_gzip {
        let gz = format!("data:;base64,{}", STANDARD.encode(gzip(data)));
        if gz.len() < best.url.len() {
            best = Encoded {
                url: gz,
                gzip: true,
            };
        }
    }
    best
}

/// Characters left as they are: RFC 3986 unreserved plus the sub-delimiters
/// and `:@/?` that are safe inside a data URL's payload. Everything else,
/// including `%`, `#`, space and non-ASCII bytes, is percent-encoded.
fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?".contains(&b)
}

fn escape(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len());
    for &b in data {
        if is_plain(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    // Writing into a Vec cannot fail.
    enc.write_all(data).expect("gzip into memory");
    enc.finish().expect("gzip into memory")
}

/// Decodes a URL produced by `encode` (and undoes gzip when `gzip`); used by
/// tests and by operators' tooling to check round trips.
pub fn decode(url: &str, gzip: bool) -> Option<Vec<u8>> {
    let raw = if let Some(b64) = url.strip_prefix("data:;base64,") {
        STANDARD.decode(b64).ok()?
    } else {
        unescape(url.strip_prefix("data:,")?)?
    };
    if !gzip {
        return Some(raw);
    }
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&raw[..]), &mut out).ok()?;
    Some(out)
}

fn unescape(text: &str) -> Option<Vec<u8>> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_text_is_escaped() {
        let e = encode(b"hello world\n", true);
        assert_eq!(e.url, "data:,hello%20world%0A");
        assert!(!e.gzip);
    }

    #[test]
    fn binary_prefers_base64() {
        let e = encode(&[0xff, 0xfe, 0x00, 0x01, 0x80, 0x90], true);
        assert_eq!(e.url, "data:;base64,//4AAYCQ");
    }

    #[test]
    fn repetitive_text_is_gzipped_only_when_allowed() {
        let data = "0123456789".repeat(100);
        let e = encode(data.as_bytes(), true);
        assert!(e.gzip);
        assert_eq!(decode(&e.url, true).unwrap(), data.as_bytes());
        assert!(!encode(data.as_bytes(), false).gzip);
    }

    #[test]
    fn empty_is_an_empty_text_url() {
        assert_eq!(encode(b"", true).url, "data:,");
    }
}
