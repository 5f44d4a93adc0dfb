//! The lab network: one network namespace holding a bridge with the site's boot
//! server address and subnet, plus one tap per VM. Nothing links it to the
//! host, so the site's real addresses can be used without reaching anything.
//! Deleting the namespace removes the bridge and the taps with it.
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::dnsmasq::BRIDGE;
use crate::serve::tftp::packet;

/// The ULA prefix on the bridge: lets dnsmasq send router advertisements, which
/// spares iPXE its long IPv6 autoconfiguration wait. It exists only in the namespace.
const ULA: &str = "fd77::1/64";

/// Runs `ip ARGS` and fails with its stderr.
pub fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (iproute2)")?;
    check(&out, &format!("ip {}", args.join(" ")))
}

fn check(out: &Output, what: &str) -> Result<()> {
    if out.status.success() {
        return Ok(());
    }
    bail!(
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    )
}

/// Whether a namespace of this name exists.
pub fn exists(ns: &str) -> bool {
    std::path::Path::new("/run/netns").join(ns).exists()
}

/// Creates the namespace with its bridge and one tap per name in `taps`.
pub fn create(ns: &str, server: Ipv4Addr, prefix: u8, taps: &[String]) -> Result<()> {
    ip(&["netns", "add", ns])?;
    let addr = format!("{server}/{prefix}");
    let steps: Vec<Vec<&str>> = vec![
        vec!["-n", ns, "link", "set", "lo", "up"],
        vec!["-n", ns, "link", "add", BRIDGE, "type", "bridge"],
        vec!["-n", ns, "addr", "add", &addr, "dev", BRIDGE],
        vec!["-n", ns, "addr", "add", ULA, "dev", BRIDGE],
        vec!["-n", ns, "link", "set", BRIDGE, "up"],
    ];
    for step in &steps {
        ip(step).with_context(|| format!("setting up namespace {ns}"))?;
    }
    for tap in taps {
        ip(&["-n", ns, "tuntap", "add", "dev", tap, "mode", "tap"])?;
        ip(&["-n", ns, "link", "set", tap, "master", BRIDGE, "up"])?;
    }
    Ok(())
}

/// Deletes the namespace (and with it the bridge and taps).
pub fn delete(ns: &str) -> Result<()> {
    if exists(ns) {
        ip(&["netns", "del", ns])?;
    }
    Ok(())
}

/// A command that runs inside the namespace.
pub fn command(ns: &str, program: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", ns, program]);
    cmd
}

/// Drops TCP TIME_WAIT entries in the namespace. lpxelinux reuses the same
/// source ports and sequence numbers on every boot, so a leftover entry from a
/// previous boot of the same node costs a 3 s retry per HTTP file.
pub fn clear_time_wait(ns: &str) -> Result<()> {
    let out = command(ns, "ss")
        .args(["-K", "-tn", "state", "time-wait"])
        .output()
        .context("running ss")?;
    check(&out, "ss -K state time-wait")
}

/// Waits until a TCP connection to `addr` inside the namespace succeeds.
pub fn wait_for_tcp(ns: &str, addr: SocketAddr, timeout: Duration) -> Result<()> {
    probe_until(
        ns,
        timeout,
        format!("nothing listens on {addr}"),
        move || TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok(),
    )
}

/// Waits until a TFTP server answers on `addr` inside the namespace: a read
/// request for a name no tree has gets an ERROR (or any reply) once it listens.
pub fn wait_for_tftp(ns: &str, addr: SocketAddr, timeout: Duration) -> Result<()> {
    let rrq = packet::encode_request(
        packet::OP_RRQ,
        &packet::Request {
            filename: "pxebuild-lab-probe".into(),
            mode: packet::Mode::Octet,
            options: Vec::new(),
        },
    );
    probe_until(
        ns,
        timeout,
        format!("no TFTP answer from {addr}"),
        move || {
            let Ok(socket) = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)) else {
                return false;
            };
            let mut reply = [0u8; 516];
            socket
                .set_read_timeout(Some(Duration::from_millis(200)))
                .is_ok()
                && socket.send_to(&rrq, addr).is_ok()
                && socket.recv_from(&mut reply).is_ok()
        },
    )
}

/// Runs `probe` inside the namespace until it succeeds or `timeout` passes.
fn probe_until(
    ns: &str,
    timeout: Duration,
    failure: String,
    mut probe: impl FnMut() -> bool + Send + 'static,
) -> Result<()> {
    let ns = ns.to_string();
    // setns() affects only the calling thread, so a short-lived thread joins
    // the namespace and leaves the rest of the process where it is.
    std::thread::spawn(move || -> Result<()> {
        enter(&ns)?;
        let deadline = Instant::now() + timeout;
        loop {
            if probe() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("{failure} in namespace {ns} after {timeout:?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .join()
    .map_err(|_| anyhow::anyhow!("namespace probe thread panicked"))?
}

fn enter(ns: &str) -> Result<()> {
    let path = std::path::Path::new("/run/netns").join(ns);
    let file = std::fs::File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    // SAFETY: setns takes a valid open descriptor and a namespace type flag;
    // it changes only this thread's network namespace.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context(format!("entering namespace {ns}"));
    }
    Ok(())
}
