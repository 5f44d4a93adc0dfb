//! Checks of `[images] charts`: the payload's Helm charts an air-gapped site
//! carries in dist/'s chart repository. Each names an http(s) Helm repository,
//! and a name and version that are safe as the archive's file name in dist/
//! (`<name>-<version>.tgz`); two entries may not claim one archive.
use super::Checker;
use crate::site::schema::{ImageMode, RawSiteFile};
use crate::site::source::KeyPath;

pub(super) fn check_charts(c: &mut Checker<'_, '_>, file: &RawSiteFile) {
    let images = &file.images;
    if images.charts.is_empty() {
        return;
    }
    if images.mode != ImageMode::Serve {
        c.warn(
            &KeyPath::of("images.charts"),
            "charts are carried in dist/ only with images.mode = \"serve\"; in \"pull\" mode \
             Argo CD fetches them from their repositories",
        );
    }
    // Cilium's and Argo CD's charts are always carried in serve mode.
    let mut seen: Vec<(String, String, String)> = vec![
        (
            "cilium".into(),
            file.cilium.version.clone(),
            "[cilium] version".into(),
        ),
        (
            "argo-cd".into(),
            file.argocd.chart_version.clone(),
            "argocd.chart_version".into(),
        ),
    ];
    for (i, chart) in images.charts.iter().enumerate() {
        let at = |key: &str| KeyPath::of("images.charts").index(i).key(key);
        let repo = &chart.repo;
        if repo.starts_with("oci://") {
            c.error(
                &at("repo"),
                format!(
                    "{repo:?} is an OCI registry: charts are carried from Helm repositories \
                     (an http:// or https:// URL holding index.yaml); name the chart's Helm \
                     repository"
                ),
            );
        } else if !(repo.starts_with("http://") || repo.starts_with("https://")) {
            c.error(
                &at("repo"),
                format!(
                    "{repo:?} is not an http:// or https:// URL (the Helm repository holding \
                     index.yaml)"
                ),
            );
        }
        for (key, value) in [("name", &chart.name), ("version", &chart.version)] {
            if let Err(why) = file_part(value) {
                c.error(&at(key), format!("{value:?} {why}"));
            }
        }
        let claim = format!("images.charts[{i}]");
        match seen
            .iter()
            .find(|(n, v, _)| *n == chart.name && *v == chart.version)
        {
            Some((_, _, owner)) => c.error(
                &KeyPath::of("images.charts").index(i),
                format!(
                    "{} {} is already carried ({owner}); list each chart version once",
                    chart.name, chart.version
                ),
            ),
            None => seen.push((chart.name.clone(), chart.version.clone(), claim)),
        }
    }
}

/// A chart name or version becomes part of a file name in dist/
/// (`<name>-<version>.tgz`): no separators, nothing hidden, nothing empty.
fn file_part(value: &str) -> Result<(), &'static str> {
    if value.is_empty() {
        return Err("is empty");
    }
    if value.starts_with('.') {
        return Err("may not start with a dot");
    }
    let ok = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'+');
    if !value.bytes().all(ok) {
        return Err("may hold only letters, digits, '.', '-', '_' and '+'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions_are_file_name_parts() {
        for good in ["kured", "6.0.0", "1.2.3-rc.1+build.5", "argo_cd"] {
            assert_eq!(file_part(good), Ok(()), "{good}");
        }
        for bad in ["", ".hidden", "a/b", "..", "x y", "v1\n"] {
            assert!(file_part(bad).is_err(), "{bad:?}");
        }
    }
}
