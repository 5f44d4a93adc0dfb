//! site.toml as the single source of truth for payload/'s git sources:
//! install-argo refuses (exit 2, before any tool runs) while a child
//! Application names another repository or revision, and
//! `install-argo --sync-payload` rewrites them in place, idempotently.
use crate::day2::{argo_cluster, calls, cluster, EXAMPLE_REPO, REPO};
use crate::harness::{repo_root, Test};

/// The committed payload file with the example repository and revision replaced.
fn committed(rel: &str, repo: &str, revision: &str) -> String {
    std::fs::read_to_string(repo_root().join(rel))
        .unwrap()
        .replace(EXAMPLE_REPO, repo)
        .replace(
            "targetRevision: main",
            &format!("targetRevision: {revision}"),
        )
}

/// The example site moved to [`REPO`] at `production`; payload/ as committed.
fn moved() -> Test {
    cluster()
        .edit_site(EXAMPLE_REPO, REPO)
        .edit_site("revision = \"main\"", "revision = \"production\"")
}

#[test]
fn install_argo_refuses_children_that_name_another_repository() {
    let out = moved().args(["install-argo"]).run();
    let line = |file: &str, n: u32, key: &str, have: &str, want: &str, site_key: &str| {
        format!("  payload/{file}:{n}: {key} is \"{have}\", expected \"{want}\" (site.toml argocd.{site_key})\n")
    };
    let repo = |file: &str, n: u32| line(file, n, "repoURL", EXAMPLE_REPO, REPO, "repo_url");
    let rev =
        |file: &str, n: u32| line(file, n, "targetRevision", "main", "production", "revision");
    out.code(2).stderr_is(&format!(
        "error: payload/ does not follow site.toml [argocd]: Argo CD reads these Applications \
         from git as written, so they would follow another repository or revision:\n\
         {}{}{}{}{}{}\
         run `pxebuild install-argo --sync-payload` to rewrite them, commit and push payload/ to \
         https://git.lan/ops/rack1.git (production), then run `pxebuild install-argo` again\n",
        repo("apps/hello.yaml", 13),
        rev("apps/hello.yaml", 14),
        repo("core/apps.yaml", 17),
        rev("core/apps.yaml", 18),
        repo("core/cilium.yaml", 28),
        rev("core/cilium.yaml", 29),
    ));
    assert!(calls(&out).is_empty(), "{:?}", calls(&out));
}

#[test]
fn sync_payload_rewrites_in_place_then_changes_nothing() {
    let t = moved().args(["install-argo", "--sync-payload"]);
    let out = t.run();
    out.success().stdout_is(&format!(
        "payload/apps/hello.yaml:13: repoURL {EXAMPLE_REPO} -> {REPO}\n\
         payload/apps/hello.yaml:14: targetRevision main -> production\n\
         payload/core/apps.yaml:17: repoURL {EXAMPLE_REPO} -> {REPO}\n\
         payload/core/apps.yaml:18: targetRevision main -> production\n\
         payload/core/cilium.yaml:28: repoURL {EXAMPLE_REPO} -> {REPO}\n\
         payload/core/cilium.yaml:29: targetRevision main -> production\n\
         changed 6 value(s) in 3 file(s); commit them and push to {REPO} (production) before \
         `pxebuild install-argo`: Argo CD reads payload/ from there\n"
    ));
    assert!(calls(&out).is_empty(), "sync needs no cluster");
    for rel in ["payload/apps/hello.yaml", "payload/core/apps.yaml"] {
        assert_eq!(out.read(rel), committed(rel, REPO, "production"), "{rel}");
    }
    // The chart source's targetRevision (the Cilium version) is not a git revision.
    let cilium = committed("payload/core/cilium.yaml", REPO, "production");
    assert!(cilium.contains("      chart: cilium\n      targetRevision: 1.19.8\n"));
    assert_eq!(out.read("payload/core/cilium.yaml"), cilium);
    // Rendered at apply time: the root Application's file stays as committed.
    let root = "payload/bootstrap/root-app.yaml";
    assert_eq!(
        out.read(root),
        std::fs::read_to_string(repo_root().join(root)).unwrap()
    );

    settled(&t, "production", "error");
}

