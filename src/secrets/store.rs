//! The set as a whole: [`Secrets`], what a command gets; made once in a
//! staging directory and renamed into place, or read and completed where
//! that is safe. Beside a built tree nothing the nodes trust is made anew
//! (the CAs, the service-account key, the token, a node's id, the update key
//! of a tree that serves signed listings): a missing one is an error saying
//! what to restore. Only the kubeconfig, derived from the CA, is re-minted.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::files::{self, SA_KEY, SA_PUB, STAGING_DIR, TOKEN_CREATED_FILE, TOKEN_FILE};
use super::pki::{self, CertPair};
use super::wording::{few, missing_error, shown, Lost};
use super::{kubeconfig, node_ids, token, update_key, wording};
use crate::error::BadInput;
use crate::site::Site;

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

/// Loads the secrets in `dir` of `site`, creating whatever is missing on a
/// fresh site. The caller holds the site's lock. `out` is the tree the
/// command publishes to; it and the site's own `dist/` are the built trees
/// beside which missing root secrets or a lost node id are an error.
pub(super) fn ensure(site: &Site, dir: &Path, out: Option<&Path>) -> Result<Secrets> {
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
        std::fs::symlink_metadata(dir).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound);
    if absent {
        if let Some(tree) = trees.first() {
            return Err(missing_error(dir, tree, "the directory"));
        }
        return create_all(site, dir, &staging);
    }
    super::guard::check(dir)?;
    fill(site, dir, &trees)
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
    for (stem, cn) in files::CAS {
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

/// Reads a complete existing set, creating nothing.
pub(super) fn load_existing(dir: &Path) -> Result<Secrets> {
    let ca = files::read_pair(dir, "ca")?;
    let front_proxy_ca = files::read_pair(dir, "front-proxy-ca")?;
    let etcd_ca = files::read_pair(dir, "etcd-ca")?;
    let (sa_key, sa_pub) = files::read_sa(dir)?;
    let (tok, token_created) = files::read_token(dir)?;
    let node_ids = node_ids::load(dir)?;
    if !dir.join(update_key::FILE).exists() {
        // A site set up before listings were signed.
        return Err(BadInput::new(format!(
            "{} has no update key ({}) yet; `pxebuild secrets init` or the next build makes it",
            shown(dir),
            update_key::FILE
        )));
    }
    let update_key = files::read_update_key(dir)?;
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

/// Refuses new ids for nodes that a built tree already has: their boot
/// configs and installed disks name the old id, so the line was lost, not
/// never written.
fn refuse_lost_ids(ids_path: &Path, trees: &[PathBuf], new: &[&str]) -> Result<()> {
    let lost = lost_ids(ids_path, trees, new)?;
    if lost.is_empty() {
        return Ok(());
    }
    Err(wording::lost_ids_error(ids_path, &lost))
}

/// The nodes of `new` that a tree of `trees` already serves, each once, with
/// the id that tree uses when its access records name it.
fn lost_ids<'a>(ids_path: &Path, trees: &'a [PathBuf], new: &[&'a str]) -> Result<Vec<Lost<'a>>> {
    let mut lost: Vec<Lost> = Vec::new();
    for tree in trees {
        let manifest = crate::manifest::Manifest::load(tree)
            .map_err(|err| wording::undecidable_error(ids_path, new, tree, node_ids::FILE, &err))?;
        for name in new {
            if lost.iter().any(|l| l.node == *name)
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
            lost.push(Lost {
                node: name,
                tree,
                id,
            });
        }
    }
    Ok(lost)
}

fn ensure_ca(
    dir: &Path,
    stem: &str,
    cn: &str,
    built: Option<&Path>,
    created: &mut Vec<String>,
) -> Result<CertPair> {
    let (crt, key) = files::ca_files(stem);
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
        || files::read_pair(dir, stem),
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
        first: SA_KEY,
        second: SA_PUB,
        what: "the key",
    };
    ensure_pair(
        dir,
        &files,
        built,
        created,
        || files::read_sa(dir),
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
            files::write_new(dir, first, &first_text, created)?;
            files::write_new(dir, second, &second_text, created)?;
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
        return files::read_token(dir);
    }
    if let Some(tree) = built {
        return Err(BadInput::new(format!(
            "{}: {}",
            missing_error(&dir.join(TOKEN_FILE), tree, "the bootstrap token"),
            "or make a new one explicitly with `pxebuild secrets rotate-token`"
        )));
    }
    let new = token::generate();
    let now = files::write_token(dir, &new)?;
    created.push(TOKEN_FILE.to_string());
    created.push(TOKEN_CREATED_FILE.to_string());
    Ok((new, now))
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
        let text = files::read(dir, kubeconfig::FILE, remedy)?;
        let doc: serde_json::Value = serde_norway::from_str(&text)
            .map_err(|e| files::corrupt(&path, anyhow::anyhow!("not a kubeconfig: {e}"), remedy))?;
        if !doc.is_object() {
            return Err(files::corrupt(
                &path,
                anyhow::anyhow!("not a kubeconfig"),
                remedy,
            ));
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
    files::write_new(dir, kubeconfig::FILE, &text, created)
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
        return files::read_update_key(dir);
    }
    if let Some(tree) = trees.iter().find(|t| files::has_signed_listing(t)) {
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
    files::write_new(dir, update_key::FILE, &key.armored()?, created)?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const EXAMPLE: &str = include_str!("../../site.toml");

    fn site(dir: &Path) -> Site {
        Site::from_text(EXAMPLE, &dir.join("site.toml")).unwrap()
    }

    #[test]
    fn a_fresh_site_gets_the_whole_set_private_and_a_second_call_makes_nothing() {
        let root = tempfile::tempdir().unwrap();
        let site = site(root.path());
        let dir = site.secrets_dir();
        let first = ensure(&site, &dir, None).unwrap();
        assert!(!first.created.is_empty());
        assert!(!site.dir.join(STAGING_DIR).exists(), "staging renamed away");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        for name in files::FILES {
            assert_eq!(mode(&dir.join(name)), 0o600, "{name}");
        }
        let again = ensure(&site, &dir, None).unwrap();
        assert!(again.created.is_empty(), "{:?}", again.created);
        assert_eq!(again.fingerprint(), first.fingerprint());
        assert_eq!(
            load_existing(&dir).unwrap().fingerprint(),
            first.fingerprint()
        );
    }

    #[test]
    fn beside_a_built_tree_a_lost_ca_is_an_error_and_none_is_made() {
        let root = tempfile::tempdir().unwrap();
        let site = site(root.path());
        let dir = site.secrets_dir();
        ensure(&site, &dir, None).unwrap();
        let dist = site.dir.join(crate::layout::SITE_DIST);
        std::fs::create_dir_all(&dist).unwrap();
        std::fs::write(dist.join(crate::manifest::FILE_NAME), "{}").unwrap();
        std::fs::remove_file(dir.join("etcd-ca.crt")).unwrap();
        std::fs::remove_file(dir.join("etcd-ca.key")).unwrap();
        let err = ensure(&site, &dir, None).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
        assert!(err.to_string().starts_with("the CA "), "{err}");
        assert!(
            !dir.join("etcd-ca.key").exists(),
            "no new CA beside a built tree"
        );
        // Only half a pair is never completed, built or not.
        std::fs::remove_dir_all(&dist).unwrap();
        std::fs::remove_file(dir.join("sa.pub")).unwrap();
        let err = ensure(&site, &dir, None).unwrap_err();
        assert!(
            err.to_string().contains("has sa.key but not sa.pub"),
            "{err}"
        );
    }

    #[test]
    fn a_staging_directory_left_by_a_killed_run_is_removed() {
        let root = tempfile::tempdir().unwrap();
        let site = site(root.path());
        let staging = site.dir.join(STAGING_DIR);
        std::fs::create_dir_all(&staging).unwrap();
        std::fs::write(staging.join("ca.key"), "half").unwrap();
        let secrets = ensure(&site, &site.secrets_dir(), None).unwrap();
        assert!(!staging.exists());
        assert_ne!(secrets.ca.key_pem, "half");
    }
}
