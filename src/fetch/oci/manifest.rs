//! Reading the manifests a registry serves: which of the four kinds a
//! manifest is (from the server's `Content-Type`, else its own `mediaType`
//! field, as a static server sends a generic type), the descriptors it
//! names, and the site architecture's manifest in a multi-arch index.
//! Digests are checked for shape before they become file names in dist/.
use anyhow::{anyhow, Context, Result};
use serde::Deserialize;

use crate::layout::OCI_MANIFEST_KINDS;

/// A descriptor: what a manifest says about another manifest or a blob.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Descriptor {
    #[serde(default)]
    pub media_type: Option<String>,
    pub digest: String,
    pub size: u64,
    #[serde(default)]
    pub platform: Option<Platform>,
}

#[derive(Debug, Clone, Deserialize)]
pub(crate) struct Platform {
    pub architecture: String,
    pub os: String,
    #[serde(default)]
    pub variant: Option<String>,
}

/// The fields of a manifest or index that pxebuild reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Raw {
    #[serde(default)]
    media_type: Option<String>,
    #[serde(default)]
    manifests: Option<Vec<Descriptor>>,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Option<Vec<Descriptor>>,
}

/// A parsed manifest: an index (of platform manifests) or an image manifest.
#[derive(Debug)]
pub(crate) enum Parsed {
    Index(Vec<Descriptor>),
    Image {
        config: Descriptor,
        layers: Vec<Descriptor>,
    },
}

/// Whether a media type is one of the two multi-arch kinds.
pub(crate) fn is_index(media_type: &str) -> bool {
    matches!(
        crate::layout::oci_manifest_kind(media_type),
        Some("oci-index" | "docker-list")
    )
}

/// The manifest's media type: the served `Content-Type` when it is one of
/// the four kinds, else the document's own `mediaType`, else what its shape
/// says (an OCI index has `manifests`, an image manifest `config`).
pub(crate) fn media_type(bytes: &[u8], served: Option<&str>) -> Result<&'static str> {
    let known = |t: &str| {
        let t = t.split(';').next().unwrap_or(t).trim();
        OCI_MANIFEST_KINDS
            .iter()
            .find(|(_, media)| *media == t)
            .map(|(_, media)| *media)
    };
    if let Some(t) = served.and_then(known) {
        return Ok(t);
    }
    let raw: Raw = serde_json::from_slice(bytes).context("the manifest is not JSON")?;
    if let Some(t) = raw.media_type.as_deref() {
        return known(t).ok_or_else(|| {
            anyhow!("the manifest's media type {t:?} is not one pxebuild carries (OCI or Docker v2 schema 2)")
        });
    }
    if raw.manifests.is_some() {
        Ok(OCI_MANIFEST_KINDS[0].1)
    } else if raw.config.is_some() {
        Ok(OCI_MANIFEST_KINDS[1].1)
    } else {
        Err(anyhow!(
            "the manifest has no media type and is neither an index nor an image manifest"
        ))
    }
}

/// Parses a manifest of a known media type, every digest it names checked.
pub(crate) fn parse(bytes: &[u8], media_type: &str) -> Result<Parsed> {
    let raw: Raw = serde_json::from_slice(bytes).context("the manifest is not JSON")?;
    if is_index(media_type) {
        let manifests = raw
            .manifests
            .ok_or_else(|| anyhow!("the index lists no manifests"))?;
        for m in &manifests {
            hex_of(&m.digest)?;
        }
        return Ok(Parsed::Index(manifests));
    }
    let config = raw
        .config
        .ok_or_else(|| anyhow!("the image manifest has no config"))?;
    let layers = raw.layers.unwrap_or_default();
    for d in std::iter::once(&config).chain(&layers) {
        hex_of(&d.digest)?;
    }
    Ok(Parsed::Image { config, layers })
}

/// The index's manifest for `linux/<arch>`: variant-less (or `v8`, which
/// arm64 images often state and which is the only arm64 variant).
pub(crate) fn platform_manifest<'a>(
    manifests: &'a [Descriptor],
    arch: &str,
) -> Option<&'a Descriptor> {
    manifests.iter().find(|m| {
        m.platform.as_ref().is_some_and(|p| {
            p.os == "linux"
                && p.architecture == arch
                && match p.variant.as_deref() {
                    None | Some("") => true,
                    Some("v8") => arch == "arm64",
                    Some(_) => false,
                }
        })
    })
}

