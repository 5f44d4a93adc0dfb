//! The per-node build steps: `render:<node>/node.bu` → `butane:<node>/node.ign`
//! → `render:<node>/install.bu` (embeds node.ign) → `butane:<node>/install.ign`.
//!
//! Keys hold the template digest, the non-secret context and a fingerprint of
//! the secrets: never the secrets themselves (keys are stored in the cache).
use std::sync::Arc;

use anyhow::Result;
use serde_json::{json, Value};

use super::context::{self, NodeContext, SiteContext};
use super::ignition;
use super::node::{render_install, render_node};
use super::templates::Templates;
use crate::build::step::{Inputs, RunCtx, Step, Visibility};
use crate::fetch::refs::SysextRef;

/// What every node step of one build shares.
pub struct Shared {
    pub templates: Arc<Templates>,
    pub site: Arc<SiteContext>,
    pub http_base: String,
    pub secrets_fingerprint: String,
    /// Checked Cilium Helm values (embedded on the first control plane).
    pub cilium_values: Option<String>,
    pub sysexts: Vec<SysextRef>,
    pub strict: bool,
    /// Digest of everything above that decides a node step's output; see [`Shared::sealed`].
    pub key_digest: String,
}

impl Shared {
    /// Computes `key_digest` once per build. Node step keys carry this digest
    /// instead of the whole site context, so a no-op build of a large site
    /// does not serialise that context once per node step. (`--explain` then
    /// reports a site-wide change as `.key.shared`.)
    pub fn sealed(mut self) -> Shared {
        // The sysext context without the image hashes, which node steps read
        // from their inputs (and key by those inputs' digests).
        let sysexts = context::sysexts_from(&self.http_base, &self.sysexts, |_| Ok(String::new()))
            .expect("a constant hash source cannot fail");
        let shared = json!({
            "templates": self.templates.digest(),
            "site": self.site,
            "secrets": self.secrets_fingerprint,
            "cilium_values": self.cilium_values.as_deref().map(|v| crate::digest::sha256_hex(v.as_bytes())),
            "sysexts": sysexts,
        });
        let bytes = serde_json::to_vec(&shared).expect("JSON values serialise");
        self.key_digest = blake3::hash(&bytes).to_hex().to_string();
        self
    }
}

/// Internal output names.
pub fn butane_path(node: &str, doc: &str) -> String {
    format!("render/{node}/{doc}.bu")
}
/// Dist path of a node's Ignition config (`install` or `node`).
pub fn ignition_path(ctx: &NodeContext, doc: &str) -> String {
    format!("http/{}/{doc}.ign", ctx.node.ignition_dir)
}

/// The key of a node's render steps: the shared context's digest, the node,
/// and the digests of what the step reads.
fn node_step_key(shared: &Shared, base: &NodeContext, inputs: &Inputs) -> Value {
    json!({
        "shared": shared.key_digest,
        "node": base.node,
        "inputs": inputs.digests(),
    })
}

/// Renders node.bu (and the kubeadm YAML it embeds).
pub struct RenderNode {
    pub shared: Arc<Shared>,
    pub base: Arc<NodeContext>,
}

impl RenderNode {
    fn context(&self, inputs: &Inputs) -> Result<NodeContext> {
        let mut ctx = NodeContext::clone(&self.base);
        ctx.sysexts = context::sysexts_from(&self.shared.http_base, &self.shared.sysexts, |p| {
            inputs.read_string(p)
        })?;
        Ok(ctx)
    }
}

impl Step for RenderNode {
    fn id(&self) -> String {
        format!("render:{}/node.bu", self.base.node.name)
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
    fn key(&self, inputs: &Inputs) -> Result<Value> {
        Ok(node_step_key(&self.shared, &self.base, inputs))
    }
    fn run(&self, run: &mut RunCtx) -> Result<()> {
        let mut ctx = self.context(run.inputs)?;
        let butane = render_node(
            &self.shared.templates,
            &mut ctx,
            self.shared.cilium_values.as_deref(),
        )?;
        run.put_bytes(
            &butane_path(&ctx.node.name, "node"),
            butane.as_bytes(),
            Visibility::Internal,
        )
    }
}

/// Renders install.bu around the translated node config.
pub struct RenderInstall {
    pub shared: Arc<Shared>,
    pub base: Arc<NodeContext>,
}

impl Step for RenderInstall {
    fn id(&self) -> String {
        format!("render:{}/install.bu", self.base.node.name)
    }
    fn deps(&self) -> Vec<String> {
        vec![format!("butane:{}/node.ign", self.base.node.name)]
    }
    fn key(&self, inputs: &Inputs) -> Result<Value> {
        Ok(node_step_key(&self.shared, &self.base, inputs))
    }
    fn run(&self, run: &mut RunCtx) -> Result<()> {
        let node_ign = run.inputs.read(&ignition_path(&self.base, "node"))?;
        let mut ctx = NodeContext::clone(&self.base);
        let text = render_install(&self.shared.templates, &mut ctx, &node_ign)?;
        let path = butane_path(&ctx.node.name, "install");
        run.put_bytes(&path, text.as_bytes(), Visibility::Internal)
    }
}

/// Translates one rendered Butane config to Ignition and validates it.
pub struct Translate {
    pub shared: Arc<Shared>,
    pub base: Arc<NodeContext>,
    /// `node` or `install`.
    pub doc: &'static str,
}

impl Step for Translate {
    fn id(&self) -> String {
        format!("butane:{}/{}.ign", self.base.node.name, self.doc)
    }
    fn deps(&self) -> Vec<String> {
        vec![format!("render:{}/{}.bu", self.base.node.name, self.doc)]
    }
    fn key(&self, inputs: &Inputs) -> Result<Value> {
        Ok(json!({
            "inputs": inputs.digests(),
            "translator": ignition::TRANSLATOR_VERSION,
            "strict": self.shared.strict,
            "output": ignition_path(&self.base, self.doc),
        }))
    }
    fn run(&self, run: &mut RunCtx) -> Result<()> {
        let name = &self.base.node.name;
        let butane = run.inputs.read_string(&butane_path(name, self.doc))?;
        let origin = format!("{name}/{}.bu", self.doc);
        let json = ignition::translate(&butane, &origin, self.shared.strict)?;
        let visibility = Visibility::Node {
            node: name.clone(),
            ip: self.base.node.ip.clone(),
        };
        run.put_bytes(
            &ignition_path(&self.base, self.doc),
            json.as_bytes(),
            visibility,
        )
    }
}
