//! `pxebuild lab up|run|status|down`: resolves the arguments and the site into
//! a lab plan and options, then calls `crate::lab`.
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::beacon::Beacon;
use crate::cmd::global::{Format, Global};
use crate::lab::plan::DhcpKind;
use crate::lab::plan::{Firmware, LabPlan, LabSite, PlanOptions};
use crate::lab::qemu::Accel;
use crate::lab::state::StateDir;
use crate::lab::{self, LabOptions, ServerKind};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Boot every VM, print a live table of milestones, report, and tear down.
    ///
    /// Exits 0 when every VM reached its verdict: site nodes their marker, a
    /// stranger the local-boot default, an intruder a refused Ignition fetch.
    /// The report is also written to STATE/report.json.
    Run(RunArgs),
    /// Start the lab network, servers and VMs, and leave them running.
    Up(BootArgs),
    /// Show the lab's processes and each VM's milestones so far.
    Status(StatusArgs),
    /// Stop everything a lab started (also after a crash) and delete its namespace.
    Down(StateArgs),
}

/// Where the lab keeps its logs and records.
#[derive(Debug, clap::Args)]
pub struct StateArgs {
    /// Runtime directory for logs, pid records and VM files.
    ///
    /// Defaults to `.pxebuild/lab` beside the site file. One lab (one network
    /// namespace) per directory.
    #[arg(long, value_name = "DIR")]
    pub state: Option<PathBuf>,
}

/// `lab status` arguments.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// Output: text (a table) or json (one document, docs/lab.md).
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
}

/// What to boot and how.
#[derive(Debug, clap::Args)]
pub struct BootArgs {
    #[command(flatten)]
    pub state: StateArgs,
    /// The built tree to boot (default: `dist` beside the site file).
    #[arg(long, value_name = "DIR")]
    pub dist: Option<PathBuf>,
    /// Accelerator: auto uses KVM only when a probe VM really runs under it.
    #[arg(long, value_enum, default_value = "auto")]
    pub accel: Accel,
    /// Guest RAM in MiB (default: 768 for small images, 3072 for real Flatcar).
    #[arg(long, value_name = "MIB")]
    pub memory: Option<u32>,
    /// Boot only these nodes (comma-separated names).
    #[arg(long, value_name = "NAME,...", value_delimiter = ',')]
    pub nodes: Vec<String>,
    /// Boot server on the lab bridge: pxebuild serve, nginx + dnsmasq TFTP, or nginx + tftpd-hpa.
    #[arg(long, value_enum, default_value = "pxebuild")]
    pub server: ServerKind,
    /// DHCP server on the lab bridge, run with the snippet the build emitted for it.
    #[arg(long, value_enum, default_value = "dnsmasq")]
    pub dhcp: DhcpKind,
    /// Also boot a VM with an unknown MAC; it must get the local-boot default.
    #[arg(long, value_enum, value_name = "FIRMWARE")]
    pub stranger: Option<Firmware>,
    /// Also boot NODE's kernel line from an unknown MAC; its Ignition fetch must be refused.
    #[arg(long, value_name = "NODE")]
    pub intruder: Option<String>,
    /// Give each VM a sparse virtio disk of this many GiB (real Flatcar installs).
    #[arg(long, value_name = "GIB")]
    pub disk: Option<u64>,
    /// Boot the NIC before the disk (with --disk), as a rack kept network-first.
    #[arg(long)]
    pub network_first: bool,
}

/// `lab run` arguments.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub boot: BootArgs,
    /// Seconds each VM gets to reach its verdict.
    #[arg(long, value_name = "SECS", default_value_t = 180)]
    pub timeout: u64,
    /// End each node's run at this beacon instead of the install marker.
    ///
    /// Real Flatcar nodes send install-started, install-done, first-boot,
    /// sysexts-merged, kubeadm-done and cilium-ready; `--until cilium-ready`
    /// waits for the cluster (use with --disk).
    #[arg(long, value_name = "BEACON", value_enum)]
    pub until: Option<Beacon>,
    /// How many VMs boot at the same time.
    #[arg(long, value_name = "N", default_value_t = 3)]
    pub parallel: usize,
    /// Reboot a VM up to N times when its loader gives up, as a real machine
    /// resets and boots again (each attempt's console log is kept).
    ///
    /// Debian's lpxelinux gives up in about one boot in four with full-size
    /// Flatcar files, from a race in syslinux's semaphores (docs/lab.md); the
    /// report lists every retry.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub loader_retries: usize,
    /// Cut NODE's power when it sends BEACON, then let it boot again (with --disk).
    ///
    /// Comma-separated or repeated, one per node. BEACON is one of the names
    /// --until takes or a stand-in kubeadm phase (kubeadm-init-control-plane,
    /// kubeadm-join-etcd, ...). The VM carries the SMBIOS OEM string
    /// pxebuild.standin.hold=BEACON, which makes the stand-in's tools stop
    /// right there; the lab resets the VM through QEMU's monitor.
    #[arg(long, value_name = "NODE=BEACON", value_delimiter = ',')]
    pub cut: Vec<lab::cut::Cut>,
}

/// `--until` takes a beacon's name and is checked while the arguments are
/// read: a misspelt one is a usage error (exit 2) listing the names, with
/// clap's "a similar value exists", not a run that waits for its timeout.
impl clap::ValueEnum for Beacon {
    fn value_variants<'a>() -> &'a [Self] {
        &Beacon::ALL
    }
    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        Some(clap::builder::PossibleValue::new(self.name()))
    }
}

