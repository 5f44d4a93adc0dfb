//! Puts a finished build in place: a staging tree beside dist/ made of hard
//! links into the store, then an atomic swap. Whatever moment the process dies
//! at, dist/ is either the complete old tree or the complete new one.
//!
//! The tree swapped out is kept as `.dist.spare` and becomes the next build's
//! staging tree: only the files that differ are unlinked and linked again,
//! and directories are reused. (Creating and deleting a directory per node on
//! every build cost more than everything else a one-node rebuild does.) A
//! spare is trusted file by file only when it is the very store blob (same
//! inode); anything else in it is removed.
//!
//! Node-bound HTTP files (the Ignition configs, which carry CA keys and the
//! bootstrap token) link to a copy of their blob that only its owner and the
//! group of the directory holding the output can read (`store::NODE_MODE`),
//! never to the world-readable blob a public file may share.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rayon::prelude::*;
use rustix::fs::{renameat_with, RenameFlags, CWD};

use super::out::{self, sibling, Found};
use super::step::{Output, Visibility};
use super::store::{Store, NODE_MODE};
use crate::error::BadInput;
use crate::manifest::{self, Manifest};
use crate::{fsutil, layout};

/// Builds the staging tree for `manifest` and swaps it in at `out`.
///
/// What it will delete or reuse beside `out` (a spare, staging trees left
/// by killed builds) is checked first: when something that is not
/// pxebuild's sits at one of those paths, nothing is touched.
pub(crate) fn publish(
    out: &Path,
    manifest: &Manifest,
    outputs: &[&Output],
    store: &Store,
) -> Result<()> {
    let group = node_group(out)?;
    let leftovers = leftovers(out)?;
    let spare = sibling(out, "spare");
    let claim = match out::inspect(&spare, out::Probe::Manifest)? {
        Found::Absent => false,
        Found::EmptyDir | Found::Tree { .. } => true,
        Found::Foreign(why) => return Err(refuse_sibling(&spare, &why)),
    };
    for dir in leftovers {
        fs::remove_dir_all(&dir).with_context(|| format!("removing stale {}", dir.display()))?;
    }
    let staging = sibling(out, &format!("staging-{}", std::process::id()));
    // Claim the spare first: a build killed while reconciling leaves a
    // `staging-*` tree, which the next build deletes instead of trusting.
    if claim {
        fs::rename(&spare, &staging)
            .with_context(|| format!("renaming {} to {}", spare.display(), staging.display()))?;
    }
    let result = fill(&staging, manifest, outputs, store, group).and_then(|()| swap(&staging, out));
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result
}

/// Refuses before a build starts when something that is not pxebuild's sits
/// where it keeps its spare tree or leaves staging trees (a quick look: the
/// spare's manifest is read when it is claimed).
pub(crate) fn check_siblings(out: &Path) -> Result<()> {
    leftovers(out)?;
    let spare = sibling(out, "spare");
    match out::inspect(&spare, out::Probe::Stat)? {
        Found::Foreign(why) => Err(refuse_sibling(&spare, &why)),
        _ => Ok(()),
    }
}

fn refuse_sibling(path: &Path, why: &str) -> anyhow::Error {
    BadInput::new(format!(
        "{} {why}, but that path is where a build keeps the tree it replaced (and empties \
         it to build the next tree in): move it away, then build again",
        path.display()
    ))
}

/// Whether `output` is published as a node copy (see the module comment).
/// Node-bound TFTP configs stay world-readable: they hold no key, and TFTP
/// servers (tftpd-hpa, dnsmasq) read them as their own unprivileged user.
pub(crate) fn is_node_private(output: &Output) -> bool {
    matches!(output.visibility, Visibility::Node { .. })
        && output.path.starts_with(&format!("{}/", layout::HTTP))
}

