//! The site's `templates/` as one Handlebars registry: strict mode (a missing
//! variable is an error), no HTML escaping, and the helpers YAML needs.
//!
//! Every `*.hbs` file is registered under its path relative to `templates/`
//! without the `.hbs` suffix (`node.bu`, `kubeadm/init.yaml`, `partials/units`),
//! so partials are just templates: `{{> partials/units}}`.
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result};
use handlebars::{handlebars_helper, Handlebars};
use serde::Serialize;

use crate::error::BadInput;

/// The site's templates, their digest, and the registry compiled from them.
///
/// Compiling is deferred to the first render: a rebuild whose steps are all
/// cached never renders, and Handlebars' parser is the largest single cost of
/// planning one. A syntax error therefore surfaces from the first step that
/// renders, naming the template.
pub struct Templates {
    sources: Vec<(String, String)>,
    registry: OnceLock<Result<Handlebars<'static>, String>>,
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
    /// Loads every `*.hbs` under `dir`.
    pub fn load(dir: &Path) -> Result<Templates> {
        let mut files = Vec::new();
        for entry in walkdir::WalkDir::new(dir).sort_by_file_name() {
            let entry = entry.with_context(|| format!("reading templates in {}", dir.display()))?;
            let path = entry.path();
            if !entry.file_type().is_file() || path.extension().is_none_or(|e| e != "hbs") {
                continue;
            }
            let rel = path
                .strip_prefix(dir)
                .expect("walkdir stays under its root");
            let name = rel.to_string_lossy().trim_end_matches(".hbs").to_string();
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading template {}", path.display()))?;
            files.push((name, text));
        }
        if files.is_empty() {
            return Err(BadInput::new(format!(
                "no *.hbs templates in {}",
                dir.display()
            )));
        }
        Ok(Templates::from_sources(files))
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
            registry: OnceLock::new(),
            digest: hasher.finalize().to_hex().to_string(),
        }
    }

    fn compile(files: &[(String, String)]) -> Result<Handlebars<'static>, String> {
        let mut registry = Handlebars::new();
        registry.set_strict_mode(true);
        registry.register_escape_fn(handlebars::no_escape);
        registry.register_helper("json", Box::new(json));
        registry.register_helper("indent", Box::new(indent));
        registry.register_helper("base64", Box::new(b64));
        registry.register_helper("join", Box::new(join));
        registry.register_helper("eq", Box::new(eq));
        for (name, text) in files {
            registry
                .register_template_string(name, text)
                .map_err(|e| format!("template {name}.hbs: {e}"))?;
        }
        Ok(registry)
    }

    fn registry(&self) -> Result<&Handlebars<'static>> {
        self.registry
            .get_or_init(|| Templates::compile(&self.sources))
            .as_ref()
            .map_err(|e| BadInput::new(e.clone()))
    }

    pub fn digest(&self) -> &str {
        &self.digest
    }

    /// Renders template `name` (e.g. `node.bu`) with `data`.
    pub fn render(&self, name: &str, data: &impl Serialize) -> Result<String> {
        self.registry()?
            .render(name, data)
            .map_err(|e| BadInput::new(format!("rendering template {name}.hbs: {e}")))
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
    fn strict_mode_names_the_missing_variable() {
        let err = one("{{missing.field}}")
            .render("t", &json!({}))
            .unwrap_err();
        assert!(format!("{err:#}").contains("missing"), "{err:#}");
    }

    #[test]
    fn a_syntax_error_names_the_template_when_it_is_first_rendered() {
        let t = Templates::from_sources(vec![
            ("good".into(), "ok".into()),
            ("kubeadm/bad".into(), "{{#if x}}never closed".into()),
        ]);
        assert_eq!(t.digest().len(), 64, "the digest needs no compile");
        for _ in 0..2 {
            let err = t.render("good", &json!({})).unwrap_err();
            assert!(
                format!("{err:#}").contains("template kubeadm/bad.hbs"),
                "{err:#}"
            );
            assert_eq!(crate::error::exit_code(&err), crate::error::EXIT_BAD_INPUT);
        }
    }

    #[test]
    fn indent_prefixes_following_lines() {
        let t = one("k: |\n  {{indent 2 v}}\n");
        let out = t.render("t", &json!({"v": "a\nb\n\nc"})).unwrap();
        assert_eq!(out, "k: |\n  a\n  b\n\n  c\n");
    }
}
