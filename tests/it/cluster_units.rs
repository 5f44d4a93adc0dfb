//! What the rendered Ignition configs of the example site ask systemd and the
//! disk for: milestone beacons per role, run-once conditions, network, SSH
//! keys, update settings, system extension links and masks.
use pxebuild::render::context::NodeContext;
use pxebuild::render::ignition;
use pxebuild::render::node::render_install;
use pxebuild::render::templates::Templates;
use pxebuild::site::Site;
use serde_json::Value;

use crate::cluster_common::*;
use crate::cluster_render::render_all;
use crate::cluster_sandbox::{copy_host_units, node_ignition, out_text, write_exec, Sandbox};

/// Every node: context, node Ignition and install Ignition.
fn ignitions(site: &Site) -> Vec<(NodeContext, Value, Value)> {
    let templates = Templates::load(&site.templates_dir()).unwrap();
    render_all(site)
        .into_iter()
        .map(|(mut ctx, bu)| {
            let node = node_ignition(&ctx, &bu);
            let install_bu =
                render_install(&templates, &mut ctx, node.to_string().as_bytes()).unwrap();
            let install = ignition::translate(&install_bu, "install.bu", true).unwrap();
            (ctx, node, serde_json::from_str(&install).unwrap())
        })
        .collect()
}

fn units(ign: &Value) -> &Vec<Value> {
    ign["systemd"]["units"].as_array().unwrap()
}

fn unit<'a>(ign: &'a Value, name: &str) -> &'a Value {
    units(ign)
        .iter()
        .find(|u| u["name"] == name)
        .unwrap_or_else(|| panic!("no unit {name}"))
}

fn text(ign: &Value, path: &str) -> String {
    String::from_utf8(ignition_file(ign, path).unwrap_or_else(|| panic!("no file {path}"))).unwrap()
}

/// The enabled units whose ExecStart (directly, or through a script file of
/// the same config) sends milestone `m`.
fn units_sending<'a>(ign: &'a Value, m: &str) -> Vec<&'a str> {
    let sends =
        |s: &str| s.contains(&format!("beacon {m}\n")) || s.ends_with(&format!("beacon {m}"));
    units(ign)
        .iter()
        .filter(|u| u["enabled"] == true)
        .filter(|u| {
            let contents = u["contents"].as_str().unwrap_or_default();
            contents
                .lines()
                .filter_map(|l| l.strip_prefix("ExecStart="))
                .any(|cmd| {
                    let exe = cmd.split_whitespace().next().unwrap_or_default();
                    sends(&format!("{cmd}\n"))
                        || ignition_file(ign, exe)
                            .is_some_and(|b| sends(&String::from_utf8_lossy(&b)))
                })
        })
        .map(|u| u["name"].as_str().unwrap())
        .collect()
}

#[test]
fn cluster_units_every_role_requests_all_five_milestones_best_effort() {
    let (_dir, site) = example_site();
    for (ctx, node, install) in ignitions(&site) {
        let name = &ctx.node.name;
        assert_eq!(
            units_sending(&install, "install-done"),
            ["pxebuild-install.service"],
            "{name}"
        );
        for (m, unit_name) in [
            ("first-boot", "pxebuild-first-boot.service"),
            ("sysexts-merged", "pxebuild-sysexts.service"),
            ("kubeadm-done", "pxebuild-kubeadm.service"),
            ("cilium-ready", "pxebuild-cilium-ready.service"),
        ] {
            assert_eq!(units_sending(&node, m), [unit_name], "{name} {m}");
        }
        // Best effort: a beacon never fails its caller.
        let beacon = text(&node, "/opt/pxebuild/bin/beacon");
        assert!(
            beacon.contains(&format!(
                "--max-time 5 -o /dev/null \"{}\"",
                ctx.node.beacon_url
            )),
            "{beacon}"
        );
        assert!(beacon.trim_end().ends_with("|| true"), "{beacon}");
        let script = text(&install, "/opt/pxebuild/install.sh");
        assert!(
            script.contains("-o /dev/null \"") && script.contains("\"/$1\" || true\n}"),
            "{script}"
        );
        // The installer waits for the network and retries until it succeeds.
        let installer = unit(&install, "pxebuild-install.service")["contents"]
            .as_str()
            .unwrap();
        for line in [
            "Restart=on-failure",
            "RestartSec=30",
            "StartLimitIntervalSec=0",
        ] {
            assert!(installer.lines().any(|l| l == line), "{line}: {installer}");
        }
        assert_eq!(
            unit(&install, "systemd-networkd-wait-online.service")["enabled"],
            true
        );
        // Waiting for Cilium never holds up the boot.
        let ready = unit(&node, "pxebuild-cilium-ready.service")["contents"]
            .as_str()
            .unwrap();
        assert!(ready.contains("Type=exec"), "{ready}");
        assert!(!ready.contains("Before="), "{ready}");
    }
}

