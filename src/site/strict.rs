//! Strict parsing: the TOML text into `SiteFile`, with every unknown key
//! reported at once.
//!
//! serde stops at the first error. For an unknown key (the common typo) that
//! would mean one run per typo, so the offending key is dropped from the
//! spanned document and deserialisation retried until it succeeds or hits an
//! error of another kind (wrong type, missing key), which is reported and ends
//! parsing: guessing past it would only produce follow-on noise.
use std::ops::Range;

use serde::Deserialize;
use toml::de::{DeTable, DeValue, Deserializer};

use super::diagnostic::{Diagnostic, Severity};
use super::schema::SiteFile;
use super::source::Source;

/// More problems than this in one file is not a typo; stop listing them.
const MAX_PROBLEMS: usize = 50;

/// Parses `text`; `Err` holds every parse problem found, in file order.
pub(super) fn parse<'a>(text: &'a str, src: &Source<'a>) -> Result<SiteFile, Vec<Diagnostic>> {
    let mut doc = DeTable::parse(text).map_err(|e| vec![parse_error(src, &e)])?;
    let mut problems: Vec<Diagnostic> = Vec::new();
    // Keys dropped after a type error: a "missing field" for one of them is
    // a consequence, not a second problem.
    let mut dropped: Vec<String> = Vec::new();
    while problems.len() < MAX_PROBLEMS {
        let err = match SiteFile::deserialize(Deserializer::from(doc.clone())) {
            Ok(file) if problems.is_empty() => {
                // Positions for warnings come from this parse, not a second one.
                src.adopt(doc);
                return Ok(file);
            }
            Ok(_) => break,
            Err(err) => err,
        };
        if missing_field_of(src, &err).is_some_and(|p| dropped.contains(&p)) {
            break;
        }
        problems.push(parse_error(src, &err));
        let Some(span) = err.span().filter(|_| is_key_error(&err)) else {
            break;
        };
        let key_path = src.path_at(span.start);
        let key_span = src.span_of_key(&key_path).unwrap_or(span);
        if !remove_key(doc.get_mut(), &key_span) {
            break;
        }
        dropped.push(src.label(&key_path));
    }
    problems.sort_by_key(|d| (d.line, d.column));
    Err(problems)
}

/// Errors about one key's name or value, which dropping the key gets past.
fn is_key_error(err: &toml::de::Error) -> bool {
    let m = err.message();
    m.starts_with("unknown field")
        || m.starts_with("invalid type")
        || m.starts_with("invalid value")
}

/// For "missing field `k`" in table `t`, the label `t.k`.
fn missing_field_of(src: &Source<'_>, err: &toml::de::Error) -> Option<String> {
    let field = err
        .message()
        .strip_prefix("missing field `")?
        .strip_suffix('`')?;
    let table = src.path_at(err.span()?.start);
    Some(src.label(&table.key(field)))
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

/// A toml/serde error as a diagnostic naming the key it happened at.
fn parse_error(src: &Source<'_>, err: &toml::de::Error) -> Diagnostic {
    let span = err.span().unwrap_or(0..0);
    let path = src.label(&src.path_at(span.start));
    let mut message = err.message().to_string();
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
        let diags = parse(text, &src).unwrap_err();
        diags.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn example_site_parses() {
        let src = Source::new(SITE, "site.toml");
        assert_eq!(parse(SITE, &src).unwrap().nodes.len(), 5);
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
            .starts_with("site.toml:12:1: error: cluster.dns_domian: unknown field `dns_domian`"));
        assert!(
            got[1].contains("error: update: unknown field `update`"),
            "{got:#?}"
        );
        assert!(
            got[2].contains("error: node[1] (cp2).firmwre: unknown field `firmwre`"),
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
        assert!(got[0].contains("cluster.name: invalid type: integer `1`, expected a string"));
        assert!(got[1].contains("cluster.dns_domian: unknown field"));
        assert!(got[2].contains("boot_server.tftp_port: invalid type: string \"69\", expected u16"));
    }

    #[test]
    fn a_required_key_with_a_bad_type_is_one_problem() {
        let text = SITE.replacen("ip = \"10.20.0.12\"", "ip = 12", 1);
        let got = problems(&text);
        assert_eq!(got.len(), 1, "{got:#?}");
        assert!(got[0].contains("node[1] (cp2).ip: invalid type: integer `12`, expected a string"));
    }
}
