//! Command-line surface (clap derive). No logic lives here: every subcommand's
//! arguments are defined next to its implementation in `cmd::<name>`.
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::cmd;

/// `pxebuild --version`: the package version and the commit it was built
/// from (see build.rs; "unknown" for a build outside a git checkout).
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("PXEBUILD_COMMIT"),
    ")"
);

/// Every environment variable pxebuild reads, for `--help` and the man page.
/// A test checks that the sources read no other `PXEBUILD_*` variable.
pub const ENVIRONMENT: &str = "\
Environment:
  PXEBUILD_SITE               the site file, when --site is not given
  PXEBUILD_CACHE              cache directory (default: .pxebuild/cache beside the site file)
  PXEBUILD_MIRROR             mirror base URL for downloads; overrides sources.mirror
  PXEBUILD_SIGNING_KEY        OpenPGP key file for Flatcar signatures; overrides sources.signing_key
  PXEBUILD_HTTP_TIMEOUT       seconds to connect and to get a response (default 30)
  PXEBUILD_HTTP_IDLE_TIMEOUT  seconds a download may wait for its next bytes (default 30)
  PXEBUILD_HTTP_BODY_TIMEOUT  seconds one download attempt may take (default 600)
  PXEBUILD_HTTP_RETRIES       attempts without progress before giving up (default 4)
  PXEBUILD_HTTP_BACKOFF_MS    first pause between attempts, doubled each time (default 500)";

/// Build and serve a PXE boot tree for a bare-metal Flatcar + kubeadm cluster.
///
/// Exit codes: 0 success, 1 the work failed, 2 bad input or usage.
#[derive(Debug, Parser)]
#[command(
    name = "pxebuild",
    version = VERSION,
    help_expected = true,
    max_term_width = 100,
    after_help = ENVIRONMENT
)]
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
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        default_value = "site.toml",
        env = "PXEBUILD_SITE"
    )]
    pub site: PathBuf,
    /// Print only warnings, errors and what was asked for (a table, JSON);
    /// no progress or "ok" lines.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Print more detail: -v why things happen, -vv also each request and
    /// cache decision (debug).
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

/// How a command prints its result (`--format`). JSON is one document on
/// stdout, the same with `-q`; its shapes are documented in docs/operations.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// Lines for people.
    #[default]
    Text,
    /// One JSON document, for scripts.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write a starter site (site.toml, templates/, payload/) into a new directory.
    Init(cmd::init::Args),
    /// Parse and validate the site file, then print a summary or every problem.
    Check(cmd::check::Args),
    /// Build the complete boot tree (dist/) from the site, templates and payload.
    #[command(after_help = ENVIRONMENT)]
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
    #[command(after_help = ENVIRONMENT)]
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
    /// Print a shell completion script (e.g. `pxebuild completions bash > /etc/bash_completion.d/pxebuild`).
    Completions(cmd::docs::CompletionsArgs),
    /// Write the man pages (pxebuild.1 and one per subcommand) into a directory.
    Man(cmd::docs::ManArgs),
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    /// Every `PXEBUILD_*` variable the sources name is listed in `--help`.
    #[test]
    fn help_lists_every_environment_variable() {
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut unlisted = std::collections::BTreeSet::new();
        for entry in walkdir::WalkDir::new(src) {
            let entry = entry.unwrap();
            if entry.path().extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(entry.path()).unwrap();
            for (at, _) in text.match_indices("\"PXEBUILD_") {
                let name: String = text[at + 1..]
                    .chars()
                    .take_while(|c| c.is_ascii_uppercase() || *c == '_')
                    .collect();
                // PXEBUILD_COMMIT is build.rs's, read at compile time.
                if name.len() > "PXEBUILD_".len()
                    && name != "PXEBUILD_COMMIT"
                    && !ENVIRONMENT.contains(&format!("  {name} "))
                {
                    unlisted.insert(name);
                }
            }
        }
        assert!(unlisted.is_empty(), "not in cli::ENVIRONMENT: {unlisted:?}");
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("PXEBUILD_HTTP_RETRIES"), "{help}");
    }

    #[test]
    fn version_names_the_commit() {
        let version = Cli::command().render_version();
        assert!(
            version.starts_with(&format!("pxebuild {} (commit ", env!("CARGO_PKG_VERSION"))),
            "{version}"
        );
    }
}
