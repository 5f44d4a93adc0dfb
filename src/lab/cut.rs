//! Power cuts (`lab run --cut NODE=BEACON`): when NODE sends BEACON the lab
//! resets its VM, as a power cut and the power coming back would, and the
//! VM boots again from its firmware's boot order. The VM also carries the
//! SMBIOS OEM string `pxebuild.standin.hold=BEACON`, which makes the
//! stand-in's Kubernetes tools stop right after that beacon (with what they
//! wrote on disk), so the cut lands exactly there; real Flatcar ignores it.
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::beacon::Beacon;
use crate::error::BadInput;

/// The stand-in kubeadm's phase beacons (tests/fixtures/standin-sysext/
/// standin-tool): the points inside init and join where a cut hurts, its
/// preflight image pull (`[images] mode = "serve"`) and its reset.
pub(crate) const STANDIN_PHASES: [&str; 14] = [
    "kubeadm-init-preflight",
    "kubeadm-images-pulled",
    "kubeadm-init-certs",
    "kubeadm-init-kubeconfig",
    "kubeadm-init-control-plane",
    "kubeadm-init-kubelet-start",
    "kubeadm-init-upload-config",
    "kubeadm-join-preflight",
    "kubeadm-join-discovery",
    "kubeadm-join-control-plane-prepare",
    "kubeadm-join-kubelet-start",
    "kubeadm-join-etcd",
    "kubeadm-join-control-plane-join",
    "kubeadm-reset",
];

/// One `--cut NODE=BEACON`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cut {
    pub node: String,
    pub beacon: String,
}

/// A cut that happened, for the report.
#[derive(Debug, Clone, Serialize)]
pub struct PowerCut {
    pub beacon: String,
    /// Seconds since the VM started.
    pub at: f64,
}

impl std::str::FromStr for Cut {
    type Err = String;

    /// `NODE=BEACON`, the beacon one pxebuild's units send or a stand-in phase.
    fn from_str(s: &str) -> Result<Cut, String> {
        let (node, beacon) = s
            .split_once('=')
            .filter(|(n, b)| !n.is_empty() && !b.is_empty())
            .ok_or_else(|| format!("{s:?} is not NODE=BEACON"))?;
        if beacon.parse::<Beacon>().is_err() && !STANDIN_PHASES.contains(&beacon) {
            let mut names: Vec<&str> = Beacon::ALL.iter().map(|b| b.name()).collect();
            names.extend(STANDIN_PHASES);
            return Err(format!(
                "{beacon:?} is not a beacon (want one of {})",
                names.join(", ")
            ));
        }
        Ok(Cut {
            node: node.into(),
            beacon: beacon.into(),
        })
    }
}

/// Checks the cuts against the lab: each names a booted site node, at most
/// once, and the VMs have disks to boot again from.
pub(crate) fn check(cuts: &[Cut], nodes: &[&str], disk: bool) -> Result<()> {
    if cuts.is_empty() {
        return Ok(());
    }
    if !disk {
        return Err(BadInput::new(
            "--cut needs --disk: a VM without a disk has nothing to boot again from",
        ));
    }
    for (i, cut) in cuts.iter().enumerate() {
        if !nodes.contains(&cut.node.as_str()) {
            return Err(BadInput::new(format!(
                "--cut {}={}: {} is not a node of this run (nodes: {})",
                cut.node,
                cut.beacon,
                cut.node,
                nodes.join(", ")
            )));
        }
        if cuts[..i].iter().any(|c| c.node == cut.node) {
            return Err(BadInput::new(format!(
                "--cut names {} twice: one cut per node",
                cut.node
            )));
        }
    }
    Ok(())
}

/// The QEMU arguments of a VM with a cut: the hold point as an SMBIOS OEM
/// string, and a monitor socket (`<name>.monitor` in QEMU's working
/// directory, the state directory) to reset it through.
pub(crate) fn qemu_args(name: &str, beacon: &str) -> Vec<String> {
    vec![
        "-smbios".into(),
        format!("type=11,value=pxebuild.standin.hold={beacon}"),
        "-monitor".into(),
        format!("unix:{},server=on,wait=off", monitor_name(name)),
    ]
}

/// The monitor socket's file name in the state directory.
pub(crate) fn monitor_name(name: &str) -> String {
    format!("{name}.monitor")
}

/// Cuts the power: `system_reset` through the VM's monitor. The VM loses
/// its memory (what the guest had not written to disk) and boots again.
pub(crate) fn reset(monitor: &Path) -> Result<()> {
    let mut s = UnixStream::connect(monitor)
        .with_context(|| format!("connecting to QEMU's monitor {}", monitor.display()))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"system_reset\n")
        .with_context(|| format!("writing to {}", monitor.display()))?;
    // The monitor greets with a prompt, echoes the command, runs it and
    // prompts again.
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while String::from_utf8_lossy(&seen).matches("(qemu)").count() < 2 {
        let n = s
            .read(&mut buf)
            .with_context(|| format!("reading {}", monitor.display()))?;
        if n == 0 {
            break;
        }
        seen.extend_from_slice(&buf[..n]);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_names_a_node_and_a_known_beacon() {
        let cut: Cut = "cp1=kubeadm-init-control-plane".parse().unwrap();
        assert_eq!(cut.node, "cp1");
        assert_eq!(cut.beacon, "kubeadm-init-control-plane");
        assert!("cp2=first-boot".parse::<Cut>().is_ok());
        let err = "cp1=kubeadm-init-contol-plane".parse::<Cut>().unwrap_err();
        assert!(err.contains("kubeadm-join-etcd"), "{err}");
        assert!("cp1".parse::<Cut>().is_err());
        assert!("=first-boot".parse::<Cut>().is_err());
    }

    #[test]
    fn cuts_are_checked_against_the_run() {
        let cut = |s: &str| s.parse::<Cut>().unwrap();
        let nodes = ["cp1", "cp2"];
        assert!(check(&[cut("cp1=first-boot")], &nodes, true).is_ok());
        let err = check(&[cut("cp9=first-boot")], &nodes, true).unwrap_err();
        assert!(err.to_string().contains("cp9 is not a node"), "{err}");
        let err = check(&[cut("cp1=first-boot")], &nodes, false).unwrap_err();
        assert!(err.to_string().contains("--disk"), "{err}");
        let twice = [cut("cp1=first-boot"), cut("cp1=kubeadm-join-etcd")];
        assert!(check(&twice, &nodes, true).is_err());
        assert!(err.downcast_ref::<BadInput>().is_some());
    }

    #[test]
    fn a_cut_vm_carries_the_hold_point_and_a_monitor() {
        assert_eq!(
            qemu_args("cp2", "kubeadm-join-etcd"),
            [
                "-smbios",
                "type=11,value=pxebuild.standin.hold=kubeadm-join-etcd",
                "-monitor",
                "unix:cp2.monitor,server=on,wait=off"
            ]
        );
    }
}
