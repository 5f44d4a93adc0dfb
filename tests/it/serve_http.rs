//! `pxebuild serve` over HTTP, driven by curl and raw sockets on loopback.
use std::io::{Read, Write};
use std::net::TcpStream;

use crate::serve_support::{curl, pattern, Dist, WAIT};

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn status_of(args: &[&str]) -> String {
    let out = curl(&[&["-o", "/dev/null", "-w", "%{http_code}"], args].concat());
    text(&out.stdout)
}

#[test]
fn serve_http_get_head_and_content_types() {
    let blob = pattern(300_000, 1);
    let dist = Dist::new().file("http/boot/vmlinuz", &blob).file(
        "http/ignition/n1/install.ign",
        b"{\"ignition\":{\"version\":\"3.3.0\"}}",
    );
    let server = dist.serve(&[]);
    let out = curl(&[&server.url("/boot/vmlinuz")]);
    assert!(out.status.success());
    assert!(out.stdout == blob, "body differs");

    let head = text(&curl(&["-I", &server.url("/boot/vmlinuz")]).stdout);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("Content-Length: 300000\r\n"), "{head}");
    assert!(head.contains("Accept-Ranges: bytes"), "{head}");

    let ign = text(&curl(&["-i", &server.url("/ignition/n1/install.ign")]).stdout);
    assert!(ign.contains("Content-Type: application/json"), "{ign}");
    assert!(
        ign.ends_with("{\"ignition\":{\"version\":\"3.3.0\"}}"),
        "{ign}"
    );
    server.wait_log(&[
        "http 127.0.0.1:",
        "path=http/boot/vmlinuz",
        "status=200",
        "bytes=300000",
        "result=ok",
    ]);
}

#[test]
fn serve_http_single_ranges() {
    let blob = pattern(10_000, 2);
    let server = Dist::new()
        .file("http/f", &blob)
        .file("http/empty", b"")
        .serve(&[]);
    let out = curl(&["-i", "-r", "100-199", &server.url("/f")]);
    let (head, body) = split_response(&out.stdout);
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    assert!(
        head.contains("Content-Range: bytes 100-199/10000\r\n"),
        "{head}"
    );
    assert!(head.contains("Content-Length: 100\r\n"), "{head}");
    assert_eq!(body, &blob[100..200]);

    let suffix = curl(&["-r", "-10", &server.url("/f")]);
    assert_eq!(suffix.stdout, &blob[9_990..]);

    let out = curl(&["-i", "-r", "20000-", &server.url("/f")]);
    let (head, _) = split_response(&out.stdout);
    assert!(head.starts_with("HTTP/1.1 416"), "{head}");
    assert!(head.contains("Content-Range: bytes */10000\r\n"), "{head}");

    // Several ranges are answered with the whole file (allowed by RFC 9110).
    let multi = curl(&["-r", "0-1,5-6", &server.url("/f")]);
    assert!(multi.stdout == blob, "multi-range body differs");

    // A suffix longer than u64 is the whole file; of an empty file, an empty 200
    // (no range can name a byte of it), and the connection carries on (curl
    // asks for the same range on it).
    let huge = "-99999999999999999999999";
    assert_eq!(curl(&["-r", huge, &server.url("/f")]).stdout, blob);
    let out = curl(&["-i", "-r", huge, &server.url("/empty"), &server.url("/f")]);
    let (head, rest) = split_response(&out.stdout);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("Content-Length: 0\r\n"), "{head}");
    let (next, body) = split_response(rest);
    assert!(next.starts_with("HTTP/1.1 206"), "{next}");
    assert!(
        next.contains("Content-Range: bytes 0-9999/10000\r\n"),
        "{next}"
    );
    assert!(body == blob, "second body differs");
}

/// The value of header `name` in a response head.
fn header<'a>(head: &'a str, name: &str) -> &'a str {
    head.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(": "))
        .unwrap_or_else(|| panic!("no {name} in {head}"))
        .trim_end()
}

