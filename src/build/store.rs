//! The content-addressed store: every blob a build produced or downloaded, named
//! by its SHA-256, written atomically and read-only. dist/ hard-links into it.
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
pub const LOST_HINT: &str =
    " (was the cache cleaned by hand? `pxebuild build --verify-cache` rebuilds what is missing)";

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
