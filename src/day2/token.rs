//! `pxebuild token publish`: registers the site's bootstrap token
//! (`secrets/bootstrap-token`) with a running cluster as the Secret
//! `kube-system/bootstrap-token-<id>`, the object `kubeadm token create` makes.
//! Needed when nodes join after the token kubeadm init registered has expired
//! (its TTL starts at init), typically after `pxebuild secrets rotate-token`
//! and a rebuild.
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde_json::json;

use super::kubectl;
use super::Cluster;
use crate::error::BadInput;
use crate::site::Site;

/// File name of the bootstrap token inside `secrets/`.
pub const FILE: &str = "bootstrap-token";

/// The group kubeadm's join RBAC is bound to.
pub const JOIN_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";

/// A bootstrap token split into its public id and its secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    pub id: String,
    pub secret: String,
}

impl Token {
    /// Parses `[a-z0-9]{6}.[a-z0-9]{16}`.
    pub fn parse(text: &str) -> Option<Token> {
        let (id, secret) = text.trim().split_once('.')?;
        let ok = |s: &str, n: usize| {
            s.len() == n
                && s.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        };
        (ok(id, 6) && ok(secret, 16)).then(|| Token {
            id: id.into(),
            secret: secret.into(),
        })
    }
}

/// Reads the site's token; bad input (exit 2) when missing or malformed.
pub fn load(site: &Site) -> Result<Token> {
    let path = super::tidy(site.secrets_dir().join(FILE));
    let text = std::fs::read_to_string(&path).map_err(|e| {
        BadInput::new(format!(
            "reading bootstrap token {}: {e}: run `pxebuild build` (or `pxebuild secrets \
             rotate-token`) to create one, or restore secrets/ from your backup",
            path.display()
        ))
    })?;
    Token::parse(&text).ok_or_else(|| {
        BadInput::new(format!(
            "{} does not hold a bootstrap token (want one line like abcdef.0123456789abcdef)",
            path.display()
        ))
    })
}

/// The Secret as kubectl applies it. `expires` is a Unix time; `None` (a TTL
/// of 0) makes a token that never expires.
pub fn secret_manifest(token: &Token, cluster: &str, expires: Option<u64>) -> serde_json::Value {
    let mut data = json!({
        "description": format!("pxebuild: node joins for cluster {cluster}"),
        "token-id": token.id,
        "token-secret": token.secret,
        "usage-bootstrap-authentication": "true",
        "usage-bootstrap-signing": "true",
        "auth-extra-groups": JOIN_GROUP,
    });
    if let Some(at) = expires {
        data["expiration"] = json!(rfc3339(at));
    }
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": format!("bootstrap-token-{}", token.id),
            "namespace": "kube-system",
        },
        "type": "bootstrap.kubernetes.io/token",
        "stringData": data,
    })
}

/// Publishes the token with an expiry of now + `cluster.bootstrap_token_ttl`.
pub fn publish(cluster: &Cluster, site: &Site) -> Result<()> {
    let token = load(site)?;
    let ttl = site.file.cluster.token_ttl().as_secs();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("reading the clock")?
        .as_secs();
    let expires = (ttl > 0).then_some(now + ttl);
    let manifest = secret_manifest(&token, &site.file.cluster.name, expires);
    let text = serde_json::to_string_pretty(&manifest)?;
    let applied = cluster.kubectl(&kubectl::apply_stdin(&cluster.kubeconfig), Some(&text));
    super::doing(applied, || {
        format!("publishing bootstrap token {}", token.id)
    })?;
    let until = expires.map_or("never expires".to_string(), |t| {
        format!("expires {}", rfc3339(t))
    });
    println!(
        "bootstrap token {} published as kube-system/bootstrap-token-{}; {until}",
        token.id, token.id
    );
    Ok(())
}

/// `YYYY-MM-DDTHH:MM:SSZ` for a Unix time (UTC), the format kubeadm writes.
pub fn rfc3339(unix: u64) -> String {
    let (days, secs) = (unix / 86_400, unix % 86_400);
    let (y, m, d) = crate::clock::civil(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_only_in_kubeadm_shape() {
        let t = Token::parse("abcdef.0123456789abcdef\n").unwrap();
        assert_eq!(
            (t.id.as_str(), t.secret.as_str()),
            ("abcdef", "0123456789abcdef")
        );
        assert!(Token::parse("ABCDEF.0123456789abcdef").is_none());
        assert!(Token::parse("abcdef0123456789abcdef").is_none());
        assert!(Token::parse("abcde.0123456789abcdefg").is_none());
    }

    #[test]
    fn rfc3339_matches_known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_798_761_599), "2026-12-31T23:59:59Z");
        assert_eq!(rfc3339(1_764_115_200 + 3_723), "2025-11-26T01:02:03Z");
    }

    #[test]
    fn secret_has_every_field_kubeadm_reads() {
        let t = Token::parse("abcdef.0123456789abcdef").unwrap();
        let want = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "bootstrap-token-abcdef", "namespace": "kube-system"},
            "type": "bootstrap.kubernetes.io/token",
            "stringData": {
                "description": "pxebuild: node joins for cluster rack1",
                "token-id": "abcdef",
                "token-secret": "0123456789abcdef",
                "expiration": "1970-01-02T00:00:00Z",
                "usage-bootstrap-authentication": "true",
                "usage-bootstrap-signing": "true",
                "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token",
            }
        });
        assert_eq!(secret_manifest(&t, "rack1", Some(86_400)), want);
        let never = secret_manifest(&t, "rack1", None);
        assert!(never["stringData"].get("expiration").is_none());
    }
}
