//! The lab's addresses, as in a rack: the DHCP server is a host of its own
//! (its own namespace and address), so its server identifier is never the
//! boot server's address (next-server). When the site's boot server lies
//! outside `network.subnet`, the nodes sit behind a router (at the site's
//! gateway address) that relays DHCP and routes TFTP and HTTP: the boot
//! server and the DHCP server then share a subnet of their own, which the
//! site does not describe, so the lab takes the boot server's /24.
use std::net::Ipv4Addr;

use anyhow::{bail, Result};

use crate::error::BadInput;

/// Prefix of the boot server's own subnet in the relayed topology.
pub(crate) const SERVER_SIDE_PREFIX: u8 = 24;

/// Every address the lab's network needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    /// The boot server, with the prefix of the link it is on.
    pub server: Ipv4Addr,
    pub server_prefix: u8,
    /// The DHCP server's address, on the boot server's link.
    pub dhcp: Ipv4Addr,
    /// With a relay: the router's address on the boot server's link and its
    /// address on the nodes' link (the site's gateway).
    pub relay: Option<Relay>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Relay {
    pub server_side: Ipv4Addr,
    pub gateway: Ipv4Addr,
}

/// The node subnet and what is taken in it.
pub struct Site<'a> {
    pub server: Ipv4Addr,
    /// `network.subnet`: network address and prefix.
    pub subnet: Ipv4Addr,
    pub prefix: u8,
    pub gateway: Option<Ipv4Addr>,
    /// The nodes' reserved addresses.
    pub nodes: &'a [Ipv4Addr],
    /// The first address of the dynamic range in the node subnet.
    pub range_start: Ipv4Addr,
}

pub(crate) fn mask(prefix: u8) -> u32 {
    u32::MAX << (32 - u32::from(prefix))
}

pub(crate) fn contains(network: Ipv4Addr, prefix: u8, addr: Ipv4Addr) -> bool {
    u32::from(addr) & mask(prefix) == u32::from(network) & mask(prefix)
}

impl Topology {
    pub fn of(site: &Site) -> Result<Topology> {
        if contains(site.subnet, site.prefix, site.server) {
            return Ok(Topology {
                server: site.server,
                server_prefix: site.prefix,
                dhcp: free_below(site, site.range_start)?,
                relay: None,
            });
        }
        let Some(gateway) = site.gateway else {
            bail!(BadInput::new(format!(
                "boot_server.address {} is outside network.subnet, so the lab puts the nodes \
                 behind a DHCP relay at network.gateway, but the site has no network.gateway",
                site.server
            )));
        };
        let p = SERVER_SIDE_PREFIX;
        let base = u32::from(site.server) & mask(p);
        if contains(site.subnet, site.prefix.min(p), Ipv4Addr::from(base)) {
            bail!(BadInput::new(format!(
                "the lab puts boot_server.address {} on {}/{p}, which overlaps network.subnet",
                site.server,
                Ipv4Addr::from(base)
            )));
        }
        // The router at the bottom of the boot server's /24, the DHCP server
        // near its top, both away from the boot server itself.
        let pick = |candidates: &mut dyn Iterator<Item = u32>| {
            candidates
                .map(|host| Ipv4Addr::from(base | host))
                .find(|a| *a != site.server)
                .expect("a /24 has more than two hosts")
        };
        Ok(Topology {
            server: site.server,
            server_prefix: p,
            dhcp: pick(&mut (240..=250).rev()),
            relay: Some(Relay {
                server_side: pick(&mut (1..=2)),
                gateway,
            }),
        })
    }
}

/// The highest free address of the node subnet below the dynamic range.
fn free_below(site: &Site, start: Ipv4Addr) -> Result<Ipv4Addr> {
    let network = u32::from(site.subnet) & mask(site.prefix);
    let taken =
        |a: Ipv4Addr| a == site.server || Some(a) == site.gateway || site.nodes.contains(&a);
    (network + 1..u32::from(start))
        .rev()
        .map(Ipv4Addr::from)
        .find(|a| !taken(*a))
        .ok_or_else(|| {
            BadInput::new(format!(
                "network.subnet {}/{} has no free address below {start} for the lab's DHCP server",
                site.subnet, site.prefix
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Ipv4Addr {
        s.parse().unwrap()
    }

    #[test]
    fn the_dhcp_server_is_another_host_of_the_node_subnet() {
        let nodes = [ip("10.20.0.11"), ip("10.20.0.204")];
        let site = Site {
            server: ip("10.20.0.2"),
            subnet: ip("10.20.0.0"),
            prefix: 24,
            gateway: Some(ip("10.20.0.203")),
            nodes: &nodes,
            range_start: ip("10.20.0.205"),
        };
        let t = Topology::of(&site).unwrap();
        assert_eq!(t.dhcp, ip("10.20.0.202"), "skips a node and the gateway");
        assert_eq!(
            (t.server, t.server_prefix, t.relay),
            (site.server, 24, None)
        );
    }

    #[test]
    fn a_boot_server_outside_the_subnet_is_reached_through_a_relay() {
        let site = Site {
            server: ip("10.21.0.1"),
            subnet: ip("10.20.0.0"),
            prefix: 24,
            gateway: Some(ip("10.20.0.1")),
            nodes: &[],
            range_start: ip("10.20.0.205"),
        };
        let t = Topology::of(&site).unwrap();
        assert_eq!(t.server_prefix, 24);
        assert_eq!(t.dhcp, ip("10.21.0.250"));
        let relay = t.relay.unwrap();
        assert_eq!(relay.server_side, ip("10.21.0.2"), "not the server's .1");
        assert_eq!(relay.gateway, ip("10.20.0.1"));

        let err = Topology::of(&Site {
            gateway: None,
            ..site
        })
        .unwrap_err();
        assert!(err.to_string().contains("no network.gateway"), "{err}");
        assert_eq!(crate::error::exit_code(&err), 2);
    }

    #[test]
    fn a_full_subnet_is_bad_input() {
        let nodes = [ip("192.168.1.2")];
        let site = Site {
            server: ip("192.168.1.1"),
            subnet: ip("192.168.1.0"),
            prefix: 29,
            gateway: None,
            nodes: &nodes,
            range_start: ip("192.168.1.3"),
        };
        let err = Topology::of(&site).unwrap_err();
        assert!(err.to_string().contains("no free address"), "{err}");
    }
}
