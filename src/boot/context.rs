//! What the boot and DHCP templates see: the loaders in use, the Flatcar PXE
//! kernel and initrd URLs, and each node's MAC, IP and kernel arguments.
use serde::Serialize;
use serde_json::{json, Value};

use crate::fetch::ArtifactRefs;
use crate::layout;
use crate::render::context::SiteContext;
use crate::secrets::Secrets;
use crate::site::Site;

#[derive(Debug, Clone, Serialize)]
pub struct BootContext {
    pub cluster: String,
    pub address: String,
    pub http_port: u16,
    pub http_base: String,
    pub subnet: String,
    pub flatcar_version: String,
    pub kernel_url: String,
    pub initrd_url: String,
    pub initrd_name: String,
    /// The `initrd=` value of syslinux.efi's configs: the initrd's parts
    /// (`super::initrd_parts`), comma-separated, in order.
    pub efi_initrd: String,
    pub serial: Option<Serial>,
    pub loaders: Loaders,
    /// DHCP filenames (relative to the TFTP root) and the iPXE script URL.
    pub bios_file: String,
    pub efi_file: String,
    pub ipxe: bool,
    pub ipxe_url: String,
    pub nodes: Vec<BootNode>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Loaders {
    pub bios: bool,
    pub uefi: bool,
    pub ipxe: bool,
}

impl Loaders {
    /// The loaders `boot_server.loaders` asks for.
    pub fn of(site: &Site) -> Loaders {
        let has = |l: &str| site.file.boot_server.loaders.iter().any(|x| x == l);
        Loaders {
            bios: has("bios"),
            uefi: has("uefi"),
            ipxe: has("ipxe"),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Serial {
    pub port: u32,
    pub baud: u32,
}

#[derive(Debug, Clone, Serialize)]
pub struct BootNode {
    pub name: String,
    /// Lower-case, colon-separated.
    pub mac: String,
    pub ip: String,
    pub role: String,
    pub install_url: String,
    pub kernel_args: String,
}

impl BootContext {
    pub fn new(
        site: &Site,
        site_ctx: &SiteContext,
        secrets: &Secrets,
        artifacts: &ArtifactRefs,
    ) -> anyhow::Result<BootContext> {
        let bs = &site.file.boot_server;
        let loaders = Loaders::of(site);
        let base = site.http_base();
        let bios = if loaders.bios {
            "lpxelinux.0"
        } else {
            "undionly.kpxe"
        };
        // iPXE's UEFI loader lies at the TFTP root, syslinux's in its own directory.
        let (efi, efi_syslinux) = if loaders.ipxe {
            ("ipxe.efi", false)
        } else {
            ("syslinux.efi", true)
        };
        let f = &site_ctx.flatcar;
        Ok(BootContext {
            cluster: site.file.cluster.name.clone(),
            address: bs.address.clone(),
            http_port: bs.http_port,
            http_base: base.clone(),
            subnet: site.file.network.subnet.to_string(),
            flatcar_version: f.version.clone(),
            kernel_url: f.kernel_url.clone(),
            initrd_url: f.initrd_url.clone(),
            initrd_name: f.initrd_name.clone(),
            efi_initrd: initrd_parts_urls(&base, &f.version).join(","),
            serial: serial(&bs.consoles),
            bios_file: loader_file(artifacts, bios, layout::loader_name(bios, false)),
            efi_file: loader_file(artifacts, efi, layout::loader_name(efi, efi_syslinux)),
            ipxe: loaders.ipxe,
            ipxe_url: format!("{base}/{}", layout::IPXE_ENTRY),
            loaders,
            nodes: boot_nodes(site, secrets)?,
        })
    }

    /// Data for one node's boot template. `initrd` is what the loader's
    /// `initrd=` names: the parts for syslinux.efi, else the whole file.
    pub fn node_data(&self, node: &BootNode, loader: &str) -> Value {
        let in_parts = loader == EFI_SYSLINUX;
        let initrd = if in_parts {
            &self.efi_initrd
        } else {
            &self.initrd_url
        };
        json!({
            "cluster": self.cluster,
            "flatcar_version": self.flatcar_version,
            "kernel_url": self.kernel_url,
            "initrd": initrd,
            "initrd_in_parts": in_parts,
            "initrd_url": self.initrd_url,
            "initrd_name": self.initrd_name,
            "serial": self.serial,
            "loader": loader,
            "node": node,
        })
    }
}

/// The loader that reads the initrd in parts.
pub const EFI_SYSLINUX: &str = "syslinux.efi";

/// The HTTP URLs of the PXE initrd's parts, in order.
pub fn initrd_parts_urls(base: &str, version: &str) -> Vec<String> {
    (0..super::initrd_parts::PARTS)
        .map(|i| crate::render::context::url_of(base, &layout::pxe_initrd_part(version, i)))
        .collect()
}

fn boot_nodes(site: &Site, secrets: &Secrets) -> anyhow::Result<Vec<BootNode>> {
    let base = site.http_base();
    let consoles = &site.file.boot_server.consoles;
    site.file
        .nodes
        .iter()
        .map(|n| {
            let dir = layout::ignition_dir(&secrets.node_dir_name(&n.name)?);
            let install_url = layout::ignition_url(&base, &dir, "install");
            Ok(BootNode {
                kernel_args: kernel_args(&install_url, consoles),
                name: n.name.clone(),
                mac: n.mac.to_string(),
                ip: n.ip.to_string(),
                role: n.role.to_string(),
                install_url,
            })
        })
        .collect()
}

/// The DHCP filename (relative to the TFTP root) of the loader named `file`:
/// where the fetch step placed it, else the conventional `default` name.
fn loader_file(artifacts: &ArtifactRefs, file: &str, default: String) -> String {
    artifacts
        .loaders
        .iter()
        .filter_map(|r| layout::tftp_relative(&r.path))
        .find(|p| p.rsplit('/').next() == Some(file))
        .map_or(default, str::to_string)
}

/// The Flatcar PXE kernel command line (REFERENCE §2): run Ignition on this
/// RAM boot, from the node's install config, on bare metal, with the site's consoles.
pub fn kernel_args(install_url: &str, consoles: &[String]) -> String {
    let mut args = vec![
        "flatcar.first_boot=1".to_string(),
        format!("ignition.config.url={install_url}"),
        "ignition.platform.id=metal".to_string(),
    ];
    args.extend(consoles.iter().map(|c| format!("console={c}")));
    args.join(" ")
}

/// `SERIAL port baud` for syslinux from the first `ttyS<n>[,<baud>…]` console.
fn serial(consoles: &[String]) -> Option<Serial> {
    consoles.iter().find_map(|c| {
        let rest = c.strip_prefix("ttyS")?;
        let (port, opts) = rest.split_once(',').unwrap_or((rest, ""));
        let digits: String = opts.chars().take_while(char::is_ascii_digit).collect();
        Some(Serial {
            port: port.parse().ok()?,
            baud: digits.parse().unwrap_or(115_200),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_from_consoles() {
        let c = vec!["tty0".to_string(), "ttyS1,57600n8".to_string()];
        let s = serial(&c).unwrap();
        assert_eq!((s.port, s.baud), (1, 57600));
        assert!(serial(&["tty0".to_string()]).is_none());
        let args = kernel_args("http://x/i.ign", &c);
        assert_eq!(
            args,
            "flatcar.first_boot=1 ignition.config.url=http://x/i.ign \
             ignition.platform.id=metal console=tty0 console=ttyS1,57600n8"
        );
    }
}
