//! The typed context every template sees. Built from the validated site, the
//! secrets and the artifact references; serialised to JSON for Handlebars and
//! (minus the secrets) for step keys.
//!
//! Secrets are confined to [`NodeSecrets`]: a worker's context has no `pki`,
//! so no template can leak a private key into a worker's Ignition.
use anyhow::{Context, Result};
use serde::Serialize;

use crate::fetch::ArtifactRefs;
use crate::secrets::Secrets;
use crate::site::schema::Node;
use crate::site::types::EndpointMode;
use crate::site::Site;

/// Flatcar's built-in containerd socket.
pub const CRI_SOCKET: &str = "unix:///run/containerd/containerd.sock";
/// Flatcar's /usr is read-only: flex volume plugins live under /opt.
pub const VOLUME_PLUGIN_DIR: &str = "/opt/libexec/kubernetes/kubelet-plugins/volume/exec/";
/// The name every node gives its site NIC (the one with the node's MAC), by
/// a systemd .link file: networkd and kube-vip name it, whatever the kernel
/// called it and wherever the default route goes.
pub const SITE_INTERFACE: &str = "site0";

#[derive(Debug, Clone, Serialize)]
pub struct SiteContext {
    pub cluster: ClusterCtx,
    pub boot_server: BootServerCtx,
    pub network: NetworkCtx,
    pub flatcar: FlatcarCtx,
    pub cilium: CiliumCtx,
    pub ssh_keys: Vec<String>,
    pub updates: UpdatesCtx,
    /// systemd-sysupdate transfer files, one per extension (Kubernetes per minor).
    pub sysupdate: Vec<SysupdateCtx>,
    pub cri_socket: String,
    pub volume_plugin_dir: String,
    /// `[images]`: containerd's registry hosts in `"serve"` mode.
    pub images: super::containerd::ImagesCtx,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClusterCtx {
    pub name: String,
    pub kubernetes_version: String,
    /// e.g. "v1.33"
    pub kubernetes_minor: String,
    /// "host:port"
    pub endpoint: String,
    pub endpoint_host: String,
    pub endpoint_port: u16,
    pub endpoint_url: String,
    pub kube_vip: bool,
    pub kube_vip_version: String,
    pub pod_cidr: String,
    pub service_cidr: String,
    pub dns_domain: String,
    pub token_ttl: String,
    /// API server certificate SANs: the endpoint host and every control plane.
    pub cert_sans: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct BootServerCtx {
    pub address: String,
    pub http_port: u16,
    pub tftp_port: u16,
    /// "http://address:port"
    pub http_base: String,
    /// "http://address:port/beacon"
    pub beacon_base: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct NetworkCtx {
    /// The site NIC's name ([`SITE_INTERFACE`]).
    pub interface: String,
    pub static_addressing: bool,
    pub prefix_len: u8,
    pub gateway: String,
    pub dns: Vec<String>,
    pub ntp: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct FlatcarCtx {
    pub version: String,
    pub channel: String,
    pub arch: String,
    /// `flatcar-install -b` base: `<base>/<version>/flatcar_production_image.bin.bz2`.
    pub install_base_url: String,
    pub kernel_url: String,
    pub initrd_url: String,
    /// File name of the initrd (the `initrd=` argument for EFI stub / iPXE).
    pub initrd_name: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CiliumCtx {
    pub version: String,
    pub wireguard: bool,
    pub kube_proxy_replacement: bool,
    pub mtu: Option<u32>,
    /// The boot server's Helm repository (`<http base>/charts`) that
    /// `cilium install --repository` reads in `[images] mode = "serve"`;
    /// `None` in pull mode (the CLI's default, helm.cilium.io).
    pub chart_repository: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct UpdatesCtx {
    pub flatcar_disabled: bool,
    pub channel: String,
    pub kured: bool,
    pub locksmithd: bool,
    pub sysupdate: bool,
    /// `updates.apply`: "manual" or "rolling".
    pub apply: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SysupdateCtx {
    /// Extension name, e.g. "kubernetes".
    pub name: String,
    /// `/etc/sysupdate.<name>.d/<file>`
    pub path: String,
    pub source_url: String,
    pub match_pattern: String,
    /// Takes effect only at a reboot (the node runs it); false for a
    /// command-line-only extension, merged at once.
    pub reboot: bool,
    /// The Kubernetes extension (its reboots wait for the control planes).
    pub kubernetes: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct NodeCtx {
    pub name: String,
    pub mac: String,
    pub ip: String,
    pub role: String,
    pub control_plane: bool,
    /// The first control plane in site order: runs `kubeadm init` and installs Cilium.
    pub init: bool,
    /// Position among the control planes in site order (0 for the first):
    /// control plane N joins once N etcd members have started.
    pub control_plane_index: usize,
    /// The first control plane's etcd client URL: it answers the join-turn check.
    pub init_etcd_url: String,
    pub worker: bool,
    pub disk: String,
    /// Install over a disk that holds data (`wipe`, or `[install] wipe`).
    pub wipe: bool,
    pub uefi: bool,
    pub labels: Vec<KeyValue>,
    /// `k=v,k=v` for kubelet `--node-labels` (empty when none).
    pub node_labels: String,
    pub taints: Vec<TaintCtx>,
    /// True when the site lists taints (else kubeadm's defaults apply).
    pub has_taints: bool,
    pub ignition_dir: String,
    pub install_url: String,
    pub node_url: String,
    /// "http://server:port/beacon/<node>"
    pub beacon_url: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyValue {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct TaintCtx {
    pub key: String,
    pub value: Option<String>,
    pub effect: String,
}

/// What a node may know. `pki` is `Some` only on control planes.
#[derive(Clone, Serialize)]
pub struct NodeSecrets {
    pub token: String,
    pub ca_hash: String,
    pub pki: Option<Pki>,
    /// The update key's public half as a `data:` URL (not secret): written to
    /// `/etc/systemd/import-pubring.gpg`, the keyring sysupdate verifies with.
    pub update_keyring: String,
}

/// The CA material kubeadm must find on every control plane (the manual HA
/// distribution set): with it, joins need no `--certificate-key`.
#[derive(Clone, Serialize)]
pub struct Pki {
    pub ca_crt: String,
    pub ca_key: String,
    pub front_proxy_ca_crt: String,
    pub front_proxy_ca_key: String,
    pub etcd_ca_crt: String,
    pub etcd_ca_key: String,
    pub sa_key: String,
    pub sa_pub: String,
}

/// A system extension as the node fetches it.
#[derive(Debug, Clone, Serialize)]
pub struct SysextCtx {
    pub name: String,
    pub version: String,
    pub file_name: String,
    pub url: String,
    pub sha512: String,
    /// `/opt/extensions/<name>/<file_name>`
    pub path: String,
    /// `/etc/extensions/<name>.raw`
    pub link: String,
}

/// Files rendered from their own templates before the Butane template, then
/// embedded by it (as JSON-quoted inline contents).
#[derive(Debug, Clone, Default, Serialize)]
pub struct Files {
    pub kubeadm: String,
    pub kube_vip: Option<String>,
    pub cilium_values: Option<String>,
    pub bootstrap_script: String,
    pub cilium_script: Option<String>,
    /// Every node: the cilium-ready beacon once the local agent is up.
    pub cilium_ready_script: String,
    pub sysupdate_script: String,
    pub install_script: Option<String>,
}

/// Everything one node's templates see.
#[derive(Clone, Serialize)]
pub struct NodeContext {
    /// Shared by every node of a build (one copy, not one per node).
    pub site: std::sync::Arc<SiteContext>,
    pub node: NodeCtx,
    pub secrets: NodeSecrets,
    pub sysexts: Vec<SysextCtx>,
    pub files: Files,
    /// Install config only: the SHA-512 (hex) of the node config the
    /// installer fetches from `node.node_url`.
    pub node_ignition_sha512: Option<String>,
}

impl SiteContext {
    pub fn new(site: &Site, artifacts: &ArtifactRefs) -> Result<SiteContext> {
        let f = &site.file;
        let cluster = cluster_ctx(site)?;
        let http_base = site.http_base();
        Ok(SiteContext {
            sysupdate: sysupdate_confs(site, &cluster.kubernetes_minor),
            cluster,
            boot_server: BootServerCtx {
                address: f.boot_server.address.clone(),
                http_port: f.boot_server.http_port,
                tftp_port: f.boot_server.tftp_port,
                beacon_base: format!("{http_base}/beacon"),
                http_base,
            },
            network: NetworkCtx {
                interface: SITE_INTERFACE.to_string(),
                static_addressing: f.network.addressing == "static",
                prefix_len: f.network.subnet.get().prefix(),
                gateway: f.network.gateway.to_string(),
                dns: f.network.dns.clone(),
                ntp: f.network.ntp.clone(),
            },
            flatcar: flatcar_ctx(site, artifacts),
            cilium: CiliumCtx {
                version: f.cilium.version.clone(),
                wireguard: f.cilium.wireguard,
                kube_proxy_replacement: f.cilium.kube_proxy_replacement,
                mtu: f.cilium.mtu,
                chart_repository: crate::fetch::charts::served_repository(site),
            },
            ssh_keys: f.ssh.authorized_keys.clone(),
            updates: UpdatesCtx {
                flatcar_disabled: f.updates.flatcar == "disabled",
                channel: f.flatcar.channel.clone(),
                kured: f.updates.reboot_manager == "kured",
                locksmithd: f.updates.reboot_manager == "locksmithd",
                sysupdate: f.updates.sysupdate,
                apply: f.updates.apply.clone(),
            },
            cri_socket: CRI_SOCKET.to_string(),
            volume_plugin_dir: VOLUME_PLUGIN_DIR.to_string(),
            images: super::containerd::ImagesCtx::new(site)?,
        })
    }
}

fn cluster_ctx(site: &Site) -> Result<ClusterCtx> {
    let c = &site.file.cluster;
    let ep = c.endpoint.get();
    let (host, port) = (ep.ip.to_string(), ep.port);
    let minor = kubernetes_minor(&c.kubernetes_version)?;
    let mut cert_sans = vec![host.clone()];
    cert_sans.extend(site.control_planes().map(|n| n.ip.to_string()));
    cert_sans.dedup();
    Ok(ClusterCtx {
        name: c.name.clone(),
        kubernetes_version: c.kubernetes_version.clone(),
        kubernetes_minor: format!("v{}.{}", minor.0, minor.1),
        endpoint: ep.to_string(),
        endpoint_url: format!("https://{ep}"),
        endpoint_host: host,
        endpoint_port: port,
        kube_vip: c.endpoint_mode == EndpointMode::KubeVip,
        kube_vip_version: crate::images::catalog::KUBE_VIP_VERSION.to_string(),
        pod_cidr: c.pod_cidr.to_string(),
        service_cidr: c.service_cidr.to_string(),
        dns_domain: c.dns_domain.clone(),
        token_ttl: c.bootstrap_token_ttl.to_string(),
        cert_sans,
    })
}

impl NodeCtx {
    pub fn new(site: &Site, node: &Node, secrets: &Secrets) -> Result<NodeCtx> {
        let control_plane = node.is_control_plane();
        let first = site.control_planes().next();
        let init = first.map(|n| n.name.as_str()) == Some(&node.name);
        let control_plane_index = site
            .control_planes()
            .position(|n| n.name == node.name)
            .unwrap_or(0);
        let dir = crate::layout::ignition_dir(&secrets.node_dir_name(&node.name)?);
        let base = site.http_base();
        let labels: Vec<KeyValue> = node
            .labels
            .iter()
            .map(|(k, v)| KeyValue {
                key: k.clone(),
                value: v.clone(),
            })
            .collect();
        let node_labels = labels
            .iter()
            .map(|l| format!("{}={}", l.key, l.value))
            .collect::<Vec<_>>()
            .join(",");
        let taints = node
            .taints
            .iter()
            .map(|t| parse_taint(t).with_context(|| format!("node {}", node.name)))
            .collect::<Result<Vec<_>>>()?;
        Ok(NodeCtx {
            name: node.name.clone(),
            mac: node.mac.to_string(),
            ip: node.ip.to_string(),
            role: node.role.to_string(),
            control_plane,
            init,
            control_plane_index,
            init_etcd_url: first.map_or_else(String::new, |n| format!("https://{}:2379", n.ip)),
            worker: !control_plane,
            disk: node.disk.clone(),
            wipe: site.file.wipes(node),
            uefi: node.firmware == "uefi",
            labels,
            node_labels,
            has_taints: !taints.is_empty(),
            taints,
            install_url: crate::layout::ignition_url(&base, &dir, "install"),
            node_url: crate::layout::ignition_url(&base, &dir, "node"),
            ignition_dir: dir,
            beacon_url: format!("{base}/beacon/{}", node.name),
        })
    }
}

impl NodeSecrets {
    pub fn for_node(node: &NodeCtx, s: &Secrets) -> NodeSecrets {
        let pki = node.control_plane.then(|| Pki {
            ca_crt: s.ca.cert_pem.clone(),
            ca_key: s.ca.key_pem.clone(),
            front_proxy_ca_crt: s.front_proxy_ca.cert_pem.clone(),
            front_proxy_ca_key: s.front_proxy_ca.key_pem.clone(),
            etcd_ca_crt: s.etcd_ca.cert_pem.clone(),
            etcd_ca_key: s.etcd_ca.key_pem.clone(),
            sa_key: s.sa_key.clone(),
            sa_pub: s.sa_pub.clone(),
        });
        NodeSecrets {
            token: s.token.clone(),
            ca_hash: s.ca_hash.clone(),
            pki,
            update_keyring: s.update_key.keyring_data_url(),
        }
    }
}

/// The sysexts of the build, with the SHA-512 of each image (read from the
/// fetch step's internal output by `sha512_of`).
pub fn sysexts_from(
    http_base: &str,
    refs: &[crate::fetch::refs::SysextRef],
    sha512_of: impl Fn(&str) -> Result<String>,
) -> Result<Vec<SysextCtx>> {
    refs.iter()
        .map(|s| {
            Ok(SysextCtx {
                name: s.name.clone(),
                version: s.version.clone(),
                file_name: s.file_name.clone(),
                url: url_of(http_base, &s.image.path),
                sha512: sha512_of(&s.sha512.path)?.trim().to_string(),
                path: format!("/opt/extensions/{}/{}", s.name, s.file_name),
                link: format!("/etc/extensions/{}.raw", s.name),
            })
        })
        .collect()
}

/// The HTTP URL of a dist path (`http/a/b` → `<base>/a/b`).
pub fn url_of(base: &str, dist_path: &str) -> String {
    let rel = crate::layout::http_relative(dist_path).unwrap_or(dist_path);
    format!("{base}/{rel}")
}

fn flatcar_ctx(site: &Site, artifacts: &ArtifactRefs) -> FlatcarCtx {
    let f = &site.file.flatcar;
    let base = site.http_base();
    let version = &artifacts.flatcar_version;
    let default = |file: &str| crate::layout::flatcar_file(version, file);
    let kernel = artifacts
        .pxe_kernel
        .as_ref()
        .map_or_else(|| default(crate::layout::PXE_KERNEL), |r| r.path.clone());
    let initrd = artifacts
        .pxe_initrd
        .as_ref()
        .map_or_else(|| default(crate::layout::PXE_INITRD), |r| r.path.clone());
    // flatcar-install appends `<version>/<file>` to its -b base.
    let image = artifacts.install_image.as_ref().map_or_else(
        || default("flatcar_production_image.bin.bz2"),
        |r| r.path.clone(),
    );
    let image_url = url_of(&base, &image);
    let suffix = format!("/{version}/");
    let install_base_url = match image_url.rfind(&suffix) {
        Some(i) => image_url[..i].to_string(),
        None => format!("{base}/{}", crate::layout::FLATCAR),
    };
    FlatcarCtx {
        version: version.clone(),
        channel: f.channel.clone(),
        arch: f.arch.clone(),
        install_base_url,
        kernel_url: url_of(&base, &kernel),
        initrd_name: initrd.rsplit('/').next().unwrap_or_default().to_string(),
        initrd_url: url_of(&base, &initrd),
    }
}

fn sysupdate_confs(site: &Site, minor: &str) -> Vec<SysupdateCtx> {
    let base = site.http_base();
    let s = &site.file.sysext;
    let mut confs = vec![SysupdateCtx {
        name: "kubernetes".into(),
        path: format!("/etc/sysupdate.kubernetes.d/kubernetes-{minor}.conf"),
        source_url: format!("{base}/{}/", crate::layout::sysext_dir("kubernetes")),
        // Only patch releases of this minor: minors need `kubeadm upgrade`.
        match_pattern: format!("kubernetes-{minor}.@v-%a.raw"),
        reboot: true,
        kubernetes: true,
    }];
    let mut plain = vec!["cilium"];
    if s.containerd.as_deref().is_some_and(|v| !v.is_empty()) {
        plain.push("containerd");
    }
    for name in plain {
        confs.push(SysupdateCtx {
            name: name.into(),
            path: format!("/etc/sysupdate.{name}.d/{name}.conf"),
            source_url: format!("{base}/{}/", crate::layout::sysext_dir(name)),
            match_pattern: format!("{name}-@v-%a.raw"),
            // The cilium extension is the CLI only (the agent runs from
            // container images): nothing running changes with it.
            reboot: name != "cilium",
            kubernetes: false,
        });
    }
    confs
}

/// (major, minor) of "v1.33.2".
pub fn kubernetes_minor(version: &str) -> Result<(u32, u32)> {
    let v = version.strip_prefix('v').unwrap_or(version);
    let mut parts = v.split('.');
    let major = parts.next().and_then(|p| p.parse().ok());
    let minor = parts.next().and_then(|p| p.parse().ok());
    match (major, minor) {
        (Some(a), Some(b)) => Ok((a, b)),
        _ => Err(crate::error::BadInput::new(format!(
            "cluster.kubernetes_version {version:?} is not vMAJOR.MINOR.PATCH"
        ))),
    }
}

/// "key=value:Effect" or "key:Effect".
fn parse_taint(text: &str) -> Result<TaintCtx> {
    let (kv, effect) = text
        .rsplit_once(':')
        .ok_or_else(|| crate::error::BadInput::new(format!("taint {text:?} has no :Effect")))?;
    let (key, value) = match kv.split_once('=') {
        Some((k, v)) => (k.to_string(), Some(v.to_string())),
        None => (kv.to_string(), None),
    };
    Ok(TaintCtx {
        key,
        value,
        effect: effect.to_string(),
    })
}
