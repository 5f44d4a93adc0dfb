//! The site's own image list: the catalog (`crate::images::catalog`) for its
//! pins and features (read from its payload's Cilium and Argo CD values),
//! then `[images] extra`. Here, above the catalog, because it reads the site;
//! the build, the renderer, `pxebuild images` and the tests all read it.
use std::path::Path;

use anyhow::Result;

use crate::error::BadInput;
use crate::images::catalog::values::Values;
use crate::images::catalog::{self, argocd, cilium, values, Catalog, Features, Pins};
use crate::images::ImageRef;
use crate::site::schema::ImageMode;
use crate::site::types::EndpointMode;
use crate::site::Site;

/// The payload's Cilium Helm values, read by the image list, the renderer
/// (`render::cilium`) and Argo CD's Application alike.
pub const CILIUM_VALUES: &str = "core/cilium/values.yaml";
/// The payload's Argo CD Helm values (`install-argo`).
pub const ARGOCD_VALUES: &str = "bootstrap/argocd-values.yaml";

/// Every image the site's cluster pulls, sorted and without repeats: the
/// catalog's for the pinned versions and the site's features, then
/// `[images] extra`. Read by the build (`mode = "serve"` carries them in
/// dist/), by `pxebuild images`, and by the tests' registry fixture.
///
/// Catalog images come by tag (the build resolves them; see
/// [`catalog::pinned_digest`]); extras as written. What the catalog cannot
/// name (a release or component its tables do not cover) is bad input in
/// `mode = "serve"`, where a missing image would stop the cluster, and a
/// warning otherwise.
pub fn site_images(site: &Site) -> Result<Vec<ImageRef>> {
    let catalog = for_site(site)?;
    if !catalog.unknown.is_empty() {
        let list: Vec<String> = catalog.unknown.iter().map(|u| u.to_string()).collect();
        if site.file.images.mode == ImageMode::Serve {
            return Err(BadInput::new(format!(
                "images.mode = \"serve\" carries every image the cluster pulls, and pxebuild \
                 cannot name them all:\n  {}\npin releases the catalog knows (`pxebuild images` \
                 and docs/artifacts.md list them), turn the component off, or build with \
                 images.mode = \"pull\"",
                list.join("\n  ")
            )));
        }
        for line in &list {
            crate::warn!("{line}; the image list leaves them out");
        }
    }
    let mut images = catalog.images;
    images.extend(extra(site)?);
    images.sort();
    images.dedup();
    Ok(images)
}

/// `[images] extra`, parsed (validation has already located any problem).
fn extra(site: &Site) -> Result<Vec<ImageRef>> {
    let mut images = Vec::new();
    for (i, text) in site.file.images.extra.iter().enumerate() {
        let image: ImageRef = text
            .parse()
            .map_err(|why| BadInput::new(format!("images.extra[{i}] {text:?} {why}")))?;
        images.push(image);
    }
    Ok(images)
}

/// The site's pins.
pub fn pins(site: &Site) -> Pins {
    let f = &site.file;
    Pins {
        kubernetes: f.cluster.kubernetes_version.clone(),
        cilium: f.cilium.version.clone(),
        argocd_chart: f.argocd.chart_version.clone(),
    }
}

/// The site's features, reading its Cilium and Argo CD values files (the
/// site's payload/, else the built-in one). A values file that does not
/// parse is bad input naming it.
pub fn features(site: &Site) -> Result<Features> {
    Ok(read_features(site)?.0)
}

/// [`features`], and how messages name the two values files.
fn read_features(site: &Site) -> Result<(Features, String, String)> {
    let cilium_values = load_values(site, CILIUM_VALUES)?;
    let argo_values = load_values(site, ARGOCD_VALUES)?;
    let f = Features {
        kube_proxy: !site.file.cilium.kube_proxy_replacement,
        kube_vip: site.file.cluster.endpoint_mode == EndpointMode::KubeVip,
        cilium: cilium::Features::from_values(&cilium_values),
        argocd: argocd::Features::from_values(&argo_values),
    };
    let name = |v: &values::Values| v.name.display().to_string();
    Ok((f, name(&cilium_values), name(&argo_values)))
}

