//! The site's `templates/` as one Handlebars registry: strict mode (a missing
//! variable is an error), no HTML escaping, and the helpers YAML needs.
//!
//! Every `*.hbs` file is registered under its path relative to `templates/`
//! without the `.hbs` suffix (`node.bu`, `kubeadm/init.yaml`, `partials/units`),
//! so partials are just templates: `{{> partials/units}}`.
//!
//! A site directory without `templates/` renders from the templates built
//! into pxebuild (`crate::embedded`); the origin (`site` or `embedded`) is
//! part of the step keys beside the templates' digest, and messages name a
//! built-in template as `pxebuild:templates/<file>.hbs`.
//!
//! Problems name the file as `templates/<file>.hbs:line:column`. A template
//! that does not compile is reported once for the whole build (not as a
//! failure of whichever steps rendered first), with an excerpt, and an
//! unclosed block is named where it opens (Handlebars itself only notices at
//! the end of the file).
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{anyhow, Result};
use handlebars::{handlebars_helper, Handlebars};
use serde::Serialize;

use crate::engine::step::SharedInputError;
use crate::error::BadInput;

/// The site's templates, their digest, and the registry compiled from them.
///
/// Compiling is deferred to the first render: a rebuild whose steps are all
/// cached never renders, and Handlebars' parser is the largest single cost of
/// planning one. A syntax error therefore surfaces from the first step that
/// renders, as an error about the template (not the step).
pub struct Templates {
    sources: Vec<(String, String)>,
    /// The directory as messages name it (`./templates`, or
    /// `pxebuild:templates` for the built-in ones).
    dir: PathBuf,
    /// Where they came from: `site` (the site's templates/) or `embedded`.
    origin: &'static str,
    /// The registry, or (how many templates are broken, what is wrong).
    registry: OnceLock<Result<Handlebars<'static>, (usize, String)>>,
    digest: String,
}

// `json v`: the JSON encoding of any value. A JSON string is a valid YAML
// double-quoted scalar, so `key: {{json value}}` is safe whatever the value holds.
handlebars_helper!(json: |v: Json| serde_json::to_string(v).unwrap_or_default());
// `indent n text`: every line but the first prefixed with n spaces (for block
// scalars whose first line follows the key's own indentation).
handlebars_helper!(indent: |n: u64, text: str| indent_text(text, n as usize));
// `base64 text`
handlebars_helper!(b64: |text: str| {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text.as_bytes())
});
// `join list sep`
handlebars_helper!(join: |list: array, sep: str| list
    .iter()
    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
    .collect::<Vec<_>>()
    .join(sep));
// `eq a b`
handlebars_helper!(eq: |a: Json, b: Json| a == b);

impl Templates {
    /// Whether `dir` exists as a directory; fails (bad input) when it is
    /// something else, naming what belongs there.
    pub fn check_dir(dir: &Path) -> Result<bool> {
        match std::fs::metadata(dir) {
            Ok(meta) if meta.is_dir() => Ok(true),
            Ok(_) => Err(BadInput::new(format!(
                "{} is not a directory: the build renders every node's Butane and boot \
                 configs from the *.hbs templates in a templates/ directory beside site.toml \
                 (remove it to use the templates built into pxebuild)",
                dir.display()
            ))),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(false),
            Err(err) => Err(anyhow!(
                "reading templates directory {}: {err}",
                dir.display()
            )),
        }
    }

    /// The site's templates: every `*.hbs` under `dir` when it exists, else
    /// the templates built into pxebuild.
    pub fn for_site(dir: &Path) -> Result<Templates> {
        if Templates::check_dir(dir)? {
            Templates::load(dir)
        } else {
            Ok(Templates::embedded())
        }
    }

    /// The templates built into pxebuild (the repository's templates/).
    pub fn embedded() -> Templates {
        let files = crate::embedded::under("templates")
            .filter_map(|(path, bytes)| {
                let name = path.strip_suffix(".hbs")?;
                // build.rs includes the repository's files, which are UTF-8
                // (the unit test of `crate::embedded` reads them all).
                Some((
                    name.to_string(),
                    String::from_utf8_lossy(bytes).into_owned(),
                ))
            })
            .collect();
        let mut templates = Templates::from_sources(files);
        templates.dir = PathBuf::from(crate::embedded::TEMPLATES_NAME);
        templates.origin = crate::embedded::ORIGIN;
        templates
    }

