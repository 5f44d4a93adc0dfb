//! serde structs mirroring `site.toml` one to one. Every table denies unknown
//! keys, so a typo is an error with its line and column.
//!
//! The site comes in two forms. [`RawSiteFile`] keeps the values that need
//! parsing as written (strings), so `validate` can check them all, report
//! every problem at once and place it in the text; nothing else reads it.
//! [`SiteFile`], what a validated `Site` carries, holds the same tables with
//! those values typed (`MacAddr`, `Ipv4Addr`, `Ipv4Cidr`, `EndpointMode`,
//! durations), built by `typed::lift`. Both serialise to the same JSON.
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use super::types::{Duration, Endpoint, EndpointMode, Ipv4Cidr, MacAddr, Role, Spelled};

/// The site as parsed, before validation: the tables with typed values
/// hold their text (see the module comment).
pub(crate) type RawSiteFile = SiteFile<RawCluster, RawNetwork, RawNode>;

/// The whole site file; by default the validated form, with typed values.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(
    deny_unknown_fields,
    bound(deserialize = "C: Deserialize<'de>, N: Deserialize<'de>, D: Deserialize<'de>")
)]
pub struct SiteFile<C = Cluster, N = Network, D = Node> {
    pub cluster: C,
    pub network: N,
    pub boot_server: BootServer,
    pub flatcar: Flatcar,
    pub sysext: Sysext,
    pub cilium: Cilium,
    pub ssh: Ssh,
    #[serde(default)]
    pub sources: Sources,
    #[serde(default)]
    pub updates: Updates,
    #[serde(default)]
    pub argocd: ArgoCd,
    #[serde(default)]
    pub install: Install,
    #[serde(default)]
    pub images: Images,
    #[serde(rename = "node", default)]
    pub nodes: Vec<D>,
}

impl<C, N, D: HasWipe> SiteFile<C, N, D> {
    /// Whether `node`'s install may overwrite a disk that holds data: its own
    /// `wipe`, else the site's `[install] wipe`.
    pub fn wipes(&self, node: &D) -> bool {
        node.wipe().unwrap_or(self.install.wipe)
    }
}

/// A node's own `wipe`, in either form of the site.
pub trait HasWipe {
    fn wipe(&self) -> Option<bool>;
}

impl HasWipe for Node {
    fn wipe(&self) -> Option<bool> {
        self.wipe
    }
}

impl HasWipe for RawNode {
    fn wipe(&self) -> Option<bool> {
        self.wipe
    }
}

/// `[cluster]`, validated.
#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    pub name: String,
    pub kubernetes_version: String,
    /// As written: "10.20.0.10" stays without the port `get` adds.
    pub endpoint: Spelled<Endpoint>,
    pub endpoint_mode: EndpointMode,
    pub pod_cidr: Spelled<Ipv4Cidr>,
    pub service_cidr: Spelled<Ipv4Cidr>,
    pub dns_domain: String,
    pub bootstrap_token_ttl: Spelled<Duration>,
    pub bring_up_window: Spelled<Duration>,
}

/// `[network]`, validated.
#[derive(Debug, Clone, Serialize)]
pub struct Network {
    pub subnet: Spelled<Ipv4Cidr>,
    pub gateway: Ipv4Addr,
    pub dns: Vec<String>,
    pub ntp: Vec<String>,
    pub addressing: String,
}

/// One `[[node]]`, validated.
#[derive(Debug, Clone, Serialize)]
pub struct Node {
    pub name: String,
    /// In its one spelling (lower-case, colons) whatever site.toml wrote:
    /// dhcpd and Kea refuse "52-54-00-..." outright.
    pub mac: MacAddr,
    pub ip: Ipv4Addr,
    pub role: Role,
    pub disk: String,
    pub firmware: String,
    pub labels: BTreeMap<String, String>,
    pub taints: Vec<String>,
    pub wipe: Option<bool>,
}

