//! Renders the typed config as deterministic Ignition JSON.
//!
//! The config is built with `ignition_config::v3_3` types; for Butane 1.1.0 it
//! is re-read into `v3_4` types (the 3.4.0 schema is a superset for everything
//! pxebuild emits) so that 3.4.0 output also goes through the typed structs.
//! Nulls and empty lists/maps are dropped and keys come out sorted
//! (`serde_json::Map` is a `BTreeMap` here), so equal input gives equal bytes.
use ignition_config::{v3_3, v3_4};
use serde_json::Value;

use super::schema::Spec;

/// Compact JSON for `config` at the Ignition version `spec` maps to.
#[cfg(test)]
pub(crate) fn render(config: &v3_3::Config, spec: Spec) -> Result<String, String> {
    to_json(&render_value(config, spec)?)
}

/// Compact JSON text of a rendered value (keys sorted).
pub(super) fn to_json(value: &Value) -> Result<String, String> {
    serde_json::to_string(value).map_err(|e| format!("serialising config: {e}"))
}

/// The pruned JSON value of `config` at the Ignition version `spec` maps to.
pub(super) fn render_value(config: &v3_3::Config, spec: Spec) -> Result<Value, String> {
    let mut value = serde_json::to_value(config).map_err(|e| format!("serialising config: {e}"))?;
    if spec == Spec::V1_1 {
        value["ignition"]["version"] = Value::String(spec.ignition_version().into());
        let typed: v3_4::Config = serde_json::from_value(prune(value).unwrap_or(Value::Null))
            .map_err(|e| format!("building 3.4.0 config: {e}"))?;
        value = serde_json::to_value(&typed).map_err(|e| format!("serialising config: {e}"))?;
    }
    Ok(prune(value).unwrap_or_else(|| Value::Object(Default::default())))
}

/// Drops nulls and empty arrays/objects, bottom-up; `None` when `v` itself empties.
pub(super) fn prune(v: Value) -> Option<Value> {
    match v {
        Value::Null => None,
        Value::Array(items) => {
            let items: Vec<Value> = items.into_iter().filter_map(prune).collect();
            (!items.is_empty()).then_some(Value::Array(items))
        }
        Value::Object(map) => {
            let map: serde_json::Map<String, Value> = map
                .into_iter()
                .filter_map(|(k, v)| prune(v).map(|v| (k, v)))
                .collect();
            (!map.is_empty()).then_some(Value::Object(map))
        }
        other => Some(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prunes_recursively_and_sorts() {
        let v = serde_json::json!({"b": {"x": null, "y": []}, "a": [{}, 1], "c": ""});
        assert_eq!(
            serde_json::to_string(&prune(v).unwrap()).unwrap(),
            r#"{"a":[1],"c":""}"#
        );
    }

    #[test]
    fn default_configs_render_with_version_only() {
        let c = v3_3::Config::default();
        assert_eq!(
            render(&c, Spec::V1_0).unwrap(),
            r#"{"ignition":{"version":"3.3.0"}}"#
        );
        assert_eq!(
            render(&c, Spec::V1_1).unwrap(),
            r#"{"ignition":{"version":"3.4.0"}}"#
        );
    }
}
