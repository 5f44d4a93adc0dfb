//! The rendered kubeadm-bootstrap of the example site, run for real on the
//! lab's second-boot stand-in root (Debian trixie, chrooted, one overlay per
//! node) with the stand-in system extensions merged by real systemd-sysext:
//! the stand-in kubeadm, kubectl and its API server check what the build
//! wrote (kubeadm v1beta4 config, CA chain, CA pin, join order, kube-vip's
//! placement) and refuse broken input, naming what is wrong. All nodes share
//! one network namespace made for the test (their addresses on its loopback).
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use crate::cluster_common::*;
use crate::cluster_render::render_all;
use crate::cluster_sandbox::{node_ignition, out_text};

/// The stand-in OS root (tests/fixtures/standin-os/build-root.sh), built once
/// per test run; $PXEBUILD_STANDIN_ROOT names a ready one instead.
pub(crate) fn standin_root() -> PathBuf {
    static ROOT: OnceLock<PathBuf> = OnceLock::new();
    ROOT.get_or_init(|| {
        if let Some(root) = std::env::var_os("PXEBUILD_STANDIN_ROOT") {
            return PathBuf::from(root);
        }
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("standin-root");
        let script = repo().join("tests/fixtures/standin-os/build-root.sh");
        let run = Command::new("bash")
            .arg(&script)
            .arg(&out)
            .output()
            .expect("running build-root.sh");
        assert!(run.status.success(), "build-root.sh: {}", out_text(&run));
        out
    })
    .clone()
}

/// The stand-in system extensions (tests/fixtures/standin-sysext/build.sh),
/// built once per test run (in a second or so; build.sh replaces each file
/// by a rename): `<dir>/<ext>-<version>/<ext>-<version>-x86-64.raw`.
pub(crate) fn standin_sysexts() -> PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("standin-sysexts");
        let run = Command::new("sh")
            .arg(repo().join("tests/fixtures/standin-sysext/build.sh"))
            .arg(&out)
            .output()
            .expect("running standin-sysext/build.sh");
        assert!(run.status.success(), "build.sh: {}", out_text(&run));
        out
    })
    .clone()
}

pub(crate) fn image(ext: &str, version: &str) -> PathBuf {
    standin_sysexts()
        .join(format!("{ext}-{version}"))
        .join(format!("{ext}-{version}-x86-64.raw"))
}

/// Shell functions for a driver script run in its own mount and network
/// namespaces: `node_up NAME` mounts an overlay of $ROOT over $NODES/NAME
/// (whose `upper` the test filled) with /proc, /dev, /sys and a fresh /run,
/// shared so that systemd-sysext's merge is seen; `on NAME CMD...` runs in it.
pub(crate) const DRIVER: &str = r#"
set -u
# at_exit CMD: one more command for the exit trap (each part adds its own).
EXIT_CMDS=:
at_exit() { EXIT_CMDS="$EXIT_CMDS; $1"; trap "$EXIT_CMDS" EXIT; }
mkdir -p "$NODES/.mnt"
mount -t tmpfs tmpfs "$NODES/.mnt" && mount --make-rshared "$NODES/.mnt"
node_up() {
  local n=$1 m="$NODES/.mnt/$1"
  mkdir -p "$m" "$NODES/$n/work"
  mount -t overlay overlay -o "lowerdir=$ROOT,upperdir=$NODES/$n/upper,workdir=$NODES/$n/work" "$m"
  mount -t proc proc "$m/proc"
  mount --rbind /dev "$m/dev"
  mount --rbind /sys "$m/sys"
  mount -t tmpfs tmpfs "$m/run"
  mount -t tmpfs tmpfs "$m/tmp"
  mount --make-rshared "$m"
  echo "$n" > "$m/etc/hostname"
  # Ignition's passwd section makes the user core.
  grep -q '^core:' "$m/etc/passwd" || {
    echo 'core:x:500:500::/home/core:/bin/bash' >> "$m/etc/passwd"
    echo 'core:x:500:' >> "$m/etc/group"
    mkdir -p "$m/home/core" && chown 500:500 "$m/home/core"
  }
}
on() { local n=$1; shift; chroot "$NODES/.mnt/$n" "$@"; }
ip link set lo up
"#;