#[test]
fn cluster_units_cilium_ready_waits_for_the_agent_links() {
    let (_dir, site) = example_site();
    let (ctx, bu) = render_all(&site).remove(4);
    let ign = node_ignition(&ctx, &bu);
    let sb = Sandbox::new();
    sb.apply_ignition_files(&ign);
    // cilium_host exists at once, cilium_wg0 (WireGuard) from the third look on.
    sb.stub(
        "ip",
        r#"n=$(( $(cat "$STATE/looks" 2>/dev/null || echo 0) + 1 )); echo "$n" > "$STATE/looks"
case "$*" in *cilium_wg0*) [ "$n" -ge 3 ] ;; esac"#,
    );
    sb.stub("sleep", "exit 0");
    write_exec(
        &sb.path("/opt/pxebuild/bin/beacon"),
        &format!("#!/bin/sh\necho \"$1\" >> {:?}\n", sb.state.join("beacons")),
    );
    std::fs::create_dir_all(sb.path("/var/lib/pxebuild")).unwrap();
    let out = sb.run(&sb.rewrite(&text(&ign, "/opt/pxebuild/bin/cilium-ready")));
    assert!(out.status.success(), "{}", out_text(&out));
    let calls = sb.calls();
    assert_eq!(
        calls.matches("ip link show cilium_wg0").count(),
        2,
        "{calls}"
    );
    assert_eq!(
        std::fs::read_to_string(sb.state.join("beacons")).unwrap(),
        "cilium-ready\n"
    );
    assert!(sb.path("/var/lib/pxebuild/cilium-ready").exists());
}

#[test]
fn cluster_units_cilium_ready_gives_up_after_its_bound_with_a_beacon() {
    let (_dir, site) = example_site();
    let (ctx, bu) = render_all(&site).remove(4);
    let ign = node_ignition(&ctx, &bu);
    let sb = Sandbox::new();
    sb.apply_ignition_files(&ign);
    sb.stub("ip", "exit 1");
    sb.stub("sleep", "exit 0");
    write_exec(
        &sb.path("/opt/pxebuild/bin/beacon"),
        &format!("#!/bin/sh\necho \"$*\" >> {:?}\n", sb.state.join("beacons")),
    );
    let script = text(&ign, "/opt/pxebuild/bin/cilium-ready");
    assert!(script.contains("$(seq 720)"), "two hours of 10 s looks");
    let out = sb.run(&sb.rewrite(&script.replace("$(seq 720)", "$(seq 3)")));
    assert!(out.status.success(), "never fails: {}", out_text(&out));
    assert_eq!(
        std::fs::read_to_string(sb.state.join("beacons")).unwrap(),
        "cilium-timeout cilium-agent\n"
    );
    assert!(!sb.path("/var/lib/pxebuild/cilium-ready").exists());
}

