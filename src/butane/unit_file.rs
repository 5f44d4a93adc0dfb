//! The systemd unit file syntax check Ignition applies to unit and dropin
//! contents.
//!
//! Ignition (2.14, the `ignition-validate` tests run) reads contents with
//! go-systemd's unit deserializer and rejects the config when that fails; a
//! config pxebuild emits must never be rejected, so this module applies the
//! same rules:
//!
//! - text before the first `[section]` is skipped (except that a `[` starts a
//!   section and a `#`/`;` starts a comment line);
//! - a section header needs its closing `]`, and only blanks may follow it on
//!   its line;
//! - inside a section every non-blank, non-comment line must be `key=value`
//!   (a value may continue on the next line after a trailing `\`);
//! - no line may be 2048 bytes or longer (systemd's historical LINE_MAX).
//!   go-systemd checks this only while its read buffer holds 2048 bytes, so
//!   pxebuild is slightly stricter: it refuses every such line.
pub(super) const LINE_MAX: usize = 2048;

/// One `key=value` setting: its section and key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Setting {
    pub section: String,
    pub key: String,
}

/// Parses unit contents; the error names the 1-based line.
pub(super) fn parse(text: &str) -> Result<Vec<Setting>, String> {
    check_line_lengths(text)?;
    let mut p = Parser {
        text,
        pos: 0,
        section: None,
        out: Vec::new(),
    };
    p.run()?;
    Ok(p.out)
}

fn check_line_lengths(text: &str) -> Result<(), String> {
    for (n, line) in text.split(['\n', '\r']).enumerate() {
        if line.len() >= LINE_MAX {
            return Err(format!(
                "line {}: {} bytes long; systemd unit lines must be shorter than {LINE_MAX} bytes",
                n + 1,
                line.len()
            ));
        }
    }
    Ok(())
}

struct Parser<'t> {
    text: &'t str,
    pos: usize,
    section: Option<String>,
    out: Vec<Setting>,
}

impl Parser<'_> {
    fn line_no(&self, pos: usize) -> usize {
        self.text[..pos.min(self.text.len())].matches('\n').count() + 1
    }

    fn next_char(&mut self) -> Option<char> {
        let c = self.text[self.pos..].chars().next()?;
        self.pos += c.len_utf8();
        Some(c)
    }

    fn run(&mut self) -> Result<(), String> {
        while let Some(c) = self.next_char() {
            match c {
                '[' => self.section_header()?,
                '#' | ';' => self.skip_comment(),
                c if self.section.is_none() || c.is_whitespace() => {}
                _ => {
                    self.pos -= c.len_utf8();
                    self.setting()?;
                }
            }
        }
        Ok(())
    }

    /// Reads to the end of the line (consuming the newline); without `\r`/`\n`.
    fn rest_of_line(&mut self) -> &str {
        let rest = &self.text[self.pos..];
        let end = rest.find('\n').map_or(rest.len(), |i| i + 1);
        self.pos += end;
        rest[..end].trim_end_matches('\n').trim_end_matches('\r')
    }

    fn section_header(&mut self) -> Result<(), String> {
        let start = self.pos;
        let Some(len) = self.text[start..].find(']') else {
            return Err(format!(
                "line {}: section header without a closing \"]\"",
                self.line_no(start)
            ));
        };
        let name = self.text[start..start + len].to_string();
        self.pos = start + len + 1;
        let line = self.line_no(self.pos);
        let after = self.rest_of_line().trim().to_string();
        if !after.is_empty() {
            return Err(format!(
                "line {line}: unexpected text \"{after}\" after the section header [{name}]"
            ));
        }
        self.section = Some(name);
        Ok(())
    }

    /// A comment runs to the end of its line and on while lines end in `\`.
    fn skip_comment(&mut self) {
        loop {
            let at_end = self.pos >= self.text.len();
            let line = self.rest_of_line();
            let line = line.strip_suffix(' ').unwrap_or(line);
            if at_end || !line.ends_with('\\') {
                break;
            }
        }
    }

    fn setting(&mut self) -> Result<(), String> {
        let start = self.pos;
        let rest = &self.text[start..];
        let stop = rest.find(['=', '\n', '\r']);
        let Some(i) = stop.filter(|&i| rest.as_bytes()[i] == b'=') else {
            let line = rest.split(['\n', '\r']).next().unwrap_or("");
            return Err(format!(
                "line {}: \"{}\" is neither a section header, a comment nor a key=value setting",
                self.line_no(start),
                line.trim()
            ));
        };
        let key = rest[..i].trim().to_string();
        self.pos = start + i + 1;
        // The value: this line, and the next ones while a line ends in `\`.
        loop {
            let at_end = self.pos >= self.text.len();
            let line = self.rest_of_line();
            if at_end || line.trim().is_empty() || !line.ends_with('\\') {
                break;
            }
        }
        let section = self.section.clone().unwrap_or_default();
        self.out.push(Setting { section, key });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> Vec<(String, String)> {
        parse(text)
            .unwrap()
            .into_iter()
            .map(|s| (s.section, s.key))
            .collect()
    }

    #[test]
    fn ordinary_units_parse() {
        let unit = "# comment \\\n  continued comment\n[Unit]\nDescription=x\n\n[Service]\nExecStart=/bin/sh -c \\\n  'echo hi'\n; other comment\nType = oneshot\n[Install]\nWantedBy=multi-user.target";
        assert_eq!(
            keys(unit),
            [
                ("Unit".into(), "Description".into()),
                ("Service".into(), "ExecStart".into()),
                ("Service".into(), "Type".into()),
                ("Install".into(), "WantedBy".into()),
            ]
        );
        assert_eq!(keys(""), []);
        assert_eq!(keys("text before any section is skipped\n"), []);
    }

    #[test]
    fn malformed_units_are_refused_with_their_line() {
        assert_eq!(
            parse("[Unit]\nDescription=x\njunk\n").unwrap_err(),
            "line 3: \"junk\" is neither a section header, a comment nor a key=value setting"
        );
        assert_eq!(
            parse("[Service]\nExecStart").unwrap_err(),
            "line 2: \"ExecStart\" is neither a section header, a comment nor a key=value setting"
        );
        assert_eq!(
            parse("[Unit\nA=b\n").unwrap_err(),
            "line 1: section header without a closing \"]\""
        );
        assert_eq!(
            parse("[Unit] x\n").unwrap_err(),
            "line 1: unexpected text \"x\" after the section header [Unit]"
        );
        let long = format!("[Service]\nExecStart={}\n", "a".repeat(LINE_MAX));
        assert!(parse(&long)
            .unwrap_err()
            .starts_with("line 2: 2058 bytes long"));
    }
}
