//! The admin kubeconfig (`secrets/kubeconfig`), minted before the cluster
//! exists: a client certificate signed by the cluster CA, pointing at the
//! control-plane endpoint.
//!
//! The certificate's group is `system:masters`. kubeadm ≥ 1.29 gives its own
//! admin.conf the `kubeadm:cluster-admins` group instead, but that group only
//! gains rights when `kubeadm init` creates its RBAC binding; `system:masters`
//! is authorised by the API server itself, so this file works the moment the
//! API answers (and even if init stopped halfway). Treat it like super-admin.conf.
use anyhow::{Context, Result};
use base64::Engine;
use serde_json::json;

use super::pki::{self, CertPair};

pub const FILE: &str = "kubeconfig";
pub const ADMIN_GROUP: &str = "system:masters";

/// `host:port` split of a control-plane endpoint (`IP`, `IP:port`, `name:port`,
/// `[v6]:port`); the port defaults to 6443.
pub fn split_endpoint(endpoint: &str) -> (String, u16) {
    if let Ok(addr) = endpoint.parse::<std::net::SocketAddr>() {
        return (addr.ip().to_string(), addr.port());
    }
    if let Ok(ip) = endpoint.parse::<std::net::IpAddr>() {
        return (ip.to_string(), 6443);
    }
    match endpoint.rsplit_once(':') {
        Some((host, port)) if port.parse::<u16>().is_ok() => {
            (host.to_string(), port.parse().unwrap_or(6443))
        }
        _ => (endpoint.to_string(), 6443),
    }
}

/// `https://host:port` for an endpoint (IPv6 hosts in brackets).
pub fn server_url(endpoint: &str) -> String {
    let (host, port) = split_endpoint(endpoint);
    if host.contains(':') {
        format!("https://[{host}]:{port}")
    } else {
        format!("https://{host}:{port}")
    }
}

/// A complete kubeconfig for `cluster_name` with a fresh admin client certificate.
pub fn render(cluster_name: &str, endpoint: &str, ca: &CertPair) -> Result<String> {
    let user = format!("{cluster_name}-admin");
    let client = pki::new_client_cert(ca, "kubernetes-admin", ADMIN_GROUP)?;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    let context = format!("{user}@{cluster_name}");
    let config = json!({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{
            "name": cluster_name,
            "cluster": {
                "server": server_url(endpoint),
                "certificate-authority-data": b64(&ca.cert_pem),
            },
        }],
        "users": [{
            "name": user,
            "user": {
                "client-certificate-data": b64(&client.cert_pem),
                "client-key-data": b64(&client.key_pem),
            },
        }],
        "contexts": [{
            "name": context,
            "context": {"cluster": cluster_name, "user": user},
        }],
        "current-context": context,
        "preferences": {},
    });
    serde_norway::to_string(&config).context("serialising the kubeconfig")
}

/// Unix time at which the client certificate of kubeconfig `text` expires.
pub fn client_cert_not_after(text: &str) -> Result<i64> {
    let config: serde_json::Value =
        serde_norway::from_str(text).context("parsing the kubeconfig")?;
    let data = config["users"][0]["user"]["client-certificate-data"]
        .as_str()
        .context("the kubeconfig has no client-certificate-data")?;
    let pem = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .context("decoding client-certificate-data")?;
    pki::not_after(&String::from_utf8_lossy(&pem)).context("the kubeconfig's client certificate")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_split_with_default_port() {
        assert_eq!(split_endpoint("10.0.0.1:6443"), ("10.0.0.1".into(), 6443));
        assert_eq!(split_endpoint("10.0.0.1"), ("10.0.0.1".into(), 6443));
        assert_eq!(
            split_endpoint("api.example:8443"),
            ("api.example".into(), 8443)
        );
        assert_eq!(split_endpoint("fd00::1"), ("fd00::1".into(), 6443));
        assert_eq!(server_url("[fd00::1]:6443"), "https://[fd00::1]:6443");
    }

    #[test]
    fn client_cert_expiry_is_read_back() {
        let ca = pki::new_ca("kubernetes").unwrap();
        let text = render("c", "10.0.0.1:6443", &ca).unwrap();
        let until = client_cert_not_after(&text).unwrap();
        assert!(
            until > crate::clock::now_secs() as i64 + 300 * 24 * 3600,
            "{until}"
        );
        assert!(client_cert_not_after("users: []").is_err());
    }
}
