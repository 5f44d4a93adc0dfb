//! `pxebuild completions <shell>` and `pxebuild man --out DIR`: shell
//! completion scripts and man pages generated from the clap definition
//! itself, so they cannot describe flags the binary does not have.
//! `docs/man/` holds the generated pages; a test regenerates them and fails
//! when they differ (`pxebuild man --out docs/man` refreshes them).
//! The definition is handed in by `cli`, which owns it.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Arguments of `pxebuild completions`.
#[derive(Debug, clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Arguments of `pxebuild man`.
#[derive(Debug, clap::Args)]
pub struct ManArgs {
    /// Directory to write the pages into (created if missing).
    #[arg(long, value_name = "DIR", default_value = "docs/man")]
    pub out: PathBuf,
}

/// Prints the completion script for `cli`, the whole clap definition.
pub(crate) fn run_completions(args: CompletionsArgs, mut cmd: clap::Command) -> Result<()> {
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "pxebuild", &mut out);
    Ok(())
}

/// Writes the man pages of `cli`, the whole clap definition.
pub(crate) fn run_man(args: ManArgs, cli: clap::Command) -> Result<()> {
    let pages = man_pages(cli)?;
    write_pages(&args.out, &pages)?;
    crate::info!(
        "wrote {} man pages into {}",
        pages.len(),
        args.out.display()
    );
    Ok(())
}

/// Every page as (file name, roff text): `pxebuild.1`, then one per
/// subcommand (`pxebuild-build.1`, `pxebuild-lab-run.1`, ...). The version
/// line carries the package version only, not the commit, so the pages
/// checked in do not change with every commit.
pub(crate) fn man_pages(cli: clap::Command) -> Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = cli
        .version(env!("CARGO_PKG_VERSION"))
        .disable_help_subcommand(true);
    cmd.build();
    let mut pages = Vec::new();
    collect(&cmd, &mut pages)?;
    Ok(pages)
}

fn collect(cmd: &clap::Command, pages: &mut Vec<(String, Vec<u8>)>) -> Result<()> {
    let man = clap_mangen::Man::new(cmd.clone())
        .source(format!("pxebuild {}", env!("CARGO_PKG_VERSION")));
    let mut text = Vec::new();
    man.render(&mut text).context("rendering a man page")?;
    pages.push((man.get_filename(), text));
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        collect(sub, pages)?;
    }
    Ok(())
}

fn write_pages(dir: &Path, pages: &[(String, Vec<u8>)]) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    for (name, text) in pages {
        let path = dir.join(name);
        crate::fsutil::atomic_write(&path, text, 0o644)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
