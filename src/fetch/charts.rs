//! Helm charts an air-gapped site (`[images] mode = "serve"`) carries in
//! dist/ as a static Helm repository: Cilium's chart at `[cilium] version`,
//! Argo CD's `argo-cd` at `argocd.chart_version`, and `[images] charts` (the
//! payload's). Each archive comes through the fetcher like every artifact
//! (mirror, store, `--offline`, `pxebuild mirror`): its repository's
//! `index.yaml` names its URL and SHA-256, and the archive must match that
//! digest. A last step writes `http/charts/index.yaml` listing exactly the
//! carried archives, so Cilium's install and `install-argo` need no chart
//! server but the boot server. See docs/artifacts.md#charts.
use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Result};
use serde::Serialize;

use super::fetcher::Wanted;
use super::fetcher::{Blob, DigestMismatch, Fetcher};
use super::helm_repo::{self, Carried, Listed, Lookup};
use crate::engine::key::Key;
use crate::engine::step::{Inputs, RunCtx, Step, Visibility};
use crate::error::BadInput;
use crate::site::schema::ImageMode;
use crate::site::Site;

/// Cilium's Helm repository.
pub(crate) const CILIUM_REPO: &str = "https://helm.cilium.io/";

/// One chart version to carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ChartSpec {
    /// The upstream Helm repository (where `index.yaml` is).
    pub repo: String,
    pub name: String,
    pub version: String,
    /// The site setting that asks for it, for messages.
    #[serde(skip)]
    pub setting: String,
}

impl ChartSpec {
    /// The archive's dist path.
    fn dist_path(&self) -> String {
        crate::layout::chart_archive(&self.name, &self.version)
    }
    fn index_url(&self) -> String {
        helm_repo::index_url(&self.repo)
    }
}

/// The charts `site` carries: none in pull mode; in serve mode Cilium's,
/// Argo CD's and `[images] charts`, sorted by name and version.
pub(crate) fn site_charts(site: &Site) -> Vec<ChartSpec> {
    let f = &site.file;
    if f.images.mode != ImageMode::Serve {
        return Vec::new();
    }
    let mut charts = vec![
        ChartSpec {
            repo: CILIUM_REPO.into(),
            name: "cilium".into(),
            version: f.cilium.version.clone(),
            setting: "[cilium] version".into(),
        },
        ChartSpec {
            repo: crate::images::catalog::argocd::HELM_REPO.into(),
            name: crate::images::catalog::argocd::CHART.into(),
            version: f.argocd.chart_version.clone(),
            setting: "argocd.chart_version".into(),
        },
    ];
    charts.extend(f.images.charts.iter().enumerate().map(|(i, c)| ChartSpec {
        repo: c.repo.clone(),
        name: c.name.clone(),
        version: c.version.clone(),
        setting: format!("images.charts[{i}]"),
    }));
    charts.sort_by(|a, b| (&a.name, &a.version).cmp(&(&b.name, &b.version)));
    charts.dedup_by(|a, b| a.name == b.name && a.version == b.version);
    charts
}

/// The boot server's chart repository (`<http base>/charts`) when the site
/// carries charts (serve mode), else `None`: nodes and `install-argo` then
/// use the upstream repositories.
pub fn served_repository(site: &Site) -> Option<String> {
    (site.file.images.mode == ImageMode::Serve)
        .then(|| format!("{}/{}", site.http_base(), crate::layout::CHARTS))
}

/// The steps that carry `charts` (one per archive, then the index) and the
/// index files preflight checks, one per repository.
pub(crate) fn plan(
    fetcher: &Arc<Fetcher>,
    charts: &[ChartSpec],
) -> (Vec<Box<dyn Step>>, Vec<Wanted>) {
    if charts.is_empty() {
        return (Vec::new(), Vec::new());
    }
    let mut steps: Vec<Box<dyn Step>> = Vec::new();
    let mut wanted: Vec<Wanted> = Vec::new();
    for spec in charts {
        let url = spec.index_url();
        if !wanted.iter().any(|w| w.urls[0] == url) {
            wanted.push(Wanted {
                name: format!("index.yaml of {}", spec.repo),
                urls: vec![url],
            });
        }
        steps.push(Box::new(ChartArchive {
            fetcher: fetcher.clone(),
            spec: spec.clone(),
        }));
    }
    steps.push(Box::new(ChartIndex {
        charts: charts.to_vec(),
    }));
    (steps, wanted)
}

