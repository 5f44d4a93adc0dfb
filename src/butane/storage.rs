//! `storage`: files, directories, links, trees, disks and filesystems.
//!
//! Paths of files, directories and links (including those a tree expands to)
//! share one namespace: a path may be defined once.
use std::collections::HashSet;
use std::path::Path;

use ignition_config::v3_3::{
    Directory, Disk, File, Filesystem, Link, NodeGroup, NodeUser, Partition, Storage, Unit,
};

use super::resource;
use super::schema::{join, Ctx, Obj};
use super::systemd::mount_unit;
use super::trees;
use super::validate::{check_abs_path, Seen};

const KEYS: &[&str] = &[
    "files",
    "directories",
    "links",
    "trees",
    "disks",
    "filesystems",
    "luks",
    "raid",
];
const NODE: &[&str] = &["path", "overwrite", "user", "group"];

/// Translates `storage`; returns it plus the mount units `with_mount_unit` asks for.
pub(super) fn translate(
    cx: &mut Ctx,
    seen: &mut Seen,
    v: &serde_norway::Value,
) -> (Storage, Vec<(String, Unit)>) {
    let mut st = Storage::default();
    let Some(o) = Obj::new(cx, v, "storage", KEYS) else {
        return (st, Vec::new());
    };
    for key in ["luks", "raid"] {
        if o.has(key) {
            cx.error(
                &join("storage", key),
                "not supported by pxebuild (see docs/butane.md)",
            );
        }
    }
    let mut files = files(cx, seen, o);
    let dirs = directories(cx, seen, o);
    let links = links(cx, seen, o);
    let (tree_files, tree_links) = trees_of(cx, seen, o, &mut files, links.len());
    st.files = non_empty(files.into_iter().chain(tree_files).collect());
    st.directories = non_empty(dirs);
    st.links = non_empty(links.into_iter().chain(tree_links).collect());
    check_under_links(cx, seen, &st);
    st.disks = non_empty(disks(cx, seen, o));
    let (fss, units) = filesystems(cx, seen, o);
    st.filesystems = non_empty(fss);
    (st, units)
}

/// Ignition refuses to create anything below a link it also creates (it
/// would write through the link), so such a config is an error here already.
fn check_under_links(cx: &mut Ctx, seen: &Seen, st: &Storage) {
    let links: HashSet<&str> = st.links.iter().flatten().map(|l| l.path.as_str()).collect();
    let files = st.files.iter().flatten().map(|f| f.path.as_str());
    let dirs = st.directories.iter().flatten().map(|d| d.path.as_str());
    for path in files.chain(dirs).chain(links.iter().copied()) {
        let mut up = Path::new(path).parent();
        while let Some(dir) = up {
            if let Some(link) = dir.to_str().filter(|d| links.contains(d)) {
                let at = seen.first("path", path).unwrap_or("storage").to_string();
                cx.error(&at, format!("\"{path}\" is below the link \"{link}\""));
                break;
            }
            up = dir.parent();
        }
    }
}

fn non_empty<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

/// Reads the shared node keys; returns the path (checked, deduplicated).
fn node_path(cx: &mut Ctx, seen: &mut Seen, p: &str, o: Obj) -> Option<String> {
    let path = o.req_str(cx, p, "path")?;
    check_abs_path(cx, &join(p, "path"), &path);
    seen.add(cx, "path", &path, &join(p, "path"));
    Some(path)
}

fn owner(cx: &mut Ctx, p: &str, o: Obj, key: &str) -> Option<(Option<i64>, Option<String>)> {
    let here = join(p, key);
    let u = o.obj(cx, p, key, &["id", "name"])?;
    let (id, name) = (u.int(cx, &here, "id"), u.str(cx, &here, "name"));
    if id.is_some() && name.is_some() {
        cx.error(&here, "set only one of id and name");
    }
    Some((id, name))
}

fn user(cx: &mut Ctx, p: &str, o: Obj) -> Option<NodeUser> {
    owner(cx, p, o, "user").map(|(id, name)| NodeUser { id, name })
}

fn group(cx: &mut Ctx, p: &str, o: Obj) -> Option<NodeGroup> {
    owner(cx, p, o, "group").map(|(id, name)| NodeGroup { id, name })
}