/// The first control plane's Cilium install: each wait ends in the beacon
/// `cilium-timeout` naming it and a failure the unit retries, without the
/// marker; a Cilium that comes up leaves the marker and no beacon.
#[test]
fn cluster_units_cilium_install_waits_are_bounded_and_beaconed() {
    let (_dir, site) = example_site();
    let (ctx, bu) = render_all(&site).remove(0);
    assert!(ctx.node.init);
    let ign = node_ignition(&ctx, &bu);
    let run = |kubectl: &str, cilium: Option<&str>, past: Option<usize>| {
        let sb = Sandbox::new();
        sb.apply_ignition_files(&ign);
        std::fs::write(sb.path("/etc/kubernetes/admin.conf"), "admin").unwrap();
        sb.stub("kubectl", kubectl);
        sb.stub("sleep", "exit 0");
        write_exec(
            &sb.path("/opt/pxebuild/bin/beacon"),
            &format!("#!/bin/sh\necho \"$*\" >> {:?}\n", sb.state.join("beacons")),
        );
        let mut script = sb.rewrite(&text(&ign, "/opt/pxebuild/bin/cilium-install"));
        match cilium {
            Some(body) => sb.stub("cilium", body),
            // No cilium sysext merged: not on PATH (whatever the host has).
            None => script = script.replace("command -v cilium ", "command -v cilium-unmerged "),
        }
        let bound = "deadline=$((SECONDS + 1800))";
        assert_eq!(script.matches(bound).count(), 2, "{script}");
        if let Some(n) = past {
            // The n-th wait's bound has passed as soon as it starts.
            let at = script.match_indices(bound).nth(n).unwrap().0 + bound.len();
            script.insert_str(at, "; SECONDS=1800");
        }
        let out = sb.run(&script);
        let beacons = std::fs::read_to_string(sb.state.join("beacons")).unwrap_or_default();
        let installed = sb.path("/var/lib/pxebuild/cilium-installed").exists();
        (out, beacons, installed)
    };
    let (out, beacons, installed) = run("exit 1", Some("exit 0"), Some(0));
    assert!(!out.status.success(), "{}", out_text(&out));
    assert_eq!(
        (beacons.as_str(), installed),
        ("cilium-timeout api-server\n", false)
    );
    let (out, beacons, installed) = run("exit 0", None, Some(1));
    assert!(!out.status.success(), "{}", out_text(&out));
    assert_eq!(
        (beacons.as_str(), installed),
        ("cilium-timeout cilium-sysext\n", false)
    );
    let (out, beacons, installed) = run("exit 0", Some("exit 0"), None);
    assert!(out.status.success(), "{}", out_text(&out));
    assert_eq!((beacons.as_str(), installed), ("", true));
    let (out, beacons, installed) = run(
        "exit 0",
        Some("case \"$1\" in status) exit 1 ;; esac\nexit 0"),
        None,
    );
    assert!(!out.status.success(), "{}", out_text(&out));
    assert_eq!(
        (beacons.as_str(), installed),
        ("cilium-timeout cilium-status\n", false)
    );
}

#[test]
fn cluster_units_run_once_conditions() {
    let (_dir, site) = example_site();
    for (ctx, node, _) in ignitions(&site) {
        for (unit_name, condition) in [
            (
                "pxebuild-first-boot.service",
                "ConditionPathExists=!/var/lib/pxebuild/first-boot",
            ),
            (
                "pxebuild-sysexts.service",
                "ConditionPathExists=!/var/lib/pxebuild/sysexts-merged",
            ),
            (
                "pxebuild-kubeadm.service",
                "ConditionPathExists=!/var/lib/pxebuild/kubeadm-done",
            ),
            (
                "pxebuild-cilium-ready.service",
                "ConditionPathExists=!/var/lib/pxebuild/cilium-ready",
            ),
        ] {
            let contents = unit(&node, unit_name)["contents"].as_str().unwrap();
            assert!(
                contents.contains(condition),
                "{}: {unit_name}\n{contents}",
                ctx.node.name
            );
        }
        let kubeadm = unit(&node, "pxebuild-kubeadm.service")["contents"]
            .as_str()
            .unwrap();
        assert!(kubeadm.contains("Restart=on-failure"), "{kubeadm}");
        // The marker the condition names is the script's last word.
        let script = text(&node, "/opt/pxebuild/bin/kubeadm-bootstrap");
        assert!(
            script.ends_with("touch \"$DONE\"\nsync\nbeacon kubeadm-done\n")
                && script.contains("\nDONE=/var/lib/pxebuild/kubeadm-done\n"),
            "{script}"
        );
        let cilium = units(&node)
            .iter()
            .find(|u| u["name"] == "pxebuild-cilium.service");
        assert_eq!(cilium.is_some(), ctx.node.init, "{}", ctx.node.name);
        if let Some(cilium) = cilium {
            let contents = cilium["contents"].as_str().unwrap();
            assert!(contents.contains("ConditionPathExists=!/var/lib/pxebuild/cilium-installed"));
            assert!(text(&node, "/opt/pxebuild/bin/cilium-install")
                .contains("touch /var/lib/pxebuild/cilium-installed"));
        }
        assert!(text(&node, "/opt/pxebuild/bin/cilium-ready")
            .contains("touch /var/lib/pxebuild/cilium-ready"));
    }
}

fn network_file(node: &Value) -> String {
    text(node, "/etc/systemd/network/00-pxebuild.network")
}

