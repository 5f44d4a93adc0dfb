//! System extensions from the Flatcar sysext-bakery, checked against their
//! release's SHA256SUMS and placed as a flat sysupdate source directory
//! (`http/sysext/<name>/` with the image and a SHA256SUMS listing it).
use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use serde::Serialize;

use super::fetcher::{Blob, DigestMismatch, Fetcher};
use super::refs::{ArtifactRef, SysextRef};
use super::sources::{sysext_arch, sysext_url};
use crate::engine::key::Key;
use crate::engine::step::{Inputs, RunCtx, Step, Visibility};

pub(crate) struct SysextImage {
    pub fetcher: Arc<Fetcher>,
    pub name: String,
    pub version: String,
    pub file_name: String,
    pub url: String,
    pub sums_url: String,
}

impl SysextImage {
    pub(crate) fn new(
        fetcher: &Arc<Fetcher>,
        name: &str,
        version: &str,
        arch: &str,
    ) -> SysextImage {
        let file_name = format!("{name}-{version}-{}.raw", sysext_arch(arch));
        SysextImage {
            fetcher: fetcher.clone(),
            name: name.to_string(),
            version: version.to_string(),
            url: sysext_url(name, version, &file_name),
            sums_url: sysext_url(name, version, "SHA256SUMS"),
            file_name,
        }
    }

    pub(crate) fn artifact(&self) -> SysextRef {
        SysextRef {
            name: self.name.clone(),
            version: self.version.clone(),
            file_name: self.file_name.clone(),
            image: ArtifactRef {
                step: self.id(),
                path: crate::layout::sysext_file(&self.name, &self.file_name),
            },
            sha512: ArtifactRef {
                step: self.id(),
                path: crate::layout::sysext_sha512(&self.name, &self.file_name),
            },
        }
    }

    /// The expected digest of our image in the release's SHA256SUMS, and the list.
    fn expected(&self) -> Result<(String, Vec<u8>)> {
        let sums = self
            .fetcher
            .fetch_small(&format!("{} SHA256SUMS", self.name), &self.sums_url)?
            .ok_or_else(|| anyhow!("{}: not found (HTTP 404)", self.sums_url))?;
        let text = String::from_utf8_lossy(&sums);
        let sum = lookup_sum(&text, &self.file_name)
            .map_err(|e| anyhow!("{}: {e}", self.sums_url))?
            .ok_or_else(|| anyhow!("{} does not list {}", self.sums_url, self.file_name))?;
        Ok((sum, sums))
    }
}

/// The hex digest for `file` in a `sha256sum` listing (`<hex>  <name>` or
/// `<hex> *<name>`). Two lines for `file` that disagree are an error: which
/// one a tool believes would decide what is trusted (first wins here, a
/// failed line with `sha256sum -c`). Repeated identical lines are harmless.
pub(crate) fn lookup_sum(text: &str, file: &str) -> Result<Option<String>> {
    let mut found: Option<String> = None;
    for line in text.lines() {
        let Some((hex, name)) = line.trim().split_once(char::is_whitespace) else {
            continue;
        };
        let name = name.trim_start().trim_start_matches('*');
        if name != file || hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            continue;
        }
        let hex = hex.to_ascii_lowercase();
        match &found {
            Some(first) if *first != hex => bail!(
                "ambiguous: it lists {file} twice with different digests, {first} and {hex}; \
                 refusing to pick one"
            ),
            Some(_) => {}
            None => found = Some(hex),
        }
    }
    Ok(found)
}

/// The key of a sysext download: the image and the checksums that verify it.
#[derive(Serialize)]
struct SysextKey<'a> {
    url: &'a str,
    sums_url: &'a str,
}

impl Step for SysextImage {
    fn id(&self) -> String {
        format!("fetch:sysext/{}", self.name)
    }

    fn key<'a>(&'a self, _: &'a Inputs<'_>) -> Result<Key<'a>> {
        Ok(Key::new(SysextKey {
            url: &self.url,
            sums_url: &self.sums_url,
        }))
    }

    /// The verified bytes of a pinned download: nothing pxebuild's code makes.
    fn keyed_by_binary(&self) -> bool {
        false
    }

    /// The release's SHA256SUMS, which the image was checked against.
    fn stored_inputs_intact(&self) -> Result<bool> {
        Ok(self.fetcher.verify_stored(&self.sums_url)? == Some(true))
    }

    fn run(&self, ctx: &mut RunCtx) -> Result<()> {
        let (expected, sums) = self.expected()?;
        let check = |_: &std::path::Path, blob: &Blob| {
            if blob.sha256 != expected {
                return Err(DigestMismatch(format!(
                    "SHA256SUMS mismatch for {}: the release lists {expected}, the download is {}",
                    self.url, blob.sha256
                ))
                .into());
            }
            Ok(())
        };
        let blob = self.fetcher.fetch(&self.file_name, &self.url, &check)?;
        self.fetcher.remember(&self.sums_url, &sums)?;
        let refs = self.artifact();
        ctx.put_blob(
            &refs.image.path,
            &blob.sha256,
            blob.size,
            Visibility::Public,
        );
        let sha512 = crate::digest::sha512_file(&ctx.store().path_of(&blob.sha256))?;
        ctx.put_bytes(&refs.sha512.path, sha512.as_bytes(), Visibility::Internal)?;
        let index = format!("{}  {}\n", blob.sha256, self.file_name);
        ctx.put_bytes(
            &crate::layout::sysext_file(&self.name, crate::layout::SYSEXT_LISTING),
            index.as_bytes(),
            Visibility::Public,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_digest_of_one_file() {
        let a = "a".repeat(64);
        let b = "B".repeat(64);
        let text = format!("{a}  k-v1-arm64.raw\n{b} *k-v1-x86-64.raw\n");
        assert_eq!(
            lookup_sum(&text, "k-v1-x86-64.raw").unwrap(),
            Some("b".repeat(64))
        );
        assert_eq!(lookup_sum(&text, "k-v1-arm64.raw").unwrap(), Some(a));
        assert_eq!(lookup_sum(&text, "k-v1.raw").unwrap(), None);
    }

    #[test]
    fn two_different_digests_for_one_file_are_ambiguous() {
        let (a, b) = ("a".repeat(64), "b".repeat(64));
        let text = format!("{a}  k.raw\n{b}  k.raw\n");
        let err = lookup_sum(&text, "k.raw").unwrap_err().to_string();
        assert!(err.contains("ambiguous"), "{err}");
        assert!(err.contains(&a) && err.contains(&b), "{err}");
        let same = format!("{a}  k.raw\n{}  k.raw\n", a.to_uppercase());
        assert_eq!(lookup_sum(&same, "k.raw").unwrap(), Some(a));
    }
}
