//! The day-2 handoff printed at the end of `pxebuild build`: what to run next
//! for this site, in order, with its real paths and names.
use std::path::Path;

use crate::site::Site;

/// `pxebuild serve`'s default ports; flags are printed only when the site differs.
const SERVE_DEFAULT_HTTP: u16 = 8080;
const SERVE_DEFAULT_TFTP: u16 = 69;

/// The next steps after a build of `site` into `out`.
pub fn next_steps(site: &Site, out: &Path) -> String {
    let f = &site.file;
    let bs = &f.boot_server;
    let px = super::cmdline::pxebuild_cmd(site);
    let indent = " ".repeat(33);
    let mut lines = vec![
        format!("Next steps for site {}:", f.cluster.name),
        format!(
            "  1. Serve the tree on {} (HTTP {}, TFTP {}):",
            bs.address, bs.http_port, bs.tftp_port
        ),
        format!("       {px} serve {}{}", out.display(), port_flags(site)),
        format!(
            "  2. Point your DHCP server at it: include one snippet from {}",
            crate::layout::dhcp_dir(out).display()
        ),
        "       (dnsmasq.conf, dhcpd.conf or kea-dhcp4.json; see docs/cluster.md)".into(),
        "  3. Power on the nodes in this order (network boot):".into(),
    ];
    let order = boot_order(site);
    // Every control plane, then workers up to a screenful: the order past the
    // control planes does not matter, and a rack of hundreds would bury the rest.
    let shown = order
        .len()
        .min(site.control_planes().count().max(LISTED_NODES));
    for (i, node) in order[..shown].iter().enumerate() {
        lines.push(format!("       {}. {node}", i + 1));
    }
    if shown < order.len() {
        lines.push(format!(
            "       … and {} more workers, in any order",
            order.len() - shown
        ));
    }
    lines.extend([
        format!("  4. Wait for every node:        {px} wait --timeout 30m"),
        format!(
            "  5. Admin kubeconfig:           {} ({px} kubeconfig)",
            super::kubeconfig::path(site).display()
        ),
        "  6. Push this repository (payload/ included; not secrets/, .secrets.*, dist/, .dist.*, .pxebuild/) to".into(),
        format!(
            "       {} at {}: Argo CD follows it",
            f.argocd.repo_url, f.argocd.revision
        ),
    ]);
    if super::sync::is_placeholder(&f.argocd.repo_url) {
        lines.push(format!(
            "       (a placeholder: set [argocd] repo_url in {}, then `{px} install-argo --sync-payload`)",
            site.path.display()
        ));
    }
    if let Some(served) = crate::fetch::charts::served_repository(site) {
        lines.push(format!(
            "       (air gap: run `{px} install-argo --sync-payload` before pushing, so payload/'s charts come from {served})"
        ));
    }
    lines.extend([
        format!("  7. Day 2:                      {px} untaint   (optional: workloads on control planes)"),
        format!("{indent}{px} install-argo   (Argo CD chart {})", f.argocd.chart_version),
        "  Node lifecycle (add, remove, reinstall, upgrade): docs/operations.md".into(),
    ]);
    lines.join("\n") + "\n"
}

/// One line per node: control planes first (the first one runs `kubeadm init`,
/// the others join it), then the workers, each in site order.
/// How many nodes the boot order lists before summing up the rest.
const LISTED_NODES: usize = 12;

pub fn boot_order(site: &Site) -> Vec<String> {
    let cps = site.control_planes().enumerate().map(|(i, n)| {
        let what = if i == 0 {
            "control plane, runs kubeadm init: boot first"
        } else {
            "control plane, joins"
        };
        (n, what)
    });
    let workers = site.workers().map(|n| (n, "worker, joins"));
    cps.chain(workers)
        .map(|(n, what)| format!("{:<10} {}  {:<15} {what}", n.name, n.mac, n.ip))
        .collect()
}

