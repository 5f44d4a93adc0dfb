//! The transfer log: one line per finished transfer or milestone, written to
//! stderr and appended to a log file, plus the reader behind `serve --status`.
//!
//! Line format (space-separated, `key=value` after the first three fields, values
//! with spaces or odd bytes %-escaped so every line splits cleanly):
//!
//! ```text
//! 2026-11-26T21:50:00.123Z tftp 10.0.0.11:49153 node=cp1 path=tftp/lpxelinux.0 bytes=42 ms=12 result=ok
//! 2026-11-26T21:58:10.001Z http 10.0.0.11:40312 node=cp1 milestone=install-done result=ok
//! 2026-11-26T21:58:10.001Z http 10.0.0.12:40318 node=w1 milestone=install-disk-missing detail=sda=1.8T,ST2000,ata-ST2000_Z4Z result=ok
//! ```
//!
//! `grep node=cp1 serve.log` is that node's boot timeline, in order.
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result};

use crate::clock;
use crate::serve::stage::{self, Stage};

/// One finished transfer (or beacon), ready to be written.
#[derive(Debug, Clone, Default)]
pub struct Entry<'a> {
    pub proto: &'a str,
    pub client: Option<SocketAddr>,
    pub node: Option<&'a str>,
    /// Path relative to dist (`http/…`, `tftp/…`; refused requests as asked,
    /// after that prefix), `beacon/…` for beacons, the raw target when undecodable.
    pub path: Option<&'a str>,
    pub milestone: Option<&'a str>,
    /// A beacon's detail, already sanitised (`serve::detail`).
    pub detail: Option<&'a str>,
    pub status: Option<u16>,
    pub bytes: u64,
    pub ms: u128,
    /// `ok`, `aborted`, `timeout`, `refused:<why>`, `not-found`, …
    pub result: &'a str,
}

/// Where log lines go.
#[derive(Debug)]
pub struct TransferLog {
    file: Option<LogFile>,
    to_stderr: bool,
    /// Every line written so far folded per node, as `--status` folds the
    /// file: what the status page shows, without reading the file again.
    board: Mutex<BTreeMap<String, NodeStatus>>,
}

/// The log file and the path it was opened by, for [`TransferLog::reopen`].
#[derive(Debug)]
struct LogFile {
    path: PathBuf,
    handle: Mutex<File>,
}

fn open_append(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening log file {}", path.display()))
}

impl TransferLog {
    /// Appends to `path` (created if missing) and, unless `to_stderr` is off, stderr.
    pub fn open(path: Option<&Path>, to_stderr: bool) -> Result<TransferLog> {
        let file = match path {
            Some(path) => Some(LogFile {
                path: path.to_path_buf(),
                handle: Mutex::new(open_append(path)?),
            }),
            None => None,
        };
        Ok(TransferLog {
            file,
            to_stderr,
            board: Mutex::new(BTreeMap::new()),
        })
    }

    /// Folds earlier log text (the log file as a restarted server finds it)
    /// into the board, so the status page keeps what happened before.
    pub fn seed(&self, log: &str) {
        let mut board = self.board.lock().unwrap_or_else(|e| e.into_inner());
        for line in log.lines().filter_map(parse_line) {
            fold(&mut board, &line);
        }
    }

