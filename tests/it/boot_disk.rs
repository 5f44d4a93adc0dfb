//! An installed BIOS machine kept network-first boots its disk with no
//! operator: the install script, finding its own installation, kexecs the
//! kernel GRUB would boot with the command line GRUB would give it. Run in the
//! sandbox with stub `lsblk`/`mount`/`kexec`/`cgpt` over a fake disk whose
//! ESP holds the kernels (tests/it/cluster_sandbox.rs has the stubs).
use std::process::Output;

use crate::cluster_sandbox::{out_text, run_install_with, Sandbox};

const USR_A_UUID: &str = "7130c94a-213a-4e5a-8e26-6cce9662f132";
const USR_B_UUID: &str = "e03dd35c-7c2d-4a47-b3fe-27f15780a57c";
/// GPT attributes as gptprio reads them: priority << 48, tries << 52,
/// successful << 56.
const fn attrs(prio: u64, tries: u64, ok: u64) -> u64 {
    (prio << 48) | (tries << 52) | (ok << 56)
}

/// The disk: USR-A/USR-B with `a`/`b` attributes, kernels on the ESP (vda2
/// in the stubs) carrying a verity hash at byte 64, `extra` files on the ESP
/// and an optional OEM grub.cfg.
struct Disk<'a> {
    a: u64,
    b: u64,
    esp_files: &'a [&'a str],
    oem_grub: Option<&'a str>,
    cgpt: bool,
    kexec: bool,
}

fn hash(slot: char) -> String {
    std::iter::repeat_n(slot, 64).collect()
}

fn boot(disk: &Disk) -> (Sandbox, Output) {
    let (sb, out) = run_install_with("worker1", false, |sb| {
        let lsblk = format!(
            r#"case "$*" in
  *PARTFLAGS*) printf '/dev/vda3 USR-A 0x{a:x} {USR_A_UUID}\n/dev/vda4 USR-B 0x{b:x} {USR_B_UUID}\n/dev/vda9 ROOT 0x0 1234\n' ;;
  *PTUUID*) echo 9f1e6f52-0000-4000-8000-00000000abcd ;;
  *PARTUUID*) echo 6c0ffee0-0000-4000-8000-000000000002 ;;
  *) [ -d "$STATE/parts" ] && printf '/dev/vda2 EFI-SYSTEM\n/dev/vda6 OEM\n' ;;
esac
exit 0"#,
            a = disk.a,
            b = disk.b
        );
        sb.stub("lsblk", &lsblk);
        if disk.kexec {
            sb.stub("kexec", "exit 0");
        }
        if disk.cgpt {
            sb.stub("cgpt", "exit 0");
        }
        let esp = sb.state.join("parts/vda2/flatcar");
        std::fs::create_dir_all(&esp).unwrap();
        for slot in ['a', 'b'] {
            let mut kernel = vec![0x4du8; 64];
            kernel.extend_from_slice(hash(slot).as_bytes());
            kernel.extend_from_slice(&[0u8; 256]);
            std::fs::write(esp.join(format!("vmlinuz-{slot}")), kernel).unwrap();
        }
        for f in disk.esp_files {
            let path = sb.state.join("parts/vda2").join(f);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, "").unwrap();
        }
        if let Some(cfg) = disk.oem_grub {
            std::fs::write(sb.state.join("parts/vda6/grub.cfg"), cfg).unwrap();
        }
    });
    assert!(out.status.success(), "{}", out_text(&out));
    (sb, out)
}

/// The command line handed to `kexec -l`, and the kernel's slot.
fn kexec_line(sb: &Sandbox) -> Option<(char, String)> {
    let calls = sb.calls();
    let line = calls.lines().find(|l| l.starts_with("kexec -l "))?;
    let slot = line.split("/flatcar/vmlinuz-").nth(1)?.chars().next()?;
    let cmdline = line.split("--command-line=").nth(1)?.to_string();
    Some((slot, cmdline))
}

const PLAIN: Disk = Disk {
    a: attrs(1, 0, 1),
    b: attrs(0, 0, 0),
    esp_files: &[],
    oem_grub: None,
    cgpt: true,
    kexec: true,
};

