//! `payload/core/cilium/values.yaml`: the one source of Cilium's Helm values,
//! read by the first control plane's install unit and by the day-2 Argo CD
//! Application alike. The build checks it agrees with site.toml.
//!
//! A site directory without `payload/` builds with the payload built into
//! pxebuild (`crate::embedded`), named `pxebuild:payload/…` in messages; the
//! origin is part of the node steps' keys. Argo CD reads payload/ from git,
//! so day 2 (`install-argo`) always needs the site's own copy.
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_json::Value;

use crate::error::BadInput;
use crate::site::images::CILIUM_VALUES;
use crate::site::Site;

/// Where the values file lives for `site`.
pub fn values_path(site: &Site) -> PathBuf {
    site.payload_dir().join(CILIUM_VALUES)
}

/// The values file's text and where it came from (`site` or `embedded`):
/// the site's payload/ when the site directory has one, else the copy built
/// into pxebuild. Checked as [`check_values`] does; what
/// [`left_to_cilium_install`] finds is a warning, or an error with `strict`.
pub fn load_values(site: &Site, strict: bool) -> Result<(String, &'static str)> {
    let (text, path, origin) = if site.payload_dir().exists() {
        let path = values_path(site);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))
            .map_err(|e| BadInput::new(format!("{e:#}: Cilium's Helm values are required")))?;
        (text, path, "site")
    } else {
        let rel = Path::new("payload").join(CILIUM_VALUES);
        let bytes =
            crate::embedded::file(&rel).context("pxebuild was built without its payload")?;
        let text = String::from_utf8_lossy(bytes).into_owned();
        (
            text,
            Path::new("pxebuild:").join(rel),
            crate::embedded::ORIGIN,
        )
    };
    let values = parse(&text, &path)?;
    check_parsed(site, &values, &path)?;
    if let Some(msg) = left_to_cilium_install(site, &values, &path) {
        if strict {
            return Err(BadInput::new(msg));
        }
        crate::warn!("{msg}");
    }
    Ok((text, origin))
}

/// `cilium install` fills in `cluster.name` when the file leaves it out: the
/// name of the kubeconfig's cluster, which kubeadm calls after the site. The
/// running release then has a value Argo CD's render of the same file would
/// not (the chart's default is `default`), and `install-argo` stops on that
/// difference (`day2::drift`). Said at build time, when the file is still
/// easy to change.
pub fn left_to_cilium_install(site: &Site, values: &Value, path: &Path) -> Option<String> {
    if lookup(values, "cluster.name").is_some() {
        return None;
    }
    let name = &site.file.cluster.name;
    Some(format!(
        "{}: cluster.name is not set: `cilium install` will name the Cilium cluster {name:?} \
         (the kubeconfig's cluster), Argo CD's render of this file would name it \"default\", \
         and install-argo stops on that difference; add `cluster:` with `name: {name}`",
        path.display()
    ))
}

/// Every key the site decides must agree; names the first key that does not.
pub fn check_values(site: &Site, text: &str, path: &Path) -> Result<()> {
    check_parsed(site, &parse(text, path)?, path)
}

/// The values file as data; a syntax error names the file.
fn parse(text: &str, path: &Path) -> Result<Value> {
    serde_norway::from_str(text).map_err(|e| BadInput::new(format!("{}: {e}", path.display())))
}

/// [`check_values`] on values already parsed.
fn check_parsed(site: &Site, values: &Value, path: &Path) -> Result<()> {
    let c = &site.file.cilium;
    let ep = site.file.cluster.endpoint.get();
    let (host, port) = (ep.ip.to_string(), ep.port);
    let mut expect: Vec<(&str, Value)> = vec![
        ("k8sServiceHost", Value::from(host)),
        ("k8sServicePort", Value::from(port)),
        (
            "kubeProxyReplacement",
            Value::from(c.kube_proxy_replacement),
        ),
        ("encryption.enabled", Value::from(c.wireguard)),
    ];
    if c.wireguard {
        expect.push(("encryption.type", Value::from("wireguard")));
    }
    for (key, want) in expect {
        let got = lookup(values, key);
        if !same(got, &want) {
            return Err(mismatch(path, key, got, &want));
        }
    }
    check_mtu(site, lookup(values, "MTU"), path)?;
    check_operator_replicas(site, lookup(values, "operator.replicas"), path)
}

