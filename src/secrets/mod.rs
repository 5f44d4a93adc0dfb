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
pub mod kubeconfig;
pub mod node_ids;
pub mod pki;
pub mod token;
pub mod update_key;

use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::error::BadInput;
use crate::site::Site;
pub use pki::CertPair;

/// The CA pairs: file stem and subject CN.
const CAS: [(&str, &str); 3] = [
    ("ca", "kubernetes"),
    ("front-proxy-ca", "front-proxy-ca"),
    ("etcd-ca", "etcd-ca"),
];
pub const TOKEN_FILE: &str = "bootstrap-token";
pub const TOKEN_CREATED_FILE: &str = "bootstrap-token.created";
/// Where the first set is made before it is renamed to `secrets/` (beside it).
pub const STAGING_DIR: &str = ".secrets.staging";
/// Every file of a complete set (their modes are checked on every load).
pub const FILES: [&str; 13] = [
    "ca.crt",
    "ca.key",
    "front-proxy-ca.crt",
    "front-proxy-ca.key",
    "etcd-ca.crt",
    "etcd-ca.key",
    "sa.key",
    "sa.pub",
    TOKEN_FILE,
    TOKEN_CREATED_FILE,
    node_ids::FILE,
    kubeconfig::FILE,
    update_key::FILE,
];
/// How many lost node ids an error lists line by line.
const LOST_IDS_LISTED: usize = 20;

/// The loaded secrets of a site.
#[derive(Clone)]
pub struct Secrets {
    pub dir: PathBuf,
    pub ca: CertPair,
    pub front_proxy_ca: CertPair,
    pub etcd_ca: CertPair,
    pub sa_key: String,
    pub sa_pub: String,
    pub token: String,
    /// Unix time the token was created.
    pub token_created: i64,
    pub node_ids: BTreeMap<String, String>,
    /// `sha256:<hex>` of the cluster CA's SubjectPublicKeyInfo.
    pub ca_hash: String,
    /// Signs the sysext listings (`SHA256SUMS.gpg`) nodes update from.
    pub update_key: update_key::UpdateKey,
    /// Files this call created (empty on every build after the first).
    pub created: Vec<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("dir", &self.dir)
            .field("ca_hash", &self.ca_hash)
            .finish_non_exhaustive()
    }
}

impl Secrets {
    /// SHA-256 over every secret's bytes: goes into step keys instead of the
    /// secrets themselves (keys are stored in the cache in clear).
    pub fn fingerprint(&self) -> String {
        let mut all = String::new();
        for pair in [&self.ca, &self.front_proxy_ca, &self.etcd_ca] {
            all.push_str(&pair.cert_pem);
            all.push_str(&pair.key_pem);
        }
        for part in [&self.sa_key, &self.sa_pub, &self.token] {
            all.push_str(part);
        }
        for (name, id) in &self.node_ids {
            all.push_str(&format!("{name}={id}\n"));
        }
        all.push_str(&self.update_key.fingerprint());
        crate::digest::sha256_hex(all.as_bytes())
    }

    /// `<node>-<random id>`: the node's Ignition directory name.
    pub fn node_dir_name(&self, node: &str) -> Result<String> {
        let id = self
            .node_ids
            .get(node)
            .with_context(|| format!("secrets/node-ids.toml has no id for node {node}"))?;
        Ok(crate::layout::node_dir_name(node, id))
    }
}

