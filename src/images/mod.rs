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
