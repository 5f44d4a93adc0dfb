//! The fetch part of `pxebuild build` and `pxebuild mirror` against a fixture
//! mirror (tests/fixtures/mirror/generate.sh) served on loopback by the test:
//! verification, faults, the store, offline builds and the air-gap flow.
mod charts;
pub(crate) mod server;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};
use tempfile::TempDir;

use server::{Fault, MirrorServer};

const VERSION: &str = "4593.2.5";
const FLATCAR: &str = "/stable.release.flatcar-linux.net/amd64-usr/4593.2.5";
const BAKERY: &str = "/github.com/flatcar/sysext-bakery/releases/download";
/// Debian's loader packages in the fixture mirror: the genuine files, at
/// their pool paths below deb.debian.org/debian.
const POOL: &str = "deb.debian.org/debian/pool/main";
const PXELINUX_DEB: &str = "pxelinux_6.04~git20190206.bf6db5b4+dfsg1-3_all.deb";
const SYSLINUX_COMMON_DEB: &str = "syslinux-common_6.04~git20190206.bf6db5b4+dfsg1-3_all.deb";
/// The SHA-256 pxebuild pins for Debian's pxelinux (Debian's package index lists it).
const PXELINUX_PIN: &str = "ef253a75cb558b38c4b65f8c09a816e7c405645751936065f14558c1553d0db1";
/// dist path of each loader → the package (below `POOL`) and its member.
const DEB_LOADERS: [(&str, &str, &str); 7] = [
    (
        "tftp/lpxelinux.0",
        "s/syslinux/pxelinux_6.04~git20190206.bf6db5b4+dfsg1-3_all.deb",
        "./usr/lib/PXELINUX/lpxelinux.0",
    ),
    (
        "tftp/ldlinux.c32",
        "s/syslinux/syslinux-common_6.04~git20190206.bf6db5b4+dfsg1-3_all.deb",
        "./usr/lib/syslinux/modules/bios/ldlinux.c32",
    ),
    (
        "tftp/efi64/syslinux.efi",
        "s/syslinux/syslinux-efi_6.04~git20190206.bf6db5b4+dfsg1-3_all.deb",
        "./usr/lib/SYSLINUX.EFI/efi64/syslinux.efi",
    ),
    (
        "tftp/efi64/ldlinux.e64",
        "s/syslinux/syslinux-common_6.04~git20190206.bf6db5b4+dfsg1-3_all.deb",
        "./usr/lib/syslinux/modules/efi64/ldlinux.e64",
    ),
    (
        "tftp/undionly.kpxe",
        "i/ipxe/ipxe_1.0.0+git-20190125.36a4c85-5.1_all.deb",
        "./usr/lib/ipxe/undionly.kpxe",
    ),
    (
        "tftp/ipxe.efi",
        "i/ipxe/ipxe_1.0.0+git-20190125.36a4c85-5.1_all.deb",
        "./boot/ipxe.efi",
    ),
    (
        "tftp/snponly.efi",
        "i/ipxe/ipxe_1.0.0+git-20190125.36a4c85-5.1_all.deb",
        "./usr/lib/ipxe/snponly.efi",
    ),
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mirror")
}

/// The generated fixture mirror, made once per test run.
fn master() -> &'static Path {
    static MASTER: OnceLock<TempDir> = OnceLock::new();
    MASTER
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let out = Command::new(fixtures().join("generate.sh"))
                .arg(dir.path())
                .output()
                .expect("running generate.sh");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            dir
        })
        .path()
}

/// A good build's dist/ and secrets/, made once per test run. Fault tests
/// start from a copy and check that a failed build leaves it byte-identical.
fn good_tree() -> &'static Path {
    static GOOD: OnceLock<TempDir> = OnceLock::new();
    GOOD.get_or_init(|| {
        let w = World::new();
        assert_ok(&w.build());
        let dir = tempfile::tempdir().unwrap();
        for sub in ["dist", "secrets"] {
            copy_tree(&w.tmp.path().join(sub), &dir.path().join(sub));
        }
        dir
    })
    .path()
}

fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(status.success(), "cp -a {}", from.display());
}

/// Every file of a tree with its digest (a dist/ snapshot).
fn snapshot(dir: &Path) -> std::collections::BTreeMap<String, String> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
            (rel, sha256_of(e.path()))
        })
        .collect()
}

fn sha256_of(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// SHA-256 of one file inside a `.deb`, as dpkg-deb extracts it.
fn sha256_in_deb(deb: &Path, member: &str) -> String {
    let tar = Command::new("dpkg-deb")
        .arg("--fsys-tarfile")
        .arg(deb)
        .output()
        .unwrap();
    assert!(tar.status.success(), "dpkg-deb {}", deb.display());
    let mut archive = tar::Archive::new(&tar.stdout[..]);
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        if entry.path().unwrap().to_string_lossy() == member {
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut entry, &mut bytes).unwrap();
            return hex::encode(Sha256::digest(&bytes));
        }
    }
    panic!("{} lacks {member}", deb.display());
}

/// One test's world: a copy of the fixture mirror, its server, a site, a cache.
struct World {
    tmp: TempDir,
    server: MirrorServer,
}

impl World {
    fn new() -> World {
        World::with_sources("")
    }

    /// A world with the opt-in upstream loaders, pinned to the mirror's
    /// stand-in syslinux tarball and iPXE files.
    fn upstream() -> World {
        let w = World::new();
        let m = w.mirror();
        let pin = |rel: &str| sha256_of(&m.join(rel));
        let extra = format!(
            "loaders = \"upstream\"\nsyslinux_sha256 = \"{}\"\nipxe_sha256s = {{ \
             \"undionly.kpxe\" = \"{}\", \"ipxe.efi\" = \"{}\", \"snponly.efi\" = \"{}\" }}",
            pin("www.kernel.org/pub/linux/utils/boot/syslinux/syslinux-6.03.tar.xz"),
            pin("boot.ipxe.org/undionly.kpxe"),
            pin("boot.ipxe.org/ipxe.efi"),
            pin("boot.ipxe.org/snponly.efi"),
        );
        w.write_site(&w.server.url(), &extra);
        w
    }

    /// `extra` lines go into `[sources]` (after mirror and key); the loaders
    /// are the default, Debian's packages, with no pins from the site.
    fn with_sources(extra: &str) -> World {
        let tmp = tempfile::tempdir().unwrap();
        let mirror = tmp.path().join("mirror");
        let status = Command::new("cp")
            .arg("-a")
            .arg(master())
            .arg(&mirror)
            .status()
            .unwrap();
        assert!(status.success());
        // A build renders node configs too: it needs the site's templates and payload.
        for dir in ["templates", "payload"] {
            let status = Command::new("cp")
                .arg("-a")
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
                .arg(tmp.path().join(dir))
                .status()
                .unwrap();
            assert!(status.success());
        }
        let server = MirrorServer::start(&mirror);
        let world = World { tmp, server };
        world.write_site(&world.server.url(), extra);
        world
    }

    /// A world whose dist/ (with its secrets/) is a previous good build, and
    /// a snapshot of that dist/; the world's own cache starts empty, so the
    /// next build really fetches.
    fn with_previous_dist() -> (World, std::collections::BTreeMap<String, String>) {
        let w = World::new();
        for sub in ["dist", "secrets"] {
            copy_tree(&good_tree().join(sub), &w.tmp.path().join(sub));
        }
        let before = snapshot(&w.dist());
        assert!(before.contains_key("manifest.json"));
        (w, before)
    }

    /// The previous dist/ is still there, byte for byte (manifest included).
    #[track_caller]
    fn assert_dist_kept(&self, before: &std::collections::BTreeMap<String, String>) {
        assert!(
            snapshot(&self.dist()) == *before,
            "a failed build changed the previous dist/"
        );
    }

