//! Flatcar release files, each checked against its detached OpenPGP
//! signature. The PXE kernel's own `.sig` is sometimes missing upstream (the
//! file became a symlink to the image kernel), so its step falls back to
//! `flatcar_production_image.vmlinuz.sig`, which signs the same bytes.
use std::sync::Arc;

use anyhow::{bail, Result};
use serde::Serialize;

use super::fetcher::{Blob, Fetcher};
use super::refs::ArtifactRef;
use super::sources::flatcar_url;
use crate::engine::key::Key;
use crate::engine::step::{Inputs, RunCtx, Step, Visibility};
use crate::site::Site;

pub(crate) const INSTALL_IMAGE: &str = "flatcar_production_image.bin.bz2";
pub(crate) const IMAGE_KERNEL: &str = "flatcar_production_image.vmlinuz";

/// One signed release file.
pub(crate) struct FlatcarFile {
    pub fetcher: Arc<Fetcher>,
    pub file: &'static str,
    /// Canonical URL of the file.
    pub url: String,
    /// Candidate signature URLs, tried in order.
    pub sig_urls: Vec<String>,
    /// dist path of the file.
    pub dist: String,
    /// Also publish the signature next to the file (flatcar-install reads it).
    pub publish_sig: bool,
}

impl FlatcarFile {
    /// The step for `file` of the site's pinned release.
    pub(crate) fn new(fetcher: &Arc<Fetcher>, site: &Site, file: &'static str) -> FlatcarFile {
        let fc = &site.file.flatcar;
        let url_of = |f: &str| flatcar_url(&fc.channel, &fc.arch, &fc.version, f);
        let mut sig_urls = vec![url_of(&format!("{file}.sig"))];
        if file == crate::layout::PXE_KERNEL {
            sig_urls.push(url_of(&format!("{IMAGE_KERNEL}.sig")));
        }
        FlatcarFile {
            fetcher: fetcher.clone(),
            file,
            url: url_of(file),
            sig_urls,
            dist: crate::layout::flatcar_file(&fc.version, file),
            publish_sig: file == INSTALL_IMAGE,
        }
    }

    pub(crate) fn artifact(&self) -> ArtifactRef {
        ArtifactRef {
            step: self.id(),
            path: self.dist.clone(),
        }
    }

    pub(crate) fn sig_artifact(&self) -> Option<ArtifactRef> {
        self.publish_sig.then(|| ArtifactRef {
            step: self.id(),
            path: format!("{}.sig", self.dist),
        })
    }

    /// The first signature that exists, with the URL it came from.
    fn signature(&self) -> Result<(Vec<u8>, &str)> {
        for url in &self.sig_urls {
            let name = format!("{}.sig", self.file);
            if let Some(bytes) = self.fetcher.fetch_small(&name, url)? {
                if url != &self.sig_urls[0] {
                    crate::info!(
                        "{} has no .sig upstream; using {url} (it signs the same kernel)",
                        self.file
                    );
                }
                return Ok((bytes, url));
            }
        }
        bail!(
            "no signature for {} (tried {}); refusing to use an unsigned file",
            self.file,
            self.sig_urls.join(", ")
        )
    }
}

/// The key of a Flatcar download: what is fetched and what verifies it.
#[derive(Serialize)]
struct FlatcarKey<'a> {
    url: &'a str,
    sig_urls: &'a [String],
    /// Digest of the OpenPGP key the signature is checked with.
    signing_key: &'a str,
    publish_sig: bool,
}

impl Step for FlatcarFile {
    fn id(&self) -> String {
        format!("fetch:flatcar/{}", self.file)
    }

    fn key<'a>(&'a self, _: &'a Inputs<'_>) -> Result<Key<'a>> {
        Ok(Key::new(FlatcarKey {
            url: &self.url,
            sig_urls: &self.sig_urls,
            signing_key: &self.fetcher.sources.key_digest,
            publish_sig: self.publish_sig,
        }))
    }

    /// The verified bytes of a pinned download: nothing pxebuild's code makes.
    fn keyed_by_binary(&self) -> bool {
        false
    }

    /// The signature it verified against (whichever of `sig_urls` existed).
    fn stored_inputs_intact(&self) -> Result<bool> {
        let mut found = false;
        for url in &self.sig_urls {
            match self.fetcher.verify_stored(url)? {
                Some(true) => found = true,
                Some(false) => return Ok(false),
                None => {}
            }
        }
        Ok(found)
    }

    fn run(&self, ctx: &mut RunCtx) -> Result<()> {
        let (sig, sig_url) = self.signature()?;
        let sources = &self.fetcher.sources;
        let check = |path: &std::path::Path, _: &Blob| {
            sources.key.verify_file(&sig, path).map_err(|e| {
                e.context(format!(
                    "the signature {sig_url} does not verify {} ({})",
                    self.url,
                    sources.key_advice()
                ))
            })
        };
        let blob = self.fetcher.fetch(self.file, &self.url, &check)?;
        self.fetcher.remember(sig_url, &sig)?;
        ctx.put_blob(&self.dist, &blob.sha256, blob.size, Visibility::Public);
        if self.publish_sig {
            ctx.put_bytes(&format!("{}.sig", self.dist), &sig, Visibility::Public)?;
        }
        Ok(())
    }
}
