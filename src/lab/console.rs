//! Milestone detection from what a VM and the DHCP server print. Pure functions
//! over single lines, so every pattern is unit-tested with real output.
//!
//! Sources: the VM's serial console (firmware, loader, kernel, the stand-in OS's
//! `PXELAB-*` lines, or real Flatcar's systemd lines); DHCP leases are read
//! from the DHCP server's log (`dhcp::lease`).

/// The boot stages shown in the live table, in boot order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Milestone {
    Dhcp,
    Loader,
    Kernel,
    Ignition,
    Marker,
}

impl Milestone {
    pub const ALL: [Milestone; 5] = [
        Milestone::Dhcp,
        Milestone::Loader,
        Milestone::Kernel,
        Milestone::Ignition,
        Milestone::Marker,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Milestone::Dhcp => "dhcp",
            Milestone::Loader => "loader",
            Milestone::Kernel => "kernel",
            Milestone::Ignition => "ignition",
            Milestone::Marker => "marker",
        }
    }
}

/// What one console line means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    Reached(Milestone),
    /// The stand-in OS's success marker.
    MarkerOk(MarkerLine),
    /// The stand-in OS or Ignition gave up.
    Failed(String),
    /// The loader handed over to the local disk (what an unknown MAC gets).
    LocalBoot,
    /// syslinux could not load the kernel or initrd and waits for a key or
    /// its reset timer: a real machine would reboot and try again.
    LoaderGaveUp(String),
    /// A `PXELAB-LINE <path>: <text>` quote of a written file.
    Quote {
        path: String,
        text: String,
    },
}

/// The fields of `PXELAB-IGNITION-OK url=… sha512=… files=a,b`.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct MarkerLine {
    pub url: String,
    pub sha512: String,
    pub files: Vec<String>,
}

/// Removes terminal escapes and carriage returns that firmware prints.
pub(crate) fn clean(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\u{1b}' => {
                // CSI: ESC [ params final-byte; other escapes: ESC + one char.
                if chars.peek() == Some(&'[') {
                    chars.next();
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                } else {
                    chars.next();
                }
            }
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// Milestone patterns, in boot order.
const MILESTONES: &[(&str, Milestone)] = &[
    // Loaders: lpxelinux (BIOS) and syslinux.efi banners.
    ("PXELINUX 6.", Milestone::Loader),
    ("SYSLINUX 6.", Milestone::Loader),
    ("Syslinux 6.", Milestone::Loader),
    // OVMF's own PXE stack reports the NBP (syslinux.efi prints no banner).
    ("NBP file downloaded successfully", Milestone::Loader),
    // iPXE when it runs a script instead of a syslinux loader.
    ("boot.ipxe... ok", Milestone::Loader),
    // Kernel: its version banner, or the stand-in's /init when console= is not serial.
    ("Linux version ", Milestone::Kernel),
    ("PXELAB-INIT", Milestone::Kernel),
    // Ignition fetched: the stand-in's line, or real Flatcar's unit finishing.
    ("PXELAB-FETCHED", Milestone::Ignition),
    ("Finished Ignition (fetch)", Milestone::Ignition),
    ("Finished ignition-fetch.service", Milestone::Ignition),
];

/// Real Flatcar: systemd reports a failed Ignition unit, then the emergency
/// shell. (Ignition's own "Ignition failed" log lines are not final: the
/// stand-in quotes them just before its own failure line.)
/// The stand-in kubeadm's failed check (`kubeadm: error: <what was wrong>`,
/// which it writes to the kernel log, so it reaches the serial console) ends
/// the run too: retrying would fail the same way.
const FAILURES: &[&str] = &[
    "Failed to start Ignition",
    "Failed to start ignition-",
    "You are in emergency mode",
    "kubeadm: error: ",
];

/// The loader handed the machine back: lpxelinux's LOCALBOOT prints the first;
/// SeaBIOS prints the next two when nothing else boots; OVMF reports that the
/// PXE boot option returned (syslinux.efi's LOCALBOOT -1) and moves on.
const LOCAL_BOOT: &[&str] = &[
    "Booting from local disk",
    "No bootable device",
    "Boot failed: not a bootable disk",
    "BdsDxe: failed to start Boot",
];

/// syslinux's words when the boot entry could not be loaded: a download that
/// broke off, a file the server does not have (`Loading … failed: No such
/// file or directory`, then the `boot:` prompt), a kernel it cannot start.
/// (SeaBIOS's "Boot failed: could not read the boot disk" is not one.)
fn loader_gave_up(line: &str) -> bool {
    line.contains(RETRY_PROMPT)
        || interleaved_twice(RETRY_PROMPT, line)
        || line.contains("Booting kernel failed")
        || (line.contains("Loading ") && line.contains("failed:"))
}

