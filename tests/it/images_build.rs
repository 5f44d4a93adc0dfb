//! An air-gapped site (`[images] mode = "serve"`) builds its images into
//! dist/ from a real registry (Debian's docker-registry, tests/it/registry.rs):
//! every manifest and blob at the contract paths, digests equal to the
//! registry's, a multi-arch index kept byte for byte with only the site
//! arch's parts, cache hits on a rebuild, `--offline` with the registry
//! gone, `pxebuild mirror` as a static registry tree, and each fault failing
//! with its exit code, naming image, registry and reason, dist/ intact.
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Output;

use pxebuild::images::ImageRef;
use pxebuild::layout::{oci_blob, oci_manifest, oci_manifest_kind};
use pxebuild::manifest::Manifest;
use pxebuild::site::Site;

use crate::build::ran;
use crate::cluster_build::{build, prepared, pxebuild_on_mirror, Mirror};
use crate::fetch::server::MirrorServer;
use crate::registry::{digest_of, parts, Registry};

const SINGLE: &str = "example.org/tiny/app:1.0";
/// Another tag of SINGLE's repository: the same blobs, one producer per path.
const SINGLE_TOO: &str = "example.org/tiny/app:1.1";
const MULTI: &str = "ghcr.io/example/multi:2";
const V2S2: &str = "docker.io/library/v2s2:3";

