//! YAML line/column for diagnostics.
//!
//! serde_norway gives positions only inside its errors, and `Value` is
//! spanless. Two tools cover every case:
//! - `from_yaml_error` turns a parse/shape error into a diagnostic, reading
//!   the key path and position the error carries.
//! - `locate` finds the node at a dotted key path by re-reading the document
//!   with a visitor that walks to that path and fails deliberately there:
//!   serde_norway stamps the innermost error with the node's position, which is
//!   exactly the location wanted. This works for block and flow style, anchors
//!   and aliases alike, at the cost of one extra parse per diagnostic.
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::Diagnostic;

/// A diagnostic for `path` (dotted), positioned at that node when it exists.
pub fn diagnostic(yaml: &str, path: &str, message: String) -> Diagnostic {
    let (line, column) = match locate(yaml, path) {
        Some((l, c)) => (Some(l), Some(c)),
        None => (None, None),
    };
    Diagnostic {
        line,
        column,
        path: path.to_string(),
        message,
    }
}

/// The 1-based line and column of the node at `path`, if there is one.
pub fn locate(yaml: &str, path: &str) -> Option<(usize, usize)> {
    let segments: Vec<&str> = if path.is_empty() {
        Vec::new()
    } else {
        path.split('.').collect()
    };
    let de = serde_norway::Deserializer::from_str(yaml);
    let err = Finder { target: &segments }.deserialize(de).err()?;
    if err.to_string().contains(FOUND) {
        err.location().map(|l| (l.line(), l.column()))
    } else {
        None
    }
}

/// Marker message of the deliberate failure.
const FOUND: &str = "\u{0}pxebuild-located";

struct Finder<'a> {
    target: &'a [&'a str],
}

impl<'de> DeserializeSeed<'de> for Finder<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.target.is_empty() {
            return Err(de::Error::custom(FOUND));
        }
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Finder<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<KeyText>()? {
            if key.0.as_deref() == Some(self.target[0]) {
                map.next_value_seed(Finder {
                    target: &self.target[1..],
                })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let wanted: Option<usize> = self.target[0].parse().ok();
        let mut index = 0;
        loop {
            let more = if Some(index) == wanted {
                seq.next_element_seed(Finder {
                    target: &self.target[1..],
                })?
            } else {
                seq.next_element::<IgnoredAny>()?.map(|_| ())
            };
            if more.is_none() {
                return Ok(());
            }
            index += 1;
        }
    }

    // Scalars have no children: the path does not exist below them.
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// A mapping key as text when it is a scalar (keys are compared as text).
struct KeyText(Option<String>);

impl<'de> de::Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<KeyText, D::Error> {
        let value = serde_norway::Value::deserialize(d)?;
        Ok(KeyText(match value {
            serde_norway::Value::String(s) => Some(s),
            serde_norway::Value::Number(n) => Some(n.to_string()),
            serde_norway::Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }))
    }
}

/// Turns a serde_norway error into a diagnostic with dotted key path.
pub fn from_yaml_error(err: &serde_norway::Error) -> Box<Diagnostic> {
    let location = err.location();
    let mut text = err.to_string();
    if let Some(loc) = &location {
        let suffix = format!(" at line {} column {}", loc.line(), loc.column());
        if let Some(stripped) = text.strip_suffix(&suffix) {
            text = stripped.to_string();
        }
    }
    let (mut path, message) = split_path(&text);
    if let Some(key) = field_named(&message) {
        path = if path.is_empty() {
            key
        } else {
            format!("{path}.{key}")
        };
    }
    Box::new(Diagnostic {
        line: location.as_ref().map(|l| l.line()),
        column: location.as_ref().map(|l| l.column()),
        path,
        message,
    })
}

/// Splits serde_norway's `storage.files[0]: message` into
/// (`storage.files.0`, `message`).
fn split_path(text: &str) -> (String, String) {
    let is_path_char = |c: char| c.is_ascii_alphanumeric() || "_.[]?-".contains(c);
    match text.split_once(": ") {
        Some((head, rest)) if !head.is_empty() && head.chars().all(is_path_char) => {
            let dotted = head.replace('[', ".").replace(']', "");
            (dotted, rest.to_string())
        }
        _ => (String::new(), text.to_string()),
    }
}

/// The key named by an "unknown field `x`" or "missing field `x`" message.
fn field_named(message: &str) -> Option<String> {
    let rest = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("missing field `"))?;
    rest.split_once('`').map(|(key, _)| key.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "variant: flatcar\nstorage:\n  files:\n    - path: /a\n    - path: rel\n      mode: 0644\nflow: {a: [1, {b: x}]}\n";

    #[test]
    fn locates_block_and_flow_nodes() {
        assert_eq!(locate(DOC, "variant"), Some((1, 10)));
        assert_eq!(locate(DOC, "storage.files.1.path"), Some((5, 13)));
        assert_eq!(locate(DOC, "storage.files.1.mode"), Some((6, 13)));
        assert_eq!(locate(DOC, "flow.a.1.b"), Some((7, 19)));
        assert_eq!(locate(DOC, "storage.files.7"), None);
        assert_eq!(locate(DOC, "nope"), None);
    }

    #[test]
    fn splits_serde_paths() {
        assert_eq!(
            split_path("storage.files[0]: unknown field `x`"),
            (
                "storage.files.0".to_string(),
                "unknown field `x`".to_string()
            )
        );
        assert_eq!(
            split_path("invalid type: string"),
            (String::new(), "invalid type: string".to_string())
        );
    }
}
