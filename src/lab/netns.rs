//! The lab network: one network namespace holding a bridge with the site's boot
//! server address and subnet, plus one tap per VM; a namespace of its own for
//! the DHCP server, joined to the bridge by a veth pair, as another host of
//! the subnet; and, when the boot server is on another subnet, a router
//! namespace (IP forwarding on, the DHCP relay runs there) between the boot
//! server's bridge and a second bridge that carries the taps. Nothing links
//! them to the host, so the site's real addresses can be used without
//! reaching anything. Deleting the namespaces removes the bridges, veths and
//! taps with them.
use std::net::{Ipv4Addr, SocketAddr, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use super::topology::Topology;
use crate::serve::tftp::packet;

/// The bridge of the boot server's link (inside the lab namespace); the VMs'
/// taps join it too unless the nodes sit behind the relay.
pub const BRIDGE: &str = "br0";

/// The bridge of the nodes' link when they sit behind the relay.
pub const NODE_BRIDGE: &str = "br1";
/// The DHCP server's interface, in its namespace.
pub const DHCP_IF: &str = "vd0";
/// The router's legs, in its namespace: to the boot server's link and to the nodes'.
pub const ROUTER_SERVER_IF: &str = "rs0";
pub const ROUTER_NODE_IF: &str = "rn0";

/// The DHCP server's namespace beside the lab namespace `ns`.
pub fn dhcp_ns(ns: &str) -> String {
    format!("{ns}-dhcp")
}

/// The router's namespace beside the lab namespace `ns`.
pub fn router_ns(ns: &str) -> String {
    format!("{ns}-rtr")
}

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

/// The bridge the VMs' taps join: the boot server's, or the nodes' own behind the relay.
pub fn tap_bridge(topology: &Topology) -> &'static str {
    if topology.relay.is_some() {
        NODE_BRIDGE
    } else {
        BRIDGE
    }
}

/// Creates the namespaces, bridges, veths and one tap per name in `taps`.
/// `subnet`/`prefix` is the node subnet (`network.subnet`).
pub fn create(
    ns: &str,
    topology: &Topology,
    subnet: Ipv4Addr,
    prefix: u8,
    taps: &[String],
) -> Result<()> {
    ip(&["netns", "add", ns])?;
    let addr = format!("{}/{}", topology.server, topology.server_prefix);
    let nodes = tap_bridge(topology);
    let mut steps: Vec<Vec<&str>> = vec![
        vec!["-n", ns, "link", "set", "lo", "up"],
        vec!["-n", ns, "link", "add", BRIDGE, "type", "bridge"],
        vec!["-n", ns, "addr", "add", &addr, "dev", BRIDGE],
        vec!["-n", ns, "link", "set", BRIDGE, "up"],
    ];
    if nodes != BRIDGE {
        // The nodes' link: no IPv4 address here, so the lab namespace reaches
        // it only through the router.
        steps.push(vec!["-n", ns, "link", "add", nodes, "type", "bridge"]);
        steps.push(vec!["-n", ns, "link", "set", nodes, "up"]);
    }
    // Router advertisements go out on the nodes' link.
    steps.push(vec!["-n", ns, "addr", "add", ULA, "dev", nodes]);
    for step in &steps {
        ip(step).with_context(|| format!("setting up namespace {ns}"))?;
    }
    for tap in taps {
        ip(&["-n", ns, "tuntap", "add", "dev", tap, "mode", "tap"])?;
        ip(&["-n", ns, "link", "set", tap, "master", nodes, "up"])?;
    }
    let node_net = format!("{subnet}/{prefix}");
    let dhcp_addr = format!("{}/{}", topology.dhcp, topology.server_prefix);
    host(ns, &dhcp_ns(ns), "vd1", DHCP_IF, &dhcp_addr, BRIDGE)?;
    if let Some(relay) = &topology.relay {
        let rtr = router_ns(ns);
        let server_side = format!("{}/{}", relay.server_side, topology.server_prefix);
        host(ns, &rtr, "rs1", ROUTER_SERVER_IF, &server_side, BRIDGE)?;
        let gateway = format!("{}/{prefix}", relay.gateway);
        leg(ns, &rtr, "rn1", ROUTER_NODE_IF, &gateway, nodes)?;
        let out = command(&rtr, "sysctl")
            .args(["-qw", "net.ipv4.ip_forward=1"])
            .output()
            .context("running sysctl")?;
        check(&out, "sysctl net.ipv4.ip_forward=1 in the router namespace")?;
        let via = relay.server_side.to_string();
        for other in [ns.to_string(), dhcp_ns(ns)] {
            ip(&["-n", &other, "route", "add", &node_net, "via", &via])
                .with_context(|| format!("routing {node_net} in namespace {other}"))?;
        }
    }
    Ok(())
}

/// Creates namespace `other` as a host on `bridge` of namespace `ns`: a veth
/// pair (`end` in `ns`, joined to the bridge; `inside` in `other`, with `addr`).
fn host(ns: &str, other: &str, end: &str, inside: &str, addr: &str, bridge: &str) -> Result<()> {
    ip(&["netns", "add", other])?;
    ip(&["-n", other, "link", "set", "lo", "up"])?;
    leg(ns, other, end, inside, addr, bridge)
}

/// A veth pair made inside `ns` (never in the host's namespace, where its
/// names could collide), its peer moved straight into `other`.
fn leg(ns: &str, other: &str, end: &str, inside: &str, addr: &str, bridge: &str) -> Result<()> {
    let steps: Vec<Vec<&str>> = vec![
        vec![
            "-n", ns, "link", "add", end, "type", "veth", "peer", "name", inside, "netns", other,
        ],
        vec!["-n", ns, "link", "set", end, "master", bridge, "up"],
        vec!["-n", other, "addr", "add", addr, "dev", inside],
        vec!["-n", other, "link", "set", inside, "up"],
    ];
    for step in &steps {
        ip(step).with_context(|| format!("linking namespace {other} to {bridge}"))?;
    }
    Ok(())
}

/// Deletes the namespace (and with it the bridge and taps), and the DHCP
/// server's and router's namespaces beside it.
pub fn delete(ns: &str) -> Result<()> {
    for name in [router_ns(ns), dhcp_ns(ns), ns.to_string()] {
        if exists(&name) {
            ip(&["netns", "del", &name])?;
        }
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
