//! `pxebuild lab`: rehearses a site on local QEMU VMs, on a private network that
//! carries the site's own boot-server address and subnet.
//!
//! The lab boots the built tree exactly as a rack would: the external DHCP
//! server (dnsmasq, ISC dhcpd or Kea, configured from the build's DHCP
//! snippet) is a host of its own on the site subnet, or behind a DHCP relay
//! when the boot server is on another subnet; the boot
//! server is `pxebuild serve` (or nginx with dnsmasq's or tftpd-hpa's TFTP,
//! proving the tree portable), and each site node is a VM with its MAC and
//! firmware. Milestones come from serial consoles and the DHCP log; the
//! verdict per VM depends on its role (node, stranger, intruder). Everything
//! runs in the lab's network namespaces and is torn down by PID (and process
//! group), then by deleting the namespaces.
//!
//! Modules: `plan` (what to boot), `topology` (the lab's addresses), `tools`
//! (preflight), `netns`, `dhcp` (which
//! DHCP server, ISC and Kea configs, lease lines), `dnsmasq`,
//! `nginx`, `qemu` (command lines, accelerator probe), `runner` (processes),
//! `console` (milestone patterns), `tracker` (verdicts), `watch` (the loop),
//! `cut` (power cuts at a beacon),
//! `table` (live table), `state` (runtime directory and crash recovery).
pub(crate) mod console;
pub mod cut;
pub(crate) mod dhcp;
pub(crate) mod dnsmasq;
pub mod netns;
pub(crate) mod nginx;
pub mod plan;
pub(crate) mod qemu;
pub(crate) mod runner;
pub mod state;
pub(crate) mod table;
pub(crate) mod tools;
pub(crate) mod topology;
pub(crate) mod tracker;
pub(crate) mod watch;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::ValueEnum;
use serde::Serialize;

use crate::error::BadInput;
use console::{MarkerLine, Milestone};
use plan::{DhcpKind, LabPlan, Role};
use runner::Lab;
use state::StateDir;
use tracker::Verdict;

/// Which boot server the lab runs on the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ServerKind {
    /// `pxebuild serve` (TFTP + HTTP).
    Pxebuild,
    /// nginx for HTTP and dnsmasq for TFTP: the tree served by common peers.
    Nginx,
    /// nginx for HTTP and tftpd-hpa for TFTP: the other common peer set.
    NginxTftpd,
}

impl ServerKind {
    /// Whether nginx serves `dist/http` (every kind but pxebuild's own).
    pub fn http_by_nginx(self) -> bool {
        self != ServerKind::Pxebuild
    }
}

/// How to run the lab.
#[derive(Debug, Clone)]
pub struct LabOptions {
    pub accel: qemu::Accel,
    /// Guest RAM; `None` picks by the size of the PXE initrd.
    pub memory_mib: Option<u32>,
    pub server: ServerKind,
    /// VMs booting at the same time (`run` only).
    pub parallel: usize,
    /// Time each VM gets to reach its verdict (`run` only).
    pub timeout: Duration,
    /// Give each VM a sparse disk of this size (real installs).
    pub disk_gib: Option<u64>,
    /// Boot order NIC before disk (a machine kept network-first).
    pub network_first: bool,
    /// The beacon that ends a node's run (default: the stand-in's marker or `install-done`).
    pub until: Option<crate::beacon::Beacon>,
    /// Power cuts: reset NODE's VM when it sends BEACON (`run` only).
    pub cuts: Vec<cut::Cut>,
    /// How often a VM is rebooted after its loader gave up (`run` only): a
    /// real machine resets and boots again, and so does the lab, saying so in
    /// the report. lpxelinux gives up on some full-size boots (docs/lab.md).
    pub loader_retries: usize,
}

/// The outcome of `lab run`, also written to `report.json` in the state directory.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub namespace: String,
    pub accel: String,
    pub server: ServerKind,
    pub dhcp: DhcpKind,
    /// The DHCP server's own address (its server identifier).
    pub dhcp_address: String,
    /// The router's address on the nodes' link when a DHCP relay runs there.
    pub relay: Option<String>,
    pub vms: Vec<VmReport>,
}

#[derive(Debug, Clone, Serialize)]
pub struct VmReport {
    pub name: String,
    pub mac: String,
    pub firmware: String,
    pub kind: String,
    pub ip: Option<String>,
    pub verdict: Verdict,
    /// Seconds since the VM started.
    pub reached: BTreeMap<Milestone, f64>,
    pub marker: Option<MarkerLine>,
    pub quotes: Vec<(String, String)>,
    /// Beacons the node sent, in seconds since it started.
    pub beacons: BTreeMap<String, f64>,
    pub failure: Option<String>,
    /// Attempts abandoned because the loader gave up (the VM was rebooted).
    pub retries: Vec<String>,
    /// Power cuts the lab made (`--cut`), each followed by a boot.
    pub cuts: Vec<cut::PowerCut>,
    pub serial_log: PathBuf,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.vms.iter().all(|vm| vm.verdict == Verdict::Pass)
    }
}

