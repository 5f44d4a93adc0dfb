//! Build script: records the commit the binary was built from, for
//! `pxebuild --version` ("0.1.0 (commit 1a2b3c4d)"; "-dirty" when tracked
//! files had changes). A build from a source tarball, without `.git` or
//! without git, says "unknown" rather than failing.
//!
//! It also lists the starter site built into the binary (`src/embedded.rs`):
//! the example `site.toml` and every file under `templates/` and `payload/`,
//! each included with `include_bytes!`, so `pxebuild init` and a site without
//! its own templates/ or payload/ need nothing beside the binary.
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=PXEBUILD_COMMIT");
    // A packager building from a tarball may name the commit themselves.
    let given = std::env::var("PXEBUILD_COMMIT")
        .ok()
        .filter(|c| !c.is_empty());
    let commit = given
        .or_else(commit)
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=PXEBUILD_COMMIT={commit}");
    watch_git();
    embed_starter_site();
}

/// Writes `$OUT_DIR/embedded.rs`: `FILES`, (path, bytes) for site.toml and
/// every file under templates/ and payload/, sorted by path.
fn embed_starter_site() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by Cargo"));
    let mut files = vec![root.join("site.toml")];
    for dir in ["templates", "payload"] {
        // A new or removed file changes the directory's listing: watched
        // recursively by naming the directory.
        println!("cargo:rerun-if-changed={dir}");
        collect(&root.join(dir), &mut files);
    }
    println!("cargo:rerun-if-changed=site.toml");
    files.sort();
    let mut out = String::from("pub(crate) static FILES: &[(&str, &[u8])] = &[\n");
    for path in &files {
        let rel = path.strip_prefix(&root).expect("listed under the root");
        let rel = rel.to_str().expect("starter file names are UTF-8");
        writeln!(
            out,
            "    ({rel:?}, include_bytes!({:?})),",
            path.display().to_string()
        )
        .expect("writing to a String");
    }
    out.push_str("];\n");
    let dest =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("set by Cargo")).join("embedded.rs");
    std::fs::write(&dest, out).expect("writing embedded.rs");
}

/// Every regular file under `dir`, recursively.
fn collect(dir: &Path, files: &mut Vec<PathBuf>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let entry = entry.expect("reading a directory entry");
        let kind = entry.file_type().expect("reading a file type");
        if kind.is_dir() {
            collect(&entry.path(), files);
        } else if kind.is_file() {
            files.push(entry.path());
        }
    }
}

/// `git rev-parse --short HEAD`, with "-dirty" when tracked files changed.
fn commit() -> Option<String> {
    let hash = git(&["rev-parse", "--short", "HEAD"])?;
    let dirty =
        // Without optional locks git does not refresh (rewrite) the index,
        // which would make Cargo run this again on the next build.
        git(&["--no-optional-locks", "status", "--porcelain", "--untracked-files=no"])
            .is_some_and(|out| !out.is_empty());
    Some(if dirty { format!("{hash}-dirty") } else { hash })
}

/// Rebuilds when HEAD moves (a checkout), the branch it names moves (a
/// commit) or the index changes (staging, which often follows an edit).
/// Paths come from git itself: in a worktree `.git` is a file naming the
/// real directory, and branches live in the common one.
fn watch_git() {
    let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]).map(PathBuf::from) else {
        return;
    };
    // Relative to the package root, like the paths Cargo is given.
    let common = git(&["rev-parse", "--git-common-dir"])
        .map(PathBuf::from)
        .unwrap_or_else(|| dir.clone());
    let mut watched = vec![dir.join("HEAD"), dir.join("index")];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(common.join(branch));
        watched.push(common.join("packed-refs"));
    }
    // A path that does not exist would make Cargo rerun this on every build.
    for path in watched.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
    // An edit makes the tree dirty; the crate is recompiled then anyway.
    println!("cargo:rerun-if-changed=src");
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    Some(text.trim().to_string()).filter(|t| !t.is_empty())
}