#[test]
fn cluster_units_static_network_file_per_node() {
    let (_dir, site) = example_site();
    for (ctx, node, _) in ignitions(&site) {
        let expected = format!(
            "[Match]\nName=site0\n[Network]\nAddress={}/24\nGateway=10.20.0.1\nDNS=10.20.0.1\n",
            ctx.node.ip
        );
        assert_eq!(network_file(&node), expected, "{}", ctx.node.name);
    }
}

/// The site NIC is named by its MAC, and that name is what networkd
/// configures and what kube-vip announces the VIP on: on a machine with
/// several NICs, the default route's interface may be another one.
#[test]
fn cluster_units_site_nic_is_named_by_mac_for_networkd_and_kube_vip() {
    let (_dir, site) = example_site();
    for (ctx, node, _) in ignitions(&site) {
        let link = text(&node, "/etc/systemd/network/00-pxebuild.link");
        assert_eq!(
            link,
            format!("[Match]\nMACAddress={}\n[Link]\nName=site0\n", ctx.node.mac),
            "{}",
            ctx.node.name
        );
        assert!(network_file(&node).starts_with("[Match]\nName=site0\n"));
        let Some(vip) = ctx.files.kube_vip.as_deref() else {
            assert!(ctx.node.worker, "{}", ctx.node.name);
            continue;
        };
        let manifest: Value = serde_norway::from_str(vip).unwrap();
        let env = manifest["spec"]["containers"][0]["env"].as_array().unwrap();
        let interface = env.iter().find(|e| e["name"] == "vip_interface");
        assert_eq!(
            interface.map(|e| &e["value"]),
            Some(&Value::from("site0")),
            "{}: {vip}",
            ctx.node.name
        );
    }
}

#[test]
fn cluster_units_dhcp_network_file() {
    let (_dir, site) = edited_site(&[("addressing = \"static\"", "addressing = \"dhcp\"")]);
    for (ctx, node, _) in ignitions(&site) {
        let expected = "[Match]\nName=site0\n[Network]\nDHCP=ipv4\n";
        assert_eq!(network_file(&node), expected, "{}", ctx.node.name);
    }
}

#[test]
fn cluster_units_time_servers_go_to_the_network_file() {
    let ntp = "ntp = [\"10.20.0.1\", \"ntp.example.com\"]\naddressing =";
    for addressing in ["static", "dhcp"] {
        let (_dir, site) = edited_site(&[
            (
                "addressing = \"static\"",
                &format!("addressing = \"{addressing}\""),
            ),
            ("addressing =", ntp),
        ]);
        for (ctx, node, _) in ignitions(&site) {
            let file = network_file(&node);
            assert!(
                file.ends_with("\nNTP=10.20.0.1\nNTP=ntp.example.com\n"),
                "{addressing} {}: {file}",
                ctx.node.name
            );
        }
    }
}

#[test]
fn cluster_units_core_gets_the_site_ssh_keys_in_both_configs() {
    let (_dir, site) = edited_site(&[(
        "authorized_keys = [\n",
        "authorized_keys = [\n  \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAISecondKeyForTheTest second@example\",\n",
    )]);
    let keys = &site.file.ssh.authorized_keys;
    assert_eq!(keys.len(), 2);
    for (ctx, node, install) in ignitions(&site) {
        for ign in [&node, &install] {
            let users = ign["passwd"]["users"].as_array().unwrap();
            let core = users.iter().find(|u| u["name"] == "core").unwrap();
            let got: Vec<&str> = core["sshAuthorizedKeys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| k.as_str().unwrap())
                .collect();
            assert_eq!(
                got,
                keys.iter().map(String::as_str).collect::<Vec<_>>(),
                "{}",
                ctx.node.name
            );
        }
    }
}

fn link<'a>(ign: &'a Value, path: &str) -> Option<&'a Value> {
    ign["storage"]["links"]
        .as_array()?
        .iter()
        .find(|l| l["path"] == path)
}