#[test]
fn serve_http_conditional_requests() {
    let blob = pattern(10_000, 3);
    let dist = Dist::new().file("http/f", &blob);
    let server = dist.serve(&[]);
    let url = server.url("/f");
    let head = text(&curl(&["-I", &url]).stdout);
    let (etag, modified) = (header(&head, "ETag"), header(&head, "Last-Modified"));

    // A cache revalidating: curl's own If-None-Match and If-Modified-Since.
    let saved = dist.tmp.path().join("etag");
    let saved = saved.to_str().unwrap();
    assert_eq!(status_of(&["--etag-save", saved, &url]), "200");
    assert_eq!(status_of(&["--etag-compare", saved, &url]), "304");
    let out = curl(&["-i", "-z", modified, &url]);
    let (not_modified, body) = split_response(&out.stdout);
    assert!(not_modified.starts_with("HTTP/1.1 304"), "{not_modified}");
    assert_eq!(header(&not_modified, "ETag"), etag);
    assert!(!not_modified.contains("Content-Length"), "{not_modified}");
    assert!(body.is_empty(), "a 304 has no body");
    let weak = format!("If-None-Match: \"other\", W/{etag}");
    assert_eq!(status_of(&["-H", &weak, &url]), "304", "weak comparison");
    let earlier = "Sun, 06 Nov 1994 08:49:37 GMT";
    assert_eq!(status_of(&["-z", earlier, &url]), "200");
    server.wait_log(&["path=http/f", "status=304", "bytes=0", "result=ok"]);

    // If-Match and If-Unmodified-Since guard against a changed file.
    assert_eq!(
        status_of(&["-H", &format!("If-Match: {etag}"), &url]),
        "200"
    );
    assert_eq!(status_of(&["-H", "If-Match: \"other\"", &url]), "412");
    // (As headers: curl's `-z -DATE` judges Last-Modified itself and reports
    // a 304 of its own when the date is not strictly later.)
    let unmodified = |date: &str| format!("If-Unmodified-Since: {date}");
    assert_eq!(status_of(&["-H", &unmodified(modified), &url]), "200");
    assert_eq!(status_of(&["-H", &unmodified(earlier), &url]), "412");
    server.wait_log(&["path=http/f", "status=412", "result=refused:precondition"]);

    // A download resumed with If-Range gets its range while the file is the
    // same, and the whole new file once a build has replaced it.
    let resume = |tag: &str| curl(&["-r", "100-199", "-H", &format!("If-Range: {tag}"), &url]);
    assert_eq!(resume(etag).stdout, &blob[100..200]);
    assert_eq!(resume(modified).stdout, &blob[100..200]);
    let newer = pattern(10_000, 4);
    let staged = dist.path("http/f.new");
    std::fs::write(&staged, &newer).unwrap();
    std::fs::rename(&staged, dist.path("http/f")).unwrap();
    assert!(resume(etag).stdout == newer, "not the whole new file");
    let head = text(&curl(&["-I", &url]).stdout);
    assert_ne!(header(&head, "ETag"), etag, "a new file has a new tag");
}

#[test]
fn serve_http_accepts_absolute_form_targets() {
    let blob = pattern(5_000, 5);
    let server = Dist::new().file("http/boot/f", &blob).serve(&[]);
    let out = curl(&[
        "--request-target",
        "http://boot.example:8080/boot/f?x=1",
        &server.url("/"),
    ]);
    assert!(out.stdout == blob, "body differs");
    server.wait_log(&["path=http/boot/f", "status=200", "bytes=5000"]);
    let traversal = ["--request-target", "http://h/../../etc/passwd"];
    assert_eq!(
        status_of(&[&traversal[..], &[&server.url("/")]].concat()),
        "403"
    );
}

fn split_response(bytes: &[u8]) -> (String, &[u8]) {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("no head")
        + 4;
    (text(&bytes[..end]), &bytes[end..])
}

#[test]
fn serve_http_other_methods_get_405() {
    let server = Dist::new().file("http/f", b"x").serve(&[]);
    for method in ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"] {
        let out = curl(&["-i", "-X", method, &server.url("/f")]);
        let head = text(&out.stdout);
        assert!(head.starts_with("HTTP/1.1 405"), "{method}: {head}");
        assert!(head.contains("Allow: GET, HEAD"), "{method}: {head}");
    }
}