pub(crate) fn run(global: &Global, command: Command) -> Result<()> {
    match command {
        Command::Run(args) => run_lab(global, args),
        Command::Up(args) => {
            let (plan, state, options) = resolve(global, &args)?;
            let ns = lab::up(plan, state, options)?;
            crate::info!("lab is up in namespace {ns}; see `pxebuild lab status`, stop with `pxebuild lab down`");
            Ok(())
        }
        Command::Status(args) => {
            let state = state_dir(global, &args.state)?;
            match args.format {
                Format::Text => print!("{}", lab::status(&state)?),
                Format::Json => println!("{}", lab::status_json(&state)?),
            }
            Ok(())
        }
        Command::Down(args) => {
            let state = state_dir(global, &args)?;
            if lab::down(&state)? {
                crate::info!("lab in {} is down", state.root.display());
            } else {
                crate::info!("no lab was up in {}", state.root.display());
            }
            Ok(())
        }
    }
}

fn run_lab(global: &Global, args: RunArgs) -> Result<()> {
    let (plan, state, mut options) = resolve(global, &args.boot)?;
    options.parallel = args.parallel;
    options.timeout = Duration::from_secs(args.timeout);
    options.until = args.until;
    options.loader_retries = args.loader_retries;
    let nodes: Vec<&str> = plan
        .vms
        .iter()
        .filter(|vm| matches!(vm.role, lab::plan::Role::Node))
        .map(|vm| vm.name.as_str())
        .collect();
    lab::cut::check(&args.cut, &nodes, options.disk_gib.is_some())?;
    options.cuts = args.cut;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing signal handlers")?;
    }
    let report = lab::run(plan, state, options, &stop)?;
    print!("{}", lab::table::render(&report_rows(&report)));
    for vm in &report.vms {
        print!("{}", lab::table::beacon_timeline(&vm.name, &vm.beacons));
        for cut in &vm.cuts {
            println!("{} power cut at {} {:.1}s", vm.name, cut.beacon, cut.at);
        }
    }
    let failed: Vec<&lab::VmReport> = report
        .vms
        .iter()
        .filter(|vm| vm.verdict != lab::tracker::Verdict::Pass)
        .collect();
    if failed.is_empty() {
        return Ok(());
    }
    for vm in &failed {
        eprintln!(
            "{} failed; last lines of {}:",
            vm.name,
            vm.serial_log.display()
        );
        eprint!("{}", lab::runner::tail(&vm.serial_log, 15));
        // An empty console usually means QEMU itself refused to start.
        let qemu_log = vm
            .serial_log
            .with_file_name(format!("{}.qemu.log", vm.name));
        let qemu = lab::runner::tail(&qemu_log, 5);
        if !qemu.is_empty() {
            eprintln!("QEMU said ({}):", qemu_log.display());
            eprint!("{qemu}");
        }
    }
    let names: Vec<&str> = failed.iter().map(|vm| vm.name.as_str()).collect();
    bail!("lab run failed for {}", names.join(", "))
}

fn report_rows(report: &lab::Report) -> Vec<lab::table::Row> {
    report
        .vms
        .iter()
        .map(|vm| lab::table::Row {
            name: vm.name.clone(),
            firmware: vm.firmware.clone(),
            ip: vm.ip.clone().unwrap_or_default(),
            reached: vm.reached.clone(),
            state: match &vm.verdict {
                lab::tracker::Verdict::Pass => "ok".into(),
                lab::tracker::Verdict::Fail(why) => format!("FAIL: {why}"),
            },
        })
        .collect()
}

/// The plan, state directory and options of `up`/`run` (`run` then sets its own
/// parallelism, timeout and end beacon).
fn resolve(global: &Global, args: &BootArgs) -> Result<(LabPlan, StateDir, LabOptions)> {
    let site = LabSite::load(&global.site)?;
    let dist = args
        .dist
        .clone()
        .unwrap_or_else(|| beside_site(global, crate::layout::SITE_DIST));
    let plan_options = PlanOptions {
        nodes: args.nodes.clone(),
        stranger: args.stranger,
        intruder: args.intruder.clone(),
        dhcp: args.dhcp,
    };
    let plan = LabPlan::from_dist(&dist, &site, &plan_options)?;
    if args.memory.is_some_and(|m| m < 256) {
        bail!(crate::error::BadInput::new(
            "--memory must be at least 256 MiB"
        ));
    }
    let options = LabOptions {
        accel: args.accel,
        memory_mib: args.memory,
        server: args.server,
        parallel: 1,
        timeout: Duration::from_secs(180),
        disk_gib: args.disk,
        network_first: args.network_first,
        until: None,
        cuts: Vec::new(),
        loader_retries: 1,
    };
    Ok((plan, state_dir(global, &args.state)?, options))
}

fn state_dir(global: &Global, args: &StateArgs) -> Result<StateDir> {
    let dir = args
        .state
        .clone()
        .unwrap_or_else(|| beside_site(global, ".pxebuild/lab"));
    StateDir::open(&dir)
}

fn beside_site(global: &Global, name: &str) -> PathBuf {
    let dir = global
        .site
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join(name)
}
