//! The dist/ path contract in one place. Every producer and the server use these
//! names, so a tree copied elsewhere (rsync + nginx + tftpd-hpa) keeps working.
//!
//! Three kinds of path meet here, and each function says which it returns:
//! - a **dist path**, relative to the tree (`http/ignition/cp1-…/node.ign`),
//!   as the manifest, the steps and the server's log spell it;
//! - an **HTTP path**, relative to `dist/http`: what follows the site's HTTP
//!   base in a URL (`ignition/cp1-…/node.ign`);
//! - a **TFTP name**, relative to `dist/tftp`: what DHCP hands out and a
//!   loader asks for (`pxelinux.cfg/01-52-54-00-…`).
//!
//! Paths are built here, and the few read back (a requested pxelinux name, a
//! node's Ignition directory in a built tree) are parsed here too, so the two
//! directions cannot drift apart.

/// Top-level directory served over TFTP.
pub const TFTP: &str = "tftp";
/// Top-level directory served over HTTP.
pub const HTTP: &str = "http";
/// The default boot tree: `build --out`'s default (relative to the working
/// directory) and the site's own tree beside site.toml, where a build run
/// from the site's directory publishes and where `lab` and `mirror` look.
pub const SITE_DIST: &str = "dist";

/// Dist path of the file at HTTP path `rel`.
pub fn http_path(rel: &str) -> String {
    format!("{HTTP}/{rel}")
}

/// The HTTP path of a dist path (`http/a/b` → `a/b`); `None` outside `http/`.
pub fn http_relative(dist_path: &str) -> Option<&str> {
    dist_path.strip_prefix(HTTP)?.strip_prefix('/')
}

/// Dist path of the file at TFTP name `rel`.
pub fn tftp_path(rel: &str) -> String {
    format!("{TFTP}/{rel}")
}

/// The TFTP name of a dist path (`tftp/a/b` → `a/b`); `None` outside `tftp/`.
pub fn tftp_relative(dist_path: &str) -> Option<&str> {
    dist_path.strip_prefix(TFTP)?.strip_prefix('/')
}

/// TFTP directory of syslinux's UEFI files: `syslinux.efi` looks for its
/// modules and its `pxelinux.cfg/` beside itself, apart from the BIOS ones.
const EFI64: &str = "efi64";

/// TFTP name of a network boot loader file: syslinux's UEFI files in `efi64/`,
/// every other loader (BIOS syslinux, iPXE) at the TFTP root.
pub fn loader_name(file: &str, syslinux_efi: bool) -> String {
    if syslinux_efi {
        format!("{EFI64}/{file}")
    } else {
        file.to_string()
    }
}

/// Dist path of a network boot loader file (see [`loader_name`]).
pub fn loader_path(file: &str, syslinux_efi: bool) -> String {
    tftp_path(&loader_name(file, syslinux_efi))
}

/// Directory of pxelinux configs, as the loader asks for them.
const PXELINUX_CFG: &str = "pxelinux.cfg";
/// The config a pxelinux loader falls back to when no per-MAC one exists.
const PXELINUX_DEFAULT: &str = "default";
/// pxelinux's ARP hardware type prefix of a per-MAC config name (Ethernet).
const PXELINUX_ETHERNET: &str = "01-";

/// `pxelinux.cfg/01-aa-bb-cc-dd-ee-ff` name for a MAC given as `aa:bb:cc:dd:ee:ff`
/// (or anything that displays so, such as a `MacAddr`).
pub fn pxelinux_mac_name(mac: impl std::fmt::Display) -> String {
    format!(
        "{PXELINUX_ETHERNET}{}",
        mac.to_string().to_ascii_lowercase().replace(':', "-")
    )
}

/// Dist path of a node's pxelinux config: for BIOS `lpxelinux.0`, or with
/// `efi` for UEFI `syslinux.efi`.
pub fn pxelinux_config(efi: bool, mac: &str) -> String {
    loader_path(&format!("{PXELINUX_CFG}/{}", pxelinux_mac_name(mac)), efi)
}

/// Dist path of the pxelinux config for machines without their own (local boot).
pub fn pxelinux_default(efi: bool) -> String {
    loader_path(&format!("{PXELINUX_CFG}/{PXELINUX_DEFAULT}"), efi)
}

/// For a TFTP name that is a pxelinux config (a node's or the default):
/// whether it is the UEFI loader's; `None` for every other name.
pub fn pxelinux_config_is_efi(tftp_name: &str) -> Option<bool> {
    [false, true]
        .into_iter()
        .find(|&efi| tftp_name.starts_with(&loader_name(&format!("{PXELINUX_CFG}/"), efi)))
}

