//! Structural reading of the parsed YAML tree.
//!
//! Butane configs are read by walking `serde_norway::Value` by hand rather than
//! deriving `Deserialize`, so that every unknown key and type mismatch is
//! reported (all of them, not just the first) with the key path it came from.
//! File modes are checked where they are read ([`Obj::mode`]): out of range is
//! an error, a decimal literal that looks octal a warning.
use std::path::PathBuf;

use serde_norway::{Mapping, Value};

use super::location::Scalars;

/// Butane spec versions of the `flatcar` variant that pxebuild accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Spec {
    V1_0,
    V1_1,
}

impl Spec {
    /// The Ignition spec version this Butane version translates to.
    pub(super) fn ignition_version(self) -> &'static str {
        match self {
            Spec::V1_0 => "3.3.0",
            Spec::V1_1 => "3.4.0",
        }
    }
}

/// A finding before locations are attached.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Raw {
    pub path: String,
    pub message: String,
}

/// Where an item of the output's lists came from in the Butane config.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Origin {
    /// The output item, as a JSON key path (`systemd.units.3`).
    pub json: String,
    /// The Butane item it came from (`systemd.units.1`, `storage.trees.0`).
    pub yaml: String,
    /// Whether the output item has the Butane item's shape (only the key
    /// spelling differs), so that paths inside it map one to one; false for
    /// expansions such as tree files and generated mount units.
    pub same_shape: bool,
}

/// Translation state shared by all sections: findings and options.
pub(super) struct Ctx {
    pub errors: Vec<Raw>,
    pub warnings: Vec<Raw>,
    pub files_dir: Option<PathBuf>,
    pub spec: Spec,
    /// Output list items whose index differs from their Butane item's.
    pub origins: Vec<Origin>,
    /// What the YAML text says about scalars (quoted or not, plain text).
    pub scalars: Scalars,
}

impl Ctx {
    pub(super) fn new(files_dir: Option<PathBuf>, spec: Spec) -> Self {
        Ctx {
            errors: Vec::new(),
            warnings: Vec::new(),
            files_dir,
            spec,
            origins: Vec::new(),
            scalars: Scalars::default(),
        }
    }

    /// Records where output item `json` came from.
    pub(super) fn origin(&mut self, json: String, yaml: &str, same_shape: bool) {
        self.origins.push(Origin {
            json,
            yaml: yaml.to_string(),
            same_shape,
        });
    }

    pub(super) fn error(&mut self, path: &str, message: impl Into<String>) {
        self.errors.push(Raw {
            path: path.to_string(),
            message: message.into(),
        });
    }

    pub(super) fn warn(&mut self, path: &str, message: impl Into<String>) {
        self.warnings.push(Raw {
            path: path.to_string(),
            message: message.into(),
        });
    }

    /// Errors unless the config's version is at least `min` (e.g. `*_local` keys).
    pub(super) fn require_spec(&mut self, path: &str, min: Spec, what: &str) -> bool {
        if self.spec >= min {
            return true;
        }
        self.error(path, format!("{what} requires version 1.1.0 or newer"));
        false
    }
}

/// Appends one segment to a key path.
pub(super) fn join(path: &str, key: impl std::fmt::Display) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// YAML type name for messages.
pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a mapping",
        Value::Tagged(_) => "a tagged value",
    }
}

/// A YAML mapping whose keys have been checked against the allowed set.
#[derive(Clone, Copy)]
pub(super) struct Obj<'v> {
    map: &'v Mapping,
}

/// A value together with its key path.
pub(super) struct At<'v, T> {
    pub path: String,
    pub value: &'v T,
}

