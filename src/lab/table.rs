//! The live table of VMs: one row per VM, one column per milestone with the
//! seconds since that VM started. Rendering is pure; the watcher decides when
//! to redraw it (in place on a terminal, once at the end otherwise).
use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::console::Milestone;

/// One VM's row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub name: String,
    pub firmware: String,
    pub ip: String,
    /// Seconds since the VM started, per milestone reached.
    pub reached: BTreeMap<Milestone, f64>,
    /// `waiting`, `booting 12s`, `ok`, `FAIL: …`.
    pub state: String,
}

/// The table as text, header first, each line ending in a newline.
pub(crate) fn render(rows: &[Row]) -> String {
    let name_w = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(4);
    let ip_w = rows.iter().map(|r| r.ip.len()).max().unwrap_or(0).max(2);
    let mut out = String::new();
    let _ = write!(out, "{:<name_w$}  {:<4}  {:<ip_w$}", "NODE", "FW", "IP");
    for m in Milestone::ALL {
        let _ = write!(out, "  {:>8}", m.as_str().to_uppercase());
    }
    out.push_str("  STATE\n");
    for row in rows {
        let _ = write!(
            out,
            "{:<name_w$}  {:<4}  {:<ip_w$}",
            row.name, row.firmware, row.ip
        );
        for m in Milestone::ALL {
            let cell = match row.reached.get(&m) {
                None => "-".to_string(),
                // `lab status` knows that a milestone was reached, not when.
                Some(s) if s.is_nan() => "yes".to_string(),
                Some(s) => format!("{s:.1}s"),
            };
            let _ = write!(out, "  {cell:>8}");
        }
        let _ = writeln!(out, "  {}", row.state);
    }
    out
}

/// A VM's beacons in the order they arrived, with the seconds since the VM
/// started: `cp1 beacons: install-started 70.1s, install-done 151.0s`. Empty
/// without beacons. Together with the table's milestones this is the node's
/// timeline from DHCP to its last beacon, across its reboots.
pub(crate) fn beacon_timeline(name: &str, beacons: &BTreeMap<String, f64>) -> String {
    if beacons.is_empty() {
        return String::new();
    }
    let mut seen: Vec<(&String, &f64)> = beacons.iter().collect();
    seen.sort_by(|a, b| a.1.total_cmp(b.1));
    let items: Vec<String> = seen.iter().map(|(b, s)| format!("{b} {s:.1}s")).collect();
    format!("{name} beacons: {}\n", items.join(", "))
}

/// One row for `lab status --format json`: `{"name", "firmware", "ip",
/// "milestones": ["dhcp", ...] (in boot order), "state"}`; the IP is null
/// until a lease is seen.
pub(crate) fn json(row: &Row) -> serde_json::Value {
    let milestones: Vec<&str> = Milestone::ALL
        .iter()
        .filter(|m| row.reached.contains_key(m))
        .map(|m| m.as_str())
        .collect();
    serde_json::json!({
        "name": row.name,
        "firmware": row.firmware,
        "ip": (!row.ip.is_empty()).then_some(&row.ip),
        "milestones": milestones,
        "state": row.state,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_show_elapsed_times_and_dashes() {
        let mut reached = BTreeMap::new();
        reached.insert(Milestone::Dhcp, 2.31);
        reached.insert(Milestone::Loader, 2.4);
        let rows = [
            Row {
                name: "cp1".into(),
                firmware: "bios".into(),
                ip: "10.20.0.11".into(),
                reached,
                state: "booting".into(),
            },
            Row {
                name: "stranger".into(),
                firmware: "uefi".into(),
                ip: "".into(),
                reached: BTreeMap::new(),
                state: "waiting".into(),
            },
        ];
        let text = render(&rows);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0],
            "NODE      FW    IP              DHCP    LOADER    KERNEL  IGNITION    MARKER  STATE"
        );
        assert_eq!(
            lines[1],
            "cp1       bios  10.20.0.11      2.3s      2.4s         -         -         -  booting"
        );
        assert!(
            lines[2].starts_with("stranger  uefi              "),
            "{}",
            lines[2]
        );
        assert_eq!(
            json(&rows[0]),
            serde_json::json!({"name": "cp1", "firmware": "bios", "ip": "10.20.0.11",
                               "milestones": ["dhcp", "loader"], "state": "booting"})
        );
        assert!(json(&rows[1])["ip"].is_null());
    }

    #[test]
    fn beacon_timeline_lists_beacons_in_arrival_order() {
        let beacons: BTreeMap<String, f64> = [
            ("first-boot".to_string(), 420.25),
            ("install-done".to_string(), 151.0),
            ("install-started".to_string(), 70.12),
        ]
        .into_iter()
        .collect();
        assert_eq!(
            beacon_timeline("cp1", &beacons),
            "cp1 beacons: install-started 70.1s, install-done 151.0s, first-boot 420.2s\n"
        );
        assert_eq!(beacon_timeline("cp1", &BTreeMap::new()), "");
    }
}
