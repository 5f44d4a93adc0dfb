//! `pxebuild lab` end to end: real QEMU under TCG, dnsmasq (or ISC dhcpd, or
//! Kea) as the external DHCP server on a host of its own (its server
//! identifier is never next-server), once behind a real DHCP relay,
//! `pxebuild serve` or nginx + dnsmasq TFTP as the boot server, and the
//! stand-in OS (Debian kernel, Debian's real `ignition`, leasing with Debian's
//! systemd-networkd as Flatcar's initramfs does) as the PXE image.
//!
//! Lab tests run one at a time (a lock): the CI machine has two cores and each
//! VM emulates its CPU. Each test uses its own state directory, hence its own
//! network namespace, and the lab removes it again.
use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, MutexGuard, OnceLock};

use pxebuild::digest;
use pxebuild::lab::state::{LabState, Process, StateDir};
use pxebuild::manifest::{AccessEntry, FileEntry, Manifest, NodeEntry};
use serde_json::Value;

use crate::cluster_common::copy_tree;
use crate::fetch::server::MirrorServer;

const SERVER: &str = "10.77.0.1";

pub(crate) fn lab_lock() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poison| poison.into_inner())
}

pub(crate) fn pxebuild() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pxebuild"))
}

pub(crate) fn text(out: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Copies this repository's templates/ and payload/ beside `dir`'s site.toml
/// and builds it from the fixture mirror at `mirror_url`, signed by `key`.
pub(crate) fn build_with_repo_templates(dir: &Path, mirror_url: &str, key: &Path) {
    for sub in ["templates", "payload"] {
        copy_tree(
            &Path::new(env!("CARGO_MANIFEST_DIR")).join(sub),
            &dir.join(sub),
        );
    }
    let build = pxebuild()
        .current_dir(dir)
        .args(["build"])
        .env("PXEBUILD_CACHE", dir.join("cache"))
        .env("PXEBUILD_MIRROR", mirror_url)
        .env("PXEBUILD_SIGNING_KEY", key)
        .output()
        .unwrap();
    assert!(build.status.success(), "pxebuild build:\n{}", text(&build));
}

/// The stand-in OS, built once per target directory (the script caches by inputs).
fn standin() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build_standin("build.sh", "standin-os"))
}

/// Runs `tests/fixtures/standin-os/<script> <target tmp>/<out>` and returns
/// the output directory; a failed build fails the test with its output.
pub(crate) fn build_standin(script: &str, out: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(out);
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/standin-os")
        .join(script);
    let run = Command::new(&path)
        .arg(&dir)
        .output()
        .unwrap_or_else(|err| panic!("running {}: {err}", path.display()));
    assert!(run.status.success(), "{script} failed:\n{}", text(&run));
    dir
}

/// The stand-in OS padded to the pinned Flatcar release's PXE file sizes
/// (tests/fixtures/standin-os/pad.sh says where the sizes come from).
fn standin_full_size() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/standin-os/pad.sh");
        let run = Command::new(script)
            .arg(standin())
            .output()
            .expect("running pad.sh");
        assert!(
            run.status.success(),
            "padding the stand-in OS failed:\n{}",
            text(&run)
        );
        standin().join("full")
    })
}

/// Sizes pad.sh gives the full-size kernel and initrd by default.
const FULL_KERNEL_BYTES: u64 = 60_817_408;
const FULL_INITRD_BYTES: u64 = 457_850_580;

/// One node of a hand-made tree.
struct Node {
    name: &'static str,
    mac: &'static str,
    ip: &'static str,
    firmware: &'static str,
}

/// A site file and a dist tree made by hand to the dist contract, so the lab
/// can be proven without the build: syslinux loaders from Debian, per-MAC
/// configs, the stand-in OS as the Flatcar PXE files, one install Ignition
/// per node, the DHCP snippet and a manifest with per-node access entries.
struct HandMade {
    _dir: tempfile::TempDir,
    site: PathBuf,
    dist: PathBuf,
    state: PathBuf,
}

impl HandMade {
    fn new(nodes: &[Node]) -> HandMade {
        let dir = tempfile::tempdir().unwrap();
        let dist = dir.path().join("dist");
        let site = dir.path().join("site.toml");
        fs::write(&site, site_toml(nodes)).unwrap();
        let copies = [
            ("/usr/lib/PXELINUX/lpxelinux.0", "tftp/lpxelinux.0"),
            (
                "/usr/lib/syslinux/modules/bios/ldlinux.c32",
                "tftp/ldlinux.c32",
            ),
            (
                "/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi",
                "tftp/efi64/syslinux.efi",
            ),
            (
                "/usr/lib/syslinux/modules/efi64/ldlinux.e64",
                "tftp/efi64/ldlinux.e64",
            ),
        ];
        for (from, to) in copies {
            put(&dist, to, &fs::read(from).unwrap());
        }
        let flatcar = "http/flatcar/9999.0.0";
        put(
            &dist,
            &format!("{flatcar}/flatcar_production_pxe.vmlinuz"),
            &fs::read(standin().join("vmlinuz")).unwrap(),
        );
        put(
            &dist,
            &format!("{flatcar}/flatcar_production_pxe_image.cpio.gz"),
            &fs::read(standin().join("initrd.cpio.gz")).unwrap(),
        );
        put(
            &dist,
            "tftp/pxelinux.cfg/default",
            b"DEFAULT local\nPROMPT 0\nLABEL local\n  LOCALBOOT 0\n",
        );
        put(
            &dist,
            "tftp/efi64/pxelinux.cfg/default",
            b"DEFAULT local\nPROMPT 0\nLABEL local\n  LOCALBOOT -1\n",
        );
        let mut snippet = String::from(
            "dhcp-match=set:efi64,option:client-arch,7\ndhcp-match=set:efi64,option:client-arch,9\n",
        );
        snippet.push_str(&format!("dhcp-boot=tag:!efi64,lpxelinux.0,,{SERVER}\n"));
        snippet.push_str(&format!(
            "dhcp-boot=tag:efi64,efi64/syslinux.efi,,{SERVER}\n"
        ));
        let mut access = Vec::new();
        for node in nodes {
            let ign = format!("http/ignition/{}-r4nd0m/install.ign", node.name);
            put(&dist, &ign, install_ignition(node).as_bytes());
            let cfg = boot_config(&ign);
            let mac_name = format!("01-{}", node.mac.replace(':', "-"));
            put(
                &dist,
                &format!("tftp/pxelinux.cfg/{mac_name}"),
                cfg.as_bytes(),
            );
            put(
                &dist,
                &format!("tftp/efi64/pxelinux.cfg/{mac_name}"),
                cfg.as_bytes(),
            );
            snippet.push_str(&format!(
                "dhcp-host={},{},{}\n",
                node.mac, node.ip, node.name
            ));
            access.push(AccessEntry {
                path: ign,
                node: node.name.into(),
                ip: node.ip.into(),
            });
        }
        put(&dist, "http/dhcp/dnsmasq.conf", snippet.as_bytes());
        write_manifest(&dist, nodes, access);
        let state = dir.path().join("state");
        HandMade {
            _dir: dir,
            site,
            dist,
            state,
        }
    }

