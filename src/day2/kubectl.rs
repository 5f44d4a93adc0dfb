//! kubectl argument vectors and the slice of the Node API that day-2 commands
//! read. Pure: tests assert the exact commands.
use std::path::Path;

use anyhow::{Context, Result};
use serde::Deserialize;

use super::kubeconfig_args;

/// The taint kubeadm puts on control-plane nodes.
pub(crate) const CONTROL_PLANE_TAINT_KEY: &str = "node-role.kubernetes.io/control-plane";

/// How long one kubectl request may take, so an unreachable API fails a
/// command (or one `wait` poll) instead of hanging.
pub(crate) const REQUEST_TIMEOUT: &str = "15s";
const REQUEST_TIMEOUT_SECS: u64 = 15;

/// `kubectl get --raw /api/v1/nodes`: the NodeList as JSON in one request.
/// `get nodes` would first discover the API's resources, and kubectl retries
/// discovery several times, each within its own request timeout: against an
/// API that accepts connections and never answers, a minute instead of 15 s.
pub(crate) fn get_nodes(kubeconfig: &Path) -> Vec<String> {
    with_kubeconfig(kubeconfig, &["get", "--raw", "/api/v1/nodes"])
}

/// [`get_nodes`] with the request cut at `secs` seconds (at most the usual
/// limit): a wait's last poll must not outlast the wait.
pub(crate) fn get_nodes_within(kubeconfig: &Path, secs: u64) -> Vec<String> {
    let limit = REQUEST_TIMEOUT_SECS.min(secs.max(1));
    let mut args = get_nodes(kubeconfig);
    for arg in &mut args {
        if arg.starts_with("--request-timeout=") {
            *arg = format!("--request-timeout={limit}s");
        }
    }
    args
}

/// `kubectl taint nodes NODE node-role.kubernetes.io/control-plane:NoSchedule-`.
pub(crate) fn remove_control_plane_taint(kubeconfig: &Path, node: &str) -> Vec<String> {
    let taint = format!("{CONTROL_PLANE_TAINT_KEY}:NoSchedule-");
    with_kubeconfig(kubeconfig, &["taint", "nodes", node, &taint])
}

/// `kubectl apply -f -` (the manifest comes on stdin).
pub(crate) fn apply_stdin(kubeconfig: &Path) -> Vec<String> {
    with_kubeconfig(kubeconfig, &["apply", "-f", "-"])
}

/// `kubectl create -f -` (the manifest comes on stdin).
pub(crate) fn create_stdin(kubeconfig: &Path) -> Vec<String> {
    with_kubeconfig(kubeconfig, &["create", "-f", "-"])
}

/// `kubectl replace -f -`: the object becomes exactly the manifest (an
/// apply would keep fields the manifest no longer has).
pub(crate) fn replace_stdin(kubeconfig: &Path) -> Vec<String> {
    with_kubeconfig(kubeconfig, &["replace", "-f", "-"])
}

/// The bootstrap token Secrets of the cluster, as JSON.
pub(crate) fn get_bootstrap_tokens(kubeconfig: &Path) -> Vec<String> {
    with_kubeconfig(
        kubeconfig,
        &[
            "get",
            "secrets",
            "-n",
            "kube-system",
            "--field-selector",
            "type=bootstrap.kubernetes.io/token",
            "-o",
            "json",
        ],
    )
}

/// `kubectl delete secret -n kube-system NAME…`.
pub(crate) fn delete_secrets(kubeconfig: &Path, names: &[String]) -> Vec<String> {
    let mut args = vec!["delete", "secret", "-n", "kube-system"];
    args.extend(names.iter().map(String::as_str));
    with_kubeconfig(kubeconfig, &args)
}

fn with_kubeconfig(kubeconfig: &Path, args: &[&str]) -> Vec<String> {
    let mut all = kubeconfig_args(kubeconfig);
    all.push(format!("--request-timeout={REQUEST_TIMEOUT}"));
    all.extend(args.iter().map(|a| a.to_string()));
    all
}

