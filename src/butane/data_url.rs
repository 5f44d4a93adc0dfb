//! `data:` URL encoding of embedded contents, choosing the smallest form.
//!
//! Candidates, in order of preference on a tie: percent-encoded text
//! (`data:,…`), base64 (`data:;base64,…`) and gzip (best compression) then
//! base64. These are upstream Butane's rules: the percent form keeps RFC 2396
//! "unreserved" bytes (`A-Za-z0-9-_.!~*'()`) and escapes everything else,
//! `/` included, as `%XX`; the gzip form is only a candidate when the caller
//! allows it, and wins only when it is shorter even after paying for the
//! `"gzip"` it adds as the resource's compression.
use std::io::Read;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use flate2::{Compress, Compression, Crc, FlushCompress, Status};

/// An encoded resource: the URL and whether it is gzip-compressed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encoded {
    pub url: String,
    pub gzip: bool,
}

/// Bytes kept literally in the percent form: RFC 2396's unreserved set, the
/// one Butane's data URL library uses (so output matches Butane's byte for byte).
fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'_' | b'.' | b'!' | b'~' | b'*' | b'\'' | b'(' | b')'
        )
}

/// Percent-encodes every byte outside [`is_plain`].
pub fn percent_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len());
    for &b in data {
        if is_plain(b) {
            out.push(b as char);
        } else {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            out.push('%');
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 15)] as char);
        }
    }
    out
}

/// The gzip header flate2 and Butane write: no name, no mtime, "maximum
/// compression" extra flag, unknown OS.
const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 2, 255];

thread_local! {
    /// One deflate state per thread, reset between uses: a build translates
    /// thousands of configs, and a fresh state per file (several hundred KiB,
    /// zeroed) dominated the allocations and left the heap fragmented.
    static DEFLATE: std::cell::RefCell<Compress> =
        std::cell::RefCell::new(Compress::new(Compression::best(), false));
}

/// Gzip at best compression (a header, raw deflate, CRC-32 and size).
pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() / 2 + 64);
    out.extend_from_slice(&GZIP_HEADER);
    DEFLATE.with(|cell| {
        let mut deflate = cell.borrow_mut();
        deflate.reset();
        let start = deflate.total_in();
        loop {
            let consumed = (deflate.total_in() - start) as usize;
            out.reserve(4096);
            let status = deflate
                .compress_vec(&data[consumed..], &mut out, FlushCompress::Finish)
                .expect("deflating into a Vec");
            if status == Status::StreamEnd {
                break;
            }
        }
    });
    let mut crc = Crc::new();
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_le_bytes());
    out.extend_from_slice(&(data.len() as u32).to_le_bytes());
    out
}

/// Remembers results by a digest of their input for the rest of the process.
/// A build translates the same files (units, scripts, sysupdate confs) for
/// every node: each distinct content is compressed, and each distinct URL
/// decoded, once. Bounded: past `LIMIT` entries it starts over.
struct Memo<V> {
    map: std::sync::Mutex<Option<std::collections::HashMap<[u8; 32], V>>>,
}

impl<V: Clone> Memo<V> {
    const LIMIT: usize = 4096;

    const fn new() -> Memo<V> {
        Memo {
            map: std::sync::Mutex::new(None),
        }
    }

    fn get_or(&self, key: blake3::Hash, make: impl FnOnce() -> V) -> V {
        let key = *key.as_bytes();
        if let Some(v) = self.lock().as_ref().and_then(|m| m.get(&key)) {
            return v.clone();
        }
        // Computed outside the lock: the other workers keep going meanwhile.
        let value = make();
        let mut guard = self.lock();
        let map = guard.get_or_insert_with(Default::default);
        if map.len() >= Self::LIMIT {
            map.clear();
        }
        map.insert(key, value.clone());
        value
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<std::collections::HashMap<[u8; 32], V>>> {
        // A panic elsewhere cannot leave a half-made entry: insert is one call.
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }
}

static ENCODED: Memo<Encoded> = Memo::new();
static DECODED_OK: Memo<Result<(), String>> = Memo::new();

/// Encodes `data` as the smallest `data:` URL; `allow_gzip` enables the
/// compressed candidate (off when the user already chose a compression).
pub fn encode(data: &[u8], allow_gzip: bool) -> Encoded {
    let key = blake3::Hasher::new()
        .update(&[u8::from(allow_gzip)])
        .update(data)
        .finalize();
    ENCODED.get_or(key, || encode_uncached(data, allow_gzip))
}

/// Whether `url` decodes ([`decode`], remembered per distinct URL).
pub fn check(url: &str) -> Result<(), String> {
    DECODED_OK.get_or(blake3::hash(url.as_bytes()), || decode(url).map(drop))
}

fn encode_uncached(data: &[u8], allow_gzip: bool) -> Encoded {
    let mut best = Encoded {
        url: format!("data:,{}", percent_encode(data)),
        gzip: false,
    };
    let b64 = format!("data:;base64,{}", STANDARD.encode(data));
    if b64.len() < best.url.len() {
        best.url = b64;
    }
    if allow_gzip {
        let gz = format!("data:;base64,{}", STANDARD.encode(gzip(data)));
        // The gzip form also costs the `"gzip"` written as its compression.
        if gz.len() + "gzip".len() < best.url.len() {
            best = Encoded {
                url: gz,
                gzip: true,
            };
        }
    }
    best
}

/// Decodes a `data:` URL (without gunzipping), as strictly as Ignition's
/// data URL library (RFC 2397): an optional `type/subtype` media type,
/// `;attr=value` parameters (value a token or a quoted string), an optional
/// final `;base64`, a comma, then either canonical padded base64 or
/// URL characters with `%XX` escapes. Control characters are refused
/// anywhere (Go's URL parser refuses them before the data URL is read).
pub fn decode(url: &str) -> Result<Vec<u8>, String> {
    if url.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("control character in the URL".into());
    }
    let rest = url.strip_prefix("data:").ok_or("missing data: prefix")?;
    let (base64, payload) = header(rest)?;
    if base64 {
        if let Some(c) = payload.chars().find(|c| !is_base64_char(*c)) {
            return Err(format!("invalid base64 character {c:?}"));
        }
        return BASE64_DECODE
            .decode(payload)
            .map_err(|e| format!("bad base64: {e}"));
    }
    if let Some(c) = payload.chars().find(|c| !is_url_char(*c)) {
        return Err(format!("invalid data character {c:?}"));
    }
    percent_decode(payload)
}

