//! What `install-argo` checks before it touches the cluster: that site.toml
//! names a real repository, that payload/ parses and lints clean (what Argo CD
//! would fail on), and that payload/'s Applications follow the repository. Each
//! problem is bad input (exit 2) found before any helm or kubectl call, since
//! a half-done bootstrap (Argo CD installed, root app pointing at the wrong
//! repository) is worse than none.
use anyhow::Result;

use super::{cmdline, payload, sync};
use crate::error::BadInput;
use crate::site::Site;

/// Runs every check; warnings (Cilium chart version) are printed, problems returned.
pub(crate) fn check(site: &Site) -> Result<()> {
    sync::require_real_repo(site)?;
    lint(site)?;
    let changes = sync::check(site)?;
    if !changes.is_empty() {
        return Err(BadInput::new(refusal(site, &changes)));
    }
    for warning in payload::check(site) {
        crate::warn!("{warning}");
    }
    Ok(())
}

/// payload::lint on the operator's payload/; a parse error is a problem too.
fn lint(site: &Site) -> Result<()> {
    let docs = payload::load(&site.dir).map_err(|e| BadInput::new(format!("{e:#}")))?;
    let problems = payload::lint(&site.dir, &docs);
    if problems.is_empty() {
        return Ok(());
    }
    let mut text =
        "payload/ has problems Argo CD would fail on (fix them, commit and push):".to_string();
    for problem in problems {
        text.push_str("\n  ");
        text.push_str(&problem);
    }
    Err(BadInput::new(text))
}

fn refusal(site: &Site, changes: &[sync::Change]) -> String {
    let argocd = &site.file.argocd;
    let px = cmdline::pxebuild_cmd(site);
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
