//! `pxebuild serve`: serves `DIR/tftp` over TFTP and `DIR/http` over HTTP,
//! read-only, for racks of machines booting at once.
//!
//! This module wires the parts together: it binds both listeners, runs each in
//! its own thread, reloads the manifest and reopens its log file on SIGHUP
//! (and reloads by itself when a new
//! `manifest.json` appears, i.e. when a build swapped `dist/`), and on
//! SIGINT/SIGTERM stops accepting, lets running transfers finish for a grace
//! period, and returns. The parts: [`root`] (the one path resolver), [`nodes`]
//! (who is asking, who may fetch what), [`log`] (transfer lines, status),
//! [`tftp`] and [`http`] (the protocols), [`check`] (dist vs manifest),
//! [`admin`] (the status page's own listener), [`page`] and [`stage`] (what it shows).
pub(crate) mod admin;
pub mod check;
pub(crate) mod detail;
pub mod http;
pub(crate) mod log;
pub(crate) mod nodes;
pub(crate) mod page;
pub(crate) mod privs;
pub mod root;
pub(crate) mod stage;
pub mod tftp;

use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::manifest::{self, Manifest};
use log::TransferLog;
use nodes::{Access, Nodes, Restricted};
use root::{Opened, Root};

/// Everything `serve` needs, resolved from the command line.
#[derive(Debug, Clone)]
pub struct Config {
    pub dist: PathBuf,
    pub listen: IpAddr,
    pub http_port: u16,
    pub tftp_port: u16,
    /// Enforce the manifest's per-node access rules (off: log only).
    pub ip_check: bool,
    /// Also append transfer lines here.
    pub log_file: Option<PathBuf>,
    /// Print transfer lines on stderr.
    pub log_stderr: bool,
    pub tftp_blksize_max: u16,
    pub tftp_windowsize_max: u16,
    pub max_tftp_sessions: usize,
    pub max_http_connections: usize,
    /// Keep-alive idle limit and the limit for a stalled read or write.
    pub http_timeout: Duration,
    /// Switch to this user after binding (when started as root).
    pub user: Option<String>,
    /// How long shutdown waits for running transfers.
    pub grace: Duration,
    /// Where the status page listens (`None`: nowhere).
    pub admin: Option<SocketAddr>,
}

/// State shared by every connection and transfer.
#[derive(Debug)]
pub struct Shared {
    pub config: Config,
    pub http_root: Root,
    pub tftp_root: Root,
    nodes: RwLock<Arc<Nodes>>,
    /// The OCI manifests' digests, from the same manifest.json as `nodes`.
    oci_digests: RwLock<Arc<http::oci::ManifestDigests>>,
    /// Identity of the manifest.json the current `nodes` came from.
    manifest_id: Mutex<Option<(u64, u64, i64)>>,
    pub log: TransferLog,
    pub shutdown: AtomicBool,
    /// Requests and transfers in progress (shutdown waits for them).
    pub busy: AtomicUsize,
}

/// Who asked for a file and whether they may have it.
#[derive(Debug)]
pub struct Verdict {
    pub node: Option<String>,
    /// The path relative to dist (`http/…`, `tftp/…`), as the manifest spells it.
    pub path: String,
    pub refused: Option<Restricted>,
}

impl Shared {
    pub fn new(config: Config) -> Result<Shared> {
        let log = TransferLog::open(config.log_file.as_deref(), config.log_stderr)?;
        let shared = Shared {
            http_root: Root::new(config.dist.join(crate::layout::HTTP)),
            tftp_root: Root::new(config.dist.join(crate::layout::TFTP)),
            nodes: RwLock::new(Arc::new(Nodes::default())),
            oci_digests: RwLock::new(Arc::default()),
            manifest_id: Mutex::new(None),
            log,
            shutdown: AtomicBool::new(false),
            busy: AtomicUsize::new(0),
            config,
        };
        shared.reload()?;
        Ok(shared)
    }

