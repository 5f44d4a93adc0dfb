//! Bootstrap tokens (`[a-z0-9]{6}.[a-z0-9]{16}`) and the kubeadm duration
//! syntax used for their lifetimes.
use anyhow::{bail, Result};
use rand::Rng;

const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A fresh random bootstrap token.
pub fn generate() -> String {
    let mut rng = rand::rng();
    let mut part = |n: usize| -> String {
        (0..n)
            .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
            .collect()
    };
    let id = part(6);
    let secret = part(16);
    format!("{id}.{secret}")
}

/// True when `token` has kubeadm's bootstrap token shape.
pub fn is_valid(token: &str) -> bool {
    let ok = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    match token.split_once('.') {
        Some((id, secret)) => ok(id, 6) && ok(secret, 16),
        None => false,
    }
}

/// Seconds in a Go-style duration such as `24h`, `1h30m`, `90s`, `0s`.
pub fn parse_duration(text: &str) -> Result<u64> {
    let mut total = 0u64;
    let mut number = String::new();
    let mut rest = text.trim();
    if rest.is_empty() {
        bail!("empty duration");
    }
    while let Some(c) = rest.chars().next() {
        rest = &rest[c.len_utf8()..];
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => bail!("duration {text:?}: unknown unit {c:?} (use h, m, s)"),
        };
        if number.is_empty() {
            bail!("duration {text:?}: unit {c:?} without a number");
        }
        total += number.parse::<u64>()? * unit;
        number.clear();
    }
    if !number.is_empty() {
        bail!("duration {text:?}: number without a unit");
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_have_the_kubeadm_shape() {
        for _ in 0..50 {
            let t = generate();
            assert!(is_valid(&t), "{t}");
        }
        assert!(!is_valid("ABCDEF.0123456789abcdef"));
        assert!(!is_valid("abcdef0123456789abcdef"));
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("24h").unwrap(), 86_400);
        assert_eq!(parse_duration("1h30m").unwrap(), 5_400);
        assert_eq!(parse_duration("0s").unwrap(), 0);
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("5").is_err());
    }
}