/// The group node-bound files get: that of the directory holding `out`.
/// Warns when that directory lets other users in, since dist/ itself is
/// world-traversable (its public files are meant for any server user).
fn node_group(out: &Path) -> Result<u32> {
    use std::os::unix::fs::MetadataExt;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let meta = fs::metadata(parent).with_context(|| format!("reading {}", parent.display()))?;
    let mode = meta.mode() & 0o7777;
    if mode & 0o005 != 0 {
        crate::warn!(
            "{} (mode {mode:04o}) lets other users reach {}: its node-bound files are {:04o}, \
             group {}, but keep the directory holding it closed to others \
             (`chmod o-rwx {}`; see docs/serve.md)",
            parent.display(),
            out.display(),
            NODE_MODE,
            meta.gid(),
            parent.display()
        );
    }
    Ok(meta.gid())
}

fn fill(
    staging: &Path,
    manifest: &Manifest,
    outputs: &[&Output],
    store: &Store,
    group: u32,
) -> Result<()> {
    fs::create_dir_all(staging).with_context(|| format!("creating {}", staging.display()))?;
    let mut wanted: BTreeMap<&str, &Output> = BTreeMap::new();
    for output in outputs {
        check_dist_path(&output.path)?;
        wanted.insert(&output.path, output);
    }
    // The node copies first, so the spare's links to them are recognised.
    let mut node_ids: HashMap<&str, Option<(u64, u64)>> = HashMap::new();
    for output in wanted.values().filter(|o| is_node_private(o)) {
        if !node_ids.contains_key(output.sha256.as_str()) {
            store.node_copy(&output.sha256, group)?;
            node_ids.insert(&output.sha256, store.node_file_id(&output.sha256, group));
        }
    }
    let kept = prune(staging, &wanted, store, &node_ids)?;
    let missing: Vec<(&str, &Output)> = wanted
        .into_iter()
        .filter(|(p, _)| !kept.contains(*p))
        .collect();
    // Directories first (sorted, so parents come first), then the links,
    // spread over the cores: a first publish of a large site is thousands of
    // links in a thousand directories, and ext4 links in different
    // directories in parallel.
    let dirs: BTreeSet<PathBuf> = missing
        .iter()
        .filter_map(|(p, _)| Path::new(p).parent().map(|d| staging.join(d)))
        .collect();
    for dir in &dirs {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    missing.par_iter().try_for_each(|(path, output)| {
        let blob = if is_node_private(output) {
            store.node_path_of(&output.sha256, group)
        } else {
            store.path_of(&output.sha256)
        };
        fsutil::hardlink_or_copy(&blob, &staging.join(path)).with_context(|| {
            let lost = if blob.exists() {
                ""
            } else {
                super::store::LOST_HINT
            };
            format!("placing {path}{lost}")
        })?;
        if is_node_private(output) {
            // A copy across file systems (no hard link possible) gets the
            // mode but not the group: give it the group as well.
            use std::os::unix::fs::MetadataExt;
            let placed = staging.join(path);
            let meta =
                fs::metadata(&placed).with_context(|| format!("reading {}", placed.display()))?;
            if meta.gid() != group {
                std::os::unix::fs::chown(&placed, None, Some(group))
                    .with_context(|| format!("giving {} the group {group}", placed.display()))?;
            }
        }
        Ok::<(), anyhow::Error>(())
    })?;
    let json = manifest.to_json();
    fsutil::atomic_write(&staging.join(manifest::FILE_NAME), json.as_bytes(), 0o644)?;
    // One syncfs flushes every new directory entry of the tree before the swap
    // makes it visible (cheaper than an fsync per directory on large sites).
    let dir = fs::File::open(staging).with_context(|| format!("opening {}", staging.display()))?;
    rustix::fs::syncfs(&dir).with_context(|| format!("syncing {}", staging.display()))
}

/// Empties a reused staging tree of everything the new build does not want
/// exactly: files that are not the wanted blob (compared by inode), other
/// kinds of entries, the old manifest, and directories no wanted path needs.
/// Returns the wanted paths already in place.
fn prune<'a>(
    staging: &Path,
    wanted: &BTreeMap<&'a str, &Output>,
    store: &Store,
    node_ids: &HashMap<&str, Option<(u64, u64)>>,
) -> Result<BTreeSet<&'a str>> {
    let dirs: BTreeSet<&str> = wanted
        .keys()
        .flat_map(|p| p.match_indices('/').map(move |(i, _)| &p[..i]))
        .collect();
    let mut blob_ids: HashMap<&str, Option<(u64, u64)>> = HashMap::new();
    let mut kept = BTreeSet::new();
    // Children before their directory, so emptied directories can go too.
    for entry in walkdir::WalkDir::new(staging)
        .min_depth(1)
        .contents_first(true)
    {
        let entry = entry.with_context(|| format!("reading {}", staging.display()))?;
        let rel = entry
            .path()
            .strip_prefix(staging)
            .expect("walkdir stays below its root")
            .to_string_lossy()
            .into_owned();
        let meta = entry
            .metadata()
            .with_context(|| format!("reading {}", entry.path().display()))?;
        if meta.is_dir() {
            if !dirs.contains(rel.as_str()) {
                fs::remove_dir_all(entry.path())
                    .with_context(|| format!("removing {}", entry.path().display()))?;
            }
            continue;
        }
        let same_blob = wanted
            .get_key_value(rel.as_str())
            .and_then(|(path, output)| {
                let id = if is_node_private(output) {
                    node_ids.get(output.sha256.as_str()).copied().flatten()
                } else {
                    *blob_ids
                        .entry(&output.sha256)
                        .or_insert_with(|| store.file_id(&output.sha256))
                };
                (meta.is_file() && id == Some((meta.dev(), meta.ino()))).then_some(*path)
            });
        match same_blob {
            Some(path) => {
                kept.insert(path);
            }
            None => fs::remove_file(entry.path())
                .with_context(|| format!("removing {}", entry.path().display()))?,
        }
    }
    Ok(kept)
}

