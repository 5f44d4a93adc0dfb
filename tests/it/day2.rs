//! Day-2 commands (kubeconfig, untaint, install-argo, wait, token publish)
//! driven through the real binary. kubectl and helm are replaced by a recording
//! stand-in (tests/fixtures/day2/fake-tool) on a PATH the test builds, since no
//! Kubernetes API can run here; the exact commands and manifests are asserted.
//! The real kubectl (when installed) is used for the unreachable-API case.
//! The payload/ tests parse and cross-check the repository's own payload.
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use pxebuild::day2::payload;
use pxebuild::site::Site;
use serde_norway::Value;

use crate::harness::{fixture, repo_root, Output, Test};

const TOKEN: &str = "abcdef.0123456789abcdef";
const TAINT: &str = r#"{"key":"node-role.kubernetes.io/control-plane","effect":"NoSchedule"}"#;
const KC: &str = "--kubeconfig secrets/kubeconfig --request-timeout=15s";

/// The example site with secrets and payload/, and fake kubectl + helm on PATH.
pub(crate) fn cluster() -> Test {
    with_tools(site_with_secrets(), &["kubectl", "helm"])
}

/// The example site's repository, a placeholder install-argo refuses.
pub(crate) const EXAMPLE_REPO: &str = "https://git.example.com/infra/rack1.git";
/// A real-looking repository for install-argo runs.
pub(crate) const REPO: &str = "https://git.lan/ops/rack1.git";

/// [`cluster`] with site.toml naming [`REPO`] and payload/ synced to it.
pub(crate) fn argo_cluster() -> Test {
    synced(cluster())
}

/// `t` with site.toml naming [`REPO`] and payload/ synced to it.
fn synced(t: Test) -> Test {
    let t = t.edit_site(EXAMPLE_REPO, REPO);
    let site = Site::load(&t.path().join("site.toml")).unwrap();
    pxebuild::day2::sync::sync(&site, true).unwrap();
    t
}

pub(crate) fn site_with_secrets() -> Test {
    let t = Test::new()
        .example_site()
        .file("secrets/kubeconfig", &fixture("day2/kubeconfig"))
        .file("secrets/bootstrap-token", &format!("{TOKEN}\n"));
    for file in ["secrets/kubeconfig", "secrets/bootstrap-token"] {
        let private = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(t.path().join(file), private).unwrap();
    }
    crate::cluster_common::copy_tree(&repo_root().join("payload"), &t.path().join("payload"));
    std::fs::create_dir_all(t.path().join("fake")).unwrap();
    t.file(
        "payload/core/cilium/values.yaml",
        &fixture("day2/cilium-values.yaml"),
    )
}

/// Installs the fake under each name in `<tmp>/bin` and puts only that and the
/// system directories on PATH.
pub(crate) fn with_tools(t: Test, tools: &[&str]) -> Test {
    let bin = t.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in tools {
        let dest = bin.join(tool);
        std::fs::copy(repo_root().join("tests/fixtures/day2/fake-tool"), &dest).unwrap();
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let fake = t.path().join("fake");
    t.env("PATH", path).env("FAKE_DIR", fake)
}

/// [`with_tools`], but with the system directories replaced by links to just
/// the utilities the fake needs, so an installed kubectl or helm is not found.
fn with_only_tools(t: Test, tools: &[&str]) -> Test {
    let t = with_tools(t, tools);
    let utils = t.path().join("utils");
    std::fs::create_dir_all(&utils).unwrap();
    for util in ["basename", "wc", "cat"] {
        let real = ["/usr/bin", "/bin"]
            .iter()
            .map(|d| Path::new(d).join(util))
            .find(|p| p.exists())
            .unwrap();
        std::os::unix::fs::symlink(real, utils.join(util)).unwrap();
    }
    let path = format!("{}:{}", t.path().join("bin").display(), utils.display());
    t.env("PATH", path)
}

/// Writes `fake/<name>` (a canned answer for the fake tools).
pub(crate) fn fake(t: &Test, name: &str, text: &str) {
    std::fs::write(t.path().join("fake").join(name), text).unwrap();
}

/// Every call the fake tools recorded, as "<tool> <args>".
pub(crate) fn calls(out: &Output) -> Vec<String> {
    match std::fs::read_to_string(out.path().join("fake/calls.log")) {
        Ok(text) => text.lines().map(String::from).collect(),
        Err(_) => Vec::new(),
    }
}

/// A node list: (name, Ready, has the control-plane taint).
fn nodes(items: &[(&str, bool, bool)]) -> String {
    let items: Vec<String> = items
        .iter()
        .map(|(name, ready, tainted)| {
            let taints = if *tainted { TAINT } else { "" };
            let (status, reason) = if *ready {
                ("True", "KubeletReady")
            } else {
                ("False", "KubeletNotReady")
            };
            format!(
                r#"{{"metadata":{{"name":"{name}"}},"spec":{{"taints":[{taints}]}},
                   "status":{{"conditions":[{{"type":"Ready","status":"{status}","reason":"{reason}",
                   "message":"container runtime network not ready"}}]}}}}"#
            )
        })
        .collect();
    format!(
        r#"{{"apiVersion":"v1","kind":"List","items":[{}]}}"#,
        items.join(",")
    )
}

