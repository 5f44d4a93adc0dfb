//! Tag → digest: a build asks the registry for each image's manifest (tags
//! move), keeps its bytes in the store, and, for a multi-arch index, finds
//! the site architecture's manifest in it. `--offline` never asks: the
//! digest is the reference's own or what the previous tree's manifest.json
//! recorded (as Flatcar `current` is), and the manifest comes from the store.
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, Context, Result};
use rayon::prelude::*;

use super::client::Registry;
use super::manifest::{self, hex_of, Parsed};
use crate::engine::store::Store;
use crate::error::BadInput;
use crate::images::ImageRef;
use crate::manifest::{ImageRecord, Manifest};

/// An image with what its reference resolved to.
pub(crate) struct Resolved {
    pub image: ImageRef,
    pub record: ImageRecord,
    pub registry: Arc<Registry>,
}

impl Resolved {
    /// What errors about this image start with: the image and its registry.
    pub(crate) fn about(&self) -> String {
        about(&self.image, &self.registry)
    }
}

fn about(image: &ImageRef, registry: &Registry) -> String {
    format!("image {image} from {}", registry.shown)
}

/// What to do when the cache lacks an image offline.
pub(crate) const OFFLINE_ADVICE: &str =
    "build once without --offline, or run `pxebuild mirror DIR` \
     on a connected host and set [images] registry_mirror to DIR served over HTTP";

/// Resolves every image (in parallel: each is a round trip or two); all
/// that fail are reported together.
pub(crate) fn resolve_all(
    images: Vec<(ImageRef, Arc<Registry>)>,
    store: &Store,
    arch: &str,
    previous: Option<&Path>,
    offline: bool,
) -> Result<Vec<Resolved>> {
    let recorded = if offline {
        previous_records(previous)?
    } else {
        Vec::new()
    };
    let results: Vec<Result<Resolved>> = images
        .into_par_iter()
        .map(|(image, registry)| {
            let record = if offline {
                offline_record(&image, &recorded, store, arch)
            } else {
                online_record(&image, &registry, store, arch)
            }
            .with_context(|| about(&image, &registry))?;
            Ok(Resolved {
                image,
                record,
                registry,
            })
        })
        .collect();
    let mut resolved = Vec::new();
    let mut errors = Vec::new();
    for result in results {
        match result {
            Ok(r) => resolved.push(r),
            Err(e) => errors.push(e),
        }
    }
    if errors.len() <= 1 {
        return match errors.pop() {
            Some(e) => Err(e),
            None => Ok(resolved),
        };
    }
    // Every image that failed, in order; bad input only if each was.
    let site_at_fault = errors
        .iter()
        .all(|e| crate::error::exit_code(e) == crate::error::EXIT_BAD_INPUT);
    let text: Vec<String> = errors.iter().map(|e| format!("{e:#}")).collect();
    let message = format!("{} images failed: {}", errors.len(), text.join("; "));
    Err(if site_at_fault {
        BadInput::new(message)
    } else {
        anyhow!(message)
    })
}

fn online_record(
    image: &ImageRef,
    registry: &Registry,
    store: &Store,
    arch: &str,
) -> Result<ImageRecord> {
    let fetched = registry.manifest(image.reference())?;
    store.put_bytes(&fetched.bytes)?;
    let platform_digest = platform_of(&fetched.bytes, fetched.media_type, arch)?;
    if let Some(pinned) = &image.digest {
        crate::verbose!("{image}: pinned {pinned}");
    } else {
        crate::info!("{image}: {}", fetched.digest);
    }
    Ok(ImageRecord {
        digest: fetched.digest,
        media_type: fetched.media_type.to_string(),
        name: image.dist_name(),
        platform_digest,
        reference: image.to_string(),
    })
}

fn offline_record(
    image: &ImageRef,
    recorded: &[ImageRecord],
    store: &Store,
    arch: &str,
) -> Result<ImageRecord> {
    let reference = image.to_string();
    let previous = recorded.iter().find(|r| r.reference == reference);
    let digest = match (&image.digest, previous) {
        (Some(digest), _) => digest.clone(),
        (None, Some(record)) => record.digest.clone(),
        (None, None) => {
            return Err(anyhow!(
                "offline: no previous build of this output recorded what {reference} resolves \
                 to; {OFFLINE_ADVICE}"
            ))
        }
    };
    let bytes = stored(store, &digest)?.ok_or_else(|| {
        anyhow!("offline: its manifest {digest} is not in the cache; {OFFLINE_ADVICE}")
    })?;
    let media_type = manifest::media_type(&bytes, previous.map(|r| r.media_type.as_str()))?;
    let platform_digest = platform_of(&bytes, media_type, arch)?;
    Ok(ImageRecord {
        digest,
        media_type: media_type.to_string(),
        name: image.dist_name(),
        platform_digest,
        reference,
    })
}

/// The bytes of the stored blob `digest`, re-hashed; `None` when absent
/// (or corrupt: the store drops it).
pub(crate) fn stored(store: &Store, digest: &str) -> Result<Option<Vec<u8>>> {
    let hex = hex_of(digest)?;
    if !store.verify(hex)? {
        return Ok(None);
    }
    store.read(hex).map(Some)
}

/// For an index: the digest of the site architecture's manifest in it; an
/// index without one is the site's to fix (exit 2).
fn platform_of(bytes: &[u8], media_type: &str, arch: &str) -> Result<Option<String>> {
    let Parsed::Index(manifests) = manifest::parse(bytes, media_type)? else {
        return Ok(None);
    };
    match manifest::platform_manifest(&manifests, arch) {
        Some(m) => Ok(Some(m.digest.clone())),
        None => Err(BadInput::new(format!(
            "the index has no linux/{arch} manifest (it has {}); the site's flatcar.arch \
             needs one, or remove the image",
            manifest::platforms(&manifests)
        ))),
    }
}

/// The image records of the tree at `previous`, if it has a manifest.
fn previous_records(previous: Option<&Path>) -> Result<Vec<ImageRecord>> {
    Ok(previous
        .filter(|dist| dist.join(crate::manifest::FILE_NAME).is_file())
        .map(Manifest::load)
        .transpose()?
        .map(|m| m.images)
        .unwrap_or_default())
}
