//! Container images in dist/ (`[images] mode = "serve"`): an OCI
//! distribution client ([`client`], with the anonymous bearer-token flow of
//! [`token`]), the manifests it reads ([`manifest`]), tag → digest
//! resolution online and offline ([`resolve`]), and the build step that
//! carries one repository's images into the contract layout ([`step`]). See
//! docs/artifacts.md, "Images in dist/".
pub(crate) mod client;
pub(crate) mod manifest;
pub(crate) mod resolve;
pub(crate) mod step;
pub(crate) mod token;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};

use crate::engine::step::Step;
use crate::engine::store::Store;
use crate::manifest::ImageRecord;
use crate::site::schema::ImageMode;
use crate::site::Site;
use step::ImageStep;

/// The image steps of a build and what the images resolved to.
#[derive(Default)]
pub(crate) struct ImagePlan {
    pub steps: Vec<Arc<ImageStep>>,
}

impl ImagePlan {
    /// The steps, for the engine.
    pub(crate) fn boxed(&self) -> Vec<Box<dyn Step>> {
        self.steps
            .iter()
            .map(|s| Box::new(Shared(s.clone())) as Box<dyn Step>)
            .collect()
    }

    /// The records for dist/manifest.json, sorted by reference.
    pub(crate) fn records(&self) -> Vec<ImageRecord> {
        let mut records: Vec<ImageRecord> = self
            .steps
            .iter()
            .flat_map(|s| s.images.iter().map(|r| r.record.clone()))
            .collect();
        records.sort_by(|a, b| a.reference.cmp(&b.reference));
        records
    }
}

/// Resolves the site's images and plans one step per repository; nothing unless
/// `[images] mode = "serve"`. `previous` is the tree whose manifest.json
/// `--offline` reads the resolved digests from.
pub(crate) fn plan(site: &Site, previous: Option<&Path>, offline: bool) -> Result<ImagePlan> {
    if site.file.images.mode != ImageMode::Serve {
        return Ok(ImagePlan::default());
    }
    let images = crate::site::images::site_images(site)?;
    if images.is_empty() {
        return Ok(ImagePlan::default());
    }
    let cache = site.cache_dir();
    let store = Store::open(&cache.join("store"))?;
    let locks = cache.join("downloads");
    crate::fsutil::create_cache_dir(&locks)?;
    let client = crate::fetch::http::Client::new(crate::fetch::http::Policy::from_env()?);
    let mirror = site.file.images.registry_mirror.as_deref();
    let with_registries = images
        .into_iter()
        .map(|image| {
            let registry = Arc::new(client::Registry::new(client.clone(), &image, mirror));
            (image, registry)
        })
        .collect();
    let arch = manifest::oci_arch(&site.file.flatcar.arch);
    let resolved = resolve::resolve_all(with_registries, &store, arch, previous, offline)?;
    let mut by_name: BTreeMap<String, Vec<resolve::Resolved>> = BTreeMap::new();
    for r in resolved {
        by_name.entry(r.record.name.clone()).or_default().push(r);
    }
    Ok(ImagePlan {
        steps: by_name
            .into_iter()
            .map(|(name, images)| {
                Arc::new(ImageStep {
                    name,
                    images,
                    store: store.clone(),
                    locks: locks.clone(),
                    offline,
                })
            })
            .collect(),
    })
}

/// Writes the planned images (run already: their files are in the store)
/// into `dir` as a static registry tree, `dir/v2/<name>/manifests/<ref>`
/// and `dir/v2/<name>/blobs/<digest>`; returns how many files it placed.
pub(crate) fn write_mirror(plan: &ImagePlan, dir: &Path) -> Result<usize> {
    let mut placed = 0;
    for step in &plan.steps {
        let name = &step.name;
        for file in &step.carried()? {
            let hex = manifest::hex_of(file.digest())?;
            let dest = dir.join(file.mirror_path(name));
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent)
                    .with_context(|| format!("creating {}", parent.display()))?;
            }
            if dest.exists() {
                std::fs::remove_file(&dest)
                    .with_context(|| format!("replacing {}", dest.display()))?;
            }
            crate::fsutil::hardlink_or_copy(&step.store.path_of(hex), &dest)?;
            placed += 1;
        }
    }
    Ok(placed)
}

/// An image step shared between the plan (for its record and the mirror)
/// and the engine.
struct Shared(Arc<ImageStep>);

impl Step for Shared {
    fn id(&self) -> String {
        self.0.id()
    }
    fn key<'a>(
        &'a self,
        inputs: &'a crate::engine::step::Inputs<'_>,
    ) -> Result<crate::engine::key::Key<'a>> {
        self.0.key(inputs)
    }
    fn keyed_by_binary(&self) -> bool {
        self.0.keyed_by_binary()
    }
    fn run(&self, ctx: &mut crate::engine::step::RunCtx) -> Result<()> {
        self.0.run(ctx)
    }
}
