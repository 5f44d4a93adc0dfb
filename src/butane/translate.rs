//! Top-level driver: parse, check variant/version, translate each section,
//! attach locations, apply `strict`, render.
use ignition_config::v3_3::{Config, KernelArguments};
use serde_norway::Value;

use super::location::{self, Locations};
use super::schema::{Ctx, Obj, Origin, Raw, Spec};
use super::validate::Seen;
use super::{ignition, output, passwd, storage, systemd, verify, Diagnostic, Options, Translation};

const TOP: &[&str] = &[
    "variant",
    "version",
    "ignition",
    "storage",
    "systemd",
    "passwd",
    "kernel_arguments",
];

pub(super) fn run(yaml: &str, opts: &Options) -> Result<Translation, Vec<Diagnostic>> {
    let mut doc: Value = serde_norway::from_str(yaml).map_err(|e| vec![syntax_error(yaml, &e)])?;
    // Templates may share blocks with anchors and `<<:` merge keys.
    doc.apply_merge()
        .map_err(|e| vec![syntax_error(yaml, &e)])?;
    let (locs, scalars) = location::scan_with_scalars(yaml);
    let mut probe = Ctx::new(None, Spec::V1_0);
    let spec = Obj::new(&mut probe, &doc, "", TOP).and_then(|o| spec_of(&mut probe, o));
    let Some(spec) = spec.filter(|_| probe.errors.is_empty()) else {
        if probe.errors.is_empty() {
            probe.error("", "the config is empty: expected variant and version");
        }
        return Err(locate(&locs, probe.errors));
    };
    let mut cx = Ctx::new(opts.files_dir.clone(), spec);
    cx.scalars = scalars;
    let config = build(&mut cx, &doc);
    let rendered = if cx.errors.is_empty() {
        let value = output::render_value(&config, spec).map_err(bare_error)?;
        verify_output(&mut cx, &value);
        Some(value)
    } else {
        None
    };
    let mut errors = locate(&locs, std::mem::take(&mut cx.errors));
    let mut warnings = locate(&locs, std::mem::take(&mut cx.warnings));
    if opts.strict {
        errors.append(&mut warnings);
    }
    let Some(value) = rendered.filter(|_| errors.is_empty()) else {
        errors.sort_by_key(|d| (d.line.is_none(), d.line, d.column));
        return Err(errors);
    };
    let json = output::to_json(&value).map_err(bare_error)?;
    Ok(Translation {
        json,
        spec_version: spec.ignition_version().into(),
        warnings,
    })
}

fn bare_error(message: String) -> Vec<Diagnostic> {
    vec![Diagnostic {
        line: None,
        column: None,
        path: String::new(),
        message,
    }]
}

/// Runs Ignition's validation on the rendered config, as Butane does, and
/// records its findings under the Butane key path they come from; a finding
/// inside an expansion (a tree's file, a generated mount unit) points at the
/// Butane item and names the output path.
fn verify_output(cx: &mut Ctx, value: &serde_json::Value) {
    for f in verify::check(value) {
        let (path, exact) = yaml_path(&cx.origins, &f.path);
        let message = if exact {
            f.message
        } else {
            format!(
                "{} (at {} in the generated Ignition config)",
                f.message, f.path
            )
        };
        if f.warning {
            cx.warn(&path, message);
        } else {
            cx.error(&path, message);
        }
    }
}

/// Maps an Ignition JSON key path to the Butane key path it came from, and
/// whether the mapping is exact.
fn yaml_path(origins: &[Origin], json: &str) -> (String, bool) {
    let hit = origins.iter().rev().find(|o| {
        json == o.json
            || json
                .strip_prefix(&o.json)
                .is_some_and(|r| r.starts_with('.'))
    });
    match hit {
        Some(o) if !o.same_shape => (o.yaml.clone(), false),
        Some(o) => (
            format!("{}{}", o.yaml, snake_path(&json[o.json.len()..])),
            true,
        ),
        None => (snake_path(json), true),
    }
}

/// `storage.files.0.contents.httpHeaders` → `…http_headers` (Butane spells
/// Ignition's camelCase keys in snake_case; `sizeMiB` → `size_mib`).
fn snake_path(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + 8);
    for c in json.replace("MiB", "Mib").chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Checks `variant` and `version`; only `flatcar` 1.0.0 and 1.1.0 are known.
