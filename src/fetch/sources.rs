//! Where every artifact comes from: the canonical upstream URLs, the mirror
//! rewrite (`<mirror>/<original host>/<original path>`), the signing key and
//! the loader source and pins, resolved once from the site and the environment.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Result};

use super::signature::{SigningKey, FLATCAR_KEY};
use crate::site::Site;

/// `sources.loaders`: Debian's packages (the default) or the upstream
/// releases (opt-in).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoaderSource {
    Debian,
    Upstream,
}

impl LoaderSource {
    /// From `sources.loaders`; absent means Debian.
    pub fn parse(value: Option<&str>) -> Option<LoaderSource> {
        match value {
            None | Some("debian") => Some(LoaderSource::Debian),
            Some("upstream") => Some(LoaderSource::Upstream),
            Some(_) => None,
        }
    }
}

pub const SYSLINUX_URL: &str =
    "https://www.kernel.org/pub/linux/utils/boot/syslinux/syslinux-6.03.tar.xz";
/// SHA-256 of the upstream syslinux 6.03 `.tar.xz` (the same value is pinned
/// independently by Buildroot, Yocto and LibreELEC). It applies only to the
/// default URL: a site that names another tarball pins it itself.
pub const SYSLINUX_SHA256: &str =
    "26d3986d2bea109d5dc0e4f8c4822a459276cf021125e8c9f23c3cca5d8c850e";
pub const IPXE_URL: &str = "https://boot.ipxe.org";
pub const SYSEXT_RELEASES: &str = "https://github.com/flatcar/sysext-bakery/releases/download";

/// The resolved artifact sources of one site.
#[derive(Debug, Clone)]
pub struct Sources {
    /// Mirror base without a trailing slash, if any.
    pub mirror: Option<String>,
    pub key: SigningKey,
    /// SHA-256 of the key file's bytes (a rotated key changes the step keys).
    pub key_digest: String,
    pub loaders: LoaderSource,
    /// Debian archive root without a trailing slash.
    pub debian_url: String,
    pub syslinux_url: String,
    pub syslinux_sha256: Option<String>,
    pub ipxe_url: String,
    pub ipxe_sha256s: BTreeMap<String, String>,
    pub loaders_dir: Option<PathBuf>,
}

impl Sources {
    /// From the site's `[sources]`, with `PXEBUILD_MIRROR` and
    /// `PXEBUILD_SIGNING_KEY` taking precedence for this run.
    pub fn from_site(site: &Site) -> Result<Sources> {
        let src = &site.file.sources;
        let env = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let from_env = env("PXEBUILD_MIRROR");
        // site.toml's `sources.mirror` is checked with the site; the override
        // gets the same check here, before any URL is built from it.
        if let Some(m) = &from_env {
            if !(m.starts_with("http://") || m.starts_with("https://")) {
                return Err(crate::error::BadInput::new(format!(
                    "PXEBUILD_MIRROR: {m:?} is not an http:// or https:// URL"
                )));
            }
        }
        let mirror = from_env
            .or_else(|| src.mirror.clone())
            .map(|m| m.trim_end_matches('/').to_string());
        let (key, key_digest) = match env("PXEBUILD_SIGNING_KEY") {
            Some(path) => load_key(Path::new(&path), "PXEBUILD_SIGNING_KEY")?,
            None => match &src.signing_key {
                Some(path) => load_key(&site.dir.join(path), "sources.signing_key")?,
                None => {
                    let digest = crate::digest::sha256_hex(FLATCAR_KEY.as_bytes());
                    (SigningKey::flatcar(), format!("builtin:{digest}"))
                }
            },
        };
        // The site check names the key with its place; this guards callers
        // that skipped it.
        let loaders = LoaderSource::parse(src.loaders.as_deref()).ok_or_else(|| {
            crate::error::BadInput::new(format!(
                "sources.loaders: {:?} is not one of \"debian\", \"upstream\"",
                src.loaders.as_deref().unwrap_or_default()
            ))
        })?;
        Ok(Sources {
            mirror,
            key,
            key_digest,
            loaders,
            debian_url: src
                .debian_url
                .clone()
                .unwrap_or_else(|| super::debian::DEBIAN_URL.into())
                .trim_end_matches('/')
                .to_string(),
            syslinux_url: src
                .syslinux_url
                .clone()
                .unwrap_or_else(|| SYSLINUX_URL.into()),
            syslinux_sha256: src
                .syslinux_sha256
                .clone()
                .or_else(|| src.syslinux_url.is_none().then(|| SYSLINUX_SHA256.into()))
                .map(|s| s.to_ascii_lowercase()),
            ipxe_url: src
                .ipxe_url
                .clone()
                .unwrap_or_else(|| IPXE_URL.into())
                .trim_end_matches('/')
                .to_string(),
            ipxe_sha256s: src
                .ipxe_sha256s
                .iter()
                .map(|(k, v)| (k.clone(), v.to_ascii_lowercase()))
                .collect(),
            loaders_dir: src.loaders_dir.as_ref().map(|d| site.dir.join(d)),
        })
    }

