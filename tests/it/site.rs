//! `pxebuild check` and the site validation every command runs first, driven
//! through the real binary: the example site checks clean, every invalid site
//! in `tests/fixtures/sites/` fails with its exact diagnostics and exit code 2,
//! and a failed `build` leaves an existing dist/ untouched.
use crate::harness::Test;

const SUMMARY: &str = "ok: site rack1: 5 nodes (3 control-plane, 2 worker), \
                       Kubernetes v1.35.9, Flatcar stable 4593.2.5\n";
const PLACEHOLDER: &str = "site.toml:46:3: warning: ssh.authorized_keys[0]: \
                           is the example placeholder; put your own public key here (a line of ~/.ssh/id_ed25519.pub), or nobody can log in as core\n";

/// Invalid sites: fixture name (tests/fixtures/sites/<name>.toml) and the
/// exact diagnostics, in file order.
const INVALID: &[(&str, &[&str])] = &[
    (
        "bad_cidrs",
        &[
            "site.toml:8:12: error: cluster.pod_cidr: \"10.244.0.0/33\" is not an IPv4 CIDR (want a.b.c.d/len)",
            "site.toml:9:16: error: cluster.service_cidr: 10.0.0.0/8 overlaps network.subnet 10.20.0.0/24; routes would be ambiguous",
        ],
    ),
    (
        "bad_enums",
        &[
            "site.toml:18:14: error: network.addressing: \"manual\" is not one of \"static\", \"dhcp\"",
            "site.toml:28:11: error: flatcar.channel: \"edge\" is not one of \"stable\", \"beta\", \"alpha\", \"lts\"",
            "site.toml:30:8: error: flatcar.arch: \"x86_64\" is not one of \"amd64\"",
            "site.toml:49:18: error: updates.reboot_manager: \"reboot\" is not one of \"kured\", \"locksmithd\"",
            "site.toml:63:12: error: node[0] (cp1).firmware: \"efi\" is not one of \"bios\", \"uefi\"",
        ],
    ),
    (
        "bad_image_mode",
        &[
            "site.toml:53:8: error: images.mode: \"mirror\" is not one of \"pull\", \"serve\"",
        ],
    ),
    (
        "bad_images",
        &[
            "site.toml:56:3: error: images.extra[1]: \"ghcr.io/example/App:1.2\" has repository \"example/App\": each '/'-separated part is lower-case letters and digits, joined by '.', '_' or '-'",
            "site.toml:57:3: warning: images.extra[2]: \"docker.io/library/nginx:1.27\" is the same image as images.extra[0] (docker.io/library/nginx:1.27); list it once",
            "site.toml:58:3: error: images.extra[3]: \"ghcr.io/example/api@sha256:12\" has digest \"sha256:12\": expected sha256: and 64 hexadecimal digits",
            "site.toml:60:19: error: images.registry_mirror: \"mirror.example.com:5000\" is not an http:// or https:// URL of a registry (want e.g. \"http://mirror.example.com:5000\", which serves registry.k8s.io/pause as /v2/registry.k8s.io/pause/…)",
        ],
    ),
    (
        "bad_loaders",
        &[
            "site.toml:24:20: error: boot_server.loaders[1]: \"pxe\" is not one of \"bios\", \"uefi\", \"ipxe\"",
            "site.toml:71:12: error: node[1] (cp2).firmware: \"uefi\" but boot_server.loaders has no \"uefi\" loader; this node could not PXE boot",
            "site.toml:87:12: error: node[3] (worker1).firmware: \"uefi\" but boot_server.loaders has no \"uefi\" loader; this node could not PXE boot",
        ],
    ),
    (
        "bad_mac",
        &[
            "site.toml:75:7: error: node[2] (cp3).mac: \"52:54:00:zz:00:13\" is not a MAC address (want aa:bb:cc:dd:ee:ff)",
        ],
    ),
    (
        "bad_node_name",
        &[
            "site.toml:82:8: error: node[3] (Worker_1).name: \"Worker_1\" is not a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit)",
        ],
    ),
    (
        "bad_ssh_key",
        &[
            "site.toml:44:3: error: ssh.authorized_keys[0]: is not an OpenSSH public key (want \"ssh-ed25519 AAAA... comment\")",
        ],
    ),
    (
        "duplicate_ip",
        &[
            "site.toml:93:6: error: node[4] (worker2).ip: \"10.20.0.21\" is already used by node[3] (worker1)",
        ],
    ),
    (
        "duplicate_mac",
        &[
            "site.toml:92:7: error: node[4] (worker2).mac: \"52-54-00-20-00-21\" is already used by node[3] (worker1)",
        ],
    ),
    (
        "duplicate_name",
        &[
            "site.toml:74:8: error: node[2] (cp2).name: \"cp2\" is already used by node[1] (cp2)",
        ],
    ),
    (
        "endpoint_is_node_ip",
        &[
            "site.toml:6:12: error: cluster.endpoint: 10.20.0.11 is already the IP of node[0] (cp1); the endpoint needs an address of its own",
        ],
    ),
    (
        "endpoint_outside_subnet",
        &[
            "site.toml:6:12: error: cluster.endpoint: 10.30.0.10 is outside network.subnet 10.20.0.0/24; with endpoint_mode = \"kube-vip\" the VIP must be a free address of the node subnet",
        ],
    ),
    (
        "even_control_planes",
        &[
            "site.toml:57:1: error: node: 4 control-plane nodes (cp1, cp2, cp3, worker1) is an even number: etcd needs 3 of 4 members for quorum, so the last one adds no fault tolerance and an even split stops the cluster; use 3 or 5",
        ],
    ),
    (
        "flatcar_latest",
        &[
            "site.toml:29:11: error: flatcar.version: \"latest\" is not a Flatcar release (want NNNN.N.N, e.g. \"4593.2.5\")",
        ],
    ),
    (
        "gateway_outside_subnet",
        &[
            "site.toml:16:11: error: network.gateway: 10.21.0.1 is outside network.subnet 10.20.0.0/24",
        ],
    ),
    (
        "ip_outside_subnet",
        &[
            "site.toml:84:6: error: node[3] (worker1).ip: 10.20.1.21 is outside network.subnet 10.20.0.0/24",
        ],
    ),
    (
        "many_problems",
        &[
            "site.toml:11:23: error: cluster.bootstrap_token_ttl: \"1d\" is not a duration (want e.g. \"24h\", \"90m\", \"1h30m\")",
            "site.toml:29:11: error: flatcar.version: \"4593.2\" is not a Flatcar release (want NNNN.N.N, e.g. \"4593.2.5\")",
            "site.toml:68:6: error: node[1] (cp2).ip: \"10.20.0.11\" is already used by node[0] (cp1)",
            "site.toml:75:7: error: node[2] (cp3).mac: \"52:54:00:20:00\" is not a MAC address (want aa:bb:cc:dd:ee:ff)",
            "site.toml:86:8: warning: node[3] (worker1).disk: \"/dev/sdb\" is a kernel device name, which can change between boots; use a stable /dev/disk/by-id/... path",
            "site.toml:91:8: error: node[4] (worker2.).name: \"worker2.\" is not a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit)",
        ],
    ),
    (
        "missing_field",
        &[
            "site.toml:65:1: error: node[1] (cp2): missing field `mac`",
        ],
    ),
    (
        "no_control_plane",
        &[
            "site.toml:57:1: error: node: no node has role = \"control-plane\"; the cluster needs 1, 3 or 5 to run etcd and the API server",
        ],
    ),
    (
        "syntax_error",
        &[
            "site.toml:4:14: error: invalid basic string, expected `\"`",
        ],
    ),
    (
        "sysext_mismatch",
        &[
            "site.toml:33:14: error: sysext.kubernetes: \"v1.32.6\" does not match cluster.kubernetes_version \"v1.35.9\"; kubeadm and the kubelet must run the release the cluster is configured for",
        ],
    ),
    (
        "unknown_key",
        &[
            "site.toml:10:1: error: cluster.dns_domian: unknown key `dns_domian`; did you mean `dns_domain`?",
        ],
    ),
    (
        "unknown_keys_and_types",
        &[
            "site.toml:10:1: error: cluster.dns_domian: unknown key `dns_domian`; did you mean `dns_domain`?",
            "site.toml:23:13: error: boot_server.tftp_port: expected a port number, 1-65535, found the string \"69\" (write numbers without quotes)",
            "site.toml:47:2: error: update: unknown key `update`; did you mean `updates`?",
            "site.toml:71:1: error: node[1] (cp2).firmwre: unknown key `firmwre`; did you mean `firmware`?",
        ],
    ),
    (
        "unknown_role",
        &[
            "site.toml:85:8: error: node[3] (worker1).role: \"master\" is not a role (want \"control-plane\" or \"worker\")",
        ],
    ),
    (
        "wrong_type",
        &[
            "site.toml:22:13: error: boot_server.http_port: expected a port number, 1-65535, found the string \"8080\" (write numbers without quotes)",
        ],
    ),
];

