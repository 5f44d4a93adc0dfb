//! The detail a beacon may carry, `/beacon/<node>/<milestone>?detail=<text>`
//! (what a timeout waited for, a machine's disk inventory): taken from the
//! query of a GET, so the server needs no request body and writes nothing
//! but its log, and reduced to a short run of URL-safe characters, so a
//! node can neither split a log line nor make one of any length.

/// Longest detail kept, in bytes; the rest is cut off.
pub(crate) const MAX_DETAIL: usize = 512;

/// The `detail` parameter of a request target's query, %-decoded and
/// sanitised; `None` without one (or with an empty one).
pub(crate) fn from_target(target: &str) -> Option<String> {
    let query = target.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or_default();
    let raw = query
        .split('&')
        .find_map(|param| param.strip_prefix("detail="))?;
    let detail = sanitise(&percent_decode(raw));
    (!detail.is_empty()).then_some(detail)
}

/// Whether `b` may stay in a detail: what by-id disk names, sizes and short
/// lists need, and nothing a log line, a shell or a URL would read as syntax
/// (no `/` either: a log reader looking for `/beacon/` must not find one).
fn allowed(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"._:,;=+@-".contains(&b)
}

/// Every byte outside [`allowed`] becomes `_`; at most [`MAX_DETAIL`] bytes.
pub(crate) fn sanitise(bytes: &[u8]) -> String {
    bytes
        .iter()
        .take(MAX_DETAIL)
        .map(|&b| if allowed(b) { b as char } else { '_' })
        .collect()
}

/// `%XX` decoded; a `%` not followed by two hex digits stays as it is (and
/// is then sanitised away).
fn percent_decode(raw: &str) -> Vec<u8> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn details_come_from_the_query_only() {
        let inventory = "vda=20G,QEMU_HARDDISK,virtio-cp1-root;sda=1.8T,ST2000,ata-ST2000_Z4Z";
        assert_eq!(
            from_target(&format!(
                "/beacon/cp1/install-disk-missing?detail={inventory}"
            ))
            .as_deref(),
            Some(inventory)
        );
        assert_eq!(
            from_target("/beacon/cp1/x?a=1&detail=api-server&b=2#frag").as_deref(),
            Some("api-server")
        );
        for none in [
            "/beacon/cp1/x",
            "/beacon/cp1/x?detail=",
            "/beacon/cp1/x?other=1",
        ] {
            assert_eq!(from_target(none), None, "{none}");
        }
    }

    #[test]
    fn details_cannot_break_a_log_line_or_grow_it() {
        // A newline, spaces, quotes and a second `key=` stay inside one field.
        let sneaky =
            "/beacon/cp1/x?detail=a%0A2026-01-01T00:00:00.000Z%20http%20-%20node=cp2%22%25zz";
        let detail = from_target(sneaky).unwrap();
        assert_eq!(detail, "a_2026-01-01T00:00:00.000Z_http_-_node=cp2__zz");
        assert_eq!(
            sanitise(b"x/beacon/cp2/install-done"),
            "x_beacon_cp2_install-done"
        );
        assert!(detail.bytes().all(|b| b.is_ascii_graphic() && b != b'%'));
        let long = format!("/beacon/cp1/x?detail={}", "ab".repeat(MAX_DETAIL));
        assert_eq!(from_target(&long).unwrap().len(), MAX_DETAIL);
        // Bytes beyond ASCII, encoded or not, are replaced one by one.
        assert_eq!(sanitise("é".as_bytes()), "__");
        assert_eq!(from_target("/b?detail=%C3%A9").unwrap(), "__");
    }
}