/// The archive URLs the stored indexes give for `charts` (for `pxebuild
/// mirror`, once the steps ran): what the mirror must hold beside the indexes.
pub(crate) fn stored_archives(fetcher: &Fetcher, charts: &[ChartSpec]) -> Vec<Wanted> {
    charts
        .iter()
        .filter_map(|spec| {
            let entry = fetcher.index.lookup(&spec.index_url(), &fetcher.store)?;
            let text = fetcher.store.read(&entry.sha256).ok()?;
            match helm_repo::lookup(&text, &spec.repo, &spec.name, &spec.version) {
                Ok(Lookup::Found(listed)) => Some(Wanted {
                    name: format!("{}-{}.tgz", spec.name, spec.version),
                    urls: vec![listed.url],
                }),
                _ => None,
            }
        })
        .collect()
}

/// Downloads one chart archive, checked against its repository's index.
struct ChartArchive {
    fetcher: Arc<Fetcher>,
    spec: ChartSpec,
}

/// The key of a chart download: the chart version and the repository whose
/// index vouches for it.
#[derive(Serialize)]
struct ChartKey<'a> {
    index_url: String,
    chart: &'a ChartSpec,
}

impl ChartArchive {
    /// The index's entry for the chart, from the store or the repository. A
    /// stored index that does not list the version is older than the
    /// version: it is fetched again. Bad input (exit 2) when the
    /// repository's own index does not list it.
    fn listed(&self) -> Result<Listed> {
        let s = &self.spec;
        let url = s.index_url();
        let found: RefCell<Option<Listed>> = RefCell::new(None);
        let absent: RefCell<Option<String>> = RefCell::new(None);
        let check = |path: &Path, _: &Blob| -> Result<()> {
            let text = std::fs::read(path)?;
            match helm_repo::lookup(&text, &s.repo, &s.name, &s.version)? {
                Lookup::Found(listed) => {
                    *absent.borrow_mut() = None;
                    *found.borrow_mut() = Some(listed);
                    Ok(())
                }
                other => {
                    let why = match other {
                        Lookup::NoVersion(versions) => format!(
                            "it lists {} but not version {} (it has {})",
                            s.name,
                            s.version,
                            some_versions(&versions)
                        ),
                        _ => format!("it lists no chart named {}", s.name),
                    };
                    *absent.borrow_mut() = Some(why.clone());
                    Err(DigestMismatch(why).into())
                }
            }
        };
        let name = format!("index.yaml of {}", s.repo);
        match self.fetcher.fetch(&name, &url, &check) {
            Ok(_) => found
                .into_inner()
                .ok_or_else(|| anyhow!("{url}: no entry for {} {}", s.name, s.version)),
            // Only the repository's own answer is bad input: a stored copy that
            // lacked the version and then a network failure is a network failure.
            Err(e) if !e.chain().any(|c| c.is::<DigestMismatch>()) => Err(e),
            Err(e) => match absent.into_inner() {
                Some(why) if !self.fetcher.offline => Err(BadInput::new(format!(
                    "{}: chart {} {} is not in the Helm repository {}: {why}; check the \
                     version, or the repository's URL",
                    s.setting, s.name, s.version, s.repo
                ))),
                _ => Err(e),
            },
        }
    }
}

/// A few of the versions an index lists (indexes list hundreds).
fn some_versions(versions: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = versions[..versions.len().min(SHOWN)].join(", ");
    if versions.len() > SHOWN {
        text.push_str(&format!(" and {} more", versions.len() - SHOWN));
    }
    if text.is_empty() {
        text.push_str("none");
    }
    text
}

impl Step for ChartArchive {
    fn id(&self) -> String {
        format!("fetch:chart/{}-{}", self.spec.name, self.spec.version)
    }

    fn key<'a>(&'a self, _: &'a Inputs<'_>) -> Result<Key<'a>> {
        Ok(Key::new(ChartKey {
            index_url: self.spec.index_url(),
            chart: &self.spec,
        }))
    }

    /// The verified bytes of an archive its repository's index pins.
    fn keyed_by_binary(&self) -> bool {
        false
    }

    /// The index the archive was checked against.
    fn stored_inputs_intact(&self) -> Result<bool> {
        Ok(self.fetcher.verify_stored(&self.spec.index_url())? == Some(true))
    }

    fn run(&self, ctx: &mut RunCtx) -> Result<()> {
        let s = &self.spec;
        let listed = self.listed()?;
        let expected = listed.digest.clone().ok_or_else(|| {
            anyhow!(
                "chart {} {}: the Helm repository {} lists no digest for it, so it cannot be \
                 verified; carry it from a repository whose index.yaml gives one",
                s.name,
                s.version,
                s.repo
            )
        })?;
        let check = |_: &Path, blob: &Blob| -> Result<()> {
            if blob.sha256 != expected {
                return Err(DigestMismatch(format!(
                    "digest mismatch for chart {} {} of the Helm repository {}: its index.yaml \
                     lists sha256 {expected}, the archive {} is sha256 {}",
                    s.name, s.version, s.repo, listed.url, blob.sha256
                ))
                .into());
            }
            Ok(())
        };
        let file = format!("{}-{}.tgz", s.name, s.version);
        let blob = self.fetcher.fetch(&file, &listed.url, &check)?;
        check_chart_yaml(&self.fetcher.store.path_of(&blob.sha256), s, &listed)?;
        ctx.put_blob(&s.dist_path(), &blob.sha256, blob.size, Visibility::Public);
        Ok(())
    }
}

