//! The `pxebuild` binary: parse arguments, run, turn the outcome into an exit code.
use clap::Parser;

// mimalloc instead of glibc's malloc: a build makes and frees millions of
// small strings and maps over a few threads, and glibc spent about a quarter of
// a no-op rebuild's instructions and most of its page faults on them.
// `serve` turns off the transparent huge pages this allocator asks for.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    let cli = pxebuild::cli::Cli::parse();
    pxebuild::cli::run(cli)
}
