//! `pxebuild build` of the example site end to end: secrets, per-MAC boot
//! configs, install and node Ignition for every node (validated with
//! `ignition-validate`), access restricted per node, and a second build that
//! changes no secret and no file.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use pxebuild::manifest::Manifest;

use crate::cluster_common::*;
use crate::fetch::server::MirrorServer;

/// The example site built from the fixture mirror: `root` holds site.toml and
/// secrets/, `dist` the tree.
pub(crate) struct Built {
    // Declared first: dropped (stopped) before the directory it serves.
    pub(crate) mirror: Mirror,
    _dir: tempfile::TempDir,
    pub(crate) root: PathBuf,
    pub(crate) dist: PathBuf,
}

/// The fixture mirror (tests/fixtures/mirror/generate.sh) served over HTTP on
/// loopback by the tests' mirror server, stopped on drop.
pub(crate) struct Mirror {
    _server: MirrorServer,
    pub(crate) url: String,
}

impl Mirror {
    /// Every request the mirror server has answered so far.
    pub(crate) fn requests(&self) -> Vec<crate::fetch::server::Seen> {
        self._server.requests()
    }
}

fn mirror(root: &Path) -> Mirror {
    mirror_with(root, &[])
}

/// The fixture mirror made with generate.sh's extra `args` (e.g. `--sysexts DIR`).
pub(crate) fn mirror_with(root: &Path, args: &[&std::ffi::OsStr]) -> Mirror {
    let dir = root.join("mirror");
    let out = Command::new("sh")
        .arg(repo().join("tests/fixtures/mirror/generate.sh"))
        .arg(&dir)
        .args(args)
        .output()
        .expect("running the fixture mirror generator");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let server = MirrorServer::start(&dir);
    Mirror {
        url: server.url(),
        _server: server,
    }
}

pub(crate) fn build(root: &Path, dist: &Path, mirror: &Mirror) -> std::process::Output {
    pxebuild_on_mirror(root, mirror)
        .arg("--site")
        .arg(root.join("site.toml"))
        .arg("build")
        .arg("--out")
        .arg(dist)
        .output()
        .expect("running pxebuild build")
}

/// pxebuild with the site's cache under `root` and artifacts from `mirror`.
pub(crate) fn pxebuild_on_mirror(root: &Path, mirror: &Mirror) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pxebuild"));
    cmd.env("PXEBUILD_CACHE", root.join("cache"))
        .env("PXEBUILD_MIRROR", &mirror.url)
        .env(
            "PXEBUILD_SIGNING_KEY",
            repo().join("tests/fixtures/mirror/test-key.pub.asc"),
        );
    cmd
}

/// The example site in a temp dir as it is (its loaders are the default,
/// Debian's packages, pinned inside pxebuild), its fixture mirror served.
pub(crate) fn prepared() -> (tempfile::TempDir, Mirror) {
    let (dir, _) = example_site();
    let mirror = mirror(dir.path());
    (dir, mirror)
}

pub(crate) fn built() -> Built {
    let (dir, mirror) = prepared();
    build_prepared(dir, mirror)
}

/// Builds a prepared site (as edited by the caller) into its dist/.
fn build_prepared(dir: tempfile::TempDir, mirror: Mirror) -> Built {
    let root = dir.path().to_path_buf();
    let dist = root.join("dist");
    let out = build(&root, &dist, &mirror);
    assert!(
        out.status.success(),
        "pxebuild build failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Built {
        _dir: dir,
        root,
        dist,
        mirror,
    }
}

