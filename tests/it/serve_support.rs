//! Shared pieces of the `serve` integration tests: a temporary dist tree with a
//! real manifest, and a running `pxebuild serve` on free loopback ports whose
//! stderr (startup lines, transfer log lines) is collected for assertions.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use pxebuild::manifest::{AccessEntry, FileEntry, Manifest, NodeEntry};

/// Generous: the machine may be loaded; this is a hang guard, not a speed check.
pub const WAIT: Duration = Duration::from_secs(120);

/// Deterministic pseudo-random bytes (content checks catch misordered blocks).
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A dist tree under a temporary directory.
pub struct Dist {
    /// Shared with every [`Served`] started from it, so the tree outlives both.
    pub tmp: Arc<tempfile::TempDir>,
    manifest: Manifest,
}

impl Dist {
    pub fn new() -> Dist {
        let tmp = Arc::new(
            tempfile::Builder::new()
                .prefix("pxebuild-serve-")
                .tempdir()
                .unwrap(),
        );
        std::fs::create_dir_all(tmp.path().join("dist/tftp")).unwrap();
        std::fs::create_dir_all(tmp.path().join("dist/http")).unwrap();
        let manifest = Manifest {
            format: 1,
            inputs: "00".into(),
            files: vec![],
            nodes: vec![],
            access: vec![],
            flatcar: None,
            images: Vec::new(),
        };
        let dist = Dist { tmp, manifest };
        dist.write_manifest();
        dist
    }

    pub fn dir(&self) -> PathBuf {
        self.tmp.path().join("dist")
    }

    /// Adds a file at `rel` (`http/…` or `tftp/…`) and lists it in the manifest.
    pub fn file(mut self, rel: &str, bytes: &[u8]) -> Dist {
        let path = self.dir().join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
        self.manifest.files.push(FileEntry {
            path: rel.into(),
            size: bytes.len() as u64,
            sha256: pxebuild::digest::sha256_hex(bytes),
        });
        self.manifest.files.sort();
        self.write_manifest();
        self
    }

    pub fn node(mut self, name: &str, mac: &str, ip: &str) -> Dist {
        self.manifest.nodes.push(NodeEntry {
            name: name.into(),
            mac: mac.into(),
            ip: ip.into(),
            role: "worker".into(),
        });
        self.write_manifest();
        self
    }

    /// Records an image the tree carries (`manifest.json`'s `images`).
    pub fn image(mut self, record: pxebuild::manifest::ImageRecord) -> Dist {
        self.manifest.images.push(record);
        self.manifest.images.sort();
        self.write_manifest();
        self
    }

    /// Restricts `rel` to the node `name` at `ip`.
    pub fn restrict(mut self, rel: &str, name: &str, ip: &str) -> Dist {
        self.manifest.access.push(AccessEntry {
            path: rel.into(),
            node: name.into(),
            ip: ip.into(),
        });
        self.write_manifest();
        self
    }

    fn write_manifest(&self) {
        std::fs::write(self.dir().join("manifest.json"), self.manifest.to_json()).unwrap();
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir().join(rel)
    }

    pub fn serve(&self, extra: &[&str]) -> Served {
        let mut served = Served::start(&self.dir(), extra);
        served.keep = Some(self.tmp.clone());
        served
    }
}

type Lines = Arc<(Mutex<Vec<String>>, Condvar)>;

/// A running `pxebuild serve`, killed (by its own PID) on drop.
pub struct Served {
    child: Child,
    lines: Lines,
    pub http: u16,
    pub tftp: u16,
    keep: Option<Arc<tempfile::TempDir>>,
}

impl Served {
    pub fn start(dist: &Path, extra: &[&str]) -> Served {
        Served::start_on(dist, "127.0.0.1", extra)
    }

    pub fn start_on(dist: &Path, listen: &str, extra: &[&str]) -> Served {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_pxebuild"));
        cmd.arg("serve")
            .arg(dist)
            .args(["--listen", listen, "--http-port", "0", "--tftp-port", "0"])
            .args(extra);
        if !extra.contains(&"--admin") {
            // Tests run side by side: no two may take the status page's default port.
            cmd.args(["--admin", "127.0.0.1:0"]);
        }
        Served::spawn(cmd)
    }

    /// Runs `cmd`, which must end up as `pxebuild serve` under the same PID
    /// (directly, or through programs that exec it), and waits until both
    /// protocols listen.
    pub fn spawn(mut cmd: Command) -> Served {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting pxebuild serve");
        let lines: Lines = Arc::new((Mutex::new(Vec::new()), Condvar::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.0.lock().unwrap().push(line);
                sink.1.notify_all();
            }
            sink.0.lock().unwrap().push("<eof>".into());
            sink.1.notify_all();
        });
        let mut served = Served {
            child,
            lines,
            http: 0,
            tftp: 0,
            keep: None,
        };
        served.http = served.port("http listening on ");
        served.tftp = served.port("tftp listening on ");
        served
    }

    fn port(&self, prefix: &str) -> u16 {
        let line = self.wait_line(|l| l.starts_with(prefix) || l == "<eof>");
        assert_ne!(line, "<eof>", "server exited early:\n{}", self.stderr());
        line.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Waits (up to [`WAIT`]) for a stderr line matching `pred`, and returns it.
    pub fn wait_line(&self, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        let (lock, cond) = &*self.lines;
        let mut lines = lock.lock().unwrap();
        loop {
            if let Some(line) = lines.iter().find(|l| pred(l)) {
                return line.clone();
            }
            let left = deadline.checked_duration_since(Instant::now());
            let left =
                left.unwrap_or_else(|| panic!("no matching line; stderr:\n{}", lines.join("\n")));
            lines = cond.wait_timeout(lines, left).unwrap().0;
        }
    }

    /// Waits for a log line containing every one of `parts`.
    pub fn wait_log(&self, parts: &[&str]) -> String {
        self.wait_line(|l| parts.iter().all(|p| l.contains(p)))
    }

    pub fn stderr(&self) -> String {
        self.lines.0.lock().unwrap().join("\n")
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the server and waits for it to exit.
    pub fn stop_with(mut self, signal: &str) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = wait_exit(&mut self.child);
        self.wait_line(|l| l == "<eof>");
        exit
    }

    /// Sends `signal` without waiting (SIGHUP).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        assert!(Instant::now() < deadline, "server did not exit");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Runs a client tool under `timeout` (a hang guard) in `dir`.
/// tftp-hpa's client fetching `remote` from loopback into `dir/local`, binary mode.
pub fn tftp_hpa(dir: &Path, port: u16, remote: &str, local: &str) -> Output {
    let port = port.to_string();
    let args = [
        "127.0.0.1",
        &port,
        "-m",
        "binary",
        "-c",
        "get",
        remote,
        local,
    ];
    run(dir, "tftp", &args)
}

pub fn run(dir: &Path, program: &str, args: &[&str]) -> Output {
    Command::new("timeout")
        .arg(WAIT.as_secs().to_string())
        .arg(program)
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"))
}

/// curl with `-s`; returns (stdout bytes, stderr text, success).
pub fn curl(args: &[&str]) -> Output {
    run(
        Path::new("/"),
        "curl",
        &[&["-s", "--max-time", "120"], args].concat(),
    )
}
