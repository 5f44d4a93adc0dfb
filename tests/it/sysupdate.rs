//! Real systemd-sysext and systemd-sysupdate (systemd 257, the stand-in
//! root's) on what a build serves: the example site is built from a fixture
//! mirror publishing the stand-in system extensions, `pxebuild serve` serves
//! dist/ at the site's boot-server address inside a network namespace made
//! for the test, and the first control plane's root (its node Ignition's
//! files, chrooted) downloads and verifies its sysexts with Debian's real
//! Ignition (files stage), merges them, and, once the site is rebuilt with a newer Kubernetes patch,
//! stages it through the generated transfer files and sysupdate script with
//! the site's verification (Verify=yes, the node's import-pubring).
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::cluster_build::{build, mirror_with, Mirror};
use crate::cluster_common::*;
use crate::cluster_sandbox::out_text;
use crate::standin_stubs::{node_upper, run_driver, standin_sysexts, CLUSTER};

/// The example site with `updates.apply = "rolling"` (so the sysupdate
/// script stages Kubernetes by itself) built twice from the stand-in
/// sysexts: dist1 with v1.35.9, dist2 with the newer patch v1.35.10.
struct Builds {
    _mirror: Mirror,
    dir: tempfile::TempDir,
    dist1: PathBuf,
    dist2: PathBuf,
}

fn builds() -> Builds {
    let (dir, _) = example_site();
    let root = dir.path();
    let sysexts = standin_sysexts();
    let mirror = mirror_with(root, &[OsStr::new("--sysexts"), sysexts.as_os_str()]);
    let site = root.join("site.toml");
    let text = std::fs::read_to_string(&site).unwrap();
    let rolling = text.replace("sysupdate = true", "sysupdate = true\napply = \"rolling\"");
    assert_ne!(rolling, text);
    std::fs::write(&site, &rolling).unwrap();
    let dist1 = root.join("dist1");
    let out = build(root, &dist1, &mirror);
    assert!(out.status.success(), "{}", out_text(&out));
    // The patch release everywhere: the cluster's version and its sysext.
    let newer = rolling.replace("\"v1.35.9\"", "\"v1.35.10\"");
    assert_ne!(newer, rolling);
    std::fs::write(&site, newer).unwrap();
    let dist2 = root.join("dist2");
    let out = build(root, &dist2, &mirror);
    assert!(out.status.success(), "{}", out_text(&out));
    Builds {
        _mirror: mirror,
        dir,
        dist1,
        dist2,
    }
}

/// cp1's node Ignition in `dist`.
fn cp1_ignition(dist: &Path) -> serde_json::Value {
    node_ignition_in(dist, "cp1")
}

/// Node `name`'s node Ignition in `dist`.
pub(crate) fn node_ignition_in(dist: &Path, name: &str) -> serde_json::Value {
    let dir = std::fs::read_dir(dist.join("http/ignition"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{name}-"))
        })
        .unwrap();
    serde_json::from_slice(&std::fs::read(dir.join("node.ign")).unwrap()).unwrap()
}

/// The node Ignition's sysext files alone (unchanged: URL and
/// `verification.hash`), for Ignition's files stage on the node.
fn sysext_config(ign: &serde_json::Value) -> String {
    let files: Vec<&serde_json::Value> = ign["storage"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["path"].as_str().unwrap().starts_with("/opt/extensions/"))
        .collect();
    assert!(!files.is_empty());
    serde_json::json!({
        "ignition": {"version": ign["ignition"]["version"]},
        "storage": {"files": files},
    })
    .to_string()
}

