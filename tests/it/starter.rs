//! The starter site built into the binary: `pxebuild init` writes it (and
//! never over an operator's files), the site it writes checks and builds, a
//! site without templates/ or payload/ builds from the built-in copies to the
//! same tree as one with copies of the repository's, the origin is part of
//! the step keys, and a site's own templates/ or payload/ wins.
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use crate::cluster_build::{prepared, pxebuild_on_mirror, Mirror};
use crate::cluster_common::{copy_tree, repo};
use crate::cluster_sandbox::out_text;
use crate::harness;

fn pxebuild() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pxebuild"))
}

fn init(dir: &Path) -> Output {
    pxebuild().arg("init").arg(dir).output().unwrap()
}

/// Every file under `dir`, relative path → bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e.path().strip_prefix(dir).unwrap();
            (
                rel.to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect()
}

/// `pxebuild build --explain` of the site in `root` into its dist/.
fn build(root: &Path, mirror: &Mirror) -> Output {
    let out = pxebuild_on_mirror(root, mirror)
        .arg("--site")
        .arg(root.join("site.toml"))
        .args(["build", "--explain", "--out"])
        .arg(root.join("dist"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", out_text(&out));
    out
}

/// The steps an `--explain` build ran, with why.
fn ran(out: &Output) -> BTreeMap<String, String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("ran "))
        .filter_map(|l| l.split_once(": "))
        .map(|(id, why)| (id.to_string(), why.to_string()))
        .collect()
}

#[test]
fn init_writes_the_starter_site_and_never_over_an_operator_s_files() {
    let (work, mirror) = prepared();
    let site = work.path().join("rack");
    let out = init(&site);
    assert!(out.status.success(), "{}", out_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("next: edit "),
        "{}",
        out_text(&out)
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&site).unwrap().permissions().mode();
    assert_eq!(
        mode & 0o777,
        0o750,
        "closed to others: it will hold secrets/"
    );
    let written = files(&site);
    // templates/ and payload/ are the repository's, byte for byte.
    for dir in ["templates", "payload"] {
        let theirs = files(&repo().join(dir));
        let ours: BTreeMap<String, Vec<u8>> = written
            .iter()
            .filter_map(|(p, b)| {
                let rel = p.strip_prefix(&format!("{dir}/"))?;
                Some((rel.to_string(), b.clone()))
            })
            .collect();
        assert_eq!(ours, theirs, "{dir}/");
    }
    // site.toml is the example site under a header saying what to change.
    let toml = String::from_utf8(written["site.toml"].clone()).unwrap();
    let example = std::fs::read_to_string(repo().join("site.toml")).unwrap();
    assert!(toml.starts_with("# site.toml, written by `pxebuild init`"));
    assert!(toml.ends_with(&example), "{toml}");
    assert!(toml.contains("authorized_keys: put your own public key"));
    let ignore = String::from_utf8(written[".gitignore"].clone()).unwrap();
    for line in [
        "/dist/",
        "/secrets/",
        "/.pxebuild/",
        "/.dist.*",
        "/.secrets.*",
    ] {
        assert!(ignore.lines().any(|l| l == line), "{line}: {ignore}");
    }
    assert_eq!(
        written.len(),
        2 + files(&repo().join("templates")).len() + files(&repo().join("payload")).len()
    );

    // It checks clean apart from the SSH key placeholder, saying what to do.
    let check = pxebuild().current_dir(&site).arg("check").output().unwrap();
    assert!(check.status.success(), "{}", out_text(&check));
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("warning: ssh.authorized_keys[0]: is the example placeholder; put your own public key here"),
        "{stderr}"
    );

    // A second init into it is refused, naming the directory; nothing changes.
    let before = harness::snapshot(&site);
    let again = init(&site);
    assert_eq!(again.status.code(), Some(2), "{}", out_text(&again));
    let said = String::from_utf8_lossy(&again.stderr);
    assert!(
        said.contains(&format!(
            "init: {} is not empty (it holds .gitignore, payload, site.toml, templates)",
            site.display()
        )),
        "{said}"
    );
    assert_eq!(harness::snapshot(&site), before);
    // So is a file, and a directory holding one file of the operator's.
    let file = work.path().join("a-file");
    std::fs::write(&file, "mine").unwrap();
    assert_eq!(init(&file).status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
    let theirs = work.path().join("theirs");
    std::fs::create_dir(&theirs).unwrap();
    std::fs::write(theirs.join("notes.txt"), "mine").unwrap();
    assert_eq!(init(&theirs).status.code(), Some(2));
    assert_eq!(harness::snapshot(&theirs).len(), 1);
    // A fresh `git init` is fine; no staging directory is left beside it.
    let repo_dir = work.path().join("git-first");
    std::fs::create_dir_all(repo_dir.join(".git")).unwrap();
    assert!(init(&repo_dir).status.success());
    assert!(repo_dir.join("site.toml").is_file());
    let stray: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".init-"))
        .collect();
    assert!(stray.is_empty(), "{stray:?}");

    // The site init wrote builds against the fixture mirror.
    let out = build(&site, &mirror);
    assert!(
        site.join("dist/manifest.json").is_file(),
        "{}",
        out_text(&out)
    );
}