    fn lab(&self, args: &[&str]) -> Output {
        let mut cmd = pxebuild();
        cmd.arg("--site")
            .arg(&self.site)
            .args(["lab", "run", "--accel", "tcg"]);
        cmd.arg("--dist")
            .arg(&self.dist)
            .arg("--state")
            .arg(&self.state);
        cmd.args(args).output().unwrap()
    }

    fn report(&self) -> Value {
        let text = fs::read_to_string(self.state.join("report.json")).expect("report.json");
        serde_json::from_str(&text).unwrap()
    }

    fn ignition_sha512(&self, node: &str) -> String {
        digest::sha512_file(
            &self
                .dist
                .join(format!("http/ignition/{node}-r4nd0m/install.ign")),
        )
        .unwrap()
    }
}

fn put(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

fn site_toml(nodes: &[Node]) -> String {
    let mut s = format!(
        "[network]\nsubnet = \"10.77.0.0/24\"\n[boot_server]\naddress = \"{SERVER}\"\nhttp_port = 8080\ntftp_port = 69\n"
    );
    for n in nodes {
        s.push_str(&format!(
            "[[node]]\nname = \"{}\"\nmac = \"{}\"\nip = \"{}\"\nfirmware = \"{}\"\ndisk = \"/dev/disk/by-id/virtio-{}-root\"\n",
            n.name, n.mac, n.ip, n.firmware, n.name
        ));
    }
    s
}

fn install_args(node: &str) -> String {
    format!(
        "-d /dev/disk/by-id/virtio-{node}-root -b http://{SERVER}:8080/flatcar -i /opt/node.ign"
    )
}

fn install_ignition(node: &Node) -> String {
    let unit = format!(
        "[Unit]\\nDescription=Install Flatcar\\n[Service]\\nType=oneshot\\nExecStart=/usr/bin/flatcar-install {}\\n[Install]\\nWantedBy=multi-user.target\\n",
        install_args(node.name)
    );
    format!(
        r#"{{"ignition":{{"version":"3.3.0"}},"storage":{{"files":[{{"path":"/etc/hostname","mode":420,"overwrite":true,"contents":{{"source":"data:,{}"}}}}]}},"systemd":{{"units":[{{"name":"flatcar-install.service","enabled":true,"contents":"{unit}"}}]}}}}"#,
        node.name
    )
}

fn boot_config(ign: &str) -> String {
    let base = format!("http://{SERVER}:8080/flatcar/9999.0.0");
    let url = format!("http://{SERVER}:8080/{}", ign.trim_start_matches("http/"));
    format!(
        "DEFAULT flatcar\nPROMPT 0\nTIMEOUT 0\nLABEL flatcar\n  LINUX {base}/flatcar_production_pxe.vmlinuz\n  APPEND initrd={base}/flatcar_production_pxe_image.cpio.gz console=ttyS0,115200n8 flatcar.first_boot=1 ignition.config.url={url}\n"
    )
}

fn write_manifest(dist: &Path, nodes: &[Node], access: Vec<AccessEntry>) {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dist)
        .into_iter()
        .filter_map(Result::ok)
    {
        if entry.file_type().is_file() {
            let (sha256, size) = digest::sha256_file(entry.path()).unwrap();
            let path = entry
                .path()
                .strip_prefix(dist)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            files.push(FileEntry { path, size, sha256 });
        }
    }
    files.sort();
    let nodes = nodes
        .iter()
        .map(|n| NodeEntry {
            name: n.name.into(),
            mac: n.mac.into(),
            ip: n.ip.into(),
            role: "worker".into(),
        })
        .collect();
    let manifest = Manifest {
        format: 1,
        inputs: "00".into(),
        files,
        nodes,
        access,
        flatcar: None,
        images: Vec::new(),
    };
    fs::write(dist.join("manifest.json"), manifest.to_json()).unwrap();
}

/// The report entry of one VM.
fn vm<'a>(report: &'a Value, name: &str) -> &'a Value {
    report["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("{name} not in {report}"))
}

fn assert_installed(report: &Value, node: &str, sha512: &str) {
    let v = vm(report, node);
    assert_eq!(v["verdict"]["result"], "pass", "{v}");
    assert_eq!(
        v["marker"]["sha512"], sha512,
        "{node} fetched exactly its own install config"
    );
    assert!(
        v["marker"]["url"]
            .as_str()
            .unwrap()
            .contains(&format!("/ignition/{node}-")),
        "{v}"
    );
    let files: Vec<&str> = v["marker"]["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        files.contains(&"/etc/systemd/system/flatcar-install.service"),
        "{files:?}"
    );
    let quotes = v["quotes"].as_array().unwrap();
    let want = format!("ExecStart=/usr/bin/flatcar-install {}", install_args(node));
    assert!(
        quotes.iter().any(|q| q[1] == want.as_str()),
        "{node}: {quotes:?}"
    );
    for m in ["dhcp", "loader", "kernel", "ignition", "marker"] {
        assert!(v["reached"][m].is_number(), "{node} reached {m}: {v}");
    }
}

/// Positions of `needles` in `log` on lines that mention `who`, which must be in order.
fn assert_in_order(log: &str, who: &str, needles: &[&str]) {
    let lines: Vec<&str> = log.lines().filter(|l| l.contains(who)).collect();
    let mut last = 0;
    for needle in needles {
        let pos = lines
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle} for {who} in:\n{}", lines.join("\n")));
        assert!(
            pos >= last,
            "{needle} out of order for {who}:\n{}",
            lines.join("\n")
        );
        last = pos;
    }
}

