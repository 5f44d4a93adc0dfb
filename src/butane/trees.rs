//! `storage.trees`: embed a local directory as files and symlinks.
//!
//! Regular files become files (mode 0755 when any execute bit is set, else
//! 0644) and symlinks become soft links with the same target; directories are
//! implied by their contents. Entries are visited in file-name order so the
//! output is deterministic. A tree file may fill in the contents of a
//! `storage.files` entry that has none; any other overlap is an error.
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ignition_config::v3_3 as ign;
use walkdir::WalkDir;

use super::data_url;
use super::resource::local_path;
use super::translate::Context;
use super::validate;

pub fn embed(
    ctx: &mut Context,
    tree: &super::schema::Tree,
    path: &str,
    files: &mut Vec<ign::File>,
    links: &mut Vec<ign::Link>,
) {
    let dest = tree.path.clone().unwrap_or_else(|| "/".to_string());
    validate::absolute(ctx, &dest, &format!("{path}.path"));
    let at = format!("{path}.local");
    let Some(root) = local_path(ctx, &tree.local, &at) else {
        return;
    };
    if !root.is_dir() {
        ctx.error(&at, &format!("{} is not a directory", root.display()));
        return;
    }
    for entry in WalkDir::new(&root).sort_by_file_name().min_depth(1) {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                ctx.error(&at, &format!("reading tree {}: {e}", root.display()));
                return;
            }
        };
        let rel = entry.path().strip_prefix(&root).unwrap_or(entry.path());
        let target = join(&dest, rel);
        let kind = entry.file_type();
        if kind.is_symlink() {
            add_link(ctx, &at, entry.path(), target, files, links);
        } else if kind.is_file() {
            add_file(ctx, &at, entry.path(), target, files, links);
        } else if !kind.is_dir() {
            ctx.error(
                &at,
                &format!(
                    "{} is neither a file, a directory nor a symlink",
                    entry.path().display()
                ),
            );
        }
    }
}

fn join(dest: &str, rel: &Path) -> String {
    let base = dest.trim_end_matches('/');
    format!("{base}/{}", rel.to_string_lossy())
}

fn add_file(
    ctx: &mut Context,
    at: &str,
    src: &Path,
    target: String,
    files: &mut Vec<ign::File>,
    links: &[ign::Link],
) -> Option<()> {
    let data = std::fs::read(src)
        .map_err(|e| ctx.error(at, &format!("reading {}: {e}", src.display())))
        .ok()?;
    let exec = std::fs::metadata(src)
        .map(|m| m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false);
    let encoded = data_url::encode(&data, true);
    let contents = ign::Resource {
        compression: encoded.gzip.then(|| "gzip".to_string()),
        source: Some(encoded.url),
        ..Default::default()
    };
    if links.iter().any(|l| l.path == target) {
        ctx.error(
            at,
            &format!("tree file `{target}` is already a link in storage.links"),
        );
        return None;
    }
    match files.iter_mut().find(|f| f.path == target) {
        Some(existing) if existing.contents.is_none() => {
            existing.contents = Some(contents);
            existing
                .mode
                .get_or_insert(if exec { 0o755 } else { 0o644 });
        }
        Some(_) => ctx.error(
            at,
            &format!("tree file `{target}` already has contents in storage.files"),
        ),
        None => {
            let mut file = ign::File::new(target);
            file.contents = Some(contents);
            file.mode = Some(if exec { 0o755 } else { 0o644 });
            files.push(file);
        }
    }
    Some(())
}

fn add_link(
    ctx: &mut Context,
    at: &str,
    src: &Path,
    target: String,
    files: &[ign::File],
    links: &mut Vec<ign::Link>,
) -> Option<()> {
    let to = std::fs::read_link(src)
        .map_err(|e| ctx.error(at, &format!("reading link {}: {e}", src.display())))
        .ok()?;
    if files.iter().any(|f| f.path == target) || links.iter().any(|l| l.path == target) {
        ctx.error(
            at,
            &format!("tree link `{target}` is already specified in storage"),
        );
        return None;
    }
    let mut link = ign::Link::new(target);
    link.target = Some(to.to_string_lossy().into_owned());
    links.push(link);
    Some(())
}
