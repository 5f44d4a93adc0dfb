//! Boot configs: per-MAC pxelinux (BIOS, lpxelinux.0) and syslinux.efi configs,
//! iPXE scripts when the site uses iPXE, a local-disk default for unknown
//! machines, and DHCP snippets for the site's own DHCP server.
//!
//! A node's own boot configs name its install Ignition URL, whose random id
//! is what keeps that URL unguessable, so they are restricted like the
//! Ignition configs: the manifest's `access` records tie each per-MAC file
//! (TFTP pxelinux configs, HTTP iPXE script) to the node's IP, and
//! `pxebuild serve` refuses every other client. The site-wide files (the
//! local-boot defaults for unknown machines, the iPXE entry script, the DHCP
//! snippets) carry no id and stay public.
pub mod cmdline;
pub mod context;
pub mod initrd_parts;

use std::sync::Arc;

use anyhow::Result;
use serde::Serialize;
use serde_json::json;

use crate::engine::key::{Folded, Key};
use crate::engine::step::{Inputs, RunCtx, Step, Visibility};
use crate::render::templates::Templates;
pub use context::{BootContext, BootNode};

/// One file of the boot tree: dist path and content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootFile {
    pub path: String,
    pub text: String,
}

/// Every template the boot files of `site` are rendered from.
pub fn templates_rendered(site: &crate::site::Site) -> Vec<&'static str> {
    let loaders = context::Loaders::of(site);
    let mut names = vec![
        "dhcp/dnsmasq.conf",
        "dhcp/dhcpd.conf",
        "dhcp/kea-dhcp4.json",
    ];
    if loaders.bios || loaders.uefi {
        names.extend(["boot/pxelinux.cfg", "boot/local.cfg"]);
    }
    if loaders.ipxe {
        names.extend(["boot/node.ipxe", "boot/boot.ipxe"]);
    }
    names
}

/// Renders every boot file of `ctx` (pure; the steps and the tests share it).
pub fn render_files(templates: &Templates, ctx: &BootContext) -> Result<Vec<BootFile>> {
    let mut files = Vec::new();
    for node in &ctx.nodes {
        files.extend(render_node_files(templates, ctx, node)?);
    }
    files.extend(render_site_files(templates, ctx)?);
    Ok(files)
}

/// One node's files: its per-MAC loader configs and iPXE script.
pub fn render_node_files(
    templates: &Templates,
    ctx: &BootContext,
    node: &BootNode,
) -> Result<Vec<BootFile>> {
    let mut files = Vec::new();
    for (efi, on, loader) in [
        (false, ctx.loaders.bios, "lpxelinux.0"),
        (true, ctx.loaders.uefi, context::EFI_SYSLINUX),
    ] {
        if on {
            let path = crate::layout::pxelinux_config(efi, &node.mac);
            let text = templates.render("boot/pxelinux.cfg", &ctx.node_data(node, loader))?;
            cmdline::check(&path, &node.name, &text)?;
            files.push(BootFile { path, text });
        }
    }
    if ctx.loaders.ipxe {
        files.push(BootFile {
            path: crate::layout::http_path(&crate::layout::ipxe_script(&node.mac)),
            text: templates.render("boot/node.ipxe", &ctx.node_data(node, "iPXE"))?,
        });
    }
    Ok(files)
}

/// The files that depend on the whole site: the local-boot defaults for
/// unknown machines, the iPXE entry script and the DHCP snippets.
pub fn render_site_files(templates: &Templates, ctx: &BootContext) -> Result<Vec<BootFile>> {
    let mut files = Vec::new();
    for (on, efi) in [(ctx.loaders.bios, false), (ctx.loaders.uefi, true)] {
        if on {
            let data = json!({"efi": efi, "serial": ctx.serial});
            files.push(BootFile {
                path: crate::layout::pxelinux_default(efi),
                text: templates.render("boot/local.cfg", &data)?,
            });
        }
    }
    if ctx.loaders.ipxe {
        files.push(BootFile {
            path: crate::layout::http_path(crate::layout::IPXE_ENTRY),
            text: templates.render("boot/boot.ipxe", ctx)?,
        });
    }
    for name in crate::layout::DHCP_SNIPPETS {
        files.push(BootFile {
            path: crate::layout::http_path(&crate::layout::dhcp_snippet(name)),
            text: templates.render(&format!("dhcp/{name}"), ctx)?,
        });
    }
    Ok(files)
}

/// The step that cuts the PXE initrd into the parts syslinux.efi's configs
/// name, for a site whose UEFI machines boot through syslinux.efi.
pub fn initrd_parts_step(
    site: &crate::site::Site,
    artifacts: &crate::fetch::ArtifactRefs,
) -> Option<Box<dyn Step>> {
    let initrd = artifacts.pxe_initrd.clone()?;
    context::Loaders::of(site).uefi.then(|| {
        Box::new(initrd_parts::InitrdPartsStep {
            initrd,
            version: artifacts.flatcar_version.clone(),
        }) as Box<dyn Step>
    })
}

