//! Checks of what the nodes run: the pinned Flatcar release, the sysext
//! versions, Cilium's MTU, SSH keys, update policy, sources and Argo CD.
use super::{is_dotted_version, is_v_version, Checker};
use crate::site::schema::{Cilium, Flatcar, SiteFile, Ssh, Sysext};
use crate::site::source::KeyPath;

const CHANNELS: &[&str] = &["stable", "beta", "alpha", "lts"];
const ARCHES: &[&str] = &["amd64", "arm64"];
const FLATCAR_UPDATES: &[&str] = &["disabled", "enabled"];
const REBOOT_MANAGERS: &[&str] = &["kured", "locksmithd"];
/// Bytes WireGuard adds to every packet Cilium encrypts (IPv6 outer header worst case).
pub const WIREGUARD_OVERHEAD: u32 = 95;
const SSH_KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

pub(super) fn check_software(c: &mut Checker<'_, '_>, file: &SiteFile) {
    check_flatcar(c, &file.flatcar);
    check_sysext(c, &file.sysext, &file.cluster.kubernetes_version);
    check_cilium(c, &file.cilium);
    check_ssh(c, &file.ssh);
    let up = &file.updates;
    c.one_of(
        &KeyPath::of("updates.flatcar"),
        &up.flatcar,
        FLATCAR_UPDATES,
    );
    c.one_of(
        &KeyPath::of("updates.reboot_manager"),
        &up.reboot_manager,
        REBOOT_MANAGERS,
    );
    if let Some(mirror) = &file.sources.mirror {
        if !(mirror.starts_with("http://") || mirror.starts_with("https://")) {
            let msg = format!("{mirror:?} is not an http:// or https:// URL");
            c.error(&KeyPath::of("sources.mirror"), msg);
        }
    }
    let chart = &file.argocd.chart_version;
    if !is_dotted_version(chart) {
        let msg = format!("{chart:?} is not a Helm chart version (want e.g. \"8.1.2\")");
        c.error(&KeyPath::of("argocd.chart_version"), msg);
    }
}

fn check_flatcar(c: &mut Checker<'_, '_>, fc: &Flatcar) {
    c.one_of(&KeyPath::of("flatcar.channel"), &fc.channel, CHANNELS);
    c.one_of(&KeyPath::of("flatcar.arch"), &fc.arch, ARCHES);
    let path = KeyPath::of("flatcar.version");
    let v = &fc.version;
    if v == "current" {
        // Accepted without the network: the build resolves it through the
        // channel's current/version.txt and records the result in
        // dist/manifest.json. A warning, because two builds may then differ.
        c.warn(
            &path,
            format!(
                "\"current\" is resolved at build time through the {} channel's \
                 current/version.txt (the build prints and records the version in \
                 dist/manifest.json); pin a release such as \"4593.2.5\" so every build \
                 installs the same image",
                fc.channel
            ),
        );
    } else if !is_dotted_version(v) {
        c.error(
            &path,
            format!("{v:?} is not a Flatcar release (want NNNN.N.N, e.g. \"4593.2.5\")"),
        );
    }
}

fn check_sysext(c: &mut Checker<'_, '_>, sx: &Sysext, kubernetes_version: &str) {
    let path = KeyPath::of("sysext.kubernetes");
    if sx.kubernetes != kubernetes_version {
        c.error(
            &path,
            format!(
                "{:?} does not match cluster.kubernetes_version {kubernetes_version:?}; \
                 kubeadm and the kubelet must run the release the cluster is configured for",
                sx.kubernetes
            ),
        );
    }
    if !is_v_version(&sx.cilium) {
        let msg = format!(
            "{:?} is not a release version (want vX.Y.Z, e.g. \"v0.18.2\")",
            sx.cilium
        );
        c.error(&KeyPath::of("sysext.cilium"), msg);
    }
    if let Some(v) = sx.containerd.as_deref().filter(|v| !v.is_empty()) {
        if !is_dotted_version(v.strip_prefix('v').unwrap_or(v)) {
            let msg = format!("{v:?} is not a release version (want e.g. \"1.7.27\")");
            c.error(&KeyPath::of("sysext.containerd"), msg);
        }
    }
}

fn check_cilium(c: &mut Checker<'_, '_>, ci: &Cilium) {
    if !is_dotted_version(&ci.version) {
        let msg = format!(
            "{:?} is not a Cilium release (want X.Y.Z, e.g. \"1.17.4\")",
            ci.version
        );
        c.error(&KeyPath::of("cilium.version"), msg);
    }
    if !(576..=65535).contains(&ci.link_mtu) {
        c.error(
            &KeyPath::of("cilium.link_mtu"),
            format!("{} is not a link MTU (576 to 65535)", ci.link_mtu),
        );
        return;
    }
    let Some(mtu) = ci.mtu else { return };
    let path = KeyPath::of("cilium.mtu");
    if mtu > ci.link_mtu {
        c.error(
            &path,
            format!("{mtu} is larger than cilium.link_mtu {}", ci.link_mtu),
        );
    } else if ci.wireguard && mtu > ci.link_mtu - WIREGUARD_OVERHEAD {
        let max = ci.link_mtu - WIREGUARD_OVERHEAD;
        c.warn(
            &path,
            format!(
                "{mtu} leaves no room for WireGuard's {WIREGUARD_OVERHEAD}-byte overhead on a \
                 {}-byte link; encrypted packets would fragment or drop (use at most {max}, or omit mtu)",
                ci.link_mtu
            ),
        );
    }
}

fn check_ssh(c: &mut Checker<'_, '_>, ssh: &Ssh) {
    let path = KeyPath::of("ssh.authorized_keys");
    if ssh.authorized_keys.is_empty() {
        c.error(&path, "is empty; without a key nobody can log in as core");
    }
    for (i, key) in ssh.authorized_keys.iter().enumerate() {
        let item = path.clone().index(i);
        let mut fields = key.split_whitespace();
        let kind = fields.next().unwrap_or("");
        if !SSH_KEY_TYPES.contains(&kind) || fields.next().is_none() {
            let msg = "is not an OpenSSH public key (want \"ssh-ed25519 AAAA... comment\")";
            c.error(&item, msg);
        } else if key.contains("ReplaceWith") {
            c.warn(
                &item,
                "is the example placeholder; put your own public key here",
            );
        }
    }
}
