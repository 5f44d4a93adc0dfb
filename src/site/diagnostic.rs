//! One problem found in a site file, with where it is and how bad it is.
//!
//! Parsing and validation both produce `Diagnostic`s so an operator sees one
//! format for a typo and for a duplicate MAC:
//! `site.toml:23:7: error: node[2] (cp3).mac: "52:54:00:zz:00:13" is not a MAC address`.
use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Printed; fatal only under `--strict`.
    Warning,
    /// Stops the command before any work is done.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// Serialised as is for `check --format json` (docs/operations.md).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    /// The site file as the operator named it.
    pub file: String,
    /// Key path with node index and name, e.g. `node[2] (cp3).mac`; empty when
    /// the problem is the TOML syntax itself.
    pub path: String,
    /// 1-based line of the offending value (or of the nearest enclosing key).
    pub line: usize,
    /// 1-based column, counted in characters.
    pub column: usize,
    pub message: String,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Diagnostic {
            severity,
            file,
            path,
            line,
            column,
            message,
        } = self;
        write!(f, "{file}:{line}:{column}: {severity}: ")?;
        if !path.is_empty() {
            write!(f, "{path}: ")?;
        }
        f.write_str(message)
    }
}

/// Joins diagnostics one per line, in the order given.
pub(crate) fn render(diagnostics: &[Diagnostic]) -> String {
    let lines: Vec<String> = diagnostics.iter().map(ToString::to_string).collect();
    lines.join("\n")
}

/// "1 error", "3 warnings".
pub(crate) fn count(n: usize, what: &str) -> String {
    if n == 1 {
        format!("1 {what}")
    } else {
        format!("{n} {what}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_file_position_severity_path_and_message() {
        let d = Diagnostic {
            severity: Severity::Error,
            file: "site.toml".into(),
            path: "node[2] (cp3).mac".into(),
            line: 23,
            column: 7,
            message: "\"x\" is not a MAC address".into(),
        };
        assert_eq!(
            d.to_string(),
            "site.toml:23:7: error: node[2] (cp3).mac: \"x\" is not a MAC address"
        );
        let syntax = Diagnostic {
            path: String::new(),
            severity: Severity::Warning,
            ..d
        };
        assert_eq!(
            syntax.to_string(),
            "site.toml:23:7: warning: \"x\" is not a MAC address"
        );
        assert_eq!(count(1, "error"), "1 error");
        assert_eq!(count(2, "warning"), "2 warnings");
    }
}
