//! Maps key paths (`storage.files.0.path`) to YAML source positions.
//!
//! `serde_norway` values carry no positions, so a small line scanner walks the
//! text tracking indentation, `key:` lines and `- ` list items. It understands
//! block-style YAML (what Butane templates use) including block scalars
//! (`|`, `>`); flow collections and multi-line plain scalars are not descended
//! into, and paths inside them simply have no entry (callers fall back to the
//! nearest ancestor that has one).
use std::collections::{HashMap, HashSet};

/// 1-based (line, column) of each key path's key (or list item dash).
pub(super) type Locations = HashMap<String, (usize, usize)>;

enum Seg {
    Key(String),
    Item(usize),
}

struct Frame {
    indent: usize,
    seg: Seg,
}

#[derive(Default)]
struct Scanner {
    stack: Vec<Frame>,
    counters: HashMap<String, usize>,
    out: Locations,
    scalars: Scalars,
    /// While inside a block scalar: lines indented more than this belong to it.
    block_indent: Option<usize>,
}

/// Scans `text` and returns the position of every key path it can see.
#[cfg(test)]
pub(crate) fn scan(text: &str) -> Locations {
    scan_with_scalars(text).0
}

/// What the parsed YAML value forgets about scalars written on their key's
/// (or list item's) line.
#[derive(Debug, Default)]
pub(super) struct Scalars {
    /// Key paths whose value is quoted (`mode: "0644"`), which the parsed
    /// value cannot tell apart from a plain `0644`.
    pub quoted: HashSet<String>,
    /// The source text of plain scalars (`1.50`, `True`), which Butane's
    /// YAML library stores verbatim into string fields.
    pub plain: HashMap<String, String>,
}

/// Like [`scan`], plus what it saw of scalar values.
pub(super) fn scan_with_scalars(text: &str) -> (Locations, Scalars) {
    let mut s = Scanner::default();
    for (n, line) in text.lines().enumerate() {
        s.line(n + 1, line);
    }
    (s.out, s.scalars)
}

/// Records the scalar written after a key or list dash, if it is one.
fn record_scalar(scalars: &mut Scalars, path: &str, value: &str) {
    let value = value.trim();
    if value.starts_with(['"', '\'']) {
        scalars.quoted.insert(path.to_string());
    } else if !value.is_empty() && !value.starts_with(['|', '>', '[', '{', '&', '*', '!', '#']) {
        let text = value.split(" #").next().unwrap_or(value).trim_end();
        scalars.plain.insert(path.to_string(), text.to_string());
    }
}

/// Looks up `path`, falling back to its nearest ancestor with a position.
pub(super) fn find(locs: &Locations, path: &str) -> Option<(usize, usize)> {
    let mut p = path;
    loop {
        if let Some(pos) = locs.get(p) {
            return Some(*pos);
        }
        p = &p[..p.rfind('.')?];
    }
}

impl Scanner {
    fn path(&self) -> String {
        let segs: Vec<String> = self
            .stack
            .iter()
            .map(|f| match &f.seg {
                Seg::Key(k) => k.clone(),
                Seg::Item(i) => i.to_string(),
            })
            .collect();
        segs.join(".")
    }

    fn line(&mut self, lineno: usize, line: &str) {
        let line = line.strip_suffix('\r').unwrap_or(line);
        let body = line.trim_start_matches(' ');
        let indent = line.len() - body.len();
        if let Some(bi) = self.block_indent {
            if body.is_empty() || indent > bi {
                return;
            }
            self.block_indent = None;
        }
        if body.is_empty()
            || body.starts_with('#')
            || body.starts_with("---")
            || body.starts_with("...")
        {
            return;
        }
        self.content(lineno, indent, body);
    }

    /// Handles the content starting at column `indent` (0-based).
    fn content(&mut self, lineno: usize, indent: usize, body: &str) {
        if body == "-" || body.starts_with("- ") {
            self.item(lineno, indent, body);
        } else if let Some((key, rest)) = split_key(body) {
            self.key(lineno, indent, key, rest);
        }
    }

    fn item(&mut self, lineno: usize, indent: usize, body: &str) {
        // A sequence may sit at the same indentation as its parent key, so only
        // sibling items (not keys) at this indentation are closed.
        while let Some(top) = self.stack.last() {
            let sibling = top.indent == indent && matches!(top.seg, Seg::Item(_));
            if top.indent > indent || sibling {
                self.stack.pop();
            } else {
                break;
            }
        }
        let parent = self.path();
        let counter = self.counters.entry(parent).or_insert(0);
        let index = *counter;
        *counter += 1;
        self.stack.push(Frame {
            indent,
            seg: Seg::Item(index),
        });
        self.out.insert(self.path(), (lineno, indent + 1));
        let rest = body[1..].trim_start_matches(' ');
        if split_key(rest).is_none() && !rest.starts_with("- ") {
            let path = self.path();
            record_scalar(&mut self.scalars, &path, rest);
        }
        if rest.starts_with('|') || rest.starts_with('>') {
            self.block_indent = Some(indent);
        } else if !rest.is_empty() && !rest.starts_with('#') {
            let inner = indent + (body.len() - rest.len());
            self.content(lineno, inner, rest);
        }
    }

