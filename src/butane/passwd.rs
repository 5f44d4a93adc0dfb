//! `passwd.users` and `passwd.groups`, including `ssh_authorized_keys_local`.
use ignition_config::v3_3::{Group, Passwd, User};

use super::local;
use super::schema::{join, Ctx, Obj, Spec};
use super::validate::Seen;

const USER: &[&str] = &[
    "name",
    "ssh_authorized_keys",
    "ssh_authorized_keys_local",
    "groups",
    "password_hash",
    "uid",
    "home_dir",
    "shell",
    "no_create_home",
    "primary_group",
    "system",
    "gecos",
    "no_user_group",
    "no_log_init",
    "should_exist",
];
const GROUP: &[&str] = &["name", "gid", "password_hash", "system", "should_exist"];

pub(super) fn translate(cx: &mut Ctx, v: &serde_norway::Value) -> Passwd {
    let mut pw = Passwd::default();
    let Some(o) = Obj::new(cx, v, "passwd", &["users", "groups"]) else {
        return pw;
    };
    let mut seen = Seen::default();
    let users: Vec<User> = o
        .objs(cx, "passwd", "users", USER)
        .into_iter()
        .filter_map(|(p, u)| {
            let user = user(cx, &p, u)?;
            seen.add(cx, "user", &user.name, &join(&p, "name"));
            Some(user)
        })
        .collect();
    let groups: Vec<Group> = o
        .objs(cx, "passwd", "groups", GROUP)
        .into_iter()
        .filter_map(|(p, g)| {
            let name = g.req_str(cx, &p, "name")?;
            seen.add(cx, "group", &name, &join(&p, "name"));
            let mut group = Group::new(name);
            group.gid = g.int(cx, &p, "gid");
            group.password_hash = g.str(cx, &p, "password_hash");
            group.system = g.bool(cx, &p, "system");
            group.should_exist = g.bool(cx, &p, "should_exist");
            Some(group)
        })
        .collect();
    pw.users = (!users.is_empty()).then_some(users);
    pw.groups = (!groups.is_empty()).then_some(groups);
    pw
}

fn user(cx: &mut Ctx, p: &str, u: Obj) -> Option<User> {
    let name = u.req_str(cx, p, "name")?;
    let mut user = User::new(name);
    user.ssh_authorized_keys = keys(cx, p, u);
    user.groups = u.strings(cx, p, "groups");
    user.password_hash = u.str(cx, p, "password_hash");
    user.uid = u.int(cx, p, "uid");
    user.home_dir = u.str(cx, p, "home_dir");
    user.shell = u.str(cx, p, "shell");
    user.no_create_home = u.bool(cx, p, "no_create_home");
    user.primary_group = u.str(cx, p, "primary_group");
    user.system = u.bool(cx, p, "system");
    user.gecos = u.str(cx, p, "gecos");
    user.no_user_group = u.bool(cx, p, "no_user_group");
    user.no_log_init = u.bool(cx, p, "no_log_init");
    user.should_exist = u.bool(cx, p, "should_exist");
    if let Some(h) = &user.home_dir {
        super::validate::check_abs_path(cx, &join(p, "home_dir"), h);
    }
    Some(user)
}

/// Inline keys followed by one key per non-empty line of each local file.
fn keys(cx: &mut Ctx, p: &str, u: Obj) -> Option<Vec<String>> {
    let mut keys = u.strings(cx, p, "ssh_authorized_keys").unwrap_or_default();
    let lp = join(p, "ssh_authorized_keys_local");
    if u.has("ssh_authorized_keys_local")
        && cx.require_spec(&lp, Spec::V1_1, "ssh_authorized_keys_local")
    {
        for (i, rel) in u
            .strings(cx, p, "ssh_authorized_keys_local")
            .unwrap_or_default()
            .iter()
            .enumerate()
        {
            match local::read_text(cx.files_dir.as_deref(), rel) {
                Ok(text) => keys.extend(
                    text.lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(String::from),
                ),
                Err(msg) => cx.error(&join(&lp, i), msg),
            }
        }
    }
    (!keys.is_empty()).then_some(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_keys_are_read_one_per_non_empty_line() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("k"), "a 1\n\n  b 2  \n").unwrap();
        let v: serde_norway::Value = serde_norway::from_str(
            "users: [{name: u, ssh_authorized_keys: [x 0], ssh_authorized_keys_local: [k]}]",
        )
        .unwrap();
        let mut cx = Ctx::new(Some(tmp.path().to_path_buf()), Spec::V1_1);
        let pw = translate(&mut cx, &v);
        assert!(cx.errors.is_empty(), "{:?}", cx.errors);
        assert_eq!(
            pw.users.unwrap()[0].ssh_authorized_keys,
            Some(vec!["x 0".into(), "a 1".into(), "b 2".into()])
        );
    }

    #[test]
    fn duplicate_users_and_groups() {
        let v: serde_norway::Value = serde_norway::from_str(
            "users: [{name: a}, {name: a}]\ngroups: [{name: a}, {name: g}, {name: g}]",
        )
        .unwrap();
        let mut cx = Ctx::new(None, Spec::V1_0);
        translate(&mut cx, &v);
        let paths: Vec<&str> = cx.errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["passwd.users.1.name", "passwd.groups.2.name"]);
    }
}
