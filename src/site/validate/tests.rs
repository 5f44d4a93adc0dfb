//! Validation checks one by one: each case edits the example site and
//! expects exactly the listed `path: message` diagnostics (file positions are
//! covered by the integration tests).
use super::*;

const EXAMPLE: &str = include_str!("../../../site.toml");
const PLACEHOLDER: &str =
    "warning: ssh.authorized_keys[0]: is the example placeholder; put your own public key here";

/// Diagnostics for the example with `edits` applied, as "severity: path: message",
/// leaving out the example's own placeholder warning.
fn problems(edits: &[(&str, &str)]) -> Vec<String> {
    let mut text = EXAMPLE.to_string();
    for (from, to) in edits {
        assert!(text.contains(from), "{from:?} not in the example");
        text = text.replacen(from, to, 1);
    }
    let src = Source::new(&text, "site.toml");
    let file: SiteFile = toml::from_str(&text).expect("edits keep the schema");
    validate(&file, &src)
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
    assert!(is_dotted_version("4593.2.5"));
    assert!(!is_dotted_version("4593.2"));
    assert!(!is_dotted_version("4593.2.x"));
    assert!(!is_dotted_version("v1.2.3"));
    assert!(is_v_version("v1.33.2"));
    assert!(!is_v_version("1.33.2"));
    assert!(!is_v_version("v1.33"));
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
        &[("kubernetes_version = \"v1.33.2\"", "kubernetes_version = \"1.33.2\""), ("kubernetes = \"v1.33.2\"", "kubernetes = \"1.33.2\"")],
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
        &[("version = \"1.17.4\"", "version = \"v1.17.4\"")],
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
        &[("chart_version = \"8.1.2\"", "chart_version = \"stable\"")],
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