/// One node's writable layer: its Ignition files and links as Ignition
/// writes them, with `images` the stand-in sysext images in place of their
/// URLs (else none: the caller downloads them), and a beacon that records
/// instead of calling the boot server.
pub(crate) fn node_upper(
    nodes: &Path,
    name: &str,
    ign: &serde_json::Value,
    images: bool,
) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let upper = nodes.join(name).join("upper");
    let at = |p: &str| upper.join(p.trim_start_matches('/'));
    for d in ign["storage"]["directories"]
        .as_array()
        .into_iter()
        .flatten()
    {
        std::fs::create_dir_all(at(d["path"].as_str().unwrap())).unwrap();
    }
    for f in ign["storage"]["files"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        let dest = at(path);
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        if path.starts_with("/opt/extensions/") {
            if !images {
                continue;
            }
            let file = Path::new(path).file_name().unwrap().to_str().unwrap();
            let (ext, rest) = file.split_once('-').unwrap();
            let version = rest.trim_end_matches("-x86-64.raw");
            std::fs::copy(image(ext, version), &dest).unwrap();
            continue;
        }
        let Some(bytes) = ignition_file(ign, path) else {
            continue;
        };
        std::fs::write(&dest, bytes).unwrap();
        let mode = f["mode"].as_u64().unwrap_or(0o644) as u32;
        std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    for l in ign["storage"]["links"].as_array().into_iter().flatten() {
        let dest = at(l["path"].as_str().unwrap());
        std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
        let _ = std::fs::remove_file(&dest);
        std::os::unix::fs::symlink(l["target"].as_str().unwrap(), &dest).unwrap();
    }
    std::fs::write(
        at("/opt/pxebuild/bin/beacon"),
        "#!/bin/sh\necho \"$*\" >> /var/lib/pxebuild/beacons\n",
    )
    .unwrap();
    upper
}

/// The example site's nodes, each with its upper layer filled, in `nodes`.
fn example_nodes(nodes: &Path) -> Vec<String> {
    let (_dir, site) = example_site();
    render_all(&site)
        .into_iter()
        .map(|(ctx, bu)| {
            let ign = node_ignition(&ctx, &bu);
            node_upper(nodes, &ctx.node.name, &ign, true);
            ctx.node.name.clone()
        })
        .collect()
}

/// Runs `script` (after DRIVER) in new namespaces as root; $ROOT and $NODES set.
pub(crate) fn run_driver(nodes: &Path, script: &str) -> Output {
    Command::new("unshare")
        .args(["--mount", "--net", "--propagation", "private", "bash", "-c"])
        .arg(format!("{DRIVER}\n{script}"))
        .env("ROOT", standin_root())
        .env("NODES", nodes)
        .output()
        .expect("running unshare")
}

/// The example site's addresses on the namespace's loopback; cp1 comes up and
/// runs its bootstrap (kubeadm init); the stand-in API server stays up for
/// the joins that follow and is stopped at exit.
pub(crate) const CLUSTER: &str = r#"
for a in 10.20.0.11 10.20.0.12 10.20.0.13 10.20.0.21 10.20.0.22; do ip addr add "$a/32" dev lo; done
at_exit 'kill $(cat "$NODES/.mnt/cp1/var/lib/pxebuild-standin/api.pid" 2>/dev/null) 2>/dev/null'
# A node booted (once) with its sysexts merged.
up() {
  mountpoint -q "$NODES/.mnt/$1" && return 0
  node_up "$1"
  on "$1" systemd-sysext merge --no-reload >/dev/null || { echo "$1: systemd-sysext merge failed"; return 1; }
}
bootstrap() {
  up "$1" || return 1
  echo "== $1"
  # Bounded: a wait that never ends fails the test instead of hanging it.
  timeout 120 chroot "$NODES/.mnt/$1" /opt/pxebuild/bin/kubeadm-bootstrap 2>&1 && return 0
  local log="$NODES/.mnt/$1/var/lib/pxebuild-standin/api.log"
  [ ! -f "$log" ] || { echo "-- $1's stand-in API server:"; cat "$log"; }
  return 1
}
"#;

fn read(nodes: &Path, node: &str, path: &str) -> String {
    std::fs::read_to_string(nodes.join(node).join("upper").join(path)).unwrap_or_default()
}

fn exists(nodes: &Path, node: &str, path: &str) -> bool {
    nodes.join(node).join("upper").join(path).exists()
}

fn openssl_verify(ca: &Path, cert: &Path) -> Output {
    Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(ca)
        .arg(cert)
        .output()
        .unwrap()
}

