//! Per-node rendering: templates → Butane → Ignition (install and node configs
//! per node), and the template engine and site context the boot configs
//! (`crate::boot`) are rendered with.
//!
//! `boot` imports `render`, never the reverse: boot files are one more thing
//! rendered from the site's templates and context, while nothing here needs
//! to know that boot files exist. The recipe puts the two sets of steps side
//! by side.
//!
//! Planning takes the secrets the recipe ensured (it creates none), loads the
//! Cilium values, checks them against the site, and returns one chain of
//! steps per node plus the signing of the sysext checksums.
pub mod cilium;
pub mod containerd;
pub mod context;
pub mod ignition;
pub mod node;
pub(crate) mod sign;
pub(crate) mod steps;
pub mod template_map;
pub mod templates;

use std::sync::Arc;

use anyhow::Result;
use rayon::prelude::*;

use crate::engine::step::Step;
use crate::error::BadInput;
use crate::fetch::ArtifactRefs;
use crate::secrets::Secrets;
use crate::site::types::EndpointMode;
use crate::site::Site;
use context::{NodeContext, NodeCtx, NodeSecrets, SiteContext};
use steps::{InstallIgnition, NodeIgnition, NodeKey, Shared};
use templates::Templates;

/// What the render steps of a build are planned from.
pub struct RenderInputs<'a> {
    pub site: &'a Site,
    /// The site's templates, loaded and found complete.
    pub templates: Arc<Templates>,
    /// The site's secrets, ensured by the recipe before planning.
    pub secrets: &'a Secrets,
    /// The site's context for templates (see [`SiteContext::new`]).
    pub site_ctx: SiteContext,
    /// Where the fetched artifacts land.
    pub artifacts: &'a ArtifactRefs,
    /// Warnings (template, Butane, Cilium values) fail the build.
    pub strict: bool,
}

/// The render steps of a build, reading the fetched artifacts.
pub fn plan_render(inputs: RenderInputs) -> Result<Vec<Box<dyn Step>>> {
    let RenderInputs {
        site,
        templates,
        secrets,
        site_ctx,
        artifacts,
        strict,
    } = inputs;
    let (cilium_values, cilium_values_origin) = cilium::load_values(site, strict)?;
    let shared = Arc::new(
        Shared {
            templates,
            templates_dir: site.templates_dir(),
            site: Arc::new(site_ctx),
            http_base: site.http_base(),
            secrets_fingerprint: secrets.fingerprint(),
            cilium_values: Some(cilium_values),
            cilium_values_origin,
            sysexts: artifacts.sysexts.clone(),
            strict,
            key_digest: String::new(),
            explained: Arc::new(serde_json::Value::Null),
        }
        .sealed(),
    );
    // Per node: its context and the digest its keys carry. Independent per
    // node, and most of planning a large site, so spread over the cores.
    let nodes: Vec<NodeKey> = node_contexts(site, &shared.site, secrets)?
        .into_par_iter()
        .map(|base| NodeKey::new(Arc::new(base)))
        .collect();
    let mut steps: Vec<Box<dyn Step>> = Vec::new();
    for node in nodes {
        let node = Arc::new(node);
        steps.push(Box::new(NodeIgnition {
            shared: shared.clone(),
            node: node.clone(),
        }));
        steps.push(Box::new(InstallIgnition {
            shared: shared.clone(),
            node,
        }));
    }
    let update_key = Arc::new(secrets.update_key.clone());
    for sysext in &artifacts.sysexts {
        steps.push(Box::new(sign::SignSums::new(&update_key, sysext)));
    }
    Ok(steps)
}

/// Every template the render steps of this site's build render (see
/// [`node::render_node`] and [`node::render_install`]).
pub fn templates_rendered(site: &Site) -> Vec<&'static str> {
    let mut names = vec![
        "node.bu",
        "install.bu",
        "kubeadm/init.yaml",
        "files/install.sh",
        "files/kubeadm-bootstrap.sh",
        "files/cilium-install.sh",
        "files/cilium-ready.sh",
        "files/sysupdate-sysexts.sh",
    ];
    // One node initialises the cluster; every other node joins it.
    if site.file.nodes.len() > 1 {
        names.push("kubeadm/join.yaml");
    }
    if site.file.cluster.endpoint_mode == EndpointMode::KubeVip {
        names.push("kubeadm/kube-vip.yaml");
    }
    names
}

/// Every node's context, without sysexts (known once the fetch steps ran)
/// and without the embedded files (rendered by the steps).
pub fn node_contexts(
    site: &Site,
    site_ctx: &Arc<SiteContext>,
    secrets: &Secrets,
) -> Result<Vec<NodeContext>> {
    site.file
        .nodes
        .par_iter()
        .map(|n| {
            let node = NodeCtx::new(site, n, secrets)?;
            Ok(NodeContext {
                site: site_ctx.clone(),
                secrets: NodeSecrets::for_node(&node, secrets),
                node,
                sysexts: Vec::new(),
                files: Default::default(),
                node_ignition_sha512: None,
            })
        })
        .collect()
}

/// The bootstrap token must outlive the expected bring-up: kubeadm init
/// starts its TTL, and every other node must join before it runs out.
pub fn check_token_lifetime(site: &Site, strict: bool) -> Result<()> {
    let c = &site.file.cluster;
    let ttl = c.bootstrap_token_ttl.get().as_secs();
    let window = c.bring_up_window.get().as_secs();
    if ttl != 0 && ttl < window {
        let msg = format!(
            "cluster.bootstrap_token_ttl {} is shorter than cluster.bring_up_window {}: \
             nodes joining late will be refused (raise the TTL, or re-publish the token \
             with a fresh expiry with `pxebuild token publish`)",
            c.bootstrap_token_ttl, c.bring_up_window
        );
        if strict {
            return Err(BadInput::new(msg));
        }
        crate::warn!("{msg}");
    }
    Ok(())
}