/// Loads the site's secrets, creating whatever is missing on a fresh site.
/// `out` is the boot tree the command publishes to (or, for `secrets init`,
/// names); it and the site's own `dist/` are the built trees checked: beside
/// one, missing root secrets or a lost node id are an error instead of being
/// created.
pub fn ensure(site: &Site, out: Option<&Path>) -> Result<Secrets> {
    let dir = site.secrets_dir();
    let _lock = lock_site(&site.dir)?;
    let staging = site.dir.join(STAGING_DIR);
    if std::fs::symlink_metadata(&staging).is_ok() {
        // Only a killed first creation leaves it; it was never published.
        std::fs::remove_dir_all(&staging)
            .with_context(|| format!("removing {}", shown(&staging)))?;
        crate::info!(
            "removed {} (left by an interrupted run; nothing in it was used)",
            shown(&staging)
        );
    }
    let trees = built_trees(site, out);
    let absent =
        std::fs::symlink_metadata(&dir).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound);
    if absent {
        if let Some(tree) = trees.first() {
            return Err(missing_error(&dir, tree, "the directory"));
        }
        return create_all(site, &dir, &staging);
    }
    check_dir(&dir)?;
    check_file_modes(&dir);
    fill(site, &dir, &trees)
}

/// The first set, made in `staging` and renamed to `dir` in one step.
fn create_all(site: &Site, dir: &Path, staging: &Path) -> Result<Secrets> {
    crate::fsutil::create_private_dir(staging)?;
    let made = fill(site, staging, &[]).and_then(|secrets| {
        crate::fsutil::fsync_dir(staging)?;
        publish_dir(staging, dir)?;
        Ok(secrets)
    });
    let mut secrets = match made {
        Ok(secrets) => secrets,
        Err(err) => {
            let _ = std::fs::remove_dir_all(staging);
            return Err(err);
        }
    };
    secrets.dir = dir.to_path_buf();
    crate::info!("created {} (keep it private and backed up)", shown(dir));
    Ok(secrets)
}

/// Renames the complete `staging` to `dir`, which must not exist.
fn publish_dir(staging: &Path, dir: &Path) -> Result<()> {
    use rustix::fs::{renameat_with, RenameFlags, CWD};
    renameat_with(CWD, staging, CWD, dir, RenameFlags::NOREPLACE)
        .with_context(|| format!("renaming {} to {}", shown(staging), shown(dir)))?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    crate::fsutil::fsync_dir(parent)
}

/// Reads (or, where allowed, creates) every secret in `dir`. `trees` are the
/// built trees beside which nothing root may be created.
fn fill(site: &Site, dir: &Path, trees: &[PathBuf]) -> Result<Secrets> {
    let built = trees.first().map(PathBuf::as_path);
    let mut created = Vec::new();
    let mut pairs = Vec::new();
    for (stem, cn) in CAS {
        pairs.push(ensure_ca(dir, stem, cn, built, &mut created)?);
    }
    let [ca, front_proxy_ca, etcd_ca]: [CertPair; 3] = pairs.try_into().expect("three CA pairs");
    let (sa_key, sa_pub) = ensure_sa(dir, built, &mut created)?;
    let (tok, token_created) = ensure_token(dir, built, &mut created)?;
    let ids_path = dir.join(node_ids::FILE);
    if let (Some(tree), false) = (built, ids_path.exists()) {
        // New ids would move every node's Ignition URL away from the one its
        // boot config and any installed disk already name.
        return Err(missing_error(&ids_path, tree, "the node ids file"));
    }
    let mut node_ids = node_ids::load(dir)?;
    let names = site.file.nodes.iter().map(|n| n.name.as_str());
    let added = node_ids::without_id(&node_ids, names);
    if !added.is_empty() {
        refuse_lost_ids(&ids_path, trees, &added)?;
        node_ids::add(dir, &mut node_ids, &added)?;
        created.push(format!("{} ({})", node_ids::FILE, few(&added)));
    }
    ensure_kubeconfig(dir, site, &ca, &mut created)?;
    let update_key = ensure_update_key(dir, site, trees, &mut created)?;
    let ca_hash = pki::ca_cert_hash(&ca.cert_pem)?;
    Ok(Secrets {
        dir: dir.to_path_buf(),
        ca,
        front_proxy_ca,
        etcd_ca,
        sa_key,
        sa_pub,
        token: tok,
        token_created,
        node_ids,
        ca_hash,
        update_key,
        created,
    })
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
    let _lock = lock_site(&site.dir)?;
    check_dir(&dir)?;
    check_file_modes(&dir);
    load_existing(&dir)
}

