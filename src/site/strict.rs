//! Strict parsing: the TOML text into `RawSiteFile`, with every unknown key,
//! value of the wrong type and missing required key reported at once.
//!
//! serde stops at the first error, which would mean one run per problem.
//! So the spanned document is repaired and deserialisation retried: an
//! unknown key or a value of the wrong type is dropped, and a required key
//! that is missing (or was just dropped) gets a stand-in of the right type
//! (`REQUIRED`). The tables repaired are returned as unsure, so that the
//! content checks, which then run on the repaired model, stay out of them:
//! a stand-in or a default in place of a bad value would otherwise draw
//! follow-on errors that are not in the file.
use std::borrow::Cow;
use std::ops::Range;

use serde::Deserialize;
use toml::de::{DeArray, DeTable, DeValue, Deserializer};
use toml::Spanned;

use super::diagnostic::{Diagnostic, Severity};
use super::schema::RawSiteFile;
use super::source::{KeyPath, Seg, Source};
use super::wording;

/// More problems than this in one file is not a typo; stop listing them.
const MAX_PROBLEMS: usize = 50;

/// What a stand-in for a missing required key is made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stand {
    Text,
    List,
    /// A table holding stand-ins for its own required keys.
    Table,
}

/// Every key of `RawSiteFile` without a serde default, as (table, key, kind);
/// table "" is the root and "node" is each `[[node]]`. schema.rs is the
/// truth: `required_keys_match_the_schema` fails when the two differ.
const REQUIRED: &[(&str, &str, Stand)] = &[
    ("", "cluster", Stand::Table),
    ("", "network", Stand::Table),
    ("", "boot_server", Stand::Table),
    ("", "flatcar", Stand::Table),
    ("", "sysext", Stand::Table),
    ("", "cilium", Stand::Table),
    ("", "ssh", Stand::Table),
    ("cluster", "name", Stand::Text),
    ("cluster", "kubernetes_version", Stand::Text),
    ("cluster", "endpoint", Stand::Text),
    ("network", "subnet", Stand::Text),
    ("network", "gateway", Stand::Text),
    ("boot_server", "address", Stand::Text),
    ("flatcar", "channel", Stand::Text),
    ("flatcar", "version", Stand::Text),
    ("sysext", "kubernetes", Stand::Text),
    ("sysext", "cilium", Stand::Text),
    ("cilium", "version", Stand::Text),
    ("ssh", "authorized_keys", Stand::List),
    ("node", "name", Stand::Text),
    ("node", "mac", Stand::Text),
    ("node", "ip", Stand::Text),
    ("node", "role", Stand::Text),
    ("node", "disk", Stand::Text),
];

/// A site file that parsed, possibly after repairs.
pub(super) struct Parsed {
    pub file: RawSiteFile,
    /// Every parse problem, in file order; empty for a clean file.
    pub problems: Vec<Diagnostic>,
    /// The keys dropped or stood in for: their tables' values are in doubt
    /// (see the module comment).
    pub unsure: Vec<KeyPath>,
}

/// Parses `text`. `Err` holds the problems when no model could be built: a
/// syntax error, a problem no repair gets past, or too many problems.
pub(super) fn parse<'a>(text: &'a str, src: &Source<'a>) -> Result<Parsed, Vec<Diagnostic>> {
    let mut doc = DeTable::parse(text).map_err(|e| vec![parse_error(src, &e)])?;
    let mut problems: Vec<Diagnostic> = Vec::new();
    let mut unsure: Vec<KeyPath> = Vec::new();
    // Keys an unknown key was taken for ("did you mean"): when serde then
    // misses that key, it is the same typo, not a second problem.
    let mut meant: Vec<KeyPath> = Vec::new();
    loop {
        let err = match RawSiteFile::deserialize(Deserializer::from(doc.clone())) {
            Ok(file) => {
                if problems.is_empty() {
                    // Positions for warnings come from this parse, not a second one.
                    src.adopt(doc);
                }
                problems.sort_by_key(|d| (d.line, d.column));
                return Ok(Parsed {
                    file,
                    problems,
                    unsure,
                });
            }
            Err(err) => err,
        };
        if problems.len() == MAX_PROBLEMS {
            break;
        }
        let same_typo = match (missing_field(&err), err.span()) {
            (Some(field), Some(span)) => src
                .table_at(&span)
                .is_some_and(|table| meant.contains(&table.key(field))),
            _ => false,
        };
        if !same_typo {
            problems.push(parse_error(src, &err));
        }
        if let Some(key) = meant_key(src, &err) {
            meant.push(key);
        }
        match repair(doc.get_mut(), src, &err) {
            // The same key twice means the repair did not take: stop, not loop.
            Some(key) if !unsure.contains(&key) => unsure.push(key),
            _ => break,
        }
    }
    problems.sort_by_key(|d| (d.line, d.column));
    Err(problems)
}

