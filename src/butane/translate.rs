//! Top-level driver: parse, check variant/version, translate each section,
//! attach locations, apply `strict`, render.
use ignition_config::v3_3::{Config, KernelArguments};
use serde_norway::Value;

use super::location::{self, Locations};
use super::schema::{Ctx, Obj, Raw, Spec};
use super::validate::Seen;
use super::{ignition, output, passwd, storage, systemd, Diagnostic, Options, Translation};

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
    let locs = location::scan(yaml);
    let mut probe = Ctx::new(None, Spec::V1_0);
    let spec = Obj::new(&mut probe, &doc, "", TOP).and_then(|o| spec_of(&mut probe, o));
    let Some(spec) = spec.filter(|_| probe.errors.is_empty()) else {
        if probe.errors.is_empty() {
            probe.error("", "the config is empty: expected variant and version");
        }
        return Err(locate(&locs, probe.errors));
    };
    let mut cx = Ctx::new(opts.files_dir.clone(), spec);
    let config = build(&mut cx, &doc);
    let mut errors = locate(&locs, std::mem::take(&mut cx.errors));
    let mut warnings = locate(&locs, std::mem::take(&mut cx.warnings));
    if opts.strict {
        errors.append(&mut warnings);
    }
    if !errors.is_empty() {
        errors.sort_by_key(|d| (d.line.is_none(), d.line, d.column));
        return Err(errors);
    }
    let json = output::render(&config, spec).map_err(|message| {
        vec![Diagnostic {
            line: None,
            column: None,
            path: String::new(),
            message,
        }]
    })?;
    Ok(Translation {
        json,
        spec_version: spec.ignition_version().into(),
        warnings,
    })
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
