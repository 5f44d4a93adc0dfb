//! The build engine: runs a graph of steps against the step cache, then
//! publishes their outputs as one tree, atomically, with its manifest. It
//! knows steps, keys, blobs and trees, and nothing of what they hold: which
//! steps a build has (PXE, Flatcar, the site) is the recipe's business
//! (`crate::recipe`), which drives a [`Session`] through its phases.
//!
//! A session, in order: check the output → (the caller loads what must be
//! whole before anything is created) → lock → check the published tree (in
//! the background, while the caller plans) → open the cache → (the caller
//! plans) → repair what was damaged → execute → collect published outputs →
//! manifest → (unchanged? done) → stage and swap → record what was published.
//!
//! The engine imports only leaf utilities (`fsutil`, `digest`, `manifest`,
//! `layout`, `error`, `log`), never a module that plans steps.
pub(crate) mod cache;
pub(crate) mod executor;
pub(crate) mod explain;
pub(crate) mod fingerprint;
pub(crate) mod key;
pub(crate) mod out;
pub(crate) mod published;
pub(crate) mod stage;
pub(crate) mod step;
pub(crate) mod store;

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::manifest::{AccessEntry, FileEntry, Manifest, FORMAT};
use executor::{ExecOptions, Outcome};
use step::{Output, Step, Visibility};

pub struct BuildReport {
    pub outcomes: Vec<Outcome>,
    pub manifest: Manifest,
    /// False when the output already held exactly this build.
    pub replaced: bool,
}

impl BuildReport {
    pub fn ran(&self) -> impl Iterator<Item = (&str, &str)> {
        self.outcomes
            .iter()
            .filter_map(|o| o.ran.as_deref().map(|why| (o.id.as_str(), why)))
    }
}

/// One build of one output directory, phase by phase (see the module header).
pub struct Session {
    phases: Phases,
    cache_root: PathBuf,
    target: out::Target,
    record_path: PathBuf,
    record: Option<published::Record>,
    /// The output's build lock, held until the session ends.
    lock: Option<File>,
    dist_check: Option<Background<published::Check>>,
    /// What the check of the published tree found (after [`Session::execute`]).
    check: Option<published::Check>,
    damage: Damage,
}

impl Session {
    /// Before anything is created or moved: resolves `out` and refuses an
    /// output that is not pxebuild's to replace or that is, holds or lies in
    /// one of `guarded`.
    pub fn start(cache_root: &Path, out: &Path, guarded: &[out::Guarded]) -> Result<Session> {
        let phases = Phases::start();
        let mut target = out::Target::resolve(guarded, out)?;
        let record_path = cache::Cache::published_path(cache_root, &target.path);
        let record = published::Record::load(&record_path);
        target.check(record.as_ref().map(|r| r.manifest))?;
        stage::check_siblings(&target.path)?;
        Ok(Session {
            phases,
            cache_root: cache_root.to_path_buf(),
            target,
            record_path,
            record,
            lock: None,
            dist_check: None,
            check: None,
            damage: Damage::default(),
        })
    }

    /// Takes the output's build lock, then checks the published tree in the
    /// background (one stat per published file) while the caller plans.
    pub fn lock(&mut self) -> Result<()> {
        self.lock = Some(lock_out(&self.target.path)?);
        if !self.target.unchanged() {
            // Another build may have published while this one waited.
            self.record = published::Record::load(&self.record_path);
            self.target
                .check(self.record.as_ref().map(|r| r.manifest))?;
        }
        self.dist_check = match (self.target.found(), self.record.take()) {
            (out::Found::Tree { .. }, Some(record)) => {
                let path = self.target.path.clone();
                Some(Background::spawn(move || published::check(&path, record)))
            }
            _ => None,
        };
        Ok(())
    }

    /// The step cache, remembering builds of this output.
    pub fn open_cache(&self) -> Result<cache::Cache> {
        cache::Cache::open_for(&self.cache_root, &self.target.path)
    }

    /// Ends a phase of the `-v` timing summary.
    pub fn mark(&mut self, phase: &'static str) {
        self.phases.mark(phase);
    }

    /// Repairs what was damaged in the published tree, runs `steps` and saves
    /// the cache (durably, when anything ran).
    pub fn execute(
        &mut self,
        steps: &[Box<dyn Step>],
        cache: &mut cache::Cache,
        exec: &ExecOptions,
    ) -> Result<Vec<Outcome>> {
        let check = self.dist_check.take().map(Background::join);
        if let Some(check) = check.as_ref().filter(|c| !c.changed.is_empty()) {
            let damage = assess(check, &cache.store, &self.target)?;
            cache.distrust(damage.dropped.clone());
            self.damage = damage;
            self.phases.mark("verify");
        }
        self.check = check;
        let outcomes = executor::execute(steps, cache, exec)?;
        cache.save(
            outcomes
                .iter()
                .map(|o| (o.id.as_str(), o.key_hash.as_str(), o.outputs.as_slice())),
        )?;
        self.phases.mark("execute");
        // Cache entries were written without per-file fsyncs: make them durable
        // in one go before anything points at them from the output.
        if outcomes.iter().any(|o| o.ran.is_some()) {
            crate::fsutil::syncfs(cache.root())?;
            self.phases.mark("sync");
        }
        Ok(outcomes)
    }

