//! Newtypes for the site's domain scalars: MAC address, IPv4 CIDR, node name,
//! role, endpoint and its mode, and duration. Each has one parser (`FromStr`)
//! and one spelling (`Display`), so site.toml, the CLI, the manifest and the
//! logs agree. Parse errors are short phrases that validation puts after the
//! offending value. A value whose site.toml spelling must survive as written
//! (a duration, an endpoint, a CIDR: templates and the kubeconfig show them)
//! travels as [`Spelled`]. All of them serialise as the strings they came
//! from, so the validated site serialises exactly as the text schema does.
use std::fmt;
use std::net::Ipv4Addr;
use std::ops::Deref;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// A MAC address, always spelled lower-case with colons ("52:54:00:aa:bb:cc").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// True for group (multicast/broadcast) addresses, which no NIC boots with.
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }

    /// True for 00:00:00:00:00:00, which no NIC carries: it is what an unset
    /// field or a blanked BMC page shows.
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 6]
    }

    /// True for ff:ff:ff:ff:ff:ff, the Ethernet broadcast address.
    pub fn is_broadcast(&self) -> bool {
        self.0 == [0xff; 6]
    }
}

impl FromStr for MacAddr {
    type Err = String;

    /// Accepts six two-digit hex groups separated by ':' or by '-', or twelve
    /// hex digits without separators; any case. One separator per address:
    /// a mix is more likely a typo than a spelling.
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || "is not a MAC address (want aa:bb:cc:dd:ee:ff)".to_string();
        let groups = mac_groups(s);
        if groups.len() != 6 {
            return Err(bad());
        }
        let mut out = [0u8; 6];
        for (byte, group) in out.iter_mut().zip(groups) {
            if group.len() != 2 || !group.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            *byte = u8::from_str_radix(group, 16).map_err(|_| bad())?;
        }
        Ok(MacAddr(out))
    }
}

/// The byte groups of a MAC as written: split at its separator, or in pairs
/// of digits when it has none (switches and some BMCs print "525400ab0012").
fn mac_groups(s: &str) -> Vec<&str> {
    match [':', '-'].into_iter().find(|&sep| s.contains(sep)) {
        Some(sep) => s.split(sep).collect(),
        // `get` is `None` off a character boundary; "" then fails the caller's check.
        None => (0..s.len())
            .step_by(2)
            .map(|i| s.get(i..i + 2).unwrap_or(""))
            .collect(),
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

/// An IPv4 network in CIDR form ("10.20.0.0/24"); host bits must be zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    addr: Ipv4Addr,
    prefix: u8,
}

impl Ipv4Cidr {
    pub fn network(&self) -> Ipv4Addr {
        self.addr
    }
    pub fn prefix(&self) -> u8 {
        self.prefix
    }
    fn mask(&self) -> u32 {
        mask(self.prefix)
    }
    /// The all-ones host address of the network.
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.addr) | !self.mask())
    }
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.addr)
    }
    /// True when the two networks share at least one address.
    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        self.contains(other.addr) || other.contains(self.addr)
    }
}

fn mask(prefix: u8) -> u32 {
    match prefix {
        0 => 0,
        p => u32::MAX << (32 - u32::from(p)),
    }
}

impl FromStr for Ipv4Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || "is not an IPv4 CIDR (want a.b.c.d/len)".to_string();
        let (addr, prefix) = s.split_once('/').ok_or_else(bad)?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| bad())?;
        let prefix: u8 = match prefix.parse() {
            Ok(p) if p <= 32 && !prefix.starts_with('+') => p,
            _ => return Err(bad()),
        };
        let network = Ipv4Addr::from(u32::from(addr) & mask(prefix));
        if network != addr {
            return Err(format!(
                "has host bits set (did you mean {network}/{prefix}?)"
            ));
        }
        Ok(Ipv4Cidr { addr, prefix })
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A node name: an RFC 1123 label (lower-case letters, digits and '-', 1 to 63
/// characters, starting and ending with a letter or digit). It is also the
/// hostname and the Kubernetes node name, which both demand this form.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct NodeName(String);

#[cfg(test)]
impl NodeName {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// Checks the DNS-1123 label rules; shared by node and cluster names.
pub(crate) fn check_dns_label(s: &str) -> Result<(), String> {
    let ok_char = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if s.is_empty() || s.len() > 63 {
        return Err("is not a DNS-1123 label (1 to 63 characters)".into());
    }
    if !s.chars().all(ok_char) || s.starts_with('-') || s.ends_with('-') {
        return Err(
            "is not a DNS-1123 label (lower-case letters, digits and '-', \
             starting and ending with a letter or digit)"
                .into(),
        );
    }
    Ok(())
}

impl FromStr for NodeName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        check_dns_label(s).map(|()| NodeName(s.to_string()))
    }
}

