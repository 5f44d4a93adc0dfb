//! Renders the example site at the render level (hand-made artifact
//! references, no fetching) and checks every document a node gets.
use pxebuild::render::context::{sysexts_from, NodeContext, SiteContext};
use pxebuild::render::node::{render_install, render_node};
use pxebuild::render::templates::Templates;
use pxebuild::render::{cilium, ignition, node_contexts};
use pxebuild::secrets;
use pxebuild::site::Site;

use crate::cluster_common::*;
use crate::kubeadm_types::{parse_all, Arg, Document};

/// Every node's context (with sysexts and embedded files) and its node Butane.
pub fn render_all(site: &Site) -> Vec<(NodeContext, String)> {
    let refs = artifact_refs(site);
    let s = secrets::ensure(site, None).unwrap();
    let site_ctx = std::sync::Arc::new(SiteContext::new(site, &refs).unwrap());
    let templates = Templates::load(&site.templates_dir()).unwrap();
    let (values, _) = cilium::load_values(site, true).unwrap();
    node_contexts(site, &site_ctx, &s)
        .unwrap()
        .into_iter()
        .map(|mut ctx| {
            ctx.sysexts =
                sysexts_from(&site.http_base(), &refs.sysexts, |p| Ok(fake_sha512(p))).unwrap();
            let butane = render_node(&templates, &mut ctx, Some(&values)).unwrap();
            (ctx, butane)
        })
        .collect()
}

fn arg<'a>(args: &'a [Arg], name: &str) -> Option<&'a str> {
    args.iter()
        .find(|a| a.name == name)
        .map(|a| a.value.as_str())
}

#[test]
fn cluster_butane_is_yaml_for_every_node() {
    let (_dir, site) = example_site();
    let rendered = render_all(&site);
    assert_eq!(rendered.len(), site.file.nodes.len());
    for (ctx, bu) in rendered {
        let doc: serde_json::Value = serde_norway::from_str(&bu)
            .unwrap_or_else(|e| panic!("{}: node.bu is not YAML: {e}\n{bu}", ctx.node.name));
        assert_eq!(doc["variant"], "flatcar");
        assert_eq!(doc["version"], "1.0.0");
        let files = doc["storage"]["files"].as_array().unwrap();
        let hostname = files.iter().find(|f| f["path"] == "/etc/hostname").unwrap();
        assert_eq!(hostname["contents"]["inline"], ctx.node.name.as_str());
        for sysext in &ctx.sysexts {
            let f = files
                .iter()
                .find(|f| f["path"] == sysext.path.as_str())
                .unwrap();
            assert_eq!(f["contents"]["source"], sysext.url.as_str());
            let hash = f["contents"]["verification"]["hash"].as_str().unwrap();
            assert_eq!(hash, format!("sha512-{}", sysext.sha512));
        }
        let conf = files
            .iter()
            .find(|f| f["path"] == "/etc/sysupdate.kubernetes.d/kubernetes-v1.35.conf")
            .expect("a per-minor sysupdate conf");
        let text = conf["contents"]["inline"].as_str().unwrap();
        assert!(
            text.contains("MatchPattern=kubernetes-v1.35.@v-%a.raw"),
            "{text}"
        );
        assert!(
            text.contains("Path=http://10.20.0.2:8080/sysext/kubernetes/"),
            "{text}"
        );
        assert!(files
            .iter()
            .any(|f| f["path"] == "/etc/sysupdate.d/noop.conf"));
    }
}

#[test]
fn cluster_kubeadm_configs_parse_strictly_and_fit_each_role() {
    let (_dir, site) = example_site();
    let s = secrets::load(&{
        render_all(&site);
        site.clone()
    })
    .unwrap();
    for (ctx, _) in render_all(&site) {
        let docs = parse_all(&ctx.files.kubeadm);
        let name = ctx.node.name.as_str();
        match name {
            "cp1" => check_init(&docs, &ctx, &s.token),
            _ => check_join(&docs, &ctx, &s),
        }
    }
}

