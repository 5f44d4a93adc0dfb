//! The lab's DHCP server: dnsmasq (the default), ISC dhcpd or Kea, each run
//! with the snippet the build emits for it (`dist/http/dhcp/`), wrapped the way
//! an operator would include it: the lab proves every snippet against its real
//! server, not just dnsmasq's.
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::{json, Value};

use super::netns::DHCP_IF;
use super::plan::LabPlan;
use super::topology::mask;

/// ISC dhcpd: the snippet included at the top level, as its header says, and
/// the node subnet with a dynamic range for VMs without a reservation and the
/// gateway as router. Behind a relay, dhcpd also needs a declaration of the
/// subnet of its own interface, or it does not listen there.
pub(crate) fn isc_config(plan: &LabPlan) -> String {
    let (start, end) = plan.dhcp_range();
    let network = plan.network();
    let router = plan
        .gateway
        .map(|g| format!("  option routers {g};\n"))
        .unwrap_or_default();
    let own = if plan.relayed() {
        let t = &plan.topology;
        let net = std::net::Ipv4Addr::from(u32::from(t.dhcp) & mask(t.server_prefix));
        let netmask = std::net::Ipv4Addr::from(mask(t.server_prefix));
        format!("# The DHCP server's own link, where the relay's requests arrive.\nsubnet {net} netmask {netmask} {{\n}}\n")
    } else {
        String::new()
    };
    format!(
        "# Written by `pxebuild lab`; regenerated on every run.\n\
         authoritative;\n\
         ddns-update-style none;\n\
         default-lease-time 3600;\n\
         max-lease-time 3600;\n\
         # The lab's addresses are free: skip the probe before each offer.\n\
         ping-check false;\n\
         include \"{snippet}\";\n\
         subnet {network} netmask {mask} {{\n  range {start} {end};\n{router}}}\n{own}",
        snippet = plan.dhcp_snippet().display(),
        mask = plan.netmask(),
    )
}

/// Kea: the snippet's `Dhcp4` object (client classes, the subnet and its
/// reservations) with what an operator's own configuration adds around it:
/// the interface, a lease database, a pool for VMs without a reservation, the
/// gateway as router and a log file. Behind a relay, Kea picks the snippet's
/// subnet by the relay's address (giaddr) and needs nothing more.
pub(crate) fn kea_config(plan: &LabPlan, snippet: &str, log: &Path) -> Result<String> {
    let mut config: Value = serde_json::from_str(snippet)
        .with_context(|| format!("{} is not JSON", plan.dhcp_snippet().display()))?;
    let dhcp4 = config
        .get_mut("Dhcp4")
        .and_then(Value::as_object_mut)
        .with_context(|| format!("{} has no Dhcp4 object", plan.dhcp_snippet().display()))?;
    // Kea will not open a socket on an interface that is not running yet: it retries.
    dhcp4.insert(
        "interfaces-config".into(),
        json!({
            "interfaces": [DHCP_IF],
            "dhcp-socket-type": "raw",
            "service-sockets-max-retries": 3000,
            "service-sockets-retry-wait-time": 200,
        }),
    );
    dhcp4.insert(
        "lease-database".into(),
        json!({ "type": "memfile", "persist": false }),
    );
    dhcp4.insert("valid-lifetime".into(), json!(3600));
    dhcp4.insert(
        "loggers".into(),
        json!([{
            "name": "kea-dhcp4",
            "output_options": [{ "output": log.display().to_string() }],
            "severity": "INFO",
        }]),
    );
    let (start, end) = plan.dhcp_range();
    let subnet = dhcp4
        .get_mut("subnet4")
        .and_then(|s| s.get_mut(0))
        .and_then(Value::as_object_mut)
        .with_context(|| format!("{} has no subnet4 entry", plan.dhcp_snippet().display()))?;
    subnet.insert(
        "pools".into(),
        json!([{ "pool": format!("{start} - {end}") }]),
    );
    if let Some(gateway) = plan.gateway {
        let mut options = subnet
            .get("option-data")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        options.push(json!({ "name": "routers", "data": gateway.to_string() }));
        subnet.insert("option-data".into(), Value::Array(options));
    }
    Ok(serde_json::to_string_pretty(&config).expect("JSON values serialise"))
}