impl fmt::Display for NodeName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a node does in the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    ControlPlane,
    Worker,
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "control-plane" => Ok(Role::ControlPlane),
            "worker" => Ok(Role::Worker),
            _ => Err("is not a role (want \"control-plane\" or \"worker\")".into()),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::ControlPlane => "control-plane",
            Role::Worker => "worker",
        })
    }
}

/// A duration in the kubeadm/Go spelling limited to whole hours, minutes and
/// seconds: "24h", "90m", "1h30m", "45s". "0" alone means zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Duration(u64);

impl Duration {
    pub fn from_secs(secs: u64) -> Duration {
        Duration(secs)
    }
    pub fn as_secs(&self) -> u64 {
        self.0
    }
    pub fn as_std(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.0)
    }
}

impl FromStr for Duration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || "is not a duration (want e.g. \"24h\", \"90m\", \"1h30m\")".to_string();
        if s == "0" {
            return Ok(Duration(0));
        }
        let (mut total, mut digits, mut last_unit) = (0u64, String::new(), u64::MAX);
        for c in s.chars() {
            if c.is_ascii_digit() {
                digits.push(c);
                continue;
            }
            let unit = match c {
                'h' => 3600,
                'm' => 60,
                's' => 1,
                _ => return Err(bad()),
            };
            // Units must come once each, largest first, each after a number.
            if digits.is_empty() || unit >= last_unit {
                return Err(bad());
            }
            let n: u64 = digits.parse().map_err(|_| bad())?;
            total = n
                .checked_mul(unit)
                .and_then(|v| total.checked_add(v))
                .ok_or_else(bad)?;
            digits.clear();
            last_unit = unit;
        }
        if !digits.is_empty() || last_unit == u64::MAX {
            return Err(bad());
        }
        Ok(Duration(total))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (h, m, s) = (self.0 / 3600, self.0 / 60 % 60, self.0 % 60);
        if self.0 == 0 {
            return f.write_str("0s");
        }
        if h > 0 {
            write!(f, "{h}h")?;
        }
        if m > 0 {
            write!(f, "{m}m")?;
        }
        if s > 0 {
            write!(f, "{s}s")?;
        }
        Ok(())
    }
}

/// The control-plane endpoint: an IPv4 address and a port (default 6443).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Endpoint {
    pub ip: Ipv4Addr,
    pub port: u16,
}

/// The API server's port when the endpoint names none.
pub(crate) const DEFAULT_API_PORT: u16 = 6443;

impl FromStr for Endpoint {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad =
            || "is not an IPv4 address with an optional port (want a.b.c.d[:port])".to_string();
        let (ip, port) = match s.split_once(':') {
            Some((ip, port)) => match port.parse::<u16>() {
                Ok(p) if p > 0 && !port.starts_with('+') => (ip, p),
                _ => return Err(bad()),
            },
            None => (s, DEFAULT_API_PORT),
        };
        let ip = ip.parse().map_err(|_| bad())?;
        Ok(Endpoint { ip, port })
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.ip, self.port)
    }
}

/// How the control-plane endpoint is provided (`cluster.endpoint_mode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EndpointMode {
    /// A VIP announced by a kube-vip static pod on the control planes.
    KubeVip,
    /// A load balancer outside the cluster.
    External,
}

