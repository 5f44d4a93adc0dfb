//! Puts a finished build in place: a staging tree beside dist/ made of hard
//! links into the store, then an atomic swap. Whatever moment the process dies
//! at, dist/ is either the complete old tree or the complete new one.
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use rustix::fs::{renameat_with, RenameFlags, CWD};

use super::step::Output;
use super::store::Store;
use crate::manifest::{self, Manifest};
use crate::{fsutil, layout};

/// Builds the staging tree for `manifest` and swaps it in at `out`.
pub fn publish(out: &Path, manifest: &Manifest, outputs: &[&Output], store: &Store) -> Result<()> {
    remove_leftovers(out)?;
    let staging = sibling(out, &format!("staging-{}", std::process::id()));
    let result = fill(&staging, manifest, outputs, store).and_then(|()| swap(&staging, out));
    if result.is_err() {
        let _ = fs::remove_dir_all(&staging);
    }
    result
}

/// True when `out` already holds exactly this manifest and every file in it
/// exists with its size (so a no-op build touches nothing).
pub fn up_to_date(out: &Path, manifest: &Manifest) -> bool {
    let Ok(current) = Manifest::load(out) else {
        return false;
    };
    current == *manifest
        && manifest.files.iter().all(|f| {
            fs::symlink_metadata(out.join(&f.path)).is_ok_and(|m| m.is_file() && m.len() == f.size)
        })
}

fn fill(staging: &Path, manifest: &Manifest, outputs: &[&Output], store: &Store) -> Result<()> {
    fs::create_dir_all(staging).with_context(|| format!("creating {}", staging.display()))?;
    for output in outputs {
        check_dist_path(&output.path)?;
        let blob = store.path_of(&output.sha256);
        fsutil::hardlink_or_copy(&blob, &staging.join(&output.path))
            .with_context(|| format!("placing {}", output.path))?;
    }
    let json = manifest.to_json();
    fsutil::atomic_write(&staging.join(manifest::FILE_NAME), json.as_bytes(), 0o644)?;
    // One syncfs flushes every new directory entry of the tree before the swap
    // makes it visible (cheaper than an fsync per directory on large sites).
    let dir = fs::File::open(staging).with_context(|| format!("opening {}", staging.display()))?;
    rustix::fs::syncfs(&dir).with_context(|| format!("syncing {}", staging.display()))
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

/// Exchanges staging and out atomically (renameat2 RENAME_EXCHANGE), then removes
/// the old tree. Without an existing out, a plain rename suffices.
fn swap(staging: &Path, out: &Path) -> Result<()> {
    if out.exists() {
        renameat_with(CWD, staging, CWD, out, RenameFlags::EXCHANGE)
            .with_context(|| format!("swapping {} into {}", staging.display(), out.display()))?;
        fsync_parent(out)?;
        // `staging` now holds the previous tree; open files in it stay readable
        // for a server that is still sending them.
        fs::remove_dir_all(staging)
            .with_context(|| format!("removing previous tree {}", staging.display()))?;
    } else {
        fs::rename(staging, out)
            .with_context(|| format!("renaming {} to {}", staging.display(), out.display()))?;
        fsync_parent(out)?;
    }
    Ok(())
}

fn fsync_parent(out: &Path) -> Result<()> {
    match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => fsutil::fsync_dir(p),
        _ => fsutil::fsync_dir(Path::new(".")),
    }
}

/// `.dist.<what>` beside `dist`.
fn sibling(out: &Path, what: &str) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!(".{name}.{what}"))
}

/// Removes staging trees left by builds that were killed (the build lock is
/// held, so none of them belongs to a running build).
fn remove_leftovers(out: &Path) -> Result<()> {
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
        return Ok(());
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            fs::remove_dir_all(entry.path())
                .with_context(|| format!("removing stale {}", entry.path().display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build::step::Visibility;
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
        }
    }

    #[test]
    fn publish_swaps_trees_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let out = dir.path().join("dist");
        let a = output(&store, "http/a", b"one");
        publish(&out, &manifest(&[&a]), &[&a], &store).unwrap();
        assert_eq!(fs::read(out.join("http/a")).unwrap(), b"one");
        assert!(up_to_date(&out, &manifest(&[&a])));

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

    #[test]
    fn up_to_date_notices_a_deleted_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("store")).unwrap();
        let out = dir.path().join("dist");
        let a = output(&store, "http/a", b"one");
        publish(&out, &manifest(&[&a]), &[&a], &store).unwrap();
        fs::remove_file(out.join("http/a")).unwrap();
        assert!(!up_to_date(&out, &manifest(&[&a])));
    }

    #[test]
    fn unclean_paths_are_refused() {
        for bad in ["etc/passwd", "http/../x", "http//x", "http/./x"] {
            assert!(check_dist_path(bad).is_err(), "{bad}");
        }
        assert!(check_dist_path("tftp/pxelinux.cfg/default").is_ok());
    }
}
