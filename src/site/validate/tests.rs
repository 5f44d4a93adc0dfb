//! Validation checks one by one: each case edits the example site and
//! expects exactly the listed `path: message` diagnostics (file positions are
//! covered by the integration tests).
use super::*;

const EXAMPLE: &str = include_str!("../../../site.toml");
const PLACEHOLDER: &str =
    "warning: ssh.authorized_keys[0]: is the example placeholder; put your own public key here (a line of ~/.ssh/id_ed25519.pub), or nobody can log in as core";

/// Diagnostics for the example with `edits` applied, as "severity: path: message",
/// leaving out the example's own placeholder warning.
fn problems(edits: &[(&str, &str)]) -> Vec<String> {
    let mut text = EXAMPLE.to_string();
    for (from, to) in edits {
        assert!(text.contains(from), "{from:?} not in the example");
        text = text.replacen(from, to, 1);
    }
    let src = Source::new(&text, "site.toml");
    let file: RawSiteFile = toml::from_str(&text).expect("edits keep the schema");
    validate(&file, &src, &[])
        .iter()
        .map(|d| {
            let shown = d.to_string();
            shown
                .splitn(4, ':')
                .nth(3)
                .unwrap()
                .trim_start()
                .to_string()
        })
        .filter(|s| s != PLACEHOLDER)
        .collect()
}

fn expect(edits: &[(&str, &str)], want: &[&str]) {
    assert_eq!(problems(edits), want, "edits: {edits:?}");
}

#[test]
fn example_has_only_the_placeholder_warning() {
    expect(&[], &[]);
}

#[test]
fn version_shapes() {
    use VPrefix::*;
    for (good, prefix) in [
        ("4593.2.5", Forbidden),
        ("0.18.0", Forbidden),
        ("v1.33.2", Required),
        ("v1.7.27", Optional),
        ("1.7.27", Optional),
        ("4294967295.0.10", Forbidden),
    ] {
        assert_eq!(check_version(good, prefix), Ok(()), "{good}");
    }
    for (bad, prefix) in [
        ("4593.2", Forbidden),
        ("4593.2.x", Forbidden),
        ("4593.2.5.1", Forbidden),
        ("4593..5", Forbidden),
        ("v1.2.3", Forbidden),
        ("1.33.2", Required),
        ("v1.33", Required),
        ("vv1.33.2", Optional),
        ("v+1.33.2", Required),
        ("v1.33.2-rc.1", Required),
        ("", Optional),
    ] {
        assert_eq!(check_version(bad, prefix), Err(String::new()), "{bad}");
    }
    assert_eq!(
        check_version("v01.033.2", Required),
        Err("\"01\" has a leading zero".into())
    );
    assert_eq!(
        check_version("v1.99999999999999999999.2", Required),
        Err("99999999999999999999 is larger than 4294967295".into())
    );
    assert_eq!(
        check_version("4294967296.0.0", Forbidden),
        Err("4294967296 is larger than 4294967295".into())
    );
}

#[test]
fn kubernetes_older_than_the_kubeadm_api_is_refused() {
    expect(
        &[
            ("kubernetes_version = \"v1.35.9\"", "kubernetes_version = \"v1.30.5\""),
            ("kubernetes = \"v1.35.9\"", "kubernetes = \"v1.30.5\""),
        ],
        &["error: cluster.kubernetes_version: \"v1.30.5\" is older than v1.31: the kubeadm configs are kubeadm.k8s.io/v1beta4, which kubeadm reads from v1.31 on; use v1.31.0 or newer"],
    );
}

#[test]
fn versions_refuse_leading_zeros_and_overflow_in_every_key() {
    let huge = "99999999999999999999";
    expect(
        &[
            ("kubernetes_version = \"v1.35.9\"", "kubernetes_version = \"v01.033.2\""),
            ("kubernetes = \"v1.35.9\"", "kubernetes = \"v01.033.2\""),
        ],
        &["error: cluster.kubernetes_version: \"v01.033.2\" is not a Kubernetes release (want e.g. \"v1.33.2\"): \"01\" has a leading zero"],
    );
    let k8s = format!("kubernetes_version = \"v1.{huge}.2\"");
    let sx = format!("kubernetes = \"v1.{huge}.2\"");
    expect(
        &[("kubernetes_version = \"v1.35.9\"", &k8s), ("kubernetes = \"v1.35.9\"", &sx)],
        &[&format!("error: cluster.kubernetes_version: \"v1.{huge}.2\" is not a Kubernetes release (want e.g. \"v1.33.2\"): {huge} is larger than 4294967295")],
    );
    expect(
        &[("version = \"4593.2.5\"", "version = \"4593.02.5\"")],
        &["error: flatcar.version: \"4593.02.5\" is not a Flatcar release (want NNNN.N.N, e.g. \"4593.2.5\"): \"02\" has a leading zero"],
    );
    expect(
        &[("cilium = \"v0.18.2\"", "cilium = \"v0.18.02\"")],
        &["error: sysext.cilium: \"v0.18.02\" is not a release version (want vX.Y.Z, e.g. \"v0.18.2\"): \"02\" has a leading zero"],
    );
    expect(
        &[("cilium = \"v0.18.2\"", "cilium = \"v0.18.2\"\ncontainerd = \"v1.07.27\"")],
        &["error: sysext.containerd: \"v1.07.27\" is not a release version (want e.g. \"1.7.27\"): \"07\" has a leading zero"],
    );
    expect(
        &[("version = \"1.19.8\"", "version = \"1.17.04\"")],
        &["error: cilium.version: \"1.17.04\" is not a Cilium release (want X.Y.Z, e.g. \"1.17.4\"): \"04\" has a leading zero"],
    );
    expect(
        &[("chart_version = \"10.9.0\"", "chart_version = \"8.1.4294967296\"")],
        &["error: argocd.chart_version: \"8.1.4294967296\" is not a Helm chart version (want e.g. \"8.1.2\"): 4294967296 is larger than 4294967295"],
    );
}