fn spec_of(cx: &mut Ctx, o: Obj) -> Option<Spec> {
    let variant = o.req_str(cx, "", "variant");
    let version = o.req_str(cx, "", "version");
    if let Some(v) = variant.as_deref().filter(|v| *v != "flatcar") {
        cx.error(
            "variant",
            format!("unsupported variant \"{v}\": pxebuild translates only variant flatcar"),
        );
        return None;
    }
    match version.as_deref()? {
        "1.0.0" => Some(Spec::V1_0),
        "1.1.0" => Some(Spec::V1_1),
        v => {
            cx.error(
                "version",
                format!("unsupported version \"{v}\" of variant flatcar (supported: 1.0.0, 1.1.0)"),
            );
            None
        }
    }
}

fn build(cx: &mut Ctx, doc: &Value) -> Config {
    let mut config = Config::default();
    config.ignition.version = Some(cx.spec.ignition_version().into());
    let Some(top) = Obj::new(cx, doc, "", TOP) else {
        return config;
    };
    if let Some(v) = top.raw("ignition") {
        ignition::translate(cx, v, &mut config.ignition);
    }
    let mut generated = Vec::new();
    if let Some(v) = top.raw("storage") {
        let mut seen = Seen::default();
        let (st, units) = storage::translate(cx, &mut seen, v);
        config.storage = Some(st);
        generated = units;
    }
    config.systemd = Some(systemd::translate(cx, top.raw("systemd"), generated));
    if let Some(v) = top.raw("passwd") {
        config.passwd = Some(passwd::translate(cx, v));
    }
    config.kernel_arguments = top
        .raw("kernel_arguments")
        .and_then(|v| kernel_arguments(cx, v));
    config
}

fn kernel_arguments(cx: &mut Ctx, v: &Value) -> Option<KernelArguments> {
    const P: &str = "kernel_arguments";
    let o = Obj::new(cx, v, P, &["should_exist", "should_not_exist"])?;
    Some(KernelArguments {
        should_exist: o.strings(cx, P, "should_exist"),
        should_not_exist: o.strings(cx, P, "should_not_exist"),
    })
}

fn locate(locs: &Locations, raws: Vec<Raw>) -> Vec<Diagnostic> {
    raws.into_iter()
        .map(|r| {
            let pos = location::find(locs, &r.path);
            Diagnostic {
                line: pos.map(|p| p.0),
                column: pos.map(|p| p.1),
                path: r.path,
                message: r.message,
            }
        })
        .collect()
}

/// A YAML syntax error, at the parser's position when it has one, moved to
/// the line at fault where the parser only notices the fault later:
///
/// - at the end of the document (an unclosed quote or bracket), the start of
///   what is unclosed (the parser's context), or else the last line;
/// - a key without its `:` (`could not find expected ':'` on the line
///   after), the key;
/// - a line without its `:` that YAML therefore continues on the next
///   line, whose `:` is then refused (`mapping values are not allowed`),
///   that line.
///
/// Positions are 1-based, as the parser's `Location` gives them.
fn syntax_error(yaml: &str, e: &serde_norway::Error) -> Diagnostic {
    let full = e.to_string();
    let (problem, context) = split_yaml_error(&full);
    let mut pos = e.location().map(|l| (l.line(), l.column()));
    let mut message = format!("invalid YAML: {problem}");
    if let Some((line, column)) = pos {
        let context_at = context.and_then(|c| c.1).filter(|&at| at < (line, column));
        if at_end(yaml, line, column) {
            match (context, context_at) {
                (Some((what, _)), Some(at)) => {
                    pos = Some(at);
                    message = format!("invalid YAML: {problem}, {what} that starts here");
                }
                _ => {
                    pos = last_line(yaml).or(pos);
                    message = format!("invalid YAML: {problem} at the end of the document");
                }
            }
        } else if let (Some(("while scanning a simple key", _)), Some(at)) = (context, context_at) {
            pos = Some(at);
            message = format!("invalid YAML: {problem} after the key that starts here");
        } else if problem == "mapping values are not allowed in this context" {
            if let Some(at) = continued_from(yaml, line, column) {
                pos = Some(at);
                message = format!(
                    "invalid YAML: {problem} (a ':' missing at the end of this line? \
                     Without it YAML reads the next line as more of this line's text)"
                );
            }
        }
    }
    Diagnostic {
        line: pos.map(|p| p.0),
        column: pos.map(|p| p.1),
        path: String::new(),
        message,
    }
}

/// What the parser was reading when it failed (`while scanning a quoted
/// scalar`) and where that started, when it says.
type YamlContext<'a> = (&'a str, Option<(usize, usize)>);

