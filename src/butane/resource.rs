//! Butane resources (`source` / `inline` / `local` plus compression,
//! verification and HTTP headers) → Ignition `Resource`.
//!
//! Used for file contents, `append` entries, merged/replaced configs and TLS
//! certificate authorities, which all share this shape.
use ignition_config::v3_3::{HttpHeadersItem, Resource, Verification};

use super::data_url;
use super::local;
use super::schema::{join, Ctx, Obj};
use super::validate::{check_hash, check_url, Seen};

/// Keys a Butane resource may have.
pub(super) const KEYS: &[&str] = &[
    "source",
    "inline",
    "local",
    "compression",
    "verification",
    "http_headers",
];

/// Translates the resource mapping at `path`.
pub(super) fn translate(cx: &mut Ctx, path: &str, o: Obj) -> Resource {
    let mut r = Resource::default();
    let set: Vec<&str> = ["source", "inline", "local"]
        .into_iter()
        .filter(|k| o.has(k))
        .collect();
    if set.len() > 1 {
        cx.error(
            path,
            format!(
                "only one of source, inline or local may be set (found {})",
                set.join(" and ")
            ),
        );
    }
    r.compression = compression(cx, path, o);
    let embedded = embedded_bytes(cx, path, o);
    let mut scheme = None;
    if let Some(data) = embedded {
        if path.starts_with("ignition.config") {
            check_embedded_config(cx, path, o, &data);
        }
        let (url, compression) = embed(&data, r.compression.as_deref());
        r.source = Some(url);
        r.compression = compression;
    } else if let Some(src) = o.str(cx, path, "source") {
        scheme = check_url(cx, &join(path, "source"), &src);
        r.source = Some(src);
    }
    r.verification = verification(cx, path, o);
    r.http_headers = headers(cx, path, o, scheme.as_deref());
    r
}

/// The data URL and compression for embedded bytes, as Butane writes them.
/// A declared compression means the bytes are already compressed: it is kept
/// and nothing is compressed again. Otherwise the compression is written out
/// even when empty (`""`), so that a config merged into a parent that set
/// `gzip` for the same path cannot inherit the parent's compression.
pub(super) fn embed(data: &[u8], declared: Option<&str>) -> (String, Option<String>) {
    match declared.filter(|c| !c.is_empty()) {
        Some(c) => (data_url::encode(data, false).url, Some(c.to_string())),
        None => {
            let e = data_url::encode(data, true);
            let compression = if e.gzip { "gzip" } else { "" };
            (e.url, Some(compression.to_string()))
        }
    }
}

/// The declared compression; an empty string (no compression) is kept, as
/// Butane copies it to the output.
fn compression(cx: &mut Ctx, path: &str, o: Obj) -> Option<String> {
    let c = o.str(cx, path, "compression")?;
    if !c.is_empty() && c != "gzip" {
        cx.error(
            &join(path, "compression"),
            format!("unsupported compression \"{c}\" (only gzip)"),
        );
    }
    Some(c)
}

fn verification(cx: &mut Ctx, path: &str, o: Obj) -> Option<Verification> {
    let v = o.obj(cx, path, "verification", &["hash"])?;
    let vpath = join(path, "verification");
    let hash = v.str(cx, &vpath, "hash");
    if let Some(h) = &hash {
        check_hash(cx, &join(&vpath, "hash"), h);
    }
    Some(Verification { hash })
}

/// An inline or local config to merge or replace must itself be a valid
/// Ignition config, as Butane checks (Ignition would fail at boot).
fn check_embedded_config(cx: &mut Ctx, path: &str, o: Obj, data: &[u8]) {
    let here = join(path, if o.has("inline") { "inline" } else { "local" });
    let parsed = ignition_config::Config::parse_slice(data)
        .map_err(|e| e.to_string())
        .and_then(|_| serde_json::from_slice::<serde_json::Value>(data).map_err(|e| e.to_string()));
    let value = match parsed {
        Ok(v) => v,
        Err(e) => return cx.error(&here, format!("not a valid Ignition config: {e}")),
    };
    for f in super::verify::check(&value)
        .into_iter()
        .filter(|f| !f.warning)
    {
        cx.error(
            &here,
            format!(
                "the embedded Ignition config is invalid: {}: {}",
                f.path, f.message
            ),
        );
    }
}

/// Bytes of `inline` or `local` contents, when one of them is set.
fn embedded_bytes(cx: &mut Ctx, path: &str, o: Obj) -> Option<Vec<u8>> {
    if let Some(text) = o.str(cx, path, "inline") {
        return Some(text.into_bytes());
    }
    let rel = o.str(cx, path, "local")?;
    match local::read(cx.files_dir.as_deref(), &rel) {
        Ok(bytes) => Some(bytes),
        Err(msg) => {
            cx.error(&join(path, "local"), msg);
            None
        }
    }
}