fn secrets_snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn cluster_build_example_site_completely_and_validly() {
    let b = built();
    let manifest = Manifest::load(&b.dist).unwrap();
    let ids: BTreeMap<String, String> =
        toml::from_str(&std::fs::read_to_string(b.root.join("secrets/node-ids.toml")).unwrap())
            .unwrap();
    let site = pxebuild::site::Site::load(&b.root.join("site.toml")).unwrap();
    for node in &site.file.nodes {
        let mac = format!("01-{}", node.mac.to_string().replace(':', "-"));
        for path in [
            format!("tftp/pxelinux.cfg/{mac}"),
            format!("tftp/efi64/pxelinux.cfg/{mac}"),
        ] {
            assert!(manifest.file(&path).is_some(), "{path} missing");
        }
        let dir = format!("http/ignition/{}-{}", node.name, ids[&node.name]);
        for doc in ["install", "node"] {
            let path = format!("{dir}/{doc}.ign");
            assert!(manifest.file(&path).is_some(), "{path} missing");
            let access = manifest.access.iter().find(|a| a.path == path).unwrap();
            assert_eq!(
                (access.node.as_str(), access.ip.as_str()),
                (node.name.as_str(), node.ip.to_string().as_str())
            );
            let file = b.dist.join(&path);
            ignition_validate(&file);
            let ign: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
            check_private_keys(&ign, &node.role.to_string(), &path);
            if doc == "node" {
                check_sysexts_match_dist(&ign, &b.dist, &site.http_base());
            }
        }
    }
    for path in [
        "tftp/pxelinux.cfg/default",
        "tftp/efi64/pxelinux.cfg/default",
        "http/dhcp/dnsmasq.conf",
    ] {
        assert!(manifest.file(path).is_some(), "{path} missing");
    }
    // syslinux.efi's initrd parts: public, and in order the initrd's bytes.
    let flatcar = format!("http/flatcar/{}", site.file.flatcar.version);
    let whole = std::fs::read(
        b.dist
            .join(format!("{flatcar}/flatcar_production_pxe_image.cpio.gz")),
    )
    .unwrap();
    let mut joined = Vec::new();
    for i in 0..16 {
        let path = format!("{flatcar}/pxe-initrd/{i:02}");
        assert!(manifest.file(&path).is_some(), "{path} missing");
        assert!(!manifest.access.iter().any(|a| a.path == path), "{path}");
        joined.extend(std::fs::read(b.dist.join(&path)).unwrap());
    }
    assert!(
        !whole.is_empty() && joined == whole,
        "the parts make the initrd"
    );
    for f in &manifest.files {
        let public = !manifest.access.iter().any(|a| a.path == f.path);
        let text = std::fs::read(b.dist.join(&f.path)).unwrap();
        if public {
            let text = String::from_utf8_lossy(&text);
            assert!(!text.contains("PRIVATE KEY"), "{} is public", f.path);
            assert!(
                !text.contains("kind: JoinConfiguration"),
                "{} is public",
                f.path
            );
        }
    }
}

/// Every sysext the node fetches carries the SHA-512 of the file dist/ serves
/// at its URL, and is linked under /etc/extensions.
fn check_sysexts_match_dist(ign: &serde_json::Value, dist: &Path, base: &str) {
    let files = ign["storage"]["files"].as_array().unwrap();
    let links = ign["storage"]["links"].as_array().unwrap();
    let mut names = Vec::new();
    for f in files {
        let Some(hash) = f["contents"]["verification"]["hash"].as_str() else {
            continue;
        };
        let url = f["contents"]["source"].as_str().unwrap();
        let rel = url.strip_prefix(&format!("{base}/")).unwrap();
        let bytes = std::fs::read(dist.join("http").join(rel)).unwrap();
        assert_eq!(
            hash,
            format!("sha512-{}", pxebuild::digest::sha512_hex(&bytes)),
            "{url}"
        );
        let path = f["path"].as_str().unwrap();
        let name = path.split('/').nth(3).unwrap();
        let link = links
            .iter()
            .find(|l| l["path"] == format!("/etc/extensions/{name}.raw"))
            .unwrap_or_else(|| panic!("no /etc/extensions link for {path}"));
        assert_eq!(link["target"], path);
        names.push(name.to_string());
    }
    names.sort();
    assert_eq!(names, ["cilium", "kubernetes"]);
}

