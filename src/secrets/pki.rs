//! The site's X.509 material: self-signed CAs (cluster, front-proxy, etcd), the
//! service-account key pair, the admin client certificate, and the join
//! discovery hash.
//!
//! Keys are ECDSA P-256 (rcgen's default through ring, which cannot make RSA
//! keys); kubeadm accepts EC CAs and an EC `sa.key`.
use anyhow::{anyhow, Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SerialNumber,
};
use x509_parser::time::ASN1Time;

/// Lifetime of the CAs (kubeadm's default `caCertificateValidityPeriod`, 10 years).
const CA_DAYS: u64 = 3650;
/// Lifetime of the admin client certificate (kubeadm's default, one year).
const CLIENT_DAYS: u64 = 365;

/// A certificate and its private key, both PEM.
#[derive(Clone)]
pub struct CertPair {
    pub cert_pem: String,
    pub key_pem: String,
}

impl std::fmt::Debug for CertPair {
    // Never print key material, even in debug output.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CertPair").finish_non_exhaustive()
    }
}

/// A self-signed CA with `common_name`, valid from now for ten years.
pub fn new_ca(common_name: &str) -> Result<CertPair> {
    let key = KeyPair::generate().context("generating a CA key")?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = name(common_name, None);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    set_validity(&mut params, CA_DAYS)?;
    let cert = params
        .self_signed(&key)
        .with_context(|| format!("signing the {common_name} CA"))?;
    Ok(CertPair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A client certificate (`CN=common_name`, `O=group`) signed by `ca`.
pub fn new_client_cert(ca: &CertPair, common_name: &str, group: &str) -> Result<CertPair> {
    let ca_key = KeyPair::from_pem(&ca.key_pem).context("reading the CA key")?;
    let issuer = Issuer::from_ca_cert_pem(&ca.cert_pem, &ca_key)
        .map_err(|e| anyhow!("reading the CA certificate: {e}"))?;
    let key = KeyPair::generate().context("generating a client key")?;
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    params.distinguished_name = name(common_name, Some(group));
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params.use_authority_key_identifier_extension = true;
    set_validity(&mut params, CLIENT_DAYS)?;
    let cert = params
        .signed_by(&key, &issuer)
        .with_context(|| format!("signing the client certificate {common_name}"))?;
    Ok(CertPair {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    })
}

/// A fresh service-account signing key pair as (private PKCS#8 PEM, public SPKI PEM).
pub fn new_sa_key_pair() -> Result<(String, String)> {
    let key = KeyPair::generate().context("generating the service-account key")?;
    Ok((key.serialize_pem(), key.public_key_pem()))
}

/// `sha256:<hex>` over the DER SubjectPublicKeyInfo of the PEM certificate: the
/// value `kubeadm join --discovery-token-ca-cert-hash` expects. Computed from
/// the certificate actually shipped, not from a key in memory.
pub fn ca_cert_hash(cert_pem: &str) -> Result<String> {
    let der = pem_der(cert_pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| anyhow!("parsing the CA certificate: {e}"))?;
    let spki = cert.tbs_certificate.subject_pki.raw;
    Ok(format!("sha256:{}", crate::digest::sha256_hex(spki)))
}

/// Unix time at which the PEM certificate stops being valid.
pub fn not_after(cert_pem: &str) -> Result<i64> {
    let der = pem_der(cert_pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| anyhow!("parsing a certificate: {e}"))?;
    Ok(cert.validity().not_after.timestamp())
}

/// The raw public key (the SubjectPublicKeyInfo's key bits) of a PEM private
/// key; fails when the key does not parse.
pub fn private_key_public(key_pem: &str) -> Result<Vec<u8>> {
    KeyPair::from_pem(key_pem)
        .map(|key| key.public_key_raw().to_vec())
        .map_err(|e| anyhow!("not a usable private key: {e}"))
}

/// The raw public key a PEM certificate certifies; fails when it does not parse.
pub fn cert_public(cert_pem: &str) -> Result<Vec<u8>> {
    let der = pem_der(cert_pem)?;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| anyhow!("not a usable certificate: {e}"))?;
    Ok(cert.public_key().subject_public_key.data.to_vec())
}

/// The raw public key of a PEM `PUBLIC KEY` (SubjectPublicKeyInfo, as in
/// `sa.pub`); fails when it does not parse.
pub fn spki_public(public_pem: &str) -> Result<Vec<u8>> {
    use x509_parser::prelude::FromDer;
    let (_, pem) = x509_parser::pem::parse_x509_pem(public_pem.as_bytes())
        .map_err(|e| anyhow!("not a PEM public key: {e}"))?;
    if pem.label != "PUBLIC KEY" {
        return Err(anyhow!(
            "not a PEM public key (the PEM block is a {:?})",
            pem.label
        ));
    }
    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&pem.contents)
        .map_err(|e| anyhow!("not a usable public key: {e}"))?;
    Ok(spki.subject_public_key.data.to_vec())
}

