//! Reading the Helm values files that decide which optional components (and
//! so which images) a chart deploys: the site's `payload/` copy when the site
//! directory has one, else the payload built into pxebuild, as the install
//! units and `install-argo` read them.
use std::path::{Path, PathBuf};

use anyhow::Result;
use serde_json::Value;

use crate::error::BadInput;

/// A values file, parsed, and how messages name it.
#[derive(Debug, Clone)]
pub(crate) struct Values {
    pub data: Value,
    pub name: PathBuf,
}

impl Values {
    /// Values from text (tests, and [`load`]).
    pub(crate) fn parse(text: &str, name: &Path) -> Result<Values> {
        let data: Value = serde_norway::from_str(text)
            .map_err(|e| BadInput::new(format!("{}: {e}", name.display())))?;
        // An empty file is YAML null: the chart's defaults throughout.
        let data = if data.is_null() {
            Value::Object(Default::default())
        } else {
            data
        };
        Ok(Values {
            data,
            name: name.to_path_buf(),
        })
    }

    /// No values: the chart's defaults throughout.
    pub(crate) fn defaults(name: &Path) -> Values {
        Values {
            data: Value::Object(Default::default()),
            name: name.to_path_buf(),
        }
    }

    /// The value at a dotted key (`hubble.relay.enabled`).
    pub(crate) fn get(&self, dotted: &str) -> Option<&Value> {
        dotted.split('.').try_fold(&self.data, |v, k| v.get(k))
    }

    /// A boolean at `dotted`, `default` when unset or null. Helm templates
    /// test truthiness, so `"false"` written as a string is false too.
    pub(crate) fn flag(&self, dotted: &str, default: bool) -> bool {
        match self.get(dotted) {
            None | Some(Value::Null) => default,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => !(s.is_empty() || s == "false"),
            Some(Value::Number(n)) => n.as_f64() != Some(0.0),
            Some(_) => true,
        }
    }

    /// A string at `dotted`, if one is set.
    pub(crate) fn text(&self, dotted: &str) -> Option<&str> {
        self.get(dotted)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_follow_helm_truthiness_and_defaults() {
        let v = Values::parse(
            "a: {on: true, off: false, s: \"false\", n: ~}\nempty:\n",
            Path::new("v.yaml"),
        )
        .unwrap();
        assert!(v.flag("a.on", false));
        assert!(!v.flag("a.off", true));
        assert!(!v.flag("a.s", true));
        assert!(v.flag("a.n", true), "null takes the default");
        assert!(!v.flag("a.missing", false));
        assert!(v.flag("missing.deeper", true));
        assert!(Values::parse("", Path::new("e.yaml"))
            .unwrap()
            .flag("x", true));
        let err = Values::parse("a: [", Path::new("bad.yaml")).unwrap_err();
        assert!(format!("{err:#}").starts_with("bad.yaml: "), "{err:#}");
    }
}
