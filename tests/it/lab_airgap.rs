//! The air gap in the lab: the second boot's site, built with
//! `[images] mode = "serve"` (its images as tiny stand-ins under the real
//! names in a loopback docker-registry, stopped before the VMs boot) and the
//! containerd system extension, which carries Debian's real containerd and
//! ctr (tests/fixtures/standin-sysext/build.sh). The VMs sit on the lab's
//! bridge, whose namespaces have no link to the host or anywhere else
//! (src/lab/netns.rs; checked while the VMs run): the boot server, the DHCP
//! server and each other are all they can reach. The lab boots cp1 (BIOS, kubeadm init) and cp2 (UEFI,
//! control-plane join); under the disk's systemd each runs the node
//! Ignition's containerd config and registry hosts, and the stand-in
//! kubeadm's preflight pulls kubeadm's images through that containerd: every
//! manifest and blob must come from `pxebuild serve`, at the digests
//! dist/manifest.json records, before `kubeadm-done`.
use std::fs;
use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use pxebuild::manifest::{ImageRecord, Manifest};
use serde_json::Value;

use crate::images_build::serve_images;
use crate::lab::{build_with_repo_templates, lab_lock, pxebuild, text};
use crate::registry::{digest_of, Registry};
use crate::second_boot::second_boot_mirror;

/// The second boot's site (the example site cut to three control planes and
/// a worker, through iPXE; the lab boots cp1 alone) with the containerd
/// system extension the stand-in images publish.
fn site_toml() -> String {
    let site = crate::second_boot::site_toml();
    let cilium = "cilium = \"v0.18.2\"\n";
    assert!(site.contains(cilium), "example site pins its cilium sysext");
    site.replacen(cilium, &format!("{cilium}containerd = \"v2.1.5\"\n"), 1)
}

/// The manifest a pull of `record` ends with (the site's arch's, for an
/// index), parsed from the tree's `http/v2/<name>/manifests/`.
fn platform_manifest(dist: &Path, record: &ImageRecord) -> Value {
    let want = record.platform_digest.as_ref().unwrap_or(&record.digest);
    let dir = dist.join("http/v2").join(&record.name).join("manifests");
    fs::read_dir(&dir)
        .unwrap()
        .map(|e| fs::read(e.unwrap().path()).unwrap())
        .find(|bytes| &digest_of(bytes) == want)
        .map(|bytes| serde_json::from_slice(&bytes).unwrap())
        .unwrap_or_else(|| panic!("{} has no manifest {want}", dir.display()))
}

/// Whether the node at `ip` fetched `path` (`http/v2/…`) from the boot
/// server, whole.
fn fetched(log: &str, ip: &str, path: &str) -> bool {
    let path = format!(" path={path} ");
    log.lines().any(|l| {
        l.contains(ip) && l.contains(&path) && l.contains("result=ok") && !l.contains(" bytes=0 ")
    })
}

/// Whether the node at `ip` fetched `record`'s manifest whole by its tag.
fn fetched_by_tag(log: &str, ip: &str, record: &ImageRecord) -> bool {
    let tag = record.reference.rsplit_once(':').map(|(_, t)| t).unwrap();
    fetched(log, ip, &format!("http/v2/{}/manifests/{tag}", record.name))
}

