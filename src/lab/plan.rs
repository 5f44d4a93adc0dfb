//! What one lab run boots: the boot server's address and subnet, and one VM per
//! selected site node (MAC, IP, firmware), plus optional probe VMs (a stranger
//! with an unknown MAC, an intruder asking for another node's Ignition).
//!
//! The node table comes from `dist/manifest.json`, so the lab boots exactly the
//! tree that was built. The few site facts the manifest does not carry (server
//! address, subnet, ports, firmware, disk) come from [`LabSite`], read leniently
//! from `site.toml`; [`LabPlan::from_dist`] is the one place that joins the two,
//! so it can switch to the typed site model without touching the rest of the lab.
use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::topology::{self, Topology};
use crate::error::BadInput;
use crate::layout;
use crate::manifest::Manifest;

/// Which DHCP server answers the lab's VMs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum DhcpKind {
    /// dnsmasq with `dnsmasq.conf`.
    #[default]
    Dnsmasq,
    /// ISC dhcpd with `dhcpd.conf`.
    Isc,
    /// Kea's DHCPv4 server with `kea-dhcp4.json`.
    Kea,
}

impl DhcpKind {
    /// The snippet the build emits for this server, in `dist/http/dhcp/`.
    pub fn snippet(self) -> &'static str {
        match self {
            DhcpKind::Dnsmasq => layout::DNSMASQ_SNIPPET,
            DhcpKind::Isc => layout::ISC_SNIPPET,
            DhcpKind::Kea => layout::KEA_SNIPPET,
        }
    }

    /// The server's log in the state directory (its leases are read from it).
    pub fn log_file(self) -> &'static str {
        match self {
            DhcpKind::Dnsmasq => "dnsmasq.log",
            DhcpKind::Isc => "dhcpd.log",
            DhcpKind::Kea => "kea.log",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            DhcpKind::Dnsmasq => "dnsmasq",
            DhcpKind::Isc => "ISC dhcpd",
            DhcpKind::Kea => "Kea",
        }
    }
}

/// Firmware a VM boots with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Firmware {
    /// SeaBIOS with QEMU's iPXE option ROM, loading `lpxelinux.0`.
    Bios,
    /// OVMF with its own PXE stack (no iPXE ROM), loading `efi64/syslinux.efi`.
    Uefi,
}

impl Firmware {
    pub fn as_str(self) -> &'static str {
        match self {
            Firmware::Bios => "bios",
            Firmware::Uefi => "uefi",
        }
    }
}

/// Site facts the lab needs beyond the manifest's node table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabSite {
    /// The boot server's address as the nodes see it.
    pub server: Ipv4Addr,
    /// The site subnet (`network.subnet`): network address and prefix length.
    pub subnet: Ipv4Addr,
    pub prefix: u8,
    /// `network.gateway`: the relay's address when the boot server is outside the subnet.
    pub gateway: Option<Ipv4Addr>,
    pub http_port: u16,
    pub tftp_port: u16,
    /// Per node: firmware (default BIOS) and the install disk path.
    pub nodes: BTreeMap<String, SiteNode>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SiteNode {
    pub firmware: Firmware,
    pub disk: Option<String>,
}

impl LabSite {
    /// Reads the lab's view of `site.toml`.
    pub fn load(path: &Path) -> Result<LabSite> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        LabSite::parse(&text).with_context(|| format!("in {}", path.display()))
    }

    /// Parses `[boot_server]`, `[network].subnet` and `gateway`, and the nodes' `firmware`/`disk`.
    pub fn parse(text: &str) -> Result<LabSite> {
        let doc: toml::Table = text.parse().map_err(|e| BadInput::new(format!("{e}")))?;
        let server = str_at(&doc, "boot_server", "address")?;
        let server: Ipv4Addr = server
            .parse()
            .map_err(|_| BadInput::new(format!("boot_server.address {server:?} is not IPv4")))?;
        let subnet = str_at(&doc, "network", "subnet")?;
        let (subnet, prefix) = parse_subnet(subnet)?;
        let gateway = match str_at(&doc, "network", "gateway") {
            Err(_) => None,
            Ok(g) => Some(
                g.parse::<Ipv4Addr>()
                    .map_err(|_| BadInput::new(format!("network.gateway {g:?} is not IPv4")))?,
            ),
        };
        let port = |key: &str, default: u16| -> Result<u16> {
            match doc.get("boot_server").and_then(|t| t.get(key)) {
                None => Ok(default),
                Some(v) => v
                    .as_integer()
                    .and_then(|n| u16::try_from(n).ok())
                    .ok_or_else(|| BadInput::new(format!("boot_server.{key} is not a port"))),
            }
        };
        Ok(LabSite {
            server,
            subnet,
            prefix,
            gateway,
            http_port: port("http_port", 8080)?,
            tftp_port: port("tftp_port", 69)?,
            nodes: parse_nodes(&doc)?,
        })
    }
}