/// The stderr of a run that stopped on an invalid site: a count, then each line.
fn expected_stderr(lines: &[&str]) -> String {
    let errors = lines.iter().filter(|l| l.contains(": error: ")).count();
    let warnings = lines.len() - errors;
    let plural = |n: usize, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    let mut counts = plural(errors, "error");
    if warnings > 0 {
        counts = format!("{counts}, {}", plural(warnings, "warning"));
    }
    format!(
        "error: site.toml is not valid ({counts}):\n{}\n",
        lines.join("\n")
    )
}

/// A temp dir with the fixture as site.toml and an existing dist/ holding a marker.
fn with_existing_dist(fixture: &str) -> Test {
    Test::new()
        .site_fixture(&format!("{fixture}.toml"))
        .file("dist/marker", "published by an earlier build\n")
}

#[test]
fn example_site_checks_clean() {
    Test::new()
        .example_site()
        .args(["check"])
        .run()
        .success()
        .stdout_is(SUMMARY)
        .stderr_is(PLACEHOLDER);
}

#[test]
fn quiet_check_prints_only_the_warnings() {
    Test::new()
        .example_site()
        .args(["-q", "check"])
        .run()
        .success()
        .stdout_is("")
        .stderr_is(PLACEHOLDER);
}

#[test]
fn the_site_file_can_come_from_pxebuild_site() {
    Test::new()
        .args(["check"])
        .env("PXEBUILD_SITE", "elsewhere.toml")
        .run()
        .code(2)
        .stderr_contains("error: reading site file elsewhere.toml:");
}

