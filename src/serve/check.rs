//! `serve --check`: the tree against its manifest, before serving. Every listed
//! file must exist under `dist/` (reached through the same resolver the server
//! uses), with the listed size and SHA-256. A corrupt or half-copied tree is
//! refused instead of being served to a rack of machines.
use std::io::Read;
use std::path::Path;

use anyhow::{bail, Result};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

use crate::manifest::{FileEntry, Manifest};
use crate::serve::root::Root;

/// Checks every file; returns the number checked or an error listing problems.
pub fn check_tree(dist: &Path, manifest: &Manifest) -> Result<usize> {
    let problems: Vec<String> = manifest
        .files
        .par_iter()
        .filter_map(|entry| check_file(dist, entry).err())
        .collect();
    if !problems.is_empty() {
        let mut problems = problems;
        problems.sort();
        for problem in &problems {
            crate::warn!("{problem}");
        }
        bail!(
            "{} of {} files in {} do not match manifest.json",
            problems.len(),
            manifest.files.len(),
            dist.display()
        );
    }
    Ok(manifest.files.len())
}

fn check_file(dist: &Path, entry: &FileEntry) -> Result<(), String> {
    let (area, rel) = entry
        .path
        .split_once('/')
        .filter(|(area, _)| *area == crate::layout::HTTP || *area == crate::layout::TFTP)
        .ok_or_else(|| format!("{}: not under http/ or tftp/", entry.path))?;
    let mut opened = Root::new(dist.join(area))
        .open(rel)
        .map_err(|refusal| format!("{}: {}", entry.path, refusal.as_str()))?;
    if opened.size != entry.size {
        return Err(format!(
            "{}: size {} but manifest says {}",
            entry.path, opened.size, entry.size
        ));
    }
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        match opened.file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => hasher.update(&buf[..n]),
            Err(err) => return Err(format!("{}: reading: {err}", entry.path)),
        }
    }
    let digest = hex::encode(hasher.finalize());
    if digest != entry.sha256 {
        return Err(format!(
            "{}: sha256 {digest} but manifest says {}",
            entry.path, entry.sha256
        ));
    }
    Ok(())
}
