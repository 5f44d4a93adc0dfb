//! Container images and Helm charts a site's cluster pulls as it forms, and
//! how an air-gapped site (`[images] mode = "serve"`) carries them in dist/.
//!
//! - [`reference`]: an image reference (`registry/repository:tag@digest`),
//!   normalised as containerd does, and its repository's name in dist/.
//! - [`catalog`]: the images the cluster pulls for the pinned versions and
//!   the site's features, each table with its source.
//!
//! Pure knowledge, no site: the site's own list (`site::images::site_images`:
//! the catalog for its pins and features, then `[images] extra`) is built
//! above, where the site is. The dist/ layout of images and charts is in
//! `crate::layout` (`oci_*`, `chart_*`), like every other dist/ path.
pub mod catalog;
pub mod reference;

pub use reference::ImageRef;
