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
//! `pxebuild build`'s post-translation check. This module holds the walk, the
//! `ignition` section and the shared rules (paths, URLs, hashes); [`storage`]
//! checks files, links, disks and filesystems, [`units`] systemd units, users
//! and kernel arguments.
use std::collections::HashSet;

use serde_json::Value;

use super::{data_url, go_url};

mod storage;
mod units;

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