#[test]
fn cluster_units_update_settings_follow_the_site() {
    // Example: updates disabled, kured coordinates reboots.
    let (_dir, site) = example_site();
    for (_, node, _) in ignitions(&site) {
        assert_eq!(
            text(&node, "/etc/flatcar/update.conf"),
            "GROUP=stable\nSERVER=disabled\nREBOOT_STRATEGY=off\n"
        );
        let mask =
            link(&node, "/etc/systemd/system/locksmithd.service").expect("locksmithd masked");
        assert_eq!(mask["target"], "/dev/null");
    }
    let (_dir, site) = edited_site(&[
        ("flatcar = \"disabled\"", "flatcar = \"enabled\""),
        (
            "reboot_manager = \"kured\"",
            "reboot_manager = \"locksmithd\"",
        ),
    ]);
    for (_, node, _) in ignitions(&site) {
        assert_eq!(
            text(&node, "/etc/flatcar/update.conf"),
            "GROUP=stable\nREBOOT_STRATEGY=reboot\n"
        );
        assert!(link(&node, "/etc/systemd/system/locksmithd.service").is_none());
    }
}

#[test]
fn cluster_units_sysext_links_and_containerd_masks() {
    let (_dir, site) = example_site();
    for (ctx, node, _) in ignitions(&site) {
        let names: Vec<&str> = ctx.sysexts.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["kubernetes", "cilium"]);
        check_sysext_links(&ctx, &node);
        for masked in [
            "/etc/extensions/containerd-flatcar.raw",
            "/etc/extensions/docker-flatcar.raw",
        ] {
            assert!(link(&node, masked).is_none(), "built-in containerd stays");
        }
    }
    let (_dir, site) = edited_site(&[(
        "cilium = \"v0.18.2\"\n",
        "cilium = \"v0.18.2\"\ncontainerd = \"v2.1.3\"\n",
    )]);
    for (ctx, node, _) in ignitions(&site) {
        let names: Vec<&str> = ctx.sysexts.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["kubernetes", "cilium", "containerd"]);
        check_sysext_links(&ctx, &node);
        for masked in [
            "/etc/extensions/containerd-flatcar.raw",
            "/etc/extensions/docker-flatcar.raw",
        ] {
            let l = link(&node, masked).unwrap_or_else(|| panic!("{masked} masked"));
            assert_eq!(l["target"], "/dev/null");
        }
    }
}

/// Each sysext: fetched with its sha512, linked as /etc/extensions/<name>.raw.
fn check_sysext_links(ctx: &NodeContext, node: &Value) {
    let files = node["storage"]["files"].as_array().unwrap();
    for s in &ctx.sysexts {
        let l = link(node, &format!("/etc/extensions/{}.raw", s.name)).unwrap();
        assert_eq!(l["target"], s.path.as_str());
        assert_ne!(l["hard"], true);
        let f = files.iter().find(|f| f["path"] == s.path.as_str()).unwrap();
        assert_eq!(f["contents"]["source"], s.url.as_str());
        assert_eq!(
            f["contents"]["verification"]["hash"],
            format!("sha512-{}", s.sha512)
        );
    }
}

/// Every unit and drop-in of every config, as systemd itself reads them:
/// `systemd-analyze verify` in a root holding the config's files (so each
/// ExecStart script exists) and this host's own system units (the targets
/// and services the units order themselves against). Any message is a
/// defect: an unknown key, a bad value, a missing command.
#[test]
fn cluster_units_pass_systemd_analyze_verify() {
    let (_dir, site) = example_site();
    for (ctx, node, install) in ignitions(&site) {
        for (doc, ign) in [("node", &node), ("install", &install)] {
            let sb = Sandbox::new();
            sb.apply_ignition_files(ign);
            let units = write_units(&sb, ign);
            let out = std::process::Command::new("systemd-analyze")
                .arg(format!("--root={}", sb.root.display()))
                .args(["--man=no", "verify"])
                .args(&units)
                .output()
                .expect("systemd-analyze (the systemd package) is installed");
            let said = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success() && said.trim().is_empty(),
                "{} {doc}.ign:\n{said}",
                ctx.node.name
            );
        }
    }
}