fn server_name(server: ServerKind) -> &'static str {
    match server {
        ServerKind::Pxebuild => "pxebuild serve",
        ServerKind::Nginx => "nginx + dnsmasq TFTP",
        ServerKind::NginxTftpd => "nginx + tftpd-hpa",
    }
}

fn accel_name(accel: qemu::Accel) -> &'static str {
    match accel {
        qemu::Accel::Kvm => "kvm",
        _ => "tcg",
    }
}

pub fn role_name(role: &Role) -> &'static str {
    match role {
        Role::Node => "node",
        Role::Stranger => "stranger",
        Role::Intruder { .. } => "intruder",
    }
}

/// Up, boot every VM, report, and tear down (also on failure and on `stop`).
pub fn run(
    plan: LabPlan,
    state_dir: StateDir,
    options: LabOptions,
    stop: &AtomicBool,
) -> Result<Report> {
    tools::check(&plan, options.server)?;
    clean_leftovers(&state_dir)?;
    let (parallel, timeout) = (options.parallel, options.timeout);
    let mut lab = Lab::start(plan, state_dir, options)?;
    let relay = match lab.plan.topology.relay {
        Some(r) => format!(", relayed by {}", r.gateway),
        None => String::new(),
    };
    crate::info!(
        "lab: namespace {}, boot server {} ({}), DHCP by {} at {}{relay}, accel {}, {} MiB per VM",
        lab.record.namespace,
        lab.plan.server,
        server_name(lab.options().server),
        lab.plan.dhcp.name(),
        lab.plan.topology.dhcp,
        accel_name(lab.accel),
        lab.memory_mib
    );
    let watched = watch::run(&mut lab, parallel, timeout, stop);
    let report = watched.map(|w| report(&lab, &w));
    lab.teardown();
    let report = report?;
    let text = serde_json::to_string_pretty(&report).expect("report serialises");
    crate::fsutil::atomic_write(&lab.state_dir.file("report.json"), text.as_bytes(), 0o644)?;
    Ok(report)
}

fn report(lab: &Lab, watched: &[watch::Watched]) -> Report {
    let vms = watched
        .iter()
        .map(|w| {
            let vm = &lab.plan.vms[w.index];
            VmReport {
                name: vm.name.clone(),
                mac: vm.mac.clone(),
                firmware: vm.firmware.as_str().into(),
                kind: role_name(&vm.role).into(),
                ip: w.progress.ip.clone(),
                verdict: w.verdict.clone().unwrap_or(Verdict::Fail("not run".into())),
                reached: w.progress.reached.clone(),
                marker: w.progress.marker.clone(),
                quotes: w.progress.quotes.clone(),
                beacons: w.progress.beacons.clone(),
                failure: w.progress.failure.clone(),
                retries: w.retries.clone(),
                cuts: w.cuts.clone(),
                serial_log: lab.state_dir.serial(&vm.name),
            }
        })
        .collect();
    Report {
        namespace: lab.record.namespace.clone(),
        accel: accel_name(lab.accel).into(),
        server: lab.options().server,
        dhcp: lab.plan.dhcp,
        dhcp_address: lab.plan.topology.dhcp.to_string(),
        relay: lab.plan.topology.relay.map(|r| r.gateway.to_string()),
        vms,
    }
}

/// Starts the lab and every VM, then leaves them running for `status`/`down`.
pub fn up(plan: LabPlan, state_dir: StateDir, options: LabOptions) -> Result<String> {
    tools::check(&plan, options.server)?;
    clean_leftovers(&state_dir)?;
    let mut lab = Lab::start(plan, state_dir, options)?;
    for index in 0..lab.plan.vms.len() {
        lab.start_vm(index)?;
    }
    let ns = lab.record.namespace.clone();
    lab.detach();
    Ok(ns)
}

/// Stops what a (possibly crashed) lab left behind. Returns whether there was anything.
pub fn down(state_dir: &StateDir) -> Result<bool> {
    match state_dir.load()? {
        Some(record) => {
            runner::teardown_record(state_dir, &record);
            if netns::exists(&record.namespace) {
                bail!("namespace {} could not be deleted", record.namespace);
            }
            Ok(true)
        }
        None => {
            refuse_foreign(state_dir)?;
            Ok(false)
        }
    }
}

/// A namespace with our name but no record was not made by this pxebuild.
fn refuse_foreign(state_dir: &StateDir) -> Result<()> {
    let ns = state_dir.namespace();
    if netns::exists(&ns) {
        bail!(BadInput::new(format!(
            "namespace {ns} exists but {} has no lab.json, so pxebuild did not create it and \
             leaves it alone (if it is yours: ip netns del {ns})",
            state_dir.root.display()
        )));
    }
    Ok(())
}

/// Before a new lab: refuse if one is running, clean up after a crashed one.
fn clean_leftovers(state_dir: &StateDir) -> Result<()> {
    let Some(old) = state_dir.load()? else {
        return refuse_foreign(state_dir);
    };
    if !old.live().is_empty() {
        bail!(BadInput::new(format!(
            "a lab is already up in {} (namespace {}); run `pxebuild lab down` first",
            state_dir.root.display(),
            old.namespace
        )));
    }
    crate::warn!(
        "cleaning up after an earlier lab run that did not finish (namespace {})",
        old.namespace
    );
    runner::teardown_record(state_dir, &old);
    Ok(())
}

