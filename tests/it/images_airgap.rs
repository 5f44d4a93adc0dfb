//! The air gap end to end: the example site built with `[images] mode =
//! "serve"` (its catalog images as tiny stand-ins in a loopback registry,
//! plus a multi-arch extra; its charts from the fixture mirror), the
//! registry then stopped, and Debian's real containerd, given the
//! `hosts.toml` files the build rendered into a node's Ignition, pulls every
//! image of the site from `pxebuild serve`, and again from nginx serving the
//! same tree with the configuration docs/serve.md documents. Both give the
//! digests dist/manifest.json records: every byte came from the boot server.
use std::io::Read;
use std::path::{Path, PathBuf};

use pxebuild::manifest::Manifest;
use serde_json::Value;

use crate::cluster_build::prepared;
use crate::containerd::{Containerd, NginxOci};
use crate::images_build::{build_ok, serve_images};
use crate::registry::Registry;
use crate::serve_support::Served;

/// The site's boot server, as the rendered hosts files name it.
const SITE_HTTP_BASE: &str = "http://10.20.0.2:8080";

/// The `hosts.toml` files in cp1's node Ignition: (registry, contents).
fn rendered_hosts(dist: &Path) -> Vec<(String, String)> {
    let ignition = dist.join("http/ignition");
    let node_dir = std::fs::read_dir(&ignition)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_str().unwrap().starts_with("cp1-"))
        .expect("cp1's Ignition directory");
    let ign: Value =
        serde_json::from_slice(&std::fs::read(node_dir.join("node.ign")).unwrap()).unwrap();
    let prefix = "/etc/containerd/certs.d/";
    ign["storage"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| {
            let path = f["path"].as_str()?;
            let registry = path.strip_prefix(prefix)?.strip_suffix("/hosts.toml")?;
            let contents = &f["contents"];
            let bytes = data_url_bytes(contents["source"].as_str().unwrap());
            let text = match contents["compression"].as_str() {
                Some("gzip") => {
                    let mut text = String::new();
                    flate2::read::GzDecoder::new(&bytes[..])
                        .read_to_string(&mut text)
                        .unwrap();
                    text
                }
                _ => String::from_utf8(bytes).unwrap(),
            };
            Some((registry.to_string(), text))
        })
        .collect()
}

/// The bytes of an Ignition `data:` URL (percent-encoded or base64).
fn data_url_bytes(url: &str) -> Vec<u8> {
    let (head, body) = url.strip_prefix("data:").unwrap().split_once(',').unwrap();
    if head.ends_with(";base64") {
        use base64::Engine;
        return base64::engine::general_purpose::STANDARD
            .decode(body)
            .unwrap();
    }
    percent_decode(body)
}

fn percent_decode(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            out.push(u8::from_str_radix(&text[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Writes the node's hosts files into `dir`, the boot server's address
/// replaced by the test server's `base` (the only change).
fn hosts_dir(dir: PathBuf, hosts: &[(String, String)], base: &str) -> PathBuf {
    for (registry, text) in hosts {
        assert!(text.contains(SITE_HTTP_BASE), "{registry}: {text}");
        let path = dir.join(registry).join("hosts.toml");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text.replace(SITE_HTTP_BASE, base)).unwrap();
    }
    dir
}

#[test]
fn images_airgap_containerd_pulls_every_image_of_the_site_from_the_tree() {
    let (dir, mirror) = prepared();
    let root = dir.path();
    let mut registry = Registry::start();
    let site = serve_images(root, &registry.url(), &["ghcr.io/example/multi:2"]);
    registry.push_site_images(&site);
    build_ok(root, &mirror, &[]);
    // From here on the only source is the tree.
    registry.stop();
    let dist = root.join("dist");
    let manifest = Manifest::load(&dist).unwrap();
    let wanted = pxebuild::site::images::site_images(&site).unwrap();
    assert_eq!(manifest.images.len(), wanted.len());

    // One hosts file per registry of the site's images, as the node gets it.
    let hosts = rendered_hosts(&dist);
    let mut registries: Vec<String> = wanted.iter().map(|i| i.registry.clone()).collect();
    registries.dedup();
    registries.sort();
    let mut got: Vec<String> = hosts.iter().map(|(r, _)| r.clone()).collect();
    got.sort();
    assert_eq!(got, registries);

    let served = Served::start(&dist, &[]);
    let nginx = NginxOci::start(&dist.join("http"));
    let containerd = Containerd::start();
    for (ns, base) in [("serve", served.url("")), ("nginx", nginx.url(""))] {
        let hosts = hosts_dir(containerd.dir().join(format!("hosts-{ns}")), &hosts, &base);
        for record in &manifest.images {
            let digest = containerd.fetch(ns, &hosts, &record.reference);
            assert_eq!(digest, record.digest, "{ns}: {}", record.reference);
        }
        // The multi-arch index came whole, with the amd64 image's parts only.
        let content = containerd.content(ns);
        let multi = manifest
            .images
            .iter()
            .find(|r| r.reference == "ghcr.io/example/multi:2")
            .unwrap();
        assert!(content.contains(&multi.digest), "{ns}: {content:?}");
        assert!(
            content.contains(multi.platform_digest.as_ref().unwrap()),
            "{ns}: {content:?}"
        );
    }
}