#[test]
fn node_addresses() {
    expect(
        &[("\"52:54:00:20:00:11\"", "\"01:00:5e:00:00:01\"")],
        &["error: node[0] (cp1).mac: \"01:00:5e:00:00:01\" is a multicast address (low bit of the first octet set); no NIC boots with it"],
    );
    expect(
        &[("ip = \"10.20.0.11\"", "ip = \"10.20.0.255\"")],
        &["error: node[0] (cp1).ip: 10.20.0.255 is the network or broadcast address of 10.20.0.0/24"],
    );
    expect(
        &[("ip = \"10.20.0.11\"", "ip = \"10.20.0.1\"")],
        &["error: node[0] (cp1).ip: 10.20.0.1 is also network.gateway"],
    );
    expect(
        &[("ip = \"10.20.0.11\"", "ip = \"10.20.0.2\"")],
        &["error: node[0] (cp1).ip: 10.20.0.2 is also boot_server.address"],
    );
    expect(
        &[("ip = \"10.20.0.11\"", "ip = \"10.20.0.300\"")],
        &["error: node[0] (cp1).ip: \"10.20.0.300\" is not an IPv4 address"],
    );
}

#[test]
fn endpoint_rules() {
    let external = (
        "endpoint_mode = \"kube-vip\"",
        "endpoint_mode = \"external\"",
    );
    expect(
        &[external, ("\"10.20.0.10:6443\"", "\"192.0.2.10:6443\"")],
        &[],
    );
    expect(
        &[external, ("\"10.20.0.10:6443\"", "\"0.0.0.0:6443\"")],
        &["error: cluster.endpoint: 0.0.0.0 is the unspecified address, not a server's address"],
    );
    expect(
        &[external, ("\"10.20.0.10:6443\"", "\"127.0.0.1:6443\"")],
        &[],
    );
    expect(
        &[external, ("\"10.20.0.10:6443\"", "\"10.20.0.2:6443\"")],
        &["error: cluster.endpoint: 10.20.0.2 is already boot_server.address; the endpoint needs an address of its own"],
    );
    expect(
        &[("\"10.20.0.10:6443\"", "\"10.20.0.1\"")],
        &["error: cluster.endpoint: 10.20.0.1 is already network.gateway; the endpoint needs an address of its own"],
    );
    expect(
        &[("\"10.20.0.10:6443\"", "\"10.20.0.0\"")],
        &["error: cluster.endpoint: 10.20.0.0 is already the network or broadcast address of 10.20.0.0/24; the endpoint needs an address of its own"],
    );
    expect(
        &[("\"10.20.0.10:6443\"", "\"10.20.0.10:99999\"")],
        &["error: cluster.endpoint: \"10.20.0.10:99999\" is not an IPv4 address with an optional port (want a.b.c.d[:port])"],
    );
    expect(
        &[(
            "endpoint_mode = \"kube-vip\"",
            "endpoint_mode = \"haproxy\"",
        )],
        &["error: cluster.endpoint_mode: \"haproxy\" is not one of \"kube-vip\", \"external\""],
    );
}

#[test]
fn cluster_names_and_durations() {
    expect(
        &[("name = \"rack1\"", "name = \"Rack 1\"")],
        &["error: cluster.name: \"Rack 1\" is not a DNS-1123 label (lower-case letters, digits and '-', starting and ending with a letter or digit)"],
    );
    expect(
        &[("dns_domain = \"cluster.local\"", "dns_domain = \"cluster..local\"")],
        &["error: cluster.dns_domain: \"cluster..local\" is not a DNS domain (lower-case labels separated by '.')"],
    );
    expect(
        &[("bootstrap_token_ttl = \"24h\"", "bootstrap_token_ttl = \"0\"")],
        &["warning: cluster.bootstrap_token_ttl: 0 makes the bootstrap token never expire; a leaked token could join machines forever"],
    );
    expect(
        &[("bring_up_window = \"4h\"", "bring_up_window = \"4 hours\"")],
        &["error: cluster.bring_up_window: \"4 hours\" is not a duration (want e.g. \"24h\", \"90m\", \"1h30m\")"],
    );
    expect(
        &[("kubernetes_version = \"v1.35.9\"", "kubernetes_version = \"1.33.2\""), ("kubernetes = \"v1.35.9\"", "kubernetes = \"1.33.2\"")],
        &["error: cluster.kubernetes_version: \"1.33.2\" is not a Kubernetes release (want e.g. \"v1.33.2\")"],
    );
}