    fn mirror(&self) -> PathBuf {
        self.tmp.path().join("mirror")
    }

    fn dist(&self) -> PathBuf {
        self.tmp.path().join("dist")
    }

    fn write_site(&self, mirror_url: &str, extra: &str) {
        let key = fixtures().join("test-key.pub.asc");
        let text = format!(
            r#"[cluster]
name = "lab"
kubernetes_version = "v1.35.9"
endpoint = "10.20.0.10:6443"
endpoint_mode = "external"

[network]
subnet = "10.20.0.0/24"
gateway = "10.20.0.1"

[boot_server]
address = "10.20.0.2"
loaders = ["bios", "uefi", "ipxe"]

[flatcar]
channel = "stable"
version = "{VERSION}"

[sysext]
kubernetes = "v1.35.9"
cilium = "v0.18.2"

[cilium]
version = "1.19.8"

[ssh]
authorized_keys = ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGZpeHR1cmVrZXlmaXh0dXJla2V5Zml4dHVyZWtleQ test@example"]

[sources]
mirror = "{mirror_url}"
signing_key = "{key}"
{extra}

[[node]]
name = "cp1"
mac = "52:54:00:00:00:11"
ip = "10.20.0.11"
role = "control-plane"
disk = "/dev/disk/by-id/virtio-root"

[[node]]
name = "w1"
mac = "52:54:00:00:00:21"
ip = "10.20.0.21"
role = "worker"
disk = "/dev/disk/by-id/virtio-root"
"#,
            key = key.display(),
        );
        std::fs::write(self.tmp.path().join("site.toml"), text).unwrap();
    }

    /// Runs pxebuild in the world's directory with its cache and short timeouts.
    fn run(&self, args: &[&str], envs: &[(&str, &str)]) -> Output {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pxebuild"));
        cmd.current_dir(self.tmp.path())
            .args(args)
            .env("PXEBUILD_CACHE", self.tmp.path().join("cache"))
            .env("PXEBUILD_HTTP_TIMEOUT", "2")
            .env("PXEBUILD_HTTP_BODY_TIMEOUT", "2")
            .env("PXEBUILD_HTTP_RETRIES", "2")
            .env("PXEBUILD_HTTP_BACKOFF_MS", "10")
            .env_remove("PXEBUILD_MIRROR")
            .env_remove("PXEBUILD_SIGNING_KEY");
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().expect("running pxebuild")
    }

    /// Sets `flatcar.version` in site.toml (e.g. to `current`).
    fn set_flatcar_version(&self, version: &str) {
        let site = self.tmp.path().join("site.toml");
        let text = std::fs::read_to_string(&site).unwrap();
        let pinned = format!("version = \"{VERSION}\"");
        assert!(text.contains(&pinned));
        std::fs::write(
            &site,
            text.replace(&pinned, &format!("version = \"{version}\"")),
        )
        .unwrap();
    }

    /// The channel's `current/version.txt` in the served mirror.
    fn version_txt(&self) -> PathBuf {
        self.mirror()
            .join("stable.release.flatcar-linux.net/amd64-usr/current/version.txt")
    }

    fn manifest(&self) -> serde_json::Value {
        let text = std::fs::read_to_string(self.dist().join("manifest.json")).unwrap();
        serde_json::from_str(&text).unwrap()
    }

    fn build(&self) -> Output {
        self.run(&["build"], &[])
    }

    /// The published PXE kernel, its digest, and its blob in the store.
    fn pxe_kernel_blob(&self) -> (PathBuf, String, PathBuf) {
        let kernel = self.dist().join(format!(
            "http/flatcar/{VERSION}/flatcar_production_pxe.vmlinuz"
        ));
        let sha = sha256_of(&kernel);
        let blob = self
            .tmp
            .path()
            .join("cache/store/sha256")
            .join(&sha[..2])
            .join(&sha);
        (kernel, sha, blob)
    }

    fn store_blobs(&self) -> Vec<String> {
        let dir = self.tmp.path().join("cache/store/sha256");
        walkdir::WalkDir::new(dir)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect()
    }