/// What the boot steps of one build share.
pub struct BootShared {
    pub templates: Arc<Templates>,
    pub ctx: BootContext,
    /// Digest of the templates and everything in `ctx` but the nodes: a node
    /// step's key is this plus its own node.
    common_digest: String,
    /// Digest of each node's boot context, in `ctx.nodes` order, and of all of
    /// them: keys carry these (a no-op build checks a thousand of them), while
    /// `--explain` compares the nodes themselves.
    node_digests: Vec<String>,
    nodes_digest: String,
}

impl BootShared {
    pub fn new(templates: Arc<Templates>, ctx: BootContext) -> Result<BootShared> {
        let common = BootContext {
            nodes: Vec::new(),
            ..ctx.clone()
        };
        // As a JSON value, whose objects serialise with sorted keys: the
        // digest does not depend on the order of the struct's fields.
        let bytes = serde_json::to_vec(&serde_json::to_value(BootCommonKey {
            templates: templates.digest(),
            templates_origin: templates.origin(),
            context: &common,
        })?)?;
        let mut all = blake3::Hasher::new();
        let node_digests = ctx
            .nodes
            .iter()
            .map(|node| {
                let digest = blake3::hash(&serde_json::to_vec(node)?);
                all.update(digest.as_bytes());
                Ok(digest.to_hex().to_string())
            })
            .collect::<Result<Vec<String>>>()?;
        Ok(BootShared {
            common_digest: blake3::hash(&bytes).to_hex().to_string(),
            templates,
            ctx,
            node_digests,
            nodes_digest: all.finalize().to_hex().to_string(),
        })
    }

    /// One step per node, then the site-wide step.
    pub fn steps(self) -> Vec<Box<dyn Step>> {
        let shared = Arc::new(self);
        let mut steps: Vec<Box<dyn Step>> = (0..shared.ctx.nodes.len())
            .map(|index| {
                Box::new(BootNodeStep {
                    shared: shared.clone(),
                    index,
                }) as Box<dyn Step>
            })
            .collect();
        steps.push(Box::new(BootStep { shared }));
        steps
    }
}

fn put_all(ctx: &mut RunCtx, files: Vec<BootFile>, visibility: &Visibility) -> Result<()> {
    for file in files {
        ctx.put_bytes(&file.path, file.text.as_bytes(), visibility.clone())?;
    }
    Ok(())
}

/// What every boot step's key holds besides the nodes (as its digest): the
/// templates and the site-wide boot context.
#[derive(Serialize)]
struct BootCommonKey<'a> {
    templates: &'a str,
    templates_origin: &'static str,
    context: &'a BootContext,
}

/// The key of one node's boot files: the site-wide part's digest and the
/// node's boot context (folded).
#[derive(Serialize)]
struct BootNodeKey<'a> {
    common: &'a str,
    node: Folded<&'a BootNode>,
    visibility: &'static str,
}

/// The key of the site-wide boot files: the site-wide part's digest and
/// every node's boot context (folded).
#[derive(Serialize)]
struct BootSiteKey<'a> {
    common: &'a str,
    nodes: Folded<&'a Vec<BootNode>>,
}

/// One node's boot files: a MAC change re-renders this node's files only.
pub struct BootNodeStep {
    shared: Arc<BootShared>,
    index: usize,
}

impl Step for BootNodeStep {
    fn id(&self) -> String {
        format!("boot:{}/configs", self.shared.ctx.nodes[self.index].name)
    }

    fn key<'a>(&'a self, _inputs: &'a Inputs<'_>) -> Result<Key<'a>> {
        let shared = &self.shared;
        Ok(Key::new(BootNodeKey {
            common: &shared.common_digest,
            node: Folded::new(
                shared.node_digests[self.index].clone(),
                &shared.ctx.nodes[self.index],
            ),
            visibility: "node",
        }))
    }

    fn run(&self, ctx: &mut RunCtx) -> Result<()> {
        let shared = &self.shared;
        let node = &shared.ctx.nodes[self.index];
        // Only this node's IP may fetch them: they name its secret install URL.
        let visibility = Visibility::Node {
            node: node.name.clone(),
            ip: node.ip.clone(),
        };
        put_all(
            ctx,
            render_node_files(&shared.templates, &shared.ctx, node)?,
            &visibility,
        )
    }
}

/// The site-wide boot files (defaults, iPXE entry, DHCP snippets).
pub struct BootStep {
    shared: Arc<BootShared>,
}

impl Step for BootStep {
    fn id(&self) -> String {
        "boot:configs".into()
    }

    fn key<'a>(&'a self, _inputs: &'a Inputs<'_>) -> Result<Key<'a>> {
        let shared = &self.shared;
        Ok(Key::new(BootSiteKey {
            common: &shared.common_digest,
            nodes: Folded::new(shared.nodes_digest.clone(), &shared.ctx.nodes),
        }))
    }

    fn run(&self, ctx: &mut RunCtx) -> Result<()> {
        put_all(
            ctx,
            render_site_files(&self.shared.templates, &self.shared.ctx)?,
            &Visibility::Public,
        )
    }
}
