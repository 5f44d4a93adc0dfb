//! `[images] mode = "serve"` in the nodes' Ignition: one containerd
//! `hosts.toml` per upstream registry pointing at the boot server, the
//! containerd config that reads them (accepted by Debian's real containerd),
//! valid Ignition; and in `"pull"` mode, node configs byte for byte what they
//! are without any of it.
use std::path::Path;

use pxebuild::render::containerd::{config_toml, hosts_toml, CONFIG_PATH, HOSTS_DIR};
use pxebuild::render::ignition;
use pxebuild::render::templates::Templates;
use pxebuild::site::Site;

use crate::cluster_common::*;
use crate::cluster_render::render_all;

/// The example site with an `[images]` table appended to its site.toml.
fn site_with_images(table: &str) -> (tempfile::TempDir, Site) {
    let (dir, _) = example_site();
    let path = dir.path().join("site.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(table);
    std::fs::write(&path, text).unwrap();
    let site = Site::load(&path).unwrap();
    (dir, site)
}

const SERVE: &str = "\n[images]\nmode = \"serve\"\nextra = [\n  \
    \"registry.k8s.io/pause:3.10\",\n  \"quay.io/cilium/cilium:v1.18.0\",\n  \
    \"quay.io/cilium/operator:v1.18.0\",\n  \"busybox:1.36\",\n  \
    \"registry.test:5000/app/web:1\",\n]\n";

/// kubeadm's pause image of the example site's Kubernetes release.
const PAUSE: &str = "registry.k8s.io/pause:3.10.1";

#[test]
fn images_serve_mode_gives_containerd_one_hosts_file_per_registry() {
    let (dir, site) = site_with_images(SERVE);
    let base = "http://10.20.0.2:8080";
    let templates = Templates::load(&site.templates_dir()).unwrap();
    let registries = [
        "docker.io",
        "ecr-public.aws.com",
        "ghcr.io",
        "quay.io",
        "registry.k8s.io",
        "registry.test:5000",
    ];
    for (mut ctx, bu) in render_all(&site) {
        let name = ctx.node.name.clone();
        let node_ign = ignition::translate(&bu, &format!("{name}/node.bu"), true).unwrap();
        let path = dir.path().join(format!("{name}-node.ign"));
        std::fs::write(&path, &node_ign).unwrap();
        ignition_validate(&path);
        let install_bu =
            pxebuild::render::node::render_install(&templates, &mut ctx, node_ign.as_bytes())
                .unwrap();
        ignition::translate(&install_bu, &format!("{name}/install.bu"), true).unwrap();

        let ign: serde_json::Value = serde_json::from_str(&node_ign).unwrap();
        let files: Vec<&str> = ign["storage"]["files"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|f| f["path"].as_str())
            .filter(|p| p.starts_with(HOSTS_DIR))
            .collect();
        let expected: Vec<String> = registries
            .iter()
            .map(|r| format!("{HOSTS_DIR}/{r}/hosts.toml"))
            .collect();
        assert_eq!(files, expected, "{name}: one hosts.toml per registry");
        for registry in registries {
            let text = ignition_file(&ign, &format!("{HOSTS_DIR}/{registry}/hosts.toml")).unwrap();
            assert_eq!(String::from_utf8(text).unwrap(), hosts_toml(registry, base));
        }
        let hub = ignition_file(&ign, &format!("{HOSTS_DIR}/docker.io/hosts.toml")).unwrap();
        let hub = String::from_utf8(hub).unwrap();
        assert!(
            hub.contains("server = \"https://registry-1.docker.io\""),
            "{hub}"
        );
        assert!(
            hub.contains("[host.\"http://10.20.0.2:8080/v2/docker.io\"]"),
            "{hub}"
        );
        let config = ignition_file(&ign, CONFIG_PATH).unwrap();
        // The sandbox image is kubeadm's pause, which the tree carries.
        let pause = pxebuild::site::images::site_images(&site)
            .unwrap()
            .into_iter()
            .find(|i| i.dist_name() == "registry.k8s.io/pause")
            .expect("kubeadm's pause is among the site's images");
        assert_eq!(config, config_toml(&pause.to_string()).into_bytes());
        let units = ign["systemd"]["units"].as_array().unwrap();
        let containerd = units
            .iter()
            .find(|u| u["name"] == "containerd.service")
            .unwrap();
        let dropin = containerd["dropins"][0]["contents"].as_str().unwrap();
        assert!(
            dropin.contains(&format!(
                "ExecStart=\nExecStart=/usr/bin/containerd --config {CONFIG_PATH}\n"
            )),
            "{dropin}"
        );
    }
}

/// The upstream names stay in every cluster config (kubeadm, kube-vip,
/// Cilium, Argo CD): serve mode changes nothing but containerd's files.
#[test]
fn images_serve_mode_keeps_the_upstream_image_names() {
    let (dir, site) = example_site();
    let pull = render_all(&site);
    let path = dir.path().join("site.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str(SERVE);
    std::fs::write(&path, text).unwrap();
    cut_serve_parts(&dir.path().join("templates"));
    let serve = render_all(&Site::load(&path).unwrap());
    for ((ctx, a), (_, b)) in pull.iter().zip(&serve) {
        assert_eq!(a, b, "{}", ctx.node.name);
    }
}

/// In pull mode the new template parts render nothing: the node Butane is
/// byte for byte what the templates give with those parts cut out.
#[test]
fn images_pull_mode_node_configs_are_unchanged() {
    for table in [
        "",
        "\n[images]\nmode = \"pull\"\nextra = [\"busybox:1.36\"]\n",
    ] {
        let (dir, site) = site_with_images(table);
        let with = render_all(&site);
        // The same site with the templates as they were before serve mode.
        cut_serve_parts(&dir.path().join("templates"));
        let without = render_all(&Site::load(&dir.path().join("site.toml")).unwrap());
        assert_eq!(with.len(), without.len());
        for ((ctx, a), (_, b)) in with.iter().zip(&without) {
            assert_eq!(a, b, "{}: pull mode changed the node config", ctx.node.name);
            assert!(!a.contains("certs.d"));
        }
    }
}

/// Removes what serve mode added to the templates: the containerd-hosts
/// partial, the containerd.service drop-in and Cilium's chart repository.
fn cut_serve_parts(templates: &Path) {
    let node = templates.join("node.bu.hbs");
    let text = std::fs::read_to_string(&node).unwrap();
    let line = "{{> partials/containerd-hosts}}\n";
    assert!(text.contains(line));
    std::fs::write(&node, text.replacen(line, "", 1)).unwrap();
    let units = templates.join("partials/units.hbs");
    let text = std::fs::read_to_string(&units).unwrap();
    let start = text.find("{{#if site.images.serve}}").unwrap();
    let end = text[start..].find("{{/if}}\n").unwrap() + start + "{{/if}}\n".len();
    std::fs::write(&units, format!("{}{}", &text[..start], &text[end..])).unwrap();
    std::fs::remove_file(templates.join("partials/containerd-hosts.hbs")).unwrap();
    // Cilium's chart from the boot server's Helm repository (the other
    // serve-mode change, docs/cluster.md "Where the charts come from").
    let cilium = templates.join("files/cilium-install.sh.hbs");
    let text = std::fs::read_to_string(&cilium).unwrap();
    let start = text.find("{{#if site.cilium.chart_repository}}").unwrap();
    let other = text[start..].find("{{else}}\n").unwrap() + start;
    let end = text[other..].find("{{/if}}\n").unwrap() + other;
    let pull_branch = &text[other + "{{else}}\n".len()..end];
    let cut = format!(
        "{}{}{}",
        &text[..start],
        pull_branch,
        &text[end + "{{/if}}\n".len()..]
    );
    std::fs::write(&cilium, cut).unwrap();
}

/// Debian's containerd reads the config a serve-mode node runs with, and
/// takes the registry hosts directory from it.
#[test]
fn images_containerd_accepts_the_node_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config_toml(PAUSE)).unwrap();
    let out = std::process::Command::new("containerd")
        .arg("--config")
        .arg(&path)
        .args(["config", "dump"])
        .output()
        .expect("containerd (Debian package containerd)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dump: toml::Value = toml::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
    let cri = &dump["plugins"]["io.containerd.grpc.v1.cri"];
    assert_eq!(cri["registry"]["config_path"].as_str(), Some(HOSTS_DIR));
    assert_eq!(cri["sandbox_image"].as_str(), Some(PAUSE));
    assert_eq!(
        cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"].as_bool(),
        Some(true)
    );
}

/// The containerd.service drop-in of a serve-mode node, as systemd reads it:
/// `systemd-analyze verify` of containerd.service (this host's unit, from
/// Debian's containerd, standing in for Flatcar's) with the drop-in beside
/// it, in a root holding the command it runs and the config it names.
#[test]
fn images_containerd_dropin_passes_systemd_analyze_verify() {
    let (_dir, site) = site_with_images(SERVE);
    let (_, bu) = render_all(&site).into_iter().next().unwrap();
    let ign: serde_json::Value =
        serde_json::from_str(&ignition::translate(&bu, "node.bu", true).unwrap()).unwrap();
    let unit = ign["systemd"]["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "containerd.service")
        .unwrap();
    let dropin = &unit["dropins"][0];
    let root = tempfile::tempdir().unwrap();
    let at = |abs: &str| root.path().join(abs.trim_start_matches('/'));
    crate::cluster_sandbox::copy_host_units(root.path());
    let dir = at("/etc/systemd/system/containerd.service.d");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join(dropin["name"].as_str().unwrap()),
        dropin["contents"].as_str().unwrap(),
    )
    .unwrap();
    for (path, bytes) in [
        (
            "/usr/bin/containerd",
            std::fs::read("/usr/bin/containerd").unwrap(),
        ),
        (CONFIG_PATH, config_toml(PAUSE).into_bytes()),
    ] {
        std::fs::create_dir_all(at(path).parent().unwrap()).unwrap();
        std::fs::write(at(path), bytes).unwrap();
    }
    std::fs::set_permissions(
        at("/usr/bin/containerd"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let out = std::process::Command::new("systemd-analyze")
        .arg(format!("--root={}", root.path().display()))
        .args(["--man=no", "verify", "containerd.service"])
        .output()
        .expect("systemd-analyze (the systemd package) is installed");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}