/// Workers: no private key anywhere in their configs; control planes: the CA
/// keys in node.ign; install.ign (fetched on every PXE boot): none, whatever
/// the role.
fn check_private_keys(ign: &serde_json::Value, role: &str, path: &str) {
    let files = ign["storage"]["files"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let mut keys = 0;
    for f in &files {
        let p = f["path"].as_str().unwrap();
        let Some(bytes) = ignition_file(ign, p) else {
            continue;
        };
        let text = String::from_utf8_lossy(&bytes);
        keys += text.matches("PRIVATE KEY-----").count();
    }
    if role == "worker" || path.ends_with("install.ign") {
        assert_eq!(keys, 0, "{path}: carries no private key");
    } else if path.ends_with("node.ign") {
        assert!(keys >= 4, "{path}: control planes carry the CA and SA keys");
    }
}

#[test]
fn cluster_second_build_changes_no_secret_and_no_file() {
    let b = built();
    let secrets = secrets_snapshot(&b.root.join("secrets"));
    let manifest = std::fs::read_to_string(b.dist.join("manifest.json")).unwrap();
    let out = build(&b.root, &b.dist, &b.mirror);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(secrets_snapshot(&b.root.join("secrets")), secrets);
    assert_eq!(
        std::fs::read_to_string(b.dist.join("manifest.json")).unwrap(),
        manifest
    );
}

#[test]
fn cluster_build_without_secrets_beside_dist_exits_2() {
    // A tree built earlier (its manifest is what counts) whose secrets are gone.
    let (dir, mirror) = prepared();
    let root = dir.path();
    let dist = root.join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(dist.join("manifest.json"), "{\"format\": 1}").unwrap();
    let out = build(root, &dist, &mirror);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!root.join("secrets").exists(), "no new CA is made");
    assert!(stderr.contains("Restore"), "{stderr}");
}

/// The example site with iPXE as well, built: every node then has a per-MAC
/// pxelinux config (TFTP) and an iPXE script (HTTP).
pub(crate) fn built_with_ipxe() -> Built {
    let (dir, mirror) = prepared();
    let site = dir.path().join("site.toml");
    // No pins: Debian's ipxe package is pinned inside pxebuild.
    let text = std::fs::read_to_string(&site).unwrap().replacen(
        "loaders = [\"bios\", \"uefi\"]",
        "loaders = [\"bios\", \"uefi\", \"ipxe\"]",
        1,
    );
    std::fs::write(&site, text).unwrap();
    build_prepared(dir, mirror)
}

#[test]
fn cluster_boot_configs_are_served_only_to_their_node() {
    use crate::serve_support::{curl, tftp_hpa, Served};
    let b = built_with_ipxe();
    let manifest = Manifest::load(&b.dist).unwrap();
    let site = pxebuild::site::Site::load(&b.root.join("site.toml")).unwrap();
    let node = &site.file.nodes[1];
    let hyphens = node.mac.to_string().replace(':', "-");
    let pxelinux = format!("pxelinux.cfg/01-{hyphens}");
    let ipxe = format!("ipxe/{hyphens}.ipxe");
    for n in &site.file.nodes {
        let mac = n.mac.to_string().replace(':', "-");
        for path in [
            format!("tftp/pxelinux.cfg/01-{mac}"),
            format!("tftp/efi64/pxelinux.cfg/01-{mac}"),
            format!("http/ipxe/{mac}.ipxe"),
        ] {
            let a = manifest.access.iter().find(|a| a.path == path);
            let a = a.unwrap_or_else(|| panic!("{path} has no access record"));
            assert_eq!(
                (a.node.as_str(), a.ip.as_str()),
                (n.name.as_str(), n.ip.to_string().as_str())
            );
        }
    }
    for public in [
        "tftp/pxelinux.cfg/default",
        "http/ipxe/boot.ipxe",
        "http/dhcp/dnsmasq.conf",
    ] {
        assert!(manifest.file(public).is_some(), "{public}");
        assert!(
            !manifest.access.iter().any(|a| a.path == public),
            "{public} stays public"
        );
    }
    // Loopback is not cp2's address: both protocols refuse, and say why.
    let server = Served::start(&b.dist, &[]);
    let tmp = tempfile::tempdir().unwrap();
    let get = |remote: &str, local: &str| {
        tftp_hpa(tmp.path(), server.tftp, remote, local);
        std::fs::read(tmp.path().join(local))
            .ok()
            .filter(|b| !b.is_empty())
    };
    assert_eq!(
        get(&pxelinux, "node.cfg"),
        None,
        "TFTP must refuse {pxelinux}"
    );
    server.wait_log(&[
        "tftp",
        &pxelinux,
        &format!("refused:belongs-to-{}", node.name),
    ]);
    let default = get("pxelinux.cfg/default", "default.cfg").expect("the default is public");
    assert!(String::from_utf8_lossy(&default).contains("LOCALBOOT"));
    let out = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &server.url(&format!("/{ipxe}")),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "403",
        "HTTP must refuse {ipxe}"
    );
    server.wait_log(&["http", &ipxe, &format!("refused:belongs-to-{}", node.name)]);
    let out = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &server.url("/ipxe/boot.ipxe"),
    ]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
}
