//! `pxebuild untaint`: lets ordinary workloads run on the site's control-plane
//! nodes by removing kubeadm's `node-role.kubernetes.io/control-plane:NoSchedule`
//! taint. Idempotent: nodes without the taint are left alone, and a node whose
//! `[[node]] taints` in site.toml asks for that taint keeps it.
use anyhow::{bail, Result};

use super::kubectl::{self, NodeList, CONTROL_PLANE_TAINT_KEY};
use super::Cluster;
use crate::site::schema::Node as SiteNode;
use crate::site::Site;

/// What untaint does (or does not do) for one control-plane node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// The node has the taint: remove it.
    Remove(String),
    /// The node has no such taint already.
    AlreadyUntainted(String),
    /// site.toml asks for the taint on this node: keep it.
    KeptBySite(String),
    /// The node has not joined the cluster yet.
    NotRegistered(String),
}

/// Decides, for every control-plane node of the site in site order, what to do.
pub(crate) fn plan(site: &Site, nodes: &NodeList) -> Vec<Step> {
    site.control_planes()
        .map(|cp| {
            let name = cp.name.clone();
            match nodes.get(&cp.name) {
                None => Step::NotRegistered(name),
                Some(_) if site_wants_taint(cp) => Step::KeptBySite(name),
                Some(n) if n.has_control_plane_taint() => Step::Remove(name),
                Some(_) => Step::AlreadyUntainted(name),
            }
        })
        .collect()
}

/// True when the node's `taints` in site.toml include the control-plane NoSchedule taint.
fn site_wants_taint(node: &SiteNode) -> bool {
    node.taints.iter().any(|t| {
        let (key_value, effect) = t.rsplit_once(':').unwrap_or((t.as_str(), ""));
        let key = key_value.split('=').next().unwrap_or_default();
        key == CONTROL_PLANE_TAINT_KEY && effect == "NoSchedule"
    })
}

/// Runs the plan against the cluster; fails (exit 1) after doing what it can
/// when a control plane has not joined yet, so the operator knows to rerun.
pub(crate) fn run(cluster: &Cluster, site: &Site) -> Result<()> {
    let nodes = NodeList::parse(&cluster.kubectl(&kubectl::get_nodes(&cluster.kubeconfig), None)?)?;
    let mut missing = Vec::new();
    for step in plan(site, &nodes) {
        match step {
            Step::Remove(name) => {
                let args = kubectl::remove_control_plane_taint(&cluster.kubeconfig, &name);
                cluster.kubectl(&args, None)?;
                println!("{name}: control-plane taint removed");
            }
            Step::AlreadyUntainted(name) => println!("{name}: already untainted"),
            Step::KeptBySite(name) => println!("{name}: taint kept (site.toml lists it)"),
            Step::NotRegistered(name) => missing.push(name),
        }
    }
    if !missing.is_empty() {
        bail!(
            "control-plane node(s) not in the cluster yet: {}; wait for them \
             (`pxebuild wait`) and run `pxebuild untaint` again",
            missing.join(", ")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const EXAMPLE: &str = include_str!("../../site.toml");

    fn nodes(json_items: &str) -> NodeList {
        NodeList::parse(&format!("{{\"items\":[{json_items}]}}")).unwrap()
    }

    const TAINTED: &str =
        r#"{"key":"node-role.kubernetes.io/control-plane","effect":"NoSchedule"}"#;

    #[test]
    fn plan_covers_every_control_plane_in_site_order() {
        let site = Site::from_text(EXAMPLE, Path::new("site.toml")).unwrap();
        let list = nodes(&format!(
            r#"{{"metadata":{{"name":"cp2"}},"spec":{{"taints":[{TAINTED}]}}}},
               {{"metadata":{{"name":"cp1"}},"spec":{{}}}},
               {{"metadata":{{"name":"worker1"}},"spec":{{"taints":[{TAINTED}]}}}}"#
        ));
        assert_eq!(
            plan(&site, &list),
            [
                Step::AlreadyUntainted("cp1".into()),
                Step::Remove("cp2".into()),
                Step::NotRegistered("cp3".into()),
            ]
        );
    }

    #[test]
    fn a_taint_listed_in_site_toml_is_kept() {
        let text = EXAMPLE.replacen(
            "firmware = \"bios\"\n",
            "firmware = \"bios\"\ntaints = [\"node-role.kubernetes.io/control-plane:NoSchedule\"]\n",
            1,
        );
        let site = Site::from_text(&text, Path::new("site.toml")).unwrap();
        let item =
            |n: &str| format!(r#"{{"metadata":{{"name":"{n}"}},"spec":{{"taints":[{TAINTED}]}}}}"#);
        let list = nodes(&[item("cp1"), item("cp2"), item("cp3")].join(","));
        assert_eq!(
            plan(&site, &list),
            [
                Step::KeptBySite("cp1".into()),
                Step::Remove("cp2".into()),
                Step::Remove("cp3".into()),
            ]
        );
    }
}
