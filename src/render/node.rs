//! Rendering one node's documents from its context: the embedded files first
//! (kubeadm config, kube-vip manifest, scripts), then the Butane configs that
//! embed them. Pure functions: the build steps and the tests share them.
use anyhow::Result;

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

/// Renders the install config's Butane for `node_ign` (the translated node
/// config). The installer fetches the node config from the boot server only
/// when it installs and checks it against the SHA-512 given here: on control
/// planes it carries the cluster's keys, which a boot that installs nothing
/// (a machine left network-first) then never transfers.
pub fn render_install(t: &Templates, ctx: &mut NodeContext, node_ign: &[u8]) -> Result<String> {
    ctx.node_ignition_sha512 = Some(crate::digest::sha512_hex(node_ign));
    ctx.files.install_script = Some(t.render("files/install.sh", ctx)?);
    t.render("install.bu", ctx)
}
