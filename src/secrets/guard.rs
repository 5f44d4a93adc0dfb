//! What keeps the secrets safe while they are used: one pxebuild at a time
//! per site (an exclusive `flock` on the site directory, held for the whole
//! command), and modes that keep them private (the directory 0700, every
//! file 0600), set back with a warning when someone loosened them.
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use anyhow::Result;

use super::files::FILES;
use super::wording::shown;
use crate::error::BadInput;

/// Serialises the commands that read or write one site's secrets: an
/// exclusive `flock` on the site directory, held until the file is dropped.
/// File systems that cannot lock a directory get no lock (as before).
pub(super) fn lock_site(site_dir: &Path) -> Result<Option<File>> {
    use crate::fsutil::{lock_exclusive, Lock};
    let Ok(file) = File::open(site_dir) else {
        return Ok(None);
    };
    let waiting = || {
        crate::info!(
            "waiting for another pxebuild using the secrets of {}",
            shown(site_dir)
        )
    };
    match lock_exclusive(&file, site_dir, waiting)? {
        Lock::Held => Ok(Some(file)),
        Lock::Unsupported(err) => {
            crate::verbose!("not locking {}: {err}", shown(site_dir));
            Ok(None)
        }
    }
}

/// Checks an existing secrets directory before use: readable, private, and
/// every secret file in it private.
pub(super) fn check(dir: &Path) -> Result<()> {
    check_dir(dir)?;
    check_file_modes(dir);
    Ok(())
}

fn check_dir(dir: &Path) -> Result<()> {
    let meta = std::fs::metadata(dir).map_err(|e| {
        BadInput::new(format!(
            "cannot read {}: {e}; restore the secrets directory from your backup",
            shown(dir)
        ))
    })?;
    if !meta.is_dir() {
        return Err(BadInput::new(format!(
            "{} is not a directory; restore the secrets directory from your backup",
            shown(dir)
        )));
    }
    std::fs::read_dir(dir).map_err(|e| {
        BadInput::new(format!(
            "{} is not readable ({e}); check its owner and mode 0700",
            shown(dir)
        ))
    })?;
    repair_mode(dir, meta.permissions().mode(), 0o700);
    Ok(())
}

/// Sets every secret file that other users can access back to 0600.
fn check_file_modes(dir: &Path) {
    for name in FILES {
        let path = dir.join(name);
        if let Ok(meta) = std::fs::metadata(&path) {
            repair_mode(&path, meta.permissions().mode(), 0o600);
        }
    }
}

/// When `mode` gives group or others any access, sets `path` to `private`
/// and warns; when that fails, warns with the command to run.
fn repair_mode(path: &Path, mode: u32, private: u32) {
    if mode & 0o077 == 0 {
        return;
    }
    let was = mode & 0o7777;
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(private)) {
        Ok(()) => {
            crate::warn!(
                "{} was accessible by other users (mode {was:04o}); set it to {private:04o}",
                shown(path)
            );
        }
        Err(err) => {
            crate::warn!(
                "{} is accessible by other users (mode {was:04o}) and could not be changed \
                 ({err}); run `chmod {private:o} {}`",
                shown(path),
                shown(path)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o7777
    }

    fn set_mode(path: &Path, mode: u32) {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn loosened_modes_are_set_back_and_private_ones_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let secrets = dir.path().join("secrets");
        std::fs::create_dir(&secrets).unwrap();
        set_mode(&secrets, 0o755);
        for (name, was) in [("ca.key", 0o644), ("sa.key", 0o600), ("kubeconfig", 0o640)] {
            std::fs::write(secrets.join(name), "x").unwrap();
            set_mode(&secrets.join(name), was);
        }
        // Not a secret file of the set: left as it is.
        std::fs::write(secrets.join("notes.txt"), "x").unwrap();
        set_mode(&secrets.join("notes.txt"), 0o644);
        check(&secrets).unwrap();
        assert_eq!(mode(&secrets), 0o700);
        for name in ["ca.key", "sa.key", "kubeconfig"] {
            assert_eq!(mode(&secrets.join(name)), 0o600, "{name}");
        }
        assert_eq!(mode(&secrets.join("notes.txt")), 0o644);
    }

    #[test]
    fn a_secrets_path_that_is_no_directory_is_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("secrets");
        std::fs::write(&file, "x").unwrap();
        let err = check(&file).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
        assert!(err.to_string().contains("is not a directory"), "{err}");
        let gone = check(&dir.path().join("gone")).unwrap_err();
        assert_eq!(crate::error::exit_code(&gone), 2);
        assert!(gone.to_string().starts_with("cannot read "), "{gone}");
    }

    #[test]
    fn the_site_lock_is_exclusive_until_dropped() {
        use rustix::fs::{flock, FlockOperation};
        let dir = tempfile::tempdir().unwrap();
        let held = lock_site(dir.path())
            .unwrap()
            .expect("a lock on a local directory");
        let other = File::open(dir.path()).unwrap();
        assert!(
            flock(&other, FlockOperation::NonBlockingLockExclusive).is_err(),
            "a second pxebuild would wait"
        );
        drop(held);
        flock(&other, FlockOperation::NonBlockingLockExclusive).unwrap();
    }
}
