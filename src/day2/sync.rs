//! site.toml's `[argocd] repo_url`/`revision` as the single source of truth for
//! the git sources of payload/'s Applications. Argo CD reads the child
//! Applications from git exactly as written (only the root is rendered by
//! install-argo, so `bootstrap/root-app.yaml` is left alone), so a child that
//! names another repository or revision would quietly follow it. install-argo
//! refuses while any differs ([`check`]); `install-argo --sync-payload`
//! rewrites them ([`sync`]), line by line so comments and layout survive.
//! With `[images] mode = "serve"` the sync also points every Helm chart source
//! that names a chart the site publishes (its upstream repository, chart and
//! version as in `[images] charts`, or Cilium's and Argo CD's) at the boot
//! server's chart repository, the one nodes can reach; install-argo only
//! warns about those ([`payload::check`]).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::payload::{self, Place};
use super::yamlines::{self, Entry};
use crate::error::BadInput;
use crate::fetch::charts::{self, ChartSpec};
use crate::site::Site;

/// The root Application, relative to the repository root: rendered at apply time.
const ROOT_APP: &str = "payload/bootstrap/root-app.yaml";

/// What a git source should say.
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    pub repo_url: &'a str,
    pub revision: &'a str,
}

impl<'a> Target<'a> {
    pub fn of(site: &'a Site) -> Target<'a> {
        Target {
            repo_url: &site.file.argocd.repo_url,
            revision: &site.file.argocd.revision,
        }
    }
}

/// The boot server's chart repository and the charts it publishes: where a
/// sync points payload chart sources (serve mode only).
pub(crate) struct Served {
    /// `<http base>/charts`, what `install-argo --chart-repo` defaults to.
    pub url: String,
    pub charts: Vec<ChartSpec>,
}

impl Served {
    pub(crate) fn of(site: &Site) -> Option<Served> {
        Some(Served {
            url: charts::served_repository(site)?,
            charts: charts::site_charts(site),
        })
    }

    /// True when the chart source names a chart published here, from its
    /// upstream repository.
    fn publishes(&self, repo: &str, chart: &str, version: Option<&str>) -> bool {
        payload::place(&self.charts, &self.url, repo, chart, version) == Place::Published
    }
}

/// One value of a git source (or, in a sync, a chart source's repoURL) that
/// differs from what site.toml says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The file as the operator would type it, e.g. `payload/core/apps.yaml`.
    pub file: PathBuf,
    /// 1-based line of the value (of `repoURL` when `targetRevision` is missing).
    pub line: usize,
    /// `repoURL` or `targetRevision`.
    pub key: &'static str,
    /// The value written now; `None` when the source has no targetRevision.
    pub have: Option<String>,
    pub want: String,
}

impl Change {
    fn site_key(&self) -> &'static str {
        match self.key {
            "repoURL" => "argocd.repo_url",
            _ => "argocd.revision",
        }
    }

    /// `file:line: key is "…", expected "…" (site.toml …)`, for install-argo's refusal.
    pub fn mismatch(&self) -> String {
        let have = match &self.have {
            Some(v) => format!("is {v:?}"),
            None => "is missing (Argo CD would follow HEAD)".to_string(),
        };
        format!(
            "{}:{}: {} {have}, expected {:?} (site.toml {})",
            self.file.display(),
            self.line,
            self.key,
            self.want,
            self.site_key()
        )
    }

    /// `file:line: key old -> new`, for what a sync changed.
    pub fn rewrite(&self) -> String {
        format!(
            "{}:{}: {} {} -> {}",
            self.file.display(),
            self.line,
            self.key,
            self.have.as_deref().unwrap_or("(missing, added)"),
            self.want
        )
    }
}

/// One file's differences and its text with them fixed.
struct FilePlan {
    path: PathBuf,
    changes: Vec<Change>,
    fixed: String,
}

/// Every git-source value of a child Application that differs from site.toml.
/// Bad input (exit 2) when a file cannot be parsed or holds a git source this
/// line-based reader cannot locate.
pub fn check(site: &Site) -> Result<Vec<Change>> {
    Ok(plan(site, None)?
        .into_iter()
        .flat_map(|p| p.changes)
        .collect())
}

