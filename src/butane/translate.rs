//! Butane structs → typed Ignition 3.3.0 structs, collecting diagnostics.
//!
//! The translation never stops at the first problem: every error and warning
//! is recorded with its key path in a `Context`, and positions are looked up
//! once at the end.
use ignition_config::v3_3 as ign;

use super::location;
use super::mount;
use super::resource::{read_local, resource};
use super::schema::{self, Version};
use super::trees;
use super::validate::{self, Unique};
use super::{Diagnostic, Options};

/// Translation state: options, target version and findings so far.
pub struct Context<'a> {
    pub opts: &'a Options,
    pub version: Version,
    errors: Vec<(String, String)>,
    warnings: Vec<(String, String)>,
}

impl<'a> Context<'a> {
    pub fn new(opts: &'a Options, version: Version) -> Context<'a> {
        Context {
            opts,
            version,
            errors: Vec::new(),
            warnings: Vec::new(),
        }
    }

    pub fn error(&mut self, path: &str, message: &str) {
        self.errors.push((path.to_string(), message.to_string()));
    }

    pub fn warning(&mut self, path: &str, message: &str) {
        self.warnings.push((path.to_string(), message.to_string()));
    }

    /// Errors for fields newer than the document's version.
    pub fn needs_v1_1(&mut self, path: &str, field: &str) {
        if self.version == Version::V1_0 {
            self.error(path, &format!("`{field}` requires version 1.1.0"));
        }
    }

    /// Positions every finding and sorts each list by place in the input.
    pub fn finish(self, yaml: &str) -> (Vec<Diagnostic>, Vec<Diagnostic>) {
        let place = |list: Vec<(String, String)>| {
            let mut out: Vec<Diagnostic> = list
                .into_iter()
                .map(|(path, message)| location::diagnostic(yaml, &path, message))
                .collect();
            out.sort_by_key(|d| (d.line.is_none(), d.line, d.column));
            out
        };
        (place(self.errors), place(self.warnings))
    }
}

/// Translates the whole document.
pub fn config(ctx: &mut Context, c: &schema::Config) -> ign::Config {
    let mut out = ign::Config::default();
    if let Some(i) = &c.ignition {
        ignition(ctx, i, &mut out.ignition);
    }
    let mut mount_units = Vec::new();
    if let Some(s) = &c.storage {
        out.storage = Some(storage(ctx, s, &mut mount_units));
    }
    let units = c
        .systemd
        .as_ref()
        .map(|s| s.units.as_slice())
        .unwrap_or(&[]);
    if !units.is_empty() || !mount_units.is_empty() {
        out.systemd = Some(ign::Systemd {
            units: Some(systemd(ctx, units, mount_units)),
        });
    }
    if let Some(p) = &c.passwd {
        out.passwd = Some(passwd(ctx, p));
    }
    out
}

fn ignition(ctx: &mut Context, i: &schema::Ignition, out: &mut ign::Ignition) {
    if let Some(c) = &i.config {
        let merge: Vec<_> = c
            .merge
            .iter()
            .enumerate()
            .filter_map(|(n, r)| resource(ctx, r, &format!("ignition.config.merge.{n}"), true))
            .collect();
        let replace = c
            .replace
            .as_ref()
            .and_then(|r| resource(ctx, r, "ignition.config.replace", true));
        out.config = Some(ign::IgnitionConfig {
            merge: (!merge.is_empty()).then_some(merge),
            replace,
        });
    }
    out.timeouts = i.timeouts.as_ref().map(|t| ign::Timeouts {
        http_response_headers: t.http_response_headers,
        http_total: t.http_total,
    });
    if let Some(tls) = i.security.as_ref().and_then(|s| s.tls.as_ref()) {
        let cas: Vec<_> = tls
            .certificate_authorities
            .iter()
            .enumerate()
            .filter_map(|(n, r)| {
                resource(
                    ctx,
                    r,
                    &format!("ignition.security.tls.certificate_authorities.{n}"),
                    true,
                )
            })
            .collect();
        out.security = Some(ign::Security {
            tls: Some(ign::SecurityTls {
                certificate_authorities: Some(cas),
            }),
        });
    }
    out.proxy = i.proxy.as_ref().map(|p| ign::Proxy {
        http_proxy: p.http_proxy.clone(),
        https_proxy: p.https_proxy.clone(),
        no_proxy: Some(p.no_proxy.iter().cloned().map(Some).collect()),
    });
}

fn storage(
    ctx: &mut Context,
    s: &schema::Storage,
    mount_units: &mut Vec<ign::Unit>,
) -> ign::Storage {
    let mut paths = Unique::default();
    let mut files: Vec<ign::File> = s
        .files
        .iter()
        .enumerate()
        .filter_map(|(i, f)| file(ctx, f, &format!("storage.files.{i}"), &mut paths))
        .collect();
    let directories = s
        .directories
        .iter()
        .enumerate()
        .map(|(i, d)| directory(ctx, d, &format!("storage.directories.{i}"), &mut paths))
        .collect();
    let mut links: Vec<ign::Link> = s
        .links
        .iter()
        .enumerate()
        .map(|(i, l)| link(ctx, l, &format!("storage.links.{i}"), &mut paths))
        .collect();
    for (i, tree) in s.trees.iter().enumerate() {
        trees::embed(
            ctx,
            tree,
            &format!("storage.trees.{i}"),
            &mut files,
            &mut links,
        );
    }
    ign::Storage {
        directories: Some(directories),
        disks: Some(mount::disks(ctx, &s.disks)),
        files: Some(files),
        filesystems: Some(mount::filesystems(ctx, &s.filesystems, mount_units)),
        links: Some(links),
        luks: None,
        raid: None,
    }
}

/// `user:`/`group:` owners: id or name, not both.
fn owner(
    ctx: &mut Context,
    o: Option<&schema::Owner>,
    path: &str,
) -> Option<(Option<i64>, Option<String>)> {
    let o = o?;
    if o.id.is_some() && o.name.is_some() {
        ctx.error(path, "only one of `id` and `name` may be set");
    }
    Some((o.id, o.name.clone()))
}

fn node_user(ctx: &mut Context, o: Option<&schema::Owner>, path: &str) -> Option<ign::NodeUser> {
    owner(ctx, o, &format!("{path}.user")).map(|(id, name)| ign::NodeUser { id, name })
}

fn node_group(ctx: &mut Context, o: Option<&schema::Owner>, path: &str) -> Option<ign::NodeGroup> {
    owner(ctx, o, &format!("{path}.group")).map(|(id, name)| ign::NodeGroup { id, name })
}

fn file(ctx: &mut Context, f: &schema::File, path: &str, paths: &mut Unique) -> Option<ign::File> {
    validate::absolute(ctx, &f.path, &format!("{path}.path"));
    paths.check(ctx, &f.path, &format!("{path}.path"), "path");
    let contents = f
        .contents
        .as_ref()
        .and_then(|c| resource(ctx, c, &format!("{path}.contents"), true));
    if f.overwrite == Some(true) && f.contents.is_none() {
        ctx.error(
            &format!("{path}.overwrite"),
            "overwrite requires `contents`",
        );
    }
    let append: Vec<_> = f
        .append
        .iter()
        .enumerate()
        .filter_map(|(i, r)| resource(ctx, r, &format!("{path}.append.{i}"), true))
        .collect();
    Some(ign::File {
        append: (!append.is_empty()).then_some(append),
        contents,
        group: node_group(ctx, f.group.as_ref(), path),
        mode: validate::mode(ctx, f.mode, &format!("{path}.mode")),
        overwrite: f.overwrite,
        path: f.path.clone(),
        user: node_user(ctx, f.user.as_ref(), path),
    })
}

fn directory(
    ctx: &mut Context,
    d: &schema::Directory,
    path: &str,
    paths: &mut Unique,
) -> ign::Directory {
    validate::absolute(ctx, &d.path, &format!("{path}.path"));
    paths.check(ctx, &d.path, &format!("{path}.path"), "path");
    ign::Directory {
        group: node_group(ctx, d.group.as_ref(), path),
        mode: validate::mode(ctx, d.mode, &format!("{path}.mode")),
        overwrite: d.overwrite,
        path: d.path.clone(),
        user: node_user(ctx, d.user.as_ref(), path),
    }
}

fn link(ctx: &mut Context, l: &schema::Link, path: &str, paths: &mut Unique) -> ign::Link {
    validate::absolute(ctx, &l.path, &format!("{path}.path"));
    paths.check(ctx, &l.path, &format!("{path}.path"), "path");
    if l.target.is_empty() {
        ctx.error(&format!("{path}.target"), "link target must not be empty");
    }
    if l.hard == Some(true) {
        validate::absolute(ctx, &l.target, &format!("{path}.target"));
    }
    ign::Link {
        group: node_group(ctx, l.group.as_ref(), path),
        hard: l.hard,
        overwrite: l.overwrite,
        path: l.path.clone(),
        target: Some(l.target.clone()),
        user: node_user(ctx, l.user.as_ref(), path),
    }
}

fn systemd(ctx: &mut Context, units: &[schema::Unit], generated: Vec<ign::Unit>) -> Vec<ign::Unit> {
    let mut names = Unique::default();
    let mut out: Vec<ign::Unit> = units
        .iter()
        .enumerate()
        .map(|(i, u)| unit(ctx, u, &format!("systemd.units.{i}"), &mut names))
        .collect();
    for g in generated {
        if out.iter().any(|u| u.name == g.name) {
            ctx.error(
                "storage.filesystems",
                &format!(
                    "with_mount_unit generates `{}`, which systemd.units already defines",
                    g.name
                ),
            );
        } else {
            out.push(g);
        }
    }
    out
}

/// `contents` or `contents_local` (1.1.0) as unit text.
fn unit_text(
    ctx: &mut Context,
    inline: &Option<String>,
    local: &Option<String>,
    path: &str,
) -> Option<String> {
    match (inline, local) {
        (Some(_), Some(_)) => {
            ctx.error(
                path,
                "only one of `contents` and `contents_local` may be set",
            );
            None
        }
        (Some(text), None) => Some(text.clone()),
        (None, Some(rel)) => {
            let at = format!("{path}.contents_local");
            ctx.needs_v1_1(&at, "contents_local");
            let data = read_local(ctx, rel, &at)?;
            String::from_utf8(data)
                .map_err(|_| ctx.error(&at, "unit contents must be UTF-8"))
                .ok()
        }
        (None, None) => None,
    }
}

fn unit(ctx: &mut Context, u: &schema::Unit, path: &str, names: &mut Unique) -> ign::Unit {
    validate::unit_name(ctx, &u.name, &format!("{path}.name"));
    names.check(ctx, &u.name, &format!("{path}.name"), "unit");
    let mut dropin_names = Unique::default();
    let dropins: Vec<_> = u
        .dropins
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let at = format!("{path}.dropins.{i}");
            validate::dropin_name(ctx, &d.name, &format!("{at}.name"));
            dropin_names.check(ctx, &d.name, &format!("{at}.name"), "drop-in");
            ign::Dropin {
                contents: unit_text(ctx, &d.contents, &d.contents_local, &at),
                name: d.name.clone(),
            }
        })
        .collect();
    ign::Unit {
        contents: unit_text(ctx, &u.contents, &u.contents_local, path),
        dropins: (!dropins.is_empty()).then_some(dropins),
        enabled: u.enabled,
        mask: u.mask,
        name: u.name.clone(),
    }
}

