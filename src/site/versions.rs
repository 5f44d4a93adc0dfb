//! What pxebuild knows about the life of the releases a site pins: when each
//! Kubernetes minor reaches its end of life, which Kubernetes minors each
//! Cilium minor is e2e tested with, and where the example site's pins were
//! confirmed. `check` (and every command that loads the site) warns when the
//! pinned Kubernetes minor is past its end of life on the day it runs, or is
//! outside the pinned Cilium's tested range; `check -v` prints the table.
//!
//! Every row names its source and the day it was read there. To extend the
//! table, add a row in order (newest last) with the date and the page it comes
//! from; the unit tests keep the rows sorted and the example site in step with
//! `EXAMPLE_PINS`. A minor the table does not list is never warned about: the
//! check says only what a source said.

use crate::clock;

/// A Kubernetes minor release and the day upstream stops patching it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KubernetesMinor {
    pub minor: (u32, u32),
    /// End of life, `YYYY-MM-DD` (the release is supported through that day).
    pub end_of_life: &'static str,
    pub source: &'static str,
    /// The day the source was read, `YYYY-MM-DD`.
    pub read: &'static str,
}

/// A Cilium minor release and the Kubernetes minors its docs list as e2e
/// tested ("Kubernetes Compatibility"); Cilium keeps that list for a release
/// branch's whole maintenance period.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CiliumMinor {
    pub minor: (u32, u32),
    /// Oldest and newest tested Kubernetes minor (the list is contiguous).
    pub tested: ((u32, u32), (u32, u32)),
    pub source: &'static str,
    pub read: &'static str,
}

/// A release the example site pins and where it was confirmed to exist.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pin {
    /// The site key that pins it.
    pub key: &'static str,
    pub version: &'static str,
    pub source: &'static str,
    pub read: &'static str,
}

const K8S_EOL_YAML: &str = "https://github.com/kubernetes/website/blob/main/data/releases/eol.yaml";

/// Kubernetes minors, oldest first. Older minors are refused by validation
/// (the kubeadm configs need v1.31), so the table starts there.
pub(crate) const KUBERNETES: &[KubernetesMinor] = &[
    KubernetesMinor {
        minor: (1, 31),
        end_of_life: "2025-11-11",
        source: K8S_EOL_YAML,
        read: "2026-12-07",
    },
    KubernetesMinor {
        minor: (1, 32),
        end_of_life: "2026-02-28",
        source: K8S_EOL_YAML,
        read: "2026-12-07",
    },
    KubernetesMinor {
        minor: (1, 33),
        end_of_life: "2026-06-28",
        source: "https://kubernetes.io/releases/1.33/",
        read: "2026-12-07",
    },
    KubernetesMinor {
        minor: (1, 34),
        end_of_life: "2026-10-27",
        source: "https://kubernetes.io/releases/1.34/",
        read: "2026-12-07",
    },
    KubernetesMinor {
        minor: (1, 35),
        end_of_life: "2027-02-28",
        source: "https://kubernetes.io/releases/1.35/",
        read: "2026-12-07",
    },
    KubernetesMinor {
        minor: (1, 36),
        end_of_life: "2027-06-28",
        source: "https://kubernetes.io/releases/1.36/",
        read: "2026-12-07",
    },
    KubernetesMinor {
        minor: (1, 37),
        end_of_life: "2027-10-28",
        source: "https://kubernetes.io/releases/1.37/",
        read: "2026-12-07",
    },
];

/// Cilium minors, oldest first.
pub(crate) const CILIUM: &[CiliumMinor] = &[
    CiliumMinor {
        minor: (1, 18),
        tested: ((1, 30), (1, 33)),
        source: "https://docs.cilium.io/en/v1.18/network/kubernetes/compatibility/ \
                 (Documentation/network/kubernetes/compatibility.rst at v1.18.14)",
        read: "2026-12-07",
    },
    CiliumMinor {
        minor: (1, 19),
        tested: ((1, 32), (1, 35)),
        source: "https://docs.cilium.io/en/v1.19/network/kubernetes/compatibility/ \
                 (Documentation/network/kubernetes/compatibility.rst at v1.19.3)",
        read: "2026-12-07",
    },
];

