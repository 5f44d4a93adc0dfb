//! Which URLs Ignition can read: the acceptance rules of Go's `net/url.Parse`
//! (as of Go 1.19-1.22, which Ignition 2.14-2.20 are built with), since Ignition
//! refuses a config whose source, proxy or CA URL does not parse. Only the
//! verdict and the parts Ignition looks at afterwards (scheme, query) are
//! produced; nothing is decoded or normalised for use.
//!
//! The rules, in the order Go applies them: no control bytes before the `#`;
//! a fragment whose `%` escapes are well formed; a scheme that does not start
//! the string with `:`; after the scheme, an "opaque" rest (not starting with
//! `/`) is taken as it is; otherwise an authority after `//` whose userinfo uses
//! only the characters RFC 3986 allows, whose port is digits, whose host holds
//! only host characters (escapes only for bytes above 0x7f, or `%25`), and a
//! path whose `%` escapes are well formed. The query is not checked.
use std::collections::BTreeMap;

/// What Ignition reads of a URL that parses.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Parsed<'a> {
    /// Lower-cased; empty for a URL without one.
    pub scheme: String,
    pub raw_query: &'a str,
}

/// Parses like Go's `url.Parse`; the error is Go's reason in words.
pub(super) fn parse(url: &str) -> Result<Parsed<'_>, String> {
    let (url, fragment) = url.split_once('#').unwrap_or((url, ""));
    // Go looks for control bytes before the `#` only.
    if url.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err("invalid control character in URL".into());
    }
    let parsed = parse_without_fragment(url)?;
    unescape(fragment, Mode::Other)?;
    Ok(parsed)
}

fn parse_without_fragment(url: &str) -> Result<Parsed<'_>, String> {
    if url == "*" {
        return Ok(Parsed {
            scheme: String::new(),
            raw_query: "",
        });
    }
    let (scheme, rest) = split_scheme(url)?;
    let (rest, raw_query) = match rest.split_once('?') {
        // A lone trailing `?` is a "forced" empty query.
        Some((before, "")) if !before.contains('?') => (before, ""),
        Some((before, query)) => (before, query),
        None => (rest, ""),
    };
    let scheme = scheme.to_ascii_lowercase();
    if !rest.starts_with('/') {
        if !scheme.is_empty() {
            // Opaque (`mailto:x`, `data:,…`): Go checks nothing more.
            return Ok(Parsed { scheme, raw_query });
        }
        let first_segment = rest.split('/').next().unwrap_or("");
        if first_segment.contains(':') {
            return Err("first path segment in URL cannot contain colon".into());
        }
    }
    let mut path = rest;
    if (!scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let authority_and_path = &rest[2..];
        let end = authority_and_path
            .find('/')
            .unwrap_or(authority_and_path.len());
        check_authority(&authority_and_path[..end])?;
        path = &authority_and_path[end..];
    }
    unescape(path, Mode::Other)?;
    Ok(Parsed { scheme, raw_query })
}

/// Go's `getScheme`: letters, then letters, digits, `+-.` up to a `:`;
/// anything else means there is no scheme (and the whole string is the rest).
fn split_scheme(url: &str) -> Result<(&str, &str), String> {
    for (i, c) in url.bytes().enumerate() {
        match c {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return Err("missing protocol scheme".into()),
            b':' => return Ok((&url[..i], &url[i + 1..])),
            _ => return Ok(("", url)),
        }
    }
    Ok(("", url))
}

fn check_authority(authority: &str) -> Result<(), String> {
    let (userinfo, host) = match authority.rfind('@') {
        Some(at) => (Some(&authority[..at]), &authority[at + 1..]),
        None => (None, authority),
    };
    check_host(host)?;
    if let Some(userinfo) = userinfo {
        let allowed = |c: char| c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c);
        if !userinfo.chars().all(allowed) {
            return Err("invalid userinfo".into());
        }
        for part in userinfo.splitn(2, ':') {
            unescape(part, Mode::Other)?;
        }
    }
    Ok(())
}

fn check_host(host: &str) -> Result<(), String> {
    if host.starts_with('[') {
        let close = host.rfind(']').ok_or("missing ']' in host")?;
        check_port(&host[close + 1..])?;
        if let Some(zone) = host[..close].find("%25") {
            unescape(&host[..zone], Mode::Host)?;
            unescape(&host[zone..close], Mode::Zone)?;
            return unescape(&host[close..], Mode::Host);
        }
    } else if let Some(colon) = host.rfind(':') {
        check_port(&host[colon..])?;
    }
    unescape(host, Mode::Host)
}