    /// Loads every `*.hbs` under `dir`.
    pub fn load(dir: &Path) -> Result<Templates> {
        if !Templates::check_dir(dir)? {
            return Err(BadInput::new(format!(
                "templates directory {} does not exist",
                dir.display()
            )));
        }
        let mut files = Vec::new();
        for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
            // walkdir's error repeats its cause in its text: one line, no chain.
            let entry = entry.map_err(|err| {
                let at = err.path().unwrap_or(dir).display().to_string();
                match err.io_error() {
                    Some(io) => anyhow!("reading templates: {at}: {io}"),
                    None => anyhow!("reading templates in {}: {err}", dir.display()),
                }
            })?;
            let path = entry.path();
            if !entry.file_type().is_file() || path.extension().is_none_or(|e| e != "hbs") {
                continue;
            }
            let rel = path
                .strip_prefix(dir)
                .expect("walkdir stays under its root");
            let name = rel.to_string_lossy().trim_end_matches(".hbs").to_string();
            let text = std::fs::read_to_string(path).map_err(|err| {
                if err.kind() == std::io::ErrorKind::InvalidData {
                    BadInput::new(format!("template {} is not UTF-8 text", path.display()))
                } else {
                    anyhow!("reading template {}: {err}", path.display())
                }
            })?;
            files.push((name, text));
        }
        if files.is_empty() {
            return Err(BadInput::new(format!(
                "no *.hbs templates in {}",
                dir.display()
            )));
        }
        let mut templates = Templates::from_sources(files);
        templates.dir = dir.to_path_buf();
        templates.origin = "site";
        Ok(templates)
    }

    /// The templates given as (name, text) pairs.
    pub fn from_sources(files: Vec<(String, String)>) -> Templates {
        let mut hasher = blake3::Hasher::new();
        for (name, text) in &files {
            hasher.update(name.as_bytes()).update(b"\0");
            hasher.update(text.as_bytes()).update(b"\0");
        }
        Templates {
            sources: files,
            dir: PathBuf::from("templates"),
            origin: "site",
            registry: OnceLock::new(),
            digest: hasher.finalize().to_hex().to_string(),
        }
    }

    /// Registers every template; every one that does not compile is described.
    fn compile(&self) -> Result<Handlebars<'static>, (usize, String)> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(handlebars::no_escape);
        registry.register_helper("json", Box::new(json));
        registry.register_helper("indent", Box::new(indent));
        registry.register_helper("base64", Box::new(b64));
        registry.register_helper("join", Box::new(join));
        registry.register_helper("eq", Box::new(eq));
        let mut problems = Vec::new();
        for (name, text) in &self.sources {
            if let Err(err) = registry.register_template_string(name, text) {
                problems.push(syntax::describe(&self.file(name), text, &err));
            }
        }
        if problems.is_empty() {
            Ok(registry)
        } else {
            Err((problems.len(), problems.join("\n")))
        }
    }

    fn registry(&self) -> Result<&Handlebars<'static>> {
        self.registry
            .get_or_init(|| self.compile())
            .as_ref()
            .map_err(|(count, text)| {
                let what = match count {
                    1 => "template error".to_string(),
                    n => format!("{n} template errors"),
                };
                BadInput::new(text.clone()).context(SharedInputError(what))
            })
    }

    /// Fails (bad input) naming every one of `names` that has no template, so
    /// a templates/ that lacks something is refused before the build creates
    /// secrets or fetches artifacts, not when the first step renders.
    pub fn require(&self, names: &[&str]) -> Result<()> {
        let missing: Vec<String> = names
            .iter()
            .filter(|name| !self.sources.iter().any(|(have, _)| have == *name))
            .map(|name| self.file(name))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        Err(BadInput::new(format!(
            "{} template(s) this site renders are missing: {} (`pxebuild init DIR` writes \
             every one into DIR/templates/ to copy from; without a templates/ directory \
             the site uses the templates built into pxebuild)",
            missing.len(),
            missing.join(", ")
        )))
    }

    /// Where the templates came from, as step keys name it: `site` or
    /// `embedded`.
    pub fn origin(&self) -> &'static str {
        self.origin
    }

    /// The templates as (name, text), sorted by name.
    pub fn sources(&self) -> &[(String, String)] {
        &self.sources
    }

    /// How messages name template `name`: `templates/<name>.hbs`.
    fn file(&self, name: &str) -> String {
        format!("{}/{name}.hbs", self.dir.display())
    }

    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Renders template `name` (e.g. `node.bu`) with `data`.
    pub fn render(&self, name: &str, data: &impl Serialize) -> Result<String> {
        self.registry()?.render(name, data).map_err(|err| {
            // Where it went wrong may be a partial the template includes.
            let at = match (err.line_no, err.column_no) {
                (Some(line), Some(column)) => format!(":{line}:{column}"),
                _ => String::new(),
            };
            let place = match err.template_name.as_deref() {
                Some(inner) if inner != name => {
                    format!("{}, in {}{at}", self.file(name), self.file(inner))
                }
                _ => format!("{}{at}", self.file(name)),
            };
            let reason = match err.reason() {
                handlebars::RenderErrorReason::MissingVariable(Some(var)) => {
                    format!("{var} is not defined (templates render in strict mode)")
                }
                other => other.to_string(),
            };
            BadInput::new(format!("rendering template {place}: {reason}"))
        })
    }
}

