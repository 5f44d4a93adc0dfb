//! The site model: `site.toml` parsed strictly, then validated as a whole.
//!
//! `Site::parse` is pure (text in, model or diagnostics out); `Site::load` adds
//! the file system. Nothing downstream sees an unvalidated site: every error
//! (with file, line, column and key path) stops the command before any work,
//! and warnings travel with the `Site` so each command can print them and
//! honour `--strict`.
pub(crate) mod diagnostic;
pub mod images;
pub(crate) mod schema;
pub(crate) mod source;
mod strict;
mod typed;
pub(crate) mod types;
pub(crate) mod validate;
pub(crate) mod versions;
mod wording;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::error::BadInput;
pub use diagnostic::{Diagnostic, Severity};
pub use schema::SiteFile;
use source::Source;

/// A parsed and validated site, plus where it lives.
#[derive(Debug, Clone)]
pub struct Site {
    pub file: SiteFile,
    /// The directory holding site.toml (templates/, payload/, secrets/ are beside it).
    pub dir: PathBuf,
    /// Path of the site file as given.
    pub path: PathBuf,
    /// Problems worth telling the operator that do not stop the work (unless
    /// `--strict`), in file order.
    pub warnings: Vec<Diagnostic>,
}

impl Site {
    /// Parses and validates site text; `origin` names the file in messages.
    /// Fails with every error (and warning) found; warnings of a valid site
    /// are dropped here, use `Site::from_text` to keep them.
    pub fn parse(text: &str, origin: &str) -> Result<SiteFile> {
        analyse(text, origin, versions::today())
            .map(|(file, _warnings)| file)
            .map_err(|diags| invalid(origin, &diags))
    }

    /// A validated `Site` from text, as if read from `path`.
    pub fn from_text(text: &str, path: &Path) -> Result<Site> {
        Site::from_text_on(text, path, versions::today())
    }

    /// `from_text` as if run on day `today` (days since 1970-01-01): the date
    /// the end-of-life check of the pinned releases compares against.
    pub fn from_text_on(text: &str, path: &Path, today: i64) -> Result<Site> {
        let origin = path.display().to_string();
        Site::diagnose_on(text, path, today).map_err(|d| invalid(&origin, &d))
    }

    /// Like [`Site::from_text`], but a site with errors gives back every
    /// diagnostic (errors and warnings) as values, for `check --format json`.
    pub fn diagnose(text: &str, path: &Path) -> std::result::Result<Site, Vec<Diagnostic>> {
        Site::diagnose_on(text, path, versions::today())
    }

    /// `diagnose` as if run on day `today` (see [`Site::from_text_on`]).
    fn diagnose_on(
        text: &str,
        path: &Path,
        today: i64,
    ) -> std::result::Result<Site, Vec<Diagnostic>> {
        let origin = path.display().to_string();
        let (file, warnings) = analyse(text, &origin, today)?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(Site {
            file,
            dir,
            path: path.to_path_buf(),
            warnings,
        })
    }

    /// Reads, parses and validates the site file at `path`.
    pub fn load(path: &Path) -> Result<Site> {
        Site::from_text(&Site::read(path)?, path)
    }

    /// The text of the site file at `path`; a file that cannot be read is bad input.
    pub fn read(path: &Path) -> Result<String> {
        std::fs::read_to_string(path)
            .with_context(|| format!("reading site file {}", path.display()))
            .map_err(|e| BadInput::new(format!("{e:#}")))
    }

    /// Prints every warning to stderr, one per line.
    pub fn print_warnings(&self) {
        for w in &self.warnings {
            eprintln!("{w}");
        }
    }

    /// Fails (bad input) when `strict` and there are warnings.
    pub fn check_strict(&self, strict: bool) -> Result<()> {
        if strict && !self.warnings.is_empty() {
            let n = diagnostic::count(self.warnings.len(), "warning");
            return Err(BadInput::new(format!(
                "{}: {n}, and --strict makes warnings fatal",
                self.path.display()
            )));
        }
        Ok(())
    }

    /// One line for humans: "site rack1: 5 nodes (3 control-plane, 2 worker), ...".
    pub fn summary(&self) -> String {
        let f = &self.file;
        let cps = self.control_planes().count();
        format!(
            "site {}: {} nodes ({cps} control-plane, {} worker), Kubernetes {}, Flatcar {} {}",
            f.cluster.name,
            f.nodes.len(),
            f.nodes.len() - cps,
            f.cluster.kubernetes_version,
            f.flatcar.channel,
            f.flatcar.version
        )
    }

