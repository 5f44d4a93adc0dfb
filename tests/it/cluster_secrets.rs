//! secrets/: created once with private modes (all at once, even under
//! SIGKILL), never changed by a later build, checked against openssl, refused
//! (not recreated) next to a built tree (the --out tree and the site's own
//! dist/), keys checked against their certificates, modes repaired, corrupt
//! files and lost node ids refused with exit 2 and the file's full path.
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use base64::Engine;
use pxebuild::error::{exit_code, EXIT_BAD_INPUT};
use pxebuild::secrets;

use crate::cluster_build::{build, prepared, pxebuild_on_mirror};
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
    // Written as temp file + rename: nothing else is left in secrets/.
    let mut names: Vec<String> = snapshot(&site.secrets_dir()).into_keys().collect();
    let mut want: Vec<String> = secrets::FILES.iter().map(|f| f.to_string()).collect();
    names.sort();
    want.sort();
    assert_eq!(names, want);
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
    assert!(init.contains("CA cert hash:"), "{init}");
    // Quiet: nothing but warnings and errors, also when all secrets exist.
    assert_eq!(run(&["-q", "secrets", "init"]), "");
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

// ---- The contract through the real binary: where the trees are, atomic
// creation, key/certificate pairs, modes, corrupt files and lost node ids.

/// `pxebuild <args>` with `cwd` as the working directory.
fn pxebuild_in(cwd: &Path, args: &[&OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pxebuild"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("running pxebuild")
}

fn os<S: AsRef<OsStr> + ?Sized>(s: &S) -> &OsStr {
    s.as_ref()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[track_caller]
fn assert_code(out: &Output, code: i32) {
    assert_eq!(out.status.code(), Some(code), "stderr:\n{}", stderr(out));
}

/// How messages name a path: absolute.
fn full(path: &Path) -> String {
    std::path::absolute(path).unwrap().display().to_string()
}

/// `secrets init` of the site in `root`, run from another directory with an
/// absolute --site.
fn init_elsewhere(root: &Path) -> Output {
    let elsewhere = tempfile::tempdir().unwrap();
    let site = root.join("site.toml");
    pxebuild_in(
        elsewhere.path(),
        &[os("--site"), site.as_os_str(), os("secrets"), os("init")],
    )
}

#[test]
fn cluster_secrets_init_from_elsewhere_is_refused_beside_the_sites_tree() {
    let (dir, mirror) = prepared();
    let root = dir.path();
    let dist = root.join("dist");
    assert_code(&build(root, &dist, &mirror), 0);
    let manifest = std::fs::read(dist.join("manifest.json")).unwrap();
    std::fs::remove_dir_all(root.join("secrets")).unwrap();
    let site = root.join("site.toml");
    let elsewhere = tempfile::tempdir().unwrap();

    // From another directory: no ./dist there, but the site's own dist/ is built.
    let out = pxebuild_in(
        elsewhere.path(),
        &[os("--site"), site.as_os_str(), os("secrets"), os("init")],
    );
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains(&full(&dist)), "names the site's tree: {err}");
    assert!(err.contains(&full(&root.join("secrets"))), "{err}");
    assert!(err.contains("Restore"), "{err}");
    assert!(!root.join("secrets").exists(), "no new CA may be made");
    assert!(!root.join(secrets::STAGING_DIR).exists());

    // A build from there (its --out defaults to ./dist there) refuses the same way.
    let out = pxebuild_on_mirror(root, &mirror)
        .current_dir(elsewhere.path())
        .arg("--site")
        .arg(&site)
        .arg("build")
        .output()
        .unwrap();
    assert_code(&out, 2);
    assert!(stderr(&out).contains(&full(&dist)), "{}", stderr(&out));
    assert!(!root.join("secrets").exists());
    assert!(!elsewhere.path().join("dist").exists());

    // From inside the site's directory, as before.
    let out = pxebuild_in(root, &[os("secrets"), os("init")]);
    assert_code(&out, 2);
    assert!(!root.join("secrets").exists());
    assert_eq!(std::fs::read(dist.join("manifest.json")).unwrap(), manifest);

    // A tree in the working directory is what a build from there publishes
    // to, so it counts for another site too (whose own dist/ does not exist).
    let (other, _) = example_site();
    std::fs::create_dir(elsewhere.path().join("dist")).unwrap();
    std::fs::write(elsewhere.path().join("dist/manifest.json"), &manifest).unwrap();
    let other_site = other.path().join("site.toml");
    let out = pxebuild_in(
        elsewhere.path(),
        &[
            os("--site"),
            other_site.as_os_str(),
            os("secrets"),
            os("init"),
        ],
    );
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains(&full(&elsewhere.path().join("dist"))),
        "{}",
        stderr(&out)
    );
    assert!(!other.path().join("secrets").exists());
    // Without any built tree, init from elsewhere creates the site's secrets.
    std::fs::remove_dir_all(elsewhere.path().join("dist")).unwrap();
    let out = pxebuild_in(
        elsewhere.path(),
        &[
            os("--site"),
            other_site.as_os_str(),
            os("secrets"),
            os("init"),
        ],
    );
    assert_code(&out, 0);
    assert!(other.path().join("secrets/ca.key").is_file());
}

