//! Network boot loaders: syslinux (BIOS `lpxelinux.0` + `ldlinux.c32`, UEFI
//! `syslinux.efi` + `ldlinux.e64`) and iPXE, taken by default from Debian's
//! packages (the `.deb` files pinned in `debian.rs`, the binaries CI boots);
//! or, with `sources.loaders = "upstream"`, from the syslinux 6.03 release
//! tarball and boot.ipxe.org's binaries, each checked against a pinned
//! SHA-256; or all of them from a local directory.
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;

use super::debian::{self, Package};
use super::fetcher::{Blob, DigestMismatch, Fetcher};
use super::refs::ArtifactRef;
use super::sources::LoaderSource;
use crate::engine::key::Key;
use crate::engine::step::{Inputs, RunCtx, Step, Visibility};
use crate::error::BadInput;

/// One loader file: its name, the Debian package and path inside its
/// data.tar, where it lies inside the syslinux tarball (none for iPXE), and
/// whether it is one of syslinux's UEFI files (which lie apart in the TFTP
/// tree; [`Loader::dist`] is its dist path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Loader {
    pub name: &'static str,
    pub in_deb: (Package, &'static str),
    pub in_tarball: Option<&'static str>,
    pub syslinux_efi: bool,
}

impl Loader {
    /// Where the file lies in the tree.
    pub(crate) fn dist(&self) -> String {
        crate::layout::loader_path(self.name, self.syslinux_efi)
    }
}

const BIOS: [Loader; 2] = [
    Loader {
        name: "lpxelinux.0",
        in_deb: (debian::PXELINUX, "usr/lib/PXELINUX/lpxelinux.0"),
        in_tarball: Some("bios/core/lpxelinux.0"),
        syslinux_efi: false,
    },
    Loader {
        name: "ldlinux.c32",
        in_deb: (
            debian::SYSLINUX_COMMON,
            "usr/lib/syslinux/modules/bios/ldlinux.c32",
        ),
        in_tarball: Some("bios/com32/elflink/ldlinux/ldlinux.c32"),
        syslinux_efi: false,
    },
];
const UEFI: [Loader; 2] = [
    Loader {
        name: "syslinux.efi",
        in_deb: (
            debian::SYSLINUX_EFI,
            "usr/lib/SYSLINUX.EFI/efi64/syslinux.efi",
        ),
        in_tarball: Some("efi64/efi/syslinux.efi"),
        syslinux_efi: true,
    },
    Loader {
        name: "ldlinux.e64",
        in_deb: (
            debian::SYSLINUX_COMMON,
            "usr/lib/syslinux/modules/efi64/ldlinux.e64",
        ),
        in_tarball: Some("efi64/com32/elflink/ldlinux/ldlinux.e64"),
        syslinux_efi: true,
    },
];
const IPXE: [Loader; 3] = [
    Loader {
        name: "undionly.kpxe",
        in_deb: (debian::IPXE, "usr/lib/ipxe/undionly.kpxe"),
        in_tarball: None,
        syslinux_efi: false,
    },
    Loader {
        // `usr/lib/ipxe/ipxe.efi` is a symlink to this file.
        name: "ipxe.efi",
        in_deb: (debian::IPXE, "boot/ipxe.efi"),
        in_tarball: None,
        syslinux_efi: false,
    },
    Loader {
        name: "snponly.efi",
        in_deb: (debian::IPXE, "usr/lib/ipxe/snponly.efi"),
        in_tarball: None,
        syslinux_efi: false,
    },
];

/// The loader files `boot_server.loaders` asks for.
pub(crate) fn wanted(loaders: &[String]) -> (Vec<Loader>, Vec<Loader>) {
    let mut syslinux = Vec::new();
    if loaders.iter().any(|l| l == "bios") {
        syslinux.extend(BIOS);
    }
    if loaders.iter().any(|l| l == "uefi") {
        syslinux.extend(UEFI);
    }
    let ipxe = if loaders.iter().any(|l| l == "ipxe") {
        IPXE.to_vec()
    } else {
        Vec::new()
    };
    (syslinux, ipxe)
}

/// Loader steps and the files they place.
pub(crate) type LoaderPlan = (Vec<Box<dyn Step>>, Vec<ArtifactRef>);

