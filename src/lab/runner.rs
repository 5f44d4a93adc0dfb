//! Brings a lab up and down: the namespaces, the DHCP server in its own
//! (dnsmasq, ISC dhcpd or Kea), the DHCP relay when the nodes sit behind a
//! router, the boot-side dnsmasq (router advertisements; TFTP in the nginx
//! variant), the boot server (pxebuild serve, or nginx with dnsmasq's or
//! tftpd-hpa's TFTP as the peer set) and one QEMU per VM.
//! Every process is started in a process group of its own (so a terminal's
//! Ctrl-C reaches only pxebuild, which then tears down in order), recorded in
//! `lab.json` before anything else happens, and stopped by PID.
use std::collections::BTreeMap;
use std::fs::File;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::dhcp;
use super::plan::{DhcpKind, Firmware, LabPlan};
use super::qemu::{self, Accel, VmSpec};
use super::state::{self, LabState, Process, StateDir, VmRecord};
use super::{dnsmasq, netns, LabOptions, ServerKind};

/// A lab that is up: its plan, its record and the processes this pxebuild started.
pub(crate) struct Lab {
    pub plan: LabPlan,
    pub state_dir: StateDir,
    pub record: LabState,
    pub accel: Accel,
    pub memory_mib: u32,
    options: LabOptions,
    children: BTreeMap<String, Child>,
    /// Set once torn down or detached: dropping the lab then leaves things alone.
    released: bool,
}

impl Drop for Lab {
    /// A lab dropped on an error path or a panic still stops its processes.
    fn drop(&mut self) {
        if !self.released {
            self.teardown();
        }
    }
}

impl Lab {
    /// Creates the network and starts DHCP and the boot server (no VM yet).
    /// On failure everything started so far is torn down again.
    pub(crate) fn start(plan: LabPlan, state_dir: StateDir, options: LabOptions) -> Result<Lab> {
        let accel = qemu::resolve_accel(options.accel)?;
        let memory_mib = options.memory_mib.unwrap_or_else(|| default_memory(&plan));
        let record = LabState::new(&state_dir.namespace());
        let mut lab = Lab {
            plan,
            state_dir,
            record,
            accel,
            memory_mib,
            options,
            children: BTreeMap::new(),
            released: false,
        };
        lab.state_dir.clear_run_files()?;
        // Recorded before the namespace exists, so a crash at any later point
        // leaves enough for `lab down` to clean up.
        lab.state_dir.save(&lab.record)?;
        // On failure, dropping the lab tears down what was started.
        lab.bring_up()?;
        Ok(lab)
    }

    fn bring_up(&mut self) -> Result<()> {
        let ns = self.record.namespace.clone();
        let taps: Vec<String> = (0..self.plan.vms.len()).map(tap).collect();
        netns::create(
            &ns,
            &self.plan.topology,
            self.plan.subnet,
            self.plan.prefix,
            &taps,
        )?;
        self.start_boot_dnsmasq()?;
        match self.plan.dhcp {
            DhcpKind::Dnsmasq => self.start_dhcp_dnsmasq()?,
            DhcpKind::Isc => self.start_isc_dhcpd()?,
            DhcpKind::Kea => self.start_kea()?,
        }
        if self.plan.relayed() {
            self.start_relay()?;
        }
        match self.options.server {
            ServerKind::Pxebuild => self.start_pxebuild_serve()?,
            ServerKind::Nginx => self.start_nginx()?,
            ServerKind::NginxTftpd => {
                self.start_tftpd()?;
                self.start_nginx()?;
            }
        }
        let http = SocketAddr::from((self.plan.server, self.plan.http_port));
        self.wait_until("server", || {
            netns::wait_for_tcp(&ns, http, Duration::from_millis(300))
        })
    }

