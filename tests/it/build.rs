//! The build engine seen from outside: cached no-op rebuilds, per-node
//! invalidation, reproducible manifests across directories, a dist/ that
//! survives a build killed at any moment, an --out that is never someone
//! else's directory, published files repaired after a hand edit, and input
//! problems (templates) reported once with their place.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pxebuild::manifest::Manifest;

use crate::cluster_build::{build, prepared, Mirror};
use crate::cluster_common::copy_tree;
use crate::harness;

/// `pxebuild build` of the site in `root` against the fixture mirror.
fn command(root: &Path, mirror: &Mirror, extra: &[&str]) -> Command {
    command_out(root, mirror, &root.join("dist"), extra)
}

/// The same, publishing into `out`.
fn command_out(root: &Path, mirror: &Mirror, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pxebuild"));
    cmd.arg("--site")
        .arg(root.join("site.toml"))
        .arg("build")
        .arg("--out")
        .arg(out)
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
pub(crate) fn ran(out: &Output) -> Vec<String> {
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
    // A no-op build says so in one line, without the next steps.
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&second.stdout),
        String::from_utf8_lossy(&second.stderr)
    );
    let lines: Vec<&str> = said
        .lines()
        .filter(|l| !l.contains(": warning: ssh.authorized_keys"))
        .collect();
    assert_eq!(lines.len(), 1, "{said}");
    assert!(said.contains(" is up to date: "), "{said}");
    assert_eq!(
        snapshot(&root.join("dist")),
        before,
        "dist/ is byte-identical"
    );

    // -vv adds the debug lines: each step's cache decision.
    let debug = run(root, &mirror, &["-vv"]);
    let stderr = String::from_utf8_lossy(&debug.stderr);
    assert!(stderr.contains("debug: boot:configs: cached"), "{stderr}");

    // The same summary for scripts: one JSON document on stdout.
    let json = run(root, &mirror, &["--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(doc["published"], false, "{doc}");
    assert_eq!(doc["ran"], serde_json::json!([]), "{doc}");
    assert!(doc["steps"].as_u64().unwrap() > 0, "{doc}");
    assert_eq!(
        doc["files"].as_u64().unwrap() as usize,
        Manifest::load(&root.join("dist")).unwrap().files.len()
    );
}

#[test]
fn a_tree_another_cache_published_is_taken_over_without_a_warning_per_file() {
    let (dir, mirror) = built();
    let root = dir.path();
    let dist = root.join("dist");
    // Another cache builds into the same dist/: the same content, other
    // inodes (links into the other cache's store).
    let other = command(root, &mirror, &[])
        .env("PXEBUILD_CACHE", root.join("other-cache"))
        .output()
        .unwrap();
    assert!(other.status.success(), "{other:?}");

    let back = run(root, &mirror, &[]);
    let stderr = String::from_utf8_lossy(&back.stderr);
    assert!(!stderr.contains("after it was published"), "{stderr}");
    assert!(stderr.contains(" files published in "), "{stderr}");
    intact(&dist);
}

#[test]
fn a_broken_template_fails_naming_it_and_leaves_dist_alone() {
    let (dir, mirror) = prepared();
    let root = dir.path();
    run(root, &mirror, &[]);
    let before = snapshot(&root.join("dist"));
    let hbs = root.join("templates/boot/local.cfg.hbs");
    let text = std::fs::read_to_string(&hbs).unwrap();
    let lines = text.lines().count();
    std::fs::write(&hbs, format!("{text}{{{{#if unclosed}}}}\n")).unwrap();

    let out = command(root, &mirror, &[]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let place = format!("{}:{}:1: ", hbs.display(), lines + 1);
    assert!(
        stderr.contains(&format!(
            "error: template error: {place}{{{{#if unclosed}}}} is never closed"
        )),
        "{stderr}"
    );
    assert_eq!(snapshot(&root.join("dist")), before, "dist/ untouched");
}

/// A run's stderr from its first `error:` line on (without the site's
/// warnings and the progress before it).
fn errors(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    match stderr.find("error: ") {
        Some(at) => stderr[at..].trim_end().to_string(),
        None => stderr.into_owned(),
    }
}

#[test]
fn an_unclosed_block_is_reported_once_where_it_opens() {
    let (dir, mirror) = prepared();
    let root = dir.path();
    let hbs = root.join("templates/node.bu.hbs");
    let text = std::fs::read_to_string(&hbs).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let open = lines
        .iter()
        .position(|l| l.starts_with("{{#each site.ssh_keys}}"))
        .expect("node.bu.hbs lists the SSH keys in a block");
    let close = open
        + lines[open..]
            .iter()
            .position(|l| l.trim() == "{{/each}}")
            .unwrap();
    let mut broken = lines.clone();
    broken.remove(close);
    std::fs::write(&hbs, broken.join("\n") + "\n").unwrap();

    let out = command(root, &mirror, &[]).output().unwrap();
    let text = errors(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    // Named once, as the template's problem, at the line the block opens
    // (as an editor numbers it), not as failures of the steps that rendered.
    let line = open + 1;
    let expected = format!(
        "error: template error: {}:{line}:1: {{{{#each site.ssh_keys}}}} is never closed: \
         no {{{{/each}}}} before the end of the file (line {})",
        hbs.display(),
        broken.len()
    );
    assert_eq!(text.lines().next(), Some(expected.as_str()), "{text}");
    assert!(
        text.contains(&format!("{line} | {{{{#each site.ssh_keys}}}}\n")),
        "{text}"
    );
    let reports = text.lines().filter(|l| l.starts_with("error: ")).count();
    assert_eq!(reports, 1, "{text}");
    assert!(!text.contains("step"), "no step is blamed: {text}");
    assert!(!root.join("dist").exists(), "nothing published");
}

#[test]
fn a_syntax_error_is_shown_on_its_own_line_number() {
    let (dir, mirror) = prepared();
    let root = dir.path();
    let hbs = root.join("templates/node.bu.hbs");
    let text = std::fs::read_to_string(&hbs).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    lines[4] = "broken: {{foo bar baz)}}".into();
    std::fs::write(&hbs, lines.join("\n") + "\n").unwrap();

    let out = command(root, &mirror, &[]).output().unwrap();
    let text = errors(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.starts_with(&format!(
            "error: template error: {}:5:22: invalid handlebars syntax",
            hbs.display()
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "\n5 | broken: {{{{foo bar baz)}}}}\n  | {}^\n",
            " ".repeat(21)
        )),
        "line 5 is shown as line 5, the caret under the column: {text}"
    );
    assert!(!text.contains("step"), "{text}");
}

#[test]
fn a_templates_path_that_is_no_directory_is_bad_input_named_once() {
    let (dir, mirror) = prepared();
    let root = dir.path();
    std::fs::remove_dir_all(root.join("templates")).unwrap();
    std::fs::write(root.join("templates"), "not a directory\n").unwrap();
    let before = harness::snapshot(root);
    let out = command(root, &mirror, &[]).output().unwrap();
    let text = errors(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert_eq!(
        text,
        format!(
            "error: {} is not a directory: the build renders every node's Butane and boot \
             configs from the *.hbs templates in a templates/ directory beside site.toml \
             (remove it to use the templates built into pxebuild)",
            root.join("templates").display()
        )
    );
    assert_eq!(harness::snapshot(root), before, "nothing was created");
}

#[test]
fn templates_missing_what_the_site_renders_are_refused_before_anything_is_created() {
    let (dir, mirror) = prepared();
    let root = dir.path();
    let templates = root.join("templates");
    std::fs::remove_file(templates.join("boot/local.cfg.hbs")).unwrap();
    std::fs::remove_file(templates.join("kubeadm/join.yaml.hbs")).unwrap();
    let before = harness::snapshot(root);
    let out = command(root, &mirror, &[]).output().unwrap();
    let text = errors(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    let name = |rel: &str| templates.join(rel).display().to_string();
    assert!(
        text.contains("2 template(s) this site renders are missing")
            && text.contains("`pxebuild init DIR` writes every one")
            && !text.contains("pxebuild's own templates/")
            && text.contains(&name("kubeadm/join.yaml.hbs"))
            && text.contains(&name("boot/local.cfg.hbs")),
        "{text}"
    );
    // No secrets, no cache, no downloads: the fix is to add the files.
    assert_eq!(harness::snapshot(root), before, "nothing was created");

    // A directory without any template at all is refused the same way.
    std::fs::remove_dir_all(&templates).unwrap();
    std::fs::create_dir(&templates).unwrap();
    let out = command(root, &mirror, &[]).output().unwrap();
    let text = errors(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("no *.hbs templates in"), "{text}");
    assert!(!root.join("secrets").exists(), "{text}");
}

#[test]
fn the_cache_holding_control_plane_secrets_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, mirror) = prepared();
    let root = dir.path();
    let cache = root.join("cache");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let out = run(root, &mirror, &[]);
    assert_eq!(mode(&cache), 0o700, "created private");
    assert!(!String::from_utf8_lossy(&out.stderr).contains("open to other users"));
    // dist/ is served through its hard links, not through the cache; its
    // node-bound configs only to the group of the directory holding it.
    let node_ign = std::fs::read_dir(root.join("dist/http/ignition"))
        .unwrap()
        .map(|e| e.unwrap().path().join("node.ign"))
        .next()
        .unwrap();
    assert_eq!(mode(&node_ign), 0o440, "{}", node_ign.display());
    // A cache opened up (by hand, or by an earlier version) is closed again.
    std::fs::set_permissions(&cache, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run(root, &mirror, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "warning: the cache {} was open to other users (mode 755)",
            cache.display()
        )),
        "{stderr}"
    );
    assert_eq!(mode(&cache), 0o700);
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
fn explain_names_a_site_wide_field_and_no_node_directory() {
    let (dir, mirror) = prepared();
    let root = dir.path();
    run(root, &mirror, &[]);
    let site = root.join("site.toml");
    let text = std::fs::read_to_string(&site).unwrap();
    std::fs::write(
        &site,
        text.replace(
            "dns_domain = \"cluster.local\"",
            "dns_domain = \"rack1.local\"",
        ),
    )
    .unwrap();

    let out = run(root, &mirror, &["--explain"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    for step in ["ignition:cp1/node.ign", "ignition:worker1/install.ign"] {
        let why = stdout
            .lines()
            .find(|l| l.starts_with(&format!("ran {step}: ")))
            .unwrap_or_else(|| panic!("{step} did not run: {stdout}"));
        assert!(why.contains(".key.shared.site.cluster.dns_domain"), "{why}");
    }
    // The random part of each node's Ignition directory stays secret.
    let ids = std::fs::read_to_string(root.join("secrets/node-ids.toml")).unwrap();
    for line in ids.lines().filter_map(|l| l.split_once('=')) {
        let id = line.1.trim().trim_matches('"');
        assert!(id.len() >= 8, "{ids}");
        assert!(!stdout.contains(id), "a node id is printed: {stdout}");
    }
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

/// A site prepared and built once into its dist/.
fn built() -> (tempfile::TempDir, Mirror) {
    let (dir, mirror) = prepared();
    run(dir.path(), &mirror, &[]);
    (dir, mirror)
}

/// Asserts a refused build: exit 2, a message with every one of `wants`,
/// and nothing under `root` created, moved or changed.
fn refused(root: &Path, mirror: &Mirror, out: &Path, wants: &[&str]) {
    let before = harness::snapshot(root);
    let run = command_out(root, mirror, out, &[]).output().unwrap();
    let text = errors(&run);
    assert_eq!(
        run.status.code(),
        Some(2),
        "--out {}: {text}",
        out.display()
    );
    for want in wants {
        assert!(
            text.contains(want),
            "--out {}: lacks {want:?}: {text}",
            out.display()
        );
    }
    assert_eq!(
        harness::snapshot(root),
        before,
        "--out {}: something changed",
        out.display()
    );
}

#[test]
fn an_out_that_is_not_a_pxebuild_tree_is_refused_and_kept() {
    let (dir, mirror) = prepared();
    let root = dir.path();
    let existing = root.join("out/existing");
    std::fs::create_dir_all(&existing).unwrap();
    std::fs::write(existing.join("important.txt"), "precious\n").unwrap();
    let shown = existing.display().to_string();
    refused(
        root,
        &mirror,
        &existing,
        &[
            &shown,
            "is not a tree pxebuild published (it has no manifest.json)",
        ],
    );

    // A manifest.json is not enough: it must be one a build writes.
    std::fs::write(existing.join("manifest.json"), "{\"files\": []}\n").unwrap();
    refused(
        root,
        &mirror,
        &existing,
        &[&shown, "has no \"format\" number"],
    );

    let file = root.join("out/file");
    std::fs::write(&file, "precious\n").unwrap();
    refused(root, &mirror, &file, &["is a file, not a directory"]);

    // A build into the site's real dist/ still works, and the refused
    // directories were never touched.
    run(root, &mirror, &[]);
    let link = root.join("out/link");
    std::os::unix::fs::symlink(root.join("dist"), &link).unwrap();
    refused(root, &mirror, &link, &["is a symbolic link"]);
    assert_eq!(
        std::fs::read_to_string(existing.join("important.txt")).unwrap(),
        "precious\n"
    );
    let names: Vec<String> = std::fs::read_dir(root.join("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
}

#[test]
fn an_out_that_is_or_holds_the_sites_files_is_refused() {
    let (dir, mirror) = prepared();
    let root = dir.path();
    // Before the first build: secrets/ does not exist yet and must not be
    // made a tree (nor created) either.
    refused(
        root,
        &mirror,
        &root.join("secrets"),
        &["is the site's secrets directory"],
    );
    assert!(!root.join("secrets").exists());

    run(root, &mirror, &[]);
    let ca = std::fs::read(root.join("secrets/ca.crt")).unwrap();
    let cases: Vec<(PathBuf, &str)> = vec![
        (root.to_path_buf(), "is the site's directory"),
        (root.join("."), "is the site's directory"),
        (root.join("secrets"), "is the site's secrets directory"),
        (root.join("templates"), "is the site's templates directory"),
        (root.join("payload"), "is the site's payload directory"),
        (root.join("cache"), "is the build cache"),
        (root.join("cache/store"), "is inside the build cache"),
        (
            root.join("templates/dist"),
            "is inside the site's templates directory",
        ),
        (
            root.join("secrets/../payload"),
            "is the site's payload directory",
        ),
        (
            root.parent().unwrap().to_path_buf(),
            "holds the site's directory",
        ),
    ];
    for (out, why) in &cases {
        refused(
            root,
            &mirror,
            out,
            &[why, "a build replaces its output directory"],
        );
    }
    // And the real dist/ still builds from the same CA: nothing was moved.
    run(root, &mirror, &[]);
    assert_eq!(std::fs::read(root.join("secrets/ca.crt")).unwrap(), ca);
}

#[test]
fn an_empty_directory_is_taken_and_no_spare_is_kept_of_it() {
    let (dir, mirror) = prepared();
    let root = dir.path();
    std::fs::create_dir(root.join("dist")).unwrap();
    run(root, &mirror, &[]);
    assert!(Manifest::load(&root.join("dist")).is_ok());
    assert!(!root.join(".dist.spare").exists());
}

#[test]
fn a_spare_that_is_not_pxebuilds_is_refused_and_kept() {
    let (dir, mirror) = built();
    let root = dir.path();
    let site = root.join("site.toml");
    let text = std::fs::read_to_string(&site).unwrap();
    std::fs::write(
        &site,
        text.replace("52:54:00:20:00:12", "52:54:00:20:00:99"),
    )
    .unwrap();
    run(root, &mirror, &[]);
    let spare = root.join(".dist.spare");
    assert!(
        Manifest::load(&spare).is_ok(),
        "the previous tree is the spare"
    );

    // Someone else's directory at the spare's path is never emptied.
    std::fs::remove_dir_all(&spare).unwrap();
    std::fs::create_dir(&spare).unwrap();
    std::fs::write(spare.join("important.txt"), "precious\n").unwrap();
    std::fs::write(&site, &text).unwrap();
    let before = snapshot(&root.join("dist"));
    let out = command(root, &mirror, &[]).output().unwrap();
    let stderr = errors(&out);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains(&spare.display().to_string()), "{stderr}");
    assert!(stderr.contains("move it away"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(spare.join("important.txt")).unwrap(),
        "precious\n"
    );
    assert_eq!(snapshot(&root.join("dist")), before, "dist/ untouched");
}

/// The path of one node's per-MAC boot config in `dist`.
fn boot_config(dist: &Path) -> PathBuf {
    dist.join("tftp/pxelinux.cfg/01-52-54-00-20-00-11")
}

/// Asserts every file of `dist` is what its manifest says.
fn intact(dist: &Path) {
    let manifest = Manifest::load(dist).unwrap();
    pxebuild::serve::check::check_tree(dist, &manifest)
        .unwrap_or_else(|e| panic!("{} does not match its manifest: {e:#}", dist.display()));
}

#[test]
fn a_published_file_edited_in_place_is_rebuilt_and_published_again() {
    let (dir, mirror) = built();
    let root = dir.path();
    let dist = root.join("dist");
    let file = boot_config(&dist);
    let good = std::fs::read(&file).unwrap();
    // dist/ files are hard links into the cache: this edits the cache too.
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&file)
        .unwrap();
    std::io::Write::write_all(&mut f, b"# tampered\n").unwrap();
    drop(f);

    let out = run(root, &mirror, &["--explain"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "warning: {} changed after it was published, and the cache's copy with it",
            file.display()
        )),
        "{stderr}"
    );
    assert!(stderr.contains("1 ran; "), "{stderr}");
    assert!(stderr.contains(" files published in "), "{stderr}");
    assert_eq!(ran(&out), ["boot:cp1/configs"], "the step that made it ran");
    assert_eq!(std::fs::read(&file).unwrap(), good, "the file is rebuilt");
    intact(&dist);

    // And the repaired tree is a no-op again.
    let again = run(root, &mirror, &["--explain"]);
    assert_eq!(ran(&again), Vec::<String>::new());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains(" is up to date: "), "{stderr}");
}

#[test]
fn a_same_size_edit_of_a_fetched_file_is_repaired_offline() {
    let (dir, mirror) = built();
    let root = dir.path();
    let dist = root.join("dist");
    let file = dist.join("tftp/ldlinux.c32");
    let good = std::fs::read(&file).unwrap();
    let mut bad = good.clone();
    bad[0] ^= 0xff;
    // In place, same size: only the times tell.
    let mut f = std::fs::OpenOptions::new().write(true).open(&file).unwrap();
    std::io::Write::write_all(&mut f, &bad).unwrap();
    drop(f);

    let out = run(root, &mirror, &["--offline", "--explain"]);
    assert_eq!(
        ran(&out),
        ["fetch:loaders/debian/syslinux-common"],
        "re-extracted from the cache"
    );
    assert_eq!(std::fs::read(&file).unwrap(), good);
    intact(&dist);
}

#[test]
fn a_published_file_deleted_or_replaced_is_published_again() {
    let (dir, mirror) = built();
    let root = dir.path();
    let dist = root.join("dist");
    let file = boot_config(&dist);
    let good = std::fs::read(&file).unwrap();
    std::fs::remove_file(&file).unwrap();
    let dhcp = dist.join("http/dhcp/dnsmasq.conf");
    std::fs::remove_file(&dhcp).unwrap();
    std::fs::write(&dhcp, "# someone else's\n").unwrap();

    let out = run(root, &mirror, &["--explain"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("warning: {} is missing", file.display())),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!(
            "warning: {} was replaced after it was published",
            dhcp.display()
        )),
        "{stderr}"
    );
    assert_eq!(ran(&out), Vec::<String>::new(), "the cache was not damaged");
    assert_eq!(std::fs::read(&file).unwrap(), good);
    intact(&dist);
}

/// A rebuilt pxebuild carries the same version number (0.1.0) with different
/// code: its steps must not reuse what the old binary rendered. The binary's
/// digest keys every produced step; downloads stay keyed by their pins.
#[test]
fn a_changed_binary_reruns_every_produced_step_and_fetches_nothing() {
    let (dir, mirror) = prepared();
    let root = dir.path();
    let first = run(root, &mirror, &["--explain"]);
    let first_ran = ran(&first);
    assert!(first_ran.iter().any(|id| id.starts_with("fetch:")));
    let before = snapshot(&root.join("dist"));
    let downloads = mirror.requests().len();
    assert!(downloads > 0);

    // The same program with other bytes: an ELF runs with data appended.
    let copy = root.join("pxebuild-rebuilt");
    std::fs::copy(env!("CARGO_BIN_EXE_pxebuild"), &copy).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&copy)
        .unwrap();
    std::io::Write::write_all(&mut f, b"\nanother build of the same version\n").unwrap();
    drop(f);
    let mut cmd = command(root, &mirror, &["--explain"]);
    cmd.env_remove("CARGO_BIN_EXE_pxebuild");
    let mut rebuilt = Command::new(&copy);
    rebuilt.args(cmd.get_args()).envs(
        cmd.get_envs()
            .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
    );
    let out = rebuilt.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let second_ran = ran(&out);
    let produced: Vec<&String> = first_ran
        .iter()
        .filter(|id| !id.starts_with("fetch:flatcar/") && !id.starts_with("fetch:sysext/"))
        .collect();
    assert!(produced.iter().any(|id| id.starts_with("ignition:")));
    for id in &produced {
        assert!(second_ran.contains(id), "{id} re-ran:\n{stdout}");
    }
    for line in stdout.lines().filter(|l| l.starts_with("ran ")) {
        assert!(line.contains(".pxebuild"), "the binary is why: {line}");
    }
    assert!(
        !second_ran
            .iter()
            .any(|id| id.starts_with("fetch:flatcar/") || id.starts_with("fetch:sysext/")),
        "downloads are keyed by their pins:\n{stdout}"
    );
    assert_eq!(
        mirror.requests().len(),
        downloads,
        "nothing is fetched again"
    );
    // Same code, same files (the manifest's inputs digest names the keys).
    let after = snapshot(&root.join("dist"));
    let differ: Vec<&String> = after
        .keys()
        .chain(before.keys())
        .filter(|p| after.get(*p) != before.get(*p))
        .collect();
    assert!(differ.iter().all(|p| *p == "manifest.json"), "{differ:?}");
}

/// Runs `cmd` as uid:gid with no supplementary groups; its exit success.
fn as_user(uid: u32, gid: u32, cmd: &[&str]) -> bool {
    Command::new("setpriv")
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .arg("--clear-groups")
        .args(cmd)
        .output()
        .unwrap()
        .status
        .success()
}

/// Control-plane `node.ign` carries CA, etcd CA and service-account keys,
/// worker `node.ign` the bootstrap token: never world-readable, even where
/// the same content is a world-readable store blob. The group is that of the
/// directory holding dist/, and `serve --user` in that group still serves them.
#[test]
fn node_bound_configs_are_readable_only_by_owner_and_group_and_served_after_dropping_root() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    if !nix_root() {
        eprintln!("not root: cannot give files another group or switch users, skipping");
        return;
    }
    let (dir, mirror) = prepared();
    let root = dir.path();
    // The directory holding dist/: group nogroup (nobody's), and others may
    // traverse it, which the build warns about.
    std::os::unix::fs::chown(root, None, Some(65534)).unwrap();
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o751)).unwrap();
    let out = run(root, &mirror, &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "warning: {} (mode 0751) lets other users reach {}: its node-bound files are 0440, group 65534",
            root.display(),
            root.join("dist").display()
        )),
        "{stderr}"
    );
    let dist = root.join("dist");
    let manifest =
        Manifest::parse(&std::fs::read_to_string(dist.join("manifest.json")).unwrap()).unwrap();
    let private: Vec<&str> = manifest
        .access
        .iter()
        .map(|a| a.path.as_str())
        .filter(|p| p.starts_with("http/"))
        .collect();
    assert!(private.iter().any(|p| p.ends_with("/node.ign")));
    for path in &private {
        let meta = std::fs::metadata(dist.join(path)).unwrap();
        assert_eq!(meta.mode() & 0o7777, 0o440, "{path}");
        assert_eq!(meta.gid(), 65534, "{path}");
    }
    let public = std::fs::metadata(dist.join("tftp/lpxelinux.0")).unwrap();
    assert_eq!(
        public.mode() & 0o7777,
        0o444,
        "public files stay world-readable"
    );
    // Real permissions: another user is refused, a member of the group reads.
    let cp1 = private
        .iter()
        .find(|p| p.starts_with("http/ignition/cp1-") && p.ends_with("/node.ign"))
        .unwrap();
    let file = dist.join(cp1);
    let file = file.to_str().unwrap();
    assert!(!as_user(1, 1, &["cat", file]), "daemon may not read {file}");
    assert!(
        as_user(65534, 65534, &["cat", file]),
        "the group reads {file}"
    );
    // serve --user nobody (group nogroup) serves it after dropping root.
    let server = crate::serve_support::Served::start(&dist, &["--user", "nobody", "--no-ip-check"]);
    server.wait_line(|l| l.starts_with("running as user nobody"));
    let url = server.url(&format!("/{}", cp1.strip_prefix("http/").unwrap()));
    let got = crate::serve_support::curl(&["-s", "--fail", &url]);
    assert!(got.status.success(), "{url}: {got:?}");
    assert_eq!(got.stdout, std::fs::read(dist.join(cp1)).unwrap());
    // A rebuild with nothing to do keeps it so; a hand edit is repaired.
    let again = run(root, &mirror, &["--explain"]);
    assert_eq!(ran(&again), Vec::<String>::new());
    std::fs::set_permissions(dist.join(cp1), std::fs::Permissions::from_mode(0o640)).unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(dist.join(cp1))
        .unwrap();
    std::io::Write::write_all(&mut f, b" ").unwrap();
    drop(f);
    run(root, &mirror, &[]);
    let meta = std::fs::metadata(dist.join(cp1)).unwrap();
    assert_eq!(meta.mode() & 0o7777, 0o440);
    assert_eq!(std::fs::read(dist.join(cp1)).unwrap(), got.stdout);
}

fn nix_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}
