//! `pxebuild wait`: polls `kubectl get nodes` until every node of the site is
//! Ready, printing a line whenever something changes, and on timeout names the
//! nodes that are missing or not Ready. An API that does not answer yet is
//! expected during bring-up and is retried, not fatal.
use std::collections::BTreeMap;
use std::fmt;
use std::time::Instant;

use anyhow::{bail, Result};

use super::kubectl::{self, NodeList};
use super::progress::Progress;
use super::tool::{self, Tool, ToolError};
use super::Cluster;
use crate::site::types::Duration as SiteDuration;
use crate::site::Site;

/// One site node as the cluster reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NodeState {
    /// No Node object of that name (the kubelet has not registered).
    NotRegistered,
    /// Registered, Ready condition not True: the reason kubelet gave.
    NotReady(String),
    Ready,
}

impl fmt::Display for NodeState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeState::NotRegistered => f.write_str("not registered"),
            NodeState::NotReady(why) if why.is_empty() => f.write_str("NotReady"),
            NodeState::NotReady(why) => write!(f, "NotReady: {why}"),
            NodeState::Ready => f.write_str("Ready"),
        }
    }
}

/// What one poll saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Observation {
    /// Every site node (in site order) with its state.
    Nodes(Vec<(String, NodeState)>),
    /// The API did not answer; the tool's last line.
    Unreachable(String),
}

/// The state of every site node (in site order) in a node list.
pub(crate) fn observe(site: &Site, nodes: &NodeList) -> Vec<(String, NodeState)> {
    site.file
        .nodes
        .iter()
        .map(|n| {
            let state = match nodes.get(&n.name) {
                None => NodeState::NotRegistered,
                Some(node) if node.is_ready() => NodeState::Ready,
                Some(node) => NodeState::NotReady(not_ready_reason(node)),
            };
            (n.name.clone(), state)
        })
        .collect()
}

fn not_ready_reason(node: &kubectl::Node) -> String {
    let Some(c) = node.ready_condition() else {
        return "no Ready condition reported yet".into();
    };
    let parts: Vec<&str> = [c.reason.as_deref(), c.message.as_deref()]
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect();
    parts.join(": ")
}

/// Remembers what was last reported, so only changes are printed.
#[derive(Debug, Default)]
pub(crate) struct Tracker {
    last: BTreeMap<String, NodeState>,
    order: Vec<String>,
    unreachable: Option<String>,
    seen_api: bool,
}

impl Tracker {
    /// Takes a new observation; returns the progress lines it warrants.
    pub(crate) fn update(&mut self, api: &str, obs: Observation) -> Vec<String> {
        match obs {
            Observation::Unreachable(detail) => {
                let changed = self.unreachable.as_deref() != Some(detail.as_str());
                self.unreachable = Some(detail.clone());
                if changed {
                    vec![format!(
                        "API at {api} not answering yet ({detail}); retrying"
                    )]
                } else {
                    Vec::new()
                }
            }
            Observation::Nodes(states) => self.update_nodes(api, states),
        }
    }

    fn update_nodes(&mut self, api: &str, states: Vec<(String, NodeState)>) -> Vec<String> {
        let mut lines = Vec::new();
        if self.unreachable.take().is_some() || !self.seen_api {
            lines.push(format!("API at {api} is answering"));
        }
        self.seen_api = true;
        self.order = states.iter().map(|(n, _)| n.clone()).collect();
        let total = states.len();
        let ready = states
            .iter()
            .filter(|(_, s)| *s == NodeState::Ready)
            .count();
        for (name, state) in states {
            if self.last.get(&name) != Some(&state) {
                lines.push(format!("{name}: {state} ({ready}/{total} Ready)"));
                self.last.insert(name, state);
            }
        }
        lines
    }

    /// One line for the live display: how many are Ready, who is still missing.
    pub(crate) fn summary(&self) -> String {
        if let Some(detail) = &self.unreachable {
            return format!("API not answering ({detail})");
        }
        let pending: Vec<&str> = self
            .order
            .iter()
            .filter(|n| self.last.get(*n) != Some(&NodeState::Ready))
            .map(String::as_str)
            .collect();
        let ready = self.order.len() - pending.len();
        format!(
            "{ready}/{} Ready; waiting for {}",
            self.order.len(),
            pending.join(" ")
        )
    }

    /// True once every site node was last seen Ready.
    pub(crate) fn all_ready(&self) -> bool {
        self.seen_api
            && self.unreachable.is_none()
            && self.last.values().all(|s| *s == NodeState::Ready)
    }

    /// The timeout error text: every node not Ready, with its last state.
    pub(crate) fn timeout_message(&self, timeout: SiteDuration, api: &str) -> String {
        if !self.seen_api {
            let why = self.unreachable.as_deref().unwrap_or("no answer");
            return format!(
                "timed out after {timeout}: the API at {api} never answered ({why}); \
                 no node could be confirmed Ready"
            );
        }
        let pending: Vec<String> = self
            .order
            .iter()
            .filter_map(|n| match &self.last[n] {
                NodeState::Ready => None,
                state => Some(format!("{n} ({state})")),
            })
            .collect();
        let mut msg = format!(
            "timed out after {timeout}: {} of {} nodes not Ready: {}",
            pending.len(),
            self.order.len(),
            pending.join(", ")
        );
        if let Some(detail) = &self.unreachable {
            msg.push_str(&format!("; the API stopped answering ({detail})"));
        }
        msg
    }
}