#[test]
fn check_as_json_holds_the_summary_or_every_problem() {
    let ok = Test::new()
        .example_site()
        .args(["-q", "check", "--format", "json"])
        .run();
    ok.success().stderr_is("");
    let doc: serde_json::Value = serde_json::from_str(&ok.stdout).unwrap();
    assert_eq!(doc["ok"], true, "{doc}");
    assert_eq!(doc["site"]["name"], "rack1", "{doc}");
    assert_eq!(doc["site"]["nodes"], 5, "{doc}");
    assert_eq!(doc["warnings"], 1, "{doc}");
    assert_eq!(doc["diagnostics"][0]["path"], "ssh.authorized_keys[0]");
    assert_eq!(doc["diagnostics"][0]["line"], 46);

    let bad = Test::new()
        .site_fixture("bad_mac.toml")
        .args(["check", "--format", "json"])
        .run();
    bad.code(2);
    let doc: serde_json::Value = serde_json::from_str(&bad.stdout).unwrap();
    assert_eq!(doc["ok"], false, "{doc}");
    assert!(doc["site"].is_null(), "{doc}");
    assert_eq!(doc["errors"], 1, "{doc}");
    let d = &doc["diagnostics"][0];
    assert_eq!(d["severity"], "error", "{doc}");
    assert_eq!(d["path"], "node[2] (cp3).mac", "{doc}");
    assert_eq!(
        (d["line"].as_u64(), d["column"].as_u64()),
        (Some(75), Some(7))
    );

    let strict = Test::new()
        .example_site()
        .args(["check", "--strict", "--format", "json"])
        .run();
    strict.code(2);
    let doc: serde_json::Value = serde_json::from_str(&strict.stdout).unwrap();
    assert_eq!(doc["ok"], false, "{doc}");
}

