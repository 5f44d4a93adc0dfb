//! The status page of `pxebuild serve` (the admin listener) seen in a real
//! browser: the example site built from the fixture mirror, served in a
//! network namespace of the test's own where the boot server has its site
//! address and the node its reserved one, a BIOS node's boot scripted with
//! real clients (tftp-hpa for the loader and its config, curl for kernel,
//! initrd, Ignition and beacons), then the page loaded in headless Chromium
//! (Debian's `chromium`): the node's row shows its stages in boot order.
//! Set PXEBUILD_STATUS_SCREENSHOT=<file> to keep the screenshot
//! (docs/status-page.png is made that way).
use std::path::Path;
use std::process::{Command, Output};

use crate::cluster_build::built;
use crate::serve_support::{Served, WAIT};

const SERVER_IP: &str = "10.20.0.2";
/// cp1 of the example site: BIOS, reserved address 10.20.0.11.
const CP1_IP: &str = "10.20.0.11";
const CP1_MAC_NAME: &str = "01-52-54-00-20-00-11";
/// cp2's address, for a beacon from a second node.
const CP2_IP: &str = "10.20.0.12";

/// Inside the new namespace: loopback up with the boot server's and the nodes'
/// addresses, and connections to the boot server leaving from cp1's address
/// by default (the local route's preferred source), so clients that cannot
/// bind an address (tftp-hpa) speak as cp1.
const NETNS_SETUP: &str = "ip link set lo up \
    && ip addr add 10.20.0.2/32 dev lo \
    && ip addr add 10.20.0.11/32 dev lo \
    && ip addr add 10.20.0.12/32 dev lo \
    && ip route replace local 10.20.0.2 dev lo table local proto kernel scope host src 10.20.0.11 \
    && exec \"$@\"";

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `program args` in the network namespace of process `pid`, under a hang guard.
fn in_ns(pid: u32, dir: &Path, program: &str, args: &[&str]) -> Output {
    Command::new("nsenter")
        .args(["--target", &pid.to_string(), "--net", "--"])
        .args(["timeout", &WAIT.as_secs().to_string(), program])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"))
}

fn ok(out: Output, what: &str) -> Vec<u8> {
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// curl in the namespace; `-s --fail`, the body returned.
fn curl(pid: u32, dir: &Path, args: &[&str]) -> Vec<u8> {
    let what = format!("curl {args:?}");
    ok(
        in_ns(pid, dir, "curl", &[&["-s", "--fail"], args].concat()),
        &what,
    )
}

fn http_code(pid: u32, dir: &Path, url: &str) -> String {
    let out = in_ns(
        pid,
        dir,
        "curl",
        &["-s", "-o", "/dev/null", "-w", "%{http_code}", url],
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Headless Chromium as root, with a profile of its own and nothing fetched
/// but `url`; `mode` is `--dump-dom` or `--screenshot=<file>`.
fn chromium(pid: u32, dir: &Path, mode: &str, url: &str) -> Vec<u8> {
    let profile = tempfile::tempdir().unwrap();
    let profile_arg = format!("--user-data-dir={}", profile.path().display());
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1200,700",
        &profile_arg,
        mode,
        url,
    ];
    ok(in_ns(pid, dir, "chromium", &args), "chromium")
}

/// The cells of `node`'s row that carry a stage time: (stage, elapsed ms), in
/// the order the DOM has them.
fn reached(dom: &str, node: &str) -> Vec<(String, i64)> {
    let row = row_of(dom, node);
    row.split("data-stage=\"")
        .skip(1)
        .filter_map(|cell| {
            let (stage, rest) = cell.split_once('"')?;
            let ms = rest
                .strip_prefix(" data-elapsed-ms=\"")?
                .split('"')
                .next()?;
            Some((stage.to_string(), ms.parse().ok()?))
        })
        .collect()
}

fn row_of<'a>(dom: &'a str, node: &str) -> &'a str {
    let start = dom
        .find(&format!("<tr data-node=\"{node}\">"))
        .unwrap_or_else(|| panic!("no row for {node}:\n{dom}"));
    let end = dom[start..].find("</tr>").unwrap();
    &dom[start..start + end]
}

/// The word after `key` in a pxelinux config (`KERNEL <url>`, `initrd=<url>`).
fn word_after<'a>(config: &'a str, key: &str) -> &'a str {
    let at = config
        .find(key)
        .unwrap_or_else(|| panic!("no {key} in:\n{config}"));
    config[at + key.len()..].split_whitespace().next().unwrap()
}

fn pause() {
    // Stages a little apart, so their times differ as in a real boot.
    std::thread::sleep(std::time::Duration::from_millis(120));
}

