//! The one path resolver, shared by TFTP and HTTP: the only way from a client's
//! request path to an open file. Both protocols call [`Root::open`], so the rules
//! cannot drift apart:
//!
//! - lexical: no NUL, no backslash, no absolute path, no `..` component, no `%`
//!   left after the protocol's own decoding (a double-encoded `%252e` stays
//!   refused), no empty name;
//! - on disk: `openat2(RESOLVE_BENEATH)` relative to the root, so a symlink that
//!   leaves the root is refused by the kernel, while symlinks inside it work;
//! - only regular files are served (no directories, devices or FIFOs).
//!
//! The root directory is opened anew for every request, so a `dist/` swapped in by
//! a concurrent build is picked up at once, while files already open keep serving
//! the old tree's bytes.
use std::fs::File;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// Why a request path is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The name breaks a lexical rule (the reason is logged).
    Invalid(&'static str),
    /// The name resolves outside the root (symlink escape).
    Escapes,
    NotFound,
    /// A directory or special file.
    NotAFile,
    /// The OS refused to open the file (permissions).
    Denied,
}

impl Refusal {
    /// Short word for log lines.
    pub fn as_str(&self) -> &'static str {
        match self {
            Refusal::Invalid(why) => why,
            Refusal::Escapes => "escapes-root",
            Refusal::NotFound => "not-found",
            Refusal::NotAFile => "not-a-file",
            Refusal::Denied => "denied",
        }
    }
}

/// An opened regular file and what the rest of the server needs to know of it.
#[derive(Debug)]
pub struct Opened {
    pub file: File,
    pub size: u64,
    /// The normalized request path, relative to the root (`a/b`, no `.`/`//`).
    pub rel: String,
    /// Device and inode, for access rules that must hold across aliases.
    pub id: (u64, u64),
    pub mtime: i64,
}

/// A directory served read-only.
#[derive(Debug, Clone)]
pub struct Root {
    dir: PathBuf,
}

