//! `sign:sysext/<name>`: signs each sysext directory's `SHA256SUMS` with the
//! site update key and publishes the detached signature beside it
//! (`http/sysext/<name>/SHA256SUMS.gpg`), which nodes require (`Verify=yes`).
//! The signature depends only on the listing and the key, so its step key
//! holds the listing's digest and the key's fingerprint, never the key.
use std::sync::Arc;

use anyhow::Result;
use serde::Serialize;

use crate::engine::key::Key;
use crate::engine::step::{Inputs, RunCtx, Step, Visibility};
use crate::fetch::refs::SysextRef;
use crate::secrets::update_key::{UpdateKey, SIGNATURE};

pub(crate) struct SignSums {
    pub key: Arc<UpdateKey>,
    /// The fetch step that publishes the listing.
    pub fetch_step: String,
    pub name: String,
}

impl SignSums {
    pub(crate) fn new(key: &Arc<UpdateKey>, sysext: &SysextRef) -> SignSums {
        SignSums {
            key: key.clone(),
            fetch_step: sysext.image.step.clone(),
            name: sysext.name.clone(),
        }
    }

    fn sums(&self) -> String {
        crate::layout::sysext_file(&self.name, crate::layout::SYSEXT_LISTING)
    }
}

/// The key of a signature: the listing's digest, the key's fingerprint (never
/// the key) and what kind of signature is made.
#[derive(Serialize)]
struct SignKey<'a> {
    sums: &'a str,
    key: String,
    signature: &'static str,
}

impl Step for SignSums {
    fn id(&self) -> String {
        format!("sign:sysext/{}", self.name)
    }

    fn deps(&self) -> Vec<String> {
        vec![self.fetch_step.clone()]
    }

    fn key<'a>(&'a self, inputs: &'a Inputs<'_>) -> Result<Key<'a>> {
        Ok(Key::new(SignKey {
            sums: &inputs.get(&self.sums())?.sha256,
            key: self.key.fingerprint(),
            signature: "v4 ed25519 sha256, created at the key's creation time",
        }))
    }

    fn run(&self, ctx: &mut RunCtx) -> Result<()> {
        let sums = ctx.inputs.read(&self.sums())?;
        let sig = self.key.sign(&sums)?;
        ctx.put_bytes(
            &crate::layout::sysext_file(&self.name, SIGNATURE),
            &sig,
            Visibility::Public,
        )
    }
}
