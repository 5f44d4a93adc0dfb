//! Resolving a channel's `current` release to a pinned version before a build
//! plans anything: read `<release base>/current/version.txt` (shell-style
//! `KEY=value`, through the mirror like every source) and take
//! `FLATCAR_VERSION_ID`, as Flatcar tells distributors to. The build then uses
//! a copy of the site whose `flatcar.version` is that pinned release, so every
//! step key, URL and template sees a pinned version, and dist/manifest.json
//! records both (`"flatcar"`). `--offline` never asks the network: it reuses
//! what the previous build of the same output resolved `current` to.
use std::borrow::Cow;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

use super::http::{Client, Policy};
use super::sources::{flatcar_url, Sources};
use crate::manifest::{FlatcarRecord, Manifest};
use crate::site::validate::check_flatcar_version;
use crate::site::Site;

/// The value of `flatcar.version` that asks for the channel's newest release.
pub(crate) const CURRENT: &str = "current";

/// A site with its Flatcar release pinned, and how it was pinned.
pub(crate) struct Pinned<'a> {
    /// The site itself when it pins a version, else a copy pinned to `current`.
    pub site: Cow<'a, Site>,
    /// What dist/manifest.json records.
    pub record: FlatcarRecord,
    /// `current/version.txt` as fetched (canonical URL and bytes), for
    /// `pxebuild mirror`; `None` when nothing was fetched.
    pub version_txt: Option<(String, Vec<u8>)>,
}

/// Pins `site`'s Flatcar version. `previous` is the dist/ a build replaces:
/// offline, its manifest's record of `current` is the only source.
pub(crate) fn pin<'a>(
    site: &'a Site,
    previous: Option<&Path>,
    offline: bool,
) -> Result<Pinned<'a>> {
    let fc = &site.file.flatcar;
    let record = |version: &str| FlatcarRecord {
        channel: fc.channel.clone(),
        arch: fc.arch.clone(),
        version: version.to_string(),
        requested: fc.version.clone(),
    };
    if fc.version != CURRENT {
        return Ok(Pinned {
            site: Cow::Borrowed(site),
            record: record(&fc.version),
            version_txt: None,
        });
    }
    let (version, version_txt) = if offline {
        (recorded(site, previous)?, None)
    } else {
        let (version, url, bytes) = fetch_current(site)?;
        crate::info!("flatcar: {} current is {version}", fc.channel);
        (version, Some((url, bytes)))
    };
    let mut pinned = site.clone();
    pinned.file.flatcar.version = version.clone();
    Ok(Pinned {
        site: Cow::Owned(pinned),
        record: record(&version),
        version_txt,
    })
}

/// The version `current` of the site's channel and arch points at now.
pub fn resolve_current(site: &Site) -> Result<String> {
    fetch_current(site).map(|(version, _, _)| version)
}

/// The canonical URL of the channel's `current/version.txt`.
pub(crate) fn version_txt_url(site: &Site) -> String {
    let fc = &site.file.flatcar;
    flatcar_url(&fc.channel, &fc.arch, CURRENT, "version.txt")
}

/// Fetches `current/version.txt`: the version, its canonical URL, its bytes.
fn fetch_current(site: &Site) -> Result<(String, String, Vec<u8>)> {
    let url = version_txt_url(site);
    let located = Sources::from_site(site)?.locate(&url)?;
    let context = || format!("resolving flatcar.version = \"current\" through {located}");
    let bytes = Client::new(Policy::from_env()?)
        .get_small(&located)
        .map_err(|e| match super::http::unreachable(&e) {
            // Said here because this error ends the build on its own.
            Some(_) => anyhow!(
                "{:#}\n{}",
                e.context(context()),
                super::http::NETWORK_ADVICE
            ),
            None => e.context(context()),
        })?
        .ok_or_else(|| {
            anyhow!(
                "{located}: not found (HTTP 404); check flatcar.channel and, with a mirror, \
                 that it holds current/version.txt (`pxebuild mirror` writes it), or pin \
                 flatcar.version"
            )
        })
        .with_context(context)?;
    let version = parse_version_txt(&String::from_utf8_lossy(&bytes))
        .ok_or_else(|| anyhow!("{located} names no FLATCAR_VERSION_ID"))?;
    // Held to the rule a pinned flatcar.version meets: it keys every step
    // and goes into every download URL.
    check_flatcar_version(&version).map_err(|why| {
        anyhow!("{located}: FLATCAR_VERSION_ID {version:?} is {why}; pin flatcar.version")
    })?;
    Ok((version, url, bytes))
}

