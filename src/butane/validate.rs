//! Semantic checks on individual values, and duplicate detection.
//!
//! Each check records its finding in the [`Ctx`] under the key path it was
//! given, so that the caller decides where in the YAML the problem points.
use std::collections::HashMap;

use super::schema::Ctx;

/// Unit types systemd knows; a unit name must end in one of these.
pub const UNIT_SUFFIXES: &[&str] = &[
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

pub fn check_abs_path(cx: &mut Ctx, path: &str, value: &str) {
    if !value.starts_with('/') {
        cx.error(path, format!("path must be absolute, got \"{value}\""));
    }
}

/// Errors on modes beyond 0o7777; warns when a decimal literal looks like it
/// was meant as octal (e.g. `644`, which is 0o1204).
pub fn check_mode(cx: &mut Ctx, path: &str, mode: i64) {
    if !(0..=0o7777).contains(&mode) {
        cx.error(
            path,
            format!("mode {mode} is out of range (at most 0o7777 = 4095)"),
        );
        return;
    }
    let digits = mode.to_string();
    let octal_looking = (3..=4).contains(&digits.len()) && digits.bytes().all(|b| b <= b'7');
    // Warn only when the decimal value is an odd mode but the same digits read
    // as octal would be an ordinary one (644 → 0o1204, but 0o644 is usual).
    let as_octal = i64::from_str_radix(&digits, 8).unwrap_or(mode);
    if octal_looking && unusual(mode) && !unusual(as_octal) {
        cx.warn(
            path,
            format!("mode {mode} is decimal (0o{mode:o}); did you mean 0{digits}?"),
        );
    }
}

/// Special bits set, or group/other granted something the owner lacks.
fn unusual(mode: i64) -> bool {
    let (owner, group, other) = ((mode >> 6) & 7, (mode >> 3) & 7, mode & 7);
    mode > 0o777 || group & !owner != 0 || other & !owner != 0
}

pub fn check_hash(cx: &mut Ctx, path: &str, hash: &str) {
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
pub fn check_url(cx: &mut Ctx, path: &str, url: &str) -> Option<String> {
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

pub fn check_unit_name(cx: &mut Ctx, path: &str, name: &str) {
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

pub fn check_dropin_name(cx: &mut Ctx, path: &str, name: &str) {
    if name.len() <= ".conf".len() || !name.ends_with(".conf") || name.contains('/') {
        cx.error(
            path,
            format!("invalid dropin name \"{name}\": must end in .conf"),
        );
    }
}

/// Remembers names per namespace and reports the second use of one.
#[derive(Default)]
pub struct Seen {
    first: HashMap<(String, String), String>,
}

impl Seen {
    /// Records `name` in namespace `what`; on a repeat, errors at `path`
    /// naming where it was first defined.
    /// Where `name` in namespace `what` was first defined.
    pub fn first(&self, what: &str, name: &str) -> Option<&str> {
        self.first
            .get(&(what.to_string(), name.to_string()))
            .map(String::as_str)
    }

    pub fn add(&mut self, cx: &mut Ctx, what: &str, name: &str, path: &str) {
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
    fn modes() {
        assert_eq!(msgs(|c| check_mode(c, "m", 0o644)), (vec![], vec![]));
        assert_eq!(msgs(|c| check_mode(c, "m", 0o755)), (vec![], vec![]));
        assert_eq!(msgs(|c| check_mode(c, "m", 0o4755)), (vec![], vec![]));
        let (_, w) = msgs(|c| check_mode(c, "m", 644));
        assert_eq!(w, ["mode 644 is decimal (0o1204); did you mean 0644?"]);
        let (_, w) = msgs(|c| check_mode(c, "m", 755));
        assert_eq!(w, ["mode 755 is decimal (0o1363); did you mean 0755?"]);
        assert_eq!(msgs(|c| check_mode(c, "m", 1777)), (vec![], vec![]));
        let (e, _) = msgs(|c| check_mode(c, "m", 0o10000));
        assert_eq!(e, ["mode 4096 is out of range (at most 0o7777 = 4095)"]);
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