/// Rewrites every differing value in place (only when `write`), chart sources
/// included in serve mode; returns them.
pub fn sync(site: &Site, write: bool) -> Result<Vec<Change>> {
    let plans = plan(site, Served::of(site).as_ref())?;
    if write {
        for p in plans.iter().filter(|p| !p.changes.is_empty()) {
            let mode = std::fs::metadata(&p.path)
                .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
                .with_context(|| format!("reading {}", p.path.display()))?;
            crate::fsutil::atomic_write(&p.path, p.fixed.as_bytes(), mode)
                .with_context(|| format!("writing {}", p.path.display()))?;
        }
    }
    Ok(plans.into_iter().flat_map(|p| p.changes).collect())
}

/// What to change in each payload file; chart sources only with `served`.
fn plan(site: &Site, served: Option<&Served>) -> Result<Vec<FilePlan>> {
    let target = Target::of(site);
    let parsed = parsed_sources(&site.dir, served)?;
    let mut plans = Vec::new();
    for path in payload::files(&site.dir)? {
        let rel = path.strip_prefix(&site.dir).unwrap_or(&path).to_path_buf();
        if payload::is_values_file(&rel) || rel == Path::new(ROOT_APP) {
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let shown = super::tidy(site.dir.join(&rel));
        let (fixed, found) = fix_text(&text, &target, served);
        let want = parsed.get(&rel).copied().unwrap_or_default();
        if let Some(served) = served.filter(|_| found.charts != want.charts) {
            return Err(BadInput::new(format!(
                "{}: an Application's Helm chart source that the boot server publishes is not \
                 written as a block mapping (one `key: value` per line), so pxebuild cannot \
                 point its repoURL at {}: write it in block style",
                shown.display(),
                served.url
            )));
        }
        if found.sources != want.sources {
            return Err(BadInput::new(format!(
                "{}: an Application's git source is not written as a block mapping (one \
                 `key: value` per line), so pxebuild cannot check or rewrite its repoURL and \
                 targetRevision: write it in block style",
                shown.display()
            )));
        }
        let changes = found
            .changes
            .into_iter()
            .map(|(line, key, have, want)| Change {
                file: shown.clone(),
                line,
                key,
                have,
                want,
            })
            .collect();
        plans.push(FilePlan {
            path,
            changes,
            fixed,
        });
    }
    Ok(plans)
}

/// Sources to rewrite in one file: every git source, and the chart sources
/// the boot server publishes.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Counts {
    sources: usize,
    charts: usize,
}

/// Sources per file (relative to the repository root), from the parsed
/// documents: the line-based reader must find as many.
fn parsed_sources(repo_root: &Path, served: Option<&Served>) -> Result<BTreeMap<PathBuf, Counts>> {
    let docs = payload::load(repo_root).map_err(|e| BadInput::new(format!("{e:#}")))?;
    let mut count: BTreeMap<PathBuf, Counts> = BTreeMap::new();
    for doc in docs.iter().filter(|d| d.is_application()) {
        let here = count.entry(doc.file.clone()).or_default();
        for src in doc.sources() {
            let field = |k: &str| src.get(k).and_then(serde_norway::Value::as_str);
            if payload::is_git_source(src) {
                here.sources += 1;
            } else if let (Some(served), Some(chart)) = (served, field("chart")) {
                let repo = field("repoURL").unwrap_or("");
                here.charts += usize::from(served.publishes(repo, chart, field("targetRevision")));
            }
        }
    }
    Ok(count)
}

/// What one file's scan found: git sources seen, published chart sources
/// seen, and (line, key, have, want).
#[derive(Default)]
struct Found {
    sources: usize,
    charts: usize,
    changes: Vec<(usize, &'static str, Option<String>, String)>,
}

/// The file's text with every git source on `target` and (with `served`)
/// every published chart source on the boot server, and what differed.
fn fix_text(text: &str, target: &Target, served: Option<&Served>) -> (String, Found) {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let bodies: Vec<&str> = lines
        .iter()
        .map(|l| l.trim_end_matches('\n').trim_end_matches('\r'))
        .collect();
    let entries: Vec<Option<Entry>> = bodies.iter().map(|l| yamlines::entry(l)).collect();
    let mut edits = Edits {
        bodies: &bodies,
        entries: &entries,
        found: Found::default(),
        replaced: BTreeMap::new(),
        inserted: BTreeMap::new(),
    };
    for at in application_repo_urls(&bodies, &entries) {
        edits.git_source(at, target);
        if let Some(served) = served {
            edits.chart_source(at, served);
        }
    }
    let Edits {
        mut found,
        replaced,
        inserted,
        ..
    } = edits;
    found.changes.sort_by_key(|c| c.0);
    (assemble(&lines, &bodies, &replaced, &inserted), found)
}

/// The edits one file needs, collected source by source.
struct Edits<'a> {
    bodies: &'a [&'a str],
    entries: &'a [Option<Entry<'a>>],
    found: Found,
    /// Line index → the line rewritten.
    replaced: BTreeMap<usize, String>,
    /// Line index → a line to add after it.
    inserted: BTreeMap<usize, String>,
}