    /// Writes the manifest of `outcomes` (`describe` adds what the caller
    /// records beside the files) and publishes the tree unless the output
    /// already holds exactly this build.
    pub fn publish(
        mut self,
        outcomes: Vec<Outcome>,
        cache: &cache::Cache,
        verify_cache: bool,
        describe: impl FnOnce(&mut Manifest),
    ) -> Result<BuildReport> {
        let published = published_outputs(&outcomes)?;
        let mut manifest = manifest_for(&outcomes, &published);
        describe(&mut manifest);
        // The tree is this build when its manifest is these bytes, it is the
        // tree recorded at its publish, and no file of it changed since. (With
        // --verify-cache a corrupt blob was replaced by a new inode, which the
        // output does not link yet.)
        let intact = self.check.as_ref().is_some_and(|c| c.current) && !self.damage.republish;
        let target = &self.target;
        let replaced = verify_cache
            || !intact
            || std::fs::read(target.path.join(crate::manifest::FILE_NAME))
                .map_or(true, |current| current != manifest.to_json().as_bytes());
        self.phases.mark("manifest");
        if replaced {
            if verify_cache {
                // The copies node-bound files link to are checked like the blobs.
                for output in published.iter().filter(|o| stage::is_node_private(o)) {
                    cache.store.verify_node_copies(&output.sha256)?;
                }
            }
            stage::publish(&target.path, &manifest, &published, &cache.store)?;
            self.phases.mark("publish");
        }
        if replaced || self.damage.rerecord {
            // The tree is in place whatever happens here; a record that cannot
            // be written only costs the next build a publish.
            let saved =
                published::record(&target.path, &manifest).and_then(|r| r.save(&self.record_path));
            if let Err(err) = saved {
                crate::warn!(
                    "recording what was published in {}: {err:#}",
                    target.given.display()
                );
            }
            self.phases.mark("record");
        }
        crate::verbose!("build phases: {}", self.phases.summary());
        Ok(BuildReport {
            outcomes,
            manifest,
            replaced,
        })
    }
}

/// Runs `steps` against the cache under `cache_root` (its slot for uses
/// without an output directory), publishing nothing: for work that wants the
/// steps' outputs in the store, not a tree.
pub fn run(steps: &[Box<dyn Step>], cache_root: &Path, exec: &ExecOptions) -> Result<Vec<Outcome>> {
    let cache = cache::Cache::open(cache_root)?;
    executor::execute(steps, &cache, exec)
}

/// What to do about published files that changed since their publish.
#[derive(Debug, Default)]
struct Damage {
    /// Blobs that failed verification and were dropped from the store
    /// (sha256 → the path that showed it): the steps that made them run again.
    dropped: HashMap<String, String>,
    /// A file must be published again (edited, replaced or gone).
    republish: bool,
    /// Only the record is stale (times changed, content verified).
    rerecord: bool,
}

/// Verifies the blob behind every published file that changed: dist/ files
/// are hard links into the store, so an edit in place edits the cache too.
/// A blob that no longer matches its digest is dropped, so the step that
/// made it runs again and the file is rebuilt, not published again as edited.
/// A blob missing from the store is lost, not damaged: publishing then fails
/// with the usual hint to `--verify-cache`.
fn assess(check: &published::Check, store: &store::Store, target: &out::Target) -> Result<Damage> {
    use rayon::prelude::*;
    let record = &check.record;
    let mut blobs: Vec<&str> = check
        .changed
        .iter()
        .map(|c| record.entry(c.index).sha256)
        .collect();
    blobs.sort_unstable();
    blobs.dedup();
    // sha256 → (it was in the store, it still matches its digest).
    let verified: HashMap<&str, (bool, bool)> = blobs
        .par_iter()
        .map(|sha| {
            let existed = store.path_of(sha).exists();
            Ok((*sha, (existed, store.verify(sha)?)))
        })
        .collect::<Result<_>>()?;
    let mut damage = Damage::default();
    // A manifest.json that is not the one this cache published means another
    // build (another cache, e.g. PXEBUILD_CACHE elsewhere) published the tree
    // since: its files are that build's, not edits of these. They are
    // published again without a warning per file; only damage to this
    // cache's own blobs is still reported.
    let foreign = !check.current;
    let mut taken_over = 0usize;
    for changed in &check.changed {
        let entry = record.entry(changed.index);
        let shown = target.shown(entry.path);
        let (existed, intact) = verified[entry.sha256];
        if existed && !intact {
            crate::warn!(
                "{shown} changed after it was published, and the cache's copy with it \
                 (a hard link): that cache entry is dropped and the file built again"
            );
            damage
                .dropped
                .entry(entry.sha256.to_string())
                .or_insert_with(|| entry.path.to_string());
            damage.republish = true;
            continue;
        }
        if foreign {
            taken_over += 1;
            damage.republish = true;
            continue;
        }
        if !existed {
            // Lost, not damaged: publishing fails naming `--verify-cache`
            // (as for any blob deleted from the store by hand).
            crate::verbose!("{shown}: its blob is missing from the cache");
            damage.republish = true;
            continue;
        }
        // The file is still the store's blob, whose content was just verified:
        // only its times changed (e.g. another output linked the same blob).
        let still_blob = changed.now.is_some_and(|now| {
            store.file_id(entry.sha256) == Some((now.dev, now.ino)) && now.size == entry.stat.size
        });
        if still_blob {
            crate::verbose!("{shown}: times changed since it was published, content verified");
            damage.rerecord = true;
        } else {
            let what = if changed.now.is_some() {
                "was replaced after it was published"
            } else {
                "is missing"
            };
            crate::warn!("{shown} {what}: publishing it again");
            // A node-bound file links to a copy of its blob: an edit in place
            // went there, not into the blob just verified. A fresh copy is made.
            store.drop_node_copies(entry.sha256)?;
            damage.republish = true;
        }
    }
    if taken_over > 0 {
        crate::verbose!(
            "{}: another build (with another cache) published there since this cache's \
             last build; publishing this build's tree ({taken_over} files differ)",
            target.shown("")
        );
    }
    Ok(damage)
}

