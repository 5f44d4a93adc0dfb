//! Fetching one artifact into the content store: reuse a verified blob when
//! the download index knows the URL, else download (resuming a partial temp
//! file), verify, and only then rename into the store. A download that fails
//! for good or a failed check removes the temp file, so nothing unverified
//! stays behind; only a killed build leaves its `.part` for the next to resume.
use std::path::Path;
use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};

use super::http::{Client, Downloaded, Policy};
use super::index::{Entry, Index};
use super::progress::Bar;
use super::sources::Sources;
use crate::engine::store::Store;

/// A verified blob in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Blob {
    pub sha256: String,
    pub size: u64,
}

/// A check's verdict that a file is not the one a digest anchor (a site pin,
/// a release's SHA256SUMS line) names. For a stored copy this is not damage:
/// the anchor moved (a new iPXE build under the same URL), so the URL is
/// fetched again rather than the build failing on the old blob.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct DigestMismatch(pub String);

/// Shared by every fetch step of a build.
pub(crate) struct Fetcher {
    pub sources: Sources,
    pub store: Store,
    pub index: Index,
    pub offline: bool,
    client: Client,
    /// URLs whose stored copy was found corrupt and removed in this build,
    /// so `--offline` can say so instead of "not in the store".
    dropped: std::sync::Mutex<std::collections::HashSet<String>>,
}

impl Fetcher {
    pub(crate) fn new(sources: Sources, cache_dir: &Path, offline: bool) -> Result<Arc<Fetcher>> {
        let policy = Policy::from_env()?;
        Ok(Arc::new(Fetcher {
            sources,
            store: Store::open(&cache_dir.join("store"))?,
            index: Index::open(cache_dir)?,
            offline,
            client: Client::new(policy),
            dropped: Default::default(),
        }))
    }

    /// The verified blob for canonical `url`; `check` judges a candidate file.
    pub(crate) fn fetch(
        &self,
        name: &str,
        url: &str,
        check: &dyn Fn(&Path, &Blob) -> Result<()>,
    ) -> Result<Blob> {
        if let Some(blob) = self.reuse(url, check, true)? {
            return Ok(blob);
        }
        if self.offline {
            return Err(self.offline_missing(name, url));
        }
        let located = self.sources.locate(url)?;
        let temp = self.index.partial(url, &self.store)?;
        // Serialises downloads of one URL between builds that share a cache,
        // so two never append to the same partial file.
        let _lock = crate::fsutil::lock_file(&self.index.lock_path(url), || {})?;
        // Another build sharing this cache may have finished it meanwhile.
        if let Some(blob) = self.reuse(url, check, false)? {
            return Ok(blob);
        }
        let bar = Bar::new(name);
        let got = match self.client.download(&located, &temp, &bar) {
            Ok(got) => got,
            Err(err) => {
                // A build that fails leaves nothing behind; only a killed build
                // (which runs no cleanup) leaves a partial file for the next to resume.
                let _ = std::fs::remove_file(&temp);
                bar.finish("download failed");
                return Err(err.context(format!("downloading {name}")));
            }
        };
        let blob = Blob {
            sha256: got.sha256.clone(),
            size: got.size,
        };
        if let Err(err) = check(&temp, &blob) {
            let _ = std::fs::remove_file(&temp);
            return Err(err.context(format!("verifying {name} from {located}")));
        }
        self.keep(url, &temp, &got)?;
        bar.finish(&format!("{} verified", human(got.size)));
        Ok(blob)
    }

    /// A small file (signature, checksum list) from the store or the network;
    /// `None` when the server says it does not exist. A downloaded one is not
    /// stored until the artifact it vouches for verified (`remember`).
    pub(crate) fn fetch_small(&self, name: &str, url: &str) -> Result<Option<Vec<u8>>> {
        if let Some(entry) = self.index.lookup(url, &self.store) {
            if self.store.verify(&entry.sha256)? {
                return self.store.read(&entry.sha256).map(Some);
            }
            self.corrupt(url);
        }
        if self.offline {
            return Err(self.offline_missing(name, url));
        }
        let located = self.sources.locate(url)?;
        self.client
            .get_small(&located)
            .with_context(|| format!("downloading {name}"))
    }

