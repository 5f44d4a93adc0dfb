//! Per-node rendering (templates → Butane → Ignition, kubeadm, boot configs).
//! (Being built; `plan_render` will return the render steps.)
use anyhow::Result;

use crate::build::step::Step;
use crate::build::PlanEnv;
use crate::fetch::ArtifactRefs;

/// The render steps of a build, reading the fetched artifacts.
pub fn plan_render(env: &PlanEnv, artifacts: &ArtifactRefs) -> Result<Vec<Box<dyn Step>>> {
    let _ = (env, artifacts);
    Ok(Vec::new())
}
