//! Boot configs per MAC (pxelinux, syslinux.efi, iPXE), the local-disk
//! default, and the DHCP snippets, checked as text and with dnsmasq itself.
use std::process::Command;

use pxebuild::boot::{render_files, BootContext, BootFile};
use pxebuild::render::context::SiteContext;
use pxebuild::render::templates::Templates;
use pxebuild::secrets;
use pxebuild::site::Site;

use crate::cluster_common::*;

fn boot_files(site: &Site) -> (Vec<BootFile>, secrets::Secrets) {
    let s = secrets::ensure(site, None).unwrap();
    let site_ctx = SiteContext::new(site, &artifact_refs(site)).unwrap();
    let ctx = BootContext::new(site, &site_ctx, &s, &artifact_refs(site)).unwrap();
    let templates = Templates::load(&site.templates_dir()).unwrap();
    (render_files(&templates, &ctx).unwrap(), s)
}

fn file<'a>(files: &'a [BootFile], path: &str) -> &'a str {
    &files
        .iter()
        .find(|f| f.path == path)
        .unwrap_or_else(|| panic!("{path} missing"))
        .text
}

#[test]
fn cluster_boot_configs_for_each_mac_and_a_local_default() {
    let (_dir, site) = example_site();
    let (files, s) = boot_files(&site);
    let base = "http://10.20.0.2:8080";
    let kernel = format!("KERNEL {base}/flatcar/4593.2.5/flatcar_production_pxe.vmlinuz");
    let whole = format!(" initrd={base}/flatcar/4593.2.5/flatcar_production_pxe_image.cpio.gz ");
    // syslinux.efi's: the sixteen parts, in order, as one comma-separated list.
    let parts: Vec<String> = (0..16)
        .map(|i| format!("{base}/flatcar/4593.2.5/pxe-initrd/{i:02}"))
        .collect();
    let in_parts = format!(" initrd={} ", parts.join(","));
    for node in &site.file.nodes {
        let name = format!("01-{}", node.mac.to_string().replace(':', "-"));
        let dir = s.node_dir_name(&node.name).unwrap();
        let url = format!("ignition.config.url={base}/ignition/{dir}/install.ign");
        for (prefix, initrd) in [
            ("tftp/pxelinux.cfg", &whole),
            ("tftp/efi64/pxelinux.cfg", &in_parts),
        ] {
            let cfg = file(&files, &format!("{prefix}/{name}"));
            assert!(cfg.contains(&kernel), "{cfg}");
            assert!(cfg.contains(initrd.as_str()), "{cfg}");
            let lengths = pxebuild::boot::cmdline::lengths(cfg);
            assert!(lengths.len() == 1 && lengths[0] < 1500, "{lengths:?}");
            assert!(cfg.contains(&url), "{cfg}");
            for arg in [
                "flatcar.first_boot=1",
                "ignition.platform.id=metal",
                "console=tty0",
                "console=ttyS0,115200n8",
            ] {
                assert!(cfg.contains(arg), "{arg} in {cfg}");
            }
            assert!(cfg.contains("SERIAL 0 115200"));
        }
        assert!(!dir.ends_with(&node.name), "the path carries a random id");
    }
    for prefix in ["tftp/pxelinux.cfg", "tftp/efi64/pxelinux.cfg"] {
        let default = file(&files, &format!("{prefix}/default"));
        assert!(default.contains("LOCALBOOT"), "{default}");
        assert!(!default.contains("KERNEL"), "the default never installs");
        assert!(!default.contains("ignition"), "{default}");
    }
    assert!(
        !files.iter().any(|f| f.path.starts_with("http/ipxe/")),
        "no iPXE scripts unless the site uses iPXE"
    );
}

#[test]
fn cluster_boot_config_whose_command_line_linux_would_cut_is_refused() {
    let (dir, site) = example_site();
    // A site's own template that appends too much: 2000 bytes of arguments
    // on top of the sixteen initrd parts.
    let templates = dir.path().join("templates");
    let path = templates.join("boot/pxelinux.cfg.hbs");
    let text = std::fs::read_to_string(&path).unwrap();
    let long = format!("{{{{node.kernel_args}}}} x={}", "y".repeat(2000));
    std::fs::write(&path, text.replace("{{node.kernel_args}}", &long)).unwrap();
    let s = secrets::ensure(&site, None).unwrap();
    let refs = artifact_refs(&site);
    let ctx = BootContext::new(&site, &SiteContext::new(&site, &refs).unwrap(), &s, &refs).unwrap();
    let err = render_files(&Templates::load(&templates).unwrap(), &ctx).unwrap_err();
    assert_eq!(pxebuild::error::exit_code(&err), 2, "{err:#}");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("tftp/pxelinux.cfg/01-52-54-00-20-00-11 (node cp1)")
            && msg.contains("over the 2047 Linux accepts"),
        "{msg}"
    );
}