#[test]
fn boot_server_rules() {
    expect(
        &[("address = \"10.20.0.2\"", "address = \"bootserver\"")],
        &["error: boot_server.address: \"bootserver\" is not an IPv4 address"],
    );
    expect(
        &[("loaders = [\"bios\", \"uefi\"]", "loaders = []")],
        &["error: boot_server.loaders: is empty; list at least one of \"bios\", \"uefi\", \"ipxe\""],
    );
    expect(
        &[(
            "loaders = [\"bios\", \"uefi\"]",
            "loaders = [\"bios\", \"uefi\", \"bios\"]",
        )],
        &["error: boot_server.loaders[2]: \"bios\" is listed twice"],
    );
    expect(
        &[("loaders = [\"bios\", \"uefi\"]", "loaders = [\"ipxe\"]")],
        &[],
    );
    expect(
        &[("http_port = 8080", "http_port = 0")],
        &["error: boot_server.http_port: port 0 is not a port"],
    );
    expect(
        &[("\"ttyS0,115200n8\"", "\"ttyS0 115200\"")],
        &["error: boot_server.consoles[1]: \"ttyS0 115200\" is not a console (want e.g. \"ttyS0,115200n8\")"],
    );
    expect(
        &[("dns = [\"10.20.0.1\"]", "dns = [\"one.one.one.one\"]")],
        &["error: network.dns[0]: \"one.one.one.one\" is not an IPv4 address"],
    );
}

#[test]
fn ntp_servers_are_addresses_or_host_names() {
    let dns = "dns = [\"10.20.0.1\"]";
    expect(
        &[(
            dns,
            "dns = [\"10.20.0.1\"]\nntp = [\"10.20.0.1\", \"ntp.example.com\", \"time1.\"]",
        )],
        &[],
    );
    expect(
        &[(dns, "dns = [\"10.20.0.1\"]\nntp = [\"0.0.0.0\", \"NTP.example.com\", \"10.20.0\", \"ntp server\", \"\"]")],
        &[
            "error: network.ntp[0]: 0.0.0.0 is the unspecified address, not a server's address",
            "error: network.ntp[1]: \"NTP.example.com\" is not an IPv4 address or a lower-case host name (e.g. \"10.20.0.1\" or \"ntp.example.com\")",
            "error: network.ntp[2]: \"10.20.0\" is not an IPv4 address or a lower-case host name (e.g. \"10.20.0.1\" or \"ntp.example.com\")",
            "error: network.ntp[3]: \"ntp server\" is not an IPv4 address or a lower-case host name (e.g. \"10.20.0.1\" or \"ntp.example.com\")",
            "error: network.ntp[4]: \"\" is not an IPv4 address or a lower-case host name (e.g. \"10.20.0.1\" or \"ntp.example.com\")",
        ],
    );
}

#[test]
fn cidrs_and_subnet() {
    expect(
        &[("subnet = \"10.20.0.0/24\"", "subnet = \"10.20.0.5/24\"")],
        &["error: network.subnet: \"10.20.0.5/24\" has host bits set (did you mean 10.20.0.0/24?)"],
    );
    expect(
        &[("pod_cidr = \"10.244.0.0/16\"", "pod_cidr = \"10.96.0.0/16\"")],
        &["error: cluster.service_cidr: 10.96.0.0/12 overlaps cluster.pod_cidr 10.96.0.0/16; routes would be ambiguous"],
    );
}