/// What `loader` fetches as the initrd of a built tree: syslinux.efi the
/// sixteen parts, in order; the other loaders the whole file.
fn initrd_names(loader: &str) -> Vec<String> {
    if loader == "syslinux.efi" {
        (0..16).map(|i| format!("pxe-initrd/{i:02}")).collect()
    } else {
        vec!["flatcar_production_pxe_image.cpio.gz".to_string()]
    }
}

#[test]
fn lab_boots_a_hand_made_tree_on_nginx_and_dnsmasq_tftp() {
    let _lock = lab_lock();
    let tree = HandMade::new(&[
        Node {
            name: "n1",
            mac: "52:54:00:77:00:01",
            ip: "10.77.0.11",
            firmware: "bios",
        },
        Node {
            name: "n2",
            mac: "52:54:00:77:00:02",
            ip: "10.77.0.12",
            firmware: "bios",
        },
    ]);
    // A node that never reaches its marker fails the run and shows its console.
    fs::remove_file(tree.dist.join("http/ignition/n2-r4nd0m/install.ign")).unwrap();
    let out = tree.lab(&["--server", "nginx", "--stranger", "uefi"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("lab run failed for n2"), "{stderr}");
    assert!(
        stderr.contains("| PXELAB-IGNITION-FAIL fetch stage failed"),
        "serial tail shown: {stderr}"
    );
    let report = tree.report();
    assert_installed(&report, "n1", &tree.ignition_sha512("n1"));
    assert_eq!(
        vm(&report, "stranger")["verdict"]["result"],
        "pass",
        "{report}"
    );
    let http = fs::read_to_string(tree.state.join("server.log")).unwrap();
    assert_in_order(
        &http,
        "10.77.0.11 ",
        &["pxe.vmlinuz", "pxe_image.cpio.gz", "n1-r4nd0m/install.ign"],
    );
    assert!(
        !http.contains("10.77.0.2"),
        "the stranger fetched nothing over HTTP:\n{http}"
    );
    let dhcp = fs::read_to_string(tree.state.join("dnsmasq.log")).unwrap();
    assert_in_order(&dhcp, "10.77.0.11", &["DHCPACK"]);
    assert_external_dhcp(&report, &dhcp, SERVER);
    let tftp = fs::read_to_string(tree.state.join("boot-dnsmasq.log")).unwrap();
    assert_in_order(
        &tftp,
        "10.77.0.11",
        &["lpxelinux.0", "ldlinux.c32", "01-52-54-00-77-00-01"],
    );
    // The unknown MAC read the local-boot default through the EFI loader.
    let stranger_ip = vm(&report, "stranger")["ip"].as_str().unwrap().to_string();
    assert_in_order(
        &tftp,
        &format!("to {stranger_ip}"),
        &["efi64/syslinux.efi", "efi64/pxelinux.cfg/default"],
    );
    assert!(
        !netns_exists(&tree.state),
        "the namespace is gone after the run"
    );
}

#[test]
fn lab_boots_a_hand_made_tree_on_pxebuild_serve() {
    let _lock = lab_lock();
    let tree = HandMade::new(&[
        Node {
            name: "n1",
            mac: "52:54:00:77:00:01",
            ip: "10.77.0.11",
            firmware: "bios",
        },
        Node {
            name: "n2",
            mac: "52:54:00:77:00:02",
            ip: "10.77.0.12",
            firmware: "uefi",
        },
    ]);
    let out = tree.lab(&["--stranger", "bios", "--intruder", "n1"]);
    assert!(out.status.success(), "{}", text(&out));
    let report = tree.report();
    assert_installed(&report, "n1", &tree.ignition_sha512("n1"));
    assert_installed(&report, "n2", &tree.ignition_sha512("n2"));
    assert_eq!(vm(&report, "stranger")["verdict"]["result"], "pass");
    let intruder = vm(&report, "intruder");
    assert_eq!(
        intruder["verdict"]["result"], "pass",
        "n1's config was refused: {intruder}"
    );
    let log = fs::read_to_string(tree.state.join("server.log")).unwrap();
    assert_refused(&log, intruder);
    assert_in_order(
        &log,
        "10.77.0.11",
        &[
            "lpxelinux.0",
            "01-52-54-00-77-00-01",
            "pxe.vmlinuz",
            "pxe_image.cpio.gz",
            "n1-r4nd0m/install.ign",
        ],
    );
    assert_in_order(
        &log,
        "10.77.0.12",
        &[
            "syslinux.efi",
            "01-52-54-00-77-00-02",
            "pxe.vmlinuz",
            "pxe_image.cpio.gz",
            "n2-r4nd0m/install.ign",
        ],
    );
}

/// The DHCP server was a host of its own: its address (server identifier)
/// is not the boot server's, which it named as next-server (dnsmasq's log).
fn assert_external_dhcp(report: &Value, dnsmasq_log: &str, boot_server: &str) {
    let own = report["dhcp_address"].as_str().unwrap();
    assert_ne!(own, boot_server, "{report}");
    assert!(
        dnsmasq_log
            .lines()
            .any(|l| l.contains("server-identifier") && l.contains(own)),
        "server identifier {own} in:\n{dnsmasq_log}"
    );
    assert!(
        dnsmasq_log.contains(&format!("next server: {boot_server}")),
        "{dnsmasq_log}"
    );
}

/// The server logged a refusal of an Ignition config to the intruder's address.
fn assert_refused(log: &str, intruder: &Value) {
    let ip = format!("{}:", intruder["ip"].as_str().unwrap());
    let refused = log
        .lines()
        .any(|l| l.contains(&ip) && l.contains(".ign") && l.contains("refused"));
    assert!(refused, "no refusal for {ip} in:\n{log}");
}

fn netns_exists(state: &Path) -> bool {
    let ns = StateDir::open(state).unwrap().namespace();
    Path::new("/run/netns").join(ns).exists()
}

#[test]
fn lab_down_cleans_up_after_a_crashed_run() {
    let dir = tempfile::tempdir().unwrap();
    let state = StateDir::open(dir.path()).unwrap();
    let ns = state.namespace();
    let added = Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .unwrap();
    assert!(added.success());
    let mut orphan = Command::new("sleep").arg("300").spawn().unwrap();
    let mut record = LabState::new(&ns);
    record.processes.push(Process {
        name: "n1".into(),
        pid: orphan.id(),
        program: "sleep".into(),
    });
    state.save(&record).unwrap();

    let status = pxebuild()
        .args(["lab", "status", "--state"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&status.stdout).contains(&format!("namespace {ns} (present)")),
        "{}",
        text(&status)
    );
    let json = pxebuild()
        .args(["-q", "lab", "status", "--format", "json", "--state"])
        .arg(dir.path())
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["up"], true, "{doc}");
    assert_eq!(doc["namespace"], ns.as_str(), "{doc}");
    assert_eq!(doc["namespace_present"], true, "{doc}");
    assert_eq!(doc["processes"][0]["name"], "n1", "{doc}");
    assert_eq!(doc["processes"][0]["running"], true, "{doc}");
    let down = pxebuild()
        .args(["lab", "down", "--state"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(down.status.success(), "{}", text(&down));
    assert!(
        orphan.wait().unwrap().code().is_none(),
        "the recorded process was stopped"
    );
    assert!(
        !Path::new("/run/netns").join(&ns).exists(),
        "namespace deleted"
    );
    assert!(state.load().unwrap().is_none(), "record forgotten");
    let json = pxebuild()
        .args(["lab", "status", "--format", "json", "--state"])
        .arg(dir.path())
        .output()
        .unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["up"], false, "{doc}");
}

#[test]
fn lab_leaves_a_namespace_it_did_not_create_alone() {
    let dir = tempfile::tempdir().unwrap();
    let ns = StateDir::open(dir.path()).unwrap().namespace();
    assert!(Command::new("ip")
        .args(["netns", "add", &ns])
        .status()
        .unwrap()
        .success());
    let down = pxebuild()
        .args(["lab", "down", "--state"])
        .arg(dir.path())
        .output()
        .unwrap();
    let exists = Path::new("/run/netns").join(&ns).exists();
    let _ = Command::new("ip").args(["netns", "del", &ns]).status();
    assert_eq!(down.status.code(), Some(2), "{}", text(&down));
    assert!(
        String::from_utf8_lossy(&down.stderr).contains("did not create it"),
        "{}",
        text(&down)
    );
    assert!(exists, "the foreign namespace was not touched");
}

#[test]
fn lab_names_missing_tools_with_the_install_command() {
    let tree_dir = tempfile::tempdir().unwrap();
    let dist = tree_dir.path().join("dist");
    fs::create_dir_all(dist.join("http/dhcp")).unwrap();
    fs::write(dist.join("http/dhcp/dnsmasq.conf"), "").unwrap();
    let nodes = [Node {
        name: "n1",
        mac: "52:54:00:77:00:01",
        ip: "10.77.0.11",
        firmware: "uefi",
    }];
    write_manifest(&dist, &nodes, vec![]);
    let site = tree_dir.path().join("site.toml");
    fs::write(&site, site_toml(&nodes)).unwrap();
    let empty = tree_dir.path().join("empty-path");
    fs::create_dir_all(&empty).unwrap();
    let out = pxebuild()
        .arg("--site")
        .arg(&site)
        .args(["lab", "run", "--accel", "tcg", "--state"])
        .arg(tree_dir.path().join("state"))
        .env("PATH", &empty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("qemu-system-x86_64"), "{stderr}");
    assert!(
        stderr.contains("install with: apt-get install -y --no-install-recommends"),
        "{stderr}"
    );
    assert!(stderr.contains("qemu-system-x86"), "{stderr}");
}

// ---------------------------------------------------------------------------
// The end-to-end test of issue 7: a 3-node site built by `pxebuild build` from
// the fixture mirror (the stand-in OS published as the Flatcar PXE files,
// signed with the test key), booted by `pxebuild lab` under TCG.

/// The fixture mirror (tests/fixtures/mirror/generate.sh) with the stand-in
/// OS published as the Flatcar PXE kernel and initrd, signed with the test key.
struct FixtureMirror {
    root: PathBuf,
    /// The public test key.
    key: PathBuf,
    /// SHA-256 of the files the generator prints (Debian's loader packages
    /// and the upstream stand-ins), by path below the mirror root.
    sha256: BTreeMap<String, String>,
}

fn fixture_mirror(out: &Path, os: &Path) -> FixtureMirror {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mirror");
    let run = Command::new("sh")
        .arg(fixtures.join("generate.sh"))
        .arg(out)
        .arg("--kernel")
        .arg(os.join("vmlinuz"))
        .arg("--initrd")
        .arg(os.join("initrd.cpio.gz"))
        .output()
        .expect("running the fixture mirror generator");
    assert!(run.status.success(), "fixture mirror:\n{}", text(&run));
    let sha256 = String::from_utf8_lossy(&run.stdout)
        .lines()
        .filter_map(|l| l.split_once("  "))
        .map(|(sum, path)| (path.to_string(), sum.to_string()))
        .collect();
    FixtureMirror {
        root: out.to_path_buf(),
        key: fixtures.join("test-key.pub.asc"),
        sha256,
    }
}

/// The repository's example site cut to three control planes: cp1 (BIOS),
/// cp2 (UEFI), cp3 (BIOS); with `ipxe`, iPXE is among the loaders. The site
/// pins no loader: the build fetches Debian's packages from the mirror.
fn three_node_site(ipxe: bool) -> String {
    let example =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("site.toml")).unwrap();
    let head = &example[..example.find("[[node]]").expect("example site has nodes")];
    let mut site = head.to_string();
    if ipxe {
        let loaders = "loaders = [\"bios\", \"uefi\"]";
        assert!(site.contains(loaders), "example site names its loaders");
        site = site.replacen(loaders, "loaders = [\"bios\", \"uefi\", \"ipxe\"]", 1);
    }
    for (i, firmware) in ["bios", "uefi", "bios"].iter().enumerate() {
        let n = i + 1;
        site.push_str(&format!(
            "[[node]]\nname = \"cp{n}\"\nmac = \"52:54:00:20:00:1{n}\"\nip = \"10.20.0.1{n}\"\nrole = \"control-plane\"\ndisk = \"/dev/disk/by-id/virtio-cp{n}-root\"\nfirmware = \"{firmware}\"\n\n"
        ));
    }
    site
}

