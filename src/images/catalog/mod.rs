//! The images a site's cluster pulls as it forms, for the versions pxebuild
//! knows and the features the site enables: kubeadm's control-plane images
//! ([`kubeadm`]), kube-vip when the endpoint is a kube-vip VIP, Cilium's
//! images ([`cilium`]) and Argo CD's ([`argocd`]). `[images] extra` is added
//! by `site::images::site_images`, the one list everybody reads.
//!
//! Each table names its source. A version, or an enabled component, a table
//! does not cover is never guessed: it comes back as an [`Unknown`] naming
//! the site key (or values key) that asks for it, and an air-gapped site
//! (`images.mode = "serve"`) refuses to build with one.
//!
//! References come back by tag, without a digest: the build resolves each
//! tag through the registry. Where a chart pins a digest, the table keeps
//! it, and [`pinned_digest`] says what it is.
pub(crate) mod argocd;
pub(crate) mod cilium;
pub(crate) mod kubeadm;
pub(crate) mod values;

/// The kube-vip release the static pod manifest
/// (templates/kubeadm/kube-vip.yaml.hbs) is written for.
pub const KUBE_VIP_VERSION: &str = "v0.9.2";

use std::fmt;

use super::ImageRef;

/// kube-vip's image, as templates/kubeadm/kube-vip.yaml.hbs names it (its tag
/// is `KUBE_VIP_VERSION`, the release the manifest is written for).
pub const KUBE_VIP_IMAGE: &str = "ghcr.io/kube-vip/kube-vip";

/// The releases the catalog reads: the site's pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pins {
    /// `cluster.kubernetes_version` (`v1.35.9`).
    pub kubernetes: String,
    /// `cilium.version` (`1.19.8`).
    pub cilium: String,
    /// `argocd.chart_version` (`10.9.0`).
    pub argocd_chart: String,
}

/// What the site turns on that changes the list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Features {
    /// kube-proxy runs (Cilium does not replace it: kubeadm then deploys it).
    pub kube_proxy: bool,
    /// The endpoint is a VIP announced by kube-vip static pods.
    pub kube_vip: bool,
    pub cilium: cilium::Features,
    pub argocd: argocd::Features,
}

/// Something the site asks for whose images the catalog cannot name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    /// The key that asks for it: `cluster.kubernetes_version`, or a values
    /// file and key (`payload/core/cilium/values.yaml: hubble.ui.enabled`).
    pub key: String,
    /// Why, and what the catalog does know.
    pub why: String,
}

impl fmt::Display for Unknown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.why)
    }
}

/// The catalog's answer for one site: the images it can name, sorted and
/// without repeats, and what it cannot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    pub images: Vec<ImageRef>,
    pub unknown: Vec<Unknown>,
}

