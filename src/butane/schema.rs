//! The Butane input, as strict serde structs.
//!
//! Every struct denies unknown fields, so a misspelt key is an error carrying
//! its YAML location (serde_norway reports line, column and key path). Only
//! the surface the Flatcar variant supports is modelled; anything else is an
//! unknown key. Names follow Butane's snake_case spelling.
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::location;
use super::Diagnostic;

/// The Butane versions accepted for `variant: flatcar`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// Butane flatcar 1.0.0 → Ignition 3.3.0.
    V1_0,
    /// Butane flatcar 1.1.0 → Ignition 3.4.0.
    V1_1,
}

impl Version {
    /// The Ignition spec this Butane version translates to.
    pub fn ignition_version(self) -> &'static str {
        match self {
            Version::V1_0 => "3.3.0",
            Version::V1_1 => "3.4.0",
        }
    }

    fn parse(text: &str) -> Option<Version> {
        match text {
            "1.0.0" => Some(Version::V1_0),
            "1.1.0" => Some(Version::V1_1),
            _ => None,
        }
    }
}

/// A parsed, shape-checked Butane document.
#[derive(Debug)]
pub struct Document {
    pub version: Version,
    pub body: Config,
}

/// Only `variant` and `version`, read first so a wrong version gets a clear
/// message rather than a confusing unknown-key error.
#[derive(Deserialize)]
struct Header {
    variant: Option<serde_norway::Value>,
    version: Option<serde_norway::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[allow(dead_code)] // checked through `Header`
    pub variant: String,
    #[allow(dead_code)] // checked through `Header`
    pub version: String,
    #[serde(default)]
    pub ignition: Option<Ignition>,
    #[serde(default)]
    pub storage: Option<Storage>,
    #[serde(default)]
    pub systemd: Option<Systemd>,
    #[serde(default)]
    pub passwd: Option<Passwd>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ignition {
    pub config: Option<IgnitionConfig>,
    pub timeouts: Option<Timeouts>,
    pub security: Option<Security>,
    pub proxy: Option<Proxy>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IgnitionConfig {
    #[serde(default)]
    pub merge: Vec<Resource>,
    pub replace: Option<Resource>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Timeouts {
    pub http_response_headers: Option<i64>,
    pub http_total: Option<i64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Security {
    pub tls: Option<Tls>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tls {
    #[serde(default)]
    pub certificate_authorities: Vec<Resource>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Proxy {
    pub http_proxy: Option<String>,
    pub https_proxy: Option<String>,
    #[serde(default)]
    pub no_proxy: Vec<String>,
}

/// A content reference: exactly one of `inline`, `local`, `source`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resource {
    pub source: Option<String>,
    pub inline: Option<String>,
    pub local: Option<String>,
    pub compression: Option<String>,
    #[serde(default)]
    pub http_headers: Vec<HttpHeader>,
    pub verification: Option<Verification>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpHeader {
    pub name: String,
    pub value: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Verification {
    pub hash: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Storage {
    #[serde(default)]
    pub disks: Vec<Disk>,
    #[serde(default)]
    pub filesystems: Vec<Filesystem>,
    #[serde(default)]
    pub files: Vec<File>,
    #[serde(default)]
    pub directories: Vec<Directory>,
    #[serde(default)]
    pub links: Vec<Link>,
    #[serde(default)]
    pub trees: Vec<Tree>,
}

/// `user:`/`group:` of a node: by id or by name.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Owner {
    pub id: Option<i64>,
    pub name: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    pub path: String,
    pub overwrite: Option<bool>,
    pub mode: Option<Mode>,
    pub user: Option<Owner>,
    pub group: Option<Owner>,
    pub contents: Option<Resource>,
    #[serde(default)]
    pub append: Vec<Resource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Directory {
    pub path: String,
    pub overwrite: Option<bool>,
    pub mode: Option<Mode>,
    pub user: Option<Owner>,
    pub group: Option<Owner>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Link {
    pub path: String,
    pub target: String,
    pub hard: Option<bool>,
    pub overwrite: Option<bool>,
    pub user: Option<Owner>,
    pub group: Option<Owner>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tree {
    pub local: String,
    pub path: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disk {
    pub device: String,
    pub wipe_table: Option<bool>,
    #[serde(default)]
    pub partitions: Vec<Partition>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Partition {
    pub label: Option<String>,
    pub number: Option<i64>,
    pub size_mib: Option<i64>,
    pub start_mib: Option<i64>,
    pub type_guid: Option<String>,
    pub guid: Option<String>,
    pub wipe_partition_entry: Option<bool>,
    pub should_exist: Option<bool>,
    pub resize: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filesystem {
    pub device: String,
    pub format: Option<String>,
    pub path: Option<String>,
    pub wipe_filesystem: Option<bool>,
    pub label: Option<String>,
    pub uuid: Option<String>,
    #[serde(default)]
    pub options: Vec<String>,
    #[serde(default)]
    pub mount_options: Vec<String>,
    pub with_mount_unit: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Systemd {
    #[serde(default)]
    pub units: Vec<Unit>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Unit {
    pub name: String,
    pub enabled: Option<bool>,
    pub mask: Option<bool>,
    pub contents: Option<String>,
    pub contents_local: Option<String>,
    #[serde(default)]
    pub dropins: Vec<Dropin>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dropin {
    pub name: String,
    pub contents: Option<String>,
    pub contents_local: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Passwd {
    #[serde(default)]
    pub users: Vec<User>,
    #[serde(default)]
    pub groups: Vec<Group>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub password_hash: Option<String>,
    #[serde(default)]
    pub ssh_authorized_keys: Vec<String>,
    #[serde(default)]
    pub ssh_authorized_keys_local: Vec<String>,
    pub uid: Option<i64>,
    pub gecos: Option<String>,
    pub home_dir: Option<String>,
    pub no_create_home: Option<bool>,
    pub primary_group: Option<String>,
    #[serde(default)]
    pub groups: Vec<String>,
    pub no_user_group: Option<bool>,
    pub no_log_init: Option<bool>,
    pub shell: Option<String>,
    pub system: Option<bool>,
    pub should_exist: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    pub name: String,
    pub gid: Option<i64>,
    pub password_hash: Option<String>,
    pub system: Option<bool>,
    pub should_exist: Option<bool>,
}

/// A file mode. YAML `0644` (leading zero, YAML 1.1 style) and `0o644` are
/// octal; `420` is decimal. Range checks happen in `validate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode(pub i64);

impl<'de> Deserialize<'de> for Mode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Mode, D::Error> {
        d.deserialize_any(ModeVisitor)
    }
}

struct ModeVisitor;

impl Visitor<'_> for ModeVisitor {
    type Value = Mode;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a file mode such as 0644 (octal) or 420 (decimal)")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Mode, E> {
        i64::try_from(v)
            .map(Mode)
            .map_err(|_| E::custom(format!("mode {v} is too large")))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Mode, E> {
        Ok(Mode(v))
    }

    /// serde_norway follows YAML 1.2 and hands `0644` over as a string; Butane
    /// (and every Flatcar example) means octal by it.
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Mode, E> {
        let octal = v.strip_prefix('0').filter(|rest| !rest.is_empty());
        match octal.map(|digits| i64::from_str_radix(digits, 8)) {
            Some(Ok(mode)) => Ok(Mode(mode)),
            _ => Err(E::custom(format!(
                "invalid mode `{v}`: expected an octal number with a leading 0 (0644) or a decimal number (420)"
            ))),
        }
    }
}

/// Parses and shape-checks a document; the first problem found is returned.
pub fn parse(yaml: &str) -> Result<Document, Box<Diagnostic>> {
    let header: Header = serde_norway::from_str(yaml).map_err(|e| location::from_yaml_error(&e))?;
    let version = check_header(yaml, &header)?;
    let body: Config = serde_norway::from_str(yaml).map_err(|e| location::from_yaml_error(&e))?;
    Ok(Document { version, body })
}

fn check_header(yaml: &str, header: &Header) -> Result<Version, Box<Diagnostic>> {
    let fail = |key: &str, message: String| Box::new(location::diagnostic(yaml, key, message));
    let variant = header.variant.as_ref().and_then(|v| v.as_str());
    match variant {
        None => {
            return Err(fail(
                "variant",
                "missing `variant`: expected `flatcar`".into(),
            ))
        }
        Some("flatcar") => {}
        Some(other) => {
            return Err(fail(
                "variant",
                format!("unsupported variant `{other}`: only `flatcar` is supported"),
            ))
        }
    }
    let text = header.version.as_ref().and_then(|v| v.as_str());
    match text.map(|t| (t, Version::parse(t))) {
        Some((_, Some(version))) => Ok(version),
        Some((t, None)) => Err(fail(
            "version",
            format!("unsupported version `{t}` for variant flatcar: supported are 1.0.0 (Ignition 3.3.0) and 1.1.0 (Ignition 3.4.0)"),
        )),
        None => Err(fail(
            "version",
            "missing `version`: expected 1.0.0 or 1.1.0 (as a string)".into(),
        )),
    }
}
