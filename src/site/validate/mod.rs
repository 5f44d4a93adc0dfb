//! Semantic validation of a parsed site: every check runs, every problem is
//! collected with its key path, node and position, and nothing stops early, so
//! an operator fixes a site in one round instead of one error per run.
//!
//! The checks are grouped by the part of the site they read: `network`
//! (subnet, gateway, boot server, cluster endpoint and CIDRs), `nodes` (each
//! `[[node]]` plus uniqueness and the control-plane count) and `software`
//! (Flatcar, sysexts, Cilium, SSH, updates, sources).
mod network;
mod nodes;
mod software;
#[cfg(test)]
mod tests;

pub use software::WIREGUARD_OVERHEAD;

use std::net::Ipv4Addr;
use std::str::FromStr;

use super::diagnostic::{Diagnostic, Severity};
use super::schema::SiteFile;
use super::source::{KeyPath, Source};
use super::types::Ipv4Cidr;

/// Runs every check on `file`; diagnostics come back in file order.
pub fn validate(file: &SiteFile, src: &Source<'_>) -> Vec<Diagnostic> {
    let mut c = Checker {
        src,
        diagnostics: Vec::new(),
        known: Known::default(),
    };
    network::check_network(&mut c, file);
    network::check_boot_server(&mut c, &file.boot_server);
    nodes::check_nodes(&mut c, file);
    network::check_cluster(&mut c, &file.cluster);
    software::check_software(&mut c, file);
    let mut diagnostics = c.diagnostics;
    diagnostics.sort_by_key(|d| (d.line, d.column));
    diagnostics
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
}

impl Checker<'_, '_> {
    fn error(&mut self, path: &KeyPath, message: impl Into<String>) {
        let d = self.src.diagnostic(Severity::Error, path, message.into());
        self.diagnostics.push(d);
    }

    fn warn(&mut self, path: &KeyPath, message: impl Into<String>) {
        let d = self.src.diagnostic(Severity::Warning, path, message.into());
        self.diagnostics.push(d);
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

/// True for "X.Y.Z" where each part is a decimal number.
fn is_dotted_version(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// True for "vX.Y.Z".
fn is_v_version(s: &str) -> bool {
    s.strip_prefix('v').is_some_and(is_dotted_version)
}
