//! `pxebuild images`: the images the site's cluster pulls (the catalog for
//! its pins and features, then `[images] extra`), one per line; with a built
//! tree whose manifest records images, each with the digest its tag resolved
//! to, and the ones the tree does not carry. `--format json` (or `--json`)
//! prints one document instead; `-v` adds the catalog's sources on stderr.
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::json;

use crate::cmd::global::{Format, Global};
use crate::error::BadInput;
use crate::images::{catalog, ImageRef};
use crate::manifest::{ImageRecord, Manifest};
use crate::site::Site;

/// Arguments of `pxebuild images`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// A built tree to compare with (default: the site's dist/, when it has
    /// a manifest.json): each image's resolved digest, and which the tree
    /// does not carry.
    #[arg(long, value_name = "DIR")]
    pub dist: Option<PathBuf>,
    /// Output: text (one image per line) or json (one document).
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// The same as `--format json`.
    #[arg(long, conflicts_with = "format")]
    pub json: bool,
}

/// One line of the answer: the image and, with a tree, what it holds for it.
struct Row<'a> {
    image: &'a ImageRef,
    record: Option<&'a ImageRecord>,
}

pub(crate) fn run(global: &Global, args: Args) -> Result<()> {
    let site = Site::load(&global.site)?;
    site.print_warnings();
    let images = crate::site::images::site_images(&site)?;
    let tree = tree(&site, args.dist.as_deref())?;
    let rows: Vec<Row<'_>> = images
        .iter()
        .map(|image| Row {
            image,
            record: tree.as_ref().and_then(|(_, m)| record(m, image)),
        })
        .collect();
    if crate::log::level() >= 2 {
        eprint!("{}", catalog::sources(&crate::site::images::pins(&site)));
    }
    if args.json || args.format == Format::Json {
        return print_json(&site, &rows, tree.as_ref());
    }
    let Some((dir, manifest)) = &tree else {
        for row in &rows {
            println!("{}", row.image);
        }
        return Ok(());
    };
    if manifest.images.is_empty() {
        for row in &rows {
            println!("{}", row.image);
        }
        crate::info!(
            "{} carries no images (built with images.mode = \"pull\"); nodes pull them \
             from their registries",
            dir.display()
        );
        return Ok(());
    }
    let mut missing = 0;
    for row in &rows {
        match row.record {
            Some(r) => match &r.platform_digest {
                Some(p) => println!("{} {} platform {p}", row.image, r.digest),
                None => println!("{} {}", row.image, r.digest),
            },
            None => {
                missing += 1;
                println!("{} missing", row.image);
            }
        }
    }
    if missing > 0 {
        crate::warn!(
            "{missing} of {} images are not in {}: rebuild it (`pxebuild build`) so an \
             air-gapped site can pull them",
            rows.len(),
            dir.display()
        );
    }
    Ok(())
}

/// The tree to compare with: `--dist DIR` (which must be a built tree), else
/// the site's dist/ when it holds a manifest.
fn tree(site: &Site, dist: Option<&Path>) -> Result<Option<(PathBuf, Manifest)>> {
    let (dir, asked) = match dist {
        Some(dir) => (dir.to_path_buf(), true),
        None => (site.dir.join(crate::layout::SITE_DIST), false),
    };
    let manifest_path = dir.join(crate::manifest::FILE_NAME);
    if !manifest_path.is_file() {
        if asked {
            return Err(BadInput::new(format!(
                "--dist {}: no {} there, so it is not a tree `pxebuild build` wrote; \
                 give the directory build published (the site's dist/ by default)",
                dir.display(),
                crate::manifest::FILE_NAME
            )));
        }
        return Ok(None);
    }
    let manifest = Manifest::load(&dir).map_err(|e| {
        BadInput::new(format!(
            "{e:#}: rebuild the tree with `pxebuild build`, or point --dist at another"
        ))
    })?;
    Ok(Some((dir, manifest)))
}

/// The manifest's record of `image`: the same reference, as normalised.
fn record<'a>(manifest: &'a Manifest, image: &ImageRef) -> Option<&'a ImageRecord> {
    manifest.images.iter().find(|r| {
        r.reference == image.to_string()
            || r.reference.parse::<ImageRef>().ok().as_ref() == Some(image)
    })
}

/// `{"images": [{"reference", "name", "pinned_digest", "digest",
/// "platform_digest", "in_tree"}], "tree", "unknown"}`: `tree` is null (and
/// each `in_tree` with it) when there is no built tree to compare with.
fn print_json(site: &Site, rows: &[Row<'_>], tree: Option<&(PathBuf, Manifest)>) -> Result<()> {
    let unknown: Vec<String> = crate::site::images::for_site(site)?
        .unknown
        .iter()
        .map(|u| u.to_string())
        .collect();
    let images: Vec<_> = rows
        .iter()
        .map(|row| {
            json!({
                "reference": row.image.to_string(),
                "name": row.image.dist_name(),
                "pinned_digest": catalog::pinned_digest(row.image),
                "digest": row.record.map(|r| r.digest.clone()),
                "platform_digest": row.record.and_then(|r| r.platform_digest.clone()),
                "in_tree": tree.map(|_| row.record.is_some()),
            })
        })
        .collect();
    let doc = json!({
        "images": images,
        "tree": tree.map(|(dir, _)| dir.display().to_string()),
        "unknown": unknown,
    });
    println!("{doc}");
    Ok(())
}