/// Gets `doc` past `err`: drops the key an unknown-key or wrong-type error
/// is about, and gives a missing (or just dropped) required key a stand-in.
/// Returns the key repaired, or `None` for an error no repair gets past.
fn repair(doc: &mut DeTable<'_>, src: &Source<'_>, err: &toml::de::Error) -> Option<KeyPath> {
    let span = err.span()?;
    if let Some(field) = missing_field(err) {
        let table = src.table_at(&span)?;
        insert_stand_in(doc, &table, field, span).then(|| table.key(field))
    } else if is_key_error(err) {
        // A bad array element drops the whole array: its key is what has a default.
        let key = owning_key(src.path_at(span.start));
        let key_span = src.span_of_key(&key)?;
        if !remove_key(doc, &key_span) {
            return None;
        }
        let (table, field) = split_key(&key)?;
        if !required(&table, field) || insert_stand_in(doc, &table, field, key_span) {
            return Some(key);
        }
        None
    } else {
        None
    }
}

/// For an unknown key with a likely meaning (`kubernetes_verison`), the
/// path of the key it was probably meant to be (`cluster.kubernetes_version`).
fn meant_key(src: &Source<'_>, err: &toml::de::Error) -> Option<KeyPath> {
    let (typo, known) = wording::unknown_key(err.message())?;
    let meant = wording::closest(typo, &known)?;
    let key = owning_key(src.path_at(err.span()?.start));
    let (table, _) = split_key(&key)?;
    Some(table.key(meant))
}

/// Errors about one key's name or value, which dropping the key gets past.
fn is_key_error(err: &toml::de::Error) -> bool {
    let m = err.message();
    m.starts_with("unknown field")
        || m.starts_with("invalid type")
        || m.starts_with("invalid value")
}

/// `k` of "missing field `k`".
fn missing_field(err: &toml::de::Error) -> Option<&str> {
    err.message()
        .strip_prefix("missing field `")?
        .strip_suffix('`')
}

/// `path` without trailing array indices: `ssh.authorized_keys[1]` is
/// `ssh.authorized_keys`.
fn owning_key(mut path: KeyPath) -> KeyPath {
    while matches!(path.0.last(), Some(Seg::Index(_))) {
        path.0.pop();
    }
    path
}

/// The table holding the key `path` ends in, and that key.
fn split_key(path: &KeyPath) -> Option<(KeyPath, &str)> {
    let (last, table) = path.0.split_last()?;
    let Seg::Key(field) = last else { return None };
    Some((KeyPath(table.to_vec()), field.as_str()))
}

/// The table's name in `REQUIRED`: its keys without indices (`node[2]` is "node").
fn table_name(table: &KeyPath) -> String {
    let keys: Vec<&str> = table
        .0
        .iter()
        .filter_map(|seg| match seg {
            Seg::Key(k) => Some(k.as_str()),
            Seg::Index(_) => None,
        })
        .collect();
    keys.join(".")
}

fn required(table: &KeyPath, field: &str) -> bool {
    let name = table_name(table);
    REQUIRED.iter().any(|(t, k, _)| *t == name && *k == field)
}

/// Puts a stand-in for the required key `field` into `table`; false when
/// the table is not there or `field` is not a required key of it.
fn insert_stand_in(
    doc: &mut DeTable<'_>,
    table: &KeyPath,
    field: &str,
    span: Range<usize>,
) -> bool {
    let name = table_name(table);
    let Some(&(_, _, stand)) = REQUIRED.iter().find(|(t, k, _)| *t == name && *k == field) else {
        return false;
    };
    let Some(target) = table_mut(doc, table) else {
        return false;
    };
    let key = Spanned::new(span.clone(), Cow::Owned(field.to_string()));
    let value = stand_in(stand, &child_name(&name, field), span.clone());
    target.insert(key, Spanned::new(span, value));
    true
}

