//! The DHCP snippets `pxebuild build` emits (`dist/http/dhcp/`), proven with
//! their real servers: dnsmasq, ISC dhcpd and Kea each run with the built
//! snippet in a private network namespace, and busybox's udhcpc asks them as
//! each kind of PXE client would. A node's MAC gets its reservation; client
//! architecture (option 93) 0 or none gets the BIOS loader, 7 and 9 the EFI
//! loader; with iPXE among the site's loaders, user class "iPXE" gets the iPXE
//! script whatever the architecture. No VM: an exchange takes milliseconds, so
//! every server is asked every case.
//!
//! The same questions also go through a real DHCP relay (ISC's dhcrelay on
//! a router namespace), the server on a subnet of its own.
//!
//! Then, per server, every node leases twice as a real node does: first as
//! its PXE firmware (no client identifier, or its MAC as one), then as
//! Flatcar's systemd-networkd, which sends a DUID-based client identifier
//! (option 61) for the same MAC. Both leases must be the node's reservation.
//!
//! Each server gets only what an operator adds around the snippet (its
//! interface and a range), not the lab's configuration, which carries PXE
//! lines of its own that could hide a snippet's gap.
use std::fmt;
use std::fs::{self, File};
use std::net::Ipv4Addr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pxebuild::boot::context::Loaders;
use pxebuild::lab::netns;
use pxebuild::lab::plan::dhcp_range;
use pxebuild::lab::plan::DhcpKind;
use pxebuild::site::Site;
use serde_json::{json, Value};

use crate::cluster_build::{built, built_with_ipxe, Built};
use crate::serve_support::{run, WAIT};

/// The veth ends inside the namespace: the DHCP server's, with an address of
/// its own (not the boot server's, as in a rack: next-server must come from
/// the snippet, not from the server's own address), and the client's, without one.
const SERVER_END: &str = "srv0";
const CLIENT_END: &str = "cli0";

#[test]
fn dhcp_snippets_with_syslinux_loaders() {
    check_every_server(&built(), false);
}

#[test]
fn dhcp_snippets_with_ipxe() {
    check_every_server(&built_with_ipxe(), false);
}

/// The relay case: the server on a subnet of its own, every client behind a
/// router running ISC's dhcrelay with the site's gateway as its address
/// (giaddr). Each server must pick the node subnet by giaddr and answer as
/// on the link; ISC dhcpd also needs its own link declared, as docs/site.md says.
#[test]
fn dhcp_snippets_answer_through_a_relay() {
    check_every_server(&built(), true);
}

