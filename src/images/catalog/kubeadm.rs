//! kubeadm's images for a Kubernetes release: the list `kubeadm config images
//! list --kubernetes-version <v>` prints, which is what `kubeadm init` and
//! `kubeadm join --control-plane` pull.
//!
//! The API server, controller manager, scheduler and kube-proxy carry the
//! release's own tag. etcd, CoreDNS and pause come from kubeadm's constants
//! (kubernetes `cmd/kubeadm/app/constants/constants.go` at the release's tag:
//! `DefaultEtcdVersion`, `CoreDNSVersion`, `PauseVersion`), which change
//! between minors and now and then in a patch release (an etcd bump is
//! backported), so each row names the patch releases it was confirmed for.
//! A release outside every row is not guessed: the catalog says so.
//!
//! kube-proxy is left out when Cilium replaces it: the site's
//! `cilium.kube_proxy_replacement` also sets `proxy.disabled` in kubeadm's
//! ClusterConfiguration (templates/kubeadm/init.yaml.hbs), and kubeadm then
//! skips the kube-proxy addon, so nothing pulls the image.

/// The registry and repositories kubeadm uses by default (`imageRepository`
/// is not set by the site's kubeadm configs).
pub(crate) const REGISTRY: &str = "registry.k8s.io";
pub(crate) const CONTROL_PLANE: [&str; 3] = [
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
];
pub(crate) const KUBE_PROXY: &str = "kube-proxy";
/// CoreDNS lives in its own repository path since kubeadm 1.21.
pub(crate) const COREDNS: &str = "coredns/coredns";
pub(crate) const ETCD: &str = "etcd";
pub(crate) const PAUSE: &str = "pause";

/// kubeadm's pinned add-on versions for a run of patch releases of a minor.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Release {
    pub minor: (u32, u32),
    /// First and last patch release (inclusive) the row was confirmed for.
    pub patches: (u32, u32),
    /// `DefaultEtcdVersion` (the image tag, with its `-0` build suffix).
    pub etcd: &'static str,
    /// `CoreDNSVersion`.
    pub coredns: &'static str,
    /// `PauseVersion`.
    pub pause: &'static str,
    /// Where the row was read (kubeadm's own list or constants).
    pub source: &'static str,
    /// The day it was read, `YYYY-MM-DD`.
    pub read: &'static str,
}

/// Oldest minor first. The minors and patches the table covers are the ones
/// whose list could be confirmed (kubeadm's pins only move forward on a
/// release branch, so a value read at two patch releases holds between
/// them): extend it with a row, or a wider patch range, read from `kubeadm
/// config images list` or constants.go at the release's tag.
pub(crate) const RELEASES: &[Release] = &[
    Release {
        minor: (1, 34),
        patches: (0, 0),
        etcd: "3.6.4-0",
        coredns: "v1.12.1",
        pause: "3.10.1",
        source: "the images kubeadm pulled for v1.34.0 (a minikube node's image list)",
        read: "2026-12-07",
    },
    Release {
        minor: (1, 35),
        patches: (0, 9),
        etcd: "3.6.6-0",
        coredns: "v1.13.1",
        pause: "3.10.1",
        source: "`kubeadm config images list` for v1.35.0, the images of v1.35.1 \
                 (minikube), and etcd 3.6.6-0 / CoreDNS v1.13.1 running under kubeadm \
                 v1.35.8 and v1.35.9 (pause read at v1.35.0 and v1.35.1)",
        read: "2026-12-07",
    },
    Release {
        minor: (1, 36),
        patches: (1, 4),
        etcd: "3.6.8-0",
        coredns: "v1.14.2",
        pause: "3.10.2",
        source: "`kubeadm config images list` for v1.36.1 and for v1.36.4",
        read: "2026-12-07",
    },
    Release {
        minor: (1, 37),
        patches: (0, 1),
        etcd: "3.7.0-0",
        coredns: "v1.14.6",
        pause: "3.10.2",
        source: "`kubeadm config images list` for v1.37.1, and etcd 3.7.0-0 in the static \
                 pods kubeadm v1.37.0 wrote (CoreDNS and pause read at v1.37.1)",
        read: "2026-12-07",
    },
];

