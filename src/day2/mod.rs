//! Day 2: everything after the nodes have booted. Talks to the running cluster
//! through the operator's own `kubectl` and `helm`, always with the site's admin
//! kubeconfig (`secrets/kubeconfig`), never the ambient `KUBECONFIG`, so a
//! command can only ever touch the cluster this site describes.
//!
//! Each command module builds its argument vectors in pure functions (tested
//! exactly) and runs them through [`Cluster`], which owns process execution and
//! turns the usual failures (tool missing, API unreachable) into messages that
//! say what to do.
pub(crate) mod argo;
pub(crate) mod cmdline;
pub(crate) mod drift;
pub mod handoff;
pub(crate) mod helm;
pub(crate) mod installed;
pub(crate) mod kubeconfig;
pub(crate) mod kubectl;
pub mod payload;
pub(crate) mod preflight;
pub(crate) mod progress;
pub mod sync;
pub mod token;
pub(crate) mod tool;
pub(crate) mod untaint;
pub(crate) mod wait;
pub(crate) mod yamlines;

use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::site::Site;
use tool::{Tool, ToolError};

/// The running cluster of one site, as reached with its admin kubeconfig.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// `secrets/kubeconfig` of the site.
    pub kubeconfig: PathBuf,
    /// The API as messages name it: `https://<cluster.endpoint>`, or the
    /// kubeconfig's server when that is another address (then both).
    pub api: String,
    /// `https://<cluster.endpoint>`.
    endpoint: String,
    /// The kubeconfig's `server:`, read once (None when unreadable).
    server: Option<String>,
}

impl Cluster {
    /// The site's cluster; fails (bad input, exit 2) when the kubeconfig is missing.
    pub fn for_site(site: &Site) -> Result<Cluster> {
        let kubeconfig = kubeconfig::require(site)?;
        let endpoint = format!("https://{}", site.file.cluster.endpoint.get());
        // kubectl and helm go where the kubeconfig says: name that address
        // when it is not the site's endpoint, or the operator looks at the
        // wrong machine.
        let server = kubeconfig_server(&kubeconfig);
        let api = match &server {
            Some(server) if server.trim_end_matches('/') != endpoint => format!(
                "{} (the server in {}; the site's endpoint is {endpoint})",
                server.trim_end_matches('/'),
                tidy(kubeconfig.clone()).display()
            ),
            _ => endpoint.clone(),
        };
        Ok(Cluster {
            kubeconfig,
            api,
            endpoint,
            server,
        })
    }

    /// Runs `kubectl` with `args` (already holding `--kubeconfig`), returns stdout.
    pub fn kubectl(&self, args: &[String], stdin: Option<&str>) -> Result<String> {
        self.run(Tool::Kubectl, args, stdin)
    }

    /// Runs `helm` with `args` (already holding `--kubeconfig`), returns stdout.
    pub fn helm(&self, args: &[String], stdin: Option<&str>) -> Result<String> {
        self.run(Tool::Helm, args, stdin)
    }

    fn run(&self, tool: Tool, args: &[String], stdin: Option<&str>) -> Result<String> {
        tool::run(tool, args, stdin).map_err(|e| self.explain(e))
    }

    /// Adds the cluster's address and the operator's next move to a tool error.
    /// Our explanation comes first, the tool's own words last.
    pub(crate) fn explain(&self, err: ToolError) -> anyhow::Error {
        let kc = self.kubeconfig.display();
        let err = match err {
            ToolError::Unreachable { tool, detail } | ToolError::Untrusted { tool, detail }
                if !self.about_the_api(&detail) =>
            {
                // Another address failed (a chart repository, a webhook):
                // the tool's words, under what the command was doing.
                return anyhow::anyhow!("{tool}: {detail}");
            }
            other => other,
        };
        let text = match err {
            ToolError::Unreachable { tool, detail } => format!(
                "cannot reach the Kubernetes API at {}: check that the control-plane nodes are up \
                 (`pxebuild wait`, the boot server's beacons), that this machine can reach the \
                 endpoint, and that {kc} belongs to this cluster ({tool}: {detail})",
                self.api
            ),
            ToolError::Untrusted { tool, detail } => format!(
                "the Kubernetes API at {} answered with a certificate {kc} does not trust: the \
                 kubeconfig belongs to another cluster (or another build's secrets/), or another \
                 machine answers at that address; use the secrets/ of the build that installed \
                 this cluster ({tool}: {detail})",
                self.api
            ),
            other => return anyhow::Error::new(other),
        };
        anyhow::Error::new(ApiProblem(text))
    }
}

impl Cluster {
    /// Whether a connection failure the tool reported was the API's: it names
    /// the API's address (the kubeconfig's server or the site's endpoint), or
    /// speaks as kubectl and helm do of their own cluster. A chart
    /// repository or an admission webhook failing is something else.
    fn about_the_api(&self, detail: &str) -> bool {
        let lower = detail.to_lowercase();
        let own_words = [
            "the connection to the server",
            "unable to connect to the server",
            "kubernetes cluster unreachable",
        ];
        if own_words.iter().any(|w| lower.contains(w)) {
            return true;
        }
        let host_port = |url: &str| {
            url.trim_start_matches("https://")
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_lowercase()
        };
        std::iter::once(&self.endpoint)
            .chain(&self.server)
            .map(|url| host_port(url))
            .any(|a| !a.is_empty() && lower.contains(a.as_str()))
    }
}

/// The `server:` of the kubeconfig's (first) cluster, if it can be read.
fn kubeconfig_server(path: &Path) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let doc: serde_norway::Value = serde_norway::from_str(&text).ok()?;
    doc["clusters"][0]["cluster"]["server"]
        .as_str()
        .map(str::to_string)
}

/// The API could not be reached, or not trusted: a message that stands alone
/// and comes first, whatever the command was doing (see [`doing`]).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ApiProblem(String);

/// `result` with `what` as context, unless the failure is an [`ApiProblem`],
/// whose message already says everything and must lead.
pub(crate) fn doing<T>(result: Result<T>, what: impl FnOnce() -> String) -> Result<T> {
    result.map_err(|e| {
        if e.is::<ApiProblem>() {
            e
        } else {
            e.context(what())
        }
    })
}

/// `path` without a leading `./`, as operators would type it.
pub(crate) fn tidy(path: PathBuf) -> PathBuf {
    match path.strip_prefix(".") {
        Ok(rest) => rest.to_path_buf(),
        Err(_) => path,
    }
}

/// The `--kubeconfig` prefix every kubectl and helm invocation starts with.
pub(crate) fn kubeconfig_args(kubeconfig: &Path) -> Vec<String> {
    vec!["--kubeconfig".to_string(), kubeconfig.display().to_string()]
}