/// The loader steps for the site's sources, with their artifacts.
pub(crate) fn steps(fetcher: &Arc<Fetcher>, loaders: &[String]) -> Result<LoaderPlan> {
    let (syslinux, ipxe) = wanted(loaders);
    let src = &fetcher.sources;
    let mut steps: Vec<Box<dyn Step>> = Vec::new();
    let mut refs = Vec::new();
    let mut place = |id: String, files: &[Loader]| {
        refs.extend(files.iter().map(|f| ArtifactRef {
            step: id.clone(),
            path: f.dist(),
        }))
    };
    if let Some(dir) = &src.loaders_dir {
        let files: Vec<Loader> = syslinux.into_iter().chain(ipxe).collect();
        let missing: Vec<&str> = files
            .iter()
            .filter(|f| !dir.join(f.name).is_file())
            .map(|f| f.name)
            .collect();
        if !missing.is_empty() {
            return Err(BadInput::new(format!(
                "sources.loaders_dir {} lacks {} (docs/artifacts.md shows how to fill it \
                 from Debian's packages)",
                dir.display(),
                missing.join(", ")
            )));
        }
        if !files.is_empty() {
            let step = LocalLoaders {
                dir: dir.clone(),
                files,
            };
            place(step.id(), &step.files);
            steps.push(Box::new(step));
        }
        return Ok((steps, refs));
    }
    if src.loaders == LoaderSource::Debian {
        let files: Vec<Loader> = syslinux.into_iter().chain(ipxe).collect();
        for (package, files) in by_package(files.iter().cloned()) {
            steps.push(Box::new(DebianLoaders {
                fetcher: fetcher.clone(),
                url: package.url(&src.debian_url),
                package,
                files,
            }));
        }
        // In the order the site's loaders name them, each from its package's step.
        for f in &files {
            place(debian_step_id(&f.in_deb.0), std::slice::from_ref(f));
        }
        return Ok((steps, refs));
    }
    if !syslinux.is_empty() {
        let Some(sha256) = src.syslinux_sha256.clone() else {
            return Err(BadInput::new(format!(
                "no SHA-256 pin for {}: with sources.loaders = \"upstream\" set \
                 sources.syslinux_sha256 (pxebuild pins only the default upstream .tar.xz), \
                 or use Debian's pinned packages (the default sources.loaders = \"debian\"); \
                 see docs/artifacts.md",
                src.syslinux_url
            )));
        };
        let step = SyslinuxLoaders {
            fetcher: fetcher.clone(),
            url: src.syslinux_url.clone(),
            sha256,
            files: syslinux,
        };
        place(step.id(), &step.files);
        steps.push(Box::new(step));
    }
    if !ipxe.is_empty() {
        let step = IpxeLoaders::new(fetcher, ipxe)?;
        let files: Vec<Loader> = step.files.iter().map(|(f, _, _)| f.clone()).collect();
        place(step.id(), &files);
        steps.push(Box::new(step));
    }
    Ok((steps, refs))
}

/// The Debian packages that hold `files`, in the order the files come, each
/// with its files.
pub(crate) fn by_package(files: impl IntoIterator<Item = Loader>) -> Vec<(Package, Vec<Loader>)> {
    let mut packages: Vec<(Package, Vec<Loader>)> = Vec::new();
    for f in files {
        match packages.iter_mut().find(|(p, _)| *p == f.in_deb.0) {
            Some((_, list)) => list.push(f),
            None => packages.push((f.in_deb.0, vec![f])),
        }
    }
    packages
}

/// Loaders copied from a local directory; their digests are the key.
pub(crate) struct LocalLoaders {
    pub dir: PathBuf,
    pub files: Vec<Loader>,
}

/// The key of loaders copied from a local directory: their digests.
#[derive(Serialize)]
struct LocalKey<'a> {
    dir: &'a Path,
    /// (name, sha256 or `missing`) per file.
    files: Vec<(&'static str, String)>,
    dist: Vec<String>,
}

impl Step for LocalLoaders {
    fn id(&self) -> String {
        "fetch:loaders/local".into()
    }

