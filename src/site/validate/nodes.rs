//! Checks of the `[[node]]` tables: each node's own values, values that must
//! be unique across nodes, and the number of control-plane nodes.
use std::collections::HashMap;
use std::hash::Hash;
use std::net::Ipv4Addr;

use super::network::check_host_in_subnet;
use super::Checker;
use crate::site::schema::{RawNode, RawSiteFile};
use crate::site::source::KeyPath;
use crate::site::types::{MacAddr, NodeName, Role};

const FIRMWARE: &[&str] = &["bios", "uefi"];
const TAINT_EFFECTS: &[&str] = &["NoSchedule", "PreferNoSchedule", "NoExecute"];

pub(super) fn check_nodes(c: &mut Checker<'_, '_>, file: &RawSiteFile) {
    let mut names = Seen::default();
    let mut macs = Seen::default();
    let mut ips = Seen::default();
    let mut control_planes = Vec::new();
    for (i, node) in file.nodes.iter().enumerate() {
        let at = |key: &str| KeyPath::node(i, key);
        if let Some(name) = c.parse::<NodeName>(&at("name"), &node.name) {
            names.check(c, i, "name", name, &node.name);
        }
        if let Some(mac) = check_mac(c, i, &node.mac) {
            macs.check(c, i, "mac", mac, &node.mac);
        }
        if let Some(ip) = check_ip(c, i, &node.ip) {
            ips.check(c, i, "ip", ip, &node.ip);
            c.known.node_ips.push((i, ip));
        }
        if c.parse::<Role>(&at("role"), &node.role) == Some(Role::ControlPlane) {
            control_planes.push(node.name.as_str());
        }
        check_disk(c, i, &node.disk, file.wipes(node));
        check_firmware(c, i, node, &file.boot_server.loaders);
        check_labels(c, i, node);
        check_taints(c, i, node);
    }
    check_control_plane_count(c, file.nodes.len(), &control_planes);
}

/// First node index seen for each value of one unique key.
struct Seen<T>(HashMap<T, usize>);

impl<T> Default for Seen<T> {
    fn default() -> Self {
        Seen(HashMap::new())
    }
}

impl<T: Hash + Eq> Seen<T> {
    fn check(&mut self, c: &mut Checker<'_, '_>, i: usize, key: &str, value: T, text: &str) {
        if let Some(&first) = self.0.get(&value) {
            let owner = c.label(&KeyPath::node(first, ""));
            c.error(
                &KeyPath::node(i, key),
                format!("{text:?} is already used by {owner}"),
            );
        } else {
            self.0.insert(value, i);
        }
    }
}

fn check_mac(c: &mut Checker<'_, '_>, i: usize, text: &str) -> Option<MacAddr> {
    let path = KeyPath::node(i, "mac");
    let mac = c.parse::<MacAddr>(&path, text)?;
    match mac_misuse(&mac) {
        Some(why) => {
            c.error(&path, format!("{text:?} is {why}"));
            None
        }
        None => Some(mac),
    }
}

/// Why `mac` cannot be a PXE-booting NIC, if it cannot. Broadcast is also
/// multicast; it gets its own words because it is the likelier copy-paste.
fn mac_misuse(mac: &MacAddr) -> Option<&'static str> {
    if mac.is_zero() {
        Some("the all-zero address, which no NIC has (an unset or blanked value?)")
    } else if mac.is_broadcast() {
        Some("the broadcast address; no NIC boots with it")
    } else if mac.is_multicast() {
        Some("a multicast address (low bit of the first octet set); no NIC boots with it")
    } else {
        None
    }
}

fn check_ip(c: &mut Checker<'_, '_>, i: usize, text: &str) -> Option<Ipv4Addr> {
    let path = KeyPath::node(i, "ip");
    let ip = c.ipv4(&path, text)?;
    check_host_in_subnet(c, &path, ip);
    let clash = if c.known.gateway == Some(ip) {
        Some("network.gateway")
    } else if c.known.boot_server == Some(ip) {
        Some("boot_server.address")
    } else {
        None
    };
    if let Some(other) = clash {
        c.error(&path, format!("{ip} is also {other}"));
    }
    Some(ip)
}

