//! Runs the rendered node scripts in a sandbox: bash with stub commands
//! (`kubeadm`, `curl`, `sleep`, …) first on PATH and every absolute path the
//! script touches rewritten under a temp root. The files come from the node's
//! translated Ignition, so the test sees what a node would see.
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pxebuild::render::context::NodeContext;
use pxebuild::render::ignition;

use crate::cluster_common::*;
use crate::cluster_render::render_all;

/// A temp root, a stub directory and a log directory for one script run.
pub struct Sandbox {
    _dir: tempfile::TempDir,
    pub root: PathBuf,
    pub stubs: PathBuf,
    pub state: PathBuf,
}

impl Sandbox {
    pub fn new() -> Sandbox {
        let dir = tempfile::tempdir().unwrap();
        let (root, stubs, state) = (
            dir.path().join("root"),
            dir.path().join("bin"),
            dir.path().join("state"),
        );
        for d in [&root, &stubs, &state] {
            std::fs::create_dir_all(d).unwrap();
        }
        let sb = Sandbox {
            _dir: dir,
            root,
            stubs,
            state,
        };
        // Never the host's firewall: the bootstrap script's reset rewrites
        // the rule set. A test that looks at it stubs these again.
        for tool in [
            "iptables-save",
            "iptables-restore",
            "ip6tables-save",
            "ip6tables-restore",
        ] {
            sb.stub(tool, "cat >/dev/null 2>&1 || true");
        }
        sb
    }

    /// A stub command: `body` runs under bash with $ROOT and $STATE set.
    pub fn stub(&self, name: &str, body: &str) {
        let text = format!(
            "#!/bin/bash\nROOT={root:?}\nSTATE={state:?}\necho \"{name} $*\" >> \"$STATE/calls\"\n{body}\n",
            root = self.root,
            state = self.state,
        );
        write_exec(&self.stubs.join(name), &text);
    }

    /// Makes every `storage.directories` entry and writes every
    /// `storage.files` entry of `ign` under the root.
    pub fn apply_ignition_files(&self, ign: &serde_json::Value) {
        for d in ign["storage"]["directories"]
            .as_array()
            .into_iter()
            .flatten()
        {
            std::fs::create_dir_all(self.path(d["path"].as_str().unwrap())).unwrap();
        }
        for f in ign["storage"]["files"].as_array().unwrap() {
            let path = f["path"].as_str().unwrap();
            let bytes = ignition_file(ign, path).unwrap_or_default();
            let dest = self.path(path);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::write(&dest, bytes).unwrap();
            let mode = f["mode"].as_u64().unwrap_or(0o644) as u32;
            std::fs::set_permissions(&dest, std::fs::Permissions::from_mode(mode)).unwrap();
        }
    }

    /// `abs` (an absolute node path) inside the sandbox root.
    pub fn path(&self, abs: &str) -> PathBuf {
        self.root.join(abs.trim_start_matches('/'))
    }

    /// `script` with its absolute paths moved under the root, the stubs first
    /// on its PATH and the `core` ownership dropped (no such user here).
    pub fn rewrite(&self, script: &str) -> String {
        let root = self.root.display().to_string();
        let mut text = script.to_string();
        for prefix in [
            "/etc/",
            "/opt/pxebuild/",
            "/home/core",
            "/root/.kube",
            "/var/lib/",
            "/sys/",
        ] {
            text = text.replace(prefix, &format!("{root}{prefix}"));
        }
        text.replace(
            "export PATH=",
            &format!("export PATH={}:", self.stubs.display()),
        )
        .replace("-o core -g core ", "")
    }

    /// Runs `script` (already rewritten) with bash, stubs first on PATH.
    pub fn run(&self, script: &str) -> Output {
        let path = self.state.join("script.sh");
        std::fs::write(&path, script).unwrap();
        Command::new("bash")
            .arg(&path)
            .env(
                "PATH",
                format!(
                    "{}:{}",
                    self.stubs.display(),
                    std::env::var("PATH").unwrap()
                ),
            )
            .output()
            .unwrap()
    }

    pub fn calls(&self) -> String {
        std::fs::read_to_string(self.state.join("calls")).unwrap_or_default()
    }
}

/// Copies this host's `/usr/lib/systemd/system` under `root`, so that
/// `systemd-analyze verify --root` finds the units a rendered unit names.
pub fn copy_host_units(root: &Path) {
    let lib = root.join("usr/lib/systemd");
    std::fs::create_dir_all(&lib).unwrap();
    let copied = Command::new("cp")
        .args(["-a", "/usr/lib/systemd/system"])
        .arg(&lib)
        .status()
        .unwrap();
    assert!(copied.success());
}

