//! The second boot in the lab: PXE -> install to disk -> reboot from the disk
//! -> the node Ignition -> the node's units under real systemd. The fixture
//! mirror publishes the second-boot stand-in OS (tests/fixtures/standin-os/
//! build-second.sh: a Debian trixie root with real systemd, Debian's real
//! Ignition, a stand-in flatcar-install keeping Flatcar's command line) as the
//! Flatcar PXE initrd and the signed `flatcar_production_image.bin.bz2`.
//!
//! The mirror's system extensions are the stand-in sysexts
//! (tests/fixtures/standin-sysext/build.sh: squashfs images in the bakery's
//! format holding the stub Kubernetes tools).
//!
//! One UEFI node (install.sh sets BootNext with efibootmgr; the VM's OVMF
//! variables persist across its reboots) and one BIOS node kept network-first
//! (its second PXE boot finds its installation, `install-skipped`, and kexecs
//! the disk's kernel) both reach the `first-boot` beacon, which only the
//! generated node units send, under the disk's systemd, and then
//! `sysexts-merged`: the disk's real systemd-sysext merged the images the
//! node Ignition downloaded, so `/usr/bin/kubeadm` exists.
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

use crate::fetch::server::MirrorServer;
use crate::lab::{build_standin, build_with_repo_templates, lab_lock, pxebuild, text};
use crate::standin_stubs::standin_sysexts;

/// The second-boot stand-in OS, built once per target directory (the script
/// caches by inputs; the Debian root is cached under ~/.cache/pxebuild).
pub(crate) fn second_boot_os() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build_standin("build-second.sh", "standin-second"))
}

/// The example site cut to cp1 (BIOS), cp2 (UEFI), cp3 (BIOS), booting
/// through iPXE (the installer initrd is ~90 MiB).
pub(crate) fn site_toml() -> String {
    let example =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("site.toml")).unwrap();
    let head = &example[..example.find("[[node]]").expect("example site has nodes")];
    let loaders = "loaders = [\"bios\", \"uefi\"]";
    assert!(head.contains(loaders), "example site names its loaders");
    let mut site = head.replacen(loaders, "loaders = [\"bios\", \"uefi\", \"ipxe\"]", 1);
    for (name, octet, role, firmware) in [
        ("cp1", 11, "control-plane", "bios"),
        ("cp2", 12, "control-plane", "uefi"),
        ("cp3", 13, "control-plane", "bios"),
        ("worker1", 21, "worker", "uefi"),
    ] {
        site.push_str(&format!(
            "[[node]]\nname = \"{name}\"\nmac = \"52:54:00:20:00:{octet}\"\nip = \"10.20.0.{octet}\"\nrole = \"{role}\"\ndisk = \"/dev/disk/by-id/virtio-{name}-root\"\nfirmware = \"{firmware}\"\n\n"
        ));
    }
    site
}

/// The fixture mirror in `root/mirror` carrying the second-boot stand-in OS
/// and the stand-in sysexts, served on loopback.
pub(crate) fn second_boot_mirror(root: &Path) -> MirrorServer {
    let os = second_boot_os();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mirror");
    let mirror = root.join("mirror");
    let run = Command::new("sh")
        .arg(fixtures.join("generate.sh"))
        .arg(&mirror)
        .arg("--kernel")
        .arg(os.join("vmlinuz"))
        .arg("--initrd")
        .arg(os.join("installer.cpio.gz"))
        .arg("--image")
        .arg(os.join("disk.img.bz2"))
        .arg("--sysexts")
        .arg(standin_sysexts())
        .output()
        .expect("running the fixture mirror generator");
    assert!(run.status.success(), "fixture mirror:\n{}", text(&run));
    MirrorServer::start(&mirror)
}

/// The site built from the fixture mirror carrying the second-boot stand-in
/// and the stand-in sysexts.
fn built_site() -> tempfile::TempDir {
    let work = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mirror");
    let server = second_boot_mirror(work.path());
    fs::write(work.path().join("site.toml"), site_toml()).unwrap();
    build_with_repo_templates(
        work.path(),
        &server.url(),
        &fixtures.join("test-key.pub.asc"),
    );
    work
}

/// The nodes of the run and their addresses (a `10.20.0.x:` prefix in the
/// server log): BIOS and UEFI control planes and a UEFI worker.
const NODES: [(&str, &str); 4] = [
    ("cp1", "10.20.0.11:"),
    ("cp2", "10.20.0.12:"),
    ("cp3", "10.20.0.13:"),
    ("worker1", "10.20.0.21:"),
];

fn beacon_time(vm: &Value, beacon: &str) -> f64 {
    vm["beacons"][beacon]
        .as_f64()
        .unwrap_or_else(|| panic!("{} sent no {beacon} beacon: {vm}", vm["name"]))
}

