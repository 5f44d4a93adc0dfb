//! pxebuild: builds an immutable PXE boot tree (`dist/`) that turns bare metal into a
//! Flatcar + kubeadm + Cilium cluster, and serves it.
//!
//! Module map (dependencies point downwards only):
//! `cli`/`cmd` → `build` → {`fetch`, `secrets`, `render`, `butane`, `boot`} → `site`,
//! with `fsutil`, `digest`, `manifest`, `layout`, `clock` and `beacon` as leaves. `serve` depends only on
//! the leaves, never on the build engine.

pub mod beacon;
pub mod boot;
pub mod build;
pub mod butane;
pub mod cli;
pub mod clock;
pub mod cmd;
pub mod day2;
pub mod digest;
pub mod embedded;
pub mod error;
pub mod fetch;
pub mod fsutil;
pub mod lab;
pub mod layout;
pub mod log;
pub mod manifest;
pub mod render;
pub mod secrets;
pub mod serve;
pub mod site;
pub mod starter;

use std::process::ExitCode;

/// Runs one command and maps its outcome onto the documented exit codes:
/// 0 success, 1 the work failed, 2 bad input or usage.
pub fn run(cli: cli::Cli) -> ExitCode {
    log::init(cli.global.verbosity());
    match cmd::dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error::report(&err);
            ExitCode::from(error::exit_code(&err))
        }
    }
}
