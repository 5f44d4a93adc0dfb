//! Ignition's rules for `systemd` units (names, unit file syntax, dropins),
//! `passwd` users and groups (no duplicates) and `kernelArguments` (one
//! namespace for both lists).
use serde_json::Value;

use super::{at, items, str_of, Verifier};
use crate::butane::unit_file;

impl Verifier {
    pub(super) fn systemd(&mut self, sd: &Value) {
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

    pub(super) fn passwd(&mut self, pw: &Value) {
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
    pub(super) fn kernel_arguments(&mut self, k: &Value) {
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
