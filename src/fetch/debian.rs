//! Debian's loader packages, the default source of the boot loaders: the
//! `.deb` files pxebuild pins (pool path, version, SHA-256 as Debian's package
//! index lists them), and a reader that takes files out of a `.deb` (an `ar`
//! archive whose `data.tar` is compressed with xz, zstd or gzip, or not at all).
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

/// Debian's archive root; pool paths are relative to it.
pub(crate) const DEBIAN_URL: &str = "https://deb.debian.org/debian";

/// One pinned Debian package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Package {
    pub name: &'static str,
    pub version: &'static str,
    /// Below the archive root; the file name drops the version's epoch.
    pub pool_path: &'static str,
    pub size: u64,
    pub sha256: &'static str,
}

impl Package {
    /// The file name in the pool (the last segment of its path).
    pub(crate) fn file_name(&self) -> &'static str {
        self.pool_path.rsplit('/').next().unwrap_or(self.pool_path)
    }

    /// The canonical URL below archive root `base` (no trailing slash).
    pub(crate) fn url(&self, base: &str) -> String {
        format!("{base}/{}", self.pool_path)
    }
}

const SYSLINUX_VERSION: &str = "3:6.04~git20190206.bf6db5b4+dfsg1-3";

/// Debian 12 ("bookworm") packages: the loaders CI boots in its QEMU lab.
pub(crate) const PXELINUX: Package = Package {
    name: "pxelinux",
    version: SYSLINUX_VERSION,
    pool_path: "pool/main/s/syslinux/pxelinux_6.04~git20190206.bf6db5b4+dfsg1-3_all.deb",
    size: 156_016,
    sha256: "ef253a75cb558b38c4b65f8c09a816e7c405645751936065f14558c1553d0db1",
};
pub(crate) const SYSLINUX_EFI: Package = Package {
    name: "syslinux-efi",
    version: SYSLINUX_VERSION,
    pool_path: "pool/main/s/syslinux/syslinux-efi_6.04~git20190206.bf6db5b4+dfsg1-3_all.deb",
    size: 200_892,
    sha256: "b428d91a917540f141c5168c43051f4e3da7c477e082ca3fb0c681bdf1170552",
};
pub(crate) const SYSLINUX_COMMON: Package = Package {
    name: "syslinux-common",
    version: SYSLINUX_VERSION,
    pool_path: "pool/main/s/syslinux/syslinux-common_6.04~git20190206.bf6db5b4+dfsg1-3_all.deb",
    size: 1_238_336,
    sha256: "f7e4ead7fdfe5cb6117d8d2485d75e53570a8cf680c81a432f92c1774f878875",
};
pub(crate) const IPXE: Package = Package {
    name: "ipxe",
    version: "1.0.0+git-20190125.36a4c85-5.1",
    pool_path: "pool/main/i/ipxe/ipxe_1.0.0+git-20190125.36a4c85-5.1_all.deb",
    size: 1_171_912,
    sha256: "49dc854857dcfb354292bdc79ce7419e0d72988666723395b2e102d147c3730d",
};

/// Why files could not be taken out of a `.deb`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DebError {
    #[error("is not a Debian package: {0}")]
    NotADeb(String),
    #[error("has no data.tar member")]
    NoData,
    #[error("has a {0} member, a compression pxebuild does not read")]
    Unsupported(String),
    #[error("lacks {}", .0.join(", "))]
    Missing(Vec<String>),
    #[error("cannot be read: {0}")]
    Io(#[from] std::io::Error),
}

