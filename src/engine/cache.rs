//! The step cache: what each step key (the blake3 hash of the key) produced,
//! for the steps of the last build of one output directory.
//!
//! Three files per output directory (its "slot", so sites sharing a cache do
//! not evict each other):
//! - `steps/<slot>.index.json`: key hash → outputs of the last build, read on
//!   every build, replaced atomically when it changes;
//! - `steps/<slot>.keys.jsonl`: one `{id, key}` line per step run, appended;
//!   read only to say why a step ran (`--explain`), the last line of an id
//!   winning. It is compacted when it grows large;
//! - `steps/<slot>.published`: what the last build published there, to tell
//!   a file changed by hand (`super::published`).
//!
//! One file instead of one per step: creating thousands of small files was
//! most of a large site's build time. A step that failed is never recorded.
//! A lost or damaged file only costs re-running steps; their downloads come
//! back from the download index without a request.
use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, OnceLock};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::step::Output;
use super::store::Store;
use crate::fsutil;

/// A successful step: its id, key and outputs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Record {
    pub id: String,
    pub key: Value,
    pub outputs: Vec<Output>,
}

/// What the cache knows of a key hash.
#[derive(Debug)]
pub enum Lookup<'c> {
    /// The recorded outputs, every one still usable.
    Hit(Vec<Output>),
    /// Unknown (or untrusted): the step runs and records through the [`Miss`].
    Miss(Miss<'c>),
}

impl Lookup<'_> {
    /// The outputs of a hit (releasing a miss unrecorded).
    pub fn hit(self) -> Option<Vec<Output>> {
        match self {
            Lookup::Hit(outputs) => Some(outputs),
            Lookup::Miss(_) => None,
        }
    }
}

/// A key hash this process is producing: while it is held, another lookup
/// of the same hash waits for it (and then hits) instead of running the
/// same work twice. Recording consumes it; dropping it unrecorded (the step
/// failed) lets a waiter run the step itself.
#[derive(Debug)]
pub struct Miss<'c> {
    cache: &'c Cache,
    key_hash: String,
}

impl Miss<'_> {
    pub fn key_hash(&self) -> &str {
        &self.key_hash
    }

    /// Remembers the successful step (kept in memory until [`Cache::save`]).
    pub fn record(self, record: Record) {
        let mut fresh = self.cache.fresh();
        fresh.outputs.insert(self.key_hash.clone(), record.outputs);
        fresh.keys.insert(record.id, record.key);
    }
}

impl Drop for Miss<'_> {
    fn drop(&mut self) {
        let mut running = self.cache.running();
        running.remove(&self.key_hash);
        drop(running);
        self.cache.finished.notify_all();
    }
}

/// Past this size the keys log is rewritten with the current steps' keys only.
const KEYS_LOG_LIMIT: u64 = 32 << 20;

/// One line of the keys log.
#[derive(Serialize, Deserialize)]
struct KeyLine<'a> {
    #[serde(borrow)]
    id: std::borrow::Cow<'a, str>,
    key: Value,
}

#[derive(Debug)]
pub struct Cache {
    root: PathBuf,
    pub store: Store,
    slot: String,
    /// Key hash → outputs, for every step of the slot's last build. Parsed
    /// on its own thread while the build plans (both take milliseconds on a
    /// large site, and a no-op rebuild is mostly such fixed costs).
    index: Background<HashMap<String, Vec<Output>>>,
    /// Step id → key of the slot's last build, loaded on first use.
    last_keys: OnceLock<HashMap<String, Value>>,
    /// Steps recorded by this process (a later lookup in the same run hits).
    fresh: Mutex<Fresh>,
    /// Blobs found damaged (and dropped) before this build ran: a step whose
    /// recorded outputs include one runs again.
    distrusted: HashMap<String, String>,
    /// Key hashes being produced ([`Miss`]), and the signal that one finished.
    running: Mutex<HashSet<String>>,
    finished: Condvar,
}

#[derive(Debug, Default)]
struct Fresh {
    outputs: HashMap<String, Vec<Output>>,
    keys: HashMap<String, Value>,
}

