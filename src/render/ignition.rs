//! Butane → Ignition for rendered configs, through pxebuild's own translator
//! (`crate::butane`), then a check of the JSON: structurally against the
//! Ignition spec types (`ignition-config`; an unknown key is an error) and
//! semantically with Ignition's own validation rules (`butane::verify`), so
//! that a build never publishes a config Ignition would reject.
//!
//! The rendered Butane is never written anywhere, so its problems are
//! reported against the template that produced it: `templates/<name>.hbs`
//! and the template line (found by aligning the rendered text with the
//! template, `render::template_map`), the node, and the rendered line quoted.
use std::cell::OnceCell;
use std::path::Path;

use anyhow::{anyhow, Result};

use super::template_map::{LineMap, Origin, TemplateLine};
use super::templates::Templates;
use crate::butane::{self, Diagnostic};
use crate::error::BadInput;

/// Goes into step keys: a new translator may translate differently.
pub const TRANSLATOR_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Translates `yaml` (named `origin` in messages) to Ignition JSON.
/// Warnings are printed, or with `strict` fail the translation.
pub fn translate(yaml: &str, origin: &str, strict: bool) -> Result<String> {
    translate_with(yaml, &Explain::Plain { origin }, strict)
}

/// Where a rendered Butane document came from, for its messages.
pub struct Rendered<'a> {
    /// The template rendered, as registered: `node.bu` is
    /// `templates/node.bu.hbs`.
    pub template: &'a str,
    /// The node it was rendered for.
    pub node: &'a str,
    /// The templates, read only to explain an error.
    pub sources: Sources<'a>,
}

impl Rendered<'_> {
    /// The templates directory as messages name it: as the site's path has
    /// it (`./templates`, `/srv/rack1/templates`), like the build's template
    /// errors; `templates` for templates given as text.
    fn dir(&self) -> String {
        match self.sources {
            Sources::Dir { dir, .. } => dir.display().to_string(),
            Sources::Given(_) => "templates".to_string(),
            Sources::Embedded(_) => crate::embedded::TEMPLATES_NAME.to_string(),
        }
    }
}