impl<'v> Obj<'v> {
    /// Reads `v` as a mapping allowing only `allowed` keys; `null` counts as absent.
    pub(super) fn new(cx: &mut Ctx, v: &'v Value, path: &str, allowed: &[&str]) -> Option<Obj<'v>> {
        let map = match v {
            Value::Null => return None,
            Value::Mapping(m) => m,
            other => {
                cx.error(
                    path,
                    format!("expected a mapping, found {}", type_name(other)),
                );
                return None;
            }
        };
        for key in map.keys() {
            match key.as_str() {
                Some(k) if allowed.contains(&k) => {}
                Some(k) => cx.error(&join(path, k), format!("unknown key \"{k}\"")),
                None => cx.error(
                    path,
                    format!("keys must be strings, found {}", type_name(key)),
                ),
            }
        }
        Some(Obj { map })
    }

    /// The value of `key`, `None` when absent or null.
    pub(super) fn raw(&self, key: &str) -> Option<&'v Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    pub(super) fn has(&self, key: &str) -> bool {
        self.raw(key).is_some()
    }

    /// A string. Like Butane's YAML library, a plain number or boolean is
    /// taken as its source text (`inline: 1.50` is "1.50").
    pub(super) fn str(&self, cx: &mut Ctx, path: &str, key: &str) -> Option<String> {
        let v = self.raw(key)?;
        let s = scalar_text(cx, &join(path, key), v);
        if s.is_none() {
            cx.error(
                &join(path, key),
                format!("expected a string, found {}", type_name(v)),
            );
        }
        s
    }

    /// Like [`Obj::str`] but reports a missing key.
    pub(super) fn req_str(&self, cx: &mut Ctx, path: &str, key: &str) -> Option<String> {
        if !self.has(key) {
            cx.error(&join(path, key), format!("missing required key \"{key}\""));
            return None;
        }
        self.str(cx, path, key)
    }

    /// A boolean; like Butane's YAML library (go-yaml v3) decoding into a
    /// bool, the YAML 1.1 words `y`/`yes`/`on` and `n`/`no`/`off` (in
    /// lower, Title or UPPER case) are accepted too.
    pub(super) fn bool(&self, cx: &mut Ctx, path: &str, key: &str) -> Option<bool> {
        match self.raw(key)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) if yaml11_bool(s).is_some() => yaml11_bool(s),
            other => {
                cx.error(
                    &join(path, key),
                    format!("expected a boolean, found {}", type_name(other)),
                );
                None
            }
        }
    }

    pub(super) fn int(&self, cx: &mut Ctx, path: &str, key: &str) -> Option<i64> {
        match self.raw(key)? {
            Value::Number(n) if n.as_i64().is_some() => n.as_i64(),
            other => {
                cx.error(
                    &join(path, key),
                    format!("expected an integer, found {}", type_name(other)),
                );
                None
            }
        }
    }

    /// The items of a list-valued key with their paths (empty when absent).
    pub(super) fn list(&self, cx: &mut Ctx, path: &str, key: &str) -> Vec<At<'v, Value>> {
        let Some(v) = self.raw(key) else {
            return Vec::new();
        };
        let here = join(path, key);
        match v {
            Value::Sequence(items) => items
                .iter()
                .enumerate()
                .map(|(i, value)| At {
                    path: join(&here, i),
                    value,
                })
                .collect(),
            other => {
                cx.error(
                    &here,
                    format!("expected a list, found {}", type_name(other)),
                );
                Vec::new()
            }
        }
    }

    /// A list of strings; `None` when absent or when any item is not a string.
    pub(super) fn strings(&self, cx: &mut Ctx, path: &str, key: &str) -> Option<Vec<String>> {
        let items = self.list(cx, path, key);
        if items.is_empty() {
            return None;
        }
        let mut out = Vec::new();
        for item in items {
            match scalar_text(cx, &item.path, item.value) {
                Some(s) => out.push(s),
                None => cx.error(
                    &item.path,
                    format!("expected a string, found {}", type_name(item.value)),
                ),
            }
        }
        Some(out)
    }

    /// A nested mapping.
    pub(super) fn obj(
        &self,
        cx: &mut Ctx,
        path: &str,
        key: &str,
        allowed: &[&str],
    ) -> Option<Obj<'v>> {
        Obj::new(cx, self.raw(key)?, &join(path, key), allowed)
    }

    /// A list of mappings, each with its path.
    pub(super) fn objs(
        &self,
        cx: &mut Ctx,
        path: &str,
        key: &str,
        allowed: &[&str],
    ) -> Vec<(String, Obj<'v>)> {
        let mut out = Vec::new();
        for item in self.list(cx, path, key) {
            if item.value.is_null() {
                cx.error(&item.path, "expected a mapping, found null");
            } else if let Some(o) = Obj::new(cx, item.value, &item.path, allowed) {
                out.push((item.path, o));
            }
        }
        out
    }

    /// A file mode: a YAML integer, or an octal literal such as `0644` / `0o644`
    /// (YAML 1.2 parsers read a leading-zero literal as a string; Butane, like
    /// YAML 1.1, reads it as octal).
    pub(super) fn mode(&self, cx: &mut Ctx, path: &str, key: &str) -> Option<i64> {
        let here = join(path, key);
        let mode = match self.raw(key)? {
            Value::Number(n) if n.as_i64().is_some() => n.as_i64()?,
            // Butane reads modes as integers: a quoted "0644" is a string there.
            Value::String(s) if cx.scalars.quoted.contains(&here) => {
                cx.error(
                    &here,
                    format!(
                        "expected an integer, found the quoted string \"{s}\" ({})",
                        quoted_mode_hint(s)
                    ),
                );
                return None;
            }
            Value::String(s) => match parse_octal(s) {
                Some(m) => m,
                None => {
                    cx.error(&here, format!("invalid mode \"{s}\": expected an integer or an octal literal like 0644"));
                    return None;
                }
            },
            other => {
                cx.error(
                    &here,
                    format!("expected an integer, found {}", type_name(other)),
                );
                return None;
            }
        };
        check_mode(cx, &here, mode);
        Some(mode)
    }
}