/// `lab status`: the recorded processes and each VM's milestones so far.
pub fn status(state_dir: &StateDir) -> Result<String> {
    let Some(record) = state_dir.load()? else {
        return Ok(format!("no lab is up in {}\n", state_dir.root.display()));
    };
    let mut out = format!(
        "lab in {}: namespace {} ({}), up {} s\n",
        state_dir.root.display(),
        record.namespace,
        if netns::exists(&record.namespace) {
            "present"
        } else {
            "gone"
        },
        crate::clock::now_secs().saturating_sub(record.started_unix)
    );
    for p in &record.processes {
        let alive = if state::runs(p.pid, &p.program) {
            "running"
        } else {
            "stopped"
        };
        out.push_str(&format!("  {:<10} pid {:<8} {alive}\n", p.name, p.pid));
    }
    let logs = read_logs(state_dir);
    let rows: Vec<table::Row> = record
        .vms
        .iter()
        .map(|vm| status_row(state_dir, vm, &logs))
        .collect();
    out.push_str(&table::render(&rows));
    Ok(out)
}

/// The logs a status reads: every DHCP server's (only the server of the last
/// run has one; older ones are cleared) and pxebuild serve's.
fn read_logs(state_dir: &StateDir) -> Logs {
    let read = |name: &str| std::fs::read_to_string(state_dir.file(name)).unwrap_or_default();
    Logs {
        dhcp: DhcpKind::value_variants()
            .iter()
            .map(|kind| read(kind.log_file()))
            .collect(),
        server: read("server.log"),
    }
}

/// `lab status --format json`: `{"up", "state", "namespace", "namespace_present",
/// "up_seconds", "processes": [{"name", "pid", "running"}], "vms": [{"name",
/// "firmware", "ip", "milestones", "state"}]}`; only `up` and `state` when no
/// lab is up.
pub fn status_json(state_dir: &StateDir) -> Result<serde_json::Value> {
    let root = state_dir.root.display().to_string();
    let Some(record) = state_dir.load()? else {
        return Ok(serde_json::json!({ "up": false, "state": root }));
    };
    let processes: Vec<serde_json::Value> = record
        .processes
        .iter()
        .map(|p| {
            serde_json::json!({
                "name": p.name,
                "pid": p.pid,
                "running": state::runs(p.pid, &p.program),
            })
        })
        .collect();
    let logs = read_logs(state_dir);
    let vms: Vec<serde_json::Value> = record
        .vms
        .iter()
        .map(|vm| table::json(&status_row(state_dir, vm, &logs)))
        .collect();
    Ok(serde_json::json!({
        "up": true,
        "state": root,
        "namespace": record.namespace,
        "namespace_present": netns::exists(&record.namespace),
        "up_seconds": crate::clock::now_secs().saturating_sub(record.started_unix),
        "processes": processes,
        "vms": vms,
    }))
}

/// Logs `lab status` reads: the DHCP server's (leases) and the boot server's (beacons).
struct Logs {
    dhcp: String,
    server: String,
}

fn status_row(state_dir: &StateDir, vm: &state::VmRecord, logs: &Logs) -> table::Row {
    let mut progress = tracker::Progress::default();
    let dhcp = &logs.dhcp;
    // The beacon order in the log is their order in time.
    let mut mine: Vec<String> = Vec::new();
    for line in logs.server.lines() {
        let Some((node, milestone)) = console::beacon(line) else {
            continue;
        };
        if node == vm.name {
            let detail = console::beacon_detail(line);
            progress.beacon_with(&milestone, detail.as_deref(), f64::NAN);
            mine.push(milestone);
        }
    }
    for (mac, ip) in dhcp.lines().filter_map(dhcp::lease) {
        if mac == vm.mac {
            progress.reach(Milestone::Dhcp, f64::NAN);
            progress.ip = Some(ip);
        }
    }
    let serial = std::fs::read(state_dir.serial(&vm.name)).unwrap_or_default();
    for line in String::from_utf8_lossy(&serial)
        .split('\n')
        .map(console::clean)
    {
        if let Some(event) = console::classify(&line) {
            progress.apply(event, f64::NAN);
        }
    }
    let state = match (&progress.marker, &progress.failure, progress.local_boot) {
        (Some(_), _, _) => "marker reached".to_string(),
        (None, Some(why), _) => format!("failed: {why}"),
        (None, None, true) => "local boot".to_string(),
        _ => match mine.last() {
            Some(beacon) => format!("booting (beacon {beacon})"),
            None => "booting".to_string(),
        },
    };
    table::Row {
        name: vm.name.clone(),
        firmware: vm.firmware.clone(),
        ip: progress.ip.clone().unwrap_or_default(),
        reached: progress.reached,
        state,
    }
}
