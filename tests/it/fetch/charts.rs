//! Helm charts in `[images] mode = "serve"`: small real chart archives (laid
//! out as `helm package` does) and upstream-style index.yaml files, made here
//! and served by the fixture mirror under the repositories' hosts. The build
//! publishes them in dist/ as a static Helm repository, checks each archive
//! against its index's digest, and covers them with the cache, `--offline`
//! and `pxebuild mirror` like every other artifact.
use std::io::Write;
use std::path::Path;

use serde_norway::Value;

use pxebuild::site::Site;

use super::server::MirrorServer;
use super::{assert_fails_with, assert_ok, sha256_of, snapshot, stderr, World};
use crate::registry::Registry;

/// Each chart the serve-mode test site carries: its index's path in the
/// mirror, the archive's path in the mirror, and the archive's URL as the
/// index writes it (absolute as helm.cilium.io and argo-helm write them, or
/// relative to the repository).
struct Fixture {
    name: &'static str,
    version: &'static str,
    index: &'static str,
    archive: &'static str,
    url: &'static str,
}

const CHARTS: [Fixture; 3] = [
    Fixture {
        name: "argo-cd",
        version: "10.9.0",
        index: "argoproj.github.io/argo-helm/index.yaml",
        archive: "github.com/argoproj/argo-helm/releases/download/argo-cd-10.9.0/argo-cd-10.9.0.tgz",
        url: "https://github.com/argoproj/argo-helm/releases/download/argo-cd-10.9.0/argo-cd-10.9.0.tgz",
    },
    Fixture {
        name: "cilium",
        version: "1.19.8",
        index: "helm.cilium.io/index.yaml",
        archive: "helm.cilium.io/cilium-1.19.8.tgz",
        url: "https://helm.cilium.io/cilium-1.19.8.tgz",
    },
    Fixture {
        name: "kured",
        version: "6.0.0",
        index: "kubereboot.github.io/charts/index.yaml",
        archive: "kubereboot.github.io/charts/kured-6.0.0.tgz",
        url: "kured-6.0.0.tgz",
    },
];

/// `[images]` of the serve-mode site: the payload's kured chart listed.
const SERVE: &str = "\n[images]\nmode = \"serve\"\ncharts = [{ repo = \
                     \"https://kubereboot.github.io/charts\", name = \"kured\", version = \
                     \"6.0.0\" }]\n";

/// A chart archive as `helm package` writes it: `<name>/Chart.yaml`,
/// `<name>/values.yaml` and a template, gzip-compressed tar.
fn chart_archive(name: &str, version: &str) -> Vec<u8> {
    let files = [
        (
            "Chart.yaml",
            format!(
                "apiVersion: v2\nname: {name}\nversion: {version}\nappVersion: \"{version}\"\n\
                 description: A test chart\ntype: application\n"
            ),
        ),
        ("values.yaml", "greeting: hello\n".to_string()),
        (
            "templates/configmap.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}\n\
             data:\n  greeting: {{ .Values.greeting }}\n"
                .to_string(),
        ),
    ];
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (path, text) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_mtime(0);
        header.set_cksum();
        tar.append_data(&mut header, format!("{name}/{path}"), text.as_bytes())
            .unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

/// Writes every fixture chart and its repository's index into the mirror.
/// Each index also lists an older version the site does not ask for.
fn publish_charts(mirror: &Path) {
    for c in &CHARTS {
        let bytes = chart_archive(c.name, c.version);
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        let archive = mirror.join(c.archive);
        std::fs::create_dir_all(archive.parent().unwrap()).unwrap();
        std::fs::write(&archive, &bytes).unwrap();
        let index = format!(
            "apiVersion: v1\nentries:\n  {name}:\n  - apiVersion: v2\n    name: {name}\n    \
             version: {version}\n    created: \"2026-11-30T10:00:00Z\"\n    digest: {digest}\n    \
             urls:\n    - {url}\n  - apiVersion: v2\n    name: {name}\n    version: 0.0.1\n    \
             digest: {zero}\n    urls:\n    - {name}-0.0.1.tgz\n  other:\n  - name: other\n    \
             version: 1.0.0\n    urls:\n    - other-1.0.0.tgz\ngenerated: \"2026-12-01T00:00:00Z\"\n",
            name = c.name,
            version = c.version,
            url = c.url,
            zero = "0".repeat(64),
        );
        let path = mirror.join(c.index);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, index).unwrap();
    }
}

/// A world whose mirror serves the charts and whose site is in serve mode,
/// its images in a loopback registry (the registry lives as long as the
/// returned guard).
fn serve_world() -> (World, Registry) {
    let w = World::new();
    publish_charts(&w.mirror());
    let registry = serve_site(&w, SERVE);
    (w, registry)
}

