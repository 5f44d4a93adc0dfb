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
    if site.file.flatcar.version == super::current::CURRENT {
        // Planning with `current` would key steps on a moving target.
        bail!("flatcar.version = \"current\" must be pinned (fetch::current::pin) before planning");
    }
    let sources = Sources::from_site(site)?;
    let fetcher = Fetcher::new(sources, &site.cache_dir(), offline)?;
    let mut planned = Planned {
        steps: Vec::new(),
        refs: ArtifactRefs::empty(&site.file.flatcar.version),
        wanted: Vec::new(),
        fetcher,
    };
    plan_flatcar(site, &mut planned);
    plan_sysexts(site, &mut planned);
    let loaders = &site.file.boot_server.loaders;
    let (steps, refs) = super::loaders::steps(&planned.fetcher, loaders)?;
    planned
        .wanted
        .extend(loader_sources(&planned.fetcher, loaders));
    planned.refs.loaders = refs;
    planned.steps.extend(steps);
    Ok(planned)
}

fn want(planned: &mut Planned, name: String, urls: Vec<String>) {
    planned.wanted.push(Wanted { name, urls });
}

fn plan_flatcar(site: &Site, planned: &mut Planned) {
    for file in [PXE_KERNEL, PXE_INITRD, INSTALL_IMAGE] {
        let step = FlatcarFile::new(&planned.fetcher, site, file);
        want(planned, file.to_string(), vec![step.url.clone()]);
        want(planned, format!("{file}.sig"), step.sig_urls.clone());
        let artifact = Some(step.artifact());
        let refs = &mut planned.refs;
        match file {
            PXE_KERNEL => refs.pxe_kernel = artifact,
            PXE_INITRD => refs.pxe_initrd = artifact,
            _ => {
                refs.install_image = artifact;
                refs.install_image_sig = step.sig_artifact();
            }
        }
        planned.steps.push(Box::new(step));
    }
}

