//! The `ignition` section: config merge/replace, timeouts, TLS CAs, proxy.
use ignition_config::v3_3::{
    Ignition, IgnitionConfig, Proxy, Resource, Security, SecurityTls, Timeouts,
};

use super::resource;
use super::schema::{join, Ctx, Obj};

const P: &str = "ignition";

/// Fills `ign` (whose version is already set) from the Butane `ignition` mapping.
pub(super) fn translate(cx: &mut Ctx, v: &serde_norway::Value, ign: &mut Ignition) {
    let Some(o) = Obj::new(cx, v, P, &["config", "timeouts", "security", "proxy"]) else {
        return;
    };
    ign.config = o
        .obj(cx, P, "config", &["merge", "replace"])
        .map(|c| config(cx, c));
    if let Some(t) = o.obj(cx, P, "timeouts", &["http_response_headers", "http_total"]) {
        let tp = join(P, "timeouts");
        ign.timeouts = Some(Timeouts {
            http_response_headers: t.int(cx, &tp, "http_response_headers"),
            http_total: t.int(cx, &tp, "http_total"),
        });
    }
    ign.security = o.obj(cx, P, "security", &["tls"]).map(|s| security(cx, s));
    ign.proxy = o
        .obj(cx, P, "proxy", &["http_proxy", "https_proxy", "no_proxy"])
        .map(|x| proxy(cx, x));
}

fn config(cx: &mut Ctx, c: Obj) -> IgnitionConfig {
    let cp = join(P, "config");
    let merge = resources(cx, c, &cp, "merge");
    let replace = c
        .obj(cx, &cp, "replace", resource::KEYS)
        .map(|r| resource::translate(cx, &join(&cp, "replace"), r));
    IgnitionConfig {
        merge: (!merge.is_empty()).then_some(merge),
        replace,
    }
}

fn security(cx: &mut Ctx, s: Obj) -> Security {
    let sp = join(P, "security");
    let tls = s
        .obj(cx, &sp, "tls", &["certificate_authorities"])
        .map(|t| {
            let cas = resources(cx, t, &join(&sp, "tls"), "certificate_authorities");
            SecurityTls {
                certificate_authorities: (!cas.is_empty()).then_some(cas),
            }
        });
    Security { tls }
}

fn proxy(cx: &mut Ctx, x: Obj) -> Proxy {
    let xp = join(P, "proxy");
    Proxy {
        http_proxy: x.str(cx, &xp, "http_proxy"),
        https_proxy: x.str(cx, &xp, "https_proxy"),
        no_proxy: x
            .strings(cx, &xp, "no_proxy")
            .map(|v| v.into_iter().map(Some).collect()),
    }
}

fn resources(cx: &mut Ctx, o: Obj, path: &str, key: &str) -> Vec<Resource> {
    o.objs(cx, path, key, resource::KEYS)
        .into_iter()
        .map(|(p, r)| resource::translate(cx, &p, r))
        .collect()
}
