//! The site's admin kubeconfig (`secrets/kubeconfig`, written by the build):
//! where it is, and private copies of it for operators who want one elsewhere.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::error::BadInput;
use crate::site::Site;

/// File name of the admin kubeconfig inside `secrets/`.
pub(crate) const FILE: &str = "kubeconfig";

/// Where the site's admin kubeconfig lives (whether or not it exists yet).
/// Relative to the working directory when site.toml is there ("secrets/kubeconfig",
/// not "./secrets/kubeconfig"), as operators would type it.
pub(crate) fn path(site: &Site) -> PathBuf {
    super::tidy(site.secrets_dir().join(FILE))
}

/// The admin kubeconfig's path; bad input (exit 2) when it does not exist,
/// saying how to get it back.
pub(crate) fn require(site: &Site) -> Result<PathBuf> {
    let path = path(site);
    if path.is_file() {
        warn_if_shared(&path);
        return Ok(path);
    }
    Err(BadInput::new(format!(
        "no admin kubeconfig at {}: run `pxebuild build` (it writes the kubeconfig \
         together with the site's secrets), or restore secrets/ from your backup if \
         this cluster was built elsewhere",
        path.display()
    )))
}

/// The admin kubeconfig is a cluster-admin credential: say so when others can read it.
fn warn_if_shared(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path) {
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            crate::warn!(
                "{} is readable by others (mode {mode:04o}): it grants cluster-admin; \
                 run `chmod 600 {}`",
                path.display(),
                path.display()
            );
        }
    }
}

/// The path as the operator should use it: absolute when it can be resolved.
pub(crate) fn display_path(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// Writes a private (0600) copy of the kubeconfig to `dest`, atomically. Bad
/// input (exit 2) when `dest` names a directory (the copy needs a file name,
/// and guessing one would leave the operator looking for it), or an existing
/// file and not `force` (`~/.kube/config` holds every other context too).
pub(crate) fn write_copy(source: &Path, dest: &Path, force: bool) -> Result<()> {
    let text = dest.as_os_str().to_string_lossy();
    if dest.is_dir() || text.ends_with('/') {
        let dir = text.trim_end_matches('/');
        return Err(BadInput::new(format!(
            "--out {text} is a directory: name the file to write, e.g. --out {dir}/kubeconfig"
        )));
    }
    if !force && std::fs::symlink_metadata(dest).is_ok() {
        return Err(BadInput::new(format!(
            "--out {text} exists: it may hold other clusters' contexts, and the copy would \
             replace it whole. Name a new file, or add --force to replace it"
        )));
    }
    let bytes = std::fs::read(source).with_context(|| format!("reading {}", source.display()))?;
    crate::fsutil::atomic_write(dest, &bytes, 0o600)
        .with_context(|| format!("writing kubeconfig copy {}", dest.display()))
}