/// The example site's pins (site.toml), each confirmed at its source. The
/// newest release each source confirmed on the day it was read; a newer one
/// may exist.
pub(crate) const EXAMPLE_PINS: &[Pin] = &[
    Pin {
        key: "cluster.kubernetes_version",
        version: "v1.35.9",
        source: "https://kubernetes.io/releases/1.35/ (1.35.9 released 2026-09-15)",
        read: "2026-12-07",
    },
    Pin {
        key: "sysext.kubernetes",
        version: "v1.35.9",
        source: "flatcar/sysext-bakery release_build_versions.txt \"kubernetes latest\": \
                 the daily release workflow bakes the newest patch of every supported \
                 minor (kubernetes.sysext/funcs.inc reads kubernetes/website schedule.yaml)",
        read: "2026-12-07",
    },
    Pin {
        key: "sysext.cilium",
        version: "v0.18.2",
        source: "flatcar/sysext-bakery release_build_versions.txt (\"cilium v0.18.2\" is \
                 built by name); cilium-cli v0.16 and later install Cilium 1.15 and newer",
        read: "2026-12-07",
    },
    Pin {
        key: "cilium.version",
        version: "1.19.8",
        source: "Cilium 1.19 release branch (1.19.8 shipped by sighupio/module-networking \
                 v4.1.0, 2026-10-15); tested range: see the Cilium table",
        read: "2026-12-07",
    },
    Pin {
        key: "flatcar.version",
        version: "4593.2.5",
        source: "flatcar/flatcar-website data/releases/stable/current.yml \
                 (stable-4593.2.5, published 2026-08-13; the newest stable found)",
        read: "2026-12-07",
    },
    Pin {
        key: "argocd.chart_version",
        version: "10.9.0",
        source: "argoproj/argo-helm release argo-cd-10.9.0 (2026-09-14; Argo CD v3.5; \
                 charts/argo-cd/Chart.yaml asks kubeVersion >= 1.25)",
        read: "2026-12-07",
    },
];

