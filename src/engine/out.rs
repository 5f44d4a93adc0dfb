//! `--out`: where a build may publish. A build replaces its output directory
//! as a whole (the previous tree is swapped out, kept as `.NAME.spare`, and
//! emptied and reused by the next build), so it takes only a path that is
//! free, an empty directory, or a tree pxebuild published, and never one that
//! is, holds or lies inside the caller's own files ([`Guarded`]: for a site,
//! its directory, secrets, templates, payload and cache). Everything here is checked
//! before anything is created or moved.
//!
//! The siblings a build keeps beside the output (`.NAME.spare`,
//! `.NAME.staging-<pid>`) are only reused or deleted when they are
//! recognisably pxebuild's own; anything else at those paths is refused.
use std::fs;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result};

use super::published::FileStat;
use crate::error::BadInput;
use crate::manifest;

/// What sits at a path a build is about to replace, reuse or delete.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Found {
    Absent,
    /// A directory with nothing in it: nothing can be lost.
    EmptyDir,
    /// A directory holding a `manifest.json` pxebuild writes; `manifest` is
    /// that file's identity when it was looked at.
    Tree {
        manifest: FileStat,
    },
    /// Anything else, with why it is not pxebuild's (for messages).
    Foreign(String),
}

/// How far [`inspect`] looks into a directory's `manifest.json`.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Probe {
    /// A regular file by that name is enough (for paths this build checked
    /// fully before).
    Stat,
    /// Its JSON must have a `format` number.
    Manifest,
    /// The same, unless it is the very file (same identity) a build recorded
    /// publishing: then it was written by pxebuild and is not read again.
    Known(FileStat),
}

/// The output directory of a build, checked.
#[derive(Debug)]
pub(crate) struct Target {
    /// As given on the command line, for messages.
    pub given: PathBuf,
    /// Absolute, with the symlinks of its existing parents resolved; its
    /// siblings (`.NAME.lock`, `.NAME.spare`, ...) are derived from it.
    pub path: PathBuf,
    /// What was there when last checked (`None` before [`Target::check`]).
    found: Option<Found>,
}

impl Target {
    /// Resolves `given` and refuses an output that is, holds or lies inside
    /// one of `guarded` (nothing is read but paths).
    pub(crate) fn resolve(guarded: &[Guarded], given: &Path) -> Result<Target> {
        let path = resolve_out(given)?;
        refuse_guarded(guarded, given, &path)?;
        Ok(Target {
            given: given.to_path_buf(),
            path,
            found: None,
        })
    }

    /// Looks at what is there and refuses what is not pxebuild's to replace.
    /// `published` is the identity of the manifest the last build of this
    /// output recorded: a tree whose manifest is that very file needs no
    /// further look.
    pub(crate) fn check(&mut self, published: Option<FileStat>) -> Result<&Found> {
        let probe = published.map_or(Probe::Manifest, Probe::Known);
        let found = inspect(&self.path, probe)?;
        refuse_foreign(&self.given, &self.path, &found)?;
        Ok(self.found.insert(found))
    }

    /// False when the tree seen by the last check may have changed since
    /// (another build published while this one waited for the lock).
    pub(crate) fn unchanged(&self) -> bool {
        match &self.found {
            Some(Found::Tree { manifest }) => {
                manifest_stat(&self.path).ok().flatten() == Some(*manifest)
            }
            _ => false,
        }
    }

    pub(crate) fn found(&self) -> &Found {
        self.found.as_ref().unwrap_or(&Found::Absent)
    }

    /// A path in the output directory, as the operator named it.
    pub(crate) fn shown(&self, rel: &str) -> String {
        self.given.join(rel).display().to_string()
    }
}

/// `.NAME.<what>` beside the output directory `out`.
pub(crate) fn sibling(out: &Path, what: &str) -> PathBuf {
    let name = out
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    out.with_file_name(format!(".{name}.{what}"))
}

/// Absolute form of `given` with the symlinks of its parents resolved. The
/// last component is kept as it is (a symlink there is refused later, not
/// followed); `.` and `..` are resolved.
fn resolve_out(given: &Path) -> Result<PathBuf> {
    let last = given.components().next_back();
    let path = match (last, given.parent(), given.file_name()) {
        (Some(Component::Normal(_)), Some(parent), Some(name)) => {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            resolve(parent)?.join(name)
        }
        _ => resolve(given)?,
    };
    if path.file_name().is_none() {
        return Err(BadInput::new(format!(
            "--out {}: the file system root cannot be an output directory",
            given.display()
        )));
    }
    Ok(path)
}

