//! How the secrets' refusals name things: paths shown absolute, a few node
//! names or a count, and the two long refusals (a secret missing beside a
//! built tree, node ids lost from `node-ids.toml`). Pure functions of what
//! was found, so each wording is tested on its own; what to look for is
//! decided in [`super::store`].
use std::path::Path;

use crate::error::BadInput;

/// How many lost node ids an error lists line by line.
const LOST_IDS_LISTED: usize = 20;

/// `path` as messages show it: absolute, so it names the site's directory
/// whatever the working directory was.
pub(crate) fn shown(path: &Path) -> String {
    std::path::absolute(path)
        .unwrap_or_else(|_| path.to_path_buf())
        .display()
        .to_string()
}

/// Names a few nodes; a rack of hundreds gets a count.
pub(super) fn few(names: &[&str]) -> String {
    match names.len() {
        0..=8 => names.join(", "),
        n => format!("{}, … {n} nodes", names[..3].join(", ")),
    }
}

/// Bad input: `what` (at `path`) is missing, but `tree` was built from it.
pub(super) fn missing_error(path: &Path, tree: &Path, what: &str) -> anyhow::Error {
    let dist = shown(tree);
    let dir = match path.file_name() {
        Some(name) if name == "secrets" => shown(path),
        _ => path.parent().map_or_else(|| shown(path), shown),
    };
    BadInput::new(format!(
        "{what} {} is missing, but {dist} was built from it and its nodes trust \
         that CA and token. Restore {dir} from your backup, or delete {dist} \
         deliberately to start a new cluster with new secrets",
        shown(path),
    ))
}

/// Bad input: whether `tree` already serves the nodes `new` (which have no id)
/// cannot be told, because its manifest could not be read (`err`).
pub(super) fn undecidable_error(
    ids_path: &Path,
    new: &[&str],
    tree: &Path,
    ids_file: &str,
    err: &anyhow::Error,
) -> anyhow::Error {
    BadInput::new(format!(
        "{} has no id for {}, and whether {} already serves {} cannot be told: \
         {err:#}. Restore {} from your backup, or delete {} deliberately",
        shown(ids_path),
        few(new),
        shown(tree),
        if new.len() == 1 { "it" } else { "them" },
        ids_file,
        shown(tree),
    ))
}

/// A node without an id in `node-ids.toml` that a built tree already has.
#[derive(Debug)]
pub(super) struct Lost<'a> {
    pub node: &'a str,
    /// The tree that has it.
    pub tree: &'a Path,
    /// The id that tree uses, when its access records tell.
    pub id: Option<String>,
}