/// The archive is the chart it was fetched as: its Chart.yaml names the chart
/// and the version the index listed it under.
fn check_chart_yaml(archive: &Path, s: &ChartSpec, listed: &Listed) -> Result<()> {
    let what = || format!("chart {} {} ({})", s.name, s.version, listed.url);
    let chart = helm_repo::chart_yaml(archive).map_err(|e| anyhow!("{}: {e:#}", what()))?;
    let name = helm_repo::chart_field(&chart, "name");
    let version = helm_repo::chart_field(&chart, "version");
    if name.as_deref() != Some(s.name.as_str()) || version.as_deref() != Some(&listed.version) {
        bail!(
            "{}: its Chart.yaml names {} {}, not the chart the index lists",
            what(),
            name.as_deref().unwrap_or("(no name)"),
            version.as_deref().unwrap_or("(no version)")
        );
    }
    Ok(())
}

/// Writes `http/charts/index.yaml` for the carried archives.
struct ChartIndex {
    charts: Vec<ChartSpec>,
}

#[derive(Serialize)]
struct IndexKey<'a> {
    charts: &'a [ChartSpec],
    archives: std::collections::BTreeMap<String, String>,
}

impl Step for ChartIndex {
    fn id(&self) -> String {
        "charts:index".into()
    }

    fn deps(&self) -> Vec<String> {
        self.charts
            .iter()
            .map(|spec| format!("fetch:chart/{}-{}", spec.name, spec.version))
            .collect()
    }

    fn key<'a>(&'a self, inputs: &'a Inputs<'_>) -> Result<Key<'a>> {
        Ok(Key::new(IndexKey {
            charts: &self.charts,
            archives: inputs.digests(),
        }))
    }

    fn run(&self, ctx: &mut RunCtx) -> Result<()> {
        let mut carried = Vec::new();
        for spec in &self.charts {
            let path = spec.dist_path();
            let output = ctx.inputs.get(&path)?;
            let chart = helm_repo::chart_yaml(&ctx.inputs.store_path(&path)?)?;
            carried.push(Carried {
                chart,
                digest: output.sha256.clone(),
                file: path.rsplit('/').next().unwrap_or(&path).to_string(),
            });
        }
        let text = helm_repo::write_index(&carried)?;
        ctx.put_bytes(
            &crate::layout::chart_index(),
            text.as_bytes(),
            Visibility::Public,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn example(images: &str) -> (tempfile::TempDir, Site) {
        let dir = tempfile::tempdir().unwrap();
        let text = format!("{}\n[images]\n{images}\n", include_str!("../../site.toml"));
        // [images] must come before the [[node]] tables.
        let (head, nodes) = text.split_once("[[node]]").unwrap();
        let (nodes, images) = nodes.split_once("\n[images]\n").unwrap();
        let text = format!("{head}[images]\n{images}\n[[node]]{nodes}");
        let site = Site::from_text(&text, &dir.path().join("site.toml")).unwrap();
        (dir, site)
    }

    #[test]
    fn pull_mode_carries_no_chart() {
        let (_dir, site) = example("mode = \"pull\"");
        assert!(site_charts(&site).is_empty());
        assert_eq!(served_repository(&site), None);
    }

    #[test]
    fn serve_mode_carries_cilium_argo_cd_and_the_listed_charts() {
        let (_dir, site) = example(
            "mode = \"serve\"\ncharts = [{ repo = \"https://kubereboot.github.io/charts\", \
             name = \"kured\", version = \"6.0.0\" }]",
        );
        let got: Vec<(String, String, String)> = site_charts(&site)
            .into_iter()
            .map(|c| (c.repo, c.name, c.version))
            .collect();
        let own = |r: &str, n: &str, v: &str| (r.to_string(), n.to_string(), v.to_string());
        assert_eq!(
            got,
            [
                own("https://argoproj.github.io/argo-helm", "argo-cd", "10.9.0"),
                own("https://helm.cilium.io/", "cilium", "1.19.8"),
                own("https://kubereboot.github.io/charts", "kured", "6.0.0"),
            ]
        );
        assert_eq!(
            served_repository(&site).as_deref(),
            Some("http://10.20.0.2:8080/charts")
        );
    }
}
