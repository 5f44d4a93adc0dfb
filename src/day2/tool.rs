//! Runs the external cluster tools (`kubectl`, `helm`) and classifies how they
//! failed, because "not installed", "cluster unreachable" and "the request was
//! refused" each need a different next step from the operator.
use std::fmt;
use std::io::{ErrorKind, Write};
use std::process::{Command, Stdio};

/// The tools day-2 commands drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tool {
    Kubectl,
    Helm,
}

impl Tool {
    /// The program name looked up on PATH.
    pub(crate) fn program(self) -> &'static str {
        match self {
            Tool::Kubectl => "kubectl",
            Tool::Helm => "helm",
        }
    }

    /// How to get the tool, for the "not found" message.
    pub(crate) fn install_hint(self) -> &'static str {
        match self {
            Tool::Kubectl => {
                "install it (Debian/Ubuntu: `apt-get install kubectl` from the Kubernetes \
                 apt repository pkgs.k8s.io, or a static binary from \
                 https://kubernetes.io/docs/tasks/tools/), then run the command again"
            }
            Tool::Helm => {
                "install Helm 3 (Debian/Ubuntu: `apt-get install helm` from Helm's apt \
                 repository, or a static binary from https://github.com/helm/helm/releases), \
                 then run the command again"
            }
        }
    }
}

impl fmt::Display for Tool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.program())
    }
}

/// How a tool run failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ToolError {
    #[error("{tool} was not found on PATH: {}", tool.install_hint())]
    NotFound { tool: Tool },
    #[error("cannot reach the Kubernetes API ({tool}: {detail})")]
    Unreachable { tool: Tool, detail: String },
    #[error("the Kubernetes API's certificate is not trusted ({tool}: {detail})")]
    Untrusted { tool: Tool, detail: String },
    #[error("`{tool} {command}` failed ({status}): {stderr}")]
    Failed {
        tool: Tool,
        command: String,
        status: String,
        stderr: String,
    },
    #[error("running {tool}: {source}")]
    Io {
        tool: Tool,
        #[source]
        source: std::io::Error,
    },
}

/// What kubectl and helm print when the API server does not answer at all
/// (as opposed to answering with an error). Not "context deadline exceeded"
/// alone: that is also how `helm --wait` reports workloads that never got ready.
const UNREACHABLE_MARKERS: &[&str] = &[
    "connection refused",
    "the connection to the server",
    "unable to connect to the server",
    "kubernetes cluster unreachable",
    "no route to host",
    "i/o timeout",
    "tls handshake timeout",
    "network is unreachable",
    "no such host",
    "client.timeout exceeded",
];

/// What kubectl and helm print when the TLS handshake succeeded but the
/// server's certificate failed verification: something answered, but not the
/// cluster the kubeconfig's CA vouches for. Checked before
/// [`UNREACHABLE_MARKERS`], which "Unable to connect to the server" also matches.
const UNTRUSTED_MARKERS: &[&str] = &[
    "x509:",
    "failed to verify certificate",
    "certificate signed by unknown authority",
    "certificate is valid for",
];

/// What kubectl prints when the API server answered but could not serve the
/// request for now: while control planes join, etcd changes leader and the
/// API answers 500/503/504/429 for a moment. Worth asking again; an answer
/// like Forbidden or NotFound is not.
const TRANSIENT_MARKERS: &[&str] = &[
    "error from server (internalerror)",
    "error from server (serviceunavailable)",
    "error from server (timeout)",
    "error from server (toomanyrequests)",
    "etcdserver: leader changed",
    "etcdserver: request timed out",
    "the server is currently unable to handle the request",
    "the server was unable to return a response in the time allotted",
];

/// True when a tool's stderr says the API server's certificate was not trusted.
pub(crate) fn is_untrusted(stderr: &str) -> bool {
    mentions_any(stderr, UNTRUSTED_MARKERS)
}

/// Whether `stderr` reports a server error that goes away by itself.
pub(crate) fn is_transient(stderr: &str) -> bool {
    mentions_any(stderr, TRANSIENT_MARKERS)
}

/// True when a tool's stderr says the API server could not be reached.
pub(crate) fn is_unreachable(stderr: &str) -> bool {
    mentions_any(stderr, UNREACHABLE_MARKERS)
}

/// Whether `stderr` contains any of `markers` (lower case), ignoring case.
fn mentions_any(stderr: &str, markers: &[&str]) -> bool {
    let lower = stderr.to_lowercase();
    markers.iter().any(|m| lower.contains(m))
}

