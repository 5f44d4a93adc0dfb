//! Butane (variant `flatcar`) → Ignition translation, done in-process.
//!
//! Node templates are Butane; pxebuild turns them into Ignition itself so that
//! builds stay offline, fast and deterministic. The pipeline is:
//! `schema` (strict serde input structs) → `translate` (onto the typed
//! `ignition-config` v3_3 structs, with `validate` checks and `data_url`
//! encoding along the way) → `output` (version conversion, null stripping,
//! compact JSON). `location` maps key paths back to YAML line/column.
use std::fmt;
use std::path::PathBuf;

mod data_url;
mod location;
mod mount;
mod output;
mod resource;
mod schema;
mod translate;
mod trees;
mod validate;

pub use data_url::{decode as decode_data_url, encode as encode_data_url};

/// How to translate.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Directory that `local`, `contents_local`, `ssh_authorized_keys_local` and
    /// `trees` paths are relative to; they may not escape it. `None` refuses them.
    pub files_dir: Option<PathBuf>,
    /// Treat warnings as errors.
    pub strict: bool,
}

/// A successful translation.
#[derive(Debug, Clone)]
pub struct Translation {
    /// The Ignition config, compact JSON without a trailing newline.
    pub json: String,
    /// The Ignition spec version emitted, e.g. `3.3.0`.
    pub spec_version: String,
    /// Non-fatal findings (empty when `strict` was set, as they fail then).
    pub warnings: Vec<Diagnostic>,
}

/// One problem in the input, with its place in the YAML when known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line of the offending node.
    pub line: Option<usize>,
    /// 1-based column of the offending node.
    pub column: Option<usize>,
    /// Dotted key path, sequence indexes as numbers: `storage.files.0.path`.
    pub path: String,
    /// What is wrong, in lower case.
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

/// Translates a Butane document to Ignition JSON.
///
/// Errors (and, with `opts.strict`, warnings too) come back as diagnostics,
/// sorted by position in the input.
pub fn translate(yaml: &str, opts: &Options) -> Result<Translation, Vec<Diagnostic>> {
    let doc = schema::parse(yaml).map_err(|d| vec![*d])?;
    let mut ctx = translate::Context::new(opts, doc.version);
    let ignition = translate::config(&mut ctx, &doc.body);
    let (errors, warnings) = ctx.finish(yaml);
    if !errors.is_empty() {
        return Err(errors);
    }
    if opts.strict && !warnings.is_empty() {
        return Err(warnings);
    }
    let json = output::serialise(ignition, doc.version).map_err(|message| {
        vec![Diagnostic {
            line: None,
            column: None,
            path: String::new(),
            message,
        }]
    })?;
    Ok(Translation {
        json,
        spec_version: doc.version.ignition_version().to_string(),
        warnings,
    })
}