#[test]
fn serve_http_refuses_traversal_and_listings() {
    let dist = Dist::new()
        .file("http/sub/f", b"inside")
        .file("tftp/t", b"tftp side");
    std::fs::write(dist.tmp.path().join("secret"), b"SECRET").unwrap();
    std::os::unix::fs::symlink("../../secret", dist.path("http/escape")).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", dist.path("http/passwd")).unwrap();
    std::os::unix::fs::symlink("sub/f", dist.path("http/alias")).unwrap();
    let server = dist.serve(&[]);
    for path in [
        "/../manifest.json",
        "/%2e%2e/manifest.json",
        "/%2E%2E/%2E%2E/secret",
        "/%252e%252e/manifest.json",
        "/sub/..%2f..%2fmanifest.json",
        "/..%5cmanifest.json",
        "/sub%00/f",
        "/escape",
        "/passwd",
        "//etc/passwd",
        "/sub/",
        "/sub",
        "/",
        "/../tftp/t",
    ] {
        let out = curl(&["--path-as-is", "-i", &server.url(path)]);
        let response = text(&out.stdout);
        let status = &response[9..12];
        assert!(
            status == "403" || status == "404" || status == "400",
            "{path}: {response}"
        );
        assert!(
            !response.contains("SECRET") && !response.contains("root:"),
            "{path}: {response}"
        );
        assert!(
            !response.contains("tftp side") && !response.contains("\"format\""),
            "{path}: {response}"
        );
    }
    assert_eq!(
        status_of(&[&server.url("/alias")]),
        "200",
        "symlink inside the root works"
    );
    server.wait_log(&["path=http/escape", "result=refused:escapes-root"]);
}