/// The catalog for a site.
pub fn for_site(site: &Site) -> Result<Catalog> {
    let (f, cilium_values, argo_values) = read_features(site)?;
    Ok(catalog::build(
        &pins(site),
        &f,
        &cilium_values,
        &argo_values,
    ))
}

/// The values file at `rel` under the payload (`core/cilium/values.yaml`):
/// the site's own when the site directory has a `payload/`, else the built-in
/// copy (named `pxebuild:payload/…`). A site payload without the file means
/// the chart's defaults.
fn load_values(site: &Site, rel: &str) -> Result<Values> {
    if site.payload_dir().exists() {
        let path = site.payload_dir().join(rel);
        return match std::fs::read_to_string(&path) {
            Ok(text) => Values::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Values::defaults(&path)),
            Err(e) => Err(BadInput::new(format!("reading {}: {e}", path.display()))),
        };
    }
    let rel = Path::new("payload").join(rel);
    let name = Path::new("pxebuild:").join(&rel);
    match crate::embedded::file(&rel) {
        Some(bytes) => Values::parse(&String::from_utf8_lossy(bytes), &name),
        None => Ok(Values::defaults(&name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const EXAMPLE: &str = include_str!("../../site.toml");

    /// The example site with `images` as its `[images]` table and the
    /// `edits` applied.
    fn site(images: &str, edits: &[(&str, &str)]) -> Site {
        let mut text = format!("{EXAMPLE}\n[images]\n{images}\n");
        for (from, to) in edits {
            assert!(text.contains(from), "{from:?}");
            text = text.replace(from, to);
        }
        Site::from_text(&text, Path::new("site.toml")).expect("a valid site")
    }

    #[test]
    fn the_catalog_and_the_extras_in_one_sorted_list() {
        let images = site_images(&site(
            "extra = [\"nginx:1.27\", \"ghcr.io/example/app:1.2\", \"nginx:1.27\"]",
            &[],
        ))
        .unwrap();
        let names: Vec<String> = images.iter().map(|i| i.to_string()).collect();
        assert!(names.contains(&"docker.io/library/nginx:1.27".to_string()));
        assert!(names.contains(&"ghcr.io/example/app:1.2".to_string()));
        assert!(names.contains(&"registry.k8s.io/kube-apiserver:v1.35.9".to_string()));
        assert!(names.is_sorted_by(|a, b| {
            a.parse::<ImageRef>().unwrap() < b.parse::<ImageRef>().unwrap()
        }));
        let nginx = names.iter().filter(|n| n.contains("nginx")).count();
        assert_eq!(nginx, 1, "no repeats: {names:?}");
    }

    #[test]
    fn an_unknown_kubernetes_release_is_left_out_in_pull_mode() {
        let newer = [("v1.35.9", "v1.35.10")];
        let pull = site_images(&site("mode = \"pull\"", &newer)).unwrap();
        assert!(!pull.iter().any(|i| i.repository == "kube-apiserver"));
        assert!(pull.iter().any(|i| i.repository == "cilium/cilium"));
        // The release the table covers builds in serve mode (an uncovered
        // one is refused by validation, at its key: site/validate).
        assert!(site_images(&site("mode = \"serve\"", &[])).is_ok());
    }

    #[test]
    fn what_the_catalog_cannot_name_is_bad_input_in_serve_mode() {
        let dir = tempfile::tempdir().unwrap();
        let values = dir.path().join("payload/core/cilium/values.yaml");
        std::fs::create_dir_all(values.parent().unwrap()).unwrap();
        std::fs::write(&values, "hubble:\n  ui:\n    enabled: true\n").unwrap();
        let text = format!("{EXAMPLE}\n[images]\nmode = \"serve\"\n");
        let site = Site::from_text(&text, &dir.path().join("site.toml")).unwrap();
        let err = site_images(&site).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
        let msg = format!("{err:#}");
        assert!(
            msg.contains(&format!(
                "{}: hubble.ui.enabled: pxebuild does not know this component's images for \
                 Cilium 1.19.8",
                values.display()
            )),
            "{msg}"
        );
        assert!(
            msg.contains("images.mode = \"pull\""),
            "says what to do: {msg}"
        );
    }
}
