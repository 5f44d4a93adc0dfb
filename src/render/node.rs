//! Rendering one node's documents from its context: the embedded files first
//! (kubeadm config, kube-vip manifest, scripts), then the Butane configs that
//! embed them. Pure functions: the build steps and the tests share them.
use anyhow::Result;
use base64::Engine;

use super::context::NodeContext;
use super::templates::Templates;

/// Renders the files `node.bu` embeds (kubeadm config, scripts) into
/// `ctx.files`, then returns `node.bu` itself.
/// `cilium_values` is embedded on the first control plane only.
pub fn render_node(
    t: &Templates,
    ctx: &mut NodeContext,
    cilium_values: Option<&str>,
) -> Result<String> {
    let kubeadm = if ctx.node.init {
        "kubeadm/init.yaml"
    } else {
        "kubeadm/join.yaml"
    };
    ctx.files.kubeadm = t.render(kubeadm, ctx)?;
    ctx.files.kube_vip = if ctx.node.control_plane && ctx.site.cluster.kube_vip {
        Some(t.render("kubeadm/kube-vip.yaml", ctx)?)
    } else {
        None
    };
    ctx.files.cilium_values = None;
    ctx.files.cilium_script = None;
    if ctx.node.init {
        if let Some(values) = cilium_values {
            ctx.files.cilium_values = Some(values.to_string());
            ctx.files.cilium_script = Some(t.render("files/cilium-install.sh", ctx)?);
        }
    }
    ctx.files.bootstrap_script = t.render("files/kubeadm-bootstrap.sh", ctx)?;
    ctx.files.cilium_ready_script = t.render("files/cilium-ready.sh", ctx)?;
    ctx.files.sysupdate_script = t.render("files/sysupdate-sysexts.sh", ctx)?;
    t.render("node.bu", ctx)
}

/// Renders the install config's Butane, embedding `node_ign` (the translated
/// node config) as a `data:` URL that `flatcar-install -i` writes to disk.
pub fn render_install(t: &Templates, ctx: &mut NodeContext, node_ign: &[u8]) -> Result<String> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(node_ign);
    ctx.node_ignition_url = Some(format!("data:;base64,{b64}"));
    ctx.files.install_script = Some(t.render("files/install.sh", ctx)?);
    t.render("install.bu", ctx)
}