    fn key<'a>(&'a self, _: &'a Inputs<'_>) -> Result<Key<'a>> {
        let files = self
            .files
            .iter()
            .map(|f| {
                let digest = match crate::digest::sha256_file(&self.dir.join(f.name)) {
                    Ok((sha, _)) => sha,
                    Err(_) => "missing".into(),
                };
                (f.name, digest)
            })
            .collect();
        Ok(Key::new(LocalKey {
            dir: &self.dir,
            files,
            dist: self.files.iter().map(Loader::dist).collect(),
        }))
    }

    fn run(&self, ctx: &mut RunCtx) -> Result<()> {
        for f in &self.files {
            let path = self.dir.join(f.name);
            let bytes = std::fs::read(&path).with_context(|| {
                format!(
                    "reading loader {} from sources.loaders_dir (see docs/artifacts.md for \
                     filling it from Debian's packages)",
                    path.display()
                )
            })?;
            ctx.put_bytes(&f.dist(), &bytes, Visibility::Public)?;
        }
        Ok(())
    }
}

fn debian_step_id(package: &Package) -> String {
    format!("fetch:loaders/debian/{}", package.name)
}

/// Loaders taken out of one of Debian's packages, fetched by its pool path
/// and checked against the digest pxebuild pins for it.
pub(crate) struct DebianLoaders {
    pub fetcher: Arc<Fetcher>,
    pub package: Package,
    /// Canonical URL of the `.deb` (mirror rewriting applies on fetch).
    pub url: String,
    pub files: Vec<Loader>,
}

/// What a refusal names besides the file and its pin: the package and the
/// setting that chose it.
fn anchor(package: &Package) -> String {
    format!(
        "Debian's {} {}; sources.loaders = \"debian\", the default",
        package.name, package.version
    )
}

/// The loader files of `package`'s `.deb` (read from `deb`, fetched from
/// `url`), by path inside data.tar; a package without one of them, or not a
/// `.deb` at all, is refused naming the file, its pin and the setting.
fn unpack(
    package: &Package,
    url: &str,
    deb: impl Read,
    wanted: &[&str],
) -> Result<std::collections::BTreeMap<String, Vec<u8>>> {
    debian::read_members(deb, wanted).map_err(|e| {
        anyhow!(
            "{} ({url}, pinned SHA-256 {}) {e} ({})",
            package.file_name(),
            package.sha256,
            anchor(package)
        )
    })
}

/// The key of loaders taken from a Debian package: the pinned `.deb` and
/// (path inside it, dist path) per file.
#[derive(Serialize)]
struct DebianKey<'a> {
    url: &'a str,
    sha256: &'static str,
    files: Vec<(&'static str, String)>,
}

impl Step for DebianLoaders {
    fn id(&self) -> String {
        debian_step_id(&self.package)
    }

    fn key<'a>(&'a self, _: &'a Inputs<'_>) -> Result<Key<'a>> {
        Ok(Key::new(DebianKey {
            url: &self.url,
            sha256: self.package.sha256,
            files: self.files.iter().map(|f| (f.in_deb.1, f.dist())).collect(),
        }))
    }

    /// The `.deb` the loaders were taken from.
    fn stored_inputs_intact(&self) -> Result<bool> {
        Ok(self.fetcher.verify_stored(&self.url)? == Some(true))
    }

    fn run(&self, ctx: &mut RunCtx) -> Result<()> {
        let file = self.package.file_name();
        let anchor = anchor(&self.package);
        let url = self.url.clone();
        let pin = self.package.sha256;
        let check = move |_: &std::path::Path, blob: &Blob| -> Result<()> {
            if blob.sha256 != pin {
                return Err(DigestMismatch(format!(
                    "pin mismatch: {url} has SHA-256 {} but pxebuild pins {pin} ({anchor}); \
                     the archive or mirror must serve Debian's exact file",
                    blob.sha256
                ))
                .into());
            }
            Ok(())
        };
        let blob = self.fetcher.fetch(file, &self.url, &check)?;
        let path = ctx.store().path_of(&blob.sha256);
        let deb =
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let wanted: Vec<&str> = self.files.iter().map(|f| f.in_deb.1).collect();
        let mut members = unpack(
            &self.package,
            &self.url,
            std::io::BufReader::new(deb),
            &wanted,
        )?;
        for f in &self.files {
            let bytes = members
                .remove(f.in_deb.1)
                .ok_or_else(|| anyhow!("{file} lacks {}", f.in_deb.1))?;
            ctx.put_bytes(&f.dist(), &bytes, Visibility::Public)?;
        }
        Ok(())
    }
}

