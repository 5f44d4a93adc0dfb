//! Ignition's rules for `storage`: file, directory and link nodes (clean paths,
//! no duplicates, nothing below a link, hard-link targets), modes, disks and
//! partitions (GUIDs, numbers, overlaps) and filesystems (formats, labels).
use serde_json::Value;

use super::{at, check_path, clean, items, set, str_of, Verifier};
use crate::butane::storage::is_guid;

impl Verifier {
    pub(super) fn storage(&mut self, st: &Value) {
        let mut nodes: Vec<(String, &str)> = Vec::new();
        for kind in ["files", "directories", "links"] {
            for (i, n) in items(&st[kind]).iter().enumerate() {
                let p = format!("storage.{kind}.{i}");
                self.node(&p, n, kind);
                if let Some(path) = str_of(n, "path") {
                    nodes.push((p, path));
                }
            }
        }
        self.dups("path", nodes.iter().map(|(p, k)| (p.clone(), *k)));
        self.below_links(st);
        for (i, l) in items(&st["links"]).iter().enumerate() {
            self.hard_link(&format!("storage.links.{i}"), l, st);
        }
        let disks = items(&st["disks"]);
        for (i, d) in disks.iter().enumerate() {
            self.disk(&format!("storage.disks.{i}"), d);
        }
        self.dups(
            "disk",
            disks.iter().enumerate().filter_map(|(i, d)| {
                str_of(d, "device").map(|k| (format!("storage.disks.{i}"), k))
            }),
        );
        let fss = items(&st["filesystems"]);
        for (i, f) in fss.iter().enumerate() {
            self.filesystem(&format!("storage.filesystems.{i}"), f);
        }
        self.dups(
            "filesystem device",
            fss.iter().enumerate().filter_map(|(i, f)| {
                str_of(f, "device").map(|k| (format!("storage.filesystems.{i}"), k))
            }),
        );
    }

    fn node(&mut self, p: &str, n: &Value, kind: &str) {
        if let Err(e) = check_path(str_of(n, "path").unwrap_or("")) {
            self.error(at(p, "path"), e);
        }
        for owner in ["user", "group"] {
            if n[owner].get("id").is_some_and(|v| !v.is_null()) && set(&n[owner], "name").is_some()
            {
                self.error(at(p, owner), "set only one of id and name");
            }
        }
        if kind == "links" {
            if set(n, "target").is_none() {
                self.error(at(p, "target"), "a link needs a target");
            }
            return;
        }
        if let Some(mode) = n["mode"].as_i64() {
            self.mode(&at(p, "mode"), mode);
        }
        if kind == "files" {
            self.file(p, n);
        }
    }

    fn mode(&mut self, p: &str, mode: i64) {
        if !(0..=0o7777).contains(&mode) {
            self.error(
                p.to_string(),
                format!("mode {mode} is out of range (at most 0o7777 = 4095)"),
            );
        } else if mode & 0o7000 != 0 {
            self.warn(
                p.to_string(),
                format!("mode 0o{mode:o} has setuid/setgid/sticky bits, which Ignition before spec 3.6.0 does not apply"),
            );
        }
    }

    fn file(&mut self, p: &str, f: &Value) {
        let contents = f.get("contents");
        if f["overwrite"] == Value::Bool(true)
            && contents.is_none_or(|c| str_of(c, "source").is_none())
        {
            self.error(
                at(p, "overwrite"),
                "overwrite must be false when contents has no source",
            );
        }
        if let Some(c) = contents {
            self.resource(&at(p, "contents"), c, false);
        }
        for (i, a) in items(&f["append"]).iter().enumerate() {
            self.resource(&at(p, format!("append.{i}")), a, false);
        }
    }

    /// Nothing may be created through a link the config also creates.
    fn below_links(&mut self, st: &Value) {
        let links: Vec<&str> = items(&st["links"])
            .iter()
            .filter_map(|l| str_of(l, "path"))
            .collect();
        for kind in ["files", "directories", "links"] {
            for (i, n) in items(&st[kind]).iter().enumerate() {
                let Some(path) = str_of(n, "path") else {
                    continue;
                };
                if let Some(l) = links.iter().find(|l| path.starts_with(&format!("{l}/"))) {
                    self.error(
                        format!("storage.{kind}.{i}"),
                        format!("\"{path}\" is below the link \"{l}\""),
                    );
                }
            }
        }
    }

    fn hard_link(&mut self, p: &str, l: &Value, st: &Value) {
        let (Some(path), Some(target)) = (str_of(l, "path"), set(l, "target")) else {
            return;
        };
        if l["hard"] != Value::Bool(true) {
            return;
        }
        let target = if target.starts_with('/') {
            clean(target)
        } else {
            clean(&format!("{path}/{target}"))
        };
        let is_dir = items(&st["directories"])
            .iter()
            .any(|d| str_of(d, "path") == Some(target.as_str()));
        if is_dir {
            self.error(
                p.to_string(),
                format!("hard link target \"{target}\" is a directory"),
            );
        }
    }