/// Each node leases first as its firmware, then as systemd-networkd with a
/// DUID client identifier; a server keying its leases by client identifier
/// would offer the second client another address (or none).
#[test]
fn dhcp_snippets_give_networkd_the_firmwares_address() {
    let built = built();
    let site = Site::load(&built.root.join("site.toml")).unwrap();
    let subnet = Subnet::of(&site);
    let nodes: Vec<Client> = clients(&site)
        .into_iter()
        .filter(|c| c.node.is_some())
        .collect();
    let mut failures = Vec::new();
    for kind in [DhcpKind::Dnsmasq, DhcpKind::Isc, DhcpKind::Kea] {
        let dir = tempfile::Builder::new()
            .prefix("pxebuild-dhcp-")
            .tempdir()
            .unwrap();
        let net = TestNet::new(&subnet);
        let udhcpc = Udhcpc::new(dir.path());
        let snippet = built.dist.join("http/dhcp").join(kind.snippet());
        let mut server = DhcpServer::start(kind, &net, dir.path(), &snippet, &subnet);
        let mut wrong = Vec::new();
        for (i, node) in nodes.iter().enumerate() {
            let (_, want) = node.node.as_ref().unwrap();
            // Firmware without a client identifier and firmware sending its
            // MAC as one, alternately.
            let firmware = Client {
                client_id: if i % 2 == 0 {
                    ClientId::None
                } else {
                    ClientId::Mac
                },
                ..node.clone()
            };
            let networkd = Client {
                arch: None,
                client_id: ClientId::Hex(networkd_client_id(&node.mac)),
                ..node.clone()
            };
            for client in [&firmware, &networkd] {
                let lease = udhcpc.ask(&net, client, &mut server);
                if lease.ip != *want {
                    wrong.push(format!(
                        "{client}: IP {}, not its reservation {want}",
                        lease.ip
                    ));
                }
            }
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{}, with {}:\n  {}\n{}",
                kind.name(),
                snippet.display(),
                wrong.join("\n  "),
                server.output()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// A client identifier of the form systemd-networkd sends by default
/// (RFC 4361): 0xff, a 4-byte IAID, then a DUID-EN (type 2, enterprise
/// number 43793, 8 bytes derived from the machine ID), here derived from the MAC.
fn networkd_client_id(mac: &str) -> String {
    let hex = mac.replace(':', "");
    format!("ff{}00020000ab11{}{}", &hex[4..], &hex, "ab12")
}

/// Asks each server every client's question; fails once, listing every wrong
/// answer of every server with that server's output.
fn check_every_server(built: &Built, relayed: bool) {
    let site = Site::load(&built.root.join("site.toml")).unwrap();
    let subnet = Subnet::of(&site);
    let want = Answers::of(&site, &built.dist);
    let clients = clients(&site);
    let mut failures = Vec::new();
    for kind in [DhcpKind::Dnsmasq, DhcpKind::Isc, DhcpKind::Kea] {
        // Dropped in reverse: the server is stopped, then the namespace
        // deleted, then the directory with its files removed.
        let dir = tempfile::Builder::new()
            .prefix("pxebuild-dhcp-")
            .tempdir()
            .unwrap();
        let net = if relayed {
            TestNet::relayed(&subnet, dir.path())
        } else {
            TestNet::new(&subnet)
        };
        let udhcpc = Udhcpc::new(dir.path());
        let snippet = built.dist.join("http/dhcp").join(kind.snippet());
        let mut server = DhcpServer::start(kind, &net, dir.path(), &snippet, &subnet);
        let wrong: Vec<String> = clients
            .iter()
            .filter_map(|client| {
                let lease = udhcpc.ask(&net, client, &mut server);
                want.mismatch(client, &lease, &subnet)
            })
            .collect();
        if !wrong.is_empty() {
            failures.push(format!(
                "{}, with {}:\n  {}\n{}{}",
                kind.name(),
                snippet.display(),
                wrong.join("\n  "),
                server.output(),
                net.relay_output()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The site's subnet, with the boot server's address in it.
struct Subnet {
    server: Ipv4Addr,
    prefix: u8,
    gateway: Ipv4Addr,
}

impl Subnet {
    fn of(site: &Site) -> Subnet {
        let (_, prefix) = site.file.network.subnet.split_once('/').unwrap();
        Subnet {
            server: site.file.boot_server.address.parse().unwrap(),
            prefix: prefix.parse().unwrap(),
            gateway: site.file.network.gateway,
        }
    }

    fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::MAX << (32 - u32::from(self.prefix)))
    }

    fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.server) & u32::from(self.netmask()))
    }

    /// The DHCP server's own address: just below the range, as in the lab.
    fn dhcp_server(&self) -> Ipv4Addr {
        let (start, _) = self.pool();
        let below = Ipv4Addr::from(u32::from(start) - 1);
        assert_ne!(below, self.server);
        below
    }

    /// The dynamic range for clients without a reservation (the lab's).
    fn pool(&self) -> (Ipv4Addr, Ipv4Addr) {
        dhcp_range(self.server, self.prefix)
    }

    fn in_pool(&self, ip: &str) -> bool {
        let (start, end) = self.pool();
        ip.parse::<Ipv4Addr>()
            .is_ok_and(|ip| (start..=end).contains(&ip))
    }
}

/// One DHCP client: its MAC and what it says about itself.
#[derive(Clone)]
struct Client {
    mac: String,
    /// Option 61.
    client_id: ClientId,
    /// Option 93, absent for clients that do not send it.
    arch: Option<u16>,
    /// Sends user class (option 77) "iPXE", as iPXE does.
    ipxe: bool,
    /// The site node whose MAC this is, with its reserved IP.
    node: Option<(String, String)>,
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match &self.node {
            Some((name, _)) => write!(f, "{name} ({})", self.mac)?,
            None => write!(f, "unknown {}", self.mac)?,
        }
        match self.arch {
            Some(arch) => write!(f, ", option 93 = {arch}")?,
            None => write!(f, ", no option 93")?,
        }
        if self.ipxe {
            write!(f, ", user class iPXE")?;
        }
        match &self.client_id {
            ClientId::None => write!(f, ", no option 61")?,
            ClientId::Mac => write!(f, ", option 61 = its MAC")?,
            ClientId::Hex(hex) => write!(f, ", option 61 = {hex}")?,
        }
        Ok(())
    }
}

/// What a client sends as its client identifier (option 61).
#[derive(Clone)]
enum ClientId {
    /// Nothing, as OVMF's PXE does.
    None,
    /// Hardware type 1 and the MAC, as iPXE (and busybox's udhcpc by default) do.
    Mac,
    /// These bytes (hex), as systemd-networkd's DUID-based identifier.
    Hex(String),
}

/// Every site node (architecture from its firmware), then unknown machines
/// with each architecture and none, as firmware PXE and as iPXE. Without iPXE
/// among the loaders, the iPXE clients must get the firmware's loader: QEMU's
/// BIOS NIC ROM, for one, is iPXE.
fn clients(site: &Site) -> Vec<Client> {
    let nodes = site.file.nodes.iter().map(|n| Client {
        mac: n.mac.to_string(),
        client_id: ClientId::Mac,
        arch: Some(if n.firmware == "uefi" { 7 } else { 0 }),
        ipxe: false,
        node: Some((n.name.clone(), n.ip.to_string())),
    });
    let archs = [None, Some(0), Some(7), Some(9)];
    let unknown = [false, true]
        .into_iter()
        .flat_map(|ipxe| archs.map(|arch| (arch, ipxe)))
        .enumerate()
        .map(|(i, (arch, ipxe))| Client {
            // Locally administered, so never a real NIC's.
            mac: format!("5a:00:00:00:0d:{:02x}", i + 1),
            client_id: ClientId::Mac,
            arch,
            ipxe,
            node: None,
        });
    nodes.chain(unknown).collect()
}

/// What the snippets promise: the loaders and iPXE script of the built tree.
struct Answers {
    next_server: String,
    bios_file: String,
    efi_file: String,
    /// Only when the site uses iPXE.
    ipxe_url: Option<String>,
}

impl Answers {
    /// BootContext's file names for the site's loaders, each checked to be in
    /// the tree, so a name that drifts from the build fails here too.
    fn of(site: &Site, dist: &Path) -> Answers {
        let loaders = Loaders::of(site);
        let bios_file = if loaders.bios {
            "lpxelinux.0"
        } else {
            "undionly.kpxe"
        };
        let efi_file = if loaders.ipxe {
            "ipxe.efi"
        } else {
            "efi64/syslinux.efi"
        };
        let answers = Answers {
            next_server: site.file.boot_server.address.clone(),
            bios_file: bios_file.into(),
            efi_file: efi_file.into(),
            ipxe_url: loaders
                .ipxe
                .then(|| format!("{}/ipxe/boot.ipxe", site.http_base())),
        };
        for file in [&answers.bios_file, &answers.efi_file] {
            let path = dist.join("tftp").join(file);
            assert!(path.is_file(), "{} is not in the tree", path.display());
        }
        if loaders.ipxe {
            assert!(dist.join("http/ipxe/boot.ipxe").is_file());
        }
        answers
    }

    /// What is wrong with `lease` as the answer to `client`, if anything.
    fn mismatch(&self, client: &Client, lease: &Lease, subnet: &Subnet) -> Option<String> {
        let mut wrong = Vec::new();
        match &client.node {
            Some((_, ip)) if lease.ip != *ip => {
                wrong.push(format!("IP {}, not its reservation {ip}", lease.ip))
            }
            None if !subnet.in_pool(&lease.ip) => {
                wrong.push(format!("IP {}, outside the range", lease.ip))
            }
            _ => {}
        }
        let (file, next_server) = self.boot(client);
        if lease.boot_file != file {
            wrong.push(format!("boot file {:?}, want {file:?}", lease.boot_file));
        }
        if let Some(next_server) = next_server {
            if lease.siaddr != next_server {
                wrong.push(format!(
                    "next-server {:?}, want {next_server:?}",
                    lease.siaddr
                ));
            }
        }
        // iPXE is told not to wait for ProxyDHCP offers: setting 176
        // (no-pxedhcp), one byte, 1 (an end mark after it is optional).
        let told = lease.ipxe_settings.trim_end_matches("ff") == NO_PXEDHCP;
        match (client.ipxe && self.ipxe_url.is_some(), told) {
            (true, false) => wrong.push(format!(
                "option 175 {:?}, want {NO_PXEDHCP:?}",
                lease.ipxe_settings
            )),
            (false, _) if !lease.ipxe_settings.is_empty() => wrong.push(format!(
                "option 175 {:?} for a client that is not iPXE",
                lease.ipxe_settings
            )),
            _ => {}
        }
        (!wrong.is_empty()).then(|| format!("{client}: {}", wrong.join("; ")))
    }

    /// The boot file `client` must get, and the next-server that goes with
    /// it: the loaders come from the boot server's TFTP; the iPXE script's URL
    /// names its server, and not every snippet sets one for it.
    fn boot(&self, client: &Client) -> (&str, Option<&str>) {
        match (&self.ipxe_url, client.arch) {
            (Some(url), _) if client.ipxe => (url, None),
            (_, Some(7 | 9)) => (&self.efi_file, Some(&self.next_server)),
            _ => (&self.bios_file, Some(&self.next_server)),
        }
    }
}

/// A private network namespace holding a veth pair, both ends up; deleting
/// it on drop removes the pair too. Relayed: the server's namespace, a
/// router's (forwarding, running dhcrelay) and the client's, in a row.
struct TestNet {
    /// The server's namespace.
    name: String,
    /// The client's namespace (the server's unless relayed).
    client: String,
    /// Relayed: the router's namespace and dhcrelay, its output file, and
    /// the server's own link for ISC's subnet declaration.
    relay: Option<Relay>,
}

struct Relay {
    router: String,
    dhcrelay: Child,
    log: PathBuf,
    /// `<network> netmask <mask>` of the server's own link.
    own_subnet: String,
}

/// The server's own link behind the relay (TEST-NET-1: documentation only).
const SERVER_SIDE: [u8; 3] = [192, 0, 2];

impl TestNet {
    fn new(subnet: &Subnet) -> TestNet {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let name = format!("pxt-dhcp-{}-{n}", std::process::id());
        netns::ip(&["netns", "add", &name]).unwrap();
        // Only now: a name that was taken must not be deleted on drop.
        let net = TestNet {
            client: name.clone(),
            name,
            relay: None,
        };
        let address = format!("{}/{}", subnet.dhcp_server(), subnet.prefix);
        net.ip(&["link", "set", "lo", "up"]);
        let veth = ["type", "veth", "peer", "name", CLIENT_END];
        net.ip(&[&["link", "add", SERVER_END][..], &veth].concat());
        net.ip(&["addr", "add", &address, "dev", SERVER_END]);
        net.ip(&["link", "set", SERVER_END, "up"]);
        net.ip(&["link", "set", CLIENT_END, "up"]);
        net
    }

    /// The server at `.250` of its own /24, the router at `.1` there and at
    /// the site's gateway on the client's link, dhcrelay forwarding to the server.
    fn relayed(subnet: &Subnet, dir: &Path) -> TestNet {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let base = format!("pxt-dhcpr-{}-{n}", std::process::id());
        let (server, router, client) = (
            format!("{base}-s"),
            format!("{base}-r"),
            format!("{base}-c"),
        );
        let [a, b, c] = SERVER_SIDE;
        let mut net = TestNet {
            name: server.clone(),
            client: client.clone(),
            relay: None,
        };
        for ns in [&server, &router, &client] {
            netns::ip(&["netns", "add", ns]).unwrap();
            ip_in(ns, &["link", "set", "lo", "up"]);
        }
        let router_addr = format!("{a}.{b}.{c}.1");
        ip_in(
            &server,
            &[
                "link", "add", SERVER_END, "type", "veth", "peer", "name", "rs0", "netns", &router,
            ],
        );
        ip_in(
            &server,
            &[
                "addr",
                "add",
                &format!("{a}.{b}.{c}.250/24"),
                "dev",
                SERVER_END,
            ],
        );
        ip_in(&server, &["link", "set", SERVER_END, "up"]);
        ip_in(
            &router,
            &["addr", "add", &format!("{router_addr}/24"), "dev", "rs0"],
        );
        ip_in(&router, &["link", "set", "rs0", "up"]);
        ip_in(
            &router,
            &[
                "link", "add", "rn0", "type", "veth", "peer", "name", CLIENT_END, "netns", &client,
            ],
        );
        let gateway = format!("{}/{}", subnet.gateway, subnet.prefix);
        ip_in(&router, &["addr", "add", &gateway, "dev", "rn0"]);
        ip_in(&router, &["link", "set", "rn0", "up"]);
        ip_in(&client, &["link", "set", CLIENT_END, "up"]);
        let node_net = format!("{}/{}", subnet.network(), subnet.prefix);
        ip_in(&server, &["route", "add", &node_net, "via", &router_addr]);
        let sysctl = netns::command(&router, "sysctl")
            .args(["-qw", "net.ipv4.ip_forward=1"])
            .status()
            .unwrap();
        assert!(sysctl.success());
        let log = dir.join("dhcrelay.log");
        let out = File::create(&log).unwrap();
        let dhcrelay = netns::command(&router, "/usr/sbin/dhcrelay")
            .args(["-4", "-d", "-id", "rn0", "-iu", "rs0", "-pf"])
            .arg(dir.join("dhcrelay.pid"))
            .arg(format!("{a}.{b}.{c}.250"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("starting dhcrelay");
        net.relay = Some(Relay {
            router,
            dhcrelay,
            log,
            own_subnet: format!("{a}.{b}.{c}.0 netmask 255.255.255.0"),
        });
        net
    }

    /// `ip -n NAME ARGS` in the server's namespace, which must succeed.
    fn ip(&self, args: &[&str]) {
        ip_in(&self.name, args);
    }

    /// The end of dhcrelay's output, for failure messages ("" unless relayed).
    fn relay_output(&self) -> String {
        let Some(relay) = &self.relay else {
            return String::new();
        };
        let text = fs::read_to_string(&relay.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(15)..].join("\n");
        format!("\n--- dhcrelay output (end) ---\n{tail}")
    }
}

/// `ip -n NS ARGS`, which must succeed.
fn ip_in(ns: &str, args: &[&str]) {
    netns::ip(&[&["-n", ns][..], args].concat()).unwrap_or_else(|e| panic!("{e:#}"));
}

impl Drop for TestNet {
    fn drop(&mut self) {
        if let Some(relay) = &mut self.relay {
            let _ = relay.dhcrelay.kill();
            let _ = relay.dhcrelay.wait();
            let _ = netns::delete(&relay.router);
        }
        if self.client != self.name {
            let _ = netns::delete(&self.client);
        }
        let _ = netns::delete(&self.name);
    }
}

/// Option 175 as udhcpc prints it, holding iPXE's no-pxedhcp setting.
const NO_PXEDHCP: &str = "b00101";

/// busybox's udhcpc on the client end; its event script writes what the
/// server's ACK said to a file.
struct Udhcpc {
    script: PathBuf,
    lease: PathBuf,
}

impl Udhcpc {
    fn new(dir: &Path) -> Udhcpc {
        let udhcpc = Udhcpc {
            script: dir.join("udhcpc.sh"),
            lease: dir.join("lease"),
        };
        let text = format!(
            "#!/bin/sh\n[ \"$1\" = bound ] || exit 0\n\
             printf 'ip=%s\\nsiaddr=%s\\nboot_file=%s\\nopt175=%s\\n' \"$ip\" \"$siaddr\" \"$boot_file\" \"$opt175\" > '{}'\n",
            udhcpc.lease.display()
        );
        fs::write(&udhcpc.script, text).unwrap();
        fs::set_permissions(&udhcpc.script, fs::Permissions::from_mode(0o755)).unwrap();
        udhcpc
    }

    /// Runs udhcpc as `client` until a server answers (the first answer is
    /// also how a fresh server is known to be ready), and returns the lease.
    fn ask(&self, net: &TestNet, client: &Client, server: &mut DhcpServer) -> Lease {
        ip_in(
            &net.client,
            &["link", "set", CLIENT_END, "address", &client.mac],
        );
        let args = self.args(&net.client, client);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let deadline = Instant::now() + WAIT;
        loop {
            let _ = fs::remove_file(&self.lease);
            let out = run(Path::new("/"), "ip", &args);
            if let Some(lease) = Lease::read(&self.lease) {
                return lease;
            }
            if let Some(status) = server.exited() {
                panic!("{} exited ({status})\n{}", server.name, server.output());
            }
            assert!(
                Instant::now() < deadline,
                "{client}: no lease from {} after {WAIT:?}\nudhcpc: {}\n{}",
                server.name,
                String::from_utf8_lossy(&out.stderr),
                server.output()
            );
            // udhcpc paces itself (-T) while the server is still starting;
            // this only keeps a client that fails at once from spinning.
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `ip netns exec NS udhcpc …` speaking as `client`: one exchange, three
    /// discovers a second apart at most, nothing configured on the interface
    /// (the script only records).
    fn args(&self, ns: &str, client: &Client) -> Vec<String> {
        let mut args: Vec<String> = ["netns", "exec", ns, "/bin/busybox", "udhcpc"]
            .into_iter()
            .chain([
                "-f", "-q", "-n", "-t", "3", "-T", "1", "-i", CLIENT_END, "-s",
            ])
            .map(String::from)
            .collect();
        args.push(self.script.display().to_string());
        match &client.client_id {
            // -C: no client identifier (udhcpc sends the MAC by default).
            ClientId::None => args.push("-C".into()),
            ClientId::Mac => {}
            ClientId::Hex(hex) => args.extend(["-C".into(), "-x".into(), format!("0x3d:{hex}")]),
        }
        // The vendor class PXE firmware sends: the servers see what a real
        // PXE client shows them. An OS client (no option 93) sends none.
        if let Some(arch) = client.arch {
            args.extend(["-V".into(), format!("PXEClient:Arch:{arch:05}:UNDI:002001")]);
            args.extend(["-x".into(), format!("0x5d:{arch:04x}")]);
        } else if client.node.is_none() {
            args.extend(["-V".into(), "PXEClient:Arch:00000:UNDI:002001".into()]);
        } else {
            args.extend(["-V".into(), String::new()]);
        }
        if client.ipxe {
            // Option 77 as iPXE sends it: the bare string, hex-encoded; and
            // iPXE asks for its settings block, option 175.
            args.extend(["-x".into(), "0x4d:69505845".into()]);
            args.extend(["-O".into(), "175".into()]);
        }
        args
    }
}

/// What udhcpc's script saw in the server's ACK ("" for what it left unset).
struct Lease {
    ip: String,
    siaddr: String,
    boot_file: String,
    /// Option 175 (iPXE's settings), hex.
    ipxe_settings: String,
}

impl Lease {
    fn read(path: &Path) -> Option<Lease> {
        let text = fs::read_to_string(path).ok()?;
        let field = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key)?.strip_prefix('='))
                .unwrap_or_default()
                .to_string()
        };
        Some(Lease {
            ip: field("ip"),
            siaddr: field("siaddr"),
            boot_file: field("boot_file"),
            ipxe_settings: field("opt175"),
        })
    }
}

/// A DHCP server on the namespace's server end with the built snippet,
/// killed by its PID on drop.
struct DhcpServer {
    name: &'static str,
    child: Child,
    /// Its stdout and stderr.
    log: PathBuf,
}

impl DhcpServer {
    /// Writes the server's configuration (in `dir`, with its other files) and
    /// starts it; whether it answers yet is for the first client to find out.
    fn start(
        kind: DhcpKind,
        net: &TestNet,
        dir: &Path,
        snippet: &Path,
        subnet: &Subnet,
    ) -> DhcpServer {
        let mut cmd = match kind {
            DhcpKind::Dnsmasq => dnsmasq_command(&net.name, dir, snippet, subnet),
            DhcpKind::Isc => {
                let own = net.relay.as_ref().map(|r| r.own_subnet.as_str());
                dhcpd_command(&net.name, dir, snippet, subnet, own)
            }
            DhcpKind::Kea => kea_command(&net.name, dir, snippet, subnet),
        };
        let log = dir.join(format!("{}.log", kind.snippet()));
        let out = File::create(&log).unwrap();
        // `ip netns exec` execs the server, so the child's PID is the server's.
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", kind.name()));
        DhcpServer {
            name: kind.name(),
            child,
            log,
        }
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// The end of the server's output, for failure messages.
    fn output(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(30)..].join("\n");
        format!("--- {} output (end) ---\n{tail}", self.name)
    }
}

impl Drop for DhcpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// dnsmasq as an operator runs it: its interface, no DNS, a range and the
/// snippet by `conf-file=`; leases and PID file in `dir`, log on stderr.
fn dnsmasq_command(ns: &str, dir: &Path, snippet: &Path, subnet: &Subnet) -> Command {
    let (start, end) = subnet.pool();
    let conf = dir.join("dnsmasq.conf");
    let text = format!(
        "interface={SERVER_END}\nbind-interfaces\nport=0\n\
         dhcp-range={start},{end},{mask},1h\n\
         # dnsmasq ping-probes a new address for ~3 s before offering it.\nno-ping\n\
         dhcp-leasefile={leases}\npid-file={pid}\nlog-facility=-\nlog-dhcp\n\
         conf-file={snippet}\n",
        mask = subnet.netmask(),
        leases = dir.join("dnsmasq.leases").display(),
        pid = dir.join("dnsmasq.pid").display(),
        snippet = snippet.display(),
    );
    fs::write(&conf, text).unwrap();
    let mut cmd = netns::command(ns, "/usr/sbin/dnsmasq");
    cmd.arg("--keep-in-foreground")
        .arg(format!("--conf-file={}", conf.display()));
    cmd
}

/// ISC dhcpd: the snippet included at the top level, as its header says, and
/// the subnet with a range (and, behind a relay, an empty declaration of its
/// own link, `own`); in the foreground, logging to stderr.
fn dhcpd_command(
    ns: &str,
    dir: &Path,
    snippet: &Path,
    subnet: &Subnet,
    own: Option<&str>,
) -> Command {
    let (start, end) = subnet.pool();
    let own = own
        .map(|own| format!("subnet {own} {{\n}}\n"))
        .unwrap_or_default();
    let conf = dir.join("dhcpd.conf");
    let text = format!(
        "authoritative;\nddns-update-style none;\n\
         default-lease-time 3600;\nmax-lease-time 3600;\n\
         # The test's addresses are free: skip the probe before each offer.\nping-check false;\n\
         include \"{snippet}\";\n\
         subnet {network} netmask {mask} {{\n  range {start} {end};\n}}\n{own}",
        snippet = snippet.display(),
        network = subnet.network(),
        mask = subnet.netmask(),
    );
    fs::write(&conf, text).unwrap();
    // dhcpd refuses to start without an existing leases file.
    let leases = dir.join("dhcpd.leases");
    fs::write(&leases, "").unwrap();
    let mut cmd = netns::command(ns, "/usr/sbin/dhcpd");
    cmd.args(["-f", "-d", "-4", "-cf"])
        .arg(&conf)
        .arg("-lf")
        .arg(&leases)
        .arg("-pf")
        .arg(dir.join("dhcpd.pid"))
        .arg(SERVER_END);
    cmd
}

/// Kea: the snippet's `Dhcp4` object plus the interface (raw sockets: a PXE
/// client has no address to answer to yet), an in-memory lease database, a
/// pool and a log on stdout.
fn kea_command(ns: &str, dir: &Path, snippet: &Path, subnet: &Subnet) -> Command {
    let text = fs::read_to_string(snippet).unwrap();
    let mut config: Value = serde_json::from_str(&text).expect("the Kea snippet is JSON");
    let dhcp4 = config["Dhcp4"].as_object_mut().expect("a Dhcp4 object");
    dhcp4.insert(
        "interfaces-config".into(),
        json!({ "interfaces": [SERVER_END], "dhcp-socket-type": "raw" }),
    );
    dhcp4.insert(
        "lease-database".into(),
        json!({ "type": "memfile", "persist": false }),
    );
    dhcp4.insert(
        "loggers".into(),
        json!([{
            "name": "kea-dhcp4",
            "output_options": [{ "output": "stdout" }],
            "severity": "INFO",
        }]),
    );
    let (start, end) = subnet.pool();
    config["Dhcp4"]["subnet4"][0]["pools"] = json!([{ "pool": format!("{start} - {end}") }]);
    let conf = dir.join("kea-dhcp4.json");
    fs::write(&conf, config.to_string()).unwrap();
    let mut cmd = netns::command(ns, "/usr/sbin/kea-dhcp4");
    cmd.arg("-c").arg(&conf);
    // Its PID and lock files go to `dir`, not /run/kea.
    cmd.env("KEA_PIDFILE_DIR", dir).env("KEA_LOCKFILE_DIR", dir);
    cmd
}
