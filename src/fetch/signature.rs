//! Detached OpenPGP signature checks for Flatcar artifacts.
//!
//! rpgp verifies raw signatures; the certificate logic is ours: pick the
//! (sub)key named by the signature's issuer, require a valid binding with the
//! signing flag, and judge expiry and revocation at the signature's creation
//! time, as OpenPGP does (a superseded or retired subkey keeps its older
//! signatures valid; a compromised one invalidates all of them). The file is
//! streamed, so a 500 MB image costs no memory.
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use pgp::composed::{Deserializable, DetachedSignature, SignedPublicKey, SignedPublicSubKey};
use pgp::packet::{RevocationCode, Signature, SignatureType};
use pgp::types::{KeyDetails, Timestamp};

/// The Flatcar image signing key (flatcar-website
/// `static/security/image-signing-key/Flatcar_Image_Signing_Key.asc`, with the
/// 2025 subkey).
pub(crate) const FLATCAR_KEY: &str = include_str!("flatcar-image-signing-key.asc");
/// Primary fingerprint of the Flatcar image signing key.
pub const FLATCAR_FINGERPRINT: &str = "F88CFEDEFF29A5B4D9523864E25D9AED0593B34A";

/// An OpenPGP certificate that artifacts are checked against.
#[derive(Debug, Clone)]
pub struct SigningKey {
    cert: SignedPublicKey,
    /// Where it came from ("built-in Flatcar key" or a path), for messages.
    pub source: String,
}

impl SigningKey {
    /// The built-in Flatcar image signing key.
    pub fn flatcar() -> SigningKey {
        SigningKey::parse(
            FLATCAR_KEY.as_bytes(),
            "the built-in Flatcar image signing key",
        )
        .expect("the embedded Flatcar key parses")
    }

