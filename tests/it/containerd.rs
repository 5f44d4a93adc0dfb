//! Debian's real containerd as a test's image client: a daemon of the test's
//! own (root, state and socket in a tempdir, stopped by its PID), the
//! registry hosts directory a serve-mode node gets (rendered by
//! `pxebuild::render::containerd`), and `ctr` pulling through it.
//!
//! [`pull_tree`] is the whole check for a built tree: serve it, pull each
//! image the way a node does, return what containerd resolved.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::serve_support::{Served, WAIT};

/// A running containerd, killed (by its own PID) on drop.
pub struct Containerd {
    child: Child,
    dir: tempfile::TempDir,
    pub address: PathBuf,
}

impl Containerd {
    /// Starts containerd with a minimal config: everything under a tempdir,
    /// the CRI plugin off (the tests pull with `ctr`, not the kubelet).
    pub fn start() -> Containerd {
        let dir = tempfile::Builder::new()
            .prefix("pxebuild-containerd-")
            .tempdir()
            .unwrap();
        let address = dir.path().join("containerd.sock");
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = {root:?}\nstate = {state:?}\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\naddress = {address:?}\n\
                 [ttrpc]\naddress = {ttrpc:?}\n",
                root = dir.path().join("root"),
                state = dir.path().join("state"),
                ttrpc = dir.path().join("ttrpc.sock"),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting containerd (Debian package containerd)");
        let mut containerd = Containerd {
            child,
            dir,
            address,
        };
        containerd.wait_ready();
        containerd
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("containerd exited ({status}):\n{}", self.log());
            }
            if self.address.exists() && self.ctr(&["version"]).status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "containerd never answered:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    /// A directory for the test's own files (hosts directories).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `ctr --address SOCK ARGS…` under a hang guard.
    pub fn ctr(&self, args: &[&str]) -> Output {
        Command::new("timeout")
            .arg(WAIT.as_secs().to_string())
            .arg("ctr")
            .arg("--address")
            .arg(&self.address)
            .args(args)
            .stdin(Stdio::null())
            .output()
            .expect("running ctr")
    }