/// The VIP interface name kube-vip is given, and the VIP.
fn vip_of(nodes: &Path) -> (String, String) {
    let pod: serde_norway::Value =
        serde_norway::from_str(&read(nodes, "cp1", "etc/pxebuild/kube-vip.yaml")).unwrap();
    let env = pod["spec"]["containers"][0]["env"].as_sequence().unwrap();
    let get = |k: &str| {
        env.iter()
            .find(|e| e["name"].as_str() == Some(k))
            .and_then(|e| e["value"].as_str())
            .unwrap()
            .to_string()
    };
    (get("vip_interface"), get("address"))
}

#[test]
fn standin_stubs_bring_the_example_site_to_kubeadm_done_in_order() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = tmp.path();
    let names = example_nodes(nodes);
    assert_eq!(names, ["cp1", "cp2", "cp3", "worker1", "worker2"]);
    let (iface, vip) = vip_of(nodes);
    let script = format!(
        "{CLUSTER}\nip link add {iface} type veth peer name {iface}p && ip link set {iface} up\n\
         for n in cp1 cp2 cp3 worker1; do bootstrap $n || {{ echo \"$n failed\"; exit 1; }}; done\n\
         timeout 120 chroot \"$NODES/.mnt/cp1\" /opt/pxebuild/bin/cilium-install 2>&1 || exit 1\n\
         ip -o addr show dev {iface}\n"
    );
    let out = run_driver(nodes, &script);
    let text = out_text(&out);
    assert!(out.status.success(), "{text}");
    // kube-vip's stand-in announced the VIP on the site's interface.
    assert!(text.contains(&format!("inet {vip}/32")), "{text}");

    let ca = tmp.path().join("ca.crt");
    std::fs::write(&ca, read(nodes, "cp1", "etc/pxebuild/pki/ca.crt")).unwrap();
    for n in ["cp1", "cp2", "cp3", "worker1"] {
        assert!(
            exists(nodes, n, "var/lib/pxebuild/kubeadm-done"),
            "{n}\n{text}"
        );
        assert!(exists(nodes, n, "etc/kubernetes/kubelet.conf"), "{n}");
        assert!(exists(nodes, n, "var/lib/kubelet/config.yaml"), "{n}");
        let beacons = read(nodes, n, "var/lib/pxebuild/beacons");
        let phase = if n == "cp1" { "init" } else { "join" };
        assert!(
            beacons.starts_with(&format!("kubeadm-{phase}-preflight\n")),
            "{n}: {beacons}"
        );
        assert!(beacons.ends_with("kubeadm-done\n"), "{n}: {beacons}");
    }
    for n in ["cp1", "cp2", "cp3"] {
        for leaf in ["apiserver", "apiserver-kubelet-client"] {
            let crt = nodes
                .join(n)
                .join(format!("upper/etc/kubernetes/pki/{leaf}.crt"));
            let v = openssl_verify(&ca, &crt);
            assert!(v.status.success(), "{n} {leaf}: {}", out_text(&v));
        }
        for m in [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
        ] {
            assert!(
                exists(nodes, n, &format!("etc/kubernetes/manifests/{m}.yaml")),
                "{n}: {m}"
            );
        }
        // kube-vip in place after init/join, with admin.conf (never super-admin).
        let vip_pod = read(nodes, n, "etc/kubernetes/manifests/kube-vip.yaml");
        assert!(vip_pod.contains("path: /etc/kubernetes/admin.conf"), "{n}");
        assert!(!vip_pod.contains("super-admin"), "{n}");
        assert!(!exists(nodes, n, "etc/kubernetes/super-admin.conf"), "{n}");
        assert!(exists(nodes, n, "home/core/.kube/config") == (n == "cp1"));
    }
    // A worker holds no CA private key, and its kubelet's cert chains to the CA.
    for key in ["ca.key", "front-proxy-ca.key", "etcd/ca.key", "sa.key"] {
        assert!(
            !exists(nodes, "worker1", &format!("etc/kubernetes/pki/{key}")),
            "{key}"
        );
    }
    // Cilium installed once, on the first control plane, through its API.
    assert!(
        exists(nodes, "cp1", "var/lib/pxebuild/cilium-installed"),
        "{text}"
    );
    assert!(text.contains("Cilium 1.19.8 installed"), "{text}");
    // Join order at the stand-in API server: cp1, cp2, cp3, then the worker.
    let state = api_state(nodes);
    let order = joined(&state);
    assert_eq!(order, ["cp1", "cp2", "cp3", "worker1"]);
}

