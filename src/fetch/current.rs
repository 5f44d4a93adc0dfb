//! Resolving a channel's `current` release to a pinned version: read
//! `current/version.txt` (shell-style `KEY=value`) and take
//! `FLATCAR_VERSION_ID`, as Flatcar tells distributors to.
use anyhow::{anyhow, Result};

use super::http::{Client, Policy};
use super::sources::{flatcar_url, Sources};
use crate::site::Site;

/// The version `current` of the site's channel and arch points at now.
pub fn resolve_current(site: &Site) -> Result<String> {
    let fc = &site.file.flatcar;
    let sources = Sources::from_site(site)?;
    let url = flatcar_url(&fc.channel, &fc.arch, "current", "version.txt");
    let located = sources.locate(&url)?;
    let bytes = Client::new(Policy::from_env())
        .get_small(&located)?
        .ok_or_else(|| anyhow!("{located}: not found (HTTP 404)"))?;
    parse_version_txt(&String::from_utf8_lossy(&bytes))
        .ok_or_else(|| anyhow!("{located} names no FLATCAR_VERSION_ID"))
}

/// `FLATCAR_VERSION_ID` (else `FLATCAR_VERSION`) from a version.txt.
pub fn parse_version_txt(text: &str) -> Option<String> {
    let value = |key: &str| {
        text.lines().find_map(|line| {
            let (k, v) = line.trim().split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches(['"', '\'']).to_string())
        })
    };
    value("FLATCAR_VERSION_ID")
        .or_else(|| value("FLATCAR_VERSION"))
        .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_digit() || c == '.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_version_id() {
        let text = "FLATCAR_BUILD=4593\nFLATCAR_VERSION=4593.2.5\nFLATCAR_VERSION_ID=4593.2.5\n\
                    FLATCAR_BUILD_ID=\"2025-08-01-0000\"\n";
        assert_eq!(parse_version_txt(text).as_deref(), Some("4593.2.5"));
        assert_eq!(
            parse_version_txt("FLATCAR_VERSION=1.2.3"),
            Some("1.2.3".into())
        );
        assert_eq!(parse_version_txt("FLATCAR_VERSION_ID=$(rm -rf /)"), None);
    }
}
