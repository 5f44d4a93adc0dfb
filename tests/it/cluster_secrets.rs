//! secrets/: created once with private modes, never changed by a later build,
//! checked against openssl, and refused (not recreated) next to a built tree.
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use base64::Engine;
use pxebuild::error::{exit_code, EXIT_BAD_INPUT};
use pxebuild::secrets;

use crate::cluster_common::*;

fn snapshot(dir: &Path) -> BTreeMap<String, (Vec<u8>, u32)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let mode = e.metadata().unwrap().permissions().mode() & 0o777;
            let name = e.file_name().to_string_lossy().into_owned();
            (name, (std::fs::read(e.path()).unwrap(), mode))
        })
        .collect()
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn cluster_secrets_are_private_and_stable_across_builds() {
    let (_dir, site) = example_site();
    let first = secrets::ensure(&site, None).unwrap();
    let dir = site.secrets_dir();
    let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o700);
    let before = snapshot(&dir);
    for name in [
        "ca.crt",
        "ca.key",
        "front-proxy-ca.crt",
        "front-proxy-ca.key",
        "etcd-ca.crt",
        "etcd-ca.key",
        "sa.key",
        "sa.pub",
        "bootstrap-token",
        "bootstrap-token.created",
        "node-ids.toml",
        "kubeconfig",
    ] {
        let (_, mode) = before.get(name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(*mode, 0o600, "{name}");
    }
    let token = String::from_utf8(before["bootstrap-token"].0.clone()).unwrap();
    assert!(secrets::token::is_valid(token.trim()), "{token}");
    let second = secrets::ensure(&site, None).unwrap();
    assert!(second.created.is_empty(), "{:?}", second.created);
    assert_eq!(snapshot(&dir), before, "a second build changes no secret");
    assert_eq!(first.fingerprint(), second.fingerprint());
}

#[test]
fn cluster_ca_hash_matches_openssl() {
    let (_dir, site) = example_site();
    let s = secrets::ensure(&site, None).unwrap();
    let ca = site.secrets_dir().join("ca.crt");
    let pubkey = openssl(&["x509", "-in", ca.to_str().unwrap(), "-pubkey", "-noout"]);
    let pem = site.secrets_dir().join("ca.pub.pem");
    std::fs::write(&pem, pubkey).unwrap();
    let der = openssl(&[
        "pkey",
        "-pubin",
        "-in",
        pem.to_str().unwrap(),
        "-outform",
        "DER",
    ]);
    let expected = format!("sha256:{}", pxebuild::digest::sha256_hex(&der));
    assert_eq!(s.ca_hash, expected);
}

#[test]
fn cluster_admin_kubeconfig_chains_to_the_ca() {
    let (_dir, site) = example_site();
    secrets::ensure(&site, None).unwrap();
    let dir = site.secrets_dir();
    let text = std::fs::read_to_string(dir.join("kubeconfig")).unwrap();
    let config: serde_json::Value = serde_norway::from_str(&text).unwrap();
    assert_eq!(
        config["clusters"][0]["cluster"]["server"],
        "https://10.20.0.10:6443"
    );
    let b64 = |v: &serde_json::Value| {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap())
            .unwrap()
    };
    let client = dir.join("client.crt");
    std::fs::write(
        &client,
        b64(&config["users"][0]["user"]["client-certificate-data"]),
    )
    .unwrap();
    let ca_data = b64(&config["clusters"][0]["cluster"]["certificate-authority-data"]);
    assert_eq!(ca_data, std::fs::read(dir.join("ca.crt")).unwrap());
    let ca = dir.join("ca.crt");
    let out = openssl(&[
        "verify",
        "-CAfile",
        ca.to_str().unwrap(),
        client.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out).contains(": OK"));
    let subject = openssl(&[
        "x509",
        "-in",
        client.to_str().unwrap(),
        "-noout",
        "-subject",
    ]);
    assert!(String::from_utf8_lossy(&subject).contains("system:masters"));
}

#[test]
fn cluster_missing_secrets_beside_a_built_tree_is_bad_input() {
    let (dir, site) = example_site();
    let dist = dir.path().join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(dist.join("manifest.json"), "{}").unwrap();
    let err = secrets::ensure(&site, Some(&dist)).unwrap_err();
    assert_eq!(exit_code(&err), EXIT_BAD_INPUT);
    let msg = format!("{err:#}");
    assert!(msg.contains("Restore") && msg.contains("delete"), "{msg}");
    assert!(!site.secrets_dir().exists(), "no new CA may be made");
}

#[test]
fn cluster_missing_ca_beside_a_built_tree_is_bad_input() {
    let (dir, site) = example_site();
    secrets::ensure(&site, None).unwrap();
    let dist = dir.path().join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(dist.join("manifest.json"), "{}").unwrap();
    std::fs::remove_file(site.secrets_dir().join("ca.crt")).unwrap();
    std::fs::remove_file(site.secrets_dir().join("ca.key")).unwrap();
    let err = secrets::ensure(&site, Some(&dist)).unwrap_err();
    assert_eq!(exit_code(&err), EXIT_BAD_INPUT);
    assert!(!site.secrets_dir().join("ca.crt").exists());
}