/// `path` made absolute with its nearest existing ancestor canonicalised and
/// the rest (which does not exist, so holds no symlink) applied lexically.
pub(crate) fn resolve(path: &Path) -> Result<PathBuf> {
    let absolute =
        std::path::absolute(path).with_context(|| format!("resolving {}", path.display()))?;
    let mut tail = Vec::new();
    let mut base = absolute.as_path();
    let mut resolved = loop {
        match fs::canonicalize(base) {
            Ok(real) => break real,
            Err(_) => match (base.parent(), base.components().next_back()) {
                (Some(parent), Some(last)) => {
                    tail.push(last);
                    base = parent;
                }
                _ => break base.to_path_buf(),
            },
        }
    };
    for component in tail.into_iter().rev() {
        match component {
            Component::ParentDir => {
                resolved.pop();
            }
            Component::Normal(name) => resolved.push(name),
            _ => {}
        }
    }
    Ok(resolved)
}

/// A directory an output may not replace: what messages call it, where it
/// is, and whether a path inside it is off limits too (everything but the
/// site's directory, where dist/ itself lives).
pub(crate) type Guarded = (&'static str, PathBuf, bool);

/// Refuses an output that is, holds or (but for the site's own directory)
/// lies inside one of the site's inputs or the cache.
fn refuse_guarded(guarded: &[Guarded], given: &Path, out: &Path) -> Result<()> {
    for (what, dir, not_inside) in guarded {
        let real = resolve(dir)?;
        let relation = if real == out {
            "is"
        } else if real.starts_with(out) {
            "holds"
        } else if *not_inside && out.starts_with(&real) {
            "is inside"
        } else {
            continue;
        };
        return Err(BadInput::new(format!(
            "--out {} {relation} {what} ({}): a build replaces its output directory as a \
             whole, and the next build deletes what it replaced, so it never publishes \
             there. Publish into a directory of its own (the default is dist/ beside \
             site.toml)",
            given.display(),
            real.display()
        )));
    }
    Ok(())
}

fn refuse_foreign(given: &Path, out: &Path, found: &Found) -> Result<()> {
    let Found::Foreign(why) = found else {
        return Ok(());
    };
    let shown = if given == out {
        given.display().to_string()
    } else {
        format!("{} ({})", given.display(), out.display())
    };
    let advice = if why.starts_with("is a symbolic link") {
        "Name the directory the link points at instead"
    } else {
        "Move it away, or choose another --out"
    };
    Err(BadInput::new(format!(
        "--out {shown} {why}: a build replaces its output directory as a whole (what was \
         there is moved to {}, which the next build empties), so it only publishes to a \
         new path, an empty directory or a tree pxebuild published. {advice}",
        sibling(out, "spare").display()
    )))
}

/// What is at `path`.
pub(crate) fn inspect(path: &Path, probe: Probe) -> Result<Found> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(err) if err.kind() == ErrorKind::NotFound => return Ok(Found::Absent),
        Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
    };
    if meta.file_type().is_symlink() {
        let target = fs::read_link(path)
            .map(|t| t.display().to_string())
            .unwrap_or_else(|_| "?".into());
        return Ok(Found::Foreign(format!("is a symbolic link (to {target})")));
    }
    if !meta.is_dir() {
        return Ok(Found::Foreign("is a file, not a directory".into()));
    }
    let manifest = match manifest_stat(path) {
        Ok(Some(stat)) => stat,
        Ok(None) => {
            let mut entries =
                fs::read_dir(path).with_context(|| format!("reading {}", path.display()))?;
            return Ok(if entries.next().is_none() {
                Found::EmptyDir
            } else {
                Found::Foreign(format!(
                    "is not a tree pxebuild published (it has no {})",
                    manifest::FILE_NAME
                ))
            });
        }
        Err(why) => return Ok(Found::Foreign(why)),
    };
    match probe {
        Probe::Stat => return Ok(Found::Tree { manifest }),
        Probe::Known(known) if known == manifest => return Ok(Found::Tree { manifest }),
        Probe::Known(_) | Probe::Manifest => {}
    }
    let file = path.join(manifest::FILE_NAME);
    let bytes = fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    Ok(if has_format(&bytes) {
        Found::Tree { manifest }
    } else {
        Found::Foreign(format!(
            "is not a tree pxebuild published (its {} has no \"format\" number)",
            manifest::FILE_NAME
        ))
    })
}

