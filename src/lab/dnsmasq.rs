//! dnsmasq on the lab bridge. As the lab's external DHCP server (the default)
//! it is configured by the lab (interface, range, speed fixes) around the DHCP
//! snippet the build emits (boot file per client architecture, per-MAC
//! reservations), which it includes unchanged with `conf-file=`: the lab tests
//! the operator's snippet itself. When ISC dhcpd or Kea answers DHCP instead
//! (`--dhcp`), dnsmasq still sends the router advertisements that spare iPXE
//! its IPv6 wait, and nothing else.
//!
//! With the nginx server variant, the same dnsmasq also serves TFTP from
//! `dist/tftp`, standing in for the operator's own TFTP server.
use std::path::Path;

use super::plan::LabPlan;

/// The bridge every VM's tap is attached to (inside the lab namespace).
pub const BRIDGE: &str = "br0";

/// The complete dnsmasq configuration for the lab; `dhcp4` makes it the DHCP
/// server (with the site's snippet).
pub fn config(plan: &LabPlan, log: &Path, tftp_root: Option<&Path>, dhcp4: bool) -> String {
    let (start, end) = plan.dhcp_range();
    let mut c = String::new();
    let mut line = |s: String| {
        c.push_str(&s);
        c.push('\n');
    };
    line("# Written by `pxebuild lab`; regenerated on every run.".into());
    line(format!("interface={BRIDGE}"));
    line("bind-interfaces".into());
    // DHCP only: no DNS on the lab network.
    line("port=0".into());
    if dhcp4 {
        line(format!("dhcp-range={start},{end},{},1h", plan.netmask()));
    }
    line("log-dhcp".into());
    line(format!("log-facility={}", log.display()));
    line("user=root".into());
    // iPXE waits ~13 s for IPv6 autoconfiguration unless a router advertises.
    line("enable-ra".into());
    line(format!("dhcp-range=::,constructor:{BRIDGE},ra-only"));
    if dhcp4 {
        // dnsmasq ping-probes a new address for ~3 s before the first offer.
        line("no-ping".into());
        // iPXE's no-pxedhcp setting: skip its ~3 s wait for ProxyDHCP offers.
        line("dhcp-userclass=set:ipxe,iPXE".into());
        line("dhcp-option=tag:ipxe,encap:175,176,1b".into());
    }
    // dnsmasq's TFTP always listens on port 69.
    if let Some(root) = tftp_root {
        line("enable-tftp".into());
        line(format!("tftp-root={}", root.display()));
    }
    if dhcp4 {
        line(format!("conf-file={}", plan.dhcp_snippet().display()));
    }
    c
}

/// The log line that says dnsmasq is ready: its DHCP sockets are bound, or,
/// without DHCPv4, router advertisements are on.
pub fn ready_line(dhcp4: bool) -> &'static str {
    if dhcp4 {
        "sockets bound exclusively"
    } else {
        "router advertisement on"
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn plan() -> LabPlan {
        LabPlan::sample()
    }

    #[test]
    fn config_wraps_the_snippet_with_the_speed_fixes() {
        let text = config(&plan(), Path::new("/s/dnsmasq.log"), None, true);
        for want in [
            "interface=br0\n",
            "bind-interfaces\n",
            "port=0\n",
            "dhcp-range=10.20.0.205,10.20.0.254,255.255.255.0,1h\n",
            "enable-ra\n",
            "dhcp-range=::,constructor:br0,ra-only\n",
            "no-ping\n",
            "dhcp-option=tag:ipxe,encap:175,176,1b\n",
            "log-facility=/s/dnsmasq.log\n",
            "conf-file=/d/http/dhcp/dnsmasq.conf\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        assert!(!text.contains("enable-tftp"));
    }

    #[test]
    fn tftp_is_added_for_the_peer_variant() {
        let text = config(&plan(), Path::new("/s/l"), Some(Path::new("/d/tftp")), true);
        assert!(text.contains("enable-tftp\ntftp-root=/d/tftp\n"), "{text}");
    }

    #[test]
    fn another_dhcp_server_leaves_dnsmasq_the_router_advertisements() {
        let text = config(
            &plan(),
            Path::new("/s/l"),
            Some(Path::new("/d/tftp")),
            false,
        );
        assert!(text.contains("enable-ra\n"), "{text}");
        assert!(
            text.contains("dhcp-range=::,constructor:br0,ra-only\n"),
            "{text}"
        );
        assert!(text.contains("enable-tftp\n"), "{text}");
        for absent in ["dhcp-range=10.", "conf-file=", "dhcp-userclass", "no-ping"] {
            assert!(!text.contains(absent), "{absent} in\n{text}");
        }
    }
}
