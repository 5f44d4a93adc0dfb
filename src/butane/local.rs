//! Resolution of `local:` references against `--files-dir`.
//!
//! A local path must be relative, may not climb out of the files directory
//! with `..` (checked lexically), and may not reach outside it through
//! symlinks (checked on the canonical path).
use std::path::{Component, Path, PathBuf};

/// Resolves `rel` inside `files_dir`; the error is a message for the user.
pub(super) fn resolve(files_dir: Option<&Path>, rel: &str) -> Result<PathBuf, String> {
    let dir = files_dir.ok_or("local file references need a files directory (--files-dir)")?;
    let mut clean = PathBuf::new();
    for comp in Path::new(rel).components() {
        match comp {
            Component::Normal(c) => clean.push(c),
            Component::CurDir => {}
            Component::ParentDir => {
                if !clean.pop() {
                    return Err(format!("local path \"{rel}\" escapes the files directory"));
                }
            }
            Component::RootDir | Component::Prefix(_) => {
                return Err(format!(
                    "local path \"{rel}\" must be relative to the files directory"
                ));
            }
        }
    }
    let base = dir
        .canonicalize()
        .map_err(|e| format!("files directory {}: {e}", dir.display()))?;
    let full = base.join(&clean);
    let real = full
        .canonicalize()
        .map_err(|e| format!("local path \"{rel}\" ({}): {e}", full.display()))?;
    if !real.starts_with(&base) {
        return Err(format!(
            "local path \"{rel}\" leaves the files directory through a symlink"
        ));
    }
    Ok(real)
}

/// Reads a local file's bytes.
pub(super) fn read(files_dir: Option<&Path>, rel: &str) -> Result<Vec<u8>, String> {
    let path = resolve(files_dir, rel)?;
    std::fs::read(&path).map_err(|e| format!("reading local file {}: {e}", path.display()))
}

/// Reads a local file as UTF-8 text (units, dropins, SSH keys).
pub(super) fn read_text(files_dir: Option<&Path>, rel: &str) -> Result<String, String> {
    let bytes = read(files_dir, rel)?;
    String::from_utf8(bytes).map_err(|_| format!("local file \"{rel}\" is not UTF-8 text"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_inside_and_refuses_escapes() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("a.txt"), b"x").unwrap();
        std::fs::write(outside.path().join("secret"), b"s").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), tmp.path().join("link")).unwrap();
        std::fs::create_dir(tmp.path().join("sub")).unwrap();
        let dir = Some(tmp.path());
        assert_eq!(read(dir, "sub/../a.txt").unwrap(), b"x");
        assert!(read(dir, "../a.txt").unwrap_err().contains("escapes"));
        assert!(read(dir, "/etc/passwd").unwrap_err().contains("relative"));
        assert!(read(dir, "link").unwrap_err().contains("symlink"));
        assert!(read(None, "a.txt").unwrap_err().contains("--files-dir"));
        assert!(read(dir, "missing").is_err());
    }
}