fn load_existing(dir: &Path) -> Result<Secrets> {
    let ca = read_pair(dir, "ca")?;
    let front_proxy_ca = read_pair(dir, "front-proxy-ca")?;
    let etcd_ca = read_pair(dir, "etcd-ca")?;
    let (sa_key, sa_pub) = read_sa(dir)?;
    let (tok, token_created) = read_token(dir)?;
    let node_ids = node_ids::load(dir)?;
    if !dir.join(update_key::FILE).exists() {
        // A site set up before listings were signed.
        return Err(BadInput::new(format!(
            "{} has no update key ({}) yet; `pxebuild secrets init` or the next build makes it",
            shown(dir),
            update_key::FILE
        )));
    }
    let update_key = read_update_key(dir)?;
    let ca_hash = pki::ca_cert_hash(&ca.cert_pem)?;
    Ok(Secrets {
        dir: dir.to_path_buf(),
        ca,
        front_proxy_ca,
        etcd_ca,
        sa_key,
        sa_pub,
        token: tok,
        token_created,
        node_ids,
        ca_hash,
        update_key,
        created: Vec::new(),
    })
}

/// Replaces the bootstrap token (the only secret a command may replace).
/// Returns the new token. Nodes that have not joined yet need a rebuilt tree,
/// and a running cluster must learn the token (`pxebuild token publish`).
pub fn rotate_token(site: &Site) -> Result<String> {
    let dir = site.secrets_dir();
    let _lock = lock_site(&site.dir)?;
    check_dir(&dir)?;
    check_file_modes(&dir);
    let new = token::generate();
    write_token(&dir, &new)?;
    Ok(new)
}

/// Replaces the update key, on request only: nodes installed earlier trust
/// the old key (their `/etc/systemd/import-pubring.gpg`) and refuse listings
/// signed by the new one until they are given its public key
/// (docs/operations.md). Returns the new key.
pub fn rotate_update_key(site: &Site) -> Result<update_key::UpdateKey> {
    let dir = site.secrets_dir();
    let _lock = lock_site(&site.dir)?;
    check_dir(&dir)?;
    check_file_modes(&dir);
    let key = update_key::UpdateKey::generate(&site.file.cluster.name)?;
    crate::fsutil::atomic_write(
        &dir.join(update_key::FILE),
        key.armored()?.as_bytes(),
        0o600,
    )?;
    Ok(key)
}

/// `path` as messages show it: absolute, so it names the site's directory
/// whatever the working directory was.
pub(crate) fn shown(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// The built trees (holding `manifest.json`) the secrets belong to: `out`,
/// then the site's own `dist/`; each once.
fn built_trees(site: &Site, out: Option<&Path>) -> Vec<PathBuf> {
    let mut trees: Vec<PathBuf> = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    let candidates = out
        .map(Path::to_path_buf)
        .into_iter()
        .chain([site.dir.join(crate::layout::SITE_DIST)]);
    for tree in candidates {
        if !tree.join(crate::manifest::FILE_NAME).is_file() {
            continue;
        }
        let same = tree.canonicalize().unwrap_or_else(|_| tree.clone());
        if !seen.contains(&same) {
            seen.push(same);
            trees.push(tree);
        }
    }
    trees
}

/// Serialises the commands that read or write one site's secrets: an
/// exclusive `flock` on the site directory, held until the file is dropped.
/// File systems that cannot lock a directory get no lock (as before).
fn lock_site(site_dir: &Path) -> Result<Option<File>> {
    use rustix::fs::{flock, FlockOperation};
    use rustix::io::Errno;
    let Ok(file) = File::open(site_dir) else {
        return Ok(None);
    };
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(Errno::WOULDBLOCK) => {
            crate::info!(
                "waiting for another pxebuild using the secrets of {}",
                shown(site_dir)
            );
            flock(&file, FlockOperation::LockExclusive)
                .with_context(|| format!("locking {}", shown(site_dir)))?;
            Ok(Some(file))
        }
        Err(err) => {
            crate::verbose!("not locking {}: {err}", shown(site_dir));
            Ok(None)
        }
    }
}