/// The `REQUIRED` table name of key `field` in table `name`.
fn child_name(name: &str, field: &str) -> String {
    if name.is_empty() {
        field.to_string()
    } else {
        format!("{name}.{field}")
    }
}

/// A value of kind `stand` for the key named `name` (a table name for `Stand::Table`).
fn stand_in<'a>(stand: Stand, name: &str, span: Range<usize>) -> DeValue<'a> {
    match stand {
        Stand::Text => DeValue::String(Cow::Borrowed("")),
        Stand::List => DeValue::Array(DeArray::new()),
        Stand::Table => {
            let mut table = DeTable::new();
            for &(_, field, inner) in REQUIRED.iter().filter(|(t, _, _)| *t == name) {
                let key = Spanned::new(span.clone(), Cow::Owned(field.to_string()));
                let value = stand_in(inner, &child_name(name, field), span.clone());
                table.insert(key, Spanned::new(span.clone(), value));
            }
            DeValue::Table(table)
        }
    }
}

/// The table at `path` in `doc`, for editing.
fn table_mut<'d, 'a>(doc: &'d mut DeTable<'a>, path: &KeyPath) -> Option<&'d mut DeTable<'a>> {
    let mut table = doc;
    let mut segs = path.0.iter().peekable();
    while let Some(seg) = segs.next() {
        let Seg::Key(key) = seg else { return None };
        let mut value = table.get_mut(key.as_str())?.get_mut();
        while let Some(Seg::Index(i)) = segs.peek() {
            let DeValue::Array(items) = value else {
                return None;
            };
            value = items.get_mut(*i)?.get_mut();
            segs.next();
        }
        let DeValue::Table(inner) = value else {
            return None;
        };
        table = inner;
    }
    Some(table)
}

/// Removes the entry whose key has exactly `span`, wherever it is nested.
fn remove_key(table: &mut DeTable<'_>, span: &Range<usize>) -> bool {
    let found = table.iter().find(|(k, _)| k.span() == *span);
    if let Some(name) = found.map(|(k, _)| k.get_ref().to_string()) {
        return table.remove(name.as_str()).is_some();
    }
    table
        .iter_mut()
        .any(|(_, v)| remove_in_value(v.get_mut(), span))
}

fn remove_in_value(value: &mut DeValue<'_>, span: &Range<usize>) -> bool {
    match value {
        DeValue::Table(t) => remove_key(t, span),
        DeValue::Array(a) => a.iter_mut().any(|v| remove_in_value(v.get_mut(), span)),
        _ => false,
    }
}

