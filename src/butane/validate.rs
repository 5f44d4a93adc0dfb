//! Semantic checks on individual values, and duplicate detection.
//!
//! Each check records its finding in the [`Ctx`] under the key path it was
//! given, so that the caller decides where in the YAML the problem points.
use std::collections::HashMap;

use super::schema::Ctx;

/// Unit types systemd knows; a unit name must end in one of these.
pub(super) const UNIT_SUFFIXES: &[&str] = &[
    ".service",
    ".socket",
    ".timer",
    ".mount",
    ".target",
    ".path",
    ".slice",
    ".scope",
    ".automount",
    ".swap",
    ".device",
];

/// URL schemes Ignition can fetch from.
const SCHEMES: &[&str] = &["http", "https", "tftp", "s3", "gs", "data"];

pub(super) fn check_abs_path(cx: &mut Ctx, path: &str, value: &str) {
    if !value.starts_with('/') {
        cx.error(path, format!("path must be absolute, got \"{value}\""));
    }
}

pub(super) fn check_hash(cx: &mut Ctx, path: &str, hash: &str) {
    let ok = match hash.split_once('-') {
        Some(("sha512", hex)) => is_hex(hex, 128),
        Some(("sha256", hex)) => is_hex(hex, 64),
        _ => false,
    };
    if !ok {
        cx.error(path, format!("invalid hash \"{hash}\": expected sha512-<128 hex digits> or sha256-<64 hex digits>"));
    }
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks a resource URL's scheme; returns the scheme when valid.
pub(super) fn check_url(cx: &mut Ctx, path: &str, url: &str) -> Option<String> {
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase());
    match scheme {
        Some(s) if SCHEMES.contains(&s.as_str()) => Some(s),
        Some(s) if s == "arn" && cx.spec >= super::schema::Spec::V1_1 => Some(s),
        _ => {
            cx.error(path, format!("unsupported or missing URL scheme in \"{url}\" (use http, https, tftp, s3, gs or data)"));
            None
        }
    }
}

pub(super) fn check_unit_name(cx: &mut Ctx, path: &str, name: &str) {
    let stem_ok = UNIT_SUFFIXES
        .iter()
        .any(|s| name.len() > s.len() && name.ends_with(s));
    if !stem_ok || name.contains('/') {
        cx.error(
            path,
            format!(
                "invalid unit name \"{name}\": must end in one of {}",
                UNIT_SUFFIXES.join(" ")
            ),
        );
    }
}

pub(super) fn check_dropin_name(cx: &mut Ctx, path: &str, name: &str) {
    if name.len() <= ".conf".len() || !name.ends_with(".conf") || name.contains('/') {
        cx.error(
            path,
            format!("invalid dropin name \"{name}\": must end in .conf"),
        );
    }
}

/// Remembers names per namespace and reports the second use of one.
#[derive(Default)]
pub(super) struct Seen {
    first: HashMap<(String, String), String>,
}

impl Seen {
    /// Records `name` in namespace `what`; on a repeat, errors at `path`
    /// naming where it was first defined.
    /// Where `name` in namespace `what` was first defined.
    pub(super) fn first(&self, what: &str, name: &str) -> Option<&str> {
        self.first
            .get(&(what.to_string(), name.to_string()))
            .map(String::as_str)
    }

    pub(super) fn add(&mut self, cx: &mut Ctx, what: &str, name: &str, path: &str) {
        let key = (what.to_string(), name.to_string());
        if let Some(first) = self.first.get(&key) {
            cx.error(
                path,
                format!("duplicate {what} \"{name}\" (first defined at {first})"),
            );
        } else {
            self.first.insert(key, path.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::schema::Spec;
    use super::*;

    fn msgs(f: impl FnOnce(&mut Ctx)) -> (Vec<String>, Vec<String>) {
        let mut cx = Ctx::new(None, Spec::V1_0);
        f(&mut cx);
        let m = |v: &Vec<super::super::schema::Raw>| v.iter().map(|r| r.message.clone()).collect();
        (m(&cx.errors), m(&cx.warnings))
    }

    #[test]
    fn hashes() {
        let ok256 = format!("sha256-{}", "a".repeat(64));
        let ok512 = format!("sha512-{}", "0F".repeat(64));
        assert_eq!(msgs(|c| check_hash(c, "h", &ok256)).0.len(), 0);
        assert_eq!(msgs(|c| check_hash(c, "h", &ok512)).0.len(), 0);
        assert_eq!(msgs(|c| check_hash(c, "h", "sha256-abc")).0.len(), 1);
        assert_eq!(
            msgs(|c| check_hash(c, "h", &format!("md5-{}", "a".repeat(32))))
                .0
                .len(),
            1
        );
    }

    #[test]
    fn names() {
        assert!(msgs(|c| check_unit_name(c, "n", "a.service")).0.is_empty());
        assert_eq!(msgs(|c| check_unit_name(c, "n", "a.conf")).0.len(), 1);
        assert_eq!(msgs(|c| check_unit_name(c, "n", ".service")).0.len(), 1);
        assert!(msgs(|c| check_dropin_name(c, "n", "10-x.conf"))
            .0
            .is_empty());
        assert_eq!(msgs(|c| check_dropin_name(c, "n", "x.service")).0.len(), 1);
    }

    #[test]
    fn urls_and_duplicates() {
        assert_eq!(
            msgs(|c| {
                check_url(c, "u", "ftp://x");
            })
            .0
            .len(),
            1
        );
        assert!(msgs(|c| {
            check_url(c, "u", "https://x/y");
        })
        .0
        .is_empty());
        let (e, _) = msgs(|c| {
            let mut s = Seen::default();
            s.add(c, "path", "/a", "x.0");
            s.add(c, "path", "/a", "x.1");
            s.add(c, "unit", "/a", "y.0");
        });
        assert_eq!(e, ["duplicate path \"/a\" (first defined at x.0)"]);
    }
}
