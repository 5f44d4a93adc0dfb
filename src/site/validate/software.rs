//! Checks of what the nodes run: the pinned Flatcar release, the sysext
//! versions, Cilium's MTU, SSH keys, update policy, sources, Argo CD and
//! the container images (`[images]`).
use super::{Checker, VPrefix};
use crate::images::catalog;
use crate::images::ImageRef;
use crate::site::schema::{Cilium, Flatcar, ImageMode, Images, RawSiteFile, Sources, Ssh, Sysext};
use crate::site::source::KeyPath;

const CHANNELS: &[&str] = &["stable", "beta", "alpha", "lts"];
/// Architectures a site can boot: the loaders pxebuild ships (syslinux's BIOS
/// and x86-64 EFI loaders, iPXE's x86 builds) run on amd64 only.
const ARCHES: &[&str] = &["amd64"];
const FLATCAR_UPDATES: &[&str] = &["disabled", "enabled"];
const REBOOT_MANAGERS: &[&str] = &["kured", "locksmithd"];
/// `sources.loaders` (src/fetch/sources.rs reads the same names).
const LOADER_SOURCES: &[&str] = &["debian", "upstream"];
const APPLY: &[&str] = &["manual", "rolling"];
/// Bytes WireGuard adds to every packet Cilium encrypts: an IPv6 outer header
/// (the worst case), UDP, and WireGuard's 32-byte header and tag; Cilium's own
/// figure, which it subtracts from its device MTU for pod routes.
const WIREGUARD_OVERHEAD: u32 = 80;
/// The smallest MTU: IPv6's minimum link MTU.
const MIN_MTU: u32 = 1280;
const SSH_KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

pub(super) fn check_software(c: &mut Checker<'_, '_>, file: &RawSiteFile) {
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
    check_sources(c, &file.sources);
    check_images(c, &file.images);
    if file.images.mode == ImageMode::Serve {
        check_catalog_pins(c, file);
    }
    c.one_of(&KeyPath::of("updates.apply"), &up.apply, APPLY);
    if up.apply == "rolling" && up.reboot_manager != "kured" {
        // Rolling reboots are requested through kured's sentinel; locksmithd
        // reboots only for Flatcar updates and orders nothing.
        c.error(
            &KeyPath::of("updates.apply"),
            format!(
                "\"rolling\" needs updates.reboot_manager = \"kured\" (it is {:?}): kured \
                 reboots one node at a time on request; set reboot_manager = \"kured\" or \
                 apply = \"manual\"",
                up.reboot_manager
            ),
        );
    }
    c.version(
        &KeyPath::of("argocd.chart_version"),
        &file.argocd.chart_version,
        VPrefix::Forbidden,
        "a Helm chart version (want e.g. \"8.1.2\")",
    );
}

/// The mirror's URL, and that every loader setting belongs to the loader
/// source in use: a pin for the upstream tarball is not silently ignored
/// while Debian's packages are fetched.
fn check_sources(c: &mut Checker<'_, '_>, src: &Sources) {
    for (key, url) in [
        ("sources.mirror", &src.mirror),
        ("sources.debian_url", &src.debian_url),
    ] {
        if let Some(url) = url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                let msg = format!("{url:?} is not an http:// or https:// URL");
                c.error(&KeyPath::of(key), msg);
            }
        }
    }
    let path = KeyPath::of("sources.loaders");
    if let Some(value) = &src.loaders {
        if !c.one_of(&path, value, LOADER_SOURCES) {
            return;
        }
        if let Some(dir) = &src.loaders_dir {
            c.error(
                &path,
                format!(
                    "sources.loaders_dir {dir:?} already takes every loader from a local \
                     directory; set one of the two"
                ),
            );
            return;
        }
    }
    let upstream = src.loaders.as_deref() == Some("upstream");
    let upstream_only = [
        ("sources.syslinux_url", src.syslinux_url.is_some()),
        ("sources.syslinux_sha256", src.syslinux_sha256.is_some()),
        ("sources.ipxe_url", src.ipxe_url.is_some()),
        ("sources.ipxe_sha256s", !src.ipxe_sha256s.is_empty()),
    ];
    for (key, set) in upstream_only {
        if set && !upstream {
            c.error(
                &KeyPath::of(key),
                "applies only with sources.loaders = \"upstream\" (the syslinux 6.03 tarball \
                 and boot.ipxe.org's iPXE); the default loaders are Debian's packages, pinned \
                 inside pxebuild: remove it, or set sources.loaders = \"upstream\"",
            );
        }
    }
    if src.debian_url.is_some() && (upstream || src.loaders_dir.is_some()) {
        c.error(
            &KeyPath::of("sources.debian_url"),
            "applies only to Debian's loader packages (sources.loaders = \"debian\", the \
             default, without sources.loaders_dir)",
        );
    }
}