fn check_control_plane_count(c: &mut Checker<'_, '_>, nodes: usize, cps: &[&str]) {
    let path = KeyPath::of("node");
    let n = cps.len();
    if nodes == 0 {
        c.error(
            &path,
            "no [[node]] tables; a site needs at least one control-plane node",
        );
    } else if n == 0 {
        c.error(
            &path,
            "no node has role = \"control-plane\"; the cluster needs 1, 3 or 5 to run etcd and the API server",
        );
    } else if n.is_multiple_of(2) {
        c.error(
            &path,
            format!(
                "{n} control-plane nodes ({}) is an even number: etcd needs {} of {n} members \
                 for quorum, so the last one adds no fault tolerance and an even split stops \
                 the cluster; use {} or {}",
                cps.join(", "),
                n / 2 + 1,
                n - 1,
                n + 1
            ),
        );
    }
}

fn check_disk(c: &mut Checker<'_, '_>, i: usize, disk: &str, wipe: bool) {
    let path = KeyPath::node(i, "disk");
    let Some(rest) = disk.strip_prefix("/dev/").filter(|r| !r.is_empty()) else {
        c.error(
            &path,
            format!("{disk:?} is not a device path (want /dev/disk/by-id/...)"),
        );
        return;
    };
    if let Err(why) = check_device_name(rest) {
        c.error(&path, format!("{disk:?} {why}"));
        return;
    }
    // sda, vda, nvme0n1, ... are numbered in probe order, which can change
    // between boots or when a disk is added; flatcar-install would then
    // overwrite the wrong disk.
    if !rest.contains('/') {
        // With `wipe`, the other disk would be erased even if it holds data.
        if wipe {
            c.error(
                &path,
                format!(
                    "{disk:?} is a kernel device name, which can change between boots, and \
                     with wipe = true the installer would erase whichever disk has that name \
                     today, data or not; use a stable /dev/disk/by-id/... path"
                ),
            );
        } else {
            c.warn(
                &path,
                format!(
                    "{disk:?} is a kernel device name, which can change between boots; \
                     use a stable /dev/disk/by-id/... path"
                ),
            );
        }
    }
}

/// The part of a disk path after "/dev/". The path is written into the
/// node's install script, its Butane config and a systemd unit, so it may
/// hold only what udev puts in device names; and it must name the device
/// itself, not walk out of /dev ("/dev/../etc/passwd").
fn check_device_name(rest: &str) -> Result<(), String> {
    if let Some(bad) = rest.chars().find(|&ch| !is_device_path_char(ch)) {
        return Err(format!(
            "has {bad:?}, which no device path needs (allowed: letters, digits and \
             . _ - : + @ = , /); the path is written into a shell script on the node"
        ));
    }
    if rest.split('/').any(|seg| matches!(seg, "" | "." | "..")) {
        return Err(
            "has an empty, \".\" or \"..\" path segment; name the device by its plain \
             path (want /dev/disk/by-id/...)"
                .into(),
        );
    }
    Ok(())
}

/// Characters of /dev/disk/by-id and by-path names ("pci-0000:00:1f.2-ata-1",
/// "nvme-eui.0025388b91c3c1a2", "usb-SanDisk_Cruzer_Blade_4C530001-0:0"):
/// udev replaces anything unusual in a serial or model with '_'. None of
/// them means anything to a shell inside double quotes, to YAML or to systemd.
fn is_device_path_char(ch: char) -> bool {
    ch.is_ascii_alphanumeric() || "._-:+@=,/".contains(ch)
}

fn check_firmware(c: &mut Checker<'_, '_>, i: usize, node: &RawNode, loaders: &[String]) {
    let path = KeyPath::node(i, "firmware");
    let fw = node.firmware.as_str();
    if !c.one_of(&path, fw, FIRMWARE) {
        return;
    }
    let served = loaders.iter().any(|l| l == fw || l == "ipxe");
    if !served && !loaders.is_empty() {
        c.error(
            &path,
            format!(
                "{fw:?} but boot_server.loaders has no {fw:?} loader; this node could not PXE boot"
            ),
        );
    }
}