pub fn write_exec(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

pub fn out_text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The translated node Ignition of `ctx`.
pub fn node_ignition(ctx: &NodeContext, butane: &str) -> serde_json::Value {
    let json = ignition::translate(butane, &format!("{}/node.bu", ctx.node.name), true).unwrap();
    serde_json::from_str(&json).unwrap()
}

const CA_FILES: [&str; 8] = [
    "ca.crt",
    "ca.key",
    "front-proxy-ca.crt",
    "front-proxy-ca.key",
    "etcd/ca.crt",
    "etcd/ca.key",
    "sa.key",
    "sa.pub",
];

/// A stub kubeadm whose first init/join fails; every attempt copies the pki
/// directory it finds to $STATE/seen-<n>; `reset` empties pki and manifests
/// as the real one does.
const KUBEADM_STUB: &str = r#"
case "$1" in
  init|join)
    n=$(( $(cat "$STATE/attempts" 2>/dev/null || echo 0) + 1 ))
    echo "$n" > "$STATE/attempts"
    mkdir -p "$STATE/seen-$n"
    cp -a "$ROOT/etc/kubernetes/pki/." "$STATE/seen-$n/" 2>/dev/null || true
    ls "$ROOT/etc/kubernetes/manifests" > "$STATE/manifests-$n" 2>/dev/null || true
    [ "$n" -ge 2 ] || exit 1
    echo admin > "$ROOT/etc/kubernetes/admin.conf"
    ;;
  reset)
    rm -rf "$ROOT/etc/kubernetes/pki" "$ROOT/var/lib/etcd" "$ROOT/var/lib/kubelet"
    rm -rf "$ROOT/etc/kubernetes/manifests/"* "$ROOT/etc/kubernetes/"*.conf
    ;;
esac
exit 0
"#;

/// The bootstrap script of a control plane: a failed attempt, the unit's
/// retry, and the second attempt must find the original CA set.
fn retry_keeps_the_ca(name: &str) {
    let (_dir, site) = example_site();
    let (ctx, bu) = render_all(&site)
        .into_iter()
        .find(|(c, _)| c.node.name == name)
        .unwrap();
    let ign = node_ignition(&ctx, &bu);
    let sb = Sandbox::new();
    sb.apply_ignition_files(&ign);
    sb.stub("kubeadm", KUBEADM_STUB);
    sb.stub("sleep", "exit 0");
    sb.stub(
        "curl",
        &curl_stub(&[r#"{"members":[{"ID":"1","name":"cp1","clientURLs":["x"]}]}"#]),
    );
    write_exec(
        &sb.path("/opt/pxebuild/bin/beacon"),
        &format!("#!/bin/sh\necho \"$1\" >> {:?}\n", sb.state.join("beacons")),
    );
    let script = sb.rewrite(&ctx.files.bootstrap_script);
    let first = sb.run(&script);
    assert!(
        !first.status.success(),
        "{name}: the first attempt fails\n{}",
        out_text(&first)
    );
    assert!(
        sb.calls().contains("kubeadm reset --force"),
        "{}",
        sb.calls()
    );
    assert!(
        !sb.path("/etc/kubernetes/pki/ca.key").exists(),
        "reset emptied pki"
    );
    let second = sb.run(&script);
    assert!(
        second.status.success(),
        "{name}: the retry succeeds\n{}",
        out_text(&second)
    );
    for f in CA_FILES {
        let original = ignition_file(&ign, &format!("/etc/pxebuild/pki/{f}")).unwrap();
        let seen = std::fs::read(sb.state.join("seen-2").join(f))
            .unwrap_or_else(|e| panic!("{name}: the retry found no {f}: {e}"));
        assert_eq!(seen, original, "{name}: {f} is the pre-shared one");
        let first_seen = std::fs::read(sb.state.join("seen-1").join(f)).unwrap();
        assert_eq!(first_seen, original, "{name}: {f} before the first attempt");
    }
    if ctx.node.init {
        let manifests = std::fs::read_to_string(sb.state.join("manifests-2")).unwrap();
        assert!(
            manifests.contains("kube-vip.yaml"),
            "kube-vip restored before init: {manifests}"
        );
    }
    let beacons = std::fs::read_to_string(sb.state.join("beacons")).unwrap();
    assert_eq!(beacons.trim(), "kubeadm-done");
}

#[test]
fn cluster_sandbox_init_retry_restores_the_pre_shared_ca() {
    retry_keeps_the_ca("cp1");
}

#[test]
fn cluster_sandbox_control_plane_join_retry_restores_the_pre_shared_ca() {
    retry_keeps_the_ca("cp2");
}

/// Node `name`'s bootstrap script in a sandbox holding its Ignition files,
/// with a beacon that records its arguments in $STATE/beacons.
fn bootstrap_sandbox(name: &str) -> (NodeContext, Sandbox, String) {
    let (_dir, site) = example_site();
    let (ctx, bu) = render_all(&site)
        .into_iter()
        .find(|(c, _)| c.node.name == name)
        .unwrap();
    let ign = node_ignition(&ctx, &bu);
    let sb = Sandbox::new();
    sb.apply_ignition_files(&ign);
    write_exec(
        &sb.path("/opt/pxebuild/bin/beacon"),
        &format!("#!/bin/sh\necho \"$*\" >> {:?}\n", sb.state.join("beacons")),
    );
    sb.stub("sleep", "exit 0");
    let script = sb.rewrite(&ctx.files.bootstrap_script);
    (ctx, sb, script)
}

/// A kubeadm that behaves like the real one on disk: init/join write the
/// kubeconfigs (kubelet.conf first) and an etcd member, reset removes what
/// kubeadm made. Each init/join records in $STATE/before-<n> what it found
/// left over. With $STATE/cut-power, the first init/join kills the script
/// right after writing kubelet.conf, as a power cut would.
const KUBEADM_DISK_STUB: &str = r#"
case "$1" in
  init|join)
    n=$(( $(cat "$STATE/attempts" 2>/dev/null || echo 0) + 1 ))
    echo "$n" > "$STATE/attempts"
    { ls "$ROOT/etc/kubernetes"; ls "$ROOT/etc/cni/net.d" "$ROOT/root/.kube" "$ROOT/var/lib/etcd"; } \
      > "$STATE/before-$n" 2>/dev/null
    echo kubelet > "$ROOT/etc/kubernetes/kubelet.conf"
    if [ "$n" = 1 ] && [ -e "$STATE/cut-power" ]; then kill -KILL "$PPID"; exit 1; fi
    mkdir -p "$ROOT/var/lib/etcd/member" "$ROOT/var/lib/kubelet"
    echo admin > "$ROOT/etc/kubernetes/admin.conf"
    [ "$1" = join ] || echo super > "$ROOT/etc/kubernetes/super-admin.conf"
    ;;
  reset)
    rm -rf "$ROOT/etc/kubernetes/pki" "$ROOT/var/lib/etcd" "$ROOT/var/lib/kubelet"
    rm -rf "$ROOT/etc/kubernetes/manifests/"* "$ROOT/etc/kubernetes/"*.conf
    ;;