/// Loaders extracted from the syslinux release tarball.
pub(crate) struct SyslinuxLoaders {
    pub fetcher: Arc<Fetcher>,
    pub url: String,
    pub sha256: String,
    pub files: Vec<Loader>,
}

/// The key of loaders extracted from the syslinux tarball: the pinned
/// tarball and the dist paths.
#[derive(Serialize)]
struct SyslinuxKey<'a> {
    url: &'a str,
    sha256: &'a str,
    dist: Vec<String>,
}

impl Step for SyslinuxLoaders {
    fn id(&self) -> String {
        "fetch:loaders/syslinux".into()
    }

    fn key<'a>(&'a self, _: &'a Inputs<'_>) -> Result<Key<'a>> {
        Ok(Key::new(SyslinuxKey {
            url: &self.url,
            sha256: &self.sha256,
            dist: self.files.iter().map(Loader::dist).collect(),
        }))
    }

    /// The tarball the loaders were extracted from.
    fn stored_inputs_intact(&self) -> Result<bool> {
        Ok(self.fetcher.verify_stored(&self.url)? == Some(true))
    }

    fn run(&self, ctx: &mut RunCtx) -> Result<()> {
        let name = tarball_name(&self.url);
        let blob = self.fetcher.fetch(
            name,
            &self.url,
            &pinned(&self.fetcher, &self.url, &self.sha256),
        )?;
        let path = ctx.store().path_of(&blob.sha256);
        let file =
            std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let mut archive = tar::Archive::new(decompressor(name, file));
        let mut found = Vec::new();
        for entry in archive.entries().context("reading the syslinux tarball")? {
            let mut entry = entry.context("reading the syslinux tarball")?;
            let name = entry.path()?.to_string_lossy().into_owned();
            // Members sit under a `syslinux-6.03/` top directory.
            let inner = name.split_once('/').map_or("", |(_, rest)| rest);
            if let Some(f) = self.files.iter().find(|f| f.in_tarball == Some(inner)) {
                let mut bytes = Vec::new();
                entry
                    .read_to_end(&mut bytes)
                    .with_context(|| format!("extracting {name}"))?;
                ctx.put_bytes(&f.dist(), &bytes, Visibility::Public)?;
                found.push(f.name);
            }
        }
        let missing: Vec<&str> = self
            .files
            .iter()
            .filter(|f| !found.contains(&f.name))
            .map(|f| f.in_tarball.unwrap_or(f.name))
            .collect();
        if !missing.is_empty() {
            bail!("{} lacks {}", self.url, missing.join(", "));
        }
        Ok(())
    }
}

/// iPXE binaries, each with a pinned digest.
pub(crate) struct IpxeLoaders {
    pub fetcher: Arc<Fetcher>,
    pub files: Vec<(Loader, String, String)>,
}

impl IpxeLoaders {
    fn new(fetcher: &Arc<Fetcher>, files: Vec<Loader>) -> Result<IpxeLoaders> {
        let src = &fetcher.sources;
        let unpinned: Vec<&str> = files
            .iter()
            .filter(|f| !src.ipxe_sha256s.contains_key(f.name))
            .map(|f| f.name)
            .collect();
        if !unpinned.is_empty() {
            return Err(BadInput::new(format!(
                "no SHA-256 pin for iPXE {}: with sources.loaders = \"upstream\" set \
                 sources.ipxe_sha256s (boot.ipxe.org serves rolling builds, so pxebuild cannot \
                 carry a default), or use Debian's pinned ipxe package (the default \
                 sources.loaders = \"debian\")",
                unpinned.join(", ")
            )));
        }
        let files = files
            .into_iter()
            .map(|f| {
                let url = format!("{}/{}", src.ipxe_url, f.name);
                let sha = src.ipxe_sha256s[f.name].clone();
                (f, url, sha)
            })
            .collect();
        Ok(IpxeLoaders {
            fetcher: fetcher.clone(),
            files,
        })
    }
}

/// The key of the iPXE binaries: (URL, pinned sha256) per file, and the
/// dist paths.
#[derive(Serialize)]
struct IpxeKey<'a> {
    files: Vec<(&'a str, &'a str)>,
    dist: Vec<String>,
}

impl Step for IpxeLoaders {
    fn id(&self) -> String {
        "fetch:loaders/ipxe".into()
    }

