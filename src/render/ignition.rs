//! Butane → Ignition for rendered configs, through pxebuild's own translator
//! (`crate::butane`), then a check of the JSON: structurally against the
//! Ignition spec types (`ignition-config`; an unknown key is an error) and
//! semantically with Ignition's own validation rules (`butane::verify`), so
//! that a build never publishes a config Ignition would reject.
use anyhow::{anyhow, Result};

use crate::butane;
use crate::error::BadInput;

/// Goes into step keys: a new translator may translate differently.
pub const TRANSLATOR_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Translates `yaml` (named `origin` in messages) to Ignition JSON.
/// Warnings are printed, or with `strict` fail the translation.
pub fn translate(yaml: &str, origin: &str, strict: bool) -> Result<String> {
    let opts = butane::Options {
        files_dir: None,
        strict,
    };
    let translation = butane::translate(yaml, &opts).map_err(|diags| {
        let text: Vec<String> = diags.iter().map(|d| format!("{origin}: {d}")).collect();
        BadInput::new(format!("translating rendered Butane:\n{}", text.join("\n")))
    })?;
    for warning in &translation.warnings {
        if strict {
            return Err(BadInput::new(format!("{origin}: {warning}")));
        }
        crate::warn!("{origin}: {warning}");
    }
    let json = translation.json;
    // The translator already applied Ignition's validation rules (and reported
    // their findings against the Butane source): only the spec types remain.
    check_spec_types(&json)
        .map_err(|e| anyhow!("{origin}: translated Ignition is invalid: {e:#}"))?;
    Ok(json)
}

/// Parses Ignition JSON against the spec types (unknown keys are errors).
fn check_spec_types(json: &str) -> Result<()> {
    let (_, warnings) = ignition_config::Config::parse_str(json)?;
    match warnings.first() {
        Some(w) => Err(anyhow!("{w}")),
        None => Ok(()),
    }
}

/// Parses Ignition JSON against the spec types (unknown keys are errors),
/// then applies Ignition's validation; its errors fail, its warnings do not
/// (the translator has already reported them against the Butane source).
pub fn check(json: &str) -> Result<()> {
    check_spec_types(json)?;
    let value: serde_json::Value = serde_json::from_str(json)?;
    let errors: Vec<String> = butane::verify::check(&value)
        .into_iter()
        .filter(|f| !f.warning)
        .map(|f| format!("{}: {}", f.path, f.message))
        .collect();
    if !errors.is_empty() {
        return Err(anyhow!("{}", errors.join("; ")));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_applies_ignitions_validation() {
        check(r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/a"}]}}"#).unwrap();
        let dirty = r#"{"ignition":{"version":"3.3.0"},"storage":{"files":[{"path":"/a/"}]}}"#;
        assert_eq!(
            check(dirty).unwrap_err().to_string(),
            "storage.files.0.path: path \"/a/\" is not fully simplified (write \"/a\")"
        );
        let unit = r#"{"ignition":{"version":"3.4.0"},"systemd":{"units":[{"name":"a.service","contents":"[Unit]\nx\n"}]}}"#;
        assert!(check(unit)
            .unwrap_err()
            .to_string()
            .contains("invalid unit contents: line 2"));
        let unknown = r#"{"ignition":{"version":"3.3.0"},"storage":{"filez":[]}}"#;
        assert!(check(unknown).is_err());
    }
}
