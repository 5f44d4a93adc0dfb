//! The PXE initrd in parts, for syslinux.efi.
//!
//! syslinux 6 reads a file fetched over HTTP as one of unknown length (its
//! HTTP client drops `Content-Length`): the buffer grows 1 MiB at a time, and
//! on EFI every growth allocates a new buffer and copies the old one
//! (`efi_realloc`). The copying grows with the square of the file's size:
//! about 93 GiB for Flatcar's 437 MiB initrd, which under emulation takes
//! longer than the 5 minutes UEFI firmware gives a boot image before its
//! watchdog resets the machine. syslinux loads a comma-separated `initrd=`
//! list one file after another and lays the files out back to back, each
//! aligned to 4 bytes (`initramfs_load_archive`), so the kernel sees exactly
//! the bytes of the whole file when the parts are its consecutive slices and
//! every part but the last is a multiple of 4 bytes. [`PARTS`] equal parts
//! cut the copying by that factor.
//!
//! The count is fixed, not the size: the boot configs are rendered before
//! the initrd is fetched, and a fixed list keeps each config's command line
//! a known length (see [`super::cmdline`]).
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::engine::key::Key;
use crate::engine::step::{Inputs, RunCtx, Step, Visibility};
use crate::fetch::refs::ArtifactRef;

/// How many parts the initrd is cut into: 16 takes the copying of a 437 MiB
/// initrd from 93 GiB to 6 GiB, and 16 URLs keep the command line well
/// under the 2047 bytes Linux accepts (about 900 bytes with an IP address).
pub const PARTS: usize = 16;

/// Every part's size but the last is a multiple of this: syslinux needs 4
/// bytes; a page also suits loaders that align each initrd to one.
const ALIGN: u64 = 4096;

/// The size of every part but the last, for an initrd of `size` bytes.
/// Below 61,441 bytes (never a real initrd, only a test's) the last parts
/// are empty.
pub fn part_size(size: u64) -> u64 {
    size.div_ceil(PARTS as u64).div_ceil(ALIGN).max(1) * ALIGN
}

/// Cuts the PXE initrd into [`PARTS`] files beside it (`layout::pxe_initrd_part`).
pub struct InitrdPartsStep {
    pub initrd: ArtifactRef,
    pub version: String,
}

/// The key of the parts: the initrd's digest and how it is cut.
#[derive(Serialize)]
struct InitrdPartsKey<'a> {
    initrd: &'a str,
    parts: usize,
    align: u64,
}

impl Step for InitrdPartsStep {
    fn id(&self) -> String {
        "split:flatcar/pxe-initrd".into()
    }

    fn deps(&self) -> Vec<String> {
        vec![self.initrd.step.clone()]
    }

    fn key<'a>(&'a self, inputs: &'a Inputs<'_>) -> Result<Key<'a>> {
        Ok(Key::new(InitrdPartsKey {
            initrd: &inputs.get(&self.initrd.path)?.sha256,
            parts: PARTS,
            align: ALIGN,
        }))
    }

    fn run(&self, ctx: &mut RunCtx) -> Result<()> {
        let initrd = ctx.inputs.get(&self.initrd.path)?.clone();
        let size_each = part_size(initrd.size);
        let path = ctx.inputs.store_path(&self.initrd.path)?;
        let mut source =
            File::open(&path).with_context(|| format!("opening {}", path.display()))?;
        let temp = ctx.store().temp_dir()?;
        for index in 0..PARTS {
            let offset = (size_each * index as u64).min(initrd.size);
            let len = size_each.min(initrd.size - offset);
            let part = temp.join(format!("initrd-{}-{index:02}.part", &initrd.sha256[..16]));
            copy_range(&mut source, offset, len, &part)
                .with_context(|| format!("writing part {index} of {}", initrd.path))?;
            let path = crate::layout::pxe_initrd_part(&self.version, index);
            ctx.put_file(&path, &part, Visibility::Public)?;
        }
        Ok(())
    }
}

/// Writes `len` bytes of `source` from `offset` to a new file `dest`.
fn copy_range(source: &mut File, offset: u64, len: u64, dest: &std::path::Path) -> Result<()> {
    source.seek(SeekFrom::Start(offset))?;
    let mut output = File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
    let copied = std::io::copy(&mut source.take(len), &mut output)?;
    if copied != len {
        bail!(
            "the initrd ended after {} bytes of the {len} wanted from offset {offset}",
            offset + copied
        );
    }
    output.flush()?;
    output.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_are_page_multiples_that_cover_the_file_once() {
        for size in [457_850_580_u64, 19_000_001, 16 * 4096 * 3, 15 * 4096 + 1] {
            let each = part_size(size);
            assert_eq!(each % ALIGN, 0, "{size}");
            assert!(
                each * (PARTS as u64 - 1) < size,
                "the last part has bytes: {size}"
            );
            assert!(
                each * PARTS as u64 >= size,
                "the parts cover the file: {size}"
            );
        }
        assert_eq!(part_size(457_850_580), 28_618_752);
        assert_eq!(
            part_size(53),
            4096,
            "a test's tiny file: one part, the rest empty"
        );
        assert_eq!(part_size(0), 4096);
    }

    #[test]
    fn a_range_is_copied_exactly_and_a_short_source_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let source = dir.path().join("s");
        let bytes: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&source, &bytes).unwrap();
        let dest = dir.path().join("d");
        let mut source = File::open(&source).unwrap();
        copy_range(&mut source, 4096, 4096, &dest).unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), &bytes[4096..8192]);
        let err = copy_range(&mut source, 8192, 4096, &dest)
            .unwrap_err()
            .to_string();
        assert!(err.contains("ended after 10000 bytes"), "{err}");
    }
}