#[test]
fn cluster_build_refuses_keys_that_do_not_match_their_certificate_or_public_key() {
    let (dir, mirror) = prepared();
    let root = dir.path();
    let dist = root.join("dist");
    assert_code(&build(root, &dist, &mirror), 0);
    let manifest = std::fs::read(dist.join("manifest.json")).unwrap();
    let s = root.join("secrets");
    let ca_key = std::fs::read(s.join("ca.key")).unwrap();
    std::fs::copy(s.join("etcd-ca.key"), s.join("ca.key")).unwrap();
    let out = build(root, &dist, &mirror);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains(&full(&s.join("ca.key"))) && err.contains(&full(&s.join("ca.crt"))),
        "names both files: {err}"
    );
    assert!(err.contains("Restore the matching pair"), "{err}");
    assert_eq!(std::fs::read(dist.join("manifest.json")).unwrap(), manifest);
    std::fs::write(s.join("ca.key"), &ca_key).unwrap();

    // An sa.pub from another cluster.
    let sa_pub = std::fs::read(s.join("sa.pub")).unwrap();
    let (_, other_pub) = secrets::pki::new_sa_key_pair().unwrap();
    std::fs::write(s.join("sa.pub"), other_pub).unwrap();
    let out = build(root, &dist, &mirror);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(
        err.contains(&full(&s.join("sa.key"))) && err.contains(&full(&s.join("sa.pub"))),
        "{err}"
    );
    let root_site = root.join("site.toml");
    let show = pxebuild_in(
        root,
        &[
            os("--site"),
            root_site.as_os_str(),
            os("secrets"),
            os("show"),
        ],
    );
    assert_code(&show, 2);
    std::fs::write(s.join("sa.pub"), sa_pub).unwrap();
    assert_code(&build(root, &dist, &mirror), 0);
    assert_eq!(std::fs::read(dist.join("manifest.json")).unwrap(), manifest);
}

#[test]
fn cluster_swapped_ca_keys_are_bad_input_naming_both_files() {
    let (_dir, site) = example_site();
    secrets::ensure(&site, None).unwrap();
    let s = site.secrets_dir();
    let fp = std::fs::read(s.join("front-proxy-ca.key")).unwrap();
    let etcd = std::fs::read(s.join("etcd-ca.key")).unwrap();
    std::fs::write(s.join("front-proxy-ca.key"), &etcd).unwrap();
    let err = secrets::ensure(&site, None).unwrap_err();
    assert_eq!(exit_code(&err), EXIT_BAD_INPUT);
    let msg = format!("{err:#}");
    assert!(
        msg.contains(&full(&s.join("front-proxy-ca.key")))
            && msg.contains(&full(&s.join("front-proxy-ca.crt"))),
        "{msg}"
    );
    std::fs::write(s.join("front-proxy-ca.key"), &fp).unwrap();
    std::fs::write(s.join("etcd-ca.key"), &fp).unwrap();
    let msg = format!("{:#}", secrets::load(&site).unwrap_err());
    assert!(msg.contains(&full(&s.join("etcd-ca.crt"))), "{msg}");
    std::fs::write(s.join("etcd-ca.key"), &etcd).unwrap();
    secrets::load(&site).unwrap();
}

/// The set is complete: every file there and loadable as a whole.
#[track_caller]
fn assert_complete(site: &pxebuild::site::Site) {
    let dir = site.secrets_dir();
    for name in secrets::FILES {
        assert!(dir.join(name).is_file(), "{name} missing");
    }
    secrets::load(site).unwrap();
}