impl Root {
    pub fn new(dir: impl Into<PathBuf>) -> Root {
        Root { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Resolves and opens `request` (already decoded by the protocol).
    pub fn open(&self, request: &str) -> Result<Opened, Refusal> {
        let rel = normalize(request)?;
        let dir = rustix::fs::open(
            &self.dir,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|_| Refusal::NotFound)?;
        let fd = open_beneath(&dir, &self.dir, &rel)?;
        let stat = rustix::fs::fstat(&fd).map_err(|_| Refusal::NotFound)?;
        if rustix::fs::FileType::from_raw_mode(stat.st_mode) != rustix::fs::FileType::RegularFile {
            return Err(Refusal::NotAFile);
        }
        Ok(Opened {
            file: File::from(fd),
            size: stat.st_size as u64,
            rel,
            id: (stat.st_dev, stat.st_ino),
            mtime: stat.st_mtime,
        })
    }
}

/// Lexical rules; returns the normalized relative path.
pub fn normalize(request: &str) -> Result<String, Refusal> {
    if request.contains('\0') {
        return Err(Refusal::Invalid("nul-byte"));
    }
    if request.contains('\\') {
        return Err(Refusal::Invalid("backslash"));
    }
    if request.starts_with('/') {
        return Err(Refusal::Invalid("absolute-path"));
    }
    if request.contains('%') {
        return Err(Refusal::Invalid("encoded-name"));
    }
    if request.chars().any(char::is_control) {
        return Err(Refusal::Invalid("control-char"));
    }
    let mut parts = Vec::new();
    for part in request.split('/') {
        match part {
            "" | "." => continue,
            ".." => return Err(Refusal::Invalid("dot-dot")),
            _ => parts.push(part),
        }
    }
    // A name that ends in `/` or `/.` (or is empty: the root) names a
    // directory, as it does for open(2), even when a file has that name
    // without the slash; directories are never served.
    if parts.is_empty() || matches!(request.rsplit('/').next(), Some("" | ".")) {
        return Err(Refusal::NotAFile);
    }
    Ok(parts.join("/"))
}

fn open_beneath(dir: &OwnedFd, dir_path: &Path, rel: &str) -> Result<OwnedFd, Refusal> {
    // NONBLOCK: opening a FIFO must not hang the worker; it is refused after fstat.
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK;
    let resolve = ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS;
    match rustix::fs::openat2(dir, rel, flags, Mode::empty(), resolve) {
        Ok(fd) => Ok(fd),
        Err(rustix::io::Errno::NOSYS) => open_checked(dir_path, rel, flags),
        Err(err) => Err(refusal_for(err)),
    }
}

/// Fallback for kernels before 5.6 (no openat2): canonicalize, require the result
/// to sit under the canonical root, and open it without following a final link.
fn open_checked(dir_path: &Path, rel: &str, flags: OFlags) -> Result<OwnedFd, Refusal> {
    let root = dir_path.canonicalize().map_err(|_| Refusal::NotFound)?;
    let path = root
        .join(rel)
        .canonicalize()
        .map_err(|e| refusal_for_io(&e))?;
    if !path.starts_with(&root) {
        return Err(Refusal::Escapes);
    }
    rustix::fs::open(&path, flags | OFlags::NOFOLLOW, Mode::empty()).map_err(refusal_for)
}

fn refusal_for(err: rustix::io::Errno) -> Refusal {
    refusal_for_io(&io::Error::from(err))
}

fn refusal_for_io(err: &io::Error) -> Refusal {
    match err.raw_os_error() {
        Some(libc::EXDEV) | Some(libc::ELOOP) => Refusal::Escapes,
        Some(libc::EACCES) | Some(libc::EPERM) => Refusal::Denied,
        _ => Refusal::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn lexical_rules() {
        assert_eq!(normalize("a/./b//c").unwrap(), "a/b/c");
        assert_eq!(
            normalize("pxelinux.cfg/01-aa").unwrap(),
            "pxelinux.cfg/01-aa"
        );
        assert_eq!(normalize("../etc/passwd"), Err(Refusal::Invalid("dot-dot")));
        assert_eq!(normalize("a/../../b"), Err(Refusal::Invalid("dot-dot")));
        assert_eq!(
            normalize("/etc/passwd"),
            Err(Refusal::Invalid("absolute-path"))
        );
        assert_eq!(normalize("a\\..\\b"), Err(Refusal::Invalid("backslash")));
        assert_eq!(normalize("a\0b"), Err(Refusal::Invalid("nul-byte")));
        assert_eq!(normalize("%2e%2e/x"), Err(Refusal::Invalid("encoded-name")));
        assert_eq!(normalize("./"), Err(Refusal::NotAFile));
        assert_eq!(normalize(""), Err(Refusal::NotAFile));
        assert_eq!(normalize("dhcp/dnsmasq.conf/"), Err(Refusal::NotAFile));
        assert_eq!(normalize("dhcp/dnsmasq.conf/."), Err(Refusal::NotAFile));
        assert_eq!(normalize("./dhcp/x").unwrap(), "dhcp/x");
        assert_eq!(normalize("a\nb"), Err(Refusal::Invalid("control-char")));
    }

    #[test]
    fn symlinks_inside_work_and_outside_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/file"), b"hello").unwrap();
        std::fs::write(tmp.path().join("secret"), b"no").unwrap();
        symlink("sub/file", root.join("inside")).unwrap();
        symlink("../secret", root.join("outside")).unwrap();
        symlink("/etc/hostname", root.join("absolute")).unwrap();
        let root = Root::new(&root);
        let opened = root.open("inside").unwrap();
        assert_eq!((opened.size, opened.rel.as_str()), (5, "inside"));
        assert_eq!(root.open("outside").unwrap_err(), Refusal::Escapes);
        assert_eq!(root.open("absolute").unwrap_err(), Refusal::Escapes);
        assert_eq!(root.open("sub").unwrap_err(), Refusal::NotAFile);
        assert_eq!(root.open("missing").unwrap_err(), Refusal::NotFound);
    }

    #[test]
    fn fifo_is_not_a_file_and_does_not_block() {
        let tmp = tempfile::tempdir().unwrap();
        let fifo = tmp.path().join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            Mode::from_raw_mode(0o644),
            0,
        )
        .unwrap();
        assert_eq!(
            Root::new(tmp.path()).open("fifo").unwrap_err(),
            Refusal::NotAFile
        );
    }
}