#[test]
fn software_rules() {
    expect(
        &[("cilium = \"v0.18.2\"", "cilium = \"0.18.2\"")],
        &["error: sysext.cilium: \"0.18.2\" is not a release version (want vX.Y.Z, e.g. \"v0.18.2\")"],
    );
    expect(
        &[(
            "cilium = \"v0.18.2\"",
            "cilium = \"v0.18.2\"\ncontainerd = \"latest\"",
        )],
        &["error: sysext.containerd: \"latest\" is not a release version (want e.g. \"1.7.27\")"],
    );
    expect(
        &[(
            "cilium = \"v0.18.2\"",
            "cilium = \"v0.18.2\"\ncontainerd = \"v1.7.27\"",
        )],
        &[],
    );
    expect(
        &[("version = \"1.19.8\"", "version = \"v1.17.4\"")],
        &["error: cilium.version: \"v1.17.4\" is not a Cilium release (want X.Y.Z, e.g. \"1.17.4\")"],
    );
    expect(
        &[("link_mtu = 1500", "link_mtu = 1500\nmtu = 9000")],
        &["error: cilium.mtu: 9000 is larger than cilium.link_mtu 1500"],
    );
    expect(
        &[
            ("wireguard = true", "wireguard = false"),
            ("link_mtu = 1500", "link_mtu = 1500\nmtu = 1500"),
        ],
        &[],
    );
    expect(&[("link_mtu = 1500", "link_mtu = 9000\nmtu = 8905")], &[]);
    expect(
        &[("link_mtu = 1500", "link_mtu = 100")],
        &["error: cilium.link_mtu: 100 is not a link MTU (576 to 65535)"],
    );
    expect(
        &[("chart_version = \"10.9.0\"", "chart_version = \"stable\"")],
        &["error: argocd.chart_version: \"stable\" is not a Helm chart version (want e.g. \"8.1.2\")"],
    );
    expect(
        &[("# mirror = \"http", "mirror = \"ftp")],
        &["error: sources.mirror: \"ftp://mirror.example.com/pxebuild\" is not an http:// or https:// URL"],
    );
    expect(
        &[("flatcar = \"disabled\"", "flatcar = \"off\"")],
        &["error: updates.flatcar: \"off\" is not one of \"disabled\", \"enabled\""],
    );
    expect(
        &[("sysupdate = true", "sysupdate = true\napply = \"auto\"")],
        &["error: updates.apply: \"auto\" is not one of \"manual\", \"rolling\""],
    );
    // Rolling reboots are kured's: locksmithd would never order them.
    expect(
        &[
            ("sysupdate = true", "sysupdate = true\napply = \"rolling\""),
            ("reboot_manager = \"kured\"", "reboot_manager = \"locksmithd\""),
        ],
        &["error: updates.apply: \"rolling\" needs updates.reboot_manager = \"kured\" (it is \"locksmithd\"): kured reboots one node at a time on request; set reboot_manager = \"kured\" or apply = \"manual\""],
    );
    expect(
        &[("sysupdate = true", "sysupdate = true\napply = \"rolling\"")],
        &[],
    );
}

#[test]
fn loader_settings_belong_to_the_loader_source_in_use() {
    let src = "# mirror = \"http://mirror.example.com/pxebuild\"";
    expect(&[(src, "loaders = \"debian\"")], &[]);
    expect(
        &[(src, "loaders = \"syslinux\"")],
        &["error: sources.loaders: \"syslinux\" is not one of \"debian\", \"upstream\""],
    );
    let upstream_only = "applies only with sources.loaders = \"upstream\" (the syslinux 6.03 \
        tarball and boot.ipxe.org's iPXE); the default loaders are Debian's packages, pinned \
        inside pxebuild: remove it, or set sources.loaders = \"upstream\"";
    let pin = format!("syslinux_sha256 = \"{}\"", "a".repeat(64));
    expect(
        &[(src, &pin)],
        &[&format!("error: sources.syslinux_sha256: {upstream_only}")],
    );
    expect(
        &[(src, "ipxe_sha256s = { \"ipxe.efi\" = \"b\" }")],
        &[&format!("error: sources.ipxe_sha256s: {upstream_only}")],
    );
    expect(&[(src, &format!("loaders = \"upstream\"\n{pin}"))], &[]);
    expect(
        &[(src, "loaders = \"upstream\"\nloaders_dir = \"l\"")],
        &[
            "error: sources.loaders: sources.loaders_dir \"l\" already takes every loader from \
           a local directory; set one of the two",
        ],
    );
    expect(
        &[(src, "debian_url = \"ftp://ftp.debian.org/debian\"")],
        &["error: sources.debian_url: \"ftp://ftp.debian.org/debian\" is not an http:// or https:// URL"],
    );
    expect(
        &[(src, "debian_url = \"http://ftp.de.debian.org/debian/\"")],
        &[],
    );
    expect(
        &[(
            src,
            "loaders = \"upstream\"\ndebian_url = \"http://ftp.de.debian.org/debian\"",
        )],
        &[
            "error: sources.debian_url: applies only to Debian's loader packages \
           (sources.loaders = \"debian\", the default, without sources.loaders_dir)",
        ],
    );
}

#[test]
fn ssh_keys() {
    let keys = "authorized_keys = [\n  \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIReplaceWithYourOwnPublicKeyBeforeBuilding operator@example\",\n]";
    expect(
        &[(keys, "authorized_keys = []")],
        &["error: ssh.authorized_keys: is empty; without a key nobody can log in as core"],
    );
    expect(
        &[(keys, "authorized_keys = [\"ssh-ed25519\", \"ecdsa-sha2-nistp256 AAAAE2Vj ops\"]")],
        &["error: ssh.authorized_keys[0]: is not an OpenSSH public key (want \"ssh-ed25519 AAAA... comment\")"],
    );
}