/// A second sync of `t` (synced to [`REPO`] at `revision`) changes nothing,
/// and install-argo then has nothing to say of `topic` on stderr.
fn settled(t: &Test, revision: &str, topic: &str) {
    let before = t.snapshot();
    t.run().success().stdout_is(&format!(
        "payload/ already follows {REPO} at {revision}: nothing to change\n"
    ));
    assert_eq!(t.snapshot(), before, "a second sync writes nothing");
    t.run_with(["install-argo", "--dry-run"])
        .success()
        .stderr_lacks(topic);
}

#[test]
fn sync_payload_dry_run_writes_nothing() {
    let t = moved().args(["install-argo", "--sync-payload", "--dry-run"]);
    let before = t.snapshot();
    t.run()
        .success()
        .stdout_contains("payload/core/cilium.yaml:29: targetRevision main -> production\n")
        .stdout_contains("dry run: 6 value(s) in 3 file(s) would change; nothing written\n");
    assert_eq!(t.snapshot(), before);
}

#[test]
fn sync_payload_keeps_comments_quotes_and_adds_a_missing_revision() {
    let app = "# mine\napiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata:\n  name: extra\n\
               spec:\n  project: default\n  source:\n    # where from\n    repoURL: 'https://old.lan/x.git'  # old\n\
               \x20   path: payload/apps\n  destination: {namespace: x}\n";
    let t = argo_cluster()
        .file("payload/apps/extra.yaml", app)
        .args(["install-argo", "--sync-payload"]);
    t.run().success().stdout_is(&format!(
        "payload/apps/extra.yaml:10: repoURL https://old.lan/x.git -> {REPO}\n\
         payload/apps/extra.yaml:10: targetRevision (missing, added) -> main\n\
         changed 2 value(s) in 1 file(s); commit them and push to {REPO} (main) before \
         `pxebuild install-argo`: Argo CD reads payload/ from there\n"
    ));
    let want = app.replace(
        "    repoURL: 'https://old.lan/x.git'  # old\n",
        &format!("    repoURL: '{REPO}'  # old\n    targetRevision: main\n"),
    );
    let out = t.run_with(["install-argo", "--sync-payload"]);
    out.success().stdout_contains("nothing to change");
    assert_eq!(out.read("payload/apps/extra.yaml"), want);
}

#[test]
fn a_flow_style_git_source_is_refused_not_skipped() {
    let app = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: flow}\n\
               spec:\n  project: default\n  source: {repoURL: 'https://old.lan/x.git', path: payload/apps}\n\
               \x20 destination: {namespace: x}\n";
    let t = argo_cluster().file("payload/apps/flow.yaml", app);
    for args in [vec!["install-argo"], vec!["install-argo", "--sync-payload"]] {
        let out = t.run_with(&args);
        out.code(2).stderr_is(
            "error: payload/apps/flow.yaml: an Application's git source is not written as a \
             block mapping (one `key: value` per line), so pxebuild cannot check or rewrite its \
             repoURL and targetRevision: write it in block style\n",
        );
        assert!(calls(&out).is_empty());
    }
}

#[test]
fn the_placeholder_repository_is_refused_with_what_to_do() {
    let t = cluster();
    for args in [vec!["install-argo"], vec!["install-argo", "--sync-payload"]] {
        let out = t.run_with(&args);
        out.code(2).stderr_is(
            "error: site.toml [argocd] repo_url is still the placeholder \
             https://git.example.com/infra/rack1.git: set it to the git repository that holds \
             this site.toml and payload/ (Argo CD reads payload/ from there), then run \
             `pxebuild install-argo --sync-payload`, commit and push\n",
        );
        assert!(calls(&out).is_empty());
    }
}

/// Where the example site's boot server publishes charts in serve mode.
const CHARTS: &str = "http://10.20.0.2:8080/charts";

