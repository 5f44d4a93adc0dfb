//! `storage.trees`: embeds a local directory as files and links.
//!
//! Regular files become files with `data:` URL contents, mode 0755 when any
//! execute bit is set and 0644 otherwise; symlinks become links with the
//! same target; directories are implied by their contents.
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use ignition_config::v3_3::{File, Link, Resource};
use walkdir::WalkDir;

use super::local;
use super::resource;
use super::schema::{join, Ctx};

/// Expands the tree at Butane path `p` rooted at local dir `rel` onto `base`.
pub(super) fn expand(cx: &mut Ctx, p: &str, rel: &str, base: &str) -> (Vec<File>, Vec<Link>) {
    let (mut files, mut links) = (Vec::new(), Vec::new());
    let root = match local::resolve(cx.files_dir.as_deref(), rel) {
        Ok(r) if r.is_dir() => r,
        Ok(r) => {
            cx.error(
                &join(p, "local"),
                format!("{} is not a directory", r.display()),
            );
            return (files, links);
        }
        Err(msg) => {
            cx.error(&join(p, "local"), msg);
            return (files, links);
        }
    };
    let walk = WalkDir::new(&root)
        .follow_links(false)
        .sort_by_file_name()
        .min_depth(1);
    for entry in walk {
        let result = entry.map_err(|e| e.to_string()).and_then(|e| {
            let dest = destination(base, e.path().strip_prefix(&root).unwrap_or(e.path()))?;
            add(e.path(), &e.file_type(), dest, &mut files, &mut links)
        });
        if let Err(msg) = result {
            cx.error(&join(p, "local"), msg);
        }
    }
    (files, links)
}

fn destination(base: &str, rel: &Path) -> Result<String, String> {
    let rel = rel
        .to_str()
        .ok_or_else(|| format!("tree entry {} has a non-UTF-8 name", rel.display()))?;
    Ok(format!("{}/{rel}", base.trim_end_matches('/')))
}

fn add(
    src: &Path,
    ft: &std::fs::FileType,
    dest: String,
    files: &mut Vec<File>,
    links: &mut Vec<Link>,
) -> Result<(), String> {
    if ft.is_dir() {
        return Ok(());
    }
    if ft.is_symlink() {
        let target =
            std::fs::read_link(src).map_err(|e| format!("reading link {}: {e}", src.display()))?;
        let mut link = Link::new(dest);
        link.target = Some(
            target
                .to_str()
                .ok_or_else(|| format!("link {} has a non-UTF-8 target", src.display()))?
                .to_string(),
        );
        links.push(link);
        return Ok(());
    }
    if !ft.is_file() {
        return Err(format!(
            "{} is neither a file, a directory nor a symlink",
            src.display()
        ));
    }
    files.push(embed_file(src, dest)?);
    Ok(())
}

/// A regular file as an Ignition file entry with its contents embedded.
fn embed_file(src: &Path, dest: String) -> Result<File, String> {
    let data = std::fs::read(src).map_err(|e| format!("reading {}: {e}", src.display()))?;
    let meta = std::fs::metadata(src).map_err(|e| format!("reading {}: {e}", src.display()))?;
    let (source, compression) = resource::embed(&data, None);
    let mut file = File::new(dest);
    file.mode = Some(if meta.permissions().mode() & 0o111 != 0 {
        0o755
    } else {
        0o644
    });
    file.contents = Some(Resource {
        source: Some(source),
        compression,
        ..Resource::default()
    });
    Ok(file)
}