impl EndpointMode {
    /// Every mode, as site.toml spells it.
    pub const NAMES: [&'static str; 2] = ["kube-vip", "external"];
}

impl FromStr for EndpointMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "kube-vip" => Ok(EndpointMode::KubeVip),
            "external" => Ok(EndpointMode::External),
            _ => Err("is not an endpoint mode (want \"kube-vip\" or \"external\")".into()),
        }
    }
}

impl fmt::Display for EndpointMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            EndpointMode::KubeVip => "kube-vip",
            EndpointMode::External => "external",
        })
    }
}

/// A parsed value together with its text as site.toml wrote it: `get` is the
/// meaning, and the value derefs to (and serialises as) the text, so what
/// reaches a template or a kubeconfig is byte for byte what the operator
/// wrote ("10.20.0.10" stays without the port its `Endpoint` adds, "90m"
/// stays "90m"), while code reads the type.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Spelled<T> {
    text: String,
    value: T,
}

impl<T: FromStr> FromStr for Spelled<T> {
    type Err = T::Err;
    fn from_str(s: &str) -> Result<Self, T::Err> {
        let value = s.parse()?;
        Ok(Spelled {
            text: s.to_string(),
            value,
        })
    }
}

impl<T> Spelled<T> {
    /// The parsed value.
    pub fn get(&self) -> &T {
        &self.value
    }
    /// The text as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl<T> Deref for Spelled<T> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl<T> fmt::Display for Spelled<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl<T> Serialize for Spelled<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// Serialises the types whose `Display` is their one spelling as that text.
macro_rules! serialize_as_text {
    ($($t:ty),*) => {$(
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
    )*};
}
serialize_as_text!(MacAddr, Role, EndpointMode);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_normalises_case_and_separator() {
        let mac: MacAddr = "52-54-00-AB-cd-0F".parse().unwrap();
        assert_eq!(mac.to_string(), "52:54:00:ab:cd:0f");
        assert_eq!(
            crate::layout::pxelinux_mac_name(mac),
            "01-52-54-00-ab-cd-0f"
        );
        assert!(!mac.is_multicast());
        assert!("01:00:5e:00:00:01"
            .parse::<MacAddr>()
            .unwrap()
            .is_multicast());
    }

    #[test]
    fn mac_every_accepted_spelling_has_one_display() {
        for spelling in [
            "52:54:00:ab:00:12",
            "52:54:00:AB:00:12",
            "52-54-00-ab-00-12",
            "52-54-00-AB-00-12",
            "525400ab0012",
            "525400AB0012",
        ] {
            let mac: MacAddr = spelling.parse().unwrap();
            assert_eq!(mac.to_string(), "52:54:00:ab:00:12", "{spelling}");
        }
    }

    #[test]
    fn mac_knows_zero_and_broadcast() {
        let zero: MacAddr = "00:00:00:00:00:00".parse().unwrap();
        assert!(zero.is_zero() && !zero.is_broadcast() && !zero.is_multicast());
        let all: MacAddr = "FF-FF-FF-FF-FF-FF".parse().unwrap();
        assert!(all.is_broadcast() && all.is_multicast() && !all.is_zero());
        let nic: MacAddr = "52:54:00:20:00:11".parse().unwrap();
        assert!(!nic.is_zero() && !nic.is_broadcast());
    }

    #[test]
    fn mac_rejects_malformed() {
        for bad in [
            "",
            "52:54:00:zz:00:13",
            "52:54:00:00:13",
            "52:54:00:00:00:13:14",
            "5254.0000.0013",
            "52:54:00:0:00:13",
            "52:54-00:00:00:13",
            "52540000001",
            "5254000000131",
            "52540000001z",
            "+2540000001f",
            "525400000é",
            "52:54:00:00:00:+1",
            " 52:54:00:00:00:13",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }

    #[test]
    fn cidr_contains_and_overlaps() {
        let net: Ipv4Cidr = "10.20.0.0/24".parse().unwrap();
        assert!(net.contains("10.20.0.255".parse().unwrap()));
        assert!(!net.contains("10.20.1.0".parse().unwrap()));
        assert_eq!(net.broadcast().to_string(), "10.20.0.255");
        let big: Ipv4Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(big.overlaps(&net) && net.overlaps(&big));
        let other: Ipv4Cidr = "10.96.0.0/12".parse().unwrap();
        assert!(!other.overlaps(&net));
        let all: Ipv4Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("192.168.1.1".parse().unwrap()));
        assert_eq!(all.to_string(), "0.0.0.0/0");
    }

