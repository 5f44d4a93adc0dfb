//! Container images and Helm charts a site's cluster pulls as it forms, and
//! how an air-gapped site (`[images] mode = "serve"`) carries them in dist/.
//!
//! - [`reference`]: an image reference (`registry/repository:tag@digest`),
//!   normalised as containerd does, and its repository's name in dist/.
//!
//! The dist/ layout of images and charts is in `crate::layout` (`oci_*`,
//! `chart_*`), like every other dist/ path.
pub mod reference;

pub use reference::ImageRef;

use anyhow::Result;

use crate::error::BadInput;
use crate::site::Site;

/// Every image the site's cluster pulls, sorted and without repeats: the
/// catalog's for the pinned versions and the site's features, then
/// `[images] extra`. Read by the build (`mode = "serve"` carries them in
/// dist/), by `pxebuild images`, and by the tests' registry fixture.
pub fn site_images(site: &Site) -> Result<Vec<ImageRef>> {
    let mut images = Vec::new();
    for (i, text) in site.file.images.extra.iter().enumerate() {
        let image: ImageRef = text
            .parse()
            .map_err(|why| BadInput::new(format!("images.extra[{i}] {text:?} {why}")))?;
        images.push(image);
    }
    images.sort();
    images.dedup();
    Ok(images)
}
