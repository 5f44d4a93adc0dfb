//! Helm repositories as files: reading an upstream `index.yaml` (the entry of
//! one chart version: its archive URL and SHA-256), the `Chart.yaml` inside a
//! chart archive, and writing the static repository dist/ carries
//! (`http/charts/index.yaml`, apiVersion v1, URLs relative to the index).
//! Pure functions: the fetch steps in `charts` do the I/O.
use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use serde_norway::{Mapping, Value};

/// `created` (and the index's `generated`) of every entry dist/ lists: fixed,
/// so two builds of the same charts write the same bytes.
pub(crate) const CREATED: &str = "1970-01-01T00:00:00Z";

/// The part of a repository's `index.yaml` a build reads.
#[derive(Debug, Deserialize)]
struct RepoIndex {
    #[serde(default)]
    entries: BTreeMap<String, Vec<IndexEntry>>,
}

#[derive(Debug, Deserialize)]
struct IndexEntry {
    #[serde(default)]
    version: Value,
    #[serde(default)]
    digest: Option<String>,
    #[serde(default)]
    urls: Vec<String>,
}

/// One chart version as its repository lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// The version as the index spells it.
    pub version: String,
    /// Lower-case hex SHA-256 of the archive; `None` when the index gives none.
    pub digest: Option<String>,
    /// The archive's absolute URL (a relative one resolved against the repository).
    pub url: String,
}

/// What an index says about `name` at `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Lookup {
    Found(Listed),
    /// The index has no chart of that name.
    NoChart,
    /// The chart is there, but not that version; the versions it does list.
    NoVersion(Vec<String>),
}

/// Finds `name` at `version` in the index text of the repository at `repo`.
/// A version written with a leading `v` matches one without, and the other
/// way round, as Helm's own version lookup does.
pub(crate) fn lookup(text: &[u8], repo: &str, name: &str, version: &str) -> Result<Lookup> {
    let index: RepoIndex = serde_norway::from_slice(text).context("parsing index.yaml")?;
    let Some(versions) = index.entries.get(name) else {
        return Ok(Lookup::NoChart);
    };
    let bare = |v: &str| v.trim_start_matches('v').to_string();
    let listed: Vec<(String, &IndexEntry)> = versions
        .iter()
        .filter_map(|e| scalar(&e.version).map(|v| (v, e)))
        .collect();
    let found = listed
        .iter()
        .find(|(v, _)| v == version)
        .or_else(|| listed.iter().find(|(v, _)| bare(v) == bare(version)));
    let Some((found_version, entry)) = found else {
        return Ok(Lookup::NoVersion(
            listed.into_iter().map(|(v, _)| v).collect(),
        ));
    };
    let first = entry
        .urls
        .first()
        .ok_or_else(|| anyhow!("the entry of {name} {found_version} lists no URL"))?;
    Ok(Lookup::Found(Listed {
        version: found_version.clone(),
        digest: entry.digest.as_ref().map(|d| d.trim().to_ascii_lowercase()),
        url: resolve(repo, first)?,
    }))
}

