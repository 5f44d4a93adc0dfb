//! Turns a validated site into the graph of build steps. Each part of the build
//! appends its steps: artifacts first, then everything rendered from them.
use std::path::Path;

use anyhow::Result;

use super::step::Step;
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
    pub templates: std::sync::Arc<crate::render::templates::Templates>,
}

/// Every step of a build of `env.site`.
pub fn plan(env: &PlanEnv) -> Result<Vec<Box<dyn Step>>> {
    let (mut steps, artifacts) = crate::fetch::plan_artifacts(env)?;
    steps.extend(crate::render::plan_render(env, &artifacts)?);
    Ok(steps)
}