fn headers(cx: &mut Ctx, path: &str, o: Obj, scheme: Option<&str>) -> Option<Vec<HttpHeadersItem>> {
    let items = o.objs(cx, path, "http_headers", &["name", "value"]);
    if items.is_empty() {
        return None;
    }
    if !matches!(scheme, Some("http") | Some("https")) {
        cx.error(
            &join(path, "http_headers"),
            "http_headers are only allowed with an http or https source",
        );
    }
    let mut seen = Seen::default();
    let mut out = Vec::new();
    for (hpath, h) in items {
        let Some(name) = h.req_str(cx, &hpath, "name") else {
            continue;
        };
        if name.is_empty() {
            cx.error(&join(&hpath, "name"), "header name must not be empty");
        }
        seen.add(
            cx,
            "header",
            &name.to_ascii_lowercase(),
            &join(&hpath, "name"),
        );
        out.push(HttpHeadersItem {
            name,
            value: h.str(cx, &hpath, "value"),
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::super::schema::Spec;
    use super::*;

    fn run(yaml: &str) -> (Resource, Vec<String>) {
        let v: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
        let mut cx = Ctx::new(None, Spec::V1_0);
        let o = Obj::new(&mut cx, &v, "r", KEYS).unwrap();
        let r = translate(&mut cx, "r", o);
        (
            r,
            cx.errors
                .into_iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect(),
        )
    }

    #[test]
    fn inline_is_compressed_only_without_a_given_compression() {
        let long = "x".repeat(500);
        let (r, e) = run(&format!("inline: {long}"));
        assert!(e.is_empty());
        assert_eq!(r.compression.as_deref(), Some("gzip"));
        let (r, _) = run(&format!("inline: {long}\ncompression: gzip"));
        assert_eq!(r.compression.as_deref(), Some("gzip"));
        assert_eq!(r.source, Some(format!("data:,{long}")));
        let (r, _) = run("inline: x/y");
        assert_eq!(r.compression.as_deref(), Some(""));
        assert_eq!(r.source.as_deref(), Some("data:,x%2Fy"));
        let (r, _) = run("source: https://h/x\ncompression: \"\"");
        assert_eq!(r.compression.as_deref(), Some(""));
    }

    #[test]
    fn source_keeps_url_headers_and_hash() {
        let hash = format!("sha512-{}", "a".repeat(128));
        let (r, e) = run(&format!(
            "source: http://h/x\nverification: {{hash: {hash}}}\nhttp_headers: [{{name: A, value: b}}, {{name: a}}]"
        ));
        assert_eq!(r.source.as_deref(), Some("http://h/x"));
        assert_eq!(r.verification.unwrap().hash, Some(hash));
        assert_eq!(r.http_headers.unwrap().len(), 2);
        assert_eq!(
            e,
            [
                r#"r.http_headers.1.name: duplicate header "a" (first defined at r.http_headers.0.name)"#
            ]
        );
    }

    #[test]
    fn embedded_configs_must_be_valid_ignition() {
        let v: serde_norway::Value = serde_norway::from_str(
            "a: {inline: '{\"ignition\":{\"version\":\"3.3.0\"},\"storage\":{\"files\":[{\"path\":\"/a/\"}]}}'}\nb: {inline: 'nope'}\nc: {inline: '{\"ignition\":{\"version\":\"3.3.0\"}}'}",
        )
        .unwrap();
        let mut cx = Ctx::new(None, Spec::V1_0);
        let top = Obj::new(&mut cx, &v, "", &["a", "b", "c"]).unwrap();
        for k in ["a", "b", "c"] {
            let o = top.obj(&mut cx, "ignition.config", k, KEYS).unwrap();
            translate(&mut cx, &join("ignition.config", k), o);
        }
        let e: Vec<String> = cx
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect();
        assert_eq!(e.len(), 2, "{e:?}");
        assert_eq!(
            e[0],
            "ignition.config.a.inline: the embedded Ignition config is invalid: storage.files.0.path: path \"/a/\" is not fully simplified (write \"/a\")"
        );
        assert!(
            e[1].starts_with("ignition.config.b.inline: not a valid Ignition config: "),
            "{}",
            e[1]
        );
    }

    #[test]
    fn two_sources_and_empty_header_names_are_errors() {
        let (_, e) = run("inline: a\nlocal: b");
        assert_eq!(
            e[0],
            "r: only one of source, inline or local may be set (found inline and local)"
        );
        let (_, e) = run("source: https://h/\nhttp_headers: [{name: \"\"}]");
        assert_eq!(e, ["r.http_headers.0.name: header name must not be empty"]);
    }
}
