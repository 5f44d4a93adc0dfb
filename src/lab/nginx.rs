//! The peer HTTP server: nginx serving `dist/http` exactly as an operator who
//! rsyncs the tree to a plain web server would, with every path (pid, logs,
//! temp files) inside the lab's state directory so nothing on the host changes.
use std::path::Path;

use super::plan::LabPlan;

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
    server {{
        listen {server}:{port};
        root {root};
        autoindex off;
    }}
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