fn indent_text(text: &str, n: usize) -> String {
    let pad = " ".repeat(n);
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.push('\n');
            if !line.is_empty() {
                out.push_str(&pad);
            }
        }
        out.push_str(line);
    }
    out
}

/// Describing a template that does not compile: where (file:line:column,
/// 1-based, with an excerpt) and what, naming an unclosed block where it
/// opens.
mod syntax {
    use handlebars::{TemplateError, TemplateErrorReason};

    /// `file:line:column: what`, then an excerpt with a caret.
    pub(super) fn describe(file: &str, text: &str, err: &TemplateError) -> String {
        let reason = err.reason().to_string();
        let Some((line, column)) = err.pos() else {
            return format!("{file}: {reason}");
        };
        let blocks = scan(text);
        let at_end = offset(text, line, column).is_none_or(|at| text[at..].trim().is_empty());
        // Handlebars notices an unclosed block only at the end of the file,
        // and names neither block of a mismatched pair's opening: the scan does.
        let about_blocks = match err.reason() {
            TemplateErrorReason::InvalidSyntax(_) => at_end,
            TemplateErrorReason::MismatchingClosedHelper(..)
            | TemplateErrorReason::MismatchingClosedDecorator(..) => true,
            _ => false,
        };
        let (line, column, what) = match blocks_problem(&blocks, text) {
            Some(found) if about_blocks => found,
            _ => (line, column, reason),
        };
        format!(
            "{file}:{line}:{column}: {what}\n{}",
            excerpt(text, line, column)
        )
    }

    /// Where the block structure is broken and how: (line, column, what).
    fn blocks_problem(blocks: &Blocks, text: &str) -> Option<(usize, usize, String)> {
        let at = |t: &Tag| format!("{}:{}", t.line, t.column);
        let (outer, open) = match blocks.unclosed.split_last() {
            Some((open, outer)) => (outer, Some(open)),
            None => (&[][..], None),
        };
        let also = |outer: &[Tag]| {
            if outer.is_empty() {
                return String::new();
            }
            let list: Vec<String> = outer
                .iter()
                .map(|t| format!("{} at {}", t.text, at(t)))
                .collect();
            format!(" (also still open: {})", list.join(", "))
        };
        match (&blocks.mismatch, open) {
            (None, Some(open)) => Some((
                open.line,
                open.column,
                format!(
                    "{} is never closed: no {{{{/{}}}}} before the end of the file (line {}){}",
                    open.text,
                    open.name,
                    text.lines().count().max(1),
                    also(outer)
                ),
            )),
            (None, None) => None,
            (Some((_, close)), None) | (Some((None, close)), _) => Some((
                close.line,
                close.column,
                format!("{} closes a block that is not open", close.text),
            )),
            (Some((Some(_), close)), Some(open)) => {
                if outer.iter().any(|t| t.name == close.name) {
                    Some((
                        open.line,
                        open.column,
                        format!(
                            "{} is never closed: {} at {} closes an outer block first",
                            open.text,
                            close.text,
                            at(close)
                        ),
                    ))
                } else {
                    Some((
                        close.line,
                        close.column,
                        format!(
                            "{} does not close {}, opened at {}",
                            close.text,
                            open.text,
                            at(open)
                        ),
                    ))
                }
            }
        }
    }

