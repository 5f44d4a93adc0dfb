//! Verified, ordered updates: the build signs every sysext listing with the
//! site update key, nodes get its public half where systemd-sysupdate looks
//! and refuse anything else (checked with gpg, run exactly as systemd-pull
//! runs it, and with rpgp), and the rendered sysupdate script stages and
//! applies extensions as `updates.apply` says (run in the sandbox).
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pxebuild::render::ignition;
use pxebuild::site::Site;

use crate::cluster_build::built;
use crate::cluster_common::*;
use crate::cluster_render::render_all;
use crate::cluster_sandbox::{out_text, Sandbox};

/// gpg as systemd-pull's `verify_gpg` runs it for `Verify=yes` (systemd
/// 257, src/import/pull-common.c): the node's keyring only, the listing on
/// stdin, a throw-away home.
fn gpg_verify_like_systemd(keyring: &Path, sig: &Path, data: &[u8]) -> Output {
    use std::io::Write;
    let home = tempfile::tempdir().unwrap();
    let mut child = Command::new("gpg")
        .args([
            "--no-options",
            "--no-default-keyring",
            "--no-auto-key-locate",
            "--no-auto-check-trustdb",
            "--batch",
            "--trust-model=always",
        ])
        .arg(format!("--homedir={}", home.path().display()))
        .arg(format!("--keyring={}", keyring.display()))
        .arg("--verify")
        .arg(sig)
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running gpg");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    let _ = Command::new("gpgconf")
        .arg("--kill")
        .arg("all")
        .env("GNUPGHOME", home.path())
        .status();
    out
}

/// A detached signature over `data` by a fresh key made with gpg: what an
/// attacker on the node network could serve.
fn foreign_signature(parent: &Path, data: &[u8]) -> PathBuf {
    let dir = tempfile::tempdir_in(parent).unwrap().keep();
    let dir = dir.as_path();
    let home = dir.join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(dir.join("foreign-data"), data).unwrap();
    let script = r#"
        set -e
        chmod 700 "$GNUPGHOME"
        gpg --batch --quiet --pinentry-mode loopback --passphrase= \
            --quick-gen-key 'intruder <x@test.invalid>' ed25519 sign never 2>/dev/null
        gpg --batch --quiet --pinentry-mode loopback --passphrase= \
            --detach-sign -o foreign.gpg foreign-data 2>/dev/null
        gpgconf --kill all || true
    "#;
    let status = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .env("GNUPGHOME", &home)
        .status()
        .unwrap();
    assert!(status.success());
    dir.join("foreign.gpg")
}