fn check_init(docs: &[Document], ctx: &NodeContext, token: &str) {
    assert_eq!(docs.len(), 3, "init, cluster and kubelet documents");
    let Document::InitConfiguration(init) = &docs[0] else {
        panic!("first document is InitConfiguration")
    };
    assert_eq!(init.bootstrap_tokens[0].token, token);
    assert_eq!(init.bootstrap_tokens[0].ttl.as_deref(), Some("24h"));
    assert_eq!(init.node_registration.name.as_deref(), Some("cp1"));
    let args = &init.node_registration.kubelet_extra_args;
    assert_eq!(arg(args, "node-ip"), Some(ctx.node.ip.as_str()));
    assert!(arg(args, "volume-plugin-dir").unwrap().starts_with("/opt/"));
    assert_eq!(
        init.local_api_endpoint.as_ref().unwrap().advertise_address,
        "10.20.0.11"
    );
    let Document::ClusterConfiguration(cluster) = &docs[1] else {
        panic!("second document is ClusterConfiguration")
    };
    assert_eq!(cluster.control_plane_endpoint, "10.20.0.10:6443");
    assert_eq!(cluster.kubernetes_version, "v1.35.9");
    assert!(
        cluster.proxy.as_ref().unwrap().disabled,
        "Cilium replaces kube-proxy"
    );
    assert_eq!(
        cluster.networking.pod_subnet.as_deref(),
        Some("10.244.0.0/16")
    );
    let sans = &cluster.api_server.as_ref().unwrap().cert_sans;
    assert!(sans.contains(&"10.20.0.10".to_string()));
    let cm = &cluster.controller_manager.as_ref().unwrap().extra_args;
    assert!(arg(cm, "flex-volume-plugin-dir")
        .unwrap()
        .starts_with("/opt/"));
    assert!(matches!(docs[2], Document::KubeletConfiguration(_)));
}

fn check_join(docs: &[Document], ctx: &NodeContext, s: &secrets::Secrets) {
    assert_eq!(docs.len(), 1, "{}: one JoinConfiguration", ctx.node.name);
    let Document::JoinConfiguration(join) = &docs[0] else {
        panic!("{}: JoinConfiguration expected", ctx.node.name)
    };
    let bt = join.discovery.bootstrap_token.as_ref().unwrap();
    assert_eq!(bt.token, s.token);
    assert_eq!(bt.api_server_endpoint, "10.20.0.10:6443");
    assert_eq!(bt.ca_cert_hashes, vec![s.ca_hash.clone()]);
    assert_ne!(bt.unsafe_skip_ca_verification, Some(true));
    let args = &join.node_registration.kubelet_extra_args;
    assert_eq!(arg(args, "node-ip"), Some(ctx.node.ip.as_str()));
    match &join.control_plane {
        Some(cp) => {
            assert!(ctx.node.control_plane, "{}", ctx.node.name);
            assert_eq!(
                cp.local_api_endpoint.as_ref().unwrap().advertise_address,
                ctx.node.ip
            );
            assert!(cp.certificate_key.is_none(), "CA material is pre-shared");
        }
        None => {
            assert!(ctx.node.worker, "{}", ctx.node.name);
            assert_eq!(
                arg(args, "node-labels"),
                Some("node.example.com/pool=general")
            );
        }
    }
}

#[test]
fn cluster_kubeadm_types_reject_unknown_fields() {
    let text = "apiVersion: kubeadm.k8s.io/v1beta4\nkind: JoinConfiguration\n\
                nodeRegistration: {name: a}\ndiscovery: {tlsBootstrapToken: x}\nbogus: 1\n";
    let docs: Result<Vec<Document>, _> = serde_norway::Deserializer::from_str(text)
        .map(serde::Deserialize::deserialize)
        .collect();
    assert!(docs.is_err(), "an unknown field must be refused");
}

#[test]
fn cluster_workers_carry_no_private_keys_control_planes_do() {
    let (_dir, site) = example_site();
    for (ctx, bu) in render_all(&site) {
        let has_keys = bu.contains("PRIVATE KEY");
        if ctx.node.worker {
            assert!(!has_keys, "{} must carry no private key", ctx.node.name);
            assert!(!bu.contains("/etc/kubernetes/pki/"), "{}", ctx.node.name);
            assert!(ctx.secrets.pki.is_none());
            assert!(!ctx.files.kubeadm.contains("certificateKey"));
        } else {
            assert!(has_keys, "{} needs the CA keys", ctx.node.name);
            for f in [
                "ca.key",
                "front-proxy-ca.key",
                "etcd/ca.key",
                "sa.key",
                "sa.pub",
            ] {
                assert!(bu.contains(&format!("/etc/pxebuild/pki/{f}")), "{f}");
            }
        }
    }
}