/// A toml/serde error as a diagnostic naming the key it happened at (for a
/// missing key, the table that lacks it).
fn parse_error(src: &Source<'_>, err: &toml::de::Error) -> Diagnostic {
    let span = err.span().unwrap_or(0..0);
    let at = match missing_field(err) {
        Some(_) => src.table_at(&span),
        None => None,
    };
    let key = at.unwrap_or_else(|| src.path_at(span.start));
    let path = src.label(&key);
    let mut message = err.message().to_string();
    if message.starts_with("unknown field") {
        message = wording::unknown_key_message(&message);
    } else if message.starts_with("unknown variant") {
        message = wording::unknown_variant_message(&message);
    } else if message.starts_with("invalid type") || message.starts_with("invalid value") {
        let name = match owning_key(key).0.last() {
            Some(Seg::Key(name)) => name.clone(),
            _ => String::new(),
        };
        message = wording::type_message(&message, &name);
    }
    // A syntax error (duplicate key, bad string) has no key path to name, so
    // quote the offending text instead.
    if path.is_empty() {
        if let Some(snippet) = src.snippet(span.clone()) {
            message.push_str(&format!(" at `{snippet}`"));
        }
    }
    src.at_offset(Severity::Error, path, span.start, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SITE: &str = include_str!("../../site.toml");

    fn problems(text: &str) -> Vec<String> {
        let src = Source::new(text, "site.toml");
        let diags = match parse(text, &src) {
            Ok(parsed) => parsed.problems,
            Err(diags) => diags,
        };
        diags.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn example_site_parses() {
        let src = Source::new(SITE, "site.toml");
        let parsed = parse(SITE, &src).ok().unwrap();
        assert_eq!(parsed.file.nodes.len(), 5);
        assert!(parsed.problems.is_empty() && parsed.unsure.is_empty());
    }

    #[test]
    fn every_unknown_key_is_reported() {
        let text = SITE
            .replace("dns_domain =", "dns_domian =")
            .replacen("firmware = \"uefi\"", "firmwre = \"uefi\"", 1)
            .replace("[updates]", "[update]");
        let got = problems(&text);
        assert_eq!(got.len(), 3, "{got:#?}");
        assert!(got[0]
            .starts_with("site.toml:12:1: error: cluster.dns_domian: unknown key `dns_domian`; did you mean `dns_domain`?"));
        assert!(
            got[1].contains("error: update: unknown key `update`; did you mean `updates`?"),
            "{got:#?}"
        );
        assert!(
            got[2].contains("error: node[1] (cp2).firmwre: unknown key `firmwre`"),
            "{got:#?}"
        );
    }

    #[test]
    fn a_misspelt_required_key_is_one_problem_with_a_suggestion() {
        let text = SITE.replace("kubernetes_version =", "kubernetes_verison =");
        let got = problems(&text);
        assert_eq!(
            got,
            [
                "site.toml:7:1: error: cluster.kubernetes_verison: unknown key \
              `kubernetes_verison`; did you mean `kubernetes_version`?"
            ],
        );
        // A key that is really missing is still reported.
        let text = SITE.replace("kubernetes_version =", "colour =");
        let got = problems(&text);
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(
            got.iter()
                .any(|g| g.contains("cluster: missing field `kubernetes_version`")),
            "{got:#?}"
        );
    }

    #[test]
    fn type_errors_are_reported_without_follow_on_noise() {
        let text = SITE
            .replace("dns_domain =", "dns_domian =")
            .replace("tftp_port = 69", "tftp_port = \"69\"")
            .replace("name = \"rack1\"", "name = 1");
        let got = problems(&text);
        assert_eq!(got.len(), 3, "{got:#?}");
        assert!(got[0]
            .contains("cluster.name: expected a string, found the number 1 (put it in quotes)"));
        assert!(got[1]
            .contains("cluster.dns_domian: unknown key `dns_domian`; did you mean `dns_domain`?"));
        assert!(got[2].contains(
            "boot_server.tftp_port: expected a port number, 1-65535, found the string \"69\" \
             (write numbers without quotes)"
        ));
    }

    #[test]
    fn a_required_key_with_a_bad_type_is_one_problem() {
        let text = SITE.replacen("ip = \"10.20.0.12\"", "ip = 12", 1);
        let got = problems(&text);
        assert_eq!(got.len(), 1, "{got:#?}");
        assert!(got[0].contains("node[1] (cp2).ip: expected a string, found the number 12"));
    }

    /// The root with stand-ins for every required key, and one stand-in node.
    fn stand_in_site() -> DeTable<'static> {
        let DeValue::Table(mut root) = stand_in(Stand::Table, "", 0..0) else {
            unreachable!("a table stand-in is a table")
        };
        let mut nodes = DeArray::new();
        nodes.push(Spanned::new(0..0, stand_in(Stand::Table, "node", 0..0)));
        let key = Spanned::new(0..0, Cow::Borrowed("node"));
        root.insert(key, Spanned::new(0..0, DeValue::Array(nodes)));
        root
    }

    fn deserialize(root: DeTable<'static>) -> Result<RawSiteFile, toml::de::Error> {
        RawSiteFile::deserialize(Deserializer::from(Spanned::new(0..0, root)))
    }

    #[test]
    fn required_keys_match_the_schema() {
        // Enough: no required key is missing from REQUIRED, every stand-in
        // has a type serde takes.
        let file = deserialize(stand_in_site()).unwrap();
        assert_eq!(file.nodes[0].mac, "");
        // Each one needed: REQUIRED lists no key that has a default.
        for &(table, field, _) in REQUIRED {
            let mut root = stand_in_site();
            let path = match table {
                "" => KeyPath::default(),
                "node" => KeyPath::node(0, ""),
                t => KeyPath::of(t),
            };
            let target = table_mut(&mut root, &path).unwrap();
            assert!(target.remove(field).is_some(), "{table}.{field}");
            let err = deserialize(root).unwrap_err();
            assert_eq!(err.message(), format!("missing field `{field}`"), "{table}");
        }
    }

    #[test]
    fn every_missing_key_is_reported_at_its_table() {
        let text = SITE
            .replacen("mac = \"52:54:00:20:00:12\"\n", "", 1)
            .replacen("ip = \"10.20.0.21\"\n", "", 1)
            .replacen("disk = \"/dev/disk/by-id/virtio-worker1-root\"\n", "", 1)
            .replace(
                "endpoint = \"10.20.0.10:6443\"      # the VIP kube-vip announces\n",
                "",
            );
        let got = problems(&text);
        assert_eq!(
            got,
            [
                "site.toml:5:1: error: cluster: missing field `endpoint`",
                "site.toml:73:1: error: node[1] (cp2): missing field `mac`",
                "site.toml:88:1: error: node[3] (worker1): missing field `ip`",
                "site.toml:88:1: error: node[3] (worker1): missing field `disk`",
            ]
        );
    }

    #[test]
    fn a_missing_table_is_one_problem_at_the_root() {
        let ssh = &SITE[SITE.find("[ssh]").unwrap()..SITE.find("[sources]").unwrap()];
        let text = SITE[SITE.find("[cluster]").unwrap()..].replace(ssh, "");
        let src = Source::new(&text, "site.toml");
        let parsed = parse(&text, &src).ok().unwrap();
        let got: Vec<String> = parsed.problems.iter().map(ToString::to_string).collect();
        assert_eq!(got, ["site.toml:1:1: error: missing field `ssh`"]);
        assert_eq!(parsed.unsure, [KeyPath::of("ssh")]);
    }

    #[test]
    fn a_bad_value_in_one_node_hides_nothing_after_it() {
        let text = SITE
            .replacen("ip = \"10.20.0.12\"", "ip = 12", 1)
            .replacen(
                "firmware = \"bios\"\nlabels",
                "firmwre = \"bios\"\nlabels",
                1,
            )
            .replace("dns = [\"10.20.0.1\"]", "dns = [\"10.20.0.1\", 5]")
            .replacen("name = \"cp3\"", "name = [\"cp3\"]", 1);
        let src = Source::new(&text, "site.toml");
        let parsed = parse(&text, &src).ok().unwrap();
        let got: Vec<String> = parsed.problems.iter().map(ToString::to_string).collect();
        assert_eq!(got.len(), 4, "{got:#?}");
        assert!(got[0].starts_with(
            "site.toml:19:21: error: network.dns[1]: expected a string, found the number 5"
        ));
        assert!(got[1].starts_with(
            "site.toml:77:6: error: node[1] (cp2).ip: expected a string, found the number 12"
        ));
        assert!(got[2]
            .starts_with("site.toml:83:8: error: node[2].name: expected a string, found a list"));
        assert!(
            got[3].starts_with("site.toml:105:1: error: node[4] (worker2).firmwre: unknown key `firmwre`; did you mean `firmware`?")
        );
        let unsure: Vec<String> = parsed.unsure.iter().map(ToString::to_string).collect();
        assert_eq!(
            unsure,
            [
                "network.dns",
                "node[1].ip",
                "node[2].name",
                "node[4].firmwre"
            ]
        );
    }

    #[test]
    fn problems_stop_at_fifty() {
        let typos: String = (0..60).map(|i| format!("typo{i} = 1\n")).collect();
        let text = SITE.replacen("[cluster]\n", &format!("[cluster]\n{typos}"), 1);
        let src = Source::new(&text, "site.toml");
        let Err(diags) = parse(&text, &src) else {
            panic!("60 typos parse")
        };
        assert_eq!(diags.len(), MAX_PROBLEMS);
        assert!(diags[0].to_string().contains("cluster.typo0: unknown key"));
    }
}
