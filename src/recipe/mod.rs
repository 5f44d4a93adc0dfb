//! The build recipe: what building a site means, on top of the engine
//! (`crate::engine`), which knows nothing of sites. It resolves the site's
//! moving parts (Flatcar `current`), says which steps a site needs
//! ([`plan`]), ensures the site's secrets in a phase of its own, and drives
//! one engine session: check the output → load the templates → lock → pin →
//! plan (fetch, secrets, render, boot) → execute → publish with the site's
//! nodes and Flatcar release in the manifest.
//!
//! `mirror` sits beside it: the same fetch steps, laid out as a mirror.
pub(crate) mod mirror;
pub(crate) mod plan;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;

use crate::engine::executor::ExecOptions;
use crate::engine::out::Guarded;
use crate::engine::Session;
use crate::manifest::NodeEntry;
use crate::render::templates::Templates;
use crate::site::Site;

pub use crate::engine::BuildReport;
pub use plan::PlanEnv;

pub struct BuildOptions {
    pub out: PathBuf,
    pub jobs: usize,
    pub offline: bool,
    pub strict: bool,
    pub verify_cache: bool,
    /// Work out why each step ran.
    pub explain: bool,
}

/// Builds `site` into `opts.out`.
pub fn build(site: &Site, opts: &BuildOptions) -> Result<BuildReport> {
    // Before anything is created or moved: an output that is not pxebuild's
    // to replace, and a site without templates, are refused.
    let mut session = Session::start(&site.cache_dir(), &opts.out, &site_paths(site))?;
    let templates = Arc::new(load_templates(site)?);
    session.lock()?;
    // `current` becomes a pinned release before anything keys on the version.
    let pinned = crate::fetch::current::pin(site, Some(&opts.out), opts.offline)?;
    let site = &*pinned.site;
    let mut cache = session.open_cache()?;
    let env = PlanEnv {
        site,
        out: &opts.out,
        offline: opts.offline,
        strict: opts.strict,
        templates,
    };
    let plan::Planned { steps, images } = plan::plan(&env)?;
    session.mark("plan");
    let exec = ExecOptions {
        jobs: opts.jobs,
        verify_cache: opts.verify_cache,
        explain: opts.explain,
        advice: Some(crate::fetch::failure_advice),
    };
    let outcomes = session.execute(&steps, &mut cache, &exec)?;
    session.publish(outcomes, &cache, opts.verify_cache, |manifest| {
        manifest.nodes = site
            .file
            .nodes
            .iter()
            .map(|n| NodeEntry {
                name: n.name.clone(),
                mac: n.mac.to_string(),
                ip: n.ip.to_string(),
                role: n.role.to_string(),
            })
            .collect();
        manifest.flatcar = Some(pinned.record);
        manifest.images = images;
    })
}

/// The site's templates (its templates/, else the ones built into
/// pxebuild), refused (bad input) unless every one its build renders (node
/// configs and boot files) is there.
pub fn load_templates(site: &Site) -> Result<Templates> {
    let templates = Templates::for_site(&site.templates_dir())?;
    let mut rendered = crate::render::templates_rendered(site);
    rendered.extend(crate::boot::templates_rendered(site));
    templates.require(&rendered)?;
    Ok(templates)
}

/// The site's own directories, which no output may replace: each with what
/// messages call it and whether a path inside it is off limits too
/// (everything but the site's directory, where dist/ itself lives).
pub fn site_paths(site: &Site) -> [Guarded; 5] {
    [
        ("the site's directory", site.dir.clone(), false),
        ("the site's secrets directory", site.secrets_dir(), true),
        ("the site's templates directory", site.templates_dir(), true),
        ("the site's payload directory", site.payload_dir(), true),
        ("the build cache", site.cache_dir(), true),
    ]
}
