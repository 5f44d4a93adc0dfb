//! Ignition's own validation, applied to a rendered Ignition config.
//!
//! Upstream Butane runs Ignition's validation on everything it emits; so does
//! pxebuild, so that it never hands out a config `ignition-validate` (or
//! Ignition at boot) rejects. The rules are those of Ignition's config types
//! for specs 3.3/3.4 (what `ignition-validate` 2.14 applies to 3.3.0 plus the
//! 3.4.0 `arn:` sources): clean absolute paths, unit file syntax, filesystem
//! label lengths, duplicate keys (including a kernel argument that is both to
//! exist and not to exist), proxies, partitions, resources and their URLs.
//!
//! It works on the JSON value (camelCase keys), so the same pass serves the
//! Butane translator (which maps findings back to YAML key paths) and
//! `pxebuild build`'s post-translation check.
use std::collections::HashSet;

use serde_json::Value;

use super::storage::is_guid;
use super::{data_url, go_url, unit_file};

/// One finding; `path` is the JSON key path (`storage.files.0.path`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub path: String,
    pub message: String,
    pub warning: bool,
}

/// Validates an Ignition 3.3/3.4 config; returns errors and warnings in
/// config order.
pub fn check(config: &Value) -> Vec<Finding> {
    let version = config["ignition"]["version"].as_str().unwrap_or("");
    let mut v = Verifier {
        out: Vec::new(),
        arn_ok: version.starts_with("3.4"),
    };
    v.ignition(&config["ignition"]);
    v.storage(&config["storage"]);
    v.systemd(&config["systemd"]);
    v.passwd(&config["passwd"]);
    v.kernel_arguments(&config["kernelArguments"]);
    v.out
}

struct Verifier {
    out: Vec<Finding>,
    arn_ok: bool,
}

fn at(path: &str, key: impl std::fmt::Display) -> String {
    format!("{path}.{key}")
}

fn items(v: &Value) -> &[Value] {
    v.as_array().map_or(&[], Vec::as_slice)
}

fn str_of<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    v.get(key).and_then(Value::as_str)
}

/// A string that is absent or empty counts as unset (Ignition's NilOrEmpty).
fn set<'v>(v: &'v Value, key: &str) -> Option<&'v str> {
    str_of(v, key).filter(|s| !s.is_empty())
}

impl Verifier {
    fn error(&mut self, path: String, message: impl Into<String>) {
        self.out.push(Finding {
            path,
            message: message.into(),
            warning: false,
        });
    }

    fn warn(&mut self, path: String, message: impl Into<String>) {
        self.out.push(Finding {
            path,
            message: message.into(),
            warning: true,
        });
    }

