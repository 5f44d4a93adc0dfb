//! `pxebuild serve` run the ways docs/serve.md gives for port 69: started as
//! root with `--user`, or, as the shipped systemd unit
//! (`contrib/pxebuild-serve.service`) runs it, as an unprivileged user holding
//! only CAP_NET_BIND_SERVICE.
use std::path::Path;
use std::process::Command;

use crate::serve_support::{curl, Dist, Served};

const UNIT: &str = "contrib/pxebuild-serve.service";
/// CAP_NET_BIND_SERVICE is capability 10.
const NET_BIND_SERVICE: u64 = 1 << 10;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A `/proc/PID/status` field, e.g. `Uid` or `CapEff`.
fn status_field(pid: u32, name: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let prefix = format!("{name}:");
    let line = status.lines().find(|l| l.starts_with(&prefix)).unwrap();
    line[prefix.len()..].trim().to_string()
}

/// The temporary directory is 0700; an unprivileged server must read the tree.
fn readable_by_others(dist: &Dist) {
    std::fs::set_permissions(
        dist.tmp.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
}

/// curl run inside the network namespace of process `pid`.
fn curl_in(pid: u32, url: &str) -> Vec<u8> {
    let out = Command::new("nsenter")
        .args(["--target", &pid.to_string(), "--net", "--"])
        .args(["curl", "-s", "--fail", "--max-time", "60", url])
        .output()
        .unwrap();
    assert!(out.status.success(), "curl {url}: {out:?}");
    out.stdout
}

#[test]
fn serve_drops_privileges_with_user() {
    if !is_root() {
        eprintln!("not root: nothing to drop, skipping");
        return;
    }
    let dist = Dist::new().file("http/f", b"readable");
    readable_by_others(&dist);
    let server = dist.serve(&["--user", "nobody"]);
    server.wait_line(|l| l.starts_with("running as user nobody"));
    assert!(
        !server.stderr().contains("serving as root"),
        "{}",
        server.stderr()
    );
    let out = curl(&["-o", "/dev/null", "-w", "%{http_code}", &server.url("/f")]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    let uid = status_field(server.pid(), "Uid");
    assert!(!uid.split_whitespace().any(|id| id == "0"), "{uid}");
}

#[test]
fn serve_as_root_without_user_warns_once() {
    if !is_root() {
        eprintln!("not root: nothing to warn about, skipping");
        return;
    }
    let dist = Dist::new().file("http/f", b"readable");
    let server = dist.serve(&[]);
    server.wait_line(|l| l.starts_with("http listening on"));
    let stderr = server.stderr();
    assert_eq!(
        stderr
            .matches("warning: serving as root: pass --user NAME")
            .count(),
        1,
        "{stderr}"
    );
}

#[test]
fn serve_binds_port_69_as_nobody_with_only_the_bind_capability() {
    if !is_root() {
        eprintln!("not root: cannot switch users or make a namespace, skipping");
        return;
    }
    let dist = Dist::new()
        .file("tftp/lpxelinux.0", b"loader bytes")
        .file("http/boot/vmlinuz", b"kernel bytes");
    readable_by_others(&dist);
    // A network namespace of the test's own, so port 69 is free and the host's
    // ports are untouched. unshare and sh exec, so the PID is the server's.
    let mut cmd = Command::new("unshare");
    cmd.args([
        "--net",
        "--",
        "sh",
        "-c",
        "ip link set lo up && exec \"$@\"",
        "sh",
    ])
    .args([
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ])
    .args([
        "--inh-caps=+net_bind_service",
        "--ambient-caps=+net_bind_service",
    ])
    .arg(env!("CARGO_BIN_EXE_pxebuild"))
    .arg("serve")
    .arg(dist.dir())
    .args(["--listen", "127.0.0.1", "--no-log-file"]);
    let server = Served::spawn(cmd);
    assert_eq!(server.tftp, 69, "the default TFTP port");
    assert_eq!(server.http, 8080, "the default HTTP port");
    let pid = server.pid();
    let uids = status_field(pid, "Uid");
    assert!(uids.split_whitespace().all(|id| id == "65534"), "{uids}");
    let effective = u64::from_str_radix(&status_field(pid, "CapEff"), 16).unwrap();
    assert_eq!(effective, NET_BIND_SERVICE, "only the bind capability");
    assert_eq!(
        curl_in(pid, "tftp://127.0.0.1/lpxelinux.0"),
        b"loader bytes"
    );
    assert_eq!(
        curl_in(pid, "http://127.0.0.1:8080/boot/vmlinuz"),
        b"kernel bytes"
    );
    server.wait_log(&["tftp", "path=tftp/lpxelinux.0", "result=ok"]);
    assert!(server.stop_with("TERM").success(), "clean exit on SIGTERM");
}

#[test]
fn shipped_systemd_unit_passes_systemd_analyze_verify() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let unit = std::fs::read_to_string(root.join(UNIT)).unwrap();
    // The serve command line the unit runs is one pxebuild accepts.
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("the unit has ExecStart");
    let args: Vec<&str> = exec.split_whitespace().collect();
    assert_eq!(args[..2], ["/usr/local/bin/pxebuild", "serve"], "{exec}");
    let dist = Dist::new().file("http/f", b"x");
    let log = dist.tmp.path().join("serve.log");
    std::fs::write(&log, "").unwrap();
    // The same options, with the tree and log swapped for test ones and
    // `--status`, which parses everything and exits without serving.
    let mut options: Vec<String> = args[3..].iter().map(|a| a.to_string()).collect();
    let at = options.iter().position(|a| a == "--log").unwrap();
    options[at + 1] = log.to_string_lossy().into_owned();
    let out = Command::new(env!("CARGO_BIN_EXE_pxebuild"))
        .arg("serve")
        .arg(dist.dir())
        .args(&options)
        .arg("--status")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    // systemd's own check of the unit (keys, values, the binary), with the
    // binary path pointed at the one under test.
    let dir = tempfile::tempdir().unwrap();
    let copy = dir.path().join("pxebuild-serve.service");
    let local = unit.replace("/usr/local/bin/pxebuild", env!("CARGO_BIN_EXE_pxebuild"));
    std::fs::write(&copy, local).unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&copy)
        .output()
        .expect("running systemd-analyze (package systemd)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.trim().is_empty(), "warnings: {stderr}");
}