    /// A block tag: `{{#each items}}` opens block `each`.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(super) struct Tag {
        pub name: String,
        /// The tag as written (shortened when long).
        pub text: String,
        pub line: usize,
        pub column: usize,
    }

    #[derive(Debug, Default, PartialEq, Eq)]
    pub(super) struct Blocks {
        /// Blocks still open at the end of the file, outermost first.
        pub unclosed: Vec<Tag>,
        /// The first closing tag that does not close the innermost open
        /// block: (that block, if any; the closing tag). Scanning stops there.
        pub mismatch: Option<(Option<Tag>, Tag)>,
    }

    /// The block structure of a template: a light scan of its `{{...}}`
    /// tags (comments, raw blocks and `\{{` escapes skipped), enough to
    /// say which block a syntax error leaves open.
    pub(super) fn scan(text: &str) -> Blocks {
        let mut blocks = Blocks::default();
        let mut i = 0;
        while let Some(found) = text[i..].find("{{") {
            let start = i + found;
            if start > 0 && text.as_bytes()[start - 1] == b'\\' {
                i = start + 2;
                continue;
            }
            let rest = &text[start..];
            let end = if rest.starts_with("{{{{") {
                // A raw block: nothing inside it is a tag.
                let close = rest.find("}}}}").and_then(|open_end| {
                    let after = open_end + 4;
                    let inner = rest[after..].find("{{{{/")?;
                    let close = rest[after + inner..].find("}}}}")?;
                    Some(after + inner + close + 4)
                });
                match close {
                    Some(len) => start + len,
                    None => break,
                }
            } else if rest.starts_with("{{!--") {
                match rest.find("--}}") {
                    Some(len) => start + len + 4,
                    None => break,
                }
            } else {
                let Some(len) = rest.find("}}") else { break };
                let tag = &rest[..len + 2];
                if !visit(text, start, tag, &mut blocks) {
                    return blocks;
                }
                start + len + 2
            };
            i = end;
        }
        blocks
    }

    /// Takes one tag into the block structure; false on a mismatch.
    fn visit(text: &str, start: usize, tag: &str, blocks: &mut Blocks) -> bool {
        let inner = tag[2..tag.len() - 2].trim_start_matches(['{', '~']);
        let name_of = |s: &str| -> String {
            s.trim_start()
                .split(|c: char| c.is_whitespace() || matches!(c, '~' | '}' | ')' | '('))
                .next()
                .unwrap_or("")
                .to_string()
        };
        let (line, column) = position(text, start);
        let shown = if tag.chars().count() > 60 {
            format!("{}…}}}}", tag.chars().take(50).collect::<String>())
        } else {
            tag.to_string()
        };
        let make = |name: String| Tag {
            name,
            text: shown.clone(),
            line,
            column,
        };
        if let Some(rest) = inner.strip_prefix('#') {
            let rest = rest.trim_start();
            let name = match rest.strip_prefix(['>', '*']) {
                Some(after) => name_of(after),
                None => name_of(rest),
            };
            blocks.unclosed.push(make(name));
        } else if let Some(rest) = inner.strip_prefix('^') {
            let name = name_of(rest);
            if !name.is_empty() {
                blocks.unclosed.push(make(name)); // `{{^}}` alone is an else
            }
        } else if let Some(rest) = inner.strip_prefix('/') {
            let closer = make(name_of(rest));
            match blocks.unclosed.last() {
                Some(open) if open.name == closer.name => {
                    blocks.unclosed.pop();
                }
                open => {
                    blocks.mismatch = Some((open.cloned(), closer));
                    return false;
                }
            }
        }
        true
    }

    /// 1-based line and column (in characters) of a byte offset.
    fn position(text: &str, at: usize) -> (usize, usize) {
        let before = &text[..at];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    /// The byte offset of a 1-based line and column, if inside the text.
    fn offset(text: &str, line: usize, column: usize) -> Option<usize> {
        let mut start = 0;
        for _ in 1..line {
            start += text[start..].find('\n')? + 1;
        }
        let line_text = text[start..].split('\n').next().unwrap_or("");
        let within = line_text
            .char_indices()
            .nth(column.saturating_sub(1))
            .map_or(line_text.len(), |(i, _)| i);
        Some(start + within)
    }

    /// The lines around `line` (1-based, numbered as an editor shows them)
    /// with a caret under `column`.
    pub(super) fn excerpt(text: &str, line: usize, column: usize) -> String {
        let lines: Vec<&str> = text.lines().collect();
        let first = line.saturating_sub(2).max(1);
        let last = (line + 1).min(lines.len());
        let width = last.max(line).to_string().len();
        let mut out = format!("{:width$} |\n", "");
        for n in first..=last {
            let content = lines.get(n - 1).copied().unwrap_or("");
            out.push_str(&format!("{n:width$} | {content}\n"));
            if n == line {
                // Tabs kept, so the caret lines up however they are shown.
                let pad: String = content
                    .chars()
                    .take(column.saturating_sub(1))
                    .map(|c| if c == '\t' { '\t' } else { ' ' })
                    .collect();
                out.push_str(&format!("{:width$} | {pad}^\n", ""));
            }
        }
        if line > lines.len() {
            out.push_str(&format!("{line:width$} | (end of file)\n"));
        }
        out.trim_end().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(text: &str) -> Templates {
        Templates::from_sources(vec![("t".into(), text.into())])
    }

    #[test]
    fn json_helper_quotes_yaml_hazards_and_nothing_is_escaped() {
        let t = one("a: {{json v}}\nb: {{v}}");
        let out = t.render("t", &json!({"v": "x: <&'\"> y"})).unwrap();
        assert_eq!(out, "a: \"x: <&'\\\"> y\"\nb: x: <&'\"> y");
    }

    #[test]
    fn strict_mode_names_the_missing_variable_and_its_place() {
        let err = one("ok\n  {{missing.field}}")
            .render("t", &json!({}))
            .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "rendering template templates/t.hbs:2:3: missing.field is not defined \
             (templates render in strict mode)"
        );
    }

    #[test]
    fn a_syntax_error_names_the_template_when_it_is_first_rendered() {
        let t = Templates::from_sources(vec![
            ("good".into(), "ok".into()),
            ("kubeadm/bad".into(), "a: 1\n{{#if x}}never closed\n".into()),
        ]);
        assert_eq!(t.digest().len(), 64, "the digest needs no compile");
        for _ in 0..2 {
            let err = t.render("good", &json!({})).unwrap_err();
            let text = format!("{err:#}");
            assert!(
                text.starts_with(
                    "template error: templates/kubeadm/bad.hbs:2:1: {{#if x}} is never \
                     closed: no {{/if}} before the end of the file (line 2)\n"
                ),
                "{text}"
            );
            assert_eq!(crate::error::exit_code(&err), crate::error::EXIT_BAD_INPUT);
            assert!(
                err.downcast_ref::<SharedInputError>().is_some(),
                "reported once by the build, not per step"
            );
        }
    }

    #[test]
    fn a_render_error_in_a_partial_names_both_files() {
        let t = Templates::from_sources(vec![
            ("node.bu".into(), "a\n{{> partials/units}}".into()),
            ("partials/units".into(), "x: {{nope}}".into()),
        ]);
        let err = t.render("node.bu", &json!({})).unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "rendering template templates/node.bu.hbs, in templates/partials/units.hbs:1:4: \
             nope is not defined (templates render in strict mode)"
        );
    }

    #[test]
    fn every_broken_template_is_named_with_its_line_and_column() {
        let t = Templates::from_sources(vec![
            (
                "a".into(),
                "one\ntwo\nthree\nfour\npasswd: {{foo bar baz)}}\nsix\n".into(),
            ),
            ("b".into(), "{{#each xs}}\n  {{#if y}}\n{{/each}}\n".into()),
        ]);
        let text = format!("{:#}", t.render("a", &json!({})).unwrap_err());
        let expected_a = "\
2 template errors: templates/a.hbs:5:22: invalid handlebars syntax: expected identifier, \
helper_parameter, or trailing_tilde_to_omit_whitespace
  |
3 | three
4 | four
5 | passwd: {{foo bar baz)}}
  |                      ^
