//! Where each fetched artifact lands: the contract between the fetch steps and
//! the steps that render configs pointing at those artifacts.

/// One output of a fetch step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRef {
    /// Id of the step that produces it (a dependency for readers).
    pub step: String,
    /// Output path: a dist path (`http/...`, `tftp/...`).
    pub path: String,
}

/// A system extension image placed in its sysupdate directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SysextRef {
    /// `kubernetes`, `cilium` or `containerd`.
    pub name: String,
    /// As in the file name, e.g. `v1.33.2`.
    pub version: String,
    /// e.g. `kubernetes-v1.33.2-x86-64.raw`
    pub file_name: String,
    /// The image (dist path `http/sysext/<name>/<file_name>`).
    pub image: ArtifactRef,
    /// Internal output holding the image's SHA-512 as hex (for Ignition
    /// `verification.hash`), produced by the same step.
    pub sha512: ArtifactRef,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArtifactRefs {
    /// The pinned Flatcar version the tree boots: the site's `flatcar.version`,
    /// which is never `current` here (the build pins it first, see
    /// [`crate::fetch::current::pin`]).
    pub flatcar_version: String,
    pub pxe_kernel: Option<ArtifactRef>,
    pub pxe_initrd: Option<ArtifactRef>,
    /// Disk image for flatcar-install, and its detached signature beside it.
    pub install_image: Option<ArtifactRef>,
    pub install_image_sig: Option<ArtifactRef>,
    /// Loader files placed under tftp/ (lpxelinux.0, ldlinux.c32, efi64/..., iPXE).
    pub loaders: Vec<ArtifactRef>,
    pub sysexts: Vec<SysextRef>,
}

impl ArtifactRefs {
    pub fn empty(flatcar_version: &str) -> ArtifactRefs {
        ArtifactRefs {
            flatcar_version: flatcar_version.to_string(),
            pxe_kernel: None,
            pxe_initrd: None,
            install_image: None,
            install_image_sig: None,
            loaders: Vec::new(),
            sysexts: Vec::new(),
        }
    }

    /// Ids of every fetch step (render steps that embed digests depend on them).
    pub fn steps(&self) -> Vec<String> {
        let mut ids: Vec<String> = [
            &self.pxe_kernel,
            &self.pxe_initrd,
            &self.install_image,
            &self.install_image_sig,
        ]
        .into_iter()
        .flatten()
        .chain(self.loaders.iter())
        .chain(self.sysexts.iter().map(|s| &s.image))
        .map(|r| r.step.clone())
        .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}
