//! The boot stages a node passes, as the transfer log shows them: which log
//! line marks which stage (a file fetched, a beacon), in the order a PXE boot
//! reaches them. `serve --status --format json` and the status page
//! (`serve::page`) show the first time each stage was reached.
use crate::beacon::Beacon;

/// One stage of a node's way from power-on to a cluster member.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// The node's first request: DHCP gave it its address and a boot file.
    Dhcp,
    /// A loader binary over TFTP (`lpxelinux.0`, `syslinux.efi`, `ipxe.efi`, `ldlinux.*`).
    Loader,
    /// The loader's config (`pxelinux.cfg/…`, `*.ipxe`).
    Config,
    Kernel,
    Initrd,
    /// An Ignition config (`install.ign`, then `node.ign`).
    Ignition,
    /// The beacon `install-done` (or `install-skipped`: the disk already held the node).
    Install,
    FirstBoot,
    Sysexts,
    Kubeadm,
    Cilium,
}

impl Stage {
    /// Every stage, in boot order.
    pub const ALL: [Stage; 11] = [
        Stage::Dhcp,
        Stage::Loader,
        Stage::Config,
        Stage::Kernel,
        Stage::Initrd,
        Stage::Ignition,
        Stage::Install,
        Stage::FirstBoot,
        Stage::Sysexts,
        Stage::Kubeadm,
        Stage::Cilium,
    ];

    /// The name in JSON and in the page's `data-stage` attributes.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Dhcp => "dhcp",
            Stage::Loader => "loader",
            Stage::Config => "config",
            Stage::Kernel => "kernel",
            Stage::Initrd => "initrd",
            Stage::Ignition => "ignition",
            Stage::Install => "install",
            Stage::FirstBoot => "first-boot",
            Stage::Sysexts => "sysexts",
            Stage::Kubeadm => "kubeadm",
            Stage::Cilium => "cilium",
        }
    }

    /// The page's column heading.
    pub fn title(self) -> &'static str {
        match self {
            Stage::Dhcp => "DHCP",
            Stage::Loader => "Loader",
            Stage::Config => "Config",
            Stage::Kernel => "Kernel",
            Stage::Initrd => "Initrd",
            Stage::Ignition => "Ignition",
            Stage::Install => "Install",
            Stage::FirstBoot => "First boot",
            Stage::Sysexts => "Sysexts",
            Stage::Kubeadm => "kubeadm",
            Stage::Cilium => "Cilium",
        }
    }

    /// The stage a file served whole or in part marks, by its path as logged
    /// (`tftp/…`, `http/…`); `None` for the other files (sysext images, the
    /// disk image flatcar-install fetches).
    pub fn of_fetch(path: &str) -> Option<Stage> {
        // Image pulls (the OCI API) name images, never boot files, whatever
        // their tags look like.
        let oci = crate::layout::http_relative(path)
            .is_some_and(|rel| rel.starts_with(&format!("{}/", crate::layout::OCI_V2)));
        if oci {
            return None;
        }
        let name = path.rsplit('/').next().unwrap_or(path);
        let tftp = crate::layout::tftp_relative(path);
        // Both loaders' configs: BIOS (`pxelinux.cfg/…`) and UEFI
        // (`efi64/pxelinux.cfg/…`).
        let pxelinux_config = tftp
            .and_then(crate::layout::pxelinux_config_is_efi)
            .is_some();
        if pxelinux_config || name.ends_with(".ipxe") {
            Some(Stage::Config)
        } else if tftp.is_some()
            && ([".0", ".efi", ".kpxe", ".pxe"]
                .iter()
                .any(|ext| name.ends_with(ext))
                || name.starts_with("ldlinux."))
        {
            Some(Stage::Loader)
        } else if name.contains("vmlinuz") {
            Some(Stage::Kernel)
        } else if name.contains(".cpio") || crate::layout::pxe_initrd_of_part(path).is_some() {
            Some(Stage::Initrd)
        } else if name.ends_with(".ign") {
            Some(Stage::Ignition)
        } else {
            None
        }
    }

    /// The stage a beacon marks (docs/cluster.md lists them); `None` for the
    /// others (`install-started`, timeouts, a missing disk), which the page
    /// shows as the node's last beacon instead.
    pub fn of_milestone(milestone: &str) -> Option<Stage> {
        match milestone.parse().ok()? {
            Beacon::InstallDone | Beacon::InstallSkipped => Some(Stage::Install),
            Beacon::FirstBoot => Some(Stage::FirstBoot),
            Beacon::SysextsMerged => Some(Stage::Sysexts),
            Beacon::KubeadmDone => Some(Stage::Kubeadm),
            Beacon::CiliumReady => Some(Stage::Cilium),
            _ => None,
        }
    }
}