    /// The URL actually requested for canonical `url` (mirror-rewritten).
    pub fn locate(&self, url: &str) -> Result<String> {
        match &self.mirror {
            Some(mirror) => Ok(format!("{mirror}/{}", mirror_path(url)?)),
            None => Ok(url.to_string()),
        }
    }
}

/// The signing key the operator named (`what`: the setting that names it);
/// a key that cannot be read or parsed is bad input (exit 2), named by its
/// setting and path.
fn load_key(path: &Path, what: &str) -> Result<(SigningKey, String)> {
    let bytes = std::fs::read(path).map_err(|e| {
        crate::error::BadInput::new(format!(
            "{what}: reading signing key {}: {e}",
            path.display()
        ))
    })?;
    let key = SigningKey::parse(&bytes, &path.display().to_string())
        .map_err(|e| crate::error::BadInput::new(format!("{what}: {e:#}")))?;
    Ok((key, crate::digest::sha256_hex(&bytes)))
}

/// `https://host/a/b` → `host/a/b`: the path of a URL inside a mirror.
pub fn mirror_path(url: &str) -> Result<String> {
    let rest = url
        .split_once("://")
        .map(|(_, rest)| rest)
        .ok_or_else(|| anyhow!("{url} is not an absolute URL"))?;
    let rest = rest.split(['?', '#']).next().unwrap_or(rest);
    if rest.split('/').any(|seg| seg == "..") {
        return Err(anyhow!("{url} leaves its host's root"));
    }
    Ok(rest.to_string())
}

/// A Flatcar release file: `https://<channel>.release.flatcar-linux.net/<arch>-usr/<version>/<file>`.
pub fn flatcar_url(channel: &str, arch: &str, version: &str, file: &str) -> String {
    format!("https://{channel}.release.flatcar-linux.net/{arch}-usr/{version}/{file}")
}

/// A file of a sysext-bakery release `<name>-<version>`.
pub fn sysext_url(name: &str, version: &str, file: &str) -> String {
    format!("{SYSEXT_RELEASES}/{name}-{version}/{file}")
}

/// The architecture suffix of sysext images.
pub fn sysext_arch(arch: &str) -> &'static str {
    if arch == "arm64" {
        "arm64"
    } else {
        "x86-64"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirror_layout_prefixes_the_original_host() {
        let url = flatcar_url(
            "stable",
            "amd64",
            "4593.2.5",
            "flatcar_production_pxe.vmlinuz",
        );
        assert_eq!(
            mirror_path(&url).unwrap(),
            "stable.release.flatcar-linux.net/amd64-usr/4593.2.5/flatcar_production_pxe.vmlinuz"
        );
        assert!(mirror_path("https://h/a/../../etc").is_err());
        assert!(mirror_path("no-scheme").is_err());
    }
}
