//! A real upstream registry for the air-gap tests: Debian's
//! `docker-registry` on a free loopback port with its storage in a tempdir
//! (stopped by PID on drop), and tiny images made with umoci, pushed with
//! skopeo under each reference's `dist_name()` (the layout `[images]
//! registry_mirror` expects). The images are made once per test process:
//!
//! - a single-arch OCI image manifest (linux/amd64, one layer): the default;
//! - `…multi…`: a multi-arch OCI index, amd64 and arm64 with different layers;
//! - `…v2s2…`: the amd64 image as a Docker v2 schema 2 manifest;
//! - `…armonly…`: an index with the arm64 manifest alone (no site arch);
//! - `…lone…`: another amd64 image, whose layer no other image shares.
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use pxebuild::images::ImageRef;
use pxebuild::site::Site;
use sha2::{Digest, Sha256};

/// The tools the fixture runs (Debian packages `docker-registry`, `umoci`, `skopeo`).
const TOOLS: [&str; 3] = ["docker-registry", "umoci", "skopeo"];

pub struct Registry {
    pub port: u16,
    /// The registry's filesystem storage (tests corrupt blobs in it).
    pub storage: PathBuf,
    child: Option<Child>,
    _dir: tempfile::TempDir,
}

impl Registry {
    /// Starts a registry on a free loopback port and waits until it answers.
    pub fn start() -> Registry {
        for tool in TOOLS {
            assert!(
                Command::new("sh")
                    .args(["-c", &format!("command -v {tool}")])
                    .stdout(Stdio::null())
                    .status()
                    .unwrap()
                    .success(),
                "{tool} is missing (apt-get install docker-registry umoci skopeo)"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let storage = dir.path().join("storage");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  \
                 delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n",
                storage.display()
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting docker-registry");
        let started = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "docker-registry did not listen on 127.0.0.1:{port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Registry {
            port,
            storage,
            child: Some(child),
            _dir: dir,
        }
    }

    /// The registry's base URL (for `[images] registry_mirror`).
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `docker://` reference of `image` in this registry, under its dist name.
    pub fn docker_ref(&self, image: &ImageRef) -> String {
        format!(
            "docker://127.0.0.1:{}/{}:{}",
            self.port,
            image.dist_name(),
            image.tag.as_deref().unwrap_or("latest")
        )
    }

    /// Pushes the fixture image that `image`'s name asks for (see the module
    /// comment) under its dist name and tag.
    pub fn push(&self, image: &ImageRef) {
        let layout = images();
        let name = &image.repository;
        let (source, extra): (&str, &[&str]) = if name.contains("multi") {
            ("multi", &["--all"])
        } else if name.contains("armonly") {
            ("armonly", &["--all"])
        } else if name.contains("lone") {
            ("lone", &[])
        } else if name.contains("v2s2") {
            ("amd64", &["--format", "v2s2"])
        } else {
            ("amd64", &[])
        };
        skopeo(
            &["copy", "--quiet", "--dest-tls-verify=false"],
            extra,
            &[
                &format!("oci:{}:{source}", layout.display()),
                &self.docker_ref(image),
            ],
        );
    }

    /// Pushes every image `pxebuild::site::images::site_images` lists for `site`.
    pub fn push_site_images(&self, site: &Site) {
        for image in pxebuild::site::images::site_images(site).unwrap() {
            self.push(&image);
        }
    }

    /// The manifest bytes the registry serves for `image` (`skopeo inspect --raw`).
    pub fn raw_manifest(&self, image: &ImageRef) -> Vec<u8> {
        let out = Command::new("skopeo")
            .args(["inspect", "--raw", "--tls-verify=false"])
            .arg(self.docker_ref(image))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// The path of a blob's data in the registry's storage.
    pub fn blob_data(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.storage
            .join("docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }

    /// Stops the registry (the build's network source goes away).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `sha256:<hex>` of bytes.
pub fn digest_of(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

fn skopeo(args: &[&str], extra: &[&str], refs: &[&str]) {
    let out = Command::new("skopeo")
        .args(args)
        .args(extra)
        .args(refs)
        .output()
        .expect("running skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?} {extra:?} {refs:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The digests of the fixture images' parts, to say which were carried.
pub struct Parts {
    /// The amd64 and arm64 manifests of the multi-arch index.
    pub amd64_manifest: String,
    pub arm64_manifest: String,
    /// Their (different) layers.
    pub amd64_layer: String,
    pub arm64_layer: String,
    /// The layer of the `lone` image.
    pub lone_layer: String,
}

/// The parts of the fixture images (made on first use).
pub fn parts() -> &'static Parts {
    images();
    PARTS.get().unwrap()
}

static LAYOUT: OnceLock<PathBuf> = OnceLock::new();
static PARTS: OnceLock<Parts> = OnceLock::new();

/// The OCI layout holding the fixture images (tags `amd64`, `arm64`,
/// `lone`, `multi`, `armonly`), made once per test process under the target dir.
fn images() -> &'static Path {
    LAYOUT.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR"));
        // Layouts of finished test processes.
        if let Ok(entries) = std::fs::read_dir(base) {
            for e in entries.flatten() {
                let name = e.file_name().to_string_lossy().into_owned();
                if let Some(pid) = name.strip_prefix("registry-images-") {
                    if !Path::new("/proc").join(pid).exists() {
                        let _ = std::fs::remove_dir_all(e.path());
                    }
                }
            }
        }
        let work = base.join(format!("registry-images-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&work);
        std::fs::create_dir_all(&work).unwrap();
        let layout = work.join("oci");
        let umoci = |args: &[&str]| {
            let out = Command::new("umoci").args(args).output().unwrap();
            assert!(
                out.status.success(),
                "umoci {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        let at = |tag: &str| format!("{}:{tag}", layout.display());
        umoci(&["init", "--layout", &layout.display().to_string()]);
        for (tag, arch) in [("amd64", "amd64"), ("arm64", "arm64"), ("lone", "amd64")] {
            let file = work.join(tag);
            std::fs::write(&file, format!("a file only the {tag} image has\n")).unwrap();
            umoci(&["new", "--image", &at(tag)]);
            umoci(&[
                "insert",
                "--rootless",
                "--image",
                &at(tag),
                &file.display().to_string(),
                &format!("/{tag}.txt"),
            ]);
            umoci(&[
                "config",
                "--image",
                &at(tag),
                "--os",
                "linux",
                "--architecture",
                arch,
            ]);
        }
        let (amd64, arm64) = (descriptor(&layout, "amd64"), descriptor(&layout, "arm64"));
        add_index(&layout, "multi", &[(&amd64, "amd64"), (&arm64, "arm64")]);
        add_index(&layout, "armonly", &[(&arm64, "arm64")]);
        let layer = |d: &serde_json::Value| {
            let manifest = read_blob(&layout, d["digest"].as_str().unwrap());
            let manifest: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
            manifest["layers"][0]["digest"]
                .as_str()
                .unwrap()
                .to_string()
        };
        let _ = PARTS.set(Parts {
            amd64_manifest: amd64["digest"].as_str().unwrap().to_string(),
            arm64_manifest: arm64["digest"].as_str().unwrap().to_string(),
            amd64_layer: layer(&amd64),
            arm64_layer: layer(&arm64),
            lone_layer: layer(&descriptor(&layout, "lone")),
        });
        layout
    })
}

fn index_json(layout: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap()
}

/// The descriptor `tag` names in the layout's index.json (annotations dropped).
fn descriptor(layout: &Path, tag: &str) -> serde_json::Value {
    let index = index_json(layout);
    let mut d = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no {tag} in the layout"))
        .clone();
    d.as_object_mut().unwrap().remove("annotations");
    d
}

fn read_blob(layout: &Path, digest: &str) -> Vec<u8> {
    let hex = digest.strip_prefix("sha256:").unwrap();
    std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap()
}

/// Writes an OCI index of `manifests` (each with its platform) as a blob
/// and tags it `tag` in the layout.
fn add_index(layout: &Path, tag: &str, manifests: &[(&serde_json::Value, &str)]) {
    let list: Vec<serde_json::Value> = manifests
        .iter()
        .map(|(d, arch)| {
            let mut d = (*d).clone();
            d["platform"] = serde_json::json!({"architecture": arch, "os": "linux"});
            d
        })
        .collect();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": list,
    });
    let bytes = serde_json::to_vec(&index).unwrap();
    let digest = digest_of(&bytes);
    let hex = digest.strip_prefix("sha256:").unwrap();
    std::fs::write(layout.join("blobs/sha256").join(hex), &bytes).unwrap();
    let mut top = index_json(layout);
    top["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest,
            "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }));
    std::fs::write(layout.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
}
