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

pub fn run(yaml: &str, opts: &Options) -> Result<Translation, Vec<Diagnostic>> {
    let mut doc: Value = serde_norway::from_str(yaml).map_err(|e| vec![syntax_error(&e)])?;
    // Templates may share blocks with anchors and `<<:` merge keys.
    doc.apply_merge().map_err(|e| vec![syntax_error(&e)])?;
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

/// A YAML syntax error, with the parser's position when it has one.
fn syntax_error(e: &serde_norway::Error) -> Diagnostic {
    let pos = e.location().map(|l| (l.line(), l.column()));
    let mut message = e.to_string();
    if let Some(cut) = message.find(" at line ") {
        message.truncate(cut);
    }
    Diagnostic {
        line: pos.map(|p| p.0),
        column: pos.map(|p| p.1),
        path: String::new(),
        message: format!("invalid YAML: {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(yaml: &str) -> String {
        run(yaml, &Options::default()).unwrap().json
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
