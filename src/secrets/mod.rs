//! `secrets/` beside site.toml: everything that must outlive every build.
//!
//! Created once (directory 0700, files 0600) and never replaced by a build:
//! `ca.crt ca.key front-proxy-ca.crt front-proxy-ca.key etcd-ca.crt etcd-ca.key
//! sa.key sa.pub bootstrap-token bootstrap-token.created node-ids.toml kubeconfig`.
//! `bootstrap-token.created` holds the Unix time the token was made.
//! Replacing the token is the explicit [`rotate_token`]. A missing secrets
//! directory next to an existing dist/ is an error, never a new CA: the nodes
//! already trust the old one. The same holds for each root secret and for
//! `node-ids.toml` (new ids would change every node's Ignition URL); only the
//! kubeconfig, derived from the CA, is re-minted when missing.
pub mod kubeconfig;
pub mod node_ids;
pub mod pki;
pub mod token;

use std::collections::BTreeMap;
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
        crate::digest::sha256_hex(all.as_bytes())
    }

    /// `<node>-<random id>`: the node's Ignition directory name.
    pub fn node_dir_name(&self, node: &str) -> Result<String> {
        let id = self
            .node_ids
            .get(node)
            .with_context(|| format!("secrets/node-ids.toml has no id for node {node}"))?;
        Ok(format!("{node}-{id}"))
    }
}

/// Loads the site's secrets, creating whatever is missing on a fresh site.
/// `out` is the dist/ directory: when it holds a built tree, missing root
/// secrets are an error instead of being created.
pub fn ensure(site: &Site, out: Option<&Path>) -> Result<Secrets> {
    let dir = site.secrets_dir();
    let built = out.is_some_and(|o| o.join(crate::manifest::FILE_NAME).is_file());
    if !dir.exists() {
        if built {
            return Err(missing_error(&dir, out, "the directory"));
        }
        crate::fsutil::create_private_dir(&dir)?;
        crate::info!("created {} (keep it private and backed up)", dir.display());
    }
    check_dir(&dir)?;
    let mut created = Vec::new();
    let mut pairs = Vec::new();
    for (stem, cn) in CAS {
        pairs.push(ensure_ca(&dir, stem, cn, built, out, &mut created)?);
    }
    let [ca, front_proxy_ca, etcd_ca]: [CertPair; 3] = pairs.try_into().expect("three CA pairs");
    let (sa_key, sa_pub) = ensure_sa(&dir, built, out, &mut created)?;
    let (tok, token_created) = ensure_token(&dir, built, out, &mut created)?;
    if built && !dir.join(node_ids::FILE).exists() {
        // New ids would move every node's Ignition URL away from the one its
        // boot config and any installed disk already name.
        return Err(missing_error(
            &dir.join(node_ids::FILE),
            out,
            "the node ids file",
        ));
    }
    let names = site.file.nodes.iter().map(|n| n.name.as_str());
    let (node_ids, added) = node_ids::ensure(&dir, names)?;
    if !added.is_empty() {
        // Name a few new nodes; a new rack of hundreds gets a count.
        let which = match added.len() {
            0..=8 => added.join(", "),
            n => format!("{}, … {n} nodes", added[..3].join(", ")),
        };
        created.push(format!("{} ({which})", node_ids::FILE));
    }
    ensure_kubeconfig(&dir, site, &ca, &mut created)?;
    let ca_hash = pki::ca_cert_hash(&ca.cert_pem).context("secrets/ca.crt")?;
    Ok(Secrets {
        dir,
        ca,
        front_proxy_ca,
        etcd_ca,
        sa_key,
        sa_pub,
        token: tok,
        token_created,
        node_ids,
        ca_hash,
        created,
    })
}

/// Loads existing secrets without creating anything (for `secrets show`).
pub fn load(site: &Site) -> Result<Secrets> {
    let dir = site.secrets_dir();
    if !dir.exists() {
        return Err(BadInput::new(format!(
            "{} does not exist; create it with `pxebuild secrets init` (or a build)",
            dir.display()
        )));
    }
    check_dir(&dir)?;
    load_existing(&dir)
}

fn load_existing(dir: &Path) -> Result<Secrets> {
    let ca = read_pair(dir, "ca")?;
    let front_proxy_ca = read_pair(dir, "front-proxy-ca")?;
    let etcd_ca = read_pair(dir, "etcd-ca")?;
    let sa_key = read(dir, "sa.key")?;
    let sa_pub = read(dir, "sa.pub")?;
    let (tok, token_created) = read_token(dir)?;
    let node_ids = node_ids::load(dir)?;
    let ca_hash = pki::ca_cert_hash(&ca.cert_pem).context("secrets/ca.crt")?;
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
        created: Vec::new(),
    })
}

/// Replaces the bootstrap token (the only secret a command may replace).
/// Returns the new token. Nodes that have not joined yet need a rebuilt tree,
/// and a running cluster must learn the token (`pxebuild token publish`).
pub fn rotate_token(site: &Site) -> Result<String> {
    let dir = site.secrets_dir();
    check_dir(&dir)?;
    let new = token::generate();
    write_token(&dir, &new)?;
    Ok(new)
}

fn missing_error(dir: &Path, out: Option<&Path>, what: &str) -> anyhow::Error {
    let dist = out.map(|o| o.display().to_string()).unwrap_or_default();
    BadInput::new(format!(
        "{what} {} is missing, but {dist} was built from it and its nodes trust \
         that CA and token. Restore {} from your backup, or delete {dist} \
         deliberately to start a new cluster with new secrets",
        dir.display(),
        dir.display()
    ))
}

