//! Butane (variant `flatcar`) → Ignition JSON translation.
//!
//! Owns the whole path from Butane YAML text to a deterministic Ignition config:
//! structural reading with key paths (`schema`), source locations (`location`),
//! embedding of inline/local contents as `data:` URLs (`data_url`, `local`,
//! `trees`), the per-section translations, semantic checks (`validate`) and the
//! final JSON rendering (`output`). Other parts of pxebuild call [`translate`].
use std::fmt;
use std::path::PathBuf;

pub mod data_url;
mod go_url;
mod ignition;
mod local;
mod location;
mod output;
mod passwd;
mod resource;
mod schema;
mod storage;
mod systemd;
mod translate;
mod trees;
mod unit_file;
mod validate;
pub mod verify;

/// How to translate.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Directory that `local:` references (contents, trees, units, keys) resolve against.
    pub files_dir: Option<PathBuf>,
    /// Treat warnings as errors.
    pub strict: bool,
}

/// A successful translation.
#[derive(Debug, Clone)]
pub struct Translation {
    /// The Ignition config, compact JSON with sorted keys.
    pub json: String,
    /// The Ignition spec version emitted (`3.3.0` or `3.4.0`).
    pub spec_version: String,
    /// Non-fatal findings (empty under `strict`, where they are errors).
    pub warnings: Vec<Diagnostic>,
}

/// One problem found in a Butane config, with its YAML location when known.
#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    /// 1-based line of the offending key, if known.
    pub line: Option<usize>,
    /// 1-based column of the offending key, if known.
    pub column: Option<usize>,
    /// Key path such as `storage.files.0.path` (empty for the whole document).
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(line), Some(column)) = (self.line, self.column) {
            write!(f, "line {line} column {column}: ")?;
        }
        if !self.path.is_empty() {
            write!(f, "{}: ", self.path)?;
        }
        f.write_str(&self.message)
    }
}

/// Translates Butane YAML to Ignition JSON, or returns every error found.
pub fn translate(yaml: &str, opts: &Options) -> Result<Translation, Vec<Diagnostic>> {
    translate::run(yaml, opts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostic_display_omits_unknown_parts() {
        let mut d = Diagnostic {
            line: Some(12),
            column: Some(7),
            path: "storage.files.0.path".into(),
            message: "path must be absolute".into(),
        };
        assert_eq!(
            d.to_string(),
            "line 12 column 7: storage.files.0.path: path must be absolute"
        );
        d.line = None;
        assert_eq!(d.to_string(), "storage.files.0.path: path must be absolute");
        d.path.clear();
        assert_eq!(d.to_string(), "path must be absolute");
    }

    #[test]
    fn translate_minimal_configs() {
        let opts = Options::default();
        let tr = translate("variant: flatcar\nversion: 1.0.0\n", &opts).unwrap();
        assert_eq!(tr.json, r#"{"ignition":{"version":"3.3.0"}}"#);
        assert_eq!(tr.spec_version, "3.3.0");
        let tr = translate("variant: flatcar\nversion: 1.1.0\nstorage: {}\n", &opts).unwrap();
        assert_eq!(tr.json, r#"{"ignition":{"version":"3.4.0"}}"#);
        assert_eq!(tr.spec_version, "3.4.0");
    }
}