    /// Reads `manifest.json` again; on error the previous rules stay in force.
    pub fn reload(&self) -> Result<()> {
        let dist = &self.config.dist;
        let id = manifest_id(dist);
        let manifest = Manifest::load(dist)?;
        let nodes = Nodes::from_manifest(&manifest, dist, self.config.ip_check)?;
        let digests = http::oci::ManifestDigests::from_manifest(&manifest);
        *self.nodes.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(nodes);
        *self.oci_digests.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(digests);
        *self.manifest_id.lock().unwrap_or_else(|e| e.into_inner()) = id;
        Ok(())
    }

    /// The current rules, reloaded first if `manifest.json` changed on disk.
    pub fn nodes(&self) -> Arc<Nodes> {
        let now = manifest_id(&self.config.dist);
        let changed = *self.manifest_id.lock().unwrap_or_else(|e| e.into_inner()) != now;
        if changed && now.is_some() {
            match self.reload() {
                Ok(()) => {
                    crate::info!("manifest changed on disk; reloaded");
                }
                Err(err) => {
                    crate::warn!("reloading manifest: {err:#}");
                }
            }
        }
        self.nodes.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The manifests' digests of the current manifest.json (reloaded first
    /// if it changed on disk, as [`Shared::nodes`] does).
    pub fn manifest_digests(&self) -> Arc<http::oci::ManifestDigests> {
        let _ = self.nodes();
        self.oci_digests
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Applies the node rules to a file opened under `area` (`http`/`tftp`).
    /// `mac_hint` is a MAC the request revealed (Syslinux cookie, pxelinux.cfg name).
    pub fn judge(
        &self,
        area: &str,
        opened: &Opened,
        client: IpAddr,
        mac_hint: Option<&str>,
    ) -> Verdict {
        let nodes = self.nodes();
        let path = format!("{area}/{}", opened.rel);
        let node = node_name(&nodes, client, mac_hint);
        let refused = match nodes.access(&path, opened.id, client) {
            Access::Refused(owner) if nodes.ip_check() => Some(owner),
            Access::Refused(owner) => {
                crate::verbose!("{path} belongs to {} but --no-ip-check is set", owner.node);
                None
            }
            Access::Allowed => None,
        };
        Verdict {
            node,
            path,
            refused,
        }
    }

    /// The node name for a client, without a file (beacons, refusals).
    pub fn node_for(&self, client: IpAddr, mac_hint: Option<&str>) -> Option<String> {
        node_name(&self.nodes(), client, mac_hint)
    }
}

fn node_name(nodes: &Nodes, client: IpAddr, mac_hint: Option<&str>) -> Option<String> {
    nodes
        .name_for_ip(client)
        .or_else(|| mac_hint.and_then(|mac| nodes.name_for_mac(mac)))
        .map(str::to_string)
}

fn manifest_id(dist: &std::path::Path) -> Option<(u64, u64, i64)> {
    let meta = std::fs::metadata(dist.join(manifest::FILE_NAME)).ok()?;
    Some((
        meta.dev(),
        meta.ino(),
        meta.mtime_nsec() + meta.mtime() * 1_000_000_000,
    ))
}

/// Marks one request or transfer as in progress for as long as it lives.
pub struct BusyGuard<'a>(&'a AtomicUsize);

impl<'a> BusyGuard<'a> {
    pub fn new(counter: &'a AtomicUsize) -> BusyGuard<'a> {
        counter.fetch_add(1, Ordering::SeqCst);
        BusyGuard(counter)
    }
}

impl Drop for BusyGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Both listeners, bound and ready.
pub struct Server {
    shared: Arc<Shared>,
    http: TcpListener,
    tftp: UdpSocket,
    admin: Option<TcpListener>,
}

impl Server {
    /// Loads the manifest, binds both ports, drops privileges if asked, and prints
    /// one `… listening on ADDR` line per protocol.
    pub fn bind(config: Config) -> Result<Server> {
        let http_addr = SocketAddr::new(config.listen, config.http_port);
        let tftp_addr = SocketAddr::new(config.listen, config.tftp_port);
        let http = http::bind(http_addr).with_context(|| format!("binding HTTP on {http_addr}"))?;
        let tftp = tftp::server::bind(tftp_addr)
            .with_context(|| format!("binding TFTP on {tftp_addr}"))?;
        let admin = match config.admin {
            Some(addr) => Some(admin::bind(addr).with_context(|| {
                format!(
                    "binding the status page on {addr} (pass --admin ADDR:PORT for another \
                     address or port, or --admin off)"
                )
            })?),
            None => None,
        };
        let shared = Arc::new(Shared::new(config)?);
        if admin.is_some() {
            // What happened before a restart stays on the page.
            if let Some(file) = &shared.config.log_file {
                if let Ok(bytes) = std::fs::read(file) {
                    shared.log.seed(&String::from_utf8_lossy(&bytes));
                }
            }
        }
        if let Some(user) = &shared.config.user {
            privs::drop_to(user)?;
        }
        eprintln!("http listening on {}", http.local_addr()?);
        eprintln!("tftp listening on {}", tftp.local_addr()?);
        if let Some(admin) = &admin {
            eprintln!("admin listening on {}", admin.local_addr()?);
        }
        Ok(Server {
            shared,
            http,
            tftp,
            admin,
        })
    }