/// The install Ignition of `node` in dist (the access entry naming it).
fn install_ignition_of(dist: &Path, node: &str) -> (String, String) {
    let manifest = Manifest::load(dist).unwrap();
    let entry = manifest
        .access
        .iter()
        .find(|a| a.node == node && a.path.ends_with("/install.ign"))
        .unwrap_or_else(|| panic!("no install.ign access entry for {node}"));
    let sha512 = digest::sha512_file(&dist.join(&entry.path)).unwrap();
    (entry.path.trim_start_matches("http/").to_string(), sha512)
}

/// Each node's install script/unit, as quoted by the stand-in, names the node's
/// disk and installs from the boot server.
fn assert_install_arguments(report: &Value, node: &str) {
    assert_install_arguments_from(report, node, "10.20.0.2");
}

fn assert_install_arguments_from(report: &Value, node: &str, boot_server: &str) {
    let quotes: Vec<String> = vm(report, node)["quotes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q[1].as_str().unwrap().to_string())
        .collect();
    let all = quotes.join("\n");
    assert!(
        quotes
            .iter()
            .any(|q| q.contains("flatcar-install") && q.contains("-d")),
        "{node}: {all}"
    );
    assert!(
        all.contains(&format!("/dev/disk/by-id/virtio-{node}-root")),
        "{node} installs to its disk: {all}"
    );
    assert!(
        all.contains(&format!("http://{boot_server}:8080/")),
        "{node} installs from the boot server: {all}"
    );
}

/// The three-node site built from the fixture mirror with the stand-in OS,
/// in a fresh directory (site.toml, templates/, payload/, secrets/, dist/).
fn built_three_node_site(ipxe: bool) -> tempfile::TempDir {
    built_site_with_boot_server(ipxe, "10.20.0.2")
}

/// The same site with its boot server at `boot_server` (outside
/// `network.subnet` for the relay case).
fn built_site_with_boot_server(ipxe: bool, boot_server: &str) -> tempfile::TempDir {
    built_site_from(ipxe, boot_server, standin())
}

/// The same site with `os` (a directory with `vmlinuz` and
/// `initrd.cpio.gz`) published as the Flatcar PXE files.
fn built_site_from(ipxe: bool, boot_server: &str, os: &Path) -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    let mirror = fixture_mirror(&work.path().join("mirror"), os);
    let server = MirrorServer::start(&mirror.root);
    let site = work.path().join("site.toml");
    let site_text = three_node_site(ipxe);
    let example_server = "address = \"10.20.0.2\"";
    assert!(
        site_text.contains(example_server),
        "example site's boot server"
    );
    let site_text = site_text.replacen(example_server, &format!("address = \"{boot_server}\""), 1);
    fs::write(&site, site_text).unwrap();
    build_with_repo_templates(work.path(), &server.url(), &mirror.key);
    // The loaders the lab boots are Debian's .deb files as the mirror serves them.
    for deb in mirror.sha256.keys().filter(|p| p.ends_with(".deb")) {
        let wanted = ipxe || !deb.contains("/ipxe_");
        assert_eq!(
            server.gets_of(&format!("/{deb}")).len(),
            usize::from(wanted),
            "{deb}"
        );
    }
    work
}