/// The stand-in kubeadm's image list (`kubeadm config images list`: its
/// release's own etcd, CoreDNS and pause tags under kubeadm's rules) for
/// cp1's config is what pxebuild's catalog names for the example site: the
/// images a serve-mode tree carries for kubeadm are the ones the lab's
/// kubeadm pulls (`tests/it/lab_airgap.rs`).
#[test]
fn standin_kubeadm_lists_the_images_the_catalog_names() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = tmp.path();
    example_nodes(nodes);
    let out = run_driver(
        nodes,
        &format!(
            "{CLUSTER}\nup cp1 || exit 1\n\
             on cp1 kubeadm config images list --config /etc/kubernetes/kubeadm.yaml\n"
        ),
    );
    let text = out_text(&out);
    assert!(out.status.success(), "{text}");
    let mut listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    listed.sort();
    let (_dir, site) = example_site();
    let mut catalog: Vec<String> = pxebuild::site::images::site_images(&site)
        .unwrap()
        .iter()
        .filter(|image| image.registry == "registry.k8s.io")
        .map(|image| image.to_string())
        .collect();
    catalog.sort();
    assert_eq!(listed, catalog, "{text}");
    // Cilium replaces kube-proxy in the example site: kubeadm skips it.
    assert!(!listed.iter().any(|i| i.contains("kube-proxy")), "{text}");
}

/// Runs cp1's init, then `broken` (shell) and the bootstrap of `node`, which
/// must fail with `expect` in its output.
fn refused(edit: impl Fn(&Path), node: &str, expect: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = tmp.path();
    example_nodes(nodes);
    edit(nodes);
    let init = if node == "cp1" {
        String::new()
    } else {
        "bootstrap cp1 >/dev/null || { echo 'cp1 failed'; exit 3; }\n".to_string()
    };
    let script = format!(
        "{CLUSTER}\nip addr add 10.20.0.10/32 dev lo\n{init}bootstrap {node}; echo \"rc=$?\"\n"
    );
    let out = run_driver(nodes, &script);
    let text = out_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("rc=1"), "{node} must fail: {text}");
    assert!(text.contains(expect), "{node} must say {expect:?}: {text}");
    assert!(
        !exists(nodes, node, "var/lib/pxebuild/kubeadm-done"),
        "{node}"
    );
}

fn edit_file(nodes: &Path, node: &str, path: &str, f: impl Fn(String) -> String) {
    let p = nodes.join(node).join("upper").join(path);
    let text = std::fs::read_to_string(&p).unwrap();
    let new = f(text.clone());
    assert_ne!(new, text, "the edit of {path} changed nothing");
    std::fs::write(p, new).unwrap();
}

#[test]
fn standin_stubs_refuse_a_worker_holding_a_ca_key() {
    refused(
        |nodes| {
            let ca_key = read(nodes, "cp1", "etc/pxebuild/pki/ca.key");
            let pki = nodes.join("worker1/upper/etc/kubernetes/pki");
            std::fs::create_dir_all(&pki).unwrap();
            std::fs::write(pki.join("ca.key"), ca_key).unwrap();
        },
        "worker1",
        "/etc/kubernetes/pki/ca.key is on a worker",
    );
}

#[test]
fn standin_stubs_refuse_a_wrong_ca_pin() {
    refused(
        |nodes| {
            edit_file(nodes, "worker1", "etc/kubernetes/kubeadm.yaml", |t| {
                let at = t.find("sha256:").unwrap() + 7;
                let mut t = t;
                t.replace_range(at..at + 8, "00000000");
                t
            })
        },
        "worker1",
        "are pinned by caCertHashes",
    );
}

#[test]
fn standin_stubs_refuse_a_v1beta3_config() {
    refused(
        |nodes| {
            edit_file(nodes, "cp2", "etc/kubernetes/kubeadm.yaml", |t| {
                t.replace("kubeadm.k8s.io/v1beta4", "kubeadm.k8s.io/v1beta3")
            })
        },
        "cp2",
        "JoinConfiguration is kubeadm.k8s.io/v1beta3, this kubeadm reads kubeadm.k8s.io/v1beta4",
    );
}

#[test]
fn standin_stubs_refuse_kube_vip_without_super_admin_during_init() {
    // The init script switches kube-vip to super-admin.conf by rewriting this
    // mount; a manifest that mounts it differently keeps admin.conf.
    refused(
        |nodes| {
            edit_file(nodes, "cp1", "etc/pxebuild/kube-vip.yaml", |t| {
                t.replace(
                    "path: /etc/kubernetes/admin.conf",
                    "path: /etc/kubernetes//admin.conf",
                )
            })
        },
        "cp1",
        "not /etc/kubernetes/super-admin.conf",
    );
}

