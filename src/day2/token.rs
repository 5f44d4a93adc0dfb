//! `pxebuild token publish`: registers the site's bootstrap token
//! (`secrets/bootstrap-token`) with a running cluster as the Secret
//! `kube-system/bootstrap-token-<id>`, the object `kubeadm token create` makes.
//! Needed when nodes join after the token kubeadm init registered has expired
//! (its TTL starts at init), typically after `pxebuild secrets rotate-token`
//! and a rebuild.
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

/// Publishes the token with an expiry of now + `cluster.bootstrap_token_ttl`,
/// then revokes every other token pxebuild made for the cluster (the one
/// kubeadm init registered, earlier publishes): a rotated token is one that
/// may have been seen, so it must stop working now, not when it expires.
pub fn publish(cluster: &Cluster, site: &Site) -> Result<()> {
    let token = load(site)?;
    let ttl = site.file.cluster.bootstrap_token_ttl.get().as_secs();
    let now = crate::clock::now_secs();
    let expires = (ttl > 0).then_some(now + ttl);
    let kc = &cluster.kubeconfig;
    let listed = cluster.kubectl(&kubectl::get_bootstrap_tokens(kc), None);
    let existing = pxebuild_tokens(&super::doing(listed, || {
        "listing the cluster's bootstrap tokens".to_string()
    })?)?;
    let manifest = secret_manifest(&token, &site.file.cluster.name, expires);
    let text = serde_json::to_string_pretty(&manifest)?;
    // Replaced, not applied, when it exists: an apply keeps an expiration
    // the manifest no longer has (a TTL changed to 0s), and records the
    // secret in clear text in its last-applied annotation.
    let write = if existing.iter().any(|t| t.id == token.id) {
        kubectl::replace_stdin(kc)
    } else {
        kubectl::create_stdin(kc)
    };
    super::doing(cluster.kubectl(&write, Some(&text)), || {
        format!("publishing bootstrap token {}", token.id)
    })?;
    let until = expires.map_or("never expires".to_string(), |t| {
        format!("expires {}", rfc3339(t))
    });
    println!(
        "bootstrap token {} published as kube-system/bootstrap-token-{}; {until}",
        token.id, token.id
    );
    let stale: Vec<&Published> = existing.iter().filter(|t| t.id != token.id).collect();
    if !stale.is_empty() {
        let names: Vec<String> = stale.iter().map(|t| t.name.clone()).collect();
        let deleted = cluster.kubectl(&kubectl::delete_secrets(kc, &names), None);
        super::doing(deleted, || {
            format!("revoking the earlier bootstrap tokens {}", names.join(", "))
        })?;
        for t in stale {
            println!("revoked bootstrap token {} (kube-system/{})", t.id, t.name);
        }
    }
    Ok(())
}

/// A bootstrap token Secret pxebuild made: by kubeadm init from the init
/// config, or by an earlier `token publish`.
#[derive(Debug, PartialEq, Eq)]
pub struct Published {
    pub name: String,
    pub id: String,
}

/// The pxebuild tokens in `kubectl get secrets -o json` output: those whose
/// description starts with "pxebuild" (see `secret_manifest` and the init
/// config's `bootstrapTokens`). Tokens made by others are left alone.
pub fn pxebuild_tokens(json: &str) -> Result<Vec<Published>> {
    use base64::Engine;
    let list: serde_json::Value =
        serde_json::from_str(json).context("reading kubectl's list of bootstrap tokens")?;
    let field = |item: &serde_json::Value, key: &str| {
        item["data"][key]
            .as_str()
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
    };
    let mut found = Vec::new();
    for item in list["items"].as_array().into_iter().flatten() {
        let description = field(item, "description").unwrap_or_default();
        let (Some(name), Some(id)) = (item["metadata"]["name"].as_str(), field(item, "token-id"))
        else {
            continue;
        };
        if description.starts_with("pxebuild") {
            found.push(Published {
                name: name.to_string(),
                id,
            });
        }
    }
    Ok(found)
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
    fn only_pxebuild_tokens_are_found() {
        use base64::Engine;
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let item = |name: &str, id: &str, description: &str| {
            json!({
                "metadata": {"name": name},
                "data": {"token-id": b64(id), "description": b64(description)},
            })
        };
        let list = json!({"items": [
            item("bootstrap-token-abcdef", "abcdef", "pxebuild bootstrap token for rack1"),
            item("bootstrap-token-x0fht7", "x0fht7", "pxebuild: node joins for cluster rack1"),
            item("bootstrap-token-manual", "manual", "made by kubeadm token create"),
            json!({"metadata": {"name": "bootstrap-token-broken"}, "data": {}}),
        ]});
        let found = pxebuild_tokens(&list.to_string()).unwrap();
        let ids: Vec<&str> = found.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["abcdef", "x0fht7"]);
        assert!(pxebuild_tokens("{}").unwrap().is_empty());
        assert!(pxebuild_tokens("not json").is_err());
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
