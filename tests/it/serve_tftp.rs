//! `pxebuild serve` over TFTP: atftp, tftp-hpa and curl as clients, plus a raw
//! UDP client for what real tools cannot be made to do (lose a packet, send
//! garbage, abort after the OACK like OVMF).
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;

use crate::serve_support::{curl, pattern, run, tftp_hpa, Dist, Served, WAIT};

fn raw_client(bind: &str) -> UdpSocket {
    let sock = UdpSocket::bind(bind).unwrap();
    sock.set_read_timeout(Some(WAIT)).unwrap();
    sock
}

fn rrq(name: &str, options: &[(&str, &str)]) -> Vec<u8> {
    let mut out = vec![0, 1];
    for part in [name, "octet"]
        .into_iter()
        .chain(options.iter().flat_map(|(k, v)| [*k, *v]))
    {
        out.extend_from_slice(part.as_bytes());
        out.push(0);
    }
    out
}

fn recv(sock: &UdpSocket) -> (Vec<u8>, SocketAddr) {
    let mut buf = vec![0u8; 70_000];
    let (n, from) = sock.recv_from(&mut buf).expect("no reply from the server");
    buf.truncate(n);
    (buf, from)
}

fn ack(block: u16) -> [u8; 4] {
    let [a, b] = block.to_be_bytes();
    [0, 4, a, b]
}

fn error_code(packet: &[u8]) -> u16 {
    assert_eq!(
        &packet[..2],
        &[0, 5],
        "expected an ERROR packet, got {packet:?}"
    );
    u16::from_be_bytes([packet[2], packet[3]])
}

#[test]
fn serve_tftp_atftp_with_blksize_windowsize_tsize() {
    let blob = pattern(3_000_000, 10);
    let dist = Dist::new().file("tftp/efi64/syslinux.efi", &blob);
    let server = dist.serve(&[]);
    let port = server.tftp.to_string();
    let out_dir = dist.tmp.path();
    for (i, window) in ["1", "4", "16"].into_iter().enumerate() {
        let local = format!("out{i}");
        let out = run(
            out_dir,
            "atftp",
            &[
                "-g",
                "-r",
                "efi64/syslinux.efi",
                "-l",
                &local,
                "--option",
                "blksize 1468",
                "--option",
                &format!("windowsize {window}"),
                "--option",
                "tsize 0",
                "127.0.0.1",
                &port,
            ],
        );
        assert!(
            out.status.success(),
            "atftp: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            std::fs::read(out_dir.join(&local)).unwrap() == blob,
            "windowsize {window}"
        );
    }
    server.wait_log(&[
        "tftp 127.0.0.1:",
        "path=tftp/efi64/syslinux.efi",
        "bytes=3000000",
        "result=ok",
    ]);
}