    /// A copy of the per-node statuses folded so far.
    pub fn board(&self) -> BTreeMap<String, NodeStatus> {
        self.board.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Opens the log file again by its path (on SIGHUP), so that a log rotated
    /// by renaming (logrotate's default) is followed: lines go to the new file
    /// from here on. On failure the old file stays in use and the error is
    /// returned.
    pub fn reopen(&self) -> Result<()> {
        let Some(file) = &self.file else {
            return Ok(());
        };
        let fresh = open_append(&file.path)?;
        *file.handle.lock().unwrap_or_else(|e| e.into_inner()) = fresh;
        Ok(())
    }

    pub fn write(&self, entry: &Entry<'_>) {
        let line = format_line(clock::now_ms(), entry);
        if let Some(parsed) = parse_line(&line) {
            fold(
                &mut self.board.lock().unwrap_or_else(|e| e.into_inner()),
                &parsed,
            );
        }
        // The file first: whoever sees the stderr line can rely on the file having it.
        if let Some(file) = &self.file {
            let mut file = file.handle.lock().unwrap_or_else(|e| e.into_inner());
            // One write call per line: O_APPEND keeps concurrent lines whole.
            if let Err(err) = file.write_all(format!("{line}\n").as_bytes()) {
                crate::warn!("writing the transfer log: {err}");
            }
        }
        if self.to_stderr {
            eprintln!("{line}");
        }
    }
}

pub(crate) fn format_line(unix_ms: i64, e: &Entry<'_>) -> String {
    let mut line = format!("{} {}", clock::rfc3339_ms(unix_ms), e.proto);
    match e.client {
        Some(client) => write!(line, " {client}"),
        None => write!(line, " -"),
    }
    .ok();
    push(&mut line, "node", e.node.unwrap_or("-"));
    if let Some(path) = e.path {
        push(&mut line, "path", path);
    }
    if let Some(milestone) = e.milestone {
        push(&mut line, "milestone", milestone);
    }
    if let Some(detail) = e.detail {
        push(&mut line, "detail", detail);
    }
    if let Some(status) = e.status {
        push(&mut line, "status", &status.to_string());
    }
    if e.milestone.is_none() {
        push(&mut line, "bytes", &e.bytes.to_string());
        push(&mut line, "ms", &e.ms.to_string());
    }
    push(&mut line, "result", e.result);
    line
}

fn push(line: &mut String, key: &str, value: &str) {
    line.push(' ');
    line.push_str(key);
    line.push('=');
    for byte in value.bytes() {
        if byte.is_ascii_graphic() && byte != b'%' {
            line.push(byte as char);
        } else {
            let _ = write!(line, "%{byte:02X}");
        }
    }
}

/// A parsed log line: timestamp, protocol and its `key=value` fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub time: String,
    pub proto: String,
    pub client: String,
    pub fields: BTreeMap<String, String>,
}

pub(crate) fn parse_line(text: &str) -> Option<Line> {
    let mut words = text.split_whitespace();
    let time = words.next()?.to_string();
    let proto = words.next()?.to_string();
    let client = words.next()?.to_string();
    if !time.ends_with('Z') {
        return None;
    }
    let fields = words
        .filter_map(|w| w.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Some(Line {
        time,
        proto,
        client,
        fields,
    })
}

/// The state of one node as the log tells it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeStatus {
    pub milestone: Option<(String, String)>,
    /// The detail of that last milestone's beacon, if it carried one.
    pub milestone_detail: Option<String>,
    pub last_fetch: Option<(String, String)>,
    /// The first time each boot stage was reached.
    pub stages: BTreeMap<Stage, String>,
}

impl NodeStatus {
    /// Folds in one log line of this node.
    pub fn apply(&mut self, line: &Line) {
        self.stages
            .entry(Stage::Dhcp)
            .or_insert_with(|| line.time.clone());
        let stage = if let Some(milestone) = line.fields.get("milestone") {
            self.milestone = Some((milestone.clone(), line.time.clone()));
            self.milestone_detail = line.fields.get("detail").cloned();
            Stage::of_milestone(milestone)
        } else if let (Some(path), Some("ok")) = (
            line.fields.get("path"),
            line.fields.get("result").map(String::as_str),
        ) {
            self.last_fetch = Some((path.clone(), line.time.clone()));
            Stage::of_fetch(path)
        } else {
            None
        };
        if let Some(stage) = stage {
            self.stages
                .entry(stage)
                .or_insert_with(|| line.time.clone());
        }
    }

    /// When the node was first seen (its first request).
    pub fn first_seen(&self) -> Option<&str> {
        self.stages.get(&Stage::Dhcp).map(String::as_str)
    }

    /// Milliseconds from the first request to `stage`, once reached.
    pub fn elapsed_ms(&self, stage: Stage) -> Option<i64> {
        let start = stage::unix_ms(self.first_seen()?)?;
        Some(stage::unix_ms(self.stages.get(&stage)?)? - start)
    }
}

/// Folds one log line into per-node statuses (only lines that name a node).
pub(crate) fn fold(nodes: &mut BTreeMap<String, NodeStatus>, line: &Line) {
    let Some(node) = line.fields.get("node").filter(|n| *n != "-") else {
        return;
    };
    nodes.entry(node.clone()).or_default().apply(line);
}

/// Folds a log into one status per node (only lines that name a node).
pub(crate) fn node_status(log: &str) -> BTreeMap<String, NodeStatus> {
    let mut nodes: BTreeMap<String, NodeStatus> = BTreeMap::new();
    for line in log.lines().filter_map(parse_line) {
        fold(&mut nodes, &line);
    }
    nodes
}

/// `nodes` with a row for every name in `known` (manifest nodes appear even
/// when the log has nothing for them yet).
pub(crate) fn with_known(
    mut nodes: BTreeMap<String, NodeStatus>,
    known: &[String],
) -> BTreeMap<String, NodeStatus> {
    for name in known {
        nodes.entry(name.clone()).or_default();
    }
    nodes
}