fn pem_der(cert_pem: &str) -> Result<Vec<u8>> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|e| anyhow!("not a PEM certificate: {e}"))?;
    Ok(pem.contents)
}

fn name(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    if let Some(org) = organization {
        dn.push(DnType::OrganizationName, org);
    }
    dn.push(DnType::CommonName, common_name);
    dn
}

/// Valid from one hour ago (clock skew between this machine and the nodes)
/// for `days`, with a random positive serial.
fn set_validity(params: &mut CertificateParams, days: u64) -> Result<()> {
    let now = ASN1Time::now().timestamp();
    let from = ASN1Time::from_timestamp(now - 3600).map_err(|e| anyhow!("{e}"))?;
    let until =
        ASN1Time::from_timestamp(now + (days * 86_400) as i64).map_err(|e| anyhow!("{e}"))?;
    params.not_before = from.to_datetime();
    params.not_after = until.to_datetime();
    let mut serial: [u8; 16] = rand::random();
    serial[0] &= 0x7f;
    params.serial_number = Some(SerialNumber::from_slice(&serial));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_cert_is_signed_by_the_ca_and_hash_is_spki() {
        let ca = new_ca("kubernetes").unwrap();
        let client = new_client_cert(&ca, "kubernetes-admin", "system:masters").unwrap();
        let key = KeyPair::from_pem(&ca.key_pem).unwrap();
        use rcgen::PublicKeyData;
        let expected = format!(
            "sha256:{}",
            crate::digest::sha256_hex(&key.subject_public_key_info())
        );
        assert_eq!(ca_cert_hash(&ca.cert_pem).unwrap(), expected);
        assert!(client.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let days = (not_after(&ca.cert_pem).unwrap() - ASN1Time::now().timestamp()) / 86_400;
        assert!((3649..=3650).contains(&days));
    }

    #[test]
    fn public_keys_tie_keys_to_their_certificates_and_public_halves() {
        let ca = new_ca("kubernetes").unwrap();
        let other = new_ca("etcd-ca").unwrap();
        let key = private_key_public(&ca.key_pem).unwrap();
        assert_eq!(cert_public(&ca.cert_pem).unwrap(), key);
        assert_ne!(cert_public(&other.cert_pem).unwrap(), key);
        let (sa_key, sa_pub) = new_sa_key_pair().unwrap();
        let (_, other_pub) = new_sa_key_pair().unwrap();
        let sa = private_key_public(&sa_key).unwrap();
        assert_eq!(spki_public(&sa_pub).unwrap(), sa);
        assert_ne!(spki_public(&other_pub).unwrap(), sa);
        // A certificate is not a public key file, nor the other way round.
        assert!(spki_public(&ca.cert_pem).is_err());
        assert!(cert_public(&sa_pub).is_err());
        assert!(private_key_public(&ca.cert_pem).is_err());
        assert!(
            spki_public("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").is_err()
        );
    }
}
