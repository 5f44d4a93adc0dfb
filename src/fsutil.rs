//! File-system primitives that never leave anything half-written.
//!
//! Every file pxebuild writes (cache entries, secrets, staged dist files) goes
//! through [`atomic_write`]: a reader sees either the old file or the new one,
//! never a prefix, even across a crash or SIGKILL. Work that two pxebuild
//! processes must not do at once is serialised by [`lock_exclusive`].
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// Writes `bytes` to `path` atomically with the given permission bits.
pub fn atomic_write(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    atomic_write_with(path, mode, |file| file.write_all(bytes))
}

/// Like [`atomic_write`] but without the per-file fsyncs: still atomic against
/// a killed process (the rename publishes a complete file), and made durable
/// by one [`syncfs`] of the whole file system later. The build cache writes
/// thousands of small entries this way and syncs once before publishing dist/.
pub fn atomic_write_batched(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    write_then_rename(path, mode, false, |file| file.write_all(bytes))
}

/// Flushes everything written to the file system holding `path`.
pub fn syncfs(path: &Path) -> Result<()> {
    let dir = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    rustix::fs::syncfs(&dir)
        .with_context(|| format!("syncing the file system of {}", path.display()))
}

/// Like [`atomic_write`], but lets `fill` stream the content into the file.
pub fn atomic_write_with(
    path: &Path,
    mode: u32,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<()> {
    write_then_rename(path, mode, true, fill)
}

fn write_then_rename(
    path: &Path,
    mode: u32,
    durable: bool,
    fill: impl FnOnce(&mut File) -> io::Result<()>,
) -> Result<()> {
    let dir = parent_dir(path);
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    // 1. A temp file in the same directory, so the final rename stays on one
    //    file system and is atomic.
    let tmp = temp_path(path);
    let result = (|| -> Result<()> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)
            .with_context(|| format!("creating {}", tmp.display()))?;
        // 2. The content, then the permission bits (the umask may have cut them).
        fill(&mut file).with_context(|| format!("writing {}", tmp.display()))?;
        file.set_permissions(fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting permissions on {}", tmp.display()))?;
        // 3. Data on disk before the name points at it.
        if durable {
            file.sync_all()
                .with_context(|| format!("syncing {}", tmp.display()))?;
        }
        // 4. The rename publishes the complete file.
        fs::rename(&tmp, path)
            .with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
        // 5. The directory entry itself on disk.
        if durable {
            fsync_dir(dir)?;
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Flushes a directory's entries (new names, renames) to disk.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing directory {}", dir.display()))
}

/// A unique temp name beside `path`: `.<name>.tmp.<pid>.<n>`.
pub fn temp_path(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    parent_dir(path).join(format!(".{name}.tmp.{}.{n}", std::process::id()))
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Hard-links `src` to `dst`, or copies when they are on different file
/// systems. `dst`'s directory must exist (callers placing thousands of files
/// create each directory once).
pub fn hardlink_or_copy(src: &Path, dst: &Path) -> Result<()> {
    match fs::hard_link(src, dst) {
        Ok(()) => Ok(()),
        Err(err) if err.raw_os_error() == Some(libc::EXDEV) => {
            let mode = fs::metadata(src)
                .with_context(|| format!("reading {}", src.display()))?
                .permissions()
                .mode();
            atomic_write_with(dst, mode & 0o7777, |out| {
                io::copy(&mut File::open(src)?, out).map(|_| ())
            })
        }
        Err(err) => {
            Err(err).with_context(|| format!("linking {} to {}", src.display(), dst.display()))
        }
    }
}

/// Creates `dir` (and parents) for the cache: a directory this creates is
/// made writable by its owner only, whatever the umask (under umask 000 a
/// world-writable `store/tmp` would let another user plant files there).
/// An existing directory is left as it is (a cache may be shared on purpose).
pub fn create_cache_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mode = fs::metadata(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .permissions()
        .mode();
    if mode & 0o022 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(mode & 0o755))
            .with_context(|| format!("setting permissions on {}", dir.display()))?;
    }
    Ok(())
}

/// Creates `dir` (and parents) and makes it private (0700).
pub fn create_private_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
        .with_context(|| format!("setting permissions on {}", dir.display()))
}

/// What [`lock_exclusive`] got.
#[derive(Debug)]
pub enum Lock {
    /// The exclusive lock is held until the file is closed.
    Held,
    /// The file system refused to lock this file at all (some network file
    /// systems, some directories): the caller decides whether to go on.
    Unsupported(rustix::io::Errno),
}

/// Takes an exclusive `flock` on the open `file` (named `path` in errors),
/// held until the file is dropped. When another process holds it, `waiting`
/// runs once first, so an operator learns why nothing moves, then this
/// blocks until the lock is free.
pub fn lock_exclusive(file: &File, path: &Path, waiting: impl FnOnce()) -> Result<Lock> {
    use rustix::fs::{flock, FlockOperation};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Lock::Held),
        Err(rustix::io::Errno::WOULDBLOCK) => {
            waiting();
            flock(file, FlockOperation::LockExclusive)
                .with_context(|| format!("locking {}", path.display()))?;
            Ok(Lock::Held)
        }
        Err(err) => Ok(Lock::Unsupported(err)),
    }
}

