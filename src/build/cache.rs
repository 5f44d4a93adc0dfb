//! The step cache: a record per step key (the key's blake3 hash) listing the
//! outputs that key produced. A record is written only after the step succeeded
//! and its outputs are in the store, so a failed step leaves no entry.
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::step::Output;
use super::store::Store;
use crate::fsutil;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub key: Value,
    pub outputs: Vec<Output>,
}

#[derive(Debug, Clone)]
pub struct Cache {
    root: PathBuf,
    pub store: Store,
}

impl Cache {
    pub fn open(root: &Path) -> Result<Cache> {
        let store = Store::open(&root.join("store"))?;
        fs::create_dir_all(root.join("steps/last"))
            .with_context(|| format!("creating {}", root.join("steps").display()))?;
        Ok(Cache {
            root: root.to_path_buf(),
            store,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// blake3 of the canonical JSON of a key (serde_json sorts object keys).
    pub fn key_hash(key: &Value) -> String {
        let bytes = serde_json::to_vec(key).expect("JSON values serialise");
        blake3::hash(&bytes).to_hex().to_string()
    }

    /// The record for a key hash, if it exists and every output is still in the store.
    pub fn lookup(&self, key_hash: &str, verify: bool) -> Option<Vec<Output>> {
        /// The part of a record a hit needs; the stored key is skipped unparsed
        /// (no-op rebuilds read thousands of records).
        #[derive(Deserialize)]
        struct Hit {
            outputs: Vec<Output>,
        }
        let text = fs::read(self.record_path(key_hash)).ok()?;
        let record: Hit = serde_json::from_slice(&text).ok()?;
        let intact = record.outputs.iter().all(|o| {
            self.store.has(&o.sha256, o.size)
                && (!verify || self.store.verify(&o.sha256).unwrap_or(false))
        });
        intact.then_some(record.outputs)
    }

    /// Records a successful step, and remembers its key for `--explain`.
    pub fn record(&self, key_hash: &str, record: &Record) -> Result<()> {
        let json = serde_json::to_vec(record).context("serialising step record")?;
        fsutil::atomic_write_batched(&self.record_path(key_hash), &json, 0o644)?;
        let last = serde_json::to_vec(&record.key).context("serialising step key")?;
        fsutil::atomic_write_batched(&self.last_key_path(&record.id), &last, 0o644)
    }

    /// The key this step had the last time it ran, for explaining a re-run.
    pub fn last_key(&self, id: &str) -> Option<Value> {
        let text = fs::read(self.last_key_path(id)).ok()?;
        serde_json::from_slice(&text).ok()
    }

    fn record_path(&self, key_hash: &str) -> PathBuf {
        self.root.join("steps").join(format!("{key_hash}.json"))
    }

    fn last_key_path(&self, id: &str) -> PathBuf {
        let name = blake3::hash(id.as_bytes()).to_hex();
        self.root.join("steps/last").join(format!("{name}.json"))
    }
}