/// The identity of `dir/manifest.json`: `None` when there is none, `Err`
/// (why, for messages) when something other than a regular file is there.
fn manifest_stat(dir: &Path) -> std::result::Result<Option<FileStat>, String> {
    use rustix::fs::{statat, AtFlags, FileType, CWD};
    match statat(
        CWD,
        dir.join(manifest::FILE_NAME),
        AtFlags::SYMLINK_NOFOLLOW,
    ) {
        Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {
            Ok(Some(FileStat::of(&st)))
        }
        Ok(_) => Err(format!(
            "is not a tree pxebuild published (its {} is not a regular file)",
            manifest::FILE_NAME
        )),
        Err(rustix::io::Errno::NOENT) => Ok(None),
        Err(err) => Err(format!("cannot be read ({}: {err})", manifest::FILE_NAME)),
    }
}

/// True for a JSON object whose `format` is a number, as every
/// `manifest.json` a build writes has (any format: a newer pxebuild's tree
/// is still pxebuild's).
fn has_format(bytes: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        format: u64,
    }
    serde_json::from_slice::<Probe>(bytes).is_ok_and(|p| p.format > 0)
}

/// A `.NAME.staging-<pid>` tree a killed build left: what the staging tree
/// of a build can hold at its top, and nothing else.
pub(crate) fn is_staging_tree(path: &Path) -> Result<bool> {
    let meta = fs::symlink_metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if !meta.is_dir() {
        return Ok(false);
    }
    let temp_prefix = format!(".{}.tmp.", manifest::FILE_NAME);
    for entry in fs::read_dir(path).with_context(|| format!("reading {}", path.display()))? {
        let entry = entry.with_context(|| format!("reading {}", path.display()))?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let ours = name == crate::layout::HTTP
            || name == crate::layout::TFTP
            || name == manifest::FILE_NAME
            || name.starts_with(&temp_prefix);
        if !ours {
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_handles_missing_tails_and_dot_dot() {
        let dir = tempfile::tempdir().unwrap();
        let real = fs::canonicalize(dir.path()).unwrap();
        fs::create_dir(real.join("a")).unwrap();
        assert_eq!(resolve(&real.join("a/x/../y")).unwrap(), real.join("a/y"));
        assert_eq!(resolve(&real.join("a/./b")).unwrap(), real.join("a/b"));
        std::os::unix::fs::symlink(real.join("a"), real.join("link")).unwrap();
        assert_eq!(resolve(&real.join("link/new")).unwrap(), real.join("a/new"));
    }

    #[test]
    fn only_pxebuild_trees_and_empty_directories_are_taken() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        assert_eq!(
            inspect(&p.join("none"), Probe::Manifest).unwrap(),
            Found::Absent
        );
        fs::create_dir(p.join("empty")).unwrap();
        assert_eq!(
            inspect(&p.join("empty"), Probe::Manifest).unwrap(),
            Found::EmptyDir
        );
        fs::write(p.join("file"), b"x").unwrap();
        assert!(matches!(
            inspect(&p.join("file"), Probe::Manifest).unwrap(),
            Found::Foreign(_)
        ));
        for (name, manifest) in [
            ("other", None),
            ("no-format", Some("{}")),
            ("not-json", Some("format: 1")),
            ("zero", Some(r#"{"format": 0}"#)),
        ] {
            let d = p.join(name);
            fs::create_dir(&d).unwrap();
            fs::write(d.join("keep.txt"), b"precious").unwrap();
            if let Some(text) = manifest {
                fs::write(d.join("manifest.json"), text).unwrap();
            }
            assert!(
                matches!(inspect(&d, Probe::Manifest).unwrap(), Found::Foreign(_)),
                "{name}"
            );
        }
        let tree = p.join("tree");
        fs::create_dir(&tree).unwrap();
        fs::write(tree.join("manifest.json"), r#"{"files": [], "format": 1}"#).unwrap();
        assert!(matches!(
            inspect(&tree, Probe::Manifest).unwrap(),
            Found::Tree { .. }
        ));
        // The manifest a build recorded publishing is trusted without a read.
        let odd = p.join("odd");
        fs::create_dir(&odd).unwrap();
        fs::write(odd.join("manifest.json"), "not json").unwrap();
        let known = manifest_stat(&odd).unwrap().unwrap();
        assert!(matches!(
            inspect(&odd, Probe::Known(known)).unwrap(),
            Found::Tree { .. }
        ));
        let other = FileStat {
            ino: known.ino + 1,
            ..known
        };
        assert!(matches!(
            inspect(&odd, Probe::Known(other)).unwrap(),
            Found::Foreign(_)
        ));
        std::os::unix::fs::symlink(&tree, p.join("link")).unwrap();
        assert!(matches!(
            inspect(&p.join("link"), Probe::Manifest).unwrap(),
            Found::Foreign(_)
        ));
    }
}
