//! The `Range` header (RFC 9110 14.2), single byte ranges only. Pure.
//! A multi-range or malformed header is ignored (the whole file is sent with
//! 200, which RFC 9110 allows); a syntactically valid range that starts past
//! the end is unsatisfiable (416).

/// What to send for a request on a file of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeReply {
    /// 200: the whole file.
    Full,
    /// 206: bytes `start..=end`.
    Partial { start: u64, end: u64 },
    /// 416.
    Unsatisfiable,
}

pub fn evaluate(header: Option<&str>, size: u64) -> RangeReply {
    let Some(spec) = header.and_then(byte_ranges) else {
        return RangeReply::Full;
    };
    if spec.contains(',') {
        return RangeReply::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeReply::Full;
    };
    let (first, last) = (first.trim(), last.trim());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match (digits(first), digits(last)) {
        // bytes=-N: the last N bytes.
        // Too many digits for u64: more than any file has, so all of it.
        (false, true) if first.is_empty() => suffix(last.parse().unwrap_or(u64::MAX), size),
        (true, false) if last.is_empty() => match first.parse::<u64>() {
            Ok(start) if start < size => RangeReply::Partial {
                start,
                end: size - 1,
            },
            // Past the end, or too many digits for u64 (past any end).
            _ => RangeReply::Unsatisfiable,
        },
        (true, true) => {
            // A last position with too many digits for u64 is past any end:
            // clamped to the file like any other (RFC 9110 14.1.2).
            let end = last.parse::<u64>().unwrap_or(u64::MAX);
            match first.parse::<u64>() {
                Ok(start) if start > end => RangeReply::Full,
                Ok(start) if start < size => RangeReply::Partial {
                    start,
                    end: end.min(size - 1),
                },
                // Past the end, or too many digits for u64 (past any end).
                _ => RangeReply::Unsatisfiable,
            }
        }
        _ => RangeReply::Full,
    }
}

/// The range set of a `bytes=…` header; the unit name is case-insensitive
/// (RFC 9110 14.1). `None` for other units.
fn byte_ranges(header: &str) -> Option<&str> {
    let (unit, spec) = header.trim().split_once('=')?;
    unit.trim().eq_ignore_ascii_case("bytes").then_some(spec)
}

/// `bytes=-N`: the last N bytes.
fn suffix(len: u64, size: u64) -> RangeReply {
    match len {
        0 => RangeReply::Unsatisfiable,
        // RFC 9110 14.1.1: a non-zero suffix of an empty file is satisfiable,
        // but no byte range can name it; the whole (empty) file answers it.
        _ if size == 0 => RangeReply::Full,
        n => RangeReply::Partial {
            start: size.saturating_sub(n),
            end: size - 1,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeReply::*;

    #[test]
    fn single_ranges() {
        assert_eq!(evaluate(None, 10), Full);
        assert_eq!(
            evaluate(Some("bytes=0-4"), 10),
            Partial { start: 0, end: 4 }
        );
        assert_eq!(evaluate(Some("bytes=5-"), 10), Partial { start: 5, end: 9 });
        assert_eq!(evaluate(Some("bytes=-3"), 10), Partial { start: 7, end: 9 });
        assert_eq!(
            evaluate(Some("bytes=-30"), 10),
            Partial { start: 0, end: 9 }
        );
        assert_eq!(
            evaluate(Some("bytes=8-100"), 10),
            Partial { start: 8, end: 9 }
        );
    }

    #[test]
    fn unsatisfiable_and_ignored() {
        assert_eq!(evaluate(Some("bytes=10-"), 10), Unsatisfiable);
        assert_eq!(evaluate(Some("bytes=10-20"), 10), Unsatisfiable);
        assert_eq!(evaluate(Some("bytes=-0"), 10), Unsatisfiable);
        assert_eq!(evaluate(Some("bytes=0-"), 0), Unsatisfiable);
        assert_eq!(
            evaluate(Some("bytes=99999999999999999999999-"), 10),
            Unsatisfiable
        );
        assert_eq!(evaluate(Some("bytes=0-1,3-4"), 10), Full);
        assert_eq!(evaluate(Some("bytes=5-2"), 10), Full);
        assert_eq!(evaluate(Some("items=0-1"), 10), Full);
        assert_eq!(evaluate(Some("bytes=a-b"), 10), Full);
    }

    #[test]
    fn unit_names_are_case_insensitive_and_last_positions_clamp() {
        assert_eq!(
            evaluate(Some("BYTES=0-4"), 10),
            Partial { start: 0, end: 4 }
        );
        assert_eq!(
            evaluate(Some("Bytes = 2-3"), 10),
            Partial { start: 2, end: 3 }
        );
        // A last position past u64 is past the end: clamped, not refused.
        assert_eq!(
            evaluate(Some("bytes=0-99999999999999999999"), 1000),
            Partial { start: 0, end: 999 }
        );
        assert_eq!(
            evaluate(Some("bytes=99999999999999999999-99999999999999999999"), 10),
            Unsatisfiable
        );
    }

    #[test]
    fn suffixes_longer_than_any_file() {
        let huge = "bytes=-99999999999999999999999";
        assert_eq!(evaluate(Some(huge), 10), Partial { start: 0, end: 9 });
        // An empty file has no byte to name: the (empty) whole answers, and
        // never a range that ends inside it (found by fuzz/http_request).
        assert_eq!(evaluate(Some(huge), 0), Full);
        assert_eq!(evaluate(Some("bytes=-5"), 0), Full);
        assert_eq!(evaluate(Some("bytes=-0"), 0), Unsatisfiable);
    }

    proptest::proptest! {
        /// What the server sends must exist: a partial reply always lies
        /// inside the file, whatever the numbers (up to far past u64).
        #[test]
        fn partial_replies_lie_inside_the_file(
            first in "([0-9]{1,3}|[0-9]{19,25})?",
            last in "([0-9]{1,3}|[0-9]{19,25})?",
            size in proptest::prop_oneof![0u64..4, proptest::num::u64::ANY],
        ) {
            let header = format!("bytes={first}-{last}");
            if let Partial { start, end } = evaluate(Some(&header), size) {
                proptest::prop_assert!(start <= end && end < size, "{header} on {size}: {start}-{end}");
            }
        }
    }
}
