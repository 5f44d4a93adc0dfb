//! Who is asking: client IP (or MAC) → node name, and the per-node access rule
//! from the manifest (an Ignition config tied to a node IP is served only to that
//! IP). Built from one `manifest.json`; the server swaps in a new [`Nodes`] when
//! the manifest is reloaded.
use std::collections::HashMap;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use anyhow::{Context, Result};

use crate::manifest::Manifest;

/// A file that only one node may fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restricted {
    pub node: String,
    pub ip: IpAddr,
}

/// Outcome of the access rule for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    Allowed,
    /// The file belongs to `owner`, and the client is someone else.
    Refused(Restricted),
}

#[derive(Debug, Default)]
pub struct Nodes {
    by_ip: HashMap<IpAddr, String>,
    by_mac: HashMap<String, String>,
    /// Manifest path (`http/ignition/…`) → owner.
    by_path: HashMap<String, Restricted>,
    /// (device, inode) of each restricted file at load time, so a symlink or hard
    /// link to it inside the tree is restricted as well.
    by_inode: HashMap<(u64, u64), Restricted>,
    ip_check: bool,
}

impl Nodes {
    /// Index of `manifest`, whose tree is `dist`. `ip_check` off turns the
    /// per-node rule into logging only (labs behind NAT).
    pub fn from_manifest(manifest: &Manifest, dist: &Path, ip_check: bool) -> Result<Nodes> {
        let mut nodes = Nodes {
            ip_check,
            ..Nodes::default()
        };
        for node in &manifest.nodes {
            if let Ok(ip) = node.ip.parse::<IpAddr>() {
                nodes.by_ip.insert(ip, node.name.clone());
            }
            nodes
                .by_mac
                .insert(node.mac.to_ascii_lowercase(), node.name.clone());
        }
        for entry in &manifest.access {
            let ip: IpAddr = entry.ip.parse().with_context(|| {
                format!(
                    "manifest access entry {}: bad ip {:?}",
                    entry.path, entry.ip
                )
            })?;
            let owner = Restricted {
                node: entry.node.clone(),
                ip,
            };
            if let Ok(meta) = std::fs::metadata(dist.join(&entry.path)) {
                nodes
                    .by_inode
                    .insert((meta.dev(), meta.ino()), owner.clone());
            }
            nodes.by_path.insert(entry.path.clone(), owner);
        }
        Ok(nodes)
    }

    /// The node with this IP (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn name_for_ip(&self, ip: IpAddr) -> Option<&str> {
        self.by_ip.get(&ip.to_canonical()).map(String::as_str)
    }

    /// The IP of the node with this name, if the manifest gives it one.
    pub fn ip_of(&self, name: &str) -> Option<IpAddr> {
        self.by_ip
            .iter()
            .find_map(|(ip, node)| (node == name).then_some(*ip))
    }

    /// The node with this MAC, given as `aa:bb:…` or `aa-bb-…`, any case.
    pub fn name_for_mac(&self, mac: &str) -> Option<&str> {
        let mac = mac.to_ascii_lowercase().replace('-', ":");
        self.by_mac.get(&mac).map(String::as_str)
    }

    /// Every node the manifest names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.by_mac.values().cloned().collect();
        names.sort();
        names.dedup();
        names
    }

    pub fn ip_check(&self) -> bool {
        self.ip_check
    }

    /// The access rule for `path` (relative to dist, e.g. `http/ignition/x.ign`)
    /// opened as file `id`, requested by `client`.
    pub fn access(&self, path: &str, id: (u64, u64), client: IpAddr) -> Access {
        let owner = self.by_path.get(path).or_else(|| self.by_inode.get(&id));
        match owner {
            Some(owner) if owner.ip != client.to_canonical() => Access::Refused(owner.clone()),
            _ => Access::Allowed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::{AccessEntry, NodeEntry};

    fn manifest() -> Manifest {
        Manifest {
            format: 1,
            inputs: "00".into(),
            files: vec![],
            nodes: vec![NodeEntry {
                name: "cp1".into(),
                mac: "52:54:00:77:00:01".into(),
                ip: "10.0.0.11".into(),
                role: "control-plane".into(),
            }],
            access: vec![AccessEntry {
                path: "http/ignition/cp1-x7k2/install.ign".into(),
                node: "cp1".into(),
                ip: "10.0.0.11".into(),
            }],
            flatcar: None,
            images: Vec::new(),
        }
    }

    #[test]
    fn names_by_ip_and_mac() {
        let nodes = Nodes::from_manifest(&manifest(), Path::new("/nonexistent"), true).unwrap();
        assert_eq!(nodes.name_for_ip("10.0.0.11".parse().unwrap()), Some("cp1"));
        assert_eq!(
            nodes.name_for_ip("::ffff:10.0.0.11".parse().unwrap()),
            Some("cp1")
        );
        assert_eq!(nodes.name_for_ip("10.0.0.12".parse().unwrap()), None);
        assert_eq!(nodes.name_for_mac("52-54-00-77-00-01"), Some("cp1"));
    }

    #[test]
    fn restricted_files_only_for_their_node() {
        let nodes = Nodes::from_manifest(&manifest(), Path::new("/nonexistent"), true).unwrap();
        let path = "http/ignition/cp1-x7k2/install.ign";
        assert_eq!(
            nodes.access(path, (0, 0), "10.0.0.11".parse().unwrap()),
            Access::Allowed
        );
        assert!(matches!(
            nodes.access(path, (0, 0), "10.0.0.99".parse().unwrap()),
            Access::Refused(Restricted { ref node, .. }) if node == "cp1"
        ));
        assert_eq!(
            nodes.access("http/other", (0, 0), "10.0.0.99".parse().unwrap()),
            Access::Allowed
        );
    }
}