const ALL_READY: &[(&str, bool, bool)] = &[
    ("cp1", true, false),
    ("cp2", true, false),
    ("cp3", true, false),
    ("worker1", true, false),
    ("worker2", true, false),
];

// ---- kubeconfig -------------------------------------------------------------

#[test]
fn kubeconfig_prints_the_admin_kubeconfig_path() {
    let t = site_with_secrets();
    let want = t.path().canonicalize().unwrap().join("secrets/kubeconfig");
    t.args(["kubeconfig"])
        .run()
        .success()
        .stdout_is(&format!("{}\n", want.display()));
}

#[test]
fn kubeconfig_readable_by_others_is_warned_about() {
    let t = site_with_secrets();
    let path = t.path().join("secrets/kubeconfig");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    t.args(["kubeconfig"]).run().success().stderr_is(
        "warning: secrets/kubeconfig is readable by others (mode 0644): it grants \
         cluster-admin; run `chmod 600 secrets/kubeconfig`\n",
    );
}

#[test]
fn kubeconfig_out_writes_a_private_copy() {
    let out = site_with_secrets()
        .args(["kubeconfig", "--out", "copy/admin.conf"])
        .run();
    out.success()
        .stderr_contains("wrote copy/admin.conf (mode 0600)");
    assert_eq!(out.read("copy/admin.conf"), fixture("day2/kubeconfig"));
    let mode = std::fs::metadata(out.path().join("copy/admin.conf"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn kubeconfig_out_never_replaces_a_file_unless_forced() {
    let t = site_with_secrets().file("home/.kube/config", "other clusters\n");
    let out = t.run_with(["kubeconfig", "--out", "home/.kube/config"]);
    out.code(2).stderr_contains(
        "error: --out home/.kube/config exists: it may hold other clusters' contexts",
    );
    assert_eq!(out.read("home/.kube/config"), "other clusters\n");
    let out = t.run_with(["kubeconfig", "--out", "home/.kube/config", "--force"]);
    out.success();
    assert_eq!(out.read("home/.kube/config"), fixture("day2/kubeconfig"));
}

#[test]
fn missing_kubeconfig_is_bad_input_saying_what_to_do() {
    let t = with_tools(Test::new().example_site(), &["kubectl", "helm"]);
    std::fs::create_dir_all(t.path().join("fake")).unwrap();
    for args in [
        vec!["kubeconfig"],
        vec!["untaint"],
        vec!["wait"],
        vec!["install-argo"],
        vec!["token", "publish"],
    ] {
        let out = t.run_with(&args);
        out.code(2).stderr_is(
            "error: no admin kubeconfig at secrets/kubeconfig: run `pxebuild build` (it writes \
             the kubeconfig together with the site's secrets), or restore secrets/ from your \
             backup if this cluster was built elsewhere\n",
        );
        assert!(calls(&out).is_empty(), "{args:?} ran a tool");
    }
}

// ---- tools missing, API unreachable -----------------------------------------

#[test]
fn kubectl_missing_from_path_fails_naming_it() {
    let t = site_with_secrets();
    let empty = t.path().join("empty-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let t = t.env("PATH", &empty);
    for args in [vec!["untaint"], vec!["wait"], vec!["token", "publish"]] {
        t.run_with(&args).code(1).stderr_contains(
            "kubectl was not found on PATH: install it (Debian/Ubuntu: `apt-get install kubectl`",
        );
    }
}

#[test]
fn helm_missing_from_path_fails_before_applying_anything() {
    let out = with_only_tools(synced(site_with_secrets()), &["kubectl"])
        .args(["install-argo"])
        .run();
    out.code(1).stderr_is(
        "error: helm was not found on PATH: install Helm 3 (Debian/Ubuntu: `apt-get install helm` \
         from Helm's apt repository, or a static binary from https://github.com/helm/helm/releases), \
         then run the command again\n",
    );
    assert!(calls(&out).is_empty(), "{:?}", calls(&out));
}

#[test]
fn install_argo_with_kubectl_missing_runs_no_helm_at_all() {
    let t = with_only_tools(synced(site_with_secrets()), &["helm"]);
    let out = t.args(["install-argo"]).run();
    out.code(1).stderr_is(
        "error: kubectl was not found on PATH: install it (Debian/Ubuntu: `apt-get install \
         kubectl` from the Kubernetes apt repository pkgs.k8s.io, or a static binary from \
         https://kubernetes.io/docs/tasks/tools/), then run the command again\n",
    );
    // Not even `helm get values` (the Cilium comparison) ran.
    assert!(calls(&out).is_empty(), "{:?}", calls(&out));
    // Both missing: both named, kubectl first.
    let none = with_only_tools(synced(site_with_secrets()), &[]);
    none.run_with(["install-argo"])
        .code(1)
        .stderr_contains("error: kubectl was not found on PATH: ")
        .stderr_contains("\nhelm was not found on PATH: install Helm 3");
}

#[test]
fn install_argo_refuses_a_payload_that_does_not_lint() {
    let t = argo_cluster().file(
        "payload/apps/broken.yaml",
        "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: broken}\n\
         spec:\n  project: default\n  destination: {namespace: x}\n  source:\n    \
         repoURL: https://git.lan/ops/rack1.git\n    targetRevision: main\n    path: payload/gone\n",
    );
    let t = t.args(["install-argo"]);
    let out = t.run();
    out.code(2).stderr_is(
        "error: payload/ has problems Argo CD would fail on (fix them, commit and push):\n  \
         payload/apps/broken.yaml: Application broken: path payload/gone is not a directory of \
         the repository\n",
    );
    assert!(calls(&out).is_empty());
    std::fs::write(
        out.path().join("payload/apps/broken.yaml"),
        "a: [unclosed\n",
    )
    .unwrap();
    let out = t.run();
    out.code(2)
        .stderr_contains("error: parsing payload/apps/broken.yaml as YAML: ");
    assert!(calls(&out).is_empty());
}

pub(crate) const REFUSED: &str = "E1126 memcache.go:265] couldn't get current server API group list\n\
    The connection to the server 10.20.0.10:6443 was refused - did you specify the right host or port?\n";

#[test]
fn unreachable_api_is_a_clear_failure() {
    let t = cluster();
    fake(&t, "kubectl.fail", REFUSED);
    let out = t.args(["untaint"]).run();
    out.code(1).stderr_is(
        "error: cannot reach the Kubernetes API at https://10.20.0.10:6443: check that the \
         control-plane nodes are up (`pxebuild wait`, the boot server's beacons), that this \
         machine can reach the endpoint, and that secrets/kubeconfig belongs to this cluster \
         (kubectl: The connection to the server 10.20.0.10:6443 was refused - did you specify \
         the right host or port?)\n",
    );
}

#[test]
fn unreachable_api_with_the_real_kubectl() {
    if !Path::new("/usr/bin/kubectl").exists() {
        eprintln!("skipped: no kubectl installed");
        return;
    }
    // A loopback port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let kubeconfig =
        fixture("day2/kubeconfig").replace("10.20.0.10:6443", &format!("127.0.0.1:{port}"));
    let t = Test::new()
        .example_site()
        .file("secrets/kubeconfig", &kubeconfig)
        .env("PATH", "/usr/bin:/bin");
    t.run_with(["untaint"])
        .code(1)
        // Named where the kubeconfig points, the site's endpoint beside it.
        .stderr_contains(&format!(
            "error: cannot reach the Kubernetes API at https://127.0.0.1:{port} (the server in \
             secrets/kubeconfig; the site's endpoint is https://10.20.0.10:6443): check"
        ));
    t.run_with(["wait", "--timeout", "0s"])
        .code(1)
        .stderr_contains("not answering yet")
        .stderr_contains(&format!(
            "error: timed out after 0s: the API at https://127.0.0.1:{port} (the server in \
             secrets/kubeconfig; the site's endpoint is https://10.20.0.10:6443) never answered ("
        ));
}

// ---- untaint ----------------------------------------------------------------

#[test]
fn untaint_removes_the_taint_only_where_present_and_is_idempotent() {
    let t = cluster();
    fake(
        &t,
        "nodes.1.json",
        &nodes(&[
            ("cp1", true, true),
            ("cp2", true, false),
            ("cp3", true, true),
            ("worker1", true, false),
        ]),
    );
    fake(&t, "nodes.2.json", &nodes(ALL_READY));
    let t = t.args(["untaint"]);
    let out = t.run();
    out.success().stdout_is(
        "cp1: control-plane taint removed\ncp2: already untainted\ncp3: control-plane taint removed\n",
    );
    let taint = "node-role.kubernetes.io/control-plane:NoSchedule-";
    assert_eq!(
        calls(&out),
        [
            format!("kubectl {KC} get --raw /api/v1/nodes"),
            format!("kubectl {KC} taint nodes cp1 {taint}"),
            format!("kubectl {KC} taint nodes cp3 {taint}"),
        ]
    );
    let again = t.run();
    again
        .success()
        .stdout_is("cp1: already untainted\ncp2: already untainted\ncp3: already untainted\n");
    assert_eq!(calls(&again).len(), 4, "a second run only reads the nodes");
}

#[test]
fn untaint_names_control_planes_that_have_not_joined() {
    let t = cluster();
    fake(
        &t,
        "nodes.1.json",
        &nodes(&[("cp1", true, true), ("cp2", false, true)]),
    );
    let out = t.args(["untaint"]).run();
    out.code(1)
        .stdout_is("cp1: control-plane taint removed\ncp2: control-plane taint removed\n")
        .stderr_is(
            "error: control-plane node(s) not in the cluster yet: cp3; wait for them \
             (`pxebuild wait`) and run `pxebuild untaint` again\n",
        );
}

// ---- wait -------------------------------------------------------------------

#[test]
fn wait_rides_out_passing_server_errors_and_stops_on_lasting_ones() {
    // While control planes join, etcd changes leader: the API answers 500
    // for a moment. The wait goes on.
    let t = cluster();
    fake(
        &t,
        "nodes.1.err",
        "Error from server (InternalError): an error on the server (\"\") has prevented the \
         request from succeeding (get nodes): etcdserver: leader changed\n",
    );
    fake(&t, "nodes.2.json", &nodes(ALL_READY));
    let out = t.args(["wait", "--interval", "0s"]).run();
    out.success()
        .stdout_is("all 5 nodes are Ready\n")
        .stderr_contains("not answering yet (Error from server (InternalError)");
    // Access denied does not pass by itself: stop at once.
    let t = cluster();
    fake(
        &t,
        "nodes.1.err",
        "Error from server (Forbidden): nodes is forbidden: User \"x\" cannot list resource \"nodes\"\n",
    );
    fake(&t, "nodes.2.json", &nodes(ALL_READY));
    let out = t.args(["wait", "--interval", "0s"]).run();
    out.code(1).stderr_contains("Forbidden");
    assert_eq!(out.read("fake/polls").trim(), "1");
}

#[test]
fn wait_reports_progress_until_every_node_is_ready() {
    let t = cluster();
    fake(&t, "nodes.1.err", REFUSED);
    fake(
        &t,
        "nodes.2.json",
        &nodes(&[("cp1", true, true), ("cp2", false, true)]),
    );
    fake(&t, "nodes.4.json", &nodes(ALL_READY));
    let out = t.args(["wait", "--interval", "0s"]).run();
    out.success()
        .stdout_is("all 5 nodes are Ready\n")
        .stderr_contains("waiting up to 10m for 5 nodes to be Ready: cp1 cp2 cp3 worker1 worker2\n")
        .stderr_contains(
            "] API at https://10.20.0.10:6443 not answering yet (The connection to the server",
        )
        .stderr_contains("] API at https://10.20.0.10:6443 is answering\n")
        .stderr_contains("] cp1: Ready (1/5 Ready)\n")
        .stderr_contains(
            "] cp2: NotReady: KubeletNotReady: container runtime network not ready (1/5 Ready)\n",
        )
        .stderr_contains("] cp3: not registered (1/5 Ready)\n")
        .stderr_contains("] worker2: Ready (5/5 Ready)\n");
    // Poll 3 repeated poll 2's answer: nothing changed, nothing printed.
    assert_eq!(
        out.stderr.matches("cp1: Ready").count(),
        1,
        "{}",
        out.stderr
    );
    assert_eq!(out.read("fake/polls").trim(), "4");
    assert!(calls(&out)
        .iter()
        .all(|c| c == &format!("kubectl {KC} get --raw /api/v1/nodes")));
}

#[test]
fn wait_timeout_names_the_nodes_missing_or_not_ready() {
    let t = cluster();
    fake(
        &t,
        "nodes.1.json",
        &nodes(&[
            ("cp1", true, true),
            ("cp2", true, true),
            ("cp3", true, true),
            ("worker1", false, false),
        ]),
    );
    t.args(["wait", "--timeout", "0s"])
        .run()
        .code(1)
        .stderr_contains(
            "error: timed out after 0s: 2 of 5 nodes not Ready: worker1 (NotReady: \
         KubeletNotReady: container runtime network not ready), worker2 (not registered)\n",
        );
}

#[test]
fn wait_stops_at_once_when_access_is_denied() {
    let t = cluster();
    fake(
        &t,
        "kubectl.fail",
        "error: You must be logged in to the server (Unauthorized)\n",
    );
    t.args(["wait", "--timeout", "1h"])
        .run()
        .code(1)
        .stderr_contains(
        "error: `kubectl --kubeconfig secrets/kubeconfig --request-timeout=15s get --raw /api/v1/nodes` \
         failed (exit status: 1): error: You must be logged in to the server (Unauthorized)\n",
    );
}

// ---- install-argo -----------------------------------------------------------

/// What `helm get values cilium` answers: the fixture's values plus one the
/// cilium CLI detected itself.
const INSTALLED_CILIUM: &str = r#"{"kubeProxyReplacement":true,"k8sServiceHost":"10.20.0.10",
  "k8sServicePort":6443,"encryption":{"enabled":true,"type":"wireguard"},
  "operator":{"replicas":2},"cluster":{"name":"kubernetes"}}"#;

#[test]
fn install_argo_runs_helm_then_applies_the_root_application_from_the_site() {
    let t = cluster()
        .edit_site(EXAMPLE_REPO, REPO)
        .edit_site("revision = \"main\"", "revision = \"production\"")
        .edit_site("chart_version = \"10.9.0\"", "chart_version = \"10.9.1\"");
    let site = Site::load(&t.path().join("site.toml")).unwrap();
    pxebuild::day2::sync::sync(&site, true).unwrap();
    fake(&t, "helm-values.json", INSTALLED_CILIUM);
    // The running Cilium has a value the file lacks: nothing is installed
    // until the file says it, or the operator says the change is meant.
    let t = t.args(["install-argo"]);
    let refused = t.run();
    refused
        .code(2)
        .stderr_contains(
            "error: the running Cilium differs from payload/core/cilium/values.yaml, and the \
             root Application would change it on every node at once:\n  the running Cilium \
             has cluster.name=\"kubernetes\", which payload/core/cilium/values.yaml does not set",
        )
        .stderr_contains("rerun with --accept-cilium-drift");
    assert_eq!(calls(&refused).len(), 1, "only `helm get values` ran");
    std::fs::remove_file(t.path().join("fake/calls.log")).unwrap();
    let out = t.run_with(["install-argo", "--accept-cilium-drift"]);
    out.success()
        .stdout_is("Argo CD installed; root Application follows https://git.lan/ops/rack1.git at production\n")
        // The root app's revision in git is never read: no warning about it.
        .stderr_lacks("root")
        .stderr_contains(
            "warning: the running Cilium has cluster.name=\"kubernetes\", which \
             payload/core/cilium/values.yaml does not set; Argo CD's first sync would change it \
             to the chart's default: add it to the file (accepted)\n",
        );
    assert_eq!(
        out.stderr.matches("the running Cilium").count(),
        1,
        "{}",
        out.stderr
    );
    assert_eq!(
        calls(&out),
        [
            "helm --kubeconfig secrets/kubeconfig get values cilium --namespace kube-system --output json",
            "helm --kubeconfig secrets/kubeconfig list --namespace argocd --all --filter ^argocd$ --output json",
            "helm --kubeconfig secrets/kubeconfig upgrade --install argocd argo-cd \
             --repo https://argoproj.github.io/argo-helm --version 10.9.1 --namespace argocd \
             --create-namespace --values payload/bootstrap/argocd-values.yaml --wait --timeout 10m",
            &format!("kubectl {KC} apply -f -"),
        ]
    );
    let applied: Value = serde_norway::from_str(&out.read("fake/stdin-4")).unwrap();
    let committed =
        std::fs::read_to_string(repo_root().join("payload/bootstrap/root-app.yaml")).unwrap();
    let mut want: Value = serde_norway::from_str(&committed).unwrap();
    want["spec"]["source"]["repoURL"] = REPO.into();
    want["spec"]["source"]["targetRevision"] = "production".into();
    assert_eq!(applied, want);
}

#[test]
fn install_argo_refuses_a_zero_timeout_and_takes_an_oci_mirror() {
    let out = argo_cluster()
        .args(["install-argo", "--timeout", "0s"])
        .run();
    out.code(2)
        .stderr_contains("--timeout 0: helm would not wait for Argo CD");
    assert!(calls(&out).is_empty());
    let out = argo_cluster()
        .args(["install-argo", "--chart-repo", "oci://registry.lan/charts"])
        .run();
    out.success();
    assert!(
        calls(&out).iter().any(|c| c.contains(
            " upgrade --install argocd oci://registry.lan/charts/argo-cd --version 10.9.0 "
        )),
        "{:?}",
        calls(&out)
    );
}

#[test]
fn install_argo_runs_helm_without_the_environments_cluster_overrides() {
    let t = argo_cluster()
        .env("HELM_KUBECONTEXT", "someone-elses")
        .env("HELM_KUBEAPISERVER", "https://10.9.9.9:6443");
    let out = t.args(["install-argo"]).run();
    out.success();
    assert!(calls(&out)
        .iter()
        .any(|c| c.contains(" upgrade --install ")));
    let seen = std::fs::read_to_string(out.path().join("fake/env.log")).unwrap_or_default();
    assert_eq!(seen, "", "helm saw: {seen}");
}

#[test]
fn install_argo_holds_the_installed_release_against_the_site() {
    let listed = |chart: &str, status: &str| {
        format!(
            r#"[{{"name":"argocd","namespace":"argocd","chart":"{chart}","status":"{status}"}}]"#
        )
    };
    let upgrades = |out: &Output| {
        calls(out)
            .iter()
            .filter(|c| c.contains(" upgrade --install "))
            .count()
    };
    // A newer chart installed: helm would downgrade Argo CD and its CRDs.
    let t = argo_cluster();
    fake(&t, "helm-list.json", &listed("argo-cd-11.0.1", "deployed"));
    let t = t.args(["install-argo"]);
    let out = t.run();
    out.code(2).stderr_contains(
        "error: Argo CD's chart 11.0.1 is installed, newer than argocd.chart_version 10.9.0",
    );
    assert_eq!(upgrades(&out), 0);
    let out = t.run_with(["install-argo", "--allow-downgrade"]);
    out.success();
    assert_eq!(upgrades(&out), 1);
    // A major upgrade goes on, with a note.
    let t = argo_cluster();
    fake(&t, "helm-list.json", &listed("argo-cd-9.5.17", "deployed"));
    let out = t.args(["install-argo"]).run();
    out.success().stderr_contains(
        "warning: Argo CD's chart goes from 9.5.17 to 10.9.0, another major version",
    );
    // A release left pending by a stopped run: say how to settle it.
    let t = argo_cluster();
    fake(
        &t,
        "helm-list.json",
        &listed("argo-cd-10.9.0", "pending-upgrade"),
    );
    let out = t.args(["install-argo"]).run();
    out.code(2)
        .stderr_contains("is pending-upgrade")
        .stderr_contains("helm rollback argocd --namespace argocd");
    assert_eq!(upgrades(&out), 0);
}

#[test]
fn install_argo_blames_a_chart_repository_not_the_api() {
    for (helm_says, detail) in [
        (
            "Error: looks like \"https://argoproj.github.io/argo-helm\" is not a valid chart \
             repository or cannot be reached: Get \"https://argoproj.github.io/argo-helm/index.yaml\": \
             dial tcp: lookup argoproj.github.io on 10.20.0.1:53: no such host\n",
            "no such host",
        ),
        (
            "Error: looks like \"https://mirror.lan/argo-helm\" is not a valid chart repository or \
             cannot be reached: Get \"https://mirror.lan/argo-helm/index.yaml\": tls: failed to \
             verify certificate: x509: certificate signed by unknown authority\n",
            "x509: certificate signed by unknown authority",
        ),
    ] {
        let t = argo_cluster();
        fake(&t, "helm.fail", helm_says);
        let out = t.args(["install-argo"]).run();
        out.code(1)
            .stderr_contains("error: installing Argo CD with helm: helm: ")
            .stderr_contains(detail)
            .stderr_lacks("Kubernetes API")
            .stderr_lacks("use the secrets/");
    }
}

#[test]
fn install_argo_dry_run_prints_the_plan_and_runs_nothing() {
    let out = argo_cluster()
        .args([
            "install-argo",
            "--dry-run",
            "--chart-repo",
            "http://mirror.lan/argo-helm",
            "--timeout",
            "20m",
        ])
        .run();
    out.success()
        .stdout_contains("helm --kubeconfig secrets/kubeconfig upgrade --install argocd argo-cd --repo http://mirror.lan/argo-helm --version 10.9.0")
        .stdout_contains("--wait --timeout 20m\n")
        .stdout_contains(&format!("kubectl {KC} apply -f - <<EOF\napiVersion: argoproj.io/v1alpha1\n"))
        .stderr_lacks("warning:");
    assert!(calls(&out).is_empty());
}

#[test]
fn install_argo_stops_when_helm_fails() {
    let cases = [
        (
            "Error: Kubernetes cluster unreachable: Get \"https://10.20.0.10:6443/version\": \
             dial tcp 10.20.0.10:6443: connect: connection refused\n",
            "error: cannot reach the Kubernetes API at https://10.20.0.10:6443: check that \
             the control-plane nodes are up",
        ),
        (
            "Error: UPGRADE FAILED: context deadline exceeded\n",
            "--wait --timeout 10m` failed (exit status: 1): Error: UPGRADE FAILED: context deadline exceeded\n",
        ),
        (
            "Error: chart \"argo-cd\" version \"10.9.0\" not found in https://argoproj.github.io/argo-helm repository\n",
            "failed (exit status: 1): Error: chart \"argo-cd\" version \"10.9.0\" not found",
        ),
    ];
    for (helm_says, we_say) in cases {
        let t = argo_cluster();
        fake(&t, "helm.fail", helm_says);
        let out = t.args(["install-argo"]).run();
        out.code(1)
            .stderr_contains("warning: could not compare the running Cilium with payload/core/cilium/values.yaml: ")
            .stderr_contains(we_say);
        // `helm get values`, `helm list`, `helm upgrade`, and no kubectl apply
        // after it failed.
        assert_eq!(calls(&out).len(), 3, "{:?}", calls(&out));
    }
}

#[test]
fn install_argo_without_payload_is_bad_input() {
    let t = argo_cluster();
    std::fs::remove_dir_all(t.path().join("payload")).unwrap();
    let out = t.args(["install-argo"]).run();
    out.code(2).stderr_contains(
        "error: payload/bootstrap/argocd-values.yaml is missing: install-argo needs payload/bootstrap/",
    );
    // The build's fallback to the built-in payload cannot serve Argo CD.
    out.stderr_contains("`pxebuild init DIR` writes one to commit");
    assert!(calls(&out).is_empty());
}

// ---- token publish ----------------------------------------------------------

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn token_publish_applies_the_bootstrap_token_secret() {
    let t = cluster();
    let before = now();
    let out = t.args(["token", "publish"]).run();
    let after = now();
    out.success().stdout_contains(
        "bootstrap token abcdef published as kube-system/bootstrap-token-abcdef; expires ",
    );
    assert!(
        !out.stdout.contains("0123456789abcdef"),
        "the secret half is never printed"
    );
    assert_eq!(
        calls(&out),
        [
            format!("kubectl {KC} {GET_TOKENS}"),
            format!("kubectl {KC} create -f -"),
        ]
    );
    let secret: serde_json::Value = serde_json::from_str(&out.read("fake/stdin-2")).unwrap();
    let expiration = secret["stringData"]["expiration"]
        .as_str()
        .unwrap()
        .to_string();
    let day = 24 * 3600;
    let (lo, hi) = (
        pxebuild::day2::token::rfc3339(before + day),
        pxebuild::day2::token::rfc3339(after + day),
    );
    assert!(
        lo <= expiration && expiration <= hi,
        "{lo} <= {expiration} <= {hi}"
    );
    let want = serde_json::json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "bootstrap-token-abcdef", "namespace": "kube-system"},
        "type": "bootstrap.kubernetes.io/token",
        "stringData": {
            "description": "pxebuild: node joins for cluster rack1",
            "token-id": "abcdef",
            "token-secret": "0123456789abcdef",
            "expiration": expiration,
            "usage-bootstrap-authentication": "true",
            "usage-bootstrap-signing": "true",
            "auth-extra-groups": "system:bootstrappers:kubeadm:default-node-token",
        }
    });
    assert_eq!(secret, want);
}