#[test]
fn cluster_ipxe_scripts_when_the_site_uses_ipxe() {
    let (dir, _) = example_site();
    let path = dir.path().join("site.toml");
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "loaders = [\"bios\", \"uefi\"]",
        "loaders = [\"bios\", \"uefi\", \"ipxe\"]",
    );
    std::fs::write(&path, text).unwrap();
    let site = Site::load(&path).unwrap();
    let (files, s) = boot_files(&site);
    let boot = file(&files, "http/ipxe/boot.ipxe");
    assert!(boot.starts_with("#!ipxe"));
    assert!(boot.contains("http://10.20.0.2:8080/ipxe/${mac:hexhyp}.ipxe"));
    assert!(boot.contains("exit"), "unknown machines boot locally");
    for node in &site.file.nodes {
        let script = file(
            &files,
            &format!("http/ipxe/{}.ipxe", node.mac.to_string().replace(':', "-")),
        );
        assert!(
            script.contains("initrd=flatcar_production_pxe_image.cpio.gz"),
            "{script}"
        );
        assert!(script.contains("initrd --name flatcar_production_pxe_image.cpio.gz"));
        let dir = s.node_dir_name(&node.name).unwrap();
        assert!(script.contains(&format!("/ignition/{dir}/install.ign")));
    }
    let dnsmasq = file(&files, "http/dhcp/dnsmasq.conf");
    assert!(dnsmasq.contains("dhcp-boot=tag:ipxe,http://10.20.0.2:8080/ipxe/boot.ipxe"));
    assert!(dnsmasq.contains("dhcp-boot=tag:efi64,tag:!ipxe,ipxe.efi,,10.20.0.2"));
    dnsmasq_accepts(&dir.path().join("dnsmasq.conf"), dnsmasq);
}

#[test]
fn cluster_dhcp_snippets_name_next_server_and_loaders() {
    let (dir, site) = example_site();
    let (files, _) = boot_files(&site);
    let dnsmasq = file(&files, "http/dhcp/dnsmasq.conf");
    for line in dnsmasq
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let key = line.split('=').next().unwrap();
        assert!(
            [
                "dhcp-match",
                "dhcp-boot",
                "dhcp-host",
                "dhcp-userclass",
                "dhcp-option"
            ]
            .contains(&key),
            "only PXE lines may appear (the lab includes it): {line}"
        );
    }
    assert!(dnsmasq.contains("dhcp-match=set:efi64,option:client-arch,7"));
    assert!(dnsmasq.contains("dhcp-match=set:efi64,option:client-arch,9"));
    assert!(dnsmasq.contains("dhcp-boot=tag:!efi64,lpxelinux.0,,10.20.0.2"));
    assert!(dnsmasq.contains("dhcp-boot=tag:efi64,efi64/syslinux.efi,,10.20.0.2"));
    for node in &site.file.nodes {
        assert!(dnsmasq.contains(&format!("dhcp-host={},{},{}", node.mac, node.ip, node.name)));
    }
    dnsmasq_accepts(&dir.path().join("dnsmasq.conf"), dnsmasq);
    let isc = file(&files, "http/dhcp/dhcpd.conf");
    assert!(isc.contains("next-server 10.20.0.2;"));
    assert!(isc.contains("option pxe-client-arch = 00:07"));
    assert!(isc.contains("filename \"lpxelinux.0\";"));
    let kea: serde_json::Value =
        serde_json::from_str(file(&files, "http/dhcp/kea-dhcp4.json")).unwrap();
    let classes = kea["Dhcp4"]["client-classes"].as_array().unwrap();
    assert!(classes
        .iter()
        .any(|c| c["boot-file-name"] == "efi64/syslinux.efi" && c["next-server"] == "10.20.0.2"));
    let reservations = kea["Dhcp4"]["subnet4"][0]["reservations"]
        .as_array()
        .unwrap();
    assert_eq!(reservations.len(), site.file.nodes.len());
}

/// `dnsmasq --test` parses a config that includes the snippet.
fn dnsmasq_accepts(path: &std::path::Path, snippet: &str) {
    std::fs::write(path, snippet).unwrap();
    let main = path.with_file_name("main.conf");
    std::fs::write(
        &main,
        format!(
            "port=0\ndhcp-range=10.20.0.100,10.20.0.199,1h\nconf-file={}\n",
            path.display()
        ),
    )
    .unwrap();
    let out = Command::new("dnsmasq")
        .arg("--test")
        .arg(format!("--conf-file={}", main.display()))
        .output()
        .expect("dnsmasq is installed");
    assert!(
        out.status.success(),
        "dnsmasq --test: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
