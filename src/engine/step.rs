//! The step API every part of the build plugs into.
//!
//! A step names the steps it reads from (`deps`), describes everything that
//! decides its output as a typed key (`key`, see `super::key`), and produces
//! named outputs into the content store (`run`). The executor hashes the key;
//! a known key is not run.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize, Serializer};

use super::key::{Folded, Key};
use super::store::Store;

/// Who may see an output.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", try_from = "VisibilityRecord")]
pub enum Visibility {
    /// Only other steps read it (rendered Butane, intermediate JSON).
    Internal,
    /// Placed in dist/ at its path, served to anyone.
    Public,
    /// Placed in dist/ and served only to this node's IP.
    Node { node: String, ip: String },
}

/// The stored form of [`Visibility`], read field by field. serde reads an
/// internally tagged enum by buffering each value first, which made reading
/// the step index (thousands of outputs, on every rebuild) twice as slow.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VisibilityRecord {
    kind: String,
    node: Option<String>,
    ip: Option<String>,
}

impl TryFrom<VisibilityRecord> for Visibility {
    type Error = String;

    fn try_from(record: VisibilityRecord) -> Result<Visibility, String> {
        match (record.kind.as_str(), record.node, record.ip) {
            ("internal", None, None) => Ok(Visibility::Internal),
            ("public", None, None) => Ok(Visibility::Public),
            ("node", Some(node), Some(ip)) => Ok(Visibility::Node { node, ip }),
            (kind, ..) => Err(format!("malformed visibility of kind {kind:?}")),
        }
    }
}

/// A file a step produced; its bytes live in the store under `sha256`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// A dist path (`http/...`, `tftp/...`) when published, else an internal name.
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub visibility: Visibility,
}

impl Output {
    pub fn is_published(&self) -> bool {
        self.visibility != Visibility::Internal
    }
}

/// Marks a step failure whose cause is not the step's own but an input many
/// steps share (a template that does not compile): the build reports it once,
/// on its own, instead of as failures of whichever steps ran into it first.
/// Attach it as context of the error (`err.context(SharedInputError(..))`):
/// its text heads the message, and the error is bad input (exit 2).
#[derive(Debug, Clone)]
pub(crate) struct SharedInputError(pub String);

impl std::fmt::Display for SharedInputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A unit of build work. Implementations must be deterministic: equal keys give
/// equal outputs.
pub trait Step: Send + Sync {
    /// Unique, stable id such as `fetch:flatcar/pxe-kernel` or `ignition:cp1/install.ign`.
    fn id(&self) -> String;
    /// Ids of the steps whose outputs this step reads.
    fn deps(&self) -> Vec<String> {
        Vec::new()
    }
    /// Everything that decides the output (input digests, template bytes,
    /// rendered context, versions), as the key struct of the step's kind.
    /// Called once the dependencies are done. Bulky parts shared by many
    /// steps are [`Folded`]: hashed as digests, explained in full.
    fn key<'a>(&'a self, inputs: &'a Inputs<'_>) -> Result<Key<'a>>;
    /// Whether the key carries the fingerprint of the running pxebuild
    /// (`super::fingerprint`): true for every step whose outputs pxebuild's
    /// code makes. A download whose output is the verified bytes of a pinned
    /// URL returns false, so a new pxebuild does not fetch or verify it again.
    fn keyed_by_binary(&self) -> bool {
        true
    }
    /// Produces the outputs through `ctx`.
    fn run(&self, ctx: &mut RunCtx) -> Result<()>;
    /// Under `--verify-cache`: re-hashes the stored blobs the step reads but
    /// does not output (a signature, a SHA256SUMS, a tarball it extracts),
    /// which the output check cannot see. `false` when one was corrupt (and
    /// dropped) or is gone, so the step runs again and fetches it.
    fn stored_inputs_intact(&self) -> Result<bool> {
        Ok(true)
    }
}

/// The outputs of a set of dependencies, by path, with their digest made once.
/// Thousands of steps share one set (every node's steps read the same
/// artifacts), so the executor builds each distinct set once and shares it.
pub(crate) struct InputSet {
    outputs: BTreeMap<String, Output>,
    digest: std::sync::OnceLock<String>,
}

impl InputSet {
    pub(crate) fn new(outputs: impl IntoIterator<Item = Output>) -> InputSet {
        InputSet {
            outputs: outputs.into_iter().map(|o| (o.path.clone(), o)).collect(),
            digest: std::sync::OnceLock::new(),
        }
    }
}

/// The outputs of a step's dependencies, by path.
pub struct Inputs<'a> {
    set: std::sync::Arc<InputSet>,
    store: &'a Store,
}

impl<'a> Inputs<'a> {
    pub(crate) fn shared(set: std::sync::Arc<InputSet>, store: &'a Store) -> Self {
        Inputs { set, store }
    }