    pub fn http_addr(&self) -> Result<SocketAddr> {
        Ok(self.http.local_addr()?)
    }

    pub fn tftp_addr(&self) -> Result<SocketAddr> {
        Ok(self.tftp.local_addr()?)
    }

    /// Serves until SIGINT or SIGTERM; SIGHUP reloads the manifest and reopens
    /// the log file.
    pub fn run(self) -> Result<()> {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
            .context("installing signal handlers")?;
        let http_listener = self.http.try_clone()?;
        let http_shared = self.shared.clone();
        let http_thread = thread::spawn(move || http::serve(http_listener, http_shared));
        let tftp_shared = self.shared.clone();
        let tftp_thread = thread::spawn(move || tftp::server::serve(self.tftp, tftp_shared));
        let admin_thread = match &self.admin {
            Some(listener) => {
                let (listener, shared) = (listener.try_clone()?, self.shared.clone());
                Some(thread::spawn(move || admin::serve(listener, shared)))
            }
            None => None,
        };
        for signal in signals.forever() {
            if signal == SIGHUP {
                if let Err(err) = self.shared.log.reopen() {
                    crate::warn!("SIGHUP: keeping the old log file: {err:#}");
                }
                match self.shared.reload() {
                    Ok(()) => {
                        crate::info!("SIGHUP: manifest reloaded");
                    }
                    Err(err) => {
                        crate::warn!("SIGHUP: keeping the old manifest: {err:#}");
                    }
                }
                continue;
            }
            crate::info!("signal {signal}: shutting down");
            break;
        }
        self.shared.shutdown.store(true, Ordering::SeqCst);
        // Wakes the blocked accept(); the TFTP loop polls the flag.
        let _ = rustix::net::shutdown(&self.http, rustix::net::Shutdown::Read);
        if let Some(admin) = &self.admin {
            let _ = rustix::net::shutdown(admin, rustix::net::Shutdown::Read);
        }
        let _ = http_thread.join();
        if let Some(thread) = admin_thread {
            let _ = thread.join();
        }
        let _ = tftp_thread.join();
        wait_idle(&self.shared);
        Ok(())
    }
}

fn wait_idle(shared: &Shared) {
    let deadline = Instant::now() + shared.config.grace;
    while shared.busy.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    let left = shared.busy.load(Ordering::SeqCst);
    if left > 0 {
        crate::warn!("stopping with {left} transfer(s) still running");
    }
    crate::info!("stopped");
}
