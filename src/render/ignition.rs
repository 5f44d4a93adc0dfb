//! Butane → Ignition for rendered configs, through pxebuild's own translator
//! (`crate::butane`), then a structural check of the JSON against the
//! Ignition spec types (`ignition-config`): an unknown key is an error.
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
    check(&json).map_err(|e| anyhow!("{origin}: translated Ignition is invalid: {e:#}"))?;
    Ok(json)
}

/// Parses Ignition JSON against the spec types; unknown keys are errors.
pub fn check(json: &str) -> Result<()> {
    let (_, warnings) = ignition_config::Config::parse_str(json)?;
    if let Some(w) = warnings.first() {
        return Err(anyhow!("{w}"));
    }
    Ok(())
}
