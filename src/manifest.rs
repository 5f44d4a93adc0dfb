//! `dist/manifest.json`: the contract between the builder and everything that
//! reads a tree (the server, rsync checks, CI).
//!
//! Shape (extend only by adding keys): `{"format": 1, "inputs": hex, "files":
//! [{"path", "size", "sha256"}] sorted by path, "nodes": [{"name", "mac", "ip",
//! "role"}]}` plus `"access"`: the files that only one client IP may fetch,
//! and `"flatcar"`: the pinned Flatcar release the tree boots and what the
//! site asked for (`"current"` or the same version), so a later `--offline`
//! build can reuse what `current` resolved to; and `"images"`: the container
//! images an air-gapped tree carries, each with the digest its tag resolved to.
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

pub const FILE_NAME: &str = "manifest.json";
pub const FORMAT: u32 = 1;

/// The tree's `manifest.json`.
///
/// Every struct here declares its fields in alphabetical order: serde writes
/// them in that order, which makes the written JSON's keys sorted (the
/// contract) without going through a sorted map.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// Files (Ignition configs) restricted to one node's IP.
    #[serde(default)]
    pub access: Vec<AccessEntry>,
    /// Every file of the tree, sorted by path.
    pub files: Vec<FileEntry>,
    /// The Flatcar release of the tree (absent in trees built before it existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flatcar: Option<FlatcarRecord>,
    pub format: u32,
    /// Hex digest over every step key of the build: equal inputs, equal tree.
    /// The container images the tree carries (`[images] mode = "serve"`),
    /// sorted by reference; empty otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<ImageRecord>,
    pub inputs: String,
    pub nodes: Vec<NodeEntry>,
}

/// One image the tree carries, as resolved at build time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ImageRecord {
    /// What the reference resolved to: the digest of the manifest (or the
    /// multi-arch index, kept byte for byte) the tag names.
    pub digest: String,
    /// Its media type.
    pub media_type: String,
    /// The repository's name in dist/ and on the OCI API (`registry.k8s.io/pause`).
    pub name: String,
    /// The site's architecture's manifest, when `digest` is an index.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_digest: Option<String>,
    /// The reference as the cluster names it, normalised
    /// (`registry.k8s.io/pause:3.10`).
    pub reference: String,
}

/// Which Flatcar release a tree boots, as resolved at build time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlatcarRecord {
    pub arch: String,
    pub channel: String,
    /// What site.toml said: `"current"`, or the pinned version itself.
    pub requested: String,
    /// The pinned release every file and config of the tree uses.
    pub version: String,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative to dist/, starting with `http/` or `tftp/`.
    pub path: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeEntry {
    pub ip: String,
    /// Lower-case, colon-separated.
    pub mac: String,
    pub name: String,
    /// `control-plane` or `worker`.
    pub role: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessEntry {
    /// The only client IP that may fetch it.
    pub ip: String,
    /// The node the file belongs to.
    pub node: String,
    /// A path from `files`.
    pub path: String,
}

impl Manifest {
    /// Stable JSON: keys sorted at every level, files and access sorted by path,
    /// two-space indent, trailing newline.
    pub fn to_json(&self) -> String {
        let by_path = self.files.is_sorted_by(|a, b| a.path <= b.path)
            && self.access.is_sorted_by(|a, b| a.path <= b.path);
        let sorted;
        let manifest = if by_path {
            self
        } else {
            let mut copy = self.clone();
            copy.files.sort();
            copy.access.sort_by(|a, b| a.path.cmp(&b.path));
            sorted = copy;
            &sorted
        };
        let mut text = serde_json::to_string_pretty(manifest).expect("manifest serialises");
        text.push('\n');
        text
    }

    pub fn parse(text: &str) -> Result<Manifest> {
        let manifest: Manifest = serde_json::from_str(text).context("parsing manifest.json")?;
        if manifest.format != FORMAT {
            bail!(
                "manifest.json has format {}, this pxebuild reads format {FORMAT}",
                manifest.format
            );
        }
        Ok(manifest)
    }

    /// Reads `dist/manifest.json`.
    pub fn load(dist: &Path) -> Result<Manifest> {
        let path = dist.join(FILE_NAME);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Manifest::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn file(&self, path: &str) -> Option<&FileEntry> {
        self.files
            .binary_search_by(|f| f.path.as_str().cmp(path))
            .ok()
            .map(|i| &self.files[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            format: 1,
            inputs: "ab".into(),
            files: vec![
                FileEntry {
                    path: "tftp/b".into(),
                    size: 2,
                    sha256: "22".into(),
                },
                FileEntry {
                    path: "http/a".into(),
                    size: 1,
                    sha256: "11".into(),
                },
            ],
            nodes: vec![NodeEntry {
                name: "cp1".into(),
                mac: "52:54:00:00:00:01".into(),
                ip: "10.0.0.11".into(),
                role: "control-plane".into(),
            }],
            access: vec![],
            images: Vec::new(),
            flatcar: Some(FlatcarRecord {
                channel: "stable".into(),
                arch: "amd64".into(),
                version: "4593.2.5".into(),
                requested: "current".into(),
            }),
        }
    }

    #[test]
    fn json_is_sorted_and_round_trips() {
        let json = sample().to_json();
        let a = json.find("\"access\"").unwrap();
        let f = json.find("\"files\"").unwrap();
        let fc = json.find("\"flatcar\"").unwrap();
        let i = json.find("\"inputs\"").unwrap();
        assert!(a < f && f < fc && fc < i, "top-level keys sorted: {json}");
        let r = json.find("\"requested\"").unwrap();
        let v = json.find("\"version\": \"4593.2.5\"").unwrap();
        assert!(r < v, "record keys sorted: {json}");
        assert!(json.find("http/a").unwrap() < json.find("tftp/b").unwrap());
        let back = Manifest::parse(&json).unwrap();
        assert_eq!(back.file("http/a").unwrap().size, 1);
        assert_eq!(back.to_json(), json);
    }

    /// The canonical form: every map's keys sorted by serde_json's `Value`
    /// (a BTreeMap), lists sorted by path.
    fn canonical(m: &Manifest) -> String {
        let mut sorted = m.clone();
        sorted.files.sort();
        sorted.access.sort_by(|a, b| a.path.cmp(&b.path));
        let value = serde_json::to_value(&sorted).unwrap();
        serde_json::to_string_pretty(&value).unwrap() + "\n"
    }

    #[test]
    fn written_form_is_the_canonical_one() {
        let mut m = sample();
        m.access = vec![
            AccessEntry {
                path: "http/ignition/w1/node.ign".into(),
                node: "w1".into(),
                ip: "10.0.0.21".into(),
            },
            AccessEntry {
                path: "http/ignition/cp1/node.ign".into(),
                node: "cp1".into(),
                ip: "10.0.0.11".into(),
            },
        ];
        assert_eq!(m.to_json(), canonical(&m));
        m.flatcar = None;
        assert_eq!(m.to_json(), canonical(&m));
    }

    #[test]
    fn a_manifest_without_a_flatcar_record_still_parses() {
        let mut old = sample();
        old.flatcar = None;
        let json = old.to_json();
        assert!(!json.contains("\"flatcar\""), "{json}");
        let back = Manifest::parse(&json).unwrap();
        assert_eq!(back.flatcar, None);
        assert_eq!(back.to_json(), json);
    }

    #[test]
    fn other_formats_are_refused() {
        let json = sample().to_json().replace("\"format\": 1", "\"format\": 2");
        assert!(Manifest::parse(&json).is_err());
    }
}
