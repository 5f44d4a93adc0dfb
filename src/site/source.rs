//! Where things are in the site file's text.
//!
//! serde forgets positions once `SiteFile` is built, but every diagnostic must
//! name a line and column. So the text is also parsed into toml's spanned
//! document (`DeTable`), and a key path such as `node[2].mac` is looked up there.
//! A value that is absent (defaulted) points at its nearest present ancestor.
//! That second parse happens only when a diagnostic needs a position: a clean
//! site (every rebuild) never pays for it.
use std::cell::OnceCell;
use std::fmt;
use std::ops::Range;

use toml::de::{DeTable, DeValue};
use toml::Spanned;

use super::diagnostic::{Diagnostic, Severity};

/// One step of a key path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A path into the site document, e.g. `cluster.endpoint` or `node[2].mac`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    /// A path of dotted keys, e.g. `KeyPath::of("cluster.endpoint")`.
    pub(crate) fn of(dotted: &str) -> KeyPath {
        KeyPath(dotted.split('.').map(|k| Seg::Key(k.into())).collect())
    }
    /// `node[i]`, optionally followed by a key.
    pub(crate) fn node(index: usize, key: &str) -> KeyPath {
        let path = KeyPath::of("node").index(index);
        if key.is_empty() {
            path
        } else {
            path.key(key)
        }
    }
    pub(crate) fn key(mut self, key: &str) -> KeyPath {
        self.0.push(Seg::Key(key.into()));
        self
    }
    pub(crate) fn index(mut self, index: usize) -> KeyPath {
        self.0.push(Seg::Index(index));
        self
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => f.write_str(k)?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// The site text, its spanned parse (when the syntax is valid) and its name.
pub(crate) struct Source<'a> {
    origin: String,
    text: &'a str,
    doc: OnceCell<Option<Spanned<DeValue<'a>>>>,
    line_starts: OnceCell<Vec<usize>>,
}

impl<'a> Source<'a> {
    pub(crate) fn new(text: &'a str, origin: &str) -> Source<'a> {
        Source {
            origin: origin.to_string(),
            text,
            doc: OnceCell::new(),
            line_starts: OnceCell::new(),
        }
    }

    /// The spanned document, parsed on first use; `None` when the syntax is bad.
    fn doc(&self) -> Option<&Spanned<DeValue<'a>>> {
        self.doc
            .get_or_init(|| DeTable::parse(self.text).ok().map(root_value))
            .as_ref()
    }

    /// Takes `doc`, the spanned parse of this very text, so that a diagnostic
    /// does not parse it again.
    pub(crate) fn adopt(&self, doc: Spanned<DeTable<'a>>) {
        let _ = self.doc.set(Some(root_value(doc)));
    }

