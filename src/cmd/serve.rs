//! `pxebuild serve`: resolves the command line into a [`serve::Config`] and runs
//! the server, or one of its one-shot modes that read the log (`--status`,
//! `--timeline`), or `--check`, which verifies the tree and exits.
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::cmd::global::{Format, Global};
use crate::error::BadInput;
use crate::manifest::Manifest;
use crate::serve::{self, check, log, privs};

/// Arguments of `pxebuild serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The built tree to serve: holds tftp/, http/ and manifest.json.
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
    /// Address both servers listen on.
    ///
    /// TFTP replies always come from the address a request arrived on, also when
    /// this is 0.0.0.0 on a host with several addresses.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0")]
    pub listen: IpAddr,
    /// Where the read-only status page listens, ADDR:PORT, or `off`.
    ///
    /// One row per node with its boot stages and their times, reloading
    /// itself; `/status.json` is the `--status --format json` document. It has
    /// no authentication: keep it on loopback or a management address (reach
    /// it with `ssh -L 9080:127.0.0.1:9080 boot-server`). Never on the nodes'
    /// HTTP port. Port 0 picks a free one (printed at start).
    #[arg(long, value_name = "ADDR:PORT|off", default_value = serve::admin::DEFAULT,
          value_parser = serve::admin::parse_flag)]
    pub admin: serve::admin::Listen,
    /// HTTP port; 0 picks a free one (the chosen port is printed at start).
    #[arg(long, value_name = "N", default_value_t = 8080)]
    pub http_port: u16,
    /// TFTP port; 0 picks a free one (the chosen port is printed at start).
    #[arg(long, value_name = "N", default_value_t = 69)]
    pub tftp_port: u16,
    /// Serve node-bound files (Ignition configs) to any client IP.
    ///
    /// For labs behind NAT, where nodes do not fetch from their own address.
    /// Would-be refusals are still noted with -v.
    #[arg(long)]
    pub no_ip_check: bool,
    /// Verify every file against manifest.json (size and SHA-256), then exit:
    /// 0 when all match, 1 on a mismatch. Serves nothing.
    #[arg(long, conflicts_with_all = ["status", "timeline"])]
    pub check: bool,
    /// Print one row per node (last milestone, last file) from the log and exit.
    #[arg(long)]
    pub status: bool,
    /// Output of --status: text (a table) or json.
    #[arg(long, value_enum, default_value = "text", requires = "status")]
    pub format: Format,
    /// Print one node's boot timeline (files fetched and milestones, in order)
    /// from the log and exit.
    #[arg(long, value_name = "NODE", conflicts_with = "status")]
    pub timeline: Option<String>,
    /// Append transfer log lines to FILE as well as stderr.
    ///
    /// Default: DIR's name plus `.serve.log`, next to DIR (for `dist`:
    /// `dist.serve.log`); never inside DIR, which a build may swap out.
    #[arg(long, value_name = "FILE")]
    pub log: Option<PathBuf>,
    /// Write transfer log lines only to stderr, no log file.
    #[arg(long, conflicts_with_all = ["log", "status", "timeline"])]
    pub no_log_file: bool,
    /// Largest TFTP block size agreed to; it is also capped by each client's path MTU.
    #[arg(long, value_name = "N", default_value_t = 65464,
          value_parser = clap::value_parser!(u16).range(8..=65464))]
    pub tftp_blksize_max: u16,
    /// Largest TFTP window size (RFC 7440) agreed to.
    #[arg(long, value_name = "N", default_value_t = 64,
          value_parser = clap::value_parser!(u16).range(1..))]
    pub tftp_windowsize_max: u16,
    /// TFTP transfers that may run at once; more requests get "server busy".
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_tftp_sessions: usize,
    /// Open HTTP connections allowed at once; more get 503.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    pub max_connections: usize,
    /// Seconds an HTTP connection may stay idle or stall a read or write.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub http_timeout: u64,
    /// After binding the ports, switch to this user (when started as root).
    ///
    /// Without it a root-started server keeps running as root; alternatively run
    /// unprivileged with CAP_NET_BIND_SERVICE to bind port 69.
    #[arg(long, value_name = "NAME")]
    pub user: Option<String>,
}