/// Splits the parser's message `<problem> at line L column C[, <context>[ at
/// line A column B]]` into the problem and the context with its position.
fn split_yaml_error(full: &str) -> (&str, Option<YamlContext<'_>>) {
    let Some(cut) = full
        .find(" at line ")
        .or_else(|| full.find(" at position "))
    else {
        return (full, None);
    };
    let problem = &full[..cut];
    let context = full[cut..]
        .split_once(", ")
        .map(|(_, c)| match c.rsplit_once(" at line ") {
            Some((what, at)) => (what, parse_line_column(at)),
            None => (c, None),
        });
    (problem, context)
}

/// `L column C` → (L, C).
fn parse_line_column(text: &str) -> Option<(usize, usize)> {
    let (line, column) = text.split_once(" column ")?;
    Some((line.trim().parse().ok()?, column.trim().parse().ok()?))
}

/// The lines of `yaml` as the parser numbers them (from 1).
fn lines(yaml: &str) -> impl Iterator<Item = (usize, &str)> {
    yaml.split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .enumerate()
        .map(|(i, l)| (i + 1, l))
}

/// Whether only blanks follow (line, column).
fn at_end(yaml: &str, line: usize, column: usize) -> bool {
    lines(yaml)
        .skip(line.saturating_sub(1))
        .enumerate()
        .all(|(k, (_, text))| {
            let rest: String = if k == 0 {
                text.chars().skip(column.saturating_sub(1)).collect()
            } else {
                text.to_string()
            };
            rest.trim().is_empty()
        })
}

/// The first character of the last line that is not blank.
fn last_line(yaml: &str) -> Option<(usize, usize)> {
    lines(yaml)
        .filter(|(_, text)| !text.trim().is_empty())
        .last()
        .map(|(n, text)| (n, text.len() - text.trim_start().len() + 1))
}

