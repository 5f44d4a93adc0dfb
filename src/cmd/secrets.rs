//! `pxebuild secrets`: create, inspect and rotate the site's secrets. Never
//! prints private keys or the secret half of a token.
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::cmd::global::Global;
use crate::secrets::{self, Secrets};
use crate::site::Site;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Show where the secrets live, the CA hash, the CA's and the admin client
    /// certificate's expiry, the bootstrap token's lifetime and the update key.
    Show,
    /// Create any missing secrets without building (refused beside a built tree
    /// whose secrets, or one of whose nodes' ids, are gone: the --out tree, and
    /// always the site's own dist/ beside site.toml).
    Init {
        /// The boot tree the secrets belong to, as `build --out` names it
        /// (relative to the working directory, like build's).
        #[arg(long, value_name = "DIR", default_value = crate::layout::SITE_DIST)]
        out: PathBuf,
    },
    /// Replace the bootstrap token (then rebuild; a running cluster must also
    /// learn it with `pxebuild token publish`).
    RotateToken,
    /// Replace the update key that signs the sysext listings (then rebuild;
    /// installed nodes refuse the new signatures until they are given the new
    /// public key, see docs/operations.md).
    RotateUpdateKey,
}

pub(crate) fn run(global: &Global, command: Command) -> Result<()> {
    let site = Site::load(&global.site)?;
    match command {
        Command::Show => show(&site, &secrets::load(&site)?),
        Command::Init { out } => {
            let loaded = secrets::ensure(&site, Some(&out))?;
            if loaded.created.is_empty() {
                crate::info!("all secrets already exist in {}", loaded.dir.display());
            } else {
                crate::info!("created {}", loaded.created.join(", "));
            }
            // The summary is progress output here (`secrets show` prints it on
            // request): `-q` leaves only warnings and errors.
            if crate::log::level() >= 1 {
                show(&site, &loaded)?;
            }
            Ok(())
        }
        Command::RotateToken => {
            let new = secrets::rotate_token(&site)?;
            let id = new.split('.').next().unwrap_or_default();
            crate::info!(
                "new bootstrap token {id}.**** written to {}; rebuild so nodes that \
                 have not joined yet get it",
                site.secrets_dir().join(secrets::TOKEN_FILE).display()
            );
            Ok(())
        }
        Command::RotateUpdateKey => {
            let key = secrets::rotate_update_key(&site)?;
            crate::info!(
                "new update key {} written to {}; rebuild, then give installed nodes its \
                 public key (docs/operations.md): until then they refuse the new listings",
                key.fingerprint(),
                site.secrets_dir().join(secrets::update_key::FILE).display()
            );
            Ok(())
        }
    }
}

fn show(site: &Site, s: &Secrets) -> Result<()> {
    println!("secrets:        {}", s.dir.display());
    println!(
        "kubeconfig:     {}",
        s.dir.join(secrets::kubeconfig::FILE).display()
    );
    println!("CA cert hash:   {}", s.ca_hash);
    let ca_until = secrets::pki::not_after(&s.ca.cert_pem)?;
    println!("CA valid until: {}", format_time(ca_until));
    let kubeconfig = s.dir.join(secrets::kubeconfig::FILE);
    match std::fs::read_to_string(&kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))
        .and_then(|text| secrets::kubeconfig::client_cert_not_after(&text))
    {
        Ok(until) => println!("admin cert:     valid until {}", format_time(until)),
        // Re-minted by the next build when missing: say so, don't fail `show`.
        Err(err) => {
            crate::warn!("admin client certificate: {err:#}");
        }
    }
    let id = s.token.split('.').next().unwrap_or_default();
    let ttl = &site.file.cluster.bootstrap_token_ttl;
    println!(
        "token:          {id}.**** created {}; lives {ttl} from the first control plane's \
         kubeadm init",
        format_time(s.token_created)
    );
    let window = &site.file.cluster.bring_up_window;
    if ttl.get().as_secs() != 0 && ttl.get() < window.get() {
        crate::warn!("bootstrap_token_ttl {ttl} is shorter than bring_up_window {window}");
    }
    println!(
        "update key:     {} (created {}; signs sysext SHA256SUMS, nodes trust it as {})",
        s.update_key.fingerprint(),
        format_time(i64::from(s.update_key.created())),
        secrets::update_key::NODE_KEYRING
    );
    for (node, id) in &s.node_ids {
        let dir = crate::layout::ignition_dir(&crate::layout::node_dir_name(node, id));
        println!("node id:        {node} -> {dir}/");
    }
    Ok(())
}

fn format_time(unix: i64) -> String {
    x509_parser::time::ASN1Time::from_timestamp(unix)
        .ok()
        .and_then(|t| t.to_rfc2822().ok())
        .unwrap_or_else(|| unix.to_string())
}