const GET_TOKENS: &str =
    "get secrets -n kube-system --field-selector type=bootstrap.kubernetes.io/token -o json";

/// A `kubectl get secrets` answer listing bootstrap tokens (id, description).
fn token_list(tokens: &[(&str, &str)]) -> String {
    use base64::Engine;
    let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
    let items: Vec<serde_json::Value> = tokens
        .iter()
        .map(|(id, description)| {
            serde_json::json!({
                "metadata": {"name": format!("bootstrap-token-{id}")},
                "data": {"token-id": b64(id), "description": b64(description)},
            })
        })
        .collect();
    serde_json::json!({"kind": "List", "items": items}).to_string()
}

#[test]
fn token_publish_replaces_its_secret_and_revokes_earlier_pxebuild_tokens() {
    // kubeadm init registered x0fht7, an earlier publish abcdef (with an
    // expiry), an operator made manual1 with kubeadm token create.
    let t = cluster().edit_site(
        "bootstrap_token_ttl = \"24h\"",
        "bootstrap_token_ttl = \"0s\"",
    );
    let t = t.file(
        "fake/secrets.json",
        &token_list(&[
            ("x0fht7", "pxebuild bootstrap token for rack1"),
            ("abcdef", "pxebuild: node joins for cluster rack1"),
            ("manual", "made by an operator"),
        ]),
    );
    let out = t.args(["token", "publish"]).run();
    out.success()
        .stdout_contains("published as kube-system/bootstrap-token-abcdef; never expires")
        .stdout_contains("revoked bootstrap token x0fht7 (kube-system/bootstrap-token-x0fht7)");
    assert_eq!(
        calls(&out),
        [
            format!("kubectl {KC} {GET_TOKENS}"),
            // Replaced as a whole: the old expiration does not survive a TTL of 0s.
            format!("kubectl {KC} replace -f -"),
            format!("kubectl {KC} delete secret -n kube-system bootstrap-token-x0fht7"),
        ]
    );
    let secret: serde_json::Value = serde_json::from_str(&out.read("fake/stdin-2")).unwrap();
    assert!(secret["stringData"].get("expiration").is_none(), "{secret}");
    assert!(
        !out.stdout.contains("manual"),
        "others' tokens are left alone"
    );
}

