//! Checks of addresses and networks: the node subnet and gateway, the boot
//! server, and the cluster's endpoint, CIDRs, names and token lifetime.
use std::net::Ipv4Addr;

use super::{Checker, VPrefix};
use crate::site::schema::{BootServer, RawCluster, RawSiteFile};
use crate::site::source::KeyPath;
use crate::site::types::{check_dns_label, Duration, Endpoint, EndpointMode, Ipv4Cidr};

const ADDRESSING: &[&str] = &["static", "dhcp"];
const LOADERS: &[&str] = &["bios", "uefi", "ipxe"];

pub(super) fn check_network(c: &mut Checker<'_, '_>, file: &RawSiteFile) {
    let net = &file.network;
    let subnet = c.parse::<Ipv4Cidr>(&KeyPath::of("network.subnet"), &net.subnet);
    c.known.subnet = subnet;
    let path = KeyPath::of("network.gateway");
    if let Some(gw) = c.ipv4(&path, &net.gateway) {
        c.known.gateway = Some(gw);
        check_host_in_subnet(c, &path, gw);
    }
    for (i, dns) in net.dns.iter().enumerate() {
        let path = KeyPath::of("network.dns").index(i);
        let Some(ip) = c.ipv4(&path, dns) else {
            continue;
        };
        // Loopback stays allowed: a node may run its own resolver.
        if check_unicast(c, &path, ip) {
            check_not_subnet_edge(c, &path, ip);
        }
    }
    for (i, server) in net.ntp.iter().enumerate() {
        check_ntp_server(c, &KeyPath::of("network.ntp").index(i), server);
    }
    c.one_of(
        &KeyPath::of("network.addressing"),
        &net.addressing,
        ADDRESSING,
    );
}

/// A time server: an IPv4 address or a DNS host name (what systemd-networkd's
/// `NTP=` takes; it ends up on one line of the node's .network file).
fn check_ntp_server(c: &mut Checker<'_, '_>, path: &KeyPath, server: &str) {
    if let Ok(ip) = server.parse::<Ipv4Addr>() {
        check_unicast(c, path, ip);
        return;
    }
    let name = server.strip_suffix('.').unwrap_or(server);
    let looks_numeric = name.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    let is_name = !name.is_empty()
        && name.len() <= 253
        && !looks_numeric
        && name.split('.').all(|label| check_dns_label(label).is_ok());
    if !is_name {
        c.error(
            path,
            format!("{server:?} is not an IPv4 address or a lower-case host name (e.g. \"10.20.0.1\" or \"ntp.example.com\")"),
        );
    }
}

/// Reports `ip` at `path` when it lies outside the node subnet.
pub(super) fn check_in_subnet(c: &mut Checker<'_, '_>, path: &KeyPath, ip: Ipv4Addr) -> bool {
    let Some(subnet) = c.known.subnet else {
        return true;
    };
    if subnet.contains(ip) {
        return true;
    }
    c.error(path, format!("{ip} is outside network.subnet {subnet}"));
    false
}

/// Reports `ip` at `path` unless it is an address a host of the node subnet
/// can have: inside the subnet, and not its network or broadcast address.
pub(super) fn check_host_in_subnet(c: &mut Checker<'_, '_>, path: &KeyPath, ip: Ipv4Addr) {
    if check_in_subnet(c, path, ip) {
        check_not_subnet_edge(c, path, ip);
    }
}

/// Reports `ip` at `path` when it is the node subnet's network or broadcast
/// address: no host answers there, and a packet sent to the broadcast address
/// reaches every machine on the segment.
pub(super) fn check_not_subnet_edge(c: &mut Checker<'_, '_>, path: &KeyPath, ip: Ipv4Addr) -> bool {
    let Some(subnet) = subnet_edge(c, ip) else {
        return true;
    };
    c.error(
        path,
        format!("{ip} is the network or broadcast address of {subnet}"),
    );
    false
}

/// The node subnet when `ip` is its network or broadcast address. A /31 or
/// /32 has neither (RFC 3021: both of a /31's addresses are hosts).
fn subnet_edge(c: &Checker<'_, '_>, ip: Ipv4Addr) -> Option<Ipv4Cidr> {
    c.known
        .subnet
        .filter(|s| s.prefix() < 31 && (ip == s.network() || ip == s.broadcast()))
}