/// The regular files `wanted` (paths inside data.tar, without a leading
/// `./`) from the `.deb` read from `deb`, by path. Every wanted path must be
/// a regular file in the package; a symlink or a missing path is `Missing`.
pub(crate) fn read_members(
    deb: impl Read,
    wanted: &[&str],
) -> Result<BTreeMap<String, Vec<u8>>, DebError> {
    let mut archive = ar::Archive::new(deb);
    let mut first = true;
    while let Some(entry) = archive.next_entry() {
        let mut entry = entry.map_err(|e| DebError::NotADeb(e.to_string()))?;
        let name = String::from_utf8_lossy(entry.header().identifier()).into_owned();
        if first {
            // dpkg's own test of a package: `debian-binary` first, format 2.x.
            let mut version = String::new();
            if name != "debian-binary" || entry.read_to_string(&mut version).is_err() {
                return Err(DebError::NotADeb(format!(
                    "its first member is {name:?}, not debian-binary"
                )));
            }
            if !version.starts_with("2.") {
                return Err(DebError::NotADeb(format!(
                    "format {:?}, not 2.x",
                    version.trim()
                )));
            }
            first = false;
            continue;
        }
        let Some(compression) = name.strip_prefix("data.tar") else {
            continue;
        };
        let data: Box<dyn Read + '_> = match compression {
            "" => Box::new(entry),
            ".xz" => Box::new(lzma_rust2::XzReader::new(BufReader::new(entry), true)),
            ".zst" => Box::new(ZstdFrames::new(BufReader::new(entry))),
            ".gz" => Box::new(flate2::read::GzDecoder::new(entry)),
            _ => return Err(DebError::Unsupported(name)),
        };
        return extract(data, wanted);
    }
    if first {
        return Err(DebError::NotADeb("it has no members".into()));
    }
    Err(DebError::NoData)
}

/// The wanted regular files of a data.tar stream.
fn extract(data: impl Read, wanted: &[&str]) -> Result<BTreeMap<String, Vec<u8>>, DebError> {
    let mut found = BTreeMap::new();
    let mut tar = tar::Archive::new(data);
    for entry in tar.entries()? {
        let mut entry = entry?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry.path()?.to_string_lossy().into_owned();
        let path = path.trim_start_matches("./");
        if let Some(w) = wanted.iter().find(|w| **w == path) {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes)?;
            found.insert(w.to_string(), bytes);
            if found.len() == wanted.len() {
                break;
            }
        }
    }
    let missing: Vec<String> = wanted
        .iter()
        .filter(|w| !found.contains_key(**w))
        .map(|w| w.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(DebError::Missing(missing));
    }
    Ok(found)
}

/// A zstd stream of one or more frames (the format allows several; ruzstd's
/// streaming decoder reads one), decoded in pure Rust.
struct ZstdFrames<R: Read> {
    source: Option<BufReader<R>>,
    frame: Option<ruzstd::decoding::StreamingDecoder<BufReader<R>, ruzstd::decoding::FrameDecoder>>,
}

impl<R: Read> ZstdFrames<R> {
    fn new(source: BufReader<R>) -> ZstdFrames<R> {
        ZstdFrames {
            source: Some(source),
            frame: None,
        }
    }
}