    /// The boot server's dnsmasq: router advertisements, and TFTP for nginx.
    fn start_boot_dnsmasq(&mut self) -> Result<()> {
        let log = self.state_dir.file(BOOT_DNSMASQ_LOG);
        let _ = std::fs::remove_file(&log);
        let tftp_root = self.plan.dist.join(crate::layout::TFTP);
        let tftp = (self.options.server == ServerKind::Nginx).then_some(tftp_root.as_path());
        let conf = self.state_dir.file("boot-dnsmasq.conf");
        let text = dnsmasq::boot_config(&self.plan, &log, tftp);
        crate::fsutil::atomic_write(&conf, text.as_bytes(), 0o644)?;
        let mut cmd = netns::command(&self.record.namespace, "dnsmasq");
        cmd.arg("--keep-in-foreground")
            .arg(format!("--conf-file={}", conf.display()));
        cmd.arg(format!(
            "--pid-file={}",
            self.state_dir.file("boot-dnsmasq.pid").display()
        ));
        self.spawn_service("dnsmasq", "dnsmasq", cmd, "dnsmasq.out")?;
        self.wait_for_log("dnsmasq", &log, dnsmasq::ready_line(false))
    }

    /// dnsmasq as the DHCP server, in the DHCP namespace, logging to `dnsmasq.log`.
    fn start_dhcp_dnsmasq(&mut self) -> Result<()> {
        let log = self.state_dir.file(DhcpKind::Dnsmasq.log_file());
        let _ = std::fs::remove_file(&log);
        let _ = std::fs::remove_file(self.state_dir.file("dnsmasq.leases"));
        let conf = self.state_dir.file("dnsmasq.conf");
        let text = dnsmasq::dhcp_config(&self.plan, &log);
        crate::fsutil::atomic_write(&conf, text.as_bytes(), 0o644)?;
        let mut cmd = netns::command(&netns::dhcp_ns(&self.record.namespace), "dnsmasq");
        cmd.arg("--keep-in-foreground")
            .arg(format!("--conf-file={}", conf.display()));
        cmd.arg(format!(
            "--pid-file={}",
            self.state_dir.file("dnsmasq.pid").display()
        ));
        self.spawn_service("dhcp", "dnsmasq", cmd, "dhcp.out")?;
        self.wait_for_log("dhcp", &log, dnsmasq::ready_line(true))
    }

    /// ISC's DHCP relay on the router, from the nodes' link to the DHCP
    /// server; its giaddr is the router's address there (the site's gateway).
    fn start_relay(&mut self) -> Result<()> {
        let rtr = netns::router_ns(&self.record.namespace);
        let mut cmd = netns::command(&rtr, "dhcrelay");
        cmd.args(["-4", "-d", "-id", netns::ROUTER_NODE_IF])
            .args(["-iu", netns::ROUTER_SERVER_IF])
            .arg("-pf")
            .arg(self.state_dir.file("dhcrelay.pid"))
            .arg(self.plan.topology.dhcp.to_string());
        let log = self.state_dir.file(RELAY_LOG);
        self.spawn_service("relay", "dhcrelay", cmd, RELAY_LOG)?;
        self.wait_for_log("relay", &log, "Sending on")
    }

    /// ISC dhcpd in the foreground in the DHCP namespace, logging to `dhcpd.log`.
    fn start_isc_dhcpd(&mut self) -> Result<()> {
        let conf = self.state_dir.file("dhcpd.conf");
        crate::fsutil::atomic_write(&conf, dhcp::isc_config(&self.plan).as_bytes(), 0o644)?;
        let leases = self.state_dir.file("dhcpd.leases");
        crate::fsutil::atomic_write(&leases, b"", 0o644)?;
        let mut cmd = netns::command(&netns::dhcp_ns(&self.record.namespace), "dhcpd");
        cmd.args(["-f", "-d", "-4", "-cf"])
            .arg(&conf)
            .arg("-lf")
            .arg(&leases)
            .arg("-pf")
            .arg(self.state_dir.file("dhcpd.pid"))
            .arg(netns::DHCP_IF);
        let log = self.state_dir.file(DhcpKind::Isc.log_file());
        self.spawn_service("dhcp", "dhcpd", cmd, DhcpKind::Isc.log_file())?;
        self.wait_for_log("dhcp", &log, "Server starting service.")
    }

