//! Day-2 commands: kubeconfig, untaint, install-argo, wait, token. Each resolves
//! its arguments and the site, then calls `crate::day2`.
use std::path::PathBuf;

use anyhow::Result;

use crate::cmd::global::Global;
use crate::day2::{self, argo, kubeconfig, Cluster};
use crate::site::types::Duration;
use crate::site::Site;

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Publish the site's bootstrap token to the cluster.
    ///
    /// Creates or updates the Secret kube-system/bootstrap-token-<id> from
    /// secrets/bootstrap-token, expiring cluster.bootstrap_token_ttl from now, so
    /// nodes can join after the token registered at kubeadm init has expired.
    Publish,
}

/// Arguments of `pxebuild kubeconfig`.
#[derive(Debug, clap::Args)]
pub struct KubeconfigArgs {
    /// Write a private copy (mode 0600) to FILE instead of printing the path.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Replace FILE when it exists (it may hold other clusters' contexts).
    #[arg(long, requires = "out")]
    pub force: bool,
}

/// Arguments of `pxebuild untaint`.
#[derive(Debug, clap::Args)]
pub struct UntaintArgs {}

/// Arguments of `pxebuild install-argo`.
#[derive(Debug, clap::Args)]
pub struct InstallArgoArgs {
    /// Helm repository holding the argo-cd chart [default: the boot server's
    /// chart repository (<http base>/charts) with [images] mode = "serve",
    /// else https://argoproj.github.io/argo-helm].
    #[arg(long, value_name = "URL")]
    pub chart_repo: Option<String>,
    /// How long Helm waits for Argo CD to become ready.
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub timeout: Duration,
    /// Print the helm command and the root Application instead of running them
    /// (with --sync-payload: print what would change, write nothing).
    #[arg(long)]
    pub dry_run: bool,
    /// Rewrite the repoURL/targetRevision of payload/'s Applications to site.toml's
    /// [argocd] repo_url/revision and, with [images] mode = "serve", the repoURL
    /// of each chart the site publishes to the boot server's chart repository,
    /// then stop (commit and push, then install).
    #[arg(long)]
    pub sync_payload: bool,
    /// Install although the running Cilium has values payload/'s Cilium
    /// values lack or set differently (Argo CD's first sync changes them on
    /// every agent at once): for changes you mean to make.
    #[arg(long)]
    pub accept_cilium_drift: bool,
    /// Install although a newer Argo CD chart is installed (helm would
    /// downgrade Argo CD and its CRDs).
    #[arg(long)]
    pub allow_downgrade: bool,
}

/// Arguments of `pxebuild wait`.
#[derive(Debug, clap::Args)]
pub struct WaitArgs {
    /// Give up after this long, naming the nodes that are not Ready (e.g. 30m, 1h).
    #[arg(long, value_name = "DURATION", default_value = "10m")]
    pub timeout: Duration,
    /// Pause between two looks at the cluster.
    #[arg(long, value_name = "DURATION", default_value = "5s")]
    pub interval: Duration,
}

pub(crate) fn run_token(global: &Global, command: TokenCommand) -> Result<()> {
    let site = Site::load(&global.site)?;
    match command {
        TokenCommand::Publish => day2::token::publish(&Cluster::for_site(&site)?, &site),
    }
}

pub(crate) fn run_kubeconfig(global: &Global, args: KubeconfigArgs) -> Result<()> {
    let site = Site::load(&global.site)?;
    let path = kubeconfig::require(&site)?;
    match args.out {
        Some(dest) => {
            kubeconfig::write_copy(&path, &dest, args.force)?;
            crate::info!("wrote {} (mode 0600)", dest.display());
        }
        None => println!("{}", kubeconfig::display_path(&path).display()),
    }
    Ok(())
}

pub(crate) fn run_untaint(global: &Global, _args: UntaintArgs) -> Result<()> {
    let site = Site::load(&global.site)?;
    day2::untaint::run(&Cluster::for_site(&site)?, &site)
}

pub(crate) fn run_install_argo(global: &Global, args: InstallArgoArgs) -> Result<()> {
    let site = Site::load(&global.site)?;
    if args.sync_payload {
        // Needs no cluster: payload/ is fixed and pushed before Argo CD exists.
        return day2::sync::run(&site, args.dry_run);
    }
    if args.timeout.as_std().is_zero() {
        return Err(crate::error::BadInput::new(
            "install-argo --timeout 0: helm would not wait for Argo CD, and the root \
             Application would be applied before its CRDs exist; give it time (e.g. 10m)",
        ));
    }
    let opts = argo::Options {
        chart_repo: args
            .chart_repo
            .unwrap_or_else(|| argo::default_chart_repo(&site)),
        timeout: args.timeout.to_string(),
        dry_run: args.dry_run,
        accept_cilium_drift: args.accept_cilium_drift,
        allow_downgrade: args.allow_downgrade,
    };
    argo::install(&Cluster::for_site(&site)?, &site, &opts)
}

pub(crate) fn run_wait(global: &Global, args: WaitArgs) -> Result<()> {
    let site = Site::load(&global.site)?;
    let opts = day2::wait::Options {
        timeout: args.timeout,
        interval: args.interval,
    };
    day2::wait::run(&Cluster::for_site(&site)?, &site, opts)
}
