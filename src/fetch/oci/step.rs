//! The build step that carries one repository's resolved images into dist/:
//! for each image the manifest (under its tag and its digest), for an index
//! the site architecture's manifest (under its digest), and the config and
//! layers of the image manifest, each verified. One step per repository,
//! not per tag: two tags of one repository share blobs (often every one),
//! and a dist/ path has one producer. Keyed on the references and what they
//! resolved to, so a rebuild with the same tags and digests is a cache hit.
use std::path::PathBuf;

use anyhow::{anyhow, Context, Result};
use rayon::prelude::*;
use serde::Serialize;

use super::manifest::{self, hex_of, Parsed};
use super::resolve::{stored, Resolved, OFFLINE_ADVICE};
use crate::engine::key::Key;
use crate::engine::step::{Inputs, RunCtx, Step, Visibility};
use crate::engine::store::Store;

/// One file an image carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Carried {
    /// A manifest under `reference` (a tag or a digest), of kind `kind`.
    Manifest {
        reference: String,
        kind: &'static str,
        digest: String,
    },
    /// A config or layer blob.
    Blob { digest: String, size: u64 },
}

impl Carried {
    /// Its dist/ path.
    pub(crate) fn dist_path(&self, name: &str) -> String {
        match self {
            Carried::Manifest {
                reference, kind, ..
            } => crate::layout::oci_manifest(name, reference, kind),
            Carried::Blob { digest, .. } => crate::layout::oci_blob(name, digest),
        }
    }

    /// Its path in a static registry tree (`pxebuild mirror`): the request
    /// path itself, so any web server answers it.
    pub(crate) fn mirror_path(&self, name: &str) -> String {
        match self {
            Carried::Manifest { reference, .. } => {
                format!("{}/{name}/manifests/{reference}", crate::layout::OCI_V2)
            }
            Carried::Blob { digest, .. } => {
                format!("{}/{name}/blobs/{digest}", crate::layout::OCI_V2)
            }
        }
    }

    pub(crate) fn digest(&self) -> &str {
        match self {
            Carried::Manifest { digest, .. } | Carried::Blob { digest, .. } => digest,
        }
    }
}

pub(crate) struct ImageStep {
    /// The repository's name in dist/.
    pub name: String,
    /// Its images (one per reference), sorted.
    pub images: Vec<Resolved>,
    pub store: Store,
    /// Where the download locks live (shared with the other fetch steps).
    pub locks: PathBuf,
    pub offline: bool,
}

#[derive(Serialize)]
struct RepositoryKey<'a> {
    name: &'a str,
    images: Vec<ImageKey<'a>>,
}

#[derive(Serialize)]
struct ImageKey<'a> {
    reference: &'a str,
    digest: &'a str,
    media_type: &'a str,
    platform_digest: Option<&'a str>,
}

impl ImageStep {
    /// Every file the repository's images carry (each path once), fetched
    /// into the store (and verified) when not there yet.
    pub(crate) fn carried(&self) -> Result<Vec<Carried>> {
        let mut all: Vec<Carried> = Vec::new();
        for image in &self.images {
            for file in self.carried_by(image).with_context(|| image.about())? {
                if !all.contains(&file) {
                    all.push(file);
                }
            }
        }
        Ok(all)
    }