/// The API's NodeList (`get --raw /api/v1/nodes`), reduced to what day-2
/// commands need.
#[derive(Debug, Deserialize)]
pub(crate) struct NodeList {
    #[serde(default)]
    pub items: Vec<Node>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Node {
    pub metadata: Metadata,
    #[serde(default)]
    pub spec: NodeSpec,
    #[serde(default)]
    pub status: NodeStatus,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Metadata {
    pub name: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct NodeSpec {
    #[serde(default)]
    pub taints: Vec<Taint>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Taint {
    pub key: String,
    pub effect: String,
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct NodeStatus {
    #[serde(default)]
    pub conditions: Vec<Condition>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct Condition {
    #[serde(rename = "type")]
    pub kind: String,
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

impl NodeList {
    /// Parses kubectl's JSON output.
    pub(crate) fn parse(json: &str) -> Result<NodeList> {
        serde_json::from_str(json).context("reading kubectl's node list")
    }

    pub(crate) fn get(&self, name: &str) -> Option<&Node> {
        self.items.iter().find(|n| n.metadata.name == name)
    }
}

impl Node {
    /// The Ready condition, when the kubelet has reported one.
    pub(crate) fn ready_condition(&self) -> Option<&Condition> {
        self.status.conditions.iter().find(|c| c.kind == "Ready")
    }

    pub(crate) fn is_ready(&self) -> bool {
        self.ready_condition().is_some_and(|c| c.status == "True")
    }

    /// True when the node carries kubeadm's control-plane NoSchedule taint.
    pub(crate) fn has_control_plane_taint(&self) -> bool {
        self.spec
            .taints
            .iter()
            .any(|t| t.key == CONTROL_PLANE_TAINT_KEY && t.effect == "NoSchedule")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KC: &str = "/site/secrets/kubeconfig";

    #[test]
    fn a_poll_near_the_deadline_asks_for_less_time() {
        let kc = Path::new(KC);
        assert_eq!(get_nodes_within(kc, 60), get_nodes(kc));
        assert!(get_nodes_within(kc, 4).contains(&"--request-timeout=4s".to_string()));
        assert!(get_nodes_within(kc, 0).contains(&"--request-timeout=1s".to_string()));
    }

    #[test]
    fn commands_are_exact() {
        let kc = Path::new(KC);
        assert_eq!(
            get_nodes(kc),
            [
                "--kubeconfig",
                KC,
                "--request-timeout=15s",
                "get",
                "--raw",
                "/api/v1/nodes"
            ]
        );
        assert_eq!(
            remove_control_plane_taint(kc, "cp1"),
            [
                "--kubeconfig",
                KC,
                "--request-timeout=15s",
                "taint",
                "nodes",
                "cp1",
                "node-role.kubernetes.io/control-plane:NoSchedule-"
            ]
        );
        assert_eq!(
            apply_stdin(kc),
            [
                "--kubeconfig",
                KC,
                "--request-timeout=15s",
                "apply",
                "-f",
                "-"
            ]
        );
    }

    #[test]
    fn node_list_reads_readiness_and_taints() {
        let json = r#"{"apiVersion":"v1","kind":"List","items":[
          {"metadata":{"name":"cp1"},
           "spec":{"taints":[{"key":"node-role.kubernetes.io/control-plane","effect":"NoSchedule"}]},
           "status":{"conditions":[{"type":"MemoryPressure","status":"False"},
                                   {"type":"Ready","status":"True","reason":"KubeletReady"}]}},
          {"metadata":{"name":"worker1"},"spec":{},
           "status":{"conditions":[{"type":"Ready","status":"False","reason":"KubeletNotReady",
                                    "message":"container runtime network not ready"}]}},
          {"metadata":{"name":"worker2"}}]}"#;
        let list = NodeList::parse(json).unwrap();
        let cp1 = list.get("cp1").unwrap();
        assert!(cp1.is_ready() && cp1.has_control_plane_taint());
        let w1 = list.get("worker1").unwrap();
        assert!(!w1.is_ready() && !w1.has_control_plane_taint());
        assert!(list.get("worker2").unwrap().ready_condition().is_none());
        assert!(list.get("cp9").is_none());
        assert!(NodeList::parse("not json").is_err());
    }
}