#[test]
fn boot_disk_bios_network_first_kexecs_the_installed_system() {
    let (sb, _) = boot(&PLAIN);
    let calls = sb.calls();
    assert!(!calls.contains("flatcar-install"), "{calls}");
    let (slot, cmdline) = kexec_line(&sb).expect("kexec -l");
    assert_eq!(slot, 'a');
    assert_eq!(
        cmdline,
        format!(
            "mount.usr=/dev/mapper/usr verity.usr=PARTUUID={USR_A_UUID} rootflags=rw \
             mount.usrflags=ro consoleblank=0 root=LABEL=ROOT console=ttyS0,115200n8 \
             console=tty0 verity.usrhash={}",
            hash('a')
        )
    );
    assert!(calls.contains("systemctl kexec"), "{calls}");
    assert!(calls.contains("/beacon/worker1/boot-disk-kexec"), "{calls}");
    assert!(!calls.contains("poweroff"), "{calls}");
    assert!(!calls.contains("boot-order-network-first"), "{calls}");
    assert!(
        !calls.contains("cgpt"),
        "a booted partition spends no try: {calls}"
    );
}

#[test]
fn boot_disk_kexec_follows_gptprio_and_spends_a_try_like_grub() {
    // An update staged on USR-B: higher priority, one try, not yet good.
    let updated = Disk {
        a: attrs(1, 0, 1),
        b: attrs(2, 1, 0),
        ..PLAIN
    };
    let (sb, _) = boot(&updated);
    let (slot, cmdline) = kexec_line(&sb).unwrap();
    assert_eq!(slot, 'b');
    assert!(cmdline.contains(&format!("verity.usr=PARTUUID={USR_B_UUID} ")));
    assert!(cmdline.ends_with(&format!("verity.usrhash={}", hash('b'))));
    assert!(sb.calls().contains("cgpt add -i 4 -T 0 "), "{}", sb.calls());
    // Tries used up: back to the partition that booted.
    let spent = Disk {
        b: attrs(2, 0, 0),
        ..updated
    };
    assert_eq!(kexec_line(&boot(&spent).0).unwrap().0, 'a');
    // No cgpt to count the try: never boot the untried one blindly.
    let no_cgpt = Disk {
        cgpt: false,
        ..updated
    };
    assert_eq!(kexec_line(&boot(&no_cgpt).0).unwrap().0, 'a');
}

#[test]
fn boot_disk_kexec_keeps_first_boot_and_the_oem_settings() {
    let disk = Disk {
        esp_files: &["flatcar/first_boot"],
        oem_grub: Some(
            "# OEM settings\nset oem_id=\"metal\"\nset linux_append=\"$linux_append flatcar.autologin\"\n",
        ),
        ..PLAIN
    };
    let (sb, _) = boot(&disk);
    let (_, cmdline) = kexec_line(&sb).unwrap();
    for want in [
        " flatcar.first_boot=detected",
        " flatcar.oem.id=metal",
        " flatcar.autologin",
    ] {
        assert!(cmdline.contains(want), "{want} in {cmdline}");
    }
    assert!(!cmdline.contains('$'), "{cmdline}");
}

#[test]
fn boot_disk_without_a_way_to_kexec_powers_off_and_says_why() {
    for disk in [
        Disk {
            kexec: false,
            ..PLAIN
        },
        // A boot chain the script does not know (signed load scripts).
        Disk {
            esp_files: &["flatcar/load-a"],
            ..PLAIN
        },
        // Nothing bootable.
        Disk {
            a: attrs(0, 0, 0),
            ..PLAIN
        },
    ] {
        let (sb, out) = boot(&disk);
        let calls = sb.calls();
        assert!(!calls.contains("kexec -l"), "{calls}");
        assert!(calls.contains("systemctl poweroff"), "{calls}");
        assert!(
            calls.contains("/beacon/worker1/boot-order-network-first"),
            "{calls}"
        );
        assert!(String::from_utf8_lossy(&out.stderr).contains("Set the boot order to disk first"));
    }
}