fn str_at<'a>(doc: &'a toml::Table, table: &str, key: &str) -> Result<&'a str> {
    doc.get(table)
        .and_then(|t| t.get(key))
        .and_then(|v| v.as_str())
        .ok_or_else(|| BadInput::new(format!("site has no {table}.{key}")))
}

/// The network address and prefix length of an IPv4 CIDR.
fn parse_subnet(subnet: &str) -> Result<(Ipv4Addr, u8)> {
    let bad = || BadInput::new(format!("network.subnet {subnet:?} is not an IPv4 CIDR"));
    let (addr, len) = subnet.split_once('/').ok_or_else(bad)?;
    let addr = addr.parse::<Ipv4Addr>().map_err(|_| bad())?;
    match len.parse::<u8>() {
        Ok(n) if (8..=30).contains(&n) => {
            Ok((Ipv4Addr::from(u32::from(addr) & topology::mask(n)), n))
        }
        _ => Err(bad()),
    }
}

fn parse_nodes(doc: &toml::Table) -> Result<BTreeMap<String, SiteNode>> {
    let mut nodes = BTreeMap::new();
    let list = doc
        .get("node")
        .and_then(|v| v.as_array())
        .cloned()
        .unwrap_or_default();
    for node in &list {
        let Some(name) = node.get("name").and_then(|v| v.as_str()) else {
            continue;
        };
        let firmware = match node.get("firmware").and_then(|v| v.as_str()) {
            None | Some("bios") => Firmware::Bios,
            Some("uefi") => Firmware::Uefi,
            Some(other) => {
                bail!(BadInput::new(format!(
                    "node {name}: firmware {other:?} is not bios or uefi"
                )))
            }
        };
        let disk = node
            .get("disk")
            .and_then(|v| v.as_str())
            .map(str::to_string);
        nodes.insert(name.to_string(), SiteNode { firmware, disk });
    }
    Ok(nodes)
}

/// What a VM is for, which decides what counts as success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// A site node: must reach the Ignition marker.
    Node,
    /// A machine with an unknown MAC: must get the local-boot default and no Ignition.
    Stranger,
    /// A machine booting a node's kernel line directly: its Ignition fetch must be refused.
    Intruder { target: String, boot: DirectBoot },
}

/// A kernel, initrd and command line booted by QEMU itself (no PXE).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectBoot {
    pub kernel: PathBuf,
    pub initrd: PathBuf,
    pub append: String,
}

/// One VM of the lab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabVm {
    pub name: String,
    /// Lower-case, colon-separated.
    pub mac: String,
    /// The address the site reserves for it (none for probes).
    pub ip: Option<Ipv4Addr>,
    pub firmware: Firmware,
    /// Serial number of the VM's virtio disk, so `/dev/disk/by-id/virtio-<serial>` exists.
    pub disk_serial: Option<String>,
    pub role: Role,
}

/// Choices that shape a plan beyond the site.
#[derive(Debug, Clone, Default)]
pub struct PlanOptions {
    /// Boot only these nodes (all when empty).
    pub nodes: Vec<String>,
    /// Add a VM with an unknown MAC using this firmware.
    pub stranger: Option<Firmware>,
    /// Add a VM that boots this node's kernel line from another MAC.
    pub intruder: Option<String>,
    /// The DHCP server, whose snippet from the build the lab uses.
    pub dhcp: DhcpKind,
}

/// Everything needed to bring the lab up.
#[derive(Debug, Clone)]
pub struct LabPlan {
    pub dist: PathBuf,
    pub server: Ipv4Addr,
    /// The node subnet (`network.subnet`) and its prefix length.
    pub subnet: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    /// Where the DHCP server (and, when the boot server is on another
    /// subnet, the relay) sits.
    pub topology: Topology,
    pub http_port: u16,
    pub tftp_port: u16,
    pub vms: Vec<LabVm>,
    /// The DHCP server, run with the snippet the build emitted for it.
    pub dhcp: DhcpKind,
}