#[test]
fn cluster_first_control_plane_runs_init_kube_vip_and_cilium() {
    let (_dir, site) = example_site();
    let rendered = render_all(&site);
    let (cp1, bu) = &rendered[0];
    assert!(cp1.node.init);
    let script = &cp1.files.bootstrap_script;
    assert!(script.contains("kubeadm init --config /etc/kubernetes/kubeadm.yaml"));
    assert!(
        script.contains("path: /etc/kubernetes/super-admin.conf"),
        "kube-vip uses super-admin.conf during init on 1.29+"
    );
    let vip = cp1.files.kube_vip.as_deref().unwrap();
    assert!(vip.contains("value: \"10.20.0.10\""), "{vip}");
    let values = cp1.files.cilium_values.as_deref().unwrap();
    assert!(values.contains("k8sServiceHost: 10.20.0.10"));
    let cilium = cp1.files.cilium_script.as_deref().unwrap();
    assert!(cilium.contains("cilium install --version \"1.19.8\" --values /etc/cilium/values.yaml"));
    assert!(bu.contains("name: pxebuild-cilium.service"));
    for (ctx, bu) in &rendered[1..] {
        assert!(!ctx.node.init);
        assert!(ctx.files.cilium_values.is_none(), "{}", ctx.node.name);
        assert!(
            !bu.contains("name: pxebuild-cilium.service"),
            "{}",
            ctx.node.name
        );
        assert!(
            ctx.files.bootstrap_script.contains("/readyz"),
            "joins wait for the API"
        );
        assert!(ctx.files.bootstrap_script.contains("kubeadm join --config"));
        assert_eq!(ctx.files.kube_vip.is_some(), ctx.node.control_plane);
    }
}

#[test]
fn cluster_serve_mode_installs_cilium_from_the_boot_servers_chart_repository() {
    let install = "cilium install --version \"1.19.8\" --values /etc/cilium/values.yaml";
    let (_dir, site) = edited_site(&[("[ssh]", "[images]\nmode = \"serve\"\n\n[ssh]")]);
    let rendered = render_all(&site);
    let script = rendered[0].0.files.cilium_script.as_deref().unwrap();
    assert!(
        script.contains(&format!(
            "{install} \\\n    --repository \"http://10.20.0.2:8080/charts\"\n"
        )),
        "{script}"
    );
    assert_eq!(script.matches("cilium install").count(), 1, "{script}");
    // Pull mode: the CLI's own default repository, as before.
    let (_dir, site) = example_site();
    let rendered = render_all(&site);
    let script = rendered[0].0.files.cilium_script.as_deref().unwrap();
    assert!(script.contains(&format!("{install}\n")), "{script}");
    assert!(!script.contains("--repository"), "{script}");
}

#[test]
fn cluster_install_config_guards_and_installs_the_pxe_version() {
    let (_dir, site) = example_site();
    let templates = Templates::load(&site.templates_dir()).unwrap();
    let (mut ctx, _) = render_all(&site).remove(3);
    let node_ign = br#"{"ignition":{"version":"3.3.0"}}"#;
    let bu = render_install(&templates, &mut ctx, node_ign).unwrap();
    let doc: serde_json::Value = serde_norway::from_str(&bu).unwrap();
    // The node config is not part of the install config: the script fetches
    // it, checked against its digest, only when it installs.
    assert!(!bu.contains("node.ign\n") && !bu.contains("data:"), "{bu}");
    let files = doc["storage"]["files"].as_array().unwrap();
    assert!(files.iter().all(|f| f["path"] != "/opt/pxebuild/node.ign"));
    let script = ctx.files.install_script.unwrap();
    assert!(script.contains(&format!(
        "NODE_CONFIG_URL=\"http://10.20.0.2:8080/{}/node.ign\"",
        ctx.node.ignition_dir
    )));
    let sha512 = pxebuild::digest::sha512_hex(node_ign);
    assert!(script.contains(&format!("NODE_CONFIG_SHA512=\"{sha512}\"")));
    assert!(script.contains(
        "flatcar-install -d \"$DISK\" -b \"$BASE_URL\" -V \"$VERSION\" -i \"$NODE_CONFIG\""
    ));
    let fetch = script.find("\nfetch_node_config\n").unwrap();
    assert!(fetch < script.find("\nflatcar-install -d").unwrap());
    assert!(script.contains("BASE_URL=\"http://10.20.0.2:8080/flatcar\""));
    assert!(script.contains("VERSION=\"4593.2.5\""));
    assert!(script.contains("DISK=\"/dev/disk/by-id/virtio-worker1-root\""));
    // The guard runs before the installer.
    let guard = script.find("if installed_here").unwrap();
    assert!(guard < script.find("flatcar-install -d").unwrap());
    assert!(script.contains("MARKER=\"pxebuild-node=${NODE}\""));
    assert!(script.contains("beacon install-done"));
}