fn files(cx: &mut Ctx, seen: &mut Seen, o: Obj) -> Vec<File> {
    let keys = [NODE, &["mode", "contents", "append"]].concat();
    let mut out = Vec::new();
    for (p, f) in o.objs(cx, "storage", "files", &keys) {
        let Some(path) = node_path(cx, seen, &p, f) else {
            continue;
        };
        let mut file = File::new(path);
        file.overwrite = f.bool(cx, &p, "overwrite");
        file.mode = f.mode(cx, &p, "mode");
        file.user = user(cx, &p, f);
        file.group = group(cx, &p, f);
        file.contents = f
            .obj(cx, &p, "contents", resource::KEYS)
            .map(|c| resource::translate(cx, &join(&p, "contents"), c));
        let appends: Vec<_> = f
            .objs(cx, &p, "append", resource::KEYS)
            .into_iter()
            .map(|(ap, a)| resource::translate(cx, &ap, a))
            .collect();
        file.append = non_empty(appends);
        let has_source = file.contents.as_ref().is_some_and(|c| c.source.is_some());
        if file.overwrite == Some(true) && !has_source {
            cx.error(
                &join(&p, "overwrite"),
                "overwrite must be false when contents has no source",
            );
        }
        out.push(file);
    }
    out
}

fn directories(cx: &mut Ctx, seen: &mut Seen, o: Obj) -> Vec<Directory> {
    let keys = [NODE, &["mode"]].concat();
    let mut out = Vec::new();
    for (p, d) in o.objs(cx, "storage", "directories", &keys) {
        let Some(path) = node_path(cx, seen, &p, d) else {
            continue;
        };
        let mut dir = Directory::new(path);
        dir.overwrite = d.bool(cx, &p, "overwrite");
        dir.mode = d.mode(cx, &p, "mode");
        dir.user = user(cx, &p, d);
        dir.group = group(cx, &p, d);
        out.push(dir);
    }
    out
}

fn links(cx: &mut Ctx, seen: &mut Seen, o: Obj) -> Vec<Link> {
    let keys = [NODE, &["target", "hard"]].concat();
    let mut out = Vec::new();
    for (p, l) in o.objs(cx, "storage", "links", &keys) {
        let Some(path) = node_path(cx, seen, &p, l) else {
            continue;
        };
        let mut link = Link::new(path);
        link.target = l.req_str(cx, &p, "target");
        link.hard = l.bool(cx, &p, "hard");
        if link.hard == Some(true) {
            if let Some(t) = &link.target {
                check_abs_path(cx, &join(&p, "target"), t);
            }
        }
        link.overwrite = l.bool(cx, &p, "overwrite");
        link.user = user(cx, &p, l);
        link.group = group(cx, &p, l);
        out.push(link);
    }
    out
}

/// Expands the trees; their files and links follow the explicit files and
/// the `n_links` explicit links in the output, which is recorded so that
/// findings about them point at their tree. As in Butane, a tree file whose
/// path has an explicit file entry without a contents source fills that
/// entry (its source and compression, and its mode when the entry has none)
/// instead of being a duplicate path.
fn trees_of(
    cx: &mut Ctx,
    seen: &mut Seen,
    o: Obj,
    explicit: &mut [File],
    n_links: usize,
) -> (Vec<File>, Vec<Link>) {
    let (mut files, mut links) = (Vec::new(), Vec::new());
    for (p, t) in o.objs(cx, "storage", "trees", &["local", "path"]) {
        let Some(local) = t.req_str(cx, &p, "local") else {
            continue;
        };
        let base = t.str(cx, &p, "path").unwrap_or_else(|| "/".into());
        check_abs_path(cx, &join(&p, "path"), &base);
        let (f, l) = trees::expand(cx, &p, &local, &base);
        for file in f {
            if fill_explicit(explicit, &file) {
                continue;
            }
            seen.add(cx, "path", &file.path, &p);
            let index = explicit.len() + files.len();
            cx.origin(format!("storage.files.{index}"), &p, false);
            files.push(file);
        }
        for link in l {
            seen.add(cx, "path", &link.path, &p);
            cx.origin(
                format!("storage.links.{}", n_links + links.len()),
                &p,
                false,
            );
            links.push(link);
        }
    }
    (files, links)
}

