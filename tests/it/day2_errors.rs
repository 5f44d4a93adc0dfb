//! How day-2 commands fail: `kubeconfig --out` a directory, an API that
//! answers with a certificate the kubeconfig does not trust (told apart from
//! one that does not answer), and `token publish` against a dead API. The real
//! kubectl is used where it is installed: against a closed loopback port, and
//! against an `openssl s_server` with a self-signed certificate on loopback.
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use crate::day2::{calls, cluster, fake, site_with_secrets, REFUSED};
use crate::harness::{fixture, Test};

#[test]
fn kubeconfig_out_a_directory_is_bad_input() {
    let t = site_with_secrets();
    std::fs::create_dir_all(t.path().join("copies")).unwrap();
    t.run_with(["kubeconfig", "--out", "copies"]).code(2).stderr_is(
        "error: --out copies is a directory: name the file to write, e.g. --out copies/kubeconfig\n",
    );
    t.run_with(["kubeconfig", "-o", "new/"]).code(2).stderr_is(
        "error: --out new/ is a directory: name the file to write, e.g. --out new/kubeconfig\n",
    );
    assert!(!t.path().join("new").exists());
}

const UNTRUSTED: &str = "E1127 memcache.go:265] couldn't get current server API group list: \
    tls: failed to verify certificate: x509: certificate signed by unknown authority\n\
    Unable to connect to the server: tls: failed to verify certificate: x509: certificate \
    signed by unknown authority\n";

#[test]
fn an_untrusted_api_certificate_is_not_called_unreachable() {
    let t = cluster();
    fake(&t, "kubectl.fail", UNTRUSTED);
    let out = t.run_with(["untaint"]);
    out.code(1).stderr_is(
        "error: the Kubernetes API at https://10.20.0.10:6443 answered with a certificate \
         secrets/kubeconfig does not trust: the kubeconfig belongs to another cluster (or another \
         build's secrets/), or another machine answers at that address; use the secrets/ of the \
         build that installed this cluster (kubectl: Unable to connect to the server: tls: failed \
         to verify certificate: x509: certificate signed by unknown authority)\n",
    );
    // `wait` retries an API that does not answer yet, but not a wrong one.
    let out = t.run_with(["wait", "--timeout", "1h", "--interval", "0s"]);
    out.code(1).stderr_contains(
        "error: the Kubernetes API at https://10.20.0.10:6443 answered with a certificate",
    );
    assert_eq!(calls(&out).len(), 2, "one untaint call, one wait poll");
}

#[test]
fn token_publish_against_a_dead_api_leads_with_our_message() {
    let t = cluster();
    fake(
        &t,
        "kubectl.fail",
        "error: error validating \"STDIN\": error validating data: failed to download openapi: \
         Get \"https://10.20.0.10:6443/openapi/v2?timeout=15s\": dial tcp 10.20.0.10:6443: \
         connect: connection refused; if you choose to ignore these errors, turn validation off \
         with --validate=false\n",
    );
    t.run_with(["token", "publish"]).code(1).stderr_is(
        "error: cannot reach the Kubernetes API at https://10.20.0.10:6443: check that the \
         control-plane nodes are up (`pxebuild wait`, the boot server's beacons), that this \
         machine can reach the endpoint, and that secrets/kubeconfig belongs to this cluster \
         (kubectl: error validating \"STDIN\": error validating data: failed to download \
         openapi: Get \"https://10.20.0.10:6443/openapi/v2?timeout=15s\": dial tcp \
         10.20.0.10:6443: connect: connection refused)\n",
    );
    fake(&t, "kubectl.fail", REFUSED);
    t.run_with(["token", "publish"]).code(1).stderr_contains(
        "error: cannot reach the Kubernetes API at https://10.20.0.10:6443: check",
    );
}