#[test]
fn lab_e2e_three_node_site_built_from_the_fixture_mirror() {
    let _lock = lab_lock();
    let work = built_three_node_site(false);
    let dist = work.path().join("dist");

    // pxebuild serve: every node, an unknown MAC, and an intruder asking for cp2's config.
    let state = work.path().join("state-serve");
    let report = lab_run_ok(
        work.path(),
        &["--stranger", "bios", "--intruder", "cp2"],
        &state,
    );
    let log = fs::read_to_string(state.join("server.log")).unwrap();
    for (node, ip, loader) in [
        ("cp1", "10.20.0.11", "lpxelinux.0"),
        ("cp2", "10.20.0.12", "syslinux.efi"),
        ("cp3", "10.20.0.13", "lpxelinux.0"),
    ] {
        let (path, sha512) = install_ignition_of(&dist, node);
        let v = vm(&report, node);
        assert_eq!(v["verdict"]["result"], "pass", "{v}");
        assert_eq!(
            v["marker"]["sha512"],
            sha512.as_str(),
            "{node} fetched exactly its own install config"
        );
        assert!(v["marker"]["url"].as_str().unwrap().ends_with(&path), "{v}");
        assert_install_arguments(&report, node);
        let mac = format!("01-52-54-00-20-00-1{}", &node[2..]);
        let initrd = initrd_names(loader);
        let mut wanted = vec![loader, &mac, "flatcar_production_pxe.vmlinuz"];
        wanted.extend(initrd.iter().map(String::as_str));
        wanted.push(&path);
        assert_in_order(&log, ip, &wanted);
    }
    assert_eq!(vm(&report, "cp2")["firmware"], "uefi");
    assert_eq!(vm(&report, "cp1")["firmware"], "bios");
    let stranger = vm(&report, "stranger");
    assert_eq!(
        stranger["verdict"]["result"], "pass",
        "unknown MAC gets the local-boot default: {stranger}"
    );
    assert!(
        !log.lines()
            .any(|l| l.contains(stranger["ip"].as_str().unwrap()) && l.contains(".ign")),
        "{log}"
    );
    let intruder = vm(&report, "intruder");
    assert_eq!(
        intruder["verdict"]["result"], "pass",
        "cp2's config refused to another IP: {intruder}"
    );
    assert_refused(&log, intruder);
    let dhcp = fs::read_to_string(state.join("dnsmasq.log")).unwrap();
    assert_external_dhcp(&report, &dhcp, "10.20.0.2");

    // Same tree, other servers: nginx for HTTP, dnsmasq for TFTP (the rsync case).
    let state = work.path().join("state-nginx");
    let report = lab_run_ok(
        work.path(),
        &["--server", "nginx", "--nodes", "cp1"],
        &state,
    );
    let (_, sha512) = install_ignition_of(&dist, "cp1");
    assert_eq!(vm(&report, "cp1")["marker"]["sha512"], sha512.as_str());
    assert_install_arguments(&report, "cp1");

    // The tree copied elsewhere and served by nginx + tftpd-hpa: the UEFI node
    // reads its loader and boot config from tftpd-hpa.
    let copied = work.path().join("copied-dist");
    copy_tree(&dist, &copied);
    let state = work.path().join("state-tftpd");
    let dist_arg = copied.to_string_lossy().into_owned();
    let report = lab_run_ok(
        work.path(),
        &[
            "--server",
            "nginx-tftpd",
            "--nodes",
            "cp2",
            "--dist",
            &dist_arg,
        ],
        &state,
    );
    assert_eq!(report["server"], "nginx-tftpd", "{report}");
    let (path, sha512) = install_ignition_of(&copied, "cp2");
    let cp2 = vm(&report, "cp2");
    assert_eq!(cp2["verdict"]["result"], "pass", "{cp2}");
    assert_eq!(cp2["marker"]["sha512"], sha512.as_str(), "{cp2}");
    assert_install_arguments(&report, "cp2");
    let initrd = initrd_names("syslinux.efi");
    let mut wanted = vec!["flatcar_production_pxe.vmlinuz"];
    wanted.extend(initrd.iter().map(String::as_str));
    wanted.push(&path);
    assert_in_order(
        &fs::read_to_string(state.join("server.log")).unwrap(),
        "10.20.0.12 ",
        &wanted,
    );
    // dnsmasq handed out the UEFI loader's name but served no TFTP itself.
    let dhcp = fs::read_to_string(state.join("dnsmasq.log")).unwrap();
    assert_in_order(&dhcp, "10.20.0.12", &["DHCPACK"]);
    assert!(dhcp.contains("efi64/syslinux.efi"), "{dhcp}");
    for log in [
        dhcp,
        fs::read_to_string(state.join("boot-dnsmasq.log")).unwrap(),
    ] {
        assert!(!log.contains("dnsmasq-tftp"), "{log}");
    }
    assert!(!netns_exists(&state), "the namespace is gone after the run");
    assert!(
        !processes_mentioning(&copied),
        "tftpd-hpa and its per-transfer children were stopped"
    );
}