#[test]
fn cluster_ignition_translates_and_validates() {
    let (dir, site) = example_site();
    let templates = Templates::load(&site.templates_dir()).unwrap();
    for (mut ctx, bu) in render_all(&site) {
        let name = ctx.node.name.clone();
        let node_ign = ignition::translate(&bu, &format!("{name}/node.bu"), true).unwrap();
        let install_bu = render_install(&templates, &mut ctx, node_ign.as_bytes()).unwrap();
        let install_ign =
            ignition::translate(&install_bu, &format!("{name}/install.bu"), true).unwrap();
        for (doc, json) in [("node", &node_ign), ("install", &install_ign)] {
            let path = dir.path().join(format!("{name}-{doc}.ign"));
            std::fs::write(&path, json).unwrap();
            ignition_validate(&path);
        }
        let node: serde_json::Value = serde_json::from_str(&node_ign).unwrap();
        let kubeadm = ignition_file(&node, "/etc/kubernetes/kubeadm.yaml").unwrap();
        assert_eq!(String::from_utf8(kubeadm).unwrap(), ctx.files.kubeadm);
        // The installer takes exactly this node config: its digest is in the script.
        let install: serde_json::Value = serde_json::from_str(&install_ign).unwrap();
        let script = ignition_file(&install, "/opt/pxebuild/install.sh").unwrap();
        let digest = pxebuild::digest::sha512_hex(node_ign.as_bytes());
        assert!(String::from_utf8(script).unwrap().contains(&digest));
    }
}

#[test]
fn cluster_cilium_values_must_agree_with_the_site() {
    let (dir, site) = example_site();
    let path = dir.path().join("payload/core/cilium/values.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace("k8sServicePort: 6443", "k8sServicePort: 7443"),
    )
    .unwrap();
    let err = cilium::load_values(&site, false).unwrap_err();
    assert_eq!(
        pxebuild::error::exit_code(&err),
        pxebuild::error::EXIT_BAD_INPUT
    );
    assert!(format!("{err:#}").contains("k8sServicePort"), "{err:#}");
    std::fs::write(&path, text.replace("type: wireguard", "type: ipsec")).unwrap();
    let err = cilium::load_values(&site, false).unwrap_err();
    assert!(format!("{err:#}").contains("encryption.type"), "{err:#}");
    // Without cluster.name, cilium install would pick one Argo CD's render
    // does not: a warning, fatal under --strict.
    let unnamed = text.replace("cluster:\n  name: rack1\n", "");
    assert_ne!(unnamed, text);
    std::fs::write(&path, unnamed).unwrap();
    cilium::load_values(&site, false).unwrap();
    let err = cilium::load_values(&site, true).unwrap_err();
    assert!(
        format!("{err:#}").contains("cluster.name is not set: `cilium install` will name"),
        "{err:#}"
    );
}

#[test]
fn cluster_short_token_lifetime_warns_and_fails_strict_builds() {
    let (dir, _) = example_site();
    let path = dir.path().join("site.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::write(
        &path,
        text.replace(
            "bootstrap_token_ttl = \"24h\"",
            "bootstrap_token_ttl = \"1h\"",
        ),
    )
    .unwrap();
    let site = Site::load(&path).unwrap();
    assert!(pxebuild::render::check_token_lifetime(&site, false).is_ok());
    let err = pxebuild::render::check_token_lifetime(&site, true).unwrap_err();
    assert!(format!("{err:#}").contains("bring_up_window"), "{err:#}");
}

/// `bash -n` on a script (syntax only; nothing runs).
fn bash_syntax_ok(name: &str, script: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("script.sh");
    std::fs::write(&path, script).unwrap();
    let out = std::process::Command::new("bash")
        .arg("-n")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name}: {}\n{script}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn cluster_embedded_scripts_and_manifests_parse() {
    let (_dir, site) = example_site();
    let templates = Templates::load(&site.templates_dir()).unwrap();
    for (mut ctx, _) in render_all(&site) {
        let name = ctx.node.name.clone();
        bash_syntax_ok(&format!("{name} bootstrap"), &ctx.files.bootstrap_script);
        bash_syntax_ok(&format!("{name} sysupdate"), &ctx.files.sysupdate_script);
        if let Some(script) = &ctx.files.cilium_script {
            bash_syntax_ok(&format!("{name} cilium"), script);
        }
        if let Some(vip) = &ctx.files.kube_vip {
            let pod: serde_json::Value = serde_norway::from_str(vip).unwrap();
            assert_eq!(pod["kind"], "Pod");
            assert_eq!(pod["spec"]["hostNetwork"], true);
        }
        render_install(&templates, &mut ctx, b"{}").unwrap();
        bash_syntax_ok(
            &format!("{name} install"),
            ctx.files.install_script.as_deref().unwrap(),
        );
    }
}
