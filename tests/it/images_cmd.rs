//! `pxebuild images` through the real binary: the example site's list (the
//! catalog for its pins and features, then `[images] extra`), how the
//! site's features and payload values change it, a built tree's image
//! records (each reference with its digests, the ones the tree lacks), JSON
//! for scripts, and exit 2 for a bad site or a --dist that is no tree.
use pxebuild::site::images::site_images;
use pxebuild::site::Site;

use crate::harness::Test;

/// The example site's images as the library lists them
/// (`site::images::site_images`); the catalog's own unit tests hold the
/// written-out list, and [`the_example_sites_list_is_the_one_documented`]
/// checks this one independently.
fn example() -> Vec<String> {
    let t = Test::new().example_site();
    let site = Site::load(&t.path().join("site.toml")).expect("the example site loads");
    site_images(&site)
        .expect("the example site's images")
        .iter()
        .map(|i| i.to_string())
        .collect()
}

fn lines<S: AsRef<str>>(list: &[S]) -> String {
    list.iter().map(|l| format!("{}\n", l.as_ref())).collect()
}

#[test]
fn the_example_site_lists_the_catalog() {
    Test::new()
        .example_site()
        .args(["images"])
        .run()
        .success()
        .stdout_is(&lines(&example()));
}

/// Written independently of the catalog: twelve images, kubeadm's for
/// v1.35.9 without kube-proxy (Cilium replaces it), kube-vip, Cilium 1.19.8's
/// agent, operator and Envoy, Argo CD without Dex (the example's Argo CD
/// values turn it off).
#[test]
fn the_example_sites_list_is_the_one_documented() {
    let images = example();
    assert_eq!(images.len(), 12, "{images:?}");
    for image in [
        "ghcr.io/kube-vip/kube-vip:v0.9.2",
        "quay.io/argoproj/argocd:v3.5.2",
        "quay.io/cilium/cilium:v1.19.8",
        "quay.io/cilium/operator-generic:v1.19.8",
        "registry.k8s.io/etcd:3.6.6-0",
        "registry.k8s.io/kube-apiserver:v1.35.9",
        "registry.k8s.io/pause:3.10.1",
    ] {
        assert!(images.iter().any(|i| i == image), "{image} in {images:?}");
    }
    for absent in ["kube-proxy", "dexidp", "hubble"] {
        assert!(
            !images.iter().any(|i| i.contains(absent)),
            "{absent} in {images:?}"
        );
    }
}

#[test]
fn extras_join_the_list_sorted_once() {
    let out = Test::new()
        .example_site()
        .edit_site(
            "[argocd]",
            "[images]\nextra = [\"nginx:1.27\", \"ghcr.io/example/app:1.2\"]\n\n[argocd]",
        )
        .args(["images"])
        .run();
    let mut want = example();
    want.insert(0, "docker.io/library/nginx:1.27".into());
    want.insert(2, "ghcr.io/example/app:1.2".into());
    out.success().stdout_is(&lines(&want));
}

#[test]
fn kube_proxy_and_kube_vip_follow_the_site() {
    let out = Test::new()
        .example_site()
        .edit_site(
            "kube_proxy_replacement = true",
            "kube_proxy_replacement = false",
        )
        .edit_site(
            "endpoint_mode = \"kube-vip\"",
            "endpoint_mode = \"external\"",
        )
        .args(["images"])
        .run();
    out.success()
        .stdout_contains("registry.k8s.io/kube-proxy:v1.35.9\n");
    assert!(!out.stdout.contains("kube-vip"), "{}", out.stdout);
}

#[test]
fn the_sites_own_values_decide_the_optional_components() {
    // A payload of the site's own: Hubble Relay on; no Argo CD values file,
    // so the chart's defaults (Dex on).
    let out = Test::new()
        .example_site()
        .file(
            "payload/core/cilium/values.yaml",
            "kubeProxyReplacement: true\nhubble:\n  relay:\n    enabled: true\n",
        )
        .args(["images"])
        .run();
    out.success()
        .stdout_contains("quay.io/cilium/hubble-relay:v1.19.8\n")
        .stdout_contains("ghcr.io/dexidp/dex:v2.45.1\n");
}

#[test]
fn hubble_ui_cannot_be_named_so_serve_mode_refuses_it() {
    let site = Test::new().example_site().file(
        "payload/core/cilium/values.yaml",
        "kubeProxyReplacement: true\nhubble:\n  ui:\n    enabled: true\n",
    );
    let out = site.run_with(["images"]);
    out.success().stderr_contains(
        "payload/core/cilium/values.yaml: hubble.ui.enabled: pxebuild does not know \
         this component's images for Cilium 1.19.8",
    );
    let serve = site.edit_site("[argocd]", "[images]\nmode = \"serve\"\n\n[argocd]");
    serve
        .run_with(["images"])
        .code(2)
        .stderr_contains("hubble.ui.enabled");
}

