//! Wall-clock formatting without a date crate (a leaf: the server and day-2 use
//! it): RFC 3339 UTC for log lines and tokens, and
//! the IMF-fixdate of HTTP `Date`/`Last-Modified` headers (RFC 9110 5.6.7),
//! read back in all three forms HTTP allows for conditional requests; and the
//! one reading of "now" every module stamps times with.
use std::time::{SystemTime, UNIX_EPOCH};

/// (year, month, day) of a day count since 1970-01-01 (proleptic Gregorian;
/// the "days from civil" inverse by H. Hinnant's public-domain method).
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Day count since 1970-01-01 of a (proleptic Gregorian) date: the inverse of
/// [`civil`], by the same method.
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = year - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let march_based = i64::from((month + 9) % 12);
    let doy = (153 * march_based + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn split(unix_ms: i64) -> (i64, u32, u32, i64, i64) {
    let secs = unix_ms.div_euclid(1000);
    let (y, m, d) = civil(secs.div_euclid(86_400));
    (y, m, d, secs.rem_euclid(86_400), unix_ms.rem_euclid(1000))
}

/// `2026-11-26T21:50:00.123Z`
pub fn rfc3339_ms(unix_ms: i64) -> String {
    let (y, m, d, s, ms) = split(unix_ms);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{ms:03}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// `Thu, 26 Nov 2026 21:50:00 GMT`
pub fn http_date(unix_secs: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    let (y, m, d, s, _) = split(unix_secs * 1000);
    let weekday = DAYS[unix_secs.div_euclid(86_400).rem_euclid(7) as usize];
    let month = MONTHS[(m - 1) as usize];
    format!(
        "{weekday}, {d:02} {month} {y:04} {:02}:{:02}:{:02} GMT",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Seconds since the epoch of an HTTP-date (RFC 9110 5.6.7) in any of its three
/// forms: IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the obsolete RFC 850
/// form (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37
/// 1994`). `None` for anything else, which callers ignore as the RFC says. An
/// RFC 850 two-digit year is the latest year with those digits that is not more
/// than 50 years after `now_secs`.
pub fn parse_http_date(text: &str, now_secs: i64) -> Option<i64> {
    let fields: Vec<&str> = text.split_ascii_whitespace().collect();
    let (year, month, day, time) = match fields.as_slice() {
        [weekday, day, month, year, time, "GMT"] if weekday.ends_with(',') => {
            (digits(year, 4..=4)?, *month, digits(day, 2..=2)?, *time)
        }
        [weekday, date, time, "GMT"] if weekday.ends_with(',') => {
            let mut parts = date.split('-');
            let (day, month, yy) = (parts.next()?, parts.next()?, parts.next()?);
            if parts.next().is_some() {
                return None;
            }
            let year = two_digit_year(digits(yy, 2..=2)?, now_secs);
            (year, month, digits(day, 2..=2)?, *time)
        }
        [_weekday, month, day, time, year] => {
            (digits(year, 4..=4)?, *month, digits(day, 1..=2)?, *time)
        }
        _ => return None,
    };
    let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
    let day = day as u32; // at most two digits
    let mut hms = time.split(':').map(|part| digits(part, 2..=2));
    let (h, m, s) = (hms.next()??, hms.next()??, hms.next()??);
    let days = days_from_civil(year, month, day);
    // Reject 31 Feb and the like: a real date survives the round trip.
    if hms.next().is_some() || h > 23 || m > 59 || s > 60 || civil(days) != (year, month, day) {
        return None;
    }
    Some(days * 86_400 + h * 3600 + m * 60 + s)
}

/// A field of `lengths` ASCII digits and nothing else (no sign). Years are
/// four digits, which also keeps the day arithmetic far from overflow.
fn digits(text: &str, lengths: std::ops::RangeInclusive<usize>) -> Option<i64> {
    let plain = lengths.contains(&text.len()) && text.bytes().all(|b| b.is_ascii_digit());
    plain.then(|| text.parse().ok()).flatten()
}

fn two_digit_year(yy: i64, now_secs: i64) -> i64 {
    let (now_year, _, _) = civil(now_secs.div_euclid(86_400));
    let year = now_year - now_year.rem_euclid(100) + yy;
    if year > now_year + 50 {
        year - 100
    } else {
        year
    }
}

/// Milliseconds since the Unix epoch, now: the one reading of the wall
/// clock. A clock set before 1970 reads as the epoch itself rather than
/// failing, since every caller only stamps or compares times.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Whole seconds since the Unix epoch, now (see [`now_ms`]).
pub fn now_secs() -> u64 {
    u64::try_from(now_ms().div_euclid(1000)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_milliseconds_read_one_clock() {
        let (ms, secs) = (now_ms(), now_secs());
        assert!(secs >= 1_700_000_000, "{secs}");
        assert!(secs.abs_diff((ms / 1000) as u64) <= 1, "{secs} vs {ms}");
    }

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(http_date(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(http_date(1_795_730_400), "Thu, 26 Nov 2026 22:00:00 GMT");
    }

    #[test]
    fn days_from_civil_inverts_civil() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 2, 29), 11_016);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
        for days in (-800_000..800_000).step_by(997) {
            let (y, m, d) = civil(days);
            assert_eq!(days_from_civil(y, m, d), days, "{y}-{m}-{d}");
        }
    }

    #[test]
    fn http_dates_in_all_three_forms() {
        let now = 1_795_730_400; // 2026
        let expect = Some(784_111_777);
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT", now),
            expect
        );
        assert_eq!(
            parse_http_date("Sunday, 06-Nov-94 08:49:37 GMT", now),
            expect
        );
        assert_eq!(parse_http_date("Sun Nov  6 08:49:37 1994", now), expect);
        for secs in [0, 951_782_400, 1_795_730_400, 4_102_444_799] {
            assert_eq!(parse_http_date(&http_date(secs), now), Some(secs));
        }
        // Two-digit years: no more than 50 years ahead of now.
        let y2k = parse_http_date("Saturday, 01-Jan-00 00:00:00 GMT", now);
        assert_eq!(y2k, Some(946_684_800));
        let ahead = parse_http_date("Saturday, 01-Jan-77 00:00:00 GMT", now);
        assert_eq!(
            ahead,
            Some(220_924_800),
            "2077 is more than 50 years on: 1977"
        );
    }

    #[test]
    fn malformed_http_dates_are_none() {
        let now = 1_795_730_400;
        for bad in [
            "",
            "yesterday",
            "Sun, 06 Nov 1994 08:49:37 UTC",
            "Sun, 06 Nov 1994 08:49 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT",
            "Sun, 31 Feb 1994 08:49:37 GMT",
            "Sun, 06 Foo 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 8:49:37 GMT",
            "Sun, 06 Nov 1994 08:49:37:00 GMT",
            "Sunday, 06-Nov-1994 08:49:37 GMT",
            "Sun, 06 Nov 99999999999999999999 08:49:37 GMT",
            "Sun, 06 Nov 9999999999999 08:49:37 GMT",
            "Sun Nov  6 08:49:37 +994",
            "Sun, 06 Nov 1994 +8:49:37 GMT",
        ] {
            assert_eq!(parse_http_date(bad, now), None, "{bad:?}");
        }
    }
}
