//! `pxebuild mirror DIR`: fetch and verify every artifact of the site exactly
//! as a build does, then write them into DIR in the host-prefixed mirror
//! layout (`DIR/<original host>/<original path>`), ready to be copied into an
//! air gap and served from any web server as `sources.mirror`.
use std::path::Path;

use anyhow::{Context, Result};

use super::plan::{self, Planned};
use super::sources::mirror_path;
use crate::build::cache::Cache;
use crate::build::executor::{self, ExecOptions};
use crate::site::Site;

/// Writes the site's artifacts under `dir`; returns how many files it placed.
pub fn write_mirror(site: &Site, dir: &Path, offline: bool, jobs: usize) -> Result<usize> {
    let planned = plan::plan(site, offline)?;
    plan::preflight(&planned)?;
    let cache = Cache::open(&site.cache_dir())?;
    executor::execute(
        &planned.steps,
        &cache,
        &ExecOptions {
            jobs,
            verify_cache: false,
            explain: false,
        },
    )?;
    place(&planned, dir)
}

/// Links (or copies) every stored source file into the mirror layout.
fn place(planned: &Planned, dir: &Path) -> Result<usize> {
    let fetcher = &planned.fetcher;
    let mut placed = 0;
    for wanted in &planned.wanted {
        for url in &wanted.urls {
            let Some(entry) = fetcher.index.lookup(url, &fetcher.store) else {
                continue;
            };
            let dest = dir.join(mirror_path(url)?);
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
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
