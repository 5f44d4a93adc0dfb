//! Conditional GET and HEAD (RFC 9110 13): `If-Match`, `If-Unmodified-Since`,
//! `If-None-Match`, `If-Modified-Since` and `If-Range`, evaluated in the
//! order 13.2.2 gives. Pure. A caching proxy or a rack-local mirror in front of
//! the boot server revalidates with these, and a client resuming a download
//! with `Range` + `If-Range` must not be handed bytes of a newer file when a
//! build has swapped dist/ in between.
use crate::clock;

/// What the server holds: the file's validators.
#[derive(Debug, Clone, Copy)]
pub struct Validators<'a> {
    /// A strong entity tag with its quotes: `"5d425b-2e-6b08c2b2"`.
    pub etag: &'a str,
    /// The Last-Modified time, seconds since the epoch.
    pub modified: i64,
}

/// The request's precondition header fields, as sent (repeated fields joined
/// with ", ").
#[derive(Debug, Clone, Copy, Default)]
pub struct Conditions<'a> {
    pub if_match: Option<&'a str>,
    pub if_none_match: Option<&'a str>,
    pub if_modified_since: Option<&'a str>,
    pub if_unmodified_since: Option<&'a str>,
    pub if_range: Option<&'a str>,
}

/// How to answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 200 or 206: send the file; `use_range` is false when `If-Range` did not
    /// match, so that any `Range` is ignored and the whole file goes out.
    Send { use_range: bool },
    /// 304: the client's copy is current.
    NotModified,
    /// 412: an `If-Match` or `If-Unmodified-Since` condition is false.
    PreconditionFailed,
}

/// Evaluates the conditions of a GET or HEAD against the file's validators.
/// Dates that are not valid HTTP-dates are ignored, as the RFC says.
pub fn evaluate(conditions: &Conditions, file: &Validators, now_secs: i64) -> Outcome {
    let date = |text: &str| clock::parse_http_date(text, now_secs);
    if let Some(field) = conditions.if_match {
        if !any_tag_matches(field, file.etag, Comparison::Strong) {
            return Outcome::PreconditionFailed;
        }
    } else if let Some(since) = conditions.if_unmodified_since.and_then(date) {
        if file.modified > since {
            return Outcome::PreconditionFailed;
        }
    }
    if let Some(field) = conditions.if_none_match {
        if any_tag_matches(field, file.etag, Comparison::Weak) {
            return Outcome::NotModified;
        }
    } else if let Some(since) = conditions.if_modified_since.and_then(date) {
        if file.modified <= since {
            return Outcome::NotModified;
        }
    }
    let use_range = match conditions.if_range.map(str::trim) {
        None => true,
        // An entity tag (strong comparison only: a weak tag never matches).
        Some(tag) if tag.starts_with('"') || tag.starts_with("W/") => tag == file.etag,
        // A date must be exactly the Last-Modified time.
        Some(text) => date(text) == Some(file.modified),
    };
    Outcome::Send { use_range }
}

#[derive(Clone, Copy)]
enum Comparison {
    /// Both tags strong and the same (If-Match, If-Range).
    Strong,
    /// The same opaque tag, weak or not (If-None-Match).
    Weak,
}

/// Whether `field` (`*` or a list of entity tags) names `etag`. A list that
/// does not parse names nothing.
fn any_tag_matches(field: &str, etag: &str, comparison: Comparison) -> bool {
    if field.trim() == "*" {
        return true;
    }
    let Some(tags) = entity_tags(field) else {
        return false;
    };
    tags.into_iter().any(|(weak, tag)| {
        tag == etag
            && match comparison {
                Comparison::Strong => !weak,
                Comparison::Weak => true,
            }
    })
}