/// The example site with its kubeconfig pointing at `127.0.0.1:<port>` and only
/// the system directories (the real kubectl) on PATH.
fn real_kubectl_site(port: u16) -> Option<Test> {
    if !Path::new("/usr/bin/kubectl").exists() {
        eprintln!("skipped: no kubectl installed");
        return None;
    }
    let kubeconfig =
        fixture("day2/kubeconfig").replace("10.20.0.10:6443", &format!("127.0.0.1:{port}"));
    let t = site_with_secrets()
        .file("secrets/kubeconfig", &kubeconfig)
        .env("PATH", "/usr/bin:/bin");
    Some(t)
}

#[test]
fn token_publish_with_the_real_kubectl_and_a_closed_port() {
    // A loopback port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let Some(t) = real_kubectl_site(port) else {
        return;
    };
    let out = t.run_with(["token", "publish"]);
    out.code(1)
        .stderr_contains(&format!(
            "error: cannot reach the Kubernetes API at https://127.0.0.1:{port} (the server in \
             secrets/kubeconfig; the site's endpoint is https://10.20.0.10:6443): check"
        ))
        // kubectl's own words name the address it tried (its first request
        // lists the cluster's tokens).
        .stderr_contains(&format!(
            "(kubectl: The connection to the server 127.0.0.1:{port} was refused"
        ))
        .stderr_lacks("--validate=false")
        .stderr_lacks("publishing bootstrap token")
        .stderr_lacks("listing the cluster's bootstrap tokens");
}

/// `openssl s_server` on a loopback port with a fresh self-signed certificate,
/// killed (by its PID) on drop.
struct TlsServer {
    child: Child,
    port: u16,
}

impl TlsServer {
    fn start(dir: &Path) -> Option<TlsServer> {
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let made = Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
            ])
            .args(["-nodes", "-days", "1", "-subj", "/CN=not-the-cluster"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .stderr(Stdio::null())
            .status()
            .ok()?;
        assert!(made.success(), "openssl req failed");
        let mut child = Command::new("openssl")
            .args(["s_server", "-accept", "127.0.0.1:0", "-www", "-cert"])
            .arg(&cert)
            .arg("-key")
            .arg(&key)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        // s_server prints `ACCEPT 127.0.0.1:<port>` once it listens.
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = lines.by_ref().map_while(Result::ok).find_map(|l| {
            l.strip_prefix("ACCEPT 127.0.0.1:")
                .map(|p| p.trim().parse().unwrap())
        });
        // Keep draining its stdout so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let server = TlsServer { child, port: port? };
        Some(server)
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_untrusted_certificate_with_the_real_kubectl() {
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = TlsServer::start(dir.path()) else {
        eprintln!("skipped: no openssl");
        return;
    };
    let Some(t) = real_kubectl_site(server.port) else {
        return;
    };
    t.run_with(["untaint"])
        .code(1)
        .stderr_contains(&format!(
            "error: the Kubernetes API at https://127.0.0.1:{} (the server in \
                 secrets/kubeconfig; the site's endpoint is https://10.20.0.10:6443) answered \
                 with a certificate secrets/kubeconfig does not trust: ",
            server.port
        ))
        .stderr_contains("x509: certificate signed by unknown authority)\n")
        .stderr_lacks("cannot reach");
}

#[test]
fn the_api_is_named_where_the_kubeconfig_points() {
    let kubeconfig = fixture("day2/kubeconfig").replace("10.20.0.10:6443", "10.99.0.5:6443");
    let t = crate::day2::with_tools(
        site_with_secrets().file("secrets/kubeconfig", &kubeconfig),
        &["kubectl", "helm"],
    );
    fake(
        &t,
        "kubectl.fail",
        &REFUSED.replace("10.20.0.10", "10.99.0.5"),
    );
    t.run_with(["untaint"]).code(1).stderr_contains(
        "error: cannot reach the Kubernetes API at https://10.99.0.5:6443 (the server in \
         secrets/kubeconfig; the site's endpoint is https://10.20.0.10:6443): check",
    );
}