/// `operator.replicas` when the values leave it out: the chart's default.
const CHART_OPERATOR_REPLICAS: u64 = 2;

/// The operator replicas a site of `nodes` nodes can run: the chart's pods
/// repel each other (required anti-affinity on the host name) and tolerate
/// every taint, so each node hosts one, and no more than one fits a
/// one-node site.
pub fn operator_replicas_for(nodes: usize) -> u64 {
    CHART_OPERATOR_REPLICAS.min(nodes.max(1) as u64)
}

/// More operator replicas than nodes leaves one Pending for good, and
/// `cilium status --wait` (and Argo CD's health) would wait for it forever.
fn check_operator_replicas(site: &Site, got: Option<&Value>, path: &Path) -> Result<()> {
    let nodes = site.file.nodes.len();
    let want = operator_replicas_for(nodes);
    let (replicas, said) = match got {
        None => (
            CHART_OPERATOR_REPLICAS,
            format!("not set (the chart's default is {CHART_OPERATOR_REPLICAS})"),
        ),
        Some(v) => match v
            .as_u64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        {
            Some(n) if n >= 1 => (n, format!("{n}")),
            _ => {
                return Err(BadInput::new(format!(
                    "{}: operator.replicas is {v}, not a number of replicas (at least 1); \
                     set `operator:` with `replicas: {want}`",
                    path.display()
                )))
            }
        },
    };
    if replicas as usize <= nodes {
        return Ok(());
    }
    let plural = if nodes == 1 { "node" } else { "nodes" };
    Err(BadInput::new(format!(
        "{}: operator.replicas is {said} but the site has {nodes} {plural}: Cilium's operator \
         replicas never share a node (required pod anti-affinity), so {} would stay Pending \
         and `cilium status --wait` would never finish; set `operator:` with `replicas: {want}`",
        path.display(),
        replicas as usize - nodes
    )))
}

fn check_mtu(site: &Site, got: Option<&Value>, path: &Path) -> Result<()> {
    let c = &site.file.cilium;
    match (c.mtu, got) {
        (None, None) => Ok(()),
        // The site's checks hold `cilium.mtu` to the link.
        (Some(mtu), got) if same(got, &Value::from(mtu)) => Ok(()),
        (want, got) => Err(mismatch(
            path,
            "MTU",
            got,
            &want.map_or(Value::Null, Value::from),
        )),
    }
}

fn mismatch(path: &Path, key: &str, got: Option<&Value>, want: &Value) -> anyhow::Error {
    let got = got.map_or_else(|| "nothing".to_string(), Value::to_string);
    BadInput::new(format!(
        "{}: {key} is {got} but site.toml implies {want}; make them agree",
        path.display()
    ))
}

/// `a.b.c` lookup in nested maps.
fn lookup<'a>(v: &'a Value, dotted: &str) -> Option<&'a Value> {
    dotted.split('.').try_fold(v, |v, k| v.get(k))
}