/// Creates the cache root readable by its owner only, or closes one that is
/// open to others: the store holds what dist/ publishes, control-plane
/// Ignition with the cluster's CA keys included. dist/ links into the store
/// by hard links, so a server reading dist/ never passes through it.
fn keep_private(root: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    if let Some(parent) = root.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).with_context(|| format!("creating {}", parent.display()))?;
    }
    match fs::DirBuilder::new().mode(0o700).create(root) {
        Ok(()) => return Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {}
        Err(err) => return Err(err).with_context(|| format!("creating {}", root.display())),
    }
    let mode = fs::metadata(root)
        .with_context(|| format!("reading {}", root.display()))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        match fs::set_permissions(root, fs::Permissions::from_mode(0o700)) {
            Ok(()) => {
                crate::warn!(
                    "the cache {} was open to other users (mode {:o}) and holds control-plane \
                     Ignition with the cluster's keys; it is 0700 now",
                    root.display(),
                    mode & 0o777
                );
            }
            Err(err) => {
                crate::warn!(
                    "the cache {} is open to other users (mode {:o}) and holds control-plane \
                     Ignition with the cluster's keys; making it 0700 failed: {err}",
                    root.display(),
                    mode & 0o777
                );
            }
        }
    }
    Ok(())
}

impl Cache {
    /// The cache under `root`, remembering builds of the output directory `out`.
    pub fn open_for(root: &Path, out: &Path) -> Result<Cache> {
        Self::open_slot(root, slot_for(out))
    }

    /// Where the record of what the last build published into `out` is kept.
    pub fn published_path(root: &Path, out: &Path) -> PathBuf {
        slot_file(root, &slot_for(out), "published")
    }

    /// The cache under `root` for uses without an output directory.
    pub fn open(root: &Path) -> Result<Cache> {
        Self::open_slot(root, "default".into())
    }

    fn open_slot(root: &Path, slot: String) -> Result<Cache> {
        keep_private(root)?;
        let store = Store::open(&root.join("store"))?;
        let steps = root.join("steps");
        fs::create_dir_all(&steps).with_context(|| format!("creating {}", steps.display()))?;
        let index_file = slot_file(root, &slot, "index.json");
        Ok(Cache {
            root: root.to_path_buf(),
            store,
            slot,
            index: Background::spawn(move || read_json(&index_file).unwrap_or_default()),
            last_keys: OnceLock::new(),
            fresh: Mutex::default(),
            distrusted: HashMap::new(),
            running: Mutex::default(),
            finished: Condvar::new(),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// blake3 of the canonical JSON of a key (serde_json sorts object keys).
    pub fn key_hash(key: &Value) -> String {
        // One reused buffer per thread: thousands of keys per build, and
        // blake3 is fastest fed whole rather than token by token.
        thread_local!(static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) });
        BUF.with_borrow_mut(|buf| {
            buf.clear();
            serde_json::to_writer(&mut *buf, key).expect("JSON values serialise");
            blake3::hash(buf).to_hex().to_string()
        })
    }

    /// A hit with the outputs recorded for a key hash, if every one is still
    /// usable; else a miss that holds the key until the step is recorded.
    pub fn lookup(&self, key_hash: &str, verify: bool) -> Lookup<'_> {
        loop {
            if let Some(outputs) = self.recorded(key_hash, verify) {
                return Lookup::Hit(outputs);
            }
            let mut running = self.running();
            if running.insert(key_hash.to_string()) {
                drop(running);
                // Recorded while this lookup was not holding the key?
                let miss = self.miss_of(key_hash);
                if let Some(outputs) = self.recorded(key_hash, verify) {
                    drop(miss);
                    return Lookup::Hit(outputs);
                }
                return Lookup::Miss(miss);
            }
            // Being produced right now: wait, then look again.
            while running.contains(key_hash) {
                running = self
                    .finished
                    .wait(running)
                    .unwrap_or_else(|e| e.into_inner());
            }
        }
    }