#[test]
fn strict_check_fails_on_the_placeholder_key() {
    Test::new()
        .example_site()
        .args(["check", "--strict"])
        .run()
        .code(2)
        .stdout_is("")
        .stderr_is(&format!(
            "{PLACEHOLDER}error: site.toml: 1 warning, and --strict makes warnings fatal\n"
        ));
}

#[test]
fn invalid_corpus_has_at_least_fifteen_cases() {
    assert!(INVALID.len() >= 15);
    let dir = crate::harness::repo_root().join("tests/fixtures/sites");
    let on_disk = std::fs::read_dir(&dir).unwrap().count();
    let warn_only = WARNINGS.len();
    assert_eq!(
        on_disk,
        INVALID.len() + warn_only,
        "every fixture has a case"
    );
}

#[test]
fn invalid_sites_fail_check_with_exact_diagnostics() {
    for (fixture, lines) in INVALID {
        eprintln!("case {fixture}");
        Test::new()
            .site_fixture(&format!("{fixture}.toml"))
            .args(["check"])
            .run()
            .code(2)
            .stdout_is("")
            .stderr_is(&expected_stderr(lines));
    }
}

#[test]
fn invalid_sites_fail_build_before_touching_dist() {
    for (fixture, lines) in INVALID {
        eprintln!("case {fixture}");
        let test = with_existing_dist(fixture);
        let before = test.snapshot();
        let out_dir = test.path().join("dist");
        let out = test.run_with(["build".as_ref(), "--out".as_ref(), out_dir.as_os_str()]);
        out.code(2).stderr_is(&expected_stderr(lines));
        assert_eq!(test.snapshot(), before, "{fixture}: the temp dir changed");
        assert_eq!(out.read("dist/marker"), "published by an earlier build\n");
    }
}

/// Sites that are valid but carry one of the field's known traps.
const WARNINGS: &[(&str, &str)] = &[
    (
        "warn_kernel_disk",
        "site.toml:62:8: warning: node[0] (cp1).disk: \"/dev/sda\" is a kernel device name, \
         which can change between boots; use a stable /dev/disk/by-id/... path",
    ),
    (
        "warn_mtu",
        "site.toml:42:7: warning: cilium.mtu: 1300 leaves pods at most 1220 once Cilium takes \
         WireGuard's 80 bytes (less in tunnel mode), below the 1280 IPv6 needs; use at least \
         1360, or omit mtu",
    ),
    (
        "warn_token_ttl",
        "site.toml:11:23: warning: cluster.bootstrap_token_ttl: 2h is shorter than \
         cluster.bring_up_window 4h; nodes that boot after the token expires cannot join \
         (raise it to at least 4h)",
    ),
];

#[test]
fn warnings_are_printed_but_not_fatal() {
    for (fixture, warning) in WARNINGS {
        Test::new()
            .site_fixture(&format!("{fixture}.toml"))
            .args(["check"])
            .run()
            .success()
            .stdout_is(SUMMARY)
            .stderr_is(&format!("{warning}\n"));
    }
}

