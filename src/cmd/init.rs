//! `pxebuild init DIR`: write a starter site (site.toml, templates/,
//! payload/, .gitignore) from the copies built into pxebuild.
use std::path::PathBuf;

use anyhow::Result;

use crate::cmd::global::Global;

/// Arguments of `pxebuild init`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// New or empty directory to write the site into (created if missing;
    /// one holding anything but `.git` is refused, nothing is overwritten).
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

pub(crate) fn run(_global: &Global, args: Args) -> Result<()> {
    let written = crate::starter::init(&args.dir)?;
    let dir = written.dir.display();
    crate::info!(
        "wrote {dir}/: site.toml, templates/ ({} files), payload/ ({} files), .gitignore",
        written.templates,
        written.payload
    );
    crate::info!(
        "next: edit {dir}/site.toml (your SSH key, network, nodes), then \
         `cd {dir} && pxebuild check && pxebuild build`"
    );
    Ok(())
}
