//! Bootstrap tokens (`[a-z0-9]{6}.[a-z0-9]{16}`) and the kubeadm duration
//! syntax used for their lifetimes.
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
}