/// Names a few nodes; a rack of hundreds gets a count.
fn few(names: &[&str]) -> String {
    match names.len() {
        0..=8 => names.join(", "),
        n => format!("{}, … {n} nodes", names[..3].join(", ")),
    }
}

fn missing_error(path: &Path, tree: &Path, what: &str) -> anyhow::Error {
    let dist = shown(tree);
    let dir = match path.file_name() {
        Some(name) if name == "secrets" => shown(path),
        _ => path.parent().map_or_else(|| shown(path), shown),
    };
    BadInput::new(format!(
        "{what} {} is missing, but {dist} was built from it and its nodes trust \
         that CA and token. Restore {dir} from your backup, or delete {dist} \
         deliberately to start a new cluster with new secrets",
        shown(path),
    ))
}

/// Refuses new ids for nodes that a built tree already has: their boot
/// configs and installed disks name the old id, so the line was lost, not
/// never written. Names the lines to restore (the ids are part of the trees'
/// Ignition directory names) and how to give a node a new id on purpose.
fn refuse_lost_ids(ids_path: &Path, trees: &[PathBuf], new: &[&str]) -> Result<()> {
    // (node, tree, the id that tree uses)
    let mut lost: Vec<(&str, &Path, Option<String>)> = Vec::new();
    for tree in trees {
        let manifest = crate::manifest::Manifest::load(tree).map_err(|err| {
            BadInput::new(format!(
                "{} has no id for {}, and whether {} already serves {} cannot be told: \
                 {err:#}. Restore {} from your backup, or delete {} deliberately",
                shown(ids_path),
                few(new),
                shown(tree),
                if new.len() == 1 { "it" } else { "them" },
                node_ids::FILE,
                shown(tree),
            ))
        })?;
        for name in new {
            if lost.iter().any(|(n, _, _)| n == name)
                || !manifest.nodes.iter().any(|n| n.name == *name)
            {
                continue;
            }
            let id = manifest
                .access
                .iter()
                .filter(|a| a.node == *name)
                .filter_map(|a| crate::layout::node_dir_of(&a.path))
                .find_map(|dir| node_ids::id_in_dir_name(dir, name))
                .map(str::to_string);
            lost.push((name, tree, id));
        }
    }
    if lost.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = lost.iter().map(|(n, _, _)| *n).collect();
    let mut with: Vec<&Path> = Vec::new();
    for (_, tree, _) in &lost {
        if !with.contains(tree) {
            with.push(tree);
        }
    }
    let mut lines = String::new();
    for (name, tree, id) in lost.iter().take(LOST_IDS_LISTED) {
        match id {
            Some(id) => lines.push_str(&format!("\n  {name} = \"{id}\"")),
            None => lines.push_str(&format!(
                "\n  {name}: its id is the {name}-<id> directory name under {}",
                shown(&crate::layout::ignition_root(tree))
            )),
        }
        if with.len() > 1 {
            lines.push_str(&format!("  (in {})", shown(tree)));
        }
    }
    if lost.len() > LOST_IDS_LISTED {
        lines.push_str(&format!(
            "\n  … and {} more (the <node>-<id> directory names under {}/)",
            lost.len() - LOST_IDS_LISTED,
            crate::layout::http_path(crate::layout::IGNITION)
        ));
    }
    let (nodes, why, lines_word) = if names.len() == 1 {
        (
            "that node",
            "its boot config and any disk installed from it name the old id, and a new \
             one would move its Ignition URL",
            "line",
        )
    } else {
        (
            "those nodes",
            "their boot configs and any disks installed from them name the old ids, and \
             new ones would move their Ignition URLs",
            "lines",
        )
    };
    let with: Vec<String> = with.iter().map(|t| shown(t)).collect();
    let (has, uses) = if with.len() == 1 {
        ("has", "the tree uses")
    } else {
        ("have", "the trees use")
    };
    Err(BadInput::new(format!(
        "{} has no id for {}, but {} already {has} {nodes}: {why}. Restore the {lines_word} \
         from your backup; {uses}:{lines}\n\
         To give a node a new id on purpose, build once without it in site.toml (that \
         removes it from the tree), then add it back and build again",
        shown(ids_path),
        few(&names),
        with.join(" and "),
    )))
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

/// Reads a secret as text; an unreadable file is bad input naming it.
fn read(dir: &Path, name: &str, remedy: &str) -> Result<String> {
    let path = dir.join(name);
    std::fs::read_to_string(&path)
        .map_err(|e| BadInput::new(format!("cannot read {}: {e}; {remedy}", shown(&path))))
}

/// Bad input: `path` holds something unusable (`err` says what).
fn corrupt(path: &Path, err: anyhow::Error, remedy: &str) -> anyhow::Error {
    BadInput::new(format!("{}: {err:#}; {remedy}", shown(path)))
}

/// Writes a secret that does not exist yet (0600). Never called on an existing file.
fn write_new(dir: &Path, name: &str, text: &str, created: &mut Vec<String>) -> Result<()> {
    crate::fsutil::atomic_write(&dir.join(name), text.as_bytes(), 0o600)?;
    created.push(name.to_string());
    Ok(())
}

/// A CA pair: both files parse, and the key is the certificate's.
fn read_pair(dir: &Path, stem: &str) -> Result<CertPair> {
    let (crt, key) = (format!("{stem}.crt"), format!("{stem}.key"));
    let remedy = "restore it from your backup of secrets/ (the nodes trust this CA: a new \
                  one means a new cluster)";
    let pair = CertPair {
        cert_pem: read(dir, &crt, remedy)?,
        key_pem: read(dir, &key, remedy)?,
    };
    let certified =
        pki::cert_public(&pair.cert_pem).map_err(|e| corrupt(&dir.join(&crt), e, remedy))?;
    let public =
        pki::private_key_public(&pair.key_pem).map_err(|e| corrupt(&dir.join(&key), e, remedy))?;
    if certified != public {
        return Err(mismatch(
            &dir.join(&key),
            &dir.join(&crt),
            "the certificate's",
        ));
    }
    Ok(pair)
}

/// The service-account pair: both files parse, and `sa.pub` is `sa.key`'s.
fn read_sa(dir: &Path) -> Result<(String, String)> {
    let remedy = "restore it from your backup of secrets/ (the cluster's service-account \
                  tokens are signed with it)";
    let key = read(dir, "sa.key", remedy)?;
    let public_pem = read(dir, "sa.pub", remedy)?;
    let public =
        pki::private_key_public(&key).map_err(|e| corrupt(&dir.join("sa.key"), e, remedy))?;
    let published =
        pki::spki_public(&public_pem).map_err(|e| corrupt(&dir.join("sa.pub"), e, remedy))?;
    if public != published {
        return Err(mismatch(&dir.join("sa.key"), &dir.join("sa.pub"), "that"));
    }
    Ok((key, public_pem))
}

fn mismatch(key: &Path, other: &Path, whose: &str) -> anyhow::Error {
    BadInput::new(format!(
        "{} does not belong to {}: the key's public key is not {whose} public key. Restore \
         the matching pair from your backup of secrets/",
        shown(key),
        shown(other)
    ))
}

fn ensure_ca(
    dir: &Path,
    stem: &str,
    cn: &str,
    built: Option<&Path>,
    created: &mut Vec<String>,
) -> Result<CertPair> {
    let (crt, key) = (format!("{stem}.crt"), format!("{stem}.key"));
    let files = PairFiles {
        first: &key,
        second: &crt,
        what: "the CA",
    };
    ensure_pair(
        dir,
        &files,
        built,
        created,
        || read_pair(dir, stem),
        || {
            let pair = pki::new_ca(cn)?;
            let texts = (pair.key_pem.clone(), pair.cert_pem.clone());
            Ok((pair, texts))
        },
    )
}

fn ensure_sa(
    dir: &Path,
    built: Option<&Path>,
    created: &mut Vec<String>,
) -> Result<(String, String)> {
    let files = PairFiles {
        first: "sa.key",
        second: "sa.pub",
        what: "the key",
    };
    ensure_pair(
        dir,
        &files,
        built,
        created,
        || read_sa(dir),
        || {
            let (key, public) = pki::new_sa_key_pair()?;
            Ok(((key.clone(), public.clone()), (key, public)))
        },
    )
}

/// Two secret files that only make sense together (a key and its certificate
/// or public half), written in this order.
struct PairFiles<'a> {
    first: &'a str,
    second: &'a str,
    /// For the error when a built site lost them ("the CA").
    what: &'a str,
}