fn port_flags(site: &Site) -> String {
    let bs = &site.file.boot_server;
    let mut flags = String::new();
    if bs.http_port != SERVE_DEFAULT_HTTP {
        flags.push_str(&format!(" --http-port {}", bs.http_port));
    }
    if bs.tftp_port != SERVE_DEFAULT_TFTP {
        flags.push_str(&format!(" --tftp-port {}", bs.tftp_port));
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../site.toml");

    #[test]
    fn a_large_rack_lists_a_screenful_of_nodes_then_a_count() {
        let head = &EXAMPLE[..EXAMPLE.find("[[node]]").unwrap()];
        let mut text = head.to_string();
        for i in 1..=20 {
            let role = if i <= 3 { "control-plane" } else { "worker" };
            text.push_str(&format!(
                "[[node]]\nname = \"n{i}\"\nmac = \"52:54:00:20:01:{i:02x}\"\nip = \"10.20.0.{}\"\nrole = \"{role}\"\ndisk = \"/dev/disk/by-id/virtio-n{i}\"\n\n",
                100 + i
            ));
        }
        let site = Site::from_text(&text, Path::new("site.toml")).unwrap();
        let steps = next_steps(&site, Path::new("dist"));
        assert!(steps.contains("       12. n12 "), "{steps}");
        assert!(!steps.contains(" n13 "), "{steps}");
        assert!(
            steps.contains("… and 8 more workers, in any order"),
            "{steps}"
        );
    }

    #[test]
    fn next_steps_for_the_example_site() {
        let site = Site::from_text(EXAMPLE, Path::new("site.toml")).unwrap();
        let text = next_steps(&site, Path::new("dist"));
        let want = "\
Next steps for site rack1:
  1. Serve the tree on 10.20.0.2 (HTTP 8080, TFTP 69):
       pxebuild serve dist
  2. Point your DHCP server at it: include one snippet from dist/http/dhcp
       (dnsmasq.conf, dhcpd.conf or kea-dhcp4.json; see docs/cluster.md)
  3. Power on the nodes in this order (network boot):
       1. cp1        52:54:00:20:00:11  10.20.0.11      control plane, runs kubeadm init: boot first
       2. cp2        52:54:00:20:00:12  10.20.0.12      control plane, joins
       3. cp3        52:54:00:20:00:13  10.20.0.13      control plane, joins
       4. worker1    52:54:00:20:00:21  10.20.0.21      worker, joins
       5. worker2    52:54:00:20:00:22  10.20.0.22      worker, joins
  4. Wait for every node:        pxebuild wait --timeout 30m
  5. Admin kubeconfig:           secrets/kubeconfig (pxebuild kubeconfig)
  6. Push this repository (payload/ included; not secrets/, .secrets.*, dist/, .dist.*, .pxebuild/) to
       https://git.example.com/infra/rack1.git at main: Argo CD follows it
       (a placeholder: set [argocd] repo_url in site.toml, then `pxebuild install-argo --sync-payload`)
  7. Day 2:                      pxebuild untaint   (optional: workloads on control planes)
                                 pxebuild install-argo   (Argo CD chart 10.9.0)
  Node lifecycle (add, remove, reinstall, upgrade): docs/operations.md
";
        assert_eq!(text, want);
    }

    #[test]
    fn serve_mode_says_the_sync_points_payload_charts_at_the_boot_server() {
        let text = EXAMPLE.replacen("[[node]]", "[images]\nmode = \"serve\"\n\n[[node]]", 1);
        let site = Site::from_text(&text, Path::new("site.toml")).unwrap();
        let steps = next_steps(&site, Path::new("dist"));
        assert!(
            steps.contains(
                "then `pxebuild install-argo --sync-payload`)\n       (air gap: run `pxebuild \
                 install-argo --sync-payload` before pushing, so payload/'s charts come from \
                 http://10.20.0.2:8080/charts)\n  7. Day 2:"
            ),
            "{steps}"
        );
    }

    #[test]
    fn another_site_file_and_ports_show_in_the_commands() {
        let text = EXAMPLE.replace("http_port = 8080", "http_port = 8081");
        let site = Site::from_text(&text, Path::new("sites/b.toml")).unwrap();
        let steps = next_steps(&site, Path::new("out"));
        assert!(
            steps.contains("pxebuild --site sites/b.toml serve out --http-port 8081\n"),
            "{steps}"
        );
        assert!(steps.contains("sites/secrets/kubeconfig"), "{steps}");
    }
}
