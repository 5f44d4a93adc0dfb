//! The step cache: a record per step key (the key's blake3 hash) listing the
//! outputs that key produced. A record is written only after the step succeeded
//! and its outputs are in the store, so a failed step leaves no entry.
//!
//! The records of the last build are also kept together in one index file, so
//! a rebuild reads one file instead of one per step. The index only speeds up
//! lookups: a key it lacks falls back to its record, and a lost or damaged
//! index is ignored (the next build writes it again).
use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::step::Output;
use super::store::Store;
use crate::fsutil;

/// The index of the last build's step records, beside the records.
const INDEX: &str = "steps/index.json";

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
    /// Key hash → outputs, for every step of the last build.
    index: HashMap<String, Vec<Output>>,
}

impl Cache {
    pub fn open(root: &Path) -> Result<Cache> {
        let store = Store::open(&root.join("store"))?;
        fs::create_dir_all(root.join("steps/last"))
            .with_context(|| format!("creating {}", root.join("steps").display()))?;
        let index = fs::read(root.join(INDEX))
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .unwrap_or_default();
        Ok(Cache {
            root: root.to_path_buf(),
            store,
            index,
        })
    }

    /// Replaces the index with this build's steps (`(key hash, outputs)`),
    /// unless it already holds exactly those. Written without fsync: the build
    /// syncs the cache file system once before publishing, and a stale index
    /// only costs lookups.
    pub fn save_index<'a>(
        &self,
        entries: impl IntoIterator<Item = (&'a str, &'a [Output])>,
    ) -> Result<()> {
        let index: HashMap<&str, &[Output]> = entries.into_iter().collect();
        let unchanged = index.len() == self.index.len()
            && index
                .iter()
                .all(|(k, v)| self.index.get(*k).is_some_and(|o| o.as_slice() == *v));
        if unchanged {
            return Ok(());
        }
        let json = serde_json::to_vec(&index).context("serialising the step index")?;
        fsutil::atomic_write_batched(&self.root.join(INDEX), &json, 0o644)
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
        let indexed = self.index.get(key_hash);
        let outputs = match indexed {
            Some(outputs) => outputs.clone(),
            None => {
                let text = fs::read(self.record_path(key_hash)).ok()?;
                serde_json::from_slice::<Hit>(&text).ok()?.outputs
            }
        };
        // The last build saw every indexed blob in the store, and the store
        // never removes one by itself: skip thousands of stats on a rebuild.
        // (A blob deleted by hand surfaces as an error naming --verify-cache,
        // which re-hashes everything and rebuilds what is gone.)
        let intact = outputs.iter().all(|o| {
            if verify {
                self.store.verify(&o.sha256).unwrap_or(false)
            } else {
                indexed.is_some() || self.store.has(&o.sha256, o.size)
            }
        });
        intact.then_some(outputs)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::step::Visibility;
    use serde_json::json;

    fn recorded(cache: &Cache, body: &[u8]) -> (String, Vec<Output>) {
        let sha256 = cache.store.put_bytes(body).unwrap();
        let outputs = vec![Output {
            path: "http/x".into(),
            sha256,
            size: body.len() as u64,
            visibility: Visibility::Public,
        }];
        let key = json!({"body": String::from_utf8_lossy(body)});
        let hash = Cache::key_hash(&key);
        let record = Record {
            id: "x".into(),
            key,
            outputs: outputs.clone(),
        };
        cache.record(&hash, &record).unwrap();
        (hash, outputs)
    }

    #[test]
    fn the_index_answers_without_the_record_and_a_broken_one_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let (hash, outputs) = recorded(&cache, b"one");
        cache
            .save_index([(hash.as_str(), outputs.as_slice())])
            .unwrap();
        fs::remove_file(cache.record_path(&hash)).unwrap();
        let reopened = Cache::open(dir.path()).unwrap();
        assert_eq!(reopened.lookup(&hash, false), Some(outputs.clone()));
        assert_eq!(Cache::open(dir.path()).unwrap().lookup("0000", false), None);

        fs::write(dir.path().join(INDEX), b"{not json").unwrap();
        let damaged = Cache::open(dir.path()).unwrap();
        assert_eq!(
            damaged.lookup(&hash, false),
            None,
            "record gone, index unreadable"
        );
        let (again, outputs) = recorded(&damaged, b"two");
        assert_eq!(
            damaged.lookup(&again, false),
            Some(outputs),
            "records still work"
        );
    }

    #[test]
    fn verify_rechecks_indexed_blobs() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let (hash, outputs) = recorded(&cache, b"one");
        cache
            .save_index([(hash.as_str(), outputs.as_slice())])
            .unwrap();
        let reopened = Cache::open(dir.path()).unwrap();
        fs::remove_file(reopened.store.path_of(&outputs[0].sha256)).unwrap();
        assert_eq!(reopened.lookup(&hash, true), None, "a lost blob is a miss");
    }
}
