//! The dist/ path contract in one place. Every producer and the server use these
//! names, so a tree copied elsewhere (rsync + nginx + tftpd-hpa) keeps working.

/// Top-level directory served over TFTP.
pub const TFTP: &str = "tftp";
/// Top-level directory served over HTTP.
pub const HTTP: &str = "http";

/// `pxelinux.cfg/01-aa-bb-cc-dd-ee-ff` name for a MAC given as `aa:bb:cc:dd:ee:ff`.
pub fn pxelinux_mac_name(mac: &str) -> String {
    format!("01-{}", mac.to_ascii_lowercase().replace(':', "-"))
}

/// HTTP path (under dist/http) of the Flatcar files of one version; also the
/// `-b` base of `flatcar-install` (which appends `<version>/<file>`).
pub fn flatcar_dir(version: &str) -> String {
    format!("flatcar/{version}")
}

/// HTTP directory of one system extension (a flat sysupdate source with SHA256SUMS).
pub fn sysext_dir(extension: &str) -> String {
    format!("sysext/{extension}")
}

/// HTTP directory holding one node's Ignition configs. `node_id` carries a
/// random part from secrets/, so the path cannot be guessed from the MAC.
pub fn ignition_dir(node_id: &str) -> String {
    format!("ignition/{node_id}")
}

/// `path` with the random part of a node's Ignition directory replaced
/// (`http/ignition/cp1-7f3a…/node.ign` → `http/ignition/cp1-<id>/node.ign`):
/// for output that may be shared, such as `--explain`. The random part is
/// what keeps the directory unguessable.
pub fn redact(path: &str) -> String {
    let marker = "ignition/";
    let Some(at) = path.find(marker) else {
        return path.to_string();
    };
    let start = at + marker.len();
    let rest = &path[start..];
    let end = rest.find('/').unwrap_or(rest.len());
    let dir = &rest[..end];
    let name = dir.rsplit_once('-').map_or("", |(name, _)| name);
    format!("{}{name}-<id>{}", &path[..start], &rest[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_directory_is_redacted_to_its_name() {
        assert_eq!(
            redact("http/ignition/worker-1-9f2c41d0/node.ign"),
            "http/ignition/worker-1-<id>/node.ign"
        );
        assert_eq!(redact("http/sysext/k.raw"), "http/sysext/k.raw");
    }

    #[test]
    fn pxelinux_name_is_lower_case_with_dashes() {
        assert_eq!(
            pxelinux_mac_name("52:54:00:AB:00:01"),
            "01-52-54-00-ab-00-01"
        );
    }
}