/// The catalog for `pins` and `features`; `cilium_values` and `argo_values`
/// name the values files in messages.
pub fn build(pins: &Pins, f: &Features, cilium_values: &str, argo_values: &str) -> Catalog {
    let mut refs: Vec<String> = Vec::new();
    let mut unknown = Vec::new();
    match kubeadm::images(&pins.kubernetes, f.kube_proxy) {
        Some(list) => refs.extend(list),
        None => unknown.push(Unknown {
            key: "cluster.kubernetes_version".into(),
            why: format!(
                "pxebuild does not know kubeadm's images for {:?} (its table covers {}; \
                 src/images/catalog/kubeadm.rs)",
                pins.kubernetes,
                kubeadm::covered()
            ),
        }),
    }
    if f.kube_vip {
        refs.push(format!("{KUBE_VIP_IMAGE}:{KUBE_VIP_VERSION}"));
    }
    match cilium::images(&pins.cilium, &f.cilium) {
        Some((list, gaps)) => {
            refs.extend(list.iter().map(|s| s.to_string()));
            let release = format!("Cilium {}", pins.cilium);
            unknown.extend(component_gaps(cilium_values, &gaps, &release));
        }
        None => unknown.push(Unknown {
            key: "cilium.version".into(),
            why: format!(
                "pxebuild does not know Cilium {:?}'s images (it knows {}; \
                 src/images/catalog/cilium.rs)",
                pins.cilium,
                known(cilium::RELEASES.iter().map(|r| r.version))
            ),
        }),
    }
    match argocd::images(&pins.argocd_chart, &f.argocd) {
        Some((list, gaps)) => {
            refs.extend(list);
            let release = format!("the argo-cd chart {}", pins.argocd_chart);
            unknown.extend(component_gaps(argo_values, &gaps, &release));
        }
        None => unknown.push(Unknown {
            key: "argocd.chart_version".into(),
            why: format!(
                "pxebuild does not know the images of the argo-cd chart {:?} (it knows {}; \
                 src/images/catalog/argocd.rs)",
                pins.argocd_chart,
                known(argocd::CHARTS.iter().map(|c| c.version))
            ),
        }),
    }
    let mut images: Vec<ImageRef> = refs
        .iter()
        .filter_map(|r| r.parse::<ImageRef>().ok())
        .map(|mut image| {
            // By tag: the build resolves it (see `pinned_digest`).
            image.digest = None;
            image
        })
        .collect();
    images.sort();
    images.dedup();
    Catalog { images, unknown }
}

/// One [`Unknown`] per component the payload's `values` file enables whose
/// images the catalog does not have for `release` ("Cilium 1.19.8").
fn component_gaps(values: &str, gaps: &[&str], release: &str) -> Vec<Unknown> {
    gaps.iter()
        .map(|key| Unknown {
            key: format!("{values}: {key}"),
            why: format!("pxebuild does not know this component's images for {release}"),
        })
        .collect()
}