#[test]
fn warnings_are_fatal_under_strict() {
    for (fixture, warning) in WARNINGS {
        Test::new()
            .site_fixture(&format!("{fixture}.toml"))
            .args(["check", "--strict"])
            .run()
            .code(2)
            .stderr_is(&format!(
                "{warning}\nerror: site.toml: 1 warning, and --strict makes warnings fatal\n"
            ));
    }
}

#[test]
fn strict_build_with_warnings_leaves_dist_untouched() {
    let test = with_existing_dist("warn_kernel_disk");
    let before = test.snapshot();
    let out_dir = test.path().join("dist");
    test.run_with([
        "build".as_ref(),
        "--strict".as_ref(),
        "--out".as_ref(),
        out_dir.as_os_str(),
    ])
    .code(2)
    .stderr_contains("warning: node[0] (cp1).disk: \"/dev/sda\" is a kernel device name")
    .stderr_contains("--strict makes warnings fatal");
    assert_eq!(test.snapshot(), before);
}

#[test]
fn diagnostics_name_the_site_file_as_given() {
    let text = crate::harness::fixture("sites/bad_mac.toml");
    Test::new()
        .file("conf/rack1.toml", &text)
        .args(["--site", "conf/rack1.toml", "check"])
        .run()
        .code(2)
        .stderr_contains("conf/rack1.toml:75:7: error: node[2] (cp3).mac:");
}

#[test]
fn a_missing_site_file_is_bad_input() {
    Test::new()
        .args(["check"])
        .run()
        .code(2)
        .stderr_contains("error: reading site file site.toml:");
}

#[test]
fn edited_example_reports_the_edit() {
    Test::new()
        .example_site()
        .edit_site("role = \"worker\"", "role = \"control-plane\"")
        .args(["check"])
        .run()
        .code(2)
        .stderr_contains(
            "site.toml:66:1: error: node: 4 control-plane nodes (cp1, cp2, cp3, worker1) is an even number",
        );
}

/// `pxebuild check` of the example site with `edits` applied: exit 2 and
/// exactly `lines` (the example's placeholder warning included, in place).
fn check_edited_fails_with(edits: &[(&str, &str)], lines: &[&str]) {
    let mut test = Test::new().example_site();
    for (from, to) in edits {
        test = test.edit_site(from, to);
    }
    test.args(["check"])
        .run()
        .code(2)
        .stdout_is("")
        .stderr_is(&expected_stderr(lines));
}

#[test]
fn macs_in_any_spelling_build_in_colon_form_everywhere() {
    let (dir, mirror) = crate::cluster_build::prepared();
    let root = dir.path();
    let site = root.join("site.toml");
    let text = std::fs::read_to_string(&site)
        .unwrap()
        .replacen("\"52:54:00:20:00:11\"", "\"52-54-00-AB-00-11\"", 1)
        .replacen("\"52:54:00:20:00:12\"", "\"525400AB0012\"", 1)
        .replacen("\"52:54:00:20:00:13\"", "\"52:54:00:Ab:00:13\"", 1);
    std::fs::write(&site, text).unwrap();
    let out = crate::cluster_build::build(root, &root.join("dist"), &mirror);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let read = |rel: &str| std::fs::read_to_string(root.join("dist").join(rel)).unwrap();
    let dhcpd = read("http/dhcp/dhcpd.conf");
    let kea = read("http/dhcp/kea-dhcp4.json");
    let dnsmasq = read("http/dhcp/dnsmasq.conf");
    let manifest = read("manifest.json");
    for mac in [
        "52:54:00:ab:00:11",
        "52:54:00:ab:00:12",
        "52:54:00:ab:00:13",
    ] {
        assert!(
            dhcpd.contains(&format!("hardware ethernet {mac};")),
            "{dhcpd}"
        );
        assert!(kea.contains(&format!("\"hw-address\": \"{mac}\"")), "{kea}");
        assert!(dnsmasq.contains(&format!("dhcp-host={mac},")), "{dnsmasq}");
        assert!(
            manifest.contains(&format!("\"mac\":\"{mac}\""))
                || manifest.contains(&format!("\"mac\": \"{mac}\"")),
            "{manifest}"
        );
        let pxelinux = format!("tftp/pxelinux.cfg/01-{}", mac.replace(':', "-"));
        let efi = format!("tftp/efi64/pxelinux.cfg/01-{}", mac.replace(':', "-"));
        assert!(
            root.join("dist").join(&pxelinux).exists() || root.join("dist").join(&efi).exists(),
            "no boot config for {mac}"
        );
    }
    for text in [&dhcpd, &kea, &dnsmasq, &manifest] {
        assert!(!text.contains("52-54-00-AB") && !text.contains("525400AB0012"));
        assert!(!text.to_ascii_lowercase().contains("525400ab0012"));
    }
    // Dashes only where pxelinux wants them: its per-MAC file names.
    assert!(!dhcpd.contains("52-54") && !kea.contains("52-54") && !dnsmasq.contains("52-54"));
}