/// The optional iPXE loader carries real boots: a BIOS node whose NIC ROM is
/// iPXE gets the script URL straight from DHCP, a UEFI node whose firmware PXE
/// loads `ipxe.efi` over TFTP first; both then boot from their own script over
/// HTTP. An unknown MAC has no script and goes on to its disk.
#[test]
fn lab_boots_the_ipxe_loader_on_bios_and_uefi() {
    let _lock = lab_lock();
    let work = built_three_node_site(true);
    let dist = work.path().join("dist");
    let state = work.path().join("state");
    let report = lab_run_ok(
        work.path(),
        &["--nodes", "cp1,cp2", "--stranger", "bios"],
        &state,
    );
    let log = fs::read_to_string(state.join("server.log")).unwrap();
    for (node, ip) in [("cp1", "10.20.0.11:"), ("cp2", "10.20.0.12:")] {
        let (path, sha512) = install_ignition_of(&dist, node);
        let v = vm(&report, node);
        assert_eq!(v["verdict"]["result"], "pass", "{v}");
        assert_eq!(v["marker"]["sha512"], sha512.as_str(), "{v}");
        assert_install_arguments(&report, node);
        let script = format!("ipxe/52-54-00-20-00-1{}.ipxe", &node[2..]);
        assert_in_order(
            &log,
            ip,
            &[
                "ipxe/boot.ipxe",
                &script,
                "flatcar_production_pxe.vmlinuz",
                "flatcar_production_pxe_image.cpio.gz",
                &path,
            ],
        );
        assert!(
            !log.lines()
                .any(|l| l.contains(ip) && l.contains("pxelinux.cfg")),
            "{node} never read a syslinux config:\n{log}"
        );
    }
    // The UEFI firmware's own PXE fetched iPXE before anything else.
    assert_in_order(&log, "10.20.0.12:", &["tftp/ipxe.efi", "ipxe/boot.ipxe"]);
    assert!(
        !log.lines()
            .any(|l| l.contains("10.20.0.11:") && l.contains(" tftp ")),
        "the BIOS node's NIC ROM is iPXE already: no TFTP\n{log}"
    );
    let stranger = vm(&report, "stranger");
    assert_eq!(stranger["verdict"]["result"], "pass", "{stranger}");
    let stranger_ip = format!("{}:", stranger["ip"].as_str().unwrap());
    assert_in_order(
        &log,
        &stranger_ip,
        &["ipxe/boot.ipxe", "ipxe/5a-00-00-00-0e-01.ipxe"],
    );
    assert!(
        !log.lines()
            .any(|l| l.contains(&stranger_ip) && l.contains(".ign")),
        "{log}"
    );
    assert!(!netns_exists(&state), "the namespace is gone after the run");

    // The same tree on nginx + dnsmasq's TFTP: the UEFI path again.
    let state = work.path().join("state-nginx");
    let report = lab_run_ok(
        work.path(),
        &["--server", "nginx", "--nodes", "cp2"],
        &state,
    );
    let (path, sha512) = install_ignition_of(&dist, "cp2");
    assert_eq!(vm(&report, "cp2")["marker"]["sha512"], sha512.as_str());
    assert_in_order(
        &fs::read_to_string(state.join("server.log")).unwrap(),
        "10.20.0.12 ",
        &["/ipxe/boot.ipxe", "/ipxe/52-54-00-20-00-12.ipxe", &path],
    );
    let dhcp = fs::read_to_string(state.join("dnsmasq.log")).unwrap();
    assert!(dhcp.contains("ipxe.efi"), "{dhcp}");
}

/// The ISC dhcpd and Kea snippets carry real boots: each server runs with the
/// build's snippet for it, for a BIOS and a UEFI node, with syslinux loaders
/// (the architecture classes) and with iPXE (the iPXE user-class class).
#[test]
fn lab_boots_through_isc_dhcpd_and_kea() {
    let _lock = lab_lock();
    for ipxe in [false, true] {
        let work = built_three_node_site(ipxe);
        let dist = work.path().join("dist");
        for dhcp in ["isc", "kea"] {
            let state = work.path().join(format!("state-{dhcp}"));
            let mut args = vec!["--dhcp", dhcp, "--nodes", "cp1,cp2"];
            if !ipxe {
                args.extend(["--stranger", "bios"]);
            }
            let report = lab_run_ok(work.path(), &args, &state);
            assert_eq!(report["dhcp"], dhcp, "{report}");
            let log = fs::read_to_string(state.join("server.log")).unwrap();
            for (node, ip, loader) in [
                (
                    "cp1",
                    "10.20.0.11",
                    if ipxe {
                        "ipxe/boot.ipxe"
                    } else {
                        "tftp/lpxelinux.0"
                    },
                ),
                (
                    "cp2",
                    "10.20.0.12",
                    if ipxe {
                        "tftp/ipxe.efi"
                    } else {
                        "tftp/efi64/syslinux.efi"
                    },
                ),
            ] {
                let (path, sha512) = install_ignition_of(&dist, node);
                let v = vm(&report, node);
                let context = format!("{dhcp}, ipxe {ipxe}: {v}");
                assert_eq!(v["verdict"]["result"], "pass", "{context}");
                assert_eq!(v["ip"], ip, "the reservation: {context}");
                assert_eq!(v["marker"]["sha512"], sha512.as_str(), "{context}");
                assert_in_order(&log, &format!("{ip}:"), &[loader, &path]);
            }
            if dhcp == "kea" {
                // The stand-in's networkd leased with its DUID client
                // identifier (0xff, IAID, DUID) and still got the reservation.
                let kea = fs::read_to_string(state.join("kea.log")).unwrap();
                assert!(
                    kea.lines().any(|l| l.contains("DHCP4_LEASE_ALLOC")
                        && l.contains("52:54:00:20:00:11")
                        && l.contains("cid=[ff:")
                        && l.contains("lease 10.20.0.11 ")),
                    "{kea}"
                );
            }
            if ipxe {
                assert_in_order(&log, "10.20.0.12:", &["tftp/ipxe.efi", "ipxe/boot.ipxe"]);
            } else {
                let stranger = vm(&report, "stranger");
                assert_eq!(stranger["verdict"]["result"], "pass", "{dhcp}: {stranger}");
                let pool_ip = stranger["ip"].as_str().unwrap();
                assert!(pool_ip.starts_with("10.20.0.2"), "from the pool: {pool_ip}");
            }
            assert!(!netns_exists(&state), "the namespace is gone after the run");
            assert!(
                !processes_mentioning(&state),
                "{dhcp}'s server was stopped with the lab"
            );
        }
    }
}