pub(crate) fn run(global: &Global, args: Args) -> Result<()> {
    let log_file = if args.no_log_file {
        None
    } else {
        Some(log_path(&args)?)
    };
    if let Some(node) = &args.timeline {
        let text = read_log(log_file.as_deref())?;
        print!("{}", log::timeline(&text, node));
        return Ok(());
    }
    if args.status {
        return print_status(&args.dir, log_file.as_deref(), args.format);
    }
    // The allocator backs its arenas with transparent huge pages, which pays
    // for a build (far fewer page faults) but would make each of the server's
    // connection threads touch megabytes: keep the server small instead.
    if let Err(err) = rustix::thread::disable_transparent_huge_pages(true) {
        crate::verbose!("could not turn off transparent huge pages: {err}");
    }
    let manifest = Manifest::load(&args.dir).map_err(|err| BadInput::new(format!("{err:#}")))?;
    if args.check {
        let count = check::check_tree(&args.dir, &manifest)?;
        crate::info!("check: {count} files match manifest.json");
        return Ok(());
    }
    if args.user.is_none() && privs::is_root() {
        crate::warn!(
            "serving as root: pass --user NAME to drop to an unprivileged user once \
             the ports are bound, or run as a user with CAP_NET_BIND_SERVICE (docs/serve.md)"
        );
    }
    if let Some(admin) = args.admin.0 {
        let overlaps = admin.ip() == args.listen
            || admin.ip().is_unspecified()
            || args.listen.is_unspecified();
        if admin.port() != 0 && admin.port() == args.http_port && overlaps {
            return Err(BadInput::new(format!(
                "--admin {admin} is the nodes' HTTP port: the status page needs a port \
                 of its own (e.g. --admin 127.0.0.1:9080), or --admin off"
            )));
        }
    }
    let config = serve::Config {
        dist: args.dir.clone(),
        listen: args.listen,
        http_port: args.http_port,
        tftp_port: args.tftp_port,
        ip_check: !args.no_ip_check,
        log_file,
        log_stderr: global.verbosity() >= 1,
        tftp_blksize_max: args.tftp_blksize_max,
        tftp_windowsize_max: args.tftp_windowsize_max,
        max_tftp_sessions: args.max_tftp_sessions.max(1),
        max_http_connections: args.max_connections.max(1),
        http_timeout: Duration::from_secs(args.http_timeout.max(1)),
        user: args.user.clone(),
        grace: Duration::from_secs(10),
        admin: args.admin.0,
    };
    serve::Server::bind(config)?.run()
}

/// `--log`, or `<DIR>.serve.log` beside DIR.
fn log_path(args: &Args) -> Result<PathBuf> {
    if let Some(path) = &args.log {
        return Ok(path.clone());
    }
    let abs = std::path::absolute(&args.dir)
        .with_context(|| format!("resolving {}", args.dir.display()))?;
    let clean: PathBuf = abs.components().collect();
    let name = clean.file_name().ok_or_else(|| {
        BadInput::new(format!(
            "{} has no name to derive a log file from; pass --log",
            args.dir.display()
        ))
    })?;
    let mut file = name.to_os_string();
    file.push(".serve.log");
    Ok(clean.with_file_name(file))
}

fn read_log(log_file: Option<&Path>) -> Result<String> {
    let log_file = log_file.unwrap_or(Path::new(""));
    std::fs::read_to_string(log_file).with_context(|| format!("reading log {}", log_file.display()))
}

fn print_status(dir: &Path, log_file: Option<&Path>, format: Format) -> Result<()> {
    let text = read_log(log_file)?;
    let known: Vec<String> = Manifest::load(dir)
        .map(|m| m.nodes.into_iter().map(|n| n.name).collect())
        .unwrap_or_default();
    match format {
        Format::Text => print!("{}", log::status_table(&text, &known)),
        Format::Json => println!("{}", log::status_json(&text, &known)),
    }
    Ok(())
}