fn check_labels(c: &mut Checker<'_, '_>, i: usize, node: &RawNode) {
    for (key, value) in &node.labels {
        let path = KeyPath::node(i, "labels").key(key);
        if let Err(why) = check_label_key(key) {
            c.error(&path, format!("key {key:?} {why}"));
        } else if !kubelet_may_set(key) {
            c.error(
                &path,
                format!(
                    "key {key:?} is in the kubernetes.io/k8s.io namespace, where kubelet sets \
                     only node.kubernetes.io/*, kubelet.kubernetes.io/* and the well-known \
                     topology, os and arch labels itself (it refuses to start with others); \
                     use a prefix of your own, or set it with `kubectl label node` once the \
                     node joined"
                ),
            );
        }
        if !is_label_value(value) {
            c.error(&path, format!("{value:?} is not a label value (up to 63 of [A-Za-z0-9-_.], alphanumeric at both ends)"));
        }
    }
}

fn check_taints(c: &mut Checker<'_, '_>, i: usize, node: &RawNode) {
    for (j, taint) in node.taints.iter().enumerate() {
        if let Err(why) = check_taint(taint) {
            c.error(
                &KeyPath::node(i, "taints").index(j),
                format!("{taint:?} {why}"),
            );
        }
    }
}

/// "key=value:Effect" or "key:Effect".
fn check_taint(taint: &str) -> Result<(), String> {
    let shape = "is not a taint (want \"key=value:Effect\" or \"key:Effect\")";
    let (kv, effect) = taint.rsplit_once(':').ok_or(shape)?;
    let (key, value) = kv.split_once('=').unwrap_or((kv, ""));
    check_label_key(key).map_err(|why| format!("has key {key:?} that {why}"))?;
    if !is_label_value(value) {
        return Err(format!("has value {value:?} that is not a label value"));
    }
    if !TAINT_EFFECTS.contains(&effect) {
        return Err(format!(
            "has effect {effect:?} (want NoSchedule, PreferNoSchedule or NoExecute)"
        ));
    }
    Ok(())
}

/// Labels in kubernetes.io or k8s.io (or a subdomain) that kubelet accepts in
/// `--node-labels`; it exits on any other label there (the NodeRestriction
/// rule, "Bounding Self-Labeling Kubelets").
const KUBELET_LABELS: &[&str] = &[
    "kubernetes.io/hostname",
    "kubernetes.io/os",
    "kubernetes.io/arch",
    "beta.kubernetes.io/os",
    "beta.kubernetes.io/arch",
    "beta.kubernetes.io/instance-type",
    "node.kubernetes.io/instance-type",
    "topology.kubernetes.io/zone",
    "topology.kubernetes.io/region",
    "failure-domain.beta.kubernetes.io/zone",
    "failure-domain.beta.kubernetes.io/region",
];

/// Whether kubelet may set label `key` on its own node.
fn kubelet_may_set(key: &str) -> bool {
    let Some((prefix, _)) = key.rsplit_once('/') else {
        return true;
    };
    let within = |domain: &str| prefix == domain || prefix.ends_with(&format!(".{domain}"));
    if !within("kubernetes.io") && !within("k8s.io") {
        return true;
    }
    KUBELET_LABELS.contains(&key) || within("node.kubernetes.io") || within("kubelet.kubernetes.io")
}

/// Kubernetes qualified name: optional "dns.subdomain/" prefix, then a name.
fn check_label_key(key: &str) -> Result<(), String> {
    let (prefix, name) = key
        .rsplit_once('/')
        .map_or((None, key), |(p, n)| (Some(p), n));
    if let Some(p) = prefix {
        let ok = !p.is_empty()
            && p.len() <= 253
            && p.split('.')
                .all(|l| crate::site::types::check_dns_label(l).is_ok());
        if !ok {
            return Err(format!("has prefix {p:?} that is not a DNS subdomain"));
        }
    }
    if name.is_empty() || !is_label_value(name) {
        return Err("is not a label key (name part: 1 to 63 of [A-Za-z0-9-_.])".into());
    }
    Ok(())
}