    fn disk(&mut self, p: &str, d: &Value) {
        match set(d, "device") {
            None => return self.error(at(p, "device"), "a disk needs a device"),
            Some(dev) => {
                if let Err(e) = check_path(dev) {
                    self.error(at(p, "device"), e);
                }
            }
        }
        let parts = items(&d["partitions"]);
        for (i, part) in parts.iter().enumerate() {
            self.partition(&at(p, format!("partitions.{i}")), part);
        }
        let numbers: Vec<(String, String)> = parts
            .iter()
            .enumerate()
            .filter_map(|(i, x)| {
                let n = x["number"].as_i64().filter(|n| *n != 0)?;
                Some((at(p, format!("partitions.{i}.number")), n.to_string()))
            })
            .collect();
        self.dups(
            "partition number",
            numbers.iter().map(|(p, n)| (p.clone(), n.as_str())),
        );
        self.dups(
            "partition label",
            parts.iter().enumerate().filter_map(|(i, x)| {
                str_of(x, "label").map(|l| (at(p, format!("partitions.{i}.label")), l))
            }),
        );
        self.overlaps(p, parts);
        let zero = parts.iter().any(|x| x["number"].as_i64().unwrap_or(0) == 0);
        let absent = parts.iter().any(|x| x["shouldExist"] == Value::Bool(false));
        if zero && absent {
            self.error(
                at(p, "partitions"),
                "a partition with should_exist: false cannot be combined with partitions without a number",
            );
        }
    }

    fn partition(&mut self, p: &str, x: &Value) {
        let number = x["number"].as_i64().unwrap_or(0);
        let label = str_of(x, "label");
        if x["shouldExist"] == Value::Bool(false) {
            let others = label.is_some()
                || set(x, "typeGuid").is_some()
                || set(x, "guid").is_some()
                || x.get("startMiB").is_some_and(|v| !v.is_null())
                || x.get("sizeMiB").is_some_and(|v| !v.is_null());
            if others {
                self.error(
                    p.to_string(),
                    "a partition with should_exist: false may only have a number",
                );
            }
        }
        if number == 0 && label.is_none() {
            self.error(
                p.to_string(),
                "a partition needs a number (1 or more) or a label",
            );
        }
        if let Some(l) = label {
            if l.len() > 36 {
                self.error(
                    at(p, "label"),
                    format!("partition label \"{l}\" is longer than 36 characters"),
                );
            } else if l.contains(':') {
                self.error(
                    at(p, "label"),
                    format!("partition label \"{l}\" contains a colon"),
                );
            }
        }
        for key in ["guid", "typeGuid"] {
            if let Some(g) = str_of(x, key).filter(|g| !g.is_empty() && !is_guid(g)) {
                self.error(at(p, key), format!("invalid GUID \"{g}\""));
            }
        }
    }

    /// Partitions with both a (non-zero) start and a size may not overlap.
    fn overlaps(&mut self, p: &str, parts: &[Value]) {
        let span = |x: &Value| {
            let start = x["startMiB"].as_i64().filter(|s| *s != 0)?;
            let size = x["sizeMiB"].as_i64()?;
            Some((start, if size == 0 { start } else { start + size - 1 }))
        };
        for (i, a) in parts.iter().enumerate() {
            let Some((s1, e1)) = span(a) else { continue };
            for (j, b) in parts.iter().enumerate().filter(|(j, _)| *j != i) {
                let Some((s2, e2)) = span(b) else { continue };
                if (s1 <= e2 && e1 >= s2) && j > i {
                    self.error(
                        at(p, format!("partitions.{j}")),
                        format!("partitions {i} and {j} overlap"),
                    );
                }
            }
        }
    }

    fn filesystem(&mut self, p: &str, f: &Value) {
        if let Some(path) = set(f, "path") {
            if let Err(e) = check_path(path) {
                self.error(at(p, "path"), e);
            }
        }
        if let Err(e) = check_path(str_of(f, "device").unwrap_or("")) {
            self.error(at(p, "device"), e);
        }
        let format = set(f, "format");
        let Some(label) = set(f, "label") else {
            return;
        };
        let max = match format {
            None => {
                return self.error(at(p, "format"), "a filesystem label needs a format");
            }
            Some("ext4") => 16,
            Some("btrfs") => 256,
            Some("xfs") => 12,
            Some("swap") => 15,
            Some("vfat") => 11,
            Some(_) => return,
        };
        if label.len() > max {
            self.error(
                at(p, "label"),
                format!(
                    "filesystem label \"{label}\" is {} characters long; {} allows at most {max}",
                    label.len(),
                    format.unwrap_or_default()
                ),
            );
        }
    }
}
