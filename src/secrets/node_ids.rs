//! `secrets/node-ids.toml`: one random id per node, part of the node's
//! Ignition URL so the path cannot be derived from the MAC or the name.
//! New nodes get an id appended; an existing id never changes.
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

use super::wording::shown;
use crate::error::BadInput;

pub(crate) const FILE: &str = "node-ids.toml";

/// Reads the ids (an absent file is an empty map). An unreadable file, a
/// syntax error or an id that is not lower-case letters and digits is bad
/// input naming the file.
pub(crate) fn load(dir: &Path) -> Result<BTreeMap<String, String>> {
    let path = dir.join(FILE);
    if !path.exists() {
        return Ok(BTreeMap::new());
    }
    let restore = "restore it from your backup of secrets/ (every node's Ignition URL \
                   holds its id, so ids must not change)";
    let text = std::fs::read_to_string(&path)
        .map_err(|e| BadInput::new(format!("cannot read {}: {e}; {restore}", shown(&path))))?;
    let ids: BTreeMap<String, String> = toml::from_str(&text).map_err(|e| {
        BadInput::new(format!(
            "{}: not a table of node = \"id\" lines: {}; {restore}",
            shown(&path),
            e.to_string().trim_end()
        ))
    })?;
    for (node, id) in &ids {
        if !is_valid_id(id) {
            return Err(BadInput::new(format!(
                "{}: the id of node {node} ({id:?}) is not 1 to 64 lower-case letters and \
                 digits; {restore}",
                shown(&path)
            )));
        }
    }
    Ok(ids)
}

/// The names in `nodes` that have no id in `ids`, in the order given.
pub(crate) fn without_id<'a>(
    ids: &BTreeMap<String, String>,
    nodes: impl IntoIterator<Item = &'a str>,
) -> Vec<&'a str> {
    nodes
        .into_iter()
        .filter(|name| !ids.contains_key(*name))
        .collect()
}

/// Gives every name in `names` a new id in `ids` and rewrites the file
/// atomically (temp file + rename, 0600). Nothing is written for no names.
pub(crate) fn add(dir: &Path, ids: &mut BTreeMap<String, String>, names: &[&str]) -> Result<()> {
    if names.is_empty() {
        return Ok(());
    }
    for name in names {
        ids.insert(name.to_string(), new_id());
    }
    let mut text = String::from(
        "# Per-node random ids used in Ignition URLs (pxebuild). Never edit an\n\
         # existing id: the node's boot config points at it.\n",
    );
    text.push_str(&toml::to_string(&*ids).context("serialising node ids")?);
    crate::fsutil::atomic_write(&dir.join(FILE), text.as_bytes(), 0o600)
}

/// Adds an id for every name in `nodes` that has none; writes the file only
/// when something was added. Returns the complete map and the names added.
/// (store.rs does the same in its steps; the tests hold the steps to it.)
#[cfg(test)]
pub(crate) fn ensure<'a>(
    dir: &Path,
    nodes: impl IntoIterator<Item = &'a str>,
) -> Result<(BTreeMap<String, String>, Vec<String>)> {
    let mut ids = load(dir)?;
    let added = without_id(&ids, nodes);
    add(dir, &mut ids, &added)?;
    Ok((ids, added.into_iter().map(String::from).collect()))
}

/// The id in a tree's Ignition directory name `<node>-<id>`, when `dir_name`
/// is one of `node`'s.
pub(crate) fn id_in_dir_name<'a>(dir_name: &'a str, node: &str) -> Option<&'a str> {
    crate::layout::id_in_node_dir(dir_name, node).filter(|id| is_valid_id(id))
}

/// What [`new_id`] makes, loosely: lower-case letters and digits, no `-` or
/// `/` (the id becomes part of a directory name and a URL).
fn is_valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
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

    #[test]
    fn ids_that_could_leave_their_directory_are_bad_input() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(FILE), "cp1 = \"../../etc\"\n").unwrap();
        let err = load(dir.path()).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), crate::error::EXIT_BAD_INPUT);
        let msg = format!("{err:#}");
        assert!(msg.contains("node cp1") && msg.contains("restore"), "{msg}");
        std::fs::write(dir.path().join(FILE), "cp1 = 12\n").unwrap();
        let msg = format!("{:#}", load(dir.path()).unwrap_err());
        assert!(msg.contains(&shown(&dir.path().join(FILE))), "{msg}");
    }

    #[test]
    fn ids_are_read_back_from_directory_names() {
        assert_eq!(id_in_dir_name("worker-abc123", "worker"), Some("abc123"));
        // worker-2's directory is not worker's.
        assert_eq!(id_in_dir_name("worker-2-abc123", "worker"), None);
        assert_eq!(id_in_dir_name("cp1-abc", "cp10"), None);
    }
}