/// The platforms an index offers, for the message when the site's is missing.
pub(crate) fn platforms(manifests: &[Descriptor]) -> String {
    let list: Vec<String> = manifests
        .iter()
        .filter_map(|m| m.platform.as_ref())
        .map(|p| match &p.variant {
            Some(v) if !v.is_empty() => format!("{}/{}/{v}", p.os, p.architecture),
            _ => format!("{}/{}", p.os, p.architecture),
        })
        .collect();
    if list.is_empty() {
        "none".into()
    } else {
        list.join(", ")
    }
}

/// The hex part of a `sha256:<64 lowercase hex>` digest; anything else is
/// refused (it becomes a file name in dist/ and a store key).
pub(crate) fn hex_of(digest: &str) -> Result<&str> {
    digest
        .strip_prefix("sha256:")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
        .ok_or_else(|| anyhow!("{digest:?} is not a sha256 digest (sha256:<64 lowercase hex>)"))
}

/// The OCI platform architecture of a Flatcar arch (`amd64`, `arm64`).
pub(crate) fn oci_arch(flatcar_arch: &str) -> &str {
    match flatcar_arch {
        "x86_64" | "x86-64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"{"schemaVersion":2,"manifests":[
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":1,"platform":{"architecture":"amd64","os":"linux"}},
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","size":1,"platform":{"architecture":"arm","os":"linux","variant":"v7"}},
        {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc","size":1,"platform":{"architecture":"arm64","os":"linux","variant":"v8"}}]}"#;

    #[test]
    fn the_media_type_comes_from_the_server_the_document_or_its_shape() {
        let index = INDEX.as_bytes();
        assert_eq!(
            media_type(
                index,
                Some("application/vnd.docker.distribution.manifest.list.v2+json")
            )
            .unwrap(),
            "application/vnd.docker.distribution.manifest.list.v2+json"
        );
        // A static server's generic type: the shape decides.
        assert_eq!(
            media_type(index, Some("application/octet-stream")).unwrap(),
            "application/vnd.oci.image.index.v1+json"
        );
        let docker = br#"{"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"digest":"sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","size":2},"layers":[]}"#;
        assert_eq!(
            media_type(docker, None).unwrap(),
            "application/vnd.docker.distribution.manifest.v2+json"
        );
        let v1 = br#"{"mediaType":"application/vnd.docker.distribution.manifest.v1+prettyjws"}"#;
        assert!(media_type(v1, None).is_err());
    }

    #[test]
    fn the_site_arch_is_picked_from_an_index() {
        let Parsed::Index(list) =
            parse(INDEX.as_bytes(), "application/vnd.oci.image.index.v1+json").unwrap()
        else {
            panic!("an index")
        };
        assert!(platform_manifest(&list, "amd64")
            .unwrap()
            .digest
            .ends_with("aaaa"));
        assert!(platform_manifest(&list, "arm64")
            .unwrap()
            .digest
            .ends_with("cccc"));
        assert!(
            platform_manifest(&list, "arm").is_none(),
            "a variant is not variant-less"
        );
        assert!(platform_manifest(&list, "riscv64").is_none());
        assert_eq!(
            platforms(&list),
            "linux/amd64, linux/arm/v7, linux/arm64/v8"
        );
    }

    #[test]
    fn digests_that_are_not_sha256_hex_are_refused() {
        assert!(hex_of("sha256:../../etc/passwd").is_err());
        assert!(hex_of(&format!("sha512:{}", "a".repeat(128))).is_err());
        assert!(hex_of(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert_eq!(
            hex_of(&format!("sha256:{}", "a".repeat(64))).unwrap(),
            "a".repeat(64)
        );
        let bad = br#"{"config":{"digest":"sha256:x/../y","size":1},"layers":[]}"#;
        assert!(parse(bad, "application/vnd.oci.image.manifest.v1+json").is_err());
    }
}
