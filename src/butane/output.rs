//! Serialisation of the typed config: deterministic, compact JSON.
//!
//! The typed structs serialise absent fields as `null` and empty lists as
//! `[]`; both are stripped (recursively, also empty objects left behind) so
//! the output only says what the input said. Key order is the struct order
//! of `ignition-config`, so equal input gives byte-identical output. Butane
//! 1.1.0 output is converted into the typed v3_4 structs, a superset of
//! v3_3, so it too is produced through typed Ignition structs.
use ignition_config::{v3_3, v3_4};
use serde_json::Value;

use super::schema::Version;

pub fn serialise(config: v3_3::Config, version: Version) -> Result<String, String> {
    let mut value =
        serde_json::to_value(&config).map_err(|e| format!("serialising Ignition: {e}"))?;
    if version == Version::V1_1 {
        value["ignition"]["version"] = Value::String(version.ignition_version().to_string());
        let typed: v3_4::Config = serde_json::from_value(value)
            .map_err(|e| format!("converting to Ignition 3.4.0: {e}"))?;
        value = serde_json::to_value(&typed).map_err(|e| format!("serialising Ignition: {e}"))?;
    }
    strip(&mut value);
    serde_json::to_string(&value).map_err(|e| format!("serialising Ignition: {e}"))
}

/// Removes nulls, empty arrays and empty objects, innermost first. Returns
/// whether `value` itself is now empty.
fn strip(value: &mut Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => {
            items.retain_mut(|v| !strip(v));
            items.is_empty()
        }
        Value::Object(map) => {
            map.retain(|_, v| !strip(v));
            map.is_empty()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_empty_values() {
        let mut v =
            serde_json::json!({"a": null, "b": [], "c": {"d": null}, "e": [1, null], "f": ""});
        strip(&mut v);
        assert_eq!(v, serde_json::json!({"e": [1], "f": ""}));
    }
}