#[test]
fn updates_listings_are_signed_and_nodes_refuse_any_other() {
    let b = built();
    let site = Site::load(&b.root.join("site.toml")).unwrap();
    let node = &site.file.nodes[site.file.nodes.len() - 1];
    let ign = crate::sysupdate::node_ignition_in(&b.dist, &node.name);
    let keyring = ignition_file(&ign, "/etc/systemd/import-pubring.gpg").expect("node keyring");
    assert_eq!(
        ignition_file(&ign, "/etc/systemd/import-pubring.pgp").as_deref(),
        Some(&keyring[..]),
        "both keyring names carry the key"
    );
    let tmp = tempfile::tempdir().unwrap();
    let ring = tmp.path().join("import-pubring.gpg");
    std::fs::write(&ring, &keyring).unwrap();
    let rpgp_key = pxebuild::fetch::signature::SigningKey::parse(&keyring, "node keyring").unwrap();

    let sysext_dir = b.dist.join("http/sysext");
    let mut checked = 0;
    for entry in std::fs::read_dir(&sysext_dir).unwrap() {
        let dir = entry.unwrap().path();
        let sums = std::fs::read(dir.join("SHA256SUMS")).unwrap();
        let sig = dir.join("SHA256SUMS.gpg");
        assert!(sig.is_file(), "{} has no signature", dir.display());
        let out = gpg_verify_like_systemd(&ring, &sig, &sums);
        assert!(out.status.success(), "{}", out_text(&out));
        rpgp_key
            .verify_file(&std::fs::read(&sig).unwrap(), &dir.join("SHA256SUMS"))
            .unwrap();

        // A listing changed on the way is refused.
        let mut forged = sums.clone();
        forged.extend_from_slice(
            b"0000000000000000000000000000000000000000000000000000000000000000  evil.raw\n",
        );
        let out = gpg_verify_like_systemd(&ring, &sig, &forged);
        assert!(!out.status.success(), "{}", out_text(&out));
        // So is a listing signed by anyone else.
        let foreign = foreign_signature(tmp.path(), &sums);
        let out = gpg_verify_like_systemd(&ring, &foreign, &sums);
        assert!(!out.status.success(), "{}", out_text(&out));
        assert!(String::from_utf8_lossy(&out.stderr).contains("No public key"));
        let foreign_bytes = std::fs::read(&foreign).unwrap();
        assert!(rpgp_key
            .verify_file(&foreign_bytes, &dir.join("SHA256SUMS"))
            .is_err());
        checked += 1;
    }
    assert!(checked >= 2, "every sysext directory was checked");

    // Every transfer file demands the signature.
    for f in ign["storage"]["files"].as_array().unwrap() {
        let path = f["path"].as_str().unwrap();
        if path.starts_with("/etc/sysupdate.") && path != "/etc/sysupdate.d/noop.conf" {
            let text = String::from_utf8(ignition_file(&ign, path).unwrap()).unwrap();
            assert!(text.contains("Verify=yes\n"), "{path}: {text}");
            assert!(!text.contains("Verify=false"), "{path}: {text}");
        }
    }

    // Reproducible: a build from an empty cache into a new tree signs the
    // same listings with the same bytes.
    let again = b.root.join("dist2");
    std::fs::remove_dir_all(b.root.join("cache")).unwrap();
    let out = crate::cluster_build::build(&b.root, &again, &b.mirror);
    assert!(out.status.success(), "{}", out_text(&out));
    for entry in std::fs::read_dir(&sysext_dir).unwrap() {
        let name = entry.unwrap().file_name();
        let rel = Path::new("http/sysext").join(&name).join("SHA256SUMS.gpg");
        assert_eq!(
            std::fs::read(b.dist.join(&rel)).unwrap(),
            std::fs::read(again.join(&rel)).unwrap(),
            "{} differs between builds",
            rel.display()
        );
    }
}

/// The rendered sysupdate script of node `index` of the example site with
/// `apply`, run in a sandbox: `sysupdate` stages what `new` names (name →
/// image) by moving the link (`update VERSION`: that Kubernetes patch), the
/// loop devices back `merged` images, and
/// kubectl answers with kubeadm's cluster version `cluster` and API server
/// `server` (empty: no answer).
struct Run {
    sb: Sandbox,
    out: Output,
}

