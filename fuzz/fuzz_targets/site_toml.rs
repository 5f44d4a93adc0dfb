//! Any text as `site.toml`: the parser and validator must answer with a
//! diagnostic that names the file, never a panic; and whatever they accept must
//! hold up in the typed views the build reads it through (those panic on a
//! value validation should have refused). Seed it with the example site:
//! `cargo +nightly fuzz run site_toml -- -seed_inputs=site.toml`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pxebuild::site::Site;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let file = match Site::parse(text, "fuzz/site.toml") {
        Ok(file) => file,
        Err(err) => {
            let message = format!("{err:#}");
            assert!(message.contains("fuzz/site.toml"), "{message}");
            return;
        }
    };
    for node in &file.nodes {
        let _ = (node.node_name(), node.mac_addr(), node.ipv4(), node.role_kind());
    }
    let _ = (file.network.subnet_cidr(), file.network.gateway_ip());
    let cluster = &file.cluster;
    let _ = (
        cluster.endpoint_addr(),
        cluster.pod_cidr_net(),
        cluster.service_cidr_net(),
        cluster.token_ttl(),
    );
    let _ = file.cilium.effective_mtu();
});
