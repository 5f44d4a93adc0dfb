//! The download index: canonical URL → the verified store blob it gave. It
//! lets a build reuse a download when step keys change (new pxebuild, new
//! site) and lets `--offline` and `pxebuild mirror` find artifacts by URL.
//! An entry is written only after the blob was verified and stored.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::engine::store::Store;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Entry {
    pub url: String,
    pub sha256: String,
    pub size: u64,
}

#[derive(Debug, Clone)]
pub(crate) struct Index {
    dir: PathBuf,
}

impl Index {
    pub(crate) fn open(cache_dir: &Path) -> Result<Index> {
        let dir = cache_dir.join("downloads");
        crate::fsutil::create_cache_dir(&dir)?;
        Ok(Index { dir })
    }

    /// The entry for `url` whose blob is present in `store` with its size.
    pub(crate) fn lookup(&self, url: &str, store: &Store) -> Option<Entry> {
        let text = std::fs::read(self.path(url)).ok()?;
        let entry: Entry = serde_json::from_slice(&text).ok()?;
        (entry.url == url && store.has(&entry.sha256, entry.size)).then_some(entry)
    }

    pub(crate) fn record(&self, entry: &Entry) -> Result<()> {
        let json = serde_json::to_vec_pretty(entry).context("serialising download entry")?;
        crate::fsutil::atomic_write(&self.path(&entry.url), &json, 0o644)
    }

    /// Where a partial download of `url` waits to be resumed.
    pub(crate) fn partial(&self, url: &str, store: &Store) -> Result<PathBuf> {
        Ok(store.temp_dir()?.join(format!("{}.part", key(url))))
    }

    /// A lock file serialising downloads of `url` across builds.
    pub(crate) fn lock_path(&self, url: &str) -> PathBuf {
        self.dir.join(format!("{}.lock", key(url)))
    }

    fn path(&self, url: &str) -> PathBuf {
        self.dir.join(format!("{}.json", key(url)))
    }
}

fn key(url: &str) -> String {
    blake3::hash(url.as_bytes()).to_hex().to_string()
}
