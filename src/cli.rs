//! Command-line surface (clap derive). No logic lives here: every subcommand's
//! arguments are defined next to its implementation in `cmd::<name>`.
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::cmd;

/// Build and serve a PXE boot tree for a bare-metal Flatcar + kubeadm cluster.
///
/// Exit codes: 0 success, 1 the work failed, 2 bad input or usage.
#[derive(Debug, Parser)]
#[command(name = "pxebuild", version, help_expected = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every subcommand understands.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// The site description to use.
    #[arg(long, global = true, value_name = "FILE", default_value = "site.toml")]
    pub site: PathBuf,
    /// Print only warnings and errors.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more detail (repeat for debug output).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

impl Global {
    /// The log level implied by `-q`/`-v`.
    pub fn verbosity(&self) -> u8 {
        if self.quiet {
            0
        } else {
            1 + self.verbose
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and validate the site file, then print a summary or every problem.
    Check(cmd::check::Args),
    /// Build the complete boot tree (dist/) from the site, templates and payload.
    Build(cmd::build::Args),
    /// Serve a built tree over TFTP and HTTP, read-only.
    Serve(cmd::serve::Args),
    /// Translate a Butane (Flatcar variant) config to Ignition JSON.
    Butane(cmd::butane::Args),
    /// Inspect or rotate the site's secrets (CAs, tokens, kubeconfig).
    #[command(subcommand)]
    Secrets(cmd::secrets::Command),
    /// Bootstrap-token operations against a running cluster.
    #[command(subcommand)]
    Token(cmd::day2::TokenCommand),
    /// Write every fetched, verified artifact into a mirror layout for air-gapped sites.
    Mirror(cmd::mirror::Args),
    /// Rehearse the site in local QEMU VMs on a private network.
    #[command(subcommand)]
    Lab(cmd::lab::Command),
    /// Print the path of the admin kubeconfig, or write a copy of it.
    Kubeconfig(cmd::day2::KubeconfigArgs),
    /// Remove the control-plane NoSchedule taint from the site's control-plane nodes.
    Untaint(cmd::day2::UntaintArgs),
    /// Install or upgrade Argo CD with Helm and apply the root Application.
    InstallArgo(cmd::day2::InstallArgoArgs),
    /// Wait until every node of the site is Ready.
    Wait(cmd::day2::WaitArgs),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
