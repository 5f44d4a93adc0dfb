//! Turns a validated site into the graph of build steps. Each part of the build
//! (artifacts, secrets-backed rendering, Butane, boot configs) appends its steps.
use anyhow::Result;

use super::step::Step;
use crate::site::Site;

/// What planning needs besides the site.
pub struct PlanEnv<'a> {
    pub site: &'a Site,
    /// Build from the store alone; fetch steps fail naming what is missing.
    pub offline: bool,
    /// Warnings (template, Butane) fail the build.
    pub strict: bool,
}

/// Every step of a build of `env.site`.
pub fn plan(env: &PlanEnv) -> Result<Vec<Box<dyn Step>>> {
    let _ = env;
    let steps: Vec<Box<dyn Step>> = Vec::new();
    Ok(steps)
}
