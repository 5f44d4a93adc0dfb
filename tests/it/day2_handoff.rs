//! The day-2 handoff: `pxebuild build` of the example site ends by printing
//! the next steps on stderr (serve command, DHCP snippets, node order,
//! kubeconfig path, day-2 commands), and `-q` suppresses them. One full build
//! from the loopback fixture mirror; the `-q` run is its all-cached rebuild.
use crate::cluster_build::{prepared, pxebuild_on_mirror, Mirror};
use std::path::Path;

/// `pxebuild [-q] build --out dist` in `root` (so the steps name `site.toml`
/// and `dist` as the operator typed them).
fn build(root: &Path, mirror: &Mirror, quiet: bool) -> (String, String) {
    let mut cmd = pxebuild_on_mirror(root, mirror);
    if quiet {
        cmd.arg("-q");
    }
    let out = cmd
        .args(["build", "--out", "dist"])
        .current_dir(root)
        .output()
        .expect("running pxebuild build");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "pxebuild build failed: {stderr}");
    (String::from_utf8_lossy(&out.stdout).into_owned(), stderr)
}

#[test]
fn build_ends_with_the_next_steps_and_quiet_drops_them() {
    let (dir, mirror) = prepared();
    let (_, stderr) = build(dir.path(), &mirror, false);
    let start = stderr
        .find("Next steps for site rack1:\n")
        .unwrap_or_else(|| panic!("no next steps in:\n{stderr}"));
    let steps = &stderr[start..];
    for line in [
        "  1. Serve the tree on 10.20.0.2 (HTTP 8080, TFTP 69):\n       pxebuild serve dist\n",
        "  2. Point your DHCP server at it: include one snippet from dist/http/dhcp\n",
        "  3. Power on the nodes in this order (network boot):\n\
         \x20      1. cp1        52:54:00:20:00:11  10.20.0.11      control plane, runs kubeadm init: boot first\n\
         \x20      2. cp2        52:54:00:20:00:12  10.20.0.12      control plane, joins\n\
         \x20      3. cp3        52:54:00:20:00:13  10.20.0.13      control plane, joins\n\
         \x20      4. worker1    52:54:00:20:00:21  10.20.0.21      worker, joins\n\
         \x20      5. worker2    52:54:00:20:00:22  10.20.0.22      worker, joins\n",
        "  4. Wait for every node:        pxebuild wait --timeout 30m\n",
        "  5. Admin kubeconfig:           secrets/kubeconfig (pxebuild kubeconfig)\n",
        "       (a placeholder: set [argocd] repo_url in site.toml, then `pxebuild install-argo --sync-payload`)\n",
        "  7. Day 2:                      pxebuild untaint   (optional: workloads on control planes)\n\
         \x20                                pxebuild install-argo   (Argo CD chart 10.9.0)\n",
    ] {
        assert!(steps.contains(line), "missing {line:?} in:\n{steps}");
    }
    // The whole handoff, last, exactly as the library renders it.
    let text = std::fs::read_to_string(dir.path().join("site.toml")).unwrap();
    let site = pxebuild::site::Site::from_text(&text, Path::new("site.toml")).unwrap();
    assert_eq!(
        steps,
        pxebuild::day2::handoff::next_steps(&site, Path::new("dist"))
    );
    assert!(dir.path().join("secrets/kubeconfig").is_file());
    assert!(dir.path().join("dist/http/dhcp/dnsmasq.conf").is_file());

    let (stdout, stderr) = build(dir.path(), &mirror, true);
    assert!(!stderr.contains("Next steps"), "-q printed:\n{stderr}");
    assert!(!stdout.contains("Next steps"), "-q printed:\n{stdout}");
    assert!(!stderr.contains("pxebuild serve"), "{stderr}");
}