/// The `--status` table: one row per node (manifest nodes first appear even
/// when the log has nothing for them yet).
pub(crate) fn status_table(log: &str, known: &[String]) -> String {
    let nodes = with_known(node_status(log), known);
    let mut rows = vec![[
        "NODE".to_string(),
        "MILESTONE".to_string(),
        "AT".to_string(),
        "LAST FILE".to_string(),
        "AT".to_string(),
    ]];
    for (name, status) in nodes {
        let (m, m_at) = status.milestone.unwrap_or_else(|| ("-".into(), "-".into()));
        let (f, f_at) = status
            .last_fetch
            .unwrap_or_else(|| ("-".into(), "-".into()));
        rows.push([name, m, m_at, f, f_at]);
    }
    let widths: Vec<usize> = (0..5)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The `--status --format json` document: `{"nodes": [{"name", "milestone",
/// "milestone_at", "milestone_detail", "last_file", "last_file_at",
/// "first_seen", "stages": [{"stage", "at", "elapsed_ms"}]}]}`, absent values
/// `null`, nodes by name, stages reached in boot order.
pub(crate) fn status_json(log: &str, known: &[String]) -> serde_json::Value {
    status_json_of(&with_known(node_status(log), known))
}

/// The same document from statuses already folded (the status page's live ones).
pub(crate) fn status_json_of(nodes: &BTreeMap<String, NodeStatus>) -> serde_json::Value {
    let rows: Vec<serde_json::Value> = nodes
        .iter()
        .map(|(name, status)| {
            let (milestone, milestone_at) = status.milestone.clone().unzip();
            let (last_file, last_file_at) = status.last_fetch.clone().unzip();
            let stages: Vec<serde_json::Value> = status
                .stages
                .iter()
                .map(|(stage, at)| {
                    serde_json::json!({
                        "stage": stage.name(),
                        "at": at,
                        "elapsed_ms": status.elapsed_ms(*stage),
                    })
                })
                .collect();
            serde_json::json!({
                "name": name,
                "milestone": milestone,
                "milestone_at": milestone_at,
                "milestone_detail": status.milestone_detail,
                "last_file": last_file,
                "last_file_at": last_file_at,
                "first_seen": status.first_seen(),
                "stages": stages,
            })
        })
        .collect();
    serde_json::json!({ "nodes": rows })
}

/// One node's boot timeline: its log lines in order, one event per row.
pub(crate) fn timeline(log: &str, node: &str) -> String {
    let mut out = String::new();
    for line in log.lines().filter_map(parse_line) {
        if line.fields.get("node").map(String::as_str) != Some(node) {
            continue;
        }
        let field = |key: &str| line.fields.get(key).map(String::as_str).unwrap_or("-");
        let what = match (line.fields.get("milestone"), line.fields.get("detail")) {
            (Some(milestone), Some(detail)) => format!("milestone {milestone} ({detail})"),
            (Some(milestone), None) => format!("milestone {milestone}"),
            (None, _) => format!("{} ({} bytes)", field("path"), field("bytes")),
        };
        out.push_str(&format!(
            "{}  {:<4}  {}  {}\n",
            line.time,
            line.proto,
            what,
            field("result")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_format_and_parse() {
        let entry = Entry {
            proto: "tftp",
            client: Some("10.0.0.11:49153".parse().unwrap()),
            node: Some("cp1"),
            path: Some("tftp/a b%"),
            bytes: 42,
            ms: 12,
            result: "ok",
            ..Entry::default()
        };
        let line = format_line(0, &entry);
        assert_eq!(
            line,
            "1970-01-01T00:00:00.000Z tftp 10.0.0.11:49153 node=cp1 path=tftp/a%20b%25 bytes=42 ms=12 result=ok"
        );
        let parsed = parse_line(&line).unwrap();
        assert_eq!(parsed.proto, "tftp");
        assert_eq!(parsed.fields["bytes"], "42");
    }

    #[test]
    fn a_beacons_detail_is_one_field_and_shows_in_the_timeline() {
        let entry = Entry {
            proto: "http",
            client: Some("10.0.0.12:40318".parse().unwrap()),
            node: Some("w1"),
            milestone: Some("install-disk-missing"),
            detail: Some("sda=1.8T,ST2000,ata-ST2000_Z4Z;vda=20G,,virtio-w1"),
            status: Some(204),
            result: "ok",
            ..Entry::default()
        };
        let line = format_line(0, &entry);
        assert_eq!(
            line,
            "1970-01-01T00:00:00.000Z http 10.0.0.12:40318 node=w1 milestone=install-disk-missing \
             detail=sda=1.8T,ST2000,ata-ST2000_Z4Z;vda=20G,,virtio-w1 status=204 result=ok"
        );
        let parsed = parse_line(&line).unwrap();
        assert_eq!(parsed.fields["node"], "w1");
        assert_eq!(parsed.fields["result"], "ok");
        assert_eq!(
            timeline(&line, "w1"),
            "1970-01-01T00:00:00.000Z  http  milestone install-disk-missing \
             (sda=1.8T,ST2000,ata-ST2000_Z4Z;vda=20G,,virtio-w1)  ok\n"
        );
    }

    #[test]
    fn the_live_board_is_the_status_of_the_lines_written() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("serve.log");
        std::fs::write(
            &path,
            "2026-01-01T00:00:01.000Z tftp 10.0.0.11:1 node=cp1 path=tftp/lpxelinux.0 bytes=1 ms=1 result=ok\n",
        )
        .unwrap();
        let log = TransferLog::open(Some(&path), false).unwrap();
        // A restarted server: what the file held before it is on the board too.
        log.seed(&std::fs::read_to_string(&path).unwrap());
        let client = Some("10.0.0.11:2".parse().unwrap());
        for entry in [
            Entry {
                proto: "http",
                client,
                node: Some("cp1"),
                path: Some("http/flatcar/1/flatcar_production_pxe.vmlinuz"),
                bytes: 9,
                result: "ok",
                ..Entry::default()
            },
            Entry {
                proto: "http",
                client,
                node: Some("cp1"),
                milestone: Some("install-disk-missing"),
                detail: Some("sda=1.8T"),
                status: Some(204),
                result: "ok",
                ..Entry::default()
            },
            Entry {
                proto: "http",
                client,
                node: None,
                path: Some("http/x"),
                result: "not-found",
                ..Entry::default()
            },
        ] {
            log.write(&entry);
        }
        let board = log.board();
        assert_eq!(board, node_status(&std::fs::read_to_string(&path).unwrap()));
        let cp1 = &board["cp1"];
        let stages: Vec<Stage> = cp1.stages.keys().copied().collect();
        assert_eq!(stages, [Stage::Dhcp, Stage::Loader, Stage::Kernel]);
        assert_eq!(cp1.milestone_detail.as_deref(), Some("sda=1.8T"));
        let json = status_json_of(&board);
        assert_eq!(json["nodes"][0]["stages"][0]["elapsed_ms"], 0);
        assert_eq!(json["nodes"][0]["milestone_detail"], "sda=1.8T");
    }

    #[test]
    fn status_keeps_the_last_milestone_per_node() {
        let log = "\
2026-01-01T00:00:01.000Z tftp 10.0.0.11:1 node=cp1 path=tftp/lpxelinux.0 bytes=1 ms=1 result=ok
2026-01-01T00:00:02.000Z http 10.0.0.11:2 node=cp1 milestone=install-done result=ok
2026-01-01T00:00:03.000Z http 10.0.0.12:2 node=w1 path=http/x bytes=1 ms=1 result=ok
2026-01-01T00:00:04.000Z http 10.0.0.11:2 node=cp1 milestone=first-boot result=ok
garbage line
2026-01-01T00:00:05.000Z http 10.0.0.99:2 node=- path=http/y bytes=1 ms=1 result=ok
";
        let status = node_status(log);
        assert_eq!(status.len(), 2);
        assert_eq!(
            status["cp1"].milestone,
            Some(("first-boot".into(), "2026-01-01T00:00:04.000Z".into()))
        );
        assert_eq!(status["w1"].last_fetch.as_ref().unwrap().0, "http/x");
        let steps = timeline(log, "cp1");
        assert_eq!(steps.lines().count(), 3, "{steps}");
        assert!(
            steps
                .lines()
                .next()
                .unwrap()
                .contains("tftp/lpxelinux.0 (1 bytes)  ok"),
            "{steps}"
        );
        assert!(
            steps
                .lines()
                .last()
                .unwrap()
                .contains("milestone first-boot"),
            "{steps}"
        );
        let table = status_table(log, &["w2".to_string()]);
        assert!(
            table
                .lines()
                .any(|l| l.starts_with("cp1") && l.contains("first-boot")),
            "{table}"
        );
        assert!(table.lines().any(|l| l.starts_with("w2 ")), "{table}");
    }
}
