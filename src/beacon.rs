//! The beacons a node sends the boot server on its way from install to
//! cluster member (`GET /beacon/<node>/<milestone>`, docs/cluster.md lists
//! them): one name each, shared by the templates' scripts, `serve`'s stage
//! table and `lab --until`, so a misspelt name is refused where it is typed
//! instead of being waited for. A leaf: it imports nothing of pxebuild.
use std::fmt;
use std::str::FromStr;

/// One beacon, in the order a node sends them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Beacon {
    InstallStarted,
    InstallDone,
    InstallSkipped,
    BootDiskKexec,
    BootOrderNetworkFirst,
    InstallFailed,
    InstallDiskMissing,
    InstallDiskNotEmpty,
    FirstBoot,
    SysextsMerged,
    KubeadmDone,
    KubeadmTimeout,
    CiliumTimeout,
    CiliumReady,
    SysupdateFailed,
}

impl Beacon {
    /// Every beacon, in the order a node sends them.
    pub const ALL: [Beacon; 15] = [
        Beacon::InstallStarted,
        Beacon::InstallDone,
        Beacon::InstallSkipped,
        Beacon::BootDiskKexec,
        Beacon::BootOrderNetworkFirst,
        Beacon::InstallFailed,
        Beacon::InstallDiskMissing,
        Beacon::InstallDiskNotEmpty,
        Beacon::FirstBoot,
        Beacon::SysextsMerged,
        Beacon::KubeadmDone,
        Beacon::KubeadmTimeout,
        Beacon::CiliumTimeout,
        Beacon::CiliumReady,
        Beacon::SysupdateFailed,
    ];

    /// The name in the beacon's URL and in the logs.
    pub fn name(self) -> &'static str {
        match self {
            Beacon::InstallStarted => "install-started",
            Beacon::InstallDone => "install-done",
            Beacon::InstallSkipped => "install-skipped",
            Beacon::BootDiskKexec => "boot-disk-kexec",
            Beacon::BootOrderNetworkFirst => "boot-order-network-first",
            Beacon::InstallFailed => "install-failed",
            Beacon::InstallDiskMissing => "install-disk-missing",
            Beacon::InstallDiskNotEmpty => "install-disk-not-empty",
            Beacon::FirstBoot => "first-boot",
            Beacon::SysextsMerged => "sysexts-merged",
            Beacon::KubeadmDone => "kubeadm-done",
            Beacon::KubeadmTimeout => "kubeadm-timeout",
            Beacon::CiliumTimeout => "cilium-timeout",
            Beacon::CiliumReady => "cilium-ready",
            Beacon::SysupdateFailed => "sysupdate-failed",
        }
    }

    /// Whether the install stopped for the operator (its disk missing, or
    /// holding data without `wipe`): it does not retry.
    pub fn install_stopped(self) -> bool {
        matches!(
            self,
            Beacon::InstallDiskMissing | Beacon::InstallDiskNotEmpty
        )
    }
}

impl FromStr for Beacon {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Beacon::ALL
            .into_iter()
            .find(|b| b.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Beacon::ALL.iter().map(|b| b.name()).collect();
                format!("is not a beacon (want one of {})", names.join(", "))
            })
    }
}

impl fmt::Display for Beacon {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for b in Beacon::ALL {
            assert_eq!(b.name().parse::<Beacon>(), Ok(b));
        }
        let err = "cilium-redy".parse::<Beacon>().unwrap_err();
        assert!(err.contains("cilium-ready"), "{err}");
        assert!(Beacon::InstallDiskMissing.install_stopped());
        assert!(!Beacon::InstallFailed.install_stopped());
    }

    /// The scripts send beacons as `beacon NAME`, `beacon_with NAME` or
    /// `/opt/pxebuild/bin/beacon NAME`: every such name must be one of ours.
    #[test]
    fn every_beacon_the_templates_send_is_known() {
        let mut sent = std::collections::BTreeSet::new();
        let mut dirs = vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                let words: Vec<&str> = text.split_whitespace().collect();
                for pair in words.windows(2) {
                    let sends = pair[0].ends_with("/beacon")
                        || pair[0] == "beacon"
                        || pair[0] == "beacon_with";
                    if sends
                        && pair[1].contains('-')
                        && pair[1].chars().all(|c| c.is_ascii_lowercase() || c == '-')
                    {
                        sent.insert(pair[1].to_string());
                    }
                }
            }
        }
        assert!(sent.len() >= 12, "{sent:?}");
        for name in sent {
            assert!(name.parse::<Beacon>().is_ok(), "{name} is sent but unknown");
        }
    }
}
