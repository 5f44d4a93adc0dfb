//! Argo CD's images for an argo-cd chart version (`argocd.chart_version`),
//! as the chart's values.yaml names them, registries included, for the
//! components `payload/bootstrap/argocd-values.yaml` enables.
//!
//! Every Argo CD component (server, repo server, application controller,
//! ApplicationSet and notifications controllers, the Redis secret-init job)
//! runs the one `global.image`; Dex and Redis have their own images and are
//! on by default; the Redis exporter and the UI extension installer only
//! when enabled. `redis-ha` (a dependency chart) is not in the table.
//! Repository and tag overrides in the values (`global.image`, `dex.image`,
//! `redis.image`, …) are followed.

/// Argo CD's Helm repository and chart name (what `install-argo` installs,
/// and what an air-gapped build carries).
pub(crate) const HELM_REPO: &str = "https://argoproj.github.io/argo-helm";
pub(crate) const CHART: &str = "argo-cd";

use super::values::Values;

/// The default images of one chart version: (repository, tag).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chart {
    pub version: &'static str,
    /// `global.image` (the tag defaults to the chart's appVersion).
    pub argocd: (&'static str, &'static str),
    pub dex: (&'static str, &'static str),
    pub redis: (&'static str, &'static str),
    pub redis_exporter: (&'static str, &'static str),
    pub extension_installer: (&'static str, &'static str),
    pub source: &'static str,
    pub read: &'static str,
}

pub(crate) const CHARTS: &[Chart] = &[Chart {
    version: "10.9.0",
    argocd: ("quay.io/argoproj/argocd", "v3.5.2"),
    dex: ("ghcr.io/dexidp/dex", "v2.45.1"),
    redis: ("ecr-public.aws.com/docker/library/redis", "8.6.4-alpine"),
    redis_exporter: ("ghcr.io/oliver006/redis_exporter", "v1.91.1"),
    extension_installer: ("quay.io/argoprojlabs/argocd-extension-installer", "v1.1.0"),
    source: "argoproj/argo-helm charts/argo-cd values.yaml at argo-cd-10.1.1, then each \
             release's notes up to argo-cd-10.9.0: Argo CD v3.5.2 (10.4.1), Redis 8.6.4 \
             (10.3.0; tagged `<version>-alpine` as the chart tags Redis), redis_exporter v1.91.1 (10.8.4), extension installer v1.1.0 (10.8.1), \
             Dex unchanged",
    read: "2026-12-07",
}];

/// What the values enable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Features {
    pub dex: bool,
    pub redis: bool,
    pub redis_exporter: bool,
    pub extension_installer: bool,
    /// `redis-ha.enabled`: its images are not in the table.
    pub redis_ha: bool,
    /// `(repository, tag)` overrides of the Argo CD, Dex and Redis images.
    pub argocd_image: (Option<String>, Option<String>),
    pub dex_image: (Option<String>, Option<String>),
    pub redis_image: (Option<String>, Option<String>),
}

impl Features {
    pub(crate) fn from_values(v: &Values) -> Features {
        let image = |key: &str| {
            (
                v.text(&format!("{key}.repository")).map(str::to_string),
                v.text(&format!("{key}.tag")).map(str::to_string),
            )
        };
        let redis = v.flag("redis.enabled", true);
        Features {
            dex: v.flag("dex.enabled", true),
            redis,
            redis_exporter: redis && v.flag("redis.exporter.enabled", false),
            extension_installer: v.flag("server.extensions.enabled", false),
            redis_ha: v.flag("redis-ha.enabled", false),
            argocd_image: image("global.image"),
            dex_image: image("dex.image"),
            redis_image: image("redis.image"),
        }
    }

    /// The chart's defaults (Dex and Redis on).
    pub fn chart_defaults() -> Features {
        Features::from_values(&Values::defaults(std::path::Path::new("-")))
    }
}

pub(crate) fn chart(version: &str) -> Option<&'static Chart> {
    CHARTS.iter().find(|c| c.version == version)
}

/// The image references for the enabled components, and the values keys of
/// enabled components the table cannot name. `None` for a chart version the
/// table does not have.
pub(crate) fn images(version: &str, f: &Features) -> Option<(Vec<String>, Vec<&'static str>)> {
    let c = chart(version)?;
    let reference = |(repo, tag): (&str, &str), over: &(Option<String>, Option<String>)| {
        format!(
            "{}:{}",
            over.0.as_deref().unwrap_or(repo),
            over.1.as_deref().unwrap_or(tag)
        )
    };
    let mut out = vec![reference(c.argocd, &f.argocd_image)];
    if f.dex {
        out.push(reference(c.dex, &f.dex_image));
    }
    if f.redis {
        out.push(reference(c.redis, &f.redis_image));
    }
    if f.redis_exporter {
        out.push(reference(c.redis_exporter, &(None, None)));
    }
    if f.extension_installer {
        out.push(reference(c.extension_installer, &(None, None)));
    }
    let unknown = if f.redis_ha {
        vec!["redis-ha.enabled"]
    } else {
        Vec::new()
    };
    Some((out, unknown))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn features(yaml: &str) -> Features {
        Features::from_values(&Values::parse(yaml, Path::new("v.yaml")).unwrap())
    }

    #[test]
    fn defaults_are_argocd_dex_and_redis() {
        let (images, unknown) = images("10.9.0", &Features::chart_defaults()).unwrap();
        assert_eq!(
            images,
            [
                "quay.io/argoproj/argocd:v3.5.2",
                "ghcr.io/dexidp/dex:v2.45.1",
                "ecr-public.aws.com/docker/library/redis:8.6.4-alpine",
            ]
        );
        assert!(unknown.is_empty());
    }

    #[test]
    fn the_values_turn_components_off_and_on() {
        let f = features("dex: {enabled: false}\nredis: {exporter: {enabled: true}}\n");
        let (list, _) = images("10.9.0", &f).unwrap();
        assert!(!list.iter().any(|i| i.contains("dex")), "{list:?}");
        assert!(list
            .iter()
            .any(|i| i.starts_with("ghcr.io/oliver006/redis_exporter:")));
        let f = features("global: {image: {tag: v3.5.9}}\nredis-ha: {enabled: true}\n");
        let (list, unknown) = images("10.9.0", &f).unwrap();
        assert_eq!(list[0], "quay.io/argoproj/argocd:v3.5.9");
        assert_eq!(unknown, ["redis-ha.enabled"]);
        assert!(images("10.8.0", &f).is_none());
    }
}