/// Appends `images` (a serve-mode `[images]` table, last in the file) with a
/// fresh loopback registry as its `registry_mirror`, and pushes the site's
/// images there: a serve-mode build carries images as well as charts.
fn serve_site(w: &World, images: &str) -> Registry {
    let registry = Registry::start();
    append_site(
        w,
        &format!("{images}registry_mirror = {:?}\n", registry.url()),
    );
    let site = Site::load(&w.tmp.path().join("site.toml")).unwrap();
    registry.push_site_images(&site);
    registry
}

fn append_site(w: &World, text: &str) {
    let path = w.tmp.path().join("site.toml");
    let mut file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    file.write_all(text.as_bytes()).unwrap();
}

fn dist_index(w: &World) -> Value {
    let text = std::fs::read_to_string(w.dist().join("http/charts/index.yaml")).unwrap();
    serde_norway::from_str(&text).unwrap()
}

/// The dist repository lists exactly the carried charts, each with a URL
/// relative to the index and the digest of the archive beside it, which is
/// the upstream archive byte for byte.
#[track_caller]
fn assert_repository(w: &World) {
    let index = dist_index(w);
    assert_eq!(index["apiVersion"], Value::from("v1"));
    let entries = index["entries"].as_mapping().unwrap();
    let names: Vec<&str> = entries.keys().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(names, ["argo-cd", "cilium", "kured"]);
    for c in &CHARTS {
        let list = index["entries"][c.name].as_sequence().unwrap();
        assert_eq!(list.len(), 1, "only the carried version of {}", c.name);
        let entry = &list[0];
        let file = format!("{}-{}.tgz", c.name, c.version);
        assert_eq!(entry["urls"], Value::Sequence(vec![file.clone().into()]));
        assert_eq!(entry["version"], Value::from(c.version));
        assert_eq!(entry["apiVersion"], Value::from("v2"));
        let archive = w.dist().join("http/charts").join(&file);
        let digest = sha256_of(&archive);
        assert_eq!(entry["digest"], Value::from(digest.clone()), "{file}");
        assert_eq!(digest, sha256_of(&w.mirror().join(c.archive)), "{file}");
        assert_eq!(entry["created"], Value::from("1970-01-01T00:00:00Z"));
    }
    let manifest = w.manifest().to_string();
    assert!(manifest.contains("http/charts/index.yaml"), "{manifest}");
    assert!(manifest.contains("http/charts/kured-6.0.0.tgz"));
}

#[test]
fn serve_mode_publishes_a_static_helm_repository_of_the_carried_charts() {
    let (w, registry) = serve_world();
    assert_ok(&w.build());
    assert_repository(&w);
    let index = std::fs::read(w.dist().join("http/charts/index.yaml")).unwrap();
    // The cache: a second build asks nothing.
    w.server.reset_requests();
    assert_ok(&w.build());
    assert!(w.server.requests().is_empty(), "{:?}", w.server.requests());
    // --offline from the store alone (the tree in place: it records what the
    // site's image tags resolved to, which only it or a registry can say),
    // with the registry stopped: the same bytes.
    drop(registry);
    let out = w.run(&["build", "--offline"], &[]);
    assert_ok(&out);
    assert!(w.server.requests().is_empty(), "offline asks nothing");
    assert_repository(&w);
    assert_eq!(
        std::fs::read(w.dist().join("http/charts/index.yaml")).unwrap(),
        index,
        "the index is reproducible"
    );
}

#[test]
fn a_stored_index_that_predates_the_wanted_version_is_fetched_again() {
    let (w, _registry) = serve_world();
    assert_ok(&w.build());
    // The repository publishes kured 6.1.0 (beside 6.0.0); the site moves on.
    let repo = w.mirror().join("kubereboot.github.io/charts");
    let bytes = chart_archive("kured", "6.1.0");
    std::fs::write(repo.join("kured-6.1.0.tgz"), &bytes).unwrap();
    let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
    let index = std::fs::read_to_string(repo.join("index.yaml")).unwrap();
    let newer = index.replacen(
        "  kured:\n",
        &format!(
            "  kured:\n  - apiVersion: v2\n    name: kured\n    version: 6.1.0\n    \
             digest: {digest}\n    urls:\n    - kured-6.1.0.tgz\n"
        ),
        1,
    );
    std::fs::write(repo.join("index.yaml"), newer).unwrap();
    let site = w.tmp.path().join("site.toml");
    let text = std::fs::read_to_string(&site).unwrap();
    std::fs::write(&site, text.replace("\"6.0.0\"", "\"6.1.0\"")).unwrap();
    w.server.reset_requests();
    assert_ok(&w.build());
    assert_eq!(
        w.server
            .gets_of("/kubereboot.github.io/charts/index.yaml")
            .len(),
        1
    );
    let listed = &dist_index(&w)["entries"]["kured"];
    assert_eq!(listed[0]["version"], Value::from("6.1.0"));
    assert_eq!(
        sha256_of(&w.dist().join("http/charts/kured-6.1.0.tgz")),
        digest
    );
}