/// The server log's transfers to `ip` (a `10.20.0.1x:` prefix) of a path
/// ending in `file` that carried bytes (HEAD requests log `bytes=0`).
fn transfers<'a>(log: &'a str, ip: &str, file: &str) -> Vec<&'a str> {
    let path = format!("{file} ");
    log.lines()
        .filter(|l| l.contains(ip) && l.contains(&path) && !l.contains(" bytes=0 "))
        .collect()
}

/// When `node` sent `beacon` (the server log's timestamp, which sorts as
/// text): the first time, or the last.
fn sent_at<'a>(log: &'a str, node: &str, beacon: &str, last: bool) -> &'a str {
    let (n, m) = (format!(" node={node} "), format!(" milestone={beacon} "));
    let mut times = log
        .lines()
        .filter(|l| l.contains(&n) && l.contains(&m))
        .filter_map(|l| l.split_whitespace().next());
    let at = if last {
        times.next_back()
    } else {
        times.next()
    };
    at.unwrap_or_else(|| panic!("{node} sent no {beacon}:\n{log}"))
}

#[test]
fn lab_installs_to_disk_and_boots_the_node_config_on_bios_and_uefi() {
    let _lock = lab_lock();
    let work = built_site();
    let state = work.path().join("state");
    eprintln!("lab state: {}", state.display());
    let out = pxebuild()
        .current_dir(work.path())
        .args([
            "lab",
            "run",
            "--accel",
            "tcg",
            "--nodes",
            "cp1,cp2,cp3,worker1",
        ])
        .args(["--disk", "2", "--network-first", "--memory", "1024"])
        .args([
            "--parallel",
            "4",
            "--until",
            "kubeadm-done",
            "--timeout",
            "2700",
        ])
        .args([
            "--cut",
            "cp1=kubeadm-init-control-plane,cp2=kubeadm-join-etcd",
        ])
        .arg("--state")
        .arg(&state)
        .output()
        .unwrap();
    // The per-node timeline (`--nocapture` shows it): the table's milestones,
    // then each node's beacons across its boots, and the power cuts.
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(out.status.success(), "{}", text(&out));
    for name in NODES.map(|(name, _)| name) {
        assert!(
            stdout.contains(&format!("{name} beacons: install-started ")),
            "{stdout}"
        );
    }
    let report: Value =
        serde_json::from_str(&fs::read_to_string(state.join("report.json")).unwrap()).unwrap();
    let vm = |name: &str| -> Value {
        report["vms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {report}"))
            .clone()
    };
    let log = fs::read_to_string(state.join("server.log")).unwrap();
    // Firmware and terminal escapes make the console log not quite UTF-8.
    let serial = |name: &str| {
        String::from_utf8_lossy(&fs::read(state.join(format!("{name}.serial.log"))).unwrap())
            .into_owned()
    };

    // Every node: installed from the boot server, then the disk's first boot
    // ran Ignition on the node config, systemd started the node's units,
    // systemd-sysext merged the sysexts, and kubeadm-bootstrap finished.
    for (name, ip) in NODES {
        let v = vm(name);
        assert_eq!(v["verdict"]["result"], "pass", "{v}");
        let started = beacon_time(&v, "install-started");
        let done = beacon_time(&v, "install-done");
        let first = beacon_time(&v, "first-boot");
        let merged = beacon_time(&v, "sysexts-merged");
        let kubeadm = beacon_time(&v, "kubeadm-done");
        assert!(
            started < done && done < first && first < merged && merged < kubeadm,
            "{v}"
        );
        // flatcar-install fetched the signed image from the boot server, the
        // install script the node config; the disk's first boot ran the node
        // Ignition, which downloaded the sysexts from the boot server.
        for file in [
            "flatcar_production_image.bin.bz2.sig",
            "flatcar_production_image.bin.bz2",
            "/node.ign",
        ] {
            assert!(
                !transfers(&log, ip, file).is_empty(),
                "{name} fetched {file}:\n{log}"
            );
        }
        // Each of the site's sysexts, whole (the stand-in squashfs images).
        for ext in ["kubernetes-", "cilium-"] {
            assert!(
                log.lines().any(|l| l.contains(ip)
                    && l.contains("path=http/sysext/")
                    && l.contains(ext)
                    && l.contains("-x86-64.raw ")
                    && l.contains("result=ok")
                    && !l.contains(" bytes=0 ")),
                "{name}'s node Ignition fetched its {ext} sysext:\n{log}"
            );
        }
        let serial = serial(name);
        assert!(
            serial.contains("PXELAB-FIRSTBOOT Ignition done"),
            "{name}: the disk's first boot ran Ignition"
        );
        assert!(
            serial.contains("flatcar-install: success"),
            "{name}: flatcar-install verified and wrote the image"
        );
    }

    // The power cuts: cp1 in the middle of `kubeadm init` (its certificates,
    // kubeconfigs and static pod manifests written), cp2 in the middle of
    // its control-plane join (its etcd member added, not started). Each came
    // back from its disk, found kubeadm's leftovers, reset them (the stand-in
    // kubeadm's reset; cp2's also removed its etcd member) and completed.
    for (name, at) in [
        ("cp1", "kubeadm-init-control-plane"),
        ("cp2", "kubeadm-join-etcd"),
    ] {
        let v = vm(name);
        let cuts = v["cuts"].as_array().unwrap();
        assert_eq!(cuts.len(), 1, "{v}");
        assert_eq!(cuts[0]["beacon"], at, "{v}");
        assert!(
            stdout.contains(&format!("{name} power cut at {at} ")),
            "{stdout}"
        );
        let cut = cuts[0]["at"].as_f64().unwrap();
        assert!(cut < beacon_time(&v, "kubeadm-done"), "{v}");
        assert!(sent_at(&log, name, at, false) < sent_at(&log, name, "kubeadm-done", false));
        // The boot after the cut reset the node before its new attempt.
        let reset = sent_at(&log, name, "kubeadm-reset", false);
        assert!(sent_at(&log, name, at, false) < reset, "{log}");
        assert!(reset < sent_at(&log, name, "kubeadm-done", false), "{log}");
    }
    // cp2's reset removed the etcd member its cut join had added: otherwise
    // its new attempt (and cp3's) would have waited for that member to start
    // until the bootstrap's 20-minute limit (`kubeadm-timeout etcd-turn`).
    assert!(!log.contains(" milestone=kubeadm-timeout "), "{log}");
    for name in ["cp3", "worker1"] {
        assert!(vm(name)["cuts"].as_array().unwrap().is_empty());
        assert!(
            !log.contains(&format!(" node={name} milestone=kubeadm-reset ")),
            "{name} had nothing to reset:\n{log}"
        );
    }

    // The join order: cp1's init (after its cut) before every join, cp2's
    // control-plane join (after its cut) complete before cp3 adds its etcd
    // member; the worker after cp1's init.
    let init_done = sent_at(&log, "cp1", "kubeadm-init-upload-config", true);
    for name in ["cp2", "cp3", "worker1"] {
        assert!(
            init_done < sent_at(&log, name, "kubeadm-join-discovery", false),
            "{name} joined after cp1's init:\n{log}"
        );
    }
    let cp2_joined = sent_at(&log, "cp2", "kubeadm-join-control-plane-join", true);
    assert!(
        sent_at(&log, "cp2", "kubeadm-join-etcd", true) < cp2_joined,
        "{log}"
    );
    assert!(
        cp2_joined < sent_at(&log, "cp3", "kubeadm-join-etcd", false),
        "cp3 added its etcd member only after cp2's had started:\n{log}"
    );
    // A worker joins without the control-plane phases.
    assert!(!log.contains(" node=worker1 milestone=kubeadm-join-etcd "));

    // UEFI: BootNext took the VM (network-first in its boot order) to the
    // disk, so it came back to the installer only after a power cut (cp2,
    // whose BootNext was spent: the install script finds its installation
    // and sets it again).
    assert!(vm("worker1")["beacons"].get("install-skipped").is_none());
    let cp2 = vm("cp2");
    if let Some(skipped) = cp2["beacons"]["install-skipped"].as_f64() {
        assert!(skipped > cp2["cuts"][0]["at"].as_f64().unwrap(), "{cp2}");
    }
    // BIOS kept network-first: the second PXE boot found the installation,
    // did not reinstall, and booted the disk with kexec; after the power
    // cut again.
    for (name, ip) in [("cp1", "10.20.0.11:"), ("cp3", "10.20.0.13:")] {
        let v = vm(name);
        let done = beacon_time(&v, "install-done");
        let skipped = beacon_time(&v, "install-skipped");
        let kexec = beacon_time(&v, "boot-disk-kexec");
        let first = beacon_time(&v, "first-boot");
        assert!(done < skipped && skipped < kexec && kexec < first, "{v}");
        assert_eq!(
            transfers(&log, ip, "flatcar_production_image.bin.bz2").len(),
            1,
            "{name} installed once:\n{log}"
        );
    }
    assert!(
        log.matches(" node=cp1 milestone=boot-disk-kexec ").count() >= 2,
        "cp1 booted its disk again after the cut:\n{log}"
    );
}