#[test]
fn a_site_without_templates_or_payload_builds_from_the_built_in_copies() {
    let (work, mirror) = prepared();
    let root = work.path();
    // With copies of the repository's templates/ and payload/.
    let first = build(root, &mirror);
    let local = files(&root.join("dist"));
    let all_steps: Vec<String> = ran(&first).into_keys().collect();
    let rendered: Vec<String> = all_steps
        .iter()
        .filter(|id| id.starts_with("ignition:") || id.starts_with("boot:"))
        .cloned()
        .collect();
    assert!(rendered.len() > 10, "{all_steps:?}");

    // Without them: the built-in copies. Every step that renders templates
    // runs again (the origin is in its key), no other does, and the tree is
    // the same but for the manifest's digest of the step keys.
    std::fs::remove_dir_all(root.join("templates")).unwrap();
    std::fs::remove_dir_all(root.join("payload")).unwrap();
    let second = build(root, &mirror);
    let why = ran(&second);
    assert_eq!(why.keys().cloned().collect::<Vec<_>>(), rendered);
    assert!(
        why["ignition:cp1/node.ign"].contains(".key.shared.templates_origin")
            && why["ignition:cp1/node.ign"].contains(".key.shared.cilium_values_origin"),
        "{why:?}"
    );
    let embedded = files(&root.join("dist"));
    assert_eq!(
        local.keys().collect::<Vec<_>>(),
        embedded.keys().collect::<Vec<_>>()
    );
    for (path, bytes) in &local {
        if path != "manifest.json" {
            assert!(embedded[path] == *bytes, "{path} differs");
        }
    }
    let manifest = |files: &BTreeMap<String, Vec<u8>>| {
        let mut doc: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
        doc.as_object_mut().unwrap().remove("inputs").unwrap();
        doc
    };
    assert_eq!(manifest(&local), manifest(&embedded));

    // A site's own templates/ wins as a whole: one changed template reruns
    // the steps that render templates, and shows in the tree.
    copy_tree(&repo().join("templates"), &root.join("templates"));
    let dnsmasq = root.join("templates/dhcp/dnsmasq.conf.hbs");
    let hbs = std::fs::read_to_string(&dnsmasq).unwrap();
    std::fs::write(&dnsmasq, format!("# the site's own copy\n{hbs}")).unwrap();
    let third = build(root, &mirror);
    assert_eq!(ran(&third).into_keys().collect::<Vec<_>>(), rendered);
    let conf = std::fs::read_to_string(root.join("dist/http/dhcp/dnsmasq.conf")).unwrap();
    assert!(conf.starts_with("# the site's own copy\n"), "{conf}");

    // The same for payload/: the Cilium values reach the node configs only.
    copy_tree(&repo().join("payload"), &root.join("payload"));
    let values = root.join("payload/core/cilium/values.yaml");
    let yaml = std::fs::read_to_string(&values).unwrap();
    std::fs::write(&values, format!("{yaml}# the site's own values\n")).unwrap();
    let fourth = build(root, &mirror);
    let why = ran(&fourth);
    assert!(
        !why.is_empty() && why.keys().all(|id| id.starts_with("ignition:")),
        "{why:?}"
    );
    assert!(
        why["ignition:cp1/node.ign"].contains(".key.shared.cilium_values"),
        "{why:?}"
    );

    // A broken local copy is named where it is: the built-in one is not used.
    std::fs::write(&values, "k8sServicePort: 7443\n").unwrap();
    let out = pxebuild_on_mirror(root, &mirror)
        .arg("--site")
        .arg(root.join("site.toml"))
        .arg("build")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", out_text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&values.display().to_string()),
        "{}",
        out_text(&out)
    );
}