    /// Stores a small file once what it vouches for has verified.
    pub(crate) fn remember(&self, url: &str, bytes: &[u8]) -> Result<()> {
        let sha256 = self.store.put_bytes(bytes)?;
        self.index.record(&Entry {
            url: url.to_string(),
            sha256,
            size: bytes.len() as u64,
        })
    }

    /// Whether canonical `url` exists upstream (or in the mirror): `None`
    /// if so, else the URL that answered 404 (naming a redirect's target).
    pub(crate) fn missing(&self, url: &str) -> Result<Option<String>> {
        self.client.missing(&self.sources.locate(url)?)
    }

    /// Re-hashes the stored copy of `url` (`--verify-cache`): `None` when the
    /// store has none, `Some(false)` when it was corrupt and is now removed.
    pub(crate) fn verify_stored(&self, url: &str) -> Result<Option<bool>> {
        let Some(entry) = self.index.lookup(url, &self.store) else {
            return Ok(None);
        };
        let intact = self.store.verify(&entry.sha256)?;
        if !intact {
            self.corrupt(url);
        }
        Ok(Some(intact))
    }

    /// Says that the stored copy of `url` was corrupt (the store removed it).
    fn corrupt(&self, url: &str) {
        let what = if self.offline {
            "removed"
        } else {
            "removed; fetching it again"
        };
        crate::warn!("{url}: the stored copy was corrupt and is {what}");
        self.dropped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(url.to_string());
    }

    fn offline_missing(&self, name: &str, url: &str) -> anyhow::Error {
        let dropped = self
            .dropped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(url);
        if dropped {
            anyhow!(
                "offline: the stored copy of {name} ({url}) was corrupt and is removed; \
                 build once without --offline to fetch it again"
            )
        } else {
            anyhow!("offline: {name} ({url}) is not in the store; build once without --offline")
        }
    }

    /// Whether the store already holds `url` (no network).
    pub(crate) fn cached(&self, url: &str) -> bool {
        self.index.lookup(url, &self.store).is_some()
    }

    /// A stored blob for `url`, re-hashed and re-checked; a corrupt one is
    /// dropped so it is fetched again, and so is one that no longer matches
    /// its digest anchor (the pin changed; the blob stays for other users).
    /// `announce`: say why a stored copy is not used (once per fetch).
    fn reuse(
        &self,
        url: &str,
        check: &dyn Fn(&Path, &Blob) -> Result<()>,
        announce: bool,
    ) -> Result<Option<Blob>> {
        let Some(entry) = self.index.lookup(url, &self.store) else {
            return Ok(None);
        };
        if !self.store.verify(&entry.sha256)? {
            self.corrupt(url);
            return Ok(None);
        }
        let blob = Blob {
            sha256: entry.sha256,
            size: entry.size,
        };
        match check(&self.store.path_of(&blob.sha256), &blob) {
            Ok(()) => Ok(Some(blob)),
            Err(e) if e.downcast_ref::<DigestMismatch>().is_some() => {
                if self.offline {
                    bail!(
                        "offline: the stored copy of {url} is an older file ({e:#}); \
                         build once without --offline to fetch the one now pinned"
                    );
                }
                if announce {
                    crate::info!(
                        "{url}: the stored copy is not the pinned file ({e:#}); fetching it again"
                    );
                }
                Ok(None)
            }
            Err(e) => Err(anyhow!("{url}: the stored copy no longer verifies: {e:#}")),
        }
    }

    fn keep(&self, url: &str, temp: &Path, got: &Downloaded) -> Result<()> {
        self.store.adopt(temp, &got.sha256, got.size)?;
        self.index.record(&Entry {
            url: url.to_string(),
            sha256: got.sha256.clone(),
            size: got.size,
        })
    }
}

fn human(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// One artifact to have: its name and its URL (with alternatives, any of which will do).
#[derive(Debug, Clone)]
pub(crate) struct Wanted {
    pub name: String,
    pub urls: Vec<String>,
}