/// Bad input naming the lines of `ids_path` to restore (the ids are part of
/// the trees' Ignition directory names) and how to give a node a new id on
/// purpose. `lost` is not empty.
pub(super) fn lost_ids_error(ids_path: &Path, lost: &[Lost]) -> anyhow::Error {
    let names: Vec<&str> = lost.iter().map(|l| l.node).collect();
    let mut with: Vec<&Path> = Vec::new();
    for l in lost {
        if !with.contains(&l.tree) {
            with.push(l.tree);
        }
    }
    let mut lines = String::new();
    for Lost { node, tree, id } in lost.iter().take(LOST_IDS_LISTED) {
        match id {
            Some(id) => lines.push_str(&format!("\n  {node} = \"{id}\"")),
            None => lines.push_str(&format!(
                "\n  {node}: its id is the {node}-<id> directory name under {}",
                shown(&crate::layout::ignition_root(tree))
            )),
        }
        if with.len() > 1 {
            lines.push_str(&format!("  (in {})", shown(tree)));
        }
    }
    if lost.len() > LOST_IDS_LISTED {
        lines.push_str(&format!(
            "\n  … and {} more (the <node>-<id> directory names under {}/)",
            lost.len() - LOST_IDS_LISTED,
            crate::layout::http_path(crate::layout::IGNITION)
        ));
    }
    let (nodes, why, lines_word) = if names.len() == 1 {
        (
            "that node",
            "its boot config and any disk installed from it name the old id, and a new \
             one would move its Ignition URL",
            "line",
        )
    } else {
        (
            "those nodes",
            "their boot configs and any disks installed from them name the old ids, and \
             new ones would move their Ignition URLs",
            "lines",
        )
    };
    let with: Vec<String> = with.iter().map(|t| shown(t)).collect();
    let (has, uses) = if with.len() == 1 {
        ("has", "the tree uses")
    } else {
        ("have", "the trees use")
    };
    BadInput::new(format!(
        "{} has no id for {}, but {} already {has} {nodes}: {why}. Restore the {lines_word} \
         from your backup; {uses}:{lines}\n\
         To give a node a new id on purpose, build once without it in site.toml (that \
         removes it from the tree), then add it back and build again",
        shown(ids_path),
        few(&names),
        with.join(" and "),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_shown_absolute() {
        let shown = shown(Path::new("site/secrets"));
        assert!(shown.starts_with('/'), "{shown}");
        assert!(shown.ends_with("/site/secrets"), "{shown}");
        assert_eq!(super::shown(Path::new("/s/x")), "/s/x");
    }

    #[test]
    fn a_few_nodes_are_named_and_a_rack_is_counted() {
        assert_eq!(few(&["cp1", "w1"]), "cp1, w1");
        let eight = ["a", "b", "c", "d", "e", "f", "g", "h"];
        assert_eq!(few(&eight), eight.join(", "));
        let nine = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
        assert_eq!(few(&nine), "a, b, c, … 9 nodes");
    }

    #[test]
    fn a_missing_secret_names_what_to_restore_and_what_to_delete() {
        let file = missing_error(
            Path::new("/s/secrets/ca.key"),
            Path::new("/s/dist"),
            "the CA",
        );
        assert_eq!(
            file.to_string(),
            "the CA /s/secrets/ca.key is missing, but /s/dist was built from it and its \
             nodes trust that CA and token. Restore /s/secrets from your backup, or delete \
             /s/dist deliberately to start a new cluster with new secrets"
        );
        assert_eq!(crate::error::exit_code(&file), 2, "bad input");
        let dir = missing_error(Path::new("/s/secrets"), Path::new("/d"), "the directory");
        assert!(
            dir.to_string()
                .contains("Restore /s/secrets from your backup"),
            "{dir}"
        );
    }

    #[test]
    fn one_lost_id_is_worded_in_the_singular_with_its_line() {
        let lost = [Lost {
            node: "w1",
            tree: Path::new("/s/dist"),
            id: Some("9f2c".into()),
        }];
        let text = lost_ids_error(Path::new("/s/secrets/node-ids.toml"), &lost).to_string();
        assert!(
            text.starts_with(
                "/s/secrets/node-ids.toml has no id for w1, but /s/dist already has that \
                 node: its boot config"
            ),
            "{text}"
        );
        assert!(
            text.contains("Restore the line from your backup; the tree uses:\n  w1 = \"9f2c\"\n"),
            "{text}"
        );
        assert!(
            !text.contains("(in "),
            "one tree is not named per line: {text}"
        );
    }

    #[test]
    fn lost_ids_in_two_trees_name_the_tree_of_each_line() {
        let (a, b) = (Path::new("/a/dist"), Path::new("/b/out"));
        let lost = [
            Lost {
                node: "w1",
                tree: a,
                id: Some("1".into()),
            },
            Lost {
                node: "w2",
                tree: b,
                id: None,
            },
        ];
        let text = lost_ids_error(Path::new("/s/node-ids.toml"), &lost).to_string();
        assert!(
            text.contains("but /a/dist and /b/out already have those nodes"),
            "{text}"
        );
        assert!(text.contains("the trees use:"), "{text}");
        assert!(text.contains("\n  w1 = \"1\"  (in /a/dist)"), "{text}");
        assert!(
            text.contains(
                "\n  w2: its id is the w2-<id> directory name under /b/out/http/ignition  (in /b/out)"
            ),
            "{text}"
        );
    }

    #[test]
    fn many_lost_ids_list_twenty_then_a_count() {
        let names: Vec<String> = (0..25).map(|i| format!("w{i}")).collect();
        let lost: Vec<Lost> = names
            .iter()
            .map(|n| Lost {
                node: n,
                tree: Path::new("/d"),
                id: Some("x".into()),
            })
            .collect();
        let text = lost_ids_error(Path::new("/s/node-ids.toml"), &lost).to_string();
        assert!(text.contains("\n  w19 = \"x\""), "{text}");
        assert!(!text.contains("\n  w20 = "), "{text}");
        assert!(
            text.contains(
                "\n  … and 5 more (the <node>-<id> directory names under http/ignition/)"
            ),
            "{text}"
        );
        assert!(
            text.contains("has no id for w0, w1, w2, … 25 nodes"),
            "{text}"
        );
    }
}
