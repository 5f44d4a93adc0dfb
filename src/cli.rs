//! Command-line surface (clap derive) and the routing of each subcommand to its
//! `run`. No other logic lives here: every subcommand's arguments are defined
//! next to its implementation in `cmd::<name>`, and the options they share in
//! `cmd::global`.
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use crate::cmd;
use crate::cmd::global::Global;

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
    /// List the container images the site's cluster pulls, and their digests in a built tree.
    Images(cmd::images::Args),
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

/// Runs one command and maps its outcome onto the documented exit codes:
/// 0 success, 1 the work failed, 2 bad input or usage.
pub fn run(cli: Cli) -> ExitCode {
    crate::log::init(cli.global.verbosity());
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            crate::error::report(&err);
            ExitCode::from(crate::error::exit_code(&err))
        }
    }
}

/// Runs the chosen subcommand.
pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    use cmd::{build, butane, check, day2, docs, images, init, lab, mirror, secrets, serve};
    let global = &cli.global;
    match cli.command {
        Command::Init(args) => init::run(global, args),
        Command::Check(args) => check::run(global, args),
        Command::Build(args) => build::run(global, args),
        Command::Serve(args) => serve::run(global, args),
        Command::Butane(args) => butane::run(global, args),
        Command::Secrets(command) => secrets::run(global, command),
        Command::Token(command) => day2::run_token(global, command),
        Command::Images(args) => images::run(global, args),
        Command::Mirror(args) => mirror::run(global, args),
        Command::Lab(command) => lab::run(global, command),
        Command::Kubeconfig(args) => day2::run_kubeconfig(global, args),
        Command::Untaint(args) => day2::run_untaint(global, args),
        Command::InstallArgo(args) => day2::run_install_argo(global, args),
        Command::Wait(args) => day2::run_wait(global, args),
        Command::Completions(args) => docs::run_completions(args, Cli::command()),
        Command::Man(args) => docs::run_man(args, Cli::command()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    /// The CI check for drift: the pages in docs/man are what the CLI
    /// definition generates now.
    #[test]
    fn checked_in_man_pages_match_the_cli() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/man");
        let pages = cmd::docs::man_pages(Cli::command()).unwrap();
        let mut stale = Vec::new();
        for (name, text) in &pages {
            if std::fs::read(dir.join(name)).ok().as_deref() != Some(text.as_slice()) {
                stale.push(name.clone());
            }
        }
        let wanted: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.ends_with(".1") && !wanted.contains(&name.as_str()) {
                stale.push(format!("{name} (no such command now)"));
            }
        }
        assert!(
            stale.is_empty(),
            "docs/man is out of date ({}); run `cargo run -- man --out docs/man`",
            stale.join(", ")
        );
    }

    #[test]
    fn a_page_per_subcommand_and_completions_for_every_shell() {
        let pages = cmd::docs::man_pages(Cli::command()).unwrap();
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        for name in ["pxebuild.1", "pxebuild-build.1", "pxebuild-lab-run.1"] {
            assert!(names.contains(&name), "{names:?}");
        }
        let top = String::from_utf8(pages[0].1.clone()).unwrap();
        assert!(top.contains("PXEBUILD_MIRROR"), "the environment is listed");
        for shell in [
            clap_complete::Shell::Bash,
            clap_complete::Shell::Zsh,
            clap_complete::Shell::Fish,
        ] {
            let mut out = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "pxebuild", &mut out);
            let text = String::from_utf8(out).unwrap();
            assert!(text.contains("verify-cache"), "{shell}: {text}");
        }
    }
}
