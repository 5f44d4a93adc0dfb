//! `pxebuild mirror`: write every fetched, verified artifact of the site into
//! a host-prefixed mirror tree for air-gapped sites, or resolve `current`.
use std::path::PathBuf;

use anyhow::Result;

use crate::cli::Global;
use crate::error::BadInput;
use crate::site::Site;

/// Arguments of `pxebuild mirror`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write the `<host>/<path>` mirror layout into.
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Print the version the channel's `current` points at (to pin in site.toml) and exit.
    #[arg(long)]
    pub resolve_current: bool,
    /// Use only artifacts already in the cache.
    #[arg(long)]
    pub offline: bool,
    /// How many downloads may run at once.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 4)]
    pub jobs: usize,
}

pub fn run(global: &Global, args: Args) -> Result<()> {
    let site = Site::load(&global.site)?;
    if args.resolve_current {
        let version = crate::fetch::resolve_current(&site)?;
        let fc = &site.file.flatcar;
        crate::info!(
            "{} channel ({}): current is {version}; pin it as flatcar.version",
            fc.channel,
            fc.arch
        );
        println!("{version}");
        return Ok(());
    }
    let Some(dir) = args.dir else {
        return Err(BadInput::new(
            "pxebuild mirror needs a DIR (or --resolve-current)",
        ));
    };
    let placed = crate::fetch::mirror::write_mirror(&site, &dir, args.offline, args.jobs)?;
    crate::info!(
        "{placed} verified files written to {}; serve it and set sources.mirror to its URL",
        dir.display()
    );
    Ok(())
}
