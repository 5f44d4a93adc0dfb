//! Planning the fetch part of a build: one step per artifact, the refs the
//! render steps read, and the list of every source URL. Before anything runs,
//! every artifact not yet in the store is checked to exist upstream (HEAD), so
//! a release with a missing file fails in seconds, naming all that is missing;
//! with `--offline` the same list names what the store lacks.
use std::sync::Arc;

use anyhow::{bail, Result};
use rayon::prelude::*;

use super::fetcher::Fetcher;
use super::flatcar::{FlatcarFile, INSTALL_IMAGE};
use super::refs::ArtifactRefs;
use super::sources::Sources;
use super::sysext::SysextImage;
use crate::engine::step::Step;
use crate::layout::{PXE_INITRD, PXE_KERNEL};
use crate::site::Site;

pub(crate) use super::fetcher::Wanted;

pub(crate) struct Planned {
    pub steps: Vec<Box<dyn Step>>,
    pub refs: ArtifactRefs,
    pub wanted: Vec<Wanted>,
    pub fetcher: Arc<Fetcher>,
    /// The Helm charts carried in dist/ (serve mode only).
    pub charts: Vec<super::charts::ChartSpec>,
}

/// Every fetch step for `site`.
pub(crate) fn plan(site: &Site, offline: bool) -> Result<Planned> {
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
        charts: super::charts::site_charts(site),
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
    plan_charts(&mut planned);
    Ok(planned)
}

fn plan_charts(planned: &mut Planned) {
    let (steps, wanted) = super::charts::plan(&planned.fetcher, &planned.charts);
    planned.steps.extend(steps);
    planned.wanted.extend(wanted);
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
pub(crate) fn preflight(planned: &Planned) -> Result<()> {
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
    let problems: Vec<Absent> = missing
        .par_iter()
        .filter_map(|w| absent(fetcher, w))
        .collect();
    if !problems.is_empty() {
        bail!(report(&problems));
    }
    Ok(())
}

/// Why an artifact is not available.
struct Absent {
    /// `name: why` for every URL of it that failed but not for want of DNS.
    line: Option<String>,
    name: String,
    /// Hosts of its URLs whose names did not resolve.
    unresolved: Vec<String>,
    /// Some server said the file does not exist.
    not_found: bool,
    /// Some host could not be reached (DNS, or attempts ran out).
    unreachable: bool,
}

/// The preflight's error: hosts that did not resolve once each, with the
/// artifacts behind them, then every other failure, then each piece of
/// advice once.
fn report(problems: &[Absent]) -> String {
    let mut hosts: Vec<(&str, Vec<&str>)> = Vec::new();
    for p in problems {
        for host in &p.unresolved {
            match hosts.iter_mut().find(|(h, _)| h == host) {
                Some((_, names)) if !names.contains(&p.name.as_str()) => names.push(&p.name),
                Some(_) => {}
                None => hosts.push((host, vec![&p.name])),
            }
        }
    }
    const SHOWN: usize = 3;
    let mut lines: Vec<String> = hosts
        .iter()
        .map(|(host, names)| {
            let mut list = names[..names.len().min(SHOWN)].join(", ");
            if names.len() > SHOWN {
                list.push_str(&format!(" and {} more", names.len() - SHOWN));
            }
            format!("cannot resolve {host} (DNS), needed for {list}")
        })
        .collect();
    lines.extend(problems.iter().filter_map(|p| p.line.clone()));
    let mut text = format!(
        "{} artifact(s) are not available, nothing was built:\n  {}",
        problems.len(),
        lines.join("\n  ")
    );
    if problems.iter().any(|p| p.not_found) {
        text.push_str(&format!("\n{}", super::http::NOT_FOUND_HINT));
    }
    if problems.iter().any(|p| p.unreachable) {
        text.push_str(&format!("\n{}", super::http::NETWORK_ADVICE));
    }
    text
}

/// `None` when some URL of `w` exists, else why not.
fn absent(fetcher: &Fetcher, w: &Wanted) -> Option<Absent> {
    let mut errors = Vec::new();
    let mut absent = Absent {
        line: None,
        name: w.name.clone(),
        unresolved: Vec::new(),
        not_found: false,
        unreachable: false,
    };
    for url in &w.urls {
        match fetcher.missing(url) {
            Ok(None) => return None,
            Ok(Some(answered)) => {
                absent.not_found = true;
                errors.push(format!("{answered} (HTTP 404)"));
            }
            Err(e) => match super::http::unreachable(&e) {
                Some(why) if why.dns => {
                    absent.unreachable = true;
                    absent.unresolved.push(why.host.clone());
                }
                Some(_) => {
                    absent.unreachable = true;
                    errors.push(format!("{e:#}"));
                }
                None => errors.push(format!("{e:#}")),
            },
        }
    }
    if !errors.is_empty() {
        absent.line = Some(format!("{}: {}", w.name, errors.join("; ")));
    }
    Some(absent)
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
    fn hosts_that_do_not_resolve_are_named_once_with_the_advice_once() {
        let absent = |name: &str, host: &str| Absent {
            line: None,
            name: name.into(),
            unresolved: vec![host.into()],
            not_found: false,
            unreachable: true,
        };
        let timed_out = Absent {
            line: Some("x.raw: https://h.example/x.raw: timed out".into()),
            name: "x.raw".into(),
            unresolved: Vec::new(),
            not_found: false,
            unreachable: true,
        };
        let problems = [
            absent("a.vmlinuz", "stable.release.example"),
            absent("a.cpio.gz", "stable.release.example"),
            absent("a.cpio.gz", "stable.release.example"),
            absent("b.raw", "stable.release.example"),
            absent("c.raw", "stable.release.example"),
            absent("ipxe.efi", "boot.example"),
            timed_out,
        ];
        let text = report(&problems);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "7 artifact(s) are not available, nothing was built:",
                "  cannot resolve stable.release.example (DNS), needed for a.vmlinuz, a.cpio.gz, \
                 b.raw and 1 more",
                "  cannot resolve boot.example (DNS), needed for ipxe.efi",
                "  x.raw: https://h.example/x.raw: timed out",
                super::super::http::NETWORK_ADVICE,
            ]
        );
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
