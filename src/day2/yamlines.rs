//! Just enough of YAML's block layout, read line by line, to find and rewrite
//! the `repoURL`/`targetRevision` of an Application's git sources without a
//! parse-and-reserialise round trip, which would drop the operator's comments,
//! quoting and formatting. Flow mappings (`{repoURL: …}`) are not followed;
//! callers cross-check what is found here against the parsed documents.
use std::ops::Range;

/// A non-blank, non-comment line: where its content starts and its `key:` if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry<'a> {
    /// Column of the content after any `- ` item markers.
    pub col: usize,
    /// Column of the first `- ` marker, when the line starts a list item.
    pub dash: Option<usize>,
    /// The plain key of a `key: value` line.
    pub key: Option<&'a str>,
    /// The value after `key:` as written (quotes kept, comment dropped), and
    /// its byte range in the line.
    pub value: Option<Scalar>,
}

/// A scalar value as written on its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Scalar {
    /// The value, unquoted.
    pub text: String,
    /// Byte range of the value as written (with its quotes) in the line.
    pub span: Range<usize>,
    /// `'"'`, `'\''`, or `None` for a plain scalar.
    pub quote: Option<char>,
}

/// Reads one line (without its line ending); `None` for blank and comment lines.
pub(crate) fn entry(line: &str) -> Option<Entry<'_>> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let mut col = indent;
    let mut dash = None;
    while line[col..].starts_with("- ") || &line[col..] == "-" {
        dash.get_or_insert(col);
        col += 1;
        col += line[col..].len() - line[col..].trim_start_matches(' ').len();
    }
    let content = &line[col..];
    if content.is_empty() || content.starts_with('#') {
        return dash.map(|_| Entry {
            col,
            dash,
            key: None,
            value: None,
        });
    }
    let (key, value) = match key_of(content) {
        Some((key, after)) => (Some(key), Some(scalar(line, col + after))),
        None => (None, None),
    };
    Some(Entry {
        col,
        dash,
        key,
        value,
    })
}

/// `key` and the offset just past `key:` when `content` is a plain-key mapping line.
fn key_of(content: &str) -> Option<(&str, usize)> {
    let end = content.find(':')?;
    let key = &content[..end];
    let plain = !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-.$/".contains(&b));
    let rest = &content[end + 1..];
    (plain && (rest.is_empty() || rest.starts_with(' '))).then_some((key, end + 1))
}

/// The scalar starting after byte `from` of `line` (spaces skipped).
fn scalar(line: &str, from: usize) -> Scalar {
    let start = from + (line[from..].len() - line[from..].trim_start().len());
    let rest = &line[start..];
    let quoted = |q: char| {
        let mut text = String::new();
        let mut chars = rest.char_indices().skip(1).peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' if q == '"' => text.extend(chars.next().map(|(_, c)| c)),
                '\'' if q == '\'' && chars.peek().map(|p| p.1) == Some('\'') => {
                    chars.next();
                    text.push('\'');
                }
                c if c == q => return (text, i + 1),
                c => text.push(c),
            }
        }
        (text, rest.len())
    };
    let (text, len, quote) = match rest.chars().next() {
        Some(q @ ('"' | '\'')) => {
            let (text, len) = quoted(q);
            (text, len, Some(q))
        }
        _ => {
            let end = rest.find(" #").unwrap_or(rest.len());
            let text = rest[..end].trim_end();
            (text.to_string(), text.len(), None)
        }
    };
    Scalar {
        text,
        span: start..start + len,
        quote,
    }
}

/// The value as YAML text: in the original quoting when there was any, plain
/// when YAML reads it back as the same string, double-quoted otherwise
/// (a revision like `1.0` must stay a string).
pub(crate) fn render(value: &str, quote: Option<char>) -> String {
    let double = || format!("\"{}\"", value.replace('\\', "\\\\").replace('"', "\\\""));
    match quote {
        Some('\'') => format!("'{}'", value.replace('\'', "''")),
        Some(_) => double(),
        None if reads_back_as_string(value) => value.to_string(),
        None => double(),
    }
}