/// The template texts behind a rendered document.
pub enum Sources<'a> {
    /// Read again from the templates directory, and used only while they
    /// still have the digest of the templates that were rendered.
    Dir { dir: &'a Path, digest: &'a str },
    /// Given as (name, text), as `Templates::from_sources` takes them.
    Given(&'a [(String, String)]),
    /// The templates built into pxebuild (`crate::embedded`), as (name, text).
    Embedded(&'a [(String, String)]),
}

/// Translates Butane rendered from a template; problems name the template
/// file and line, the node and the rendered line.
pub fn translate_rendered(yaml: &str, from: &Rendered, strict: bool) -> Result<String> {
    let explain = Explain::Rendered {
        from,
        map: OnceCell::new(),
    };
    translate_with(yaml, &explain, strict)
}

fn translate_with(yaml: &str, explain: &Explain, strict: bool) -> Result<String> {
    let opts = butane::Options {
        files_dir: None,
        strict,
    };
    let translation = butane::translate(yaml, &opts).map_err(|diags| {
        let text: Vec<String> = diags
            .iter()
            .map(|d| format!("  {}", explain.diagnostic(yaml, d).replace('\n', "\n  ")))
            .collect();
        BadInput::new(format!(
            "{} is not valid Butane:\n{}",
            explain.name(),
            text.join("\n")
        ))
    })?;
    for warning in &translation.warnings {
        if strict {
            return Err(BadInput::new(explain.diagnostic(yaml, warning)));
        }
        crate::warn!("{}", explain.diagnostic(yaml, warning));
    }
    let json = translation.json;
    // The translator already applied Ignition's validation rules (and reported
    // their findings against the Butane source): only the spec types remain.
    check_spec_types(&json)
        .map_err(|e| anyhow!("{}: translated Ignition is invalid: {e:#}", explain.name()))?;
    Ok(json)
}

/// Turns diagnostics about a document into messages about its source.
enum Explain<'a> {
    /// A document known only by a name.
    Plain { origin: &'a str },
    /// A rendered template; the line map is built for the first diagnostic
    /// with a line (None: the templates could not be read again).
    Rendered {
        from: &'a Rendered<'a>,
        map: OnceCell<Option<LineMap>>,
    },
}

impl Explain<'_> {
    fn name(&self) -> String {
        match self {
            Explain::Plain { origin } => origin.to_string(),
            Explain::Rendered { from, .. } => format!(
                "{} rendered for node {}",
                template_file(&from.dir(), from.template),
                from.node
            ),
        }
    }

    /// `<where>: <key path>: <message>`, then on a second line the rendered
    /// line quoted.
    fn diagnostic(&self, yaml: &str, d: &Diagnostic) -> String {
        let what = match d.path.as_str() {
            "" => d.message.clone(),
            path => format!("{path}: {}", d.message),
        };
        let rendered = d.line.and_then(|l| rendered_line(yaml, l));
        match self {
            Explain::Plain { origin } => {
                let at = match (d.line, d.column) {
                    (Some(l), Some(c)) => format!("{origin}:{l}:{c}"),
                    (Some(l), None) => format!("{origin}:{l}"),
                    _ => origin.to_string(),
                };
                match rendered {
                    Some(text) => format!("{at}: {what}\n  {}", quote(text, d.column)),
                    None => format!("{at}: {what}"),
                }
            }
            Explain::Rendered { from, map } => {
                let dir = from.dir();
                let file = template_file(&dir, from.template);
                let (Some(line), Some(text)) = (d.line, rendered) else {
                    return format!("{file} (rendered for node {}): {what}", from.node);
                };
                let map = map.get_or_init(|| line_map(from, yaml));
                let at = match map {
                    Some(m) => place(&dir, &file, m.locate(line, d.column)),
                    None => format!(
                        "{file} (templates/ changed while building, so the template \
                         line is not known)"
                    ),
                };
                let column = d.column.map(|c| format!(" column {c}")).unwrap_or_default();
                format!(
                    "{at}: {what}\n  rendered for {} as line {line}{column}: {}",
                    from.node,
                    quote(text, d.column)
                )
            }
        }
    }
}

/// The alignment of `yaml` with the template it was rendered from, or None
/// when the templates cannot be read again as they were rendered.
fn line_map(from: &Rendered, yaml: &str) -> Option<LineMap> {
    match from.sources {
        Sources::Given(sources) | Sources::Embedded(sources) => {
            Some(LineMap::new(sources, from.template, yaml))
        }
        Sources::Dir { dir, digest } => {
            let sources = read_sources(dir, digest)?;
            Some(LineMap::new(&sources, from.template, yaml))
        }
    }
}

/// How messages name template `name` in `dir`: `<dir>/<name>.hbs`, the
/// directory spelt as the build's template errors spell it.
fn template_file(dir: &str, name: &str) -> String {
    format!("{dir}/{name}.hbs")
}

fn at_line(dir: &str, t: &TemplateLine) -> String {
    format!("{}:{}", template_file(dir, &t.template), t.line)
}

/// The template position a rendered line maps to, for a message.
fn place(dir: &str, main_file: &str, origin: Origin) -> String {
    let at_line = |t: &TemplateLine| at_line(dir, t);
    match origin {
        Origin::Line {
            chain,
            column,
            inserted,
        } => {
            let mut at = at_line(&chain[0]);
            if let Some(c) = column {
                at.push_str(&format!(":{c}"));
            }
            if chain.len() > 1 {
                let callers: Vec<String> = chain[1..].iter().map(&at_line).collect();
                at.push_str(&format!(" (included from {})", callers.join(", from ")));
            }
            if inserted {
                at.push_str(" (in the lines that the expression on this line inserted)");
            }
            at
        }
        Origin::Ambiguous(candidates) => {
            let inner: Vec<&TemplateLine> = candidates.iter().map(|c| &c[0]).collect();
            let shown = inner.len().min(4);
            let mut text = if inner.iter().all(|t| t.template == inner[0].template) {
                let lines: Vec<String> =
                    inner[..shown].iter().map(|t| t.line.to_string()).collect();
                format!(
                    "{} line {}",
                    template_file(dir, &inner[0].template),
                    lines.join(" or ")
                )
            } else {
                let lines: Vec<String> = inner[..shown].iter().map(|t| at_line(t)).collect();
                lines.join(" or ")
            };
            if inner.len() > shown {
                text.push_str(&format!(" or {} more", inner.len() - shown));
            }
            text.push_str(" (each matches the rendered line quoted below)");
            text
        }
        Origin::Unmatched => format!(
            "{main_file} (no template line matches the rendered line quoted below; \
             search the template and its partials for it)"
        ),
    }
}

