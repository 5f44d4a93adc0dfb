//! The per-node build steps: `ignition:<node>/node.ign` (render node.bu,
//! translate) → `ignition:<node>/install.ign` (render install.bu around
//! node.ign, translate). Rendering and translation share a step: the rendered
//! Butane is never kept, which saves a cache file per config (file creation is
//! what a full build of a large site spends most on after the CPU work).
//!
//! Keys hold the template digest, the non-secret context and a fingerprint of
//! the secrets: never the secrets themselves (keys are stored in the cache).
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Result;
use serde::Serialize;
use serde_json::Value;

use super::context::{self, NodeContext, NodeCtx, SiteContext};
use super::ignition;
use super::node::{render_install, render_node};
use super::templates::Templates;
use crate::engine::key::{Folded, Key};
use crate::engine::step::{Inputs, RedactedInputs, RunCtx, Step, Visibility};
use crate::fetch::refs::SysextRef;

/// What every node step of one build shares.
pub(crate) struct Shared {
    pub templates: Arc<Templates>,
    /// Where `templates` were loaded from: read again only to map an error in
    /// a rendered template back to its template line.
    pub templates_dir: PathBuf,
    pub site: Arc<SiteContext>,
    pub http_base: String,
    pub secrets_fingerprint: String,
    /// Checked Cilium Helm values (embedded on the first control plane).
    pub cilium_values: Option<String>,
    /// Where they came from: `site` (its payload/) or `embedded`.
    pub cilium_values_origin: &'static str,
    pub sysexts: Vec<SysextRef>,
    pub strict: bool,
    /// Digest of everything above that decides a node step's output; see [`Shared::sealed`].
    pub key_digest: String,
    /// What `key_digest` is a digest of, for `--explain` (which then names
    /// e.g. `.key.shared.site.cluster.kubernetes_version`, not `.key.shared`).
    pub explained: Arc<Value>,
}

/// The part of the node steps' key that every node shares: everything in
/// [`Shared`] that decides a node step's output.
#[derive(Serialize)]
struct SharedKey<'a> {
    translator: &'static str,
    strict: bool,
    templates: &'a str,
    templates_origin: &'static str,
    site: &'a SiteContext,
    /// A fingerprint of the secrets, never the secrets (keys are stored in the cache).
    secrets: &'a str,
    /// sha256 of the Cilium values.
    cilium_values: Option<String>,
    cilium_values_origin: &'static str,
    sysexts: Vec<context::SysextCtx>,
}

impl Shared {
    /// Computes `key_digest` once per build. Node step keys carry this digest
    /// instead of the whole site context, so a no-op build of a large site
    /// does not serialise that context once per node step. (`--explain`
    /// reads the unfolded form, `explained`, only for steps that run.)
    pub(crate) fn sealed(mut self) -> Shared {
        // The sysext context without the image hashes, which node steps read
        // from their inputs (and key by those inputs' digests).
        let sysexts = context::sysexts_from(&self.http_base, &self.sysexts, |_| Ok(String::new()))
            .expect("a constant hash source cannot fail");
        let shared = SharedKey {
            translator: ignition::TRANSLATOR_VERSION,
            strict: self.strict,
            templates: self.templates.digest(),
            templates_origin: self.templates.origin(),
            site: &self.site,
            secrets: &self.secrets_fingerprint,
            cilium_values: self
                .cilium_values
                .as_deref()
                .map(|v| crate::digest::sha256_hex(v.as_bytes())),
            cilium_values_origin: self.cilium_values_origin,
            sysexts,
        };
        // As a JSON value, whose objects serialise with sorted keys: the
        // digest does not depend on the order of the struct's fields.
        let shared = serde_json::to_value(&shared).expect("JSON values serialise");
        let bytes = serde_json::to_vec(&shared).expect("JSON values serialise");
        self.key_digest = blake3::hash(&bytes).to_hex().to_string();
        self.explained = Arc::new(shared);
        self
    }
}

/// Dist path of a node's Ignition config (`install` or `node`).
pub(crate) fn ignition_path(ctx: &NodeContext, doc: &str) -> String {
    crate::layout::ignition_file(&ctx.node.ignition_dir, doc)
}

/// A node's part of its steps' keys, computed once per build for both steps.
pub(crate) struct NodeKey {
    pub base: Arc<NodeContext>,
    /// blake3 of the node's context as JSON.
    digest: String,
}

impl NodeKey {
    pub(crate) fn new(base: Arc<NodeContext>) -> NodeKey {
        let bytes = serde_json::to_vec(&base.node).expect("JSON values serialise");
        let digest = blake3::hash(&bytes).to_hex().to_string();
        NodeKey { base, digest }
    }