#[cfg(test)]
impl LabPlan {
    /// A plan for unit tests: the example site's boot server, no VMs.
    pub(crate) fn sample() -> LabPlan {
        LabPlan {
            dist: PathBuf::from("/d"),
            server: Ipv4Addr::new(10, 20, 0, 2),
            subnet: Ipv4Addr::new(10, 20, 0, 0),
            prefix: 24,
            gateway: Some(Ipv4Addr::new(10, 20, 0, 1)),
            topology: Topology {
                server: Ipv4Addr::new(10, 20, 0, 2),
                server_prefix: 24,
                dhcp: Ipv4Addr::new(10, 20, 0, 204),
                relay: None,
            },
            http_port: 8080,
            tftp_port: 69,
            vms: vec![],
            dhcp: DhcpKind::Dnsmasq,
        }
    }
}

/// MACs of probe VMs: locally administered, outside QEMU's 52:54:00 range.
pub const STRANGER_MAC: &str = "5a:00:00:00:0e:01";
pub const INTRUDER_MAC: &str = "5a:00:00:00:0e:02";

impl LabPlan {
    /// Joins the built tree's node table with the site facts and the options.
    pub fn from_dist(dist: &Path, site: &LabSite, options: &PlanOptions) -> Result<LabPlan> {
        let manifest = Manifest::load(dist)?;
        // Absolute: QEMU, nginx and dnsmasq run in other working directories.
        let dist = &dist
            .canonicalize()
            .with_context(|| format!("resolving {}", dist.display()))?;
        let dhcp_snippet = snippet_path(dist, options.dhcp);
        if !dhcp_snippet.is_file() {
            bail!(BadInput::new(format!(
                "{} is missing: the lab needs the DHCP snippet the build emits",
                dhcp_snippet.display()
            )));
        }
        let mut vms = site_vms(&manifest, site, &options.nodes)?;
        if let Some(firmware) = options.stranger {
            vms.push(probe("stranger", STRANGER_MAC, firmware, Role::Stranger));
        }
        if let Some(target) = &options.intruder {
            vms.push(intruder(dist, &manifest, target)?);
        }
        if vms.is_empty() {
            bail!(BadInput::new("the lab has no VM to boot"));
        }
        let (range_start, _) = node_range(site.server, site.subnet, site.prefix);
        let reserved: Vec<Ipv4Addr> = manifest
            .nodes
            .iter()
            .filter_map(|n| n.ip.parse().ok())
            .collect();
        let topology = Topology::of(&topology::Site {
            server: site.server,
            subnet: site.subnet,
            prefix: site.prefix,
            gateway: site.gateway,
            nodes: &reserved,
            range_start,
        })?;
        Ok(LabPlan {
            dist: dist.to_path_buf(),
            server: site.server,
            subnet: site.subnet,
            prefix: site.prefix,
            gateway: site.gateway,
            topology,
            http_port: site.http_port,
            tftp_port: site.tftp_port,
            vms,
            dhcp: options.dhcp,
        })
    }

    /// A dynamic DHCP range inside the node subnet for VMs without a reservation.
    pub fn dhcp_range(&self) -> (Ipv4Addr, Ipv4Addr) {
        node_range(self.server, self.subnet, self.prefix)
    }

    /// Whether the nodes reach the boot server and the DHCP server through a relay.
    pub fn relayed(&self) -> bool {
        self.topology.relay.is_some()
    }

    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::MAX << (32 - u32::from(self.prefix)))
    }

    /// The DHCP snippet the build emitted for the lab's DHCP server.
    pub fn dhcp_snippet(&self) -> PathBuf {
        snippet_path(&self.dist, self.dhcp)
    }

    /// The node subnet's network address.
    pub fn network(&self) -> Ipv4Addr {
        self.subnet
    }
}

/// The dynamic range of the node subnet, off the boot server when it is in it.
fn node_range(server: Ipv4Addr, subnet: Ipv4Addr, prefix: u8) -> (Ipv4Addr, Ipv4Addr) {
    if topology::contains(subnet, prefix, server) {
        dhcp_range(server, prefix)
    } else {
        dhcp_range(subnet, prefix)
    }
}

fn snippet_path(dist: &Path, dhcp: DhcpKind) -> PathBuf {
    layout::dhcp_dir(dist).join(dhcp.snippet())
}