    /// Kea's DHCPv4 server, its configuration built around the snippet.
    fn start_kea(&mut self) -> Result<()> {
        let path = self.plan.dhcp_snippet();
        let snippet = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        let log = self.state_dir.file(DhcpKind::Kea.log_file());
        let _ = std::fs::remove_file(&log);
        let conf = self.state_dir.file("kea-dhcp4.conf");
        let text = dhcp::kea_config(&self.plan, &snippet, &log)?;
        crate::fsutil::atomic_write(&conf, text.as_bytes(), 0o644)?;
        let mut cmd = netns::command(&netns::dhcp_ns(&self.record.namespace), "kea-dhcp4");
        cmd.arg("-c").arg(&conf);
        // Its PID and lock files go to the state directory, not /run/kea.
        cmd.env("KEA_PIDFILE_DIR", &self.state_dir.root);
        cmd.env("KEA_LOCKFILE_DIR", &self.state_dir.root);
        self.spawn_service("dhcp", "kea-dhcp4", cmd, "kea.out")?;
        self.wait_for_log("dhcp", &log, "DHCP4_STARTED")
    }

    /// Waits until `log` has a line containing `ready`.
    fn wait_for_log(&mut self, name: &str, log: &std::path::Path, ready: &str) -> Result<()> {
        let log = log.to_path_buf();
        let what = format!("{name} has not logged {ready:?}");
        self.wait_until(name, || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains(ready) {
                Ok(())
            } else {
                std::thread::sleep(Duration::from_millis(50));
                bail!("{what}")
            }
        })
    }

    fn start_pxebuild_serve(&mut self) -> Result<()> {
        let exe = std::env::current_exe().context("finding the pxebuild executable")?;
        let program = exe
            .file_name()
            .map_or("pxebuild".into(), |n| n.to_string_lossy().into_owned());
        let mut cmd = netns::command(&self.record.namespace, &exe.to_string_lossy());
        cmd.arg("serve").arg(&self.plan.dist);
        cmd.args(["--listen", &self.plan.server.to_string()]);
        cmd.args(["--http-port", &self.plan.http_port.to_string()]);
        cmd.args(["--tftp-port", &self.plan.tftp_port.to_string()]);
        cmd.arg("--log").arg(self.state_dir.file("server.log"));
        self.spawn_service("server", &program, cmd, "server.out")
    }

    /// tftpd-hpa as Debian's package runs it (`--secure`: chrooted to the
    /// TFTP root, so clients name files relative to it), in the foreground and
    /// as its default unprivileged user, on the boot server address.
    fn start_tftpd(&mut self) -> Result<()> {
        let root = self.plan.dist.join(crate::layout::TFTP);
        // PXE ROMs always ask port 69, whatever the site's tftp_port says.
        let addr = SocketAddr::from((self.plan.server, 69));
        let mut cmd = netns::command(&self.record.namespace, "in.tftpd");
        cmd.args(["--foreground", "--secure", "--address"])
            .arg(addr.to_string())
            .arg(&root);
        self.spawn_service("tftpd", "in.tftpd", cmd, "tftpd.out")?;
        let ns = self.record.namespace.clone();
        self.wait_until("tftpd", || {
            netns::wait_for_tftp(&ns, addr, Duration::from_millis(300))
        })
    }

    fn start_nginx(&mut self) -> Result<()> {
        let prefix = self.state_dir.file("nginx");
        std::fs::create_dir_all(&prefix)
            .with_context(|| format!("creating {}", prefix.display()))?;
        let conf = prefix.join("nginx.conf");
        let text = super::nginx::config(&self.plan, &prefix, &self.state_dir.file("server.log"));
        crate::fsutil::atomic_write(&conf, text.as_bytes(), 0o644)?;
        let mut cmd = netns::command(&self.record.namespace, "nginx");
        cmd.arg("-p").arg(&prefix).arg("-c").arg(&conf);
        cmd.arg("-e").arg(prefix.join("error.log"));
        self.spawn_service("server", "nginx", cmd, "server.out")
    }

    /// Retries `ready` until it succeeds, failing early if the process died.
    fn wait_until(&mut self, name: &str, mut ready: impl FnMut() -> Result<()>) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let err = match ready() {
                Ok(()) => return Ok(()),
                Err(err) => err,
            };
            if let Some(status) = self.children.get_mut(name).and_then(|c| c.try_wait().ok()?) {
                let out = self.state_dir.file(&format!("{name}.out"));
                let tail = tail(&out, 10);
                bail!("{name} exited ({status}) while starting:\n{tail}");
            }
            if Instant::now() >= deadline {
                return Err(err.context(format!("{name} did not become ready")));
            }
        }
    }

    /// Starts a service with stdout and stderr both going to `STATE/<out>`.
    fn spawn_service(&mut self, name: &str, program: &str, cmd: Command, out: &str) -> Result<()> {
        let stdout = create(&self.state_dir.file(out))?;
        let stderr = stdout.try_clone().context("duplicating a log descriptor")?;
        self.spawn(name, program, cmd, stdout, stderr)
    }

    /// Starts a process in its own process group and records it before anything else.
    fn spawn(
        &mut self,
        name: &str,
        program: &str,
        mut cmd: Command,
        stdout: File,
        stderr: File,
    ) -> Result<()> {
        cmd.stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {name} ({program})"))?;
        let pid = child.id();
        self.children.insert(name.to_string(), child);
        // A restarted VM replaces its stopped (and reaped) predecessor: a
        // stale PID must never be signalled at teardown.
        self.record.processes.retain(|p| p.name != name);
        self.record.processes.push(Process {
            name: name.into(),
            pid,
            program: program.into(),
        });
        self.state_dir.save(&self.record)
    }

    /// Starts VM `index`; returns when QEMU runs.
    pub(crate) fn start_vm(&mut self, index: usize) -> Result<()> {
        netns::clear_time_wait(&self.record.namespace)?;
        let vm = self.plan.vms[index].clone();
        let vars = match vm.firmware {
            Firmware::Uefi => Some(self.uefi_vars(&vm.name)?),
            Firmware::Bios => None,
        };
        let disk = self
            .options
            .disk_gib
            .map(|gib| self.disk(&vm.name, gib))
            .transpose()?;
        let cut = self.options.cuts.iter().find(|c| c.node == vm.name);
        let spec = VmSpec {
            vm: &vm,
            accel: self.accel,
            memory_mib: self.memory_mib,
            tap: tap(index),
            vars,
            disk,
            network_first: self.options.network_first,
            cut: cut.map(|c| c.beacon.as_str()),
        };
        let serial = create(&self.state_dir.serial(&vm.name))?;
        let qemu_log = create(&self.state_dir.file(&format!("{}.qemu.log", vm.name)))?;
        let mut cmd = netns::command(&self.record.namespace, qemu::QEMU);
        cmd.args(qemu::args(&spec))
            .current_dir(&self.state_dir.root);
        self.spawn(&vm.name, qemu::QEMU, cmd, serial, qemu_log)?;
        self.record.vms.retain(|r| r.name != vm.name);
        self.record.vms.push(VmRecord {
            name: vm.name.clone(),
            mac: vm.mac.clone(),
            firmware: vm.firmware.as_str().into(),
            kind: super::role_name(&vm.role).into(),
            started_unix: crate::clock::now_secs(),
        });
        self.state_dir.save(&self.record)
    }

    /// A fresh copy of OVMF's variable store: no boot entries from earlier runs.
    fn uefi_vars(&self, name: &str) -> Result<PathBuf> {
        let vars = self.state_dir.file(&format!("{name}.vars.fd"));
        std::fs::copy(qemu::OVMF_VARS, &vars)
            .with_context(|| format!("copying {} to {}", qemu::OVMF_VARS, vars.display()))?;
        Ok(vars)
    }

    /// A sparse raw disk for real installs, kept across runs.
    fn disk(&self, name: &str, gib: u64) -> Result<PathBuf> {
        let path = self.state_dir.file(&format!("{name}.img"));
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("creating {}", path.display()))?;
        if file.metadata().map(|m| m.len()).unwrap_or(0) < gib << 30 {
            file.set_len(gib << 30)
                .with_context(|| format!("sizing {}", path.display()))?;
        }
        Ok(path)
    }

    /// Whether the VM's QEMU has exited.
    pub(crate) fn vm_exited(&mut self, name: &str) -> bool {
        self.children
            .get_mut(name)
            .is_some_and(|c| matches!(c.try_wait(), Ok(Some(_))))
    }

    /// Stops VM `index` and boots it again; the stopped attempt's serial log
    /// is kept as `<name>.attempt-<n>.serial.log`.
    pub(crate) fn restart_vm(&mut self, index: usize, attempt: usize) -> Result<()> {
        let name = self.plan.vms[index].name.clone();
        self.stop_vm(&name);
        let serial = self.state_dir.serial(&name);
        let kept = self
            .state_dir
            .file(&format!("{name}.attempt-{attempt}.serial.log"));
        std::fs::rename(&serial, &kept)
            .with_context(|| format!("keeping {} as {}", serial.display(), kept.display()))?;
        self.start_vm(index)
    }

    /// Cuts a VM's power and lets it boot again (`--cut`): a reset through
    /// its monitor, so the same QEMU keeps its disk, firmware variables and
    /// serial log.
    pub(crate) fn power_cut(&self, name: &str) -> Result<()> {
        let monitor = self.state_dir.file(&super::cut::monitor_name(name));
        super::cut::reset(&monitor).with_context(|| format!("cutting the power of {name}"))
    }

    /// Stops one VM by PID.
    pub(crate) fn stop_vm(&mut self, name: &str) {
        if let Some(child) = self.children.get_mut(name) {
            state::stop(child.id(), qemu::QEMU, Duration::from_secs(2));
            let _ = child.wait();
        }
    }

    pub(crate) fn options(&self) -> &LabOptions {
        &self.options
    }

    /// Stops every recorded process (VMs first), deletes the namespace and the record.
    pub(crate) fn teardown(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        teardown_record(&self.state_dir, &self.record);
        for child in self.children.values_mut() {
            let _ = child.wait();
        }
        self.children.clear();
    }

    /// Leaves everything running (for `lab up`); `lab down` stops it later.
    pub(crate) fn detach(mut self) {
        self.released = true;
        self.children.clear();
    }
}

