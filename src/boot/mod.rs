//! Boot configs: per-MAC pxelinux (BIOS, lpxelinux.0) and syslinux.efi configs,
//! iPXE scripts when the site uses iPXE, a local-disk default for unknown
//! machines, and DHCP snippets for the site's own DHCP server.
//!
//! All of it is public (TFTP has no access control), so nothing here carries a
//! secret: the configs only point at each node's install Ignition URL, which
//! the server restricts to that node's IP.
pub mod context;

use std::sync::Arc;

use anyhow::Result;
use serde_json::{json, Value};

use crate::build::step::{Inputs, RunCtx, Step, Visibility};
use crate::render::templates::Templates;
pub use context::BootContext;

/// One file of the boot tree: dist path and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFile {
    pub path: String,
    pub text: String,
}

/// Renders every boot file of `ctx` (pure; the step and the tests share it).
pub fn render_files(templates: &Templates, ctx: &BootContext) -> Result<Vec<BootFile>> {
    let mut files = Vec::new();
    let mut add = |path: String, text: String| files.push(BootFile { path, text });
    for (dir, on, efi) in [
        ("tftp/pxelinux.cfg", ctx.loaders.bios, false),
        ("tftp/efi64/pxelinux.cfg", ctx.loaders.uefi, true),
    ] {
        if !on {
            continue;
        }
        let loader = if efi { "syslinux.efi" } else { "lpxelinux.0" };
        for node in &ctx.nodes {
            let data = ctx.node_data(node, loader);
            let name = crate::layout::pxelinux_mac_name(&node.mac);
            add(
                format!("{dir}/{name}"),
                templates.render("boot/pxelinux.cfg", &data)?,
            );
        }
        let data = json!({"efi": efi, "serial": ctx.serial});
        add(
            format!("{dir}/default"),
            templates.render("boot/local.cfg", &data)?,
        );
    }
    if ctx.loaders.ipxe {
        for node in &ctx.nodes {
            let data = ctx.node_data(node, "iPXE");
            let name = node.mac.replace(':', "-");
            add(
                format!("http/ipxe/{name}.ipxe"),
                templates.render("boot/node.ipxe", &data)?,
            );
        }
        add(
            "http/ipxe/boot.ipxe".into(),
            templates.render("boot/boot.ipxe", ctx)?,
        );
    }
    for name in ["dnsmasq.conf", "dhcpd.conf", "kea-dhcp4.json"] {
        add(
            format!("http/dhcp/{name}"),
            templates.render(&format!("dhcp/{name}"), ctx)?,
        );
    }
    Ok(files)
}

/// The build step producing every boot file.
pub struct BootStep {
    pub templates: Arc<Templates>,
    pub ctx: BootContext,
}

impl Step for BootStep {
    fn id(&self) -> String {
        "boot:configs".into()
    }

    fn key(&self, _inputs: &Inputs) -> Result<Value> {
        Ok(json!({
            "templates": self.templates.digest(),
            "context": serde_json::to_value(&self.ctx)?,
        }))
    }

    fn run(&self, ctx: &mut RunCtx) -> Result<()> {
        for file in render_files(&self.templates, &self.ctx)? {
            ctx.put_bytes(&file.path, file.text.as_bytes(), Visibility::Public)?;
        }
        Ok(())
    }
}