    fn line_starts(&self) -> &[usize] {
        self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        })
    }

    /// A diagnostic located at `path`, labelled with node names.
    pub(crate) fn diagnostic(
        &self,
        severity: Severity,
        path: &KeyPath,
        message: String,
    ) -> Diagnostic {
        let offset = self.span_of(path).map_or(0, |s| s.start);
        self.at_offset(severity, self.label(path), offset, message)
    }

    /// A diagnostic at a byte offset, e.g. from a toml parse error.
    pub(crate) fn at_offset(
        &self,
        severity: Severity,
        path: String,
        offset: usize,
        message: String,
    ) -> Diagnostic {
        let (line, column) = self.position(offset);
        Diagnostic {
            severity,
            file: self.origin.clone(),
            path,
            line,
            column,
            message,
        }
    }

    /// 1-based line and character column of a byte offset.
    pub(crate) fn position(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts().partition_point(|&s| s <= offset);
        let start = self.line_starts()[line - 1];
        let column = self
            .text
            .get(start..offset)
            .map_or(0, |s| s.chars().count());
        (line, column + 1)
    }

    /// The text of `span` when it is short and on one line.
    pub(crate) fn snippet(&self, span: Range<usize>) -> Option<&'a str> {
        let text = self.text.get(span)?;
        let ok = !text.trim().is_empty() && text.len() <= 40 && !text.contains('\n');
        ok.then_some(text)
    }

    /// Span of the key (not the value) that ends `path`.
    pub(crate) fn span_of_key(&self, path: &KeyPath) -> Option<Range<usize>> {
        let (last, parent) = path.0.split_last()?;
        let Seg::Key(key) = last else { return None };
        let table = match self.value_at(&KeyPath(parent.to_vec())) {
            Some(v) => v.get_ref().as_table()?,
            None if parent.is_empty() => self.doc()?.get_ref().as_table()?,
            None => return None,
        };
        table.get_key_value(key.as_str()).map(|(k, _)| k.span())
    }

    fn value_at(&self, path: &KeyPath) -> Option<&Spanned<DeValue<'a>>> {
        let mut node = self.doc()?;
        for seg in &path.0 {
            node = match seg {
                Seg::Key(k) => node.get_ref().get(k.as_str())?,
                Seg::Index(i) => node.get_ref().get(*i)?,
            };
        }
        Some(node)
    }

    /// Span of the value at `path`, or of its nearest present ancestor.
    pub(crate) fn span_of(&self, path: &KeyPath) -> Option<Range<usize>> {
        let mut node = self.doc()?;
        let mut span = None;
        for seg in &path.0 {
            let next = match seg {
                Seg::Key(k) => node.get_ref().get(k.as_str()),
                Seg::Index(i) => node.get_ref().get(*i),
            };
            match next {
                Some(v) => {
                    node = v;
                    span = Some(v.span());
                }
                None => break,
            }
        }
        span
    }

    /// The path as shown to the operator: `node[2] (cp3).mac`.
    pub(crate) fn label(&self, path: &KeyPath) -> String {
        let mut out = String::new();
        for (i, seg) in path.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => out.push_str(k),
                Seg::Key(k) => {
                    out.push('.');
                    out.push_str(k);
                }
                Seg::Index(n) => {
                    out.push_str(&format!("[{n}]"));
                    if i == 1 && path.0[0] == Seg::Key("node".into()) {
                        if let Some(name) = self.node_name(*n) {
                            out.push_str(&format!(" ({name})"));
                        }
                    }
                }
            }
        }
        out
    }

    fn node_name(&self, index: usize) -> Option<&str> {
        let doc = self.doc()?.get_ref();
        doc.get("node")?
            .get_ref()
            .get(index)?
            .get_ref()
            .get("name")?
            .get_ref()
            .as_str()
    }

    /// The path of the table whose span is exactly `span`: where serde puts
    /// a "missing field" error. The root's span is empty, so no `[header]`
    /// that starts the file is mistaken for it.
    pub(crate) fn table_at(&self, span: &Range<usize>) -> Option<KeyPath> {
        let doc = self.doc()?;
        if doc.span() == *span {
            return Some(KeyPath::default());
        }
        table_with_span(doc.get_ref(), span, &KeyPath::default())
    }

    /// The deepest key path whose key or value covers `offset`.
    pub(crate) fn path_at(&self, offset: usize) -> KeyPath {
        self.doc()
            .and_then(|doc| deepest_at(doc.get_ref(), offset, &KeyPath::default()))
            .unwrap_or_default()
    }
}

