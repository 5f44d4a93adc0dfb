//! `pxebuild secrets`.
use crate::cli::Global;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Show the state.
    Status,
}

pub fn run(_global: &Global, _command: Command) -> anyhow::Result<()> {
    anyhow::bail!("`secrets` is not available in this build yet")
}
