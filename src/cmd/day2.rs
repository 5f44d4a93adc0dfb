//! Day-2 commands: kubeconfig, untaint, install-argo, wait, token.
use crate::cli::Global;

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Publish the site's bootstrap token to the cluster.
    Publish,
}

/// Arguments of `pxebuild kubeconfig`.
#[derive(Debug, clap::Args)]
pub struct KubeconfigArgs {}
/// Arguments of `pxebuild untaint`.
#[derive(Debug, clap::Args)]
pub struct UntaintArgs {}
/// Arguments of `pxebuild install-argo`.
#[derive(Debug, clap::Args)]
pub struct InstallArgoArgs {}
/// Arguments of `pxebuild wait`.
#[derive(Debug, clap::Args)]
pub struct WaitArgs {}

fn unavailable() -> anyhow::Result<()> {
    anyhow::bail!("day-2 commands are not available in this build yet")
}
pub fn run_token(_g: &Global, _c: TokenCommand) -> anyhow::Result<()> {
    unavailable()
}
pub fn run_kubeconfig(_g: &Global, _a: KubeconfigArgs) -> anyhow::Result<()> {
    unavailable()
}
pub fn run_untaint(_g: &Global, _a: UntaintArgs) -> anyhow::Result<()> {
    unavailable()
}
pub fn run_install_argo(_g: &Global, _a: InstallArgoArgs) -> anyhow::Result<()> {
    unavailable()
}
pub fn run_wait(_g: &Global, _a: WaitArgs) -> anyhow::Result<()> {
    unavailable()
}
