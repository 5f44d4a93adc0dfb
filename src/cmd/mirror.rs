//! `pxebuild mirror`: write every fetched, verified artifact of the site into
//! a host-prefixed mirror tree for air-gapped sites, or resolve `current`.
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::cmd::global::Global;
use crate::error::BadInput;
use crate::site::Site;

/// Arguments of `pxebuild mirror`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to write the `<host>/<path>` mirror layout into (and, in
    /// `[images] mode = "serve"`, the images as a static registry under `v2/`).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Print the version the channel's `current` points at (to pin in site.toml) and exit.
    #[arg(long, conflicts_with = "dir")]
    pub resolve_current: bool,
    /// Use only artifacts already in the cache.
    #[arg(long)]
    pub offline: bool,
    /// How many downloads may run at once.
    #[arg(long, short = 'j', value_name = "N", default_value_t = 4)]
    pub jobs: usize,
}

/// Refuses a mirror DIR that would mix public files into the site's own
/// directories, or vanish: the site's directory itself, its secrets,
/// templates, payload or cache, or a built tree (a build replaces dist/ as a
/// whole, and the next one deletes what it replaced).
fn refuse_unsafe_dir(site: &Site, dir: &Path) -> Result<()> {
    use crate::engine::out::resolve;
    use crate::recipe::site_paths;
    if dir.exists() && !dir.is_dir() {
        return Err(refusal(dir, "is not a directory"));
    }
    let real = resolve(dir)?;
    let dist = (
        "the site's dist/",
        site.dir.join(crate::layout::SITE_DIST),
        true,
    );
    for (what, guarded, or_inside) in site_paths(site).into_iter().chain([dist]) {
        let guarded = resolve(&guarded)?;
        if real == guarded || (or_inside && real.starts_with(&guarded)) {
            return Err(refusal(dir, &format!("is {what} ({})", guarded.display())));
        }
    }
    let tree = real.ancestors().find(|at| {
        let manifest = at.join(crate::manifest::FILE_NAME);
        manifest.is_file() && crate::manifest::Manifest::load(at).is_ok()
    });
    if let Some(tree) = tree {
        return Err(refusal(
            dir,
            &format!("lies in the built tree {}", tree.display()),
        ));
    }
    Ok(())
}

fn refusal(dir: &Path, why: &str) -> anyhow::Error {
    BadInput::new(format!(
        "mirror {} {why}: write the mirror into a directory of its own (e.g. \
         /srv/pxebuild-mirror), then serve it",
        dir.display()
    ))
}

pub(crate) fn run(global: &Global, args: Args) -> Result<()> {
    let site = Site::load(&global.site)?;
    if args.resolve_current {
        let version = if args.offline {
            // No server: only what the site's last build recorded.
            let dist = site.dir.join(crate::layout::SITE_DIST);
            crate::fetch::current::recorded(&site, Some(&dist))?
        } else {
            crate::fetch::resolve_current(&site)?
        };
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
    refuse_unsafe_dir(&site, &dir)?;
    let placed = crate::recipe::mirror::write_mirror(&site, &dir, args.offline, args.jobs)?;
    crate::info!(
        "{placed} verified files written to {}; serve it and set sources.mirror to its URL",
        dir.display()
    );
    Ok(())
}