fn check_dist_path(path: &str) -> Result<()> {
    let top_ok = path.starts_with(&format!("{}/", layout::HTTP))
        || path.starts_with(&format!("{}/", layout::TFTP));
    let clean = !path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..");
    if !top_ok || !clean {
        bail!("internal error: output path {path:?} is not a clean http/ or tftp/ path");
    }
    Ok(())
}

/// Exchanges staging and out atomically (renameat2 RENAME_EXCHANGE); the
/// previous tree is kept as the spare for the next build. Without an existing
/// out, a rename that never replaces anything suffices.
fn swap(staging: &Path, out: &Path) -> Result<()> {
    if fs::symlink_metadata(out).is_ok() {
        renameat_with(CWD, staging, CWD, out, RenameFlags::EXCHANGE)
            .with_context(|| format!("swapping {} into {}", staging.display(), out.display()))?;
        fsync_parent(out)?;
        // `staging` now holds the previous tree; open files in it stay readable
        // for a server that is still sending them, and it is only changed by
        // the next build.
        retire(staging, out)
    } else {
        renameat_with(CWD, staging, CWD, out, RenameFlags::NOREPLACE)
            .with_context(|| format!("renaming {} to {}", staging.display(), out.display()))?;
        fsync_parent(out)
    }
}

/// Keeps the tree swapped out of `out` (now at `old`) as the spare. The build
/// checked it was pxebuild's or empty before it started; an empty directory
/// is removed, and anything else is left where it is, with a word.
fn retire(old: &Path, out: &Path) -> Result<()> {
    let spare = sibling(out, "spare");
    match out::inspect(old, out::Probe::Stat)? {
        Found::Tree { .. } => {
            // Never onto something at the spare's path: that is not ours.
            if let Err(err) = renameat_with(CWD, old, CWD, &spare, RenameFlags::NOREPLACE) {
                crate::verbose!("keeping the previous tree as {}: {err}", spare.display());
                fs::remove_dir_all(old)
                    .with_context(|| format!("removing previous tree {}", old.display()))?;
            }
        }
        Found::EmptyDir => {
            fs::remove_dir(old).with_context(|| format!("removing {}", old.display()))?;
        }
        Found::Absent => {}
        Found::Foreign(why) => {
            crate::warn!(
                "what was at {} before this build is now at {}: it {why}, so it is left there",
                out.display(),
                old.display()
            );
        }
    }
    Ok(())
}

fn fsync_parent(out: &Path) -> Result<()> {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => fsutil::fsync_dir(p),
        _ => fsutil::fsync_dir(Path::new(".")),
    }
}

