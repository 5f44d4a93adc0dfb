//! Planning the fetch part of a build: one step per artifact, the refs the
//! render steps read, and the list of every source URL. Before anything runs,
//! every artifact not yet in the store is checked to exist upstream (HEAD), so
//! a release with a missing file fails in seconds, naming all that is missing;
//! with `--offline` the same list names what the store lacks.
use std::sync::Arc;

use anyhow::{bail, Result};
use rayon::prelude::*;

use super::fetcher::Fetcher;
use super::flatcar::{FlatcarFile, INSTALL_IMAGE, PXE_INITRD, PXE_KERNEL};
use super::refs::ArtifactRefs;
use super::sources::Sources;
use super::sysext::SysextImage;
use crate::build::step::Step;
use crate::site::Site;

/// One artifact to have: its name and its URL (with alternatives, any of which will do).
#[derive(Debug, Clone)]
pub struct Wanted {
    pub name: String,
    pub urls: Vec<String>,
}

pub struct Planned {
    pub steps: Vec<Box<dyn Step>>,
    pub refs: ArtifactRefs,
    pub wanted: Vec<Wanted>,
    pub fetcher: Arc<Fetcher>,
}

/// Every fetch step for `site`.
pub fn plan(site: &Site, offline: bool) -> Result<Planned> {
    let sources = Sources::from_site(site)?;
    let fetcher = Fetcher::new(sources, &site.cache_dir(), offline)?;
    let mut refs = ArtifactRefs::empty(&site.file.flatcar.version);
    let mut steps: Vec<Box<dyn Step>> = Vec::new();
    let mut wanted = Vec::new();

    for file in [PXE_KERNEL, PXE_INITRD, INSTALL_IMAGE] {
        let step = FlatcarFile::new(&fetcher, site, file);
        wanted.push(Wanted {
            name: file.to_string(),
            urls: vec![step.url.clone()],
        });
        wanted.push(Wanted {
            name: format!("{file}.sig"),
            urls: step.sig_urls.clone(),
        });
        let artifact = Some(step.artifact());
        match file {
            PXE_KERNEL => refs.pxe_kernel = artifact,
            PXE_INITRD => refs.pxe_initrd = artifact,
            _ => {
                refs.install_image = artifact;
                refs.install_image_sig = step.sig_artifact();
            }
        }
        steps.push(Box::new(step));
    }

    for (name, version) in sysexts(site) {
        let step = SysextImage::new(&fetcher, name, &version, &site.file.flatcar.arch);
        wanted.push(Wanted {
            name: step.file_name.clone(),
            urls: vec![step.url.clone()],
        });
        wanted.push(Wanted {
            name: format!("{name} SHA256SUMS"),
            urls: vec![step.sums_url.clone()],
        });
        refs.sysexts.push(step.artifact());
        steps.push(Box::new(step));
    }

    let (loader_steps, loader_refs) =
        super::loaders::steps(&fetcher, &site.file.boot_server.loaders)?;
    wanted.extend(loader_sources(&fetcher, &site.file.boot_server.loaders));
    refs.loaders = loader_refs;
    steps.extend(loader_steps);
    Ok(Planned {
        steps,
        refs,
        wanted,
        fetcher,
    })
}

/// The sysexts the site asks for: kubernetes, cilium, and containerd if set.
fn sysexts(site: &Site) -> Vec<(&'static str, String)> {
    let s = &site.file.sysext;
    let mut list = vec![
        ("kubernetes", s.kubernetes.clone()),
        ("cilium", s.cilium.clone()),
    ];
    if let Some(v) = s.containerd.as_ref().filter(|v| !v.is_empty()) {
        list.push(("containerd", v.clone()));
    }
    list
}

fn loader_sources(fetcher: &Fetcher, loaders: &[String]) -> Vec<Wanted> {
    let src = &fetcher.sources;
    if src.loaders_dir.is_some() {
        return Vec::new();
    }
    let (syslinux, ipxe) = super::loaders::wanted(loaders);
    let mut wanted = Vec::new();
    if !syslinux.is_empty() {
        wanted.push(Wanted {
            name: "syslinux-6.03.tar.gz".into(),
            urls: vec![src.syslinux_url.clone()],
        });
    }
    for f in ipxe {
        wanted.push(Wanted {
            name: f.name.to_string(),
            urls: vec![format!("{}/{}", src.ipxe_url, f.name)],
        });
    }
    wanted
}

/// Fails naming every artifact that is neither in the store nor upstream
/// (offline: not in the store).
pub fn preflight(planned: &Planned) -> Result<()> {
    let fetcher = &planned.fetcher;
    let missing: Vec<&Wanted> = planned
        .wanted
        .iter()
        .filter(|w| !w.urls.iter().any(|u| fetcher.cached(u)))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if fetcher.offline {
        let names: Vec<String> = missing.iter().map(|w| describe(w)).collect();
        bail!(
            "--offline: the store lacks {} artifact(s):\n  {}\nbuild once with network access, \
             or copy a `pxebuild mirror` tree in and point sources.mirror at it",
            names.len(),
            names.join("\n  ")
        );
    }
    let problems: Vec<String> = missing
        .par_iter()
        .filter_map(|w| absent(fetcher, w))
        .collect();
    if !problems.is_empty() {
        bail!(
            "{} artifact(s) are not available, nothing was built:\n  {}",
            problems.len(),
            problems.join("\n  ")
        );
    }
    Ok(())
}

/// `None` when some URL of `w` exists, else why not.
fn absent(fetcher: &Fetcher, w: &Wanted) -> Option<String> {
    let mut errors = Vec::new();
    for url in &w.urls {
        match fetcher.exists(url) {
            Ok(true) => return None,
            Ok(false) => errors.push(format!("{} (HTTP 404)", located(fetcher, url))),
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    Some(format!("{}: {}", w.name, errors.join("; ")))
}

fn located(fetcher: &Fetcher, url: &str) -> String {
    fetcher
        .sources
        .locate(url)
        .unwrap_or_else(|_| url.to_string())
}

fn describe(w: &Wanted) -> String {
    format!("{} ({})", w.name, w.urls.join(" or "))
}
