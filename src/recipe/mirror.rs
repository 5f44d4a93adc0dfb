//! `pxebuild mirror DIR`: fetch and verify every artifact of the site exactly
//! as a build does, then write them into DIR in the host-prefixed mirror
//! layout (`DIR/<original host>/<original path>`), ready to be copied into an
//! air gap and served from any web server as `sources.mirror`. An
//! air-gapped site's images go into `DIR/v2/<name>/…` as a static registry
//! tree, which the same server answers as `[images] registry_mirror`.
//!
//! Beside the build recipe: the same fetch steps, run by the engine into the
//! store, but laid out as a mirror instead of published as a tree.
use std::path::Path;

use anyhow::{Context, Result};

use crate::engine::executor::ExecOptions;
use crate::fetch::current;
use crate::fetch::fetcher::Fetcher;
use crate::fetch::plan::{self, Wanted};
use crate::fetch::sources::mirror_path;
use crate::site::Site;

/// Writes the site's artifacts under `dir`; returns how many files it placed.
/// A site that asks for `current` also gets the channel's
/// `current/version.txt`, so the air-gapped build resolves it the same way.
pub(crate) fn write_mirror(site: &Site, dir: &Path, offline: bool, jobs: usize) -> Result<usize> {
    // Offline, `current` is what the site's last build recorded in dist/,
    // as `build --offline` does.
    let previous = site.dir.join(crate::layout::SITE_DIST);
    let pinned = current::pin(site, Some(&previous), offline)?;
    let mut planned = plan::plan(&pinned.site, offline)?;
    plan::preflight(&planned)?;
    // An air-gapped site's images too, resolved as its build resolves them.
    let images = crate::fetch::oci::plan(&pinned.site, Some(&previous), offline)?;
    let mut steps = planned.steps;
    steps.extend(images.boxed());
    crate::engine::run(
        &steps,
        &site.cache_dir(),
        &ExecOptions {
            jobs,
            verify_cache: false,
            explain: false,
            advice: Some(crate::fetch::failure_advice),
        },
    )?;
    // A chart archive's URL is in its repository's index, known once fetched.
    let archives = crate::fetch::charts::stored_archives(&planned.fetcher, &planned.charts);
    planned.wanted.extend(archives);
    let mut placed = place(&planned.wanted, &planned.fetcher, dir)?;
    placed += crate::fetch::oci::write_mirror(&images, dir)?;
    let version_txt = pinned.version_txt.clone().or_else(|| {
        // Offline nothing was fetched: write what the air-gapped build needs
        // to resolve `current` to the same recorded release.
        (site.file.flatcar.version == current::CURRENT).then(|| {
            let version = &pinned.record.version;
            (
                current::version_txt_url(site),
                format!("FLATCAR_VERSION={version}\nFLATCAR_VERSION_ID={version}\n").into_bytes(),
            )
        })
    });
    if let Some((url, bytes)) = &version_txt {
        let dest = dir.join(mirror_path(url)?);
        create_parent(&dest)?;
        crate::fsutil::atomic_write(&dest, bytes, 0o644)?;
        placed += 1;
    }
    Ok(placed)
}

fn create_parent(path: &Path) -> Result<()> {
    match path.parent() {
        Some(parent) => std::fs::create_dir_all(parent)
            .with_context(|| format!("creating {}", parent.display())),
        None => Ok(()),
    }
}

/// Links (or copies) every stored source file into the mirror layout.
fn place(wanted: &[Wanted], fetcher: &Fetcher, dir: &Path) -> Result<usize> {
    let mut placed = 0;
    for wanted in wanted {
        for url in &wanted.urls {
            let Some(entry) = fetcher.index.lookup(url, &fetcher.store) else {
                continue;
            };
            let dest = dir.join(mirror_path(url)?);
            create_parent(&dest)?;
            if dest.exists() {
                std::fs::remove_file(&dest)
                    .with_context(|| format!("replacing {}", dest.display()))?;
            }
            crate::fsutil::hardlink_or_copy(&fetcher.store.path_of(&entry.sha256), &dest)?;
            placed += 1;
        }
    }
    Ok(placed)
}