#[test]
fn a_tampered_chart_archive_is_refused_naming_chart_version_repository_and_digests() {
    let (w, _registry) = serve_world();
    let kured = CHARTS.iter().find(|c| c.name == "kured").unwrap();
    let listed = sha256_of(&w.mirror().join(kured.archive));
    let mut bytes = chart_archive("kured", "6.0.1");
    bytes.push(0);
    std::fs::write(w.mirror().join(kured.archive), &bytes).unwrap();
    let served = sha256_of(&w.mirror().join(kured.archive));
    let out = w.build();
    assert_fails_with(
        &out,
        &[
            "digest mismatch for chart kured 6.0.0",
            "https://kubereboot.github.io/charts",
            &listed,
            &served,
        ],
    );
    assert_eq!(w.partial_files(), 0);
    assert!(!w.dist().exists(), "nothing published: {}", stderr(&out));
}

#[test]
fn a_chart_version_its_repository_does_not_list_is_bad_input() {
    let w = World::new();
    publish_charts(&w.mirror());
    let _registry = serve_site(&w, &SERVE.replace("\"6.0.0\"", "\"6.0.1\""));
    let out = w.build();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    for needle in [
        "images.charts[0]",
        "kured 6.0.1",
        "https://kubereboot.github.io/charts",
        "6.0.0, 0.0.1",
    ] {
        assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
    }
}

#[test]
fn pull_mode_carries_no_chart_and_asks_no_chart_repository() {
    let w = World::new();
    publish_charts(&w.mirror());
    assert_ok(&w.build());
    let tree = snapshot(&w.dist());
    assert!(
        !tree.keys().any(|p| p.starts_with("http/charts")),
        "{tree:?}"
    );
    let asked: Vec<String> = w.server.requests().into_iter().map(|s| s.path).collect();
    assert!(
        !asked
            .iter()
            .any(|p| p.ends_with("index.yaml") || p.ends_with(".tgz")),
        "{asked:?}"
    );
}

#[test]
fn mirror_carries_the_chart_indexes_and_archives() {
    let (w, _registry) = serve_world();
    assert_ok(&w.run(&["mirror", "airgap"], &[]));
    let airgap = w.tmp.path().join("airgap");
    for c in &CHARTS {
        for rel in [c.index, c.archive] {
            assert_eq!(
                sha256_of(&airgap.join(rel)),
                sha256_of(&w.mirror().join(rel)),
                "{rel}"
            );
        }
    }
    // The written tree alone, with a fresh cache, builds the same repository.
    let airgap_server = MirrorServer::start(&airgap);
    std::fs::remove_dir_all(w.tmp.path().join("cache")).unwrap();
    w.server.reset_requests();
    let out = w.run(&["build"], &[("PXEBUILD_MIRROR", &airgap_server.url())]);
    assert_ok(&out);
    assert!(w.server.requests().is_empty());
    assert_repository(&w);
}

/// `pxebuild serve` hands the repository out as Helm reads one: the index at
/// `<http base>/charts/index.yaml`, each archive at its URL resolved against
/// the repository, with the digest the index lists.
#[test]
fn the_boot_server_serves_the_repository_as_helm_reads_it() {
    let (w, _registry) = serve_world();
    assert_ok(&w.build());
    let served = crate::serve_support::Served::start(&w.dist(), &[]);
    let repo = served.url("/charts");
    let get = |url: &str| {
        let out = crate::serve_support::curl(&["-f", url]);
        assert!(out.status.success(), "GET {url}: {}", stderr(&out));
        out.stdout
    };
    let index: Value = serde_norway::from_slice(&get(&format!("{repo}/index.yaml"))).unwrap();
    for c in &CHARTS {
        let entry = &index["entries"][c.name][0];
        let url = format!("{repo}/{}", entry["urls"][0].as_str().unwrap());
        let bytes = get(&url);
        let digest = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes));
        assert_eq!(entry["digest"], Value::from(digest), "{url}");
    }
}

/// A stored index without the version, then a repository that cannot be
/// reached: a network failure (exit 1), not a version the repository lacks.
#[test]
fn a_stale_index_and_an_unreachable_repository_is_a_network_failure() {
    let (w, _registry) = serve_world();
    assert_ok(&w.build());
    let site = w.tmp.path().join("site.toml");
    let text = std::fs::read_to_string(&site).unwrap();
    std::fs::write(&site, text.replace("\"6.0.0\"", "\"6.1.0\"")).unwrap();
    w.server.fault(
        "/kubereboot.github.io/charts/index.yaml",
        super::server::Fault::Unavailable { times: 100 },
    );
    let out = w.build();
    assert_fails_with(&out, &["kubereboot.github.io/charts/index.yaml", "503"]);
    assert!(
        !stderr(&out).contains("is not in the Helm repository"),
        "{}",
        stderr(&out)
    );
}