/// Fetches `remote` into `dir/local` with tftp-hpa's client, in binary mode.
fn tftp_hpa_get(dir: &Path, port: u16, remote: &str, local: &str) {
    let out = tftp_hpa(dir, port, remote, local);
    assert!(
        out.status.success(),
        "tftp-hpa: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn serve_tftp_hpa_client_and_curl() {
    let blob = pattern(700_001, 11);
    let dist = Dist::new().file("tftp/pxelinux.cfg/default", &blob);
    let server = dist.serve(&[]);
    let dir = dist.tmp.path();
    tftp_hpa_get(dir, server.tftp, "pxelinux.cfg/default", "hpa.out");
    assert!(
        std::fs::read(dir.join("hpa.out")).unwrap() == blob,
        "tftp-hpa content"
    );
    for blksize in ["512", "1468", "8192"] {
        let url = format!("tftp://127.0.0.1:{}/pxelinux.cfg/default", server.tftp);
        let out = curl(&["--tftp-blksize", blksize, &url]);
        assert!(
            out.status.success(),
            "curl blksize {blksize}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.stdout == blob, "curl blksize {blksize}");
    }
}

#[test]
fn serve_tftp_block_numbers_roll_over() {
    // 65536 blocks of 512 bytes plus a bit: the block number wraps past 65535.
    let blob = pattern(65_537 * 512 + 100, 12);
    let dist = Dist::new().file("tftp/big.img", &blob);
    let server = dist.serve(&[]);
    let dir = dist.tmp.path();
    tftp_hpa_get(dir, server.tftp, "big.img", "big.out");
    assert!(
        std::fs::read(dir.join("big.out")).unwrap() == blob,
        "content differs after rollover"
    );
    let out = run(
        dir,
        "atftp",
        &[
            "-g",
            "-r",
            "big.img",
            "-l",
            "atftp.out",
            "127.0.0.1",
            &server.tftp.to_string(),
        ],
    );
    assert!(
        out.status.success(),
        "atftp: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::read(dir.join("atftp.out")).unwrap() == blob,
        "atftp content differs after rollover"
    );
}

#[test]
fn serve_tftp_write_requests_are_refused() {
    let dist = Dist::new().file("tftp/f", b"x");
    let server = dist.serve(&[]);
    let sock = raw_client("127.0.0.1:0");
    let mut wrq = rrq("new-file", &[]);
    wrq[1] = 2;
    sock.send_to(&wrq, ("127.0.0.1", server.tftp)).unwrap();
    let (reply, _) = recv(&sock);
    assert_eq!(error_code(&reply), 2);
    assert!(!dist.path("tftp/new-file").exists());
    let dir = dist.tmp.path();
    std::fs::write(dir.join("upload"), b"data").unwrap();
    let out = run(
        dir,
        "atftp",
        &[
            "-p",
            "-l",
            "upload",
            "-r",
            "upload",
            "127.0.0.1",
            &server.tftp.to_string(),
        ],
    );
    assert!(!out.status.success());
    assert!(!dist.path("tftp/upload").exists());
    server.wait_log(&["path=tftp/new-file", "result=refused:write"]);
}

#[test]
fn serve_tftp_malformed_datagrams_and_traversal() {
    let dist = Dist::new().file("tftp/f", b"fine");
    std::fs::write(dist.tmp.path().join("secret"), b"SECRET").unwrap();
    std::os::unix::fs::symlink("../../secret", dist.path("tftp/escape")).unwrap();
    let server = dist.serve(&[]);
    let to = ("127.0.0.1", server.tftp);
    let sock = raw_client("127.0.0.1:0");
    for garbage in [
        &b"\x00\x01no-nul"[..],
        b"\x00\x01f\x00binary\x00",
        b"\x00\x09zz",
        b"\x00\x01\x00octet\x00",
        b"\x00\x03\x00\x01data",
    ] {
        sock.send_to(garbage, to).unwrap();
        let (reply, _) = recv(&sock);
        assert_eq!(error_code(&reply), 4, "{garbage:?}");
    }
    // A one-byte datagram is malformed too; the server keeps working afterwards.
    sock.send_to(b"\x00", to).unwrap();
    let (reply, _) = recv(&sock);
    assert_eq!(error_code(&reply), 4);
    for (name, code) in [
        ("../manifest.json", 2),
        ("/etc/passwd", 2),
        ("escape", 2),
        ("a\\..\\f", 2),
        ("missing", 1),
        (".", 1),
        ("f/", 1),
    ] {
        sock.send_to(&rrq(name, &[]), to).unwrap();
        let (reply, _) = recv(&sock);
        assert_eq!(error_code(&reply), code, "{name}");
    }
    // Refusals are logged under the area's prefix, the name as it was asked.
    server.wait_log(&["path=tftp/missing", "result=not-found"]);
    server.wait_log(&["path=tftp//etc/passwd", "result=refused:absolute-path"]);
    sock.send_to(&rrq("f", &[]), to).unwrap();
    let (reply, _) = recv(&sock);
    assert_eq!(reply, b"\x00\x03\x00\x01fine");
}

#[test]
fn serve_tftp_session_cap_answers_busy_and_logs_it() {
    let server = Dist::new()
        .file("tftp/f", b"0123456789")
        .serve(&["--max-tftp-sessions", "1"]);
    let to = ("127.0.0.1", server.tftp);
    // One transfer runs: its first block is out and not yet acknowledged.
    let first = raw_client("127.0.0.1:0");
    first.send_to(&rrq("f", &[]), to).unwrap();
    let (data, tid) = recv(&first);
    assert_eq!(data, b"\x00\x03\x00\x010123456789");
    let other = raw_client("127.0.0.1:0");
    other.send_to(&rrq("f", &[]), to).unwrap();
    let (reply, from) = recv(&other);
    assert_eq!(error_code(&reply), 0);
    assert_eq!(from.port(), server.tftp, "refused from the request port");
    assert!(String::from_utf8_lossy(&reply).contains("server busy"));
    server.wait_log(&["tftp", "path=tftp/f", "result=refused:busy"]);
    // Once the transfer ends, the next request is served.
    first.send_to(&ack(1), tid).unwrap();
    server.wait_log(&["path=tftp/f", "bytes=10", "result=ok"]);
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        other.send_to(&rrq("f", &[]), to).unwrap();
        let (reply, _) = recv(&other);
        if reply.starts_with(&[0, 3]) {
            break;
        }
        assert_eq!(error_code(&reply), 0);
        assert!(std::time::Instant::now() < deadline, "still busy");
    }
}

#[test]
fn serve_tftp_lost_data_and_duplicate_acks() {
    let blob = pattern(512 * 3 + 10, 13);
    let server = Dist::new().file("tftp/f", &blob).serve(&[]);
    let sock = raw_client("127.0.0.1:0");
    sock.send_to(&rrq("f", &[("timeout", "1")]), ("127.0.0.1", server.tftp))
        .unwrap();
    let (oack, tid) = recv(&sock);
    assert_eq!(oack, b"\x00\x06timeout\x001\x00");
    assert_ne!(tid.port(), server.tftp, "a transfer uses its own port");
    sock.send_to(&ack(0), tid).unwrap();
    let (first, _) = recv(&sock);
    assert_eq!(&first[..4], b"\x00\x03\x00\x01");
    // "Lose" DATA 1: no ACK. The server must send it again after its timeout.
    let (again, from) = recv(&sock);
    assert_eq!((again.clone(), from), (first.clone(), tid));
    // Duplicate ACK 1 must not trigger a second DATA 2 (Sorcerer's Apprentice).
    sock.send_to(&ack(1), tid).unwrap();
    sock.send_to(&ack(1), tid).unwrap();
    let (second, _) = recv(&sock);
    assert_eq!(&second[..4], b"\x00\x03\x00\x02");
    sock.send_to(&ack(2), tid).unwrap();
    let (third, _) = recv(&sock);
    assert_eq!(&third[..4], b"\x00\x03\x00\x03", "DATA 2 was sent twice");
    sock.send_to(&ack(3), tid).unwrap();
    let (last, _) = recv(&sock);
    assert_eq!(&last[..4], b"\x00\x03\x00\x04");
    assert_eq!(&last[4..], &blob[512 * 3..]);
    sock.send_to(&ack(4), tid).unwrap();
    server.wait_log(&["path=tftp/f", "bytes=1546", "result=ok"]);
}

#[test]
fn serve_tftp_ovmf_tsize_probe_then_windowed_transfer() {
    let blob = pattern(10_000, 14);
    let server = Dist::new()
        .file("tftp/efi64/syslinux.efi", &blob)
        .serve(&[]);
    let sock = raw_client("127.0.0.1:0");
    let to = ("127.0.0.1", server.tftp);
    let options = [("blksize", "1468"), ("windowsize", "4"), ("tsize", "0")];
    sock.send_to(&rrq("efi64/syslinux.efi", &options), to)
        .unwrap();
    let (oack, tid) = recv(&sock);
    assert_eq!(
        oack,
        b"\x00\x06blksize\x001468\x00windowsize\x004\x00tsize\x0010000\x00"
    );
    sock.send_to(b"\x00\x05\x00\x08User aborted the transfer\x00", tid)
        .unwrap();
    server.wait_log(&["path=tftp/efi64/syslinux.efi", "result=aborted:8"]);

    sock.send_to(&rrq("efi64/syslinux.efi", &options), to)
        .unwrap();
    let (_, tid) = recv(&sock);
    sock.send_to(&ack(0), tid).unwrap();
    let mut got = Vec::new();
    for block in 1..=4u16 {
        let (data, _) = recv(&sock);
        assert_eq!(
            &data[..4],
            &[0, 3, 0, block as u8],
            "a window of 4 without ACKs"
        );
        got.extend_from_slice(&data[4..]);
    }
    sock.send_to(&ack(4), tid).unwrap();
    for block in 5..=7u16 {
        let (data, _) = recv(&sock);
        assert_eq!(&data[..4], &[0, 3, 0, block as u8]);
        got.extend_from_slice(&data[4..]);
    }
    sock.send_to(&ack(7), tid).unwrap();
    assert!(got == blob, "windowed content");
}

#[test]
fn serve_tftp_replies_from_the_request_address() {
    // Listening on 0.0.0.0, a request sent to 127.0.0.2 is answered from 127.0.0.2.
    let dist = Dist::new().file("tftp/f", b"abc");
    let server = Served::start_on(&dist.dir(), "0.0.0.0", &[]);
    let sock = raw_client("127.0.0.1:0");
    sock.send_to(&rrq("f", &[]), ("127.0.0.2", server.tftp))
        .unwrap();
    let (data, from) = recv(&sock);
    assert_eq!(data, b"\x00\x03\x00\x01abc");
    assert_eq!(from.ip().to_string(), "127.0.0.2");
    sock.send_to(&ack(1), from).unwrap();
}

#[test]
fn serve_tftp_concurrent_transfers() {
    let mut dist = Dist::new();
    let blobs: Vec<Vec<u8>> = (0..16)
        .map(|i| pattern(400_000 + i * 1000, 100 + i as u64))
        .collect();
    for (i, blob) in blobs.iter().enumerate() {
        dist = dist.file(&format!("tftp/f{i}"), blob);
    }
    let server = dist.serve(&[]);
    let port = server.tftp.to_string();
    let dir = dist.tmp.path().to_path_buf();
    let children: Vec<_> = (0..16)
        .map(|i| {
            std::process::Command::new("timeout")
                .args([
                    &WAIT.as_secs().to_string(),
                    "atftp",
                    "-g",
                    "-r",
                    &format!("f{i}"),
                    "-l",
                    &format!("o{i}"),
                ])
                .args(["--option", "blksize 1468", "127.0.0.1", &port])
                .current_dir(&dir)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, mut child) in children.into_iter().enumerate() {
        assert!(child.wait().unwrap().success(), "transfer {i}");
        assert!(
            std::fs::read(Path::new(&dir).join(format!("o{i}"))).unwrap() == blobs[i],
            "content {i}"
        );
    }
}

#[test]
fn serve_tftp_dist_swap_keeps_open_transfers() {
    let old = pattern(512 * 4, 20);
    let new = pattern(512 * 4, 21);
    let dist = Dist::new().file("tftp/f", &old);
    let server = dist.serve(&[]);
    let sock = raw_client("127.0.0.1:0");
    sock.send_to(&rrq("f", &[]), ("127.0.0.1", server.tftp))
        .unwrap();
    let (first, tid) = recv(&sock);
    // A build swaps dist/ while the transfer runs.
    let parked = dist.tmp.path().join("dist.old");
    std::fs::rename(dist.dir(), &parked).unwrap();
    std::fs::create_dir_all(dist.path("tftp")).unwrap();
    std::fs::write(dist.path("tftp/f"), &new).unwrap();
    std::fs::copy(parked.join("manifest.json"), dist.path("manifest.json")).unwrap();
    let mut got = first[4..].to_vec();
    for block in 1..=4u16 {
        sock.send_to(&ack(block), tid).unwrap();
        let (data, _) = recv(&sock);
        got.extend_from_slice(&data[4..]);
    }
    sock.send_to(&ack(5), tid).unwrap();
    assert!(got == old, "the open transfer kept serving the old tree");
    sock.send_to(&rrq("f", &[]), ("127.0.0.1", server.tftp))
        .unwrap();
    let (data, _) = recv(&sock);
    assert!(data[4..] == new[..512], "a new request sees the new tree");
}

#[test]
fn serve_tftp_tolerates_padding_and_options_without_values() {
    let server = Dist::new().file("tftp/f", b"abc").serve(&[]);
    let sock = raw_client("127.0.0.1:0");
    // NUL padding after the mode, and a last option cut short: the request
    // stands, the broken option is ignored (RFC 2347: no OACK for it).
    for request in [
        &b"\x00\x01f\x00octet\x00\x00\x00"[..],
        b"\x00\x01f\x00octet\x00blksize\x00",
        b"\x00\x01f\x00octet\x00tsize\x00\x00blksize",
    ] {
        sock.send_to(request, ("127.0.0.1", server.tftp)).unwrap();
        let (data, tid) = recv(&sock);
        assert_eq!(data, b"\x00\x03\x00\x01abc", "{request:?}");
        sock.send_to(&ack(1), tid).unwrap();
    }
    server.wait_log(&["path=tftp/f", "result=ok"]);
}

#[test]
fn serve_tftp_repeated_request_is_logged_as_a_duplicate_not_a_failure() {
    let server = Dist::new().file("tftp/f", b"abc").serve(&[]);
    let sock = raw_client("127.0.0.1:0");
    let request = rrq("f", &[("timeout", "1")]);
    // A ROM that resends its request before taking the first answer.
    sock.send_to(&request, ("127.0.0.1", server.tftp)).unwrap();
    sock.send_to(&request, ("127.0.0.1", server.tftp)).unwrap();
    let (first, tid) = recv(&sock);
    assert_eq!(first, b"\x00\x06timeout\x001\x00");
    let (second, other) = recv(&sock);
    assert_eq!(second, first);
    assert_ne!(tid, other, "each request has its own transfer");
    // The client takes the first answer only.
    sock.send_to(&ack(0), tid).unwrap();
    let (data, _) = loop {
        let (packet, from) = recv(&sock);
        if from == tid {
            break (packet, from);
        }
    };
    assert_eq!(data, b"\x00\x03\x00\x01abc");
    sock.send_to(&ack(1), tid).unwrap();
    server.wait_log(&["path=tftp/f", "result=ok"]);
    // The other one never heard back; it ends without claiming a failure.
    let line = server.wait_log(&["path=tftp/f", "result=duplicate"]);
    assert!(line.contains("bytes=0"), "{line}");
    assert!(
        !server.stderr().contains("result=timeout"),
        "{}",
        server.stderr()
    );
}

#[test]
fn serve_tftp_file_shrinking_mid_transfer_ends_with_an_error_packet() {
    let dist = Dist::new().file("tftp/f", &pattern(512 * 8, 30));
    let server = dist.serve(&[]);
    let sock = raw_client("127.0.0.1:0");
    sock.send_to(&rrq("f", &[]), ("127.0.0.1", server.tftp))
        .unwrap();
    let (first, tid) = recv(&sock);
    assert_eq!(&first[..4], b"\x00\x03\x00\x01");
    // Truncated in place (not replaced by rename, which a transfer survives).
    std::fs::OpenOptions::new()
        .write(true)
        .open(dist.path("tftp/f"))
        .unwrap()
        .set_len(100)
        .unwrap();
    // Blocks already read ahead may still come; then an ERROR, not silence.
    let mut block = 1u16;
    let error = loop {
        sock.send_to(&ack(block), tid).unwrap();
        let (packet, _) = recv(&sock);
        if packet[..2] == [0, 5] {
            break packet;
        }
        block = u16::from_be_bytes([packet[2], packet[3]]);
        assert!(block < 8, "the transfer went on past the truncation");
    };
    assert_eq!(error_code(&error), 0);
    assert!(
        text_of(&error).contains("file changed"),
        "{}",
        text_of(&error)
    );
    server.wait_log(&["path=tftp/f", "result=error:unexpected%20end%20of%20file"]);
}

fn text_of(packet: &[u8]) -> String {
    String::from_utf8_lossy(&packet[4..]).into_owned()
}

#[test]
fn serve_tftp_caps_the_bytes_in_a_window() {
    let server = Dist::new().file("tftp/f", &pattern(1 << 20, 31)).serve(&[]);
    let sock = raw_client("127.0.0.1:0");
    // On loopback (MTU 65536) the largest blocks fit; 64 of them would make a
    // window of 4 MiB, held twice per transfer. The server answers a smaller one.
    let options = [("windowsize", "64"), ("blksize", "65464")];
    sock.send_to(&rrq("f", &options), ("127.0.0.1", server.tftp))
        .unwrap();
    let (oack, tid) = recv(&sock);
    assert_eq!(oack, b"\x00\x06windowsize\x002\x00blksize\x0065464\x00");
    sock.send_to(b"\x00\x05\x00\x08done\x00", tid).unwrap();
    server.wait_log(&["path=tftp/f", "result=aborted:8"]);
}