/// Both files present: read them. Neither, on a site never built: make them
/// (`make` returns the value and the two files' texts). Neither beside a
/// built tree, or only one: an error that says what to restore, never a new pair.
fn ensure_pair<T>(
    dir: &Path,
    files: &PairFiles,
    built: Option<&Path>,
    created: &mut Vec<String>,
    read_existing: impl FnOnce() -> Result<T>,
    make: impl FnOnce() -> Result<(T, (String, String))>,
) -> Result<T> {
    let (first, second) = (files.first, files.second);
    match (dir.join(first).exists(), dir.join(second).exists(), built) {
        (true, true, _) => read_existing(),
        (false, false, None) => {
            let (value, (first_text, second_text)) = make()?;
            write_new(dir, first, &first_text, created)?;
            write_new(dir, second, &second_text, created)?;
            Ok(value)
        }
        (false, false, Some(tree)) => Err(missing_error(&dir.join(second), tree, files.what)),
        (has_first, _, _) => {
            let (there, gone) = if has_first {
                (first, second)
            } else {
                (second, first)
            };
            Err(BadInput::new(format!(
                "{} has {there} but not {gone}: they only work as a pair; restore {} from \
                 your backup of secrets/",
                shown(dir),
                shown(&dir.join(gone))
            )))
        }
    }
}

