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
pub(crate) enum LoaderSource {
    Debian,
    Upstream,
}

impl LoaderSource {
    /// From `sources.loaders`; absent means Debian.
    pub(crate) fn parse(value: Option<&str>) -> Option<LoaderSource> {
        match value {
            None | Some("debian") => Some(LoaderSource::Debian),
            Some("upstream") => Some(LoaderSource::Upstream),
            Some(_) => None,
        }
    }
}

pub(crate) const SYSLINUX_URL: &str =
    "https://www.kernel.org/pub/linux/utils/boot/syslinux/syslinux-6.03.tar.xz";
/// SHA-256 of the upstream syslinux 6.03 `.tar.xz` (the same value is pinned
/// independently by Buildroot, Yocto and LibreELEC). It applies only to the
/// default URL: a site that names another tarball pins it itself.
pub(crate) const SYSLINUX_SHA256: &str =
    "26d3986d2bea109d5dc0e4f8c4822a459276cf021125e8c9f23c3cca5d8c850e";
pub(crate) const IPXE_URL: &str = "https://boot.ipxe.org";
pub(crate) const SYSEXT_RELEASES: &str =
    "https://github.com/flatcar/sysext-bakery/releases/download";

/// The resolved artifact sources of one site.
#[derive(Debug, Clone)]
pub(crate) struct Sources {
    /// Mirror base without a trailing slash, if any.
    pub mirror: Option<String>,
    pub key: SigningKey,
    /// SHA-256 of the key file's bytes (a rotated key changes the step keys).
    pub key_digest: String,
    pub loaders: LoaderSource,
    /// Debian archive root without a trailing slash.
    pub debian_url: String,
    /// The setting that named the signing key (`PXEBUILD_SIGNING_KEY`,
    /// `sources.signing_key`), `None` for the built-in Flatcar key.
    pub key_setting: Option<&'static str>,
    pub syslinux_url: String,
    pub syslinux_sha256: Option<String>,
    /// `syslinux_sha256` is pxebuild's own pin (of its default tarball),
    /// not one the site set.
    pub syslinux_pin_builtin: bool,
    pub ipxe_url: String,
    pub ipxe_sha256s: BTreeMap<String, String>,
    pub loaders_dir: Option<PathBuf>,
}

impl Sources {
    /// From the site's `[sources]`, with `PXEBUILD_MIRROR` and
    /// `PXEBUILD_SIGNING_KEY` taking precedence for this run.
    pub(crate) fn from_site(site: &Site) -> Result<Sources> {
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
        let (key, key_digest, key_setting) = match env("PXEBUILD_SIGNING_KEY") {
            Some(path) => {
                let (key, digest) = load_key(Path::new(&path), "PXEBUILD_SIGNING_KEY")?;
                (key, digest, Some("PXEBUILD_SIGNING_KEY"))
            }
            None => match &src.signing_key {
                Some(path) => {
                    let (key, digest) = load_key(&site.dir.join(path), "sources.signing_key")?;
                    (key, digest, Some("sources.signing_key"))
                }
                None => {
                    let digest = crate::digest::sha256_hex(FLATCAR_KEY.as_bytes());
                    (SigningKey::flatcar(), format!("builtin:{digest}"), None)
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
            key_setting,
            syslinux_pin_builtin: src.syslinux_sha256.is_none() && src.syslinux_url.is_none(),
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

    /// Which key checked a signature, and the setting that names another:
    /// for a signature that does not verify.
    pub(crate) fn key_advice(&self) -> String {
        match self.key_setting {
            None => "checked with the built-in Flatcar image signing key; a release signed \
                     with another key needs that key in sources.signing_key (or \
                     PXEBUILD_SIGNING_KEY)"
                .to_string(),
            Some(setting) => format!(
                "checked with the key {setting} names ({}); if the file is signed with \
                 another key, set {setting} to that key (unset, the built-in Flatcar key is used)",
                self.key.source
            ),
        }
    }

    /// Whose pin `url` failed and what to set, for a pin mismatch: the
    /// built-in syslinux pin, or the site's `sources.*` setting.
    pub(crate) fn pin_advice(&self, url: &str, got: &str) -> String {
        if url == self.syslinux_url {
            return if self.syslinux_pin_builtin {
                "the pin is pxebuild's built-in one for its default syslinux tarball; to use \
                 another tarball set sources.syslinux_url and sources.syslinux_sha256"
                    .to_string()
            } else {
                format!(
                    "the pin is the site's sources.syslinux_sha256; if this file is the one you \
                     want, set sources.syslinux_sha256 = \"{got}\""
                )
            };
        }
        let name = url.rsplit('/').next().unwrap_or(url);
        format!(
            "the pin is the site's sources.ipxe_sha256s.\"{name}\" (boot.ipxe.org serves rolling \
             builds); if this file is the one you want, set it to \"{got}\""
        )
    }

    /// The URL actually requested for canonical `url` (mirror-rewritten).
    pub(crate) fn locate(&self, url: &str) -> Result<String> {
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
pub(crate) fn mirror_path(url: &str) -> Result<String> {
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
pub(crate) fn flatcar_url(channel: &str, arch: &str, version: &str, file: &str) -> String {
    format!("https://{channel}.release.flatcar-linux.net/{arch}-usr/{version}/{file}")
}

/// A file of a sysext-bakery release `<name>-<version>`.
pub(crate) fn sysext_url(name: &str, version: &str, file: &str) -> String {
    format!("{SYSEXT_RELEASES}/{name}-{version}/{file}")
}

/// The architecture suffix of sysext images.
pub(crate) fn sysext_arch(arch: &str) -> &'static str {
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

    fn sources(extra: &str) -> Sources {
        let text = include_str!("../../site.toml")
            .replace("[sources]\n", &format!("[sources]\n{extra}\n"));
        let site = Site::from_text(&text, Path::new("site.toml")).unwrap();
        Sources::from_site(&site).unwrap()
    }

    #[test]
    fn a_mismatch_says_whose_pin_or_key_it_is_and_what_to_set() {
        // Pins belong to the upstream opt-in (Debian's packages are pinned
        // inside pxebuild and name no site setting).
        let builtin = sources("loaders = \"upstream\"");
        let advice = builtin.pin_advice(&builtin.syslinux_url, "ab");
        assert!(advice.contains("pxebuild's built-in one"), "{advice}");
        assert!(advice.contains("sources.syslinux_url and sources.syslinux_sha256"));
        assert!(builtin
            .key_advice()
            .contains("built-in Flatcar image signing key"));
        assert!(builtin.key_advice().contains("sources.signing_key"));

        let site = sources(&format!(
            "loaders = \"upstream\"\nsyslinux_sha256 = \"{}\"",
            "c".repeat(64)
        ));
        let advice = site.pin_advice(&site.syslinux_url, "ab");
        assert!(
            advice.contains("the site's sources.syslinux_sha256") && advice.contains("\"ab\""),
            "{advice}"
        );
        let advice = site.pin_advice("https://boot.ipxe.org/ipxe.efi", "ab");
        assert!(
            advice.contains("sources.ipxe_sha256s.\"ipxe.efi\""),
            "{advice}"
        );
    }
}