#[test]
fn an_unknown_kubernetes_release_is_bad_input_in_serve_mode() {
    Test::new()
        .example_site()
        .edit_site(
            "kubernetes_version = \"v1.35.9\"",
            "kubernetes_version = \"v1.35.10\"",
        )
        .edit_site("kubernetes = \"v1.35.9\"", "kubernetes = \"v1.35.10\"")
        .edit_site("[argocd]", "[images]\nmode = \"serve\"\n\n[argocd]")
        .args(["images"])
        .run()
        .code(2)
        .stderr_contains(
            "site.toml:7:22: error: cluster.kubernetes_version: with images.mode = \"serve\" \
             every image the cluster pulls is carried in dist/, and pxebuild's image catalog \
             does not cover this release (it knows v1.34.0, v1.35.0 to v1.35.9,",
        );
}

#[test]
fn a_bad_site_exits_2() {
    Test::new()
        .site_fixture("bad_images.toml")
        .args(["images"])
        .run()
        .code(2)
        .stderr_contains("images.extra[1]");
}

/// A built tree's manifest holding records for two of the example's images:
/// pause as a single manifest, the agent as an index with its platform's
/// manifest.
const MANIFEST: &str = r#"{
  "files": [],
  "format": 1,
  "images": [
    {
      "digest": "sha256:1111111111111111111111111111111111111111111111111111111111111111",
      "media_type": "application/vnd.oci.image.index.v1+json",
      "name": "quay.io/cilium/cilium",
      "platform_digest": "sha256:2222222222222222222222222222222222222222222222222222222222222222",
      "reference": "quay.io/cilium/cilium:v1.19.8"
    },
    {
      "digest": "sha256:3333333333333333333333333333333333333333333333333333333333333333",
      "media_type": "application/vnd.docker.distribution.manifest.v2+json",
      "name": "registry.k8s.io/pause",
      "reference": "registry.k8s.io/pause:3.10.1"
    }
  ],
  "inputs": "00",
  "nodes": []
}
"#;

#[test]
fn a_built_tree_gives_each_image_its_digests_and_names_the_missing() {
    let out = Test::new()
        .example_site()
        .file("dist/manifest.json", MANIFEST)
        .args(["images"])
        .run();
    let want: Vec<String> = example()
        .iter()
        .map(|image| match image.as_str() {
            "quay.io/cilium/cilium:v1.19.8" => format!(
                "{image} sha256:{} platform sha256:{}",
                "1".repeat(64),
                "2".repeat(64)
            ),
            "registry.k8s.io/pause:3.10.1" => format!("{image} sha256:{}", "3".repeat(64)),
            other => format!("{other} missing"),
        })
        .collect();
    out.success()
        .stdout_is(&lines(&want))
        .stderr_contains("warning: 10 of 12 images are not in ");
}

#[test]
fn json_for_scripts() {
    let out = Test::new()
        .example_site()
        .file("elsewhere/manifest.json", MANIFEST)
        .args(["images", "--json", "--dist", "elsewhere"])
        .run();
    out.success();
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    assert_eq!(doc["tree"], "elsewhere");
    assert_eq!(doc["unknown"], serde_json::json!([]));
    let images = doc["images"].as_array().unwrap();
    assert_eq!(images.len(), example().len());
    let agent = images
        .iter()
        .find(|i| i["reference"] == "quay.io/cilium/cilium:v1.19.8")
        .unwrap();
    assert_eq!(agent["name"], "quay.io/cilium/cilium");
    assert_eq!(agent["in_tree"], true);
    assert_eq!(agent["digest"], format!("sha256:{}", "1".repeat(64)));
    assert_eq!(
        agent["pinned_digest"],
        "sha256:e9f7ee1f2f3a41e44339612e3b6b88170bdde7679c9c9461f287bb27702a8ecf"
    );
    let etcd = images
        .iter()
        .find(|i| i["reference"] == "registry.k8s.io/etcd:3.6.6-0")
        .unwrap();
    assert_eq!(etcd["in_tree"], false);
    assert_eq!(etcd["digest"], serde_json::Value::Null);
    // --format json is the same document.
    let same = Test::new()
        .example_site()
        .args(["images", "--format", "json"])
        .run();
    let doc: serde_json::Value = serde_json::from_str(&same.success().stdout).unwrap();
    assert_eq!(doc["tree"], serde_json::Value::Null);
    assert_eq!(doc["images"][0]["in_tree"], serde_json::Value::Null);
}

#[test]
fn a_dist_that_is_no_tree_is_bad_input() {
    Test::new()
        .example_site()
        .file("empty/readme", "not a tree\n")
        .args(["images", "--dist", "empty"])
        .run()
        .code(2)
        .stderr_contains("--dist empty: no manifest.json there");
}