    pub fn get(&self, path: &str) -> Result<&Output> {
        self.set
            .outputs
            .get(path)
            .ok_or_else(|| anyhow!("no dependency produced {path}"))
    }

    pub fn read(&self, path: &str) -> Result<Vec<u8>> {
        let out = self.get(path)?;
        let file = self.store.path_of(&out.sha256);
        std::fs::read(&file)
            .with_context(|| format!("reading {path} from the store{}", super::store::LOST_HINT))
    }

    pub fn read_string(&self, path: &str) -> Result<String> {
        String::from_utf8(self.read(path)?).with_context(|| format!("{path} is not UTF-8"))
    }

    /// The store file holding an input (for hard links and streaming reads).
    pub fn store_path(&self, path: &str) -> Result<std::path::PathBuf> {
        Ok(self.store.path_of(&self.get(path)?.sha256))
    }

    /// One digest of every input's path and sha256: [`Inputs::digests`] folded,
    /// for keys computed thousands of times per build.
    pub fn digest(&self) -> String {
        self.set
            .digest
            .get_or_init(|| {
                let mut hasher = blake3::Hasher::new();
                for (path, output) in &self.set.outputs {
                    hasher
                        .update(path.as_bytes())
                        .update(b"\0")
                        .update(output.sha256.as_bytes())
                        .update(b"\n");
                }
                hasher.finalize().to_hex().to_string()
            })
            .clone()
    }

    /// Path → sha256 of every input: the usual way to put inputs into a key.
    pub fn digests(&self) -> BTreeMap<String, String> {
        self.set
            .outputs
            .iter()
            .map(|(p, o)| (p.clone(), o.sha256.clone()))
            .collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Output> {
        self.set.outputs.values()
    }

    /// The inputs as a key part: hashed as [`Inputs::digest`], explained as
    /// path → sha256 with the paths redacted (an input path may name a
    /// node's secret directory, and explained keys are kept in the cache).
    pub fn folded(&self) -> Folded<RedactedInputs<'_>> {
        Folded::new(self.digest(), RedactedInputs(&self.set))
    }
}

/// Path (redacted) → sha256 of every input, for `--explain`.
pub struct RedactedInputs<'a>(&'a InputSet);

impl Serialize for RedactedInputs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            self.0
                .outputs
                .iter()
                .map(|(path, output)| (crate::layout::redact(path), &output.sha256)),
        )
    }
}

/// What a running step can do: read its inputs, write outputs into the store.
pub struct RunCtx<'a> {
    pub inputs: &'a Inputs<'a>,
    store: &'a Store,
    produced: Vec<Output>,
}

impl<'a> RunCtx<'a> {
    pub(crate) fn new(inputs: &'a Inputs<'a>, store: &'a Store) -> Self {
        RunCtx {
            inputs,
            store,
            produced: Vec::new(),
        }
    }

    pub fn store(&self) -> &Store {
        self.store
    }

    /// Stores `bytes` as output `path`.
    pub fn put_bytes(&mut self, path: &str, bytes: &[u8], visibility: Visibility) -> Result<()> {
        let sha256 = self.store.put_bytes(bytes)?;
        self.push(path, sha256, bytes.len() as u64, visibility);
        Ok(())
    }

    /// Moves a finished, verified file into the store as output `path`.
    pub fn put_file(&mut self, path: &str, file: &Path, visibility: Visibility) -> Result<()> {
        let (sha256, size) = self.store.put_file(file)?;
        self.push(path, sha256, size, visibility);
        Ok(())
    }

    /// Publishes a blob that is already in the store (e.g. an input) as `path`.
    pub fn put_blob(&mut self, path: &str, sha256: &str, size: u64, visibility: Visibility) {
        self.push(path, sha256.to_string(), size, visibility);
    }

    fn push(&mut self, path: &str, sha256: String, size: u64, visibility: Visibility) {
        self.produced.retain(|o| o.path != path);
        self.produced.push(Output {
            path: path.to_string(),
            sha256,
            size,
            visibility,
        });
    }

    pub(crate) fn into_outputs(self) -> Vec<Output> {
        self.produced
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn visibility_keeps_its_stored_shape_and_refuses_malformed_records() {
        let all = [
            Visibility::Internal,
            Visibility::Public,
            Visibility::Node {
                node: "cp1".into(),
                ip: "10.0.0.11".into(),
            },
        ];
        let json = serde_json::to_string(&all).unwrap();
        assert_eq!(
            json,
            r#"[{"kind":"internal"},{"kind":"public"},{"kind":"node","node":"cp1","ip":"10.0.0.11"}]"#
        );
        let back: Vec<Visibility> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, all);
        for bad in [
            r#"{"kind":"node","node":"cp1"}"#,
            r#"{"kind":"public","ip":"10.0.0.11"}"#,
            r#"{"kind":"secret"}"#,
            r#"{"kind":"public","extra":1}"#,
        ] {
            assert!(serde_json::from_str::<Visibility>(bad).is_err(), "{bad}");
        }
    }
}
