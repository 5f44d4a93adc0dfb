//! Option negotiation (RFC 2347) for a read request: blksize (RFC 2348), tsize and
//! timeout (RFC 2349), windowsize (RFC 7440). Pure: request options and server
//! limits in, the agreed transfer parameters and the OACK contents out.
use std::time::Duration;

/// Largest block size RFC 2348 allows.
pub(crate) const BLKSIZE_MAX: u16 = 65464;
/// Block size when the client negotiates none (RFC 1350).
pub(crate) const BLKSIZE_DEFAULT: u16 = 512;
/// Most file bytes one window may carry. A transfer holds two windows in memory
/// (the one in flight and the next, read ahead), so this bounds a session's
/// buffers at 256 KiB whatever the client asks: 64 blocks of 65464 bytes would
/// be 8 MiB. Windows of 1468-byte blocks reach the window size limit first.
pub(crate) const WINDOW_BYTES_MAX: u64 = 128 * 1024;

/// What the server is willing to agree to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Upper bound for blksize, already clamped to the path MTU of the transfer.
    pub blksize_max: u16,
    /// Upper bound for windowsize.
    pub windowsize_max: u16,
    /// Retransmission timeout when the client does not ask for one.
    pub default_timeout: Duration,
}

/// The parameters a transfer runs with, and the OACK that announces them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Negotiated {
    pub blksize: u16,
    pub windowsize: u16,
    pub timeout: Duration,
    /// Empty when the client sent no option the server accepted: then no OACK
    /// is sent and the transfer starts with DATA 1 (RFC 2347).
    pub oack: Vec<(String, String)>,
}

/// Agrees on options. Unknown, malformed or out-of-range options are left out of
/// the OACK (the client then uses the RFC 1350 default), never refused: firmware
/// sends vendor options, and a refusal would fail the boot.
pub fn negotiate(options: &[(String, String)], limits: &Limits, file_size: u64) -> Negotiated {
    let mut out = Negotiated {
        blksize: BLKSIZE_DEFAULT,
        windowsize: 1,
        timeout: limits.default_timeout,
        oack: Vec::new(),
    };
    let mut seen: Vec<&str> = Vec::new();
    for (name, value) in options {
        if seen.contains(&name.as_str()) {
            continue; // the first occurrence of an option wins
        }
        seen.push(name);
        let Ok(number) = value.trim().parse::<u64>() else {
            continue;
        };
        let agreed = match name.as_str() {
            "blksize" if number >= 8 => {
                let size = number.min(u64::from(limits.blksize_max.min(BLKSIZE_MAX))) as u16;
                out.blksize = size;
                size.to_string()
            }
            "windowsize" if (1..=65535).contains(&number) => {
                let size = (number as u16).min(limits.windowsize_max.max(1));
                out.windowsize = size;
                size.to_string()
            }
            // RFC 2349: the server must answer the same timeout or leave it out.
            "timeout" if (1..=255).contains(&number) => {
                out.timeout = Duration::from_secs(number);
                number.to_string()
            }
            "tsize" => file_size.to_string(),
            _ => continue,
        };
        out.oack.push((name.clone(), agreed));
    }
    // Options may come in any order, so the window is fitted to the block size
    // once both are known (RFC 7440 lets the server answer a smaller window).
    let fits = (WINDOW_BYTES_MAX / u64::from(out.blksize)).clamp(1, u64::from(u16::MAX)) as u16;
    if out.windowsize > fits {
        out.windowsize = fits;
        for (name, value) in &mut out.oack {
            if name == "windowsize" {
                *value = fits.to_string();
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            blksize_max: 1468,
            windowsize_max: 64,
            default_timeout: Duration::from_secs(2),
        }
    }

    fn opts(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn ovmf_request_is_agreed_in_order() {
        let n = negotiate(
            &opts(&[("blksize", "1468"), ("windowsize", "4"), ("tsize", "0")]),
            &limits(),
            99,
        );
        assert_eq!((n.blksize, n.windowsize), (1468, 4));
        assert_eq!(
            n.oack,
            opts(&[("blksize", "1468"), ("windowsize", "4"), ("tsize", "99")])
        );
    }

    #[test]
    fn blksize_is_clamped_to_the_path_limit() {
        let n = negotiate(&opts(&[("blksize", "65464")]), &limits(), 0);
        assert_eq!(n.blksize, 1468);
        assert_eq!(n.oack, opts(&[("blksize", "1468")]));
        let mut big = limits();
        big.blksize_max = u16::MAX;
        assert_eq!(
            negotiate(&opts(&[("blksize", "70000")]), &big, 0).blksize,
            65464
        );
    }

    #[test]
    fn invalid_values_are_left_out() {
        let n = negotiate(
            &opts(&[
                ("blksize", "7"),
                ("timeout", "0"),
                ("timeout", "9"),
                ("windowsize", "0"),
                ("x-vendor", "1"),
                ("tsize", "abc"),
            ]),
            &limits(),
            5,
        );
        assert_eq!(n.blksize, BLKSIZE_DEFAULT);
        assert_eq!(n.windowsize, 1);
        assert_eq!(n.timeout, Duration::from_secs(2));
        assert!(n.oack.is_empty(), "{:?}", n.oack);
    }

    #[test]
    fn window_bytes_are_capped_whatever_the_option_order() {
        let mut big = limits();
        big.blksize_max = BLKSIZE_MAX;
        for order in [
            [("windowsize", "64"), ("blksize", "65464")],
            [("blksize", "65464"), ("windowsize", "64")],
        ] {
            let n = negotiate(&opts(&order), &big, 0);
            assert_eq!((n.blksize, n.windowsize), (65464, 2), "{order:?}");
            assert!(n
                .oack
                .contains(&("windowsize".to_string(), "2".to_string())));
        }
        // Full-size Ethernet blocks are limited by the window size limit alone.
        let n = negotiate(
            &opts(&[("blksize", "1468"), ("windowsize", "64")]),
            &limits(),
            0,
        );
        assert_eq!(n.windowsize, 64);
        // Never below one block per window.
        let mut one = big;
        one.windowsize_max = 8;
        let n = negotiate(&opts(&[("blksize", "65464"), ("windowsize", "1")]), &one, 0);
        assert_eq!(n.windowsize, 1);
        // Block size 8 and a huge configured limit: the bytes bound the window.
        let mut many = limits();
        many.windowsize_max = u16::MAX;
        let n = negotiate(
            &opts(&[("blksize", "8"), ("windowsize", "65535")]),
            &many,
            0,
        );
        assert_eq!(u64::from(n.windowsize) * 8, WINDOW_BYTES_MAX);
    }

    #[test]
    fn windowsize_and_timeout() {
        let n = negotiate(
            &opts(&[("windowsize", "1000"), ("timeout", "3")]),
            &limits(),
            0,
        );
        assert_eq!(n.windowsize, 64);
        assert_eq!(n.timeout, Duration::from_secs(3));
        assert_eq!(n.oack, opts(&[("windowsize", "64"), ("timeout", "3")]));
    }
}