/// The document's root table as a value, so paths start from one node.
fn root_value(doc: Spanned<DeTable<'_>>) -> Spanned<DeValue<'_>> {
    Spanned::new(doc.span(), DeValue::Table(doc.into_inner()))
}

/// The deepest table below `value` whose span is `span`. An array of tables
/// shares its span with its first element, so only tables count.
fn table_with_span(value: &DeValue<'_>, span: &Range<usize>, at: &KeyPath) -> Option<KeyPath> {
    let children: Vec<(Seg, &Spanned<DeValue<'_>>)> = match value {
        DeValue::Table(table) => table
            .iter()
            .map(|(k, v)| (Seg::Key(k.get_ref().to_string()), v))
            .collect(),
        DeValue::Array(array) => array
            .iter()
            .enumerate()
            .map(|(i, v)| (Seg::Index(i), v))
            .collect(),
        _ => return None,
    };
    for (seg, child) in children {
        let mut path = at.clone();
        path.0.push(seg);
        if let Some(deeper) = table_with_span(child.get_ref(), span, &path) {
            return Some(deeper);
        }
        if child.span() == *span && matches!(child.get_ref(), DeValue::Table(_)) {
            return Some(path);
        }
    }
    None
}

/// A child of a table or array: its step, its key's span, its value.
type Child<'v, 'a> = (Seg, Option<Range<usize>>, &'v Spanned<DeValue<'a>>);

/// Searches the whole tree: a table's span is only its `[header]`, so its
/// keys lie outside it and every branch has to be visited.
fn deepest_at(value: &DeValue<'_>, offset: usize, at: &KeyPath) -> Option<KeyPath> {
    let covers = |r: Range<usize>| r.start <= offset && offset < r.end.max(r.start + 1);
    let mut children: Vec<Child<'_, '_>> = Vec::new();
    match value {
        DeValue::Table(table) => children.extend(
            table
                .iter()
                .map(|(k, v)| (Seg::Key(k.get_ref().to_string()), Some(k.span()), v)),
        ),
        DeValue::Array(array) => children.extend(
            array
                .iter()
                .enumerate()
                .map(|(i, v)| (Seg::Index(i), None, v)),
        ),
        _ => return None,
    }
    for (seg, key_span, child) in children {
        let mut path = at.clone();
        path.0.push(seg);
        if let Some(deeper) = deepest_at(child.get_ref(), offset, &path) {
            return Some(deeper);
        }
        if key_span.is_some_and(covers) || covers(child.span()) {
            return Some(path);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "[cluster]\nname = \"rack1\"\n\n[[node]]\nname = \"cp1\"\nmac = \"x\"\n\n[[node]]\nname = \"cp2\"\n mac = \"é\"\n";

    #[test]
    fn finds_values_and_labels_nodes() {
        let src = Source::new(TEXT, "site.toml");
        let d = src.diagnostic(Severity::Error, &KeyPath::node(1, "mac"), "bad".into());
        assert_eq!(
            d.to_string(),
            "site.toml:10:8: error: node[1] (cp2).mac: bad"
        );
        let d = src.diagnostic(Severity::Error, &KeyPath::of("cluster.name"), "bad".into());
        assert_eq!((d.line, d.column), (2, 8));
    }

    #[test]
    fn absent_value_points_at_its_ancestor() {
        let src = Source::new(TEXT, "site.toml");
        let here = src.span_of(&KeyPath::node(0, "")).unwrap();
        let absent = src.span_of(&KeyPath::node(0, "disk")).unwrap();
        assert_eq!(here, absent);
        assert_eq!(src.span_of(&KeyPath::of("network.subnet")), None);
    }

    #[test]
    fn tables_are_found_by_their_exact_span() {
        let src = Source::new(TEXT, "site.toml");
        assert_eq!(src.table_at(&(0..0)), Some(KeyPath::default()));
        let cluster = TEXT.find("[cluster]").unwrap();
        assert_eq!(
            src.table_at(&(cluster..cluster + "[cluster]".len())),
            Some(KeyPath::of("cluster"))
        );
        let second = TEXT.rfind("[[node]]").unwrap();
        assert_eq!(
            src.table_at(&(second..second + "[[node]]".len())),
            Some(KeyPath::node(1, ""))
        );
        assert_eq!(src.table_at(&(1..4)), None);
    }

    #[test]
    fn offsets_map_back_to_paths() {
        let src = Source::new(TEXT, "site.toml");
        let offset = TEXT.find("\"x\"").unwrap();
        assert_eq!(src.path_at(offset), KeyPath::node(0, "mac"));
        assert_eq!(src.label(&src.path_at(offset)), "node[0] (cp1).mac");
    }
}