/// Where the plain text that runs on into `line` up to its `:` at `column`
/// starts, when it starts on the line before (a line that is just text, as
/// a key that lost its `:` is): (line, column) of that text.
fn continued_from(yaml: &str, line: usize, column: usize) -> Option<(usize, usize)> {
    let all: Vec<(usize, &str)> = lines(yaml).collect();
    let here = all.get(line.checked_sub(1)?)?.1;
    let before: String = here.chars().take(column.saturating_sub(1)).collect();
    let before = before.trim_start();
    if before.is_empty() || before.contains(": ") || before.starts_with('#') {
        return None;
    }
    let (n, prev) = all[..line - 1]
        .iter()
        .rev()
        .find(|(_, t)| !t.trim().is_empty())?;
    let mut text = prev.trim_start();
    while let Some(rest) = text.strip_prefix("- ") {
        text = rest.trim_start();
    }
    let bare = !text.is_empty()
        && !text.starts_with([
            '#', '|', '>', '"', '\'', '[', '{', '&', '*', '!', '%', '@', '`',
        ])
        && !text.contains(": ")
        && !text.contains(" #")
        && !text.ends_with(':');
    bare.then(|| (*n, prev.len() - text.len() + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(yaml: &str) -> String {
        run(yaml, &Options::default()).unwrap().json
    }

    /// (line, column) and message of the one error in `yaml`.
    fn yaml_error(yaml: &str) -> (Option<usize>, Option<usize>, String) {
        let errs = run(yaml, &Options::default()).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        (errs[0].line, errs[0].column, errs[0].message.clone())
    }

    #[test]
    fn yaml_errors_point_at_the_line_at_fault() {
        let head = "variant: flatcar\nversion: 1.0.0\nstorage:\n";
        let cases = [
            // Where the parser sees the fault: its own position, 1-based.
            (
                "  files:\n    - path: /a\n   bad: 1\n",
                (6, 4),
                "invalid YAML: did not find expected key",
            ),
            (
                "  files:\n    - path: /a\n\tmode: 1\n",
                (6, 1),
                "invalid YAML: found a tab character that violates indentation",
            ),
            // A key without its ':': the parser reads the next line as more
            // of its text and refuses that line's ':'.
            (
                "  directories\n    - path: /a\n",
                (4, 3),
                "invalid YAML: mapping values are not allowed in this context (a ':' missing at \
                 the end of this line? Without it YAML reads the next line as more of this \
                 line's text)",
            ),
            (
                "  directories:\n    - path /a\n      mode: 1\n",
                (5, 7),
                "invalid YAML: mapping values are not allowed in this context (a ':' missing at \
                 the end of this line? Without it YAML reads the next line as more of this \
                 line's text)",
            ),
            // A ':' inside a value's text is refused where it is.
            (
                "  files:\n    - path: /a\n      contents:\n        inline: a\n          b: c\n",
                (8, 12),
                "invalid YAML: mapping values are not allowed in this context",
            ),
            // An unclosed quote or bracket: where it opens, not the end.
            (
                "  files:\n    - path: \"/a\n    - path: /b\n",
                (5, 13),
                "invalid YAML: found unexpected end of stream, while scanning a quoted scalar \
                 that starts here",
            ),
            (
                "  files:\n    - path: /a\n  directories: [\n\n",
                (6, 3),
                "invalid YAML: did not find expected node content at the end of the document",
            ),
            // A key that the parser gives up on a line later.
            (
                "  files:\n    - path: /a\n      contents:\n        inline: |\n      x\n    - path: [\n",
                (8, 7),
                "invalid YAML: could not find expected ':' after the key that starts here",
            ),
        ];
        for (body, (line, column), message) in cases {
            assert_eq!(
                yaml_error(&format!("{head}{body}")),
                (Some(line), Some(column), message.to_string()),
                "{body:?}"
            );
        }
    }

    #[test]
    fn yaml_error_messages_split_into_problem_and_context() {
        assert_eq!(
            split_yaml_error("did not find expected key at line 6 column 4, while parsing a block mapping at line 4 column 3"),
            ("did not find expected key", Some(("while parsing a block mapping", Some((4, 3)))))
        );
        assert_eq!(
            split_yaml_error(
                "did not find expected node content at line 7 column 1, while parsing a flow node"
            ),
            (
                "did not find expected node content",
                Some(("while parsing a flow node", None))
            )
        );
        assert_eq!(
            split_yaml_error("recursion limit exceeded"),
            ("recursion limit exceeded", None)
        );
    }

    #[test]
    fn anchors_and_merge_keys_are_expanded() {
        let yaml = "variant: flatcar\nversion: 1.0.0\nstorage:\n  directories:\n    - &d {path: /a, mode: 0700}\n    - <<: *d\n      path: /b\n";
        assert_eq!(
            json(yaml),
            r#"{"ignition":{"version":"3.3.0"},"storage":{"directories":[{"mode":448,"path":"/a"},{"mode":448,"path":"/b"}]}}"#
        );
    }

    #[test]
    fn output_paths_map_to_butane_paths() {
        let origins = vec![
            Origin {
                json: "storage.files.2".into(),
                yaml: "storage.trees.0".into(),
                same_shape: false,
            },
            Origin {
                json: "systemd.units.0".into(),
                yaml: "systemd.units.1".into(),
                same_shape: true,
            },
        ];
        let map = |j: &str| yaml_path(&origins, j);
        assert_eq!(
            map("storage.files.0.contents.httpHeaders.1.name"),
            ("storage.files.0.contents.http_headers.1.name".into(), true)
        );
        assert_eq!(
            map("storage.files.2.path"),
            ("storage.trees.0".into(), false)
        );
        assert_eq!(
            map("storage.files.20.path"),
            ("storage.files.20.path".into(), true)
        );
        assert_eq!(
            map("systemd.units.0.dropins.0.contents"),
            ("systemd.units.1.dropins.0.contents".into(), true)
        );
        assert_eq!(
            map("storage.disks.0.partitions.1.sizeMiB"),
            ("storage.disks.0.partitions.1.size_mib".into(), true)
        );
    }

    #[test]
    fn arn_sources_need_1_1_0() {
        let body = "storage:\n  files:\n    - path: /a\n      contents:\n        source: arn:aws:s3:::bucket/key\n";
        let old = run(
            &format!("variant: flatcar\nversion: 1.0.0\n{body}"),
            &Options::default(),
        )
        .unwrap_err();
        assert_eq!(old[0].path, "storage.files.0.contents.source");
        assert!(json(&format!("variant: flatcar\nversion: 1.1.0\n{body}"))
            .contains("arn:aws:s3:::bucket/key"));
    }

    #[test]
    fn errors_come_in_file_order_and_flow_items_point_at_their_key() {
        let errs = run(
            "variant: flatcar\nversion: 1.0.0\nstorage:\n  files: [{path: a}]\n  filez: 1\n",
            &Options::default(),
        )
        .unwrap_err();
        let shown: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            shown,
            [
                r#"line 4 column 3: storage.files.0.path: path must be absolute, got "a""#,
                r#"line 5 column 3: storage.filez: unknown key "filez""#,
            ]
        );
    }
}