esac
exit 0
"#;

/// What a Cilium agent and kube-proxy leave in iptables, around a rule of
/// the site's own.
const IPTABLES_SAVED: &str = "*filter
:INPUT ACCEPT [0:0]
:KUBE-FIREWALL - [0:0]
:CILIUM_INPUT - [0:0]
-A INPUT -j KUBE-FIREWALL
-A INPUT -m comment --comment \"cilium-feeder: CILIUM_INPUT\" -j CILIUM_INPUT
-A INPUT -s 10.20.0.0/24 -p tcp --dport 22 -j ACCEPT
COMMIT
";

/// The run-once guard: a node whose init or join was cut off after kubeadm
/// wrote kubelet.conf (a power cut) has no completion marker, so the next
/// boot runs the unit again, and the script resets what kubeadm and a Cilium
/// agent left before it tries again; control planes get kube-vip after
/// their retried join, and the marker comes last.
fn half_done_node_is_reset_and_retried(name: &str) {
    let (ctx, sb, script) = bootstrap_sandbox(name);
    sb.stub("kubeadm", KUBEADM_DISK_STUB);
    sb.stub(
        "curl",
        &curl_stub(&[
            r#"{"members":[{"ID":"1","name":"cp1","clientURLs":["x"]},{"ID":"2","name":"cp2","clientURLs":["y"]}]}"#,
        ]),
    );
    sb.stub(
        "iptables-save",
        &format!("cat <<'SAVED'\n{IPTABLES_SAVED}SAVED"),
    );
    sb.stub("iptables-restore", "cat > \"$STATE/restored\"");
    std::fs::write(sb.state.join("cut-power"), "").unwrap();
    let cut = sb.run(&script);
    assert!(!cut.status.success(), "{name}: {}", out_text(&cut));
    let done = sb.path("/var/lib/pxebuild/kubeadm-done");
    assert!(!done.exists(), "{name}: no marker after a cut-off run");
    assert!(sb.path("/etc/kubernetes/kubelet.conf").exists());
    // What the first run of the Cilium agent and the operator left behind.
    for (path, text) in [
        ("/etc/cni/net.d/05-cilium.conflist", "{}"),
        ("/root/.kube/config", "admin"),
        ("/home/core/.kube/config", "admin"),
    ] {
        std::fs::create_dir_all(sb.path(path).parent().unwrap()).unwrap();
        std::fs::write(sb.path(path), text).unwrap();
    }

    let again = sb.run(&script);
    assert!(again.status.success(), "{name}: {}", out_text(&again));
    let calls = sb.calls();
    let verb = if ctx.node.init { "init" } else { "join" };
    let second = calls.rfind(&format!("kubeadm {verb}")).unwrap();
    let reset = calls.rfind("kubeadm reset --force").expect("a reset");
    assert!(reset < second, "{name}: reset before the retry\n{calls}");
    let before = std::fs::read_to_string(sb.state.join("before-2")).unwrap();
    for left in [
        "kubelet.conf",
        "admin.conf",
        "05-cilium.conflist",
        "config",
        "member",
    ] {
        assert!(
            !before.lines().any(|l| l == left),
            "{name}: {left} left for the retry: {before}"
        );
    }
    let restored = std::fs::read_to_string(sb.state.join("restored")).unwrap();
    assert!(
        !restored.contains("KUBE-") && !restored.contains("CILIUM"),
        "{restored}"
    );
    assert!(restored.contains("--dport 22 -j ACCEPT"), "{restored}");
    assert!(restored.contains(":INPUT ACCEPT") && restored.ends_with("COMMIT\n"));
    assert!(done.exists(), "{name}: the marker after success");
    let beacons = std::fs::read_to_string(sb.state.join("beacons")).unwrap();
    assert_eq!(beacons, "kubeadm-done\n", "{name}");
    let kube_vip = sb.path("/etc/kubernetes/manifests/kube-vip.yaml");
    assert_eq!(kube_vip.exists(), ctx.node.control_plane, "{name}");
    if ctx.node.control_plane {
        let manifest = std::fs::read_to_string(&kube_vip).unwrap();
        assert!(
            manifest.contains("path: /etc/kubernetes/admin.conf"),
            "{manifest}"
        );
    }
    assert!(
        !sb.path("/etc/kubernetes/super-admin.conf").exists(),
        "{name}: super-admin.conf is removed once kube-vip uses admin.conf"
    );
}

