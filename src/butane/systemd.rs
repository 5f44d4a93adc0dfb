//! `systemd.units` (with dropins and `*_local` contents) and the mount/swap
//! units generated for filesystems with `with_mount_unit`.
use ignition_config::v3_3::{Dropin, Filesystem, Systemd, Unit};

use super::local;
use super::schema::{join, Ctx, Obj, Spec};
use super::validate::{check_dropin_name, check_unit_name, Seen};

const UNIT: &[&str] = &[
    "name",
    "enabled",
    "mask",
    "contents",
    "contents_local",
    "dropins",
];
const DROPIN: &[&str] = &["name", "contents", "contents_local"];

/// Translates `systemd` together with the units generated for
/// `with_mount_unit`. As in Butane, which merges the user's config over the
/// generated one with Ignition's merge rules, the generated units come
/// first, and a user unit with the same name as a generated one is merged
/// into it: the user's `enabled`, `mask` and `contents` replace the
/// generated ones when set, and dropins are merged by name.
pub(super) fn translate(
    cx: &mut Ctx,
    v: Option<&serde_norway::Value>,
    generated: Vec<(String, Unit)>,
) -> Systemd {
    let mut seen = Seen::default();
    let mut units = Vec::new();
    for (p, unit) in generated {
        seen.add(cx, "unit", &unit.name, &p);
        cx.origin(format!("systemd.units.{}", units.len()), &p, false);
        units.push(unit);
    }
    let n_generated = units.len();
    let mut merged = std::collections::HashSet::new();
    if let Some(o) = v.and_then(|v| Obj::new(cx, v, "systemd", &["units"])) {
        for (p, u) in o.objs(cx, "systemd", "units", UNIT) {
            let Some(unit) = unit(cx, &p, u) else {
                continue;
            };
            let target = units[..n_generated]
                .iter()
                .position(|g| g.name == unit.name)
                .filter(|_| merged.insert(unit.name.clone()));
            if let Some(i) = target {
                merge_unit(&mut units[i], unit);
                cx.origin(format!("systemd.units.{i}"), &p, true);
                continue;
            }
            seen.add(cx, "unit", &unit.name, &join(&p, "name"));
            cx.origin(format!("systemd.units.{}", units.len()), &p, true);
            units.push(unit);
        }
    }
    Systemd {
        units: (!units.is_empty()).then_some(units),
    }
}

/// Ignition's merge of a child unit over a parent unit with the same name.
fn merge_unit(parent: &mut Unit, child: Unit) {
    if child.enabled.is_some() {
        parent.enabled = child.enabled;
    }
    if child.mask.is_some() {
        parent.mask = child.mask;
    }
    if child.contents.is_some() {
        parent.contents = child.contents;
    }
    for d in child.dropins.into_iter().flatten() {
        let dropins = parent.dropins.get_or_insert_with(Vec::new);
        match dropins.iter_mut().find(|p| p.name == d.name) {
            Some(p) if d.contents.is_some() => p.contents = d.contents,
            Some(_) => {}
            None => dropins.push(d),
        }
    }
}

fn unit(cx: &mut Ctx, p: &str, u: Obj) -> Option<Unit> {
    let name = u.req_str(cx, p, "name")?;
    check_unit_name(cx, &join(p, "name"), &name);
    let mut unit = Unit::new(name);
    unit.enabled = u.bool(cx, p, "enabled");
    unit.mask = u.bool(cx, p, "mask");
    unit.contents = contents(cx, p, u);
    let installs = |c: &String| c.lines().any(|l| l.trim() == "[Install]");
    if unit.enabled == Some(true) && unit.contents.as_ref().is_some_and(|c| !installs(c)) {
        cx.warn(
            &join(p, "enabled"),
            "the unit is enabled but has no [Install] section, so enabling it does nothing",
        );
    }
    let mut seen = Seen::default();
    let mut dropins = Vec::new();
    for (dp, d) in u.objs(cx, p, "dropins", DROPIN) {
        let Some(name) = d.req_str(cx, &dp, "name") else {
            continue;
        };
        check_dropin_name(cx, &join(&dp, "name"), &name);
        seen.add(cx, "dropin", &name, &join(&dp, "name"));
        let mut dropin = Dropin::new(name);
        dropin.contents = contents(cx, &dp, d);
        dropins.push(dropin);
    }
    unit.dropins = (!dropins.is_empty()).then_some(dropins);
    Some(unit)
}