fn ensure_token(
    dir: &Path,
    built: Option<&Path>,
    created: &mut Vec<String>,
) -> Result<(String, i64)> {
    if dir.join(TOKEN_FILE).exists() {
        return read_token(dir);
    }
    if let Some(tree) = built {
        return Err(BadInput::new(format!(
            "{}: {}",
            missing_error(&dir.join(TOKEN_FILE), tree, "the bootstrap token"),
            "or make a new one explicitly with `pxebuild secrets rotate-token`"
        )));
    }
    let new = token::generate();
    let now = write_token(dir, &new)?;
    created.push(TOKEN_FILE.to_string());
    created.push(TOKEN_CREATED_FILE.to_string());
    Ok((new, now))
}

fn read_token(dir: &Path) -> Result<(String, i64)> {
    let remedy = "restore it from your backup of secrets/, or make a new token with \
                  `pxebuild secrets rotate-token`";
    let value = read(dir, TOKEN_FILE, remedy)?.trim().to_string();
    if !token::is_valid(&value) {
        return Err(BadInput::new(format!(
            "{}: not a bootstrap token ([a-z0-9]{{6}}.[a-z0-9]{{16}}); {remedy}",
            shown(&dir.join(TOKEN_FILE))
        )));
    }
    let created_path = dir.join(TOKEN_CREATED_FILE);
    let created = if created_path.exists() {
        let text = read(dir, TOKEN_CREATED_FILE, remedy)?;
        text.trim().parse::<i64>().map_err(|e| {
            BadInput::new(format!(
                "{}: not a Unix time ({e}); write the time the token was made into it \
                 (`date +%s` for now), or make a new token with `pxebuild secrets rotate-token`",
                shown(&created_path)
            ))
        })?
    } else {
        // Older trees without the sibling: the token file's mtime is the best guess.
        mtime(&dir.join(TOKEN_FILE))?
    };
    Ok((value, created))
}