#[test]
fn cluster_sandbox_a_half_done_init_is_reset_and_retried() {
    half_done_node_is_reset_and_retried("cp1");
}

#[test]
fn cluster_sandbox_a_half_done_join_is_reset_and_retried() {
    half_done_node_is_reset_and_retried("cp2");
    half_done_node_is_reset_and_retried("worker1");
}

#[test]
fn cluster_sandbox_init_removes_super_admin_conf_after_the_kube_vip_switch() {
    let (_ctx, sb, script) = bootstrap_sandbox("cp1");
    sb.stub("kubeadm", KUBEADM_DISK_STUB);
    let out = sb.run(&script);
    assert!(out.status.success(), "{}", out_text(&out));
    assert!(!sb.path("/etc/kubernetes/super-admin.conf").exists());
    assert!(sb.path("/etc/kubernetes/admin.conf").exists());
    let manifest =
        std::fs::read_to_string(sb.path("/etc/kubernetes/manifests/kube-vip.yaml")).unwrap();
    assert!(!manifest.contains("super-admin"), "{manifest}");
    assert_eq!(
        std::fs::read_to_string(sb.path("/home/core/.kube/config")).unwrap(),
        "admin\n"
    );
}

/// Every wait of the bootstrap script ends: past its bound, the script
/// beacons `kubeadm-timeout` with what it waited for and fails (the unit
/// retries), without a marker.
#[test]
fn cluster_sandbox_bootstrap_waits_are_bounded_and_beaconed() {
    // The API never answers through the endpoint.
    let (_ctx, sb, script) = bootstrap_sandbox("worker1");
    sb.stub("kubeadm", KUBEADM_DISK_STUB);
    sb.stub("curl", "exit 7");
    let bound = "deadline=$((SECONDS + 1800))";
    let at = script.rfind(bound).unwrap();
    let script = format!(
        "{}{bound}; SECONDS=1800{}",
        &script[..at],
        &script[at + bound.len()..]
    );
    let out = sb.run(&script);
    assert!(!out.status.success(), "{}", out_text(&out));
    let beacons = std::fs::read_to_string(sb.state.join("beacons")).unwrap();
    assert_eq!(beacons, "kubeadm-timeout api-server\n");
    assert!(!sb.calls().contains("kubeadm join"), "{}", sb.calls());
    assert!(!sb.path("/var/lib/pxebuild/kubeadm-done").exists());

    // The kubernetes sysext never merges: no kubeadm on PATH.
    let (_ctx, sb, script) = bootstrap_sandbox("worker1");
    let script = script
        .replacen(bound, &format!("{bound}; SECONDS=1800"), 1)
        .replace("command -v kubeadm", "command -v kubeadm-not-merged");
    let out = sb.run(&script);
    assert!(!out.status.success(), "{}", out_text(&out));
    let beacons = std::fs::read_to_string(sb.state.join("beacons")).unwrap();
    assert_eq!(beacons, "kubeadm-timeout kubernetes-sysext\n");
}

#[test]
fn cluster_sandbox_ca_set_is_root_only_on_control_planes() {
    let (_dir, site) = example_site();
    for (ctx, bu) in render_all(&site) {
        let ign = node_ignition(&ctx, &bu);
        let files = ign["storage"]["files"].as_array().unwrap();
        let pki: Vec<_> = files
            .iter()
            .filter(|f| {
                f["path"]
                    .as_str()
                    .unwrap()
                    .starts_with("/etc/pxebuild/pki/")
            })
            .collect();
        if ctx.node.worker {
            assert!(pki.is_empty(), "{}", ctx.node.name);
            continue;
        }
        assert_eq!(pki.len(), CA_FILES.len(), "{}", ctx.node.name);
        for f in pki {
            assert_eq!(f["mode"], 0o600, "{f}");
            assert!(f["user"].is_null() || f["user"]["name"] == "root", "{f}");
        }
        let dirs = ign["storage"]["directories"].as_array().unwrap();
        let dir = dirs
            .iter()
            .find(|d| d["path"] == "/etc/pxebuild/pki")
            .unwrap();
        assert_eq!(dir["mode"], 0o700);
    }
}

/// A curl stub: `/readyz` answers; each etcd member list call prints the next
/// of `lists` (the last one repeats) after checking that the client
/// certificate chains to the CA given with --cacert.
fn curl_stub(lists: &[&str]) -> String {
    let mut text = String::from(
        r#"case "$*" in
  *member/list*)
    while [ $# -gt 0 ]; do
      case "$1" in --cacert) ca=$2 ;; --cert) cert=$2 ;; esac
      shift
    done
    openssl verify -CAfile "$ca" "$cert" >> "$STATE/verify" 2>&1 || exit 60
    n=$(( $(cat "$STATE/lists" 2>/dev/null || echo 0) + 1 ))
    echo "$n" > "$STATE/lists"
    case "$n" in
"#,
    );
    for (i, list) in lists.iter().enumerate() {
        let pattern = if i + 1 == lists.len() {
            "*".to_string()
        } else {
            (i + 1).to_string()
        };
        text.push_str(&format!("      {pattern}) echo '{list}' ;;\n"));
    }
    text.push_str("    esac\n    ;;\nesac\nexit 0\n");
    text
}

