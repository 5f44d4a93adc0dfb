//! `pxebuild check`: parse and validate the site file, nothing else.
//!
//! Prints the warnings to stderr and a one-line summary to stdout; a site with
//! errors fails as bad input (exit 2) listing every problem. With `-v` it also
//! prints the release-support table the site was checked against.
use crate::cli::Global;
use crate::site::Site;

/// Arguments of `pxebuild check`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Treat warnings as errors (exit 2 when there are any).
    #[arg(long)]
    pub strict: bool,
}

pub fn run(global: &Global, args: Args) -> anyhow::Result<()> {
    let site = Site::load(&global.site)?;
    site.print_warnings();
    site.check_strict(args.strict)?;
    println!("ok: {}", site.summary());
    if global.verbose > 0 && !global.quiet {
        let f = &site.file;
        let today = crate::site::versions::today();
        let table =
            crate::site::versions::table(&f.cluster.kubernetes_version, &f.cilium.version, today);
        print!("{table}");
    }
    Ok(())
}