#[test]
fn a_misspelt_required_key_is_one_error_with_a_suggestion() {
    check_edited_fails_with(
        &[("kubernetes_version =", "kubernetes_verison =")],
        &[
            "site.toml:7:1: error: cluster.kubernetes_verison: unknown key `kubernetes_verison`; did you mean `kubernetes_version`?",
            "site.toml:46:3: warning: ssh.authorized_keys[0]: is the example placeholder; put your own public key here (a line of ~/.ssh/id_ed25519.pub), or nobody can log in as core",
        ],
    );
}

#[test]
fn reserved_macs_and_addresses_fail_check() {
    check_edited_fails_with(
        &[
            ("gateway = \"10.20.0.1\"", "gateway = \"10.20.0.0\""),
            ("dns = [\"10.20.0.1\"]", "dns = [\"0.0.0.0\", \"255.255.255.255\", \"224.0.0.1\"]"),
            ("address = \"10.20.0.2\"", "address = \"10.20.0.255\""),
            ("\"52:54:00:20:00:11\"", "\"00:00:00:00:00:00\""),
            ("\"52:54:00:20:00:12\"", "\"FF-FF-FF-FF-FF-FF\""),
        ],
        &[
            "site.toml:18:11: error: network.gateway: 10.20.0.0 is the network or broadcast address of 10.20.0.0/24",
            "site.toml:19:8: error: network.dns[0]: 0.0.0.0 is the unspecified address, not a server's address",
            "site.toml:19:19: error: network.dns[1]: 255.255.255.255 is the limited broadcast address, not a server's address",
            "site.toml:19:38: error: network.dns[2]: 224.0.0.1 is a multicast address, not a server's address",
            "site.toml:23:11: error: boot_server.address: 10.20.0.255 is the network or broadcast address of 10.20.0.0/24",
            "site.toml:46:3: warning: ssh.authorized_keys[0]: is the example placeholder; put your own public key here (a line of ~/.ssh/id_ed25519.pub), or nobody can log in as core",
            "site.toml:68:7: error: node[0] (cp1).mac: \"00:00:00:00:00:00\" is the all-zero address, which no NIC has (an unset or blanked value?)",
            "site.toml:76:7: error: node[1] (cp2).mac: \"FF-FF-FF-FF-FF-FF\" is the broadcast address; no NIC boots with it",
        ],
    );
}