/// Offline: what the previous build of this output resolved `current` to.
pub(crate) fn recorded(site: &Site, previous: Option<&Path>) -> Result<String> {
    let fc = &site.file.flatcar;
    let record = previous
        .filter(|dist| dist.join(crate::manifest::FILE_NAME).is_file())
        .map(Manifest::load)
        .transpose()?
        .and_then(|m| m.flatcar)
        .filter(|r| r.requested == CURRENT && r.channel == fc.channel && r.arch == fc.arch);
    let Some(record) = record else {
        bail!(
            "--offline cannot resolve flatcar.version = \"current\": no previous build of \
             this output recorded what the {} channel's current release was; pin \
             flatcar.version in site.toml (e.g. the version a connected host's build \
             printed), or build once without --offline",
            fc.channel
        );
    };
    check_flatcar_version(&record.version).map_err(|why| {
        anyhow!(
            "{}: the recorded flatcar version {:?} is {why}; pin flatcar.version in site.toml",
            previous
                .unwrap_or(Path::new("."))
                .join(crate::manifest::FILE_NAME)
                .display(),
            record.version
        )
    })?;
    crate::info!(
        "flatcar: {} current is {} (recorded by the previous build; --offline)",
        fc.channel,
        record.version
    );
    Ok(record.version)
}

/// `FLATCAR_VERSION_ID` (else `FLATCAR_VERSION`) from a version.txt, as
/// written there (empty: none); the caller holds it to the version rule, so
/// a bad one is named in the error.
pub(crate) fn parse_version_txt(text: &str) -> Option<String> {
    let value = |key: &str| {
        text.lines().find_map(|line| {
            let (k, v) = line.trim().split_once('=')?;
            (k.trim() == key).then(|| v.trim().trim_matches(['"', '\'']).to_string())
        })
    };
    value("FLATCAR_VERSION_ID")
        .or_else(|| value("FLATCAR_VERSION"))
        .filter(|v| !v.is_empty())
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
        assert_eq!(parse_version_txt("FLATCAR_VERSION_ID="), None);
        // Read as written: the version rule refuses it, naming it.
        let odd = parse_version_txt("FLATCAR_VERSION_ID=../../x").unwrap();
        assert_eq!(odd, "../../x");
        assert!(check_flatcar_version(&odd).is_err());
    }

    fn site(version: &str) -> (tempfile::TempDir, Site) {
        let dir = tempfile::tempdir().unwrap();
        let text = include_str!("../../site.toml").replace(
            "version = \"4593.2.5\"",
            &format!("version = \"{version}\""),
        );
        let site = Site::from_text(&text, &dir.path().join("site.toml")).unwrap();
        (dir, site)
    }

    #[test]
    fn a_pinned_version_is_used_as_is_and_recorded() {
        let (_dir, site) = site("4593.2.5");
        let pinned = pin(&site, None, true).unwrap();
        assert!(matches!(pinned.site, Cow::Borrowed(_)));
        assert_eq!(pinned.record.version, "4593.2.5");
        assert_eq!(pinned.record.requested, "4593.2.5");
    }

    #[test]
    fn offline_current_takes_the_previous_record_of_the_same_channel() {
        let (dir, site) = site(CURRENT);
        let dist = dir.path().join("dist");
        let err = pin(&site, Some(&dist), true).err().expect("no record");
        assert!(
            format!("{err:#}").contains("pin flatcar.version"),
            "{err:#}"
        );
        std::fs::create_dir(&dist).unwrap();
        let mut manifest = Manifest {
            format: crate::manifest::FORMAT,
            inputs: "00".into(),
            files: vec![],
            nodes: vec![],
            access: vec![],
            images: Vec::new(),
            flatcar: Some(FlatcarRecord {
                channel: "beta".into(),
                arch: "amd64".into(),
                version: "4600.1.0".into(),
                requested: CURRENT.into(),
            }),
        };
        std::fs::write(dist.join("manifest.json"), manifest.to_json()).unwrap();
        assert!(pin(&site, Some(&dist), true).is_err(), "another channel's");
        manifest.flatcar.as_mut().unwrap().channel = "stable".into();
        std::fs::write(dist.join("manifest.json"), manifest.to_json()).unwrap();
        let pinned = pin(&site, Some(&dist), true).unwrap();
        assert_eq!(pinned.site.file.flatcar.version, "4600.1.0");
        assert_eq!(pinned.record.requested, CURRENT);
        assert!(pinned.version_txt.is_none());
        // A record edited by hand is held to the version rule.
        manifest.flatcar.as_mut().unwrap().version = "4600.1".into();
        std::fs::write(dist.join("manifest.json"), manifest.to_json()).unwrap();
        let err = pin(&site, Some(&dist), true).err().expect("bad record");
        let text = format!("{err:#}");
        assert!(
            text.contains(
                "manifest.json: the recorded flatcar version \"4600.1\" is not a Flatcar release"
            ),
            "{text}"
        );
    }
}
