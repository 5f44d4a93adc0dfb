//! The site update key (`secrets/update-key.asc`): an OpenPGP Ed25519 key
//! that signs every `SHA256SUMS` the boot server offers systemd-sysupdate.
//! Nodes get its public half as `/etc/systemd/import-pubring.gpg` and their
//! transfer files say `Verify=yes`, so a listing that this key did not sign
//! is refused on the node.
//!
//! Signatures are reproducible: Ed25519 signing is deterministic, and the
//! signature's creation time is the key's own creation time, so the same
//! listing and key always give the same bytes (a rebuild gives a
//! byte-identical `dist/`). The cost: the signature's time says when the key
//! was made, not when the listing was signed. Nothing relies on it
//! (systemd-sysupdate checks only that the key signed it, and never installs
//! a version older than the newest it has), and a replayed older listing can
//! at most withhold an update, which an unsigned channel could do as well.
use anyhow::{anyhow, Context, Result};
use base64::Engine;
use pgp::composed::{
    Deserializable, DetachedSignature, KeyType, SecretKeyParamsBuilder, SignedPublicKey,
    SignedSecretKey, SubpacketConfig,
};
use pgp::crypto::hash::HashAlgorithm;
use pgp::packet::{Subpacket, SubpacketData};
use pgp::ser::Serialize as _;
use pgp::types::{KeyDetails, Password, Timestamp};
use rand_chacha::rand_core::SeedableRng;

/// File name in `secrets/` (armored secret key, 0600).
pub(crate) const FILE: &str = "update-key.asc";
/// The detached signature beside each `SHA256SUMS`, the name systemd-pull asks for.
pub(crate) const SIGNATURE: &str = "SHA256SUMS.gpg";
/// Where the node's systemd-sysupdate (through systemd-pull and gpg) looks for
/// trusted keys: systemd 257 (Flatcar stable) reads only this name under
/// /etc; later releases prefer `import-pubring.pgp` but still read this one
/// when that is absent.
pub(crate) const NODE_KEYRING: &str = "/etc/systemd/import-pubring.gpg";

/// The loaded update key.
#[derive(Clone)]
pub struct UpdateKey {
    secret: SignedSecretKey,
    /// The public key, binary (a one-key keyring gpg reads with `--keyring`).
    public: Vec<u8>,
}

impl UpdateKey {
    /// A new key named after the cluster, created now.
    pub fn generate(cluster: &str) -> Result<UpdateKey> {
        let mut params = SecretKeyParamsBuilder::default();
        params
            .key_type(KeyType::Ed25519Legacy)
            .can_certify(true)
            .can_sign(true)
            .created_at(Timestamp::now())
            .primary_user_id(format!("pxebuild update key ({cluster})"));
        let params = params
            .build()
            .map_err(|e| anyhow!("update key parameters: {e}"))?;
        // rpgp takes a rand_core 0.6 generator; seed one from the OS.
        let rng = rand_chacha::ChaCha20Rng::from_seed(rand::random());
        let secret = params
            .generate(rng)
            .map_err(|e| anyhow!("generating the update key: {e}"))?;
        UpdateKey::new(secret)
    }

    /// Reads an armored secret key (what [`UpdateKey::armored`] wrote).
    pub fn parse(text: &str) -> Result<UpdateKey> {
        let (secret, _) = SignedSecretKey::from_string(text)
            .map_err(|e| anyhow!("not an armored OpenPGP secret key: {e}"))?;
        secret
            .verify_bindings()
            .map_err(|e| anyhow!("its self-signature does not verify: {e}"))?;
        UpdateKey::new(secret)
    }

    fn new(secret: SignedSecretKey) -> Result<UpdateKey> {
        let public: SignedPublicKey = secret.to_public_key();
        let public = public
            .to_bytes()
            .map_err(|e| anyhow!("serialising the update key's public half: {e}"))?;
        Ok(UpdateKey { secret, public })
    }

    /// The armored secret key, as stored in `secrets/`.
    pub fn armored(&self) -> Result<String> {
        self.secret
            .to_armored_string(Default::default())
            .map_err(|e| anyhow!("armoring the update key: {e}"))
    }

    /// Upper-case hex fingerprint of the (primary, signing) key.
    pub fn fingerprint(&self) -> String {
        format!("{:X}", self.secret.fingerprint())
    }

    /// Unix time the key was created: also every signature's creation time.
    pub fn created(&self) -> u32 {
        self.secret.created_at().as_secs()
    }

    /// The public key, binary (a one-key keyring gpg reads with `--keyring`).
    pub fn public_keyring(&self) -> &[u8] {
        &self.public
    }

    /// The public keyring as an Ignition `data:` URL.
    pub fn keyring_data_url(&self) -> String {
        format!(
            "data:;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(&self.public)
        )
    }

    /// A detached binary signature (`SHA256SUMS.gpg`) over `data`: SHA-256,
    /// made at the key's creation time, so equal inputs give equal bytes.
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>> {
        let key = &self.secret.primary_key;
        let hashed = vec![
            Subpacket::regular(SubpacketData::IssuerFingerprint(key.fingerprint()))?,
            Subpacket::regular(SubpacketData::SignatureCreationTime(key.created_at()))?,
        ];
        let unhashed = vec![Subpacket::regular(SubpacketData::IssuerKeyId(
            key.legacy_key_id(),
        ))?];
        // v4 signatures draw nothing from the generator (Ed25519 is
        // deterministic); a fixed seed keeps that visible.
        let rng = rand_chacha::ChaCha20Rng::from_seed([0; 32]);
        let sig = DetachedSignature::sign_binary_data_with_subpackets(
            rng,
            key,
            &Password::empty(),
            HashAlgorithm::Sha256,
            data,
            SubpacketConfig::UserDefined { hashed, unhashed },
        )
        .map_err(|e| anyhow!("signing with the update key: {e}"))?;
        sig.to_bytes()
            .context("serialising the signature")
            .map_err(|e| anyhow!("{e:#}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fetch::signature::SigningKey;

    #[test]
    fn signatures_verify_with_the_public_key_and_are_reproducible() {
        let key = UpdateKey::generate("t").unwrap();
        let again = UpdateKey::parse(&key.armored().unwrap()).unwrap();
        assert_eq!(again.fingerprint(), key.fingerprint());
        let dir = tempfile::tempdir().unwrap();
        let sums = dir.path().join("SHA256SUMS");
        std::fs::write(&sums, "aa  kubernetes-v1.33.2-x86-64.raw\n").unwrap();
        let sig = key.sign(&std::fs::read(&sums).unwrap()).unwrap();
        assert_eq!(sig, again.sign(&std::fs::read(&sums).unwrap()).unwrap());
        let public = SigningKey::parse(key.public_keyring(), "update key").unwrap();
        assert_eq!(public.fingerprint(), key.fingerprint());
        public.verify_file(&sig, &sums).unwrap();
        // Another listing, or another key's signature, is refused.
        std::fs::write(&sums, "bb  kubernetes-v1.33.3-x86-64.raw\n").unwrap();
        assert!(public.verify_file(&sig, &sums).is_err());
        let foreign = UpdateKey::generate("other").unwrap();
        let foreign_sig = foreign.sign(&std::fs::read(&sums).unwrap()).unwrap();
        assert!(public.verify_file(&foreign_sig, &sums).is_err());
    }

    #[test]
    fn garbage_is_not_a_key() {
        assert!(UpdateKey::parse("not a key").is_err());
    }
}