/// Reports `ip` at `path` when no node can send a request to it: 0.0.0.0
/// means "this host" only as a source, 255.255.255.255 is every host on the
/// segment, and a multicast group is not a server.
fn check_unicast(c: &mut Checker<'_, '_>, path: &KeyPath, ip: Ipv4Addr) -> bool {
    let why = if ip.is_unspecified() {
        "the unspecified address"
    } else if ip.is_broadcast() {
        "the limited broadcast address"
    } else if ip.is_multicast() {
        "a multicast address"
    } else {
        return true;
    };
    c.error(path, format!("{ip} is {why}, not a server's address"));
    false
}

pub(super) fn check_boot_server(c: &mut Checker<'_, '_>, bs: &BootServer) {
    check_boot_server_address(c, &bs.address);
    for (key, port) in [("http_port", bs.http_port), ("tftp_port", bs.tftp_port)] {
        if port == 0 {
            c.error(&KeyPath::of("boot_server").key(key), "port 0 is not a port");
        }
    }
    let path = KeyPath::of("boot_server.loaders");
    if bs.loaders.is_empty() {
        c.error(
            &path,
            "is empty; list at least one of \"bios\", \"uefi\", \"ipxe\"",
        );
    }
    for (i, loader) in bs.loaders.iter().enumerate() {
        let item = path.clone().index(i);
        if c.one_of(&item, loader, LOADERS) && bs.loaders[..i].contains(loader) {
            c.error(&item, format!("{loader:?} is listed twice"));
        }
    }
    for (i, console) in bs.consoles.iter().enumerate() {
        if console.trim().is_empty() || console.contains(char::is_whitespace) {
            let path = KeyPath::of("boot_server.consoles").index(i);
            c.error(
                &path,
                format!("{console:?} is not a console (want e.g. \"ttyS0,115200n8\")"),
            );
        }
    }
}

/// The boot server may sit on another network (a DHCP relay forwards the
/// PXE requests and next-server is routed), so it need not be inside the
/// subnet; but every node fetches from it, so it must be a unicast address
/// other than the nodes' own loopback, and not an edge of the node subnet.
fn check_boot_server_address(c: &mut Checker<'_, '_>, address: &str) {
    let path = KeyPath::of("boot_server.address");
    let Some(ip) = c.ipv4(&path, address) else {
        return;
    };
    let usable = if ip.is_loopback() {
        c.error(
            &path,
            format!("{ip} is a loopback address; each node would fetch from itself"),
        );
        false
    } else {
        check_unicast(c, &path, ip) && check_not_subnet_edge(c, &path, ip)
    };
    // An unusable address is not recorded, so no clash with it is reported twice.
    if usable {
        c.known.boot_server = Some(ip);
    }
}

pub(super) fn check_cluster(c: &mut Checker<'_, '_>, cl: &RawCluster) {
    if let Err(why) = check_dns_label(&cl.name) {
        c.error(&KeyPath::of("cluster.name"), format!("{:?} {why}", cl.name));
    }
    let path = KeyPath::of("cluster.kubernetes_version");
    let version = &cl.kubernetes_version;
    let release = "a Kubernetes release (want e.g. \"v1.33.2\")";
    if c.version(&path, version, VPrefix::Required, release) {
        check_kubeadm_api(c, &path, version);
    }
    check_endpoint(c, cl);
    check_cidrs(c, cl);
    check_dns_domain(c, &cl.dns_domain);
    check_token_ttl(c, cl);
}

/// The oldest Kubernetes whose kubeadm reads the `kubeadm.k8s.io/v1beta4`
/// configs the templates render (list-form `kubeletExtraArgs`,
/// `encryptionAlgorithm`, `proxy.disabled` are v1beta4's).
const MIN_KUBERNETES_MINOR: u32 = 31;

fn check_kubeadm_api(c: &mut Checker<'_, '_>, path: &KeyPath, version: &str) {
    let minor = version
        .trim_start_matches('v')
        .split('.')
        .map(|part| part.parse::<u32>().unwrap_or(0))
        .collect::<Vec<_>>();
    if matches!(minor.as_slice(), [1, m, _] if *m < MIN_KUBERNETES_MINOR) {
        c.error(
            path,
            format!(
                "{version:?} is older than v1.{MIN_KUBERNETES_MINOR}: the kubeadm configs are \
                 kubeadm.k8s.io/v1beta4, which kubeadm reads from v1.{MIN_KUBERNETES_MINOR} on; \
                 use v1.{MIN_KUBERNETES_MINOR}.0 or newer"
            ),
        );
    }
}