/// Go's standard base64: padding required, non-zero trailing bits accepted.
const BASE64_DECODE: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::RequireCanonical),
);

fn is_base64_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '+' | '/' | '=')
}

/// RFC 2396 URL characters: printable ASCII except space and `<>#"{}|\^[]` and backquote.
fn is_url_char(c: char) -> bool {
    c.is_ascii_graphic() && !"<>#\"{}|\\^[]`".contains(c)
}

/// MIME token characters: printable ASCII except the RFC 2045 specials.
fn is_token_char(c: char) -> bool {
    c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(c)
}

/// Splits the part after `data:` into (is base64, payload), checking the
/// media type and parameters before the comma.
fn header(s: &str) -> Result<(bool, &str), String> {
    let mut rest = s;
    if !rest.starts_with([',', ';']) {
        rest = media_type(rest)?;
    }
    let mut base64 = false;
    while let Some(after) = rest.strip_prefix(';') {
        let attr_len = after.find(|c| !is_token_char(c)).unwrap_or(after.len());
        let (attr, tail) = after.split_at(attr_len);
        if attr.is_empty() {
            return Err("empty or invalid parameter name".into());
        }
        if tail.starts_with(',') {
            if attr != "base64" {
                return Err(format!("expected base64, got {attr}"));
            }
            base64 = true;
            rest = tail;
            break;
        }
        let value = tail
            .strip_prefix('=')
            .ok_or_else(|| format!("parameter {attr} needs =value"))?;
        rest = param_value(value)?;
    }
    let payload = rest
        .strip_prefix(',')
        .ok_or("missing comma before the data")?;
    Ok((base64, payload))
}

/// `type/subtype`; the type must be a registered top-level type or `x-…`.
fn media_type(s: &str) -> Result<&str, String> {
    let slash = s.find('/').ok_or("media type without a slash")?;
    let (ty, tail) = s.split_at(slash);
    if ty.is_empty() || !ty.chars().all(is_token_char) {
        return Err(format!("invalid media type \"{ty}\""));
    }
    const TYPES: &[&str] = &[
        "text",
        "image",
        "audio",
        "video",
        "application",
        "message",
        "multipart",
    ];
    let x_token = ty.len() > 1 && ty[..2].eq_ignore_ascii_case("x-");
    if !x_token && !TYPES.iter().any(|t| ty.starts_with(t)) {
        return Err(format!("invalid media type \"{ty}\""));
    }
    let tail = &tail[1..];
    let end = tail.find([';', ',']).ok_or("incomplete media type")?;
    if !tail[..end].chars().all(is_token_char) {
        return Err("invalid character in the media subtype".into());
    }
    Ok(&tail[end..])
}

/// A parameter value (token or quoted string); returns what follows it.
fn param_value(s: &str) -> Result<&str, String> {
    if let Some(quoted) = s.strip_prefix('"') {
        let mut escaped = false;
        for (i, c) in quoted.char_indices() {
            match c {
                _ if !c.is_ascii() => return Err("non-ASCII parameter value".into()),
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => return Ok(&quoted[i + 1..]),
                _ => {}
            }
        }
        return Err("unclosed quoted parameter value".into());
    }
    let end = s.find(|c| !is_token_char(c)).unwrap_or(s.len());
    if end == 0 {
        return Err("empty or invalid parameter value".into());
    }
    percent_decode(&s[..end])?;
    Ok(&s[end..])
}

