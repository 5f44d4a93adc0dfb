//! `pxebuild butane`: translate one Butane (Flatcar variant) document to
//! Ignition JSON, like the upstream `butane` tool, so operators can check
//! their own snippets with exactly the translator the build uses.
//!
//! Errors are printed one per line as `FILE: line L column C: key.path: …`
//! and fail as bad input (exit 2); warnings are printed as `warning: …` and
//! fail the same way with `--strict`.
use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;

use crate::butane::{self, Options};
use crate::cli::Global;
use crate::error::BadInput;
use crate::fsutil;

/// Arguments of `pxebuild butane`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Butane file to translate; standard input when omitted or `-`.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Directory that `local`, `contents_local`, `ssh_authorized_keys_local` and
    /// `trees` paths are relative to (they may not leave it).
    #[arg(short = 'd', long, value_name = "DIR")]
    pub files_dir: Option<PathBuf>,
    /// Fail (exit 2) on warnings too.
    #[arg(short, long)]
    pub strict: bool,
    /// Write the Ignition JSON to this file instead of standard output.
    #[arg(short, long, value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Indent the JSON output (the default is compact, like the build uses).
    #[arg(short, long)]
    pub pretty: bool,
}

pub fn run(_global: &Global, args: Args) -> anyhow::Result<()> {
    let (name, yaml) = read_input(args.file.as_ref())?;
    let opts = Options {
        files_dir: args.files_dir.clone(),
        strict: args.strict,
    };
    let translation = match butane::translate(&yaml, &opts) {
        Ok(t) => t,
        Err(diagnostics) => {
            for d in &diagnostics {
                eprintln!("{name}: {d}");
            }
            let noun = if diagnostics.len() == 1 {
                "problem"
            } else {
                "problems"
            };
            return Err(BadInput::new(format!(
                "{name}: {} {noun} in the Butane config",
                diagnostics.len()
            )));
        }
    };
    for w in &translation.warnings {
        crate::warn!("{name}: {w}");
    }
    let text = render(&translation.json, args.pretty)?;
    match &args.output {
        Some(path) => fsutil::atomic_write(path, text.as_bytes(), 0o644)
            .with_context(|| format!("writing {}", path.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}

/// The JSON text to emit, newline-terminated.
fn render(json: &str, pretty: bool) -> anyhow::Result<String> {
    let mut text = if pretty {
        let value: serde_json::Value =
            serde_json::from_str(json).context("re-reading the Ignition JSON")?;
        serde_json::to_string_pretty(&value).context("formatting the Ignition JSON")?
    } else {
        json.to_string()
    };
    text.push('\n');
    Ok(text)
}

/// The input's display name and text.
fn read_input(file: Option<&PathBuf>) -> anyhow::Result<(String, String)> {
    match file.filter(|f| f.as_os_str() != "-") {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))
                .map_err(|e| BadInput::new(format!("{e:#}")))?;
            Ok((path.display().to_string(), text))
        }
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading standard input")?;
            Ok(("<stdin>".to_string(), text))
        }
    }
}