#[test]
fn sync_payload_points_published_charts_at_the_boot_server_in_serve_mode() {
    let serve = "[images]\nmode = \"serve\"\n\n[[node]]";
    let t = argo_cluster()
        .edit_site("[[node]]", serve)
        .args(["install-argo", "--sync-payload"]);
    // kured is not in [images] charts: left alone, with what to add.
    let out = t.run();
    out.success()
        .stdout_is(&format!(
            "payload/core/cilium.yaml:19: repoURL https://helm.cilium.io/ -> {CHARTS}\n\
             changed 1 value(s) in 1 file(s); commit them and push to {REPO} (main) before \
             `pxebuild install-argo`: Argo CD reads payload/ from there\n"
        ))
        .stderr_is(
            "warning: payload/core/kured.yaml: Application kured: chart kured 6.0.0 comes from \
             \"https://kubereboot.github.io/charts\", which the site does not publish and nodes \
             cannot reach with [images] mode = \"serve\": add { repo = \
             \"https://kubereboot.github.io/charts\", name = \"kured\", version = \"6.0.0\" } to \
             [images] charts, build again, then run `pxebuild install-argo --sync-payload`\n",
        );
    let cilium = std::fs::read_to_string(repo_root().join("payload/core/cilium.yaml"))
        .unwrap()
        .replace(EXAMPLE_REPO, REPO)
        .replace(
            "    - repoURL: https://helm.cilium.io/\n",
            &format!("    - repoURL: {CHARTS}\n"),
        );
    assert_eq!(out.read("payload/core/cilium.yaml"), cilium);
    assert_eq!(
        out.read("payload/core/kured.yaml"),
        committed("payload/core/kured.yaml", REPO, "main")
    );

    // Once the site publishes kured, the next sync points it there too.
    let t = t.edit_site(
        "mode = \"serve\"\n",
        "mode = \"serve\"\ncharts = [\n  { repo = \"https://kubereboot.github.io/charts\", \
         name = \"kured\", version = \"6.0.0\" },\n]\n",
    );
    let out = t.run();
    out.success()
        .stdout_is(&format!(
            "payload/core/kured.yaml:19: repoURL https://kubereboot.github.io/charts -> {CHARTS}\n\
             changed 1 value(s) in 1 file(s); commit them and push to {REPO} (main) before \
             `pxebuild install-argo`: Argo CD reads payload/ from there\n"
        ))
        .stderr_is("");
    // Nothing left to rewrite, nor for install-argo to warn about the charts.
    settled(&t, "main", "chart");
}

#[test]
fn install_argo_warns_that_sync_payload_moves_published_charts() {
    let out = argo_cluster()
        .edit_site("[[node]]", "[images]\nmode = \"serve\"\n\n[[node]]")
        .args(["install-argo", "--dry-run"])
        .run();
    out.success().stderr_contains(&format!(
        "warning: payload/core/cilium.yaml: Application cilium: chart cilium 1.19.8 comes from \
         \"https://helm.cilium.io/\", but with [images] mode = \"serve\" the boot server \
         publishes it at \"{CHARTS}\": run `pxebuild install-argo --sync-payload` to point its \
         repoURL there, commit and push\n"
    ));
}

#[test]
fn a_flow_style_published_chart_source_is_refused_not_skipped() {
    let app = "apiVersion: argoproj.io/v1alpha1\nkind: Application\nmetadata: {name: flow}\n\
               spec:\n  project: default\n  source: {repoURL: 'https://helm.cilium.io/', chart: cilium, targetRevision: 1.19.8}\n\
               \x20 destination: {namespace: x}\n";
    let t = argo_cluster()
        .edit_site("[[node]]", "[images]\nmode = \"serve\"\n\n[[node]]")
        .file("payload/apps/flow.yaml", app);
    let before = t.snapshot();
    t.run_with(["install-argo", "--sync-payload"])
        .code(2)
        .stderr_is(&format!(
        "error: payload/apps/flow.yaml: an Application's Helm chart source that the boot server \
         publishes is not written as a block mapping (one `key: value` per line), so pxebuild \
         cannot point its repoURL at {CHARTS}: write it in block style\n"
    ));
    assert_eq!(t.snapshot(), before, "nothing half-written");
}