#[test]
fn malformed_versions_and_pod_mtu_fail_check() {
    check_edited_fails_with(
        &[
            ("kubernetes_version = \"v1.35.9\"", "kubernetes_version = \"v01.033.2\""),
            ("kubernetes = \"v1.35.9\"", "kubernetes = \"v01.033.2\""),
            ("version = \"4593.2.5\"", "version = \"4593.2.99999999999999999999\""),
            ("cilium = \"v0.18.2\"", "cilium = \"v0.18.2\"\ncontainerd = \"v2.01.3\""),
            ("link_mtu = 1500", "link_mtu = 1500\nmtu = 0"),
        ],
        &[
            "site.toml:7:22: error: cluster.kubernetes_version: \"v01.033.2\" is not a Kubernetes release (want e.g. \"v1.33.2\"): \"01\" has a leading zero",
            "site.toml:31:11: error: flatcar.version: \"4593.2.99999999999999999999\" is not a Flatcar release (want NNNN.N.N, e.g. \"4593.2.5\"): 99999999999999999999 is larger than 4294967295",
            "site.toml:37:14: error: sysext.containerd: \"v2.01.3\" is not a release version (want e.g. \"1.7.27\"): \"01\" has a leading zero",
            "site.toml:44:7: error: cilium.mtu: 0 is below 1280, the smallest MTU IPv6 allows; use at least 1280, or omit mtu to let Cilium derive it",
            "site.toml:48:3: warning: ssh.authorized_keys[0]: is the example placeholder; put your own public key here (a line of ~/.ssh/id_ed25519.pub), or nobody can log in as core",
        ],
    );
}

#[test]
fn unsafe_disks_and_ssh_keys_fail_check_and_build_before_any_work() {
    let edits = [
        (
            "disk = \"/dev/disk/by-id/virtio-cp1-root\"",
            "disk = \"/dev/disk/by-id/x$(reboot -f)`id`\"",
        ),
        (
            "disk = \"/dev/disk/by-id/virtio-cp2-root\"",
            "disk = \"/dev/../etc/passwd\"",
        ),
        (
            "\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIReplaceWithYourOwnPublicKeyBeforeBuilding operator@example\"",
            "\"ssh-ed25519 AAAAC3Nz ops@example\\ncommand=\\\"reboot\\\" ssh-ed25519 AAAAC3Nz x\"",
        ),
    ];
    let lines = [
        "site.toml:46:3: error: ssh.authorized_keys[0]: contains the control character \\n; a public key is one line of printable text",
        "site.toml:71:8: error: node[0] (cp1).disk: \"/dev/disk/by-id/x$(reboot -f)`id`\" has '$', which no device path needs (allowed: letters, digits and . _ - : + @ = , /); the path is written into a shell script on the node",
        "site.toml:79:8: error: node[1] (cp2).disk: \"/dev/../etc/passwd\" has an empty, \".\" or \"..\" path segment; name the device by its plain path (want /dev/disk/by-id/...)",
    ];
    check_edited_fails_with(&edits, &lines);
    let mut test = Test::new()
        .example_site()
        .file("dist/marker", "published by an earlier build\n");
    for (from, to) in edits {
        test = test.edit_site(from, to);
    }
    let before = test.snapshot();
    let out_dir = test.path().join("dist");
    test.run_with(["build".as_ref(), "--out".as_ref(), out_dir.as_os_str()])
        .code(2)
        .stderr_is(&expected_stderr(&lines));
    assert_eq!(test.snapshot(), before, "a refused site changes nothing");
}

