//! The content-addressed store: every blob a build produced or downloaded, named
//! by its SHA-256, written atomically and read-only. dist/ hard-links into it.
//! A hard link shares its blob's mode, so the node-bound files that carry
//! secrets (Ignition configs) link to a copy of their blob instead, under
//! `node/<gid>/`, readable only by its owner and that group (`NODE_MODE`).
//! Entries are renamed into place complete (safe against a killed build); the
//! build makes them durable with one syncfs before it publishes dist/.
use std::fs;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use rustix::fs::{AtFlags, FileType};

use crate::{digest, fsutil};

/// Appended to errors about a blob that should be in the store but is not.
pub(crate) const LOST_HINT: &str =
    " (was the cache cleaned by hand? `pxebuild build --verify-cache` rebuilds what is missing)";

/// Mode of the node-bound published files: read by the owner (the build) and
/// the group of the directory holding dist/ (the serving user's), no one else.
pub(crate) const NODE_MODE: u32 = 0o440;

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// `root/sha256`, open: presence checks (thousands per rebuild) resolve
    /// two components from here instead of the whole path.
    blobs: Arc<OwnedFd>,
}

impl Store {
    /// Opens (creating) a store under `root`.
    pub fn open(root: &Path) -> Result<Store> {
        let dir = root.join("sha256");
        fsutil::create_cache_dir(&dir)
            .with_context(|| format!("creating the store {}", root.display()))?;
        let blobs = fs::File::open(&dir).with_context(|| format!("opening {}", dir.display()))?;
        Ok(Store {
            root: root.to_path_buf(),
            blobs: Arc::new(blobs.into()),
        })
    }

    /// Where the blob with this digest lives (whether or not it exists).
    pub fn path_of(&self, sha256: &str) -> PathBuf {
        self.root.join("sha256").join(Self::relative(sha256))
    }

    /// A blob's path below `root/sha256`.
    fn relative(sha256: &str) -> String {
        let prefix = sha256.get(..2).unwrap_or("xx");
        format!("{prefix}/{sha256}")
    }

    /// True when the blob exists with the expected size.
    pub fn has(&self, sha256: &str, size: u64) -> bool {
        rustix::fs::statat(&*self.blobs, Self::relative(sha256), AtFlags::empty()).is_ok_and(|st| {
            FileType::from_raw_mode(st.st_mode) == FileType::RegularFile
                && st.st_size as u64 == size
        })
    }

    /// The blob's (device, inode), to recognise its hard links; `None` when absent.
    pub fn file_id(&self, sha256: &str) -> Option<(u64, u64)> {
        let st = rustix::fs::statat(&*self.blobs, Self::relative(sha256), AtFlags::empty()).ok()?;
        Some((st.st_dev, st.st_ino))
    }

    /// Stores bytes; returns their SHA-256.
    pub fn put_bytes(&self, bytes: &[u8]) -> Result<String> {
        let sha256 = digest::sha256_hex(bytes);
        let path = self.path_of(&sha256);
        if !self.has(&sha256, bytes.len() as u64) {
            fsutil::atomic_write_batched(&path, bytes, 0o444)?;
        }
        Ok(sha256)
    }

    /// Moves a complete file into the store (hashing it); returns digest and size.
    pub fn put_file(&self, file: &Path) -> Result<(String, u64)> {
        let (sha256, size) = digest::sha256_file(file)?;
        self.adopt(file, &sha256, size)?;
        Ok((sha256, size))
    }

    /// Moves a file whose digest the caller already verified while writing it.
    pub fn adopt(&self, file: &Path, sha256: &str, size: u64) -> Result<()> {
        let dest = self.path_of(sha256);
        if self.has(sha256, size) {
            let _ = fs::remove_file(file);
            return Ok(());
        }
        let dir = dest.parent().expect("store paths have a parent");
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let mut perms = fs::metadata(file)
            .with_context(|| format!("reading {}", file.display()))?
            .permissions();
        perms.set_readonly(true);
        fs::set_permissions(file, perms)
            .with_context(|| format!("setting permissions on {}", file.display()))?;
        // Durability comes from the build's single syncfs before publishing.
        fs::rename(file, &dest).with_context(|| format!("moving {} into the store", file.display()))
    }

    /// Where the copy of a blob for node-bound files of group `gid` lives.
    pub fn node_path_of(&self, sha256: &str, gid: u32) -> PathBuf {
        self.root
            .join("node")
            .join(gid.to_string())
            .join(Self::relative(sha256))
    }