#[test]
fn status_page_shows_a_scripted_boot_in_order_in_chromium() {
    if !is_root() {
        eprintln!("not root: cannot make a network namespace, skipping");
        return;
    }
    let built = built();
    let log = built.root.join("serve.log");
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let mut cmd = Command::new("unshare");
    cmd.args(["--net", "--", "sh", "-c", NETNS_SETUP, "sh"])
        .arg(env!("CARGO_BIN_EXE_pxebuild"))
        .arg("serve")
        .arg(&built.dist)
        .args(["--listen", SERVER_IP, "--log"])
        .arg(&log);
    let server = Served::spawn(cmd);
    let pid = server.pid();
    assert_eq!(server.http, 8080, "{}", server.stderr());
    let admin = server.wait_line(|l| l.starts_with("admin listening on ") || l == "<eof>");
    assert_eq!(
        admin, "admin listening on 127.0.0.1:9080",
        "the default address"
    );
    let page_url = "http://127.0.0.1:9080/";
    let tftp = |remote: &str, local: &str| {
        let args = [SERVER_IP, "-m", "binary", "-c", "get", remote, local];
        let out = in_ns(pid, dir, "tftp", &args);
        ok(out, &format!("tftp-hpa get {remote}"));
        assert!(dir.join(local).exists(), "tftp-hpa fetched no {remote}");
    };

    // PXE: the loader and its config over TFTP (tftp-hpa speaks as cp1).
    tftp("lpxelinux.0", "lpxelinux.0");
    pause();
    tftp("ldlinux.c32", "ldlinux.c32");
    let cfg = format!("pxelinux.cfg/{CP1_MAC_NAME}");
    tftp(&cfg, "cp1.cfg");
    let config = std::fs::read_to_string(dir.join("cp1.cfg")).unwrap();

    // Live: the page already shows the loader, and nothing after the config.
    let early = String::from_utf8(curl(pid, dir, &[page_url])).unwrap();
    let early_stages: Vec<String> = reached(&early, "cp1").into_iter().map(|s| s.0).collect();
    assert_eq!(early_stages, ["dhcp", "loader", "config"], "{early}");
    pause();

    // Kernel, initrd and both Ignition configs over HTTP, from cp1's address.
    let from_cp1 = ["--interface", CP1_IP];
    let kernel = word_after(&config, "KERNEL ");
    let initrd = word_after(&config, "initrd=");
    let install = word_after(&config, "ignition.config.url=");
    curl(
        pid,
        dir,
        &[&from_cp1[..], &["-o", "vmlinuz", kernel]].concat(),
    );
    pause();
    curl(
        pid,
        dir,
        &[&from_cp1[..], &["-o", "initrd", initrd]].concat(),
    );
    pause();
    curl(
        pid,
        dir,
        &[&from_cp1[..], &["-o", "install.ign", install]].concat(),
    );
    let node_ign = install.replace("install.ign", "node.ign");
    curl(
        pid,
        dir,
        &[&from_cp1[..], &["-o", "node.ign", &node_ign]].concat(),
    );
    pause();
    // The beacons the installed node sends, in order.
    let beacon =
        |node: &str, milestone: &str| format!("http://{SERVER_IP}:8080/beacon/{node}/{milestone}");
    for milestone in [
        "install-started",
        "install-done",
        "first-boot",
        "sysexts-merged",
        "kubeadm-done",
        "cilium-ready",
    ] {
        curl(
            pid,
            dir,
            &[&from_cp1[..], &[&beacon("cp1", milestone)]].concat(),
        );
        pause();
    }
    // A second node stops for the operator: its detail is text from the network.
    let missing = format!(
        "{}?detail=%3Cb%3Esda%3C/b%3E",
        beacon("cp2", "install-disk-missing")
    );
    curl(pid, dir, &["--interface", CP2_IP, &missing]);

    // The page in a real browser: cp1's row holds every stage, in boot order,
    // with times that never go back.
    let dom = String::from_utf8(chromium(pid, dir, "--dump-dom", page_url)).unwrap();
    let stages = reached(&dom, "cp1");
    let names: Vec<&str> = stages.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(
        names,
        [
            "dhcp",
            "loader",
            "config",
            "kernel",
            "initrd",
            "ignition",
            "install",
            "first-boot",
            "sysexts",
            "kubeadm",
            "cilium"
        ],
        "{dom}"
    );
    assert_eq!(stages[0].1, 0, "times count from the first request");
    assert!(
        stages.windows(2).all(|w| w[0].1 <= w[1].1),
        "times in order: {stages:?}"
    );
    assert!(stages[10].1 >= 1000, "the pauses add up: {stages:?}");
    let cp1 = row_of(&dom, "cp1");
    assert!(cp1.contains("cilium-ready"), "the last beacon: {cp1}");
    // cp2: seen, and its detail shown as text, sanitised by the server and
    // escaped by the page (never markup).
    let cp2 = row_of(&dom, "cp2");
    assert!(cp2.contains("install-disk-missing"), "{cp2}");
    assert!(cp2.contains("<small>_b_sda__b_</small>"), "{cp2}");
    assert!(!dom.contains("<b>sda"), "{dom}");
    // Nodes the manifest names but that never asked have rows too.
    assert_eq!(reached(&dom, "worker1"), []);
    assert!(
        dom.contains("2 of 5 nodes seen, 1 through kubeadm"),
        "{dom}"
    );

    // /status.json is `serve --status --format json` over the same log.
    let live: serde_json::Value =
        serde_json::from_slice(&curl(pid, dir, &["http://127.0.0.1:9080/status.json"])).unwrap();
    let status = Command::new(env!("CARGO_BIN_EXE_pxebuild"))
        .args(["-q", "serve"])
        .arg(&built.dist)
        .args(["--status", "--format", "json", "--log"])
        .arg(&log)
        .output()
        .unwrap();
    let from_log: serde_json::Value = serde_json::from_slice(&ok(status, "--status")).unwrap();
    assert_eq!(live, from_log);

    // The nodes' port knows nothing of the page, and the page is not on the
    // nodes' address; the admin listener serves nothing else.
    let node_port = format!("http://{SERVER_IP}:8080");
    assert_eq!(http_code(pid, dir, &format!("{node_port}/")), "404");
    assert_eq!(
        http_code(pid, dir, &format!("{node_port}/status.json")),
        "404"
    );
    assert_eq!(
        http_code(pid, dir, &format!("http://{SERVER_IP}:9080/")),
        "000"
    );
    assert_eq!(
        http_code(pid, dir, "http://127.0.0.1:9080/index.html"),
        "404"
    );
    assert_eq!(
        http_code(pid, dir, "http://127.0.0.1:9080/lpxelinux.0"),
        "404"
    );
    let post = in_ns(
        pid,
        dir,
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            page_url,
        ],
    );
    assert_eq!(String::from_utf8_lossy(&post.stdout), "405");
    // A name that is not this machine's (DNS rebinding) is refused.
    let rebound = in_ns(
        pid,
        dir,
        "curl",
        &[
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            "Host: evil.example:9080",
            page_url,
        ],
    );
    assert_eq!(String::from_utf8_lossy(&rebound.stdout), "403");
    let head = curl(pid, dir, &["-sI", page_url]);
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(
        head.contains("content-security-policy: default-src 'none'"),
        "{head}"
    );
    assert!(
        head.contains("content-type: text/html; charset=utf-8"),
        "{head}"
    );

    // A screenshot of the same page.
    let shot = dir.join("status-page.png");
    chromium(
        pid,
        dir,
        &format!("--screenshot={}", shot.display()),
        page_url,
    );
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(
        png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 10_000,
        "a PNG"
    );
    if let Some(keep) = std::env::var_os("PXEBUILD_STATUS_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    assert!(server.stop_with("TERM").success());
}