#[test]
fn cluster_sandbox_third_control_plane_waits_for_its_etcd_turn() {
    let (_dir, site) = example_site();
    let (ctx, bu) = render_all(&site)
        .into_iter()
        .find(|(c, _)| c.node.name == "cp3")
        .unwrap();
    assert_eq!(ctx.node.control_plane_index, 2);
    let ign = node_ignition(&ctx, &bu);
    let sb = Sandbox::new();
    sb.apply_ignition_files(&ign);
    sb.stub(
        "kubeadm",
        "echo admin > \"$ROOT/etc/kubernetes/admin.conf\"; exit 0",
    );
    sb.stub("sleep", "exit 0");
    let cp1 = r#"{"ID":"1","name":"cp1","clientURLs":["https://10.20.0.11:2379"]}"#;
    let cp2_pending = r#"{"ID":"2","name":"","peerURLs":["https://10.20.0.12:2380"],"clientURLs":[],"isLearner":true}"#;
    let cp2_learner =
        r#"{"ID":"2","name":"cp2","clientURLs":["https://10.20.0.12:2379"],"isLearner":true}"#;
    let cp2 = r#"{"ID":"2","name":"cp2","clientURLs":["https://10.20.0.12:2379"]}"#;
    let lists = [
        format!(r#"{{"members":[{cp1}]}}"#),
        format!(r#"{{"members":[{cp1},{cp2_pending}]}}"#),
        format!(r#"{{"members":[{cp1},{cp2_learner}]}}"#),
        format!(r#"{{"members":[{cp1},{cp2}]}}"#),
    ];
    let lists: Vec<&str> = lists.iter().map(String::as_str).collect();
    sb.stub("curl", &curl_stub(&lists));
    write_exec(&sb.path("/opt/pxebuild/bin/beacon"), "#!/bin/sh\nexit 0\n");
    let out = sb.run(&sb.rewrite(&ctx.files.bootstrap_script));
    assert!(out.status.success(), "{}", out_text(&out));
    let asked = std::fs::read_to_string(sb.state.join("lists")).unwrap();
    assert_eq!(
        asked.trim(),
        "4",
        "joined only once cp2 had started\n{}",
        out_text(&out)
    );
    let calls = sb.calls();
    let last_list = calls.rfind("member/list").unwrap();
    let join = calls.find("kubeadm join").unwrap();
    assert!(last_list < join, "{calls}");
    let verify = std::fs::read_to_string(sb.state.join("verify")).unwrap();
    assert!(
        verify.contains(": OK"),
        "client certificate from the etcd CA: {verify}"
    );
}

#[test]
fn cluster_sandbox_join_turn_is_best_effort_when_etcd_never_answers() {
    let (_dir, site) = example_site();
    let (ctx, bu) = render_all(&site)
        .into_iter()
        .find(|(c, _)| c.node.name == "cp2")
        .unwrap();
    let ign = node_ignition(&ctx, &bu);
    let sb = Sandbox::new();
    sb.apply_ignition_files(&ign);
    sb.stub("kubeadm", "exit 0");
    sb.stub("sleep", "exit 0");
    sb.stub(
        "curl",
        "case \"$*\" in *member/list*) exit 7 ;; esac\nexit 0",
    );
    write_exec(
        &sb.path("/opt/pxebuild/bin/beacon"),
        &format!("#!/bin/sh\necho \"$*\" >> {:?}\n", sb.state.join("beacons")),
    );
    // The 20-minute bound has passed as soon as the wait starts.
    let script = sb.rewrite(&ctx.files.bootstrap_script).replace(
        "deadline=$((SECONDS + 1200))",
        "deadline=$((SECONDS + 1200)); SECONDS=1200",
    );
    let out = sb.run(&script);
    assert!(out.status.success(), "{}", out_text(&out));
    assert!(sb.calls().contains("kubeadm join"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("joining anyway"));
    let beacons = std::fs::read_to_string(sb.state.join("beacons")).unwrap();
    assert_eq!(beacons, "kubeadm-timeout etcd-turn\nkubeadm-done\n");
}

/// Stubs for the install script: a disk whose partitions live under
/// $STATE/parts (none: blank disk), `mount` copying a partition's files in
/// and `umount` back, a `flatcar-install` that repartitions, and an
/// `efibootmgr` keeping BootOrder/BootNext/entries in $STATE/efi.
fn install_stubs(sb: &Sandbox) {
    sb.stub(
        "lsblk",
        r#"parts() { [ -d "$STATE/parts" ] && ls "$STATE/parts"; }
case "$*" in
  *PARTUUID*) echo 6c0ffee0-0000-4000-8000-000000000002 ;;
  *NAME,SIZE,TYPE,MODEL*) printf 'vda 20G disk QEMU HARDDISK\nsr0 1024M rom QEMU DVD-ROM\nvdb 1T disk \n' ;;
  "-dn "*) if [ -e "$STATE/no-disk" ]; then echo "lsblk: $2: not a block device" >&2; exit 32; fi
           echo "vda 253:0 0 20G 0 disk" ;;
  *NAME,FSTYPE*) echo /dev/vda; for p in $(parts); do echo "/dev/$p ext4"; done ;;
  "-lnpo NAME "*) echo /dev/vda; for p in $(parts); do echo "/dev/$p"; done ;;
  *) for p in $(parts); do
       case "$p" in vda2) echo "/dev/vda2 EFI-SYSTEM" ;; vda6) echo "/dev/vda6 OEM" ;; esac
     done ;;
