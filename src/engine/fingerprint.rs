//! The fingerprint of the pxebuild that produces a step's outputs: a blake3
//! digest of the running binary. Every step whose output pxebuild's own code
//! makes (rendering, translating, extracting) carries it in its key, so a
//! rebuilt pxebuild with a changed renderer or translator never reuses what an
//! older one produced, even when both call themselves the same version.
//! Downloads are keyed by what they fetch instead (see `Step::keyed_by_binary`).
use std::io::Read;
use std::sync::OnceLock;

/// `blake3:<hex>` of the running executable, hashed once per process. When the
/// executable cannot be read (deleted under a long-running process, or no
/// /proc), a digest that changes on every run: steps re-run rather than risk
/// reusing outputs of another binary.
pub(crate) fn fingerprint() -> &'static str {
    static FINGERPRINT: OnceLock<String> = OnceLock::new();
    FINGERPRINT.get_or_init(|| match hash_current_exe() {
        Ok(hex) => format!("blake3:{hex}"),
        Err(_) => {
            let nonce = format!("{:?}{}", std::time::SystemTime::now(), std::process::id());
            format!("unreadable:{}", blake3::hash(nonce.as_bytes()).to_hex())
        }
    })
}

fn hash_current_exe() -> std::io::Result<String> {
    let path = std::env::current_exe()?;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_is_the_digest_of_the_running_binary() {
        let exe = std::fs::read(std::env::current_exe().unwrap()).unwrap();
        let want = format!("blake3:{}", blake3::hash(&exe).to_hex());
        assert_eq!(fingerprint(), want);
        assert!(std::ptr::eq(fingerprint(), fingerprint()), "hashed once");
    }
}