/// The MAC (`52:54:00:77:00:01`) a requested per-MAC pxelinux config name
/// (`…pxelinux.cfg/01-52-54-00-77-00-01`) belongs to; `None` for other names.
pub fn mac_from_pxelinux_name(filename: &str) -> Option<String> {
    let name = filename.rsplit('/').next()?;
    let mac = name.strip_prefix(PXELINUX_ETHERNET)?;
    let ok = mac.len() == 17
        && mac
            .split('-')
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()));
    ok.then(|| mac.replace('-', ":").to_ascii_lowercase())
}

/// HTTP path of the iPXE entry script every iPXE client chains to.
pub const IPXE_ENTRY: &str = "ipxe/boot.ipxe";

/// HTTP path of one node's iPXE script (`ipxe/52-54-00-aa-bb-cc.ipxe`).
pub fn ipxe_script(mac: &str) -> String {
    format!("ipxe/{}.ipxe", mac.replace(':', "-"))
}

/// HTTP directory of the DHCP snippets the build emits for the site's own server.
const DHCP: &str = "dhcp";
/// The DHCP snippet for dnsmasq.
pub const DNSMASQ_SNIPPET: &str = "dnsmasq.conf";
/// The DHCP snippet for ISC dhcpd.
pub const ISC_SNIPPET: &str = "dhcpd.conf";
/// The DHCP snippet for Kea's DHCPv4 server.
pub const KEA_SNIPPET: &str = "kea-dhcp4.json";
/// Every DHCP snippet, one per server.
pub const DHCP_SNIPPETS: [&str; 3] = [DNSMASQ_SNIPPET, ISC_SNIPPET, KEA_SNIPPET];

/// HTTP path of one DHCP snippet (one of [`DHCP_SNIPPETS`]).
pub fn dhcp_snippet(name: &str) -> String {
    format!("{DHCP}/{name}")
}

/// The directory of the DHCP snippets inside a tree at `dist`.
pub fn dhcp_dir(dist: &std::path::Path) -> std::path::PathBuf {
    dist.join(HTTP).join(DHCP)
}

/// HTTP directory of every Flatcar version's files; also the fallback
/// `-b` base of `flatcar-install`.
pub const FLATCAR: &str = "flatcar";

/// HTTP path (under dist/http) of the Flatcar files of one version; also the
/// `-b` base of `flatcar-install` (which appends `<version>/<file>`).
pub fn flatcar_dir(version: &str) -> String {
    format!("{FLATCAR}/{version}")
}

/// Dist path of one Flatcar file of one version.
pub fn flatcar_file(version: &str, file: &str) -> String {
    http_path(&format!("{}/{file}", flatcar_dir(version)))
}

/// The Flatcar release's PXE kernel, as named in a version's directory.
pub const PXE_KERNEL: &str = "flatcar_production_pxe.vmlinuz";
/// The Flatcar release's PXE initrd, as named in a version's directory.
pub const PXE_INITRD: &str = "flatcar_production_pxe_image.cpio.gz";
/// The directory beside them holding the PXE initrd's parts.
const PXE_INITRD_PARTS: &str = "pxe-initrd";

/// Dist path of part `index` of one version's PXE initrd, as syslinux.efi
/// loads it (`boot::initrd_parts`): `http/flatcar/<version>/pxe-initrd/NN`,
/// short so that sixteen URLs fit a kernel command line.
pub fn pxe_initrd_part(version: &str, index: usize) -> String {
    http_path(&format!(
        "{}/{PXE_INITRD_PARTS}/{index:02}",
        flatcar_dir(version)
    ))
}

/// The URL (or path) of the whole PXE initrd that `url` names a part of;
/// `None` when `url` is not a part.
pub fn pxe_initrd_of_part(url: &str) -> Option<String> {
    let (dir, index) = url.rsplit_once(&format!("/{PXE_INITRD_PARTS}/"))?;
    (index.len() == 2 && index.bytes().all(|b| b.is_ascii_digit()))
        .then(|| format!("{dir}/{PXE_INITRD}"))
}

/// HTTP directory of the system extensions.
const SYSEXT: &str = "sysext";
/// A system extension's listing, which systemd-sysupdate reads.
pub const SYSEXT_LISTING: &str = "SHA256SUMS";

/// HTTP directory of one system extension (a flat sysupdate source with SHA256SUMS).
pub fn sysext_dir(extension: &str) -> String {
    format!("{SYSEXT}/{extension}")
}