esac
exit 0"#,
    );
    // Lists signatures while the disk has partitions; -a records and, on
    // the disk itself, blanks it.
    sb.stub(
        "wipefs",
        r#"case "$1" in
  -a) echo "$2" >> "$STATE/wiped"
      case "$2" in /dev/disk/*) rm -rf "$STATE/parts" ;; esac ;;
  *) [ -n "$(ls "$STATE/parts" 2>/dev/null)" ] && printf 'PMBR\ngpt\n' ;;
esac
exit 0"#,
    );
    sb.stub(
        "udevadm",
        r#"case "$*" in
  info*vda*) echo "disk/by-id/virtio-spare disk/by-path/pci-0000:00:05.0" ;;
  info*vdb*) echo "disk/by-id/virtio-big disk/by-id/wwn-0x5000c500a1b2c3d4" ;;
esac
exit 0"#,
    );
    sb.stub(
        "mount",
        r#"eval "part=\${$(($# - 1))}"; eval "mnt=\${$#}"
src="$STATE/parts/$(basename "$part")"
[ -d "$src" ] || exit 32
cp -a "$src/." "$mnt/"
echo "$part" > "$mnt/.mounted-from""#,
    );
    sb.stub(
        "umount",
        r#"part=$(cat "$1/.mounted-from"); rm "$1/.mounted-from"
dest="$STATE/parts/$(basename "$part")"
rm -rf "$dest"; mkdir -p "$dest"; cp -a "$1/." "$dest/"
find "$1" -mindepth 1 -delete"#,
    );
    sb.stub(
        "flatcar-install",
        r#"rm -rf "$STATE/parts"; mkdir -p "$STATE/parts/vda2" "$STATE/parts/vda6""#,
    );
    for name in ["sleep", "systemctl"] {
        sb.stub(name, "exit 0");
    }
    // The boot server: serves $STATE/node.ign (what `run_install` rendered
    // the script for) at the node config's URL; beacons answer nothing.
    sb.stub(
        "curl",
        r#"out=; url=
while [ $# -gt 0 ]; do
  case "$1" in -o) out=$2; shift ;; http*) url=$1 ;; esac
  shift
done
case "$url" in */node.ign) cat "$STATE/node.ign" > "$out" ;; esac
exit 0"#,
    );
    sb.stub(
        "efibootmgr",
        r#"efi="$STATE/efi"; mkdir -p "$efi"
case "$*" in
  *-c*) echo "Boot0002* Flatcar HD(2,GPT,6c0ffee0-0000-4000-8000-000000000002)" >> "$efi/entries"
        echo "0002,$(cat "$efi/order")" > "$efi/order" ;;
  *-o*) for a; do last=$a; done; echo "$last" > "$efi/order" ;;
  *-O*) rm -f "$efi/order" ;;
  *-n*) for a; do last=$a; done; echo "$last" > "$efi/next" ;;
  *) [ -f "$efi/order" ] && echo "BootOrder: $(cat "$efi/order")"
     cat "$efi/entries" ;;
esac
exit 0"#,
    );
}

/// The node config `run_install` renders the install script for.
const NODE_CONFIG: &[u8] = br#"{"ignition":{"version":"3.3.0"}}"#;

/// The rendered install script of worker1, run against a disk in `disk`
/// state ("blank", or the node name in the OEM marker) with or without UEFI.
fn run_install(disk: &str, uefi: bool) -> (Sandbox, Output) {
    let (sb, out) = run_install_with(disk, uefi, |_| {});
    assert!(out.status.success(), "{}", out_text(&out));
    (sb, out)
}

/// As `run_install`, with `adjust` changing the stubs before the run.
pub(crate) fn run_install_with(
    disk: &str,
    uefi: bool,
    adjust: impl Fn(&Sandbox),
) -> (Sandbox, Output) {
    run_install_on(example_site(), disk, uefi, adjust)
}

/// As `run_install_with`, for worker1 of `site`. `disk` is "blank",
/// "missing", "foreign" (a partition of another system, no marker), or the
/// node name in the OEM marker.
fn run_install_on(
    (_dir, site): (tempfile::TempDir, pxebuild::site::Site),
    disk: &str,
    uefi: bool,
    adjust: impl Fn(&Sandbox),
) -> (Sandbox, Output) {
    let templates = pxebuild::render::templates::Templates::load(&site.templates_dir()).unwrap();
    let (mut ctx, _) = render_all(&site).remove(3);
    pxebuild::render::node::render_install(&templates, &mut ctx, NODE_CONFIG).unwrap();
    let sb = Sandbox::new();
    install_stubs(&sb);
    std::fs::write(sb.state.join("node.ign"), NODE_CONFIG).unwrap();
    std::fs::create_dir_all(sb.path("/opt/pxebuild")).unwrap();
    match disk {
        "blank" => {}
        "missing" => std::fs::write(sb.state.join("no-disk"), "").unwrap(),
        "foreign" => std::fs::create_dir_all(sb.state.join("parts/vda1")).unwrap(),
        node => {
            let oem = sb.state.join("parts/vda6");
            std::fs::create_dir_all(&oem).unwrap();
            std::fs::create_dir_all(sb.state.join("parts/vda2")).unwrap();
            std::fs::write(oem.join("pxebuild-node"), format!("pxebuild-node={node}\n")).unwrap();
        }
    }
    if uefi {
        std::fs::create_dir_all(sb.path("/sys/firmware/efi")).unwrap();
        let efi = sb.state.join("efi");
        std::fs::create_dir_all(&efi).unwrap();
        std::fs::write(efi.join("order"), "0000,0001\n").unwrap();
        std::fs::write(
            efi.join("entries"),
            "Boot0000* UEFI PXEv4\nBoot0001* UEFI Shell\n",
        )
        .unwrap();
    }
    adjust(&sb);
    let out = sb.run(&sb.rewrite(ctx.files.install_script.as_deref().unwrap()));
    (sb, out)
}

