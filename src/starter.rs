//! `pxebuild init DIR`: writes a starter site from the copies built into the
//! binary (`crate::embedded`): site.toml (the example site under a header
//! saying what to change first), templates/, payload/ and a .gitignore for
//! what a build writes beside them.
//!
//! Only into a new or empty directory (a `.git` alone is allowed, so `git
//! init` may come first): an operator's files are never overwritten. The tree
//! is written into a staging directory beside DIR and moved in entry by entry
//! with `RENAME_NOREPLACE`, so a failed init leaves nothing half-written. A
//! directory init creates is closed to other users (0750): it will hold
//! secrets/ and dist/.
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};

use crate::error::BadInput;

/// Opens the site.toml that `init` writes, above the example site's own text.
pub const SITE_HEADER: &str = "\
# site.toml, written by `pxebuild init` from pxebuild's example site: a rack of
# three control planes behind a kube-vip virtual IP and two workers. Every key
# is explained in pxebuild's docs/site.md. Before the first build:
#   1. [ssh] authorized_keys: put your own public key in place of the
#      placeholder (`pxebuild check` warns while it is there).
#   2. [network], [boot_server] and each [[node]]: your subnet, the machine
#      that serves the tree, and each machine's MAC, IP, disk and firmware.
#   3. [argocd] repo_url: the git repository that will hold this directory.
# Then `pxebuild check`, `pxebuild build` (writes dist/) and `pxebuild serve dist`.
# templates/ and payload/ beside this file are pxebuild's own, to edit; a site
# directory without them builds with the copies built into pxebuild.

";

/// What a build writes beside site.toml and never belongs in git: the tree,
/// the secrets, the cache and their staging copies.
pub const GITIGNORE: &str = "\
# Written by pxebuild builds: the boot tree (it holds per-node secrets), the
# site's secrets, the cache, and their staging copies. Never commit them.
/dist/
/secrets/
/.pxebuild/
/.dist.*
/.secrets.*
";

/// What `init` wrote, for its report.
#[derive(Debug)]
pub struct Written {
    pub dir: PathBuf,
    pub templates: usize,
    pub payload: usize,
}

/// Writes the starter site into `dir` (created when missing).
pub fn init(dir: &Path) -> Result<Written> {
    refuse_occupied(dir)?;
    if !dir.exists() {
        // The site directory holds secrets/ and dist/ (per-node configs):
        // closed to other users from the start (docs/serve.md).
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    let staging = staging_path(dir)?;
    let written = write_tree(&staging).and_then(|()| move_in(&staging, dir));
    // Whatever is left of the staging tree (all of it after a failure).
    let _ = std::fs::remove_dir_all(&staging);
    written?;
    let count = |prefix: &str| {
        crate::embedded::files()
            .iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .count()
    };
    Ok(Written {
        dir: dir.to_path_buf(),
        templates: count("templates/"),
        payload: count("payload/"),
    })
}

/// Bad input (exit 2) unless `dir` is missing, or a directory holding
/// nothing but `.git`.
fn refuse_occupied(dir: &Path) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotADirectory => {
            return Err(BadInput::new(format!(
                "init: {} is not a directory: name a new or empty directory for the site",
                dir.display()
            )))
        }
        Err(err) => return Err(anyhow!("init: reading {}: {err}", dir.display())),
    };
    let mut found: Vec<String> = entries
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<std::io::Result<_>>()
        .with_context(|| format!("init: reading {}", dir.display()))?;
    found.retain(|name| name != ".git");
    if found.is_empty() {
        return Ok(());
    }
    found.sort();
    let shown = match found.len() {
        n if n > 5 => format!("{} and {} more", found[..5].join(", "), n - 5),
        _ => found.join(", "),
    };
    Err(BadInput::new(format!(
        "init: {} is not empty (it holds {shown}): init writes a new site only into a new or \
         empty directory, so that none of your files is overwritten; name another directory",
        dir.display()
    )))
}

/// `.<name>.init-<pid>` beside `dir`, on the same file system.
fn staging_path(dir: &Path) -> Result<PathBuf> {
    let abs = std::path::absolute(dir).with_context(|| format!("resolving {}", dir.display()))?;
    let name = abs
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "site".into());
    let parent = abs.parent().unwrap_or(&abs);
    Ok(parent.join(format!(".{name}.init-{}", std::process::id())))
}

/// Every built-in file under `root`, site.toml with its header.
fn write_tree(root: &Path) -> Result<()> {
    std::fs::create_dir(root).with_context(|| format!("creating {}", root.display()))?;
    for (rel, bytes) in crate::embedded::files() {
        let path = root.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        let mut content = Vec::new();
        if *rel == "site.toml" {
            content.extend_from_slice(SITE_HEADER.as_bytes());
        }
        content.extend_from_slice(bytes);
        std::fs::write(&path, content).with_context(|| format!("writing {}", path.display()))?;
    }
    let ignore = root.join(".gitignore");
    std::fs::write(&ignore, GITIGNORE).with_context(|| format!("writing {}", ignore.display()))
}

/// Moves each top-level entry of `staging` into `dir`, never replacing one.
fn move_in(staging: &Path, dir: &Path) -> Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(staging)?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()?;
    names.sort();
    for name in names {
        let to = dir.join(&name);
        rustix::fs::renameat_with(
            rustix::fs::CWD,
            staging.join(&name),
            rustix::fs::CWD,
            &to,
            rustix::fs::RenameFlags::NOREPLACE,
        )
        .map_err(|err| match err {
            rustix::io::Errno::EXIST => BadInput::new(format!(
                "init: {} appeared while init was writing; nothing of it was replaced",
                to.display()
            )),
            err => anyhow!("init: moving {} into place: {err}", to.display()),
        })?;
    }
    crate::fsutil::fsync_dir(dir)
}