/// Dist path of one file of a system extension's directory.
pub fn sysext_file(extension: &str, file: &str) -> String {
    http_path(&format!("{}/{file}", sysext_dir(extension)))
}

/// The directory of every system extension inside a tree at `dist`.
pub fn sysext_root(dist: &std::path::Path) -> std::path::PathBuf {
    dist.join(HTTP).join(SYSEXT)
}

/// Path of the SHA-512 of an extension image: an internal output (not
/// published), read when rendering the node's Ignition.
pub fn sysext_sha512(extension: &str, file: &str) -> String {
    format!("{}/{file}.sha512", sysext_dir(extension))
}

/// HTTP directory of the OCI distribution API: the tree under it mirrors
/// the pull API's URL paths, so a static server (nginx, with the locations
/// docs/serve.md gives) answers pulls as `pxebuild serve` does.
pub const OCI_V2: &str = "v2";

/// How a manifest's media type is spelled in its file name, as the last
/// extension (what nginx's `types` matches): the file of
/// `/v2/<name>/manifests/<ref>` is `<ref>.<kind>`.
pub const OCI_MANIFEST_KINDS: [(&str, &str); 4] = [
    ("oci-index", "application/vnd.oci.image.index.v1+json"),
    ("oci-manifest", "application/vnd.oci.image.manifest.v1+json"),
    (
        "docker-list",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ),
    (
        "docker-manifest",
        "application/vnd.docker.distribution.manifest.v2+json",
    ),
];

/// The file-name extension of a manifest media type; `None` for a media
/// type dist/ does not carry.
pub fn oci_manifest_kind(media_type: &str) -> Option<&'static str> {
    OCI_MANIFEST_KINDS
        .iter()
        .find(|(_, mt)| *mt == media_type)
        .map(|(kind, _)| *kind)
}

/// The media type of a manifest file-name extension.
pub fn oci_media_type(kind: &str) -> Option<&'static str> {
    OCI_MANIFEST_KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map(|(_, mt)| *mt)
}

/// Dist path of repository `name`'s manifest `reference` (a tag or
/// `sha256:<hex>`) of media type `media_type`'s `kind` (see
/// [`oci_manifest_kind`]): `http/v2/<name>/manifests/<reference>.<kind>`.
pub fn oci_manifest(name: &str, reference: &str, kind: &str) -> String {
    http_path(&format!("{OCI_V2}/{name}/manifests/{reference}.{kind}"))
}

/// Dist path of repository `name`'s blob `digest` (`sha256:<hex>`):
/// `http/v2/<name>/blobs/<digest>`, the pull API's own path.
pub fn oci_blob(name: &str, digest: &str) -> String {
    http_path(&format!("{OCI_V2}/{name}/blobs/{digest}"))
}

/// What an OCI API request path (after `/v2/`) asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OciRequest<'a> {
    /// `/v2/`: the API version check.
    Base,
    /// `<name>/manifests/<reference>`.
    Manifest { name: &'a str, reference: &'a str },
    /// `<name>/blobs/<digest>`.
    Blob { name: &'a str, digest: &'a str },
}

/// Parses an HTTP path relative to dist/http (`v2/…`) as an OCI API
/// request; `None` when it is not one (the name may hold '/', the last two
/// parts say what is asked for).
pub fn parse_oci_request(http_rel: &str) -> Option<OciRequest<'_>> {
    let rest = http_rel.strip_prefix(OCI_V2)?;
    if rest.is_empty() || rest == "/" {
        return Some(OciRequest::Base);
    }
    let rest = rest.strip_prefix('/')?;
    let (head, reference) = rest.rsplit_once('/')?;
    let (name, what) = head.rsplit_once('/')?;
    if name.is_empty() || reference.is_empty() {
        return None;
    }
    match what {
        "manifests" => Some(OciRequest::Manifest { name, reference }),
        "blobs" => Some(OciRequest::Blob {
            name,
            digest: reference,
        }),
        _ => None,
    }
}

/// HTTP directory of the static Helm chart repository (`index.yaml` and the
/// chart archives) that an air-gapped site installs Cilium and Argo CD from.
pub const CHARTS: &str = "charts";

/// Dist path of the chart repository's `index.yaml`.
pub fn chart_index() -> String {
    http_path(&format!("{CHARTS}/index.yaml"))
}

/// Dist path of a chart archive, named as `helm package` names it.
pub fn chart_archive(chart: &str, version: &str) -> String {
    http_path(&format!("{CHARTS}/{chart}-{version}.tgz"))
}

/// HTTP directory of the nodes' Ignition directories.
pub const IGNITION: &str = "ignition";