    /// A miss without a lookup, for a step that must run whatever is
    /// recorded (a download it reads was corrupt): waits while the key is
    /// being produced elsewhere in this process.
    pub fn claim(&self, key_hash: &str) -> Miss<'_> {
        let mut running = self.running();
        while !running.insert(key_hash.to_string()) {
            running = self
                .finished
                .wait(running)
                .unwrap_or_else(|e| e.into_inner());
        }
        drop(running);
        self.miss_of(key_hash)
    }

    /// The guard of a key hash already inserted into `running`.
    fn miss_of(&self, key_hash: &str) -> Miss<'_> {
        Miss {
            cache: self,
            key_hash: key_hash.to_string(),
        }
    }

    fn running(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The outputs recorded for a key hash, if every one is still usable.
    ///
    /// The last build saw every indexed blob in the store, and the store never
    /// removes one by itself, so hits are not stat'ed one by one (thousands on
    /// a rebuild). A blob deleted by hand surfaces as an error that names
    /// `--verify-cache`, which re-hashes every blob and rebuilds what is gone.
    fn recorded(&self, key_hash: &str, verify: bool) -> Option<Vec<Output>> {
        let outputs = match self.index.get().get(key_hash) {
            Some(outputs) => outputs.clone(),
            None => self.fresh().outputs.get(key_hash)?.clone(),
        };
        if !self.distrusted.is_empty()
            && outputs
                .iter()
                .any(|o| self.distrusted.contains_key(&o.sha256))
        {
            return None;
        }
        let intact = !verify
            || outputs
                .iter()
                .all(|o| self.store.verify(&o.sha256).unwrap_or(false));
        intact.then_some(outputs)
    }

    /// Blobs (sha256 → the published path that showed the damage) that were
    /// found damaged and dropped: every step recorded with one of them as an
    /// output runs again instead of being a hit.
    pub fn distrust(&mut self, blobs: HashMap<String, String>) {
        self.distrusted.extend(blobs);
    }

    /// The published path whose damage makes this key's recorded outputs
    /// untrusted, if that is why it missed (for saying why a step ran).
    pub fn damaged_output(&self, key_hash: &str) -> Option<&str> {
        if self.distrusted.is_empty() {
            return None;
        }
        self.index
            .get()
            .get(key_hash)?
            .iter()
            .find_map(|o| self.distrusted.get(&o.sha256))
            .map(String::as_str)
    }

    /// The key this step had the last time it ran, for explaining a re-run.
    pub fn last_key(&self, id: &str) -> Option<Value> {
        if let Some(key) = self.fresh().keys.get(id) {
            return Some(key.clone());
        }
        self.last_keys().get(id).cloned()
    }

    /// Saves this build's steps, given as `(id, key hash, outputs)`: the index
    /// when it changed, and the keys of the steps that ran. No fsync: the
    /// build syncs the cache file system once before it publishes, and a stale
    /// or torn file only costs re-running steps.
    pub fn save<'a>(
        &self,
        steps: impl IntoIterator<Item = (&'a str, &'a str, &'a [Output])>,
    ) -> Result<()> {
        let steps: Vec<(&str, &str, &[Output])> = steps.into_iter().collect();
        let index: HashMap<&str, &[Output]> = steps.iter().map(|&(_, h, o)| (h, o)).collect();
        let last = self.index.get();
        let same_index = index.len() == last.len()
            && index
                .iter()
                .all(|(k, v)| last.get(*k).is_some_and(|o| o.as_slice() == *v));
        if !same_index {
            let json = serde_json::to_vec(&index).context("serialising the step index")?;
            fsutil::atomic_write_batched(&self.file("index.json"), &json, 0o644)?;
        }
        let fresh = self.fresh();
        let mut lines = Vec::new();
        for &(id, _, _) in &steps {
            if let Some(key) = fresh.keys.get(id) {
                let line = KeyLine {
                    id: id.into(),
                    key: key.clone(),
                };
                serde_json::to_writer(&mut lines, &line).context("serialising a step key")?;
                lines.push(b'\n');
            }
        }
        drop(fresh);
        if lines.is_empty() {
            return Ok(());
        }
        let log = self.file("keys.jsonl");
        let mut file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .with_context(|| format!("opening {}", log.display()))?;
        file.write_all(&lines)
            .with_context(|| format!("appending to {}", log.display()))?;
        if file.metadata().map(|m| m.len()).unwrap_or(0) > KEYS_LOG_LIMIT {
            self.compact_keys(&steps)?;
        }
        Ok(())
    }

    /// Rewrites the keys log with the last key of each current step.
    fn compact_keys(&self, steps: &[(&str, &str, &[Output])]) -> Result<()> {
        let keys = read_keys(&self.file("keys.jsonl"));
        let mut lines = Vec::new();
        for &(id, _, _) in steps {
            if let Some(key) = keys.get(id) {
                let line = KeyLine {
                    id: id.into(),
                    key: key.clone(),
                };
                serde_json::to_writer(&mut lines, &line).context("serialising a step key")?;
                lines.push(b'\n');
            }
        }
        fsutil::atomic_write_batched(&self.file("keys.jsonl"), &lines, 0o644)
    }

    fn last_keys(&self) -> &HashMap<String, Value> {
        self.last_keys
            .get_or_init(|| read_keys(&self.file("keys.jsonl")))
    }

    fn fresh(&self) -> std::sync::MutexGuard<'_, Fresh> {
        self.fresh.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn file(&self, what: &str) -> PathBuf {
        slot_file(&self.root, &self.slot, what)
    }
}