    /// The copy of a blob that node-bound files of group `gid` link to:
    /// `NODE_MODE`, group `gid`, made from the blob when missing (or when a
    /// copy has another mode or group). Fails, naming the group, when this
    /// user may not give files that group.
    pub fn node_copy(&self, sha256: &str, gid: u32) -> Result<PathBuf> {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let dest = self.node_path_of(sha256, gid);
        if let Ok(meta) = fs::symlink_metadata(&dest) {
            if meta.is_file() && meta.mode() & 0o7777 == NODE_MODE && meta.gid() == gid {
                return Ok(dest);
            }
            fs::remove_file(&dest).with_context(|| format!("removing {}", dest.display()))?;
        }
        let src = self.path_of(sha256);
        let dir = dest.parent().expect("store paths have a parent");
        fsutil::create_cache_dir(dir)?;
        let tmp = self
            .temp_dir()?
            .join(format!("node-{}-{sha256}-{}", gid, std::process::id()));
        let _ = fs::remove_file(&tmp);
        let made = (|| -> Result<()> {
            fs::copy(&src, &tmp).with_context(|| {
                format!("copying {} for a node-bound file{LOST_HINT}", src.display())
            })?;
            std::os::unix::fs::chown(&tmp, None, Some(gid)).with_context(|| {
                format!(
                    "giving {} the group {gid} of the directory holding the output (node-bound \
                         files are readable by that group only; build as a member of it, or \
                         chgrp that directory to one of your groups)",
                    tmp.display()
                )
            })?;
            fs::set_permissions(&tmp, fs::Permissions::from_mode(NODE_MODE))
                .with_context(|| format!("setting permissions on {}", tmp.display()))?;
            fs::rename(&tmp, &dest).with_context(|| format!("moving {}", dest.display()))
        })();
        if made.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        made.map(|()| dest)
    }

    /// The (device, inode) of a node copy; `None` when absent.
    pub fn node_file_id(&self, sha256: &str, gid: u32) -> Option<(u64, u64)> {
        use std::os::unix::fs::MetadataExt;
        let meta = fs::symlink_metadata(self.node_path_of(sha256, gid)).ok()?;
        Some((meta.dev(), meta.ino()))
    }

    /// Removes every node copy of a blob (a published copy may have been
    /// edited in place, through its hard link): the next publish makes a
    /// fresh one from the verified blob.
    pub fn drop_node_copies(&self, sha256: &str) -> Result<()> {
        let Ok(groups) = fs::read_dir(self.root.join("node")) else {
            return Ok(());
        };
        for group in groups.flatten() {
            let path = group.path().join(Self::relative(sha256));
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(e).with_context(|| format!("removing {}", path.display()));
                }
            }
        }
        Ok(())
    }

    /// Re-hashes every node copy of a blob (`--verify-cache`), removing a
    /// corrupt one so the publish makes it again from the blob.
    pub fn verify_node_copies(&self, sha256: &str) -> Result<()> {
        let Ok(groups) = fs::read_dir(self.root.join("node")) else {
            return Ok(());
        };
        for group in groups.flatten() {
            let path = group.path().join(Self::relative(sha256));
            if !path.exists() {
                continue;
            }
            let (actual, _) = digest::sha256_file(&path)?;
            if actual != sha256 {
                fs::remove_file(&path)
                    .with_context(|| format!("removing corrupt {}", path.display()))?;
            }
        }
        Ok(())
    }

    /// Re-hashes a blob; a corrupt one is removed so it is produced again.
    pub fn verify(&self, sha256: &str) -> Result<bool> {
        let path = self.path_of(sha256);
        if !path.exists() {
            return Ok(false);
        }
        let (actual, _) = digest::sha256_file(&path)?;
        if actual != sha256 {
            fs::remove_file(&path)
                .with_context(|| format!("removing corrupt store entry {}", path.display()))?;
            return Ok(false);
        }
        Ok(true)
    }

    /// A scratch directory inside the store's file system (for downloads that
    /// are renamed in once verified).
    pub fn temp_dir(&self) -> Result<PathBuf> {
        let dir = self.root.join("tmp");
        fsutil::create_cache_dir(&dir)?;
        Ok(dir)
    }

    /// Reads a blob.
    pub fn read(&self, sha256: &str) -> Result<Vec<u8>> {
        let path = self.path_of(sha256);
        let bytes = fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        if bytes.is_empty() && sha256 != digest::sha256_hex(b"") {
            bail!("store entry {} is empty", path.display());
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_and_verify_detects_corruption() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let sha = store.put_bytes(b"hello").unwrap();
        assert!(store.has(&sha, 5));
        assert!(store.verify(&sha).unwrap());
        let path = store.path_of(&sha);
        let mut perms = fs::metadata(&path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        fs::set_permissions(&path, perms).unwrap();
        fs::write(&path, b"jello").unwrap();
        assert!(!store.verify(&sha).unwrap());
        assert!(!path.exists(), "a corrupt entry is removed");
    }
}
