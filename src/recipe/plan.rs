//! Which steps a build of a site has: the fetch steps, then (once the
//! site's secrets are ensured) the render steps and the boot steps, which
//! read the fetched artifacts.
use std::path::Path;
use std::sync::Arc;

use anyhow::Result;

use crate::boot::{BootContext, BootShared};
use crate::engine::step::Step;
use crate::manifest::ImageRecord;
use crate::render::context::SiteContext;
use crate::render::templates::Templates;
use crate::render::RenderInputs;
use crate::secrets::{self, Secrets};
use crate::site::Site;

/// What planning needs besides the site.
pub struct PlanEnv<'a> {
    pub site: &'a Site,
    /// Where dist/ is published (an existing tree with missing secrets is an error).
    pub out: &'a Path,
    /// Build from the store alone; fetch steps fail naming what is missing.
    pub offline: bool,
    /// Warnings (template, Butane) fail the build.
    pub strict: bool,
    /// The site's templates, loaded (and found complete) before anything was created.
    pub templates: Arc<Templates>,
}

/// Every step of a build of `env.site`, in this order: fetch steps (after
/// the preflight found every artifact), the image steps of an air-gapped
/// site (`[images] mode = "serve"`, resolved against the registry or,
/// offline, the previous tree), node steps, signing, boot steps. With the
/// steps come the image records for dist/manifest.json.
pub(crate) fn plan(env: &PlanEnv) -> Result<Planned> {
    let site = env.site;
    let (mut steps, artifacts) = crate::fetch::plan_artifacts(site, env.offline)?;
    let images = crate::fetch::oci::plan(site, Some(env.out), env.offline)?;
    steps.extend(images.boxed());
    let secrets = ensure_secrets(site, env.out)?;
    crate::render::check_token_lifetime(site, env.strict)?;
    let site_ctx = SiteContext::new(site, &artifacts)?;
    let boot = BootContext::new(site, &site_ctx, &secrets, &artifacts)?;
    steps.extend(crate::render::plan_render(RenderInputs {
        site,
        templates: env.templates.clone(),
        secrets: &secrets,
        site_ctx,
        artifacts: &artifacts,
        strict: env.strict,
    })?);
    steps.extend(crate::boot::initrd_parts_step(site, &artifacts));
    steps.extend(BootShared::new(env.templates.clone(), boot)?.steps());
    Ok(Planned {
        steps,
        images: images.records(),
    })
}

/// A build's steps, and the records of the images they carry.
pub(crate) struct Planned {
    pub steps: Vec<Box<dyn Step>>,
    pub images: Vec<ImageRecord>,
}

/// The one phase of planning that writes into the site: loads its secrets,
/// creating on a fresh site what is missing (CAs, keys, tokens; under the
/// secrets lock). Everything planned after it only reads them.
fn ensure_secrets(site: &Site, out: &Path) -> Result<Secrets> {
    let secrets = secrets::ensure(site, Some(out))?;
    if !secrets.created.is_empty() {
        crate::info!("secrets: created {}", secrets.created.join(", "));
    }
    Ok(secrets)
}