fn marker(sb: &Sandbox) -> String {
    std::fs::read_to_string(sb.state.join("parts/vda6/pxebuild-node")).unwrap_or_default()
}

#[test]
fn cluster_sandbox_install_guard_skips_a_disk_with_this_nodes_marker() {
    let (sb, _) = run_install("worker1", false);
    let calls = sb.calls();
    assert!(!calls.contains("flatcar-install"), "{calls}");
    assert!(calls.contains("/beacon/worker1/install-skipped"), "{calls}");
    // BIOS, booted from the network although installed: power off, say why.
    assert!(
        calls.contains("/beacon/worker1/boot-order-network-first"),
        "{calls}"
    );
    assert!(calls.contains("systemctl poweroff"), "{calls}");
    assert!(!calls.contains("systemctl reboot"), "{calls}");

    let (sb, _) = run_install("worker1", true);
    let calls = sb.calls();
    assert!(!calls.contains("flatcar-install"), "{calls}");
    assert!(
        calls.contains("systemctl reboot"),
        "UEFI boots the disk next: {calls}"
    );
    assert_boot_next_with_order_kept(&sb, "BootOrder is left as it was");
}

/// The stub firmware's BootNext is the new disk entry and BootOrder is unchanged.
fn assert_boot_next_with_order_kept(sb: &Sandbox, why: &str) {
    let efi = sb.state.join("efi");
    assert_eq!(
        std::fs::read_to_string(efi.join("next")).unwrap().trim(),
        "0002"
    );
    assert_eq!(
        std::fs::read_to_string(efi.join("order")).unwrap().trim(),
        "0000,0001",
        "{why}"
    );
}

#[test]
fn cluster_sandbox_install_guard_installs_a_blank_or_foreign_disk() {
    for disk in ["blank", "worker2"] {
        let (sb, _) = run_install(disk, false);
        let calls = sb.calls();
        assert!(
            calls.contains("flatcar-install -d /dev/disk/by-id/virtio-worker1-root"),
            "{disk}: {calls}"
        );
        assert_eq!(marker(&sb).trim(), "pxebuild-node=worker1", "{disk}");
        let done = calls.find("/beacon/worker1/install-done").unwrap();
        let reboot = calls.find("systemctl reboot").unwrap();
        assert!(done < reboot, "{disk}: {calls}");
        assert!(!calls.contains("poweroff"), "{disk}: {calls}");
    }
}

#[test]
fn cluster_sandbox_a_failed_install_is_reported_and_left_to_retry() {
    let (sb, out) = run_install_with("blank", false, |sb| {
        sb.stub("flatcar-install", "echo 'no route to host' >&2; exit 1");
    });
    assert!(!out.status.success(), "{}", out_text(&out));
    let calls = sb.calls();
    assert!(calls.contains("/beacon/worker1/install-started"), "{calls}");
    assert!(calls.contains("/beacon/worker1/install-failed"), "{calls}");
    assert!(!calls.contains("install-done"), "{calls}");
    assert!(!calls.contains("systemctl reboot"), "{calls}");
    assert_eq!(marker(&sb), "", "no marker on a failed install");
    // A successful run sends no failure beacon.
    let (sb, _) = run_install("blank", false);
    assert!(!sb.calls().contains("install-failed"), "{}", sb.calls());
}

#[test]
fn cluster_sandbox_the_node_config_is_fetched_only_to_install_and_checked() {
    let installed = |sb: &Sandbox| std::fs::read(sb.path("/opt/pxebuild/node.ign")).ok();
    // Installing: fetched, and exactly the config the script was built for.
    let (sb, _) = run_install("blank", false);
    let calls = sb.calls();
    let fetch = calls.find("/node.ign").expect("fetched");
    assert!(fetch < calls.find("flatcar-install").unwrap(), "{calls}");
    assert_eq!(installed(&sb).as_deref(), Some(NODE_CONFIG));
    // Installed already: the node config (control planes: the cluster's keys)
    // never crosses the network.
    let (sb, _) = run_install("worker1", true);
    assert!(!sb.calls().contains("node.ign"), "{}", sb.calls());
    // A different file at the URL (a rebuilt tree, a wrong server) is refused.
    let (sb, out) = run_install_with("blank", false, |sb| {
        std::fs::write(sb.state.join("node.ign"), b"{}").unwrap();
    });
    assert!(!out.status.success(), "{}", out_text(&out));
    let calls = sb.calls();
    assert!(!calls.contains("flatcar-install"), "{calls}");
    assert!(calls.contains("/beacon/worker1/install-failed"), "{calls}");
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("is not the node config this install was built with"),
        "{}",
        out_text(&out)
    );
    assert_eq!(installed(&sb), None, "the wrong file is not kept");
}

