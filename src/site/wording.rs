//! serde's words for a site problem, put in the operator's: a misspelt key
//! gets the key it was probably meant to be ("did you mean"), and a value
//! of the wrong type names the type in words ("a port number, 1-65535", not
//! "u16"). Pure text in, text out: strict.rs decides where it applies.

/// The unknown key and the known keys of an "unknown field `k`, expected
/// one of `a`, `b`" message (toml's wording).
pub(super) fn unknown_key(message: &str) -> Option<(&str, Vec<&str>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (key, rest) = rest.split_once('`')?;
    let known = rest
        .strip_prefix(", expected one of ")
        .or_else(|| rest.strip_prefix(", expected "))
        .map(|list| {
            list.split(", ")
                .filter_map(|k| k.strip_prefix('`')?.strip_suffix('`'))
                .collect()
        })
        .unwrap_or_default();
    Some((key, known))
}

/// The known key `typo` most likely stands for: a few edits away, relative
/// to its length (`dns_domian` → `dns_domain`, `update` → `updates`).
pub(super) fn closest<'k>(typo: &str, known: &[&'k str]) -> Option<&'k str> {
    let typo = typo.to_ascii_lowercase();
    known
        .iter()
        .map(|k| (edit_distance(&typo, &k.to_ascii_lowercase()), *k))
        .filter(|(d, k)| *d <= (k.len().max(typo.len()) / 3).max(1))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k)
}

/// Levenshtein distance, with a swap of two neighbours counted as one edit
/// (the commonest typo: `verison`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// serde's "unknown variant `x`, expected `a` or `b`" (a key with a fixed set
/// of values, such as `images.mode`), in the words the other value checks
/// use: `"x" is not one of "a", "b"`.
pub(super) fn unknown_variant_message(message: &str) -> String {
    let parsed = message
        .strip_prefix("unknown variant `")
        .and_then(|rest| rest.split_once("`, expected "));
    let Some((value, expected)) = parsed else {
        return message.to_string();
    };
    let allowed: Vec<String> = expected
        .trim_start_matches("one of ")
        .split([',', ' '])
        .filter_map(|w| w.strip_prefix('`')?.strip_suffix('`'))
        .map(|w| format!("{w:?}"))
        .collect();
    if allowed.is_empty() {
        return message.to_string();
    }
    format!("{value:?} is not one of {}", allowed.join(", "))
}

/// The message for an unknown key: with the key it was probably meant to
/// be, else with the keys that are allowed there (toml's own list).
pub(super) fn unknown_key_message(message: &str) -> String {
    match unknown_key(message) {
        Some((key, known)) => match closest(key, &known) {
            Some(meant) => format!("unknown key `{key}`; did you mean `{meant}`?"),
            None if known.is_empty() => format!("unknown key `{key}`; this table takes no keys"),
            None => format!(
                "unknown key `{key}`; the keys here are {}",
                known
                    .iter()
                    .map(|k| format!("`{k}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        },
        None => message.to_string(),
    }
}

/// "invalid type: string \"69\", expected u16" for key `tftp_port` as
/// "expected a port number, 1-65535, found the string \"69\" (write numbers
/// without quotes)"; other messages unchanged.
pub(super) fn type_message(message: &str, key: &str) -> String {
    let parsed = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "));
    let Some((found, expected)) = parsed.and_then(|m| m.rsplit_once(", expected ")) else {
        return message.to_string();
    };
    let want = expected_in_words(expected, key);
    let got = found_in_words(found);
    let hint = if found.starts_with("string ") && is_number(expected) {
        " (write numbers without quotes)"
    } else if found.starts_with("integer ") && expected == "a string" {
        " (put it in quotes)"
    } else {
        ""
    };
    format!("expected {want}, found {got}{hint}")
}

fn is_number(expected: &str) -> bool {
    matches!(
        expected,
        "u8" | "u16" | "u32" | "u64" | "usize" | "i8" | "i16" | "i32" | "i64" | "f32" | "f64"
    )
}

fn expected_in_words(expected: &str, key: &str) -> String {
    let words = match expected {
        "u16" if key.ends_with("port") => "a port number, 1-65535",
        "u8" => "a whole number, 0-255",
        "u16" => "a whole number, 0-65535",
        "u32" => "a whole number, 0-4294967295",
        "u64" | "usize" => "a whole number, 0 or more",
        "i8" | "i16" | "i32" | "i64" => "a whole number",
        "f32" | "f64" => "a number",
        "a boolean" => "true or false",
        "a sequence" => "a list, e.g. [\"a\", \"b\"]",
        "a map" => "a table",
        other if other.starts_with("struct ") => "a table",
        other => other,
    };
    words.to_string()
}

fn found_in_words(found: &str) -> String {
    let value = |prefix: &str| found.strip_prefix(prefix).map(|v| v.trim_matches('`'));
    if let Some(v) = value("string ") {
        return format!("the string {v}");
    }
    if let Some(v) = value("integer ") {
        return format!("the number {v}");
    }
    if let Some(v) = value("floating point ") {
        return format!("the number {v}");
    }
    if let Some(v) = value("boolean ") {
        return v.to_string();
    }
    match found {
        "sequence" => "a list".into(),
        "map" => "a table".into(),
        other => other.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_key_gets_the_one_it_stands_for() {
        let m = "unknown field `kubernetes_verison`, expected one of `name`, `kubernetes_version`, `endpoint`";
        assert_eq!(
            unknown_key_message(m),
            "unknown key `kubernetes_verison`; did you mean `kubernetes_version`?"
        );
        let m = "unknown field `update`, expected one of `cluster`, `updates`, `node`";
        assert_eq!(
            unknown_key_message(m),
            "unknown key `update`; did you mean `updates`?"
        );
        let m = "unknown field `colour`, expected one of `name`, `mac`";
        assert_eq!(
            unknown_key_message(m),
            "unknown key `colour`; the keys here are `name`, `mac`"
        );
        assert_eq!(closest("IP", &["ip", "mac"]), Some("ip"));
        assert_eq!(closest("x", &["ip", "mac"]), None);
    }

    #[test]
    fn an_unknown_variant_lists_the_values_allowed() {
        assert_eq!(
            unknown_variant_message("unknown variant `mirror`, expected `pull` or `serve`"),
            "\"mirror\" is not one of \"pull\", \"serve\""
        );
        assert_eq!(
            unknown_variant_message("unknown variant `x`, expected one of `a`, `b`, `c`"),
            "\"x\" is not one of \"a\", \"b\", \"c\""
        );
        assert_eq!(
            unknown_variant_message("unknown variant"),
            "unknown variant"
        );
    }

    #[test]
    fn types_are_named_in_words() {
        assert_eq!(
            type_message("invalid type: string \"69\", expected u16", "tftp_port"),
            "expected a port number, 1-65535, found the string \"69\" (write numbers without quotes)"
        );
        assert_eq!(
            type_message("invalid value: integer `70000`, expected u16", "http_port"),
            "expected a port number, 1-65535, found the number 70000"
        );
        assert_eq!(
            type_message("invalid type: integer `12`, expected a string", "ip"),
            "expected a string, found the number 12 (put it in quotes)"
        );
        assert_eq!(
            type_message(
                "invalid type: string \"yes\", expected a boolean",
                "wireguard"
            ),
            "expected true or false, found the string \"yes\""
        );
        assert_eq!(type_message("something else", "k"), "something else");
    }
}