impl<R: Read> Read for ZstdFrames<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            if let Some(frame) = self.frame.as_mut() {
                let n = frame.read(buf)?;
                if n > 0 || buf.is_empty() {
                    return Ok(n);
                }
                let done = self.frame.take().map(|f| f.into_inner());
                self.source = done;
            }
            let Some(mut source) = self.source.take() else {
                return Ok(0);
            };
            if source.fill_buf()?.is_empty() {
                return Ok(0);
            }
            let frame = ruzstd::decoding::StreamingDecoder::new(source)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
            self.frame = Some(frame);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    /// A real `.deb` built by dpkg-deb with `-Z<compression>`, holding
    /// `usr/lib/x/a.bin`, `usr/lib/x/b.bin` and a symlink `usr/lib/x/link`.
    fn deb(compression: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("pkg");
        std::fs::create_dir_all(root.join("DEBIAN")).unwrap();
        std::fs::create_dir_all(root.join("usr/lib/x")).unwrap();
        std::fs::write(
            root.join("DEBIAN/control"),
            "Package: fixture\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example>\nDescription: test\n",
        )
        .unwrap();
        std::fs::write(root.join("usr/lib/x/a.bin"), b"loader a\n").unwrap();
        std::fs::write(root.join("usr/lib/x/b.bin"), vec![7u8; 300_000]).unwrap();
        std::os::unix::fs::symlink("a.bin", root.join("usr/lib/x/link")).unwrap();
        let out = dir.path().join(format!("fixture-{compression}.deb"));
        let run = Command::new("dpkg-deb")
            .arg(format!("-Z{compression}"))
            .args(["--root-owner-group", "--build"])
            .arg(&root)
            .arg(&out)
            .output()
            .expect("dpkg-deb (Debian's dpkg) builds the test packages");
        assert!(
            run.status.success(),
            "{}",
            String::from_utf8_lossy(&run.stderr)
        );
        (dir, out)
    }

    fn members(path: &Path) -> Vec<String> {
        let out = Command::new("ar").arg("t").arg(path).output().unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect()
    }

    #[test]
    fn files_come_out_of_xz_zstd_gzip_and_plain_data_members() {
        for (compression, member) in [
            ("xz", "data.tar.xz"),
            ("zstd", "data.tar.zst"),
            ("gzip", "data.tar.gz"),
            ("none", "data.tar"),
        ] {
            let (_dir, path) = deb(compression);
            assert!(
                members(&path).contains(&member.to_string()),
                "{compression}"
            );
            let file = std::fs::File::open(&path).unwrap();
            let got = read_members(file, &["usr/lib/x/a.bin", "usr/lib/x/b.bin"]).unwrap();
            assert_eq!(got["usr/lib/x/a.bin"], b"loader a\n", "{compression}");
            assert_eq!(got["usr/lib/x/b.bin"], vec![7u8; 300_000], "{compression}");
        }
    }

    #[test]
    fn a_zstd_data_member_of_several_frames_is_read_whole() {
        // dpkg-deb writes one frame; the format allows more (pzstd, or
        // concatenated streams), so build such a package with binutils' ar.
        let (_dir, path) = deb("none");
        let dir = tempfile::tempdir().unwrap();
        let run = |cmd: &mut Command| {
            let out = cmd.current_dir(dir.path()).output().unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        run(Command::new("ar").arg("x").arg(&path));
        let tar = std::fs::read(dir.path().join("data.tar")).unwrap();
        let (head, tail) = tar.split_at(tar.len() / 2);
        let mut frames = Vec::new();
        for (i, part) in [head, tail].iter().enumerate() {
            let name = format!("part{i}");
            std::fs::write(dir.path().join(&name), part).unwrap();
            run(Command::new("zstd").args(["-q", "-f", &name]));
            frames.extend(std::fs::read(dir.path().join(format!("{name}.zst"))).unwrap());
        }
        std::fs::write(dir.path().join("data.tar.zst"), frames).unwrap();
        let control = members(&path)
            .into_iter()
            .find(|m| m.starts_with("control"))
            .unwrap();
        run(Command::new("ar").args([
            "rc",
            "two-frames.deb",
            "debian-binary",
            &control,
            "data.tar.zst",
        ]));
        let file = std::fs::File::open(dir.path().join("two-frames.deb")).unwrap();
        let got = read_members(file, &["usr/lib/x/b.bin"]).unwrap();
        assert_eq!(got["usr/lib/x/b.bin"], vec![7u8; 300_000]);
    }

    #[test]
    fn a_missing_member_or_a_symlink_is_named() {
        let (_dir, path) = deb("xz");
        let file = std::fs::File::open(&path).unwrap();
        let err = read_members(
            file,
            &["usr/lib/x/a.bin", "usr/lib/x/gone", "usr/lib/x/link"],
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "lacks usr/lib/x/gone, usr/lib/x/link");
    }

    #[test]
    fn a_file_that_is_no_deb_is_refused() {
        let err = read_members(&b"!<arch>\n"[..], &["x"]).unwrap_err();
        assert!(err.to_string().contains("no members"), "{err}");
        let err = read_members(&b"PK\x03\x04 a zip"[..], &["x"]).unwrap_err();
        assert!(matches!(err, DebError::NotADeb(_)), "{err}");
        // An ar archive that is not a package (a static library).
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("x.o"), b"object").unwrap();
        let lib = dir.path().join("lib.a");
        let run = Command::new("ar")
            .arg("rc")
            .arg(&lib)
            .arg(dir.path().join("x.o"))
            .output()
            .unwrap();
        assert!(run.status.success());
        let err = read_members(std::fs::File::open(&lib).unwrap(), &["x"]).unwrap_err();
        assert!(err.to_string().contains("not debian-binary"), "{err}");
    }

    #[test]
    fn pool_file_names_drop_the_epoch() {
        for p in [PXELINUX, SYSLINUX_EFI, SYSLINUX_COMMON, IPXE] {
            let upstream = p.version.split_once(':').map_or(p.version, |(_, v)| v);
            assert_eq!(p.file_name(), format!("{}_{upstream}_all.deb", p.name));
            assert_eq!(p.sha256.len(), 64);
        }
        assert_eq!(
            PXELINUX.url(DEBIAN_URL),
            "https://deb.debian.org/debian/pool/main/s/syslinux/pxelinux_6.04~git20190206.bf6db5b4+dfsg1-3_all.deb"
        );
    }
}