#[test]
fn cluster_secrets_left_half_made_in_staging_are_made_again() {
    let (dir, site) = example_site();
    // What a first build killed halfway leaves: a staging directory with a
    // few files; secrets/ itself was never created.
    let staging = dir.path().join(secrets::STAGING_DIR);
    std::fs::create_dir(&staging).unwrap();
    let stale = secrets::pki::new_ca("kubernetes").unwrap();
    std::fs::write(staging.join("ca.key"), &stale.key_pem).unwrap();
    std::fs::write(staging.join("front-proxy-ca.key"), &stale.key_pem).unwrap();
    let out = init_elsewhere(dir.path());
    assert_code(&out, 0);
    assert!(stderr(&out).contains(&full(&staging)), "{}", stderr(&out));
    assert!(!staging.exists(), "the staging directory is gone");
    assert_complete(&site);
    let key = std::fs::read_to_string(site.secrets_dir().join("ca.key")).unwrap();
    assert_ne!(
        key, stale.key_pem,
        "nothing from the staging directory is used"
    );
    let mode = std::fs::metadata(site.secrets_dir())
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn cluster_secrets_init_killed_at_any_moment_leaves_none_or_all() {
    let (dir, site) = example_site();
    let secrets_dir = site.secrets_dir();
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_pxebuild"))
            .args(["-q", "secrets", "init"])
            .current_dir(dir.path())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    // How long a whole run takes here and now (the slowest of three); the
    // kills are spread over that time and half as much again.
    let whole = (0..3)
        .map(|_| {
            let _ = std::fs::remove_dir_all(&secrets_dir);
            let started = std::time::Instant::now();
            assert!(spawn().wait().unwrap().success());
            started.elapsed()
        })
        .max()
        .unwrap();
    let (mut none, mut all) = (0, 0);
    for i in 0..30u32 {
        let _ = std::fs::remove_dir_all(&secrets_dir);
        let mut child = spawn();
        std::thread::sleep(whole * i / 20);
        let _ = child.kill(); // SIGKILL
        child.wait().unwrap();
        if secrets_dir.exists() {
            assert_complete(&site);
            all += 1;
        } else {
            none += 1;
        }
    }
    eprintln!("killed runs ({whole:?} each): {none} left no secrets/, {all} a complete one");
    // Whatever was left (a staging directory too), the next run completes.
    let _ = std::fs::remove_dir_all(&secrets_dir);
    let out = pxebuild_in(dir.path(), &[os("secrets"), os("init")]);
    assert_code(&out, 0);
    assert_complete(&site);
    assert!(!dir.path().join(secrets::STAGING_DIR).exists());
}

#[test]
fn cluster_build_makes_readable_secrets_private_again_with_a_warning() {
    let (dir, mirror) = prepared();
    let root = dir.path();
    let dist = root.join("dist");
    assert_code(&build(root, &dist, &mirror), 0);
    let s = root.join("secrets");
    let chmod = |path: &Path, mode: u32| {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
    };
    chmod(&s.join("ca.key"), 0o644);
    chmod(&s.join("sa.key"), 0o640);
    chmod(&s.join("kubeconfig"), 0o604);
    chmod(&s, 0o755);
    let out = build(root, &dist, &mirror);
    assert_code(&out, 0);
    let err = stderr(&out);
    for (name, was, now) in [
        ("ca.key", "0644", "0600"),
        ("sa.key", "0640", "0600"),
        ("kubeconfig", "0604", "0600"),
    ] {
        let line = format!(
            "warning: {} was accessible by other users (mode {was}); set it to {now}",
            full(&s.join(name))
        );
        assert!(err.contains(&line), "{line} in:\n{err}");
    }
    assert!(
        err.contains(&format!(
            "warning: {} was accessible by other users (mode 0755); set it to 0700",
            full(&s)
        )),
        "{err}"
    );
    for (name, (_, mode)) in snapshot(&s) {
        assert_eq!(mode, 0o600, "{name}");
    }
    let mode = std::fs::metadata(&s).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
    let again = build(root, &dist, &mirror);
    assert_code(&again, 0);
    assert!(!stderr(&again).contains("accessible"), "{}", stderr(&again));
}

#[test]
fn cluster_corrupt_secret_files_are_bad_input_naming_the_full_path() {
    let (dir, site) = example_site();
    secrets::ensure(&site, None).unwrap();
    let s = site.secrets_dir();
    let ca_crt = std::fs::read_to_string(s.join("ca.crt")).unwrap();
    let cases: [(&str, String, &str); 11] = [
        (
            "ca.key",
            "-----BEGIN PRIVATE KEY-----\nno key here\n-----END PRIVATE KEY-----\n".into(),
            "restore it from your backup",
        ),
        (
            "ca.crt",
            ca_crt[..ca_crt.len() / 2].to_string(),
            "restore it from your backup",
        ),
        ("front-proxy-ca.crt", String::new(), "restore it"),
        ("etcd-ca.key", ca_crt.clone(), "restore it"),
        ("sa.key", "garbage".into(), "restore it"),
        ("sa.pub", ca_crt.clone(), "restore it"),
        ("bootstrap-token", "ABC\n".into(), "rotate-token"),
        (
            "bootstrap-token.created",
            "yesterday\n".into(),
            "rotate-token",
        ),
        ("node-ids.toml", "cp1 = [\n".into(), "restore it"),
        ("node-ids.toml", "cp1 = \"../../x\"\n".into(), "restore it"),
        ("kubeconfig", "just some words\n".into(), "mints a new one"),
    ];
    for (name, text, remedy) in cases {
        let path = s.join(name);
        let good = std::fs::read(&path).unwrap();
        std::fs::write(&path, &text).unwrap();
        let out = init_elsewhere(dir.path());
        assert_code(&out, 2);
        let err = stderr(&out);
        assert!(
            err.contains(&full(&path)) && err.contains(remedy),
            "{name}: full path and {remedy:?} in: {err}"
        );
        std::fs::write(&path, good).unwrap();
    }
    // Unreadable (here: a directory where the key should be).
    let key = std::fs::read(s.join("ca.key")).unwrap();
    std::fs::remove_file(s.join("ca.key")).unwrap();
    std::fs::create_dir(s.join("ca.key")).unwrap();
    let out = init_elsewhere(dir.path());
    assert_code(&out, 2);
    assert!(
        stderr(&out).contains(&format!("cannot read {}", full(&s.join("ca.key")))),
        "{}",
        stderr(&out)
    );
    std::fs::remove_dir(s.join("ca.key")).unwrap();
    std::fs::write(s.join("ca.key"), key).unwrap();
    assert_code(&init_elsewhere(dir.path()), 0);
}

#[test]
fn cluster_build_corrupt_ca_key_is_exit_2_with_the_sites_path() {
    let (dir, mirror) = prepared();
    let root = dir.path();
    let dist = root.join("dist");
    assert_code(&build(root, &dist, &mirror), 0);
    let key = root.join("secrets/ca.key");
    std::fs::write(&key, "-----BEGIN PRIVATE KEY-----\nxx\n").unwrap();
    let out = build(root, &dist, &mirror);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains(&format!("error: {}: ", full(&key))), "{err}");
    assert!(err.contains("restore it from your backup"), "{err}");
}

