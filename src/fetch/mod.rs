//! External artifacts: Flatcar images (OpenPGP-verified), bootloaders
//! (Debian's packages or the upstream releases, pinned by SHA-256, or a local
//! directory), system extensions (the release's SHA256SUMS), and in
//! `[images] mode = "serve"` Helm charts (their repository's index.yaml).
//! Each artifact is a build step whose key is its canonical URL and trust
//! anchor, so a second build makes no request; downloads land in
//! the content store only once verified. See docs/artifacts.md.
pub mod charts;
pub(crate) mod current;
pub(crate) mod debian;
pub(crate) mod fetcher;
pub(crate) mod flatcar;
pub(crate) mod helm_repo;
pub(crate) mod http;
pub(crate) mod index;
pub(crate) mod loaders;
pub(crate) mod oci;
pub(crate) mod plan;
pub(crate) mod progress;
pub mod refs;
pub mod signature;
pub(crate) mod sources;
pub(crate) mod sysext;

use anyhow::Result;

use crate::engine::step::Step;
use crate::site::Site;
pub use current::resolve_current;
pub use refs::ArtifactRefs;

/// The fetch steps of a build and where their outputs land. Fails before any
/// step runs when an artifact is missing upstream (or, offline, from the store).
pub fn plan_artifacts(site: &Site, offline: bool) -> Result<(Vec<Box<dyn Step>>, ArtifactRefs)> {
    let planned = plan::plan(site, offline)?;
    plan::preflight(&planned)?;
    Ok((planned.steps, planned.refs))
}

/// The advice a failed fetch calls for: a host that could not be reached
/// gets the network advice (once per build, however many steps failed).
pub fn failure_advice(err: &anyhow::Error) -> Option<&'static str> {
    http::unreachable(err).map(|_| http::NETWORK_ADVICE)
}