/// Serves `$1` (a dist/) at the example site's boot server, 10.20.0.2:8080,
/// until the next `serve` or the end; downloads a node's sysexts like
/// Ignition (refusing a digest that does not match) and merges them.
const NODE: &str = r#"
ip addr add 10.20.0.2/32 dev lo
SERVE=
at_exit '[ -z "$SERVE" ] || kill $SERVE'
serve() {
  [ -z "$SERVE" ] || { kill $SERVE; wait $SERVE 2>/dev/null; }
  "$PXEBUILD" serve "$1" --listen 10.20.0.2 --http-port 8080 --tftp-port 0 \
    --admin 127.0.0.1:0 2>>"$NODES/serve.log" &
  SERVE=$!
  for _ in $(seq 100); do
    curl -s -o /dev/null http://10.20.0.2:8080/ && return 0
    sleep 0.1
  done
  echo "pxebuild serve did not come up"; cat "$NODES/serve.log"; exit 1
}
# Debian's real Ignition (the binary of its dracut module), files stage, on
# the node: it downloads each sysext and refuses one whose SHA-512 is not the
# node config's. Ignition runs only in an initramfs (initrd-release) and
# relabels for SELinux afterwards (a config saying disabled, a no-op setfiles).
fetch_sysexts() {
  local m="$NODES/.mnt/$1"
  cp "$IGNITION" "$m/run/ignition-bin"
  cp "$NODES/$1.sysexts.ign" "$m/run/ignition.json"
  echo 'ID=stand-in' > "$m/etc/initrd-release"
  mkdir -p "$m/run/sysroot/etc/selinux" "$m/run/bin"
  printf 'SELINUX=disabled\nSELINUXTYPE=targeted\n' > "$m/run/sysroot/etc/selinux/config"
  printf '#!/bin/sh\nexit 0\n' > "$m/run/bin/setfiles" && chmod +x "$m/run/bin/setfiles"
  local rc=0
  on "$1" env PATH=/run/bin:/usr/sbin:/usr/bin:/sbin:/bin /run/ignition-bin -platform=metal \
    -stage=files -root=/run/sysroot -log-to-stdout > "$NODES/$1.ignition.log" 2>&1 || rc=$?
  rm -f "$m/etc/initrd-release"
  if [ "$rc" != 0 ]; then
    echo "ignition refused the sysexts:"; grep -iE 'error|fail' "$NODES/$1.ignition.log" | tail -n 5
    return 1
  fi
  cp -a "$m/run/sysroot/opt/." "$m/opt/"
}
"#;

/// Debian's Ignition (package `ignition`), as its dracut module ships it.
const IGNITION: &str = "/usr/lib/dracut/modules.d/30ignition/ignition";

fn driver(b: &Builds, nodes: &Path, script: &str) -> Output {
    let script = format!(
        "PXEBUILD={:?}\nIGNITION={IGNITION:?}\nDIST1={:?}\nDIST2={:?}\n{NODE}\n{script}",
        env!("CARGO_BIN_EXE_pxebuild"),
        b.dist1,
        b.dist2
    );
    run_driver(nodes, &script)
}

/// cp1's upper layer from dist1's Ignition, without its images (downloaded).
fn cp1_node(b: &Builds) -> tempfile::TempDir {
    let nodes = tempfile::tempdir_in(b.dir.path()).unwrap();
    let ign = cp1_ignition(&b.dist1);
    node_upper(nodes.path(), "cp1", &ign, false);
    std::fs::write(nodes.path().join("cp1.sysexts.ign"), sysext_config(&ign)).unwrap();
    nodes
}

/// Replaces `rel` in `dist` by `f(its bytes)` as a new file (dist files may
/// share their inode with the build's store).
fn tamper(dist: &Path, rel: &str, f: impl Fn(&mut Vec<u8>)) {
    let path = dist.join(rel);
    let mut bytes = std::fs::read(&path).unwrap();
    f(&mut bytes);
    std::fs::remove_file(&path).unwrap();
    std::fs::write(&path, bytes).unwrap();
}

const MERGE_AND_STAGE: &str = r#"
serve "$DIST1"
node_up cp1
fetch_sysexts cp1 || exit 1
on cp1 systemd-sysext merge --no-reload || exit 1
echo "before: $(on cp1 kubeadm version)"
serve "$DIST2"
on cp1 /opt/pxebuild/bin/sysupdate-sysexts; echo "script rc=$?"
echo "staged: $(on cp1 readlink -f /etc/extensions/kubernetes.raw)"
ls "$NODES/.mnt/cp1/opt/extensions/kubernetes"
[ -e "$NODES/.mnt/cp1/run/reboot-required" ] && echo "reboot requested"
on cp1 systemd-sysext refresh --no-reload >/dev/null
echo "after: $(on cp1 kubeadm version)"
cat "$NODES/.mnt/cp1/var/lib/pxebuild/beacons" 2>/dev/null || true
"#;