/// Missing keys, a wrong type and a typo in several tables and nodes, and
/// content errors elsewhere: all in one run. [cilium] (a typo, so link_mtu
/// is its default) and the repaired nodes draw no follow-on errors, nor does
/// sysext.kubernetes against the missing cluster.kubernetes_version.
#[test]
fn parse_problems_in_many_tables_and_content_problems_come_in_one_run() {
    check_edited_fails_with(
        &[
            ("kubernetes_version = \"v1.35.9\"\n", ""),
            ("gateway = \"10.20.0.1\"", "gateway = \"10.20.0.0\""),
            ("link_mtu = 1500", "link_mut = 9000\nmtu = 8905"),
            ("mac = \"52:54:00:20:00:12\"\n", ""),
            (
                "disk = \"/dev/disk/by-id/virtio-cp3-root\"",
                "disk = \"/dev/../x\"",
            ),
            ("ip = \"10.20.0.21\"", "ip = 21"),
            (
                "name = \"worker2\"\nmac = \"52:54:00:20:00:22\"\n",
                "name = \"worker2\"\n",
            ),
            ("ip = \"10.20.0.22\"\n", ""),
        ],
        &[
            "site.toml:5:1: error: cluster: missing field `kubernetes_version`",
            "site.toml:17:11: error: network.gateway: 10.20.0.0 is the network or broadcast address of 10.20.0.0/24",
            "site.toml:41:1: error: cilium.link_mut: unknown key `link_mut`; did you mean `link_mtu`?",
            "site.toml:46:3: warning: ssh.authorized_keys[0]: is the example placeholder; put your own public key here (a line of ~/.ssh/id_ed25519.pub), or nobody can log in as core",
            "site.toml:74:1: error: node[1] (cp2): missing field `mac`",
            "site.toml:86:8: error: node[2] (cp3).disk: \"/dev/../x\" has an empty, \".\" or \"..\" path segment; name the device by its plain path (want /dev/disk/by-id/...)",
            "site.toml:92:6: error: node[3] (worker1).ip: expected a string, found the number 21 (put it in quotes)",
            "site.toml:98:1: error: node[4] (worker2): missing field `mac`",
            "site.toml:98:1: error: node[4] (worker2): missing field `ip`",
        ],
    );
}

#[test]
fn check_warns_about_a_kubernetes_past_its_end_of_life_and_an_untested_cilium() {
    // Kubernetes 1.31 reached its end of life on 2025-11-11, before this
    // test was written; the clock only moves away from it.
    let t = Test::new()
        .example_site()
        .edit_site(
            "kubernetes_version = \"v1.35.9\"",
            "kubernetes_version = \"v1.31.14\"",
        )
        .edit_site("kubernetes = \"v1.35.9\"", "kubernetes = \"v1.31.14\"");
    t.run_with(["check"]).success().stderr_is(&format!(
        "site.toml:7:22: warning: cluster.kubernetes_version: \"v1.31.14\": Kubernetes 1.31 \
         reached its end of life on 2025-11-11 \
         (https://github.com/kubernetes/website/blob/main/data/releases/eol.yaml) and gets \
         no security fixes; pin a supported minor (`pxebuild check -v` lists the table)\n\
         site.toml:39:11: warning: cilium.version: \"1.19.8\": Cilium 1.19 is e2e tested with \
         Kubernetes 1.32 to 1.35, not 1.31 (cluster.kubernetes_version \"v1.31.14\"; \
         https://docs.cilium.io/en/v1.19/network/kubernetes/compatibility/ \
         (Documentation/network/kubernetes/compatibility.rst at v1.19.3)); pin the Cilium \
         release whose tested range includes it\n\
         {PLACEHOLDER}"
    ));
    t.run_with(["check", "--strict"]).code(2);
    // `check -v` prints the table the site was checked against.
    Test::new()
        .example_site()
        .args(["check", "-v"])
        .run()
        .success()
        .stdout_contains("* 1.35        2027-02-28   supported")
        .stdout_contains("* 1.19        1.32 to 1.35");
}

#[test]
fn arm64_fails_check_naming_the_missing_boot_path() {
    check_edited_fails_with(
        &[("arch = \"amd64\"", "arch = \"arm64\"")],
        &[
            "site.toml:32:8: error: flatcar.arch: \"arm64\" cannot boot yet: pxebuild ships only x86 loaders (syslinux and iPXE for BIOS and x86-64 UEFI) and no arm64 boot path (UEFI arm64 through iPXE or GRUB) is built or proven; use \"amd64\" machines",
            "site.toml:46:3: warning: ssh.authorized_keys[0]: is the example placeholder; put your own public key here (a line of ~/.ssh/id_ed25519.pub), or nobody can log in as core",
        ],
    );
}
