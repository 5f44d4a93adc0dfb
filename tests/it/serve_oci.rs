//! `pxebuild serve`'s read-only OCI pull API, driven by curl on loopback
//! against a tree holding the tiny images of [`crate::oci_tree`]: every
//! route, header and error code, HEAD against GET, Range on blobs, refused
//! writes and path tricks, and the log line naming the node that asked for
//! an image the tree does not carry.
use std::collections::HashMap;

use crate::oci_tree::{digest_of, with_images, TestImage};
use crate::serve_support::{curl, Dist};

/// One answer: status, headers (lower-case names), body.
struct Answer {
    status: u16,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The spec error's `code`.
    fn code(&self) -> String {
        self.json()["errors"][0]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

/// curl with `-i` (and `args`), split into status, headers and body.
fn ask(args: &[&str]) -> Answer {
    let out = curl(&[&["-i", "--path-as-is"], args].concat());
    let raw = out.stdout;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no head: {}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Answer {
        status: status.parse().unwrap(),
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

fn image<'a>(images: &'a [TestImage], name: &str) -> &'a TestImage {
    images.iter().find(|i| i.name == name).unwrap()
}

#[test]
fn serve_oci_manifests_and_blobs_with_their_types_and_digests() {
    let (dist, images) = with_images(Dist::new());
    let server = dist.serve(&[]);

    for path in ["/v2/", "/v2"] {
        let base = ask(&[&server.url(path)]);
        assert_eq!(base.status, 200, "{path}");
        assert_eq!(base.body, b"{}");
        assert_eq!(base.header("content-type"), "application/json");
        assert_eq!(
            base.header("docker-distribution-api-version"),
            "registry/2.0"
        );
    }
    let head = ask(&["-I", &server.url("/v2/")]);
    assert_eq!((head.status, head.header("content-length")), (200, "2"));

    for img in &images {
        let top = std::fs::read(dist.path(&pxebuild::layout::oci_manifest(
            &img.name,
            &img.tag,
            pxebuild::layout::oci_manifest_kind(&img.media_type).unwrap(),
        )))
        .unwrap();
        for reference in [&img.tag, &img.digest] {
            let url = server.url(&format!("/v2/{}/manifests/{reference}", img.name));
            // What containerd does first: HEAD by tag, with the query it adds.
            let head = ask(&["-I", &format!("{url}?ns={}", img.registry)]);
            assert_eq!(head.status, 200, "{url}");
            assert_eq!(head.header("content-type"), img.media_type, "{url}");
            assert_eq!(head.header("docker-content-digest"), img.digest, "{url}");
            assert_eq!(head.header("content-length"), top.len().to_string());
            assert!(head.body.is_empty());
            let get = ask(&[&url]);
            assert_eq!(get.status, 200);
            assert_eq!(get.body, top, "{url}");
            assert_eq!(get.header("docker-content-digest"), img.digest);
            assert_eq!(digest_of(&get.body), img.digest);
        }
        if let Some(platform) = &img.platform_digest {
            let url = server.url(&format!("/v2/{}/manifests/{platform}", img.name));
            let get = ask(&[&url]);
            assert_eq!(get.status, 200);
            assert_eq!(
                get.header("content-type"),
                "application/vnd.oci.image.manifest.v1+json"
            );
            assert_eq!(get.header("docker-content-digest"), *platform);
            assert_eq!(get.body, img.manifest_bytes);
        }
        for (digest, bytes) in &img.blobs {
            let url = server.url(&format!("/v2/{}/blobs/{digest}", img.name));
            let get = ask(&[&url]);
            assert_eq!(get.status, 200, "{url}");
            assert_eq!(&get.body, bytes);
            assert_eq!(get.header("content-type"), "application/octet-stream");
            assert_eq!(get.header("docker-content-digest"), *digest);
            assert_eq!(get.header("content-length"), bytes.len().to_string());
            let head = ask(&["-I", &url]);
            assert_eq!((head.status, head.body.len()), (200, 0));
            assert_eq!(head.header("docker-content-digest"), *digest);
            let part = ask(&["-r", "2-9", &url]);
            assert_eq!(part.status, 206);
            assert_eq!(part.body, bytes[2..10]);
            assert_eq!(
                part.header("content-range"),
                format!("bytes 2-9/{}", bytes.len())
            );
            assert_eq!(part.header("docker-content-digest"), *digest);
            let past = ask(&["-r", &format!("{}-", bytes.len() + 5), &url]);
            assert_eq!(past.status, 416);
        }
    }
    server.wait_log(&[
        "path=http/v2/docker.io/library/tinydocker/blobs/",
        "status=206",
    ]);
}

#[test]
fn serve_oci_errors_as_the_spec_says() {
    let (dist, images) = with_images(Dist::new());
    let oci = image(&images, "registry.test/tiny/oci");
    let multi = image(&images, "registry.test/tiny/multi");
    // A manifest file whose name is not its digest (a tree changed after its build).
    let fake = format!("sha256:{}", "e".repeat(64));
    let dist = dist
        .file(
            &pxebuild::layout::oci_manifest(&oci.name, &fake, "oci-manifest"),
            &oci.manifest_bytes,
        )
        .node("n1", "52:54:00:00:00:01", "127.0.0.2");
    // A link out of the tree under v2/.
    std::fs::write(dist.tmp.path().join("secret"), b"no").unwrap();
    std::os::unix::fs::symlink(
        "../../../../../../../secret",
        dist.path(&pxebuild::layout::oci_blob(&oci.name, &fake)),
    )
    .unwrap();
    let server = dist.serve(&[]);
    let url = |path: &str| server.url(path);
    let unknown = format!("sha256:{}", "0".repeat(64));

    let cases: Vec<(String, u16, &str)> = vec![
        (
            format!("/v2/{}/manifests/9.9", oci.name),
            404,
            "MANIFEST_UNKNOWN",
        ),
        (
            format!("/v2/{}/manifests/{unknown}", oci.name),
            404,
            "MANIFEST_UNKNOWN",
        ),
        (
            format!("/v2/{}/manifests/{fake}", oci.name),
            404,
            "MANIFEST_UNKNOWN",
        ),
        (
            format!("/v2/{}/blobs/{unknown}", oci.name),
            404,
            "BLOB_UNKNOWN",
        ),
        (format!("/v2/{}/blobs/{fake}", oci.name), 403, "DENIED"),
        (
            "/v2/registry.test/not/here/manifests/1.0".into(),
            404,
            "NAME_UNKNOWN",
        ),
        (
            "/v2/registry.test/not/here/blobs/".to_string() + &unknown,
            404,
            "NAME_UNKNOWN",
        ),
        (
            format!("/v2/{}/blobs/sha256:xyz", oci.name),
            400,
            "DIGEST_INVALID",
        ),
        (
            format!("/v2/{}/manifests/sha256:123", oci.name),
            400,
            "DIGEST_INVALID",
        ),
        (
            format!("/v2/{}/manifests/.hidden", oci.name),
            400,
            "NAME_INVALID",
        ),
        ("/v2/Upper/Case/manifests/1".into(), 400, "NAME_INVALID"),
        ("/v2/../manifest.json".into(), 400, "NAME_INVALID"),
        (
            format!("/v2/{}/manifests/..%2f..%2f..%2fmanifest.json", oci.name),
            400,
            "NAME_INVALID",
        ),
        ("/v2/%2e%2e/%2e%2e/manifests/x".into(), 400, "NAME_INVALID"),
        (
            "/v2/registry.test/none/tags/list".into(),
            404,
            "NAME_UNKNOWN",
        ),
        ("/v2/a/../../tags/list".into(), 400, "NAME_INVALID"),
        ("/v2/_catalog".into(), 404, "UNSUPPORTED"),
    ];
    for (path, status, code) in &cases {
        let got = ask(&[&url(path)]);
        assert_eq!(
            (got.status, got.code().as_str()),
            (*status, *code),
            "{path}"
        );
        assert_eq!(got.header("content-type"), "application/json", "{path}");
        assert_eq!(
            got.header("docker-distribution-api-version"),
            "registry/2.0"
        );
        // HEAD: the same status, no body.
        let head = ask(&["-I", &url(path)]);
        assert_eq!((head.status, head.body.len()), (*status, 0), "HEAD {path}");
    }
    // The tags the tree carries for a name: its tag files, not its digests.
    let tags = ask(&[&url(&format!("/v2/{}/tags/list", multi.name))]);
    assert_eq!(tags.status, 200);
    assert_eq!(
        tags.json(),
        serde_json::json!({"name": multi.name, "tags": [multi.tag]})
    );
    // arm64's manifest is named by the index but not carried.
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(dist.path(&pxebuild::layout::oci_manifest(
            &multi.name,
            &multi.tag,
            "oci-index",
        )))
        .unwrap(),
    )
    .unwrap();
    let arm64 = index["manifests"][1]["digest"].as_str().unwrap();
    let got = ask(&[&url(&format!("/v2/{}/manifests/{arm64}", multi.name))]);
    assert_eq!((got.status, got.code().as_str()), (404, "MANIFEST_UNKNOWN"));

    // Read-only: every write is refused with UNSUPPORTED and Allow.
    for (method, path) in [
        ("PUT", format!("/v2/{}/manifests/1.0", oci.name)),
        ("POST", format!("/v2/{}/blobs/uploads/", oci.name)),
        ("PATCH", format!("/v2/{}/blobs/uploads/x", oci.name)),
        (
            "DELETE",
            format!("/v2/{}/manifests/{}", oci.name, oci.digest),
        ),
        ("PUT", "/v2/".into()),
    ] {
        let got = ask(&["-X", method, "--data-binary", "{}", &url(&path)]);
        assert_eq!(
            (got.status, got.code().as_str()),
            (405, "UNSUPPORTED"),
            "{method} {path}"
        );
        assert_eq!(got.header("allow"), "GET, HEAD");
    }
    // Still served after all that, and nothing was written.
    let get = ask(&[&url(&format!("/v2/{}/manifests/{}", oci.name, oci.tag))]);
    assert_eq!(get.status, 200);

    // A node pulling an image the tree does not carry: its name in the log.
    let got = ask(&[
        "--interface",
        "127.0.0.2",
        &url("/v2/docker.io/library/missing/manifests/latest"),
    ]);
    assert_eq!(got.code(), "NAME_UNKNOWN");
    server.wait_log(&[
        "127.0.0.2:",
        "node=n1",
        "path=http/v2/docker.io/library/missing/manifests/latest",
        "status=404",
        "result=not-found:name-unknown",
    ]);
    server.wait_log(&["status=405", "result=refused:read-only"]);
    server.wait_log(&["result=refused:digest-mismatch"]);
    server.wait_log(&["result=refused:escapes-root"]);
}

#[test]
fn serve_oci_on_a_tree_without_images_is_an_empty_registry() {
    let dist = Dist::new().file("http/boot.ipxe", b"#!ipxe\n");
    let server = dist.serve(&[]);
    let base = ask(&[&server.url("/v2/")]);
    assert_eq!((base.status, base.body.as_slice()), (200, &b"{}"[..]));
    let got = ask(&[&server.url("/v2/registry.k8s.io/pause/manifests/3.10")]);
    assert_eq!((got.status, got.code().as_str()), (404, "NAME_UNKNOWN"));
    // The rest of the tree is served as before.
    assert_eq!(ask(&[&server.url("/boot.ipxe")]).status, 200);
}

/// Debian's containerd pulls every test image through the hosts
/// configuration a serve-mode node gets, from `pxebuild serve` and from nginx
/// with the documented configuration, resolving the same digests; skopeo,
/// a second client, reads the same manifests from both.
#[test]
fn serve_oci_containerd_and_skopeo_pull_from_serve_and_from_nginx_alike() {
    use crate::containerd::{hosts_dir, Containerd, NginxOci};
    let (dist, images) = with_images(Dist::new());
    let server = dist.serve(&[]);
    let nginx = NginxOci::start(&dist.dir().join("http"));
    let containerd = Containerd::start();
    let mut registries: Vec<&str> = images.iter().map(|i| i.registry.as_str()).collect();
    registries.dedup();
    let via_serve = hosts_dir(
        &containerd.dir().join("hosts-serve"),
        &registries,
        &server.url(""),
    );
    let via_nginx = hosts_dir(
        &containerd.dir().join("hosts-nginx"),
        &registries,
        &nginx.url(""),
    );
    for img in &images {
        let from_serve = containerd.fetch("serve", &via_serve, &img.reference);
        let from_nginx = containerd.fetch("nginx", &via_nginx, &img.reference);
        assert_eq!(
            from_serve, img.digest,
            "{} from pxebuild serve",
            img.reference
        );
        assert_eq!(from_nginx, from_serve, "{} from nginx", img.reference);
        for ns in ["serve", "nginx"] {
            let content = containerd.content(ns);
            for (blob, _) in &img.blobs {
                assert!(
                    content.contains(blob),
                    "{ns}: {blob} of {} not fetched",
                    img.reference
                );
            }
        }
    }
    // nginx names the media type, and the digest of a manifest asked by digest.
    for img in &images {
        let head = ask(&[
            "-I",
            &nginx.url(&format!("/v2/{}/manifests/{}", img.name, img.digest)),
        ]);
        assert_eq!(head.status, 200);
        assert_eq!(head.header("content-type"), img.media_type);
        assert_eq!(head.header("docker-content-digest"), img.digest);
        let base = ask(&[&nginx.url("/v2/")]);
        assert_eq!((base.status, base.body.as_slice()), (200, &b"{}"[..]));
        assert_eq!(
            base.header("docker-distribution-api-version"),
            "registry/2.0"
        );
    }
    // The pulls really went through the boot server, by the dist names.
    server.wait_log(&[
        "path=http/v2/registry.test/tiny/multi/blobs/sha256:",
        "status=200",
        "result=ok",
    ]);

    // skopeo: the same manifest bytes and layers from both servers (nginx
    // has no tag lists: --no-tags, as docs/serve.md says).
    for img in &images {
        for port in [server.http, nginx.port] {
            let target = format!("docker://127.0.0.1:{port}/{}:{}", img.name, img.tag);
            let raw = skopeo(&["inspect", "--tls-verify=false", "--raw", &target]);
            assert_eq!(digest_of(&raw), img.digest, "{target}");
            let info: serde_json::Value = serde_json::from_slice(&skopeo(&[
                "inspect",
                "--tls-verify=false",
                "--no-tags",
                "--override-os",
                "linux",
                "--override-arch",
                "amd64",
                &target,
            ]))
            .unwrap();
            let layer = &img.blobs[1].0;
            assert_eq!(info["Layers"][0].as_str(), Some(layer.as_str()), "{target}");
        }
    }
}

fn skopeo(args: &[&str]) -> Vec<u8> {
    let out = crate::serve_support::run(std::path::Path::new("/"), "skopeo", args);
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// `containerd::pull_tree`, the check a built tree gets: the upstream names
/// (Docker Hub's short form too) resolve to the digests the tree records.
#[test]
fn serve_oci_pull_tree_resolves_the_recorded_digests() {
    let (dist, images) = with_images(Dist::new());
    let references = [
        "registry.test/tiny/oci:1.0",
        "registry.test/tiny/multi:2.0",
        "tinydocker:3.0",
    ];
    let pulled = crate::containerd::pull_tree(&dist.dir(), &references);
    let expected: Vec<(String, String)> = images
        .iter()
        .map(|i| (i.reference.clone(), i.digest.clone()))
        .collect();
    assert_eq!(pulled, expected);
}
