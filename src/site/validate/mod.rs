//! Semantic validation of a parsed site: every check runs, every problem is
//! collected with its key path, node and position, and nothing stops early, so
//! an operator fixes a site in one round instead of one error per run.
//!
//! The checks are grouped by the part of the site they read: `network`
//! (subnet, gateway, boot server, cluster endpoint and CIDRs), `nodes` (each
//! `[[node]]` plus uniqueness and the control-plane count) and `software`
//! (Flatcar, sysexts, Cilium, SSH, updates, sources).
mod charts;
mod network;
mod nodes;
mod software;
mod support;
#[cfg(test)]
mod tests;

use std::net::Ipv4Addr;
use std::str::FromStr;

use super::diagnostic::{Diagnostic, Severity};
use super::schema::RawSiteFile;
use super::source::{KeyPath, Seg, Source};
use super::types::Ipv4Cidr;

/// Runs every check on `file`; diagnostics come back in file order. Nothing
/// is reported inside the tables of the `unsure` keys (see `Checker::unsure`).
pub(crate) fn validate(
    file: &RawSiteFile,
    src: &Source<'_>,
    unsure: &[KeyPath],
) -> Vec<Diagnostic> {
    let mut c = Checker {
        src,
        diagnostics: Vec::new(),
        known: Known::default(),
        unsure: unsure.iter().map(|k| scope(k).to_vec()).collect(),
    };
    network::check_network(&mut c, file);
    network::check_boot_server(&mut c, &file.boot_server);
    nodes::check_nodes(&mut c, file);
    network::check_cluster(&mut c, &file.cluster);
    software::check_software(&mut c, file);
    charts::check_charts(&mut c, file);
    let mut diagnostics = c.diagnostics;
    diagnostics.sort_by_key(|d| (d.line, d.column));
    diagnostics
}

/// The release-support warnings (see `site::versions`) for day `today`:
/// a Kubernetes minor past its end of life, a Cilium whose tested range
/// leaves it out. Apart from `validate` because they depend on the date.
pub(crate) fn support(
    file: &RawSiteFile,
    src: &Source<'_>,
    unsure: &[KeyPath],
    today: i64,
) -> Vec<Diagnostic> {
    let mut c = Checker {
        src,
        diagnostics: Vec::new(),
        known: Known::default(),
        unsure: unsure.iter().map(|k| scope(k).to_vec()).collect(),
    };
    support::check_support(&mut c, file, today);
    c.diagnostics
}

/// Values already parsed by one check that later checks compare against.
#[derive(Default)]
struct Known {
    subnet: Option<Ipv4Cidr>,
    gateway: Option<Ipv4Addr>,
    boot_server: Option<Ipv4Addr>,
    /// (node index, address) of every node whose IP parsed.
    node_ips: Vec<(usize, Ipv4Addr)>,
}

/// Collects diagnostics and knows how to place them in the source.
struct Checker<'s, 'a> {
    src: &'s Source<'a>,
    diagnostics: Vec<Diagnostic>,
    known: Known,
    /// Scopes (see `scope`) that parsing repaired.
    unsure: Vec<Vec<Seg>>,
}

impl Checker<'_, '_> {
    fn error(&mut self, path: &KeyPath, message: impl Into<String>) {
        if !self.unsure(path) {
            let d = self.src.diagnostic(Severity::Error, path, message.into());
            self.diagnostics.push(d);
        }
    }

    fn warn(&mut self, path: &KeyPath, message: impl Into<String>) {
        if !self.unsure(path) {
            let d = self.src.diagnostic(Severity::Warning, path, message.into());
            self.diagnostics.push(d);
        }
    }

    /// True when `path` is in a scope that parsing repaired, or holds one
    /// (`node` holds `node[2]`). There a value may be a stand-in or the
    /// default of a dropped key, so a check would report a consequence of
    /// the parse problem already reported, not a problem of the file; the
    /// next run, on the fixed file, checks it for real.
    fn unsure(&self, path: &KeyPath) -> bool {
        let here = scope(path);
        self.unsure
            .iter()
            .any(|u| u.starts_with(here) || here.starts_with(u))
    }

    /// The operator-facing name of a path, e.g. `node[0] (cp1)`.
    fn label(&self, path: &KeyPath) -> String {
        self.src.label(path)
    }

