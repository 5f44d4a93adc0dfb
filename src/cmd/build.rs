//! `pxebuild build`: validate the site, run the build graph, publish dist/.
//!
//! A build that published prints a summary and the next steps; a no-op build
//! (dist/ already held this build) one line. `--format json` prints the
//! summary as one document on stdout instead (docs/build.md).
use std::path::PathBuf;

use anyhow::Result;

use crate::cmd::global::{Format, Global};
use crate::recipe::{self, BuildOptions, BuildReport};
use crate::site::Site;

/// Arguments of `pxebuild build`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to publish the boot tree into, replaced atomically: a new
    /// path, an empty directory or a tree a build published (never the
    /// site's own directory, secrets, templates, payload or cache).
    #[arg(long, value_name = "DIR", default_value = crate::layout::SITE_DIST)]
    pub out: PathBuf,
    /// How many steps may run at once (default: the number of CPUs).
    #[arg(long, short = 'j', value_name = "N")]
    pub jobs: Option<usize>,
    /// Print, for every step that ran, why it ran.
    #[arg(long)]
    pub explain: bool,
    /// Use only artifacts already in the cache; name whatever is missing.
    #[arg(long)]
    pub offline: bool,
    /// Treat warnings (site, templates, Butane) as errors.
    #[arg(long)]
    pub strict: bool,
    /// Re-hash every cached artifact and output before trusting it.
    #[arg(long)]
    pub verify_cache: bool,
    /// Summary output: text, or json (one document on stdout).
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

pub(crate) fn run(global: &Global, args: Args) -> Result<()> {
    let site = Site::load(&global.site)?;
    site.print_warnings();
    site.check_strict(args.strict)?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let opts = BuildOptions {
        out: args.out.clone(),
        jobs,
        offline: args.offline,
        strict: args.strict,
        verify_cache: args.verify_cache,
        explain: args.explain,
    };
    let report = recipe::build(&site, &opts)?;
    if args.format == Format::Json {
        println!("{}", summary_json(&report, &args));
        return Ok(());
    }
    print_summary(&report, &args);
    if report.replaced {
        crate::info!(
            "{}",
            crate::day2::handoff::next_steps(&site, &args.out).trim_end()
        );
    }
    Ok(())
}

/// `{"out", "published", "steps", "ran": [{"id", "why"}], "files"}`.
fn summary_json(report: &BuildReport, args: &Args) -> serde_json::Value {
    let ran: Vec<serde_json::Value> = report
        .ran()
        .map(|(id, why)| serde_json::json!({"id": id, "why": why}))
        .collect();
    serde_json::json!({
        "out": args.out,
        "published": report.replaced,
        "steps": report.outcomes.len(),
        "ran": ran,
        "files": report.manifest.files.len(),
    })
}

fn print_summary(report: &BuildReport, args: &Args) {
    let ran: Vec<(&str, &str)> = report.ran().collect();
    if !report.replaced && ran.is_empty() {
        // A no-op build: one line, also under --explain.
        crate::info!(
            "{} is up to date: {} steps cached, {} files unchanged",
            args.out.display(),
            report.outcomes.len(),
            report.manifest.files.len()
        );
        return;
    }
    if args.explain {
        for (id, why) in &ran {
            println!("ran {id}: {why}");
        }
        if ran.is_empty() {
            println!(
                "nothing to do: all {} steps are cached",
                report.outcomes.len()
            );
        }
    }
    let state = if report.replaced {
        "published"
    } else {
        "unchanged"
    };
    crate::info!(
        "{} steps, {} ran; {} files {state} in {}",
        report.outcomes.len(),
        ran.len(),
        report.manifest.files.len(),
        args.out.display()
    );
}
