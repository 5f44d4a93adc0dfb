//! `payload/`: the Kubernetes manifests Argo CD applies from git. This module
//! parses every YAML file there and cross-checks it: manifests have apiVersion
//! and kind, every Application's `path` and `$values/…` file exist, and (as
//! warnings) the Cilium chart follows site.toml's Cilium version and, with
//! `[images] mode = "serve"`, every chart comes from the boot server. Whether the git
//! sources follow site.toml's repository is `day2::sync`'s job. Application
//! paths are relative to the git repository root, the directory holding site.toml.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;
use serde_norway::Value;

use crate::fetch::charts::ChartSpec;
use crate::site::Site;

/// One YAML document of a payload file.
#[derive(Debug, Clone)]
pub struct Document {
    /// Relative to the repository root, e.g. `payload/core/kured.yaml`.
    pub file: PathBuf,
    pub value: Value,
}

impl Document {
    fn str_at(&self, keys: &[&str]) -> Option<&str> {
        let mut v = &self.value;
        for k in keys {
            v = v.get(*k)?;
        }
        v.as_str()
    }
    pub fn kind(&self) -> Option<&str> {
        self.str_at(&["kind"])
    }
    pub fn name(&self) -> &str {
        self.str_at(&["metadata", "name"]).unwrap_or("(unnamed)")
    }
    pub fn is_application(&self) -> bool {
        self.kind() == Some("Application")
    }
    /// `spec.source` or every entry of `spec.sources`.
    pub fn sources(&self) -> Vec<&Value> {
        let spec = self.value.get("spec");
        let single = spec.and_then(|s| s.get("source")).into_iter();
        let many = spec
            .and_then(|s| s.get("sources"))
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten();
        single.chain(many).collect()
    }
    fn label(&self) -> String {
        format!(
            "{}: {} {}",
            self.file.display(),
            self.kind().unwrap_or("?"),
            self.name()
        )
    }
}

/// Helm values files are YAML but not manifests.
pub fn is_values_file(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with("values.yaml") || n.ends_with("values.yml"))
}