    fn key(&mut self, lineno: usize, indent: usize, key: String, rest: &str) {
        while self.stack.last().is_some_and(|top| top.indent >= indent) {
            self.stack.pop();
        }
        self.stack.push(Frame {
            indent,
            seg: Seg::Key(key),
        });
        let path = self.path();
        // A repeated key (a new mapping under the same parent) restarts its lists.
        self.counters.remove(&path);
        let value = rest.trim();
        record_scalar(&mut self.scalars, &path, value);
        self.out.insert(path, (lineno, indent + 1));
        if value.starts_with('|') || value.starts_with('>') {
            self.block_indent = Some(indent);
        }
    }
}

/// Splits `key: rest` (or `key:` at end of line); handles quoted keys.
fn split_key(body: &str) -> Option<(String, &str)> {
    if let Some(q) = body.chars().next().filter(|c| *c == '"' || *c == '\'') {
        let end = body[1..].find(q)? + 1;
        let after = body[end + 1..].strip_prefix(':')?;
        if !(after.is_empty() || after.starts_with(' ')) {
            return None;
        }
        return Some((body[1..end].to_string(), after));
    }
    let mut search = 0;
    while let Some(pos) = body[search..].find(':') {
        let at = search + pos;
        let after = &body[at + 1..];
        if after.is_empty() || after.starts_with(' ') {
            let key = body[..at].trim_end();
            if key.is_empty() || key.starts_with(['{', '[', '"', '\'']) {
                return None;
            }
            return Some((key.to_string(), after));
        }
        search = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
variant: flatcar
version: 1.0.0
storage:
  files:
    - path: /a
      mode: 0644
      contents:
        inline: |
          key: not a key
          - not an item
    - path: /b
  links:
  - path: /c
    target: /a
systemd:
  units:
    - name: x.service
      dropins:
        - name: a.conf
";

    #[test]
    fn keys_and_items_get_positions() {
        let l = scan(DOC);
        assert_eq!(l["variant"], (1, 1));
        assert_eq!(l["storage.files.0"], (5, 5));
        assert_eq!(l["storage.files.0.path"], (5, 7));
        assert_eq!(l["storage.files.0.mode"], (6, 7));
        assert_eq!(l["storage.files.0.contents.inline"], (8, 9));
        assert_eq!(l["storage.files.1.path"], (11, 7));
        assert_eq!(l["storage.links.0.target"], (14, 5));
        assert_eq!(l["systemd.units.0.dropins.0.name"], (19, 11));
        assert!(!l.contains_key("storage.files.0.contents.key"));
    }

    #[test]
    fn find_falls_back_to_the_nearest_ancestor() {
        let l = scan(DOC);
        assert_eq!(find(&l, "storage.files.1.contents.source"), Some((11, 5)));
        assert_eq!(find(&l, "passwd.users"), None);
    }

    #[test]
    fn quoted_values_are_recorded() {
        let (_, sc) =
            scan_with_scalars("a:\n  - mode: \"0644\"\n    b: '1'\n    c: 1.50 # x\n  - True\n");
        let mut q: Vec<_> = sc.quoted.into_iter().collect();
        q.sort();
        assert_eq!(q, ["a.0.b", "a.0.mode"]);
        assert_eq!(sc.plain["a.0.c"], "1.50");
        assert_eq!(sc.plain["a.1"], "True");
    }

    #[test]
    fn crlf_line_endings() {
        let l = scan("a:\r\n  b:\r\n    - c: 1\r\n");
        assert_eq!(l["a.b.0.c"], (3, 7));
    }

    #[test]
    fn block_scalar_list_items_are_skipped() {
        let l = scan("a:\n  - |\n    b: 1\n    - c\n  - d: 2\n");
        assert_eq!(l["a.1.d"], (5, 5));
        assert!(!l.contains_key("a.0.b"));
    }

    #[test]
    fn quoted_keys_and_colons_in_values() {
        let l = scan("\"a b\": 1\nurl: http://x:80/\nc:\n  - - d: 1\n");
        assert_eq!(l["a b"], (1, 1));
        assert_eq!(l["url"], (2, 1));
        assert_eq!(l["c.0.0.d"], (4, 7));
    }
}
