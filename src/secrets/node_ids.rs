//! `secrets/node-ids.toml`: one random id per node, part of the node's
//! Ignition URL so the path cannot be derived from the MAC or the name.
//! New nodes get an id appended; an existing id never changes.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

use crate::error::BadInput;

pub const FILE: &str = "node-ids.toml";

/// Reads the ids (an absent file is an empty map).
pub fn load(dir: &Path) -> Result<BTreeMap<String, String>> {
    let path = dir.join(FILE);
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    toml::from_str(&text).map_err(|e| BadInput::new(format!("{}: {e}", path.display())))
}

/// Adds an id for every name in `nodes` that has none; writes the file only
/// when something was added. Returns the complete map and the names added.
pub fn ensure<'a>(
    dir: &Path,
    nodes: impl IntoIterator<Item = &'a str>,
) -> Result<(BTreeMap<String, String>, Vec<String>)> {
    let mut ids = load(dir)?;
    let mut added = Vec::new();
    for name in nodes {
        if !ids.contains_key(name) {
            ids.insert(name.to_string(), new_id());
            added.push(name.to_string());
        }
    }
    if !added.is_empty() {
        let mut text = String::from(
            "# Per-node random ids used in Ignition URLs (pxebuild). Never edit an\n\
             # existing id: the node's boot config points at it.\n",
        );
        text.push_str(&toml::to_string(&ids).context("serialising node ids")?);
        crate::fsutil::atomic_write(&dir.join(FILE), text.as_bytes(), 0o600)?;
    }
    Ok((ids, added))
}

/// 96 random bits as 24 lower-case hex digits.
fn new_id() -> String {
    let bytes: [u8; 12] = rand::random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_appended_never_changed() {
        let dir = tempfile::tempdir().unwrap();
        let (first, added) = ensure(dir.path(), ["a", "b"]).unwrap();
        assert_eq!(added, ["a", "b"]);
        let (second, added) = ensure(dir.path(), ["b", "c", "a"]).unwrap();
        assert_eq!(added, ["c"]);
        assert_eq!(first["a"], second["a"]);
        assert_eq!(first["b"], second["b"]);
        assert_eq!(second["c"].len(), 24);
    }
}
