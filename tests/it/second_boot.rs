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
fn second_boot_os() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| build_standin("build-second.sh", "standin-second"))
}

/// The example site cut to cp1 (BIOS), cp2 (UEFI), cp3 (BIOS), booting
/// through iPXE (the installer initrd is ~90 MiB).
fn site_toml() -> String {
    let example =
        fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("site.toml")).unwrap();
    let head = &example[..example.find("[[node]]").expect("example site has nodes")];
    let loaders = "loaders = [\"bios\", \"uefi\"]";
    assert!(head.contains(loaders), "example site names its loaders");
    let mut site = head.replacen(loaders, "loaders = [\"bios\", \"uefi\", \"ipxe\"]", 1);
    for (i, firmware) in ["bios", "uefi", "bios"].iter().enumerate() {
        let n = i + 1;
        site.push_str(&format!(
            "[[node]]\nname = \"cp{n}\"\nmac = \"52:54:00:20:00:1{n}\"\nip = \"10.20.0.1{n}\"\nrole = \"control-plane\"\ndisk = \"/dev/disk/by-id/virtio-cp{n}-root\"\nfirmware = \"{firmware}\"\n\n"
        ));
    }
    site
}

/// The site built from the fixture mirror carrying the second-boot stand-in
/// and the stand-in sysexts.
fn built_site() -> tempfile::TempDir {
    let os = second_boot_os();
    let work = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mirror");
    let mirror = work.path().join("mirror");
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
    let server = MirrorServer::start(&mirror);
    fs::write(work.path().join("site.toml"), site_toml()).unwrap();
    build_with_repo_templates(
        work.path(),
        &server.url(),
        &fixtures.join("test-key.pub.asc"),
    );
    work
}

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

#[test]
fn lab_installs_to_disk_and_boots_the_node_config_on_bios_and_uefi() {
    let _lock = lab_lock();
    let work = built_site();
    let state = work.path().join("state");
    let out = pxebuild()
        .current_dir(work.path())
        .args(["lab", "run", "--accel", "tcg", "--nodes", "cp1,cp2"])
        .args(["--disk", "2", "--network-first", "--memory", "1024"])
        .args(["--until", "sysexts-merged", "--timeout", "1500"])
        .arg("--state")
        .arg(&state)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // The per-node timeline (`--nocapture` shows it): the table's milestones,
    // then each node's beacons across its boots.
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    for name in ["cp1", "cp2"] {
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

    // Both: installed from the boot server, then the disk's first boot ran
    // Ignition on the node config and systemd started the node's units.
    for (name, ip) in [("cp1", "10.20.0.11:"), ("cp2", "10.20.0.12:")] {
        let v = vm(name);
        assert_eq!(v["verdict"]["result"], "pass", "{v}");
        let started = beacon_time(&v, "install-started");
        let done = beacon_time(&v, "install-done");
        let first = beacon_time(&v, "first-boot");
        let merged = beacon_time(&v, "sysexts-merged");
        assert!(started < done && done < first && first < merged, "{v}");
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
        // Firmware and terminal escapes make the console log not quite UTF-8.
        let serial =
            String::from_utf8_lossy(&fs::read(state.join(format!("{name}.serial.log"))).unwrap())
                .into_owned();
        assert!(
            serial.contains("PXELAB-FIRSTBOOT Ignition done"),
            "{name}: the disk's first boot ran Ignition"
        );
        assert!(
            serial.contains("flatcar-install: success"),
            "{name}: flatcar-install verified and wrote the image"
        );
    }

    // UEFI: BootNext took the VM (network-first in its boot order) to the
    // disk, so it never came back to the installer.
    let cp2 = vm("cp2");
    assert!(cp2["beacons"].get("install-skipped").is_none(), "{cp2}");
    // BIOS kept network-first: the second PXE boot found the installation,
    // did not reinstall, and booted the disk with kexec.
    let cp1 = vm("cp1");
    let done = beacon_time(&cp1, "install-done");
    let skipped = beacon_time(&cp1, "install-skipped");
    let kexec = beacon_time(&cp1, "boot-disk-kexec");
    let first = beacon_time(&cp1, "first-boot");
    assert!(done < skipped && skipped < kexec && kexec < first, "{cp1}");
    assert_eq!(
        transfers(&log, "10.20.0.11:", "flatcar_production_image.bin.bz2").len(),
        1,
        "cp1 installed once:\n{log}"
    );
}
