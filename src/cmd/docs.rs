//! `pxebuild completions <shell>` and `pxebuild man --out DIR`: shell
//! completion scripts and man pages generated from the clap definition
//! itself, so they cannot describe flags the binary does not have.
//! `docs/man/` holds the generated pages; a test regenerates them and fails
//! when they differ (`pxebuild man --out docs/man` refreshes them).
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::Cli;

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

pub fn run_completions(args: CompletionsArgs) -> Result<()> {
    let mut cmd = Cli::command();
    let mut out = std::io::stdout().lock();
    clap_complete::generate(args.shell, &mut cmd, "pxebuild", &mut out);
    Ok(())
}

pub fn run_man(args: ManArgs) -> Result<()> {
    let pages = man_pages()?;
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
pub fn man_pages() -> Result<Vec<(String, Vec<u8>)>> {
    let mut cmd = Cli::command()
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The CI check for drift: the pages in docs/man are what the CLI
    /// definition generates now.
    #[test]
    fn checked_in_man_pages_match_the_cli() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/man");
        let pages = man_pages().unwrap();
        let mut stale = Vec::new();
        for (name, text) in &pages {
            if std::fs::read(dir.join(name)).ok().as_deref() != Some(text.as_slice()) {
                stale.push(name.clone());
            }
        }
        let wanted: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".1") && !wanted.contains(&name.as_str()) {
                stale.push(format!("{name} (no such command now)"));
            }
        }
        assert!(
            stale.is_empty(),
            "docs/man is out of date ({}); run `cargo run -- man --out docs/man`",
            stale.join(", ")
        );
    }

    #[test]
    fn a_page_per_subcommand_and_completions_for_every_shell() {
        let pages = man_pages().unwrap();
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        for name in ["pxebuild.1", "pxebuild-build.1", "pxebuild-lab-run.1"] {
            assert!(names.contains(&name), "{names:?}");
        }
        let top = String::from_utf8(pages[0].1.clone()).unwrap();
        assert!(top.contains("PXEBUILD_MIRROR"), "the environment is listed");
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "pxebuild", &mut out);
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("verify-cache"), "{shell}: {text}");
        }
    }
}
