//! `pxebuild butane`.
use crate::cli::Global;

/// Arguments of `pxebuild butane`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_global: &Global, _args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`butane` is not available in this build yet")
}