/// Errors on modes beyond 0o7777; warns when a decimal literal looks like it
/// was meant as octal (e.g. `644`, which is 0o1204).
fn check_mode(cx: &mut Ctx, path: &str, mode: i64) {
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

/// The text of a scalar for a string field: strings as they are, plain
/// numbers and booleans as written in the source (falling back to their
/// canonical form where the scanner did not see them).
fn scalar_text(cx: &Ctx, path: &str, v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(_) | Value::Bool(_) => Some(
            cx.scalars
                .plain
                .get(path)
                .cloned()
                .unwrap_or_else(|| match v {
                    Value::Number(n) => n.to_string(),
                    _ => v.as_bool().unwrap_or_default().to_string(),
                }),
        ),
        _ => None,
    }
}

/// The YAML 1.1 boolean words go-yaml v3 accepts for a bool target.
fn yaml11_bool(s: &str) -> Option<bool> {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

/// Parses `0644` or `0o644`; `None` for anything else.
/// What to tell the author of a quoted mode: an octal number only needs its
/// quotes removed (and a leading zero when it has none, or it would be read
/// as decimal); anything else is not a mode at all.
fn quoted_mode_hint(s: &str) -> String {
    let digits = s.strip_prefix("0o").unwrap_or(s);
    let octal = !digits.is_empty() && digits.bytes().all(|b| (b'0'..=b'7').contains(&b));
    if !octal {
        "a mode is an octal number such as 0644".to_string()
    } else if s.starts_with('0') {
        format!("write the mode without quotes: {s}")
    } else {
        format!("write the mode without quotes, as octal with a leading zero: 0{s}")
    }
}

fn parse_octal(s: &str) -> Option<i64> {
    let digits = s.strip_prefix("0o").or_else(|| s.strip_prefix('0'))?;
    if digits.is_empty() || !digits.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return None;
    }
    i64::from_str_radix(digits, 8).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> Ctx {
        Ctx::new(None, Spec::V1_0)
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_reported_with_paths() {
        let v: Value = serde_norway::from_str("a: [1]\nb: x\nc: [{}]").unwrap();
        let mut cx = cx();
        let o = Obj::new(&mut cx, &v, "top", &["a", "c"]).unwrap();
        assert_eq!(o.str(&mut cx, "top", "a"), None);
        assert_eq!(o.strings(&mut cx, "top", "c"), Some(vec![]));
        let paths: Vec<_> = cx.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["top.b", "top.a", "top.c.0"]);
        assert_eq!(cx.errors[0].message, "unknown key \"b\"");
    }

    #[test]
    fn numbers_and_booleans_are_strings_where_strings_are_expected() {
        let v: Value = serde_norway::from_str("a: 1.50\nb: [7, true]").unwrap();
        let mut cx = cx();
        cx.scalars.plain.insert("a".into(), "1.50".into());
        let o = Obj::new(&mut cx, &v, "", &["a", "b"]).unwrap();
        assert_eq!(o.str(&mut cx, "", "a").as_deref(), Some("1.50"));
        assert_eq!(
            o.strings(&mut cx, "", "b"),
            Some(vec!["7".to_string(), "true".to_string()])
        );
        assert!(cx.errors.is_empty());
    }

    #[test]
    fn yaml_1_1_booleans() {
        let v: Value =
            serde_norway::from_str("a: yes\nb: Off\nc: Y\nd: \"on\"\ne: maybe\nf: TRUE").unwrap();
        let mut cx = cx();
        let o = Obj::new(&mut cx, &v, "", &["a", "b", "c", "d", "e", "f"]).unwrap();
        let got: Vec<_> = ["a", "b", "c", "d", "e", "f"]
            .iter()
            .map(|k| o.bool(&mut cx, "", k))
            .collect();
        assert_eq!(
            got,
            [
                Some(true),
                Some(false),
                Some(true),
                Some(true),
                None,
                Some(true)
            ]
        );
        assert_eq!(cx.errors.len(), 1);
        assert_eq!(cx.errors[0].message, "expected a boolean, found a string");
    }

    #[test]
    fn octal_literals_parse() {
        assert_eq!(parse_octal("0644"), Some(0o644));
        assert_eq!(parse_octal("0o755"), Some(0o755));
        assert_eq!(parse_octal("0"), None);
        assert_eq!(parse_octal("0648"), None);
        assert_eq!(parse_octal("644"), None);
    }

    #[test]
    fn quoted_modes_are_errors_and_only_octal_ones_get_the_unquote_hint() {
        let (_, scalars) = crate::butane::location::scan_with_scalars(
            "a: \"0644\"\nb: \"0o755\"\nc: \"644\"\nd: \"rw\"\ne: \"0648\"\n",
        );
        let v: Value = serde_norway::from_str(
            "a: \"0644\"\nb: \"0o755\"\nc: \"644\"\nd: \"rw\"\ne: \"0648\"\n",
        )
        .unwrap();
        let mut cx = cx();
        cx.scalars = scalars;
        let keys = ["a", "b", "c", "d", "e"];
        let o = Obj::new(&mut cx, &v, "", &keys).unwrap();
        for k in keys {
            assert_eq!(o.mode(&mut cx, "", k), None);
        }
        let got: Vec<&str> = cx.errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            got,
            [
                r#"expected an integer, found the quoted string "0644" (write the mode without quotes: 0644)"#,
                r#"expected an integer, found the quoted string "0o755" (write the mode without quotes: 0o755)"#,
                r#"expected an integer, found the quoted string "644" (write the mode without quotes, as octal with a leading zero: 0644)"#,
                r#"expected an integer, found the quoted string "rw" (a mode is an octal number such as 0644)"#,
                r#"expected an integer, found the quoted string "0648" (a mode is an octal number such as 0644)"#,
            ]
        );
    }

    #[test]
    fn mode_reads_octal_strings_and_integers() {
        let v: Value = serde_norway::from_str("a: 0644\nb: 420\nc: 0o755").unwrap();
        let mut cx = cx();
        let o = Obj::new(&mut cx, &v, "", &["a", "b", "c"]).unwrap();
        assert_eq!(o.mode(&mut cx, "", "a"), Some(0o644));
        assert_eq!(o.mode(&mut cx, "", "b"), Some(0o644));
        assert_eq!(o.mode(&mut cx, "", "c"), Some(0o755));
        assert!(cx.errors.is_empty() && cx.warnings.is_empty());
    }

    fn msgs(f: impl FnOnce(&mut Ctx)) -> (Vec<String>, Vec<String>) {
        let mut cx = cx();
        f(&mut cx);
        let m = |v: &Vec<Raw>| v.iter().map(|r| r.message.clone()).collect();
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
}
