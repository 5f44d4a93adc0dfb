//! `pxebuild serve`.
use crate::cli::Global;

/// Arguments of `pxebuild serve`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_global: &Global, _args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`serve` is not available in this build yet")
}