/// Milliseconds since the epoch of a log timestamp (`2026-11-26T21:50:00.123Z`,
/// as `clock::rfc3339_ms` writes them); `None` for anything else.
pub(crate) fn unix_ms(time: &str) -> Option<i64> {
    let b = time.as_bytes();
    if b.len() != 24 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[19] != b'.' {
        return None;
    }
    let num = |from: usize, to: usize| -> Option<i64> {
        let digits = time.get(from..to)?;
        digits
            .bytes()
            .all(|d| d.is_ascii_digit())
            .then(|| digits.parse().ok())?
    };
    let days = crate::clock::days_from_civil(
        num(0, 4)?,
        u32::try_from(num(5, 7)?).ok()?,
        u32::try_from(num(8, 10)?).ok()?,
    );
    let secs = days * 86_400 + num(11, 13)? * 3600 + num(14, 16)? * 60 + num(17, 19)?;
    (b[23] == b'Z').then_some(secs * 1000 + num(20, 23)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_of_a_pxe_boot_mark_their_stages() {
        for (path, stage) in [
            ("tftp/lpxelinux.0", Some(Stage::Loader)),
            ("tftp/ldlinux.c32", Some(Stage::Loader)),
            ("tftp/efi64/syslinux.efi", Some(Stage::Loader)),
            ("tftp/efi64/ldlinux.e64", Some(Stage::Loader)),
            ("tftp/ipxe.efi", Some(Stage::Loader)),
            (
                "tftp/pxelinux.cfg/01-52-54-00-20-00-11",
                Some(Stage::Config),
            ),
            (
                "tftp/efi64/pxelinux.cfg/01-52-54-00-20-00-12",
                Some(Stage::Config),
            ),
            ("tftp/efi64/pxelinux.cfg/default", Some(Stage::Config)),
            ("http/ipxe/boot.ipxe", Some(Stage::Config)),
            (
                "http/flatcar/4593.2.5/flatcar_production_pxe.vmlinuz",
                Some(Stage::Kernel),
            ),
            (
                "http/flatcar/4593.2.5/flatcar_production_pxe_image.cpio.gz",
                Some(Stage::Initrd),
            ),
            ("http/flatcar/4593.2.5/pxe-initrd/07", Some(Stage::Initrd)),
            ("http/ignition/cp1-9f2c/install.ign", Some(Stage::Ignition)),
            (
                "http/flatcar/4593.2.5/flatcar_production_image.bin.bz2",
                None,
            ),
            ("http/sysext/kubernetes/SHA256SUMS", None),
            ("http/boot.0", None),
            ("http/v2/example.test/vmlinuz/manifests/boot.ipxe", None),
        ] {
            assert_eq!(Stage::of_fetch(path), stage, "{path}");
        }
        assert_eq!(Stage::of_milestone("install-skipped"), Some(Stage::Install));
        assert_eq!(Stage::of_milestone("install-disk-missing"), None);
        let mut sorted = Stage::ALL;
        sorted.sort();
        assert_eq!(sorted, Stage::ALL, "ALL is in boot order");
    }

    #[test]
    fn log_times_parse_to_unix_ms() {
        assert_eq!(unix_ms("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(
            unix_ms(&crate::clock::rfc3339_ms(1_796_329_800_123)),
            Some(1_796_329_800_123)
        );
        for bad in ["", "1970-01-01T00:00:00Z", "1970-01-01T00:00:00.00xZ", "-"] {
            assert_eq!(unix_ms(bad), None, "{bad}");
        }
    }
}