    pub fn templates_dir(&self) -> PathBuf {
        self.dir.join("templates")
    }
    pub fn payload_dir(&self) -> PathBuf {
        self.dir.join("payload")
    }
    pub fn secrets_dir(&self) -> PathBuf {
        self.dir.join("secrets")
    }
    pub fn cache_dir(&self) -> PathBuf {
        std::env::var_os("PXEBUILD_CACHE")
            .map(PathBuf::from)
            .unwrap_or_else(|| self.dir.join(".pxebuild").join("cache"))
    }
    /// The boot server's HTTP base URL as nodes see it, e.g. "http://10.0.0.2:8080".
    pub fn http_base(&self) -> String {
        let bs = &self.file.boot_server;
        format!("http://{}:{}", bs.address, bs.http_port)
    }
    pub fn control_planes(&self) -> impl Iterator<Item = &schema::Node> {
        self.file.nodes.iter().filter(|n| n.is_control_plane())
    }
    pub fn workers(&self) -> impl Iterator<Item = &schema::Node> {
        self.file.nodes.iter().filter(|n| !n.is_control_plane())
    }
}

/// Strict parse, then validation (the release-support checks against day
/// `today`). `Ok` holds the model and its warnings; `Err` holds every
/// diagnostic when any is an error. The content checks run even after parse
/// problems (on the repaired model, outside the repaired tables), so one run
/// reports both kinds.
fn analyse(
    text: &str,
    origin: &str,
    today: i64,
) -> Result<(SiteFile, Vec<Diagnostic>), Vec<Diagnostic>> {
    let src = Source::new(text, origin);
    let strict::Parsed {
        file,
        problems,
        unsure,
    } = strict::parse(text, &src)?;
    let mut diagnostics = validate::validate(&file, &src, &unsure);
    diagnostics.extend(validate::support(&file, &src, &unsure, today));
    diagnostics.sort_by_key(|d| (d.line, d.column));
    if !problems.is_empty() {
        diagnostics.extend(problems);
        diagnostics.sort_by_key(|d| (d.line, d.column));
    }
    if diagnostics.iter().any(Diagnostic::is_error) {
        return Err(diagnostics);
    }
    let file = typed::lift(file, &src)?;
    Ok((file, diagnostics))
}