/// The MAC and IP of a lease a DHCP server's log reports: dnsmasq's
/// `DHCPACK(<iface>) <ip> <mac> [name]`, ISC's `DHCPACK on <ip> to <mac> …`, or
/// Kea's `DHCP4_LEASE_ALLOC [hwtype=1 <mac>], … lease <ip> has been allocated …`.
pub(crate) fn lease(line: &str) -> Option<(String, String)> {
    let (mac, ip) = if let Some(at) = line.find("DHCPACK(") {
        let mut words = line[at..].split_whitespace().skip(1);
        let ip = words.next()?;
        (words.next()?, ip)
    } else if let Some(at) = line.find("DHCPACK on ") {
        let mut words = line[at + "DHCPACK on ".len()..].split_whitespace();
        let ip = words.next()?;
        (words.nth(1)?, ip)
    } else if let Some(at) = line.find("DHCP4_LEASE_ALLOC ") {
        let rest = &line[at..];
        let mac = rest.split("hwtype=1 ").nth(1)?.split(']').next()?;
        let ip = rest.split(" lease ").nth(1)?.split_whitespace().next()?;
        (mac, ip)
    } else {
        return None;
    };
    let valid = mac.len() == 17 && ip.parse::<std::net::Ipv4Addr>().is_ok();
    valid.then(|| (mac.to_ascii_lowercase(), ip.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_from_each_server_log() {
        let want = Some(("52:54:00:77:00:01".to_string(), "10.77.0.11".to_string()));
        for line in [
            "Nov 26 21:38:20 dnsmasq-dhcp[12656]: DHCPACK(br0) 10.77.0.11 52:54:00:77:00:01 n1",
            "dnsmasq-dhcp[1]: 123 DHCPACK(br0) 10.77.0.11 52:54:00:77:00:01",
            "DHCPACK on 10.77.0.11 to 52:54:00:77:00:01 (n1) via br0",
            "DHCPACK on 10.77.0.11 to 52:54:00:77:00:01 via br0",
            "2026-11-27 16:20:01.123 INFO  [kea-dhcp4.leases/1.2] DHCP4_LEASE_ALLOC \
             [hwtype=1 52:54:00:77:00:01], cid=[no info], tid=0x3c1f: lease 10.77.0.11 \
             has been allocated for 3600 seconds",
        ] {
            assert_eq!(lease(line), want, "{line}");
        }
        for line in [
            "dnsmasq-dhcp[1]: DHCPOFFER(br0) 10.77.0.11 52:54:00:77:00:01",
            "DHCPOFFER on 10.77.0.11 to 52:54:00:77:00:01 (n1) via br0",
            "DHCPACK on br0 to 52:54:00:77:00:01",
            "DHCP4_LEASE_ALLOC [hwtype=1 52:54:00:77:00:01], tid=0x1: lease garbage",
            "DHCP4_LEASE_ADVERT [hwtype=1 52:54:00:77:00:01], tid=0x1: lease 10.77.0.11 will be advertised",
        ] {
            assert_eq!(lease(line), None, "{line}");
        }
    }

    #[test]
    fn isc_config_includes_the_snippet_at_the_top_level() {
        let text = isc_config(&LabPlan::sample());
        let include = text.find("include \"/d/http/dhcp/dnsmasq.conf\";").unwrap();
        let subnet = text
            .find("subnet 10.20.0.0 netmask 255.255.255.0 {\n  range 10.20.0.205 10.20.0.254;\n  option routers 10.20.0.1;\n}")
            .unwrap();
        assert!(include < subnet, "{text}");
        assert!(text.contains("authoritative;\n"));
        assert!(!text.contains("relay"), "{text}");
    }

    #[test]
    fn behind_a_relay_isc_declares_its_own_subnet_too() {
        let mut plan = LabPlan::sample();
        plan.server = "10.21.0.1".parse().unwrap();
        plan.topology.server = plan.server;
        plan.topology.dhcp = "10.21.0.250".parse().unwrap();
        plan.topology.relay = Some(crate::lab::topology::Relay {
            server_side: "10.21.0.2".parse().unwrap(),
            gateway: "10.20.0.1".parse().unwrap(),
        });
        let text = isc_config(&plan);
        assert!(
            text.contains("subnet 10.20.0.0 netmask 255.255.255.0 {\n  range 10.20.0.205 10.20.0.254;\n  option routers 10.20.0.1;\n}"),
            "{text}"
        );
        assert!(
            text.contains("subnet 10.21.0.0 netmask 255.255.255.0 {\n}\n"),
            "{text}"
        );
    }

    #[test]
    fn kea_config_adds_what_the_operator_adds() {
        let snippet = r#"{"Dhcp4": {"client-classes": [{"name": "c"}],
            "subnet4": [{"subnet": "10.20.0.0/24", "reservations": [{"hw-address": "52:54:00:20:00:11"}]}]}}"#;
        let text = kea_config(&LabPlan::sample(), snippet, Path::new("/s/kea.log")).unwrap();
        let config: Value = serde_json::from_str(&text).unwrap();
        let dhcp4 = &config["Dhcp4"];
        assert_eq!(dhcp4["client-classes"][0]["name"], "c", "kept");
        assert_eq!(
            dhcp4["subnet4"][0]["reservations"][0]["hw-address"],
            "52:54:00:20:00:11"
        );
        assert_eq!(
            dhcp4["subnet4"][0]["pools"][0]["pool"],
            "10.20.0.205 - 10.20.0.254"
        );
        assert_eq!(dhcp4["interfaces-config"]["interfaces"][0], "vd0");
        assert_eq!(dhcp4["subnet4"][0]["option-data"][0]["name"], "routers");
        assert_eq!(dhcp4["subnet4"][0]["option-data"][0]["data"], "10.20.0.1");
        assert_eq!(
            dhcp4["loggers"][0]["output_options"][0]["output"],
            "/s/kea.log"
        );
        let err = kea_config(&LabPlan::sample(), "{}", Path::new("/s/l")).unwrap_err();
        assert!(format!("{err:#}").contains("no Dhcp4 object"), "{err:#}");
    }
}
