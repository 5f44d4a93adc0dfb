//! The starter site built into the binary: the repository's example
//! `site.toml`, `templates/` and `payload/` (listed by build.rs, each file
//! included with `include_bytes!`).
//!
//! `pxebuild init` writes them out; a site without its own `templates/` or
//! `payload/` builds from these copies (`recipe::load_templates`,
//! `render::cilium::load_values`). A site directory's own copy always wins,
//! as a whole directory: files are never mixed from both.
use std::path::Path;

mod generated {
    include!(concat!(env!("OUT_DIR"), "/embedded.rs"));
}

/// How messages and step keys name where templates or payload came from
/// when they are the built-in copies.
pub const ORIGIN: &str = "embedded";

/// How messages name the built-in templates directory: `pxebuild:templates`,
/// so a message never points at a file the operator does not have.
pub const TEMPLATES_NAME: &str = "pxebuild:templates";

/// Every built-in file as (path relative to the site directory, bytes),
/// sorted by path: `site.toml`, `templates/…`, `payload/…`.
pub fn files() -> &'static [(&'static str, &'static [u8])] {
    generated::FILES
}

/// The built-in files under `dir` (`templates` or `payload`), with paths
/// relative to it.
pub fn under(dir: &str) -> impl Iterator<Item = (&'static str, &'static [u8])> + '_ {
    files().iter().filter_map(move |(path, bytes)| {
        let rel = path.strip_prefix(dir)?.strip_prefix('/')?;
        Some((rel, *bytes))
    })
}

/// The built-in file at `path` (relative to the site directory).
pub fn file(path: &Path) -> Option<&'static [u8]> {
    let path = path.to_str()?;
    files()
        .iter()
        .find(|(have, _)| *have == path)
        .map(|(_, bytes)| *bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_files_are_the_repository_s() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        assert!(files().iter().any(|(p, _)| *p == "site.toml"));
        assert!(under("templates").any(|(p, _)| p == "node.bu.hbs"));
        assert!(under("payload").any(|(p, _)| p == "core/cilium/values.yaml"));
        for (path, bytes) in files() {
            assert_eq!(
                std::fs::read(root.join(path)).unwrap(),
                *bytes,
                "{path} differs from the repository's"
            );
        }
        let on_disk = walkdir::WalkDir::new(root.join("templates"))
            .into_iter()
            .chain(walkdir::WalkDir::new(root.join("payload")))
            .filter(|e| e.as_ref().unwrap().file_type().is_file())
            .count();
        assert_eq!(files().len(), on_disk + 1, "every file is built in");
    }
}