/// Splits `W/"a", "b,c"` into `[(true, "\"a\""), (false, "\"b,c\"")]`: commas
/// may stand inside a tag, so the list is read tag by tag. `None` when any
/// part is not an entity tag.
fn entity_tags(field: &str) -> Option<Vec<(bool, &str)>> {
    let mut tags = Vec::new();
    let mut rest = field.trim_start_matches([' ', '\t', ',']);
    while !rest.is_empty() {
        let weak = rest.starts_with("W/");
        if weak {
            rest = &rest[2..];
        }
        let body = rest.strip_prefix('"')?;
        let close = body.find('"')?;
        let (tag, after) = rest.split_at(close + 2);
        tags.push((weak, tag));
        let after = after.trim_start_matches([' ', '\t']);
        rest = match after.strip_prefix(',') {
            Some(more) => more.trim_start_matches([' ', '\t', ',']),
            None if after.is_empty() => after,
            None => return None,
        };
    }
    Some(tags)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Outcome::*;

    const NOW: i64 = 1_795_730_400; // Thu, 26 Nov 2026 22:00:00 GMT
    const FILE: Validators = Validators {
        etag: "\"5d-2e-6b\"",
        modified: 784_111_777, // Sun, 06 Nov 1994 08:49:37 GMT
    };
    const SEND: Outcome = Send { use_range: true };

    fn with(set: impl FnOnce(&mut Conditions<'static>)) -> Outcome {
        let mut conditions = Conditions::default();
        set(&mut conditions);
        evaluate(&conditions, &FILE, NOW)
    }

    #[test]
    fn no_conditions_send_the_file() {
        assert_eq!(with(|_| {}), SEND);
    }

    #[test]
    fn if_none_match_uses_the_weak_comparison() {
        assert_eq!(
            with(|c| c.if_none_match = Some("\"5d-2e-6b\"")),
            NotModified
        );
        assert_eq!(
            with(|c| c.if_none_match = Some("W/\"5d-2e-6b\"")),
            NotModified
        );
        assert_eq!(
            with(|c| c.if_none_match = Some("\"old\", W/\"5d-2e-6b\"")),
            NotModified
        );
        assert_eq!(with(|c| c.if_none_match = Some("*")), NotModified);
        assert_eq!(with(|c| c.if_none_match = Some("\"old\"")), SEND);
        assert_eq!(
            with(|c| c.if_none_match = Some("5d-2e-6b")),
            SEND,
            "unquoted"
        );
    }

    #[test]
    fn if_none_match_overrides_if_modified_since() {
        assert_eq!(
            with(|c| {
                c.if_none_match = Some("\"old\"");
                c.if_modified_since = Some("Thu, 26 Nov 2026 22:00:00 GMT");
            }),
            SEND
        );
    }

    #[test]
    fn if_modified_since_compares_dates() {
        let since = |d: &'static str| with(|c| c.if_modified_since = Some(d));
        assert_eq!(since("Sun, 06 Nov 1994 08:49:37 GMT"), NotModified, "equal");
        assert_eq!(
            since("Sunday, 06-Nov-94 08:49:38 GMT"),
            NotModified,
            "later"
        );
        assert_eq!(since("Sun, 06 Nov 1994 08:49:36 GMT"), SEND, "earlier");
        assert_eq!(since("not a date"), SEND, "ignored");
    }

    #[test]
    fn if_match_and_if_unmodified_since_fail_with_412() {
        assert_eq!(with(|c| c.if_match = Some("\"5d-2e-6b\"")), SEND);
        assert_eq!(with(|c| c.if_match = Some("*")), SEND);
        assert_eq!(
            with(|c| c.if_match = Some("W/\"5d-2e-6b\"")),
            PreconditionFailed,
            "strong comparison"
        );
        assert_eq!(with(|c| c.if_match = Some("\"old\"")), PreconditionFailed);
        assert_eq!(with(|c| c.if_match = Some("garbage")), PreconditionFailed);
        let unmodified = |d: &'static str| with(|c| c.if_unmodified_since = Some(d));
        assert_eq!(unmodified("Sun, 06 Nov 1994 08:49:37 GMT"), SEND);
        assert_eq!(
            unmodified("Sun, 06 Nov 1994 08:49:36 GMT"),
            PreconditionFailed
        );
        assert_eq!(unmodified("garbage"), SEND, "ignored");
        // If-Match present: If-Unmodified-Since is not looked at.
        assert_eq!(
            with(|c| {
                c.if_match = Some("\"5d-2e-6b\"");
                c.if_unmodified_since = Some("Sun, 06 Nov 1994 08:49:36 GMT");
            }),
            SEND
        );
        // 412 comes before 304.
        assert_eq!(
            with(|c| {
                c.if_match = Some("\"old\"");
                c.if_none_match = Some("*");
            }),
            PreconditionFailed
        );
    }

    #[test]
    fn if_range_keeps_the_range_only_for_the_same_file() {
        let range = |v: &'static str| with(|c| c.if_range = Some(v));
        assert_eq!(range("\"5d-2e-6b\""), SEND);
        assert_eq!(range("Sun, 06 Nov 1994 08:49:37 GMT"), SEND);
        let whole = Send { use_range: false };
        assert_eq!(range("\"old\""), whole);
        assert_eq!(range("W/\"5d-2e-6b\""), whole, "weak tags never match");
        assert_eq!(range("Sun, 06 Nov 1994 08:49:38 GMT"), whole);
        assert_eq!(range("garbage"), whole);
    }

    #[test]
    fn entity_tag_lists() {
        assert_eq!(
            entity_tags(" W/\"a\" ,\"b,c\",,\"\""),
            Some(vec![(true, "\"a\""), (false, "\"b,c\""), (false, "\"\"")])
        );
        assert_eq!(entity_tags("\"a\" \"b\""), None);
        assert_eq!(entity_tags("\"a"), None);
        assert_eq!(entity_tags("W/a"), None);
        assert_eq!(entity_tags(""), Some(vec![]));
    }
}