/// Stops the processes of a record in reverse start order, then removes the
/// namespace and forgets the record. Shared by teardown and `lab down`.
pub(crate) fn teardown_record(state_dir: &StateDir, record: &LabState) {
    for p in record.processes.iter().rev() {
        state::stop(p.pid, &p.program, Duration::from_secs(3));
    }
    if let Err(err) = netns::delete(&record.namespace) {
        crate::warn!("{err:#}");
        return;
    }
    if let Err(err) = state_dir.forget() {
        crate::warn!("{err:#}");
    }
}

fn create(path: &std::path::Path) -> Result<File> {
    File::create(path).with_context(|| format!("creating {}", path.display()))
}

/// The boot-side dnsmasq's log (router advertisements, TFTP for nginx).
pub(crate) const BOOT_DNSMASQ_LOG: &str = "boot-dnsmasq.log";
/// The DHCP relay's output.
pub(crate) const RELAY_LOG: &str = "dhcrelay.log";

fn tap(index: usize) -> String {
    format!("tap{index}")
}

/// Guest RAM: enough for the stand-in OS, or for a real Flatcar PXE image,
/// which unpacks its large initrd into RAM.
fn default_memory(plan: &LabPlan) -> u32 {
    let flatcar = plan
        .dist
        .join(crate::layout::http_path(crate::layout::FLATCAR));
    let big = walkdir::WalkDir::new(flatcar)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name() == crate::layout::PXE_INITRD)
        .any(|e| e.metadata().is_ok_and(|m| m.len() > 100 << 20));
    if big {
        3072
    } else {
        768
    }
}

/// The last `n` non-empty lines of a log, cleaned of terminal escapes.
pub(crate) fn tail(path: &std::path::Path, n: usize) -> String {
    let bytes = std::fs::read(path).unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes);
    let lines: Vec<String> = text
        .split('\n')
        .map(super::console::clean)
        .filter(|l| !l.trim().is_empty())
        .collect();
    let start = lines.len().saturating_sub(n);
    lines[start..]
        .iter()
        .map(|l| format!("    | {l}\n"))
        .collect()
}