#[test]
fn cluster_lost_node_ids_beside_a_built_tree_is_bad_input() {
    let (dir, site) = example_site();
    secrets::ensure(&site, None).unwrap();
    let dist = dir.path().join("dist");
    std::fs::create_dir_all(&dist).unwrap();
    std::fs::write(dist.join("manifest.json"), "{}").unwrap();
    let ids = site.secrets_dir().join("node-ids.toml");
    std::fs::remove_file(&ids).unwrap();
    let err = secrets::ensure(&site, Some(&dist)).unwrap_err();
    assert_eq!(exit_code(&err), EXIT_BAD_INPUT);
    let msg = format!("{err:#}");
    assert!(
        msg.contains("node-ids.toml") && msg.contains("Restore"),
        "{msg}"
    );
    assert!(!ids.exists(), "no new ids may be made");
    // Without a built tree (a fresh site) the ids are simply created.
    std::fs::remove_dir_all(&dist).unwrap();
    secrets::ensure(&site, Some(&dist)).unwrap();
    assert!(ids.exists());
}

#[test]
fn cluster_rotate_token_replaces_only_the_token() {
    let (_dir, site) = example_site();
    secrets::ensure(&site, None).unwrap();
    let before = snapshot(&site.secrets_dir());
    let new = secrets::rotate_token(&site).unwrap();
    let after = snapshot(&site.secrets_dir());
    assert_eq!(after["bootstrap-token"].0, format!("{new}\n").into_bytes());
    assert_ne!(after["bootstrap-token"], before["bootstrap-token"]);
    for (name, content) in &before {
        if !name.starts_with("bootstrap-token") {
            assert_eq!(&after[name], content, "{name} must not change");
        }
    }
}

#[test]
fn cluster_new_nodes_get_ids_and_old_ids_stay() {
    let (dir, site) = example_site();
    let first = secrets::ensure(&site, None).unwrap();
    let text = std::fs::read_to_string(dir.path().join("site.toml")).unwrap();
    let more = format!(
        "{text}\n[[node]]\nname = \"worker3\"\nmac = \"52:54:00:20:00:23\"\nip = \"10.20.0.23\"\n\
         role = \"worker\"\ndisk = \"/dev/sda\"\n"
    );
    std::fs::write(dir.path().join("site.toml"), more).unwrap();
    let site = pxebuild::site::Site::load(&dir.path().join("site.toml")).unwrap();
    let second = secrets::ensure(&site, None).unwrap();
    for (node, id) in &first.node_ids {
        assert_eq!(&second.node_ids[node], id);
    }
    assert!(second.node_ids.contains_key("worker3"));
    assert_eq!(second.ca.cert_pem, first.ca.cert_pem);
}

#[test]
fn cluster_secrets_cli_init_show_rotate_never_print_keys() {
    let (dir, _) = example_site();
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_pxebuild"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let init = run(&["secrets", "init"]);
    let token = std::fs::read_to_string(dir.path().join("secrets/bootstrap-token")).unwrap();
    let (id, secret) = token.trim().split_once('.').unwrap();
    let show = run(&["secrets", "show"]);
    let hash = pxebuild::secrets::pki::ca_cert_hash(
        &std::fs::read_to_string(dir.path().join("secrets/ca.crt")).unwrap(),
    )
    .unwrap();
    assert!(show.contains(&hash), "{show}");
    assert!(show.contains(&format!("{id}.****")), "{show}");
    let kubeconfig = std::fs::read_to_string(dir.path().join("secrets/kubeconfig")).unwrap();
    let client = pxebuild::secrets::kubeconfig::client_cert_not_after(&kubeconfig).unwrap();
    let until = openssl_enddate(&kubeconfig);
    assert!(
        show.lines()
            .any(|l| l.starts_with("admin cert:") && l.contains(&until)),
        "admin cert expiry ({client}, {until}) in:\n{show}"
    );
    for text in [&init, &show] {
        assert!(!text.contains("PRIVATE KEY"), "{text}");
        assert!(!text.contains(secret), "the token secret is never printed");
    }
    let rotated = run(&["secrets", "rotate-token"]);
    assert!(!rotated.contains("PRIVATE KEY"));
    let new = std::fs::read_to_string(dir.path().join("secrets/bootstrap-token")).unwrap();
    assert_ne!(new, token);
}

/// The client certificate's notAfter day as `DD Mon YYYY`, read by openssl.
fn openssl_enddate(kubeconfig: &str) -> String {
    use base64::Engine;
    let doc: serde_json::Value = serde_norway::from_str(kubeconfig).unwrap();
    let data = doc["users"][0]["user"]["client-certificate-data"]
        .as_str()
        .unwrap();
    let pem = base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("client.crt");
    std::fs::write(&path, pem).unwrap();
    let out = openssl(&["x509", "-noout", "-enddate", "-in", path.to_str().unwrap()]);
    // notAfter=Nov 27 03:30:00 2027 GMT
    let text = String::from_utf8(out).unwrap();
    let parts: Vec<&str> = text
        .trim()
        .trim_start_matches("notAfter=")
        .split_whitespace()
        .collect();
    let day: u32 = parts[1].parse().unwrap();
    format!("{day:02} {} {}", parts[0], parts[3])
}
