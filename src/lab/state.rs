//! The lab's runtime directory (`--state`, default `.pxebuild/lab` beside
//! site.toml): per-VM serial logs, server and DHCP logs, and `lab.json`, which
//! records the namespace and every process the lab started. `lab.json` is what
//! lets `lab down` clean up after a crashed run, and it is the mark that a
//! namespace belongs to pxebuild: the lab never touches one it did not record
//! (the DHCP server's and the router's namespaces are named after the recorded
//! one, `<namespace>-dhcp` and `<namespace>-rtr`, and go with it).
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::fsutil;

const STATE_FILE: &str = "lab.json";
const MARK: &str = "pxebuild lab";

/// Paths inside the state directory.
#[derive(Debug, Clone)]
pub struct StateDir {
    pub root: PathBuf,
}

impl StateDir {
    /// Opens (creating) the directory; the path is made absolute so the
    /// namespace name derived from it is stable.
    pub fn open(root: &Path) -> Result<StateDir> {
        fsutil::create_private_dir(root)?;
        let root = root
            .canonicalize()
            .with_context(|| format!("resolving {}", root.display()))?;
        Ok(StateDir { root })
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    pub fn serial(&self, vm: &str) -> PathBuf {
        self.file(&format!("{vm}.serial.log"))
    }

    /// `pxelab-<8 hex>`: one namespace per state directory, so two labs never collide.
    pub fn namespace(&self) -> String {
        let hash = blake3::hash(self.root.as_os_str().as_encoded_bytes());
        format!("pxelab-{}", &hash.to_hex()[..8])
    }

    pub fn load(&self) -> Result<Option<LabState>> {
        let path = self.file(STATE_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let state: LabState = serde_json::from_str(&text)
                    .with_context(|| format!("parsing {}", path.display()))?;
                Ok((state.created_by == MARK).then_some(state))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
        }
    }

    pub fn save(&self, state: &LabState) -> Result<()> {
        let text = serde_json::to_string_pretty(state).expect("state serialises");
        fsutil::atomic_write(&self.file(STATE_FILE), text.as_bytes(), 0o600)
    }

    /// Removes the logs, report and firmware variables of an earlier run (VM
    /// disks stay), so nothing stale is read as this run's.
    pub fn clear_run_files(&self) -> Result<()> {
        let entries = std::fs::read_dir(&self.root)
            .with_context(|| format!("reading {}", self.root.display()))?;
        for entry in entries.filter_map(|e| e.ok()) {
            let name = entry.file_name().to_string_lossy().into_owned();
            let stale = [".log", ".out", ".vars.fd"]
                .iter()
                .any(|s| name.ends_with(s))
                || name == "report.json";
            if stale && entry.path().is_file() {
                std::fs::remove_file(entry.path())
                    .with_context(|| format!("removing {}", entry.path().display()))?;
            }
        }
        Ok(())
    }

    pub fn forget(&self) -> Result<()> {
        let path = self.file(STATE_FILE);
        match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).with_context(|| format!("removing {}", path.display()))
            }
            _ => Ok(()),
        }
    }
}

