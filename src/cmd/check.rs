//! `pxebuild check`.
use crate::cli::Global;

/// Arguments of `pxebuild check`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_global: &Global, _args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`check` is not available in this build yet")
}