/// One VM per manifest node (or per selected node), with the site's firmware and disk.
fn site_vms(manifest: &Manifest, site: &LabSite, selected: &[String]) -> Result<Vec<LabVm>> {
    if let Some(unknown) = selected
        .iter()
        .find(|w| !manifest.nodes.iter().any(|n| &n.name == *w))
    {
        bail!(BadInput::new(format!(
            "--nodes: {unknown} is not a node of this site"
        )));
    }
    let wanted = |name: &String| selected.is_empty() || selected.contains(name);
    let vms = manifest
        .nodes
        .iter()
        .filter(|n| wanted(&n.name))
        .map(|node| {
            let extra = site.nodes.get(&node.name);
            LabVm {
                name: node.name.clone(),
                mac: node.mac.clone(),
                ip: node.ip.parse().ok(),
                firmware: extra.map_or(Firmware::Bios, |e| e.firmware),
                disk_serial: extra.and_then(|e| disk_serial(e.disk.as_deref()?)),
                role: Role::Node,
            }
        });
    Ok(vms.collect())
}

/// A probe VM that boots `target`'s kernel line from another MAC.
fn intruder(dist: &Path, manifest: &Manifest, target: &str) -> Result<LabVm> {
    let node = manifest
        .nodes
        .iter()
        .find(|n| n.name == target)
        .ok_or_else(|| BadInput::new(format!("--intruder: {target} is not a node of this site")))?;
    let boot = direct_boot_of(dist, &node.mac)?;
    let role = Role::Intruder {
        target: target.to_string(),
        boot,
    };
    Ok(probe("intruder", INTRUDER_MAC, Firmware::Bios, role))
}

fn probe(name: &str, mac: &str, firmware: Firmware, role: Role) -> LabVm {
    LabVm {
        name: name.into(),
        mac: mac.into(),
        ip: None,
        firmware,
        disk_serial: None,
        role,
    }
}

/// `/dev/disk/by-id/virtio-<serial>` names the disk by the serial QEMU gives it.
fn disk_serial(disk: &str) -> Option<String> {
    let serial = disk.strip_prefix("/dev/disk/by-id/virtio-")?;
    (!serial.is_empty() && serial.len() <= 20).then(|| serial.to_string())
}

/// The top addresses of the subnet (at most 50), skipping the server's own.
pub fn dhcp_range(server: Ipv4Addr, prefix: u8) -> (Ipv4Addr, Ipv4Addr) {
    let mask = u32::MAX << (32 - u32::from(prefix));
    let network = u32::from(server) & mask;
    let broadcast = network | !mask;
    let size = broadcast - network - 1;
    let mut end = broadcast - 1;
    let mut start = end - (size / 2).min(49);
    let server = u32::from(server);
    if (start..=end).contains(&server) {
        if server - start >= end - server {
            end = server - 1;
        } else {
            start = server + 1;
        }
    }
    (Ipv4Addr::from(start), Ipv4Addr::from(end))
}

/// The kernel, initrd and command line a node's BIOS boot config names, with
/// the HTTP URLs mapped back into `dist/http`.
fn direct_boot_of(dist: &Path, mac: &str) -> Result<DirectBoot> {
    // The BIOS config, or the EFI one for a UEFI-only site; both name the same kernel line.
    let bios = dist.join(layout::pxelinux_config(false, mac));
    let path = if bios.is_file() {
        bios
    } else {
        dist.join(layout::pxelinux_config(true, mac))
    };
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let parsed = parse_syslinux_entry(&text)
        .with_context(|| format!("no kernel and initrd found in {}", path.display()))?;
    let local = |url: &str| -> Result<PathBuf> {
        let rest = url.split_once("://").map(|(_, r)| r).unwrap_or(url);
        let path = rest.split_once('/').map(|(_, p)| p).unwrap_or(rest);
        let file = dist.join(layout::HTTP).join(path);
        file.is_file()
            .then_some(file)
            .with_context(|| format!("{url} is not a file under dist/http"))
    };
    // A UEFI-only site's config names syslinux.efi's initrd parts; QEMU
    // takes one initrd, so the direct boot takes the whole file they were
    // cut from, which lies beside them in every tree.
    let initrd = layout::pxe_initrd_of_part(&parsed.1).unwrap_or(parsed.1);
    Ok(DirectBoot {
        kernel: local(&parsed.0)?,
        initrd: local(&initrd)?,
        append: parsed.2,
    })
}

