//! Typed kubeadm v1beta4 (and kubelet v1beta1) documents for the tests: the
//! fields pxebuild emits plus their documented neighbours, with unknown fields
//! rejected as kubeadm's strict decoding does.
#![allow(dead_code)]
use serde::Deserialize;

/// One document of a multi-document kubeadm config, by `kind`.
// Variants are named after the `kind` they decode.
#[allow(clippy::enum_variant_names)]
#[derive(Debug, Deserialize)]
#[serde(tag = "kind")]
pub enum Document {
    InitConfiguration(InitConfiguration),
    ClusterConfiguration(ClusterConfiguration),
    JoinConfiguration(JoinConfiguration),
    KubeletConfiguration(KubeletConfiguration),
}

/// Parses every `---`-separated document of `text`.
pub fn parse_all(text: &str) -> Vec<Document> {
    serde_norway::Deserializer::from_str(text)
        .map(|doc| Document::deserialize(doc).expect("a valid kubeadm document"))
        .collect()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct InitConfiguration {
    pub api_version: ApiVersion,
    #[serde(default)]
    pub bootstrap_tokens: Vec<BootstrapToken>,
    pub node_registration: NodeRegistration,
    #[serde(rename = "localAPIEndpoint")]
    pub local_api_endpoint: Option<ApiEndpoint>,
    pub certificate_key: Option<String>,
    #[serde(default)]
    pub skip_phases: Vec<String>,
    pub patches: Option<Patches>,
    pub timeouts: Option<serde_json::Value>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterConfiguration {
    pub api_version: ApiVersion,
    pub cluster_name: String,
    pub kubernetes_version: String,
    pub control_plane_endpoint: String,
    pub certificates_dir: Option<String>,
    pub image_repository: Option<String>,
    pub encryption_algorithm: Option<EncryptionAlgorithm>,
    pub networking: Networking,
    pub etcd: Option<serde_json::Value>,
    pub api_server: Option<ApiServer>,
    pub controller_manager: Option<ControlPlaneComponent>,
    pub scheduler: Option<ControlPlaneComponent>,
    pub dns: Option<Disableable>,
    pub proxy: Option<Disableable>,
    pub feature_gates: Option<std::collections::BTreeMap<String, bool>>,
    pub certificate_validity_period: Option<String>,
    pub ca_certificate_validity_period: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JoinConfiguration {
    pub api_version: ApiVersion,
    pub node_registration: NodeRegistration,
    pub ca_cert_path: Option<String>,
    pub discovery: Discovery,
    pub control_plane: Option<JoinControlPlane>,
    #[serde(default)]
    pub skip_phases: Vec<String>,
    pub patches: Option<Patches>,
    pub timeouts: Option<serde_json::Value>,
    pub dry_run: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct KubeletConfiguration {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub cgroup_driver: Option<String>,
    pub volume_plugin_dir: Option<String>,
    pub cluster_dns: Option<Vec<String>>,
    pub cluster_domain: Option<String>,
}

#[derive(Debug, Deserialize, PartialEq)]
pub enum ApiVersion {
    #[serde(rename = "kubeadm.k8s.io/v1beta4")]
    V1beta4,
}

#[derive(Debug, Deserialize, PartialEq)]
pub enum EncryptionAlgorithm {
    #[serde(rename = "RSA-2048")]
    Rsa2048,
    #[serde(rename = "RSA-3072")]
    Rsa3072,
    #[serde(rename = "RSA-4096")]
    Rsa4096,
    #[serde(rename = "ECDSA-P256")]
    EcdsaP256,
    #[serde(rename = "ECDSA-P384")]
    EcdsaP384,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BootstrapToken {
    pub token: String,
    pub description: Option<String>,
    pub ttl: Option<String>,
    pub expires: Option<String>,
    #[serde(default)]
    pub usages: Vec<String>,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct NodeRegistration {
    pub name: Option<String>,
    pub cri_socket: Option<String>,
    pub taints: Option<Vec<Taint>>,
    #[serde(default)]
    pub kubelet_extra_args: Vec<Arg>,
    #[serde(default)]
    pub ignore_preflight_errors: Vec<String>,
    pub image_pull_policy: Option<String>,
    pub image_pull_serial: Option<bool>,
}

#[derive(Debug, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Arg {
    pub name: String,
    pub value: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Taint {
    pub key: String,
    pub value: Option<String>,
    pub effect: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApiEndpoint {
    pub advertise_address: String,
    pub bind_port: Option<u16>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Patches {
    pub directory: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Networking {
    pub service_subnet: Option<String>,
    pub pod_subnet: Option<String>,
    pub dns_domain: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ApiServer {
    #[serde(rename = "certSANs", default)]
    pub cert_sans: Vec<String>,
    #[serde(default)]
    pub extra_args: Vec<Arg>,
    pub extra_volumes: Option<serde_json::Value>,
    pub extra_envs: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ControlPlaneComponent {
    #[serde(default)]
    pub extra_args: Vec<Arg>,
    pub extra_volumes: Option<serde_json::Value>,
    pub extra_envs: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disableable {
    pub disabled: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Discovery {
    pub bootstrap_token: Option<BootstrapTokenDiscovery>,
    pub file: Option<serde_json::Value>,
    pub tls_bootstrap_token: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct BootstrapTokenDiscovery {
    pub token: String,
    pub api_server_endpoint: String,
    #[serde(default)]
    pub ca_cert_hashes: Vec<String>,
    pub unsafe_skip_ca_verification: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JoinControlPlane {
    #[serde(rename = "localAPIEndpoint")]
    pub local_api_endpoint: Option<ApiEndpoint>,
    pub certificate_key: Option<String>,
}