/// Opens (creating it if need be) the lock file `path` and takes an
/// exclusive lock on it (see [`lock_exclusive`]); a file system that cannot
/// lock it is an error. Never through a symlink, never truncating: whatever
/// already sits at that path stays as it is, it is only locked.
pub fn lock_file(path: &Path, waiting: impl FnOnce()) -> Result<File> {
    let file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    match lock_exclusive(&file, path, waiting)? {
        Lock::Held => Ok(file),
        Lock::Unsupported(err) => {
            Err(io::Error::from(err)).with_context(|| format!("locking {}", path.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_write_replaces_content_and_sets_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/secret");
        atomic_write(&path, b"one", 0o600).unwrap();
        atomic_write(&path, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"two");
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let leftovers: Vec<_> = fs::read_dir(path.parent().unwrap()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "no temp file may remain");
    }

    #[test]
    fn failed_fill_leaves_old_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        atomic_write(&path, b"good", 0o644).unwrap();
        let err = atomic_write_with(&path, 0o644, |_| Err(io::Error::other("boom")));
        assert!(err.is_err());
        assert_eq!(fs::read(&path).unwrap(), b"good");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn hardlink_shares_the_inode() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("src");
        atomic_write(&src, b"x", 0o644).unwrap();
        let dst = dir.path().join("d/dst");
        assert!(hardlink_or_copy(&src, &dst).is_err(), "no directory d yet");
        fs::create_dir(dir.path().join("d")).unwrap();
        hardlink_or_copy(&src, &dst).unwrap();
        assert_eq!(
            fs::metadata(&src).unwrap().ino(),
            fs::metadata(&dst).unwrap().ino()
        );
    }

    #[test]
    fn a_held_lock_makes_the_next_taker_wait_and_say_so() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".lock");
        let first = lock_file(&path, || panic!("nobody holds it yet")).unwrap();
        let told = Arc::new(AtomicBool::new(false));
        let (told2, path2) = (told.clone(), path.clone());
        let second = std::thread::spawn(move || {
            lock_file(&path2, || told2.store(true, Ordering::SeqCst)).unwrap()
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        assert!(!second.is_finished(), "the second taker must block");
        drop(first);
        drop(second.join().unwrap());
        assert!(told.load(Ordering::SeqCst));
        assert_eq!(fs::read(&path).unwrap(), b"", "only locked, never written");
    }

    #[test]
    fn a_lock_file_is_never_taken_through_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        fs::write(&target, b"keep").unwrap();
        let link = dir.path().join(".lock");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(lock_file(&link, || {}).is_err());
        assert_eq!(fs::read(&target).unwrap(), b"keep");
    }
}