#[test]
fn cluster_sandbox_uefi_install_sets_boot_next_and_keeps_boot_order() {
    let (sb, _) = run_install("blank", true);
    let calls = sb.calls();
    assert!(calls.contains("efibootmgr -q -c"), "{calls}");
    assert_boot_next_with_order_kept(
        &sb,
        "efibootmgr -c put the new entry first; the script restored the order",
    );
}

/// The beacon (milestone and detail) in the install's calls, if sent.
fn beacon_detail(calls: &str, milestone: &str) -> Option<String> {
    let at = format!("/beacon/worker1/{milestone}?detail=");
    let start = calls.find(&at)? + at.len();
    let rest = &calls[start..];
    Some(rest[..rest.find(['\n', ' ']).unwrap_or(rest.len())].to_string())
}

#[test]
fn cluster_sandbox_a_missing_install_disk_beacons_the_machines_disks_and_stops() {
    let (sb, out) = run_install_with("missing", false, |_| {});
    assert_eq!(out.status.code(), Some(78), "{}", out_text(&out));
    let calls = sb.calls();
    assert_eq!(
        beacon_detail(&calls, "install-disk-missing").as_deref(),
        Some("vda=20G,QEMU_HARDDISK,virtio-spare;vdb=1T,,virtio-big+wwn-0x5000c500a1b2c3d4;"),
        "{calls}"
    );
    for never in [
        "flatcar-install",
        "node.ign",
        "install-failed",
        "install-started",
    ] {
        assert!(!calls.contains(never), "{never}: {calls}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "worker1's install disk /dev/disk/by-id/virtio-worker1-root is not on this machine"
        ) && stderr.contains("  vdb=1T,,virtio-big+wwn-0x5000c500a1b2c3d4\n")
            && stderr.contains("Set `disk` in worker1's [[node]] table of site.toml"),
        "{stderr}"
    );
    // The wait was bounded: twelve looks, five seconds apart.
    assert_eq!(calls.matches("lsblk -dn /dev/disk").count(), 12, "{calls}");
}

#[test]
fn cluster_sandbox_a_disk_holding_data_is_refused_naming_the_key_to_set() {
    let (sb, out) = run_install_with("foreign", false, |_| {});
    assert_eq!(out.status.code(), Some(78), "{}", out_text(&out));
    let calls = sb.calls();
    assert_eq!(
        beacon_detail(&calls, "install-disk-not-empty").as_deref(),
        Some("signatures=PMBR,gpt;partitions=vda1:ext4"),
        "{calls}"
    );
    for never in [
        "flatcar-install",
        "node.ign",
        "install-failed",
        "install-started",
        "wipefs -a",
    ] {
        assert!(!calls.contains(never), "{never}: {calls}");
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("set `wipe = true` in worker1's [[node]] table of site.toml (or `wipe = true` under [install] for every node)"),
        "{stderr}"
    );
    // A disk whose signatures cannot be read is not taken for blank.
    let (sb, out) = run_install_with("blank", false, |sb| sb.stub("wipefs", "exit 1"));
    assert_eq!(out.status.code(), Some(78), "{}", out_text(&out));
    assert_eq!(
        beacon_detail(&sb.calls(), "install-disk-not-empty").as_deref(),
        Some("signatures=unreadable;partitions=")
    );
}

#[test]
fn cluster_sandbox_wipe_true_installs_over_a_disk_holding_data() {
    let wipe = (
        "firmware = \"uefi\"\nlabels",
        "firmware = \"uefi\"\nwipe = true\nlabels",
    );
    let site_wide = ("[[node]]", "[install]\nwipe = true\n\n[[node]]");
    for edit in [wipe, site_wide] {
        let (sb, out) = run_install_on(edited_site(&[edit]), "foreign", false, |_| {});
        assert!(out.status.success(), "{}", out_text(&out));
        let calls = sb.calls();
        let wiped = std::fs::read_to_string(sb.state.join("wiped")).unwrap();
        assert_eq!(
            wiped, "/dev/vda1\n/dev/disk/by-id/virtio-worker1-root\n",
            "partitions, then the disk"
        );
        assert!(
            calls.find("wipefs -a").unwrap() < calls.find("flatcar-install").unwrap(),
            "{calls}"
        );
        assert_eq!(marker(&sb).trim(), "pxebuild-node=worker1");
    }
}

/// A flatcar-install that failed half-way left partitions of its own: the
/// retry of the same boot installs over them, wipe or not.
#[test]
fn cluster_sandbox_a_retry_installs_over_its_own_failed_attempt() {
    let (sb, out) = run_install_with("blank", false, |sb| {
        sb.stub(
            "flatcar-install",
            r#"mkdir -p "$STATE/parts/vda1" "$STATE/parts/vda9"; exit 1"#,
        );
    });
    assert!(!out.status.success(), "{}", out_text(&out));
    assert!(sb.calls().contains("/beacon/worker1/install-failed"));
    install_stubs(&sb);
    let script_path = sb.state.join("script.sh");
    let again = Command::new("bash")
        .arg(&script_path)
        .env(
            "PATH",
            format!("{}:{}", sb.stubs.display(), std::env::var("PATH").unwrap()),
        )
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", out_text(&again));
    assert!(
        !sb.calls().contains("install-disk-not-empty"),
        "{}",
        sb.calls()
    );
    assert_eq!(marker(&sb).trim(), "pxebuild-node=worker1");
}
