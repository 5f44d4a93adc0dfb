//! Semantic checks that serde cannot express: absolute paths, mode range,
//! hash format, URL schemes, unit suffixes, and uniqueness.
use std::collections::BTreeMap;

use super::schema::{self, Mode, Version};
use super::translate::Context;

/// Unit types systemd knows; a unit name must end in one of them.
const UNIT_SUFFIXES: &[&str] = &[
    ".service",
    ".socket",
    ".device",
    ".mount",
    ".automount",
    ".swap",
    ".target",
    ".path",
    ".timer",
    ".snapshot",
    ".slice",
    ".scope",
];

/// Reports `path` unless `value` is an absolute path.
pub fn absolute(ctx: &mut Context, value: &str, path: &str) {
    if !value.starts_with('/') {
        ctx.error(path, "path must be absolute");
    }
}

/// Range-checks a mode; special bits only warn in 1.0.0 since Ignition 3.3.0
/// ignores them (3.4.0 applies setuid, setgid and sticky).
pub fn mode(ctx: &mut Context, mode: Option<Mode>, path: &str) -> Option<i64> {
    let Mode(m) = mode?;
    if !(0..=0o7777).contains(&m) {
        ctx.error(path, &format!("mode {m:#o} is out of range (0 to 07777)"));
        return None;
    }
    if m & 0o7000 != 0 && ctx.version == Version::V1_0 {
        ctx.warning(
            path,
            &format!(
                "special mode bits of {m:#o} are ignored by Ignition 3.3.0; use version 1.1.0"
            ),
        );
    }
    Some(m)
}

/// `sha256-<64 hex>` or `sha512-<128 hex>`, lower-case.
pub fn hash(text: &str) -> Result<(), String> {
    let ok = match text.split_once('-') {
        Some(("sha256", hex)) => is_hex(hex, 64),
        Some(("sha512", hex)) => is_hex(hex, 128),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid hash `{text}`: expected sha256-<64 hex digits> or sha512-<128 hex digits>"
        ))
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The URL schemes Ignition fetches from (`arn` only from spec 3.4.0).
pub fn source_url(url: &str, version: Version) -> Result<(), String> {
    let scheme = url.split_once(':').map(|(s, _)| s).unwrap_or("");
    let allowed = ["http", "https", "tftp", "s3", "gs", "data"];
    if allowed.contains(&scheme) || (scheme == "arn" && version == Version::V1_1) {
        Ok(())
    } else {
        Err(format!(
            "unsupported source `{url}`: expected an http, https, tftp, s3, gs or data URL"
        ))
    }
}

/// Header names must be non-empty and unique; headers need an HTTP source.
pub fn http_headers(ctx: &mut Context, r: &schema::Resource, path: &str) {
    if r.http_headers.is_empty() {
        return;
    }
    let http = r
        .source
        .as_deref()
        .is_some_and(|s| s.starts_with("http://") || s.starts_with("https://"));
    if !http {
        ctx.error(
            &format!("{path}.http_headers"),
            "http_headers are only valid with an http or https source",
        );
    }
    let mut seen = Unique::default();
    for (i, h) in r.http_headers.iter().enumerate() {
        let at = format!("{path}.http_headers.{i}.name");
        if h.name.is_empty() {
            ctx.error(&at, "header name must not be empty");
        }
        seen.check(ctx, &h.name, &at, "header");
    }
}

/// A unit name with a known type suffix and something before it.
pub fn unit_name(ctx: &mut Context, name: &str, path: &str) {
    let ok = UNIT_SUFFIXES
        .iter()
        .any(|s| name.len() > s.len() && name.ends_with(s));
    if !ok || name.contains('/') {
        ctx.error(
            path,
            &format!("invalid unit name `{name}`: must end in a unit type such as .service, .timer or .mount"),
        );
    }
}

/// A drop-in name: `<something>.conf`, no slashes.
pub fn dropin_name(ctx: &mut Context, name: &str, path: &str) {
    if name.len() <= ".conf".len() || !name.ends_with(".conf") || name.contains('/') {
        ctx.error(
            path,
            &format!("invalid drop-in name `{name}`: must end in .conf"),
        );
    }
}

/// Tracks the first place each key was seen, reporting repeats.
#[derive(Default)]
pub struct Unique {
    seen: BTreeMap<String, String>,
}

impl Unique {
    pub fn check(&mut self, ctx: &mut Context, key: &str, path: &str, what: &str) {
        if let Some(first) = self.seen.get(key) {
            ctx.error(
                path,
                &format!("duplicate {what} `{key}` (first at {first})"),
            );
        } else {
            self.seen.insert(key.to_string(), path.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_formats() {
        assert!(hash(&format!("sha256-{}", "a".repeat(64))).is_ok());
        assert!(hash(&format!("sha512-{}", "0".repeat(128))).is_ok());
        assert!(hash(&format!("sha256-{}", "a".repeat(63))).is_err());
        assert!(hash(&format!("md5-{}", "a".repeat(32))).is_err());
        assert!(hash(&format!("sha256-{}", "A".repeat(64))).is_err());
    }

    #[test]
    fn source_schemes() {
        assert!(source_url("https://x/y", Version::V1_0).is_ok());
        assert!(source_url("arn:aws:s3:::b/k", Version::V1_0).is_err());
        assert!(source_url("arn:aws:s3:::b/k", Version::V1_1).is_ok());
        assert!(source_url("/etc/x", Version::V1_0).is_err());
    }
}
