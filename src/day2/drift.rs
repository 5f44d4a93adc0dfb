//! Compares the Cilium release the first control plane installed (`cilium
//! install`, which adds values it detects itself) with
//! `payload/core/cilium/values.yaml`, the file Argo CD will render Cilium from.
//! A value only the running release has would be changed by Argo CD's first
//! sync, on every agent at once, so install-argo stops and names each one
//! (unless told they are meant).
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde_json::Value;

use super::helm;
use super::Cluster;
use crate::site::images::CILIUM_VALUES;

/// Every leaf of a values tree as `a.b.c` → value (lists are leaves).
pub(crate) fn flatten(value: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    walk(value, String::new(), &mut out);
    out
}

fn walk(value: &Value, prefix: String, out: &mut BTreeMap<String, Value>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                walk(v, key, out);
            }
        }
        _ if !prefix.is_empty() => {
            out.insert(prefix, value.clone());
        }
        _ => {}
    }
}

/// One line per value of the running release that the file lacks or sets differently.
pub(crate) fn compare(installed: &Value, file: &Value) -> Vec<String> {
    let wanted = flatten(file);
    flatten(installed)
        .into_iter()
        .filter_map(|(key, have)| match wanted.get(&key) {
            None => Some(format!(
                "the running Cilium has {key}={have}, which payload/{CILIUM_VALUES} does not \
                 set; Argo CD's first sync would change it to the chart's default: add it to the file"
            )),
            Some(want) if *want != have => Some(format!(
                "the running Cilium has {key}={have}, payload/{CILIUM_VALUES} sets {want}; \
                 Argo CD's first sync will change it"
            )),
            Some(_) => None,
        })
        .collect()
}

/// Reads the values file as JSON-shaped data.
pub(crate) fn load_values(path: &Path) -> Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let yaml: serde_norway::Value =
        serde_norway::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    serde_json::to_value(yaml).with_context(|| format!("converting {}", path.display()))
}

/// One line per difference between the running Cilium release and
/// payload/'s values (see [`compare`]).
pub(crate) fn differences(cluster: &Cluster, payload_dir: &Path) -> Result<Vec<String>> {
    let file = load_values(&payload_dir.join(CILIUM_VALUES))?;
    let args = helm::get_values(&cluster.kubeconfig, "cilium", "kube-system");
    let out = cluster.helm(&args, None)?;
    let installed: Value =
        serde_json::from_str(&out).context("reading `helm get values` output")?;
    Ok(compare(&installed, &file))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flatten_names_every_leaf() {
        let v = json!({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": "x", "f": {}});
        let keys: Vec<String> = flatten(&v).into_keys().collect();
        assert_eq!(keys, ["a.b", "a.c.d", "e", "f"]);
    }

    #[test]
    fn compare_reports_missing_and_different_values_only() {
        let installed = json!({"cluster": {"name": "kubernetes"}, "kubeProxyReplacement": true,
                               "operator": {"replicas": 1}});
        let file = json!({"kubeProxyReplacement": true, "operator": {"replicas": 2},
                          "ipam": {"mode": "kubernetes"}});
        assert_eq!(
            compare(&installed, &file),
            [
                "the running Cilium has cluster.name=\"kubernetes\", which payload/core/cilium/values.yaml \
                 does not set; Argo CD's first sync would change it to the chart's default: add it to the file",
                "the running Cilium has operator.replicas=1, payload/core/cilium/values.yaml sets 2; \
                 Argo CD's first sync will change it",
            ]
        );
    }
}