/// `<node>-<random id>`: a node's Ignition directory name.
pub fn node_dir_name(node: &str, id: &str) -> String {
    format!("{node}-{id}")
}

/// The id part of a directory name `<node>-<id>` when it is one of `node`'s
/// (the id itself is checked by the caller, which knows what ids look like).
pub fn id_in_node_dir<'a>(dir_name: &'a str, node: &str) -> Option<&'a str> {
    dir_name.strip_prefix(node)?.strip_prefix('-')
}

/// HTTP directory holding one node's Ignition configs. `node_dir` carries a
/// random part from secrets/, so the path cannot be guessed from the MAC.
pub fn ignition_dir(node_dir: &str) -> String {
    format!("{IGNITION}/{node_dir}")
}

/// Dist path of a node's Ignition config `doc` (`install` or `node`) in its
/// HTTP directory `ignition_dir` (from [`ignition_dir`]).
pub fn ignition_file(ignition_dir: &str, doc: &str) -> String {
    http_path(&format!("{ignition_dir}/{doc}.ign"))
}

/// URL of a node's Ignition config `doc` under the site's HTTP `base`.
pub fn ignition_url(base: &str, ignition_dir: &str, doc: &str) -> String {
    format!("{base}/{ignition_dir}/{doc}.ign")
}

/// The node directory (`<node>-<id>`) of a dist path inside it
/// (`http/ignition/cp1-7f3a/node.ign` → `cp1-7f3a`); `None` for other paths.
pub fn node_dir_of(dist_path: &str) -> Option<&str> {
    let rest = http_relative(dist_path)?
        .strip_prefix(IGNITION)?
        .strip_prefix('/')?;
    rest.split('/').next().filter(|dir| !dir.is_empty())
}

/// Where the Ignition directories of a tree at `dist` lie, as messages name it.
pub fn ignition_root(dist: &std::path::Path) -> std::path::PathBuf {
    dist.join(HTTP).join(IGNITION)
}