/// Each `images.extra` entry is an image reference (the message names the
/// part that is wrong), listed once; `images.registry_mirror` is an http(s)
/// URL of a registry (the build asks it for `/v2/<registry>/<repository>/…`).
fn check_images(c: &mut Checker<'_, '_>, images: &Images) {
    let mut seen: Vec<(ImageRef, usize)> = Vec::new();
    for (i, text) in images.extra.iter().enumerate() {
        let path = KeyPath::of("images.extra").index(i);
        let Some(image) = c.parse::<ImageRef>(&path, text) else {
            continue;
        };
        match seen.iter().find(|(other, _)| *other == image) {
            Some((_, first)) => {
                let msg = format!(
                    "{text:?} is the same image as images.extra[{first}] ({image}); \
                     list it once"
                );
                c.warn(&path, msg);
            }
            None => seen.push((image, i)),
        }
    }
    if let Some(url) = &images.registry_mirror {
        let path = KeyPath::of("images.registry_mirror");
        let host = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"));
        match host {
            Some(rest) if !rest.is_empty() && !rest.starts_with('/') => {}
            _ => c.error(
                &path,
                format!(
                    "{url:?} is not an http:// or https:// URL of a registry (want e.g. \
                     \"http://mirror.example.com:5000\", which serves registry.k8s.io/pause \
                     as /v2/registry.k8s.io/pause/…)"
                ),
            ),
        }
    }
}

/// An air-gapped site carries every image its cluster pulls, so each pinned
/// release must be one the image catalog can name the images of; a pin it
/// does not cover is refused here, where the operator sees it with `check`,
/// rather than by the build. (Components enabled in the payload's values are
/// checked by the build, which reads the payload.)
fn check_catalog_pins(c: &mut Checker<'_, '_>, file: &RawSiteFile) {
    let pins = catalog::Pins {
        kubernetes: file.cluster.kubernetes_version.clone(),
        cilium: file.cilium.version.clone(),
        argocd_chart: file.argocd.chart_version.clone(),
    };
    for (key, known) in catalog::known_pins(&pins) {
        if let Some(known) = known {
            c.error(
                &KeyPath::of(key),
                format!(
                    "with images.mode = \"serve\" every image the cluster pulls is carried \
                     in dist/, and pxebuild's image catalog does not cover this release \
                     (it knows {known}); pin one it knows, or set images.mode = \"pull\""
                ),
            );
        }
    }
}

fn check_flatcar(c: &mut Checker<'_, '_>, fc: &Flatcar) {
    c.one_of(&KeyPath::of("flatcar.channel"), &fc.channel, CHANNELS);
    let arch = KeyPath::of("flatcar.arch");
    if fc.arch == "arm64" {
        // Flatcar publishes arm64 images, but nothing here could boot them:
        // syslinux has no arm64 loader, and an arm64 UEFI path (iPXE or GRUB)
        // is neither built nor proven in the lab. Refused, not half-supported.
        c.error(
            &arch,
            "\"arm64\" cannot boot yet: pxebuild ships only x86 loaders (syslinux \
             and iPXE for BIOS and x86-64 UEFI) and no arm64 boot path (UEFI arm64 \
             through iPXE or GRUB) is built or proven; use \"amd64\" machines",
        );
    } else {
        c.one_of(&arch, &fc.arch, ARCHES);
    }
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
    } else {
        c.version(
            &path,
            v,
            VPrefix::Forbidden,
            "a Flatcar release (want NNNN.N.N, e.g. \"4593.2.5\")",
        );
    }
}

fn check_sysext(c: &mut Checker<'_, '_>, sx: &Sysext, kubernetes_version: &str) {
    let path = KeyPath::of("sysext.kubernetes");
    // A stand-in for a missing cluster.kubernetes_version matches nothing.
    let reference_sure = !c.unsure(&KeyPath::of("cluster.kubernetes_version"));
    if reference_sure && sx.kubernetes != kubernetes_version {
        c.error(
            &path,
            format!(
                "{:?} does not match cluster.kubernetes_version {kubernetes_version:?}; \
                 kubeadm and the kubelet must run the release the cluster is configured for",
                sx.kubernetes
            ),
        );
    }
    c.version(
        &KeyPath::of("sysext.cilium"),
        &sx.cilium,
        VPrefix::Required,
        "a release version (want vX.Y.Z, e.g. \"v0.18.2\")",
    );
    if let Some(v) = sx.containerd.as_deref().filter(|v| !v.is_empty()) {
        c.version(
            &KeyPath::of("sysext.containerd"),
            v,
            VPrefix::Optional,
            "a release version (want e.g. \"1.7.27\")",
        );
    }
}