    /// Reports every repeat of a key among `(path, key)` pairs.
    fn dups<'k>(&mut self, what: &str, keys: impl IntoIterator<Item = (String, &'k str)>) {
        let mut seen = HashSet::new();
        for (path, key) in keys {
            if !seen.insert(key) {
                self.error(path, format!("duplicate {what} \"{key}\""));
            }
        }
    }

    fn ignition(&mut self, ign: &Value) {
        let p = "ignition";
        let merge = items(&ign["config"]["merge"]);
        for (i, r) in merge.iter().enumerate() {
            self.resource(&at(p, format!("config.merge.{i}")), r, true);
        }
        self.dups(
            "merged config source",
            merge.iter().enumerate().filter_map(|(i, r)| {
                set(r, "source").map(|s| (at(p, format!("config.merge.{i}")), s))
            }),
        );
        if let Some(r) = ign["config"].get("replace") {
            self.resource(&at(p, "config.replace"), r, false);
        }
        let cas = items(&ign["security"]["tls"]["certificateAuthorities"]);
        let cp = at(p, "security.tls.certificateAuthorities");
        for (i, r) in cas.iter().enumerate() {
            self.resource(&at(&cp, i), r, true);
        }
        self.dups(
            "certificate authority source",
            cas.iter()
                .enumerate()
                .filter_map(|(i, r)| set(r, "source").map(|s| (at(&cp, i), s))),
        );
        self.proxy(&ign["proxy"]);
    }

    fn proxy(&mut self, proxy: &Value) {
        let p = "ignition.proxy";
        for key in ["httpProxy", "httpsProxy"] {
            let Some(url) = str_of(proxy, key) else {
                continue;
            };
            match parse_url(url).map(|parsed| parsed.scheme) {
                Ok(s) if s == "https" => {}
                Ok(s) if s == "http" && key == "httpsProxy" => self.warn(
                    at(p, key),
                    "plain-HTTP proxy for HTTPS resources: the traffic to the proxy is not encrypted",
                ),
                Ok(s) if s == "http" => {}
                Ok(_) => self.error(
                    at(p, key),
                    format!("proxy URL \"{url}\" must be http or https"),
                ),
                Err(e) => self.error(at(p, key), e),
            }
        }
        let no_proxy = items(&proxy["noProxy"]);
        self.dups(
            "no_proxy entry",
            no_proxy
                .iter()
                .enumerate()
                .filter_map(|(i, v)| v.as_str().map(|s| (at(&at(p, "noProxy"), i), s))),
        );
    }

    /// Checks one resource; `required` when it must have a source.
    fn resource(&mut self, p: &str, r: &Value, required: bool) {
        let source = set(r, "source");
        if required && source.is_none() {
            self.error(at(p, "source"), "source is required");
        }
        if let Some(c) = str_of(r, "compression").filter(|c| !c.is_empty() && *c != "gzip") {
            self.error(
                at(p, "compression"),
                format!("invalid compression \"{c}\" (only gzip)"),
            );
        }
        if let Some(hash) = str_of(&r["verification"], "hash") {
            let hp = at(p, "verification.hash");
            if str_of(r, "source").is_none() {
                self.error(hp.clone(), "verification needs a source");
            }
            if let Err(e) = check_hash(hash) {
                self.error(hp, e);
            }
        }
        if let Some(src) = source {
            if let Err(e) = self.check_url(src) {
                self.error(at(p, "source"), e);
            }
        }
        self.headers(p, r, source);
    }

    fn headers(&mut self, p: &str, r: &Value, source: Option<&str>) {
        let headers = items(&r["httpHeaders"]);
        if headers.is_empty() {
            return;
        }
        let hp = at(p, "httpHeaders");
        let http = source
            .and_then(|s| parse_url(s).ok())
            .is_some_and(|parsed| matches!(parsed.scheme.as_str(), "http" | "https"));
        if !http {
            self.error(
                hp.clone(),
                "http_headers are only allowed with an http or https source",
            );
        }
        for (i, h) in headers.iter().enumerate() {
            if str_of(h, "name").unwrap_or("").is_empty() {
                self.error(at(&at(&hp, i), "name"), "header name must not be empty");
            }
            if str_of(h, "value") == Some("") {
                self.error(
                    at(&at(&hp, i), "value"),
                    "header value must not be empty (leave it out instead)",
                );
            }
        }
        self.dups(
            "header",
            headers
                .iter()
                .enumerate()
                .filter_map(|(i, h)| str_of(h, "name").map(|n| (at(&hp, i), n))),
        );
    }

    /// The URL rules of Ignition: a known scheme, a data URL that decodes,
    /// an S3 `versionId` that is not empty.
    fn check_url(&self, url: &str) -> Result<(), String> {
        let parsed = parse_url(url)?;
        let scheme = parsed.scheme;
        match scheme.as_str() {
            "http" | "https" | "tftp" | "gs" => Ok(()),
            "s3" => check_version_id(parsed.raw_query),
            "arn" if self.arn_ok => check_version_id(parsed.raw_query),
            "data" => data_url::check(url).map_err(|e| format!("invalid data URL: {e}")),
            _ => Err(format!(
                "unsupported URL scheme \"{scheme}\" in \"{}\"",
                short(url)
            )),
        }
    }

    fn storage(&mut self, st: &Value) {
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

    fn systemd(&mut self, sd: &Value) {
        let units = items(&sd["units"]);
        for (i, u) in units.iter().enumerate() {
            let p = format!("systemd.units.{i}");
            let name = str_of(u, "name").unwrap_or("");
            if !UNIT_EXTS.contains(&extension(name)) {
                self.error(
                    at(&p, "name"),
                    format!("invalid unit name \"{name}\": unknown unit type"),
                );
            }
            if let Some(c) = str_of(u, "contents") {
                if let Err(e) = unit_file::parse(c) {
                    self.error(at(&p, "contents"), format!("invalid unit contents: {e}"));
                }
            }
            let dropins = items(&u["dropins"]);
            for (j, d) in dropins.iter().enumerate() {
                let dp = at(&p, format!("dropins.{j}"));
                if extension(str_of(d, "name").unwrap_or("")) != ".conf" {
                    self.error(at(&dp, "name"), "invalid dropin name: must end in .conf");
                }
                if let Some(c) = str_of(d, "contents") {
                    if let Err(e) = unit_file::parse(c) {
                        self.error(at(&dp, "contents"), format!("invalid dropin contents: {e}"));
                    }
                }
            }
            self.dups(
                "dropin",
                dropins.iter().enumerate().filter_map(|(j, d)| {
                    str_of(d, "name").map(|n| (at(&p, format!("dropins.{j}.name")), n))
                }),
            );
        }
        self.dups(
            "unit",
            units.iter().enumerate().filter_map(|(i, u)| {
                str_of(u, "name").map(|n| (format!("systemd.units.{i}.name"), n))
            }),
        );
    }

    fn passwd(&mut self, pw: &Value) {
        let users = items(&pw["users"]);
        for (i, u) in users.iter().enumerate() {
            let p = format!("passwd.users.{i}");
            for (key, what) in [("sshAuthorizedKeys", "SSH key"), ("groups", "group")] {
                let list = items(&u[key]);
                self.dups(
                    what,
                    list.iter()
                        .enumerate()
                        .filter_map(|(j, v)| v.as_str().map(|s| (at(&p, format!("{key}.{j}")), s))),
                );
            }
        }
        self.dups(
            "user",
            users.iter().enumerate().filter_map(|(i, u)| {
                str_of(u, "name").map(|n| (format!("passwd.users.{i}.name"), n))
            }),
        );
        let groups = items(&pw["groups"]);
        self.dups(
            "group",
            groups.iter().enumerate().filter_map(|(i, g)| {
                str_of(g, "name").map(|n| (format!("passwd.groups.{i}.name"), n))
            }),
        );
    }

    /// `shouldExist` and `shouldNotExist` share one namespace: an argument
    /// may appear once across both.
    fn kernel_arguments(&mut self, k: &Value) {
        let mut all = Vec::new();
        for key in ["shouldExist", "shouldNotExist"] {
            for (i, v) in items(&k[key]).iter().enumerate() {
                if let Some(s) = v.as_str() {
                    all.push((format!("kernelArguments.{key}.{i}"), s));
                }
            }
        }
        self.dups("kernel argument (in should_exist or should_not_exist)", all);
    }
}