    fn partial_files(&self) -> usize {
        std::fs::read_dir(self.tmp.path().join("cache/store/tmp"))
            .map(|d| d.count())
            .unwrap_or(0)
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn assert_ok(out: &Output) {
    assert!(out.status.success(), "pxebuild failed:\n{}", stderr(out));
}

#[track_caller]
fn assert_fails_with(out: &Output, needles: &[&str]) {
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected a failed build:\n{}",
        stderr(out)
    );
    let err = stderr(out);
    for needle in needles {
        assert!(err.contains(needle), "stderr lacks {needle:?}:\n{err}");
    }
}

/// dist path → mirror path of the same bytes.
fn expected_files() -> Vec<(String, String)> {
    let fc = |f: &str| {
        (
            format!("http/flatcar/{VERSION}/{f}"),
            format!("{FLATCAR}/{f}"),
        )
    };
    vec![
        fc("flatcar_production_pxe.vmlinuz"),
        fc("flatcar_production_pxe_image.cpio.gz"),
        fc("flatcar_production_image.bin.bz2"),
        fc("flatcar_production_image.bin.bz2.sig"),
        (
            "http/sysext/kubernetes/kubernetes-v1.35.9-x86-64.raw".into(),
            format!("{BAKERY}/kubernetes-v1.35.9/kubernetes-v1.35.9-x86-64.raw"),
        ),
        (
            "http/sysext/cilium/cilium-v0.18.2-x86-64.raw".into(),
            format!("{BAKERY}/cilium-v0.18.2/cilium-v0.18.2-x86-64.raw"),
        ),
    ]
}

/// Every loader in dist/ is the member of the mirror's Debian package.
#[track_caller]
fn assert_loaders_from_debs(w: &World) {
    for (dist, deb, member) in DEB_LOADERS {
        assert_eq!(
            sha256_of(&w.dist().join(dist)),
            sha256_in_deb(&w.mirror().join(POOL).join(deb), member),
            "{dist}"
        );
    }
}

#[track_caller]
fn assert_dist_matches_mirror(w: &World) {
    for (dist, src) in expected_files() {
        let got = w.dist().join(&dist);
        assert!(got.is_file(), "dist lacks {dist}");
        assert_eq!(
            sha256_of(&got),
            sha256_of(&w.mirror().join(src.trim_start_matches('/'))),
            "{dist}"
        );
    }
    assert_loaders_from_debs(w);
}

#[test]
fn good_build_places_every_verified_artifact() {
    let w = World::new();
    assert_ok(&w.build());
    assert_dist_matches_mirror(&w);
    // The site pins no loader: the .deb files were fetched by their pool
    // paths and checked against pxebuild's own pins.
    let site = std::fs::read_to_string(w.tmp.path().join("site.toml")).unwrap();
    assert!(!site.contains("sha256"), "{site}");
    let asked: Vec<String> = w.server.requests().into_iter().map(|r| r.path).collect();
    for (_, deb, _) in DEB_LOADERS {
        assert!(
            asked.contains(&format!("/{POOL}/{deb}")),
            "{deb}: {asked:?}"
        );
    }
    assert!(
        !asked
            .iter()
            .any(|p| p.contains("kernel.org") || p.contains("boot.ipxe.org")),
        "{asked:?}"
    );
    // Each sysext directory is a sysupdate source: SHA256SUMS lists the image.
    let image = w
        .dist()
        .join("http/sysext/kubernetes/kubernetes-v1.35.9-x86-64.raw");
    let sums = std::fs::read_to_string(w.dist().join("http/sysext/kubernetes/SHA256SUMS")).unwrap();
    assert_eq!(
        sums,
        format!("{}  kubernetes-v1.35.9-x86-64.raw\n", sha256_of(&image))
    );
    // sha256sum agrees with the index, in the directory, as systemd-sysupdate would check.
    let check = Command::new("sha256sum")
        .args(["-c", "SHA256SUMS"])
        .current_dir(w.dist().join("http/sysext/kubernetes"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let manifest = std::fs::read_to_string(w.dist().join("manifest.json")).unwrap();
    assert!(manifest.contains("http/flatcar/4593.2.5/flatcar_production_image.bin.bz2.sig"));
    assert_eq!(w.partial_files(), 0, "no temp files are left");
}

#[test]
fn a_second_build_makes_no_requests() {
    let w = World::new();
    assert_ok(&w.build());
    assert!(!w.server.requests().is_empty());
    w.server.reset_requests();
    assert_ok(&w.build());
    assert_eq!(w.server.requests().len(), 0, "{:?}", w.server.requests());
    // A fresh output directory is filled from the store alone, too.
    assert_ok(&w.run(&["build", "--out", "dist2"], &[]));
    assert_eq!(w.server.requests().len(), 0);
}

#[test]
fn a_tampered_file_fails_and_keeps_the_previous_dist() {
    let (w, before) = World::with_previous_dist();
    let initrd = w.mirror().join(format!(
        "{}/flatcar_production_pxe_image.cpio.gz",
        &FLATCAR[1..]
    ));
    let mut bytes = std::fs::read(&initrd).unwrap();
    bytes[10] ^= 0xff;
    std::fs::write(&initrd, &bytes).unwrap();
    let tampered = hex::encode(Sha256::digest(&bytes));
    let out = w.build();
    assert_fails_with(
        &out,
        &[
            "flatcar_production_pxe_image.cpio.gz",
            &format!(
                "{}{FLATCAR}/flatcar_production_pxe_image.cpio.gz",
                w.server.url()
            ),
            "does not match the file",
        ],
    );
    w.assert_dist_kept(&before);
    assert!(
        !w.store_blobs().contains(&tampered),
        "the tampered file is not stored"
    );
    assert_eq!(w.partial_files(), 0);
}

#[test]
fn a_wrong_signing_key_is_refused_from_the_site_or_the_environment() {
    let wrong = fixtures().join("wrong-key.pub.asc");
    let w = World::with_sources("");
    let out = w.run(
        &["build"],
        &[("PXEBUILD_SIGNING_KEY", wrong.to_str().unwrap())],
    );
    assert_fails_with(
        &out,
        &[
            "flatcar_production",
            "not part of",
            "wrong-key.pub.asc",
            "set PXEBUILD_SIGNING_KEY to that key",
        ],
    );
    // The same key named in the site.
    let site = w.tmp.path().join("site.toml");
    let right = fixtures().join("test-key.pub.asc");
    let text = std::fs::read_to_string(&site).unwrap();
    let text = text.replace(right.to_str().unwrap(), wrong.to_str().unwrap());
    std::fs::write(&site, text).unwrap();
    assert_fails_with(
        &w.build(),
        &[
            "not part of",
            "wrong-key.pub.asc",
            "set sources.signing_key to that key",
        ],
    );
    assert!(!w.dist().exists(), "nothing is published");
    // Other steps' verified blobs may land (how many depends on -j); none of
    // the refused Flatcar files or their signatures may.
    let stored = w.store_blobs();
    for file in [
        "flatcar_production_pxe.vmlinuz",
        "flatcar_production_pxe_image.cpio.gz",
        "flatcar_production_image.bin.bz2",
    ] {
        for f in [file.to_string(), format!("{file}.sig")] {
            let sha = sha256_of(&w.mirror().join(format!("{}/{f}", &FLATCAR[1..])));
            assert!(!stored.contains(&sha), "{f} was stored although refused");
        }
    }
}

#[test]
fn a_stored_copy_that_fails_its_signature_names_the_key_setting() {
    let w = World::new();
    assert_ok(&w.build());
    let wrong = fixtures().join("wrong-key.pub.asc");
    let out = w.run(
        &["build"],
        &[("PXEBUILD_SIGNING_KEY", wrong.to_str().unwrap())],
    );
    assert_fails_with(
        &out,
        &[
            "the stored copy no longer verifies",
            "checked with the key PXEBUILD_SIGNING_KEY names",
            "set PXEBUILD_SIGNING_KEY to that key",
        ],
    );
}

#[test]
fn a_signing_key_that_cannot_be_read_is_bad_input_naming_its_setting() {
    let w = World::with_sources("");
    let out = w.run(&["build"], &[("PXEBUILD_SIGNING_KEY", "/nonexistent.asc")]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "error: PXEBUILD_SIGNING_KEY: reading signing key /nonexistent.asc: No such file"
        ),
        "{}",
        stderr(&out)
    );
    let site = w.tmp.path().join("site.toml");
    let right = fixtures().join("test-key.pub.asc");
    let text = std::fs::read_to_string(&site).unwrap();
    std::fs::write(
        &site,
        text.replace(right.to_str().unwrap(), "keys/missing.asc"),
    )
    .unwrap();
    let out = w.build();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("error: sources.signing_key: reading signing key "),
        "{}",
        stderr(&out)
    );
    assert!(w.server.requests().is_empty(), "nothing fetched");
    assert!(!w.dist().exists());
}

#[test]
fn a_missing_pxe_kernel_signature_falls_back_to_the_image_kernel_signature() {
    let w = World::new();
    std::fs::remove_file(w.mirror().join(format!(
        "{}/flatcar_production_pxe.vmlinuz.sig",
        &FLATCAR[1..]
    )))
    .unwrap();
    assert_ok(&w.build());
    assert_dist_matches_mirror(&w);
    let asked: Vec<String> = w.server.requests().into_iter().map(|r| r.path).collect();
    assert!(
        asked.contains(&format!("{FLATCAR}/flatcar_production_image.vmlinuz.sig")),
        "{asked:?}"
    );
}

#[test]
fn a_missing_signature_fails_before_anything_is_built() {
    let (w, before) = World::with_previous_dist();
    let sig = format!("{}/flatcar_production_image.bin.bz2.sig", &FLATCAR[1..]);
    std::fs::remove_file(w.mirror().join(sig)).unwrap();
    let out = w.build();
    assert_fails_with(
        &out,
        &[
            "flatcar_production_image.bin.bz2.sig",
            "HTTP 404",
            "nothing was built",
        ],
    );
    assert!(
        w.server.requests().iter().all(|r| r.method == "HEAD"),
        "no download started"
    );
    w.assert_dist_kept(&before);
}

#[test]
fn a_404_names_the_artifact_and_url() {
    let (w, before) = World::with_previous_dist();
    w.server.fault(
        &format!("{BAKERY}/cilium-v0.18.2/cilium-v0.18.2-x86-64.raw"),
        Fault::NotFound,
    );
    let out = w.build();
    assert_fails_with(
        &out,
        &[
            "cilium-v0.18.2-x86-64.raw",
            &format!(
                "{}{BAKERY}/cilium-v0.18.2/cilium-v0.18.2-x86-64.raw (HTTP 404)",
                w.server.url()
            ),
            // The same advice as a 404 during the download.
            "not found: check the pinned version",
            "`pxebuild mirror` writes the layout",
        ],
    );
    assert!(w.store_blobs().is_empty(), "nothing was fetched");
    w.assert_dist_kept(&before);
}

#[test]
fn a_head_forbidden_by_a_cdn_does_not_stop_the_build() {
    let w = World::new();
    let path = format!("{FLATCAR}/flatcar_production_image.bin.bz2");
    w.server.fault(&path, Fault::HeadForbidden);
    assert_ok(&w.build());
    assert_dist_matches_mirror(&w);
    let seen: Vec<String> = w
        .server
        .requests()
        .into_iter()
        .filter(|r| r.path == path)
        .map(|r| r.method)
        .collect();
    assert_eq!(seen, ["HEAD", "GET"], "the download decided");
}

#[test]
fn redirects_are_followed() {
    let w = World::new();
    let path = format!("{FLATCAR}/flatcar_production_image.bin.bz2");
    w.server.fault(&path, Fault::Redirect);
    assert_ok(&w.build());
    assert_dist_matches_mirror(&w);
    let asked: Vec<String> = w.server.requests().into_iter().map(|r| r.path).collect();
    assert!(asked.contains(&format!("/redirected{path}")), "{asked:?}");
}

#[test]
fn an_interrupted_transfer_resumes_with_a_range_request() {
    let w = World::new();
    let path = format!("{FLATCAR}/flatcar_production_image.bin.bz2");
    w.server.fault(&path, Fault::DropMidway { times: 1 });
    assert_ok(&w.build());
    assert_dist_matches_mirror(&w);
    let gets = w.server.gets_of(&path);
    assert_eq!(gets.len(), 2, "{gets:?}");
    let size = std::fs::metadata(w.mirror().join(&path[1..]))
        .unwrap()
        .len();
    assert_eq!(
        gets[1].range.as_deref(),
        Some(format!("bytes={}-", size / 2).as_str())
    );
}

#[test]
fn transient_server_errors_are_retried() {
    let w = World::new();
    let path = format!("{FLATCAR}/flatcar_production_pxe_image.cpio.gz");
    w.server.fault(&path, Fault::Unavailable { times: 1 });
    assert_ok(&w.build());
    assert_dist_matches_mirror(&w);
    let gets = w.server.gets_of(&path).len();
    assert_eq!(gets, 2, "one 503, then the retry");
    // A server that keeps failing ends the build, naming the URL and status.
    let w = World::new();
    w.server.fault(&path, Fault::Unavailable { times: 1000 });
    let out = w.build();
    assert_fails_with(&out, &[&path, "HTTP status 503", "giving up"]);
}

#[test]
fn a_host_that_does_not_resolve_is_named_once_without_retries() {
    let w = World::new();
    let started = std::time::Instant::now();
    // `.invalid` never resolves (RFC 2606); retries would take seconds.
    let out = w.run(
        &["build"],
        &[
            ("PXEBUILD_MIRROR", "http://pxebuild-mirror.invalid"),
            ("PXEBUILD_HTTP_RETRIES", "4"),
            ("PXEBUILD_HTTP_BACKOFF_MS", "2000"),
        ],
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(6),
        "DNS failures were retried"
    );
    assert_fails_with(
        &out,
        &["cannot resolve pxebuild-mirror.invalid (DNS), needed for "],
    );
    let err = stderr(&out);
    assert_eq!(err.matches("pxebuild-mirror.invalid").count(), 1, "{err}");
    assert_eq!(err.matches("--offline").count(), 1, "{err}");
    assert_eq!(err.matches("PXEBUILD_MIRROR").count(), 1, "{err}");
    assert!(err.lines().all(|l| l.len() < 200), "{err}");

    // The same when `current` has to be resolved first.
    w.set_flatcar_version("current");
    let out = w.run(
        &["build"],
        &[("PXEBUILD_MIRROR", "http://pxebuild-mirror.invalid")],
    );
    assert_fails_with(&out, &["cannot resolve pxebuild-mirror.invalid", "current"]);
    assert_eq!(
        stderr(&out).matches("--offline").count(),
        1,
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_transfer_that_keeps_breaking_fails_cleanly() {
    let (w, before) = World::with_previous_dist();
    let path = format!("{FLATCAR}/flatcar_production_pxe.vmlinuz");
    w.server.fault(&path, Fault::DropMidway { times: 1000 });
    // A one-byte file: every attempt breaks before the first byte, so no
    // attempt makes progress and the retry limit ends it.
    std::fs::write(w.mirror().join(&path[1..]), vec![7u8; 1]).unwrap();
    let out = w.build();
    assert_fails_with(&out, &["flatcar_production_pxe.vmlinuz", &path]);
    w.assert_dist_kept(&before);
    assert_eq!(w.partial_files(), 0, "a failed download leaves no .part");
}

#[test]
fn a_killed_builds_partial_file_is_resumed_by_the_next_build() {
    let w = World::new();
    let path = format!("{FLATCAR}/flatcar_production_image.bin.bz2");
    let bytes = std::fs::read(w.mirror().join(&path[1..])).unwrap();
    // What a build killed mid-transfer leaves: the first bytes, under the
    // URL's key in store/tmp (no cleanup runs on SIGKILL).
    let url = format!("https://stable.release.flatcar-linux.net/amd64-usr/{VERSION}/flatcar_production_image.bin.bz2");
    let tmp = w.tmp.path().join("cache/store/tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let have = bytes.len() / 3;
    let part = tmp.join(format!("{}.part", blake3::hash(url.as_bytes()).to_hex()));
    std::fs::write(&part, &bytes[..have]).unwrap();
    assert_ok(&w.build());
    assert_dist_matches_mirror(&w);
    let gets = w.server.gets_of(&path);
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert_eq!(
        gets[0].range.as_deref(),
        Some(format!("bytes={have}-").as_str())
    );
    assert_eq!(w.partial_files(), 0);
}

#[test]
fn a_hanging_server_times_out_naming_the_url() {
    let (w, before) = World::with_previous_dist();
    let path = format!("{BAKERY}/kubernetes-v1.35.9/kubernetes-v1.35.9-x86-64.raw");
    w.server.fault(&path, Fault::Hang);
    let out = w.build();
    assert_fails_with(&out, &["kubernetes-v1.35.9-x86-64.raw", &path, "timed out"]);
    w.assert_dist_kept(&before);
    assert_eq!(w.partial_files(), 0, "a failed download leaves no .part");
}

#[test]
fn a_sha256sums_mismatch_fails() {
    let (w, before) = World::with_previous_dist();
    let image = w.mirror().join(format!(
        "{}/cilium-v0.18.2/cilium-v0.18.2-x86-64.raw",
        &BAKERY[1..]
    ));
    std::fs::write(&image, b"not what SHA256SUMS lists\n").unwrap();
    let out = w.build();
    assert_fails_with(&out, &["SHA256SUMS mismatch", "cilium-v0.18.2-x86-64.raw"]);
    assert_eq!(w.partial_files(), 0);
    w.assert_dist_kept(&before);
}

#[test]
fn offline_names_what_is_missing_then_builds_from_a_full_store() {
    let w = World::new();
    let out = w.run(&["build", "--offline"], &[]);
    assert_fails_with(
        &out,
        &[
            "--offline",
            "flatcar_production_image.bin.bz2",
            PXELINUX_DEB,
            "contacts no server or mirror",
            "build once without --offline",
            "`pxebuild mirror DIR` on a connected host",
        ],
    );
    assert!(
        !stderr(&out).contains("point sources.mirror at it"),
        "an offline build is not told to use a mirror"
    );
    assert!(w.server.requests().is_empty(), "offline makes no request");
    assert_ok(&w.build());
    w.server.reset_requests();
    std::fs::remove_dir_all(w.dist()).unwrap();
    assert_ok(&w.run(&["build", "--offline", "--out", "dist"], &[]));
    assert!(w.server.requests().is_empty());
    assert_dist_matches_mirror(&w);
}

#[test]
fn a_corrupt_store_entry_is_fetched_again_with_verify_cache() {
    let w = World::new();
    assert_ok(&w.build());
    let (_, sha, blob) = w.pxe_kernel_blob();
    std::fs::remove_file(&blob).unwrap();
    std::fs::write(&blob, b"bit rot").unwrap();
    w.server.reset_requests();
    assert_ok(&w.run(&["build", "--verify-cache"], &[]));
    assert!(w
        .server
        .requests()
        .iter()
        .any(|r| r.path.ends_with("flatcar_production_pxe.vmlinuz") && r.method == "GET"));
    assert_eq!(sha256_of(&blob), sha);
}

#[test]
fn a_blob_deleted_by_hand_names_verify_cache_which_restores_it() {
    let w = World::new();
    assert_ok(&w.build());
    let (kernel, sha, blob) = w.pxe_kernel_blob();
    std::fs::remove_file(&blob).unwrap();
    // A change makes the build publish a new tree, which needs the lost blob.
    let site = w.tmp.path().join("site.toml");
    let text = std::fs::read_to_string(&site).unwrap();
    std::fs::write(
        &site,
        text.replace("52:54:00:00:00:21", "52:54:00:00:00:22"),
    )
    .unwrap();
    assert_fails_with(
        &w.build(),
        &["flatcar_production_pxe.vmlinuz", "--verify-cache"],
    );
    assert_eq!(sha256_of(&kernel), sha, "the served tree is untouched");
    assert_ok(&w.run(&["build", "--verify-cache"], &[]));
    assert_eq!(sha256_of(&blob), sha, "fetched again");
    assert_ok(&w.build());
}

#[test]
fn mirror_writes_the_air_gap_layout_that_a_site_can_build_from() {
    let w = World::new();
    // A site that asks for `current` gets current/version.txt in the layout too.
    w.set_flatcar_version("current");
    let out = w.run(&["mirror", "airgap"], &[]);
    assert_ok(&out);
    let airgap = w.tmp.path().join("airgap");
    assert_eq!(
        std::fs::read(
            airgap.join("stable.release.flatcar-linux.net/amd64-usr/current/version.txt")
        )
        .unwrap(),
        std::fs::read(w.version_txt()).unwrap()
    );
    for (_, src) in expected_files()
        .into_iter()
        .filter(|(d, _)| !d.ends_with(".sig"))
    {
        let rel = src.trim_start_matches('/');
        assert_eq!(
            sha256_of(&airgap.join(rel)),
            sha256_of(&w.mirror().join(rel)),
            "{rel}"
        );
    }
    for (_, deb, _) in DEB_LOADERS {
        let rel = Path::new(POOL).join(deb);
        assert_eq!(
            sha256_of(&airgap.join(&rel)),
            sha256_of(&w.mirror().join(&rel)),
            "{deb}"
        );
    }
    // Serve the written tree as the only source; a fresh cache builds from it.
    let airgap_server = MirrorServer::start(&airgap);
    std::fs::remove_dir_all(w.tmp.path().join("cache")).unwrap();
    w.server.reset_requests();
    let out = w.run(&["build"], &[("PXEBUILD_MIRROR", &airgap_server.url())]);
    assert_ok(&out);
    assert!(
        w.server.requests().is_empty(),
        "the site's own mirror was not asked"
    );
    assert!(
        !airgap_server.requests().is_empty(),
        "PXEBUILD_MIRROR replaced the site's mirror"
    );
    assert_dist_matches_mirror(&w);
}

#[test]
fn loaders_come_from_a_local_directory() {
    let w = World::with_sources(r#"loaders_dir = "loaders""#);
    let dir = w.tmp.path().join("loaders");
    std::fs::create_dir(&dir).unwrap();
    let out = w.build();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("lacks lpxelinux.0, ldlinux.c32"),
        "{}",
        stderr(&out)
    );
    for src in [
        "/usr/lib/PXELINUX/lpxelinux.0",
        "/usr/lib/syslinux/modules/bios/ldlinux.c32",
        "/usr/lib/SYSLINUX.EFI/efi64/syslinux.efi",
        "/usr/lib/syslinux/modules/efi64/ldlinux.e64",
        "/usr/lib/ipxe/undionly.kpxe",
        "/usr/lib/ipxe/ipxe.efi",
        "/usr/lib/ipxe/snponly.efi",
    ] {
        let src = Path::new(src);
        std::fs::copy(src, dir.join(src.file_name().unwrap())).unwrap();
    }
    assert_ok(&w.build());
    assert_eq!(
        sha256_of(&w.dist().join("tftp/efi64/ldlinux.e64")),
        sha256_of(Path::new("/usr/lib/syslinux/modules/efi64/ldlinux.e64"))
    );
    let asked: Vec<String> = w.server.requests().into_iter().map(|r| r.path).collect();
    assert!(
        !asked
            .iter()
            .any(|p| p.contains("syslinux") || p.contains("ipxe")),
        "{asked:?}"
    );
}

#[test]
fn mirror_refuses_the_sites_own_directories_and_built_trees() {
    let w = World::new();
    assert_ok(&w.build());
    let root = w.tmp.path();
    std::fs::create_dir_all(root.join("secrets")).unwrap();
    for (dir, why) in [
        (root.join("site.toml"), "is not a directory"),
        (root.to_path_buf(), "is the site's directory"),
        (root.join("secrets"), "is the site's secrets directory"),
        (root.join("cache/mirror"), "is the build cache"),
        (w.dist(), "is the site's dist/"),
        (w.dist().join("http/mirror"), "is the site's dist/"),
    ] {
        let out = w.run(&["mirror", dir.to_str().unwrap()], &[]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}: {}",
            dir.display(),
            stderr(&out)
        );
        assert!(
            stderr(&out).contains(why),
            "{}: {}",
            dir.display(),
            stderr(&out)
        );
    }
    // A built tree published elsewhere is recognised by its manifest.
    let other = root.join("other-dist");
    assert_ok(&w.run(&["build", "--out", other.to_str().unwrap()], &[]));
    let out = w.run(&["mirror", other.join("tftp").to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("lies in the built tree"),
        "{}",
        stderr(&out)
    );
    assert!(!other.join("tftp/stable.release.flatcar-linux.net").exists());
}

#[test]
fn resolve_current_prints_the_pinned_version() {
    let w = World::new();
    let out = w.run(&["mirror", "--resolve-current"], &[]);
    assert_ok(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), VERSION);
}

#[test]
fn current_is_resolved_printed_used_and_recorded() {
    let w = World::new();
    w.set_flatcar_version("current");
    let out = w.build();
    assert_ok(&out);
    assert!(
        stderr(&out).contains(&format!("flatcar: stable current is {VERSION}\n")),
        "{}",
        stderr(&out)
    );
    let asked: Vec<String> = w.server.requests().into_iter().map(|r| r.path).collect();
    assert!(
        asked.contains(&"/stable.release.flatcar-linux.net/amd64-usr/current/version.txt".into()),
        "{asked:?}"
    );
    // Every artifact and config uses the pinned release, never `current`.
    assert_dist_matches_mirror(&w);
    assert!(
        !asked
            .iter()
            .any(|p| p.contains("/current/") && !p.ends_with("version.txt")),
        "{asked:?}"
    );
    let manifest = w.manifest();
    assert_eq!(
        manifest["flatcar"],
        serde_json::json!({"arch": "amd64", "channel": "stable", "requested": "current", "version": VERSION})
    );
    let files = manifest["files"].as_array().unwrap();
    assert!(files
        .iter()
        .all(|f| !f["path"].as_str().unwrap().contains("current")));
    // A newer `current` is followed: the next build asks for that release.
    std::fs::write(
        w.version_txt(),
        "FLATCAR_VERSION=9999.1.0\nFLATCAR_VERSION_ID=9999.1.0\n",
    )
    .unwrap();
    let out = w.build();
    assert_fails_with(
        &out,
        &["flatcar: stable current is 9999.1.0", "amd64-usr/9999.1.0/"],
    );
    assert_eq!(w.manifest(), manifest, "the previous tree stays");
    // What version.txt names is held to the rule a pinned version meets.
    std::fs::write(w.version_txt(), "FLATCAR_VERSION_ID=4593.02.5\n").unwrap();
    w.server.reset_requests();
    let out = w.build();
    assert_fails_with(
        &out,
        &[
            "current/version.txt: FLATCAR_VERSION_ID \"4593.02.5\" is not a Flatcar release",
            "\"02\" has a leading zero",
            "pin flatcar.version",
        ],
    );
    let asked: Vec<String> = w.server.requests().into_iter().map(|r| r.path).collect();
    assert!(
        asked.iter().all(|p| p.ends_with("/current/version.txt")),
        "nothing fetched for it: {asked:?}"
    );
    assert_eq!(w.manifest(), manifest, "the previous tree stays");
}

#[test]
fn offline_current_reuses_the_previous_record_or_asks_for_a_pin() {
    let w = World::new();
    w.set_flatcar_version("current");
    let out = w.run(&["build", "--offline"], &[]);
    assert_fails_with(&out, &["--offline", "\"current\"", "pin flatcar.version"]);
    assert!(w.server.requests().is_empty(), "offline makes no request");
    assert!(!w.dist().exists());
    assert_ok(&w.build());
    // `current` moves on upstream; offline keeps what the last build resolved.
    std::fs::write(w.version_txt(), "FLATCAR_VERSION_ID=9999.1.0\n").unwrap();
    w.server.reset_requests();
    let out = w.run(&["build", "--offline"], &[]);
    assert_ok(&out);
    assert!(
        stderr(&out).contains(&format!("flatcar: stable current is {VERSION} (recorded")),
        "{}",
        stderr(&out)
    );
    assert!(w.server.requests().is_empty(), "offline makes no request");
    assert_eq!(w.manifest()["flatcar"]["version"], VERSION);
}

#[test]
fn check_accepts_current_without_the_network() {
    let w = World::new();
    w.set_flatcar_version("current");
    let out = w.run(&["check"], &[("PXEBUILD_MIRROR", "http://127.0.0.1:9")]);
    assert_ok(&out);
    assert!(
        stderr(&out).contains("flatcar.version: \"current\" is resolved at build time"),
        "{}",
        stderr(&out)
    );
    assert!(w.server.requests().is_empty());
}

/// GETs the server saw for `path`.
fn gets(w: &World, path: &str) -> usize {
    w.server.gets_of(path).len()
}

#[test]
fn a_transfer_that_only_trickles_gives_up_naming_url_bytes_and_advice() {
    let w = World::new();
    let path = format!("{FLATCAR}/flatcar_production_pxe.vmlinuz");
    // Every attempt resumes and adds two bytes: progress, but never the end.
    w.server.fault(&path, Fault::Trickle { bytes: 2 });
    let out = w.build();
    assert_fails_with(
        &out,
        &[
            &format!(
                "giving up on {}{path} after 8 interrupted attempts",
                w.server.url()
            ),
            "transfer interrupted after 16 bytes",
            "flaky link or a proxy",
            "--jobs 1",
        ],
    );
    assert_eq!(
        gets(&w, &path),
        8,
        "PXEBUILD_HTTP_RETRIES=2: a cap of 2 × 4 attempts"
    );
    assert_eq!(w.partial_files(), 0);
}

#[test]
fn a_server_that_ignores_range_and_truncates_fails_at_the_retry_limit() {
    let (w, before) = World::with_previous_dist();
    let path = format!("{FLATCAR}/flatcar_production_image.bin.bz2");
    w.server.fault(&path, Fault::DropMidway { times: 1000 });
    let out = w.build();
    assert_fails_with(
        &out,
        &[
            &path,
            "ignored the Range request",
            "broke off again at byte",
            "giving up",
        ],
    );
    // One attempt that got half the file, then two that restarted from
    // byte 0 and got no further: neither counts as progress.
    assert_eq!(gets(&w, &path), 3);
    assert_eq!(w.partial_files(), 0, "a failed download leaves no .part");
    w.assert_dist_kept(&before);
}

#[test]
fn a_transfer_that_stalls_after_some_bytes_hits_the_idle_timeout() {
    let (w, before) = World::with_previous_dist();
    let path = format!("{BAKERY}/kubernetes-v1.35.9/kubernetes-v1.35.9-x86-64.raw");
    w.server.fault(&path, Fault::Stall { bytes: 10 });
    // The total body budget is far away: only the idle timeout can end it.
    let out = w.run(
        &["build"],
        &[
            ("PXEBUILD_HTTP_BODY_TIMEOUT", "600"),
            ("PXEBUILD_HTTP_IDLE_TIMEOUT", "1"),
        ],
    );
    assert_fails_with(
        &out,
        &[
            "kubernetes-v1.35.9-x86-64.raw",
            &path,
            "timed out",
            "after 10 bytes",
        ],
    );
    assert_eq!(w.partial_files(), 0);
    w.assert_dist_kept(&before);
}

#[test]
fn a_server_that_never_sends_headers_times_out() {
    let (w, before) = World::with_previous_dist();
    let path = format!("{BAKERY}/cilium-v0.18.2/cilium-v0.18.2-x86-64.raw");
    w.server.fault(&path, Fault::Silent);
    let out = w.run(&["build"], &[("PXEBUILD_HTTP_BODY_TIMEOUT", "600")]);
    assert_fails_with(
        &out,
        &["cilium-v0.18.2-x86-64.raw", &path, "timed out", "giving up"],
    );
    assert_eq!(gets(&w, &path), 2, "PXEBUILD_HTTP_RETRIES=2");
    assert_eq!(w.partial_files(), 0);
    w.assert_dist_kept(&before);
}

#[test]
fn the_containerd_sysext_is_fetched_and_placed_when_asked_for() {
    let w = World::new();
    let site = w.tmp.path().join("site.toml");
    let text = std::fs::read_to_string(&site).unwrap();
    let text = text.replace(
        "cilium = \"v0.18.2\"\n",
        "cilium = \"v0.18.2\"\ncontainerd = \"v2.1.5\"\n",
    );
    std::fs::write(&site, text).unwrap();
    assert_ok(&w.build());
    assert_dist_matches_mirror(&w);
    let dir = w.dist().join("http/sysext/containerd");
    let image = dir.join("containerd-v2.1.5-x86-64.raw");
    assert_eq!(
        sha256_of(&image),
        sha256_of(&w.mirror().join(format!(
            "{}/containerd-v2.1.5/containerd-v2.1.5-x86-64.raw",
            &BAKERY[1..]
        )))
    );
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    assert_eq!(
        sums,
        format!("{}  containerd-v2.1.5-x86-64.raw\n", sha256_of(&image))
    );
    let manifest = std::fs::read_to_string(w.dist().join("manifest.json")).unwrap();
    assert!(manifest.contains("http/sysext/containerd/containerd-v2.1.5-x86-64.raw"));
}

/// Replaces `old` with `new` in the world's site.toml (which must contain it).
fn edit_site(w: &World, old: &str, new: &str) {
    let site = w.tmp.path().join("site.toml");
    let text = std::fs::read_to_string(&site).unwrap();
    assert!(text.contains(old), "site.toml lacks {old}");
    std::fs::write(&site, text.replace(old, new)).unwrap();
}

#[test]
fn a_new_pin_for_an_unchanged_url_fetches_it_again() {
    let w = World::upstream();
    assert_ok(&w.build());
    let served = w.mirror().join("boot.ipxe.org/ipxe.efi");
    let old = sha256_of(&served);
    let ipxe_path = "/boot.ipxe.org/ipxe.efi";

    // The operator pins a new build before the server has it: a pin
    // mismatch naming the URL and both digests, not a cache problem.
    let rolled = b"a newer iPXE build under the same name".to_vec();
    let new = hex::encode(Sha256::digest(&rolled));
    edit_site(&w, &old, &new);
    w.server.reset_requests();
    let out = w.build();
    assert_fails_with(
        &out,
        &[
            "pin mismatch",
            "boot.ipxe.org/ipxe.efi",
            &old,
            &new,
            "the pin is the site's sources.ipxe_sha256s.\"ipxe.efi\"",
        ],
    );
    assert!(
        !stderr(&out).contains("no longer verifies"),
        "{}",
        stderr(&out)
    );
    assert_eq!(w.server.gets_of(ipxe_path).len(), 1, "fetched again");

    // Upstream rolled: the next build fetches the new file and publishes it.
    std::fs::write(&served, &rolled).unwrap();
    w.server.reset_requests();
    assert_ok(&w.build());
    assert_eq!(w.server.gets_of(ipxe_path).len(), 1);
    assert_eq!(sha256_of(&w.dist().join("tftp/ipxe.efi")), new);
    w.server.reset_requests();
    assert_ok(&w.build());
    assert!(w.server.gets_of(ipxe_path).is_empty(), "stored from now on");
}

/// The store blob of a file the mirror serves (blobs are named by SHA-256).
fn blob_of_served(w: &World, rel: &str) -> PathBuf {
    let sha = sha256_of(&w.mirror().join(rel));
    w.tmp
        .path()
        .join("cache/store/sha256")
        .join(&sha[..2])
        .join(&sha)
}

/// Downloads a build reads without publishing them as they are.
const UNPUBLISHED: [&str; 3] = [
    "stable.release.flatcar-linux.net/amd64-usr/4593.2.5/flatcar_production_pxe.vmlinuz.sig",
    "github.com/flatcar/sysext-bakery/releases/download/kubernetes-v1.35.9/SHA256SUMS",
    "deb.debian.org/debian/pool/main/s/syslinux/syslinux-common_6.04~git20190206.bf6db5b4+dfsg1-3_all.deb",
];

/// Flips one byte of a stored blob, keeping its size (bit rot).
fn corrupt(blob: &Path) {
    let mut bytes = std::fs::read(blob).unwrap();
    bytes[0] ^= 0xff;
    std::fs::remove_file(blob).unwrap();
    std::fs::write(blob, bytes).unwrap();
}

#[test]
fn verify_cache_rehashes_downloads_that_are_not_published() {
    let w = World::new();
    assert_ok(&w.build());
    for rel in UNPUBLISHED {
        corrupt(&blob_of_served(&w, rel));
    }
    w.server.reset_requests();
    let out = w.run(&["build", "--verify-cache"], &[]);
    assert_ok(&out);
    for rel in UNPUBLISHED {
        let blob = blob_of_served(&w, rel);
        assert_eq!(
            sha256_of(&blob),
            sha256_of(&w.mirror().join(rel)),
            "{rel} fetched again"
        );
        assert!(
            !w.server.gets_of(&format!("/{rel}")).is_empty(),
            "{rel} was requested"
        );
        assert!(stderr(&out).contains(rel), "{}", stderr(&out));
    }
    // What the air gap needs is whole again.
    assert_ok(&w.run(&["mirror", "--offline", "airgap"], &[]));
}

#[test]
fn verify_cache_offline_reports_a_corrupt_download() {
    let w = World::new();
    assert_ok(&w.build());
    corrupt(&blob_of_served(&w, UNPUBLISHED[2]));
    w.server.reset_requests();
    let out = w.run(&["build", "--offline", "--verify-cache"], &[]);
    assert_fails_with(
        &out,
        &[SYSLINUX_COMMON_DEB, "was corrupt", "without --offline"],
    );
    assert!(w.server.requests().is_empty(), "offline makes no request");
}

#[test]
fn an_expired_signature_is_refused_naming_the_file_and_the_expiry() {
    let w = World::new();
    let rel = format!("{FLATCAR}/flatcar_production_pxe.vmlinuz");
    let file = w.mirror().join(rel.trim_start_matches('/'));
    let sig = w
        .mirror()
        .join(format!("{}.sig", rel.trim_start_matches('/')));
    // Made with the fixture key two minutes ago, valid for one.
    let home = tempfile::tempdir().unwrap();
    let gpg = |args: &[&str]| {
        let out = Command::new("gpg")
            .env("GNUPGHOME", home.path())
            .args(["--batch", "--yes", "--quiet"])
            .args(args)
            .output()
            .expect("running gpg");
        assert!(out.status.success(), "{}", stderr(&out));
    };
    gpg(&[
        "--import",
        fixtures().join("test-key.asc").to_str().unwrap(),
    ]);
    let made = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 120;
    gpg(&[
        "--faked-system-time",
        &format!("{made}!"),
        "--default-sig-expire",
        "seconds=60",
        "--detach-sign",
        "-o",
        sig.to_str().unwrap(),
        file.to_str().unwrap(),
    ]);
    let out = w.build();
    assert_fails_with(
        &out,
        &[
            "flatcar_production_pxe.vmlinuz.sig",
            "the signature expired at",
            " UTC",
        ],
    );
    assert!(w.store_blobs().iter().all(|b| *b != sha256_of(&file)));
}

#[test]
fn a_sha256sums_with_two_digests_for_one_file_is_refused() {
    let image = "kubernetes-v1.35.9-x86-64.raw";
    // Each world starts with an empty cache, so its build reads the list.
    let with_extra_line = |digest: Option<&str>| {
        let w = World::new();
        let sums = w.mirror().join(UNPUBLISHED[1]);
        let listed = std::fs::read_to_string(&sums).unwrap();
        let good = listed
            .lines()
            .find(|l| l.ends_with(image))
            .expect("the image is listed")
            .split_whitespace()
            .next()
            .unwrap()
            .to_string();
        let extra = digest.unwrap_or(&good);
        std::fs::write(&sums, format!("{listed}{extra}  {image}\n")).unwrap();
        (w, good)
    };
    // An identical repeat is harmless.
    let (w, _) = with_extra_line(None);
    assert_ok(&w.build());
    // The first line matches the image; the second contradicts it.
    let bad = "0".repeat(64);
    let (w, good) = with_extra_line(Some(&bad));
    assert_fails_with(&w.build(), &["SHA256SUMS", "ambiguous", image, &good, &bad]);
}

#[test]
fn a_resumed_download_asks_for_identity_encoding_so_ranges_count_stored_bytes() {
    let w = World::new();
    let path = format!("{FLATCAR}/flatcar_production_image.bin.bz2");
    // More broken transfers than the retry limit (2): only resuming that
    // makes progress each time gets through.
    w.server.fault(&path, Fault::GzipIfAccepted { times: 3 });
    assert_ok(&w.build());
    assert_dist_matches_mirror(&w);
    let gets = w.server.gets_of(&path);
    assert_eq!(gets.len(), 4, "{gets:?}");
    assert!(gets[1..].iter().all(|g| g.range.is_some()), "{gets:?}");
    for get in &gets {
        assert_eq!(get.accept_encoding.as_deref(), Some("identity"), "{get:?}");
    }
}

#[test]
fn a_partial_file_that_is_a_symlink_is_removed_not_followed() {
    let w = World::new();
    let url = format!("https:/{FLATCAR}/flatcar_production_image.bin.bz2");
    let tmp = w.tmp.path().join("cache/store/tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let victim = w.tmp.path().join("victim");
    std::fs::write(&victim, b"VICTIMDATA\n").unwrap();
    let part = tmp.join(format!("{}.part", blake3::hash(url.as_bytes()).to_hex()));
    std::os::unix::fs::symlink(&victim, &part).unwrap();
    let out = w.build();
    assert_ok(&out);
    assert!(
        stderr(&out).contains("not a regular file"),
        "{}",
        stderr(&out)
    );
    assert_eq!(std::fs::read(&victim).unwrap(), b"VICTIMDATA\n");
    assert_dist_matches_mirror(&w);
    let path = format!("{FLATCAR}/flatcar_production_image.bin.bz2");
    assert!(w.server.gets_of(&path)[0].range.is_none(), "started over");
}

#[test]
fn cache_directories_are_not_group_or_world_writable_under_umask_000() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    let out = Command::new("sh")
        .arg("-c")
        .arg("umask 000 && exec \"$0\" build")
        .arg(env!("CARGO_BIN_EXE_pxebuild"))
        .current_dir(w.tmp.path())
        .env("PXEBUILD_CACHE", w.tmp.path().join("cache"))
        .env_remove("PXEBUILD_MIRROR")
        .env_remove("PXEBUILD_SIGNING_KEY")
        .output()
        .unwrap();
    assert_ok(&out);
    for dir in ["store/tmp", "store/sha256", "downloads"] {
        let path = w.tmp.path().join("cache").join(dir);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o022, 0, "{dir} has mode {mode:o}");
    }
}

#[test]
fn a_full_cache_disk_fails_at_once_naming_the_cache_not_the_network() {
    let w = World::new();
    // A 200 KiB tmpfs for the cache, mounted in a private user and mount
    // namespace (no root needed); the image is larger than that.
    let cache = w.tmp.path().join("tiny");
    std::fs::create_dir(&cache).unwrap();
    let script = "mount -t tmpfs -o size=200k tmpfs \"$1\" || exit 99; \
                  PXEBUILD_CACHE=\"$1/cache\" exec \"$0\" build";
    let out = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", script])
        .arg(env!("CARGO_BIN_EXE_pxebuild"))
        .arg(&cache)
        .current_dir(w.tmp.path())
        .env("PXEBUILD_HTTP_RETRIES", "4")
        .env("PXEBUILD_HTTP_BACKOFF_MS", "10")
        .env_remove("PXEBUILD_MIRROR")
        .env_remove("PXEBUILD_SIGNING_KEY")
        .output()
        .expect("running unshare");
    if out.status.code() == Some(99) || stderr(&out).contains("unshare: ") {
        eprintln!("skipped: no user namespaces here: {}", stderr(&out));
        return;
    }
    assert_fails_with(
        &out,
        &["No space left on device", "/cache/store/tmp/", "free space"],
    );
    let text = stderr(&out);
    assert!(!text.contains("check the network"), "{text}");
    assert!(!text.contains("attempts"), "{text}");
    let path = format!("{FLATCAR}/flatcar_production_image.bin.bz2");
    assert_eq!(w.server.gets_of(&path).len(), 1, "not retried");
}

#[test]
fn errors_after_a_redirect_name_the_url_that_failed() {
    let syslinux = &format!("/{POOL}/s/syslinux/{PXELINUX_DEB}");
    // A 404 from the redirect target (relative Location, as CDNs send).
    let w = World::new();
    w.server
        .fault(syslinux, Fault::RedirectTo("/cdn/missing/x".into()));
    let target = format!("{}/cdn/missing/x", w.server.url());
    assert_fails_with(&w.build(), &[PXELINUX_DEB, "redirected to", &target, "404"]);
    // A refused connection at the redirect target.
    let w = World::new();
    w.server
        .fault(syslinux, Fault::RedirectTo("http://127.0.0.1:1/x".into()));
    assert_fails_with(
        &w.build(),
        &[PXELINUX_DEB, "redirected to http://127.0.0.1:1/x"],
    );
}

#[test]
fn mirror_offline_uses_what_the_last_build_recorded_for_current() {
    let w = World::new();
    w.set_flatcar_version("current");
    assert_ok(&w.build());
    // `current` moves on upstream; offline keeps what the last build resolved.
    std::fs::write(w.version_txt(), "FLATCAR_VERSION_ID=9999.1.0\n").unwrap();
    w.server.reset_requests();
    let out = w.run(&["mirror", "--offline", "--resolve-current"], &[]);
    assert_ok(&out);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), VERSION);
    let out = w.run(&["mirror", "--offline", "airgap"], &[]);
    assert_ok(&out);
    assert!(w.server.requests().is_empty(), "offline makes no request");
    let written = w
        .tmp
        .path()
        .join("airgap/stable.release.flatcar-linux.net/amd64-usr/current/version.txt");
    let text = std::fs::read_to_string(written).unwrap();
    assert!(
        text.contains(&format!("FLATCAR_VERSION_ID={VERSION}")),
        "{text}"
    );
}