#[test]
fn cluster_build_refuses_a_new_id_for_a_node_the_tree_has() {
    let (dir, mirror) = prepared();
    let root = dir.path();
    let dist = root.join("dist");
    assert_code(&build(root, &dist, &mirror), 0);
    let manifest = std::fs::read(dist.join("manifest.json")).unwrap();
    let ids_path = root.join("secrets/node-ids.toml");
    let ids_text = std::fs::read_to_string(&ids_path).unwrap();
    let ids: BTreeMap<String, String> = toml::from_str(&ids_text).unwrap();
    let old = ids["worker2"].clone();
    let line = format!("worker2 = \"{old}\"");
    assert!(ids_text.contains(&line), "{ids_text}");
    let without: String = ids_text
        .lines()
        .filter(|l| !l.starts_with("worker2 "))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&ids_path, &without).unwrap();

    // -q hides info lines, never the error.
    let quiet = |root: &Path| {
        pxebuild_on_mirror(root, &mirror)
            .arg("-q")
            .arg("--site")
            .arg(root.join("site.toml"))
            .arg("build")
            .arg("--out")
            .arg(root.join("dist"))
            .output()
            .unwrap()
    };
    let out = quiet(root);
    assert_code(&out, 2);
    let err = stderr(&out);
    assert!(err.contains(&full(&ids_path)), "{err}");
    assert!(err.contains("no id for worker2"), "{err}");
    assert!(
        err.contains(&format!("  {line}")),
        "the line to restore: {err}"
    );
    assert!(err.contains("build once without it in site.toml"), "{err}");
    assert_eq!(std::fs::read_to_string(&ids_path).unwrap(), without);
    assert_eq!(std::fs::read(dist.join("manifest.json")).unwrap(), manifest);

    // Restoring the line the error printed gives back the same tree.
    std::fs::write(&ids_path, format!("{without}{line}\n")).unwrap();
    assert_code(&quiet(root), 0);
    assert_eq!(std::fs::read(dist.join("manifest.json")).unwrap(), manifest);

    // The documented way to a new id: build without the node, then with it.
    std::fs::write(&ids_path, &without).unwrap();
    let site_path = root.join("site.toml");
    let site_text = std::fs::read_to_string(&site_path).unwrap();
    let at = site_text.find("[[node]]\nname = \"worker2\"").unwrap();
    std::fs::write(&site_path, &site_text[..at]).unwrap();
    assert_code(&quiet(root), 0);
    assert!(!std::fs::read_to_string(dist.join("manifest.json"))
        .unwrap()
        .contains("worker2"));
    std::fs::write(&site_path, &site_text).unwrap();
    let out = build(root, &dist, &mirror);
    assert_code(&out, 0);
    assert!(
        stderr(&out).contains("secrets: created node-ids.toml (worker2)"),
        "{}",
        stderr(&out)
    );
    let ids: BTreeMap<String, String> =
        toml::from_str(&std::fs::read_to_string(&ids_path).unwrap()).unwrap();
    assert_ne!(ids["worker2"], old, "a new id, on purpose");
    let new_dir = dist.join(format!("http/ignition/worker2-{}", ids["worker2"]));
    assert!(new_dir.join("node.ign").is_file());
}