/// Unit types Ignition accepts (by the name's extension).
const UNIT_EXTS: &[&str] = &[
    ".service",
    ".socket",
    ".device",
    ".mount",
    ".automount",
    ".swap",
    ".target",
    ".path",
    ".timer",
    ".snapshot",
    ".slice",
    ".scope",
];

/// The extension of the last path element, from its last dot (Go's `path.Ext`).
fn extension(name: &str) -> &str {
    let last = name.rsplit('/').next().unwrap_or(name);
    last.rfind('.').map_or("", |i| &last[i..])
}

/// A path must be non-empty, absolute and already in its clean form.
pub fn check_path(p: &str) -> Result<(), String> {
    if p.is_empty() {
        return Err("path is empty".into());
    }
    if !p.starts_with('/') {
        return Err(format!("path must be absolute, got \"{p}\""));
    }
    let c = clean(p);
    if c != p {
        return Err(format!(
            "path \"{p}\" is not fully simplified (write \"{c}\")"
        ));
    }
    Ok(())
}

/// Lexical clean of an absolute path (Go's `path.Clean`): no empty, `.` or
/// `..` elements and no trailing slash.
pub fn clean(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    format!("/{}", parts.join("/"))
}

fn check_hash(hash: &str) -> Result<(), String> {
    let (function, sum) = hash
        .split_once('-')
        .ok_or_else(|| format!("malformed hash \"{hash}\""))?;
    let len = match function {
        "sha512" => 128,
        "sha256" => 64,
        f => return Err(format!("unrecognised hash function \"{f}\"")),
    };
    if sum.len() != len {
        return Err(format!("{function} sum must be {len} hex digits"));
    }
    Ok(())
}

/// The URL as Ignition reads it (lower-cased scheme, raw query), or why
/// Ignition cannot parse it (Go's URL parser: [`go_url`]).
fn parse_url(url: &str) -> Result<go_url::Parsed<'_>, String> {
    go_url::parse(url).map_err(|why| format!("unable to parse URL \"{}\": {why}", short(url)))
}

