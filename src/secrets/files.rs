//! What `secrets/` holds and how each file is read and written: the file
//! names, their parsing and cross-checks (a CA key is its certificate's,
//! `sa.pub` is `sa.key`'s, the token has the token's shape), and single-file
//! writes (0600, temp file + rename). An unusable file is bad input naming
//! it and what to do. Whether a missing file may be made is decided in
//! [`super::store`], never here.
use std::path::Path;

use anyhow::{Context, Result};

use super::pki::{self, CertPair};
use super::wording::shown;
use super::{kubeconfig, node_ids, token, update_key};
use crate::error::BadInput;

/// The CA pairs: file stem and subject CN.
pub(super) const CAS: [(&str, &str); 3] = [
    ("ca", "kubernetes"),
    ("front-proxy-ca", "front-proxy-ca"),
    ("etcd-ca", "etcd-ca"),
];
/// The service-account signing key and its public half.
pub(super) const SA_KEY: &str = "sa.key";
pub(super) const SA_PUB: &str = "sa.pub";
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
    SA_KEY,
    SA_PUB,
    TOKEN_FILE,
    TOKEN_CREATED_FILE,
    node_ids::FILE,
    kubeconfig::FILE,
    update_key::FILE,
];

/// The certificate and key file names of the CA pair `stem`.
pub(super) fn ca_files(stem: &str) -> (String, String) {
    (format!("{stem}.crt"), format!("{stem}.key"))
}

/// Reads a secret as text; an unreadable file is bad input naming it.
pub(super) fn read(dir: &Path, name: &str, remedy: &str) -> Result<String> {
    let path = dir.join(name);
    std::fs::read_to_string(&path)
        .map_err(|e| BadInput::new(format!("cannot read {}: {e}; {remedy}", shown(&path))))
}

/// Bad input: `path` holds something unusable (`err` says what).
pub(super) fn corrupt(path: &Path, err: anyhow::Error, remedy: &str) -> anyhow::Error {
    BadInput::new(format!("{}: {err:#}; {remedy}", shown(path)))
}

/// Writes a secret that does not exist yet (0600). Never called on an existing file.
pub(super) fn write_new(
    dir: &Path,
    name: &str,
    text: &str,
    created: &mut Vec<String>,
) -> Result<()> {
    crate::fsutil::atomic_write(&dir.join(name), text.as_bytes(), 0o600)?;
    created.push(name.to_string());
    Ok(())
}

/// A CA pair: both files parse, and the key is the certificate's.
pub(super) fn read_pair(dir: &Path, stem: &str) -> Result<CertPair> {
    let (crt, key) = ca_files(stem);
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
pub(super) fn read_sa(dir: &Path) -> Result<(String, String)> {
    let remedy = "restore it from your backup of secrets/ (the cluster's service-account \
                  tokens are signed with it)";
    let key = read(dir, SA_KEY, remedy)?;
    let public_pem = read(dir, SA_PUB, remedy)?;
    let public =
        pki::private_key_public(&key).map_err(|e| corrupt(&dir.join(SA_KEY), e, remedy))?;
    let published =
        pki::spki_public(&public_pem).map_err(|e| corrupt(&dir.join(SA_PUB), e, remedy))?;
    if public != published {
        return Err(mismatch(&dir.join(SA_KEY), &dir.join(SA_PUB), "that"));
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

/// The token and the Unix time it was made.
pub(super) fn read_token(dir: &Path) -> Result<(String, i64)> {
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
pub(super) fn write_token(dir: &Path, value: &str) -> Result<i64> {
    let now = crate::clock::now_ms() / 1000;
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

pub(super) fn read_update_key(dir: &Path) -> Result<update_key::UpdateKey> {
    let remedy = "restore it from your backup of secrets/ (installed nodes trust only this \
                  key's signatures), or make a new one with `pxebuild secrets \
                  rotate-update-key` (docs/operations.md)";
    let text = read(dir, update_key::FILE, remedy)?;
    update_key::UpdateKey::parse(&text).map_err(|e| corrupt(&dir.join(update_key::FILE), e, remedy))
}

/// Writes the update key over the old one (only on explicit rotation).
pub(super) fn replace_update_key(dir: &Path, key: &update_key::UpdateKey) -> Result<()> {
    crate::fsutil::atomic_write(
        &dir.join(update_key::FILE),
        key.armored()?.as_bytes(),
        0o600,
    )
}

/// Whether `tree` publishes a `SHA256SUMS.gpg` for any system extension.
pub(super) fn has_signed_listing(tree: &Path) -> bool {
    let Ok(dirs) = std::fs::read_dir(crate::layout::sysext_root(tree)) else {
        return false;
    };
    dirs.flatten()
        .any(|d| d.path().join(update_key::SIGNATURE).exists())
}

fn mtime(path: &Path) -> Result<i64> {
    let modified = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .with_context(|| format!("reading {}", shown(path)))?;
    Ok(modified
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_list_names_every_ca_file_once() {
        for (stem, _) in CAS {
            let (crt, key) = ca_files(stem);
            assert!(FILES.contains(&crt.as_str()) && FILES.contains(&key.as_str()));
        }
        let mut sorted = FILES.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), FILES.len());
    }

    #[test]
    fn a_ca_pair_reads_back_and_a_foreign_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut created = Vec::new();
        let ca = pki::new_ca("kubernetes").unwrap();
        write_new(dir.path(), "ca.crt", &ca.cert_pem, &mut created).unwrap();
        write_new(dir.path(), "ca.key", &ca.key_pem, &mut created).unwrap();
        assert_eq!(created, ["ca.crt", "ca.key"]);
        assert_eq!(read_pair(dir.path(), "ca").unwrap().cert_pem, ca.cert_pem);
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("ca.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let other = pki::new_ca("other").unwrap();
        std::fs::write(dir.path().join("ca.key"), &other.key_pem).unwrap();
        let err = read_pair(dir.path(), "ca").unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
        assert!(err.to_string().contains("does not belong to"), "{err}");
    }

    #[test]
    fn a_token_is_written_with_its_time_and_checked_when_read() {
        let dir = tempfile::tempdir().unwrap();
        let value = token::generate();
        let at = write_token(dir.path(), &value).unwrap();
        assert_eq!(read_token(dir.path()).unwrap(), (value, at));
        std::fs::write(dir.path().join(TOKEN_FILE), "not-a-token\n").unwrap();
        let err = read_token(dir.path()).unwrap_err();
        assert!(err.to_string().contains("not a bootstrap token"), "{err}");
    }

    #[test]
    fn a_signed_listing_is_found_under_any_extension() {
        let tree = tempfile::tempdir().unwrap();
        assert!(!has_signed_listing(tree.path()));
        let dir = crate::layout::sysext_root(tree.path()).join("cilium");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(crate::layout::SYSEXT_LISTING), "x").unwrap();
        assert!(!has_signed_listing(tree.path()));
        std::fs::write(dir.join(update_key::SIGNATURE), "x").unwrap();
        assert!(has_signed_listing(tree.path()));
    }
}