#[test]
fn labels_and_taints() {
    let pool = "labels = { \"node.example.com/pool\" = \"general\" }";
    expect(
        &[(pool, "labels = { \"-pool\" = \"general purpose\" }")],
        &[
            "error: node[3] (worker1).labels.-pool: key \"-pool\" is not a label key (name part: 1 to 63 of [A-Za-z0-9-_.])",
            "error: node[3] (worker1).labels.-pool: \"general purpose\" is not a label value (up to 63 of [A-Za-z0-9-_.], alphanumeric at both ends)",
        ],
    );
    expect(
        &[(pool, "labels = { \"node-role.kubernetes.io/worker\" = \"\" }")],
        &["error: node[3] (worker1).labels.node-role.kubernetes.io/worker: key \"node-role.kubernetes.io/worker\" is in the kubernetes.io/k8s.io namespace, where kubelet sets only node.kubernetes.io/*, kubelet.kubernetes.io/* and the well-known topology, os and arch labels itself (it refuses to start with others); use a prefix of your own, or set it with `kubectl label node` once the node joined"],
    );
    expect(
        &[(pool, "taints = [\"dedicated=gpu:NoSchedule\", \"gpu\"]")],
        &["error: node[3] (worker1).taints[1]: \"gpu\" is not a taint (want \"key=value:Effect\" or \"key:Effect\")"],
    );
}

#[test]
fn nodes_and_control_planes() {
    let all_nodes = &EXAMPLE[EXAMPLE.find("[[node]]").unwrap()..];
    expect(
        &[(all_nodes, "")],
        &["error: node: no [[node]] tables; a site needs at least one control-plane node"],
    );
    expect(
        &[(
            "disk = \"/dev/disk/by-id/virtio-cp1-root\"",
            "disk = \"sda\"",
        )],
        &["error: node[0] (cp1).disk: \"sda\" is not a device path (want /dev/disk/by-id/...)"],
    );
    expect(
        &[("disk = \"/dev/disk/by-id/virtio-cp1-root\"", "disk = \"/dev/nvme0n1\"")],
        &["warning: node[0] (cp1).disk: \"/dev/nvme0n1\" is a kernel device name, which can change between boots; use a stable /dev/disk/by-id/... path"],
    );
}

#[test]
fn wipe_with_a_kernel_disk_name_is_an_error() {
    let kernel_name = (
        "disk = \"/dev/disk/by-id/virtio-cp1-root\"",
        "disk = \"/dev/sda\"",
    );
    let erase = "error: node[0] (cp1).disk: \"/dev/sda\" is a kernel device name, which can \
                 change between boots, and with wipe = true the installer would erase whichever \
                 disk has that name today, data or not; use a stable /dev/disk/by-id/... path";
    // The node's own key, and the site-wide default.
    let own = (
        "firmware = \"bios\"\n",
        "firmware = \"bios\"\nwipe = true\n",
    );
    expect(&[kernel_name, own], &[erase]);
    let site_wide = ("[[node]]", "[install]\nwipe = true\n\n[[node]]");
    expect(&[kernel_name, site_wide], &[erase]);
    // A node may turn the default off for itself: a warning again.
    let off = (
        "firmware = \"bios\"\n",
        "firmware = \"bios\"\nwipe = false\n",
    );
    assert_eq!(problems(&[kernel_name, site_wide, off]).len(), 1);
    assert!(problems(&[kernel_name, site_wide, off])[0].starts_with("warning: "));
    // A stable name with wipe is fine.
    expect(&[own], &[]);
    expect(&[site_wide], &[]);
}

#[test]
fn macs_in_every_spelling_and_the_reserved_ones() {
    expect(
        &[
            ("\"52:54:00:20:00:11\"", "\"52-54-00-AB-00-11\""),
            ("\"52:54:00:20:00:12\"", "\"525400ab0012\""),
            ("\"52:54:00:20:00:13\"", "\"52:54:00:AB:00:13\""),
        ],
        &[],
    );
    expect(
        &[("\"52:54:00:20:00:11\"", "\"00-00-00-00-00-00\"")],
        &["error: node[0] (cp1).mac: \"00-00-00-00-00-00\" is the all-zero address, which no NIC has (an unset or blanked value?)"],
    );
    expect(
        &[("\"52:54:00:20:00:11\"", "\"FF:FF:FF:FF:FF:FF\"")],
        &["error: node[0] (cp1).mac: \"FF:FF:FF:FF:FF:FF\" is the broadcast address; no NIC boots with it"],
    );
    // Uniqueness compares the normalised address, whatever the spelling.
    expect(
        &[("\"52:54:00:20:00:12\"", "\"525400200011\"")],
        &["error: node[1] (cp2).mac: \"525400200011\" is already used by node[0] (cp1)"],
    );
}