/// The documented relay case: the boot server (and the DHCP server) on a
/// subnet of their own, the node behind a router at the site's gateway that
/// runs ISC's dhcrelay and routes TFTP and HTTP. The node gets its reserved
/// address through the relay, loads its loader over routed TFTP, and fetches
/// its own Ignition over routed HTTP from its own address.
#[test]
fn lab_boots_a_node_behind_a_dhcp_relay() {
    let _lock = lab_lock();
    let work = built_site_with_boot_server(false, "10.21.0.2");
    let dist = work.path().join("dist");
    let state = work.path().join("state");
    let report = lab_run_ok(work.path(), &["--nodes", "cp1"], &state);
    assert_eq!(report["relay"], "10.20.0.1", "{report}");
    assert_eq!(report["dhcp_address"], "10.21.0.250", "{report}");
    let cp1 = vm(&report, "cp1");
    assert_eq!(cp1["verdict"]["result"], "pass", "{cp1}");
    assert_eq!(cp1["ip"], "10.20.0.11", "the reservation, relayed: {cp1}");
    let (path, sha512) = install_ignition_of(&dist, "cp1");
    assert_eq!(cp1["marker"]["sha512"], sha512.as_str(), "{cp1}");
    assert_install_arguments_from(&report, "cp1", "10.21.0.2");
    let log = fs::read_to_string(state.join("server.log")).unwrap();
    assert_in_order(
        &log,
        "10.20.0.11:",
        &[
            "tftp/lpxelinux.0",
            "01-52-54-00-20-00-11",
            "flatcar_production_pxe.vmlinuz",
            &path,
        ],
    );
    let dhcp = fs::read_to_string(state.join("dnsmasq.log")).unwrap();
    assert_external_dhcp(&report, &dhcp, "10.21.0.2");
    assert!(
        dhcp.lines().any(|l| l.contains("DHCPACK")
            && l.contains("10.20.0.11")
            && l.contains("52:54:00:20:00:11")),
        "{dhcp}"
    );
    let relay = fs::read_to_string(state.join("dhcrelay.log")).unwrap();
    assert!(relay.contains("Forwarded BOOTREQUEST"), "{relay}");
    assert!(
        !netns_exists(&state),
        "the namespaces are gone after the run"
    );
    assert!(
        !processes_mentioning(&state),
        "the relay and the servers were stopped"
    );
}

/// `pxebuild lab run --accel tcg ARGS --state STATE` in `dir`: must succeed;
/// returns its report.json.
fn lab_run_ok(dir: &Path, args: &[&str], state: &Path) -> Value {
    let out = pxebuild()
        .current_dir(dir)
        .args(["lab", "run", "--accel", "tcg"])
        .args(args)
        .arg("--state")
        .arg(state)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    serde_json::from_str(&fs::read_to_string(state.join("report.json")).unwrap()).unwrap()
}

/// Whether any process's command line names `path`.
fn processes_mentioning(path: &Path) -> bool {
    let needle = path.to_string_lossy().into_owned();
    fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| fs::read(e.path().join("cmdline")).ok())
        .any(|cmdline| String::from_utf8_lossy(&cmdline).contains(&needle))
}

#[test]
fn lab_reboots_a_vm_whose_loader_gave_up_then_fails_naming_the_file() {
    let _lock = lab_lock();
    let work = built_three_node_site(false);
    // The rsync case gone wrong: a copy of the tree without the PXE initrd.
    let broken = work.path().join("broken");
    copy_tree(&work.path().join("dist"), &broken);
    let initrd = walkdir::WalkDir::new(&broken)
        .into_iter()
        .filter_map(Result::ok)
        .find(|e| e.file_name() == "flatcar_production_pxe_image.cpio.gz")
        .expect("dist has the PXE initrd");
    fs::remove_file(initrd.path()).unwrap();
    let state = work.path().join("state");
    let out = pxebuild()
        .current_dir(work.path())
        .args([
            "lab",
            "run",
            "--accel",
            "tcg",
            "--server",
            "nginx",
            "--nodes",
            "cp1",
            "--loader-retries",
            "2",
        ])
        .arg("--dist")
        .arg(&broken)
        .arg("--state")
        .arg(&state)
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    let report: Value =
        serde_json::from_str(&fs::read_to_string(state.join("report.json")).unwrap()).unwrap();
    let cp1 = vm(&report, "cp1");
    let reason = cp1["verdict"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("the loader gave up again after 2 reboot(s)"),
        "{cp1}"
    );
    assert!(
        reason.contains("flatcar_production_pxe_image.cpio.gz") && reason.contains("failed:"),
        "the verdict names the file that did not load: {reason}"
    );
    assert_eq!(
        cp1["retries"].as_array().unwrap().len(),
        2,
        "--loader-retries 2: {cp1}"
    );
    for attempt in 1..=2 {
        let log =
            fs::read_to_string(state.join(format!("cp1.attempt-{attempt}.serial.log"))).unwrap();
        assert!(
            log.contains("No such file"),
            "attempt {attempt}'s log is kept"
        );
    }
    assert!(
        text(&out).contains("rebooting the VM"),
        "the operator is told about the reboot: {}",
        text(&out)
    );
}