#[test]
fn status_page_never_shares_the_nodes_port_and_can_be_off() {
    let dist = crate::serve_support::Dist::new().file("http/f", b"x");
    // The default admin address on the nodes' HTTP port: refused before
    // anything is bound, naming the flag.
    let out = Command::new(env!("CARGO_BIN_EXE_pxebuild"))
        .arg("serve")
        .arg(dist.dir())
        .args([
            "--listen",
            "127.0.0.1",
            "--http-port",
            "9080",
            "--tftp-port",
            "0",
        ])
        .args(["--no-log-file"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--admin 127.0.0.1:9080 is the nodes' HTTP port"),
        "{stderr}"
    );
    // A listener on 0.0.0.0 overlaps any address.
    let out = Command::new(env!("CARGO_BIN_EXE_pxebuild"))
        .arg("serve")
        .arg(dist.dir())
        .args([
            "--http-port",
            "8123",
            "--tftp-port",
            "0",
            "--admin",
            "127.0.0.1:8123",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let bad = Command::new(env!("CARGO_BIN_EXE_pxebuild"))
        .arg("serve")
        .arg(dist.dir())
        .args(["--admin", "9080"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2), "{bad:?}");

    // `--admin off`: the server runs without a page.
    let server = Served::start(&dist.dir(), &["--admin", "off", "--no-log-file"]);
    assert_eq!(
        std::fs::read(dist.path("http/f")).unwrap(),
        crate::serve_support::curl(&[&server.url("/f")]).stdout
    );
    assert!(
        !server.stderr().contains("admin listening"),
        "{}",
        server.stderr()
    );
}