/// A version as text: indexes write `1.2.3`, which YAML reads as a string,
/// but `1.2` or `2` would be numbers.
fn scalar(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The index URL of the repository at `repo`.
pub(crate) fn index_url(repo: &str) -> String {
    format!("{}/index.yaml", repo.trim_end_matches('/'))
}

/// An archive URL of an index entry, absolute: as written when it has a
/// scheme, else against the repository's host (`/x`) or the repository (`x`),
/// the way Helm resolves it.
pub(crate) fn resolve(repo: &str, url: &str) -> Result<String> {
    if url.contains("://") {
        return Ok(url.to_string());
    }
    let base = repo.trim_end_matches('/');
    if let Some(rooted) = url.strip_prefix('/') {
        let (scheme, rest) = base
            .split_once("://")
            .ok_or_else(|| anyhow!("{repo} is not an absolute URL"))?;
        let host = rest.split('/').next().unwrap_or(rest);
        return Ok(format!("{scheme}://{host}/{rooted}"));
    }
    Ok(format!("{base}/{}", url.trim_start_matches("./")))
}

/// The `Chart.yaml` of a chart archive (`<chart>/Chart.yaml`, as `helm
/// package` lays it out), as data.
pub(crate) fn chart_yaml(archive: &Path) -> Result<Mapping> {
    let file =
        std::fs::File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
    for entry in tar.entries().context("reading the chart archive")? {
        let entry = entry.context("reading the chart archive")?;
        let path = entry.path().context("reading the chart archive")?;
        let parts: Vec<_> = path.components().collect();
        if parts.len() != 2 || parts[1].as_os_str() != "Chart.yaml" {
            continue;
        }
        let mut text = String::new();
        entry
            .take(1 << 20)
            .read_to_string(&mut text)
            .context("reading Chart.yaml")?;
        let value: Value = serde_norway::from_str(&text).context("parsing Chart.yaml")?;
        return match value {
            Value::Mapping(m) => Ok(m),
            _ => bail!("Chart.yaml is not a mapping"),
        };
    }
    bail!("the archive holds no <chart>/Chart.yaml: not a Helm chart archive")
}

/// A chart's `name` or `version` from its Chart.yaml.
pub(crate) fn chart_field(chart: &Mapping, key: &str) -> Option<String> {
    chart.get(key).and_then(scalar)
}

/// One chart archive the dist repository lists.
#[derive(Debug, Clone)]
pub(crate) struct Carried {
    /// Its Chart.yaml.
    pub chart: Mapping,
    /// Lower-case hex SHA-256 of the archive.
    pub digest: String,
    /// The archive's file name beside the index (`cilium-1.18.2.tgz`).
    pub file: String,
}

/// dist/'s `index.yaml`: apiVersion v1, one entry per carried archive (its
/// Chart.yaml fields, `urls` relative to the index, `digest`, a fixed
/// `created`), charts by name, versions in the order given.
pub(crate) fn write_index(carried: &[Carried]) -> Result<String> {
    let mut entries: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for c in carried {
        let name = chart_field(&c.chart, "name")
            .ok_or_else(|| anyhow!("{}: Chart.yaml has no name", c.file))?;
        let mut entry = c.chart.clone();
        entry.insert("created".into(), CREATED.into());
        entry.insert("digest".into(), c.digest.clone().into());
        entry.insert(
            "urls".into(),
            Value::Sequence(vec![Value::from(c.file.clone())]),
        );
        entries.entry(name).or_default().push(Value::Mapping(entry));
    }
    let mut index = Mapping::new();
    index.insert("apiVersion".into(), "v1".into());
    let entries: Mapping = entries
        .into_iter()
        .map(|(name, list)| (Value::from(name), Value::Sequence(list)))
        .collect();
    index.insert("entries".into(), Value::Mapping(entries));
    index.insert("generated".into(), CREATED.into());
    serde_norway::to_string(&index).context("writing index.yaml")
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = "\
apiVersion: v1
entries:
  cilium:
  - name: cilium
    version: 1.18.2
    digest: ABCDEF0000000000000000000000000000000000000000000000000000000001
    urls:
    - https://helm.cilium.io/cilium-1.18.2.tgz
  - name: cilium
    version: 1.18.1
    digest: abcdef0000000000000000000000000000000000000000000000000000000002
    urls:
    - cilium-1.18.1.tgz
  argo-cd:
  - name: argo-cd
    version: v2.0
    urls:
    - /releases/argo-cd-2.0.tgz
generated: 2026-01-01T00:00:00Z
";

    #[test]
    fn finds_a_version_its_digest_and_its_absolute_url() {
        let got = lookup(
            INDEX.as_bytes(),
            "https://helm.cilium.io/",
            "cilium",
            "1.18.2",
        )
        .unwrap();
        assert_eq!(
            got,
            Lookup::Found(Listed {
                version: "1.18.2".into(),
                digest: Some(format!("abcdef{}1", "0".repeat(57))),
                url: "https://helm.cilium.io/cilium-1.18.2.tgz".into(),
            })
        );
        let Lookup::Found(rel) = lookup(
            INDEX.as_bytes(),
            "https://helm.cilium.io/",
            "cilium",
            "v1.18.1",
        )
        .unwrap() else {
            panic!("v1.18.1 is 1.18.1");
        };
        assert_eq!(rel.version, "1.18.1");
        assert_eq!(rel.url, "https://helm.cilium.io/cilium-1.18.1.tgz");
        let Lookup::Found(rooted) =
            lookup(INDEX.as_bytes(), "https://h.example/a/b", "argo-cd", "2.0").unwrap()
        else {
            panic!("2.0 is v2.0");
        };
        assert_eq!(rooted.url, "https://h.example/releases/argo-cd-2.0.tgz");
        assert_eq!(rooted.digest, None);
    }

    #[test]
    fn says_what_is_missing() {
        let repo = "https://helm.cilium.io";
        assert_eq!(
            lookup(INDEX.as_bytes(), repo, "kured", "1").unwrap(),
            Lookup::NoChart
        );
        assert_eq!(
            lookup(INDEX.as_bytes(), repo, "cilium", "1.17.0").unwrap(),
            Lookup::NoVersion(vec!["1.18.2".into(), "1.18.1".into()])
        );
        assert!(lookup(b"entries: [", repo, "cilium", "1").is_err());
    }

    #[test]
    fn index_urls_and_relative_archives() {
        assert_eq!(
            index_url("https://helm.cilium.io/"),
            "https://helm.cilium.io/index.yaml"
        );
        assert_eq!(
            index_url("https://argoproj.github.io/argo-helm"),
            "https://argoproj.github.io/argo-helm/index.yaml"
        );
        assert_eq!(
            resolve("https://x.example/charts/", "./a-1.tgz").unwrap(),
            "https://x.example/charts/a-1.tgz"
        );
    }

    #[test]
    fn the_dist_index_lists_relative_urls_digests_and_a_fixed_date() {
        let chart: Mapping =
            serde_norway::from_str("apiVersion: v2\nname: kured\nversion: 6.0.0\n").unwrap();
        let text = write_index(&[Carried {
            chart,
            digest: "d".repeat(64),
            file: "kured-6.0.0.tgz".into(),
        }])
        .unwrap();
        let back: Value = serde_norway::from_str(&text).unwrap();
        assert_eq!(back["apiVersion"], Value::from("v1"));
        let entry = &back["entries"]["kured"][0];
        assert_eq!(entry["version"], Value::from("6.0.0"));
        assert_eq!(entry["apiVersion"], Value::from("v2"));
        assert_eq!(entry["digest"], Value::from("d".repeat(64)));
        assert_eq!(entry["urls"][0], Value::from("kured-6.0.0.tgz"));
        assert_eq!(entry["created"], Value::from(CREATED));
        assert_eq!(back["generated"], Value::from(CREATED));
    }
}