    fn key<'a>(&'a self, _: &'a Inputs<'_>) -> Result<Key<'a>> {
        Ok(Key::new(IpxeKey {
            files: self
                .files
                .iter()
                .map(|(_, url, sha)| (url.as_str(), sha.as_str()))
                .collect(),
            dist: self.files.iter().map(|(f, _, _)| f.dist()).collect(),
        }))
    }

    fn run(&self, ctx: &mut RunCtx) -> Result<()> {
        for (f, url, sha) in &self.files {
            let blob = self
                .fetcher
                .fetch(f.name, url, &pinned(&self.fetcher, url, sha))?;
            ctx.put_blob(&f.dist(), &blob.sha256, blob.size, Visibility::Public);
        }
        Ok(())
    }
}

/// A check that the download has the pinned digest; a mismatch says whose
/// pin it is and what to set.
fn pinned<'a>(
    fetcher: &'a Fetcher,
    url: &'a str,
    sha256: &'a str,
) -> impl Fn(&std::path::Path, &Blob) -> Result<()> + 'a {
    move |_, blob| {
        if blob.sha256 != sha256 {
            return Err(DigestMismatch(format!(
                "pin mismatch: {url} has SHA-256 {} but the pin is {sha256}; {}",
                blob.sha256,
                fetcher.sources.pin_advice(url, &blob.sha256)
            ))
            .into());
        }
        Ok(())
    }
}

/// The tarball's file name, the last segment of its URL.
pub(crate) fn tarball_name(url: &str) -> &str {
    url.rsplit('/').next().unwrap_or(url)
}

/// Upstream publishes `.tar.xz` (the pinned default) and `.tar.gz`; mirrors
/// and tests may use either, so the format follows the file name.
fn decompressor(name: &str, file: std::fs::File) -> Box<dyn Read> {
    if name.ends_with(".xz") {
        Box::new(lzma_rust2::XzReader::new(
            std::io::BufReader::new(file),
            true,
        ))
    } else {
        Box::new(flate2::read::GzDecoder::new(file))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deb_without_a_loader_is_refused_naming_file_pin_and_setting() {
        // A genuine-looking package that lacks the loader: dpkg-deb builds it.
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("pkg");
        std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
        std::fs::create_dir_all(root.join("usr/lib/PXELINUX")).unwrap();
        std::fs::write(
            root.join("DEBIAN/control"),
            "Package: pxelinux\nVersion: 1\nArchitecture: all\nMaintainer: t <t@example>\nDescription: t\n",
        )
        .unwrap();
        std::fs::write(root.join("usr/lib/PXELINUX/pxelinux.0"), b"not lpxelinux").unwrap();
        let deb = dir.path().join("p.deb");
        let run = std::process::Command::new("dpkg-deb")
            .args(["-Zxz", "--root-owner-group", "--build"])
            .arg(&root)
            .arg(&deb)
            .output()
            .expect("dpkg-deb");
        assert!(run.status.success());
        let url = debian::PXELINUX.url(debian::DEBIAN_URL);
        let (bios, _) = wanted(&["bios".to_string()]);
        let members: Vec<&str> = bios
            .iter()
            .filter(|f| f.in_deb.0 == debian::PXELINUX)
            .map(|f| f.in_deb.1)
            .collect();
        let err = unpack(
            &debian::PXELINUX,
            &url,
            std::fs::File::open(&deb).unwrap(),
            &members,
        )
        .unwrap_err();
        let msg = format!("{err:#}");
        for needle in [
            "pxelinux_6.04~git20190206.bf6db5b4+dfsg1-3_all.deb",
            &url,
            "lacks usr/lib/PXELINUX/lpxelinux.0",
            debian::PXELINUX.sha256,
            "sources.loaders = \"debian\"",
        ] {
            assert!(msg.contains(needle), "{needle:?} not in {msg}");
        }
        assert_eq!(crate::error::exit_code(&err), 1, "the work failed");
    }

    #[test]
    fn every_loader_names_its_package_and_member() {
        let (syslinux, ipxe) = wanted(&["bios".into(), "uefi".into(), "ipxe".into()]);
        let packages: Vec<&str> = by_package(syslinux.into_iter().chain(ipxe))
            .iter()
            .map(|(p, _)| p.name)
            .collect();
        assert_eq!(
            packages,
            ["pxelinux", "syslinux-common", "syslinux-efi", "ipxe"]
        );
    }
}
