//! QEMU command lines for lab VMs, and the accelerator choice.
//!
//! BIOS VMs boot SeaBIOS with QEMU's iPXE option ROM; UEFI VMs boot OVMF with
//! the NIC's option ROM removed, so OVMF's own PXE stack runs, as on real UEFI
//! NICs. KVM is used only when a probe VM really runs under it: on nested hosts
//! `/dev/kvm` can exist and still fail or crawl, so its presence proves nothing.
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::plan::{Firmware, LabVm, Role};

pub(crate) const QEMU: &str = "qemu-system-x86_64";
pub(crate) const OVMF_CODE: &str = "/usr/share/OVMF/OVMF_CODE_4M.fd";
pub(crate) const OVMF_VARS: &str = "/usr/share/OVMF/OVMF_VARS_4M.fd";

/// Accelerator for the VMs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Accel {
    /// Use KVM when a probe VM runs under it, else TCG.
    Auto,
    /// QEMU's software emulation: slower, works everywhere.
    Tcg,
    /// Hardware virtualisation.
    Kvm,
}

/// How one VM is run.
#[derive(Debug, Clone)]
pub(crate) struct VmSpec<'a> {
    pub vm: &'a LabVm,
    /// `Tcg` or `Kvm` (never `Auto`).
    pub accel: Accel,
    pub memory_mib: u32,
    pub tap: String,
    /// Per-VM copy of the OVMF variable store (UEFI only).
    pub vars: Option<PathBuf>,
    /// Sparse raw disk (real installs only); without it the VM powers off for good.
    pub disk: Option<PathBuf>,
    /// The NIC boots before the disk (otherwise the disk first).
    pub network_first: bool,
    /// The beacon at which the lab cuts this VM's power (`--cut`).
    pub cut: Option<&'a str>,
}

/// The QEMU arguments for one VM; the serial console goes to stdout.
pub(crate) fn args(spec: &VmSpec) -> Vec<String> {
    let vm = spec.vm;
    let mut a: Vec<String> = match spec.accel {
        Accel::Kvm => strings(&["-accel", "kvm", "-cpu", "host"]),
        _ => strings(&["-accel", "tcg"]),
    };
    let memory = spec.memory_mib.to_string();
    a.extend(strings(&[
        "-m",
        &memory,
        "-smp",
        "1",
        "-nographic",
        "-name",
        &vm.name,
    ]));
    if spec.disk.is_none() {
        // The stand-in OS powers off; QEMU then exits instead of rebooting.
        a.push("-no-reboot".into());
    }
    if vm.firmware == Firmware::Uefi {
        a.extend(uefi_args(
            spec.vars.as_deref().unwrap_or(Path::new(OVMF_VARS)),
        ));
    }
    let (disk_index, nic_index) = if spec.network_first { (2, 1) } else { (1, 2) };
    a.extend(nic_args(vm, &spec.tap, nic_index));
    if let Some(disk) = &spec.disk {
        let drive = format!("if=none,id=d0,format=raw,file={}", disk.display());
        let serial = vm.disk_serial.as_deref().unwrap_or(&vm.name);
        let device = format!("virtio-blk-pci,drive=d0,serial={serial},bootindex={disk_index}");
        a.extend(strings(&["-drive", &drive, "-device", &device]));
    }
    if let Some(beacon) = spec.cut {
        a.extend(super::cut::qemu_args(&vm.name, beacon));
    }
    if let Role::Intruder { boot, .. } = &vm.role {
        a.extend(strings(&["-kernel", &boot.kernel.display().to_string()]));
        a.extend(strings(&["-initrd", &boot.initrd.display().to_string()]));
        a.extend(strings(&["-append", &boot.append]));
    }
    a
}

/// OVMF's code (read-only) and the VM's own variable store, on q35.
fn uefi_args(vars: &Path) -> Vec<String> {
    let code = format!("if=pflash,format=raw,readonly=on,file={OVMF_CODE}");
    let vars = format!("if=pflash,format=raw,file={}", vars.display());
    strings(&["-machine", "q35", "-drive", &code, "-drive", &vars])
}