#[test]
fn gateway_boot_server_and_dns_refuse_reserved_addresses() {
    expect(
        &[("gateway = \"10.20.0.1\"", "gateway = \"10.20.0.0\"")],
        &["error: network.gateway: 10.20.0.0 is the network or broadcast address of 10.20.0.0/24"],
    );
    expect(
        &[("gateway = \"10.20.0.1\"", "gateway = \"10.20.0.255\"")],
        &["error: network.gateway: 10.20.0.255 is the network or broadcast address of 10.20.0.0/24"],
    );
    expect(
        &[("address = \"10.20.0.2\"", "address = \"10.20.0.255\"")],
        &["error: boot_server.address: 10.20.0.255 is the network or broadcast address of 10.20.0.0/24"],
    );
    expect(
        &[("address = \"10.20.0.2\"", "address = \"0.0.0.0\"")],
        &["error: boot_server.address: 0.0.0.0 is the unspecified address, not a server's address"],
    );
    expect(
        &[("address = \"10.20.0.2\"", "address = \"127.0.0.1\"")],
        &["error: boot_server.address: 127.0.0.1 is a loopback address; each node would fetch from itself"],
    );
    expect(
        &[("address = \"10.20.0.2\"", "address = \"239.1.2.3\"")],
        &["error: boot_server.address: 239.1.2.3 is a multicast address, not a server's address"],
    );
    // Routed through a DHCP relay: outside the node subnet is fine.
    expect(
        &[("address = \"10.20.0.2\"", "address = \"192.0.2.7\"")],
        &[],
    );
    expect(
        &[("dns = [\"10.20.0.1\"]", "dns = [\"0.0.0.0\", \"255.255.255.255\", \"224.0.0.251\", \"10.20.0.255\", \"127.0.0.53\", \"9.9.9.9\"]")],
        &[
            "error: network.dns[0]: 0.0.0.0 is the unspecified address, not a server's address",
            "error: network.dns[1]: 255.255.255.255 is the limited broadcast address, not a server's address",
            "error: network.dns[2]: 224.0.0.251 is a multicast address, not a server's address",
            "error: network.dns[3]: 10.20.0.255 is the network or broadcast address of 10.20.0.0/24",
        ],
    );
    // A /31 has no network or broadcast address (RFC 3021).
    expect(
        &[
            ("subnet = \"10.20.0.0/24\"", "subnet = \"10.20.0.0/31\""),
            ("gateway = \"10.20.0.1\"", "gateway = \"10.20.0.0\""),
            (
                "endpoint_mode = \"kube-vip\"",
                "endpoint_mode = \"external\"",
            ),
            ("dns = [\"10.20.0.1\"]", "dns = [\"10.20.0.0\"]"),
        ],
        &[
            "error: node[0] (cp1).ip: 10.20.0.11 is outside network.subnet 10.20.0.0/31",
            "error: node[1] (cp2).ip: 10.20.0.12 is outside network.subnet 10.20.0.0/31",
            "error: node[2] (cp3).ip: 10.20.0.13 is outside network.subnet 10.20.0.0/31",
            "error: node[3] (worker1).ip: 10.20.0.21 is outside network.subnet 10.20.0.0/31",
            "error: node[4] (worker2).ip: 10.20.0.22 is outside network.subnet 10.20.0.0/31",
        ],
    );
}

#[test]
fn pod_mtu_has_a_floor() {
    expect(
        &[("link_mtu = 1500", "link_mtu = 1500\nmtu = 0")],
        &["error: cilium.mtu: 0 is below 1280, the smallest MTU IPv6 allows; use at least 1280, or omit mtu to let Cilium derive it"],
    );
    expect(
        &[("link_mtu = 1500", "link_mtu = 1500\nmtu = 1279")],
        &["error: cilium.mtu: 1279 is below 1280, the smallest MTU IPv6 allows; use at least 1280, or omit mtu to let Cilium derive it"],
    );
    expect(
        &[
            ("wireguard = true", "wireguard = false"),
            ("link_mtu = 1500", "link_mtu = 1500\nmtu = 1280"),
        ],
        &[],
    );
    // Cilium's MTU is the link's: WireGuard's 80 bytes come off it for pods.
    expect(&[("link_mtu = 1500", "link_mtu = 1500\nmtu = 1500")], &[]);
    expect(
        &[("link_mtu = 1500", "link_mtu = 1500\nmtu = 1280")],
        &["warning: cilium.mtu: 1280 leaves pods at most 1200 once Cilium takes WireGuard's 80 bytes (less in tunnel mode), below the 1280 IPv6 needs; use at least 1360, or omit mtu"],
    );
    // The floor is reported even when link_mtu is wrong too.
    expect(
        &[("link_mtu = 1500", "link_mtu = 100\nmtu = 0")],
        &[
            "error: cilium.link_mtu: 100 is not a link MTU (576 to 65535)",
            "error: cilium.mtu: 0 is below 1280, the smallest MTU IPv6 allows; use at least 1280, or omit mtu to let Cilium derive it",
        ],
    );
}

#[test]
fn disks_refuse_shell_syntax_and_path_tricks() {
    let cp1 = "disk = \"/dev/disk/by-id/virtio-cp1-root\"";
    expect(
        &[(cp1, "disk = \"/dev/disk/by-id/x$(reboot -f)`id`\"")],
        &["error: node[0] (cp1).disk: \"/dev/disk/by-id/x$(reboot -f)`id`\" has '$', which no device path needs (allowed: letters, digits and . _ - : + @ = , /); the path is written into a shell script on the node"],
    );
    expect(
        &[(cp1, "disk = \"/dev/../etc/passwd\"")],
        &["error: node[0] (cp1).disk: \"/dev/../etc/passwd\" has an empty, \".\" or \"..\" path segment; name the device by its plain path (want /dev/disk/by-id/...)"],
    );
    expect(
        &[(cp1, "disk = \"/dev/disk/by-path/pci-0000:00:1f.2-ata-1\"")],
        &[],
    );
    expect(
        &[(
            cp1,
            "disk = \"/dev/disk/by-id/usb-SanDisk_Cruzer_Blade_4C530001-0:0\"",
        )],
        &[],
    );
}

