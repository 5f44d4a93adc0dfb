//! The watcher of `lab run`: starts VMs (at most `parallel` at once), follows
//! their serial logs and the DHCP server's log, stamps each milestone with the seconds
//! since that VM started, redraws the live table, and ends each VM once its
//! verdict is known, it stopped, or it ran out of time.
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};

use super::console::{self, Milestone};
use super::cut::PowerCut;
use super::runner::Lab;
use super::table::{self, Row};
use super::tracker::{Progress, Verdict};
use crate::beacon::Beacon;

/// Follows a growing log file, returning complete new lines.
pub(crate) struct LineReader {
    path: PathBuf,
    offset: u64,
    partial: Vec<u8>,
    /// When the file last grew (or the reader was made).
    grew: Instant,
}

impl LineReader {
    /// Starts at the file's current end (or its start when it does not exist yet).
    pub(crate) fn at_end(path: PathBuf) -> LineReader {
        let offset = std::fs::metadata(&path).map_or(0, |m| m.len());
        LineReader {
            path,
            offset,
            partial: Vec::new(),
            grew: Instant::now(),
        }
    }

    pub(crate) fn at_start(path: PathBuf) -> LineReader {
        LineReader {
            path,
            offset: 0,
            partial: Vec::new(),
            grew: Instant::now(),
        }
    }

    /// How long the file has not grown.
    pub(crate) fn quiet_for(&self) -> Duration {
        self.grew.elapsed()
    }

    /// The unfinished last line (a loader's `Loading …` waits there).
    pub(crate) fn pending(&self) -> String {
        console::clean(&String::from_utf8_lossy(&self.partial))
    }

    /// New complete lines, cleaned of terminal escapes.
    pub(crate) fn lines(&mut self) -> Vec<String> {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return vec![];
        };
        if file.seek(SeekFrom::Start(self.offset)).is_err() {
            return vec![];
        }
        let mut buf = Vec::new();
        let Ok(n) = file.read_to_end(&mut buf) else {
            return vec![];
        };
        self.offset += n as u64;
        if n > 0 {
            self.grew = Instant::now();
        }
        self.partial.extend_from_slice(&buf);
        let Some(last) = self.partial.iter().rposition(|&b| b == b'\n') else {
            return vec![];
        };
        let mut complete: Vec<u8> = self.partial.drain(..=last).collect();
        complete.pop();
        String::from_utf8_lossy(&complete)
            .split('\n')
            .map(console::clean)
            .collect()
    }
}

/// One VM under watch.
pub(crate) struct Watched {
    pub index: usize,
    pub started: Option<Instant>,
    pub progress: Progress,
    pub verdict: Option<Verdict>,
    /// Why earlier attempts were abandoned (the loader gave up), oldest first.
    pub retries: Vec<String>,
    /// The power cuts made (`--cut`).
    pub cuts: Vec<PowerCut>,
    serial: Option<LineReader>,
}

/// How long a loader may print nothing before the lab counts it as given up.
/// The same TCP stall sometimes leaves lpxelinux waiting forever instead of
/// failing; a quarter of the VM's timeout (at least 90 s) is far more than any
/// download of the stand-in takes, and scales with `--timeout` for real images.
fn loader_stall_limit(timeout: Duration) -> Duration {
    (timeout / 4).max(Duration::from_secs(90))
}

