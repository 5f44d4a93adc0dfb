//! External artifacts: Flatcar images, bootloaders, system extensions. (Being
//! built; `plan_artifacts` will return the fetch steps.)
pub mod refs;

use anyhow::Result;

use crate::build::step::Step;
use crate::build::PlanEnv;
pub use refs::ArtifactRefs;

/// The fetch steps of a build and where their outputs land.
pub fn plan_artifacts(env: &PlanEnv) -> Result<(Vec<Box<dyn Step>>, ArtifactRefs)> {
    Ok((
        Vec::new(),
        ArtifactRefs::empty(&env.site.file.flatcar.version),
    ))
}