fn passwd(ctx: &mut Context, p: &schema::Passwd) -> ign::Passwd {
    let mut names = Unique::default();
    let users = p
        .users
        .iter()
        .enumerate()
        .map(|(i, u)| user(ctx, u, &format!("passwd.users.{i}"), &mut names))
        .collect();
    let mut group_names = Unique::default();
    let groups = p
        .groups
        .iter()
        .enumerate()
        .map(|(i, g)| {
            group_names.check(ctx, &g.name, &format!("passwd.groups.{i}.name"), "group");
            ign::Group {
                gid: g.gid,
                name: g.name.clone(),
                password_hash: g.password_hash.clone(),
                should_exist: g.should_exist,
                system: g.system,
            }
        })
        .collect();
    ign::Passwd {
        groups: Some(groups),
        users: Some(users),
    }
}

/// Keys from `ssh_authorized_keys` plus every non-empty, non-comment line of
/// the `ssh_authorized_keys_local` files (1.1.0), in that order.
fn ssh_keys(ctx: &mut Context, u: &schema::User, path: &str) -> Vec<String> {
    let mut keys = u.ssh_authorized_keys.clone();
    for (i, rel) in u.ssh_authorized_keys_local.iter().enumerate() {
        let at = format!("{path}.ssh_authorized_keys_local.{i}");
        ctx.needs_v1_1(&at, "ssh_authorized_keys_local");
        let Some(data) = read_local(ctx, rel, &at) else {
            continue;
        };
        let text = String::from_utf8_lossy(&data);
        keys.extend(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    keys
}

fn user(ctx: &mut Context, u: &schema::User, path: &str, names: &mut Unique) -> ign::User {
    names.check(ctx, &u.name, &format!("{path}.name"), "user");
    if let Some(home) = &u.home_dir {
        validate::absolute(ctx, home, &format!("{path}.home_dir"));
    }
    let keys = ssh_keys(ctx, u, path);
    ign::User {
        gecos: u.gecos.clone(),
        groups: (!u.groups.is_empty()).then(|| u.groups.clone()),
        home_dir: u.home_dir.clone(),
        name: u.name.clone(),
        no_create_home: u.no_create_home,
        no_log_init: u.no_log_init,
        no_user_group: u.no_user_group,
        password_hash: u.password_hash.clone(),
        primary_group: u.primary_group.clone(),
        shell: u.shell.clone(),
        should_exist: u.should_exist,
        ssh_authorized_keys: (!keys.is_empty()).then_some(keys),
        system: u.system,
        uid: u.uid,
    }
}
