//! Any text as `site.toml`: the parser and validator must answer with a
//! diagnostic that names the file, never a panic; and whatever they accept
//! becomes the typed site the build reads, which serialises back to JSON.
//! Seed it with the example site:
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
        let _ = (
            pxebuild::layout::pxelinux_mac_name(node.mac),
            node.is_control_plane(),
        );
    }
    let cluster = &file.cluster;
    let _ = (cluster.endpoint.get(), cluster.bootstrap_token_ttl.get());
    serde_json::to_string(&file).expect("a typed site serialises");
});
