//! Shared helpers for the cluster tests: a private copy of the example site,
//! hand-made artifact references, and Ignition file decoding.
use std::io::Read;
use std::path::{Path, PathBuf};

use pxebuild::fetch::refs::{ArtifactRef, ArtifactRefs, SysextRef};
use pxebuild::site::Site;

/// The repository root (site.toml, templates/, payload/).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Copies site.toml, templates/ and payload/ into a fresh temp dir.
pub fn example_site() -> (tempfile::TempDir, Site) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(repo().join("site.toml"), dir.path().join("site.toml")).unwrap();
    copy_tree(&repo().join("templates"), &dir.path().join("templates"));
    copy_tree(&repo().join("payload"), &dir.path().join("payload"));
    let site = Site::load(&dir.path().join("site.toml")).unwrap();
    (dir, site)
}

/// The example site with `edits` (from, to) applied to site.toml's text.
pub fn edited_site(edits: &[(&str, &str)]) -> (tempfile::TempDir, Site) {
    let (dir, _) = example_site();
    let path = dir.path().join("site.toml");
    let mut text = std::fs::read_to_string(&path).unwrap();
    for (from, to) in edits {
        assert!(text.contains(from), "site.toml has no {from:?}");
        text = text.replacen(from, to, 1);
    }
    std::fs::write(&path, text).unwrap();
    let site = Site::load(&path).unwrap();
    (dir, site)
}

pub fn copy_tree(from: &Path, to: &Path) {
    for entry in walkdir::WalkDir::new(from) {
        let entry = entry.unwrap();
        let dest = to.join(entry.path().strip_prefix(from).unwrap());
        if entry.file_type().is_dir() {
            std::fs::create_dir_all(&dest).unwrap();
        } else {
            std::fs::copy(entry.path(), &dest).unwrap();
        }
    }
}

fn aref(step: &str, path: &str) -> ArtifactRef {
    ArtifactRef {
        step: step.into(),
        path: path.into(),
    }
}

/// References as the fetch part would hand them over for the example site.
pub fn artifact_refs(site: &Site) -> ArtifactRefs {
    let v = site.file.flatcar.version.clone();
    let f = |file: &str| format!("http/flatcar/{v}/{file}");
    let sysext = |name: &str, version: &str| {
        let file_name = format!("{name}-{version}-x86-64.raw");
        SysextRef {
            name: name.into(),
            version: version.into(),
            image: aref(
                &format!("fetch:sysext/{name}"),
                &format!("http/sysext/{name}/{file_name}"),
            ),
            sha512: aref(
                &format!("fetch:sysext/{name}"),
                &format!("sysext/{name}/{file_name}.sha512"),
            ),
            file_name,
        }
    };
    ArtifactRefs {
        flatcar_version: v.clone(),
        pxe_kernel: Some(aref(
            "fetch:flatcar/kernel",
            &f("flatcar_production_pxe.vmlinuz"),
        )),
        pxe_initrd: Some(aref(
            "fetch:flatcar/initrd",
            &f("flatcar_production_pxe_image.cpio.gz"),
        )),
        install_image: Some(aref(
            "fetch:flatcar/image",
            &f("flatcar_production_image.bin.bz2"),
        )),
        install_image_sig: Some(aref(
            "fetch:flatcar/image",
            &f("flatcar_production_image.bin.bz2.sig"),
        )),
        loaders: vec![aref("fetch:loaders", "tftp/lpxelinux.0")],
        sysexts: {
            let mut sysexts = vec![
                sysext("kubernetes", &site.file.sysext.kubernetes),
                sysext("cilium", &site.file.sysext.cilium),
            ];
            if let Some(v) = site
                .file
                .sysext
                .containerd
                .as_deref()
                .filter(|v| !v.is_empty())
            {
                sysexts.push(sysext("containerd", v));
            }
            sysexts
        },
    }
}

/// A fake SHA-512 for a sysext sha512 path (128 hex digits).
pub fn fake_sha512(path: &str) -> String {
    pxebuild::digest::sha512_hex(path.as_bytes())
}

/// The decoded contents of an Ignition `storage.files` entry with `path`.
pub fn ignition_file(ign: &serde_json::Value, path: &str) -> Option<Vec<u8>> {
    let files = ign["storage"]["files"].as_array()?;
    let file = files.iter().find(|f| f["path"] == path)?;
    let source = file["contents"]["source"].as_str()?;
    let compressed = file["contents"]["compression"].as_str() == Some("gzip");
    let bytes = decode_data_url(source)?;
    if compressed {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&bytes[..])
            .read_to_end(&mut out)
            .ok()?;
        Some(out)
    } else {
        Some(bytes)
    }
}

/// Decodes a `data:` URL (base64 or percent-encoded).
pub fn decode_data_url(url: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    if meta.ends_with(";base64") {
        return base64::engine::general_purpose::STANDARD.decode(data).ok();
    }
    let bytes = data.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(out)
}

/// Runs Debian's `ignition-validate` on a file; fails when it is missing.
pub fn ignition_validate(path: &Path) {
    let out = std::process::Command::new("ignition-validate")
        .arg(path)
        .output()
        .expect("ignition-validate must be installed (Debian package `ignition`)");
    assert!(
        out.status.success(),
        "ignition-validate {}: {}{}",
        path.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