fn check_cilium(c: &mut Checker<'_, '_>, ci: &Cilium) {
    c.version(
        &KeyPath::of("cilium.version"),
        &ci.version,
        VPrefix::Forbidden,
        "a Cilium release (want X.Y.Z, e.g. \"1.17.4\")",
    );
    let link_ok = (576..=65535).contains(&ci.link_mtu);
    if !link_ok {
        c.error(
            &KeyPath::of("cilium.link_mtu"),
            format!("{} is not a link MTU (576 to 65535)", ci.link_mtu),
        );
    }
    let Some(mtu) = ci.mtu else { return };
    let path = KeyPath::of("cilium.mtu");
    // IPv6 needs every link to carry 1280-byte packets (RFC 8200, section 5)
    // and Linux turns IPv6 off on a smaller interface; nothing smaller is a
    // real MTU (0 is a typo for "absent").
    if mtu < MIN_MTU {
        c.error(
            &path,
            format!(
                "{mtu} is below {MIN_MTU}, the smallest MTU IPv6 allows; \
                 use at least {MIN_MTU}, or omit mtu to let Cilium derive it"
            ),
        );
    } else if link_ok {
        check_mtu_fits_link(c, &path, mtu, ci);
    }
}

/// `mtu` is Cilium's `MTU` value: the MTU of the network under Cilium's
/// devices. Cilium itself subtracts its tunnel (50 bytes) and WireGuard
/// (80) overheads for the pods' routes. Larger than the link cannot work;
/// with WireGuard, what is left for pods should still carry IPv6.
fn check_mtu_fits_link(c: &mut Checker<'_, '_>, path: &KeyPath, mtu: u32, ci: &Cilium) {
    if mtu > ci.link_mtu {
        c.error(
            path,
            format!("{mtu} is larger than cilium.link_mtu {}", ci.link_mtu),
        );
    } else if ci.wireguard && mtu - WIREGUARD_OVERHEAD < MIN_MTU {
        c.warn(
            path,
            format!(
                "{mtu} leaves pods at most {} once Cilium takes WireGuard's \
                 {WIREGUARD_OVERHEAD} bytes (less in tunnel mode), below the {MIN_MTU} \
                 IPv6 needs; use at least {}, or omit mtu",
                mtu - WIREGUARD_OVERHEAD,
                MIN_MTU + WIREGUARD_OVERHEAD
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
        if let Err(why) = check_ssh_key(key) {
            c.error(&item, why);
        } else if key.contains("ReplaceWith") {
            c.warn(
                &item,
                "is the example placeholder; put your own public key here (a line of ~/.ssh/id_ed25519.pub), or nobody can log in as core",
            );
        }
    }
}

/// One authorized_keys entry: a known key type, then base64 key data, then
/// an optional comment, all on one line.
fn check_ssh_key(key: &str) -> Result<(), String> {
    // Each entry becomes one line of ~core/.ssh/authorized_keys: a newline
    // would start a second entry, which may carry options such as command=.
    if let Some(ch) = key.chars().find(|ch| ch.is_control()) {
        return Err(format!(
            "contains the control character {}; a public key is one line of printable text",
            ch.escape_debug()
        ));
    }
    let mut fields = key.split(' ').filter(|f| !f.is_empty());
    let kind = fields.next().unwrap_or("");
    let data = fields.next().unwrap_or("");
    if !SSH_KEY_TYPES.contains(&kind) || !is_base64(data) {
        return Err("is not an OpenSSH public key (want \"ssh-ed25519 AAAA... comment\")".into());
    }
    Ok(())
}

/// Non-empty standard base64 (OpenSSH writes key data padded, with `=`).
fn is_base64(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssh_keys_of_every_known_type_pass() {
        for kind in SSH_KEY_TYPES {
            let key = format!("{kind} AAAAC3NzaC1lZDI1NTE5AAAAIGZpeA+/= ops@example");
            assert_eq!(check_ssh_key(&key), Ok(()), "{key}");
        }
        assert_eq!(check_ssh_key("ssh-rsa AAAAB3NzaC1yc2E="), Ok(()));
    }

    #[test]
    fn ssh_keys_refuse_control_characters() {
        let two_lines = "ssh-ed25519 AAAAC3Nz a@b\ncommand=\"reboot\" ssh-ed25519 AAAAC3Nz";
        assert_eq!(
            check_ssh_key(two_lines).unwrap_err(),
            "contains the control character \\n; a public key is one line of printable text"
        );
        for bad in [
            "ssh-ed25519 AAAA\r",
            "ssh-ed25519\tAAAA",
            "ssh-ed25519 AAAA \u{7f}",
        ] {
            assert!(
                check_ssh_key(bad)
                    .unwrap_err()
                    .contains("control character"),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ssh_keys_need_a_known_type_and_base64_data() {
        for bad in [
            "",
            "ssh-ed25519",
            "ssh-dss AAAAB3NzaC1kc3M=",
            "from=\"10.0.0.1\" ssh-ed25519 AAAAC3Nz",
            "ssh-ed25519 AAAA$(id) x",
            "ecdsa-sha2-nistp224 AAAAE2Vj",
        ] {
            assert!(check_ssh_key(bad).is_err(), "{bad:?}");
        }
    }
}