/// Wall time per build phase, for `-v` (where a slow build spends its time).
struct Phases {
    last: std::time::Instant,
    done: Vec<(&'static str, std::time::Duration)>,
}

impl Phases {
    fn start() -> Phases {
        Phases {
            last: std::time::Instant::now(),
            done: Vec::new(),
        }
    }

    fn mark(&mut self, phase: &'static str) {
        let now = std::time::Instant::now();
        self.done.push((phase, now - self.last));
        self.last = now;
    }

    fn summary(&self) -> String {
        let parts: Vec<String> = self
            .done
            .iter()
            .map(|(phase, took)| format!("{phase} {:.1} ms", took.as_secs_f64() * 1e3))
            .collect();
        parts.join(", ")
    }
}

/// Every output destined for dist/, refusing two steps that claim one path.
fn published_outputs(outcomes: &[Outcome]) -> Result<Vec<&Output>> {
    let mut by_path: BTreeMap<&str, (&str, &Output)> = BTreeMap::new();
    for outcome in outcomes {
        for output in outcome.outputs.iter().filter(|o| o.is_published()) {
            if let Some((other, _)) = by_path.insert(&output.path, (&outcome.id, output)) {
                bail!(
                    "steps {other} and {} both produce {}",
                    outcome.id,
                    output.path
                );
            }
        }
    }
    Ok(by_path.into_values().map(|(_, o)| o).collect())
}

/// The manifest of the published outputs; `nodes` and `flatcar` are the
/// caller's to fill in.
fn manifest_for(outcomes: &[Outcome], published: &[&Output]) -> Manifest {
    let mut inputs = blake3::Hasher::new();
    let mut keyed: Vec<(&str, &str)> = outcomes
        .iter()
        .map(|o| (o.id.as_str(), o.key_hash.as_str()))
        .collect();
    keyed.sort();
    for (id, key) in keyed {
        inputs
            .update(id.as_bytes())
            .update(b"\0")
            .update(key.as_bytes())
            .update(b"\n");
    }
    let files = published
        .iter()
        .map(|o| FileEntry {
            path: o.path.clone(),
            size: o.size,
            sha256: o.sha256.clone(),
        })
        .collect();
    let access = published
        .iter()
        .filter_map(|o| match &o.visibility {
            Visibility::Node { node, ip } => Some(AccessEntry {
                path: o.path.clone(),
                node: node.clone(),
                ip: ip.clone(),
            }),
            _ => None,
        })
        .collect();
    Manifest {
        format: FORMAT,
        inputs: inputs.finalize().to_hex().to_string(),
        files,
        nodes: Vec::new(),
        access,
        flatcar: None,
        images: Vec::new(),
    }
}

/// Serialises builds of one output directory (`.NAME.lock` beside it).
fn lock_out(out: &Path) -> Result<File> {
    let path = out::sibling(out, "lock");
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    // Never truncating, never through a symlink: whatever may already sit
    // at that path stays as it is.
    crate::fsutil::lock_file(&path, || {
        crate::info!("waiting for another build of {} to finish", out.display())
    })
    .context("taking the build lock")
}

/// A value computed on its own thread (or here, where no thread can be had).
struct Background<T>(std::result::Result<std::thread::JoinHandle<T>, T>);

impl<T: Send + 'static> Background<T> {
    fn spawn(work: impl FnOnce() -> T + Send + 'static) -> Background<T> {
        let work = std::sync::Mutex::new(Some(work));
        let shared = std::sync::Arc::new(work);
        let theirs = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("dist-check".into())
            .spawn(move || {
                let work = theirs.lock().unwrap_or_else(|e| e.into_inner()).take();
                work.expect("taken once")()
            });
        Background(spawned.map_err(|_| {
            let work = shared.lock().unwrap_or_else(|e| e.into_inner()).take();
            work.expect("not taken by a thread that never started")()
        }))
    }

    fn join(self) -> T {
        match self.0 {
            Ok(handle) => handle
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic)),
            Err(value) => value,
        }
    }
}
