//! `secrets/` beside site.toml: everything that must outlive every build.
//!
//! Created once (directory 0700, files 0600) and never replaced by a build:
//! `ca.crt ca.key front-proxy-ca.crt front-proxy-ca.key etcd-ca.crt etcd-ca.key
//! sa.key sa.pub bootstrap-token bootstrap-token.created node-ids.toml kubeconfig`.
//! `bootstrap-token.created` holds the Unix time the token was made.
//! Replacing the token is the explicit [`rotate_token`], replacing the update
//! key (which signs the sysext listings nodes update from) the explicit
//! [`rotate_update_key`].
//!
//! - **First creation is atomic.** The whole set is made in a staging
//!   directory beside `secrets/` ([`STAGING_DIR`], 0700) and renamed into
//!   place, so `secrets/` either does not exist or is complete; a staging
//!   directory left by a killed run is removed and made again. Later
//!   additions (a new node's id, a re-minted kubeconfig) are single files
//!   written as temp file + rename.
//! - **Never a new CA beside a built tree.** The trees checked are the one
//!   the command names (`--out`, `dist` in the working directory by default)
//!   and the site's own `dist/` beside site.toml ([`crate::layout::SITE_DIST`]). Missing
//!   secrets next to either are an error, never new ones: the nodes already
//!   trust the old ones. The same holds for each root secret, for
//!   `node-ids.toml`, and for the id of every node such a tree already has
//!   (a new id would move its Ignition URL); only the kubeconfig, derived
//!   from the CA, is re-minted when missing. The update key is made beside a
//!   tree only when that tree serves no signed listing (built before
//!   listings were signed: its nodes trust no key yet).
//! - **Loaded secrets are checked.** Every file must parse, every CA key must
//!   be the key of its certificate and `sa.key` the key of `sa.pub`; anything
//!   else is bad input (exit 2) naming the file by its full path and saying
//!   what to do. A directory or file that other users can access is set back
//!   to 0700 / 0600 with a warning.
//! - **One pxebuild at a time.** Loading takes an exclusive `flock` on the
//!   site directory, so two commands never create or extend the set at once.
//!
//! The parts: [`store`] holds [`Secrets`] and decides what may be made and
//! when; [`files`] names each file and reads and writes it; [`guard`] locks
//! the site and keeps the modes private; [`wording`] words the refusals.
mod files;
mod guard;
pub mod kubeconfig;
pub(crate) mod node_ids;
pub mod pki;
mod store;
pub mod token;
pub(crate) mod update_key;
mod wording;

use std::path::Path;

use anyhow::Result;

use crate::error::BadInput;
use crate::site::Site;
pub use files::{FILES, STAGING_DIR, TOKEN_CREATED_FILE, TOKEN_FILE};
pub use pki::CertPair;
pub use store::Secrets;
use wording::shown;

/// Loads the site's secrets, creating whatever is missing on a fresh site.
/// `out` is the boot tree the command publishes to (or, for `secrets init`,
/// names); it and the site's own `dist/` are the built trees checked: beside
/// one, missing root secrets or a lost node id are an error instead of being
/// created.
pub fn ensure(site: &Site, out: Option<&Path>) -> Result<Secrets> {
    let _lock = guard::lock_site(&site.dir)?;
    store::ensure(site, &site.secrets_dir(), out)
}

/// Loads existing secrets without creating anything (for `secrets show`).
pub fn load(site: &Site) -> Result<Secrets> {
    let dir = site.secrets_dir();
    if !dir.exists() {
        return Err(BadInput::new(format!(
            "{} does not exist; create it with `pxebuild secrets init` (or a build), or \
             restore it from your backup",
            shown(&dir)
        )));
    }
    let _lock = guard::lock_site(&site.dir)?;
    guard::check(&dir)?;
    store::load_existing(&dir)
}

/// Replaces the bootstrap token (the only secret a command may replace).
/// Returns the new token. Nodes that have not joined yet need a rebuilt tree,
/// and a running cluster must learn the token (`pxebuild token publish`).
pub fn rotate_token(site: &Site) -> Result<String> {
    let dir = site.secrets_dir();
    let _lock = guard::lock_site(&site.dir)?;
    guard::check(&dir)?;
    let new = token::generate();
    files::write_token(&dir, &new)?;
    Ok(new)
}

/// Replaces the update key, on request only: nodes installed earlier trust
/// the old key (their `/etc/systemd/import-pubring.gpg`) and refuse listings
/// signed by the new one until they are given its public key
/// (docs/operations.md). Returns the new key.
pub fn rotate_update_key(site: &Site) -> Result<update_key::UpdateKey> {
    let dir = site.secrets_dir();
    let _lock = guard::lock_site(&site.dir)?;
    guard::check(&dir)?;
    let key = update_key::UpdateKey::generate(&site.file.cluster.name)?;
    files::replace_update_key(&dir, &key)?;
    Ok(key)
}