/// Undoes `%XX` escapes; a `%` without two hex digits is an error.
pub(super) fn percent_decode(s: &str) -> Result<Vec<u8>, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3).ok_or("truncated percent escape")?;
            if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("bad percent escape %{hex}"));
            }
            out.push(
                u8::from_str_radix(hex, 16).map_err(|_| format!("bad percent escape %{hex}"))?,
            );
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// Gunzips `data` (used by tests and by callers checking round trips).
pub fn gunzip(data: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .map_err(|e| format!("gunzip: {e}"))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn gzip_is_byte_identical_to_flate2s_encoder_also_when_the_state_is_reused() {
        use std::io::Write;
        let reference = |data: &[u8]| {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), Compression::best());
            enc.write_all(data).unwrap();
            enc.finish().unwrap()
        };
        let big: Vec<u8> = (0..200_000u32)
            .map(|i| (i % 251) as u8 ^ (i >> 9) as u8)
            .collect();
        for data in [&b""[..], b"a", b"hello hello hello hello\n", &big, b"again"] {
            assert_eq!(gzip(data), reference(data), "{} bytes", data.len());
        }
    }

    #[test]
    fn remembered_results_are_the_fresh_ones_per_gzip_choice() {
        let data = "[Unit]\nDescription=same for every node\n".repeat(40);
        for allow in [true, false] {
            let first = encode(data.as_bytes(), allow);
            assert_eq!(first, encode_uncached(data.as_bytes(), allow));
            assert_eq!(encode(data.as_bytes(), allow), first);
        }
        assert!(encode(data.as_bytes(), true).gzip);
        assert!(
            !encode(data.as_bytes(), false).gzip,
            "the choice is part of the key"
        );
        for _ in 0..2 {
            assert_eq!(check("data:,ok"), Ok(()));
            assert!(check("data:,bad%zz").unwrap_err().contains('%'));
        }
    }

    #[test]
    fn text_uses_percent_form() {
        let e = encode(b"hello world\n", true);
        assert_eq!(e.url, "data:,hello%20world%0A");
        assert!(!e.gzip);
    }

    #[test]
    fn binary_uses_base64() {
        let e = encode(&[0xff, 0xfe, 0x00, 0x80, 0x81, 0x82], true);
        assert_eq!(e.url, "data:;base64,//4AgIGC");
        assert!(!e.gzip);
    }

    #[test]
    fn repetitive_uses_gzip_only_when_allowed() {
        let data = "a".repeat(4000);
        let e = encode(data.as_bytes(), true);
        assert!(e.gzip && e.url.len() < 200, "{e:?}");
        let plain = encode(data.as_bytes(), false);
        assert!(!plain.gzip);
        assert_eq!(plain.url, format!("data:,{data}"));
    }

    #[test]
    fn percent_form_escapes_like_butane() {
        // RFC 2396 unreserved marks stay; `/` and everything else is escaped.
        assert_eq!(
            encode(b"a-_.!~*'()/ b", false).url,
            "data:,a-_.!~*'()%2F%20b"
        );
        assert_eq!(percent_encode(&[0x0a, 0x00, 0xff]), "%0A%00%FF");
    }

    #[test]
    fn gzip_wins_only_when_shorter_by_more_than_its_compression_value() {
        for n in 0..400usize {
            let data: Vec<u8> = (0..n).map(|i| b"abcab"[i % 5]).collect();
            let plain = encode(&data, false).url;
            let gz = format!("data:;base64,{}", STANDARD.encode(gzip(&data)));
            let e = encode(&data, true);
            assert_eq!(e.gzip, gz.len() + 4 < plain.len(), "{n} bytes");
            assert_eq!(e.url, if e.gzip { gz } else { plain });
        }
    }

    #[test]
    fn decode_is_as_strict_as_ignitions_library() {
        assert_eq!(decode("data:,a%20b").unwrap(), b"a b");
        assert_eq!(decode("data:;base64,YQ==").unwrap(), b"a");
        assert_eq!(decode("data:text/plain;charset=utf-8,x").unwrap(), b"x");
        assert_eq!(
            decode("data:text/plain;charset=\"a b\";base64,YQ==").unwrap(),
            b"a"
        );
        assert_eq!(decode("data:x-foo/bar,x").unwrap(), b"x");
        for bad in [
            "data:,50%",
            "data:,%zz",
            "data:,a b",
            "data:,a\nb",
            "data:,caf\u{e9}",
            "data:;base64,YQ",
            "data:;base64,Y Q==",
            "data:;base64;x=y,YQ==",
            "data:;foo,x",
            "data:foo/bar,x",
            "data:text,x",
            "data:text/plain",
            "http://x",
        ] {
            assert!(decode(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn empty_contents() {
        assert_eq!(encode(b"", true).url, "data:,");
    }

    proptest! {
        #[test]
        fn round_trips(data in proptest::collection::vec(any::<u8>(), 0..2048), rep in 1usize..8) {
            let data: Vec<u8> = data.iter().copied().cycle().take(data.len() * rep).collect();
            let e = encode(&data, true);
            let mut got = decode(&e.url).unwrap();
            if e.gzip {
                got = gunzip(&got).unwrap();
            }
            prop_assert_eq!(got, data);
        }
    }
}