    /// Fetches `reference` for linux/amd64 through the registry hosts in
    /// `hosts_dir`, into containerd namespace `ns`; returns the digest
    /// containerd resolved the reference to. Fetching (not unpacking) is
    /// what pulling from a registry is; unpacking needs a snapshotter the
    /// test's tempdir may not support.
    pub fn fetch(&self, ns: &str, hosts_dir: &Path, reference: &str) -> String {
        let hosts = hosts_dir.to_str().unwrap();
        let out = self.ctr(&[
            "-n",
            ns,
            "content",
            "fetch",
            "--hosts-dir",
            hosts,
            "--platform",
            "linux/amd64",
            reference,
        ]);
        assert!(
            out.status.success(),
            "ctr content fetch {reference}: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        self.image_digest(ns, reference)
            .unwrap_or_else(|| panic!("{reference} not in ctr images ls after the fetch"))
    }

    /// The digest of image `reference` in namespace `ns` (`ctr images ls`).
    pub fn image_digest(&self, ns: &str, reference: &str) -> Option<String> {
        let out = self.ctr(&["-n", ns, "images", "ls"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .find_map(|line| {
                let cols: Vec<&str> = line.split_whitespace().collect();
                (cols.first() == Some(&reference)).then(|| cols[2].to_string())
            })
    }

    /// Every blob digest containerd holds in namespace `ns`.
    pub fn content(&self, ns: &str) -> Vec<String> {
        let out = self.ctr(&["-n", ns, "content", "ls", "-q"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        stop_by_pid(&mut self.child);
    }
}

/// Writes the hosts directory a serve-mode node gets, for `registries`,
/// pointing at the boot server `http_base`: the files
/// `pxebuild::render::containerd` renders into the node's Ignition.
pub fn hosts_dir(dir: &Path, registries: &[&str], http_base: &str) -> PathBuf {
    for registry in registries {
        let path = dir.join(registry).join("hosts.toml");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            &path,
            pxebuild::render::containerd::hosts_toml(registry, http_base),
        )
        .unwrap();
    }
    dir.to_path_buf()
}

/// The registry of an upstream reference (`registry.k8s.io/pause:3.10`).
pub fn registry_of(reference: &str) -> String {
    let image: pxebuild::images::ImageRef = reference.parse().unwrap();
    image.registry
}

/// Serves the built tree at `dist` with `pxebuild serve`, and has a
/// containerd of its own pull each of `references` (upstream names, as the
/// cluster names them) through the hosts configuration a node gets; returns
/// (reference, digest containerd resolved), in order.
pub fn pull_tree(dist: &Path, references: &[&str]) -> Vec<(String, String)> {
    let served = Served::start(dist, &[]);
    let containerd = Containerd::start();
    let registries: Vec<String> = references.iter().map(|r| registry_of(r)).collect();
    let registries: Vec<&str> = registries.iter().map(String::as_str).collect();
    let hosts = hosts_dir(
        &containerd.dir().join("hosts-serve"),
        &registries,
        &served.url(""),
    );
    references
        .iter()
        .map(|reference| {
            let full = pxebuild::images::ImageRef::to_string(&reference.parse().unwrap());
            (full.clone(), containerd.fetch("serve", &hosts, &full))
        })
        .collect()
}

/// nginx serving a tree's `http/` with the pull API configuration
/// docs/serve.md documents (taken from the page itself, so the page and the
/// test cannot drift apart), on a free loopback port; stopped by its PID.
pub struct NginxOci {
    child: Child,
    _dir: tempfile::TempDir,
    pub port: u16,
}

/// The ```nginx block of docs/serve.md's "The same API from nginx".
pub fn documented_nginx_config() -> String {
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/serve.md"))
        .unwrap();
    let section = &page[page
        .find("#### The same API from nginx")
        .expect("docs/serve.md documents the nginx configuration")..];
    let start = section.find("```nginx\n").unwrap() + "```nginx\n".len();
    let end = section[start..].find("```").unwrap() + start;
    section[start..end].to_string()
}

impl NginxOci {
    pub fn start(http_root: &Path) -> NginxOci {
        let dir = tempfile::Builder::new()
            .prefix("pxebuild-nginx-")
            .tempdir()
            .unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let documented = documented_nginx_config();
        assert!(documented.contains("    listen 8080;\n"));
        assert!(documented.contains("    root /srv/pxebuild/dist/http;\n"));
        let site = documented
            .replace(
                "    listen 8080;\n",
                &format!("    listen 127.0.0.1:{port};\n"),
            )
            .replace(
                "    root /srv/pxebuild/dist/http;\n",
                &format!("    root {};\n", http_root.display()),
            );
        let p = dir.path().display();
        let conf = format!(
            "daemon off;\nuser root;\nworker_processes 1;\npid {p}/nginx.pid;\n\
             error_log {p}/error.log;\nevents {{ worker_connections 256; }}\n\
             http {{\n    access_log {p}/access.log;\n    client_body_temp_path {p}/body;\n\
             proxy_temp_path {p}/proxy;\n    fastcgi_temp_path {p}/fastcgi;\n\
             uwsgi_temp_path {p}/uwsgi;\n    scgi_temp_path {p}/scgi;\n    sendfile on;\n\
             {site}}}\n"
        );
        let path = dir.path().join("nginx.conf");
        std::fs::write(&path, conf).unwrap();
        let child = Command::new("nginx")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&path)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting nginx");
        let mut nginx = NginxOci {
            child,
            _dir: dir,
            port,
        };
        let deadline = Instant::now() + WAIT;
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = nginx.child.try_wait().unwrap() {
                let mut err = String::new();
                use std::io::Read;
                let _ = nginx.child.stderr.take().unwrap().read_to_string(&mut err);
                panic!("nginx exited ({status}): {err}");
            }
            assert!(Instant::now() < deadline, "nginx never listened");
            std::thread::sleep(Duration::from_millis(50));
        }
        nginx
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for NginxOci {
    fn drop(&mut self) {
        // TERM to the master: it stops its workers (a KILL would orphan them).
        stop_by_pid(&mut self.child);
    }
}

/// SIGTERM to `child`, then SIGKILL if it is still there after 10 s.
fn stop_by_pid(child: &mut Child) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}
