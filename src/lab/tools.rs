//! Preflight: the privileges and host tools the lab needs, checked before
//! anything is created, with one install command for everything missing.
use std::path::Path;

use anyhow::Result;

use super::plan::DhcpKind;
use super::plan::{Firmware, LabPlan};
use super::ServerKind;
use crate::error::BadInput;

/// A program on PATH (or in the sbin directories) or a file, and its Debian package.
struct Need {
    what: &'static str,
    package: &'static str,
}

fn found(what: &str) -> bool {
    if what.starts_with('/') {
        return Path::new(what).exists();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(Into::into))
        .any(|dir| dir.join(what).is_file())
}

/// What this plan needs on the host.
fn needs(plan: &LabPlan, server: ServerKind) -> Vec<Need> {
    let mut needs = vec![
        Need {
            what: "ip",
            package: "iproute2",
        },
        Need {
            what: "ss",
            package: "iproute2",
        },
        Need {
            what: "qemu-system-x86_64",
            package: "qemu-system-x86",
        },
        Need {
            what: "dnsmasq",
            package: "dnsmasq-base",
        },
    ];
    if plan.vms.iter().any(|vm| vm.firmware == Firmware::Bios) {
        needs.push(Need {
            what: "/usr/lib/ipxe/qemu/efi-virtio.rom",
            package: "ipxe-qemu",
        });
    }
    if plan.vms.iter().any(|vm| vm.firmware == Firmware::Uefi) {
        needs.push(Need {
            what: super::qemu::OVMF_CODE,
            package: "ovmf",
        });
        needs.push(Need {
            what: super::qemu::OVMF_VARS,
            package: "ovmf",
        });
    }
    if server.http_by_nginx() {
        needs.push(Need {
            what: "nginx",
            package: "nginx-light",
        });
    }
    if server == ServerKind::NginxTftpd {
        needs.push(Need {
            what: "in.tftpd",
            package: "tftpd-hpa",
        });
    }
    match plan.dhcp {
        DhcpKind::Dnsmasq => {}
        DhcpKind::Isc => needs.push(Need {
            what: "dhcpd",
            package: "isc-dhcp-server",
        }),
        DhcpKind::Kea => needs.push(Need {
            what: "kea-dhcp4",
            package: "kea-dhcp4-server",
        }),
    }
    if plan.relayed() {
        needs.push(Need {
            what: "dhcrelay",
            package: "isc-dhcp-relay",
        });
    }
    needs
}

/// Fails with a clear message naming everything missing and how to install it.
pub(crate) fn check(plan: &LabPlan, server: ServerKind) -> Result<()> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Err(BadInput::new(
            "pxebuild lab needs root (CAP_NET_ADMIN) to create its network namespace, \
             bridge and taps: run it with sudo",
        ));
    }
    let needs = needs(plan, server);
    let missing: Vec<&Need> = needs.iter().filter(|n| !found(n.what)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let what: Vec<&str> = missing.iter().map(|n| n.what).collect();
    let mut packages: Vec<&str> = missing.iter().map(|n| n.package).collect();
    packages.dedup();
    Err(BadInput::new(format!(
        "the lab needs {} (missing); install with: apt-get install -y --no-install-recommends {}",
        what.join(", "),
        packages.join(" ")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packages(server: ServerKind) -> Vec<&'static str> {
        packages_with(server, DhcpKind::Dnsmasq)
    }

    fn packages_with(server: ServerKind, dhcp: DhcpKind) -> Vec<&'static str> {
        let plan = LabPlan {
            dhcp,
            ..LabPlan::sample()
        };
        needs(&plan, server).iter().map(|n| n.package).collect()
    }

    #[test]
    fn each_server_kind_needs_its_own_peers() {
        let own = packages(ServerKind::Pxebuild);
        assert!(!own.contains(&"nginx-light") && !own.contains(&"tftpd-hpa"));
        let dnsmasq = packages(ServerKind::Nginx);
        assert!(dnsmasq.contains(&"nginx-light") && !dnsmasq.contains(&"tftpd-hpa"));
        let tftpd = packages(ServerKind::NginxTftpd);
        assert!(tftpd.contains(&"nginx-light") && tftpd.contains(&"tftpd-hpa"));
        assert!(
            tftpd.contains(&"dnsmasq-base"),
            "dnsmasq is still the DHCP server"
        );
    }

    #[test]
    fn each_dhcp_kind_needs_its_own_server() {
        let isc = packages_with(ServerKind::Pxebuild, DhcpKind::Isc);
        assert!(isc.contains(&"isc-dhcp-server") && !isc.contains(&"kea-dhcp4-server"));
        let kea = packages_with(ServerKind::Pxebuild, DhcpKind::Kea);
        assert!(kea.contains(&"kea-dhcp4-server") && !kea.contains(&"isc-dhcp-server"));
        assert!(
            kea.contains(&"dnsmasq-base"),
            "dnsmasq still sends router advertisements"
        );
        let own = packages(ServerKind::Pxebuild);
        assert!(!own.contains(&"isc-dhcp-server") && !own.contains(&"kea-dhcp4-server"));
    }

    #[test]
    fn programs_and_files_are_found() {
        assert!(found("sh"));
        assert!(found("/"));
        assert!(!found("no-such-program-pxebuild"));
        assert!(!found("/no/such/file"));
    }
}
