//! `pxebuild mirror`.
use crate::cli::Global;

/// Arguments of `pxebuild mirror`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_global: &Global, _args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`mirror` is not available in this build yet")
}