impl Node {
    pub fn is_control_plane(&self) -> bool {
        self.role == Role::ControlPlane
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCluster {
    /// DNS-1123 label; names the kubeconfig context and the kubeadm cluster.
    pub name: String,
    /// e.g. "v1.33.2".
    pub kubernetes_version: String,
    /// Control-plane endpoint "IP[:port]" (the VIP, or an external load balancer).
    pub endpoint: String,
    /// "kube-vip" (a VIP announced by a static pod) or "external" (a load balancer).
    #[serde(default = "default_endpoint_mode")]
    pub endpoint_mode: String,
    #[serde(default = "default_pod_cidr")]
    pub pod_cidr: String,
    #[serde(default = "default_service_cidr")]
    pub service_cidr: String,
    #[serde(default = "default_dns_domain")]
    pub dns_domain: String,
    /// Lifetime of the bootstrap token, e.g. "24h" (kubeadm duration syntax).
    #[serde(default = "default_token_ttl")]
    pub bootstrap_token_ttl: String,
    /// How long the site's bring-up is expected to take, e.g. "4h"; the token
    /// lifetime must cover it.
    #[serde(default = "default_bring_up_window")]
    pub bring_up_window: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNetwork {
    /// The node subnet, e.g. "10.0.0.0/24".
    pub subnet: String,
    pub gateway: String,
    #[serde(default)]
    pub dns: Vec<String>,
    /// Time servers for the nodes (addresses or host names); empty: Flatcar's
    /// default pool, or what DHCP offers.
    #[serde(default)]
    pub ntp: Vec<String>,
    /// "static" (addresses from site.toml, written as networkd units) or "dhcp".
    #[serde(default = "default_addressing")]
    pub addressing: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BootServer {
    /// The boot server's address as the nodes see it.
    pub address: String,
    #[serde(default = "default_http_port")]
    pub http_port: u16,
    #[serde(default = "default_tftp_port")]
    pub tftp_port: u16,
    /// Which loaders to emit: any of "bios", "uefi", "ipxe".
    #[serde(default = "default_loaders")]
    pub loaders: Vec<String>,
    /// Kernel console arguments, e.g. ["tty0", "ttyS0,115200n8"].
    #[serde(default = "default_consoles")]
    pub consoles: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flatcar {
    /// stable | beta | alpha | lts
    pub channel: String,
    /// A pinned release such as "4593.2.5" ("current" is resolved and recorded).
    pub version: String,
    /// amd64 | arm64
    #[serde(default = "default_arch")]
    pub arch: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sysext {
    /// Kubernetes sysext version; must equal cluster.kubernetes_version.
    pub kubernetes: String,
    /// Cilium CLI sysext version, e.g. "v0.18.2".
    pub cilium: String,
    /// containerd sysext version; empty or absent keeps Flatcar's built-in containerd.
    #[serde(default)]
    pub containerd: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cilium {
    /// Cilium (agent/chart) version, e.g. "1.17.4".
    pub version: String,
    #[serde(default = "default_true")]
    pub wireguard: bool,
    #[serde(default = "default_true")]
    pub kube_proxy_replacement: bool,
    /// Cilium's `MTU`: the network's under Cilium's devices (Cilium takes its
    /// tunnel and WireGuard overheads off for pod routes); absent: detected.
    #[serde(default)]
    pub mtu: Option<u32>,
    /// Link MTU of the node network, used to check `mtu`.
    #[serde(default = "default_link_mtu")]
    pub link_mtu: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Ssh {
    /// Public keys for the `core` user.
    pub authorized_keys: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sources {
    /// Base URL of a mirror in `<mirror>/<original host>/<original path>` layout.
    #[serde(default)]
    pub mirror: Option<String>,
    /// OpenPGP public key file replacing the built-in Flatcar image signing key.
    #[serde(default)]
    pub signing_key: Option<String>,
    /// Where the boot loaders come from: "debian" (default: Debian's
    /// packages, pinned inside pxebuild) or "upstream" (the syslinux 6.03
    /// release tarball and boot.ipxe.org's iPXE binaries).
    #[serde(default)]
    pub loaders: Option<String>,
    /// Debian archive root the default loader packages are fetched from
    /// (default: https://deb.debian.org/debian).
    #[serde(default)]
    pub debian_url: Option<String>,
    /// Local directory with syslinux/iPXE binaries, used instead of any
    /// download.
    #[serde(default)]
    pub loaders_dir: Option<String>,
    /// With `loaders = "upstream"`: URL of the syslinux 6.03 release tarball
    /// (default: kernel.org).
    #[serde(default)]
    pub syslinux_url: Option<String>,
    /// With `loaders = "upstream"`: pinned SHA-256 of that tarball (pxebuild
    /// pins the default kernel.org `.tar.xz` itself).
    #[serde(default)]
    pub syslinux_sha256: Option<String>,
    /// With `loaders = "upstream"`: base URL of the iPXE binaries (default:
    /// https://boot.ipxe.org).
    #[serde(default)]
    pub ipxe_url: Option<String>,
    /// With `loaders = "upstream"`: pinned SHA-256 per iPXE file name
    /// (`undionly.kpxe`, `ipxe.efi`, `snponly.efi`); required with the `ipxe`
    /// loader.
    #[serde(default)]
    pub ipxe_sha256s: BTreeMap<String, String>,
}

/// `[images]`: where the cluster's container images and charts come from.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Images {
    /// "pull" (default: nodes pull from the upstream registries) or "serve"
    /// (the air gap: the build copies every image and chart into dist/ and
    /// nodes pull them from the boot server).
    #[serde(default)]
    pub mode: ImageMode,
    /// The payload's own images, as its manifests name them
    /// (`ghcr.io/example/app:1.2`), carried in dist/ with the cluster's.
    #[serde(default)]
    pub extra: Vec<String>,
    /// One registry holding every image under `<original registry>/<repository>`
    /// (`http://mirror:5000` serves `registry.k8s.io/pause` as
    /// `/v2/registry.k8s.io/pause/…`), used at build time instead of the
    /// upstream registries.
    #[serde(default)]
    pub registry_mirror: Option<String>,
    /// The Helm charts the payload's Applications install, carried (with
    /// Cilium's and Argo CD's) in dist/'s chart repository in `mode = "serve"`:
    /// each from its upstream repository, since the Applications name the
    /// boot server's.
    #[serde(default)]
    pub charts: Vec<ChartSource>,
}

/// One entry of `images.charts`: a chart version in a Helm repository.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChartSource {
    /// The Helm repository's URL (the one `index.yaml` sits in), e.g.
    /// `https://kubereboot.github.io/charts`.
    pub repo: String,
    /// The chart's name in the repository, e.g. `kured`.
    pub name: String,
    /// The chart version, as the repository's index lists it.
    pub version: String,
}

/// `images.mode`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageMode {
    /// Nodes pull from the upstream registries, as they would without pxebuild.
    #[default]
    Pull,
    /// Images and charts are in dist/; nodes pull them from the boot server.
    Serve,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Updates {
    /// Flatcar OS updates: "disabled" (SERVER=disabled) or "enabled".
    #[serde(default = "default_disabled")]
    pub flatcar: String,
    /// Reboot coordination: "kured" (locksmithd masked) or "locksmithd".
    #[serde(default = "default_reboot_manager")]
    pub reboot_manager: String,
    /// Let systemd-sysupdate stage Kubernetes patch releases from the boot server.
    #[serde(default = "default_true")]
    pub sysupdate: bool,
    /// When staged Kubernetes/containerd extensions take effect: "manual"
    /// (never by themselves; the operator upgrades node by node) or
    /// "rolling" (kured reboots one node at a time, control planes first).
    #[serde(default = "default_apply")]
    pub apply: String,
}

impl Default for Updates {
    fn default() -> Self {
        Updates {
            flatcar: default_disabled(),
            reboot_manager: default_reboot_manager(),
            sysupdate: true,
            apply: default_apply(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArgoCd {
    /// Version of the `argo-cd` Helm chart.
    #[serde(default = "default_argocd_chart")]
    pub chart_version: String,
    /// Git repository the root Application points at.
    #[serde(default = "default_argocd_repo")]
    pub repo_url: String,
    #[serde(default = "default_argocd_revision")]
    pub revision: String,
}

impl Default for ArgoCd {
    fn default() -> Self {
        ArgoCd {
            chart_version: default_argocd_chart(),
            repo_url: default_argocd_repo(),
            revision: default_argocd_revision(),
        }
    }
}

/// How the installer treats the disks it finds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Install {
    /// Install over a disk that holds partitions or file-system signatures,
    /// for every node without a `wipe` of its own. Off: such a disk is
    /// refused (a repurposed server's data is never lost by surprise).
    #[serde(default)]
    pub wipe: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawNode {
    /// DNS-1123 label, also the hostname.
    pub name: String,
    /// "aa:bb:cc:dd:ee:ff"
    pub mac: String,
    pub ip: String,
    /// "control-plane" or "worker".
    pub role: String,
    /// Install disk, preferably /dev/disk/by-id/...
    pub disk: String,
    /// Firmware the machine boots with: "bios" or "uefi" (used by the lab).
    #[serde(default = "default_firmware")]
    pub firmware: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Taints as "key=value:Effect" or "key:Effect".
    #[serde(default)]
    pub taints: Vec<String>,
    /// Install over a disk that holds data; absent: `[install] wipe`.
    #[serde(default)]
    pub wipe: Option<bool>,
}

fn default_endpoint_mode() -> String {
    "kube-vip".into()
}
fn default_pod_cidr() -> String {
    "10.244.0.0/16".into()
}
fn default_service_cidr() -> String {
    "10.96.0.0/12".into()
}
fn default_dns_domain() -> String {
    "cluster.local".into()
}
fn default_token_ttl() -> String {
    "24h".into()
}
fn default_bring_up_window() -> String {
    "4h".into()
}
fn default_addressing() -> String {
    "static".into()
}
fn default_http_port() -> u16 {
    8080
}
fn default_tftp_port() -> u16 {
    69
}
fn default_loaders() -> Vec<String> {
    vec!["bios".into(), "uefi".into()]
}
fn default_consoles() -> Vec<String> {
    vec!["tty0".into(), "ttyS0,115200n8".into()]
}
fn default_arch() -> String {
    "amd64".into()
}
fn default_true() -> bool {
    true
}
fn default_link_mtu() -> u32 {
    1500
}
fn default_disabled() -> String {
    "disabled".into()
}
fn default_apply() -> String {
    "manual".into()
}
fn default_reboot_manager() -> String {
    "kured".into()
}
fn default_argocd_chart() -> String {
    "10.9.0".into()
}
fn default_argocd_repo() -> String {
    "https://git.example.com/infra/cluster.git".into()
}
fn default_argocd_revision() -> String {
    "main".into()
}
fn default_firmware() -> String {
    "bios".into()
}