    /// The key: the shared context, the node and the inputs, each folded. A
    /// no-op build checks two such keys per node, so it hashes their digests;
    /// `--explain` unfolds them (and then names e.g. `.key.node.mac` or
    /// `.key.shared.site.cluster.kubernetes_version`). Input paths hold a
    /// node's secret directory name, so they are explained redacted.
    fn key<'a>(&'a self, shared: &'a Shared, inputs: &'a Inputs<'_>) -> Key<'a> {
        Key::new(NodeStepKey {
            shared: Folded::new(shared.key_digest.clone(), &*shared.explained),
            node: Folded::new(self.digest.clone(), &self.base.node),
            inputs: inputs.folded(),
        })
    }
}

/// The key of both node steps of a node.
#[derive(Serialize)]
struct NodeStepKey<'a> {
    shared: Folded<&'a Value>,
    node: Folded<&'a NodeCtx>,
    inputs: Folded<RedactedInputs<'a>>,
}

/// Translates a node's rendered Butane (`doc`: `node` or `install`) and
/// publishes the Ignition config, readable by that node's IP only.
fn put_ignition(
    run: &mut RunCtx,
    shared: &Shared,
    base: &NodeContext,
    doc: &str,
    butane: &str,
) -> Result<()> {
    let name = &base.node.name;
    let template = format!("{doc}.bu");
    let from = ignition::Rendered {
        template: &template,
        node: name,
        sources: if shared.templates.origin() == crate::embedded::ORIGIN {
            ignition::Sources::Embedded(shared.templates.sources())
        } else {
            ignition::Sources::Dir {
                dir: &shared.templates_dir,
                digest: shared.templates.digest(),
            }
        },
    };
    let json = ignition::translate_rendered(butane, &from, shared.strict)?;
    let visibility = Visibility::Node {
        node: name.clone(),
        ip: base.node.ip.clone(),
    };
    run.put_bytes(&ignition_path(base, doc), json.as_bytes(), visibility)
}

/// Renders node.bu (and the kubeadm YAML it embeds) and translates it to the
/// node's first-disk-boot Ignition config.
pub(crate) struct NodeIgnition {
    pub shared: Arc<Shared>,
    pub node: Arc<NodeKey>,
}

impl NodeIgnition {
    fn context(&self, inputs: &Inputs) -> Result<NodeContext> {
        let mut ctx = NodeContext::clone(&self.node.base);
        ctx.sysexts = context::sysexts_from(&self.shared.http_base, &self.shared.sysexts, |p| {
            inputs.read_string(p)
        })?;
        Ok(ctx)
    }
}

impl Step for NodeIgnition {
    fn id(&self) -> String {
        format!("ignition:{}/node.ign", self.node.base.node.name)
    }
    fn deps(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .shared
            .sysexts
            .iter()
            .map(|s| s.sha512.step.clone())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
    fn key<'a>(&'a self, inputs: &'a Inputs<'_>) -> Result<Key<'a>> {
        Ok(self.node.key(&self.shared, inputs))
    }
    fn run(&self, run: &mut RunCtx) -> Result<()> {
        let mut ctx = self.context(run.inputs)?;
        let butane = render_node(
            &self.shared.templates,
            &mut ctx,
            self.shared.cilium_values.as_deref(),
        )?;
        put_ignition(run, &self.shared, &self.node.base, "node", &butane)
    }
}

/// Renders install.bu around the node's Ignition config and translates it to
/// the config the PXE-booted installer runs.
pub(crate) struct InstallIgnition {
    pub shared: Arc<Shared>,
    pub node: Arc<NodeKey>,
}

impl Step for InstallIgnition {
    fn id(&self) -> String {
        format!("ignition:{}/install.ign", self.node.base.node.name)
    }
    fn deps(&self) -> Vec<String> {
        vec![format!("ignition:{}/node.ign", self.node.base.node.name)]
    }
    fn key<'a>(&'a self, inputs: &'a Inputs<'_>) -> Result<Key<'a>> {
        Ok(self.node.key(&self.shared, inputs))
    }
    fn run(&self, run: &mut RunCtx) -> Result<()> {
        let node_ign = run.inputs.read(&ignition_path(&self.node.base, "node"))?;
        let mut ctx = NodeContext::clone(&self.node.base);
        let butane = render_install(&self.shared.templates, &mut ctx, &node_ign)?;
        put_ignition(run, &self.shared, &self.node.base, "install", &butane)
    }
}