/// Today, as days since 1970-01-01 (UTC), from the system clock: the build
/// date the end-of-life check compares against.
pub(crate) fn today() -> i64 {
    clock::now_ms().div_euclid(86_400_000)
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` date in the table.
fn day(date: &str) -> i64 {
    let mut parts = date.split('-').map(|p| p.parse::<u32>().unwrap_or(0));
    let (y, m, d) = (
        parts.next().unwrap_or(1970),
        parts.next().unwrap_or(1),
        parts.next().unwrap_or(1),
    );
    clock::days_from_civil(i64::from(y), m, d)
}

/// `YYYY-MM-DD` of a day count.
pub(crate) fn date(days: i64) -> String {
    let (y, m, d) = clock::civil(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// (major, minor) of "v1.35.9" or "1.19.8"; `None` for anything else.
pub(crate) fn minor_of(version: &str) -> Option<(u32, u32)> {
    let mut parts = version.strip_prefix('v').unwrap_or(version).split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

pub(crate) fn kubernetes_row(minor: (u32, u32)) -> Option<&'static KubernetesMinor> {
    KUBERNETES.iter().find(|r| r.minor == minor)
}

pub(crate) fn cilium_row(minor: (u32, u32)) -> Option<&'static CiliumMinor> {
    CILIUM.iter().find(|r| r.minor == minor)
}

fn show((major, minor): (u32, u32)) -> String {
    format!("{major}.{minor}")
}

/// Why the pinned Kubernetes is not supported on day `today`, if the table
/// says so.
pub(crate) fn kubernetes_problem(version: &str, today: i64) -> Option<String> {
    let row = kubernetes_row(minor_of(version)?)?;
    (day(row.end_of_life) < today).then(|| {
        format!(
            "{version:?}: Kubernetes {} reached its end of life on {} ({}) and gets no \
             security fixes; pin a supported minor (`pxebuild check -v` lists the table)",
            show(row.minor),
            row.end_of_life,
            row.source
        )
    })
}

/// Why the pinned Cilium is not known to work with the pinned Kubernetes, if
/// the table says so.
pub(crate) fn cilium_problem(cilium: &str, kubernetes: &str) -> Option<String> {
    let k8s = minor_of(kubernetes)?;
    let row = cilium_row(minor_of(cilium)?)?;
    let (lo, hi) = row.tested;
    (k8s < lo || k8s > hi).then(|| {
        format!(
            "{cilium:?}: Cilium {} is e2e tested with Kubernetes {} to {}, not {} \
             (cluster.kubernetes_version {kubernetes:?}; {}); pin the Cilium release \
             whose tested range includes it",
            show(row.minor),
            show(lo),
            show(hi),
            show(k8s),
            row.source
        )
    })
}

/// The table for a site pinning `kubernetes` and `cilium`, as `check -v`
/// prints it: the site's rows marked `*`, then the example's pins.
pub(crate) fn table(kubernetes: &str, cilium: &str, today: i64) -> String {
    let k8s = minor_of(kubernetes);
    let ci = minor_of(cilium);
    let mark = |yes: bool| if yes { "*" } else { " " };
    let mut out = format!(
        "release support on {} (rows marked * are this site's; src/site/versions.rs):\n",
        date(today)
    );
    out.push_str("  Kubernetes  end of life  status     source (read)\n");
    for r in KUBERNETES {
        let status = if day(r.end_of_life) < today {
            "past EOL"
        } else {
            "supported"
        };
        out.push_str(&format!(
            "{} {:<10}  {}   {:<9}  {} ({})\n",
            mark(k8s == Some(r.minor)),
            show(r.minor),
            r.end_of_life,
            status,
            r.source,
            r.read
        ));
    }
    if let Some(m) = k8s.filter(|m| kubernetes_row(*m).is_none()) {
        out.push_str(&format!("* {:<10}  not in the table\n", show(m)));
    }
    out.push_str("  Cilium      tested with Kubernetes  source (read)\n");
    for r in CILIUM {
        out.push_str(&format!(
            "{} {:<10}  {} to {:<15}  {} ({})\n",
            mark(ci == Some(r.minor)),
            show(r.minor),
            show(r.tested.0),
            show(r.tested.1),
            r.source,
            r.read
        ));
    }
    if let Some(m) = ci.filter(|m| cilium_row(*m).is_none()) {
        out.push_str(&format!("* {:<10}  not in the table\n", show(m)));
    }
    out.push_str("  example site pins:\n");
    for p in EXAMPLE_PINS {
        out.push_str(&format!(
            "    {} = {:?}: {} ({})\n",
            p.key, p.version, p.source, p.read
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../site.toml");

    fn on(date: &str) -> i64 {
        day(date)
    }

    #[test]
    fn rows_are_ordered_dated_and_ranges_are_sane() {
        for w in KUBERNETES.windows(2) {
            assert!(w[0].minor < w[1].minor);
            assert!(day(w[0].end_of_life) < day(w[1].end_of_life));
        }
        for w in CILIUM.windows(2) {
            assert!(w[0].minor < w[1].minor);
        }
        for r in CILIUM {
            assert!(r.tested.0 <= r.tested.1);
        }
        let dates = KUBERNETES
            .iter()
            .flat_map(|r| [r.end_of_life, r.read])
            .chain(CILIUM.iter().map(|r| r.read))
            .chain(EXAMPLE_PINS.iter().map(|p| p.read));
        for d in dates {
            assert_eq!(date(day(d)), d, "not a YYYY-MM-DD date");
        }
    }

    #[test]
    fn kubernetes_is_warned_about_the_day_after_its_end_of_life() {
        assert_eq!(kubernetes_problem("v1.33.2", on("2026-06-28")), None);
        let msg = kubernetes_problem("v1.33.2", on("2026-06-29")).unwrap();
        assert!(
            msg.starts_with("\"v1.33.2\": Kubernetes 1.33 reached its end of life on 2026-06-28"),
            "{msg}"
        );
        assert_eq!(kubernetes_problem("v1.35.9", on("2026-12-07")), None);
        assert!(kubernetes_problem("v1.35.9", on("2027-03-01")).is_some());
        // Not in the table: nothing is claimed.
        assert_eq!(kubernetes_problem("v1.40.0", on("2030-01-01")), None);
    }

    #[test]
    fn cilium_is_warned_about_outside_its_tested_range() {
        assert_eq!(cilium_problem("1.19.8", "v1.35.9"), None);
        assert_eq!(cilium_problem("1.19.8", "v1.32.0"), None);
        let msg = cilium_problem("1.18.6", "v1.35.9").unwrap();
        assert!(
            msg.starts_with(
                "\"1.18.6\": Cilium 1.18 is e2e tested with Kubernetes 1.30 to 1.33, not 1.35"
            ),
            "{msg}"
        );
        assert!(cilium_problem("1.19.8", "v1.36.1").is_some());
        assert_eq!(cilium_problem("1.25.0", "v1.35.9"), None);
    }

    #[test]
    fn the_example_site_pins_what_the_table_records() {
        let file: crate::site::schema::RawSiteFile = toml::from_str(EXAMPLE).unwrap();
        let value = |key: &str| match key {
            "cluster.kubernetes_version" => file.cluster.kubernetes_version.clone(),
            "sysext.kubernetes" => file.sysext.kubernetes.clone(),
            "sysext.cilium" => file.sysext.cilium.clone(),
            "cilium.version" => file.cilium.version.clone(),
            "flatcar.version" => file.flatcar.version.clone(),
            "argocd.chart_version" => file.argocd.chart_version.clone(),
            other => panic!("unknown key {other}"),
        };
        for p in EXAMPLE_PINS {
            assert_eq!(value(p.key), p.version, "{}", p.key);
        }
        let k8s = &file.cluster.kubernetes_version;
        assert!(kubernetes_row(minor_of(k8s).unwrap()).is_some());
        assert!(cilium_row(minor_of(&file.cilium.version).unwrap()).is_some());
        assert_eq!(kubernetes_problem(k8s, on("2026-12-07")), None);
        assert_eq!(cilium_problem(&file.cilium.version, k8s), None);
    }

    #[test]
    fn table_marks_the_sites_rows() {
        let t = table("v1.35.9", "1.19.8", on("2026-12-07"));
        assert!(t.starts_with("release support on 2026-12-07"), "{t}");
        assert!(t.contains("* 1.35        2027-02-28   supported"), "{t}");
        assert!(t.contains("  1.34        2026-10-27   past EOL"), "{t}");
        assert!(t.contains("* 1.19        1.32 to 1.35"), "{t}");
        let t = table("v1.40.1", "1.30.0", on("2026-12-07"));
        assert!(t.contains("* 1.40        not in the table"), "{t}");
        assert!(t.contains("* 1.30        not in the table"), "{t}");
    }
}
