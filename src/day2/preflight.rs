//! What `install-argo` checks before it touches the cluster: that site.toml
//! names a real repository and that payload/'s Applications follow it. Each
//! problem is bad input (exit 2) found before any helm or kubectl call, since
//! a half-done bootstrap (Argo CD installed, root app pointing at the wrong
//! repository) is worse than none.
use anyhow::Result;

use super::{handoff, payload, sync};
use crate::error::BadInput;
use crate::site::Site;

/// Runs every check; warnings (Cilium chart version) are printed, problems returned.
pub fn check(site: &Site) -> Result<()> {
    sync::require_real_repo(site)?;
    let changes = sync::check(site)?;
    if !changes.is_empty() {
        return Err(BadInput::new(refusal(site, &changes)));
    }
    for warning in payload::check(site) {
        crate::warn!("{warning}");
    }
    Ok(())
}

fn refusal(site: &Site, changes: &[sync::Change]) -> String {
    let argocd = &site.file.argocd;
    let px = handoff::pxebuild_cmd(site);
    let mut text = format!(
        "payload/ does not follow {} [argocd]: Argo CD reads these Applications from git as \
         written, so they would follow another repository or revision:",
        site.path.display()
    );
    for change in changes {
        text.push_str("\n  ");
        text.push_str(&change.mismatch());
    }
    text.push_str(&format!(
        "\nrun `{px} install-argo --sync-payload` to rewrite them, commit and push payload/ to {} \
         ({}), then run `{px} install-argo` again",
        argocd.repo_url, argocd.revision
    ));
    text
}