/// The bad-input error for a site with errors: a count, then every diagnostic.
fn invalid(origin: &str, diagnostics: &[Diagnostic]) -> anyhow::Error {
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    let mut counts = diagnostic::count(errors, "error");
    if warnings > 0 {
        counts.push_str(&format!(", {}", diagnostic::count(warnings, "warning")));
    }
    let body = diagnostic::render(diagnostics);
    BadInput::new(format!("{origin} is not valid ({counts}):\n{body}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    const EXAMPLE: &str = include_str!("../../site.toml");
    /// 2026-12-07: the day the example's pins were checked against the table,
    /// so these tests do not depend on the clock.
    const BUILD_DAY: i64 = 20_794;

    #[test]
    fn example_site_is_valid_with_one_placeholder_warning() {
        let site = Site::from_text_on(EXAMPLE, Path::new("conf/site.toml"), BUILD_DAY).unwrap();
        assert_eq!(site.dir, Path::new("conf"));
        assert_eq!(site.warnings.len(), 1);
        assert!(site.warnings[0].message.contains("placeholder"));
        assert!(site.check_strict(false).is_ok());
        let err = site.check_strict(true).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), crate::error::EXIT_BAD_INPUT);
        assert_eq!(
            site.summary(),
            "site rack1: 5 nodes (3 control-plane, 2 worker), Kubernetes v1.35.9, Flatcar stable 4593.2.5"
        );
    }

    #[test]
    fn typed_accessors_read_validated_values() {
        let site = Site::from_text_on(EXAMPLE, Path::new("site.toml"), BUILD_DAY).unwrap();
        let cp1 = &site.file.nodes[0];
        assert_eq!(
            crate::layout::pxelinux_mac_name(cp1.mac),
            "01-52-54-00-20-00-11"
        );
        assert_eq!(cp1.ip, Ipv4Addr::new(10, 20, 0, 11));
        assert!(cp1.is_control_plane());
        assert_eq!(site.workers().count(), 2);
        assert_eq!(
            site.file.cluster.endpoint.get().to_string(),
            "10.20.0.10:6443"
        );
        assert!(site.file.network.subnet.get().contains(cp1.ip));
        assert_eq!(
            site.file.cluster.bootstrap_token_ttl.get().as_secs(),
            24 * 3600
        );
    }

    #[test]
    fn macs_reach_the_model_in_lower_case_colon_form() {
        let text = EXAMPLE
            .replace("\"52:54:00:20:00:11\"", "\"52-54-00-AB-00-11\"")
            .replace("\"52:54:00:20:00:12\"", "\"525400AB0012\"")
            .replace("\"52:54:00:20:00:13\"", "\"52:54:00:AB:00:13\"");
        let site = Site::from_text_on(&text, Path::new("site.toml"), BUILD_DAY).unwrap();
        let macs: Vec<String> = site.file.nodes.iter().map(|n| n.mac.to_string()).collect();
        assert_eq!(
            macs,
            [
                "52:54:00:ab:00:11",
                "52:54:00:ab:00:12",
                "52:54:00:ab:00:13",
                "52:54:00:20:00:21",
                "52:54:00:20:00:22"
            ]
        );
        let file = Site::parse(&text, "site.toml").unwrap();
        assert_eq!(file.nodes[1].mac.to_string(), "52:54:00:ab:00:12");
    }

    #[test]
    fn parse_and_content_problems_come_in_one_report() {
        let text = EXAMPLE
            .replacen("mac = \"52:54:00:20:00:12\"\n", "", 1)
            .replacen("ip = \"10.20.0.21\"", "ip = 21", 1)
            .replace("gateway = \"10.20.0.1\"", "gateway = \"10.20.0.0\"");
        let err = Site::from_text_on(&text, Path::new("site.toml"), BUILD_DAY).unwrap_err();
        let text = err.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "site.toml is not valid (3 errors, 1 warning):");
        assert!(lines[1].starts_with("site.toml:18:11: error: network.gateway: 10.20.0.0 is"));
        assert!(lines[2].starts_with("site.toml:46:3: warning: ssh.authorized_keys[0]"));
        assert_eq!(
            lines[3],
            "site.toml:74:1: error: node[1] (cp2): missing field `mac`"
        );
        assert!(
            lines[4].starts_with("site.toml:92:6: error: node[3] (worker1).ip: expected a string")
        );
    }

    /// Errors of the example with line `i` replaced by `line`.
    fn errors_with_line(i: usize, line: &str) -> Vec<String> {
        let mut lines: Vec<&str> = EXAMPLE.lines().collect();
        lines[i] = line;
        match analyse(&lines.join("\n"), "site.toml", BUILD_DAY) {
            Ok(_) => Vec::new(),
            Err(diags) => diags
                .iter()
                .filter(|d| d.is_error())
                .map(ToString::to_string)
                .collect(),
        }
    }

    #[test]
    fn one_broken_line_is_at_most_one_problem() {
        // Every key of the example dropped, or given a value of another type:
        // never a panic, and no follow-on error from a stand-in or a default.
        for (i, line) in EXAMPLE.lines().enumerate() {
            let Some((key, value)) = line.split_once(" = ").filter(|_| !line.starts_with('#'))
            else {
                continue;
            };
            let other = if value.starts_with('"') || value.starts_with('[') {
                "1"
            } else {
                "\"1\""
            };
            let dropped = errors_with_line(i, "");
            assert!(dropped.len() <= 1, "without {key}: {dropped:#?}");
            let retyped = errors_with_line(i, &format!("{key} = {other}"));
            assert_eq!(retyped.len(), 1, "{key} = {other}: {retyped:#?}");
        }
    }

    #[test]
    fn invalid_site_is_bad_input_listing_every_problem() {
        let text = EXAMPLE
            .replace("\"52:54:00:20:00:13\"", "\"52:54:00:zz:00:13\"")
            .replace("version = \"4593.2.5\"", "version = \"latest\"");
        let err = Site::from_text_on(&text, Path::new("site.toml"), BUILD_DAY).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), crate::error::EXIT_BAD_INPUT);
        let text = err.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "site.toml is not valid (2 errors, 1 warning):");
        assert!(lines[1].starts_with("site.toml:31:11: error: flatcar.version: \"latest\" is not"));
        assert!(lines[2].starts_with("site.toml:46:3: warning: ssh.authorized_keys[0]"));
        assert!(lines[3].starts_with("site.toml:84:7: error: node[2] (cp3).mac:"));
    }
}