#[test]
fn token_publish_without_a_token_is_bad_input() {
    let t = cluster();
    std::fs::remove_file(t.path().join("secrets/bootstrap-token")).unwrap();
    let t = t.args(["token", "publish"]);
    let out = t.run();
    out.code(2)
        .stderr_contains("error: reading bootstrap token secrets/bootstrap-token: ")
        .stderr_contains("run `pxebuild build` (or `pxebuild secrets rotate-token`)");
    assert!(calls(&out).is_empty());
    std::fs::write(out.path().join("secrets/bootstrap-token"), "not-a-token\n").unwrap();
    t.run()
        .code(2)
        .stderr_contains("does not hold a bootstrap token");
}

// ---- payload/ ---------------------------------------------------------------

fn repo_site() -> Site {
    Site::load(&repo_root().join("site.toml")).unwrap()
}

fn application<'a>(docs: &'a [payload::Document], name: &str) -> &'a payload::Document {
    docs.iter()
        .find(|d| d.is_application() && d.name() == name)
        .unwrap_or_else(|| panic!("no Application {name} in payload/"))
}

#[test]
fn payload_manifests_parse_and_every_application_path_exists() {
    let docs = payload::load(repo_root()).unwrap();
    assert_eq!(payload::lint(repo_root(), &docs), Vec::<String>::new());
    let mut apps: Vec<(&str, PathBuf)> = docs
        .iter()
        .filter(|d| d.is_application())
        .map(|d| (d.name(), d.file.clone()))
        .collect();
    apps.sort();
    let want: Vec<(&str, PathBuf)> = [
        ("apps", "payload/core/apps.yaml"),
        ("cilium", "payload/core/cilium.yaml"),
        ("hello", "payload/apps/hello.yaml"),
        ("kured", "payload/core/kured.yaml"),
        ("root", "payload/bootstrap/root-app.yaml"),
    ]
    .into_iter()
    .map(|(n, f)| (n, PathBuf::from(f)))
    .collect();
    assert_eq!(apps, want);
    // The root app-of-apps syncs core/, which holds the Application for apps/.
    let root = application(&docs, "root");
    assert_eq!(
        root.value["spec"]["source"]["path"].as_str(),
        Some("payload/core")
    );
    let apps = application(&docs, "apps");
    assert_eq!(
        apps.value["spec"]["source"]["path"].as_str(),
        Some("payload/apps")
    );
}