/// lpxelinux's prompt after a boot entry failed to load.
const RETRY_PROMPT: &str = "Boot failed: press a key to retry";

/// Whether `line` holds `text` written twice at once, character by character
/// interleaved: lpxelinux writes to the serial port itself and through the
/// BIOS console, which SeaBIOS mirrors to the same port, so under load its
/// lines can arrive as `BoBooto tf afialielde:d ...` (seen in CI). Each
/// character of `text` must appear twice, in order; for a phrase of this
/// length that does not happen by chance.
fn interleaved_twice(text: &str, line: &str) -> bool {
    let mut first = text.chars().peekable();
    let mut second = text.chars().peekable();
    for c in line.chars() {
        // Greedy: the first copy takes a character when it can, else the second.
        if first.peek() == Some(&c) {
            first.next();
        } else if second.peek() == Some(&c) {
            second.next();
        }
        if first.peek().is_none() && second.peek().is_none() {
            return true;
        }
    }
    false
}

/// `line` written once, when it is two copies of one text: one after the
/// other, or interleaved (lpxelinux's two console paths, see
/// [`interleaved_twice`]), so a verdict quotes `Booting kernel failed:
/// Invalid argument`, not `Booting kernel failed:Booting kernel failed: …`.
/// Any other line is returned as is.
pub(crate) fn once(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let half = chars.len() / 2;
    if chars.len().is_multiple_of(2) && half > 0 && chars[..half] == chars[half..] {
        return chars[..half].iter().collect();
    }
    split_interleaved(&chars).unwrap_or_else(|| line.to_string())
}

/// Reads `chars` as a leading copy of a text and a second copy that follows
/// it, trying for each character the second copy first (when it is the next
/// one that copy needs), then the leading one, backtracking; the text when
/// both copies end equal. A budget bounds the search on odd lines.
fn split_interleaved(chars: &[char]) -> Option<String> {
    // Two copies of a few characters are as likely chance as a doubling.
    const SHORTEST: usize = 8;
    if chars.len() < 2 * SHORTEST || !chars.len().is_multiple_of(2) || chars.len() > 1024 {
        return None;
    }
    let mut lead: Vec<char> = Vec::with_capacity(chars.len() / 2);
    let mut budget = 100_000u32;
    search(chars, &mut lead, 0, &mut budget).then(|| lead.into_iter().collect())
}

/// One step of [`split_interleaved`]: `follow` characters of the second copy
/// are placed; `lead` holds the leading copy so far.
fn search(rest: &[char], lead: &mut Vec<char>, follow: usize, budget: &mut u32) -> bool {
    let Some((&c, tail)) = rest.split_first() else {
        return follow == lead.len();
    };
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    let half = (lead.len() + follow + rest.len()) / 2;
    if follow < lead.len() && lead[follow] == c && search(tail, lead, follow + 1, budget) {
        return true;
    }
    if lead.len() < half {
        lead.push(c);
        if search(tail, lead, follow, budget) {
            return true;
        }
        lead.pop();
    }
    false
}

/// Classifies one serial console line (already [`clean`]ed).
pub(crate) fn classify(line: &str) -> Option<Event> {
    if let Some(event) = standin_line(line) {
        return Some(event);
    }
    if loader_gave_up(line) {
        return Some(Event::LoaderGaveUp(once(line.trim())));
    }
    if let Some((_, m)) = MILESTONES.iter().find(|(p, _)| line.contains(p)) {
        return Some(Event::Reached(*m));
    }
    if FAILURES.iter().any(|p| line.contains(p)) {
        return Some(Event::Failed(once(line.trim())));
    }
    LOCAL_BOOT
        .iter()
        .any(|p| line.contains(p))
        .then_some(Event::LocalBoot)
}

/// The stand-in OS's own result lines.
fn standin_line(line: &str) -> Option<Event> {
    if let Some(pos) = line.find("PXELAB-IGNITION-OK ") {
        return Some(Event::MarkerOk(parse_marker(&line[pos + 19..])));
    }
    if let Some(pos) = line.find("PXELAB-IGNITION-FAIL") {
        return Some(Event::Failed(line[pos + 20..].trim().to_string()));
    }
    let pos = line.find("PXELAB-LINE ")?;
    let (path, text) = line[pos + 12..].split_once(": ")?;
    Some(Event::Quote {
        path: path.into(),
        text: text.into(),
    })
}

fn parse_marker(rest: &str) -> MarkerLine {
    let mut marker = MarkerLine::default();
    for field in rest.split_whitespace() {
        match field.split_once('=') {
            Some(("url", v)) => marker.url = v.into(),
            Some(("sha512", v)) => marker.sha512 = v.into(),
            Some(("files", v)) => {
                marker.files = v
                    .split(',')
                    .filter(|f| !f.is_empty())
                    .map(String::from)
                    .collect()
            }
            _ => {}
        }
    }
    marker
}

