//! `pxebuild butane`: translate one Butane (variant `flatcar`) config to
//! Ignition JSON, like the upstream `butane` tool but built in.
//!
//! Errors are printed one per line as `<file>:<line>:<col>: error: <path>:
//! <message>` and make the command fail as bad input (exit 2).
use std::io::Read;
use std::path::PathBuf;

use anyhow::Context;

use crate::butane::{self, Diagnostic, Options};
use crate::cmd::global::Global;
use crate::error::BadInput;

/// Arguments of `pxebuild butane`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Butane config to translate; standard input when omitted or `-`.
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// Directory that `local:` references (file contents, trees, unit
    /// contents, SSH keys) are resolved against; they may not leave it.
    #[arg(long, short = 'd', value_name = "DIR")]
    pub files_dir: Option<PathBuf>,
    /// Treat warnings as errors.
    #[arg(long)]
    pub strict: bool,
    /// Write the Ignition JSON to this file instead of standard output.
    #[arg(long, short = 'o', value_name = "OUT")]
    pub output: Option<PathBuf>,
    /// Indent the JSON for reading (the default is compact).
    #[arg(long, short = 'p')]
    pub pretty: bool,
}

pub(crate) fn run(_global: &Global, args: Args) -> anyhow::Result<()> {
    let (name, yaml) = read_input(args.file.as_deref())?;
    let opts = Options {
        files_dir: args.files_dir.clone(),
        strict: args.strict,
    };
    let tr = match butane::translate(&yaml, &opts) {
        Ok(tr) => tr,
        Err(diags) => {
            for d in &diags {
                eprintln!("{}", format_diag(&name, "error", d));
            }
            return Err(BadInput::new(format!(
                "{name}: {} error(s) in the Butane config",
                diags.len()
            )));
        }
    };
    for w in &tr.warnings {
        eprintln!("{}", format_diag(&name, "warning", w));
    }
    let mut json = if args.pretty {
        let v: serde_json::Value =
            serde_json::from_str(&tr.json).context("re-reading the generated JSON")?;
        serde_json::to_string_pretty(&v).context("formatting JSON")?
    } else {
        tr.json
    };
    json.push('\n');
    match &args.output {
        Some(out) => crate::fsutil::atomic_write(out, json.as_bytes(), 0o644)
            .with_context(|| format!("writing {}", out.display()))?,
        None => print!("{json}"),
    }
    Ok(())
}

fn read_input(file: Option<&std::path::Path>) -> anyhow::Result<(String, String)> {
    match file.filter(|f| f.as_os_str() != "-") {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .with_context(|| format!("reading {}", f.display()))
                .map_err(|e| BadInput::new(format!("{e:#}")))?;
            Ok((f.display().to_string(), text))
        }
        None => {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .context("reading the Butane config from standard input")?;
            Ok(("<stdin>".into(), text))
        }
    }
}

/// `<file>:<line>:<col>: <level>: <path>: <message>`; the location and path
/// parts are left out when unknown.
pub(crate) fn format_diag(name: &str, level: &str, d: &Diagnostic) -> String {
    let loc = match (d.line, d.column) {
        (Some(l), Some(c)) => format!("{name}:{l}:{c}"),
        _ => name.to_string(),
    };
    let path = if d.path.is_empty() {
        String::new()
    } else {
        format!("{}: ", d.path)
    };
    format!("{loc}: {level}: {path}{}", d.message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diagnostics_format_with_and_without_location() {
        let mut d = Diagnostic {
            line: Some(3),
            column: Some(7),
            path: "storage.files.0.path".into(),
            message: "path must be absolute".into(),
        };
        assert_eq!(
            format_diag("x.bu", "error", &d),
            "x.bu:3:7: error: storage.files.0.path: path must be absolute"
        );
        d.line = None;
        d.path.clear();
        assert_eq!(
            format_diag("x.bu", "warning", &d),
            "x.bu: warning: path must be absolute"
        );
    }
}