/// Waits until the lab's first VM has sent a beacon (its network and the
/// VMs' taps are in place), then checks that the lab's namespaces (the
/// boot server's, the DHCP server's, the router's if any) have no link to
/// anywhere but each other: every veth's peer is in one of them (a peer in
/// the host's namespace, or any unnamed one, shows as `link-netnsid`), no
/// host link has its peer there, and no namespace has a default route.
/// Returns what is wrong (checked once the lab has ended, so that a
/// failure never leaves the lab running), or `None` when the lab ended
/// before a VM came up.
fn isolation_faults(state: &Path) -> Option<Vec<String>> {
    let deadline = Instant::now() + Duration::from_secs(1200);
    let ns = loop {
        let up = fs::read_to_string(state.join("server.log"))
            .is_ok_and(|log| log.contains(" milestone=install-started "));
        let lab: Option<Value> = fs::read_to_string(state.join("lab.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        if let (true, Some(lab)) = (up, lab) {
            break lab["namespace"].as_str().unwrap_or_default().to_string();
        }
        if Instant::now() > deadline || state.join("report.json").exists() {
            return None;
        }
        std::thread::sleep(Duration::from_secs(2));
    };
    let mut faults = Vec::new();
    let mut ip = |args: &[&str]| match Command::new("ip").args(args).output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(out) => {
            faults.push(format!("ip {args:?}: {}", text(&out)));
            String::new()
        }
        Err(err) => {
            faults.push(format!("ip {args:?}: {err}"));
            String::new()
        }
    };
    let all = ip(&["netns", "list"]);
    let lab: Vec<String> = all
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n == ns || n.starts_with(&format!("{ns}-")))
        .map(str::to_string)
        .collect();
    let peer_of = |line: &str| {
        line.split(" link-netns ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_string)
    };
    let mut links = Vec::new();
    let mut defaults = Vec::new();
    for name in &lab {
        for line in ip(&["-n", name, "-o", "link", "show"]).lines() {
            links.push((name.clone(), line.to_string()));
        }
        defaults.push((name.clone(), ip(&["-n", name, "route", "show", "default"])));
    }
    let host = ip(&["-o", "link", "show"]);
    for (name, default) in defaults {
        if !default.trim().is_empty() {
            faults.push(format!("{name} routes out: {default}"));
        }
    }
    if !lab.contains(&ns) {
        faults.push(format!("the lab's namespace {ns:?} is not among {all:?}"));
    }
    // The check sees the lab: the DHCP server's veth joins its namespace.
    if !links.iter().any(|(_, line)| peer_of(line).is_some()) {
        faults.push(format!("no veth between the lab's namespaces {lab:?}"));
    }
    for (name, line) in links {
        if line.contains("link-netnsid") {
            faults.push(format!("{name}: a link out of the lab: {line}"));
        }
        if let Some(peer) = peer_of(&line).filter(|p| !lab.contains(p)) {
            faults.push(format!("{name}: a link to {peer}: {line}"));
        }
    }
    for line in host.lines() {
        if peer_of(line).is_some_and(|p| lab.contains(&p)) {
            faults.push(format!("a host link into the lab: {line}"));
        }
    }
    Some(faults)
}

