//! What the last build published into its output directory: for every file
//! of the tree, the store blob it links and its identity and times right
//! after the swap (device, inode, size, mtime, ctime), plus those of
//! `manifest.json`. Kept per output directory beside the step index
//! (`steps/<slot>.published`).
//!
//! dist/ files are hard links into the store, so a file edited in place edits
//! the cached blob with it, and a rebuild that trusts the cache would publish
//! the edit again. Editing a file changes its mtime and ctime (and usually its
//! size); replacing or deleting it changes or removes its inode. So the build
//! stats each published file (what the no-op check did anyway, now against
//! this record instead of sizes only), and only a file that differs costs a
//! re-hash of its blob.
//!
//! The record is a small binary file (read on every build; parsing JSON of a
//! large tree would cost more than the stats). A missing or unreadable record
//! only means the next build publishes again.
use std::fs;
use std::path::Path;

use anyhow::Result;
use rustix::fs::{statat, AtFlags, FileType};

use crate::fsutil;
use crate::manifest::{self, Manifest};

const MAGIC: &[u8] = b"pxebuild published 1\n";

/// What identifies a file's state: an edit in place changes the times, a
/// replacement the inode.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct FileStat {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: (i64, u32),
    pub ctime: (i64, u32),
}

impl FileStat {
    #[allow(clippy::unnecessary_cast)] // the field types differ between targets
    pub(crate) fn of(st: &rustix::fs::Stat) -> FileStat {
        FileStat {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            size: st.st_size as u64,
            mtime: (st.st_mtime as i64, st.st_mtime_nsec as u32),
            ctime: (st.st_ctime as i64, st.st_ctime_nsec as u32),
        }
    }

    const LEN: usize = 8 * 4 + 4 + 8 + 4;

    fn write(&self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(&self.dev.to_le_bytes());
        buf.extend_from_slice(&self.ino.to_le_bytes());
        buf.extend_from_slice(&self.size.to_le_bytes());
        buf.extend_from_slice(&self.mtime.0.to_le_bytes());
        buf.extend_from_slice(&self.mtime.1.to_le_bytes());
        buf.extend_from_slice(&self.ctime.0.to_le_bytes());
        buf.extend_from_slice(&self.ctime.1.to_le_bytes());
    }

    fn read(r: &mut Reader) -> Option<FileStat> {
        Some(FileStat {
            dev: r.u64()?,
            ino: r.u64()?,
            size: r.u64()?,
            mtime: (r.u64()? as i64, r.u32()?),
            ctime: (r.u64()? as i64, r.u32()?),
        })
    }
}

/// One published file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry<'a> {
    /// Relative to the output directory.
    pub path: &'a str,
    pub sha256: &'a str,
    pub stat: FileStat,
}

/// The record of one publish. Stored as a table of fixed-size rows and one
/// text of every digest and path: loading it is one allocation for the text
/// and one for the rows, not two per file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Record {
    /// `manifest.json` of the published tree.
    pub manifest: FileStat,
    /// Per file: its state, then the lengths of its sha256 and its path,
    /// which follow one another in `text`, at `start`.
    rows: Vec<(FileStat, u32, u16, u16)>,
    text: String,
}