#[test]
fn sysupdate_merges_the_served_sysexts_and_stages_a_new_patch_verified() {
    let b = builds();
    let nodes = cp1_node(&b);
    let out = driver(&b, nodes.path(), MERGE_AND_STAGE);
    let text = out_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("before: kubeadm version: v1.35.9 "), "{text}");
    assert!(
        text.contains("staged: /opt/extensions/kubernetes/kubernetes-v1.35.10-x86-64.raw"),
        "{text}"
    );
    assert!(
        text.contains("kubernetes-v1.35.9-x86-64.raw"),
        "the old one is kept: {text}"
    );
    assert!(text.contains("reboot requested"), "{text}");
    assert!(text.contains("after: kubeadm version: v1.35.10 "), "{text}");
    assert!(!text.contains("sysupdate-failed"), "{text}");
}

#[test]
fn sysupdate_refuses_a_changed_listing_and_beacons_it() {
    let b = builds();
    // A listing changed after signing: its signature no longer holds.
    tamper(&b.dist2, "http/sysext/kubernetes/SHA256SUMS", |bytes| {
        bytes[0] = if bytes[0] == b'0' { b'1' } else { b'0' };
    });
    let text = stays_on_the_running_patch(&b);
    assert!(!text.contains("v1.35.10-x86-64.raw"), "{text}");
}

#[test]
fn sysupdate_refuses_a_changed_image_and_beacons_it() {
    let b = builds();
    // The signed listing is intact; the image it names is not.
    let raw = "http/sysext/kubernetes/kubernetes-v1.35.10-x86-64.raw";
    tamper(&b.dist2, raw, |bytes| {
        let at = bytes.len() / 2;
        bytes[at] ^= 0xff;
    });
    stays_on_the_running_patch(&b);
}

/// Runs cp1's merge and staging against the tampered tree: the node keeps
/// v1.35.9, asks for no reboot and beacons the refusal. The driver's output.
fn stays_on_the_running_patch(b: &Builds) -> String {
    let nodes = cp1_node(b);
    let out = driver(b, nodes.path(), MERGE_AND_STAGE);
    let text = out_text(&out);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("staged: /opt/extensions/kubernetes/kubernetes-v1.35.9-x86-64.raw"),
        "{text}"
    );
    assert!(!text.contains("reboot requested"), "{text}");
    assert!(text.contains("sysupdate-failed kubernetes"), "{text}");
    text
}

#[test]
fn sysupdate_node_refuses_a_sysext_whose_digest_does_not_match() {
    let b = builds();
    tamper(
        &b.dist1,
        "http/sysext/cilium/cilium-v0.18.2-x86-64.raw",
        |bytes| {
            bytes[100] ^= 0xff;
        },
    );
    let nodes = cp1_node(&b);
    let out = driver(
        &b,
        nodes.path(),
        "serve \"$DIST1\"\nnode_up cp1\nfetch_sysexts cp1; echo \"rc=$?\"\n\
         ls \"$NODES/.mnt/cp1/opt/extensions/cilium\"\n",
    );
    let text = out_text(&out);
    assert!(text.contains("rc=1"), "{text}");
    assert!(text.contains("ignition refused the sysexts"), "{text}");
    assert!(
        text.contains("hash verification failed"),
        "Ignition says why: {text}"
    );
    assert!(!text.contains("cilium-v0.18.2-x86-64.raw\n"), "{text}");
}

/// A kubernetes image whose extension-release says `args` (build.sh's
/// --os-id/--sysext-level), merged by real systemd-sysext on the stand-in.
fn merge_foreign(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new("sh")
        .arg(repo().join("tests/fixtures/standin-sysext/build.sh"))
        .arg(dir.path().join("other"))
        .args(["--kubernetes", "v1.35.9"])
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", out_text(&out));
    let nodes = dir.path().join("nodes");
    let ext = nodes.join("cp1/upper/etc/extensions");
    std::fs::create_dir_all(&ext).unwrap();
    std::fs::copy(
        dir.path()
            .join("other/kubernetes-v1.35.9/kubernetes-v1.35.9-x86-64.raw"),
        ext.join("kubernetes.raw"),
    )
    .unwrap();
    let out = run_driver(
        &nodes,
        "node_up cp1\non cp1 systemd-sysext merge --no-reload 2>&1\n\
         on cp1 sh -c 'command -v kubeadm || echo no kubeadm'\n",
    );
    out_text(&out)
}