fn plan_sysexts(site: &Site, planned: &mut Planned) {
    for (name, version) in sysexts(site) {
        let step = SysextImage::new(&planned.fetcher, name, &version, &site.file.flatcar.arch);
        want(planned, step.file_name.clone(), vec![step.url.clone()]);
        want(
            planned,
            format!("{name} SHA256SUMS"),
            vec![step.sums_url.clone()],
        );
        planned.refs.sysexts.push(step.artifact());
        planned.steps.push(Box::new(step));
    }
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
    if src.loaders == super::sources::LoaderSource::Debian {
        return super::loaders::by_package(syslinux.into_iter().chain(ipxe))
            .into_iter()
            .map(|(package, _)| Wanted {
                name: package.file_name().into(),
                urls: vec![package.url(&src.debian_url)],
            })
            .collect();
    }
    let mut wanted = Vec::new();
    if !syslinux.is_empty() {
        wanted.push(Wanted {
            name: super::loaders::tarball_name(&src.syslinux_url).into(),
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
            "--offline: the store lacks {} artifact(s):\n  {}\n--offline uses the store alone \
             and contacts no server or mirror: build once without --offline, or run \
             `pxebuild mirror DIR` on a connected host, serve DIR inside the air gap and \
             build without --offline with sources.mirror (or PXEBUILD_MIRROR) naming it",
            names.len(),
            names.join("\n  ")
        );
    }
    let problems: Vec<(String, bool)> = missing
        .par_iter()
        .filter_map(|w| absent(fetcher, w))
        .collect();
    if !problems.is_empty() {
        let hint = if problems.iter().any(|(_, not_found)| *not_found) {
            format!("\n{}", super::http::NOT_FOUND_HINT)
        } else {
            String::new()
        };
        let lines: Vec<&str> = problems.iter().map(|(line, _)| line.as_str()).collect();
        bail!(
            "{} artifact(s) are not available, nothing was built:\n  {}{hint}",
            lines.len(),
            lines.join("\n  ")
        );
    }
    Ok(())
}

/// `None` when some URL of `w` exists, else why not (and whether the server
/// said it does not exist).
fn absent(fetcher: &Fetcher, w: &Wanted) -> Option<(String, bool)> {
    let mut errors = Vec::new();
    let mut not_found = false;
    for url in &w.urls {
        match fetcher.missing(url) {
            Ok(None) => return None,
            Ok(Some(answered)) => {
                not_found = true;
                errors.push(format!("{answered} (HTTP 404)"));
            }
            Err(e) => errors.push(format!("{e:#}")),
        }
    }
    Some((format!("{}: {}", w.name, errors.join("; ")), not_found))
}

fn describe(w: &Wanted) -> String {
    format!("{} ({})", w.name, w.urls.join(" or "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(extra_sources: &str) -> (tempfile::TempDir, Result<Site>) {
        let dir = tempfile::tempdir().unwrap();
        let text = include_str!("../../site.toml")
            .replace("[sources]\n", &format!("[sources]\n{extra_sources}\n"));
        let site = Site::from_text(&text, &dir.path().join("site.toml"));
        (dir, site)
    }

    #[test]
    fn the_default_loaders_are_debians_pinned_packages() {
        let (_dir, site) = example("");
        let site = site.unwrap();
        let mut with_ipxe = site.clone();
        with_ipxe.file.boot_server.loaders.push("ipxe".into());
        let planned = plan(&with_ipxe, false).expect("no loader pins needed");
        let ids: Vec<String> = planned.steps.iter().map(|s| s.id()).collect();
        for package in ["pxelinux", "syslinux-common", "syslinux-efi", "ipxe"] {
            let id = format!("fetch:loaders/debian/{package}");
            assert_eq!(ids.iter().filter(|i| **i == id).count(), 1, "{ids:?}");
        }
        let urls: Vec<&str> = planned
            .wanted
            .iter()
            .flat_map(|w| w.urls.iter().map(String::as_str))
            .filter(|u| u.ends_with(".deb"))
            .collect();
        assert_eq!(
            urls,
            [
                "https://deb.debian.org/debian/pool/main/s/syslinux/pxelinux_6.04~git20190206.bf6db5b4+dfsg1-3_all.deb",
                "https://deb.debian.org/debian/pool/main/s/syslinux/syslinux-common_6.04~git20190206.bf6db5b4+dfsg1-3_all.deb",
                "https://deb.debian.org/debian/pool/main/s/syslinux/syslinux-efi_6.04~git20190206.bf6db5b4+dfsg1-3_all.deb",
                "https://deb.debian.org/debian/pool/main/i/ipxe/ipxe_1.0.0+git-20190125.36a4c85-5.1_all.deb",
            ]
        );
        assert!(
            !planned.wanted.iter().any(|w| w
                .urls
                .iter()
                .any(|u| u.contains("kernel.org") || u.contains("boot.ipxe.org"))),
            "nothing upstream is asked for"
        );
        // Another Debian mirror serves the same pool paths.
        let (_dir, site) = example("debian_url = \"http://ftp.de.debian.org/debian/\"");
        let planned = plan(&site.unwrap(), false).unwrap();
        assert!(planned.wanted.iter().any(|w| w.urls
            == ["http://ftp.de.debian.org/debian/pool/main/s/syslinux/pxelinux_6.04~git20190206.bf6db5b4+dfsg1-3_all.deb"]));
    }

    #[test]
    fn the_upstream_syslinux_tarball_carries_its_pin() {
        let (_dir, site) = example("loaders = \"upstream\"");
        let site = site.unwrap();
        let sources = Sources::from_site(&site).unwrap();
        assert_eq!(
            sources.loaders,
            super::super::sources::LoaderSource::Upstream
        );
        assert!(sources.syslinux_url.ends_with("/syslinux-6.03.tar.xz"));
        assert_eq!(
            sources.syslinux_sha256.as_deref(),
            Some(super::super::sources::SYSLINUX_SHA256)
        );
        let planned = plan(&site, false).unwrap();
        let ids: Vec<String> = planned.steps.iter().map(|s| s.id()).collect();
        assert!(
            ids.contains(&"fetch:loaders/syslinux".to_string()),
            "{ids:?}"
        );
    }

    #[test]
    fn another_syslinux_tarball_needs_a_pin() {
        let (_dir, site) = example(
            "loaders = \"upstream\"\nsyslinux_url = \"https://mirror.example/syslinux-6.03.tar.gz\"",
        );
        let err = plan(&site.unwrap(), false).err().expect("no pin, no plan");
        assert_eq!(crate::error::exit_code(&err), 2, "bad input: {err:#}");
        assert!(
            format!("{err:#}").contains("sources.syslinux_sha256"),
            "{err:#}"
        );
    }

    #[test]
    fn upstream_ipxe_needs_pins() {
        let (_dir, site) = example("loaders = \"upstream\"");
        let mut site = site.unwrap();
        site.file.boot_server.loaders.push("ipxe".into());
        let err = plan(&site, false).err().expect("no pins, no plan");
        assert_eq!(crate::error::exit_code(&err), 2, "bad input: {err:#}");
        assert!(
            format!("{err:#}").contains("sources.ipxe_sha256s"),
            "{err:#}"
        );
    }

    #[test]
    fn current_must_be_pinned_before_planning() {
        let (_dir, site) = example("");
        let mut site = site.unwrap();
        site.file.flatcar.version = "current".into();
        let err = plan(&site, true).err().expect("current is not planned");
        assert!(format!("{err:#}").contains("must be pinned"), "{err:#}");
    }

    #[test]
    fn refs_name_the_dist_paths_and_their_steps() {
        let (_dir, site) = example("");
        let planned = plan(&site.unwrap(), false).unwrap();
        let refs = &planned.refs;
        let kernel = refs.pxe_kernel.as_ref().unwrap();
        assert_eq!(
            kernel.path,
            "http/flatcar/4593.2.5/flatcar_production_pxe.vmlinuz"
        );
        assert_eq!(kernel.step, "fetch:flatcar/flatcar_production_pxe.vmlinuz");
        assert_eq!(
            refs.install_image_sig.as_ref().unwrap().path,
            "http/flatcar/4593.2.5/flatcar_production_image.bin.bz2.sig"
        );
        let loaders: Vec<&str> = refs.loaders.iter().map(|l| l.path.as_str()).collect();
        assert_eq!(
            loaders,
            [
                "tftp/lpxelinux.0",
                "tftp/ldlinux.c32",
                "tftp/efi64/syslinux.efi",
                "tftp/efi64/ldlinux.e64"
            ]
        );
        let steps: Vec<&str> = refs.loaders.iter().map(|l| l.step.as_str()).collect();
        assert_eq!(
            steps,
            [
                "fetch:loaders/debian/pxelinux",
                "fetch:loaders/debian/syslinux-common",
                "fetch:loaders/debian/syslinux-efi",
                "fetch:loaders/debian/syslinux-common"
            ]
        );
        let k8s = &refs.sysexts[0];
        assert_eq!(
            k8s.image.path,
            "http/sysext/kubernetes/kubernetes-v1.35.9-x86-64.raw"
        );
        assert_eq!(refs.sysexts.len(), 2, "no containerd unless asked for");
        let ids: Vec<String> = planned.steps.iter().map(|s| s.id()).collect();
        for id in refs.steps() {
            assert!(ids.contains(&id), "{id} is a planned step");
        }
    }
}