impl Record {
    fn new(manifest: FileStat, entries: &[Entry]) -> Record {
        let mut record = Record {
            manifest,
            rows: Vec::with_capacity(entries.len()),
            text: String::new(),
        };
        for e in entries {
            let start = record.text.len() as u32;
            record.text.push_str(e.sha256);
            record.text.push_str(e.path);
            let (sha, path) = (e.sha256.len() as u16, e.path.len() as u16);
            record.rows.push((e.stat, start, sha, path));
        }
        record
    }

    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    pub(crate) fn entry(&self, i: usize) -> Entry<'_> {
        let (stat, start, sha, path) = self.rows[i];
        let (start, sha, path) = (start as usize, sha as usize, path as usize);
        Entry {
            sha256: &self.text[start..start + sha],
            path: &self.text[start + sha..start + sha + path],
            stat,
        }
    }

    #[cfg(test)]
    pub(crate) fn entries(&self) -> impl Iterator<Item = Entry<'_>> {
        (0..self.len()).map(|i| self.entry(i))
    }

    /// The record at `path`; `None` when missing or unreadable.
    pub(crate) fn load(path: &Path) -> Option<Record> {
        Record::decode(&fs::read(path).ok()?)
    }

    pub(crate) fn save(&self, path: &Path) -> Result<()> {
        // No fsync: a record lost in a crash only costs one more publish.
        fsutil::atomic_write_batched(path, &self.encode(), 0o644)
    }

    const ROW: usize = FileStat::LEN + 2 + 2;

    fn encode(&self) -> Vec<u8> {
        let mut buf = Vec::with_capacity(
            MAGIC.len() + FileStat::LEN + 8 + self.rows.len() * Record::ROW + self.text.len(),
        );
        buf.extend_from_slice(MAGIC);
        self.manifest.write(&mut buf);
        buf.extend_from_slice(&(self.rows.len() as u32).to_le_bytes());
        buf.extend_from_slice(&(self.text.len() as u32).to_le_bytes());
        for (stat, _, sha, path) in &self.rows {
            stat.write(&mut buf);
            buf.extend_from_slice(&sha.to_le_bytes());
            buf.extend_from_slice(&path.to_le_bytes());
        }
        buf.extend_from_slice(self.text.as_bytes());
        buf
    }

    fn decode(bytes: &[u8]) -> Option<Record> {
        let mut r = Reader(bytes.strip_prefix(MAGIC)?);
        let manifest = FileStat::read(&mut r)?;
        let count = r.u32()? as usize;
        let text_len = r.u32()? as usize;
        // A count or length that cannot fit is a damaged file, not a reason
        // to reserve gigabytes.
        if count > r.0.len() / Record::ROW || text_len > r.0.len() {
            return None;
        }
        let mut rows = Vec::with_capacity(count);
        let mut start = 0usize;
        for _ in 0..count {
            let stat = FileStat::read(&mut r)?;
            let sha = r.u16()?;
            let path = r.u16()?;
            rows.push((stat, start as u32, sha, path));
            start += sha as usize + path as usize;
        }
        let text = String::from_utf8(r.take(text_len)?.to_vec()).ok()?;
        if start != text_len || !r.0.is_empty() {
            return None;
        }
        // Every digest and path starts and ends on a character boundary.
        let record = Record {
            manifest,
            rows,
            text,
        };
        let aligned = record.rows.iter().all(|&(_, start, sha, _)| {
            record.text.is_char_boundary(start as usize)
                && record.text.is_char_boundary(start as usize + sha as usize)
        });
        aligned.then_some(record)
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Option<&[u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }
    fn u64(&mut self) -> Option<u64> {
        Some(u64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }
}

/// The state of a file of `dir`, relative to the open directory; `None` when
/// it is missing or not a regular file.
fn stat_in(dir: &fs::File, path: &str) -> Option<FileStat> {
    statat(dir, path, AtFlags::SYMLINK_NOFOLLOW)
        .ok()
        .filter(|st| FileType::from_raw_mode(st.st_mode) == FileType::RegularFile)
        .map(|st| FileStat::of(&st))
}

/// `f` over `items`, split over the cores (thousands of short stats: each
/// one is a few microseconds of path lookup, and they run in parallel well).
fn par_map<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let per_thread = items.len().div_ceil(threads).max(256);
    if items.len() <= per_thread {
        return items.iter().map(&f).collect();
    }
    std::thread::scope(|scope| {
        let parts: Vec<_> = items
            .chunks(per_thread)
            .map(|part| scope.spawn(|| part.iter().map(&f).collect::<Vec<R>>()))
            .collect();
        parts
            .into_iter()
            .flat_map(|part| part.join().expect("a stat thread panicked"))
            .collect()
    })
}

/// A published file that is no longer as it was published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Changed {
    /// Index into the record's entries.
    pub index: usize,
    /// Its state now; `None` when it is gone (or no longer a regular file).
    pub now: Option<FileStat>,
}

/// How the tree in the output directory compares with the record.
#[derive(Debug, Default)]
pub(crate) struct Check {
    pub record: Record,
    /// The tree's `manifest.json` is the file the record was made with.
    pub current: bool,
    pub changed: Vec<Changed>,
}