#[test]
fn lab_airgap_node_pulls_kubeadm_images_from_the_boot_server_alone() {
    let _lock = lab_lock();
    let work = tempfile::tempdir().unwrap();
    let root = work.path();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mirror");
    let server = second_boot_mirror(root);
    fs::write(root.join("site.toml"), site_toml()).unwrap();
    let mut registry = Registry::start();
    let site = serve_images(root, &registry.url(), &[]);
    registry.push_site_images(&site);
    build_with_repo_templates(root, &server.url(), &fixtures.join("test-key.pub.asc"));
    // From here on the images exist only in dist/.
    registry.stop();
    drop(server);
    let dist = root.join("dist");
    let manifest = Manifest::load(&dist).unwrap();
    // kubeadm's images: the catalog's registry.k8s.io ones (kube-vip,
    // Cilium's and Argo CD's come from other registries).
    let kubeadm: Vec<&ImageRecord> = manifest
        .images
        .iter()
        .filter(|r| r.name.starts_with("registry.k8s.io/"))
        .collect();
    assert!(kubeadm.len() >= 5, "{:?}", manifest.images);

    let state = root.join("state");
    eprintln!("lab state: {}", state.display());
    let (stdout_path, stderr_path) = (root.join("lab.stdout"), root.join("lab.stderr"));
    let mut lab = pxebuild()
        .current_dir(root)
        .args(["lab", "run", "--accel", "tcg", "--nodes", "cp1,cp2"])
        .args(["--disk", "2", "--network-first", "--memory", "1024"])
        .args([
            "--parallel",
            "2",
            "--until",
            "kubeadm-done",
            "--timeout",
            "1800",
        ])
        .arg("--state")
        .arg(&state)
        .stdout(fs::File::create(&stdout_path).unwrap())
        .stderr(fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    // Once the VMs are up: nothing links the lab's namespaces to the host.
    let faults = isolation_faults(&state);
    let status = lab.wait().unwrap();
    let out = Output {
        status,
        stdout: fs::read(&stdout_path).unwrap(),
        stderr: fs::read(&stderr_path).unwrap(),
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(out.status.success(), "{}", text(&out));
    let faults = faults.unwrap_or_else(|| panic!("the VMs never came up:\n{}", text(&out)));
    assert!(faults.is_empty(), "{faults:#?}");
    let report: Value =
        serde_json::from_str(&fs::read_to_string(state.join("report.json")).unwrap()).unwrap();
    let log = fs::read_to_string(state.join("server.log")).unwrap();
    for (name, ip, before, after) in [
        (
            "cp1",
            "10.20.0.11:",
            "kubeadm-init-preflight",
            "kubeadm-init-certs",
        ),
        (
            "cp2",
            "10.20.0.12:",
            "kubeadm-join-discovery",
            "kubeadm-join-control-plane-prepare",
        ),
    ] {
        let vm = report["vms"]
            .as_array()
            .unwrap()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no {name} in {report}"));
        assert_eq!(vm["verdict"]["result"], "pass", "{vm}");
        let at = |beacon: &str| {
            vm["beacons"][beacon]
                .as_f64()
                .unwrap_or_else(|| panic!("{name} sent no {beacon}: {vm}"))
        };
        // The pull ran under the disk's systemd, with the sysexts merged
        // (the real containerd among them), inside kubeadm's init or
        // control-plane join, before its end.
        let pulled = at("kubeadm-images-pulled");
        assert!(at("sysexts-merged") < pulled, "{vm}");
        assert!(at(before) <= pulled, "{vm}");
        assert!(pulled < at(after), "{vm}");
        assert!(pulled < at("kubeadm-done"), "{vm}");
        let serial =
            String::from_utf8_lossy(&fs::read(state.join(format!("{name}.serial.log"))).unwrap())
                .into_owned();
        pulled_from_the_boot_server(name, ip, &serial, &log, &dist, &kubeadm);
    }
}

/// `name` (`ip` in the server log) pulled exactly the images the tree
/// carries for kubeadm (the stand-in's own list, from its release's
/// constants, against the catalog's), each at the digest dist/manifest.json
/// records, and every byte of them came from the boot server.
fn pulled_from_the_boot_server(
    name: &str,
    ip: &str,
    serial: &str,
    log: &str,
    dist: &Path,
    kubeadm: &[&ImageRecord],
) {
    let said: Vec<&str> = serial
        .lines()
        .filter_map(|l| l.split_once("kubeadm: [preflight] pulled ").map(|(_, r)| r))
        .collect();
    assert_eq!(said.len(), kubeadm.len(), "{name}: {said:?}\n{serial}");
    let mut blobs = Vec::new();
    for record in kubeadm {
        let line = format!("{} {}", record.reference, record.digest);
        assert!(
            said.iter().any(|s| s.trim_end() == line),
            "{name} pulled {line}:\n{said:?}"
        );
        // containerd resolved the tag at the boot server.
        let manifests = format!(" path=http/v2/{}/manifests/", record.name);
        assert!(
            log.lines()
                .any(|l| l.contains(ip) && l.contains(&manifests) && l.contains("result=ok")),
            "{name} resolved {} at the boot server:\n{log}",
            record.reference
        );
        let m = platform_manifest(dist, record);
        blobs.push(m["config"]["digest"].as_str().unwrap().to_string());
        for layer in m["layers"].as_array().unwrap() {
            blobs.push(layer["digest"].as_str().unwrap().to_string());
        }
    }
    // Each manifest and blob sent whole to the node under one of kubeadm's
    // names (containerd fetches content it already holds once, and the
    // stand-in images share their parts).
    let from_server = |what: &str, digest: &str| {
        kubeadm
            .iter()
            .any(|r| fetched(log, ip, &format!("http/v2/{}/{what}/{digest}", r.name)))
    };
    for record in kubeadm {
        let digest = record.platform_digest.as_ref().unwrap_or(&record.digest);
        assert!(
            from_server("manifests", digest) || fetched_by_tag(log, ip, record),
            "{name} fetched {}'s manifest from the boot server:\n{log}",
            record.reference
        );
    }
    for blob in &blobs {
        assert!(
            from_server("blobs", blob),
            "{name} fetched blob {blob} from the boot server:\n{log}"
        );
    }
    // No pull was refused (an image the tree lacks would be).
    assert!(
        !log.lines()
            .any(|l| l.contains(ip) && l.contains(" path=http/v2/") && !l.contains("result=ok")),
        "{log}"
    );
}