/// Equality that accepts `"true"`/`6443` written as strings, as Helm does.
fn same(got: Option<&Value>, want: &Value) -> bool {
    match got {
        None => want.is_null(),
        Some(g) if g == want => true,
        Some(Value::String(s)) => *s == want.to_string().trim_matches('"'),
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(edit: impl Fn(&mut crate::site::SiteFile)) -> Site {
        let mut site = Site::from_text(include_str!("../../site.toml"), Path::new("site.toml"))
            .expect("the example site is valid");
        edit(&mut site.file);
        site
    }

    const VALUES: &str = "k8sServiceHost: 10.20.0.10\nk8sServicePort: \"6443\"\n\
        kubeProxyReplacement: \"true\"\nencryption:\n  enabled: true\n  type: wireguard\n";

    #[test]
    fn helm_strings_count_as_their_values() {
        check_values(&site(|_| {}), VALUES, Path::new("v.yaml")).unwrap();
    }

    #[test]
    fn an_unset_cluster_name_is_named_before_cilium_install_fills_it_in() {
        let path = Path::new("v.yaml");
        let values = parse(VALUES, path).unwrap();
        let msg = left_to_cilium_install(&site(|_| {}), &values, path).expect("a warning");
        assert!(
            msg.starts_with(
                "v.yaml: cluster.name is not set: `cilium install` will name the \
                 Cilium cluster \"rack1\""
            ),
            "{msg}"
        );
        assert!(msg.ends_with("add `cluster:` with `name: rack1`"), "{msg}");
        // Any name the file sets is what cilium install and Argo CD both use.
        for name in ["rack1", "other"] {
            let set = format!("{VALUES}cluster:\n  name: {name}\n");
            let values = parse(&set, path).unwrap();
            assert_eq!(left_to_cilium_install(&site(|_| {}), &values, path), None);
        }
    }

    #[test]
    fn the_example_payload_sets_what_cilium_install_would_detect() {
        let site = site(|_| {});
        let text = include_str!("../../payload/core/cilium/values.yaml");
        let path = Path::new("values.yaml");
        check_values(&site, text, path).unwrap();
        let values = parse(text, path).unwrap();
        assert_eq!(left_to_cilium_install(&site, &values, path), None);
    }

    /// The example site's first `n` nodes.
    fn site_of(n: usize) -> Site {
        site(|f| f.nodes.truncate(n))
    }

    #[test]
    fn operator_replicas_fit_the_sites_nodes() {
        let path = Path::new("v.yaml");
        assert_eq!(
            [1, 2, 3, 5].map(operator_replicas_for),
            [1, 2, 2, 2],
            "1 below two nodes, else the chart's 2"
        );
        // Left out, the chart's 2: too many for a one-node site.
        let err = check_values(&site_of(1), VALUES, path).unwrap_err();
        assert_eq!(
            err.to_string(),
            "v.yaml: operator.replicas is not set (the chart's default is 2) but the site has \
             1 node: Cilium's operator replicas never share a node (required pod \
             anti-affinity), so 1 would stay Pending and `cilium status --wait` would never \
             finish; set `operator:` with `replicas: 1`"
        );
        let two = format!("{VALUES}operator:\n  replicas: 2\n");
        let err = check_values(&site_of(1), &two, path).unwrap_err();
        assert!(
            err.to_string().contains("operator.replicas is 2 but"),
            "{err}"
        );
        let one = format!("{VALUES}operator:\n  replicas: \"1\"\n");
        check_values(&site_of(1), &one, path).unwrap();
        // Two nodes host two; the example's five host them all the more.
        check_values(&site_of(2), VALUES, path).unwrap();
        check_values(&site_of(2), &two, path).unwrap();
        check_values(&site(|_| {}), &two, path).unwrap();
        let three = format!("{VALUES}operator:\n  replicas: 3\n");
        let err = check_values(&site_of(2), &three, path).unwrap_err();
        assert!(err.to_string().contains("has 2 nodes"), "{err}");
        let zero = format!("{VALUES}operator:\n  replicas: 0\n");
        let err = check_values(&site_of(3), &zero, path).unwrap_err();
        assert!(err.to_string().contains("replicas: 2`"), "{err}");
    }

    #[test]
    fn mtu_must_match_the_site() {
        let path = Path::new("v.yaml");
        // Cilium's MTU is the underlying network's: the link's own is right.
        let with_mtu = format!("{VALUES}MTU: 1500\n");
        let err = check_values(&site(|_| {}), &with_mtu, path).unwrap_err();
        assert!(format!("{err}").contains("MTU"), "{err}");
        check_values(&site(|f| f.cilium.mtu = Some(1500)), &with_mtu, path).unwrap();
        let err = check_values(&site(|f| f.cilium.mtu = Some(1450)), &with_mtu, path).unwrap_err();
        assert!(format!("{err}").contains("MTU"), "{err}");
        let err = check_values(&site(|f| f.cilium.mtu = Some(1420)), VALUES, path).unwrap_err();
        assert!(format!("{err}").contains("MTU is nothing"), "{err}");
    }
}
