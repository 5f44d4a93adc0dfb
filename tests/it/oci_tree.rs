//! Tiny container images written straight into a test tree at the contract
//! paths (`pxebuild::layout::oci_manifest`/`oci_blob`), listed in its
//! manifest.json like a build lists them: an OCI image, a multi-arch OCI
//! index of which only amd64 is carried (arm64's manifest and blobs are not,
//! as a build for an amd64 site leaves them), and a Docker schema2 image on
//! Docker Hub. The serving tests use them before a build can carry real ones.
#![allow(dead_code)]

use std::io::Write;

use pxebuild::layout;
use pxebuild::manifest::ImageRecord;

use super::serve_support::Dist;

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// One image as a pull names it and as the tree carries it.
#[derive(Debug, Clone)]
pub struct TestImage {
    /// The upstream reference a node pulls (`registry.test/tiny/oci:1.0`).
    pub reference: String,
    /// Its registry (the `hosts.toml` directory's name).
    pub registry: String,
    /// Its name in dist/ and on the pull API (`registry.test/tiny/oci`).
    pub name: String,
    pub tag: String,
    /// Digest of what the tag names (the index, for a multi-arch image).
    pub digest: String,
    pub media_type: String,
    /// The amd64 manifest's digest when `digest` is an index.
    pub platform_digest: Option<String>,
    /// Every carried blob (configs and layers): (digest, bytes).
    pub blobs: Vec<(String, Vec<u8>)>,
    /// The manifest that pulls for linux/amd64 end at, and its bytes.
    pub manifest_bytes: Vec<u8>,
}

pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", pxebuild::digest::sha256_hex(bytes))
}

/// A gzip'd tar with one file: (compressed, uncompressed digest).
fn layer(file: &str, contents: &[u8]) -> (Vec<u8>, String) {
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_size(contents.len() as u64);
    header.set_mode(0o644);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, file, contents).unwrap();
    let tar = tar.into_inner().unwrap();
    let diff_id = digest_of(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), diff_id)
}

fn config(arch: &str, diff_id: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": arch,
        "os": "linux",
        "config": {"Cmd": ["/hello"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap()
}

fn descriptor(media_type: &str, bytes: &[u8]) -> serde_json::Value {
    serde_json::json!({"mediaType": media_type, "digest": digest_of(bytes), "size": bytes.len()})
}

/// (manifest bytes, blobs) of a one-layer image.
fn image(
    manifest_type: &str,
    config_type: &str,
    layer_type: &str,
    arch: &str,
    seed: &str,
) -> (Vec<u8>, Vec<(String, Vec<u8>)>) {
    let (layer, diff_id) = layer("hello", format!("hello from {seed} {arch}\n").as_bytes());
    let config = config(arch, &diff_id);
    let manifest = serde_json::to_vec_pretty(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": manifest_type,
        "config": descriptor(config_type, &config),
        "layers": [descriptor(layer_type, &layer)],
    }))
    .unwrap();
    let blobs = vec![(digest_of(&config), config), (digest_of(&layer), layer)];
    (manifest, blobs)
}

/// Writes a manifest under `reference` (a tag or digest) and lists it.
fn put_manifest(dist: Dist, name: &str, reference: &str, media_type: &str, bytes: &[u8]) -> Dist {
    let kind = layout::oci_manifest_kind(media_type).unwrap();
    dist.file(&layout::oci_manifest(name, reference, kind), bytes)
}

fn put_blobs(mut dist: Dist, name: &str, blobs: &[(String, Vec<u8>)]) -> Dist {
    for (digest, bytes) in blobs {
        dist = dist.file(&layout::oci_blob(name, digest), bytes);
    }
    dist
}

/// One amd64 image `(registry, name, tag)` of the manifest, config and layer
/// media types `kinds`, written into `dist` under its tag and its digest.
fn single_arch(
    dist: Dist,
    (registry, name, tag): (&str, &str, &str),
    (manifest_type, config_type, layer_type): (&str, &str, &str),
    salt: &str,
) -> (Dist, TestImage) {
    let (manifest, blobs) = image(manifest_type, config_type, layer_type, "amd64", salt);
    let digest = digest_of(&manifest);
    let dist = put_manifest(dist, name, tag, manifest_type, &manifest);
    let dist = put_manifest(dist, name, &digest, manifest_type, &manifest);
    let dist = put_blobs(dist, name, &blobs);
    let image = TestImage {
        reference: format!("{name}:{tag}"),
        registry: registry.into(),
        name: name.into(),
        tag: tag.into(),
        digest,
        media_type: manifest_type.into(),
        platform_digest: None,
        blobs,
        manifest_bytes: manifest,
    };
    (dist, image)
}

/// The three test images, written into `dist` and its manifest.
pub fn with_images(mut dist: Dist) -> (Dist, Vec<TestImage>) {
    let mut images = Vec::new();

    // A plain OCI image.
    let kinds = (OCI_MANIFEST, OCI_CONFIG, OCI_LAYER);
    let oci = ("registry.test", "registry.test/tiny/oci", "1.0");
    let (next, one) = single_arch(dist, oci, kinds, "oci");
    dist = next;
    images.push(one);

    // A multi-arch index; only amd64's manifest and blobs are carried.
    let (registry, name, tag) = ("registry.test", "registry.test/tiny/multi", "2.0");
    let (amd64, amd64_blobs) = image(OCI_MANIFEST, OCI_CONFIG, OCI_LAYER, "amd64", "multi");
    let (arm64, _) = image(OCI_MANIFEST, OCI_CONFIG, OCI_LAYER, "arm64", "multi");
    let platform = |bytes: &[u8], arch: &str| {
        let mut d = descriptor(OCI_MANIFEST, bytes);
        d["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
        d
    };
    let index = serde_json::to_vec_pretty(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [platform(&amd64, "amd64"), platform(&arm64, "arm64")],
    }))
    .unwrap();
    let digest = digest_of(&index);
    let amd64_digest = digest_of(&amd64);
    dist = put_manifest(dist, name, tag, OCI_INDEX, &index);
    dist = put_manifest(dist, name, &digest, OCI_INDEX, &index);
    dist = put_manifest(dist, name, &amd64_digest, OCI_MANIFEST, &amd64);
    dist = put_blobs(dist, name, &amd64_blobs);
    images.push(TestImage {
        reference: format!("{name}:{tag}"),
        registry: registry.into(),
        name: name.into(),
        tag: tag.into(),
        digest,
        media_type: OCI_INDEX.into(),
        platform_digest: Some(amd64_digest),
        blobs: amd64_blobs,
        manifest_bytes: amd64,
    });

    // A Docker schema2 image on Docker Hub.
    let kinds = (DOCKER_MANIFEST, DOCKER_CONFIG, DOCKER_LAYER);
    let docker = ("docker.io", "docker.io/library/tinydocker", "3.0");
    let (next, one) = single_arch(dist, docker, kinds, "dock");
    dist = next;
    images.push(one);

    for image in &images {
        dist = dist.image(ImageRecord {
            digest: image.digest.clone(),
            media_type: image.media_type.clone(),
            name: image.name.clone(),
            platform_digest: image.platform_digest.clone(),
            reference: image.reference.clone(),
        });
    }
    (dist, images)
}