    /// Reads an armored or binary public key file.
    pub fn from_file(path: &Path) -> Result<SigningKey> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading signing key {}", path.display()))?;
        SigningKey::parse(&bytes, &path.display().to_string())
    }

    pub fn parse(bytes: &[u8], source: &str) -> Result<SigningKey> {
        let (cert, _) = SignedPublicKey::from_reader_single(bytes)
            .map_err(|e| anyhow!("{source} is not an OpenPGP public key: {e}"))?;
        Ok(SigningKey {
            cert,
            source: source.to_string(),
        })
    }

    /// Primary key fingerprint, upper-case hex.
    pub fn fingerprint(&self) -> String {
        format!("{:X}", self.cert.primary_key.fingerprint())
    }

    /// Checks `signature` (binary or armored) over the bytes of `file`.
    pub fn verify_file(&self, signature: &[u8], file: &Path) -> Result<()> {
        let (sig, _) = DetachedSignature::from_reader_single(signature)
            .map_err(|e| anyhow!("unreadable OpenPGP signature: {e}"))?;
        let sig = sig.signature;
        let created = sig
            .created()
            .ok_or_else(|| anyhow!("the signature has no creation time"))?;
        check_not_expired(&sig, created, crate::clock::now_secs())?;
        self.check_primary(created)?;
        let reader = |f: &Path| -> Result<BufReader<File>> {
            let file = File::open(f).with_context(|| format!("opening {}", f.display()))?;
            Ok(BufReader::with_capacity(1 << 20, file))
        };
        if self.issued_by(&sig, &self.cert.primary_key) {
            self.check_primary_can_sign()?;
            return sig
                .verify(&self.cert.primary_key, reader(file)?)
                .map_err(|_| {
                    anyhow!(
                        "the signature does not match the file (tampered, truncated or wrong file)"
                    )
                });
        }
        let subkey = self
            .cert
            .public_subkeys
            .iter()
            .find(|s| self.issued_by(&sig, &s.key))
            .ok_or_else(|| {
                let issuer = issuer_names(&sig);
                anyhow!(
                    "the signature was made by key {issuer} which is not part of {} ({}){}",
                    self.source,
                    self.fingerprint(),
                    test_key_advice(&issuer)
                )
            })?;
        self.check_subkey(subkey, created)?;
        sig.verify(&subkey.key, reader(file)?).map_err(|_| {
            anyhow!("the signature does not match the file (tampered, truncated or wrong file)")
        })
    }

    fn issued_by(&self, sig: &Signature, key: &impl KeyDetails) -> bool {
        let fpr = key.fingerprint();
        let id = key.legacy_key_id();
        sig.issuer_fingerprint().iter().any(|f| **f == fpr)
            || sig.issuer_key_id().iter().any(|k| **k == id)
    }

    /// A revoked primary key invalidates everything (hard) or everything after
    /// the revocation (soft).
    fn check_primary(&self, created: Timestamp) -> Result<()> {
        let primary = &self.cert.primary_key;
        for rev in &self.cert.details.revocation_signatures {
            if rev.typ() == Some(SignatureType::KeyRevocation)
                && rev.verify_key(primary).is_ok()
                && revoked_at(rev, created)
            {
                bail!("{} ({}) is revoked", self.source, self.fingerprint());
            }
        }
        Ok(())
    }

    fn check_primary_can_sign(&self) -> Result<()> {
        let primary = &self.cert.primary_key;
        let can_sign = self.cert.details.users.iter().any(|u| {
            u.signatures.iter().any(|s| {
                s.key_flags().sign()
                    && s.verify_certification(primary, pgp::types::Tag::UserId, &u.id)
                        .is_ok()
            })
        });
        if !can_sign {
            bail!("the primary key of {} is not allowed to sign", self.source);
        }
        Ok(())
    }

    /// The subkey must be bound for signing, created before the signature, not
    /// expired and not revoked at the signature's creation time.
    fn check_subkey(&self, subkey: &SignedPublicSubKey, created: Timestamp) -> Result<()> {
        let primary = &self.cert.primary_key;
        let name = format!("{:X}", subkey.key.fingerprint());
        if subkey.key.created_at().as_secs() > created.as_secs() {
            bail!("signing subkey {name} is younger than the signature");
        }
        for rev in &subkey.signatures {
            if rev.typ() == Some(SignatureType::SubkeyRevocation)
                && rev.verify_subkey_binding(primary, &subkey.key).is_ok()
                && revoked_at(rev, created)
            {
                bail!("signing subkey {name} was revoked when the signature was made");
            }
        }
        let binding = subkey
            .signatures
            .iter()
            .filter(|s| s.typ() == Some(SignatureType::SubkeyBinding))
            .filter(|s| {
                s.created()
                    .is_some_and(|c| c.as_secs() <= created.as_secs())
            })
            .filter(|s| valid_binding(s, primary, &subkey.key))
            .max_by_key(|s| s.created().map(|c| c.as_secs()))
            .ok_or_else(|| anyhow!("signing subkey {name} has no valid binding signature"))?;
        if !binding.key_flags().sign() {
            bail!("subkey {name} is not a signing key");
        }
        if let Some(lifetime) = binding.key_expiration_time() {
            let expiry =
                u64::from(subkey.key.created_at().as_secs()) + u64::from(lifetime.as_secs());
            if lifetime.as_secs() != 0 && expiry <= u64::from(created.as_secs()) {
                bail!(
                    "signing subkey {name} expired at {}, before the signature was made at {}; \
                     an expired subkey only vouches for what it signed in time",
                    utc(expiry),
                    utc(u64::from(created.as_secs()))
                );
            }
        }
        Ok(())
    }
}

/// A signature with an expiration time (RFC 9580 5.2.3.18) is valid only
/// until then, judged now (as gpg does): unlike a key's expiry, which is judged
/// at the signature's creation, an expired signature vouches for nothing.
fn check_not_expired(sig: &Signature, created: Timestamp, now: u64) -> Result<()> {
    let Some(lifetime) = sig.signature_expiration_time() else {
        return Ok(());
    };
    // Zero means "never expires".
    if lifetime.as_secs() == 0 {
        return Ok(());
    }
    let expiry = u64::from(created.as_secs()) + u64::from(lifetime.as_secs());
    if expiry <= now {
        bail!(
            "the signature expired at {} (made at {}, checked at {}); \
             an expired signature vouches for nothing: fetch a current one",
            utc(expiry),
            utc(u64::from(created.as_secs())),
            utc(now)
        );
    }
    Ok(())
}

