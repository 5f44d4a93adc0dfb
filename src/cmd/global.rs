//! What every subcommand shares: the global options (`--site`, `-q`, `-v`)
//! and the `--format` choice. They sit below both the command-line surface
//! (`cli`, which flattens them into the parser) and the commands (which read
//! them), so neither has to import the other's module for them.
use std::path::PathBuf;

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