    /// The files one image carries.
    fn carried_by(&self, r: &Resolved) -> Result<Vec<Carried>> {
        let record = &r.record;
        let mut out = Vec::new();
        let top = self.manifest(r, &record.digest, Some(&record.media_type))?;
        let kind = kind_of(top.1)?;
        if let Some(tag) = &r.image.tag {
            out.push(Carried::Manifest {
                reference: tag.clone(),
                kind,
                digest: record.digest.clone(),
            });
        }
        out.push(Carried::Manifest {
            reference: record.digest.clone(),
            kind,
            digest: record.digest.clone(),
        });
        let (image_bytes, image_type) = match &record.platform_digest {
            None => top,
            Some(platform) => {
                let Parsed::Index(list) = manifest::parse(&top.0, top.1)? else {
                    return Err(anyhow!("{} is not an index", record.digest));
                };
                let served = list
                    .iter()
                    .find(|m| &m.digest == platform)
                    .and_then(|m| m.media_type.clone());
                let got = self.manifest(r, platform, served.as_deref())?;
                out.push(Carried::Manifest {
                    reference: platform.clone(),
                    kind: kind_of(got.1)?,
                    digest: platform.clone(),
                });
                got
            }
        };
        let Parsed::Image { config, layers } = manifest::parse(&image_bytes, image_type)? else {
            return Err(anyhow!(
                "the platform manifest is an index, not an image manifest"
            ));
        };
        let blobs: Vec<&manifest::Descriptor> = std::iter::once(&config).chain(&layers).collect();
        // Layers download side by side, as container runtimes pull them.
        blobs
            .par_iter()
            .try_for_each(|blob| self.blob(r, &blob.digest, blob.size))?;
        for blob in blobs {
            out.push(Carried::Blob {
                digest: blob.digest.clone(),
                size: blob.size,
            });
        }
        Ok(out)
    }

    /// The manifest `digest` from the store, else from the registry (stored).
    fn manifest(
        &self,
        r: &Resolved,
        digest: &str,
        served: Option<&str>,
    ) -> Result<(Vec<u8>, &'static str)> {
        let bytes = match stored(&self.store, digest)? {
            Some(bytes) => bytes,
            None if self.offline => {
                return Err(anyhow!(
                    "offline: manifest {digest} is not in the cache; {OFFLINE_ADVICE}"
                ))
            }
            None => {
                let fetched = r.registry.manifest(digest)?;
                self.store.put_bytes(&fetched.bytes)?;
                fetched.bytes
            }
        };
        let media_type = manifest::media_type(&bytes, served)?;
        Ok((bytes, media_type))
    }

    fn blob(&self, r: &Resolved, digest: &str, size: u64) -> Result<()> {
        let hex = hex_of(digest)?;
        if self.store.has(hex, size) {
            return Ok(());
        }
        if self.offline {
            return Err(anyhow!(
                "offline: blob {digest} is not in the cache; {OFFLINE_ADVICE}"
            ));
        }
        r.registry.blob(&self.store, &self.locks, digest, size)
    }
}

fn kind_of(media_type: &str) -> Result<&'static str> {
    crate::layout::oci_manifest_kind(media_type)
        .ok_or_else(|| anyhow!("media type {media_type:?} is not a manifest kind"))
}

impl Step for ImageStep {
    fn id(&self) -> String {
        format!("fetch:image/{}", self.name)
    }

    fn key<'a>(&'a self, _: &'a Inputs<'_>) -> Result<Key<'a>> {
        Ok(Key::new(RepositoryKey {
            name: &self.name,
            images: self
                .images
                .iter()
                .map(|r| ImageKey {
                    reference: &r.record.reference,
                    digest: &r.record.digest,
                    media_type: &r.record.media_type,
                    platform_digest: r.record.platform_digest.as_deref(),
                })
                .collect(),
        }))
    }

    /// The verified bytes of a digest: nothing pxebuild's code makes.
    fn keyed_by_binary(&self) -> bool {
        false
    }

    fn run(&self, ctx: &mut RunCtx) -> Result<()> {
        let name = &self.name;
        for file in &self.carried()? {
            let hex = hex_of(file.digest())?;
            let size = match file {
                Carried::Blob { size, .. } => *size,
                Carried::Manifest { .. } => std::fs::metadata(self.store.path_of(hex))
                    .with_context(|| format!("reading manifest {} in the store", file.digest()))?
                    .len(),
            };
            ctx.put_blob(&file.dist_path(name), hex, size, Visibility::Public);
        }
        Ok(())
    }
}