/// A power cut: node `$1`'s bootstrap runs with the stand-in holding right
/// after beacon `$2`, and is killed (its whole process group) once it is
/// there; the next run (the next boot) must reset the node and complete.
const POWER_CUT: &str = r#"
cut_at() {
  local n=$1 at=$2 m="$NODES/.mnt/$1"
  setsid env PXEBUILD_STANDIN_HOLD="$at" chroot "$m" /opt/pxebuild/bin/kubeadm-bootstrap \
    > "$NODES/$n.cut.log" 2>&1 &
  local pid=$!
  for _ in $(seq 300); do
    grep -qx "$at" "$m/var/lib/pxebuild/beacons" 2>/dev/null && break
    sleep 0.1
  done
  kill -KILL -- "-$pid"
  wait "$pid" 2>/dev/null
  grep -qx "$at" "$m/var/lib/pxebuild/beacons" || { echo "$n never reached $at"; cat "$NODES/$n.cut.log"; exit 1; }
  echo "power cut on $n at $at"
}
"#;

#[test]
fn standin_stubs_recover_from_power_cuts_mid_init_and_mid_join() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = tmp.path();
    example_nodes(nodes);
    let script = format!(
        "{CLUSTER}{POWER_CUT}\nip addr add 10.20.0.10/32 dev lo\n\
         up cp1 || exit 1\n\
         cut_at cp1 kubeadm-init-control-plane\n\
         bootstrap cp1 || exit 1\n\
         up cp2 || exit 1\n\
         cut_at cp2 kubeadm-join-etcd\n\
         bootstrap cp2 || exit 1\n\
         bootstrap cp3 || exit 1\n"
    );
    // bootstrap mounts the node again: make node_up idempotent for it.
    let script = script.replace(
        "bootstrap() {\n  node_up \"$1\"",
        "bootstrap() {\n  mountpoint -q \"$NODES/.mnt/$1\" || node_up \"$1\"",
    );
    let out = run_driver(nodes, &script);
    let text = out_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("power cut on cp1 at kubeadm-init-control-plane"),
        "{text}"
    );
    assert!(
        text.contains("power cut on cp2 at kubeadm-join-etcd"),
        "{text}"
    );
    assert!(
        text.contains("kubeadm ran before without finishing; resetting this node first"),
        "{text}"
    );
    for n in ["cp1", "cp2", "cp3"] {
        assert!(
            exists(nodes, n, "var/lib/pxebuild/kubeadm-done"),
            "{n}\n{text}"
        );
    }
    let state = api_state(nodes);
    let order = joined(&state);
    assert_eq!(order, ["cp1", "cp2", "cp3"]);
    let started = state["members"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["started"] == true);
    assert!(started, "{state}");
}

#[test]
fn standin_stubs_refuse_cilium_values_without_the_api_endpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = tmp.path();
    example_nodes(nodes);
    edit_file(nodes, "cp1", "etc/cilium/values.yaml", |t| {
        t.lines()
            .filter(|l| !l.starts_with("k8sServiceHost:"))
            .map(|l| format!("{l}\n"))
            .collect()
    });
    let script = format!(
        "{CLUSTER}\nip addr add 10.20.0.10/32 dev lo\nbootstrap cp1 >/dev/null || exit 3\n\
         timeout 120 chroot \"$NODES/.mnt/cp1\" /opt/pxebuild/bin/cilium-install 2>&1; echo \"rc=$?\"\n"
    );
    let out = run_driver(nodes, &script);
    let text = out_text(&out);
    assert!(text.contains("rc=1"), "{text}");
    assert!(
        text.contains("without kube-proxy the agent needs k8sServiceHost"),
        "{text}"
    );
    assert!(!exists(nodes, "cp1", "var/lib/pxebuild/cilium-installed"));
}

/// The stand-in API server's state on cp1 (`api.json`).
fn api_state(nodes: &Path) -> serde_json::Value {
    serde_json::from_str(&read(nodes, "cp1", "var/lib/pxebuild-standin/api.json")).unwrap()
}

/// The nodes in the order the stand-in API server saw them join.
fn joined(state: &serde_json::Value) -> Vec<&str> {
    state["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect()
}