/// Where `tool` is on PATH: an executable file of that name in one of PATH's
/// directories, as the shell would find it.
pub(crate) fn find(tool: Tool) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool.program()))
        .find(|file| {
            std::fs::metadata(file)
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// Fails naming every tool of `tools` that is not on PATH, with how to install
/// it, so a command that needs several stops before running the first.
pub(crate) fn require(tools: &[Tool]) -> anyhow::Result<()> {
    let missing: Vec<String> = tools
        .iter()
        .filter(|t| find(**t).is_none())
        .map(|&tool| ToolError::NotFound { tool }.to_string())
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(anyhow::anyhow!(missing.join("\n")))
    }
}

/// helm's environment variables that choose a cluster or identity other than
/// the kubeconfig's.
const HELM_CLUSTER_OVERRIDES: &[&str] = &[
    "HELM_KUBECONTEXT",
    "HELM_KUBEAPISERVER",
    "HELM_KUBETOKEN",
    "HELM_KUBEASUSER",
    "HELM_KUBEASGROUPS",
    "HELM_KUBECAFILE",
    "HELM_KUBEINSECURE_SKIP_TLS_VERIFY",
    "HELM_KUBETLS_SERVER_NAME",
];

/// Runs `tool args…`, feeding `stdin` when given; returns stdout on success.
pub(crate) fn run(tool: Tool, args: &[String], stdin: Option<&str>) -> Result<String, ToolError> {
    crate::verbose!("running {tool} {}", args.join(" "));
    let mut command = Command::new(tool.program());
    // The site's kubeconfig is the only way to the cluster: helm's own
    // environment overrides (another context, API server, token, user to
    // impersonate) would point a command at something else.
    for var in HELM_CLUSTER_OVERRIDES {
        command.env_remove(var);
    }
    let mut child = command
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| match source.kind() {
            ErrorKind::NotFound => ToolError::NotFound { tool },
            _ => ToolError::Io { tool, source },
        })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A tool that exits early closes the pipe; its exit status tells why.
        let _ = pipe.write_all(text.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|source| ToolError::Io { tool, source })?;
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    if is_untrusted(&stderr) {
        return Err(ToolError::Untrusted {
            tool,
            detail: detail(&stderr),
        });
    }
    if is_unreachable(&stderr) {
        return Err(ToolError::Unreachable {
            tool,
            detail: detail(&stderr),
        });
    }
    Err(ToolError::Failed {
        tool,
        command: args.join(" "),
        status: out.status.to_string(),
        stderr,
    })
}

/// kubectl's advice to skip validation when `apply` could not download the
/// OpenAPI schema: wrong when the API is unreachable, so never passed on.
const VALIDATE_HINT: &str =
    "; if you choose to ignore these errors, turn validation off with --validate=false";

/// The root cause of a connection failure, for the end of our message: the
/// last line, without kubectl's `error: ` prefix and validation hint.
fn detail(stderr: &str) -> String {
    let line = last_line(stderr);
    let line = line.replace(VALIDATE_HINT, "");
    line.strip_prefix("error: ").unwrap_or(&line).to_string()
}

/// The most specific line of a multi-line tool error (tools print the root
/// cause last).
fn last_line(text: &str) -> String {
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("no output")
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_server_errors_are_told_from_lasting_ones() {
        for transient in [
            "Error from server (InternalError): etcdserver: leader changed",
            "Error from server (ServiceUnavailable): the server is currently unable to handle the request (get nodes)",
            "Error from server (Timeout): the server was unable to return a response in the time allotted, but may still be processing the request (get nodes)",
            "Error from server (TooManyRequests): the server has received too many requests and has asked us to try again later",
        ] {
            assert!(is_transient(transient), "{transient}");
        }
        for lasting in [
            "Error from server (Forbidden): nodes is forbidden: User \"x\" cannot list resource \"nodes\"",
            "error: You must be logged in to the server (Unauthorized)",
            "Error from server (NotFound): the server could not find the requested resource",
        ] {
            assert!(!is_transient(lasting), "{lasting}");
        }
    }

    #[test]
    fn unreachable_is_recognised_in_kubectl_and_helm_wording() {
        assert!(is_unreachable(
            "The connection to the server 10.20.0.10:6443 was refused - did you specify the right host or port?\n\
             E1126 dial tcp 10.20.0.10:6443: connect: connection refused"
        ));
        assert!(is_unreachable(
            "Error: Kubernetes cluster unreachable: Get \"https://10.20.0.10:6443/version\": dial tcp: i/o timeout"
        ));
        assert!(!is_unreachable(
            "Error from server (NotFound): nodes \"cp9\" not found"
        ));
        assert!(!is_unreachable(
            "Error: UPGRADE FAILED: context deadline exceeded"
        ));
    }

    #[test]
    fn a_missing_program_is_not_found() {
        let err = Command::new("pxebuild-no-such-tool-here")
            .spawn()
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let msg = ToolError::NotFound { tool: Tool::Helm }.to_string();
        assert!(
            msg.starts_with("helm was not found on PATH: install Helm 3"),
            "{msg}"
        );
    }

    #[test]
    fn certificate_failures_are_told_apart_from_connection_failures() {
        let tls = "Unable to connect to the server: tls: failed to verify certificate: x509: \
                   certificate signed by unknown authority";
        assert!(
            is_untrusted(tls) && is_unreachable(tls),
            "hence checked first"
        );
        assert!(!is_untrusted(
            "Unable to connect to the server: net/http: TLS handshake timeout"
        ));
        assert!(!is_untrusted(REFUSED_APPLY));
    }

    const REFUSED_APPLY: &str = "error: error validating \"STDIN\": error validating data: failed \
        to download openapi: Get \"https://127.0.0.1:1/openapi/v2?timeout=15s\": dial tcp \
        127.0.0.1:1: connect: connection refused; if you choose to ignore these errors, turn \
        validation off with --validate=false";

    #[test]
    fn detail_drops_kubectls_prefix_and_validation_hint() {
        assert_eq!(
            detail(REFUSED_APPLY),
            "error validating \"STDIN\": error validating data: failed to download openapi: Get \
             \"https://127.0.0.1:1/openapi/v2?timeout=15s\": dial tcp 127.0.0.1:1: connect: \
             connection refused"
        );
    }

    #[test]
    fn last_line_picks_the_root_cause() {
        assert_eq!(last_line("first\nsecond\n\n"), "second");
        assert_eq!(last_line(""), "no output");
    }
}