impl Edits<'_> {
    fn key(&self, line: usize) -> Option<&str> {
        self.entries[line].as_ref().and_then(|e| e.key)
    }

    /// The mapping whose `repoURL` is on line `at`, when it is a git source.
    fn git_source(&mut self, at: usize, target: &Target) {
        let sibs = yamlines::siblings(self.entries, at);
        let keys: Vec<&str> = sibs.iter().filter_map(|&i| self.key(i)).collect();
        if keys.contains(&"chart") || !(keys.contains(&"path") || keys.contains(&"ref")) {
            return;
        }
        self.found.sources += 1;
        self.set(at, "repoURL", target.repo_url);
        match sibs
            .iter()
            .find(|&&i| self.key(i) == Some("targetRevision"))
        {
            Some(&rev) => self.set(rev, "targetRevision", target.revision),
            None => {
                let col = self.entries[at].as_ref().map_or(0, |e| e.col);
                let rendered = yamlines::render(target.revision, None);
                let line = format!("{}targetRevision: {rendered}", " ".repeat(col));
                self.inserted.insert(at, line);
                let change = (at + 1, "targetRevision", None, target.revision.into());
                self.found.changes.push(change);
            }
        }
    }

    /// The mapping whose `repoURL` is on line `at`, when it is a Helm source
    /// of a chart `served` publishes: its repoURL becomes the boot server's.
    fn chart_source(&mut self, at: usize, served: &Served) {
        let sibs = yamlines::siblings(self.entries, at);
        let field = |key: &str| {
            sibs.iter()
                .find(|&&i| self.key(i) == Some(key))
                .and_then(|&i| value(&self.entries[i]))
        };
        let (Some(chart), Some(repo)) = (field("chart"), value(&self.entries[at])) else {
            return;
        };
        if served.publishes(&repo, &chart, field("targetRevision").as_deref()) {
            self.found.charts += 1;
            self.set(at, "repoURL", &served.url);
        }
    }

    /// Rewrites the value on line `at` to `want` unless it already is.
    fn set(&mut self, at: usize, key: &'static str, want: &str) {
        if let Some(new) = fix_line(self.bodies[at], &self.entries[at], want) {
            let change = (at + 1, key, value(&self.entries[at]), want.to_string());
            self.found.changes.push(change);
            self.replaced.insert(at, new);
        }
    }
}

fn value(entry: &Option<Entry>) -> Option<String> {
    entry
        .as_ref()
        .and_then(|e| e.value.as_ref())
        .map(|v| v.text.clone())
}

/// The line with its value replaced by `want`, or `None` when it already is `want`.
fn fix_line(body: &str, entry: &Option<Entry>, want: &str) -> Option<String> {
    let value = entry.as_ref()?.value.as_ref()?;
    if value.text == want {
        return None;
    }
    let rendered = yamlines::render(want, value.quote);
    Some(format!(
        "{}{rendered}{}",
        &body[..value.span.start],
        &body[value.span.end..]
    ))
}

/// Lines of `repoURL:` keys inside documents whose top-level kind is Application.
fn application_repo_urls(bodies: &[&str], entries: &[Option<Entry>]) -> Vec<usize> {
    let mut out = Vec::new();
    let mut doc_start = 0;
    for end in (0..=bodies.len()).filter(|&i| i == bodies.len() || bodies[i].starts_with("---")) {
        let doc = doc_start..end;
        let is_app = doc.clone().any(|i| {
            entries[i].as_ref().is_some_and(|e| {
                e.col == 0
                    && e.key == Some("kind")
                    && e.value.as_ref().is_some_and(|v| v.text == "Application")
            })
        });
        if is_app {
            out.extend(doc.filter(|&i| entries[i].as_ref().and_then(|e| e.key) == Some("repoURL")));
        }
        doc_start = end + 1;
    }
    out
}