/// The `.NAME.staging-<pid>` trees killed builds left beside `out` (the
/// build lock is held, so none belongs to a running build); refuses when
/// something that is not a staging tree has such a name.
fn leftovers(out: &Path) -> Result<Vec<PathBuf>> {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let prefix = format!(".{name}.staging-");
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(entries) = fs::read_dir(&parent) else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name
            .to_string_lossy()
            .strip_prefix(&prefix)
            .map(str::to_owned)
        else {
            continue;
        };
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) {
            continue; // not a name a build gives its staging tree
        }
        let path = entry.path();
        if !out::is_staging_tree(&path)? {
            return Err(refuse_sibling(
                &path,
                "holds something other than a staging tree pxebuild left",
            ));
        }
        found.push(path);
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::step::Visibility;
    use crate::manifest::FileEntry;

    fn output(store: &Store, path: &str, body: &[u8]) -> Output {
        let sha256 = store.put_bytes(body).unwrap();
        Output {
            path: path.into(),
            sha256,
            size: body.len() as u64,
            visibility: Visibility::Public,
        }
    }

    fn manifest(outputs: &[&Output]) -> Manifest {
        Manifest {
            format: 1,
            inputs: "x".into(),
            files: outputs
                .iter()
                .map(|o| FileEntry {
                    path: o.path.clone(),
                    size: o.size,
                    sha256: o.sha256.clone(),
                })
                .collect(),
            nodes: vec![],
            access: vec![],
            flatcar: None,
            images: Vec::new(),
        }
    }

    /// A store and a dist/ published with the one file `http/a`.
    fn published_one_file() -> (tempfile::TempDir, Store, PathBuf, Output) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let out = dir.path().join("dist");
        let a = output(&store, "http/a", b"one");
        publish(&out, &manifest(&[&a]), &[&a], &store).unwrap();
        (dir, store, out, a)
    }

    #[test]
    fn publish_swaps_trees_and_cleans_up() {
        let (dir, store, out, a) = published_one_file();
        assert_eq!(fs::read(out.join("http/a")).unwrap(), b"one");
        assert!(matches!(
            out::inspect(&out, out::Probe::Manifest).unwrap(),
            Found::Tree { .. }
        ));
        let _ = a;

        let b = output(&store, "tftp/b", b"two");
        publish(&out, &manifest(&[&b]), &[&b], &store).unwrap();
        assert!(!out.join("http/a").exists(), "the old tree is gone");
        assert_eq!(fs::read(out.join("tftp/b")).unwrap(), b"two");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| !n.contains("staging")), "{names:?}");
    }

    /// Every file below `dir` with its content, paths relative to `dir`.
    fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
        walkdir::WalkDir::new(dir)
            .into_iter()
            .map(Result::unwrap)
            .filter(|e| e.file_type().is_file())
            .map(|e| {
                let rel = e
                    .path()
                    .strip_prefix(dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                (rel, fs::read(e.path()).unwrap())
            })
            .collect()
    }

    #[test]
    fn the_previous_tree_is_reused_and_ends_up_exactly_the_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let out = dir.path().join("dist");
        let spare = dir.path().join(".dist.spare");
        let a = output(&store, "http/n1/a.ign", b"one");
        let b = output(&store, "http/n2/b.ign", b"two");
        publish(&out, &manifest(&[&a, &b]), &[&a, &b], &store).unwrap();
        assert!(!spare.exists(), "no previous tree yet");

        let b2 = output(&store, "http/n2/b.ign", b"two, changed");
        publish(&out, &manifest(&[&a, &b2]), &[&a, &b2], &store).unwrap();
        assert!(spare.join("http/n2/b.ign").exists(), "the old tree is kept");

        // Damage the spare the way a hand edit would: an extra file, a file
        // rewritten in place (no longer the store's blob), a stray directory.
        fs::write(spare.join("http/extra"), b"x").unwrap();
        fs::remove_file(spare.join("http/n1/a.ign")).unwrap();
        fs::write(spare.join("http/n1/a.ign"), b"edited").unwrap();
        fs::create_dir_all(spare.join("tftp/stray/deeper")).unwrap();
        let c = output(&store, "tftp/c", b"three");
        let wanted = [&a, &b, &c];
        publish(&out, &manifest(&wanted), &wanted, &store).unwrap();
        let mut expected: BTreeMap<String, Vec<u8>> = [
            ("http/n1/a.ign", &b"one"[..]),
            ("http/n2/b.ign", b"two"),
            ("tftp/c", b"three"),
        ]
        .into_iter()
        .map(|(p, c)| (p.to_string(), c.to_vec()))
        .collect();
        expected.insert(
            manifest::FILE_NAME.into(),
            manifest(&wanted).to_json().into_bytes(),
        );
        assert_eq!(tree(&out), expected);
        assert!(!out.join("tftp/stray").exists());
        for o in wanted {
            let published = fs::metadata(out.join(&o.path)).unwrap();
            assert_eq!(
                store.file_id(&o.sha256),
                Some((published.dev(), published.ino())),
                "{} is a hard link of its blob",
                o.path
            );
        }
    }

    #[test]
    fn something_foreign_at_the_spare_is_refused_and_left_alone() {
        let (dir, store, out, a) = published_one_file();
        let spare = dir.path().join(".dist.spare");
        for make in [
            |p: &Path| fs::write(p, b"precious"),
            |p: &Path| {
                fs::create_dir(p)?;
                fs::write(p.join("important.txt"), b"precious")
            },
        ] {
            make(&spare).unwrap();
            let before = crate::engine::out::inspect(&spare, out::Probe::Stat).unwrap();
            let b = output(&store, "http/b", b"two");
            let err = publish(&out, &manifest(&[&b]), &[&b], &store).unwrap_err();
            assert!(format!("{err:#}").contains(".dist.spare"), "{err:#}");
            assert_eq!(crate::error::exit_code(&err), crate::error::EXIT_BAD_INPUT);
            assert_eq!(out::inspect(&spare, out::Probe::Stat).unwrap(), before);
            assert_eq!(fs::read(out.join("http/a")).unwrap(), b"one", "dist/ kept");
            let _ = fs::remove_file(&spare);
            let _ = fs::remove_dir_all(&spare);
        }
        let _ = a;
    }

    #[test]
    fn staging_leftovers_are_removed_only_when_they_are_staging_trees() {
        let (dir, store, out, _) = published_one_file();
        let stale = dir.path().join(".dist.staging-4242");
        fs::create_dir_all(stale.join("http/x")).unwrap();
        fs::write(stale.join("http/x/y"), b"half").unwrap();
        let other = dir.path().join(".dist.staging-notes");
        fs::create_dir(&other).unwrap();
        let b = output(&store, "http/b", b"two");
        publish(&out, &manifest(&[&b]), &[&b], &store).unwrap();
        assert!(!stale.exists(), "a killed build's staging tree is removed");
        assert!(other.exists(), "a name no build gives is not touched");

        let foreign = dir.path().join(".dist.staging-4343");
        fs::create_dir(&foreign).unwrap();
        fs::write(foreign.join("important.txt"), b"precious").unwrap();
        let err = publish(&out, &manifest(&[&b]), &[&b], &store).unwrap_err();
        assert!(format!("{err:#}").contains(".dist.staging-4343"), "{err:#}");
        assert_eq!(
            fs::read(foreign.join("important.txt")).unwrap(),
            b"precious"
        );
    }

    #[test]
    fn an_empty_directory_is_replaced_and_not_kept() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let out = dir.path().join("dist");
        fs::create_dir(&out).unwrap();
        let a = output(&store, "http/a", b"one");
        publish(&out, &manifest(&[&a]), &[&a], &store).unwrap();
        assert_eq!(fs::read(out.join("http/a")).unwrap(), b"one");
        assert!(!dir.path().join(".dist.spare").exists());
    }

    #[test]
    fn unclean_paths_are_refused() {
        for bad in ["etc/passwd", "http/../x", "http//x", "http/./x"] {
            assert!(check_dist_path(bad).is_err(), "{bad}");
        }
        assert!(check_dist_path("tftp/pxelinux.cfg/default").is_ok());
    }
}
