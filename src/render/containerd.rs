//! containerd's registry configuration for an air-gapped site
//! (`[images] mode = "serve"`): one `hosts.toml` per upstream registry the
//! site's images come from, sending pulls to the boot server's OCI API under
//! `/v2/<registry>/…` (the dist/ names, `ImageRef::dist_name`), and the
//! containerd config that makes the CRI plugin read that directory.
//!
//! Image references everywhere else (kubeadm, kube-vip, Cilium, Argo CD) stay
//! the upstream names: containerd maps them to the boot server, so the same
//! cluster configuration works in both modes. In `"pull"` mode nothing here
//! is rendered.
use anyhow::{Context, Result};
use serde::Serialize;

use crate::site::schema::ImageMode;
use crate::site::Site;

/// Where containerd looks for `<registry>/hosts.toml`.
pub const HOSTS_DIR: &str = "/etc/containerd/certs.d";

/// The containerd config a serve-mode node runs with (Flatcar's own lives
/// read-only in /usr/share/containerd/config.toml and does not set
/// `config_path`).
pub const CONFIG_PATH: &str = "/etc/containerd/config.toml";

/// Flatcar's containerd settings (its /usr/share/containerd/config.toml,
/// version 2 format, which containerd 2.x migrates on load) plus the
/// registry hosts directory. Kept to what Flatcar sets that matters for
/// Kubernetes: the socket, the runc runtime with the systemd cgroup driver.
///
/// The sandbox ("pause") image is pinned to kubeadm's, the one the tree
/// carries: the kubelet no longer names it, and containerd's own default
/// can be another tag, which an air-gapped node could not pull.
pub fn config_toml(sandbox_image: &str) -> String {
    format!(
        r#"# Written by pxebuild for [images] mode = "serve": Flatcar's containerd
# settings plus the registry hosts directory, so that image pulls go to the
# boot server (/etc/containerd/certs.d/<registry>/hosts.toml), and kubeadm's
# pause image as the pods' sandbox image (the one the boot server carries).
version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
oom_score = -999

[grpc]
address = "/run/containerd/containerd.sock"

[plugins."io.containerd.grpc.v1.cri"]
enable_selinux = true
sandbox_image = "{sandbox_image}"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
SystemdCgroup = true

[plugins."io.containerd.grpc.v1.cri".registry]
config_path = "/etc/containerd/certs.d"
"#
    )
}

/// What templates get under `site.images`.
#[derive(Debug, Clone, Serialize)]
pub struct ImagesCtx {
    /// `[images] mode = "serve"`: nodes pull through the boot server.
    pub serve: bool,
    /// One `hosts.toml` per upstream registry (empty in pull mode).
    pub hosts: Vec<HostsFile>,
    /// [`CONFIG_PATH`] and its contents.
    pub containerd_config_path: String,
    pub containerd_config: String,
}

/// One registry's hosts file.
#[derive(Debug, Clone, Serialize)]
pub struct HostsFile {
    pub registry: String,
    /// `/etc/containerd/certs.d/<registry>/hosts.toml`
    pub path: String,
    pub contents: String,
}

impl ImagesCtx {
    pub fn new(site: &Site) -> Result<ImagesCtx> {
        let serve = site.file.images.mode == ImageMode::Serve;
        let mut hosts = Vec::new();
        let mut containerd_config = String::new();
        if serve {
            let images = crate::site::images::site_images(site)?;
            let pause = images
                .iter()
                .find(|image| image.registry == "registry.k8s.io" && image.repository == "pause")
                .context(
                    "the site's image list has no registry.k8s.io/pause (kubeadm's sandbox image)",
                )?;
            containerd_config = config_toml(&pause.to_string());
            let mut registries: Vec<String> =
                images.into_iter().map(|image| image.registry).collect();
            registries.sort();
            registries.dedup();
            let base = site.http_base();
            hosts = registries
                .into_iter()
                .map(|registry| HostsFile {
                    path: hosts_path(&registry),
                    contents: hosts_toml(&registry, &base),
                    registry,
                })
                .collect();
        }
        Ok(ImagesCtx {
            serve,
            hosts,
            containerd_config_path: CONFIG_PATH.to_string(),
            containerd_config,
        })
    }
}

/// `/etc/containerd/certs.d/<registry>/hosts.toml` (a port stays in the
/// directory's name: `host:5000`).
pub fn hosts_path(registry: &str) -> String {
    format!("{HOSTS_DIR}/{registry}/hosts.toml")
}

/// The registry's own API endpoint: Docker Hub's is not `docker.io`.
pub fn upstream_server(registry: &str) -> String {
    match registry {
        "docker.io" => "https://registry-1.docker.io".to_string(),
        other => format!("https://{other}"),
    }
}

/// The hosts file of `registry`: pulls and resolves go to the boot server at
/// `http_base` (`http://10.0.0.1:8080`), which serves the registry's images
/// under `/v2/<registry>/`. `override_path` keeps containerd from adding
/// `/v2` again, so it asks `/v2/<registry>/<repository>/manifests/<ref>`,
/// the tree's own paths.
pub fn hosts_toml(registry: &str, http_base: &str) -> String {
    format!(
        "# Written by pxebuild ([images] mode = \"serve\"): {registry} images come from the\n\
         # boot server, which carries them in its tree.\n\
         server = \"{server}\"\n\
         \n\
         [host.\"{http_base}/v2/{registry}\"]\n\
         \x20 capabilities = [\"pull\", \"resolve\"]\n\
         \x20 override_path = true\n",
        server = upstream_server(registry),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_toml_points_at_the_boot_server() {
        let text = hosts_toml("registry.k8s.io", "http://10.0.0.1:8080");
        let value: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(value["server"].as_str(), Some("https://registry.k8s.io"));
        let host = &value["host"]["http://10.0.0.1:8080/v2/registry.k8s.io"];
        assert_eq!(host["override_path"].as_bool(), Some(true));
        assert_eq!(
            host["capabilities"].as_array().unwrap(),
            &vec![toml::Value::from("pull"), toml::Value::from("resolve")]
        );
        let hub: toml::Value = toml::from_str(&hosts_toml("docker.io", "http://h:1")).unwrap();
        assert_eq!(hub["server"].as_str(), Some("https://registry-1.docker.io"));
        assert_eq!(
            hosts_path("host:5000"),
            "/etc/containerd/certs.d/host:5000/hosts.toml"
        );
    }

    #[test]
    fn config_sets_the_hosts_directory() {
        let value: toml::Value =
            toml::from_str(&config_toml("registry.k8s.io/pause:3.10.1")).unwrap();
        let cri = &value["plugins"]["io.containerd.grpc.v1.cri"];
        assert_eq!(
            cri["sandbox_image"].as_str(),
            Some("registry.k8s.io/pause:3.10.1")
        );
        assert_eq!(cri["registry"]["config_path"].as_str(), Some(HOSTS_DIR));
        assert_eq!(
            cri["containerd"]["runtimes"]["runc"]["options"]["SystemdCgroup"].as_bool(),
            Some(true)
        );
    }
}