fn known<'a>(versions: impl Iterator<Item = &'a str>) -> String {
    versions
        .map(|v| format!("{v:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// For each pinned key (`cluster.kubernetes_version`, `cilium.version`,
/// `argocd.chart_version`), `None` when the catalog covers the pin, else the
/// releases it does know, for the message.
pub fn known_pins(pins: &Pins) -> [(&'static str, Option<String>); 3] {
    let cilium_known = || known(cilium::RELEASES.iter().map(|r| r.version));
    let argo_known = || known(argocd::CHARTS.iter().map(|c| c.version));
    [
        (
            "cluster.kubernetes_version",
            kubeadm::release(&pins.kubernetes)
                .is_none()
                .then(kubeadm::covered),
        ),
        (
            "cilium.version",
            cilium::release(&pins.cilium).is_none().then(cilium_known),
        ),
        (
            "argocd.chart_version",
            argocd::chart(&pins.argocd_chart).is_none().then(argo_known),
        ),
    ]
}

/// The catalog's tables and their sources, the rows the site's pins use
/// marked `*` (what `pxebuild images -v` prints).
pub fn sources(pins: &Pins) -> String {
    let mark = |yes: bool| if yes { "*" } else { " " };
    let mut out =
        String::from("image catalog (rows marked * are this site's; src/images/catalog/):\n");
    out.push_str("  kubeadm (registry.k8s.io)  etcd  CoreDNS  pause  source (read)\n");
    let site_row = kubeadm::release(&pins.kubernetes);
    for r in kubeadm::RELEASES {
        let (major, minor) = r.minor;
        out.push_str(&format!(
            "{} v{major}.{minor}.{} to v{major}.{minor}.{}  {}  {}  {}  {} ({})\n",
            mark(site_row.is_some_and(|s| (s.minor, s.patches) == (r.minor, r.patches))),
            r.patches.0,
            r.patches.1,
            r.etcd,
            r.coredns,
            r.pause,
            r.source,
            r.read
        ));
    }
    out.push_str("  Cilium  source (read)\n");
    for r in cilium::RELEASES {
        out.push_str(&format!(
            "{} {}  {} ({})\n",
            mark(cilium::release(&pins.cilium).is_some_and(|s| s.version == r.version)),
            r.version,
            r.source,
            r.read
        ));
    }
    out.push_str("  argo-cd chart  source (read)\n");
    for c in argocd::CHARTS {
        out.push_str(&format!(
            "{} {}  {} ({})\n",
            mark(c.version == pins.argocd_chart),
            c.version,
            c.source,
            c.read
        ));
    }
    out.push_str(&format!(
        "  kube-vip: {KUBE_VIP_IMAGE}:{KUBE_VIP_VERSION} (templates/kubeadm/kube-vip.yaml.hbs)\n"
    ));
    out
}

/// The digest the upstream chart pins for `image` (same registry,
/// repository and tag), if it pins one. The build resolves tags through the
/// registry; a resolved digest that differs from this one means the tag
/// moved since the chart was released (or a test registry holds a stand-in).
pub fn pinned_digest(image: &ImageRef) -> Option<&'static str> {
    cilium::all_references().find_map(|text| {
        let (name, digest) = text.split_once('@')?;
        let pinned: ImageRef = name.parse().ok()?;
        let same = pinned.registry == image.registry
            && pinned.repository == image.repository
            && pinned.tag == image.tag;
        same.then_some(digest)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pins() -> Pins {
        Pins {
            kubernetes: "v1.35.9".into(),
            cilium: "1.19.8".into(),
            argocd_chart: "10.9.0".into(),
        }
    }

    fn features() -> Features {
        Features {
            kube_proxy: false,
            kube_vip: true,
            cilium: cilium::Features::chart_defaults(),
            argocd: argocd::Features::chart_defaults(),
        }
    }

    fn names(c: &Catalog) -> Vec<String> {
        c.images.iter().map(|i| i.to_string()).collect()
    }

    #[test]
    fn every_table_reference_parses_and_digests_are_well_formed() {
        for text in cilium::all_references() {
            let image: ImageRef = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert!(image.tag.is_some(), "{text}: the chart names a tag");
            if let Some(d) = &image.digest {
                assert_eq!(pinned_digest(&image), Some(d.as_str()), "{text}");
            }
        }
        for c in argocd::CHARTS {
            for (repo, tag) in [
                c.argocd,
                c.dex,
                c.redis,
                c.redis_exporter,
                c.extension_installer,
            ] {
                let text = format!("{repo}:{tag}");
                let image: ImageRef = text.parse().unwrap();
                assert_eq!(image.to_string(), text, "written as containerd reads it");
            }
        }
    }

    #[test]
    fn the_example_sites_list() {
        let c = build(&pins(), &features(), "c.yaml", "a.yaml");
        assert!(c.unknown.is_empty(), "{:?}", c.unknown);
        assert_eq!(
            names(&c),
            [
                "ecr-public.aws.com/docker/library/redis:8.6.4-alpine",
                "ghcr.io/dexidp/dex:v2.45.1",
                "ghcr.io/kube-vip/kube-vip:v0.9.2",
                "quay.io/argoproj/argocd:v3.5.2",
                "quay.io/cilium/cilium:v1.19.8",
                "quay.io/cilium/cilium-envoy:v1.37.6-1789133542-cbec91f666af0bf742da986d43832932dbb26b82",
                "quay.io/cilium/operator-generic:v1.19.8",
                "registry.k8s.io/coredns/coredns:v1.13.1",
                "registry.k8s.io/etcd:3.6.6-0",
                "registry.k8s.io/kube-apiserver:v1.35.9",
                "registry.k8s.io/kube-controller-manager:v1.35.9",
                "registry.k8s.io/kube-scheduler:v1.35.9",
                "registry.k8s.io/pause:3.10.1",
            ]
        );
        assert!(c.images.iter().all(|i| i.digest.is_none()), "by tag");
    }

    #[test]
    fn kube_proxy_only_when_cilium_does_not_replace_it() {
        let proxy = "registry.k8s.io/kube-proxy:v1.35.9".to_string();
        let without = build(&pins(), &features(), "c", "a");
        assert!(!names(&without).contains(&proxy));
        let f = Features {
            kube_proxy: true,
            ..features()
        };
        assert!(names(&build(&pins(), &f, "c", "a")).contains(&proxy));
    }

    #[test]
    fn kube_vip_only_with_a_kube_vip_endpoint() {
        let vip = format!("{KUBE_VIP_IMAGE}:{KUBE_VIP_VERSION}");
        assert!(names(&build(&pins(), &features(), "c", "a")).contains(&vip));
        let f = Features {
            kube_vip: false,
            ..features()
        };
        assert!(!names(&build(&pins(), &f, "c", "a")).contains(&vip));
    }

    #[test]
    fn hubble_adds_its_images_or_says_it_cannot() {
        let mut f = features();
        f.cilium.hubble_relay = true;
        let c = build(&pins(), &f, "c", "a");
        assert!(names(&c).contains(&"quay.io/cilium/hubble-relay:v1.19.8".to_string()));
        assert!(c.unknown.is_empty());
        f.cilium.hubble_ui = true;
        let c = build(&pins(), &f, "payload/core/cilium/values.yaml", "a");
        assert_eq!(
            c.unknown.iter().map(|u| u.to_string()).collect::<Vec<_>>(),
            [
                "payload/core/cilium/values.yaml: hubble.ui.enabled: pxebuild does not know this \
              component's images for Cilium 1.19.8"
            ]
        );
    }

    #[test]
    fn unknown_versions_name_their_key() {
        let p = Pins {
            kubernetes: "v1.35.10".into(),
            cilium: "1.20.2".into(),
            argocd_chart: "10.9.2".into(),
        };
        let c = build(&p, &features(), "c", "a");
        let keys: Vec<&str> = c.unknown.iter().map(|u| u.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "cluster.kubernetes_version",
                "cilium.version",
                "argocd.chart_version"
            ]
        );
        assert!(
            c.unknown[0].why.contains("\"v1.35.10\""),
            "{}",
            c.unknown[0]
        );
        // What is known is still listed.
        assert_eq!(names(&c), ["ghcr.io/kube-vip/kube-vip:v0.9.2"]);
    }

    #[test]
    fn sources_mark_the_sites_rows() {
        let table = sources(&pins());
        assert!(
            table.contains("* v1.35.0 to v1.35.9  3.6.6-0  v1.13.1  3.10.1"),
            "{table}"
        );
        assert!(table.contains("  v1.34.0 to v1.34.0"), "{table}");
        assert!(
            table.contains("* 1.19.8  Cilium v1.19.8 release notes"),
            "{table}"
        );
        assert!(table.contains("* 10.9.0  argoproj/argo-helm"), "{table}");
    }

    #[test]
    fn pinned_digests_come_from_the_chart_only() {
        let agent: ImageRef = "quay.io/cilium/cilium:v1.19.8".parse().unwrap();
        assert_eq!(
            pinned_digest(&agent),
            Some("sha256:e9f7ee1f2f3a41e44339612e3b6b88170bdde7679c9c9461f287bb27702a8ecf")
        );
        let pause: ImageRef = "registry.k8s.io/pause:3.10.1".parse().unwrap();
        assert_eq!(pinned_digest(&pause), None);
        let other_tag: ImageRef = "quay.io/cilium/cilium:v1.19.7".parse().unwrap();
        assert_eq!(pinned_digest(&other_tag), None);
    }

    /// The kube-vip image the catalog lists is the one the static pod runs.
    #[test]
    fn kube_vip_matches_its_template() {
        let template = include_str!("../../../templates/kubeadm/kube-vip.yaml.hbs");
        let want = format!("image: \"{KUBE_VIP_IMAGE}:{{{{site.cluster.kube_vip_version}}}}\"");
        assert!(template.contains(&want), "{want} not in the template");
    }
}
