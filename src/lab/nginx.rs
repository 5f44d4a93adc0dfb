//! The peer HTTP server: nginx serving `dist/http` exactly as an operator who
//! rsyncs the tree to a plain web server would, with every path (pid, logs,
//! temp files) inside the lab's state directory so nothing on the host changes.
//! The OCI pull API's locations are docs/serve.md's (a test keeps them equal),
//! so an air-gapped tree's images are pulled from nginx as from `pxebuild serve`.
use std::path::Path;

use super::plan::LabPlan;

/// docs/serve.md's `map` for the pull API (inside `http {}`).
const OCI_MAP: &str = r#"    map $oci_reference $oci_digest {
        "~^sha256:[0-9a-f]{64}$" $oci_reference;
        default "";
    }
"#;

/// docs/serve.md's pull API locations (inside `server {}`).
const OCI_LOCATIONS: &str = r#"        location = /v2/ {
            default_type application/json;
            add_header Docker-Distribution-API-Version registry/2.0 always;
            return 200 '{}';
        }
        location = /v2 {
            default_type application/json;
            add_header Docker-Distribution-API-Version registry/2.0 always;
            return 200 '{}';
        }
        location ~ "^/v2/(?<oci_name>.+)/manifests/(?<oci_reference>[A-Za-z0-9_][A-Za-z0-9._-]{0,127}|sha256:[0-9a-f]{64})$" {
            types {
                application/vnd.oci.image.index.v1+json oci-index;
                application/vnd.oci.image.manifest.v1+json oci-manifest;
                application/vnd.docker.distribution.manifest.list.v2+json docker-list;
                application/vnd.docker.distribution.manifest.v2+json docker-manifest;
            }
            add_header Docker-Distribution-API-Version registry/2.0 always;
            add_header Docker-Content-Digest $oci_digest;
            try_files /v2/$oci_name/manifests/$oci_reference.oci-index
                      /v2/$oci_name/manifests/$oci_reference.oci-manifest
                      /v2/$oci_name/manifests/$oci_reference.docker-list
                      /v2/$oci_name/manifests/$oci_reference.docker-manifest
                      =404;
        }
        location ~ "^/v2/.+/blobs/(?<oci_blob>sha256:[0-9a-f]{64})$" {
            types { }
            default_type application/octet-stream;
            add_header Docker-Distribution-API-Version registry/2.0 always;
            add_header Docker-Content-Digest $oci_blob;
        }
        location /v2/ {
            return 404;
        }
"#;

/// A complete nginx.conf for the lab; `log` receives the access log.
pub(crate) fn config(plan: &LabPlan, prefix: &Path, log: &Path) -> String {
    let p = prefix.display();
    let root = plan.dist.join(crate::layout::HTTP);
    format!(
        "# Written by `pxebuild lab` (nginx variant); regenerated on every run.
daemon off;
# The tree may hold 0600 files (Ignition configs with secrets).
user root;
worker_processes 1;
pid {p}/nginx.pid;
error_log {p}/error.log;
events {{ worker_connections 256; }}
http {{
    # The combined format plus the transfer time, for the bench.
    log_format pxelab '$remote_addr - $remote_user [$time_local] \"$request\" $status '
                      '$body_bytes_sent \"$http_referer\" \"$http_user_agent\" rt=$request_time';
    access_log {log} pxelab;
    client_body_temp_path {p}/body;
    proxy_temp_path {p}/proxy;
    fastcgi_temp_path {p}/fastcgi;
    uwsgi_temp_path {p}/uwsgi;
    scgi_temp_path {p}/scgi;
    sendfile on;
    tcp_nopush on;
    default_type application/octet-stream;
    types {{ application/json ign json; text/plain conf ipxe; }}
{OCI_MAP}    server {{
        listen {server}:{port};
        root {root};
        autoindex off;
{OCI_LOCATIONS}    }}
}}
",
        log = log.display(),
        server = plan.server,
        port = plan.http_port,
        root = root.display(),
    )
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn plan() -> LabPlan {
        LabPlan::sample()
    }

    #[test]
    fn serves_dist_http_on_the_boot_server_address() {
        let text = config(&plan(), Path::new("/s/nginx"), Path::new("/s/server.log"));
        assert!(text.contains("listen 10.20.0.2:8080;"));
        assert!(text.contains("root /d/http;"));
        assert!(text.contains("access_log /s/server.log pxelab;"));
        assert!(text.contains("pid /s/nginx/nginx.pid;"));
    }

    /// The lab serves the pull API exactly as docs/serve.md tells operators to.
    #[test]
    fn oci_locations_are_the_documented_ones() {
        let page = include_str!("../../docs/serve.md");
        let section = &page[page.find("#### The same API from nginx").unwrap()..];
        let start = section.find("```nginx\n").unwrap();
        let end = section[start + 3..].find("```").unwrap() + start + 3;
        let mut documented: Vec<&str> = section[start + "```nginx\n".len()..end]
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            // The lab's own server lines: its address, port and tree.
            .filter(|l| {
                !["server {", "listen ", "root ", "autoindex "]
                    .iter()
                    .any(|p| l.starts_with(p))
            })
            .collect();
        assert_eq!(documented.pop(), Some("}"), "the server block's end");
        let ours = [OCI_MAP, OCI_LOCATIONS].concat();
        let ours: Vec<&str> = ours.lines().map(str::trim).collect();
        assert_eq!(ours, documented);
    }

    #[test]
    fn nginx_accepts_the_config() {
        let dir = tempfile::tempdir().unwrap();
        let mut plan = plan();
        plan.server = Ipv4Addr::LOCALHOST;
        plan.dist = dir.path().to_path_buf();
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config(&plan, dir.path(), &dir.path().join("a.log"))).unwrap();
        let out = std::process::Command::new("nginx")
            .arg("-t")
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .output()
            .expect("nginx (nginx-light) is installed");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
