//! `pxebuild install-argo`: installs or upgrades Argo CD with Helm (chart
//! version from site.toml, values from `payload/bootstrap/argocd-values.yaml`),
//! then applies the root app-of-apps Application, rendered from
//! `payload/bootstrap/root-app.yaml` with the site's repository and revision.
//! From then on Argo CD manages `payload/core` and `payload/apps` from git.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_norway::Value;

use super::helm::{self, Release};
use super::kubectl;
use super::tool::Tool;
use super::Cluster;
use crate::error::BadInput;
use crate::images::catalog::argocd;
use crate::site::images::ARGOCD_VALUES;
use crate::site::Site;

/// The root Application, relative to payload/.
pub(crate) const ROOT_APP: &str = "bootstrap/root-app.yaml";

/// How install-argo runs.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// Chart repository (a mirror for air-gapped sites).
    pub chart_repo: String,
    /// Helm's `--wait` timeout, e.g. "10m".
    pub timeout: String,
    /// Print the commands and the root Application instead of running them.
    pub dry_run: bool,
    /// Go on when the running Cilium differs from payload/'s values.
    pub accept_cilium_drift: bool,
    /// Go on when a newer Argo CD chart is installed.
    pub allow_downgrade: bool,
}

/// Everything install-argo will do, computed before touching the cluster.
#[derive(Debug)]
pub(crate) struct Plan {
    pub helm_args: Vec<String>,
    pub apply_args: Vec<String>,
    pub root_app: String,
}

/// Where Argo CD's chart comes from without `--chart-repo`: the boot
/// server's chart repository when the build carries the chart there
/// (`[images] mode = "serve"`), else Argo CD's own.
pub(crate) fn default_chart_repo(site: &Site) -> String {
    crate::fetch::charts::served_repository(site).unwrap_or_else(|| argocd::HELM_REPO.to_string())
}

/// Builds the plan; bad input (exit 2) when payload/bootstrap is incomplete.
pub(crate) fn plan(site: &Site, kubeconfig: &Path, opts: &Options) -> Result<Plan> {
    let values = existing(site.payload_dir().join(ARGOCD_VALUES))?;
    let release = Release {
        name: helm::ARGO_RELEASE,
        namespace: helm::ARGO_NAMESPACE,
        chart: argocd::CHART,
        repo: &opts.chart_repo,
        version: &site.file.argocd.chart_version,
        values: &values,
        timeout: &opts.timeout,
    };
    let root_path = existing(site.payload_dir().join(ROOT_APP))?;
    let text = std::fs::read_to_string(&root_path)
        .with_context(|| format!("reading {}", root_path.display()))?;
    let root_app = render_root_app(
        &text,
        &site.file.argocd.repo_url,
        &site.file.argocd.revision,
    )
    .map_err(|e| BadInput::new(format!("{}: {e:#}", root_path.display())))?;
    Ok(Plan {
        helm_args: helm::upgrade_install(kubeconfig, &release),
        apply_args: kubectl::apply_stdin(kubeconfig),
        root_app,
    })
}

fn existing(path: PathBuf) -> Result<PathBuf> {
    let path = super::tidy(path);
    if path.is_file() {
        Ok(path)
    } else {
        Err(BadInput::new(format!(
            "{} is missing: install-argo needs payload/bootstrap/ beside site.toml \
             (see docs/operations.md); Argo CD reads payload/ from the site's git \
             repository, so the copy built into pxebuild cannot stand in for it: \
             `pxebuild init DIR` writes one to commit",
            path.display()
        )))
    }
}

/// The root Application with `spec.source.repoURL`/`targetRevision` set to the
/// site's; everything else as written.
pub(crate) fn render_root_app(text: &str, repo_url: &str, revision: &str) -> Result<String> {
    let mut app: Value = serde_norway::from_str(text).context("parsing the root Application")?;
    if app.get("kind").and_then(Value::as_str) != Some("Application") {
        anyhow::bail!("the root Application must have kind: Application");
    }
    let source = app
        .get_mut("spec")
        .and_then(|s| s.get_mut("source"))
        .and_then(Value::as_mapping_mut)
        .context("the root Application needs spec.source (a single git source)")?;
    source.insert("repoURL".into(), repo_url.into());
    source.insert("targetRevision".into(), revision.into());
    serde_norway::to_string(&app).context("writing the root Application")
}

