//! Dropping root after the privileged ports are bound (`--user NAME`): supplementary
//! groups, then the group, then the user, and a check that root cannot be regained.
//! The alternative, documented in docs/serve.md, is running unprivileged with
//! `CAP_NET_BIND_SERVICE` (systemd `AmbientCapabilities=`).
use std::ffi::CString;
use std::io;

use anyhow::{bail, Context, Result};

/// Whether the process runs as root (the effective user).
pub(crate) fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Switches the whole process to `user`. A no-op when not running as root.
pub(crate) fn drop_to(user: &str) -> Result<()> {
    if !is_root() {
        crate::verbose!("not root; --user {user} has nothing to drop");
        return Ok(());
    }
    let (uid, gid) = lookup(user)?;
    // SAFETY: plain syscalls on integers; a one-element array for setgroups.
    unsafe {
        if libc::setgroups(1, &gid) != 0 {
            return Err(io::Error::last_os_error()).context("setgroups");
        }
        if libc::setgid(gid) != 0 {
            return Err(io::Error::last_os_error()).context("setgid");
        }
        if libc::setuid(uid) != 0 {
            return Err(io::Error::last_os_error()).context("setuid");
        }
        if uid != 0 && libc::setuid(0) == 0 {
            bail!("could regain root after dropping to {user}");
        }
    }
    crate::info!("running as user {user} (uid {uid}, gid {gid})");
    Ok(())
}

fn lookup(user: &str) -> Result<(libc::uid_t, libc::gid_t)> {
    let name = CString::new(user).context("user name contains NUL")?;
    // SAFETY: getpwnam reads a NUL-terminated string and returns a pointer into
    // static storage, read at once before any other passwd call.
    unsafe {
        let entry = libc::getpwnam(name.as_ptr());
        if entry.is_null() {
            return Err(crate::error::BadInput::new(format!("no such user: {user}")));
        }
        Ok(((*entry).pw_uid, (*entry).pw_gid))
    }
}
