//! dnsmasq in the lab, in two roles. As the lab's external DHCP server (the
//! default) it runs in the DHCP server's own namespace, configured by the lab
//! (interface, range, router, speed fixes) around the DHCP snippet the build
//! emits (boot file per client architecture, per-MAC reservations), which it
//! includes unchanged with `conf-file=`: the lab tests the operator's snippet
//! itself. On the boot server's side, another dnsmasq sends the router
//! advertisements on the nodes' link that spare iPXE its IPv6 wait, whichever
//! server answers DHCP, and nothing else.
//!
//! With the nginx server variant, that boot-side dnsmasq also serves TFTP from
//! `dist/tftp`, standing in for the operator's own TFTP server.
use std::path::Path;

use super::netns::{self, BRIDGE};
use super::plan::LabPlan;

/// The boot server's dnsmasq: router advertisements on the nodes' link, and
/// TFTP when `tftp_root` is given. No DHCPv4.
pub(crate) fn boot_config(plan: &LabPlan, log: &Path, tftp_root: Option<&Path>) -> String {
    let nodes = netns::tap_bridge(&plan.topology);
    let mut c = String::new();
    let mut line = |s: String| {
        c.push_str(&s);
        c.push('\n');
    };
    line("# Written by `pxebuild lab`; regenerated on every run.".into());
    line(format!("interface={BRIDGE}"));
    if nodes != BRIDGE {
        line(format!("interface={nodes}"));
    }
    line("bind-interfaces".into());
    // No DNS on the lab network.
    line("port=0".into());
    line(format!("log-facility={}", log.display()));
    line("user=root".into());
    // iPXE waits ~13 s for IPv6 autoconfiguration unless a router advertises.
    line("enable-ra".into());
    line(format!("dhcp-range=::,constructor:{nodes},ra-only"));
    // dnsmasq's TFTP always listens on port 69.
    if let Some(root) = tftp_root {
        line("enable-tftp".into());
        line(format!("tftp-root={}", root.display()));
    }
    c
}

/// The DHCP server's dnsmasq, in its own namespace, with the site's snippet.
pub(crate) fn dhcp_config(plan: &LabPlan, log: &Path) -> String {
    let (start, end) = plan.dhcp_range();
    let mut c = String::new();
    let mut line = |s: String| {
        c.push_str(&s);
        c.push('\n');
    };
    line("# Written by `pxebuild lab`; regenerated on every run.".into());
    line(format!("interface={}", netns::DHCP_IF));
    line("bind-interfaces".into());
    // DHCP only: no DNS on the lab network.
    line("port=0".into());
    // Relayed requests are answered from the range of the relay's subnet.
    line(format!("dhcp-range={start},{end},{},1h", plan.netmask()));
    if let Some(gateway) = plan.gateway {
        line(format!("dhcp-option=option:router,{gateway}"));
    }
    line("log-dhcp".into());
    line(format!("log-facility={}", log.display()));
    line(format!(
        "dhcp-leasefile={}",
        log.with_file_name("dnsmasq.leases").display()
    ));
    line("user=root".into());
    // dnsmasq ping-probes a new address for ~3 s before the first offer.
    line("no-ping".into());
    // iPXE's no-pxedhcp setting: skip its ~3 s wait for ProxyDHCP offers.
    line("dhcp-userclass=set:ipxe,iPXE".into());
    line("dhcp-option=tag:ipxe,encap:175,176,1b".into());
    line(format!("conf-file={}", plan.dhcp_snippet().display()));
    c
}

/// The log line that says dnsmasq is ready: its DHCP sockets are bound, or,
/// without DHCPv4, router advertisements are on.
pub(crate) fn ready_line(dhcp4: bool) -> &'static str {
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
    fn dhcp_config_wraps_the_snippet_with_the_speed_fixes() {
        let text = dhcp_config(&plan(), Path::new("/s/dnsmasq.log"));
        for want in [
            "interface=vd0\n",
            "bind-interfaces\n",
            "port=0\n",
            "dhcp-range=10.20.0.205,10.20.0.254,255.255.255.0,1h\n",
            "dhcp-option=option:router,10.20.0.1\n",
            "no-ping\n",
            "dhcp-option=tag:ipxe,encap:175,176,1b\n",
            "log-facility=/s/dnsmasq.log\n",
            "dhcp-leasefile=/s/dnsmasq.leases\n",
            "conf-file=/d/http/dhcp/dnsmasq.conf\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in\n{text}");
        }
        for absent in ["enable-tftp", "enable-ra", "br0"] {
            assert!(!text.contains(absent), "{absent} in\n{text}");
        }
    }

    #[test]
    fn the_boot_side_sends_router_advertisements_and_tftp_only() {
        let text = boot_config(&plan(), Path::new("/s/l"), Some(Path::new("/d/tftp")));
        assert!(text.contains("interface=br0\n"), "{text}");
        assert!(text.contains("enable-ra\n"), "{text}");
        assert!(
            text.contains("dhcp-range=::,constructor:br0,ra-only\n"),
            "{text}"
        );
        assert!(text.contains("enable-tftp\ntftp-root=/d/tftp\n"), "{text}");
        for absent in ["dhcp-range=10.", "conf-file=", "dhcp-userclass", "no-ping"] {
            assert!(!text.contains(absent), "{absent} in\n{text}");
        }
        assert!(!boot_config(&plan(), Path::new("/s/l"), None).contains("enable-tftp"));
    }

    #[test]
    fn behind_the_relay_the_advertisements_go_to_the_nodes_bridge() {
        let mut plan = plan();
        plan.topology.relay = Some(crate::lab::topology::Relay {
            server_side: "10.21.0.2".parse().unwrap(),
            gateway: "10.20.0.1".parse().unwrap(),
        });
        let text = boot_config(&plan, Path::new("/s/l"), None);
        assert!(text.contains("interface=br0\ninterface=br1\n"), "{text}");
        assert!(
            text.contains("dhcp-range=::,constructor:br1,ra-only\n"),
            "{text}"
        );
    }
}