#[test]
fn serve_http_keep_alive_and_http_1_0() {
    let server = Dist::new()
        .file("http/a", b"AAAA")
        .file("http/b", b"BB")
        .serve(&[]);
    let mut stream = TcpStream::connect(("127.0.0.1", server.http)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    // Two pipelined HTTP/1.1 requests on one connection, the second closing it.
    stream
        .write_all(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\nGET /b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut all = Vec::new();
    stream.read_to_end(&mut all).unwrap();
    let all = text(&all);
    assert_eq!(all.matches("HTTP/1.1 200 OK").count(), 2, "{all}");
    assert!(
        all.contains("Connection: keep-alive") && all.contains("\r\n\r\nAAAA"),
        "{all}"
    );
    assert!(all.ends_with("\r\n\r\nBB"), "{all}");

    // lpxelinux speaks HTTP/1.0 with Connection: close and a Syslinux cookie.
    let mut stream = TcpStream::connect(("127.0.0.1", server.http)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream
        .write_all(b"GET /a HTTP/1.0\r\nUser-Agent: Syslinux/6.04\r\n\r\n")
        .unwrap();
    let mut all = Vec::new();
    stream.read_to_end(&mut all).unwrap();
    let all = text(&all);
    assert!(
        all.contains("Content-Length: 4\r\n") && all.contains("Connection: close"),
        "{all}"
    );

    let verbose = curl(&[
        "-v",
        "-o",
        "/dev/null",
        "-o",
        "/dev/null",
        &server.url("/a"),
        &server.url("/b"),
    ]);
    let log = text(&verbose.stderr).to_lowercase();
    assert!(log.contains("re-using") || log.contains("reusing"), "{log}");
}

#[test]
fn serve_http_idle_connections_do_not_block_others() {
    let blob = pattern(50_000, 3);
    let server = Dist::new().file("http/f", &blob).serve(&[]);
    let mut idle = Vec::new();
    for i in 0..200 {
        let mut stream = TcpStream::connect(("127.0.0.1", server.http)).unwrap();
        if i % 2 == 0 {
            // Half of them start a request head and never finish it.
            stream.write_all(b"GET /f HTTP/1.1\r\nHost:").unwrap();
        }
        idle.push(stream);
    }
    let out = curl(&[&server.url("/f")]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(out.stdout == blob, "body differs");
    drop(idle);
}

#[test]
fn serve_http_connection_cap_answers_503_and_logs_it() {
    let server = Dist::new()
        .file("http/f", b"x")
        .serve(&["--max-connections", "2"]);
    let held: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(("127.0.0.1", server.http)).unwrap())
        .collect();
    let out = curl(&["-s", "-D", "-", "-o", "/dev/null", &server.url("/f")]);
    let head = text(&out.stdout);
    assert!(head.starts_with("HTTP/1.1 503 "), "{head}");
    assert!(head.contains("Retry-After: 1\r\n"), "{head}");
    server.wait_log(&["http", "status=503", "result=refused:busy"]);
    // A connection that closes frees its place.
    drop(held);
    let deadline = std::time::Instant::now() + WAIT;
    while status_of(&[&server.url("/f")]) != "200" {
        assert!(std::time::Instant::now() < deadline, "still refused");
    }
}

#[test]
fn serve_http_per_node_ip_rule() {
    let ign = "http/ignition/n1-abc/install.ign";
    let dist = Dist::new()
        .file(ign, b"{}")
        .node("n1", "52:54:00:00:00:01", "127.0.0.2")
        .restrict(ign, "n1", "127.0.0.2");
    let server = dist.serve(&[]);
    let url = server.url("/ignition/n1-abc/install.ign");
    assert_eq!(status_of(&[&url]), "403", "another IP is refused");
    server.wait_log(&[
        "127.0.0.1:",
        "path=http/ignition/n1-abc/install.ign",
        "result=refused:belongs-to-n1",
    ]);
    assert_eq!(
        status_of(&["--interface", "127.0.0.2", &url]),
        "200",
        "the node itself is served"
    );
    server.wait_log(&[
        "node=n1",
        "path=http/ignition/n1-abc/install.ign",
        "result=ok",
    ]);
    // An alias through a symlink inside the tree is restricted as well.
    std::os::unix::fs::symlink("ignition/n1-abc/install.ign", dist.path("http/alias.ign")).unwrap();
    assert_eq!(status_of(&[&server.url("/alias.ign")]), "403");
    drop(server);

    let open = dist.serve(&["--no-ip-check"]);
    assert_eq!(
        status_of(&[&open.url("/ignition/n1-abc/install.ign")]),
        "200",
        "--no-ip-check"
    );
    // Behind NAT a node's beacons arrive from another address: accepted too.
    assert_eq!(status_of(&[&open.url("/beacon/n1/first-boot")]), "204");
    open.wait_log(&["node=n1", "milestone=first-boot"]);
}

#[test]
fn serve_http_beacons_status_and_shutdown() {
    let dist = Dist::new()
        .file("http/f", b"x")
        .node("n1", "52:54:00:00:00:01", "127.0.0.2")
        .node("n2", "52:54:00:00:00:02", "127.0.0.3");
    let server = dist.serve(&[]);
    assert_eq!(
        status_of(&["--interface", "127.0.0.2", &server.url("/f")]),
        "200"
    );
    let from_n1 = ["--interface", "127.0.0.2"];
    let beacon = |args: &[&str], path: &str| {
        let url = server.url(path);
        status_of(&[args, &[url.as_str()]].concat())
    };
    assert_eq!(beacon(&from_n1, "/beacon/n1/install-done"), "204");
    assert_eq!(
        beacon(
            &["-X", "POST", from_n1[0], from_n1[1]],
            "/beacon/n1/first-boot"
        ),
        "204"
    );
    assert_eq!(beacon(&from_n1, "/beacon/n1/bad%20name"), "404");
    server.wait_log(&["node=n1", "milestone=first-boot"]);
    // Only a node's own address writes its timeline; unknown names are refused.
    assert_eq!(beacon(&[], "/beacon/n1/kubeadm-done"), "403");
    server.wait_log(&[
        "path=beacon/n1/kubeadm-done",
        "result=refused:belongs-to-n1",
    ]);
    assert_eq!(beacon(&from_n1, "/beacon/ghost/first-boot"), "404");
    server.wait_log(&[
        "node=n1",
        "path=beacon/ghost/first-boot",
        "result=refused:unknown-node",
    ]);
    let exit = server.stop_with("TERM");
    assert!(exit.success(), "{exit:?}");

    let status = std::process::Command::new(env!("CARGO_BIN_EXE_pxebuild"))
        .args(["serve", "--status"])
        .arg(dist.dir())
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", text(&status.stderr));
    let table = text(&status.stdout);
    let row = table
        .lines()
        .find(|l| l.starts_with("n1 "))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(
        row.contains("first-boot") && row.contains("http/f"),
        "{table}"
    );
    assert!(table.lines().any(|l| l.starts_with("n2 ")), "{table}");
    // The same for scripts (docs/serve.md: `--status --format json`).
    let json = std::process::Command::new(env!("CARGO_BIN_EXE_pxebuild"))
        .args(["-q", "serve", "--status", "--format", "json"])
        .arg(dist.dir())
        .output()
        .unwrap();
    assert!(json.status.success(), "{}", text(&json.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let nodes = doc["nodes"].as_array().unwrap();
    let n1 = nodes.iter().find(|n| n["name"] == "n1").unwrap();
    assert_eq!(n1["milestone"], "first-boot", "{doc}");
    assert_eq!(n1["last_file"], "http/f", "{doc}");
    let n2 = nodes.iter().find(|n| n["name"] == "n2").unwrap();
    assert!(n2["milestone"].is_null(), "{doc}");

    let timeline = std::process::Command::new(env!("CARGO_BIN_EXE_pxebuild"))
        .args(["serve", "--timeline", "n1"])
        .arg(dist.dir())
        .output()
        .unwrap();
    let steps = text(&timeline.stdout);
    let lines: Vec<&str> = steps.lines().collect();
    assert_eq!(lines.len(), 5, "{steps}");
    assert!(
        lines[0].contains("http/f") && lines[2].contains("milestone first-boot"),
        "{steps}"
    );
    // What n1 asked for and was refused is part of its timeline, in order.
    assert!(lines[3].contains("refused:bad-beacon"), "{steps}");
    assert!(lines[4].contains("refused:unknown-node"), "{steps}");
}

/// A beacon's detail (a query on a GET) lands in the log as one sanitised,
/// bounded field, never as a second line, and `--timeline` shows it.
#[test]
fn serve_http_beacon_detail_is_one_sanitised_field_in_the_timeline() {
    let dist = Dist::new().node("n1", "52:54:00:00:00:01", "127.0.0.2");
    let server = dist.serve(&[]);
    let from_n1 = ["--interface", "127.0.0.2"];
    let inventory = "vda=20G,QEMU_HARDDISK,virtio-n1-root;sdb=1.8T,ST2000,ata-ST2000_Z4Z";
    let url = server.url(&format!(
        "/beacon/n1/install-disk-missing?detail={inventory}"
    ));
    assert_eq!(status_of(&[from_n1[0], from_n1[1], &url]), "204");
    // A forged second log line inside the detail stays in its field.
    let forged = "x%0A2026-01-01T00:00:00.000Z%20http%20-%20node=n1%20milestone=cilium-ready";
    let url = server.url(&format!("/beacon/n1/kubeadm-timeout?detail={forged}"));
    assert_eq!(status_of(&[from_n1[0], from_n1[1], &url]), "204");
    server.wait_log(&["milestone=kubeadm-timeout"]);
    let exit = server.stop_with("TERM");
    assert!(exit.success(), "{exit:?}");

    let timeline = std::process::Command::new(env!("CARGO_BIN_EXE_pxebuild"))
        .args(["serve", "--timeline", "n1"])
        .arg(dist.dir())
        .output()
        .unwrap();
    let steps = text(&timeline.stdout);
    let lines: Vec<&str> = steps.lines().collect();
    assert_eq!(lines.len(), 2, "{steps}");
    assert!(
        lines[0].contains(&format!("milestone install-disk-missing ({inventory})")),
        "{steps}"
    );
    assert!(
        lines[1].contains(
            "milestone kubeadm-timeout \
             (x_2026-01-01T00:00:00.000Z_http_-_node=n1_milestone=cilium-ready)"
        ),
        "{steps}"
    );
    assert!(!steps.contains("milestone cilium-ready"), "{steps}");
}

#[test]
fn serve_http_sighup_reloads_the_manifest() {
    let dist =
        Dist::new()
            .file("http/ignition/x.ign", b"{}")
            .node("n1", "52:54:00:00:00:01", "127.0.0.2");
    let server = dist.serve(&[]);
    assert_eq!(status_of(&[&server.url("/ignition/x.ign")]), "200");
    let dist = dist.restrict("http/ignition/x.ign", "n1", "127.0.0.2");
    server.signal("HUP");
    server.wait_line(|l| l.contains("manifest reloaded"));
    assert_eq!(status_of(&[&server.url("/ignition/x.ign")]), "403");
    drop(dist);
}

#[test]
fn serve_sighup_reopens_a_rotated_log_file() {
    let dist = Dist::new().file("http/a", b"a").file("http/b", b"b");
    let log = dist.tmp.path().join("serve.log");
    let server = dist.serve(&["--log", log.to_str().unwrap()]);
    assert_eq!(status_of(&[&server.url("/a")]), "200");
    server.wait_log(&["path=http/a"]);
    // logrotate's default: rename the file, then signal the server.
    let rotated = dist.tmp.path().join("serve.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    server.signal("HUP");
    server.wait_line(|l| l.contains("manifest reloaded"));
    assert_eq!(status_of(&[&server.url("/b")]), "200");
    server.wait_log(&["path=http/b"]);
    let (old, new) = (
        std::fs::read_to_string(&rotated).unwrap(),
        std::fs::read_to_string(&log).unwrap(),
    );
    assert!(
        old.contains("path=http/a") && !old.contains("path=http/b"),
        "{old}"
    );
    assert!(
        new.contains("path=http/b") && !new.contains("path=http/a"),
        "{new}"
    );
}

#[test]
fn serve_check_refuses_a_corrupt_tree() {
    let dist = Dist::new()
        .file("http/f", b"good bytes")
        .file("tftp/g", b"more");
    // `--check` checks and exits: it serves nothing.
    let check = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_pxebuild"))
            .args(["serve", "--check", "--http-port", "0", "--tftp-port", "0"])
            .args(["--listen", "127.0.0.1"])
            .arg(dist.dir())
            .output()
            .unwrap()
    };
    let good = check();
    assert_eq!(good.status.code(), Some(0), "{good:?}");
    let err = text(&good.stderr);
    assert!(
        err.contains("check: 2 files match") && !err.contains("listening"),
        "{err}"
    );
    std::fs::write(dist.path("http/f"), b"evil bytes").unwrap();
    let out = check();
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    assert!(
        err.contains("http/f: sha256") && !err.contains("listening"),
        "{err}"
    );
}

/// Sends `request` on a fresh connection and returns the status line.
fn raw_status(port: u16, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    stream.write_all(request).unwrap();
    let mut all = Vec::new();
    let _ = stream.read_to_end(&mut all);
    text(&all).lines().next().unwrap_or_default().to_string()
}

#[test]
fn serve_http_host_content_length_ranges_and_trailing_slashes() {
    let dist = Dist::new().file("http/dhcp/dnsmasq.conf", &pattern(1000, 3));
    let server = dist.serve(&[]);
    let port = server.http;
    // RFC 9112 3.2: Host is required in HTTP/1.1, and once in any request.
    for request in [
        &b"GET /dhcp/dnsmasq.conf HTTP/1.1\r\n\r\n"[..],
        b"GET /dhcp/dnsmasq.conf HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        // RFC 9112 6.3: two different lengths make the framing unknowable.
        b"GET /dhcp/dnsmasq.conf HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    ] {
        assert_eq!(raw_status(port, request), "HTTP/1.1 400 Bad Request", "{}", text(request));
    }
    assert_eq!(
        raw_status(port, b"GET /dhcp/dnsmasq.conf HTTP/1.0\r\n\r\n"),
        "HTTP/1.1 200 OK",
        "HTTP/1.0 may leave Host out"
    );
    // A name ending in a slash names a directory, and the root is one too.
    for path in ["/dhcp/dnsmasq.conf/", "/dhcp/dnsmasq.conf/.", "/", "/dhcp/"] {
        let out = curl(&[
            "--path-as-is",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &server.url(path),
        ]);
        assert_eq!(text(&out.stdout), "404", "{path}");
    }
    // Range units are case-insensitive; a last position past u64 is clamped.
    let head = text(
        &curl(&[
            "-si",
            "-H",
            "Range: BYTES=0-9",
            &server.url("/dhcp/dnsmasq.conf"),
        ])
        .stdout,
    );
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    let head = text(
        &curl(&[
            "-si",
            "-H",
            "Range: bytes=0-99999999999999999999",
            &server.url("/dhcp/dnsmasq.conf"),
        ])
        .stdout,
    );
    assert!(head.starts_with("HTTP/1.1 206"), "{head}");
    assert!(
        head.contains("Content-Range: bytes 0-999/1000\r\n"),
        "{head}"
    );
}

#[test]
fn serve_http_idle_and_stalled_clients_time_out() {
    let dist = Dist::new().file("http/big", &vec![7u8; 32 << 20]);
    let server = dist.serve(&["--http-timeout", "1"]);
    // Idle: the server closes a connection that never sends a request.
    let mut idle = TcpStream::connect(("127.0.0.1", server.http)).unwrap();
    idle.set_read_timeout(Some(WAIT)).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!(
        idle.read(&mut buf).unwrap_or(0),
        0,
        "idle connection closed by the server"
    );
    // Stalled: a client that asks for 32 MiB (more than the socket buffers hold)
    // and never reads is cut off.
    let mut stalled = TcpStream::connect(("127.0.0.1", server.http)).unwrap();
    stalled
        .write_all(b"GET /big HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    // The server's own stall rule ends it (not a send timeout that window
    // updates from the client's kernel can keep renewing).
    server.wait_log(&["path=http/big", "result=aborted:timed%20out"]);
    assert_eq!(
        status_of(&[&server.url("/big"), "-r", "0-9"]),
        "206",
        "others are still served"
    );
    drop(stalled);
}

#[test]
fn serve_http_concurrent_large_bodies_and_keep_alive_after_them() {
    // Concurrent large bodies arrive intact, and each connection is reused for
    // a range and a small file after its large body (keep-alive holds).
    let big = pattern(3 << 20, 5);
    let small = pattern(1000, 6);
    let dist = Dist::new()
        .file("http/big", &big)
        .file("http/small", &small);
    let server = dist.serve(&[]);
    let fetches: Vec<_> = (0..8)
        .map(|i| {
            let url = server.url("/big");
            let ranged = server.url("/big");
            let small = server.url("/small");
            std::thread::spawn(move || {
                let range = format!("{}-{}", i * 1000, (2 << 20) + i);
                // One curl, one connection: full body, a range, then a small file.
                let out = curl(&[
                    "-v", &url, "--next", "-v", "-r", &range, &ranged, "--next", "-v", &small,
                ]);
                assert!(out.status.success(), "{}", text(&out.stderr));
                let reused = text(&out.stderr)
                    .matches("Re-using existing connection")
                    .count();
                assert_eq!(reused, 2, "{}", text(&out.stderr));
                out.stdout
            })
        })
        .collect();
    for (i, fetch) in fetches.into_iter().enumerate() {
        let got = fetch.join().unwrap();
        let (from, to) = (i * 1000, (2 << 20) + i);
        let want = [&big[..], &big[from..=to], &small[..]].concat();
        assert!(got == want, "client {i}: body differs");
    }
    server.wait_log(&["path=http/small", "status=200", "result=ok"]);
}
