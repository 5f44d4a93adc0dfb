//! The step from the text schema to the typed site: once validation found no
//! error, every value that needs parsing is parsed once more, here, into the
//! type the rest of pxebuild reads (`schema::SiteFile`). After this nothing
//! re-parses a site value or compares a mode as text.
//!
//! Validation already proved each parse succeeds; should the two ever
//! disagree, the value is reported like any invalid one (file, line,
//! column, key), never a panic.
use std::str::FromStr;

use super::diagnostic::{Diagnostic, Severity};
use super::schema::{
    Cluster, Network, Node, RawCluster, RawNetwork, RawNode, RawSiteFile, SiteFile,
};
use super::source::{KeyPath, Source};

/// The typed site of a validated raw one.
pub(super) fn lift(raw: RawSiteFile, src: &Source<'_>) -> Result<SiteFile, Vec<Diagnostic>> {
    let mut p = Parser {
        src,
        problems: Vec::new(),
    };
    let cluster = p.cluster(raw.cluster);
    let network = p.network(raw.network);
    let nodes: Vec<Option<Node>> = raw
        .nodes
        .into_iter()
        .enumerate()
        .map(|(i, n)| p.node(i, n))
        .collect();
    match (
        cluster,
        network,
        nodes.into_iter().collect::<Option<Vec<_>>>(),
    ) {
        (Some(cluster), Some(network), Some(nodes)) if p.problems.is_empty() => Ok(SiteFile {
            cluster,
            network,
            boot_server: raw.boot_server,
            flatcar: raw.flatcar,
            sysext: raw.sysext,
            cilium: raw.cilium,
            ssh: raw.ssh,
            sources: raw.sources,
            updates: raw.updates,
            argocd: raw.argocd,
            install: raw.install,
            images: raw.images,
            nodes,
        }),
        _ => Err(p.problems),
    }
}

/// Parses values, collecting a located diagnostic for each that fails.
struct Parser<'s, 'a> {
    src: &'s Source<'a>,
    problems: Vec<Diagnostic>,
}

impl Parser<'_, '_> {
    fn parse<T: FromStr>(&mut self, path: KeyPath, text: &str) -> Option<T>
    where
        T::Err: std::fmt::Display,
    {
        match text.parse() {
            Ok(v) => Some(v),
            Err(why) => {
                let message = format!("{text:?} {why}");
                let d = self.src.diagnostic(Severity::Error, &path, message);
                self.problems.push(d);
                None
            }
        }
    }

    fn cluster(&mut self, c: RawCluster) -> Option<Cluster> {
        let at = |key: &str| KeyPath::of("cluster").key(key);
        Some(Cluster {
            endpoint: self.parse(at("endpoint"), &c.endpoint)?,
            endpoint_mode: self.parse(at("endpoint_mode"), &c.endpoint_mode)?,
            pod_cidr: self.parse(at("pod_cidr"), &c.pod_cidr)?,
            service_cidr: self.parse(at("service_cidr"), &c.service_cidr)?,
            bootstrap_token_ttl: self.parse(at("bootstrap_token_ttl"), &c.bootstrap_token_ttl)?,
            bring_up_window: self.parse(at("bring_up_window"), &c.bring_up_window)?,
            name: c.name,
            kubernetes_version: c.kubernetes_version,
            dns_domain: c.dns_domain,
        })
    }

    fn network(&mut self, n: RawNetwork) -> Option<Network> {
        let at = |key: &str| KeyPath::of("network").key(key);
        Some(Network {
            subnet: self.parse(at("subnet"), &n.subnet)?,
            gateway: self.parse(at("gateway"), &n.gateway)?,
            dns: n.dns,
            ntp: n.ntp,
            addressing: n.addressing,
        })
    }

    fn node(&mut self, i: usize, n: RawNode) -> Option<Node> {
        Some(Node {
            mac: self.parse(KeyPath::node(i, "mac"), &n.mac)?,
            ip: self.parse(KeyPath::node(i, "ip"), &n.ip)?,
            role: self.parse(KeyPath::node(i, "role"), &n.role)?,
            name: n.name,
            disk: n.disk,
            firmware: n.firmware,
            labels: n.labels,
            taints: n.taints,
            wipe: n.wipe,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = include_str!("../../site.toml");

    /// Templates and step keys read the site's serialised form: the typed
    /// site must serialise exactly as the text it came from (MACs aside,
    /// which take their one spelling).
    #[test]
    fn the_typed_site_serialises_as_the_text_schema_does() {
        let text = EXAMPLE
            .replace(
                "bootstrap_token_ttl = \"24h\"",
                "bootstrap_token_ttl = \"1440m\"",
            )
            .replace("\"52:54:00:20:00:12\"", "\"525400200012\"")
            .replace(
                "endpoint = \"10.20.0.10:6443\"",
                "endpoint = \"10.20.0.10\"",
            );
        let raw: RawSiteFile = toml::from_str(&text).unwrap();
        let mut expected = serde_json::to_value(&raw).unwrap();
        expected["node"][1]["mac"] = "52:54:00:20:00:12".into();
        let src = Source::new(&text, "site.toml");
        let typed = lift(raw, &src).unwrap();
        assert_eq!(serde_json::to_value(&typed).unwrap(), expected);
        assert_eq!(typed.cluster.bootstrap_token_ttl.get().as_secs(), 86_400);
        assert_eq!(typed.cluster.endpoint.get().to_string(), "10.20.0.10:6443");
    }

    #[test]
    fn a_value_that_does_not_parse_is_a_located_error_not_a_panic() {
        let text = EXAMPLE.replace("\"52:54:00:20:00:12\"", "\"52:54:00:zz:00:12\"");
        let src = Source::new(&text, "site.toml");
        let parsed = super::super::strict::parse(&text, &src).unwrap();
        let errors = lift(parsed.file, &src).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(errors[0].path.ends_with(".mac"), "{:?}", errors[0]);
        assert!(errors[0].line > 1);
    }
}
