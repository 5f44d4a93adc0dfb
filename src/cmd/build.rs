//! `pxebuild build`.
use crate::cli::Global;

/// Arguments of `pxebuild build`.
#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_global: &Global, _args: Args) -> anyhow::Result<()> {
    anyhow::bail!("`build` is not available in this build yet")
}