#[test]
fn sysupdate_sysext_refuses_an_image_for_another_os() {
    // Neither the stand-in's ID (flatcar) nor its ID_LIKE (debian).
    for args in [&["--os-id", "fedora"][..], &["--sysext-level", "2.0"][..]] {
        let text = merge_foreign(args);
        assert!(text.contains("no kubeadm"), "{args:?}: {text}");
        assert!(
            text.contains("1 ignored due to incompatible image"),
            "{args:?}: systemd-sysext says why: {text}"
        );
    }
    // The same image as the bakery makes it is merged.
    let text = merge_foreign(&[]);
    assert!(text.contains("/usr/bin/kubeadm"), "{text}");
}

#[test]
fn sysupdate_rolling_a_worker_stages_the_patch_only_after_the_control_plane() {
    let b = builds();
    let nodes = tempfile::tempdir_in(b.dir.path()).unwrap();
    for name in ["cp1", "worker1"] {
        let ign = node_ignition_in(&b.dist1, name);
        node_upper(nodes.path(), name, &ign, false);
        std::fs::write(
            nodes.path().join(format!("{name}.sysexts.ign")),
            sysext_config(&ign),
        )
        .unwrap();
    }
    // Both nodes of dist1 (v1.35.9) joined through the stand-in API server;
    // then dist2 (v1.35.10) is served and the timer's script runs on each.
    let script = format!(
        "{CLUSTER}\nip link add site0 type veth peer name site0p && ip link set site0 up\n\
         serve \"$DIST1\"\n\
         for n in cp1 worker1; do node_up $n; fetch_sysexts $n || exit 1; \
           on $n systemd-sysext merge --no-reload >/dev/null || exit 1; done\n\
         for n in cp1 worker1; do bootstrap $n || {{ echo \"$n failed\"; exit 1; }}; done\n\
         serve \"$DIST2\"\n\
         stage() {{ on $1 /opt/pxebuild/bin/sysupdate-sysexts 2>&1 | grep pxebuild-sysupdate; \
           echo \"$1 staged: $(on $1 readlink -f /etc/extensions/kubernetes.raw)\"; }}\n\
         stage worker1\n\
         on cp1 kubeadm upgrade apply v1.35.10 --yes; echo \"too early rc=$?\"\n\
         stage cp1\n\
         on cp1 systemd-sysext refresh --no-reload >/dev/null\n\
         on cp1 kubeadm upgrade apply v1.35.10 --yes || exit 1\n\
         stage worker1\n\
         [ -e \"$NODES/.mnt/worker1/run/reboot-required\" ] && echo \"worker1 asks for a reboot\"\n"
    );
    let out = driver(&b, nodes.path(), &script);
    let text = out_text(&out);
    assert!(out.status.success(), "{text}");
    let old = "/opt/extensions/kubernetes/kubernetes-v1.35.9-x86-64.raw";
    let new = "/opt/extensions/kubernetes/kubernetes-v1.35.10-x86-64.raw";
    let lines: Vec<&str> = text.lines().filter(|l| l.contains(" staged: ")).collect();
    assert_eq!(
        lines,
        [
            format!("worker1 staged: {old}"),
            format!("cp1 staged: {new}"),
            format!("worker1 staged: {new}"),
        ],
        "{text}"
    );
    // kubeadm upgrade apply needs the new kubeadm: the control plane's
    // extension first.
    assert!(text.contains("too early rc=1"), "{text}");
    assert!(
        text.contains("stage and merge the v1.35.10 kubernetes extension"),
        "{text}"
    );
    assert!(text.contains("worker1 asks for a reboot"), "{text}");
}