/// Every YAML file under `<repo_root>/payload`, sorted.
pub fn files(repo_root: &Path) -> Result<Vec<PathBuf>> {
    let dir = repo_root.join("payload");
    let mut files: Vec<PathBuf> = walkdir::WalkDir::new(&dir)
        .into_iter()
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("listing {}", dir.display()))?
        .into_iter()
        .map(|e| e.into_path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Every YAML document under `<repo_root>/payload`, files in sorted order.
pub fn load(repo_root: &Path) -> Result<Vec<Document>> {
    let mut docs = Vec::new();
    for path in files(repo_root)? {
        let rel = path.strip_prefix(repo_root).unwrap_or(&path).to_path_buf();
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        for de in serde_norway::Deserializer::from_str(&text) {
            let value = Value::deserialize(de)
                .with_context(|| format!("parsing {} as YAML", rel.display()))?;
            if !value.is_null() {
                docs.push(Document {
                    file: rel.clone(),
                    value,
                });
            }
        }
    }
    Ok(docs)
}

/// Structural problems of the payload: each one breaks an Argo CD sync.
pub fn lint(repo_root: &Path, docs: &[Document]) -> Vec<String> {
    let mut problems = Vec::new();
    for doc in docs.iter().filter(|d| !is_values_file(&d.file)) {
        for key in ["apiVersion", "kind"] {
            if doc.str_at(&[key]).is_none() {
                problems.push(format!("{}: a manifest without {key}", doc.file.display()));
            }
        }
        if doc.str_at(&["metadata", "name"]).is_none() {
            problems.push(format!(
                "{}: a manifest without metadata.name",
                doc.file.display()
            ));
        }
        if doc.is_application() {
            problems.extend(lint_application(repo_root, doc));
        }
    }
    problems
}

fn lint_application(repo_root: &Path, doc: &Document) -> Vec<String> {
    let mut problems = Vec::new();
    let sources = doc.sources();
    if sources.is_empty() {
        problems.push("no spec.source or spec.sources".to_string());
    }
    for key in ["project", "destination"] {
        if doc.value.get("spec").and_then(|s| s.get(key)).is_none() {
            problems.push(format!("no spec.{key}"));
        }
    }
    let has_values_ref = sources
        .iter()
        .any(|s| s.get("ref").and_then(Value::as_str) == Some("values"));
    for src in &sources {
        problems.extend(lint_path(repo_root, src));
        problems.extend(lint_value_files(repo_root, src, has_values_ref));
    }
    problems
        .into_iter()
        .map(|p| format!("{}: {p}", doc.label()))
        .collect()
}

/// A git path must exist, and a plain directory source must not pick up Helm
/// values files (Argo CD would try to apply them as manifests).
fn lint_path(repo_root: &Path, src: &Value) -> Vec<String> {
    let Some(path) = src.get("path").and_then(Value::as_str) else {
        return Vec::new();
    };
    let dir = repo_root.join(path);
    if !dir.is_dir() {
        return vec![format!("path {path} is not a directory of the repository")];
    }
    let directory = src.get("directory");
    if directory.and_then(|d| d.get("exclude")).is_some() {
        return Vec::new(); // Argo CD's own globs decide; not second-guessed here.
    }
    let recurse = directory
        .and_then(|d| d.get("recurse"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let depth = if recurse { usize::MAX } else { 1 };
    walkdir::WalkDir::new(&dir)
        .max_depth(depth)
        .into_iter()
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file() && is_values_file(e.path()))
        .map(|e| {
            let rel = e.path().strip_prefix(repo_root).unwrap_or(e.path());
            format!(
                "path {path} would apply the Helm values file {} as a manifest",
                rel.display()
            )
        })
        .collect()
}

/// `$values/…` files need the `ref: values` source and must exist.
fn lint_value_files(repo_root: &Path, src: &Value, has_values_ref: bool) -> Vec<String> {
    let mut problems = Vec::new();
    for file in value_files(src) {
        let Some(rest) = file.strip_prefix("$values/") else {
            continue;
        };
        if !has_values_ref {
            problems.push(format!("{file} needs a source with ref: values"));
        }
        if !repo_root.join(rest).is_file() {
            problems.push(format!("values file {rest} does not exist"));
        }
    }
    problems
}

fn value_files(src: &Value) -> Vec<&str> {
    src.get("helm")
        .and_then(|h| h.get("valueFiles"))
        .and_then(Value::as_sequence)
        .map(|files| files.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

/// A git source of an Application: one that names a `path` or is a `ref`
/// (not a Helm chart), so it must follow site.toml's repository.
pub fn is_git_source(src: &Value) -> bool {
    src.get("chart").is_none() && (src.get("path").is_some() || src.get("ref").is_some())
}

/// Warnings when the Cilium chart of payload/ is not site.toml's `cilium.version`
/// (the node unit installs that version; Argo CD would change it). Empty when
/// they agree or payload/ is absent.
pub fn check(site: &Site) -> Vec<String> {
    if !site.payload_dir().is_dir() {
        return Vec::new();
    }
    match load(&site.dir) {
        Ok(docs) => {
            let mut out = cilium_mismatches(site, &docs);
            out.extend(chart_warnings(site, &docs, false));
            out
        }
        Err(e) => vec![format!("{e:#}")],
    }
}

/// Where a payload chart source stands with `[images] mode = "serve"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Place<'a> {
    /// Names the boot server's repository and a version the build carries.
    Served,
    /// Names the boot server's repository, but a version the build does not carry.
    NotCarried,
    /// Names the upstream repository, chart and version of a chart the site
    /// publishes: `install-argo --sync-payload` points it at the boot server.
    Published,
    /// Names a chart version the site publishes from another repository (the
    /// boot server holds one archive per chart version).
    Elsewhere(&'a ChartSpec),
    /// Names a chart version the site does not publish.
    Unpublished,
}

/// Where the chart source (`repo`, `chart`, `version`) stands, given the
/// boot server's repository `served` and the `charts` the site publishes.
/// Repositories match without a trailing `/`, versions with or without a
/// leading `v` (as the build matches them against a repository's index).
pub(crate) fn place<'a>(
    charts: &'a [ChartSpec],
    served: &str,
    repo: &str,
    chart: &str,
    version: Option<&str>,
) -> Place<'a> {
    let bare = |v: &str| v.trim_start_matches('v').to_string();
    let url = |u: &str| u.trim_end_matches('/').to_string();
    let same =
        |c: &&ChartSpec| c.name == chart && version.is_some_and(|v| bare(v) == bare(&c.version));
    let carried = charts.iter().find(same);
    match (url(repo) == url(served), carried) {
        (true, Some(_)) => Place::Served,
        (true, None) => Place::NotCarried,
        (false, Some(c)) if url(&c.repo) == url(repo) => Place::Published,
        (false, Some(c)) => Place::Elsewhere(c),
        (false, None) => Place::Unpublished,
    }
}

/// Each chart source of payload/'s Applications that Argo CD could not
/// render from the boot server alone, with what to do (empty in pull mode).
/// `synced` leaves out the sources `install-argo --sync-payload` points at the
/// boot server itself (after a sync, what is left for the operator).
pub(crate) fn chart_warnings(site: &Site, docs: &[Document], synced: bool) -> Vec<String> {
    let Some(served) = crate::fetch::charts::served_repository(site) else {
        return Vec::new();
    };
    let carried = crate::fetch::charts::site_charts(site);
    let px = super::cmdline::pxebuild_cmd(site);
    let mut out = Vec::new();
    for doc in docs.iter().filter(|d| d.is_application()) {
        for src in doc.sources() {
            let Some(chart) = src.get("chart").and_then(Value::as_str) else {
                continue;
            };
            let repo = src.get("repoURL").and_then(Value::as_str).unwrap_or("");
            let version = src.get("targetRevision").and_then(Value::as_str);
            let shown = version.unwrap_or("(no targetRevision)");
            let label = doc.label();
            match place(&carried, &served, repo, chart, version) {
                Place::Served => {}
                Place::Published if synced => {}
                Place::Published => out.push(format!(
                    "{label}: chart {chart} {shown} comes from {repo:?}, but with [images] mode = \
                     \"serve\" the boot server publishes it at {served:?}: run `{px} install-argo \
                     --sync-payload` to point its repoURL there, commit and push"
                )),
                Place::NotCarried => out.push(format!(
                    "{label}: chart {chart} {shown} is not in the boot server's repository: list \
                     it in [images] charts with its upstream repository, and build again"
                )),
                Place::Elsewhere(c) => out.push(format!(
                    "{label}: chart {chart} {shown} comes from {repo:?}, but the boot server \
                         publishes {chart} {} from {:?} ({}): if it is the same chart, set repoURL \
                         to that repository and run `{px} install-argo --sync-payload`",
                    c.version, c.repo, c.setting
                )),
                Place::Unpublished => out.push(format!(
                    "{label}: chart {chart} {shown} comes from {repo:?}, which the site does not \
                     publish and nodes cannot reach with [images] mode = \"serve\": add \
                     {{ repo = \"{repo}\", name = \"{chart}\", version = \"{}\" }} to [images] \
                     charts, build again, then run `{px} install-argo --sync-payload`",
                    version.unwrap_or("<chart version>")
                )),
            }
        }
    }
    out
}

fn cilium_mismatches(site: &Site, docs: &[Document]) -> Vec<String> {
    let want = &site.file.cilium.version;
    let mut out = Vec::new();
    for doc in docs.iter().filter(|d| d.is_application()) {
        for src in doc.sources() {
            let field = |k: &str| src.get(k).and_then(Value::as_str).unwrap_or("");
            if field("chart") == "cilium" && field("targetRevision") != want {
                out.push(format!(
                    "{}: cilium chart version {:?} differs from site.toml cilium.version {want:?}",
                    doc.label(),
                    field("targetRevision")
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(file: &str, yaml: &str) -> Document {
        Document {
            file: file.into(),
            value: serde_norway::from_str(yaml).unwrap(),
        }
    }

    #[test]
    fn serve_mode_wants_every_chart_from_the_boot_server() {
        let dir = tempfile::tempdir().unwrap();
        let example = include_str!("../../site.toml");
        let (head, nodes) = example.split_once("[[node]]").unwrap();
        let text = format!("{head}[images]\nmode = \"serve\"\n\n[[node]]{nodes}");
        let site = Site::from_text(&text, &dir.path().join("site.toml")).unwrap();
        let app = |repo: &str, version: &str| {
            doc(
                "payload/core/cilium.yaml",
                &format!(
                    "kind: Application\nmetadata: {{name: cilium}}\nspec:\n  sources:\n  \
                     - {{repoURL: \"{repo}\", chart: cilium, targetRevision: {version}}}\n  \
                     - {{repoURL: https://git.example/x.git, ref: values}}\n"
                ),
            )
        };
        let warn = |d: Document, synced: bool| chart_warnings(&site, &[d], synced);
        let upstream = || app("https://helm.cilium.io", "v1.19.8");
        let warned = warn(upstream(), false);
        assert_eq!(warned.len(), 1, "{warned:?}");
        assert!(
            warned[0].starts_with(
                "payload/core/cilium.yaml: Application cilium: chart cilium v1.19.8 comes from \
                 \"https://helm.cilium.io\", but with [images] mode = \"serve\" the boot server \
                 publishes it at \"http://10.20.0.2:8080/charts\": run `pxebuild --site "
            ) && warned[0].ends_with(
                " install-argo --sync-payload` to point its repoURL there, commit and push"
            ),
            "{warned:?}"
        );
        // A sync points it at the boot server itself: nothing left to say.
        assert!(warn(upstream(), true).is_empty());
        assert!(warn(app("http://10.20.0.2:8080/charts/", "1.19.8"), false).is_empty());
        // The same chart version from another repository.
        let mirror = warn(app("https://charts.lan/cilium", "1.19.8"), true);
        assert!(
            mirror[0].contains(
                "comes from \"https://charts.lan/cilium\", but the boot server publishes cilium \
                 1.19.8 from \"https://helm.cilium.io/\" ([cilium] version): if it is the same \
                 chart, set repoURL to that repository"
            ),
            "{mirror:?}"
        );
        // A version the site does not publish: what to add to [images] charts.
        let other = warn(app("https://helm.cilium.io/", "1.18.0"), true);
        assert!(
            other[0].starts_with(
                "payload/core/cilium.yaml: Application cilium: chart cilium 1.18.0 comes from \
                 \"https://helm.cilium.io/\", which the site does not publish and nodes cannot \
                 reach with [images] mode = \"serve\": add { repo = \"https://helm.cilium.io/\", \
                 name = \"cilium\", version = \"1.18.0\" } to [images] charts, build again, then \
                 run `pxebuild --site "
            ),
            "{other:?}"
        );
        // From the boot server, but a version the build did not carry.
        let kured = doc(
            "payload/core/kured.yaml",
            "kind: Application\nmetadata: {name: kured}\nspec:\n  source:\n    \
             {repoURL: \"http://10.20.0.2:8080/charts\", chart: kured, targetRevision: 6.0.0}\n",
        );
        assert_eq!(
            warn(kured, true),
            [
                "payload/core/kured.yaml: Application kured: chart kured 6.0.0 is not in the boot \
              server's repository: list it in [images] charts with its upstream repository, and \
              build again"
            ]
        );
        let pull = Site::from_text(example, &dir.path().join("site.toml")).unwrap();
        assert!(chart_warnings(&pull, &[upstream()], false).is_empty());
    }

    #[test]
    fn lint_names_missing_keys_paths_and_values() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("payload/apps/x")).unwrap();
        std::fs::write(root.path().join("payload/apps/x/values.yaml"), "a: 1\n").unwrap();
        let docs = [
            doc("payload/a.yaml", "kind: ConfigMap\nmetadata: {name: x}\n"),
            doc("payload/core/values.yaml", "anything: 1\n"),
            doc(
                "payload/core/app.yaml",
                "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: app}\n\
                 spec:\n  project: default\n  sources:\n  - {repoURL: r, path: payload/apps}\n  - {repoURL: r, path: payload/gone}\n\
                 \x20 - {repoURL: c, chart: c, helm: {valueFiles: [$values/payload/core/v.yaml]}}\n",
            ),
            doc(
                "payload/core/deep.yaml",
                "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: deep}\n\
                 spec:\n  project: default\n  destination: {namespace: x}\n\
                 \x20 source: {repoURL: r, path: payload/apps, directory: {recurse: true}}\n",
            ),
        ];
        let app = "payload/core/app.yaml: Application app:";
        assert_eq!(
            lint(root.path(), &docs),
            [
                "payload/a.yaml: a manifest without apiVersion".to_string(),
                format!("{app} no spec.destination"),
                format!("{app} path payload/gone is not a directory of the repository"),
                format!("{app} $values/payload/core/v.yaml needs a source with ref: values"),
                format!("{app} values file payload/core/v.yaml does not exist"),
                "payload/core/deep.yaml: Application deep: path payload/apps would apply the Helm \
                 values file payload/apps/x/values.yaml as a manifest"
                    .to_string(),
            ]
        );
    }
}
