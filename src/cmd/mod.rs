//! One module per subcommand: its clap arguments and a `run` that resolves them
//! into domain values and calls the library.
pub mod build;
pub mod butane;
pub mod check;
pub mod day2;
pub mod docs;
pub mod init;
pub mod lab;
pub mod mirror;
pub mod secrets;
pub mod serve;

use crate::cli::{Cli, Command};

/// Runs the chosen subcommand.
pub fn dispatch(cli: Cli) -> anyhow::Result<()> {
    let global = &cli.global;
    match cli.command {
        Command::Init(args) => init::run(global, args),
        Command::Check(args) => check::run(global, args),
        Command::Build(args) => build::run(global, args),
        Command::Serve(args) => serve::run(global, args),
        Command::Butane(args) => butane::run(global, args),
        Command::Secrets(command) => secrets::run(global, command),
        Command::Token(command) => day2::run_token(global, command),
        Command::Mirror(args) => mirror::run(global, args),
        Command::Lab(command) => lab::run(global, command),
        Command::Kubeconfig(args) => day2::run_kubeconfig(global, args),
        Command::Untaint(args) => day2::run_untaint(global, args),
        Command::InstallArgo(args) => day2::run_install_argo(global, args),
        Command::Wait(args) => day2::run_wait(global, args),
        Command::Completions(args) => docs::run_completions(args),
        Command::Man(args) => docs::run_man(args),
    }
}
