//! The build engine: plan steps from the site, execute them against the step
//! cache, then publish dist/ atomically with its manifest.
//!
//! The recipe, in order: lock → plan → execute → collect published outputs →
//! manifest → (unchanged? done) → stage and swap.
pub mod cache;
pub mod executor;
pub mod explain;
pub mod plan;
pub mod stage;
pub mod step;
pub mod store;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::manifest::{AccessEntry, FileEntry, Manifest, NodeEntry, FORMAT};
use crate::site::Site;
use executor::{ExecOptions, Outcome};
use step::{Output, Visibility};

pub use plan::PlanEnv;

pub struct BuildOptions {
    pub out: PathBuf,
    pub jobs: usize,
    pub offline: bool,
    pub strict: bool,
    pub verify_cache: bool,
    /// Work out why each step ran.
    pub explain: bool,
}

pub struct BuildReport {
    pub outcomes: Vec<Outcome>,
    pub manifest: Manifest,
    /// False when dist/ already held exactly this build.
    pub replaced: bool,
}

impl BuildReport {
    pub fn ran(&self) -> impl Iterator<Item = (&str, &str)> {
        self.outcomes
            .iter()
            .filter_map(|o| o.ran.as_deref().map(|why| (o.id.as_str(), why)))
    }
}

/// Builds `site` into `opts.out`.
pub fn build(site: &Site, opts: &BuildOptions) -> Result<BuildReport> {
    let _lock = lock_out(&opts.out)?;
    let mut phases = Phases::start();
    // `current` becomes a pinned release before anything keys on the version.
    let pinned = crate::fetch::current::pin(site, Some(&opts.out), opts.offline)?;
    let site = &*pinned.site;
    let cache = cache::Cache::open_for(&site.cache_dir(), &opts.out)?;
    let env = PlanEnv {
        site,
        out: &opts.out,
        offline: opts.offline,
        strict: opts.strict,
    };
    let steps = plan::plan(&env)?;
    phases.mark("plan");
    let exec = ExecOptions {
        jobs: opts.jobs,
        verify_cache: opts.verify_cache,
        explain: opts.explain,
    };
    let outcomes = executor::execute(&steps, &cache, &exec)?;
    cache.save(
        outcomes
            .iter()
            .map(|o| (o.id.as_str(), o.key_hash.as_str(), o.outputs.as_slice())),
    )?;
    phases.mark("execute");
    // Cache entries were written without per-file fsyncs: make them durable
    // in one go before anything points at them from dist/.
    if outcomes.iter().any(|o| o.ran.is_some()) {
        crate::fsutil::syncfs(cache.root())?;
        phases.mark("sync");
    }
    let published = published_outputs(&outcomes)?;
    let mut manifest = manifest_for(site, &outcomes, &published);
    manifest.flatcar = Some(pinned.record);
    // With --verify-cache a corrupt blob was replaced by a new inode; dist/ still
    // hard-links the old one, so republish instead of trusting the sizes.
    let replaced = opts.verify_cache || !stage::up_to_date(&opts.out, &manifest);
    phases.mark("manifest");
    if replaced {
        stage::publish(&opts.out, &manifest, &published, &cache.store)?;
        phases.mark("publish");
    }
    crate::verbose!("build phases: {}", phases.summary());
    Ok(BuildReport {
        outcomes,
        manifest,
        replaced,
    })
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

fn manifest_for(site: &Site, outcomes: &[Outcome], published: &[&Output]) -> Manifest {
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
    let nodes = site
        .file
        .nodes
        .iter()
        .map(|n| NodeEntry {
            name: n.name.clone(),
            mac: n.mac.to_ascii_lowercase(),
            ip: n.ip.clone(),
            role: n.role.clone(),
        })
        .collect();
    Manifest {
        format: FORMAT,
        inputs: inputs.finalize().to_hex().to_string(),
        files,
        nodes,
        access,
        flatcar: None,
    }
}

/// Serialises builds of one output directory (`.dist.lock` beside it).
fn lock_out(out: &Path) -> Result<File> {
    use rustix::fs::{flock, FlockOperation};
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let path = out.with_file_name(format!(".{name}.lock"));
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    if flock(&file, FlockOperation::NonBlockingLockExclusive).is_err() {
        crate::info!("waiting for another build of {} to finish", out.display());
        flock(&file, FlockOperation::LockExclusive)
            .with_context(|| format!("locking {}", path.display()))?;
    }
    Ok(file)
}