/// `2020-02-01 12:00:00 UTC`
fn utc(secs: u64) -> String {
    let secs = secs as i64;
    let (y, m, d) = crate::clock::civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

fn valid_binding(
    sig: &Signature,
    primary: &pgp::packet::PublicKey,
    subkey: &pgp::packet::PublicSubkey,
) -> bool {
    if sig.verify_subkey_binding(primary, subkey).is_err() {
        return false;
    }
    // A signing subkey must also sign the primary back (RFC 9580 5.2.3.34),
    // so nobody can claim someone else's subkey.
    !sig.key_flags().sign()
        || sig
            .embedded_signature()
            .is_some_and(|back| back.verify_primary_key_binding(subkey, primary).is_ok())
}

/// Whether a revocation applies to a signature made at `created`: soft reasons
/// (superseded, retired) only from the revocation on; anything else always.
fn revoked_at(rev: &Signature, created: Timestamp) -> bool {
    let soft = matches!(
        rev.revocation_reason_code(),
        Some(RevocationCode::KeySuperseded | RevocationCode::KeyRetired)
    );
    !soft
        || rev
            .created()
            .is_some_and(|r| r.as_secs() <= created.as_secs())
}

/// The key that signs the stand-ins of pxebuild's fixture mirror
/// (tests/fixtures/mirror/test-key.asc, used by scripts/quickstart).
const TEST_KEY_FINGERPRINT: &str = "9B4F2D6BFC20CFEB868E8DC5049ED1BD72D5D4E9";

/// For a file signed with the test key: what it is and how to build with it
/// (a quick-start tree rebuilt without the key the script set).
fn test_key_advice(issuer: &str) -> String {
    if !issuer.contains(TEST_KEY_FINGERPRINT) {
        return String::new();
    }
    "; that is pxebuild's test key, which signs the stand-ins of its fixture mirror \
     (scripts/quickstart): build such a tree with PXEBUILD_SIGNING_KEY naming \
     tests/fixtures/mirror/test-key.pub.asc and PXEBUILD_MIRROR the mirror \
     (`scripts/quickstart --build` sets both)"
        .to_string()
}

fn issuer_names(sig: &Signature) -> String {
    let fprs: Vec<String> = sig
        .issuer_fingerprint()
        .iter()
        .map(|f| format!("{f:X}"))
        .collect();
    if !fprs.is_empty() {
        return fprs.join(", ");
    }
    let ids: Vec<String> = sig.issuer_key_id().iter().map(hex::encode_upper).collect();
    if ids.is_empty() {
        "(no issuer)".into()
    } else {
        ids.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_key_is_the_flatcar_image_signing_key() {
        let key = SigningKey::flatcar();
        assert_eq!(key.fingerprint(), FLATCAR_FINGERPRINT);
        let subkeys: Vec<String> = key
            .cert
            .public_subkeys
            .iter()
            .map(|s| format!("{:X}", s.key.fingerprint()))
            .collect();
        assert!(
            subkeys.contains(&"52F145DFD00BBDCD928CBB5A32DA80F91EF52974".to_string()),
            "the 2025 signing subkey is present: {subkeys:?}"
        );
    }

    /// Builds a key whose signing subkey (created 2020-01-01, expiring after
    /// a year) signs a file on 2020-06-01 and is then revoked with
    /// `reason` (gpg menu: 1 compromised, 2 superseded) at `revoked`. Uses
    /// gpg's faked clock, frozen (`!`) so that a slow machine cannot move a
    /// timestamp by a second, in a throw-away home.
    fn scenario(reason: &str, revoked: &str) -> (tempfile::TempDir, SigningKey) {
        scenario_expiring(reason, revoked, "")
    }

    /// As `scenario`; a non-empty `expire` (a date) re-binds the subkey on
    /// 2020-01-02 to expire then, so the 2020-06-01 signature comes after it.
    fn scenario_expiring(
        reason: &str,
        revoked: &str,
        expire: &str,
    ) -> (tempfile::TempDir, SigningKey) {
        let dir = tempfile::tempdir().unwrap();
        let script = r#"
            set -e
            export GNUPGHOME="$PWD/home"; mkdir -m 700 home
            g() { t=$1; shift; gpg --batch --quiet --pinentry-mode loopback --passphrase= \
                  --faked-system-time "$t!" "$@" 2>/dev/null; }
            g 20200101T000000 --quick-gen-key 'rev <rev@test.invalid>' ed25519 cert never
            fpr=$(gpg --with-colons --list-keys rev@test.invalid | awk -F: '/^fpr/ {print $10; exit}')
            g 20200101T000000 --quick-add-key "$fpr" ed25519 sign 1y
            echo payload > file
            g 20200601T000000 --detach-sign -o file.sig file
            if [ -n "$EXPIRE" ]; then
              sub=$(gpg --with-colons --list-keys rev@test.invalid | awk -F: '/^fpr/ {n++; if (n == 2) print $10}')
              g 20200102T000000 --quick-set-expire "$fpr" "$EXPIRE" "$sub"
            fi
            if [ "$REASON" != none ]; then
              printf 'key 1\nrevkey\ny\n%s\n\ny\nsave\n' "$REASON" |
                g "$REVOKED" --command-fd 0 --edit-key "$fpr"
            fi
            gpg --batch --export "$fpr" > key.pub
            gpgconf --kill all || true
        "#;
        let status = std::process::Command::new("sh")
            .args(["-c", script])
            .current_dir(dir.path())
            .env("REASON", reason)
            .env("REVOKED", revoked)
            .env("EXPIRE", expire)
            .status()
            .expect("running gpg");
        assert!(status.success());
        let key = SigningKey::from_file(&dir.path().join("key.pub")).unwrap();
        (dir, key)
    }

    fn verify(dir: &tempfile::TempDir, key: &SigningKey) -> Result<()> {
        let sig = std::fs::read(dir.path().join("file.sig")).unwrap();
        key.verify_file(&sig, &dir.path().join("file"))
    }

    #[test]
    fn an_expired_subkey_still_verifies_what_it_signed_in_time() {
        let (dir, key) = scenario("none", "");
        verify(&dir, &key).unwrap();
        std::fs::write(dir.path().join("file"), "tampered\n").unwrap();
        let err = verify(&dir, &key).unwrap_err().to_string();
        assert!(err.contains("does not match"), "{err}");
    }

    #[test]
    fn a_signature_made_after_its_subkey_expired_is_refused() {
        let (dir, key) = scenario_expiring("none", "", "2020-02-01");
        let sub = format!("{:X}", key.cert.public_subkeys[0].key.fingerprint());
        let err = format!("{:#}", verify(&dir, &key).unwrap_err());
        assert!(
            err.contains(&format!("signing subkey {sub} expired at 2020-02-01 ")),
            "{err}"
        );
        assert!(
            err.contains("signature was made at 2020-06-01 00:00:00 UTC"),
            "{err}"
        );
    }

    #[test]
    fn a_superseded_subkey_keeps_older_signatures_valid() {
        let (dir, key) = scenario("2", "20200901T000000");
        verify(&dir, &key).unwrap();
    }

    #[test]
    fn a_subkey_superseded_before_the_signature_is_refused() {
        let (dir, key) = scenario("2", "20200301T000000");
        let err = verify(&dir, &key).unwrap_err().to_string();
        assert!(err.contains("revoked"), "{err}");
    }

    #[test]
    fn a_compromised_subkey_invalidates_every_signature() {
        let (dir, key) = scenario("1", "20200901T000000");
        let err = verify(&dir, &key).unwrap_err().to_string();
        assert!(err.contains("revoked"), "{err}");
    }

    #[test]
    fn a_signature_by_another_key_names_its_issuer() {
        let (dir, _) = scenario("none", "");
        let other = SigningKey::flatcar();
        let err = verify(&dir, &other).unwrap_err().to_string();
        assert!(err.contains("not part of the built-in Flatcar"), "{err}");
    }

    /// A quick-start stand-in checked with the built-in key: the message
    /// says it is the test key and names PXEBUILD_SIGNING_KEY.
    #[test]
    fn a_stand_in_signed_with_the_test_key_is_named_as_such() {
        let dir = tempfile::tempdir().unwrap();
        let key = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mirror/test-key.asc");
        let script = r#"
            set -e
            export GNUPGHOME="$PWD/home"; mkdir -m 700 home
            gpg --batch --quiet --import "$KEY" 2>/dev/null
            echo stand-in > file
            gpg --batch --quiet --detach-sign -o file.sig file 2>/dev/null
            gpgconf --kill all || true
        "#;
        let out = std::process::Command::new("sh")
            .args(["-c", script])
            .current_dir(dir.path())
            .env("KEY", &key)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let err = verify(&dir, &SigningKey::flatcar())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!(
                "made by key {TEST_KEY_FINGERPRINT} which is not part"
            )) && err.contains("that is pxebuild's test key")
                && err.contains("PXEBUILD_SIGNING_KEY"),
            "{err}"
        );
        let (dir, _) = scenario("none", "");
        let err = verify(&dir, &SigningKey::flatcar())
            .unwrap_err()
            .to_string();
        assert!(!err.contains("test key"), "{err}");
    }
}
