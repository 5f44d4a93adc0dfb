//! Content references (`inline` / `local` / `source`) → Ignition resources,
//! and confined reading of local files.
use std::path::{Component, Path, PathBuf};

use ignition_config::v3_3 as ign;

use super::data_url;
use super::schema;
use super::translate::Context;
use super::validate;

/// Translates one resource at `path`. `allow_gzip` is false where Ignition
/// has no `compression` field to undo it (e.g. CA bundles are fine, so this
/// is only about Butane's choice). Returns `None` after reporting an error.
pub fn resource(
    ctx: &mut Context,
    r: &schema::Resource,
    path: &str,
    allow_gzip: bool,
) -> Option<ign::Resource> {
    let given = [r.inline.is_some(), r.local.is_some(), r.source.is_some()];
    match given.iter().filter(|g| **g).count() {
        0 => {
            ctx.error(path, "one of `inline`, `local` or `source` is required");
            return None;
        }
        1 => {}
        _ => {
            ctx.error(
                path,
                "only one of `inline`, `local` and `source` may be set",
            );
            return None;
        }
    }
    check_extras(ctx, r, path);
    let mut out = ign::Resource {
        compression: r.compression.clone().filter(|c| !c.is_empty()),
        http_headers: headers(r),
        source: r.source.clone(),
        verification: r.verification.as_ref().map(|v| ign::Verification {
            hash: v.hash.clone(),
        }),
    };
    let data = match (&r.inline, &r.local) {
        (Some(text), _) => text.clone().into_bytes(),
        (_, Some(rel)) => read_local(ctx, rel, &format!("{path}.local"))?,
        _ => return Some(out),
    };
    let encoded = data_url::encode(&data, allow_gzip);
    out.source = Some(encoded.url);
    out.compression = encoded.gzip.then(|| "gzip".to_string());
    Some(out)
}

fn headers(r: &schema::Resource) -> Option<ign::HttpHeaders> {
    let list: Vec<_> = r
        .http_headers
        .iter()
        .map(|h| ign::HttpHeadersItem {
            name: h.name.clone(),
            value: h.value.clone(),
        })
        .collect();
    (!list.is_empty()).then_some(list)
}

/// Field checks that do not depend on which content source was chosen.
fn check_extras(ctx: &mut Context, r: &schema::Resource, path: &str) {
    if let Some(c) = r.compression.as_deref() {
        if !c.is_empty() && c != "gzip" {
            ctx.error(
                &format!("{path}.compression"),
                "compression must be `gzip` or empty",
            );
        } else if r.source.is_none() {
            ctx.error(
                &format!("{path}.compression"),
                "compression is only valid with `source`; inline and local contents are compressed automatically",
            );
        }
    }
    if let Some(source) = &r.source {
        if let Err(message) = validate::source_url(source, ctx.version) {
            ctx.error(&format!("{path}.source"), &message);
        }
    }
    if let Some(hash) = r.verification.as_ref().and_then(|v| v.hash.as_deref()) {
        if let Err(message) = validate::hash(hash) {
            ctx.error(&format!("{path}.verification.hash"), &message);
        }
    }
    validate::http_headers(ctx, r, path);
}

/// Reads `rel` below the files directory; reports and returns `None` on error.
pub fn read_local(ctx: &mut Context, rel: &str, path: &str) -> Option<Vec<u8>> {
    let full = local_path(ctx, rel, path)?;
    match std::fs::read(&full) {
        Ok(data) => Some(data),
        Err(e) => {
            ctx.error(path, &format!("reading {}: {e}", full.display()));
            None
        }
    }
}

/// Resolves `rel` inside the files directory, refusing any way out of it:
/// absolute paths, `..` above the root, and symlinks pointing outside.
pub fn local_path(ctx: &mut Context, rel: &str, path: &str) -> Option<PathBuf> {
    let Some(root) = ctx.opts.files_dir.clone() else {
        ctx.error(path, "local paths need a files directory (--files-dir)");
        return None;
    };
    let Some(clean) = confine(Path::new(rel)) else {
        ctx.error(
            path,
            &format!("local path `{rel}` must be relative and stay inside the files directory"),
        );
        return None;
    };
    let full = root.join(clean);
    if let (Ok(real_root), Ok(real)) = (root.canonicalize(), full.canonicalize()) {
        if !real.starts_with(&real_root) {
            ctx.error(
                path,
                &format!("local path `{rel}` leads outside the files directory through a symlink"),
            );
            return None;
        }
    }
    Some(full)
}

/// Lexically normalises a relative path; `None` if it is absolute or climbs
/// above its starting point.
fn confine(rel: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for part in rel.components() {
        match part {
            Component::Normal(p) => out.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    return None;
                }
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confine_refuses_escapes() {
        assert_eq!(confine(Path::new("a/./b/../c")), Some(PathBuf::from("a/c")));
        assert_eq!(confine(Path::new("../x")), None);
        assert_eq!(confine(Path::new("a/../../x")), None);
        assert_eq!(confine(Path::new("/etc/passwd")), None);
    }
}
