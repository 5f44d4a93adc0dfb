//! One error voice: `anyhow` everywhere, plus a marker for "the input was bad"
//! so the top level can choose exit code 2 instead of 1.
use std::fmt;

/// Exit code when the work itself failed (network, disk, a tool that broke).
pub const EXIT_FAILED: u8 = 1;
/// Exit code for bad input or usage: the operator has to change something.
pub const EXIT_BAD_INPUT: u8 = 2;

/// Wraps a message that describes bad input (site file, template, arguments).
/// Attach it with `Err(BadInput::new(msg))?` or `.map_err(BadInput::wrap)`.
#[derive(Debug)]
pub struct BadInput(pub String);

impl BadInput {
    /// Builds the `anyhow::Error` directly: every caller returns it at once.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(msg: impl Into<String>) -> anyhow::Error {
        anyhow::Error::new(BadInput(msg.into()))
    }
}

impl fmt::Display for BadInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BadInput {}

/// Exit code for an error: 2 when any cause in the chain is `BadInput`, else 1.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if err.chain().any(|cause| cause.is::<BadInput>()) {
        EXIT_BAD_INPUT
    } else {
        EXIT_FAILED
    }
}

/// Prints the error chain once, as `error: outer: inner: root`.
pub fn report(err: &anyhow::Error) {
    let mut text = String::new();
    for (i, cause) in err.chain().enumerate() {
        if i > 0 {
            text.push_str(": ");
        }
        text.push_str(&cause.to_string());
    }
    eprintln!("error: {text}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;

    #[test]
    fn bad_input_anywhere_in_the_chain_gives_exit_2() {
        let err = Err::<(), _>(BadInput::new("bad mac"))
            .context("loading site.toml")
            .unwrap_err();
        assert_eq!(exit_code(&err), EXIT_BAD_INPUT);
        assert_eq!(exit_code(&anyhow::anyhow!("disk full")), EXIT_FAILED);
    }
}