/// What a lab started, as recorded in `lab.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LabState {
    pub created_by: String,
    pub namespace: String,
    pub started_unix: u64,
    pub processes: Vec<Process>,
    pub vms: Vec<VmRecord>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Process {
    /// `dnsmasq` (boot side), `dhcp` (the DHCP server), `relay`, `server`,
    /// `tftpd` (nginx-tftpd), or the VM's name.
    pub name: String,
    pub pid: u32,
    /// The program the PID must still be running for the lab to stop it.
    pub program: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VmRecord {
    pub name: String,
    pub mac: String,
    pub firmware: String,
    pub kind: String,
    pub started_unix: u64,
}

impl LabState {
    pub fn new(namespace: &str) -> LabState {
        LabState {
            created_by: MARK.into(),
            namespace: namespace.into(),
            started_unix: crate::clock::now_secs(),
            processes: vec![],
            vms: vec![],
        }
    }

    /// The recorded processes that are still running their program.
    pub fn live(&self) -> Vec<&Process> {
        self.processes
            .iter()
            .filter(|p| runs(p.pid, &p.program))
            .collect()
    }
}

/// Whether `pid` is alive (not a zombie) and runs `program`: a PID recorded by a
/// crashed run may since belong to something else, which must not be killed.
pub fn runs(pid: u32, program: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let zombie = stat
        .rsplit_once(") ")
        .is_some_and(|(_, rest)| rest.starts_with('Z'));
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    !stat.is_empty() && !zombie && String::from_utf8_lossy(&cmdline).contains(program)
}

/// Stops one process: SIGTERM, up to `grace` to exit, then SIGKILL. The lab
/// starts every process as the leader of a process group of its own, and then
/// the whole group is signalled: it holds only what that process forked (nginx
/// workers, tftpd-hpa's per-transfer children), so nothing outlives the lab.
pub fn stop(pid: u32, program: &str, grace: Duration) {
    if !runs(pid, program) {
        return;
    }
    let Ok(raw) = i32::try_from(pid) else { return };
    // SAFETY: getpgid() only reads the group of a PID we just checked.
    let leads_group = unsafe { libc::getpgid(raw) } == raw;
    // A negative PID names the process group it leads.
    let target = if leads_group { -raw } else { raw };
    // SAFETY: kill() of the recorded, just-checked PID (or the group it leads).
    unsafe { libc::kill(target, libc::SIGTERM) };
    let deadline = Instant::now() + grace;
    while runs(pid, program) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if runs(pid, program) || leads_group {
        // SAFETY: as above. Once the leader is gone, the group is signalled
        // only if members it forked are left (otherwise kill() finds no one).
        unsafe { libc::kill(target, libc::SIGKILL) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_foreign_files_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = StateDir::open(dir.path()).unwrap();
        assert!(state_dir.load().unwrap().is_none());
        let mut state = LabState::new(&state_dir.namespace());
        state.processes.push(Process {
            name: "x".into(),
            pid: 1,
            program: "no-such".into(),
        });
        state_dir.save(&state).unwrap();
        let back = state_dir.load().unwrap().unwrap();
        assert_eq!(back.namespace, state_dir.namespace());
        assert!(back.live().is_empty(), "pid 1 does not run no-such");
        std::fs::write(
            state_dir.file(STATE_FILE),
            r#"{"created_by":"someone","namespace":"x","started_unix":0,"processes":[],"vms":[]}"#,
        )
        .unwrap();
        assert!(state_dir.load().unwrap().is_none());
    }

    #[test]
    fn run_files_are_cleared_but_disks_stay() {
        let dir = tempfile::tempdir().unwrap();
        let state_dir = StateDir::open(dir.path()).unwrap();
        for name in [
            "cp1.serial.log",
            "server.out",
            "cp2.vars.fd",
            "report.json",
            "cp1.img",
        ] {
            std::fs::write(state_dir.file(name), "x").unwrap();
        }
        state_dir.clear_run_files().unwrap();
        let left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["cp1.img"]);
    }

    #[test]
    fn namespace_name_is_short_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let a = StateDir::open(dir.path()).unwrap().namespace();
        assert_eq!(a, StateDir::open(dir.path()).unwrap().namespace());
        assert!(a.starts_with("pxelab-") && a.len() == 15);
    }

    #[test]
    fn stop_ends_a_process_we_started() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        // Until exec, the child still runs the test binary.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !runs(child.id(), "sleep") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(runs(child.id(), "sleep"));
        assert!(
            !runs(child.id(), "qemu"),
            "another program is never stopped"
        );
        stop(child.id(), "sleep", Duration::from_secs(2));
        assert!(child.wait().unwrap().code().is_none(), "ended by a signal");
    }

    #[test]
    fn stop_also_ends_what_a_group_leader_forked() {
        use std::io::BufRead;
        use std::os::unix::process::CommandExt;
        // As the lab starts services: a group of its own, whose leader forks
        // (as tftpd-hpa does per transfer); the leader ignores SIGTERM while it
        // waits, so the grace period runs out and SIGKILL is needed too.
        let mut leader = std::process::Command::new("sh")
            .args(["-c", "trap '' TERM; sleep 30 & echo $!; wait"])
            .stdout(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(leader.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let forked: u32 = line.trim().parse().unwrap();
        // `$!` is printed as soon as the shell forked, maybe before the child
        // has become `sleep` (its command line still reads as the script's,
        // and is empty for a moment during the exec): wait for the exec.
        let comm = || std::fs::read_to_string(format!("/proc/{forked}/comm")).unwrap_or_default();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !(comm().trim() == "sleep" && runs(forked, "sleep")) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(runs(forked, "sleep"));
        stop(leader.id(), "sh", Duration::from_millis(300));
        assert!(leader.wait().unwrap().code().is_none(), "ended by a signal");
        let deadline = Instant::now() + Duration::from_secs(5);
        while runs(forked, "sleep") && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(!runs(forked, "sleep"), "the forked child was stopped too");
    }
}