fn reads_back_as_string(value: &str) -> bool {
    let plain_chars = value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._/:@~+%=-".contains(&b));
    plain_chars
        && !value.is_empty()
        && serde_norway::from_str::<serde_norway::Value>(value).ok()
            == Some(serde_norway::Value::String(value.to_string()))
}

/// Indices of the lines of the block mapping that holds the key on line `at`
/// (its siblings, not nested lines): up to the item or parent that opens it,
/// down to the next item or a less indented line.
pub(crate) fn siblings(entries: &[Option<Entry<'_>>], at: usize) -> Vec<usize> {
    let Some(me) = &entries[at] else {
        return Vec::new();
    };
    let col = me.col;
    let mut lines = vec![at];
    if me.dash.is_none() {
        for i in (0..at).rev() {
            match &entries[i] {
                None => continue,
                Some(e) if e.col > col && e.dash.is_none_or(|d| d >= col) => continue,
                Some(e) if e.col == col => {
                    lines.push(i);
                    if e.dash.is_some() {
                        break;
                    }
                }
                Some(_) => break,
            }
        }
    }
    for (i, e) in entries.iter().enumerate().skip(at + 1) {
        match e {
            None => continue,
            Some(e) if e.col > col && e.dash.is_none_or(|d| d >= col) => continue,
            Some(e) if e.col == col && e.dash.is_none() => lines.push(i),
            Some(_) => break,
        }
    }
    lines.sort_unstable();
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_read_keys_items_and_values() {
        let e = entry("    - repoURL: https://x/y.git  # ours").unwrap();
        assert_eq!((e.col, e.dash, e.key), (6, Some(4), Some("repoURL")));
        let v = e.value.unwrap();
        assert_eq!(
            (v.text.as_str(), v.span, v.quote),
            ("https://x/y.git", 15..30, None)
        );
        let e = entry("  targetRevision: \"v1 # not a comment\" # c").unwrap();
        let v = e.value.unwrap();
        assert_eq!(v.text, "v1 # not a comment");
        assert_eq!(v.quote, Some('"'));
        assert_eq!(
            &"  targetRevision: \"v1 # not a comment\" # c"[v.span],
            "\"v1 # not a comment\""
        );
        let e = entry("  ref: 'it''s'").unwrap();
        assert_eq!(e.value.unwrap().text, "it's");
        assert_eq!(entry("   # comment"), None);
        assert_eq!(entry(""), None);
        let e = entry("      - $values/payload/core/cilium/values.yaml").unwrap();
        assert_eq!((e.col, e.key), (8, None));
        assert_eq!(entry("kind: Application").unwrap().key, Some("kind"));
        assert_eq!(entry("url: http://x").unwrap().key, Some("url"));
        assert_eq!(entry("http://x").unwrap().key, None);
    }

    #[test]
    fn render_keeps_quotes_and_quotes_what_yaml_would_misread() {
        assert_eq!(render("https://g/x.git", None), "https://g/x.git");
        assert_eq!(render("git@g:x.git", None), "git@g:x.git");
        assert_eq!(render("1.0", None), "\"1.0\"");
        assert_eq!(render("true", None), "\"true\"");
        assert_eq!(render("a b", None), "\"a b\"");
        assert_eq!(render("main", Some('"')), "\"main\"");
        assert_eq!(render("it's", Some('\'')), "'it''s'");
    }

    #[test]
    fn siblings_stop_at_the_next_item_and_skip_nested_lines() {
        let text = "spec:\n  sources:\n    - repoURL: a\n      chart: c\n      helm:\n        x: 1\n\
                    \x20   - repoURL: b\n      # note\n      targetRevision: main\n      ref: values\n  destination: {}\n";
        let lines: Vec<&str> = text.lines().collect();
        let entries: Vec<_> = lines.iter().map(|l| entry(l)).collect();
        assert_eq!(siblings(&entries, 2), [2, 3, 4]);
        assert_eq!(siblings(&entries, 6), [6, 8, 9]);
        assert_eq!(siblings(&entries, 8), [6, 8, 9]);
        assert_eq!(siblings(&entries, 10), [1, 10]);
    }
}