/// Writes token + creation time; returns the time.
fn write_token(dir: &Path, value: &str) -> Result<i64> {
    let now = now_unix();
    crate::fsutil::atomic_write(
        &dir.join(TOKEN_FILE),
        format!("{value}\n").as_bytes(),
        0o600,
    )?;
    crate::fsutil::atomic_write(
        &dir.join(TOKEN_CREATED_FILE),
        format!("{now}\n").as_bytes(),
        0o600,
    )?;
    Ok(now)
}

fn ensure_kubeconfig(
    dir: &Path,
    site: &Site,
    ca: &CertPair,
    created: &mut Vec<String>,
) -> Result<()> {
    let path = dir.join(kubeconfig::FILE);
    let server = kubeconfig::server_url(&site.file.cluster.endpoint);
    if path.exists() {
        let remedy = "delete it and the next build (or `pxebuild secrets init`) mints a new \
                      one from the CA";
        let text = read(dir, kubeconfig::FILE, remedy)?;
        let doc: serde_json::Value = serde_norway::from_str(&text)
            .map_err(|e| corrupt(&path, anyhow::anyhow!("not a kubeconfig: {e}"), remedy))?;
        if !doc.is_object() {
            return Err(corrupt(&path, anyhow::anyhow!("not a kubeconfig"), remedy));
        }
        if !text.contains(&server) {
            crate::warn!(
                "{} does not point at {server}; delete it to have the next build mint a new one",
                shown(&path)
            );
        }
        return Ok(());
    }
    // Derived from the CA, so it may be re-minted whenever it is missing.
    let text = kubeconfig::render(&site.file.cluster.name, &site.file.cluster.endpoint, ca)?;
    write_new(dir, kubeconfig::FILE, &text, created)
}

/// The update key: read it, or make it where no built tree published
/// listings signed by a key (nodes of such a tree trust none yet; a tree
/// built before listings were signed gets its first key this way).
fn ensure_update_key(
    dir: &Path,
    site: &Site,
    trees: &[PathBuf],
    created: &mut Vec<String>,
) -> Result<update_key::UpdateKey> {
    if dir.join(update_key::FILE).exists() {
        return read_update_key(dir);
    }
    if let Some(tree) = trees.iter().find(|t| has_signed_listing(t)) {
        return Err(BadInput::new(format!(
            "the update key {} is missing, but {} serves sysext listings signed with it and \
             its nodes refuse any other key. Restore it from your backup of secrets/, or make \
             a new one explicitly with `pxebuild secrets rotate-update-key` and give the \
             installed nodes its public key (docs/operations.md)",
            shown(&dir.join(update_key::FILE)),
            shown(tree)
        )));
    }
    let key = update_key::UpdateKey::generate(&site.file.cluster.name)?;
    write_new(dir, update_key::FILE, &key.armored()?, created)?;
    Ok(key)
}

/// Whether `tree` publishes a `SHA256SUMS.gpg` for any system extension.
fn has_signed_listing(tree: &Path) -> bool {
    let Ok(dirs) = std::fs::read_dir(crate::layout::sysext_root(tree)) else {
        return false;
    };
    dirs.flatten()
        .any(|d| d.path().join(update_key::SIGNATURE).exists())
}

fn read_update_key(dir: &Path) -> Result<update_key::UpdateKey> {
    let remedy = "restore it from your backup of secrets/ (installed nodes trust only this \
                  key's signatures), or make a new one with `pxebuild secrets \
                  rotate-update-key` (docs/operations.md)";
    let text = read(dir, update_key::FILE, remedy)?;
    update_key::UpdateKey::parse(&text).map_err(|e| corrupt(&dir.join(update_key::FILE), e, remedy))
}

fn mtime(path: &Path) -> Result<i64> {
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .with_context(|| format!("reading {}", shown(path)))?;
    Ok(modified
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64))
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