#[test]
fn ssh_keys_are_one_line_of_a_known_type() {
    let placeholder = "\"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIReplaceWithYourOwnPublicKeyBeforeBuilding operator@example\"";
    expect(
        &[(placeholder, "\"ssh-ed25519 AAAAC3Nz ops@example\\nssh-rsa AAAAB3Nz intruder\"")],
        &["error: ssh.authorized_keys[0]: contains the control character \\n; a public key is one line of printable text"],
    );
    expect(
        &[(placeholder, "\"ssh-dss AAAAB3NzaC1kc3M= old@example\"")],
        &["error: ssh.authorized_keys[0]: is not an OpenSSH public key (want \"ssh-ed25519 AAAA... comment\")"],
    );
    expect(
        &[(
            placeholder,
            "\"sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t key@example\"",
        )],
        &[],
    );
}

/// Like `problems`, with the keys parsing repaired marked unsure.
fn problems_with_unsure(edits: &[(&str, &str)], unsure: &[KeyPath]) -> Vec<String> {
    let mut text = EXAMPLE.to_string();
    for (from, to) in edits {
        assert!(text.contains(from), "{from:?} not in the example");
        text = text.replacen(from, to, 1);
    }
    let src = Source::new(&text, "site.toml");
    let file: RawSiteFile = toml::from_str(&text).expect("edits keep the schema");
    validate(&file, &src, unsure)
        .iter()
        .map(|d| format!("{}: {}: {}", d.severity, d.path, d.message))
        .filter(|s| s != PLACEHOLDER)
        .collect()
}

#[test]
fn nothing_is_reported_inside_a_repaired_table() {
    // As if `link_mut = 9000` had been dropped: the default link_mtu would
    // make mtu look too large, and [cilium] says nothing.
    let edits = [
        ("link_mtu = 1500", "mtu = 8905"),
        ("gateway = \"10.20.0.1\"", "gateway = \"10.20.0.0\""),
    ];
    assert_eq!(
        problems_with_unsure(&edits, &[KeyPath::of("cilium.link_mut")]),
        ["error: network.gateway: 10.20.0.0 is the network or broadcast address of 10.20.0.0/24"]
    );
    // The repaired node is silent, and so is the count over all nodes (its
    // role may be a stand-in); the other nodes are checked.
    let edits = [
        (
            "role = \"control-plane\"\ndisk = \"/dev/disk/by-id/virtio-cp2-root\"",
            "role = \"\"\ndisk = \"/dev/disk/by-id/virtio-cp2-root\"",
        ),
        ("\"52:54:00:20:00:13\"", "\"52:54:00:20:00\""),
    ];
    assert_eq!(
        problems_with_unsure(&edits, &[KeyPath::node(1, "mac")]),
        ["error: node[2] (cp3).mac: \"52:54:00:20:00\" is not a MAC address (want aa:bb:cc:dd:ee:ff)"]
    );
    // A stand-in Kubernetes version is no reference for the sysext's.
    let edits = [(
        "kubernetes_version = \"v1.35.9\"",
        "kubernetes_version = \"\"",
    )];
    assert_eq!(
        problems_with_unsure(&edits, &[KeyPath::of("cluster.kubernetes_version")]),
        Vec::<String>::new()
    );
    // A whole table stood in for: only its own checks are silent.
    assert_eq!(
        problems_with_unsure(
            &[(PLACEHOLDER_KEY, "authorized_keys = []")],
            &[KeyPath::of("ssh")]
        ),
        Vec::<String>::new()
    );
}

const PLACEHOLDER_KEY: &str = "authorized_keys = [\n  \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIReplaceWithYourOwnPublicKeyBeforeBuilding operator@example\",\n]";

#[test]
fn scopes_are_a_top_level_table_or_one_node() {
    assert_eq!(
        scope(&KeyPath::of("cilium.mtu")),
        &[Seg::Key("cilium".into())]
    );
    assert_eq!(
        scope(&KeyPath::node(2, "labels").key("x")),
        &[Seg::Key("node".into()), Seg::Index(2)]
    );
    assert_eq!(scope(&KeyPath::of("node")), &[Seg::Key("node".into())]);
    assert!(scope(&KeyPath::default()).is_empty());
}

#[test]
fn arm64_is_refused_until_an_arm64_boot_path_exists() {
    expect(
        &[("arch = \"amd64\"", "arch = \"arm64\"")],
        &["error: flatcar.arch: \"arm64\" cannot boot yet: pxebuild ships only x86 loaders (syslinux and iPXE for BIOS and x86-64 UEFI) and no arm64 boot path (UEFI arm64 through iPXE or GRUB) is built or proven; use \"amd64\" machines"],
    );
}

