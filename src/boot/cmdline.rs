//! The kernel command line a rendered syslinux config makes, checked
//! against what Linux accepts.
//!
//! syslinux joins `KERNEL`, `APPEND` and the `IPAPPEND` strings into one
//! line, refuses it at 2048 bytes (`cmdline too long`, and the machine does
//! not boot), then hands the kernel `BOOT_IMAGE=<kernel> <the rest>` cut to
//! the 2047 bytes the x86 boot protocol allows: a node whose line is longer
//! would lose its last arguments (the consoles, or its Ignition URL) without
//! a word. The build refuses such a config instead.
use anyhow::Result;

use crate::error::BadInput;

/// The longest command line Linux takes on x86 (`cmdline_size` of its setup
/// header; `COMMAND_LINE_SIZE` less the terminating NUL).
pub const MAX: usize = 2047;

/// `IPAPPEND 2`'s `BOOTIF=01-aa-bb-cc-dd-ee-ff`.
const BOOTIF: usize = "BOOTIF=01-".len() + 17;
/// `IPAPPEND 1`'s `ip=<client>:<server>:<gateway>:<netmask>`, at its longest.
const IP: usize = "ip=".len() + 4 * 15 + 3;

/// The length of the command line each entry of a syslinux config gives
/// the kernel, in the order of the entries.
pub fn lengths(config: &str) -> Vec<usize> {
    let mut entries = Vec::new();
    let mut current: Option<Entry> = None;
    for line in config.lines().map(str::trim) {
        let (word, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let rest = rest.trim();
        match word.to_ascii_uppercase().as_str() {
            "LABEL" => entries.extend(current.replace(Entry::default())),
            "KERNEL" | "LINUX" => current.get_or_insert_with(Entry::default).kernel = rest.len(),
            "APPEND" => current.get_or_insert_with(Entry::default).append = rest.len(),
            "IPAPPEND" | "SYSAPPEND" => {
                current.get_or_insert_with(Entry::default).ipappend = rest.parse().unwrap_or(0)
            }
            _ => {}
        }
    }
    entries.extend(current);
    entries
        .into_iter()
        .filter(|e| e.kernel > 0)
        .map(|e| e.len())
        .collect()
}

/// One `LABEL` of a config: the lengths of its parts.
#[derive(Default)]
struct Entry {
    kernel: usize,
    append: usize,
    ipappend: u32,
}

impl Entry {
    fn len(&self) -> usize {
        let mut len = "BOOT_IMAGE=".len() + self.kernel + 1 + self.append;
        if self.ipappend & 1 != 0 {
            len += 1 + IP;
        }
        if self.ipappend & 2 != 0 {
            len += 1 + BOOTIF;
        }
        len
    }
}

/// Refuses a config (dist path `path`, node `node`) one of whose entries
/// gives the kernel a longer command line than Linux accepts.
pub fn check(path: &str, node: &str, config: &str) -> Result<()> {
    match lengths(config).into_iter().find(|&len| len > MAX) {
        None => Ok(()),
        Some(len) => Err(BadInput::new(format!(
            "{path} (node {node}): the kernel command line syslinux builds from it is \
             {len} bytes, over the {MAX} Linux accepts; syslinux would refuse it or cut \
             off its last arguments (the consoles, the Ignition URL). Shorten what goes \
             into it: boot_server.address as an IP address rather than a long name, \
             fewer boot_server.consoles, or a shorter APPEND in templates/boot/pxelinux.cfg.hbs"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_length_counts_boot_image_kernel_append_and_bootif() {
        let cfg =
            "DEFAULT f\nLABEL f\n  KERNEL http://s/k\n  APPEND initrd=a,b x=1\n  IPAPPEND 2\n";
        let want = "BOOT_IMAGE=http://s/k initrd=a,b x=1 BOOTIF=01-52-54-00-20-00-12".len();
        assert_eq!(lengths(cfg), [want]);
        let ip = cfg.replace("IPAPPEND 2", "IPAPPEND 3");
        assert_eq!(lengths(&ip), [want + 1 + IP]);
    }

    #[test]
    fn every_label_is_measured_and_a_local_boot_has_no_line() {
        let cfg = "LABEL a\n KERNEL k\n APPEND x\nLABEL local\n LOCALBOOT 0\nLABEL b\n LINUX kk\n";
        assert_eq!(
            lengths(cfg),
            ["BOOT_IMAGE=k x".len(), "BOOT_IMAGE=kk ".len()]
        );
    }

    #[test]
    fn a_line_over_the_limit_is_refused_naming_the_file_and_node() {
        let fits = format!("LABEL f\n KERNEL k\n APPEND {}\n", "a".repeat(MAX - 13));
        assert_eq!(lengths(&fits), [MAX]);
        check("tftp/x", "cp1", &fits).unwrap();
        let over = fits.replace("APPEND ", "APPEND b");
        let err = check("tftp/x", "cp1", &over).unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
        let msg = err.to_string();
        assert!(
            msg.contains("tftp/x (node cp1)") && msg.contains("2048 bytes"),
            "{msg}"
        );
    }
}