6 | six
";
        assert!(text.starts_with(expected_a), "{text}");
        assert!(
            text.contains(
                "templates/b.hbs:2:3: {{#if y}} is never closed: {{/each}} at 3:1 closes an \
                 outer block first\n"
            ),
            "{text}"
        );
    }

    #[test]
    fn the_block_scan_skips_comments_raw_blocks_and_escapes() {
        let text = "{{!-- {{#if a}} --}}{{! {{/x}} }}\\{{#each}}{{{{raw}}}}{{#if}}{{{{/raw}}}}\n\
                    {{#each xs}}{{^}}{{else}}{{#> layout}}{{#*inline \"p\"}}{{/inline}}{{/layout}}\n\
                    {{~#unless z~}}";
        let blocks = syntax::scan(text);
        assert_eq!(blocks.mismatch, None);
        let open: Vec<(&str, usize, usize)> = blocks
            .unclosed
            .iter()
            .map(|t| (t.name.as_str(), t.line, t.column))
            .collect();
        assert_eq!(open, [("each", 2, 1), ("unless", 3, 1)]);
    }

    #[test]
    fn the_excerpt_numbers_lines_as_editors_do() {
        let excerpt = syntax::excerpt("a\nb\n\tc d\ne\nf\n", 3, 4);
        assert_eq!(excerpt, "  |\n1 | a\n2 | b\n3 | \tc d\n  | \t  ^\n4 | e");
    }

    #[test]
    fn indent_prefixes_following_lines() {
        let t = one("k: |\n  {{indent 2 v}}\n");
        let out = t.render("t", &json!({"v": "a\nb\n\nc"})).unwrap();
        assert_eq!(out, "k: |\n  a\n  b\n\n  c\n");
    }
}