/// The node and milestone of a beacon in a server log line: `pxebuild serve`
/// logs `node=<name> milestone=<m>`; nginx logs the request `/beacon/<name>/<m>`.
pub(crate) fn beacon(line: &str) -> Option<(String, String)> {
    if let Some(pos) = line.find("/beacon/") {
        let rest = &line[pos + 8..];
        let end = rest.find([' ', '?', '"']).unwrap_or(rest.len());
        let (node, milestone) = rest[..end].split_once('/')?;
        return (!node.is_empty() && !milestone.is_empty())
            .then(|| (node.to_string(), milestone.to_string()));
    }
    let field = |key: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .map(str::to_string)
    };
    Some((field("node=")?, field("milestone=")?))
}

/// The detail a beacon line carries, if any: `pxebuild serve` logs it as
/// `detail=<text>`; nginx logs the request's query, `?detail=<text>`, which is
/// sanitised here as the server would.
pub(crate) fn beacon_detail(line: &str) -> Option<String> {
    if let Some(pos) = line.find("/beacon/") {
        let rest = &line[pos..];
        let end = rest.find([' ', '"']).unwrap_or(rest.len());
        return crate::serve::detail::from_target(&rest[..end]);
    }
    line.split_whitespace()
        .find_map(|w| w.strip_prefix("detail="))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_strips_escapes_and_carriage_returns() {
        let raw = "\u{1b}[0;1miPXE 1.0.0\u{1b}[0m -- Open\r";
        assert_eq!(clean(raw), "iPXE 1.0.0 -- Open");
        assert_eq!(clean("c\u{1b}[?7l\u{1b}[2JSeaBIOS"), "cSeaBIOS");
    }

    #[test]
    fn boot_stages_are_recognised() {
        let cases = [
            (
                "PXELINUX 6.04 lwIP 20200816 Copyright (C) 1994-2015 H. Peter Anvin et al",
                Milestone::Loader,
            ),
            (
                "[    0.000000] Linux version 6.1.0-56-amd64 (debian-kernel@lists.debian.org)",
                Milestone::Kernel,
            ),
            ("PXELAB-INIT stand-in OS started", Milestone::Kernel),
            ("  NBP file downloaded successfully.", Milestone::Loader),
            (
                "PXELAB-FETCHED url=http://10.77.0.1:8080/i.ign sha512=03b8",
                Milestone::Ignition,
            ),
            ("[  OK  ] Finished Ignition (fetch).", Milestone::Ignition),
        ];
        for (line, m) in cases {
            assert_eq!(classify(line), Some(Event::Reached(m)), "{line}");
        }
        assert_eq!(classify("udhcpc: started, v1.35.0"), None);
        // The NIC's iPXE ROM is firmware, not the loader.
        assert_eq!(classify("iPXE initialising devices...ok"), None);
    }

    #[test]
    fn marker_fields_are_parsed() {
        let line = "PXELAB-IGNITION-OK url=http://10.77.0.1:8080/ignition/n1-abc/install.ign sha512=03b826 files=/etc/hostname,/etc/systemd/system/install.service";
        let Some(Event::MarkerOk(m)) = classify(line) else {
            panic!("no marker")
        };
        assert_eq!(m.url, "http://10.77.0.1:8080/ignition/n1-abc/install.ign");
        assert_eq!(m.sha512, "03b826");
        assert_eq!(
            m.files,
            ["/etc/hostname", "/etc/systemd/system/install.service"]
        );
    }

    #[test]
    fn failures_quotes_and_local_boot_are_recognised() {
        assert_eq!(
            classify("PXELAB-IGNITION-FAIL fetch stage failed for http://x/i.ign"),
            Some(Event::Failed(
                "fetch stage failed for http://x/i.ign".into()
            ))
        );
        assert_eq!(
            classify("PXELAB-LINE /etc/systemd/system/install.service: ExecStart=/usr/bin/flatcar-install -d /dev/vda"),
            Some(Event::Quote {
                path: "/etc/systemd/system/install.service".into(),
                text: "ExecStart=/usr/bin/flatcar-install -d /dev/vda".into()
            })
        );
        assert_eq!(
            classify("Booting from local disk..."),
            Some(Event::LocalBoot)
        );
        assert_eq!(classify("No bootable device."), Some(Event::LocalBoot));
        let ovmf = "BdsDxe: failed to start Boot0001 \"UEFI PXEv4 (MAC:5A0000000E01)\" from PciRoot(0x0): Load Error";
        assert_eq!(classify(ovmf), Some(Event::LocalBoot));
        // lpxelinux after an initrd download broke off (seen in CI), and
        // SeaBIOS's unrelated disk message, which must not count as one.
        assert_eq!(
            classify("Boot failed: press a key to retry, or wait for reset..."),
            Some(Event::LoaderGaveUp(
                "Boot failed: press a key to retry, or wait for reset...".into()
            ))
        );
        assert_eq!(classify("Boot failed: could not read the boot disk"), None);
        // The same prompt as lpxelinux's two console paths interleave it (CI).
        let garbled = "BoBooto tf afialielde:d :p rpersess sa  ak ekye yt ot or ertertyr,y ,o ro rw awiati tf ofro rr erseeste.t....";
        // (One character of it was lost on the way: it stays as it came.)
        assert_eq!(classify(garbled), Some(Event::LoaderGaveUp(garbled.into())));
        assert_eq!(
            classify("Boot failed: could not read the boot disk; press F12"),
            None
        );
        let missing =
            "Loading http://10.20.0.2:8080/f/initrd.cpio.gz....failed: No such file or directory";
        assert_eq!(classify(missing), Some(Event::LoaderGaveUp(missing.into())));
        assert!(matches!(
            classify("Booting kernel failed: Invalid argument"),
            Some(Event::LoaderGaveUp(_))
        ));
        assert_eq!(
            classify("ignition[1]: CRITICAL : Ignition failed: resource not found"),
            None
        );
        assert!(matches!(
            classify("[FAILED] Failed to start Ignition (fetch)."),
            Some(Event::Failed(_))
        ));
        assert_eq!(
            classify("kubeadm: error: discovery.bootstrapToken.caCertHashes is empty"),
            Some(Event::Failed(
                "kubeadm: error: discovery.bootstrapToken.caCertHashes is empty".into()
            ))
        );
    }

    #[test]
    fn a_doubled_line_is_quoted_once() {
        let text = "Booting kernel failed: Invalid argument";
        // One copy after the other, and the two copies interleaved in runs.
        let after = format!("{text}{text}");
        let runs = "Booting kernel failed:Booting kernel failed: Invalid argumen Invalid argumentt";
        for line in [after.as_str(), runs] {
            assert_eq!(once(line), text, "{line}");
            assert_eq!(
                classify(line),
                Some(Event::LoaderGaveUp(text.into())),
                "{line}"
            );
        }
        // Character by character, as the two console paths write under load.
        let prompt = "Boot failed: press a key to retry";
        let zipped: String = prompt.chars().flat_map(|c| [c, c]).collect();
        assert_eq!(once(&zipped), prompt);
        // A line that only repeats a word is left alone.
        let plain = "Loading http://h/a.gz....failed: No such file or directory";
        assert_eq!(once(plain), plain);
        assert_eq!(once("abab"), "ab");
    }

    #[test]
    fn beacons_are_read_from_both_server_logs() {
        let serve = "2026-11-26T21:58:10.001Z http 10.0.0.11:40312 node=cp1 milestone=install-done result=ok";
        assert_eq!(beacon(serve), Some(("cp1".into(), "install-done".into())));
        let nginx = r#"10.0.0.11 - - [26/Nov/2026:21:52:06 +0000] "GET /beacon/cp1/first-boot HTTP/1.1" 204 0 "-" "curl/8""#;
        assert_eq!(beacon(nginx), Some(("cp1".into(), "first-boot".into())));
        let transfer = "2026-11-26T21:50:00.123Z tftp 10.0.0.11:49153 node=cp1 path=tftp/lpxelinux.0 result=ok";
        assert_eq!(beacon(transfer), None);
        assert_eq!(beacon_detail(serve), None);
        assert_eq!(beacon_detail(nginx), None);
        let serve = "2026-11-26T21:52:06.000Z http 10.0.0.11:40312 node=w1 \
                     milestone=install-disk-missing detail=vda=20G,QEMU_HARDDISK,virtio-w1 result=ok";
        assert_eq!(
            beacon_detail(serve).as_deref(),
            Some("vda=20G,QEMU_HARDDISK,virtio-w1")
        );
        let nginx = r#"10.0.0.11 - - [26/Nov/2026:21:52:06 +0000] "GET /beacon/w1/install-disk-missing?detail=vda=20G,QEMU%20HARDDISK HTTP/1.1" 204 0 "-" "curl/8""#;
        assert_eq!(
            beacon(nginx),
            Some(("w1".into(), "install-disk-missing".into()))
        );
        assert_eq!(
            beacon_detail(nginx).as_deref(),
            Some("vda=20G,QEMU_HARDDISK")
        );
    }
}