/// The slot of an output directory: a digest of its path (the build passes
/// the path `super::out` resolved, so two spellings of one directory share
/// a slot).
fn slot_for(out: &Path) -> String {
    let out = std::path::absolute(out).unwrap_or_else(|_| out.to_path_buf());
    blake3::hash(out.as_os_str().as_encoded_bytes()).to_hex()[..16].to_string()
}

fn slot_file(root: &Path, slot: &str, what: &str) -> PathBuf {
    root.join("steps").join(format!("{slot}.{what}"))
}

/// A value computed on its own thread, waited for on first use.
struct Background<T> {
    running: Mutex<Option<std::thread::JoinHandle<T>>>,
    value: OnceLock<T>,
}

impl<T: Send + 'static> Background<T> {
    /// Starts `work` on its own thread; where no thread can be had, does it
    /// here (hence `Clone`: spawning consumes the closure it is given).
    fn spawn(work: impl FnOnce() -> T + Clone + Send + 'static) -> Background<T> {
        let value = OnceLock::new();
        let spawned = std::thread::Builder::new()
            .name("background".into())
            .spawn(work.clone());
        let running = match spawned {
            Ok(handle) => Some(handle),
            Err(_) => {
                let _ = value.set(work());
                None
            }
        };
        Background {
            running: Mutex::new(running),
            value,
        }
    }

    fn get(&self) -> &T {
        self.value.get_or_init(|| {
            let running = self
                .running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            let handle = running.expect("the value is taken only once");
            // A panic on the thread is a bug: surface it here, not as a miss.
            handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Background<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.value.get() {
            Some(value) => value.fmt(f),
            None => f.write_str("<loading>"),
        }
    }
}

/// The keys log as id → last key; unreadable lines (a torn append) are skipped.
fn read_keys(path: &Path) -> HashMap<String, Value> {
    let Ok(bytes) = fs::read(path) else {
        return HashMap::new();
    };
    bytes
        .split(|&b| b == b'\n')
        .filter_map(|line| serde_json::from_slice::<KeyLine>(line).ok())
        .map(|l| (l.id.into_owned(), l.key))
        .collect()
}

/// A JSON file's value, or `None` when it is missing or unreadable.
fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Option<T> {
    let bytes = fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::step::Visibility;
    use serde_json::json;

    fn ran(cache: &Cache, id: &str, body: &[u8]) -> (String, Vec<Output>) {
        let sha256 = cache.store.put_bytes(body).unwrap();
        let outputs = vec![Output {
            path: format!("http/{id}"),
            sha256,
            size: body.len() as u64,
            visibility: Visibility::Public,
        }];
        let key = json!({"body": String::from_utf8_lossy(body)});
        let hash = Cache::key_hash(&key);
        cache.claim(&hash).record(Record {
            id: id.into(),
            key,
            outputs: outputs.clone(),
        });
        (hash, outputs)
    }

    /// A cache in a fresh directory after a build of one step `x`.
    fn saved_one_step() -> (tempfile::TempDir, PathBuf, Cache, String, Vec<Output>) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("dist");
        let cache = Cache::open_for(dir.path(), &out).unwrap();
        let (hash, outputs) = ran(&cache, "x", b"one");
        cache
            .save([("x", hash.as_str(), outputs.as_slice())])
            .unwrap();
        (dir, out, cache, hash, outputs)
    }

    #[test]
    fn a_saved_build_is_found_by_the_next_one_of_the_same_output() {
        let (dir, out, _, hash, outputs) = saved_one_step();

        let next = Cache::open_for(dir.path(), &out).unwrap();
        assert_eq!(next.lookup(&hash, false).hit(), Some(outputs.clone()));
        assert_eq!(next.last_key("x"), Some(json!({"body": "one"})));
        assert_eq!(next.lookup("0000", false).hit(), None);
        let other = Cache::open_for(dir.path(), &dir.path().join("dist2")).unwrap();
        assert_eq!(
            other.lookup(&hash, false).hit(),
            None,
            "another output, another slot"
        );
    }

    #[test]
    fn a_background_value_is_computed_once_and_shared_by_every_reader() {
        let runs = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = runs.clone();
        let value = Background::spawn(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            vec![1, 2, 3]
        });
        std::thread::scope(|scope| {
            for _ in 0..8 {
                scope.spawn(|| assert_eq!(value.get(), &vec![1, 2, 3]));
            }
        });
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    #[should_panic(expected = "index reader broke")]
    fn a_panic_while_loading_in_the_background_reaches_the_reader() {
        let value: Background<u8> = Background::spawn(|| panic!("index reader broke"));
        value.get();
    }

    #[test]
    fn a_damaged_index_only_costs_a_rerun() {
        let (dir, out, cache, hash, _) = saved_one_step();
        fs::write(cache.file("index.json"), b"{not json").unwrap();
        let damaged = Cache::open_for(dir.path(), &out).unwrap();
        assert_eq!(damaged.lookup(&hash, false).hit(), None);
        let (again, outputs) = ran(&damaged, "x", b"one");
        assert_eq!(damaged.lookup(&again, false).hit(), Some(outputs));
    }

    #[test]
    fn a_miss_holds_its_key_until_recorded_and_a_second_lookup_then_hits() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::open(dir.path()).unwrap();
        let Lookup::Miss(miss) = cache.lookup("k", false) else {
            panic!("an empty cache hits nothing");
        };
        let sha256 = cache.store.put_bytes(b"x").unwrap();
        let outputs = vec![Output {
            path: "http/x".into(),
            sha256,
            size: 1,
            visibility: Visibility::Public,
        }];
        std::thread::scope(|scope| {
            let waiter = scope.spawn(|| cache.lookup("k", false).hit());
            // The waiter cannot finish while the key is held.
            std::thread::sleep(std::time::Duration::from_millis(50));
            assert!(!waiter.is_finished(), "a second lookup waits for the miss");
            miss.record(Record {
                id: "x".into(),
                key: json!("k"),
                outputs: outputs.clone(),
            });
            assert_eq!(waiter.join().unwrap(), Some(outputs.clone()));
        });
        // A miss dropped unrecorded (its step failed) lets the next one run.
        let failed = cache.lookup("other", false);
        assert!(matches!(failed, Lookup::Miss(_)));
        drop(failed);
        assert!(matches!(cache.lookup("other", false), Lookup::Miss(_)));
    }

    #[test]
    fn verify_rechecks_indexed_blobs() {
        let (dir, out, _, hash, outputs) = saved_one_step();
        let next = Cache::open_for(dir.path(), &out).unwrap();
        fs::remove_file(next.store.path_of(&outputs[0].sha256)).unwrap();
        assert!(
            next.lookup(&hash, false).hit().is_some(),
            "trusted without a stat"
        );
        assert_eq!(
            next.lookup(&hash, true).hit(),
            None,
            "a lost blob is a miss"
        );
    }

    #[test]
    fn compaction_keeps_the_last_key_of_current_steps_only() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("dist");
        let cache = Cache::open_for(dir.path(), &out).unwrap();
        let (hx, ox) = ran(&cache, "x", b"one");
        let (hy, oy) = ran(&cache, "y", b"two");
        let both = [
            ("x", hx.as_str(), ox.as_slice()),
            ("y", hy.as_str(), oy.as_slice()),
        ];
        cache.save(both).unwrap();
        let next = Cache::open_for(dir.path(), &out).unwrap();
        let (hx2, ox2) = ran(&next, "x", b"one, changed");
        let only_x = [("x", hx2.as_str(), ox2.as_slice())];
        next.save(only_x).unwrap();
        let log = next.file("keys.jsonl");
        assert_eq!(
            fs::read_to_string(&log).unwrap().lines().count(),
            3,
            "appended"
        );
        next.compact_keys(&only_x).unwrap();
        let last = Cache::open_for(dir.path(), &out).unwrap();
        assert_eq!(last.last_key("x"), Some(json!({"body": "one, changed"})));
        assert!(last.last_key("y").is_none(), "y is no longer a step");
        assert_eq!(fs::read_to_string(&log).unwrap().lines().count(), 1);
    }
}