/// The VM's NIC on its tap, at boot position `index` (after a disk unless
/// network-first). UEFI VMs get no option ROM, so OVMF's own PXE stack runs.
fn nic_args(vm: &LabVm, tap: &str, index: u8) -> Vec<String> {
    let netdev = format!("tap,id=n0,ifname={tap},script=no,downscript=no");
    let mut nic = format!("virtio-net-pci,netdev=n0,mac={},bootindex={index}", vm.mac);
    if vm.firmware == Firmware::Uefi {
        nic.push_str(",romfile=");
    }
    strings(&["-netdev", &netdev, "-device", &nic])
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

/// Resolves `Auto` to what works here, checking an explicit `Kvm` too.
pub(crate) fn resolve_accel(choice: Accel) -> anyhow::Result<Accel> {
    match choice {
        Accel::Tcg => Ok(Accel::Tcg),
        Accel::Auto => Ok(if kvm_works() { Accel::Kvm } else { Accel::Tcg }),
        Accel::Kvm if kvm_works() => Ok(Accel::Kvm),
        Accel::Kvm => Err(crate::error::BadInput::new(
            "--accel kvm: a probe VM does not run under KVM here (use --accel tcg)",
        )),
    }
}

/// Boots SeaBIOS with nothing to boot under KVM: a working KVM reaches
/// "No bootable device" in well under a second; a broken one aborts or crawls.
pub(crate) fn kvm_works() -> bool {
    if !Path::new("/dev/kvm").exists() {
        return false;
    }
    let child = Command::new(QEMU)
        .args(["-accel", "kvm", "-cpu", "host", "-m", "64", "-nodefaults"])
        .args([
            "-nographic",
            "-no-reboot",
            "-serial",
            "stdio",
            "-net",
            "none",
            "-boot",
            "c",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return false };
    let stdout = child.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || prints(stdout, "No bootable device"));
    let deadline = Instant::now() + Duration::from_secs(5);
    while !reader.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    reader.join().unwrap_or(false)
}

/// Reads until `text` appears (true) or the stream ends (false).
fn prints(mut stream: impl Read, text: &str) -> bool {
    let mut seen = Vec::new();
    let mut buf = [0u8; 512];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            return false;
        }
        seen.extend_from_slice(&buf[..n]);
        if String::from_utf8_lossy(&seen).contains(text) {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::plan::DirectBoot;

    fn vm(firmware: Firmware, role: Role) -> LabVm {
        LabVm {
            name: "cp1".into(),
            mac: "52:54:00:20:00:11".into(),
            ip: None,
            firmware,
            disk_serial: Some("cp1-root".into()),
            role,
        }
    }

    fn spec(vm: &LabVm) -> VmSpec<'_> {
        VmSpec {
            vm,
            accel: Accel::Tcg,
            memory_mib: 768,
            tap: "tap0".into(),
            vars: None,
            disk: None,
            network_first: false,
            cut: None,
        }
    }

    #[test]
    fn bios_vm_uses_tcg_and_the_ipxe_rom() {
        let vm = vm(Firmware::Bios, Role::Node);
        let line = args(&spec(&vm)).join(" ");
        assert!(
            line.starts_with("-accel tcg -m 768 -smp 1 -nographic"),
            "{line}"
        );
        assert!(line.contains("-no-reboot"));
        assert!(line.contains("-netdev tap,id=n0,ifname=tap0,script=no,downscript=no"));
        assert!(
            line.contains("virtio-net-pci,netdev=n0,mac=52:54:00:20:00:11,bootindex=2"),
            "{line}"
        );
        assert!(!line.contains("pflash") && !line.contains("romfile"));
    }

    #[test]
    fn uefi_vm_uses_ovmf_without_the_nic_rom() {
        let vm = vm(Firmware::Uefi, Role::Node);
        let mut s = spec(&vm);
        s.vars = Some("/s/cp1.vars.fd".into());
        let line = args(&s).join(" ");
        assert!(line.contains("-machine q35"));
        assert!(line.contains(&format!("file={OVMF_CODE}")));
        assert!(line.contains("if=pflash,format=raw,file=/s/cp1.vars.fd"));
        assert!(line.contains(",romfile="));
    }

    #[test]
    fn real_installs_get_a_disk_named_like_the_site_says() {
        let vm = vm(Firmware::Bios, Role::Node);
        let mut s = spec(&vm);
        s.disk = Some("/s/cp1.img".into());
        s.accel = Accel::Kvm;
        let line = args(&s).join(" ");
        assert!(line.starts_with("-accel kvm -cpu host"));
        assert!(!line.contains("-no-reboot"));
        assert!(
            line.contains("virtio-blk-pci,drive=d0,serial=cp1-root,bootindex=1"),
            "{line}"
        );
    }

    #[test]
    fn network_first_boots_the_nic_before_the_disk() {
        let vm = vm(Firmware::Bios, Role::Node);
        let mut s = spec(&vm);
        s.disk = Some("/s/cp1.img".into());
        s.network_first = true;
        let line = args(&s).join(" ");
        assert!(line.contains("mac=52:54:00:20:00:11,bootindex=1"), "{line}");
        assert!(line.contains("serial=cp1-root,bootindex=2"), "{line}");
    }

    #[test]
    fn intruder_boots_the_kernel_directly() {
        let boot = DirectBoot {
            kernel: "/k".into(),
            initrd: "/i".into(),
            append: "a=b c".into(),
        };
        let vm = vm(
            Firmware::Bios,
            Role::Intruder {
                target: "cp2".into(),
                boot,
            },
        );
        let a = args(&spec(&vm));
        let pos = a.iter().position(|x| x == "-append").unwrap();
        assert_eq!(a[pos + 1], "a=b c");
        assert!(a.windows(2).any(|w| w[0] == "-kernel" && w[1] == "/k"));
    }
}