#[test]
fn bad_environment_overrides_are_bad_input_naming_the_variable() {
    let w = World::new();
    for (name, value, needle) in [
        (
            "PXEBUILD_MIRROR",
            "notaurl",
            "is not an http:// or https:// URL",
        ),
        ("PXEBUILD_HTTP_RETRIES", "abc", "is not a whole number"),
        ("PXEBUILD_HTTP_TIMEOUT", "abc", "is not a whole number"),
    ] {
        let out = w.run(&["build"], &[(name, value)]);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        let text = stderr(&out);
        assert!(text.contains(name) && text.contains(needle), "{text}");
        assert_eq!(text.matches("error").count(), 1, "one message: {text}");
    }
    assert!(w.server.requests().is_empty());
}

#[test]
fn a_deb_that_is_not_the_pinned_file_is_refused_naming_file_pin_and_setting() {
    let (w, before) = World::with_previous_dist();
    let deb = w.mirror().join(POOL).join("s/syslinux").join(PXELINUX_DEB);
    // Another build of the package under the same name (a mirror out of step).
    let mut bytes = std::fs::read(&deb).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&deb, &bytes).unwrap();
    let served = hex::encode(Sha256::digest(&bytes));
    let out = w.build();
    assert_fails_with(
        &out,
        &[
            "pin mismatch",
            PXELINUX_DEB,
            &served,
            PXELINUX_PIN,
            "sources.loaders = \"debian\"",
        ],
    );
    w.assert_dist_kept(&before);
    assert!(!w.store_blobs().contains(&served), "not stored");
    assert_eq!(w.partial_files(), 0);
}

#[test]
fn the_upstream_opt_in_takes_the_tarball_and_ipxe_files() {
    let w = World::upstream();
    assert_ok(&w.build());
    // The stand-ins hold the same binaries as Debian's packages.
    assert_loaders_from_debs(&w);
    let asked: Vec<String> = w.server.requests().into_iter().map(|r| r.path).collect();
    assert!(
        !asked.iter().any(|p| p.contains("deb.debian.org")),
        "{asked:?}"
    );
    assert!(
        asked
            .iter()
            .any(|p| p.ends_with("/syslinux/syslinux-6.03.tar.xz")),
        "{asked:?}"
    );
    // An upstream pin without the opt-in is refused by the site check.
    let w = World::with_sources(&format!("syslinux_sha256 = \"{}\"", "a".repeat(64)));
    let out = w.build();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("sources.syslinux_sha256: applies only with sources.loaders = \"upstream\""),
        "{}",
        stderr(&out)
    );
}
