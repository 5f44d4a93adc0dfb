//! `pxebuild check`: parse and validate the site file, nothing else.
//!
//! Prints the warnings to stderr and a one-line summary to stdout; a site with
//! errors fails as bad input (exit 2) listing every problem. With `-v` it also
//! prints the release-support table the site was checked against. `--format
//! json` prints one document instead (docs/operations.md), with the same exit codes.
use serde_json::json;

use crate::cmd::global::{Format, Global};
use crate::error::BadInput;
use crate::site::{diagnostic, Site};

/// Arguments of `pxebuild check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Treat warnings as errors (exit 2 when there are any).
    #[arg(long)]
    pub strict: bool,
    /// Output: text (a summary line, problems on stderr) or json (one
    /// document on stdout holding the summary and every problem).
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

pub(crate) fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    if args.format == Format::Json {
        return run_json(global, &args);
    }
    let site = Site::load(&global.site)?;
    site.print_warnings();
    site.check_strict(args.strict)?;
    if crate::log::level() >= 1 {
        println!("ok: {}", site.summary());
    }
    if crate::log::level() >= 2 {
        let f = &site.file;
        let today = crate::site::versions::today();
        let table =
            crate::site::versions::table(&f.cluster.kubernetes_version, &f.cilium.version, today);
        print!("{table}");
    }
    Ok(())
}

/// `{"ok", "site", "errors", "warnings", "diagnostics"}`: `site` is null
/// when the file has errors; `ok` is false then, and under `--strict` when
/// there are warnings (exit 2 either way, as in text).
fn run_json(global: &Global, args: &Args) -> anyhow::Result<()> {
    let text = Site::read(&global.site)?;
    let (site, diagnostics) = match Site::diagnose(&text, &global.site) {
        Ok(site) => {
            let warnings = site.warnings.clone();
            (Some(site), warnings)
        }
        Err(diagnostics) => (None, diagnostics),
    };
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let ok = errors == 0 && !(args.strict && warnings > 0);
    let doc = json!({
        "ok": ok,
        "site": site.as_ref().map(summary),
        "errors": errors,
        "warnings": warnings,
        "diagnostics": diagnostics,
    });
    println!("{doc}");
    if ok {
        return Ok(());
    }
    let mut counts = diagnostic::count(errors, "error");
    counts.push_str(&format!(", {}", diagnostic::count(warnings, "warning")));
    let why = if errors == 0 {
        ", and --strict makes warnings fatal"
    } else {
        ""
    };
    Err(BadInput::new(format!(
        "{} is not valid ({counts}{why})",
        global.site.display()
    )))
}

fn summary(site: &Site) -> serde_json::Value {
    let f = &site.file;
    let control_planes = site.control_planes().count();
    json!({
        "name": f.cluster.name,
        "nodes": f.nodes.len(),
        "control_planes": control_planes,
        "workers": f.nodes.len() - control_planes,
        "kubernetes_version": f.cluster.kubernetes_version,
        "flatcar_channel": f.flatcar.channel,
        "flatcar_version": f.flatcar.version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::Diagnostic;

    #[test]
    fn diagnostics_serialise_with_their_place() {
        let d = Diagnostic {
            severity: crate::site::Severity::Warning,
            file: "site.toml".into(),
            path: "cluster.name".into(),
            line: 3,
            column: 8,
            message: "m".into(),
        };
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            json!({"severity": "warning", "file": "site.toml", "path": "cluster.name",
                   "line": 3, "column": 8, "message": "m"})
        );
    }
}