/// The file again, line endings kept, with replaced lines and inserted lines
/// (each after the line it is keyed by).
fn assemble(
    lines: &[&str],
    bodies: &[&str],
    replaced: &BTreeMap<usize, String>,
    inserted: &BTreeMap<usize, String>,
) -> String {
    let mut out = String::new();
    for (i, line) in lines.iter().enumerate() {
        let ending = &line[bodies[i].len()..];
        match replaced.get(&i) {
            Some(new) => out.push_str(new),
            None => out.push_str(bodies[i]),
        }
        out.push_str(ending);
        if let Some(new) = inserted.get(&i) {
            if ending.is_empty() {
                out.push('\n');
            }
            out.push_str(new);
            out.push_str(ending);
        }
    }
    out
}

/// True for a repository URL on a name reserved for examples (RFC 2606:
/// example.com/.net/.org, `.example`, `.invalid`), such as the schema's default
/// and the example site's: Argo CD could never clone it.
pub fn is_placeholder(url: &str) -> bool {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let authority = rest.split('/').next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = host_port
        .split(':')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    let host = host.trim_end_matches('.');
    [
        "example.com",
        "example.net",
        "example.org",
        "example",
        "invalid",
    ]
    .iter()
    .any(|d| host == *d || host.ends_with(&format!(".{d}")))
}

/// Bad input (exit 2) when site.toml still names a placeholder repository.
pub fn require_real_repo(site: &Site) -> Result<()> {
    let url = &site.file.argocd.repo_url;
    if !is_placeholder(url) {
        return Ok(());
    }
    Err(BadInput::new(format!(
        "{} [argocd] repo_url is still the placeholder {url}: set it to the git repository \
         that holds this site.toml and payload/ (Argo CD reads payload/ from there), then run \
         `{} install-argo --sync-payload`, commit and push",
        site.path.display(),
        super::cmdline::pxebuild_cmd(site)
    )))
}