    #[test]
    fn cidr_rejects_malformed_and_host_bits() {
        for bad in [
            "10.20.0.0",
            "10.20.0.0/33",
            "10.20.0/24",
            "10.20.0.0/+8",
            "x/8",
        ] {
            assert!(bad.parse::<Ipv4Cidr>().is_err(), "{bad}");
        }
        assert_eq!(
            "10.20.0.5/24".parse::<Ipv4Cidr>().unwrap_err(),
            "has host bits set (did you mean 10.20.0.0/24?)"
        );
    }

    #[test]
    fn node_names_follow_dns_1123() {
        for good in ["cp1", "a", "worker-01", &"x".repeat(63)] {
            assert_eq!(good.parse::<NodeName>().unwrap().as_str(), good);
        }
        for bad in ["", "CP1", "-cp", "cp-", "cp_1", "cp.1", &"x".repeat(64)] {
            assert!(bad.parse::<NodeName>().is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_round_trip() {
        for role in [Role::ControlPlane, Role::Worker] {
            assert_eq!(role.to_string().parse::<Role>().unwrap(), role);
        }
        assert!("master".parse::<Role>().is_err());
    }

    #[test]
    fn durations_parse_and_print_canonically() {
        let cases = [
            ("24h", 86400, "24h"),
            ("90m", 5400, "1h30m"),
            ("1h30m", 5400, "1h30m"),
        ];
        for (text, secs, shown) in cases {
            let d: Duration = text.parse().unwrap();
            assert_eq!((d.as_secs(), d.to_string().as_str()), (secs, shown));
        }
        assert_eq!("0".parse::<Duration>().unwrap().as_secs(), 0);
        assert_eq!("1h0m5s".parse::<Duration>().unwrap().to_string(), "1h5s");
        for bad in ["", "h", "24", "30m1h", "1h1h", "1d", "1.5h", "-1h"] {
            assert!(bad.parse::<Duration>().is_err(), "{bad}");
        }
    }
    #[test]
    fn endpoints_default_the_api_port() {
        let e: Endpoint = "10.20.0.10".parse().unwrap();
        assert_eq!(e.to_string(), "10.20.0.10:6443");
        let e: Endpoint = "10.20.0.10:443".parse().unwrap();
        assert_eq!(e.port, 443);
        for bad in [
            "10.20.0.10:",
            "10.20.0.10:0",
            "10.20.0.10:70000",
            "lb.example.com:6443",
            "::1",
        ] {
            assert!(bad.parse::<Endpoint>().is_err(), "{bad}");
        }
    }

    #[test]
    fn spelled_values_keep_their_text_and_endpoint_modes_round_trip() {
        let e: Spelled<Endpoint> = "10.20.0.10".parse().unwrap();
        assert_eq!((&*e, e.get().port), ("10.20.0.10", DEFAULT_API_PORT));
        assert_eq!(serde_json::to_string(&e).unwrap(), "\"10.20.0.10\"");
        let d: Spelled<Duration> = "90m".parse().unwrap();
        assert_eq!(
            (d.to_string(), d.get().as_secs()),
            ("90m".to_string(), 5400)
        );
        assert!("1d".parse::<Spelled<Duration>>().is_err());
        for name in EndpointMode::NAMES {
            assert_eq!(name.parse::<EndpointMode>().unwrap().to_string(), name);
        }
        assert!("keepalived".parse::<EndpointMode>().is_err());
        let mac: MacAddr = "52-54-00-AB-00-12".parse().unwrap();
        assert_eq!(
            serde_json::to_string(&mac).unwrap(),
            "\"52:54:00:ab:00:12\""
        );
    }
}