/// `(kernel URL, first initrd URL, other kernel arguments)` of a syslinux config.
pub fn parse_syslinux_entry(text: &str) -> Option<(String, String, String)> {
    let mut kernel = None;
    let mut initrd = None;
    let mut args = Vec::new();
    for line in text.lines().map(str::trim) {
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        match word.to_ascii_uppercase().as_str() {
            "KERNEL" | "LINUX" => kernel = Some(rest.trim().to_string()),
            "INITRD" => initrd = Some(rest.trim().split(',').next()?.to_string()),
            "APPEND" => {
                for arg in rest.split_whitespace() {
                    match arg.strip_prefix("initrd=") {
                        Some(v) => initrd = Some(v.split(',').next()?.to_string()),
                        None => args.push(arg.to_string()),
                    }
                }
            }
            _ => {}
        }
    }
    Some((kernel?, initrd?, args.join(" ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: &str = r#"
        [network]
        subnet = "10.20.0.0/24"
        [boot_server]
        address = "10.20.0.2"
        http_port = 8080
        [[node]]
        name = "cp1"
        disk = "/dev/disk/by-id/virtio-cp1-root"
        [[node]]
        name = "cp2"
        firmware = "uefi"
    "#;

    #[test]
    fn site_facts_are_read_with_defaults() {
        let site = LabSite::parse(SITE).unwrap();
        assert_eq!(site.server, Ipv4Addr::new(10, 20, 0, 2));
        assert_eq!(site.subnet, Ipv4Addr::new(10, 20, 0, 0));
        assert_eq!(site.gateway, None);
        assert_eq!(
            (site.prefix, site.http_port, site.tftp_port),
            (24, 8080, 69)
        );
        assert_eq!(site.nodes["cp1"].firmware, Firmware::Bios);
        assert_eq!(site.nodes["cp2"].firmware, Firmware::Uefi);
        assert_eq!(
            disk_serial(site.nodes["cp1"].disk.as_deref().unwrap()).unwrap(),
            "cp1-root"
        );
    }

    #[test]
    fn the_gateway_is_read_for_the_relay() {
        let text = SITE.replace(
            "subnet = \"10.20.0.0/24\"",
            "subnet = \"10.20.0.0/24\"\n        gateway = \"10.20.0.1\"",
        );
        let site = LabSite::parse(&text).unwrap();
        assert_eq!(site.gateway, Some(Ipv4Addr::new(10, 20, 0, 1)));
        let err = LabSite::parse(&text.replace("\"10.20.0.1\"", "\"gw\"")).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
        assert!(err.to_string().contains("network.gateway"), "{err}");
    }

    #[test]
    fn bad_firmware_is_bad_input() {
        let err = LabSite::parse(&SITE.replace("\"uefi\"", "\"coreboot\"")).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
        assert!(err.to_string().contains("cp2"), "{err}");
    }

    #[test]
    fn dhcp_range_stays_in_the_subnet_and_off_the_server() {
        let (a, b) = dhcp_range(Ipv4Addr::new(10, 20, 0, 2), 24);
        assert_eq!(
            (a, b),
            (Ipv4Addr::new(10, 20, 0, 205), Ipv4Addr::new(10, 20, 0, 254))
        );
        let (a, b) = dhcp_range(Ipv4Addr::new(10, 20, 0, 230), 24);
        assert_eq!(
            (a, b),
            (Ipv4Addr::new(10, 20, 0, 205), Ipv4Addr::new(10, 20, 0, 229))
        );
        let (a, b) = dhcp_range(Ipv4Addr::new(192, 168, 1, 1), 29);
        assert_eq!(
            (a, b),
            (Ipv4Addr::new(192, 168, 1, 3), Ipv4Addr::new(192, 168, 1, 6))
        );
    }

    #[test]
    fn syslinux_entry_gives_kernel_initrd_and_args() {
        let cfg = "DEFAULT x\nLABEL x\n  LINUX http://s:8080/f/k\n  APPEND initrd=http://s:8080/f/i.gz,x console=ttyS0 ignition.config.url=http://s/ign\n";
        let (k, i, a) = parse_syslinux_entry(cfg).unwrap();
        assert_eq!(
            (k.as_str(), i.as_str()),
            ("http://s:8080/f/k", "http://s:8080/f/i.gz")
        );
        assert_eq!(a, "console=ttyS0 ignition.config.url=http://s/ign");
        assert!(parse_syslinux_entry("DEFAULT local\nLABEL local\n LOCALBOOT 0\n").is_none());
    }
}