#[test]
fn payload_cilium_uses_the_node_units_values_file_and_version() {
    let site = repo_site();
    let docs = payload::load(repo_root()).unwrap();
    let cilium = application(&docs, "cilium");
    let sources = cilium.sources();
    let chart = sources
        .iter()
        .find(|s| s["chart"].as_str() == Some("cilium"))
        .unwrap();
    assert_eq!(chart["repoURL"].as_str(), Some("https://helm.cilium.io/"));
    assert_eq!(
        chart["targetRevision"].as_str(),
        Some(site.file.cilium.version.as_str())
    );
    assert_eq!(chart["helm"]["releaseName"].as_str(), Some("cilium"));
    assert_eq!(
        chart["helm"]["valueFiles"][0].as_str(),
        Some("$values/payload/core/cilium/values.yaml")
    );
    let values = sources
        .iter()
        .find(|s| s["ref"].as_str() == Some("values"))
        .unwrap();
    assert_eq!(
        values["repoURL"].as_str(),
        Some(site.file.argocd.repo_url.as_str())
    );
    assert_eq!(
        cilium.value["spec"]["destination"]["namespace"].as_str(),
        Some("kube-system")
    );
    assert!(
        cilium.value["metadata"].get("finalizers").is_none(),
        "deleting the Application must keep the CNI"
    );
    // The file the node unit installs with (owned by the cluster configuration).
    assert!(repo_root()
        .join("payload/core/cilium/values.yaml")
        .is_file());
}

