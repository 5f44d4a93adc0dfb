//! How day-2 messages spell the pxebuild command to run next for this site,
//! so a hint can be pasted as is. Shared by the build's handoff, the
//! install-argo checks and the payload sync.
use std::path::Path;

use crate::site::Site;

/// `pxebuild`, plus `--site` when the site is not the default `site.toml`.
pub(crate) fn pxebuild_cmd(site: &Site) -> String {
    if site.path == Path::new("site.toml") {
        "pxebuild".into()
    } else {
        format!("pxebuild --site {}", site.path.display())
    }
}
