//! The build engine seen from outside: cached no-op rebuilds, per-node
//! invalidation, reproducible manifests across directories, and a dist/ that
//! survives a build killed at any moment.
use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};

use pxebuild::manifest::Manifest;

use crate::cluster_build::{build, prepared, Mirror};
use crate::cluster_common::copy_tree;

/// `pxebuild build` of the site in `root` against the fixture mirror.
fn command(root: &Path, mirror: &Mirror, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pxebuild"));
    cmd.arg("--site")
        .arg(root.join("site.toml"))
        .arg("build")
        .arg("--out")
        .arg(root.join("dist"))
        .args(extra)
        .env("PXEBUILD_CACHE", root.join("cache"))
        .env("PXEBUILD_MIRROR", &mirror.url)
        .env(
            "PXEBUILD_SIGNING_KEY",
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mirror/test-key.pub.asc"),
        );
    cmd
}

fn run(root: &Path, mirror: &Mirror, extra: &[&str]) -> Output {
    let out = command(root, mirror, extra)
        .output()
        .expect("running pxebuild build");
    assert!(
        out.status.success(),
        "pxebuild build {extra:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Every file of a tree, relative path → bytes.
fn snapshot(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .map(|e| e.unwrap())
        .filter(|e| e.file_type().is_file())
        .map(|e| {
            let rel = e
                .path()
                .strip_prefix(dir)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (rel, std::fs::read(e.path()).unwrap())
        })
        .collect()
}

/// The step ids an `--explain` run reports as run.
fn ran(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("ran "))
        .map(|l| l.split(": ").next().unwrap().to_string())
        .collect()
}

#[test]
fn a_second_build_runs_no_step_and_leaves_dist_byte_identical() {
    let (dir, mirror) = prepared();
    let root = dir.path();
    let first = run(root, &mirror, &["--explain"]);
    assert!(!ran(&first).is_empty(), "the first build does the work");
    let before = snapshot(&root.join("dist"));

    let second = run(root, &mirror, &["--explain"]);
    assert_eq!(ran(&second), Vec::<String>::new());
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(stdout.contains("nothing to do: all"), "{stdout}");
    assert_eq!(
        snapshot(&root.join("dist")),
        before,
        "dist/ is byte-identical"
    );
}

#[test]
fn a_broken_template_fails_naming_it_and_leaves_dist_alone() {
    let (dir, mirror) = prepared();
    let root = dir.path();
    run(root, &mirror, &[]);
    let before = snapshot(&root.join("dist"));
    let hbs = root.join("templates/boot/local.cfg.hbs");
    let text = std::fs::read_to_string(&hbs).unwrap();
    std::fs::write(&hbs, format!("{text}{{{{#if unclosed}}}}\n")).unwrap();

    let out = command(root, &mirror, &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("template boot/local.cfg.hbs"), "{stderr}");
    assert_eq!(snapshot(&root.join("dist")), before, "dist/ untouched");
}

#[test]
fn changing_one_mac_reruns_only_that_nodes_steps() {
    let (dir, mirror) = prepared();
    let root = dir.path();
    run(root, &mirror, &[]);
    let site = root.join("site.toml");
    let text = std::fs::read_to_string(&site).unwrap();
    assert!(text.contains("52:54:00:20:00:12"));
    std::fs::write(
        &site,
        text.replace("52:54:00:20:00:12", "52:54:00:20:00:99"),
    )
    .unwrap();

    let out = run(root, &mirror, &["--explain"]);
    let ran = ran(&out);
    assert!(
        ran.iter().any(|id| id.contains("cp2/")),
        "cp2's steps ran: {ran:?}"
    );
    // Site-wide aggregates list every MAC (DHCP snippets, per-MAC boot files):
    // they rebuild too; no other node's own step may.
    let foreign: Vec<&String> = ran
        .iter()
        .filter(|id| !id.contains("cp2/") && id.as_str() != "boot:configs")
        .collect();
    assert!(foreign.is_empty(), "only cp2 re-ran, but also: {foreign:?}");
    // The explanation names the field, although keys fold the node into a digest.
    let stdout = String::from_utf8_lossy(&out.stdout);
    let why = stdout
        .lines()
        .find(|l| l.starts_with("ran ignition:cp2/node.ign: "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(why.contains(".key.node.mac"), "{why}");
    let manifest = Manifest::load(&root.join("dist")).unwrap();
    assert!(manifest
        .file("tftp/pxelinux.cfg/01-52-54-00-20-00-99")
        .is_some());
    assert!(manifest
        .file("tftp/pxelinux.cfg/01-52-54-00-20-00-12")
        .is_none());
}

#[test]
fn clean_builds_in_two_directories_with_the_same_secrets_agree() {
    let (a, mirror) = prepared();
    run(a.path(), &mirror, &[]);
    let b = tempfile::tempdir().unwrap();
    for entry in ["site.toml", "templates", "payload", "secrets"] {
        let from = a.path().join(entry);
        if from.is_dir() {
            copy_tree(&from, &b.path().join(entry));
        } else {
            std::fs::copy(&from, b.path().join(entry)).unwrap();
        }
    }
    let out = build(b.path(), &b.path().join("dist"), &mirror);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ma = std::fs::read_to_string(a.path().join("dist/manifest.json")).unwrap();
    let mb = std::fs::read_to_string(b.path().join("dist/manifest.json")).unwrap();
    assert_eq!(ma, mb, "same inputs and secrets, same manifest");
}

#[test]
fn a_build_killed_at_any_moment_leaves_the_previous_dist_complete() {
    let (dir, mirror) = prepared();
    let root = dir.path();
    run(root, &mirror, &[]);
    let dist = root.join("dist");
    let site = root.join("site.toml");
    let original = std::fs::read_to_string(&site).unwrap();
    // Each round changes the site so the build has real work to do, then
    // kills it after a growing delay (0 ms kills before any work, the last
    // ones land in rendering, staging and the swap).
    for (round, delay_ms) in [0u64, 5, 20, 50, 100, 200, 400, 800]
        .into_iter()
        .enumerate()
    {
        let edited = original.replace("52:54:00:20:00:21", &format!("52:54:00:20:01:{round:02}"));
        std::fs::write(&site, edited).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_pxebuild"))
            .arg("--site")
            .arg(&site)
            .args(["-q", "build", "--out"])
            .arg(&dist)
            .env("PXEBUILD_CACHE", root.join("cache"))
            .env("PXEBUILD_MIRROR", &mirror.url)
            .env(
                "PXEBUILD_SIGNING_KEY",
                Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("tests/fixtures/mirror/test-key.pub.asc"),
            )
            .spawn()
            .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
        let manifest = Manifest::load(&dist).expect("dist/ always has a manifest");
        let checked = pxebuild::serve::check::check_tree(&dist, &manifest)
            .unwrap_or_else(|e| panic!("round {round}: dist/ is not complete: {e:#}"));
        assert_eq!(checked, manifest.files.len());
    }
    // And the next build finishes the job, cleaning any staging leftovers.
    run(root, &mirror, &[]);
    let leftovers: Vec<String> = std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("staging"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