// ---------------------------------------------------------------------------
// Full-size boot files: the stand-in OS padded to the real sizes of the pinned
// Flatcar release's PXE kernel and initrd, one lab run per loader path, alone
// (TCG shares two cores), with a generous timeout: the lab's loader stall limit
// is a quarter of it. The time to marker is printed (--nocapture shows it) and
// appended to target/tmp/full-size-times.txt. The stand-in checks the pad's
// digest, so a loader that put the initrd together wrong fails. syslinux.efi
// loads the initrd in sixteen parts: whole, it copies its buffer on every MiB
// it grows and outlasts the UEFI watchdog's 5 minutes (docs/lab.md).

/// A race in syslinux's semaphores makes lpxelinux's network thread read a
/// stale mailbox slot and give up (`Boot failed`) in about one full-size boot
/// in four (docs/lab.md): the lab reboots the VM as a real machine resets, up
/// to five times, and every retry must be that loader failure, nothing else.
#[test]
fn lab_boots_full_size_files_through_lpxelinux_over_http() {
    full_size_run(false, "cp1", "lpxelinux HTTP (BIOS)", 1800, 5);
}

#[test]
fn lab_boots_full_size_files_through_syslinux_efi_over_http() {
    full_size_run(false, "cp2", "syslinux.efi HTTP (UEFI)", 1800, 1);
}

#[test]
fn lab_boots_full_size_files_through_ipxe_bios() {
    full_size_run(true, "cp1", "iPXE BIOS", 1800, 1);
}

#[test]
fn lab_boots_full_size_files_through_ipxe_efi() {
    full_size_run(true, "cp2", "iPXE EFI", 1800, 1);
}

/// Builds the site from the full-size stand-in, then boots `node` alone
/// within `timeout` seconds (rebooting it up to `loader_retries` times when
/// its loader gives up) and checks it fetched its own install config, every
/// byte of kernel and initrd, and that the initrd arrived intact.
fn full_size_run(ipxe: bool, node: &str, path: &str, timeout: u32, loader_retries: usize) {
    let _lock = lab_lock();
    let work = built_site_from(ipxe, "10.20.0.2", standin_full_size());
    let dist = work.path().join("dist");
    let flatcar = dist.join("http/flatcar/4593.2.5");
    let size = |name: &str| fs::metadata(flatcar.join(name)).unwrap().len();
    assert_eq!(size("flatcar_production_pxe.vmlinuz"), FULL_KERNEL_BYTES);
    assert_eq!(
        size("flatcar_production_pxe_image.cpio.gz"),
        FULL_INITRD_BYTES
    );
    assert_eq!(
        initrd_names("syslinux.efi")
            .iter()
            .map(|p| size(p))
            .sum::<u64>(),
        FULL_INITRD_BYTES,
        "the parts add up to the initrd"
    );
    let state = work.path().join("state");
    let timeout = timeout.to_string();
    let retries = loader_retries.to_string();
    let report = lab_run_ok(
        work.path(),
        &[
            "--nodes",
            node,
            "--timeout",
            &timeout,
            "--loader-retries",
            &retries,
        ],
        &state,
    );
    let (ign, sha512) = install_ignition_of(&dist, node);
    let v = vm(&report, node);
    assert_eq!(v["verdict"]["result"], "pass", "{v}");
    let reboots = v["retries"].as_array().unwrap();
    for (attempt, retry) in reboots.iter().enumerate() {
        let retry = retry.as_str().unwrap();
        assert!(
            !(retry.contains("Loading ") && retry.contains("failed:")),
            "a retry is the loader's own failure, not a file the server lacks: {retry}"
        );
        let log = state.join(format!("{node}.attempt-{}.serial.log", attempt + 1));
        assert!(log.exists(), "each failed boot's console log is kept");
    }
    assert_eq!(v["marker"]["sha512"], sha512.as_str(), "{v}");
    assert!(v["marker"]["url"].as_str().unwrap().ends_with(&ign), "{v}");
    let serial = fs::read_to_string(state.join(format!("{node}.serial.log"))).unwrap();
    let pad = fs::read_to_string(standin_full_size().join("pad.sha256")).unwrap();
    assert!(
        serial.contains(&format!("PXELAB-PAD-OK sha256={}", pad.trim())),
        "{node}'s initrd arrived whole:\n{serial}"
    );
    let loader = if !ipxe && v["firmware"] == "uefi" {
        "syslinux.efi"
    } else {
        "lpxelinux.0 or iPXE"
    };
    let initrd = initrd_names(loader);
    let log = fs::read_to_string(state.join("server.log")).unwrap();
    for file in
        std::iter::once("flatcar_production_pxe.vmlinuz").chain(initrd.iter().map(String::as_str))
    {
        let bytes = size(file);
        assert!(
            log.lines().any(|l| l.contains(&format!("/{file} "))
                && l.contains(&format!("bytes={bytes} "))
                && l.contains("result=ok")),
            "{node} loaded all of {file}:\n{log}"
        );
    }
    let marker = v["reached"]["marker"].as_f64().expect("time to marker");
    let boots = reboots.len() + 1;
    let line = format!("full-size boot, {path}: marker at {marker:.1} s (boot {boots} of {boots})");
    eprintln!("{line}");
    let times = Path::new(env!("CARGO_TARGET_TMPDIR")).join("full-size-times.txt");
    let mut all = fs::read_to_string(&times).unwrap_or_default();
    all.push_str(&line);
    all.push('\n');
    fs::write(&times, all).unwrap();
}

#[test]
fn lab_until_refuses_a_misspelt_beacon_before_anything_starts() {
    let out = pxebuild()
        .args(["lab", "run", "--until", "cilium-redy"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("'cilium-redy'"), "{stderr}");
    assert!(
        stderr.contains("install-done") && stderr.contains("kubeadm-done"),
        "the valid beacons are listed: {stderr}"
    );
    assert!(
        stderr.contains("similar value exists: 'cilium-ready'"),
        "{stderr}"
    );
}

#[test]
fn lab_cut_refuses_a_misspelt_beacon_before_anything_starts() {
    let out = pxebuild()
        .args(["lab", "run", "--cut", "cp1=kubeadm-init-contol-plane"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("\"kubeadm-init-contol-plane\" is not a beacon")
            && stderr.contains("kubeadm-init-control-plane"),
        "the valid beacons are listed: {stderr}"
    );
}
