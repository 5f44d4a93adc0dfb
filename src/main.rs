//! The `pxebuild` binary: parse arguments, run, turn the outcome into an exit code.
use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = pxebuild::cli::Cli::parse();
    pxebuild::run(cli)
}
