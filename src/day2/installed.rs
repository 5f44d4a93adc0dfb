//! What install-argo finds already installed: the Argo CD release's chart
//! version and state (`helm list`), held against site.toml's
//! `argocd.chart_version` before `helm upgrade --install` runs. helm itself
//! would downgrade a newer Argo CD (and its CRDs) without a word, and an
//! earlier run that was killed leaves the release in a pending state that
//! every later upgrade refuses.
use anyhow::{Context, Result};
use serde::Deserialize;

use crate::error::BadInput;

/// One release of `helm list --output json`.
#[derive(Debug, Deserialize)]
pub(crate) struct Listed {
    pub name: String,
    /// `<chart>-<version>`, e.g. `argo-cd-8.1.2`.
    pub chart: String,
    pub status: String,
}

/// Parses `helm list --output json`.
pub(crate) fn parse(json: &str) -> Result<Vec<Listed>> {
    serde_json::from_str(json).context("reading `helm list` output")
}

/// What to do about the release `installed` (of `chart`) before installing
/// `wanted`: `Ok(Some(note))` to go on with a note, `Ok(None)` to just go
/// on, `Err` (bad input) to stop.
pub(crate) fn judge(
    installed: Option<&Listed>,
    chart: &str,
    wanted: &str,
    allow_downgrade: bool,
) -> Result<Option<String>> {
    let Some(release) = installed else {
        return Ok(None);
    };
    if release.status.starts_with("pending") {
        return Err(BadInput::new(format!(
            "the Argo CD release {} is {} (an earlier helm run was stopped halfway), and helm \
             refuses every upgrade until it is settled: look at `helm history {} --namespace \
             argocd`, then `helm rollback {} --namespace argocd` to its last deployed revision, \
             and run install-argo again",
            release.name, release.status, release.name, release.name
        )));
    }
    let have = release
        .chart
        .strip_prefix(&format!("{chart}-"))
        .unwrap_or(&release.chart);
    let (Some(h), Some(w)) = (numbers(have), numbers(wanted)) else {
        return Ok(None);
    };
    if h > w && !allow_downgrade {
        return Err(BadInput::new(format!(
            "Argo CD's chart {have} is installed, newer than argocd.chart_version {wanted}: \
             helm would downgrade Argo CD and its CRDs. Set chart_version to {have} (or newer) \
             in site.toml, or rerun with --allow-downgrade if that is meant"
        )));
    }
    if h[0] != w[0] {
        return Ok(Some(format!(
            "Argo CD's chart goes from {have} to {wanted}, another major version: read the \
             chart's upgrade notes (https://github.com/argoproj/argo-helm/tree/main/charts/argo-cd#upgrading)"
        )));
    }
    Ok(None)
}

/// `X.Y.Z` as numbers (a pre-release suffix ignored).
fn numbers(version: &str) -> Option<Vec<u64>> {
    let core = version.trim_start_matches('v').split(['-', '+']).next()?;
    core.split('.').map(|p| p.parse().ok()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(chart: &str, status: &str) -> Listed {
        Listed {
            name: "argocd".into(),
            chart: chart.into(),
            status: status.into(),
        }
    }

    #[test]
    fn reads_helm_list_output() {
        let out = r#"[{"name":"argocd","namespace":"argocd","revision":"3","chart":"argo-cd-8.1.2","status":"deployed","app_version":"v3.0.6"}]"#;
        let listed = parse(out).unwrap();
        assert_eq!(listed[0].chart, "argo-cd-8.1.2");
        assert!(parse("[]").unwrap().is_empty());
    }

    #[test]
    fn nothing_installed_or_the_same_or_an_upgrade_goes_on() {
        assert_eq!(judge(None, "argo-cd", "8.1.2", false).unwrap(), None);
        for have in ["argo-cd-8.1.2", "argo-cd-8.0.9"] {
            let r = listed(have, "deployed");
            assert_eq!(judge(Some(&r), "argo-cd", "8.1.2", false).unwrap(), None);
        }
        // A failed release is upgraded over, as helm does.
        let r = listed("argo-cd-8.1.0", "failed");
        assert_eq!(judge(Some(&r), "argo-cd", "8.1.2", false).unwrap(), None);
    }

    #[test]
    fn a_downgrade_stops_unless_allowed() {
        let r = listed("argo-cd-8.2.0", "deployed");
        let err = judge(Some(&r), "argo-cd", "8.1.2", false).unwrap_err();
        assert!(
            format!("{err}").contains("newer than argocd.chart_version 8.1.2"),
            "{err}"
        );
        assert_eq!(crate::error::exit_code(&err), 2);
        assert_eq!(judge(Some(&r), "argo-cd", "8.1.2", true).unwrap(), None);
    }

    #[test]
    fn a_major_upgrade_is_noted_and_a_pending_release_stops() {
        let r = listed("argo-cd-7.8.28", "deployed");
        let note = judge(Some(&r), "argo-cd", "8.1.2", false).unwrap().unwrap();
        assert!(
            note.contains("from 7.8.28 to 8.1.2, another major version"),
            "{note}"
        );
        let r = listed("argo-cd-8.1.2", "pending-upgrade");
        let err = judge(Some(&r), "argo-cd", "8.1.2", false).unwrap_err();
        assert!(format!("{err}").contains("helm rollback argocd"), "{err}");
    }
}