/// Compares the tree in `out` with `record`: one stat per published file.
pub(crate) fn check(out: &Path, record: Record) -> Check {
    let Ok(dir) = fs::File::open(out) else {
        return Check::default();
    };
    let current = stat_in(&dir, manifest::FILE_NAME) == Some(record.manifest);
    let indices: Vec<usize> = (0..record.len()).collect();
    let now = par_map(&indices, |&i| stat_in(&dir, record.entry(i).path));
    let changed = now
        .into_iter()
        .enumerate()
        .filter(|(i, now)| *now != Some(record.entry(*i).stat))
        .map(|(index, now)| Changed { index, now })
        .collect();
    Check {
        record,
        current,
        changed,
    }
}

/// Records the tree `manifest` describes, as it is now in `out` (right after
/// the swap). A file that cannot be stat'ed is left out: the next build then
/// misses it and publishes again.
pub(crate) fn record(out: &Path, manifest: &Manifest) -> Result<Record> {
    let dir = fs::File::open(out)?;
    let manifest_stat = stat_in(&dir, manifest::FILE_NAME).unwrap_or_default();
    let stats = par_map(&manifest.files, |f| stat_in(&dir, &f.path));
    let entries: Vec<Entry> = manifest
        .files
        .iter()
        .zip(stats)
        .filter_map(|(f, stat)| {
            Some(Entry {
                path: &f.path,
                sha256: &f.sha256,
                stat: stat?,
            })
        })
        .collect();
    // A record missing files must not pass for the tree's.
    let complete = entries.len() == manifest.files.len();
    let manifest_stat = if complete {
        manifest_stat
    } else {
        FileStat::default()
    };
    Ok(Record::new(manifest_stat, &entries))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::FileEntry;

    fn tree() -> (tempfile::TempDir, Manifest) {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path();
        fs::create_dir_all(out.join("http/n1")).unwrap();
        fs::write(out.join("http/n1/a"), b"one").unwrap();
        fs::write(out.join("http/b"), b"two").unwrap();
        fs::write(out.join("manifest.json"), b"{}").unwrap();
        let entry = |path: &str, sha256: &str| FileEntry {
            path: path.into(),
            sha256: sha256.into(),
            size: 3,
        };
        let manifest = Manifest {
            format: 1,
            inputs: "x".into(),
            files: vec![entry("http/b", "bb"), entry("http/n1/a", "aa")],
            nodes: vec![],
            access: vec![],
            flatcar: None,
            images: Vec::new(),
        };
        (dir, manifest)
    }

    #[test]
    fn a_record_round_trips_and_damage_reads_as_none() {
        let (dir, manifest) = tree();
        let record = record(dir.path(), &manifest).unwrap();
        assert_eq!(record.len(), 2);
        let paths: Vec<&str> = record.entries().map(|e| e.path).collect();
        assert_eq!(paths, ["http/b", "http/n1/a"]);
        assert_eq!(record.entry(1).sha256, "aa");
        assert_ne!(record.manifest, FileStat::default());
        let bytes = record.encode();
        assert_eq!(Record::decode(&bytes), Some(record.clone()));
        for cut in [0, 5, MAGIC.len() + 3, bytes.len() - 1] {
            assert_eq!(Record::decode(&bytes[..cut]), None, "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(Record::decode(&longer), None);
    }

    #[test]
    fn check_names_files_edited_replaced_or_deleted() {
        let (dir, manifest) = tree();
        let out = dir.path();
        let record = record(out, &manifest).unwrap();
        let clean = check(out, record.clone());
        assert!(clean.current);
        assert!(clean.changed.is_empty(), "{:?}", clean.changed);

        // Edited in place (same size: only the times tell).
        std::thread::sleep(std::time::Duration::from_millis(20));
        fs::OpenOptions::new()
            .write(true)
            .open(out.join("http/b"))
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"TWO"))
            .unwrap();
        // Replaced by a new file, and deleted.
        let edited = check(out, record.clone());
        assert_eq!(edited.changed.len(), 1);
        assert_eq!(record.entry(edited.changed[0].index).path, "http/b");
        fs::remove_file(out.join("http/n1/a")).unwrap();
        let gone = check(out, record.clone());
        assert_eq!(gone.changed.len(), 2);
        assert_eq!(gone.changed[1].now, None);
        fs::write(out.join("manifest.json"), b"{ }").unwrap();
        assert!(!check(out, record).current);
    }
}