/// `install-argo --sync-payload`: rewrites payload/ (or with `dry_run` only
/// prints what it would change) and says what to do next.
pub fn run(site: &Site, dry_run: bool) -> Result<()> {
    require_real_repo(site)?;
    let changes = sync(site, !dry_run)?;
    // Charts the sync could not point at the boot server: the operator's to fix.
    if let Ok(docs) = payload::load(&site.dir) {
        for warning in payload::chart_warnings(site, &docs, true) {
            crate::warn!("{warning}");
        }
    }
    let target = Target::of(site);
    if changes.is_empty() {
        println!(
            "payload/ already follows {} at {}: nothing to change",
            target.repo_url, target.revision
        );
        return Ok(());
    }
    for change in &changes {
        println!("{}", change.rewrite());
    }
    let files: std::collections::BTreeSet<&PathBuf> = changes.iter().map(|c| &c.file).collect();
    if dry_run {
        println!(
            "dry run: {} value(s) in {} file(s) would change; nothing written",
            changes.len(),
            files.len()
        );
    } else {
        println!(
            "changed {} value(s) in {} file(s); commit them and push to {} ({}) before `{} install-argo`: Argo CD reads payload/ from there",
            changes.len(),
            files.len(),
            target.repo_url,
            target.revision,
            super::cmdline::pxebuild_cmd(site)
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Target = Target {
        repo_url: "https://git.lan/ops/site.git",
        revision: "prod",
    };

    #[test]
    fn git_sources_are_rewritten_in_place_and_charts_left_alone() {
        let text = "# keep me\napiVersion: argoproj.io/v1alpha1\nkind: Application\nspec:\n  sources:\n\
                    \x20   - repoURL: https://helm.cilium.io/\n      chart: cilium\n      targetRevision: 1.17.4\n\
                    \x20   - repoURL: \"https://old/x.git\"  # the site repo\n      targetRevision: main\n      ref: values\n";
        let (fixed, found) = fix_text(text, &T, None);
        assert_eq!(found.sources, 1);
        assert_eq!(
            fixed,
            text.replace("\"https://old/x.git\"", "\"https://git.lan/ops/site.git\"")
                .replace("targetRevision: main", "targetRevision: prod")
        );
        assert_eq!(
            found.changes,
            [
                (
                    9,
                    "repoURL",
                    Some("https://old/x.git".into()),
                    T.repo_url.into()
                ),
                (10, "targetRevision", Some("main".into()), "prod".into()),
            ]
        );
        let (again, found) = fix_text(&fixed, &T, None);
        assert_eq!((again, found.changes.len()), (fixed, 0));
    }

    fn served() -> Served {
        let chart = |repo: &str, name: &str, version: &str| ChartSpec {
            repo: repo.into(),
            name: name.into(),
            version: version.into(),
            setting: String::new(),
        };
        Served {
            url: "http://10.20.0.2:8080/charts".into(),
            charts: vec![
                chart("https://helm.cilium.io/", "cilium", "1.19.8"),
                chart("https://kubereboot.github.io/charts", "kured", "6.0.0"),
            ],
        }
    }

    #[test]
    fn published_chart_sources_move_to_the_boot_server_in_source_and_sources() {
        let text = "kind: Application\nspec:\n  sources:\n\
                    \x20   - repoURL: https://helm.cilium.io  # upstream\n      chart: cilium\n      targetRevision: v1.19.8\n\
                    \x20   - repoURL: https://git.lan/ops/site.git\n      targetRevision: prod\n      ref: values\n\
                    \x20   - repoURL: https://helm.cilium.io/\n      chart: cilium\n      targetRevision: 1.18.0\n\
                    ---\nkind: Application\nspec:\n  source:\n    repoURL: \"https://kubereboot.github.io/charts/\"\n\
                    \x20   chart: kured\n    targetRevision: 6.0.0\n";
        let (fixed, found) = fix_text(text, &T, Some(&served()));
        assert_eq!((found.sources, found.charts), (1, 2));
        assert_eq!(
            fixed,
            text.replacen(
                "https://helm.cilium.io  # upstream",
                "http://10.20.0.2:8080/charts  # upstream",
                1
            )
            .replace(
                "\"https://kubereboot.github.io/charts/\"",
                "\"http://10.20.0.2:8080/charts\""
            )
        );
        assert_eq!(
            found.changes,
            [
                (
                    4,
                    "repoURL",
                    Some("https://helm.cilium.io".into()),
                    "http://10.20.0.2:8080/charts".into()
                ),
                (
                    17,
                    "repoURL",
                    Some("https://kubereboot.github.io/charts/".into()),
                    "http://10.20.0.2:8080/charts".into()
                ),
            ]
        );
        let (again, found) = fix_text(&fixed, &T, Some(&served()));
        assert_eq!((again, found.changes.len()), (fixed, 0));
        // Pull mode (no boot server repository): charts stay as they are.
        assert_eq!(fix_text(text, &T, None).0, text);
    }

    #[test]
    fn a_missing_target_revision_is_added_under_the_repo_url() {
        let text = "kind: Application\nspec:\n  source:\n    repoURL: https://git.lan/ops/site.git\n    path: payload/apps\n";
        let (fixed, found) = fix_text(text, &T, None);
        assert_eq!(
            fixed,
            "kind: Application\nspec:\n  source:\n    repoURL: https://git.lan/ops/site.git\n    targetRevision: prod\n    path: payload/apps\n"
        );
        assert_eq!(found.changes, [(4, "targetRevision", None, "prod".into())]);
    }

    #[test]
    fn only_applications_are_touched() {
        let text = "kind: ConfigMap\ndata:\n  repoURL: x\n  path: y\n---\nkind: Application\nspec:\n  source:\n    repoURL: x\n    targetRevision: prod\n    path: y\n";
        let (fixed, found) = fix_text(text, &T, None);
        assert_eq!(found.sources, 1);
        assert_eq!(
            fixed,
            text.replace(
                "    repoURL: x",
                "    repoURL: https://git.lan/ops/site.git"
            )
        );
    }

    #[test]
    fn placeholders_are_the_reserved_example_names() {
        for url in [
            "https://git.example.com/infra/cluster.git",
            "https://git.example.com/infra/rack1.git",
            "ssh://git@example.org:2222/x.git",
            "git@git.example.net:x/y.git",
            "https://repo.invalid/x",
        ] {
            assert!(is_placeholder(url), "{url}");
        }
        for url in [
            "https://git.lan/ops/site.git",
            "git@github.com:acme/site.git",
            "https://example.company.com/x",
        ] {
            assert!(!is_placeholder(url), "{url}");
        }
    }
}