/// Boots every VM of the lab and returns each one's progress and verdict.
pub(crate) fn run(
    lab: &mut Lab,
    parallel: usize,
    timeout: Duration,
    stop: &AtomicBool,
) -> Result<Vec<Watched>> {
    let mut vms: Vec<Watched> = (0..lab.plan.vms.len())
        .map(|index| Watched {
            index,
            started: None,
            progress: Progress::default(),
            verdict: None,
            retries: Vec::new(),
            cuts: Vec::new(),
            serial: None,
        })
        .collect();
    let mut dhcp = LineReader::at_start(lab.state_dir.file(lab.plan.dhcp.log_file()));
    let mut server = LineReader::at_end(lab.state_dir.file("server.log"));
    let mut screen = Screen::new();
    loop {
        if stop.load(Ordering::Relaxed) {
            bail!("interrupted");
        }
        start_next(lab, &mut vms, parallel.max(1))?;
        let mut changed = follow_dhcp(lab, &mut vms, &mut dhcp);
        changed |= follow_beacons(lab, &mut vms, &mut server);
        for w in vms
            .iter_mut()
            .filter(|w| w.started.is_some() && w.verdict.is_none())
        {
            changed |= follow_vm(lab, w, timeout);
        }
        // On a terminal, redraw every second too, so the running times tick.
        if changed || screen.due() {
            screen.draw(lab, &vms);
        }
        if vms.iter().all(|w| w.verdict.is_some()) {
            return Ok(vms);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_next(lab: &mut Lab, vms: &mut [Watched], parallel: usize) -> Result<()> {
    let running = vms
        .iter()
        .filter(|w| w.started.is_some() && w.verdict.is_none())
        .count();
    for w in vms
        .iter_mut()
        .filter(|w| w.started.is_none())
        .take(parallel.saturating_sub(running))
    {
        lab.start_vm(w.index)?;
        w.started = Some(Instant::now());
        w.serial = Some(LineReader::at_start(
            lab.state_dir.serial(&lab.plan.vms[w.index].name),
        ));
    }
    Ok(())
}

/// Leases in the DHCP server's log count for the VM with that MAC.
fn follow_dhcp(lab: &Lab, vms: &mut [Watched], dhcp: &mut LineReader) -> bool {
    let mut changed = false;
    for line in dhcp.lines() {
        let Some((mac, ip)) = super::dhcp::lease(&line) else {
            continue;
        };
        for w in vms.iter_mut().filter(|w| lab.plan.vms[w.index].mac == mac) {
            if let Some(started) = w.started {
                changed |= !w.progress.reached.contains_key(&Milestone::Dhcp);
                w.progress
                    .reach(Milestone::Dhcp, started.elapsed().as_secs_f64());
                w.progress.ip = Some(ip.clone());
            }
        }
    }
    changed
}

/// Beacons in the server's log count for the VM of that name; the beacon
/// of a `--cut` cuts that VM's power, once.
fn follow_beacons(lab: &Lab, vms: &mut [Watched], server: &mut LineReader) -> bool {
    let mut changed = false;
    for line in server.lines() {
        let Some((node, milestone)) = console::beacon(&line) else {
            continue;
        };
        for w in vms
            .iter_mut()
            .filter(|w| lab.plan.vms[w.index].name == node)
        {
            if let Some(started) = w.started {
                let detail = console::beacon_detail(&line);
                let secs = started.elapsed().as_secs_f64();
                w.progress.beacon_with(&milestone, detail.as_deref(), secs);
                changed = true;
                let cut = lab
                    .options()
                    .cuts
                    .iter()
                    .any(|c| c.node == node && c.beacon == milestone && w.verdict.is_none());
                if cut && w.cuts.is_empty() {
                    cut_power(lab, w, &node, &milestone, secs);
                }
            }
        }
    }
    changed
}

fn follow_vm(lab: &mut Lab, w: &mut Watched, timeout: Duration) -> bool {
    let vm = lab.plan.vms[w.index].clone();
    let started = w.started.expect("only started VMs are followed");
    let secs = started.elapsed().as_secs_f64();
    let mut changed = false;
    for line in w.serial.as_mut().map(LineReader::lines).unwrap_or_default() {
        if let Some(event) = console::classify(&line) {
            w.progress.apply(event, secs);
            changed = true;
        }
    }
    let until = lab.options().until;
    w.verdict = w.progress.verdict(&vm.role, until);
    if w.verdict.is_none() {
        if let Some(line) = w.progress.loader_gave_up.clone() {
            return retry_or_fail(lab, w, line);
        }
        if let Some(serial) = w.serial.as_ref().filter(|_| w.progress.in_loader()) {
            let quiet = serial.quiet_for();
            if quiet > loader_stall_limit(timeout) {
                let line = format!(
                    "no console output for {} s after: {}",
                    quiet.as_secs(),
                    serial.pending()
                );
                return retry_or_fail(lab, w, line);
            }
        }
    }
    if w.verdict.is_none() && lab.vm_exited(&vm.name) {
        // Read what QEMU wrote before it exited.
        for line in w.serial.as_mut().map(LineReader::lines).unwrap_or_default() {
            if let Some(event) = console::classify(&line) {
                w.progress.apply(event, secs);
            }
        }
        w.verdict = Some(w.progress.unfinished(&vm.role, until, "the VM stopped"));
    }
    if w.verdict.is_none() && started.elapsed() > timeout {
        let why = format!("no verdict after {} s", timeout.as_secs());
        w.verdict = Some(w.progress.unfinished(&vm.role, until, &why));
    }
    if w.verdict.is_some() {
        // A node that reached a cluster beacon keeps running until the run
        // ends: the others join through it (the first control plane serves
        // the joins, as its API server would).
        if !(w.verdict == Some(Verdict::Pass) && keeps_running(until)) {
            lab.stop_vm(&vm.name);
        }
        changed = true;
    }
    changed
}

/// Whether a node that passed must stay up for the others: `--until` is a
/// beacon that needs the cluster (kubeadm's and Cilium's).
pub(crate) fn keeps_running(until: Option<Beacon>) -> bool {
    matches!(until, Some(Beacon::KubeadmDone | Beacon::CiliumReady))
}

/// Cuts a VM's power at a beacon; a cut that cannot be made fails the VM.
fn cut_power(lab: &Lab, w: &mut Watched, node: &str, beacon: &str, secs: f64) {
    match lab.power_cut(node) {
        Ok(()) => {
            crate::info!("lab: {node}: power cut at {beacon} ({secs:.1} s); the VM boots again");
            w.cuts.push(PowerCut {
                beacon: beacon.into(),
                at: secs,
            });
        }
        Err(err) => {
            w.verdict = Some(Verdict::Fail(format!(
                "the power cut at {beacon} failed: {err:#}"
            )));
        }
    }
}

/// Reboots a VM whose loader gave up (keeping the attempt's serial log), or
/// fails it once the retries are used up.
fn retry_or_fail(lab: &mut Lab, w: &mut Watched, line: String) -> bool {
    let name = lab.plan.vms[w.index].name.clone();
    let secs = w.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
    if w.retries.len() >= lab.options().loader_retries {
        w.verdict = Some(Verdict::Fail(format!(
            "the loader gave up again after {} reboot(s): {line}",
            w.retries.len()
        )));
        lab.stop_vm(&name);
        return true;
    }
    crate::warn!("lab: {name}: the loader gave up after {secs:.1} s ({line}); rebooting the VM");
    w.retries.push(format!("after {secs:.1} s: {line}"));
    let attempt = w.retries.len();
    match lab.restart_vm(w.index, attempt) {
        Ok(()) => {
            w.progress = Progress::default();
            w.started = Some(Instant::now());
            w.serial = Some(LineReader::at_start(lab.state_dir.serial(&name)));
        }
        Err(err) => {
            w.verdict = Some(Verdict::Fail(format!(
                "the loader gave up ({line}) and the VM could not be restarted: {err:#}"
            )));
        }
    }
    true
}

/// The live table: redrawn in place on a terminal, one line per change otherwise.
struct Screen {
    tty: bool,
    drawn: usize,
    last: BTreeMap<String, String>,
    drawn_at: Instant,
}

impl Screen {
    fn new() -> Screen {
        Screen {
            tty: std::io::stderr().is_terminal(),
            drawn: 0,
            last: BTreeMap::new(),
            drawn_at: Instant::now(),
        }
    }

    fn due(&self) -> bool {
        self.tty && self.drawn_at.elapsed() >= Duration::from_secs(1)
    }

    fn draw(&mut self, lab: &Lab, vms: &[Watched]) {
        if crate::log::level() == 0 {
            return;
        }
        self.drawn_at = Instant::now();
        let rows = rows(lab, vms, self.tty);
        if self.tty {
            let text = table::render(&rows);
            if self.drawn > 0 {
                eprint!("\x1b[{}A\x1b[J", self.drawn);
            }
            eprint!("{text}");
            self.drawn = text.lines().count();
            return;
        }
        for row in rows {
            let line = format!("{}: {}", milestones_text(&row), row.state);
            if self.last.get(&row.name) != Some(&line) {
                eprintln!("lab: {:<10} {line}", row.name);
                self.last.insert(row.name, line);
            }
        }
    }
}

fn milestones_text(row: &Row) -> String {
    let parts: Vec<String> = row
        .reached
        .iter()
        .map(|(m, s)| format!("{} {s:.1}s", m.as_str()))
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

/// Table rows for the watched VMs; `ticking` adds the running time of booting VMs.
pub(crate) fn rows(lab: &Lab, vms: &[Watched], ticking: bool) -> Vec<Row> {
    vms.iter()
        .map(|w| {
            let vm = &lab.plan.vms[w.index];
            let ip = w
                .progress
                .ip
                .clone()
                .or(vm.ip.map(|ip| ip.to_string()))
                .unwrap_or_default();
            let state = match (&w.started, &w.verdict) {
                (None, _) => "waiting".to_string(),
                (Some(started), None) if ticking => format!(
                    "{} {:.0}s",
                    w.progress.state(&vm.role, None),
                    started.elapsed().as_secs_f64()
                ),
                (Some(_), v) => w.progress.state(&vm.role, v.as_ref()),
            };
            let state = match w.retries.len() {
                0 => state,
                n => format!("{state} [rebooted {n}x: loader gave up]"),
            };
            let state = match w.cuts.first() {
                None => state,
                Some(cut) => format!("{state} [power cut at {}]", cut.beacon),
            };
            Row {
                name: vm.name.clone(),
                firmware: vm.firmware.as_str().into(),
                ip,
                reached: w.progress.reached.clone(),
                state,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn line_reader_returns_only_complete_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serial.log");
        let mut reader = LineReader::at_start(path.clone());
        assert!(reader.lines().is_empty(), "no file yet");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(b"one\r\ntw").unwrap();
        assert_eq!(reader.lines(), ["one"]);
        f.write_all(b"o\n\x1b[0mthree\n").unwrap();
        assert_eq!(reader.lines(), ["two", "three"]);
        assert!(reader.lines().is_empty());
        assert!(LineReader::at_end(path).lines().is_empty());
    }

    #[test]
    fn a_silent_loader_is_seen_with_its_unfinished_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serial.log");
        let mut f = std::fs::File::create(&path).unwrap();
        f.write_all(b"PXELINUX 6.04\r\nLoading http://s/vmlinuz...")
            .unwrap();
        let mut reader = LineReader::at_start(path);
        reader.grew -= Duration::from_secs(5);
        assert_eq!(reader.lines(), ["PXELINUX 6.04"]);
        assert!(reader.quiet_for() < Duration::from_secs(5), "it grew");
        assert_eq!(reader.pending(), "Loading http://s/vmlinuz...");
        reader.grew -= Duration::from_secs(5);
        assert!(reader.lines().is_empty());
        assert!(reader.quiet_for() >= Duration::from_secs(5), "nothing new");
    }

    #[test]
    fn only_cluster_beacons_keep_passed_nodes_up() {
        assert!(keeps_running(Some(Beacon::KubeadmDone)));
        assert!(keeps_running(Some(Beacon::CiliumReady)));
        assert!(!keeps_running(Some(Beacon::SysextsMerged)));
        assert!(!keeps_running(Some(Beacon::InstallDone)));
        assert!(!keeps_running(None));
    }

    #[test]
    fn the_stall_limit_scales_with_the_timeout() {
        assert_eq!(
            loader_stall_limit(Duration::from_secs(180)),
            Duration::from_secs(90)
        );
        assert_eq!(
            loader_stall_limit(Duration::from_secs(3600)),
            Duration::from_secs(900)
        );
    }
}