/// Runs (or with `dry_run` prints) the plan.
pub(crate) fn install(cluster: &Cluster, site: &Site, opts: &Options) -> Result<()> {
    let plan = plan(site, &cluster.kubeconfig, opts)?;
    super::preflight::check(site)?;
    if opts.dry_run {
        println!("helm {}", plan.helm_args.join(" "));
        println!(
            "kubectl {} <<EOF\n{}EOF",
            plan.apply_args.join(" "),
            plan.root_app
        );
        return Ok(());
    }
    super::tool::require(&[Tool::Kubectl, Tool::Helm])?;
    match super::drift::differences(cluster, &site.payload_dir()) {
        Ok(drift) if drift.is_empty() => {}
        // The root Application syncs with prune and self-heal at once: every
        // difference reaches every agent together. Stop while it can be fixed.
        Ok(drift) if !opts.accept_cilium_drift => {
            return Err(BadInput::new(format!(
                "the running Cilium differs from payload/{}, and the root Application would \
                 change it on every node at once:\n  {}\nPut the running values into the \
                 file (commit and push it), or rerun with --accept-cilium-drift if these \
                 changes are meant",
                crate::site::images::CILIUM_VALUES,
                drift.join("\n  ")
            )));
        }
        Ok(drift) => {
            for line in drift {
                crate::warn!("{line} (accepted)");
            }
        }
        Err(e) => crate::warn!(
            "could not compare the running Cilium with payload/{}: {e:#}",
            crate::site::images::CILIUM_VALUES
        ),
    }
    let listed = cluster.helm(
        &helm::list(
            &cluster.kubeconfig,
            helm::ARGO_RELEASE,
            helm::ARGO_NAMESPACE,
        ),
        None,
    );
    // Not being able to look is no reason to stop: the upgrade itself then
    // says what is wrong (with the API, with helm).
    match listed.and_then(|out| super::installed::parse(&out)) {
        Ok(listed) => {
            let release = listed.iter().find(|r| r.name == helm::ARGO_RELEASE);
            let wanted = &site.file.argocd.chart_version;
            if let Some(note) =
                super::installed::judge(release, argocd::CHART, wanted, opts.allow_downgrade)?
            {
                crate::warn!("{note}");
            }
        }
        Err(e) => crate::warn!("could not look for an installed Argo CD: {e:#}"),
    }
    crate::info!(
        "installing Argo CD (chart {} {}) into namespace {}",
        argocd::CHART,
        site.file.argocd.chart_version,
        helm::ARGO_NAMESPACE
    );
    super::doing(cluster.helm(&plan.helm_args, None), || {
        "installing Argo CD with helm".into()
    })?;
    let applied = cluster.kubectl(&plan.apply_args, Some(&plan.root_app));
    super::doing(applied, || "applying the root Application".into())?;
    println!(
        "Argo CD installed; root Application follows {} at {}",
        site.file.argocd.repo_url, site.file.argocd.revision
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROOT: &str = include_str!("../../payload/bootstrap/root-app.yaml");

    #[test]
    fn root_app_gets_the_sites_repo_and_revision() {
        let out = render_root_app(ROOT, "https://git.example.org/x.git", "v2").unwrap();
        let app: Value = serde_norway::from_str(&out).unwrap();
        let src = &app["spec"]["source"];
        assert_eq!(
            src["repoURL"].as_str(),
            Some("https://git.example.org/x.git")
        );
        assert_eq!(src["targetRevision"].as_str(), Some("v2"));
        assert_eq!(src["path"].as_str(), Some("payload/core"));
        assert_eq!(app["metadata"]["name"].as_str(), Some("root"));
    }

    /// A site in `dir` (the example, `images` appended before the nodes) with
    /// the repository's payload/bootstrap.
    fn site_in(dir: &Path, images: &str) -> Site {
        let example = include_str!("../../site.toml");
        let (head, nodes) = example.split_once("[[node]]").unwrap();
        let text = format!("{head}[images]\n{images}\n\n[[node]]{nodes}");
        std::fs::write(dir.join("site.toml"), text).unwrap();
        let boot = dir.join("payload/bootstrap");
        std::fs::create_dir_all(&boot).unwrap();
        for file in [ARGOCD_VALUES, ROOT_APP] {
            let from = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("payload")
                .join(file);
            std::fs::copy(from, dir.join("payload").join(file)).unwrap();
        }
        Site::load(&dir.join("site.toml")).unwrap()
    }

    fn helm_repo_arg(site: &Site) -> String {
        let opts = Options {
            chart_repo: default_chart_repo(site),
            timeout: "10m".into(),
            dry_run: true,
            accept_cilium_drift: false,
            allow_downgrade: false,
        };
        let plan = plan(site, Path::new("kc"), &opts).unwrap();
        let at = plan.helm_args.iter().position(|a| a == "--repo").unwrap();
        plan.helm_args[at + 1].clone()
    }

    #[test]
    fn serve_mode_installs_argo_cd_from_the_boot_servers_chart_repository() {
        let dir = tempfile::tempdir().unwrap();
        let site = site_in(dir.path(), "mode = \"serve\"");
        assert_eq!(helm_repo_arg(&site), "http://10.20.0.2:8080/charts");
        let dir = tempfile::tempdir().unwrap();
        let site = site_in(dir.path(), "mode = \"pull\"");
        assert_eq!(helm_repo_arg(&site), argocd::HELM_REPO);
    }

    #[test]
    fn root_app_must_be_a_single_source_application() {
        let err = render_root_app("kind: ConfigMap\n", "u", "r").unwrap_err();
        assert!(err.to_string().contains("kind: Application"));
        let err = render_root_app("kind: Application\nspec: {}\n", "u", "r").unwrap_err();
        assert!(err.to_string().contains("spec.source"));
    }
}