#[test]
fn images_charts_name_a_helm_repository_and_a_file_safe_chart() {
    let images = |charts: &str| {
        problems(&[(
            "[ssh]",
            &format!("[images]\nmode = \"serve\"\ncharts = [{charts}]\n\n[ssh]"),
        )])
    };
    let kured =
        "{ repo = \"https://kubereboot.github.io/charts\", name = \"kured\", version = \"6.0.0\" }";
    assert_eq!(images(kured), Vec::<String>::new());
    assert_eq!(
        images(
            "{ repo = \"oci://ghcr.io/x\", name = \"a/b\", version = \"1\" }, \
             { repo = \"ftp://x\", name = \"cilium\", version = \"1.19.8\" }"
        ),
        [
            "error: images.charts[0].repo: \"oci://ghcr.io/x\" is an OCI registry: charts are \
             carried from Helm repositories (an http:// or https:// URL holding index.yaml); \
             name the chart's Helm repository",
            "error: images.charts[0].name: \"a/b\" may hold only letters, digits, '.', '-', '_' \
             and '+'",
            "error: images.charts[1]: cilium 1.19.8 is already carried ([cilium] version); list \
             each chart version once",
            "error: images.charts[1].repo: \"ftp://x\" is not an http:// or https:// URL (the \
             Helm repository holding index.yaml)",
        ]
    );
    let pull = problems(&[("[ssh]", &format!("[images]\ncharts = [{kured}]\n\n[ssh]"))]);
    assert_eq!(pull.len(), 1, "{pull:?}");
    assert!(pull[0].starts_with("warning: images.charts: charts are carried in dist/ only"));
}

/// The example with an `[images]` table before `[argocd]`.
fn with_images(table: &str) -> Vec<String> {
    problems(&[("[argocd]", &format!("[images]\n{table}\n\n[argocd]"))])
}

#[test]
fn image_extras_are_references_listed_once() {
    assert_eq!(
        with_images("extra = [\"nginx:1.27\", \"ghcr.io/example/app:1.2@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\"]"),
        Vec::<String>::new()
    );
    assert_eq!(
        with_images("extra = [\"ghcr.io/example/App:1.2\", \"nginx:\", \"nginx@sha256:12\"]"),
        [
            "error: images.extra[0]: \"ghcr.io/example/App:1.2\" has repository \"example/App\": each '/'-separated part is lower-case letters and digits, joined by '.', '_' or '-'",
            "error: images.extra[1]: \"nginx:\" has tag \"\": a tag is 1 to 128 letters, digits, '.', '_' or '-', not starting with '.' or '-'",
            "error: images.extra[2]: \"nginx@sha256:12\" has digest \"sha256:12\": expected sha256: and 64 hexadecimal digits",
        ]
    );
    assert_eq!(
        with_images("extra = [\"nginx:1.27\", \"busybox\", \"docker.io/library/nginx:1.27\"]"),
        ["warning: images.extra[2]: \"docker.io/library/nginx:1.27\" is the same image as images.extra[0] (docker.io/library/nginx:1.27); list it once"]
    );
}

#[test]
fn the_registry_mirror_is_an_http_url() {
    for good in ["http://127.0.0.1:5000", "https://mirror.example.com/"] {
        assert_eq!(
            with_images(&format!("registry_mirror = {good:?}")),
            Vec::<String>::new(),
            "{good}"
        );
    }
    for bad in [
        "mirror.example.com:5000",
        "ftp://mirror",
        "http://",
        "https:///v2",
    ] {
        assert_eq!(
            with_images(&format!("registry_mirror = {bad:?}")),
            [format!(
                "error: images.registry_mirror: {bad:?} is not an http:// or https:// URL of a registry (want e.g. \"http://mirror.example.com:5000\", which serves registry.k8s.io/pause as /v2/registry.k8s.io/pause/…)"
            )],
            "{bad}"
        );
    }
}

#[test]
fn serve_mode_needs_pins_the_image_catalog_covers() {
    let newer = [
        (
            "kubernetes_version = \"v1.35.9\"",
            "kubernetes_version = \"v1.35.10\"",
        ),
        ("kubernetes = \"v1.35.9\"", "kubernetes = \"v1.35.10\""),
        ("version = \"1.19.8\"", "version = \"1.19.9\""),
    ];
    // Pulling from the registries needs no catalog.
    let mut pull = newer.to_vec();
    pull.push(("[argocd]", "[images]\nmode = \"pull\"\n\n[argocd]"));
    assert_eq!(problems(&pull), Vec::<String>::new());
    let mut serve = newer.to_vec();
    serve.push(("[argocd]", "[images]\nmode = \"serve\"\n\n[argocd]"));
    let tail = "pin one it knows, or set images.mode = \"pull\"";
    assert_eq!(
        problems(&serve),
        [
            format!("error: cluster.kubernetes_version: with images.mode = \"serve\" every image the cluster pulls is carried in dist/, and pxebuild's image catalog does not cover this release (it knows v1.34.0, v1.35.0 to v1.35.9, v1.36.1 to v1.36.4, v1.37.0 to v1.37.1); {tail}"),
            format!("error: cilium.version: with images.mode = \"serve\" every image the cluster pulls is carried in dist/, and pxebuild's image catalog does not cover this release (it knows \"1.19.8\"); {tail}"),
        ]
    );
    assert_eq!(with_images("mode = \"serve\""), Vec::<String>::new());
}
