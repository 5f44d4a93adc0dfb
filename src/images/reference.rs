//! An image reference as the cluster's tools write it (`quay.io/cilium/cilium:v1.18.2`,
//! `nginx`, `registry.k8s.io/pause:3.10@sha256:…`), normalised the way
//! containerd resolves it: no registry means `docker.io`, and a one-part
//! Docker Hub repository lives under `library/`.
//!
//! In dist/ and on the boot server's OCI API an image's repository is named
//! after its registry and repository together ([`ImageRef::dist_name`],
//! `registry.k8s.io/kube-apiserver`), so repositories of different
//! registries never meet, and a node's containerd reaches them with one
//! `hosts.toml` per upstream registry (`override_path`).
use std::fmt;
use std::str::FromStr;

/// Docker Hub, as references without a registry mean it.
pub const DOCKER_HUB: &str = "docker.io";

/// A parsed, normalised image reference. At least one of `tag` and `digest`
/// is set: a reference with neither means `:latest`, as containerd reads it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ImageRef {
    /// Registry host, with its port when it has one (`127.0.0.1:5000`).
    pub registry: String,
    /// Repository path within the registry (`cilium/cilium`, `library/nginx`).
    pub repository: String,
    pub tag: Option<String>,
    /// `sha256:<64 hex>` when the reference pins one.
    pub digest: Option<String>,
}

impl ImageRef {
    /// The repository's name in dist/ and on the boot server's OCI API:
    /// `<registry>/<repository>`.
    pub fn dist_name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// What to ask the registry for: the digest when pinned, else the tag.
    pub fn reference(&self) -> &str {
        self.digest
            .as_deref()
            .or(self.tag.as_deref())
            .unwrap_or("latest")
    }
}

impl fmt::Display for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for ImageRef {
    type Err = String;

    fn from_str(text: &str) -> Result<ImageRef, String> {
        let (name, digest) = match text.split_once('@') {
            Some((name, digest)) => (name, Some(check_digest(digest)?)),
            None => (text, None),
        };
        // A tag follows the last ':' after the last '/' (a ':' before it is a port).
        let last_part = name.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match name[last_part..].rfind(':') {
            Some(i) => {
                let tag = &name[last_part + i + 1..];
                check_tag(tag)?;
                (&name[..last_part + i], Some(tag.to_string()))
            }
            None => (name, None),
        };
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest)) if looks_like_registry(first) => (first.to_string(), rest),
            _ => (DOCKER_HUB.to_string(), name),
        };
        let repository = if registry == DOCKER_HUB && !repository.contains('/') {
            format!("library/{repository}")
        } else {
            repository.to_string()
        };
        check_repository(&repository)?;
        let tag = if tag.is_none() && digest.is_none() {
            Some("latest".to_string())
        } else {
            tag
        };
        Ok(ImageRef {
            registry,
            repository,
            tag,
            digest,
        })
    }
}

/// The first path part names a registry when it has a '.' or a ':' or is
/// `localhost`, as the distribution reference grammar decides.
fn looks_like_registry(part: &str) -> bool {
    part.contains('.') || part.contains(':') || part == "localhost"
}

fn check_digest(digest: &str) -> Result<String, String> {
    match digest.strip_prefix("sha256:") {
        Some(hex) if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(digest.to_ascii_lowercase())
        }
        _ => Err(format!(
            "has digest {digest:?}: expected sha256: and 64 hexadecimal digits"
        )),
    }
}

fn check_tag(tag: &str) -> Result<(), String> {
    let valid = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !tag.starts_with(['.', '-']);
    if valid {
        Ok(())
    } else {
        Err(format!(
            "has tag {tag:?}: a tag is 1 to 128 letters, digits, '.', '_' or '-', not starting with '.' or '-'"
        ))
    }
}

fn check_repository(repository: &str) -> Result<(), String> {
    let part_ok = |part: &str| {
        !part.is_empty()
            && part
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
            && part.starts_with(|c: char| c.is_ascii_alphanumeric())
            && part.ends_with(|c: char| c.is_ascii_alphanumeric())
    };
    if repository.split('/').all(part_ok) {
        Ok(())
    } else {
        Err(format!(
            "has repository {repository:?}: each '/'-separated part is lower-case letters and \
             digits, joined by '.', '_' or '-'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> ImageRef {
        text.parse().unwrap()
    }

    #[test]
    fn a_bare_name_is_docker_hub_library_latest() {
        let r = parse("nginx");
        assert_eq!(r.to_string(), "docker.io/library/nginx:latest");
        assert_eq!(r.dist_name(), "docker.io/library/nginx");
        assert_eq!(r.reference(), "latest");
    }

    #[test]
    fn a_registry_is_told_by_a_dot_a_port_or_localhost() {
        assert_eq!(
            parse("quay.io/cilium/cilium:v1.18.2").dist_name(),
            "quay.io/cilium/cilium"
        );
        let local = parse("127.0.0.1:5000/test/app:1");
        assert_eq!(local.registry, "127.0.0.1:5000");
        assert_eq!(local.tag.as_deref(), Some("1"));
        assert_eq!(parse("localhost/app").registry, "localhost");
        let hub = parse("argoproj/argocd:v3.1.0");
        assert_eq!(hub.dist_name(), "docker.io/argoproj/argocd");
    }

    #[test]
    fn a_digest_is_what_the_registry_is_asked_for() {
        let hex = "a".repeat(64);
        let r = parse(&format!("registry.k8s.io/pause:3.10@sha256:{hex}"));
        assert_eq!(r.tag.as_deref(), Some("3.10"));
        assert_eq!(r.reference(), format!("sha256:{hex}"));
        assert_eq!(
            r.to_string(),
            format!("registry.k8s.io/pause:3.10@sha256:{hex}")
        );
        let only = parse(&format!("registry.k8s.io/pause@sha256:{hex}"));
        assert_eq!(only.tag, None);
    }

    #[test]
    fn bad_references_say_which_part_is_wrong() {
        let err = |t: &str| t.parse::<ImageRef>().unwrap_err();
        assert!(err("quay.io/Cilium/cilium").contains("repository"));
        assert!(err("nginx:").contains("tag"));
        assert!(err("nginx@sha256:abc").contains("digest"));
        assert!(err("nginx:-x").contains("tag"));
    }
}