fn check_dir(dir: &Path) -> Result<()> {
    let meta = std::fs::metadata(dir)
        .with_context(|| format!("reading {}", dir.display()))
        .map_err(|e| BadInput::new(format!("{e:#}: restore the secrets directory")))?;
    if !meta.is_dir() {
        return Err(BadInput::new(format!(
            "{} is not a directory",
            dir.display()
        )));
    }
    std::fs::read_dir(dir)
        .with_context(|| {
            format!(
                "{} is not readable (check owner and mode 0700)",
                dir.display()
            )
        })
        .map_err(|e| BadInput::new(format!("{e:#}")))?;
    if meta.permissions().mode() & 0o077 != 0 {
        crate::warn!(
            "{} is accessible by other users; run `chmod 700 {}`",
            dir.display(),
            dir.display()
        );
    }
    Ok(())
}

fn read(dir: &Path, name: &str) -> Result<String> {
    let path = dir.join(name);
    std::fs::read_to_string(&path)
        .with_context(|| format!("reading {}", path.display()))
        .map_err(|e| BadInput::new(format!("{e:#}")))
}

/// Writes a secret that does not exist yet (0600). Never called on an existing file.
fn write_new(dir: &Path, name: &str, text: &str, created: &mut Vec<String>) -> Result<()> {
    crate::fsutil::atomic_write(&dir.join(name), text.as_bytes(), 0o600)?;
    created.push(name.to_string());
    Ok(())
}

fn read_pair(dir: &Path, stem: &str) -> Result<CertPair> {
    let pair = CertPair {
        cert_pem: read(dir, &format!("{stem}.crt"))?,
        key_pem: read(dir, &format!("{stem}.key"))?,
    };
    pki::ca_cert_hash(&pair.cert_pem).with_context(|| format!("secrets/{stem}.crt"))?;
    pki::check_key(&pair.key_pem).with_context(|| format!("secrets/{stem}.key"))?;
    Ok(pair)
}

fn ensure_ca(
    dir: &Path,
    stem: &str,
    cn: &str,
    built: bool,
    out: Option<&Path>,
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
        out,
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
    built: bool,
    out: Option<&Path>,
    created: &mut Vec<String>,
) -> Result<(String, String)> {
    let files = PairFiles {
        first: "sa.key",
        second: "sa.pub",
        what: "the key",
    };
    let read_existing = || {
        let key = read(dir, "sa.key")?;
        pki::check_key(&key).context("secrets/sa.key")?;
        Ok((key, read(dir, "sa.pub")?))
    };
    ensure_pair(dir, &files, built, out, created, read_existing, || {
        let (key, public) = pki::new_sa_key_pair()?;
        Ok(((key.clone(), public.clone()), (key, public)))
    })
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
/// (`make` returns the value and the two files' texts). Neither after a build
/// of dist/, or only one: an error that says what to restore, never a new pair.
fn ensure_pair<T>(
    dir: &Path,
    files: &PairFiles,
    built: bool,
    out: Option<&Path>,
    created: &mut Vec<String>,
    read_existing: impl FnOnce() -> Result<T>,
    make: impl FnOnce() -> Result<(T, (String, String))>,
) -> Result<T> {
    let (first, second) = (files.first, files.second);
    match (dir.join(first).exists(), dir.join(second).exists()) {
        (true, true) => read_existing(),
        (false, false) if !built => {
            let (value, (first_text, second_text)) = make()?;
            write_new(dir, first, &first_text, created)?;
            write_new(dir, second, &second_text, created)?;
            Ok(value)
        }
        (false, false) => Err(missing_error(&dir.join(second), out, files.what)),
        _ => Err(BadInput::new(format!(
            "{} has only one of {first} and {second}; restore the pair from your backup",
            dir.display()
        ))),
    }
}

fn ensure_token(
    dir: &Path,
    built: bool,
    out: Option<&Path>,
    created: &mut Vec<String>,
) -> Result<(String, i64)> {
    if dir.join(TOKEN_FILE).exists() {
        return read_token(dir);
    }
    if built {
        return Err(BadInput::new(format!(
            "{}: {}",
            missing_error(&dir.join(TOKEN_FILE), out, "the bootstrap token"),
            "or make a new one explicitly with `pxebuild secrets rotate-token`"
        )));
    }
    let new = token::generate();
    let now = write_token(dir, &new)?;
    created.push(TOKEN_FILE.to_string());
    Ok((new, now))
}

fn read_token(dir: &Path) -> Result<(String, i64)> {
    let value = read(dir, TOKEN_FILE)?.trim().to_string();
    if !token::is_valid(&value) {
        return Err(BadInput::new(format!(
            "{}: not a bootstrap token ([a-z0-9]{{6}}.[a-z0-9]{{16}}); \
             replace it with `pxebuild secrets rotate-token`",
            dir.join(TOKEN_FILE).display()
        )));
    }
    let created_path = dir.join(TOKEN_CREATED_FILE);
    let created = match std::fs::read_to_string(&created_path) {
        Ok(text) => text.trim().parse::<i64>().map_err(|e| {
            BadInput::new(format!("{}: not a Unix time: {e}", created_path.display()))
        })?,
        // Older trees without the sibling: the token file's mtime is the best guess.
        Err(_) => mtime(&dir.join(TOKEN_FILE))?,
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
        let text = read(dir, kubeconfig::FILE)?;
        if !text.contains(&server) {
            crate::warn!(
                "{} does not point at {server}; delete it to have the next build mint a new one",
                path.display()
            );
        }
        return Ok(());
    }
    // Derived from the CA, so it may be re-minted whenever it is missing.
    let text = kubeconfig::render(&site.file.cluster.name, &site.file.cluster.endpoint, ca)?;
    write_new(dir, kubeconfig::FILE, &text, created)
}

fn mtime(path: &Path) -> Result<i64> {
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .with_context(|| format!("reading {}", path.display()))?;
    Ok(modified
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64))
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}