fn check_endpoint(c: &mut Checker<'_, '_>, cl: &RawCluster) {
    let mode_ok = c.one_of(
        &KeyPath::of("cluster.endpoint_mode"),
        &cl.endpoint_mode,
        &EndpointMode::NAMES,
    );
    let path = KeyPath::of("cluster.endpoint");
    let Some(ep) = c.parse::<Endpoint>(&path, &cl.endpoint) else {
        return;
    };
    // Loopback stays allowed with "external": a load balancer on every node
    // at 127.0.0.1 is a known pattern.
    if !check_unicast(c, &path, ep.ip) {
        return;
    }
    // kube-vip announces the VIP on the node network by ARP, so it must be
    // an address of that network; an external load balancer may live anywhere.
    let kube_vip = cl.endpoint_mode.parse() == Ok(EndpointMode::KubeVip);
    if mode_ok && kube_vip && !subnet_has(c, ep.ip) {
        let subnet = c.known.subnet.map(|s| s.to_string()).unwrap_or_default();
        c.error(
            &path,
            format!(
                "{} is outside network.subnet {subnet}; with endpoint_mode = \"kube-vip\" \
                 the VIP must be a free address of the node subnet",
                ep.ip
            ),
        );
    }
    if let Some(owner) = endpoint_clash(c, ep.ip) {
        c.error(
            &path,
            format!(
                "{} is already {owner}; the endpoint needs an address of its own",
                ep.ip
            ),
        );
    }
}

fn subnet_has(c: &Checker<'_, '_>, ip: Ipv4Addr) -> bool {
    c.known.subnet.is_none_or(|s| s.contains(ip))
}

/// What else `ip` already is, if anything: a node, the gateway, the boot
/// server, or the subnet's network or broadcast address.
fn endpoint_clash(c: &Checker<'_, '_>, ip: Ipv4Addr) -> Option<String> {
    if let Some((i, _)) = c.known.node_ips.iter().find(|(_, a)| *a == ip) {
        return Some(format!("the IP of {}", c.label(&KeyPath::node(*i, ""))));
    }
    if c.known.gateway == Some(ip) {
        return Some("network.gateway".into());
    }
    if c.known.boot_server == Some(ip) {
        return Some("boot_server.address".into());
    }
    let subnet = subnet_edge(c, ip)?;
    Some(format!("the network or broadcast address of {subnet}"))
}

fn check_cidrs(c: &mut Checker<'_, '_>, cl: &RawCluster) {
    let pod = c.parse::<Ipv4Cidr>(&KeyPath::of("cluster.pod_cidr"), &cl.pod_cidr);
    let svc = c.parse::<Ipv4Cidr>(&KeyPath::of("cluster.service_cidr"), &cl.service_cidr);
    let subnet = c.known.subnet;
    let pairs = [
        ("cluster.pod_cidr", pod, "network.subnet", subnet),
        ("cluster.service_cidr", svc, "network.subnet", subnet),
        ("cluster.service_cidr", svc, "cluster.pod_cidr", pod),
    ];
    for (key, a, other_key, b) in pairs {
        if let (Some(a), Some(b)) = (a, b) {
            if a.overlaps(&b) {
                let msg = format!("{a} overlaps {other_key} {b}; routes would be ambiguous");
                c.error(&KeyPath::of(key), msg);
            }
        }
    }
}

fn check_dns_domain(c: &mut Checker<'_, '_>, domain: &str) {
    let ok = domain.len() <= 253 && domain.split('.').all(|l| check_dns_label(l).is_ok());
    if !ok {
        c.error(
            &KeyPath::of("cluster.dns_domain"),
            format!("{domain:?} is not a DNS domain (lower-case labels separated by '.')"),
        );
    }
}

fn check_token_ttl(c: &mut Checker<'_, '_>, cl: &RawCluster) {
    let ttl_path = KeyPath::of("cluster.bootstrap_token_ttl");
    let ttl = c.parse::<Duration>(&ttl_path, &cl.bootstrap_token_ttl);
    let window = c.parse::<Duration>(&KeyPath::of("cluster.bring_up_window"), &cl.bring_up_window);
    let Some(ttl) = ttl else { return };
    if ttl.as_secs() == 0 {
        c.warn(
            &ttl_path,
            "0 makes the bootstrap token never expire; a leaked token could join machines forever",
        );
    } else if let Some(window) = window.filter(|w| ttl < *w) {
        c.warn(
            &ttl_path,
            format!(
                "{ttl} is shorter than cluster.bring_up_window {window}; nodes that boot \
                 after the token expires cannot join (raise it to at least {window})"
            ),
        );
    }
}
