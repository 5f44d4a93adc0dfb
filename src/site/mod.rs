//! The site model: `site.toml` parsed strictly, then validated as a whole.
//!
//! `Site::parse` is pure (text in, model or diagnostics out); `Site::load` adds
//! the file system. Nothing downstream sees an unvalidated site.
pub mod schema;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::error::BadInput;
pub use schema::SiteFile;

/// A parsed and validated site, plus where it lives.
#[derive(Debug, Clone)]
pub struct Site {
    pub file: SiteFile,
    /// The directory holding site.toml (templates/, payload/, secrets/ are beside it).
    pub dir: PathBuf,
    /// Path of the site file as given.
    pub path: PathBuf,
}

impl Site {
    /// Parses site text; `origin` names the file in messages.
    pub fn parse(text: &str, origin: &str) -> Result<SiteFile> {
        toml::from_str(text).map_err(|err| BadInput::new(format!("{origin}: {err}")))
    }

    /// Reads, parses and validates the site file at `path`.
    pub fn load(path: &Path) -> Result<Site> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading site file {}", path.display()))
            .map_err(|e| BadInput::new(format!("{e:#}")))?;
        let file = Site::parse(&text, &path.display().to_string())?;
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(Site {
            file,
            dir,
            path: path.to_path_buf(),
        })
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
        self.file.nodes.iter().filter(|n| n.role == "control-plane")
    }
}