/// `path` with the random part of a node's Ignition directory replaced
/// (`http/ignition/cp1-7f3a…/node.ign` → `http/ignition/cp1-<id>/node.ign`):
/// for output that may be shared, such as `--explain`. The random part is
/// what keeps the directory unguessable.
pub fn redact(path: &str) -> String {
    let marker = format!("{IGNITION}/");
    let Some(at) = path.find(&marker) else {
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
    fn a_part_of_the_pxe_initrd_leads_back_to_the_whole_file() {
        let part = pxe_initrd_part("4593.2.5", 7);
        assert_eq!(part, "http/flatcar/4593.2.5/pxe-initrd/07");
        let url = format!("http://10.20.0.2:8080/{}", http_relative(&part).unwrap());
        assert_eq!(
            pxe_initrd_of_part(&url).as_deref(),
            Some("http://10.20.0.2:8080/flatcar/4593.2.5/flatcar_production_pxe_image.cpio.gz")
        );
        assert_eq!(pxe_initrd_of_part("http://s/flatcar/1/x.cpio.gz"), None);
        assert_eq!(pxe_initrd_of_part("http://s/pxe-initrd/readme"), None);
    }

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

    #[test]
    fn mac_from_config_names() {
        assert_eq!(
            mac_from_pxelinux_name("efi64/pxelinux.cfg/01-52-54-00-77-00-01").as_deref(),
            Some("52:54:00:77:00:01")
        );
        assert_eq!(mac_from_pxelinux_name("pxelinux.cfg/default"), None);
        assert_eq!(
            mac_from_pxelinux_name("pxelinux.cfg/01-zz-54-00-77-00-01"),
            None
        );
    }

    #[test]
    fn a_pxelinux_config_path_reads_back_as_its_mac() {
        for efi in [false, true] {
            let path = pxelinux_config(efi, "52:54:00:AB:00:01");
            let name = tftp_relative(&path).unwrap();
            assert_eq!(pxelinux_config_is_efi(name), Some(efi), "{name}");
            assert_eq!(
                mac_from_pxelinux_name(name).as_deref(),
                Some("52:54:00:ab:00:01")
            );
            assert_eq!(
                pxelinux_config_is_efi(tftp_relative(&pxelinux_default(efi)).unwrap()),
                Some(efi)
            );
            assert_eq!(mac_from_pxelinux_name(&pxelinux_default(efi)), None);
        }
        assert_eq!(
            pxelinux_config(false, "52:54:00:ab:00:01"),
            "tftp/pxelinux.cfg/01-52-54-00-ab-00-01"
        );
        assert_eq!(pxelinux_default(true), "tftp/efi64/pxelinux.cfg/default");
        assert_eq!(pxelinux_config_is_efi("lpxelinux.0"), None);
    }

    #[test]
    fn loaders_lie_where_dhcp_names_them() {
        assert_eq!(loader_path("lpxelinux.0", false), "tftp/lpxelinux.0");
        assert_eq!(loader_path("syslinux.efi", true), "tftp/efi64/syslinux.efi");
        assert_eq!(
            tftp_relative(&loader_path("syslinux.efi", true)),
            Some(loader_name("syslinux.efi", true).as_str())
        );
        assert_eq!(tftp_relative("http/x"), None);
        assert_eq!(tftp_relative("tftpx/y"), None);
    }

    #[test]
    fn an_ignition_path_reads_back_as_its_node_directory_and_id() {
        let dir = node_dir_name("worker-1", "9f2c41d0");
        let path = ignition_file(&ignition_dir(&dir), "install");
        assert_eq!(path, "http/ignition/worker-1-9f2c41d0/install.ign");
        assert_eq!(node_dir_of(&path), Some(dir.as_str()));
        assert_eq!(id_in_node_dir(&dir, "worker-1"), Some("9f2c41d0"));
        assert_eq!(id_in_node_dir(&dir, "worker"), Some("1-9f2c41d0"));
        assert_eq!(id_in_node_dir(&dir, "cp1"), None);
        assert_eq!(node_dir_of("http/sysext/k/SHA256SUMS"), None);
        assert_eq!(node_dir_of("tftp/ignition/x/y"), None);
        assert_eq!(
            ignition_url("http://10.0.0.1:8080", &ignition_dir(&dir), "node"),
            format!(
                "http://10.0.0.1:8080/{}",
                http_relative(&ignition_file(&ignition_dir(&dir), "node")).unwrap()
            )
        );
    }

    #[test]
    fn http_paths_round_trip() {
        for rel in [
            IPXE_ENTRY.to_string(),
            ipxe_script("52:54:00:aa:bb:cc"),
            dhcp_snippet("kea-dhcp4.json"),
            sysext_dir("kubernetes"),
            flatcar_dir("4593.2.5"),
        ] {
            assert_eq!(http_relative(&http_path(&rel)), Some(rel.as_str()));
        }
        assert_eq!(
            ipxe_script("52:54:00:aa:bb:cc"),
            "ipxe/52-54-00-aa-bb-cc.ipxe"
        );
        assert_eq!(
            flatcar_file("4593.2.5", "flatcar_production_pxe.vmlinuz"),
            "http/flatcar/4593.2.5/flatcar_production_pxe.vmlinuz"
        );
        assert_eq!(
            sysext_file("cilium", SYSEXT_LISTING),
            "http/sysext/cilium/SHA256SUMS"
        );
        assert_eq!(http_relative("tftp/x"), None);
        assert_eq!(http_relative("httpx/y"), None);
    }

    #[test]
    fn oci_paths_are_the_pull_api_paths_and_parse_back() {
        let hex = "b".repeat(64);
        let digest = format!("sha256:{hex}");
        let kind = oci_manifest_kind("application/vnd.oci.image.index.v1+json").unwrap();
        let manifest = oci_manifest("quay.io/cilium/cilium", "v1.18.2", kind);
        assert_eq!(
            manifest,
            "http/v2/quay.io/cilium/cilium/manifests/v1.18.2.oci-index"
        );
        assert_eq!(
            oci_media_type(kind),
            Some("application/vnd.oci.image.index.v1+json")
        );
        let blob = oci_blob("registry.k8s.io/pause", &digest);
        assert_eq!(
            parse_oci_request(http_relative(&blob).unwrap()),
            Some(OciRequest::Blob {
                name: "registry.k8s.io/pause",
                digest: &digest
            })
        );
        assert_eq!(
            parse_oci_request("v2/registry.k8s.io/pause/manifests/3.10"),
            Some(OciRequest::Manifest {
                name: "registry.k8s.io/pause",
                reference: "3.10"
            })
        );
        assert_eq!(parse_oci_request("v2/"), Some(OciRequest::Base));
        assert_eq!(parse_oci_request("v2"), Some(OciRequest::Base));
        assert_eq!(parse_oci_request("v2/pause/tags/list"), None);
        assert_eq!(parse_oci_request("v2/manifests/x"), None);
        assert_eq!(parse_oci_request("ignition/x"), None);
        assert_eq!(oci_manifest_kind("text/plain"), None);
        assert_eq!(
            chart_archive("cilium", "1.18.2"),
            "http/charts/cilium-1.18.2.tgz"
        );
    }
}
