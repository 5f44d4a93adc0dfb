//! `--explain`: why a step ran. Compares the step's key with the key it had the
//! last time it ran and names the fields that changed.
use serde_json::Value;

/// A one-line reason: "new step" or "changed: .key.template, .key.node.mac".
pub(crate) fn reason(previous: Option<&Value>, current: &Value) -> String {
    let Some(previous) = previous else {
        return "new step (never built with this cache)".to_string();
    };
    let mut changed = Vec::new();
    diff("", previous, current, &mut changed);
    if changed.is_empty() {
        // Same key but no record: the record or an output blob went missing.
        return "outputs missing from the cache".to_string();
    }
    const SHOWN: usize = 5;
    let more = changed.len().saturating_sub(SHOWN);
    let mut text = format!(
        "changed: {}",
        changed[..changed.len().min(SHOWN)].join(", ")
    );
    if more > 0 {
        text.push_str(&format!(" (+{more} more)"));
    }
    text
}

fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let sub = format!("{path}.{k}");
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => diff(&sub, va, vb, out),
                    _ => out.push(sub),
                }
            }
        }
        _ if a != b => out.push(if path.is_empty() {
            ".".into()
        } else {
            path.into()
        }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_the_changed_fields() {
        let a = json!({"node": {"mac": "aa", "ip": "1"}, "template": "x"});
        let b = json!({"node": {"mac": "bb", "ip": "1"}, "template": "x"});
        assert_eq!(reason(Some(&a), &b), "changed: .node.mac");
        assert!(reason(None, &b).starts_with("new step"));
        assert_eq!(reason(Some(&a), &a), "outputs missing from the cache");
    }
}