/// An S3 object version, when the query names one, must not be empty; only
/// the first `versionId` counts, read as Go reads queries.
fn check_version_id(raw_query: &str) -> Result<(), String> {
    match go_url::query(raw_query).get("versionId") {
        Some(values) if values.first().is_none_or(String::is_empty) => {
            Err("versionId must not be empty".into())
        }
        _ => Ok(()),
    }
}

fn short(url: &str) -> String {
    if url.chars().count() > 60 {
        format!("{}…", url.chars().take(60).collect::<String>())
    } else {
        url.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn errors(v: Value) -> Vec<String> {
        check(&v)
            .into_iter()
            .map(|f| {
                format!(
                    "{}{}: {}",
                    if f.warning { "W " } else { "" },
                    f.path,
                    f.message
                )
            })
            .collect()
    }

    #[test]
    fn clean_paths() {
        assert_eq!(clean("/a/../b/"), "/b");
        assert_eq!(clean("//a//b/."), "/a/b");
        assert_eq!(clean("/.."), "/");
        assert!(check_path("/etc/x").is_ok());
        assert!(check_path("/").is_ok());
        assert_eq!(
            check_path("/etc/").unwrap_err(),
            "path \"/etc/\" is not fully simplified (write \"/etc\")"
        );
    }

    #[test]
    fn a_valid_config_has_no_findings() {
        let v = json!({"ignition": {"version": "3.3.0"}, "storage": {"files": [
            {"path": "/a", "mode": 420, "contents": {"source": "data:,x", "compression": ""}}]},
            "systemd": {"units": [{"name": "a.service", "contents": "[Service]\nExecStart=/bin/true\n"}]}});
        assert_eq!(errors(v), Vec::<String>::new());
    }

    #[test]
    fn findings_name_their_json_path() {
        let v = json!({"ignition": {"version": "3.3.0", "proxy": {"httpProxy": "socks5://p", "httpsProxy": "http://p"}},
            "storage": {
                "files": [{"path": "/a//b", "mode": 2541, "contents": {"source": "data:,%zz"}}],
                "links": [{"path": "/l", "target": "/d", "hard": true}],
                "directories": [{"path": "/d"}],
                "disks": [{"device": "/dev/sda", "partitions": [{"sizeMiB": 5}]}],
                "filesystems": [{"device": "/dev/sdb", "format": "vfat", "label": "TWELVE_CHARS"}]},
            "systemd": {"units": [{"name": "a.service", "contents": "[Service]\njunk\n",
                "dropins": [{"name": "x.conf", "contents": "[Service"}]}]},
            "kernelArguments": {"shouldExist": ["quiet"], "shouldNotExist": ["quiet"]}});
        assert_eq!(
            errors(v),
            [
                "ignition.proxy.httpProxy: proxy URL \"socks5://p\" must be http or https",
                "W ignition.proxy.httpsProxy: plain-HTTP proxy for HTTPS resources: the traffic to the proxy is not encrypted",
                "storage.files.0.path: path \"/a//b\" is not fully simplified (write \"/a/b\")",
                "W storage.files.0.mode: mode 0o4755 has setuid/setgid/sticky bits, which Ignition before spec 3.6.0 does not apply",
                "storage.files.0.contents.source: invalid data URL: bad percent escape %zz",
                "storage.links.0: hard link target \"/d\" is a directory",
                "storage.disks.0.partitions.0: a partition needs a number (1 or more) or a label",
                "storage.filesystems.0.label: filesystem label \"TWELVE_CHARS\" is 12 characters long; vfat allows at most 11",
                "systemd.units.0.contents: invalid unit contents: line 2: \"junk\" is neither a section header, a comment nor a key=value setting",
                "systemd.units.0.dropins.0.contents: invalid dropin contents: line 1: section header without a closing \"]\"",
                "kernelArguments.shouldNotExist.0: duplicate kernel argument (in should_exist or should_not_exist) \"quiet\"",
            ]
        );
    }

    #[test]
    fn urls() {
        let v = Verifier {
            out: Vec::new(),
            arn_ok: false,
        };
        assert!(v.check_url("https://h/a%20b?x=%zz").is_ok());
        assert!(v.check_url("https://h/a%zz").is_err());
        assert!(v.check_url("s3://b/k?versionId=").is_err());
        assert!(v.check_url("s3://b/k?versionId=1").is_ok());
        assert!(v.check_url("arn:aws:s3:::b/k").is_err());
        assert!(v.check_url("ftp://h/").is_err());
        assert!(v.check_url("/relative").is_err());
    }
}