/// Appends an `[images]` section to the site in `root`.
pub(crate) fn serve_images(root: &Path, registry_mirror: &str, extra: &[&str]) -> Site {
    let path = root.join("site.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    let list: Vec<String> = extra.iter().map(|e| format!("{e:?}")).collect();
    text.push_str(&format!(
        "\n[images]\nmode = \"serve\"\nregistry_mirror = {registry_mirror:?}\nextra = [{}]\n",
        list.join(", ")
    ));
    std::fs::write(&path, text).unwrap();
    Site::load(&path).unwrap()
}

/// Rewrites the `[images]` section appended by [`serve_images`].
fn reserve_images(root: &Path, registry_mirror: &str, extra: &[&str]) -> Site {
    let path = root.join("site.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let base = text.split("\n[images]\n").next().unwrap().to_string();
    std::fs::write(&path, base).unwrap();
    serve_images(root, registry_mirror, extra)
}

pub(crate) fn build_ok(root: &Path, mirror: &Mirror, extra: &[&str]) -> Output {
    let out = build_with(root, mirror, extra);
    assert!(
        out.status.success(),
        "pxebuild build {extra:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn build_with(root: &Path, mirror: &Mirror, extra: &[&str]) -> Output {
    if extra.is_empty() {
        return build(root, &root.join("dist"), mirror);
    }
    pxebuild_on_mirror(root, mirror)
        .arg("--site")
        .arg(root.join("site.toml"))
        .arg("build")
        .arg("--out")
        .arg(root.join("dist"))
        .args(extra)
        .output()
        .unwrap()
}

fn image(text: &str) -> ImageRef {
    text.parse().unwrap()
}

fn kind_of(bytes: &[u8]) -> &'static str {
    let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
    match v["mediaType"].as_str() {
        Some(t) => oci_manifest_kind(t).unwrap(),
        None if v.get("manifests").is_some() => "oci-index",
        None => "oci-manifest",
    }
}

/// Checks every image of `registry` is in `dist` as the contract says.
fn assert_carried(dist: &Path, registry: &Registry, images: &[&str]) {
    let manifest = Manifest::load(dist).unwrap();
    let listed: Vec<&str> = manifest.files.iter().map(|f| f.path.as_str()).collect();
    let present = |rel: &str| {
        assert!(dist.join(rel).is_file(), "{rel} is not in dist/");
        assert!(listed.contains(&rel), "{rel} is not in manifest.json files");
    };
    // The site's whole list: the catalog's images (tiny stand-ins in the
    // registry) and the extras checked one by one below.
    let site = Site::load(&dist.parent().unwrap().join("site.toml")).unwrap();
    let mut wanted: Vec<String> = pxebuild::site::images::site_images(&site)
        .unwrap()
        .iter()
        .map(|i| i.to_string())
        .collect();
    // The manifest sorts its records by the reference's text.
    wanted.sort();
    let recorded: Vec<&str> = manifest
        .images
        .iter()
        .map(|r| r.reference.as_str())
        .collect();
    assert_eq!(recorded, wanted, "{:?}", manifest.images);
    assert!(wanted.len() > images.len());
    for text in images {
        let image = image(text);
        let raw = registry.raw_manifest(&image);
        let record = manifest
            .images
            .iter()
            .find(|r| r.reference == image.to_string())
            .unwrap_or_else(|| panic!("no record of {image}: {:?}", manifest.images));
        assert_eq!(record.digest, digest_of(&raw), "{image}");
        assert_eq!(record.name, image.dist_name());
        let name = image.dist_name();
        let kind = kind_of(&raw);
        for reference in [image.tag.clone().unwrap(), record.digest.clone()] {
            let rel = oci_manifest(&name, &reference, kind);
            present(&rel);
            assert_eq!(std::fs::read(dist.join(&rel)).unwrap(), raw, "{rel}");
        }
        let v: serde_json::Value = serde_json::from_slice(&raw).unwrap();
        let image_manifest = match kind {
            "oci-index" => {
                let platform = record.platform_digest.clone().expect("an index's platform");
                assert_eq!(platform, parts().amd64_manifest);
                let rel = oci_manifest(&name, &platform, "oci-manifest");
                present(&rel);
                let bytes = std::fs::read(dist.join(&rel)).unwrap();
                assert_eq!(digest_of(&bytes), platform);
                // Only the site's arch: no arm64 manifest, no arm64 layer.
                let arm = oci_manifest(&name, &parts().arm64_manifest, "oci-manifest");
                assert!(!dist.join(&arm).exists(), "{arm} was carried");
                let arm = oci_blob(&name, &parts().arm64_layer);
                assert!(!dist.join(&arm).exists(), "{arm} was carried");
                present(&oci_blob(&name, &parts().amd64_layer));
                serde_json::from_slice(&bytes).unwrap()
            }
            _ => {
                assert_eq!(record.platform_digest, None);
                v
            }
        };
        let config = image_manifest["config"]["digest"].as_str().unwrap();
        let mut blobs = vec![config.to_string()];
        for layer in image_manifest["layers"].as_array().unwrap() {
            blobs.push(layer["digest"].as_str().unwrap().to_string());
        }
        for blob in blobs {
            let rel = oci_blob(&name, &blob);
            present(&rel);
            assert_eq!(digest_of(&std::fs::read(dist.join(&rel)).unwrap()), blob);
        }
    }
}

#[test]
fn serve_mode_carries_the_images_then_rebuilds_from_cache_and_offline() {
    let (dir, mirror) = prepared();
    let root = dir.path();
    let mut registry = Registry::start();
    let images = [SINGLE, SINGLE_TOO, MULTI, V2S2];
    let site = serve_images(root, &registry.url(), &images);
    registry.push_site_images(&site);

    let first = build_ok(root, &mirror, &["--explain"]);
    let dist = root.join("dist");
    assert_carried(&dist, &registry, &images);
    let image_steps: Vec<String> = ran(&first)
        .into_iter()
        .filter(|id| id.starts_with("fetch:image/"))
        .collect();
    // One step per repository: the two tags of example.org/tiny/app share one.
    let mut repositories: Vec<String> = pxebuild::site::images::site_images(&site)
        .unwrap()
        .iter()
        .map(|i| format!("fetch:image/{}", i.dist_name()))
        .collect();
    repositories.dedup();
    assert_eq!(
        repositories.len(),
        pxebuild::site::images::site_images(&site).unwrap().len() - 1
    );
    let mut sorted_steps = image_steps.clone();
    sorted_steps.sort();
    repositories.sort();
    assert_eq!(sorted_steps, repositories, "{image_steps:?}");
    let tree = crate::harness::snapshot(&dist);

    // Same tags, same digests: every step is a cache hit.
    let second = build_ok(root, &mirror, &["--explain"]);
    assert_eq!(ran(&second), Vec::<String>::new());
    assert_eq!(crate::harness::snapshot(&dist), tree);

    // Offline with the registry gone: the records and the cache suffice.
    registry.stop();
    build_ok(root, &mirror, &["--offline"]);
    assert_eq!(crate::harness::snapshot(&dist), tree);
}

#[test]
fn mirror_writes_a_static_registry_the_air_gapped_build_uses() {
    let (dir, mirror) = prepared();
    let root = dir.path();
    let registry = Registry::start();
    let images = [SINGLE, MULTI, V2S2];
    let site = serve_images(root, &registry.url(), &images);
    registry.push_site_images(&site);

    let out_dir = tempfile::tempdir().unwrap();
    let out = pxebuild_on_mirror(root, &mirror)
        .arg("--site")
        .arg(root.join("site.toml"))
        .arg("mirror")
        .arg(out_dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "pxebuild mirror: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for text in images {
        let image = image(text);
        let raw = registry.raw_manifest(&image);
        let at = out_dir
            .path()
            .join("v2")
            .join(image.dist_name())
            .join("manifests");
        assert_eq!(
            std::fs::read(at.join(image.tag.as_ref().unwrap())).unwrap(),
            raw
        );
        assert_eq!(std::fs::read(at.join(digest_of(&raw))).unwrap(), raw);
    }
    drop(registry);

    // A fresh cache and the mirror directory behind a plain static server.
    let server = MirrorServer::start(out_dir.path());
    std::fs::remove_dir_all(root.join("cache")).unwrap();
    reserve_images(root, &server.url(), &images);
    build_ok(root, &mirror, &[]);
    let manifest = Manifest::load(&root.join("dist")).unwrap();
    let site = Site::load(&root.join("site.toml")).unwrap();
    assert_eq!(
        manifest.images.len(),
        pxebuild::site::images::site_images(&site).unwrap().len()
    );
    for record in &manifest.images {
        let name = &record.name;
        let bytes = std::fs::read(
            out_dir
                .path()
                .join(format!("v2/{name}/manifests/{}", record.digest)),
        )
        .unwrap();
        assert_eq!(record.digest, digest_of(&bytes));
        let rel = oci_manifest(name, &record.digest, kind_of(&bytes));
        assert_eq!(std::fs::read(root.join("dist").join(rel)).unwrap(), bytes);
    }
}

/// A build that must fail with `code`, saying each of `says`, and leave
/// the previous dist/ as it was.
fn assert_fails(root: &Path, mirror: &Mirror, code: i32, says: &[&str]) {
    let before = crate::harness::snapshot(&root.join("dist"));
    let out = build_with(root, mirror, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{stderr}");
    for s in says {
        assert!(stderr.contains(s), "no {s:?} in:\n{stderr}");
    }
    assert_eq!(
        crate::harness::snapshot(&root.join("dist")),
        before,
        "the previous dist/ changed"
    );
}

#[test]
fn faults_fail_naming_image_registry_and_reason_and_keep_dist() {
    let (dir, mirror) = prepared();
    let root = dir.path();
    let registry = Registry::start();
    let url = registry.url();
    // The previous tree, with one image carried.
    let site = serve_images(root, &url, &[SINGLE]);
    registry.push_site_images(&site);
    build_ok(root, &mirror, &[]);

    // No such image: the site's to fix; every image that fails is named.
    reserve_images(
        root,
        &url,
        &[SINGLE, "example.org/absent:1", "example.org/gone:2"],
    );
    assert_fails(
        root,
        &mirror,
        2,
        &[
            "2 images failed",
            "example.org/absent:1",
            "example.org/gone:2",
            &url,
            "no such image or tag",
        ],
    );

    // An index without the site's arch: the site's to fix.
    let armonly = "example.org/armonly:1";
    registry.push(&image(armonly));
    reserve_images(root, &url, &[SINGLE, armonly]);
    assert_fails(
        root,
        &mirror,
        2,
        &[armonly, &url, "no linux/amd64 manifest"],
    );

    // A manifest whose bytes are not its digest: the registry's fault.
    let bad_manifest = "example.org/v2s2-bad-manifest:1";
    registry.push(&image(bad_manifest));
    let raw = registry.raw_manifest(&image(bad_manifest));
    let data = registry.blob_data(&digest_of(&raw));
    let mut tampered = raw.clone();
    tampered.push(b'\n');
    std::fs::write(&data, &tampered).unwrap();
    reserve_images(root, &url, &[SINGLE, bad_manifest]);
    assert_fails(root, &mirror, 1, &[bad_manifest, &url, "digest mismatch"]);

    // A layer whose bytes are not its digest (not yet in the cache).
    let bad_blob = "example.org/lone-bad-blob:1";
    registry.push(&image(bad_blob));
    let layer = registry.blob_data(&parts().lone_layer);
    let mut bytes = std::fs::read(&layer).unwrap();
    bytes[0] ^= 0xff;
    std::fs::write(&layer, &bytes).unwrap();
    let hex = &parts().lone_layer["sha256:".len()..];
    let cached = root.join("cache/store/sha256").join(&hex[..2]).join(hex);
    assert!(!cached.exists(), "the layer is cached already");
    reserve_images(root, &url, &[SINGLE, bad_blob]);
    assert_fails(root, &mirror, 1, &[bad_blob, &url, "digest mismatch"]);

    // Offline, an image no previous build resolved.
    reserve_images(root, &url, &[SINGLE, MULTI]);
    registry.push(&image(MULTI));
    let before = crate::harness::snapshot(&root.join("dist"));
    let out = build_with(root, &mirror, &["--offline"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    for s in [MULTI, "build once without --offline", "pxebuild mirror"] {
        assert!(stderr.contains(s), "no {s:?} in:\n{stderr}");
    }
    assert_eq!(crate::harness::snapshot(&root.join("dist")), before);

    // A registry that cannot be reached.
    let closed = format!(
        "http://127.0.0.1:{}",
        TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    );
    reserve_images(root, &closed, &[SINGLE]);
    assert_fails(root, &mirror, 1, &[SINGLE, &closed, "giving up"]);

    // A registry that refuses the anonymous token.
    let refusing = RefusingRegistry::start();
    reserve_images(root, &refusing.url(), &[SINGLE]);
    assert_fails(
        root,
        &mirror,
        1,
        &[SINGLE, &refusing.url(), "refused the token"],
    );
}

/// A registry that asks for a bearer token and refuses to give one: every
/// `/v2/` request gets 401 with a challenge, the realm answers 403.
struct RefusingRegistry {
    port: u16,
}

impl RefusingRegistry {
    fn start() -> RefusingRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        // The thread ends with the test process; it only answers loopback.
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                let mut buf = [0u8; 4096];
                let n = conn.read(&mut buf).unwrap_or(0);
                let head = String::from_utf8_lossy(&buf[..n]);
                let path = head.split_whitespace().nth(1).unwrap_or("");
                let answer = if path.starts_with("/token") {
                    "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                        .to_string()
                } else {
                    format!(
                        "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer \
                         realm=\"http://127.0.0.1:{port}/token\",service=\"test\",\
                         scope=\"repository:x:pull\"\r\nContent-Length: 0\r\n\
                         Connection: close\r\n\r\n"
                    )
                };
                let _ = conn.write_all(answer.as_bytes());
            }
        });
        RefusingRegistry { port }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}