/// Writes the units of `ign` (with contents) and their drop-ins under the
/// sandbox's /etc/systemd/system, copies the host's system units beside
/// them, and the OS commands they run (`/usr/bin/test`, `touch`: Flatcar's
/// coreutils, this host's here), and returns the unit files to verify.
fn write_units(sb: &Sandbox, ign: &Value) -> Vec<std::path::PathBuf> {
    let system = sb.path("/etc/systemd/system");
    std::fs::create_dir_all(&system).unwrap();
    copy_host_units(&sb.path("/"));
    let mut verify = Vec::new();
    for unit in units(ign) {
        let name = unit["name"].as_str().unwrap();
        if let Some(contents) = unit["contents"].as_str() {
            let path = system.join(name);
            std::fs::write(&path, contents).unwrap();
            verify.push(path);
            for command in os_commands(contents) {
                let dest = sb.path(command);
                std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
                std::fs::copy(command, dest).unwrap();
            }
        }
        for dropin in unit["dropins"].as_array().into_iter().flatten() {
            let dir = system.join(format!("{name}.d"));
            std::fs::create_dir_all(&dir).unwrap();
            let file = dir.join(dropin["name"].as_str().unwrap());
            std::fs::write(file, dropin["contents"].as_str().unwrap_or_default()).unwrap();
        }
    }
    verify
}

/// The commands under /usr that `Exec…=` lines of `unit` run.
fn os_commands(unit: &str) -> Vec<&str> {
    unit.lines()
        .filter(|l| l.starts_with("Exec"))
        .filter_map(|l| l.split_once('=').map(|(_, v)| v))
        .filter_map(|v| {
            v.trim_start_matches(['-', '@', ':', '+', '!'])
                .split_whitespace()
                .next()
        })
        .filter(|c| c.starts_with("/usr/"))
        .collect()
}

/// The milestones a script or unit text sends: the word after `beacon` or
/// `beacon_with` (a shell function) or `/opt/pxebuild/bin/beacon`, outside
/// comments.
fn milestones_in(text: &str, into: &mut std::collections::BTreeSet<String>) {
    for line in text.lines().filter(|l| !l.trim_start().starts_with('#')) {
        let words: Vec<&str> = line.split_whitespace().collect();
        for pair in words.windows(2) {
            let caller =
                pair[0] == "beacon" || pair[0] == "beacon_with" || pair[0].ends_with("/bin/beacon");
            let word = pair[1].trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
            let milestone = !word.is_empty()
                && word.starts_with(|c: char| c.is_ascii_lowercase())
                && word
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if caller && milestone {
                into.insert(word.to_string());
            }
        }
    }
}

/// docs/cluster.md's milestone table is exactly what the rendered configs
/// send, over every role and with the containerd sysext both ways.
#[test]
fn cluster_units_the_docs_milestone_table_is_what_the_configs_send() {
    let mut sent = std::collections::BTreeSet::new();
    let (_dir, site) = example_site();
    for (_, node, install) in ignitions(&site) {
        for ign in [&node, &install] {
            for f in ign["storage"]["files"].as_array().unwrap() {
                let path = f["path"].as_str().unwrap();
                if let Some(bytes) = ignition_file(ign, path) {
                    milestones_in(&String::from_utf8_lossy(&bytes), &mut sent);
                }
            }
            for u in units(ign) {
                milestones_in(u["contents"].as_str().unwrap_or_default(), &mut sent);
            }
        }
    }
    let docs = std::fs::read_to_string(repo().join("docs/cluster.md")).unwrap();
    let table = &docs[docs.find("| milestone | sent by |").unwrap()..];
    let table = &table[..table.find("\n\n").unwrap()];
    let documented: std::collections::BTreeSet<String> = table
        .lines()
        .skip(2)
        .filter_map(|l| l.strip_prefix("| `")?.split('`').next().map(str::to_string))
        .collect();
    assert_eq!(documented, sent, "docs/cluster.md's milestone table");
}

/// The docs name the containerd sysext only with its condition, and cite
/// only tests that exist.
#[test]
fn cluster_units_docs_name_what_the_build_makes() {
    let mut docs = vec![("README.md".to_string(), repo().join("README.md"))];
    for entry in std::fs::read_dir(repo().join("docs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "md") {
            docs.push((path.display().to_string(), path));
        }
    }
    for (name, path) in docs {
        let text = std::fs::read_to_string(&path).unwrap();
        for line in text.lines() {
            if line.contains("kubernetes, cilium") && line.contains("containerd") {
                assert!(
                    line.contains("[sysext] containerd") || line.contains("containerd if set"),
                    "{name}: the containerd sysext is there only when [sysext] containerd is set: {line}"
                );
            }
            for cited in line.split('`').filter(|w| w.starts_with("tests/it/")) {
                let file = cited.split([' ', ',', ')']).next().unwrap();
                assert!(repo().join(file).exists(), "{name} cites {file}");
            }
        }
    }
}