#[test]
fn payload_kured_watches_the_reboot_sentinel() {
    let docs = payload::load(repo_root()).unwrap();
    let kured = application(&docs, "kured");
    let src = &kured.value["spec"]["source"];
    assert_eq!(
        src["repoURL"].as_str(),
        Some("https://kubereboot.github.io/charts")
    );
    assert_eq!(src["chart"].as_str(), Some("kured"));
    let version = src["targetRevision"].as_str().unwrap();
    assert!(
        version.split('.').count() == 3 && version.split('.').all(|p| p.parse::<u32>().is_ok()),
        "{version} is not pinned"
    );
    assert_eq!(
        src["helm"]["valuesObject"]["configuration"]["rebootSentinel"].as_str(),
        Some("/run/reboot-required")
    );
}

#[test]
fn payload_repo_urls_match_site() {
    assert_eq!(payload::check(&repo_site()), Vec::<String>::new());
}

#[test]
fn payload_check_warns_when_the_cilium_chart_is_not_the_sites_version() {
    let t = site_with_secrets()
        .edit_site("revision = \"main\"", "revision = \"v2\"")
        .edit_site("version = \"1.19.8\"", "version = \"1.19.9\"");
    let site = Site::load(&t.path().join("site.toml")).unwrap();
    // Repository and revision are install-argo's refusal (day2_sync), not warnings.
    assert_eq!(
        payload::check(&site),
        [
            "payload/core/cilium.yaml: Application cilium: cilium chart version \"1.19.8\" \
          differs from site.toml cilium.version \"1.19.9\""
        ]
    );
}