fn run_sysupdate(
    apply: &str,
    index: usize,
    merged: &[(&str, &str)],
    new: &[(&str, &str)],
    cluster: &str,
    server: &str,
) -> Run {
    let (_dir, site) = edited_site(&[(
        "sysupdate = true\n",
        &format!("sysupdate = true\napply = \"{apply}\"\n"),
    )]);
    let (ctx, butane) = render_all(&site).remove(index);
    let json = ignition::translate(&butane, "node.bu", true).unwrap();
    let ign: serde_json::Value = serde_json::from_str(&json).unwrap();
    let sb = Sandbox::new();
    sb.apply_ignition_files(&ign);
    for (i, (name, image)) in merged.iter().enumerate() {
        let dir = sb.path(&format!("/sys/block/loop{i}/loop"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("backing_file"),
            format!("/opt/extensions/{name}/{image}\n"),
        )
        .unwrap();
        let link = sb.path(&format!("/etc/extensions/{name}.raw"));
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(format!("/opt/extensions/{name}/{image}"), &link).unwrap();
    }
    // `update VERSION` stages that version (the per-minor Kubernetes
    // pattern's @v is the patch number); plain `update` the newest offered.
    let mut staging = String::from(
        "if [ \"$2\" = kubernetes ] && [ -n \"${4:-}\" ]; then\n  \
         ln -sfn /opt/extensions/kubernetes/kubernetes-v1.35.$4-x86-64.raw \"$ROOT/etc/extensions/kubernetes.raw\"\n  \
         exit 0\nfi\ncase \"$2\" in\n",
    );
    for (name, image) in new {
        staging.push_str(&format!(
            "  {name}) ln -sfn /opt/extensions/{name}/{image} \"$ROOT/etc/extensions/{name}.raw\" ;;\n"
        ));
    }
    staging.push_str("esac\nexit 0");
    sb.stub("systemd-sysupdate", &staging);
    sb.stub("systemd-sysext", "exit 0");
    sb.stub(
        "kubectl",
        &format!(
            "case \"$*\" in\n  *--raw*) [ -z '{server}' ] || echo '{{\"major\": \"1\", \"gitVersion\": \"{server}\"}}' ;;\n  *kubeadm-config*) [ -z '{cluster}' ] || printf 'apiVersion: kubeadm.k8s.io/v1beta4\\nkind: ClusterConfiguration\\nkubernetesVersion: {cluster}\\n' ;;\nesac"
        ),
    );
    let script = ignition_file(&ign, "/opt/pxebuild/bin/sysupdate-sysexts").unwrap();
    let script = sb
        .rewrite(&String::from_utf8(script).unwrap())
        .replace(
            "/usr/lib/systemd/systemd-sysupdate",
            &sb.stubs.join("systemd-sysupdate").display().to_string(),
        )
        .replace("/run/", &format!("{}/run/", sb.root.display()));
    std::fs::create_dir_all(sb.path("/run")).unwrap();
    assert_eq!(ctx.node.role, site.file.nodes[index].role.to_string());
    let out = sb.run(&script);
    assert!(out.status.success(), "{}", out_text(&out));
    Run { sb, out }
}

impl Run {
    fn reboot_requested(&self) -> bool {
        self.sb.path("/run/reboot-required").exists()
    }
}

const K_OLD: (&str, &str) = ("kubernetes", "kubernetes-v1.35.2-x86-64.raw");
const K_NEW: (&str, &str) = ("kubernetes", "kubernetes-v1.35.3-x86-64.raw");
const CILIUM_OLD: (&str, &str) = ("cilium", "cilium-v0.18.2-x86-64.raw");
const CILIUM_NEW: (&str, &str) = ("cilium", "cilium-v0.18.3-x86-64.raw");

/// Index of the first control plane and of the last worker of the example.
fn roles() -> (usize, usize) {
    let (_dir, site) = example_site();
    let nodes = &site.file.nodes;
    let cp = nodes
        .iter()
        .position(|n| n.role.to_string() == "control-plane")
        .unwrap();
    let worker = nodes
        .iter()
        .rposition(|n| n.role.to_string() == "worker")
        .unwrap();
    (cp, worker)
}

#[test]
fn updates_a_cli_only_sysext_is_merged_without_a_reboot() {
    let (cp, _) = roles();
    for apply in ["manual", "rolling"] {
        let r = run_sysupdate(
            apply,
            cp,
            &[K_OLD, CILIUM_OLD],
            &[CILIUM_NEW],
            "v1.35.2",
            "v1.35.2",
        );
        let calls = r.sb.calls();
        assert!(
            calls.contains("systemd-sysupdate -C cilium update"),
            "{calls}"
        );
        assert!(calls.contains("systemd-sysext refresh"), "{calls}");
        assert!(!r.reboot_requested(), "{apply}: {}", out_text(&r.out));
    }
    // Nothing new: no refresh either.
    let r = run_sysupdate(
        "rolling",
        cp,
        &[K_OLD, CILIUM_OLD],
        &[],
        "v1.35.2",
        "v1.35.2",
    );
    assert!(!r.sb.calls().contains("systemd-sysext refresh"));
    assert!(!r.reboot_requested());
}

#[test]
fn updates_manual_never_stages_kubernetes_by_itself() {
    let (cp, worker) = roles();
    for node in [cp, worker] {
        let r = run_sysupdate(
            "manual",
            node,
            &[K_OLD, CILIUM_OLD],
            &[K_NEW],
            "v1.35.3",
            "v1.35.3",
        );
        let calls = r.sb.calls();
        assert!(!calls.contains("-C kubernetes"), "{calls}");
        assert!(!r.reboot_requested());
        assert!(String::from_utf8_lossy(&r.out.stderr).contains("updates.apply = manual"));
    }
}

impl Run {
    /// The image `/etc/extensions/<name>.raw` names now.
    fn staged(&self, name: &str) -> String {
        let link = self.sb.path(&format!("/etc/extensions/{name}.raw"));
        let target = std::fs::read_link(link).unwrap();
        target.file_name().unwrap().to_string_lossy().into_owned()
    }
}

#[test]
fn updates_rolling_reboots_control_planes_first() {
    let (cp, worker) = roles();
    let (old, new) = ([K_OLD, CILIUM_OLD], [K_NEW]);
    // A control plane stages the newest offered and asks for its reboot.
    let r = run_sysupdate("rolling", cp, &old, &new, "v1.35.2", "v1.35.2");
    assert!(
        r.sb.calls().contains("-C kubernetes update\n"),
        "{}",
        r.sb.calls()
    );
    assert_eq!(r.staged("kubernetes"), K_NEW.1);
    assert!(r.reboot_requested(), "{}", out_text(&r.out));
    // A worker stages nothing while the control plane is not upgraded
    // (kubeadm's cluster version), so no reboot can apply it early…
    let r = run_sysupdate("rolling", worker, &old, &new, "v1.35.2", "v1.35.3");
    assert!(!r.sb.calls().contains("-C kubernetes"), "{}", r.sb.calls());
    assert_eq!(r.staged("kubernetes"), K_OLD.1);
    assert!(!r.reboot_requested(), "{}", out_text(&r.out));
    // …nor while the API server answering is older than that version…
    let r = run_sysupdate("rolling", worker, &old, &new, "v1.35.3", "v1.35.2");
    assert!(!r.sb.calls().contains("-C kubernetes"), "{}", r.sb.calls());
    assert!(!r.reboot_requested(), "{}", out_text(&r.out));
    let said = String::from_utf8_lossy(&r.out.stderr).into_owned();
    assert!(said.contains("older than v1.35.3"), "{said}");
    // …then stages exactly the control plane's version, even when the boot
    // server already offers a newer one, and asks for its reboot.
    let newer = [("kubernetes", "kubernetes-v1.35.4-x86-64.raw")];
    let r = run_sysupdate("rolling", worker, &old, &newer, "v1.35.3", "v1.35.3");
    assert!(
        r.sb.calls().contains("-C kubernetes update 3"),
        "{}",
        r.sb.calls()
    );
    assert_eq!(r.staged("kubernetes"), K_NEW.1);
    assert!(r.reboot_requested(), "{}", out_text(&r.out));
    // Already running it (rebooted): nothing staged, nothing asked.
    let r = run_sysupdate(
        "rolling",
        worker,
        &[K_NEW, CILIUM_OLD],
        &newer,
        "v1.35.3",
        "v1.35.3",
    );
    assert!(!r.sb.calls().contains("-C kubernetes"), "{}", r.sb.calls());
    assert!(!r.reboot_requested(), "{}", out_text(&r.out));
    // Another minor is never staged by the timer.
    let r = run_sysupdate("rolling", worker, &old, &new, "v1.34.0", "v1.34.0");
    assert!(!r.sb.calls().contains("-C kubernetes"), "{}", r.sb.calls());
    assert!(String::from_utf8_lossy(&r.out.stderr).contains("minor upgrades are manual"));
    // The API cannot be asked: wait (never stage on a guess).
    for (cluster, server) in [("", ""), ("v1.35.3", "")] {
        let r = run_sysupdate("rolling", worker, &old, &new, cluster, server);
        assert!(!r.sb.calls().contains("-C kubernetes"), "{}", r.sb.calls());
        assert!(!r.reboot_requested(), "{}", out_text(&r.out));
    }
}

// ---- The update key among the secrets: made once, private, never made anew
// beside a tree whose nodes trust it, replaced only on request.

#[test]
fn updates_key_is_private_shown_and_never_replaced_silently() {
    use pxebuild::error::{exit_code, EXIT_BAD_INPUT};
    use pxebuild::secrets;
    use std::os::unix::fs::PermissionsExt;

    let (dir, site) = example_site();
    let first = secrets::ensure(&site, None).unwrap();
    let file = site.secrets_dir().join("update-key.asc");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("BEGIN PGP PRIVATE KEY BLOCK"));
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    // Loaded again: the same key.
    let again = secrets::ensure(&site, None).unwrap();
    assert_eq!(
        again.update_key.fingerprint(),
        first.update_key.fingerprint()
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);

    // `secrets show` names it by fingerprint and never prints it.
    let out = Command::new(env!("CARGO_BIN_EXE_pxebuild"))
        .args(["secrets", "show"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", out_text(&out));
    assert!(
        shown.lines().any(|l| l.starts_with("update key:")
            && l.contains(&first.update_key.fingerprint())
            && l.contains("/etc/systemd/import-pubring.gpg")),
        "{shown}"
    );
    assert!(!shown.contains("PRIVATE KEY"));

    // Lost beside a tree that serves signed listings: refused, not remade.
    let dist = dir.path().join("dist");
    std::fs::create_dir_all(dist.join("http/sysext/kubernetes")).unwrap();
    std::fs::write(dist.join("manifest.json"), "{}").unwrap();
    std::fs::write(dist.join("http/sysext/kubernetes/SHA256SUMS.gpg"), "sig").unwrap();
    std::fs::remove_file(&file).unwrap();
    let err = secrets::ensure(&site, Some(&dist)).unwrap_err();
    assert_eq!(exit_code(&err), EXIT_BAD_INPUT);
    let msg = format!("{err:#}");
    assert!(
        msg.contains("update-key.asc") && msg.contains("rotate-update-key"),
        "{msg}"
    );
    assert!(!file.exists(), "no new key may be made");
    // A tree built before listings were signed: its nodes trust no key yet.
    std::fs::remove_file(dist.join("http/sysext/kubernetes/SHA256SUMS.gpg")).unwrap();
    let made = secrets::ensure(&site, Some(&dist)).unwrap();
    assert!(made.created.contains(&"update-key.asc".to_string()));

    // Rotation is explicit and touches nothing else.
    let before: Vec<(String, Vec<u8>)> = secret_files(&site.secrets_dir());
    let out = Command::new(env!("CARGO_BIN_EXE_pxebuild"))
        .args(["secrets", "rotate-update-key"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", out_text(&out));
    let rotated = secrets::load(&site).unwrap();
    assert_ne!(
        rotated.update_key.fingerprint(),
        made.update_key.fingerprint()
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains(&rotated.update_key.fingerprint()));
    for (name, bytes) in before {
        let now = std::fs::read(site.secrets_dir().join(&name)).unwrap();
        assert_eq!(now == bytes, name != "update-key.asc", "{name}");
    }
}

fn secret_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn updates_key_missing_on_an_older_site_is_made_by_init_not_by_show() {
    let (dir, site) = example_site();
    pxebuild::secrets::ensure(&site, None).unwrap();
    let file = site.secrets_dir().join("update-key.asc");
    std::fs::remove_file(&file).unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_pxebuild"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    let out = run(&["secrets", "show"]);
    assert_eq!(out.status.code(), Some(2), "{}", out_text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("secrets init"));
    assert!(!file.exists(), "show never creates");
    let out = run(&["secrets", "init"]);
    assert!(out.status.success(), "{}", out_text(&out));
    assert!(file.exists());
}