/// Gives a tree file's contents to an explicit entry for the same path that
/// has no contents source; false when there is no such entry.
fn fill_explicit(explicit: &mut [File], file: &File) -> bool {
    let Some(entry) = explicit
        .iter_mut()
        .find(|e| e.path == file.path && e.contents.as_ref().is_none_or(|c| c.source.is_none()))
    else {
        return false;
    };
    let from = file.contents.clone().unwrap_or_default();
    let contents = entry.contents.get_or_insert_with(Default::default);
    contents.source = from.source;
    contents.compression = from.compression;
    entry.mode = entry.mode.or(file.mode);
    true
}

fn disks(cx: &mut Ctx, seen: &mut Seen, o: Obj) -> Vec<Disk> {
    let mut out = Vec::new();
    for (p, d) in o.objs(
        cx,
        "storage",
        "disks",
        &["device", "wipe_table", "partitions"],
    ) {
        let Some(device) = d.req_str(cx, &p, "device") else {
            continue;
        };
        check_abs_path(cx, &join(&p, "device"), &device);
        seen.add(cx, "disk", &device, &join(&p, "device"));
        let mut disk = Disk::new(device);
        disk.wipe_table = d.bool(cx, &p, "wipe_table");
        disk.partitions = non_empty(partitions(cx, &p, d));
        out.push(disk);
    }
    out
}

const PARTITION: &[&str] = &[
    "label",
    "number",
    "size_mib",
    "start_mib",
    "type_guid",
    "guid",
    "wipe_partition_entry",
    "should_exist",
    "resize",
];

fn partitions(cx: &mut Ctx, dp: &str, d: Obj) -> Vec<Partition> {
    let mut seen = Seen::default();
    let mut out = Vec::new();
    for (p, o) in d.objs(cx, dp, "partitions", PARTITION) {
        let part = Partition {
            label: o.str(cx, &p, "label"),
            number: o.int(cx, &p, "number"),
            size_mib: o.int(cx, &p, "size_mib"),
            start_mib: o.int(cx, &p, "start_mib"),
            type_guid: o.str(cx, &p, "type_guid"),
            guid: o.str(cx, &p, "guid"),
            wipe_partition_entry: o.bool(cx, &p, "wipe_partition_entry"),
            should_exist: o.bool(cx, &p, "should_exist"),
            resize: o.bool(cx, &p, "resize"),
        };
        if let Some(n) = part.number.filter(|n| *n != 0) {
            seen.add(cx, "partition number", &n.to_string(), &join(&p, "number"));
        }
        if let Some(l) = &part.label {
            seen.add(cx, "partition label", l, &join(&p, "label"));
        }
        for key in ["type_guid", "guid"] {
            let v = if key == "guid" {
                &part.guid
            } else {
                &part.type_guid
            };
            if let Some(g) = v.as_deref().filter(|g| !is_guid(g)) {
                cx.error(&join(&p, key), format!("invalid GUID \"{g}\""));
            }
        }
        out.push(part);
    }
    out
}

/// `8-4-4-4-12` hex digits.
pub(crate) fn is_guid(g: &str) -> bool {
    let parts: Vec<&str> = g.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(s, n)| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit()))
}

const FILESYSTEM: &[&str] = &[
    "device",
    "format",
    "path",
    "label",
    "uuid",
    "wipe_filesystem",
    "options",
    "mount_options",
    "with_mount_unit",
];
const FORMATS: &[&str] = &["ext4", "btrfs", "xfs", "vfat", "swap", "none"];

fn filesystems(cx: &mut Ctx, seen: &mut Seen, o: Obj) -> (Vec<Filesystem>, Vec<(String, Unit)>) {
    let (mut out, mut units) = (Vec::new(), Vec::new());
    for (p, f) in o.objs(cx, "storage", "filesystems", FILESYSTEM) {
        let Some(fs) = filesystem(cx, seen, &p, f) else {
            continue;
        };
        if f.bool(cx, &p, "with_mount_unit") == Some(true) {
            if let Some(unit) = mount_unit(cx, &p, &fs) {
                units.push((join(&p, "with_mount_unit"), unit));
            }
        }
        out.push(fs);
    }
    (out, units)
}