/// `contents` or (1.1.0+) `contents_local`, never both.
fn contents(cx: &mut Ctx, p: &str, o: Obj) -> Option<String> {
    let inline = o.str(cx, p, "contents");
    if !o.has("contents_local") {
        return inline;
    }
    let lp = join(p, "contents_local");
    if !cx.require_spec(&lp, Spec::V1_1, "contents_local") {
        return inline;
    }
    if inline.is_some() {
        cx.error(&lp, "only one of contents or contents_local may be set");
        return inline;
    }
    let rel = o.str(cx, p, "contents_local")?;
    match local::read_text(cx.files_dir.as_deref(), &rel) {
        Ok(text) => Some(text),
        Err(msg) => {
            cx.error(&lp, msg);
            None
        }
    }
}

/// systemd path escaping (as `systemd-escape --path`): the path without its
/// leading/trailing slashes, `/` → `-`, bytes outside `[A-Za-z0-9:_.]` (and a
/// leading `.`) → `\xNN`; the root is `-`.
pub(super) fn escape_path(path: &str) -> String {
    let trimmed: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if trimmed.is_empty() {
        return "-".into();
    }
    let joined = trimmed.join("/");
    let mut out = String::new();
    for (i, b) in joined.bytes().enumerate() {
        match b {
            b'/' => out.push('-'),
            b'.' if i == 0 => out.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || matches!(b, b':' | b'_' | b'.') => {
                out.push(b as char)
            }
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out
}

/// The enabled `.mount` (or `.swap`) unit for a filesystem, or an error when
/// the filesystem lacks what the unit needs.
pub(super) fn mount_unit(cx: &mut Ctx, p: &str, fs: &Filesystem) -> Option<Unit> {
    let here = join(p, "with_mount_unit");
    let Some(format) = fs.format.as_deref() else {
        cx.error(&here, "with_mount_unit requires format");
        return None;
    };
    let options = fs
        .mount_options
        .as_ref()
        .filter(|o| !o.is_empty())
        .map(|o| format!("Options={}\n", o.join(",")))
        .unwrap_or_default();
    let (name, contents) = if format == "swap" {
        let name = format!("{}.swap", escape_path(&fs.device));
        let body = format!("[Swap]\nWhat={}\n{options}", fs.device);
        (name, format!("{body}\n[Install]\nRequiredBy=swap.target\n"))
    } else {
        let Some(path) = fs.path.as_deref() else {
            cx.error(&here, "with_mount_unit requires path");
            return None;
        };
        let name = format!("{}.mount", escape_path(path));
        (name, mount_contents(fs, path, format, &options))
    };
    let mut unit = Unit::new(name);
    unit.enabled = Some(true);
    unit.contents = Some(format!("# Generated by pxebuild butane\n{contents}"));
    Some(unit)
}

/// The body of a `.mount` unit; the fsck dependency mirrors what systemd's
/// fstab generator adds for local filesystems.
fn mount_contents(fs: &Filesystem, path: &str, format: &str, options: &str) -> String {
    let dev = escape_path(&fs.device);
    format!(
        "[Unit]\nRequires=systemd-fsck@{dev}.service\nAfter=systemd-fsck@{dev}.service\n\n\
         [Mount]\nWhere={path}\nWhat={}\nType={format}\n{options}\n\
         [Install]\nRequiredBy=local-fs.target\n",
        fs.device
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_like_systemd() {
        assert_eq!(escape_path("/var/lib/data"), "var-lib-data");
        assert_eq!(escape_path("/var/lib/my-data/"), "var-lib-my\\x2ddata");
        assert_eq!(escape_path("/"), "-");
        assert_eq!(
            escape_path("/dev/disk/by-label/ROOT"),
            "dev-disk-by\\x2dlabel-ROOT"
        );
        assert_eq!(escape_path("/srv/a b"), "srv-a\\x20b");
        assert_eq!(escape_path("/.hidden"), "\\x2ehidden");
    }

    #[test]
    fn escape_matches_systemd_escape() {
        let out = std::process::Command::new("systemd-escape")
            .args(["--path", "/var/lib/my-data/x y"])
            .output()
            .expect("running systemd-escape");
        let want = String::from_utf8(out.stdout).unwrap();
        assert_eq!(escape_path("/var/lib/my-data/x y"), want.trim());
    }
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    fn units(yaml: &str, spec: Spec) -> (Systemd, Vec<String>, Vec<String>) {
        let v: serde_norway::Value = serde_norway::from_str(yaml).unwrap();
        let mut cx = Ctx::new(None, spec);
        let s = translate(&mut cx, Some(&v), Vec::new());
        let msg = |r: &Vec<super::super::schema::Raw>| {
            r.iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect()
        };
        (s, msg(&cx.errors), msg(&cx.warnings))
    }

    #[test]
    fn contents_and_contents_local_are_exclusive() {
        let yaml = "units: [{name: a.service, contents: x, contents_local: y}]";
        let (_, e, _) = units(yaml, Spec::V1_1);
        assert_eq!(
            e,
            ["systemd.units.0.contents_local: only one of contents or contents_local may be set"]
        );
    }

    #[test]
    fn enabled_units_without_install_warn() {
        let (s, e, w) = units(
            "units: [{name: a.service, enabled: true, contents: \"[Service]\\n\"}]",
            Spec::V1_0,
        );
        assert!(e.is_empty());
        assert_eq!(w.len(), 1);
        assert_eq!(s.units.unwrap()[0].enabled, Some(true));
        let (_, _, w) = units("units: [{name: a.service, enabled: true}]", Spec::V1_0);
        assert!(w.is_empty(), "units without contents are the OS's own");
    }

    #[test]
    fn user_units_merge_into_generated_units_of_the_same_name() {
        let v: serde_norway::Value = serde_norway::from_str(
            "units: [{name: a.service}, {name: srv.mount, enabled: false, dropins: [{name: x.conf, contents: \"[Mount]\\n\"}]}]",
        )
        .unwrap();
        let mut cx = Ctx::new(None, Spec::V1_0);
        let mut generated = Unit::new("srv.mount".into());
        generated.enabled = Some(true);
        generated.contents = Some("[Mount]\nWhere=/srv\n".into());
        let s = translate(
            &mut cx,
            Some(&v),
            vec![("f.with_mount_unit".into(), generated)],
        );
        assert!(cx.errors.is_empty(), "{:?}", cx.errors);
        let units = s.units.unwrap();
        let names: Vec<&str> = units.iter().map(|u| u.name.as_str()).collect();
        assert_eq!(names, ["srv.mount", "a.service"]);
        assert_eq!(units[0].enabled, Some(false));
        assert_eq!(units[0].contents.as_deref(), Some("[Mount]\nWhere=/srv\n"));
        assert_eq!(units[0].dropins.as_ref().unwrap()[0].name, "x.conf");
        let json: Vec<&str> = cx.origins.iter().map(|o| o.json.as_str()).collect();
        assert_eq!(
            json,
            ["systemd.units.0", "systemd.units.1", "systemd.units.0"]
        );
    }

    #[test]
    fn swap_and_mount_units() {
        let mut cx = Ctx::new(None, Spec::V1_0);
        let mut fs = Filesystem::new("/dev/sdb1".into());
        fs.format = Some("swap".into());
        let u = mount_unit(&mut cx, "f", &fs).unwrap();
        assert_eq!(u.name, "dev-sdb1.swap");
        assert_eq!(
            u.contents.unwrap(),
            "# Generated by pxebuild butane\n[Swap]\nWhat=/dev/sdb1\n\n[Install]\nRequiredBy=swap.target\n"
        );
        fs.format = Some("xfs".into());
        fs.path = Some("/srv".into());
        let u = mount_unit(&mut cx, "f", &fs).unwrap();
        assert_eq!(u.name, "srv.mount");
        assert!(u
            .contents
            .unwrap()
            .contains("Where=/srv\nWhat=/dev/sdb1\nType=xfs\n\n[Install]"));
        assert!(cx.errors.is_empty());
    }
}
