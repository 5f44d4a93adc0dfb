//! Typed views of the schema's string values, for code that runs after
//! validation (render, boot, build). The schema keeps strings so validation can
//! report every bad value at once; these accessors parse again on demand.
//!
//! They panic on values that validation rejects, which cannot happen for a
//! `SiteFile` that came out of `Site::parse`/`Site::load`: the only way to a
//! `Site` is through validation.
use std::net::Ipv4Addr;

use super::schema::{Cluster, Network, Node, SiteFile};
use super::types::{Duration, Endpoint, Ipv4Cidr, MacAddr, NodeName, Role};

const VALIDATED: &str = "site values are validated before use";

/// Rewrites every value that site.toml may spell several ways into its one
/// spelling, so that consumers reading the strings (templates, DHCP snippets,
/// the manifest, serve's MAC table) need not normalise again and cannot
/// disagree: dhcpd and Kea refuse "52-54-00-..." outright. Runs on a
/// validated file only.
pub(super) fn normalise(file: &mut SiteFile) {
    for node in &mut file.nodes {
        node.mac = node.mac_addr().to_string();
    }
}

impl Node {
    pub fn node_name(&self) -> NodeName {
        self.name.parse().expect(VALIDATED)
    }
    /// The MAC in its one spelling: lower-case, colon-separated.
    pub fn mac_addr(&self) -> MacAddr {
        self.mac.parse().expect(VALIDATED)
    }
    pub fn ipv4(&self) -> Ipv4Addr {
        self.ip.parse().expect(VALIDATED)
    }
    pub fn role_kind(&self) -> Role {
        self.role.parse().expect(VALIDATED)
    }
    pub fn is_control_plane(&self) -> bool {
        self.role_kind() == Role::ControlPlane
    }
}

impl Network {
    pub fn subnet_cidr(&self) -> Ipv4Cidr {
        self.subnet.parse().expect(VALIDATED)
    }
    pub fn gateway_ip(&self) -> Ipv4Addr {
        self.gateway.parse().expect(VALIDATED)
    }
}

impl Cluster {
    /// The control-plane endpoint with its port (6443 when not written).
    pub fn endpoint_addr(&self) -> Endpoint {
        self.endpoint.parse().expect(VALIDATED)
    }
    pub fn pod_cidr_net(&self) -> Ipv4Cidr {
        self.pod_cidr.parse().expect(VALIDATED)
    }
    pub fn service_cidr_net(&self) -> Ipv4Cidr {
        self.service_cidr.parse().expect(VALIDATED)
    }
    pub fn token_ttl(&self) -> Duration {
        self.bootstrap_token_ttl.parse().expect(VALIDATED)
    }
}