/// (major, minor, patch) of a release `v1.35.9`; `None` for anything else
/// (validation refuses such a `cluster.kubernetes_version` before this).
pub(crate) fn parse_release(version: &str) -> Option<(u32, u32, u32)> {
    let mut parts = version.strip_prefix('v')?.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    let patch = parts.next()?.parse().ok()?;
    parts.next().is_none().then_some((major, minor, patch))
}

/// The row covering `version`, if the table has one.
pub(crate) fn release(version: &str) -> Option<&'static Release> {
    let (major, minor, patch) = parse_release(version)?;
    RELEASES
        .iter()
        .find(|r| r.minor == (major, minor) && (r.patches.0..=r.patches.1).contains(&patch))
}

/// kubeadm's image references for `version` (`v1.35.9`), kube-proxy only
/// when `kube_proxy`; `None` when the table does not cover the release.
pub(crate) fn images(version: &str, kube_proxy: bool) -> Option<Vec<String>> {
    let row = release(version)?;
    let mut out: Vec<String> = CONTROL_PLANE
        .iter()
        .map(|name| format!("{REGISTRY}/{name}:{version}"))
        .collect();
    if kube_proxy {
        out.push(format!("{REGISTRY}/{KUBE_PROXY}:{version}"));
    }
    out.push(format!("{REGISTRY}/{COREDNS}:{}", row.coredns));
    out.push(format!("{REGISTRY}/{ETCD}:{}", row.etcd));
    out.push(format!("{REGISTRY}/{PAUSE}:{}", row.pause));
    Some(out)
}

/// The releases the table covers, for messages: `v1.35.0 to v1.35.9, …`.
pub(crate) fn covered() -> String {
    RELEASES
        .iter()
        .map(|r| {
            let (major, minor) = r.minor;
            if r.patches.0 == r.patches.1 {
                format!("v{major}.{minor}.{}", r.patches.0)
            } else {
                format!(
                    "v{major}.{minor}.{} to v{major}.{minor}.{}",
                    r.patches.0, r.patches.1
                )
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_ordered_and_disjoint() {
        for w in RELEASES.windows(2) {
            assert!(w[0].minor < w[1].minor, "{:?} before {:?}", w[0], w[1]);
        }
        for r in RELEASES {
            assert!(r.patches.0 <= r.patches.1, "{r:?}");
            assert!(r.etcd.ends_with("-0"), "etcd images carry -0: {r:?}");
            assert!(r.coredns.starts_with('v'), "{r:?}");
        }
    }

    #[test]
    fn the_same_list_kubeadm_prints() {
        let with_proxy = images("v1.35.9", true).unwrap();
        assert_eq!(
            with_proxy,
            [
                "registry.k8s.io/kube-apiserver:v1.35.9",
                "registry.k8s.io/kube-controller-manager:v1.35.9",
                "registry.k8s.io/kube-scheduler:v1.35.9",
                "registry.k8s.io/kube-proxy:v1.35.9",
                "registry.k8s.io/coredns/coredns:v1.13.1",
                "registry.k8s.io/etcd:3.6.6-0",
                "registry.k8s.io/pause:3.10.1",
            ]
        );
        let without = images("v1.35.9", false).unwrap();
        assert_eq!(without.len(), 6);
        assert!(!without.iter().any(|i| i.contains("kube-proxy")));
    }

    #[test]
    fn releases_outside_the_table_are_not_guessed() {
        assert!(images("v1.35.10", false).is_none());
        assert!(images("v1.36.0", false).is_none());
        assert!(images("v1.33.2", false).is_none());
        assert!(images("1.35.9", false).is_none());
        assert!(images("v1.35.9.1", false).is_none());
        assert_eq!(release("v1.36.3").unwrap().etcd, "3.6.8-0");
        assert!(covered().contains("v1.35.0 to v1.35.9"), "{}", covered());
    }
}