/// How long to wait and how often to look.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Options {
    pub timeout: SiteDuration,
    pub interval: SiteDuration,
}

/// Polls until every node is Ready or the timeout passes (error, exit 1).
pub(crate) fn run(cluster: &Cluster, site: &Site, opts: Options) -> Result<()> {
    let names: Vec<&str> = site.file.nodes.iter().map(|n| n.name.as_str()).collect();
    crate::info!(
        "waiting up to {} for {} nodes to be Ready: {}",
        opts.timeout,
        names.len(),
        names.join(" ")
    );
    let start = Instant::now();
    let mut tracker = Tracker::default();
    let progress = Progress::start();
    loop {
        let left = opts.timeout.as_std().saturating_sub(start.elapsed());
        let obs = poll(cluster, site, left.as_secs())?;
        for line in tracker.update(&cluster.api, obs) {
            progress.line(&format!("[{}] {line}", elapsed(start)));
        }
        progress.status(tracker.summary());
        if tracker.all_ready() {
            drop(progress);
            println!("all {} nodes are Ready", names.len());
            return Ok(());
        }
        let remaining = opts.timeout.as_std().saturating_sub(start.elapsed());
        if remaining.is_zero() {
            bail!(tracker.timeout_message(opts.timeout, &cluster.api));
        }
        std::thread::sleep(opts.interval.as_std().min(remaining));
    }
}

/// One `kubectl get nodes`; an unreachable API, or one that answers with a
/// passing server error (etcd changing leader as control planes join), is an
/// observation; any other failure (tool missing, access denied) ends the wait.
fn poll(cluster: &Cluster, site: &Site, secs_left: u64) -> Result<Observation> {
    let args = kubectl::get_nodes_within(&cluster.kubeconfig, secs_left);
    match tool::run(Tool::Kubectl, &args, None) {
        Ok(out) => Ok(Observation::Nodes(observe(site, &NodeList::parse(&out)?))),
        Err(ToolError::Unreachable { detail, .. }) => Ok(Observation::Unreachable(detail)),
        Err(ToolError::Failed { stderr, .. }) if tool::is_transient(&stderr) => {
            Ok(Observation::Unreachable(stderr.trim().to_string()))
        }
        Err(other) => Err(cluster.explain(other)),
    }
}

fn elapsed(start: Instant) -> String {
    let secs = start.elapsed().as_secs();
    format!("{:02}:{:02}", secs / 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    const EXAMPLE: &str = include_str!("../../site.toml");
    const API: &str = "https://10.20.0.10:6443";

    fn site() -> Site {
        Site::from_text(EXAMPLE, Path::new("site.toml")).unwrap()
    }

    fn list(ready: &[&str], not_ready: &[&str]) -> NodeList {
        let item = |n: &&str, status: &str| {
            format!(
                r#"{{"metadata":{{"name":"{n}"}},"status":{{"conditions":[{{"type":"Ready","status":"{status}","reason":"KubeletNotReady","message":"cni not ready"}}]}}}}"#
            )
        };
        let items: Vec<String> = ready
            .iter()
            .map(|n| item(n, "True"))
            .chain(not_ready.iter().map(|n| item(n, "False")))
            .collect();
        NodeList::parse(&format!("{{\"items\":[{}]}}", items.join(","))).unwrap()
    }

    #[test]
    fn observe_follows_site_order() {
        let states = observe(&site(), &list(&["cp1"], &["cp2"]));
        let names: Vec<&str> = states.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["cp1", "cp2", "cp3", "worker1", "worker2"]);
        assert_eq!(states[0].1, NodeState::Ready);
        assert_eq!(
            states[1].1,
            NodeState::NotReady("KubeletNotReady: cni not ready".into())
        );
        assert_eq!(states[2].1, NodeState::NotRegistered);
    }

    #[test]
    fn tracker_prints_changes_only_and_names_pending_nodes() {
        let site = site();
        let mut t = Tracker::default();
        let lines = t.update(API, Observation::Unreachable("connection refused".into()));
        assert_eq!(
            lines,
            [format!(
                "API at {API} not answering yet (connection refused); retrying"
            )]
        );
        assert!(t
            .update(API, Observation::Unreachable("connection refused".into()))
            .is_empty());
        let timeout = "10m".parse().unwrap();
        assert_eq!(
            t.timeout_message(timeout, API),
            format!("timed out after 10m: the API at {API} never answered (connection refused); no node could be confirmed Ready")
        );
        let obs = Observation::Nodes(observe(&site, &list(&["cp1"], &["cp2"])));
        let lines = t.update(API, obs.clone());
        assert_eq!(lines.len(), 6, "{lines:?}");
        assert_eq!(lines[1], "cp1: Ready (1/5 Ready)");
        assert!(t.update(API, obs).is_empty());
        let all = ["cp1", "cp2", "cp3", "worker1"];
        let lines = t.update(API, Observation::Nodes(observe(&site, &list(&all, &[]))));
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(!t.all_ready());
        assert_eq!(
            t.timeout_message(timeout, API),
            "timed out after 10m: 1 of 5 nodes not Ready: worker2 (not registered)"
        );
        assert_eq!(t.summary(), "4/5 Ready; waiting for worker2");
        let all = ["cp1", "cp2", "cp3", "worker1", "worker2"];
        t.update(API, Observation::Nodes(observe(&site, &list(&all, &[]))));
        assert!(t.all_ready());
    }
}