/// Line `line` (1-based) of `yaml`, as YAML counts lines.
fn rendered_line(yaml: &str, line: usize) -> Option<&str> {
    let text = yaml.split('\n').nth(line.checked_sub(1)?)?;
    Some(text.strip_suffix('\r').unwrap_or(text))
}

/// A rendered line in backquotes; a long one (an embedded data URL) is cut
/// to a window around `column`.
fn quote(line: &str, column: Option<usize>) -> String {
    const WIDTH: usize = 160;
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= WIDTH {
        return format!("`{line}`");
    }
    let start = column
        .unwrap_or(1)
        .saturating_sub(WIDTH / 3)
        .min(chars.len() - WIDTH);
    let end = start + WIDTH;
    let head = if start > 0 { "…" } else { "" };
    let tail = if end < chars.len() { "…" } else { "" };
    let window: String = chars[start..end].iter().collect();
    format!("`{head}{window}{tail}` ({} characters)", chars.len())
}

/// The templates under `dir` as (name, text), named as `Templates::load`
/// names them, or None when they cannot be read or are no longer the ones
/// that were rendered.
fn read_sources(dir: &Path, digest: &str) -> Option<Vec<(String, String)>> {
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let entry = entry.ok()?;
        let path = entry.path();
        if !entry.file_type().is_file() || path.extension().is_none_or(|e| e != "hbs") {
            continue;
        }
        let rel = path.strip_prefix(dir).ok()?;
        let name = rel.to_string_lossy().trim_end_matches(".hbs").to_string();
        files.push((name, std::fs::read_to_string(path).ok()?));
    }
    (Templates::from_sources(files.clone()).digest() == digest).then_some(files)
}

/// Parses Ignition JSON against the spec types (unknown keys are errors).
fn check_spec_types(json: &str) -> Result<()> {
    let (_, warnings) = ignition_config::Config::parse_str(json)?;
    match warnings.first() {
        Some(w) => Err(anyhow!("{w}")),
        None => Ok(()),
    }
}