/// Up to 63 of [A-Za-z0-9-_.], starting and ending alphanumeric; may be empty.
fn is_label_value(v: &str) -> bool {
    let ends_ok = |c: Option<char>| c.is_none_or(|c| c.is_ascii_alphanumeric());
    v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && ends_ok(v.chars().next())
        && ends_ok(v.chars().last())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taints_follow_kubectl_syntax() {
        for good in [
            "dedicated=gpu:NoSchedule",
            "node.example.com/x:NoExecute",
            "a=:PreferNoSchedule",
        ] {
            assert_eq!(check_taint(good), Ok(()), "{good}");
        }
        assert!(check_taint("dedicated=gpu").is_err());
        assert!(check_taint("dedicated=gpu:Never").is_err());
        assert!(check_taint("-bad=x:NoSchedule").is_err());
        assert!(check_taint("k=v v:NoSchedule").is_err());
    }

    #[test]
    fn device_names_from_udev_are_accepted() {
        for good in [
            "sda",
            "nvme0n1",
            "disk/by-id/virtio-disk0",
            "disk/by-id/nvme-eui.0025388b91c3c1a2",
            "disk/by-id/wwn-0x5000c500a1b2c3d4",
            "disk/by-id/usb-SanDisk_Cruzer_Blade_4C530001-0:0",
            "disk/by-id/ata-Samsung_SSD_860_EVO_500GB_S3Z1NB0K123456A",
            "disk/by-id/scsi-0QEMU_QEMU_HARDDISK_drive-scsi0-0-0-0",
            "disk/by-path/pci-0000:00:1f.2-ata-1",
            "disk/by-path/pci-0000:00:14.0-usb-0:1:1.0-scsi-0:0:0:0",
            "disk/by-path/ip-192.0.2.5:3260-iscsi-iqn.2001-04.com.example:st-lun-1",
            "disk/by-id/md-uuid-3f2a+b@c=d,e",
        ] {
            assert_eq!(check_device_name(good), Ok(()), "{good}");
        }
    }

    #[test]
    fn device_names_refuse_shell_syntax_and_path_tricks() {
        for bad in [
            "disk/by-id/x$(reboot -f)`id`",
            "disk/by-id/x;reboot",
            "disk/by-id/x\"y",
            "disk/by-id/x y",
            "disk/by-id/x\ny",
            "disk/by-id/x\\y",
            "disk/by-id/x'y",
            "disk/by-id/x*",
            "disk/by-id/é",
        ] {
            let why = check_device_name(bad).unwrap_err();
            assert!(why.contains("which no device path needs"), "{bad}: {why}");
        }
        for bad in [
            "../etc/passwd",
            "disk//sda",
            "disk/by-id/",
            "./sda",
            "disk/./sda",
        ] {
            let why = check_device_name(bad).unwrap_err();
            assert!(why.contains("path segment"), "{bad}: {why}");
        }
    }

    #[test]
    fn kubelet_sets_only_its_own_kubernetes_io_labels() {
        for ok in [
            "pool",
            "node.example.com/pool",
            "node.kubernetes.io/pool",
            "x.node.kubernetes.io/pool",
            "kubelet.kubernetes.io/anything",
            "topology.kubernetes.io/zone",
            "kubernetes.io/arch",
            "notkubernetes.io/x",
        ] {
            assert!(kubelet_may_set(ok), "{ok}");
        }
        for refused in [
            "node-role.kubernetes.io/worker",
            "kubernetes.io/role",
            "topology.kubernetes.io/rack",
            "example.k8s.io/x",
            "k8s.io/x",
            "node-restriction.kubernetes.io/x",
        ] {
            assert!(!kubelet_may_set(refused), "{refused}");
        }
    }

    #[test]
    fn label_keys_may_carry_a_dns_prefix() {
        assert!(check_label_key("node.example.com/pool").is_ok());
        assert!(check_label_key("pool").is_ok());
        assert!(check_label_key("Bad_Prefix/pool").is_err());
        assert!(check_label_key("example.com/").is_err());
        assert!(is_label_value(""));
        assert!(!is_label_value("-x"));
    }
}