fn filesystem(cx: &mut Ctx, seen: &mut Seen, p: &str, f: Obj) -> Option<Filesystem> {
    let device = f.req_str(cx, p, "device")?;
    check_abs_path(cx, &join(p, "device"), &device);
    seen.add(cx, "filesystem device", &device, &join(p, "device"));
    let mut fs = Filesystem::new(device);
    fs.format = f.str(cx, p, "format");
    fs.path = f.str(cx, p, "path");
    if let Some(path) = &fs.path {
        check_abs_path(cx, &join(p, "path"), path);
    }
    fs.label = f.str(cx, p, "label");
    fs.uuid = f.str(cx, p, "uuid");
    fs.wipe_filesystem = f.bool(cx, p, "wipe_filesystem");
    fs.options = f.strings(cx, p, "options");
    fs.mount_options = f.strings(cx, p, "mount_options");
    check_format(cx, p, &fs);
    Some(fs)
}

/// The format must be known, and present whenever anything would be created.
fn check_format(cx: &mut Ctx, p: &str, fs: &Filesystem) {
    let here = join(p, "format");
    match fs.format.as_deref() {
        Some(fmt) if !FORMATS.contains(&fmt) => cx.error(
            &here,
            format!("unsupported format \"{fmt}\" (use {})", FORMATS.join(", ")),
        ),
        Some(_) => {}
        None => {
            let needs_format = fs.path.is_some()
                || fs.label.is_some()
                || fs.uuid.is_some()
                || fs.wipe_filesystem.is_some()
                || fs.options.is_some()
                || fs.mount_options.is_some();
            if needs_format {
                cx.error(
                    &here,
                    "format is required when path, label, uuid, wipe_filesystem, options or mount_options is set",
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids() {
        assert!(is_guid("4f68bce3-e8cd-4db1-96e7-fbcaf984b709"));
        assert!(!is_guid("4f68bce3-e8cd-4db1-96e7"));
        assert!(!is_guid("4f68bce3-e8cd-4db1-96e7-fbcaf984b70g"));
    }
}

#[cfg(test)]
mod translate_tests {
    use super::super::schema::Spec;
    use super::*;

    fn run(yaml: &str) -> (Storage, Vec<String>) {
        let v: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
        let mut cx = Ctx::new(None, Spec::V1_0);
        let (st, _) = translate(&mut cx, &mut Seen::default(), &v);
        (
            st,
            cx.errors
                .iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect(),
        )
    }

    #[test]
    fn links_below_links_are_refused() {
        let (_, e) = run("links: [{path: /a, target: /x}, {path: /a/b/c, target: /y}]\ndirectories: [{path: /a/d}]");
        assert_eq!(
            e,
            [
                r#"storage.directories.0.path: "/a/d" is below the link "/a""#,
                r#"storage.links.1.path: "/a/b/c" is below the link "/a""#,
            ]
        );
    }

    #[test]
    fn partitions_are_checked() {
        let (st, e) = run(
            "disks: [{device: /dev/vda, partitions: [{number: 1, label: a, type_guid: nope}, {number: 1, label: a}, {number: 0}, {number: 0}]}]",
        );
        assert_eq!(st.disks.unwrap()[0].partitions.as_ref().unwrap().len(), 4);
        assert_eq!(
            e,
            [
                r#"storage.disks.0.partitions.0.type_guid: invalid GUID "nope""#,
                r#"storage.disks.0.partitions.1.number: duplicate partition number "1" (first defined at storage.disks.0.partitions.0.number)"#,
                r#"storage.disks.0.partitions.1.label: duplicate partition label "a" (first defined at storage.disks.0.partitions.0.label)"#,
            ]
        );
    }

    #[test]
    fn luks_and_raid_are_refused() {
        let (_, e) = run("luks: [{name: r}]\nraid: [{name: m}]");
        assert_eq!(
            e,
            [
                "storage.luks: not supported by pxebuild (see docs/butane.md)",
                "storage.raid: not supported by pxebuild (see docs/butane.md)",
            ]
        );
    }
}