/// Parses Ignition JSON against the spec types (unknown keys are errors),
/// then applies Ignition's validation; its errors fail, its warnings do not
/// (the translator has already reported them against the Butane source).
pub fn check(json: &str) -> Result<()> {
    check_spec_types(json)?;
    let value: serde_json::Value = serde_json::from_str(json)?;
    let errors: Vec<String> = butane::verify::check(&value)
        .into_iter()
        .filter(|f| !f.warning)
        .map(|f| format!("{}: {}", f.path, f.message))
        .collect();
    if !errors.is_empty() {
        return Err(anyhow!("{}", errors.join("; ")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered_error(sources: Sources, yaml: &str) -> String {
        let from = Rendered {
            template: "node.bu",
            node: "cp1",
            sources,
        };
        let err = translate_rendered(yaml, &from, true).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), crate::error::EXIT_BAD_INPUT);
        format!("{err:#}")
    }

    const TEMPLATE: &str = "\
variant: flatcar
version: 1.0.0
{{#if extra}}
storage:
  directories:
    - path: /x
{{/if}}
  files:
    - path: {{json path}}
      mode: \"rw\"
";

    #[test]
    fn rendered_errors_name_the_template_line_the_node_and_quote_the_line() {
        let sources = [("node.bu".to_string(), TEMPLATE.to_string())];
        // Rendered with `extra` true: the block's tag lines vanish, so the
        // mode is on rendered line 8 and template line 10.
        let yaml = "variant: flatcar\nversion: 1.0.0\nstorage:\n  directories:\n    - path: /x\n  files:\n    - path: \"/a\"\n      mode: \"rw\"\n";
        assert_eq!(
            rendered_error(Sources::Given(&sources), yaml),
            "templates/node.bu.hbs rendered for node cp1 is not valid Butane:\n  \
             templates/node.bu.hbs:10:7: storage.files.0.mode: expected an integer, found the \
             quoted string \"rw\" (a mode is an octal number such as 0644)\n    \
             rendered for cp1 as line 8 column 7: `      mode: \"rw\"`"
        );
    }

    #[test]
    fn a_rendered_line_no_template_line_matches_is_said_so_and_quoted() {
        let sources = [("node.bu".to_string(), "variant: flatcar\n".to_string())];
        let yaml = "variant: flatcar\nversion: 1.0.0\nbogus: 1\n";
        assert_eq!(
            rendered_error(Sources::Given(&sources), yaml),
            "templates/node.bu.hbs rendered for node cp1 is not valid Butane:\n  \
             templates/node.bu.hbs (no template line matches the rendered line quoted below; \
             search the template and its partials for it): bogus: unknown key \"bogus\"\n    \
             rendered for cp1 as line 3 column 1: `bogus: 1`"
        );
    }

    #[test]
    fn templates_changed_since_rendering_are_not_used_to_map() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("node.bu.hbs"), TEMPLATE).unwrap();
        let yaml = "variant: flatcar\nversion: 1.0.0\nbogus: 1\n";
        let digest = Templates::from_sources(vec![("node.bu".into(), TEMPLATE.into())])
            .digest()
            .to_string();
        let text = rendered_error(
            Sources::Dir {
                dir: dir.path(),
                digest: &digest,
            },
            yaml,
        );
        // Named in the directory the templates were read from.
        let file = dir.path().join("node.bu.hbs").display().to_string();
        assert!(
            text.contains(&format!("  {file} (no template line matches")),
            "{text}"
        );
        let text = rendered_error(
            Sources::Dir {
                dir: dir.path(),
                digest: "another",
            },
            yaml,
        );
        assert!(
            text.contains(&format!(
                "  {file} (templates/ changed while building, so the template \
                 line is not known): bogus: unknown key \"bogus\"\n    \
                 rendered for cp1 as line 3 column 1: `bogus: 1`"
            )),
            "{text}"
        );
    }

    #[test]
    fn plain_documents_quote_the_line_too() {
        let err = translate(
            "variant: flatcar\nversion: 1.0.0\nbogus: 1\n",
            "x.bu",
            false,
        )
        .unwrap_err();
        assert_eq!(
            format!("{err:#}"),
            "x.bu is not valid Butane:\n  x.bu:3:1: bogus: unknown key \"bogus\"\n    `bogus: 1`"
        );
    }

    #[test]
    fn long_rendered_lines_are_quoted_around_the_column() {
        let line = format!("  source: data:;base64,{}", "A".repeat(1000));
        let q = quote(&line, Some(500));
        assert!(
            q.starts_with("`…AAA") && q.ends_with("AAA…` (1023 characters)"),
            "{q}"
        );
        assert_eq!(q.chars().count(), 160 + 4 + " (1023 characters)".len());
        assert_eq!(quote("  a: 1", Some(3)), "`  a: 1`");
    }

    #[test]
    fn check_applies_ignitions_validation() {
        check(r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/a"}]}}"#).unwrap();
        let dirty = r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/a/"}]}}"#;
        assert_eq!(
            check(dirty).unwrap_err().to_string(),
            "storage.files.0.path: path \"/a/\" is not fully simplified (write \"/a\")"
        );
        let unit = r#"{"ignition":{"version":"3.4.0"},"systemd":{"units":[{"name":"a.service","contents":"[Unit]\nx\n"}]}}"#;
        assert!(check(unit)
            .unwrap_err()
            .to_string()
            .contains("invalid unit contents: line 2"));
        let unknown = r#"{"ignition":{"version":"3.3.0"},"storage":{"filez":[]}}"#;
        assert!(check(unknown).is_err());
    }
}