    /// Parses `value` as `T`, reporting `"value" <why>` at `path` on failure.
    fn parse<T: FromStr<Err = String>>(&mut self, path: &KeyPath, value: &str) -> Option<T> {
        match value.parse() {
            Ok(v) => Some(v),
            Err(why) => {
                self.error(path, format!("{value:?} {why}"));
                None
            }
        }
    }

    /// Parses an IPv4 address, reporting it at `path` on failure.
    fn ipv4(&mut self, path: &KeyPath, value: &str) -> Option<Ipv4Addr> {
        match value.parse() {
            Ok(ip) => Some(ip),
            Err(_) => {
                self.error(path, format!("{value:?} is not an IPv4 address"));
                None
            }
        }
    }

    /// Checks that `value` is one of `allowed`; returns whether it is.
    fn one_of(&mut self, path: &KeyPath, value: &str, allowed: &[&str]) -> bool {
        if allowed.contains(&value) {
            return true;
        }
        let want: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
        self.error(path, format!("{value:?} is not one of {}", want.join(", ")));
        false
    }
}

/// The part of `path` a parse problem puts in doubt: its top-level table,
/// or its `[[node]]` (`node[2].labels.x` → `node[2]`).
fn scope(path: &KeyPath) -> &[Seg] {
    let len = match path.0.as_slice() {
        [Seg::Key(_), Seg::Index(_), ..] => 2,
        [] => 0,
        _ => 1,
    };
    &path.0[..len]
}

/// How a version key spells the `v` before "X.Y.Z".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VPrefix {
    /// "v1.33.2": Kubernetes and the Cilium CLI tag their releases so.
    Required,
    /// "1.17.4": Flatcar, Cilium and Helm charts do not.
    Forbidden,
    /// containerd's sysext is found with and without it.
    Optional,
}

/// Checks a release version "X.Y.Z" behind the `v` that `prefix` asks for:
/// three decimal numbers without leading zeros (semver's rule) that fit in
/// a u32. Release servers publish no other spelling, so anything else
/// would only fail later, as an HTTP 404 in the middle of a build. `Err`
/// names the part at fault, or is empty when the shape itself is wrong.
fn check_version(s: &str, prefix: VPrefix) -> Result<(), String> {
    let digits = match (prefix, s.strip_prefix('v')) {
        (VPrefix::Required | VPrefix::Optional, Some(rest)) => rest,
        (VPrefix::Required, None) | (VPrefix::Forbidden, Some(_)) => return Err(String::new()),
        (VPrefix::Forbidden | VPrefix::Optional, None) => s,
    };
    let parts: Vec<&str> = digits.split('.').collect();
    let numeric = |p: &&str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if parts.len() != 3 || !parts.iter().all(numeric) {
        return Err(String::new());
    }
    parts.into_iter().try_for_each(check_version_number)
}

/// Checks a Flatcar release version ("4593.2.5") as `flatcar.version` is
/// checked, for versions that come from elsewhere (a channel's
/// `current/version.txt`, a previous build's record). `Err` says why not.
pub(crate) fn check_flatcar_version(s: &str) -> Result<(), String> {
    check_version(s, VPrefix::Forbidden).map_err(|fault| {
        let want = "not a Flatcar release (want NNNN.N.N, e.g. \"4593.2.5\")";
        match fault.is_empty() {
            true => want.to_string(),
            false => format!("{want}: {fault}"),
        }
    })
}

/// One all-digit part of a version: no leading zero, at most `u32::MAX`.
fn check_version_number(part: &str) -> Result<(), String> {
    if part.len() > 1 && part.starts_with('0') {
        return Err(format!("{part:?} has a leading zero"));
    }
    match part.parse::<u32>() {
        Ok(_) => Ok(()),
        Err(_) => Err(format!("{part} is larger than {}", u32::MAX)),
    }
}

impl Checker<'_, '_> {
    /// Reports `"value" is not <what>` at `path` unless `value` is a release
    /// version (see `check_version`), adding the part at fault when the
    /// shape is right but a number is not; returns whether it is one.
    fn version(&mut self, path: &KeyPath, value: &str, prefix: VPrefix, what: &str) -> bool {
        let Err(fault) = check_version(value, prefix) else {
            return true;
        };
        let detail = if fault.is_empty() {
            String::new()
        } else {
            format!(": {fault}")
        };
        self.error(path, format!("{value:?} is not {what}{detail}"));
        false
    }
}