/// An empty port, or `:` and digits.
fn check_port(colon_port: &str) -> Result<(), String> {
    let ok = match colon_port.strip_prefix(':') {
        Some(digits) => digits.bytes().all(|b| b.is_ascii_digit()),
        None => colon_port.is_empty(),
    };
    if ok {
        Ok(())
    } else {
        Err(format!("invalid port {colon_port:?} after host"))
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Host,
    Zone,
    /// Path, fragment, userinfo: only the escapes are checked.
    Other,
}

/// Go's `unescape` as a check: every `%` starts two hex digits; in a host an
/// escape may only stand for a byte above 0x7f (or be `%25`), and the host's
/// own ASCII characters must be ones a host may hold.
fn unescape(s: &str, mode: Mode) -> Result<(), String> {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c != b'%' {
            if mode != Mode::Other && c < 0x80 && !is_host_char(c) {
                return Err(format!("invalid character {:?} in host name", c as char));
            }
            i += 1;
            continue;
        }
        let escape = &bytes[i..bytes.len().min(i + 3)];
        let bad = || format!("invalid URL escape {:?}", String::from_utf8_lossy(escape));
        let (Some(&high), Some(&low)) = (bytes.get(i + 1), bytes.get(i + 2)) else {
            return Err(bad());
        };
        let (Some(high), Some(low)) = (hex(high), hex(low)) else {
            return Err(bad());
        };
        let is_25 = escape == b"%25";
        match mode {
            Mode::Host if high < 8 && !is_25 => return Err(bad()),
            Mode::Zone => {
                let byte = high << 4 | low;
                if !is_25 && byte != b' ' && !is_host_char(byte) {
                    return Err(bad());
                }
            }
            _ => {}
        }
        i += 3;
    }
    Ok(())
}

/// ASCII a host (or IPv6 zone) may hold unescaped in Go's reading.
fn is_host_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"-_.~!$&'()*+,;=:[]<>\"".contains(&c)
}

fn hex(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Go's `url.ParseQuery` as Ignition's `u.Query()` reads it: pairs split on
/// `&`, a pair holding `;` skipped, keys and values unescaped (`+` is a space),
/// a pair that does not unescape skipped. Values per key in order.
pub(super) fn query(raw: &str) -> BTreeMap<String, Vec<String>> {
    let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for pair in raw.split('&') {
        if pair.is_empty() || pair.contains(';') {
            continue;
        }
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if let (Some(key), Some(value)) = (query_unescape(key), query_unescape(value)) {
            values.entry(key).or_default().push(value);
        }
    }
    values
}

/// Go's `QueryUnescape`: `+` is a space, then `%XX` escapes are undone.
fn query_unescape(s: &str) -> Option<String> {
    let decoded = super::data_url::percent_decode(&s.replace('+', " ")).ok()?;
    Some(String::from_utf8_lossy(&decoded).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheme(url: &str) -> Result<String, String> {
        parse(url).map(|p| p.scheme)
    }

    #[test]
    fn urls_go_accepts() {
        for url in [
            "http://10.0.0.1:8080/ignition/cp1.ign",
            "HTTPS://user:p%40ss@example.com/a%20b?x=%zz",
            "http://[fe80::1%25eth0]:80/x",
            "http://h:/",
            "http://h/a#frag%20ment",
            "http://h/#a\u{1}b",
            "http://h?",
            "http://%C3%A9.example/",
            "tftp://10.0.0.1/pxelinux.0",
            "s3://bucket/key?versionId=1",
            "data:,a%20b",
            // Opaque after the scheme: Go checks nothing there.
            "http:opaque%zz",
            "relative/path",
            // Only the first segment of a scheme-less URL may not hold a colon.
            "a/b:c",
            "",
        ] {
            assert!(parse(url).is_ok(), "{url}: {:?}", parse(url));
        }
        assert_eq!(scheme("HTTPS://h/").unwrap(), "https");
        assert_eq!(
            parse("s3://b/k?versionId=1#f").unwrap().raw_query,
            "versionId=1"
        );
    }

    #[test]
    fn urls_go_refuses() {
        for (url, why) in [
            ("http://10.0.0.v1:a", "invalid port \":a\" after host"),
            ("http://10.0.0 x/", "invalid character ' ' in host name"),
            ("http://h/a\nb", "invalid control character in URL"),
            ("http://h/%zz", "invalid URL escape \"%zz\""),
            ("http://h/a%2", "invalid URL escape \"%2\""),
            ("http://h/#%zz", "invalid URL escape \"%zz\""),
            ("http://%41/", "invalid URL escape \"%41\""),
            ("http://[::1/", "missing ']' in host"),
            ("http://[::1]x/", "invalid port \"x\" after host"),
            ("http://us er@h/", "invalid userinfo"),
            ("http://u%zz@h/", "invalid URL escape \"%zz\""),
            ("http://[fe80::1%25%C3]/", "invalid URL escape \"%C3\""),
            (":foo", "missing protocol scheme"),
            ("-x:y/z", "first path segment in URL cannot contain colon"),
            (
                "1http://h/",
                "first path segment in URL cannot contain colon",
            ),
        ] {
            assert_eq!(parse(url), Err(why.to_string()), "{url}");
        }
    }

    #[test]
    fn query_reads_like_go() {
        let q = query("versionId=&a=1;b=2&version%49d=x&k=a+b&bad=%zz&k=2");
        // `version%49d` is `versionId` once unescaped.
        assert_eq!(q["versionId"], ["", "x"]);
        assert!(!q.contains_key("a") && !q.contains_key("b"), "{q:?}");
        assert_eq!(q["k"], ["a b", "2"]);
        assert!(!q.contains_key("bad"));
        let q = query("versionId=1&versionId=");
        assert_eq!(q["versionId"], ["1", ""]);
    }
}
