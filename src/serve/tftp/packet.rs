//! The TFTP wire format (RFC 1350, OACK from RFC 2347): a pure codec from bytes
//! to [`Packet`] and back. No I/O lives here, so every rule is unit-tested on byte
//! literals and the parser is the fuzz target (`fuzz/fuzz_targets/tftp_packet.rs`).
use std::fmt;

pub const OP_RRQ: u16 = 1;
pub const OP_WRQ: u16 = 2;
pub(crate) const OP_DATA: u16 = 3;
pub(crate) const OP_ACK: u16 = 4;
pub(crate) const OP_ERROR: u16 = 5;
pub(crate) const OP_OACK: u16 = 6;

/// Error codes of RFC 1350 and RFC 2347 (8: option negotiation refused/aborted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
// The whole table of RFC 1350 and RFC 2347, though the server sends only some.
#[allow(dead_code)]
pub(crate) enum ErrorCode {
    NotDefined = 0,
    FileNotFound = 1,
    AccessViolation = 2,
    DiskFull = 3,
    IllegalOperation = 4,
    UnknownTid = 5,
    FileExists = 6,
    NoSuchUser = 7,
    OptionsRefused = 8,
}

/// Transfer mode of a request. `mail` is obsolete and refused by the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Octet,
    Netascii,
    Mail,
}

/// A read or write request: file name, mode and the options in the order sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub filename: String,
    pub mode: Mode,
    /// Option names lower-cased (RFC 2347: case-insensitive), values as sent.
    pub options: Vec<(String, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet<'a> {
    Rrq(Request),
    Wrq(Request),
    Data { block: u16, data: &'a [u8] },
    Ack(u16),
    Error { code: u16, message: String },
    Oack(Vec<(String, String)>),
}

/// Why a datagram is not a valid TFTP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParseError {
    TooShort,
    UnknownOpcode(u16),
    MissingNul,
    NotUtf8,
    BadMode,
    EmptyFilename,
    OptionWithoutValue,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParseError::TooShort => f.write_str("packet too short"),
            ParseError::UnknownOpcode(op) => write!(f, "unknown opcode {op}"),
            ParseError::MissingNul => f.write_str("string not NUL-terminated"),
            ParseError::NotUtf8 => f.write_str("string is not UTF-8"),
            ParseError::BadMode => f.write_str("unknown transfer mode"),
            ParseError::EmptyFilename => f.write_str("empty file name"),
            ParseError::OptionWithoutValue => f.write_str("option without a value"),
        }
    }
}

impl std::error::Error for ParseError {}

/// Parses one datagram.
pub fn parse(buf: &[u8]) -> Result<Packet<'_>, ParseError> {
    if buf.len() < 2 {
        return Err(ParseError::TooShort);
    }
    let opcode = u16::from_be_bytes([buf[0], buf[1]]);
    let body = &buf[2..];
    match opcode {
        OP_RRQ => parse_request(body).map(Packet::Rrq),
        OP_WRQ => parse_request(body).map(Packet::Wrq),
        OP_DATA => {
            let block = read_u16(body)?;
            Ok(Packet::Data {
                block,
                data: &body[2..],
            })
        }
        OP_ACK => {
            let block = read_u16(body)?;
            // Some clients pad ACKs; RFC 1350 says nothing of padding, so accept it.
            Ok(Packet::Ack(block))
        }
        OP_ERROR => {
            let code = read_u16(body)?;
            // Tolerate a missing NUL: the message is informational only.
            let text = &body[2..];
            let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
            let message = String::from_utf8_lossy(&text[..end]).into_owned();
            Ok(Packet::Error { code, message })
        }
        OP_OACK => parse_pairs(body).map(Packet::Oack),
        other => Err(ParseError::UnknownOpcode(other)),
    }
}

fn read_u16(body: &[u8]) -> Result<u16, ParseError> {
    match body {
        [a, b, ..] => Ok(u16::from_be_bytes([*a, *b])),
        _ => Err(ParseError::TooShort),
    }
}

fn parse_request(body: &[u8]) -> Result<Request, ParseError> {
    let (filename, rest) = take_str(body)?;
    if filename.is_empty() {
        return Err(ParseError::EmptyFilename);
    }
    let (mode, rest) = take_str(rest)?;
    let mode = match mode.to_ascii_lowercase().as_str() {
        "octet" => Mode::Octet,
        "netascii" => Mode::Netascii,
        "mail" => Mode::Mail,
        _ => return Err(ParseError::BadMode),
    };
    let options = request_options(rest);
    Ok(Request {
        filename: filename.to_string(),
        mode,
        options,
    })
}

/// A request's options, read leniently: RFC 2347 lets a server ignore options it
/// cannot use, and firmware pads requests (trailing NULs) or cuts the last pair
/// short. So empty names are padding, and a pair that is not UTF-8, has an empty
/// or no value, or no final NUL is dropped; the file name and mode still decide
/// the request.
fn request_options(rest: &[u8]) -> Vec<(String, String)> {
    let mut fields: Vec<&[u8]> = rest.split(|&b| b == 0).collect();
    fields.pop(); // after the last NUL: empty, or a string the packet cut short
    let mut fields = fields.into_iter();
    let mut pairs = Vec::new();
    while let Some(name) = fields.next() {
        if name.is_empty() {
            continue; // padding
        }
        let Some(value) = fields.next() else { break };
        if let (Ok(name), Ok(value)) = (std::str::from_utf8(name), std::str::from_utf8(value)) {
            if !value.is_empty() {
                pairs.push((name.to_ascii_lowercase(), value.to_string()));
            }
        }
    }
    pairs
}

/// `name NUL value NUL` pairs up to the end of the packet; names lower-cased.
fn parse_pairs(mut rest: &[u8]) -> Result<Vec<(String, String)>, ParseError> {
    let mut pairs = Vec::new();
    while !rest.is_empty() {
        let (name, after) = take_str(rest)?;
        if after.is_empty() {
            return Err(ParseError::OptionWithoutValue);
        }
        let (value, after) = take_str(after)?;
        pairs.push((name.to_ascii_lowercase(), value.to_string()));
        rest = after;
    }
    Ok(pairs)
}

fn take_str(buf: &[u8]) -> Result<(&str, &[u8]), ParseError> {
    let end = buf
        .iter()
        .position(|&b| b == 0)
        .ok_or(ParseError::MissingNul)?;
    let text = std::str::from_utf8(&buf[..end]).map_err(|_| ParseError::NotUtf8)?;
    Ok((text, &buf[end + 1..]))
}

/// The 4-byte DATA header; the payload follows it.
pub(crate) fn data_header(block: u16) -> [u8; 4] {
    let [a, b] = OP_DATA.to_be_bytes();
    let [c, d] = block.to_be_bytes();
    [a, b, c, d]
}

#[cfg(test)]
pub(crate) fn encode_ack(block: u16) -> [u8; 4] {
    let [a, b] = OP_ACK.to_be_bytes();
    let [c, d] = block.to_be_bytes();
    [a, b, c, d]
}

pub(crate) fn encode_error(code: ErrorCode, message: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + message.len());
    out.extend_from_slice(&OP_ERROR.to_be_bytes());
    out.extend_from_slice(&(code as u16).to_be_bytes());
    // A NUL inside the message would end it early on the client; drop such bytes.
    out.extend(message.bytes().filter(|&b| b != 0));
    out.push(0);
    out
}

pub(crate) fn encode_oack(options: &[(String, String)]) -> Vec<u8> {
    let mut out = OP_OACK.to_be_bytes().to_vec();
    for (name, value) in options {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    out
}

/// Encodes a request (used by tests and the bench client, and for round trips).
pub fn encode_request(opcode: u16, req: &Request) -> Vec<u8> {
    let mut out = opcode.to_be_bytes().to_vec();
    out.extend_from_slice(req.filename.as_bytes());
    out.push(0);
    let mode = match req.mode {
        Mode::Octet => "octet",
        Mode::Netascii => "netascii",
        Mode::Mail => "mail",
    };
    out.extend_from_slice(mode.as_bytes());
    out.push(0);
    for (name, value) in &req.options {
        out.extend_from_slice(name.as_bytes());
        out.push(0);
        out.extend_from_slice(value.as_bytes());
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrq_with_options_as_ovmf_sends_it() {
        let pkt = b"\x00\x01efi64/syslinux.efi\x00octet\x00blksize\x001468\x00WindowSize\x004\x00tsize\x000\x00";
        let Packet::Rrq(req) = parse(pkt).unwrap() else {
            panic!("not an RRQ")
        };
        assert_eq!(req.filename, "efi64/syslinux.efi");
        assert_eq!(req.mode, Mode::Octet);
        assert_eq!(
            req.options,
            vec![
                ("blksize".to_string(), "1468".to_string()),
                ("windowsize".to_string(), "4".to_string()),
                ("tsize".to_string(), "0".to_string()),
            ]
        );
    }

    #[test]
    fn mode_is_case_insensitive_and_checked() {
        let Packet::Wrq(req) = parse(b"\x00\x02f\x00NetASCII\x00").unwrap() else {
            panic!("not a WRQ")
        };
        assert_eq!(req.mode, Mode::Netascii);
        assert_eq!(parse(b"\x00\x01f\x00binary\x00"), Err(ParseError::BadMode));
    }

    #[test]
    fn malformed_requests_are_errors() {
        assert_eq!(parse(b""), Err(ParseError::TooShort));
        assert_eq!(parse(b"\x00"), Err(ParseError::TooShort));
        assert_eq!(parse(b"\x00\x01file"), Err(ParseError::MissingNul));
        assert_eq!(parse(b"\x00\x01file\x00octet"), Err(ParseError::MissingNul));
        assert_eq!(
            parse(b"\x00\x01\x00octet\x00"),
            Err(ParseError::EmptyFilename)
        );
        assert_eq!(
            parse(b"\x00\x01\xff\xfe\x00octet\x00"),
            Err(ParseError::NotUtf8)
        );
        assert_eq!(parse(b"\x00\x09"), Err(ParseError::UnknownOpcode(9)));
        assert_eq!(parse(b"\x00\x04\x01"), Err(ParseError::TooShort));
    }

    #[test]
    fn request_options_tolerate_padding_and_broken_pairs() {
        let options = |pkt: &[u8]| match parse(pkt) {
            Ok(Packet::Rrq(req)) => req.options,
            other => panic!("not an RRQ: {other:?}"),
        };
        let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
        // NUL padding after the mode and between options.
        assert!(options(b"\x00\x01f\x00octet\x00\x00\x00").is_empty());
        assert_eq!(
            options(b"\x00\x01f\x00octet\x00\x00tsize\x000\x00\x00"),
            vec![pair("tsize", "0")]
        );
        // A last option without a value, or without its final NUL, is dropped.
        assert_eq!(
            options(b"\x00\x01f\x00octet\x00tsize\x000\x00blksize\x00"),
            vec![pair("tsize", "0")]
        );
        assert_eq!(
            options(b"\x00\x01f\x00octet\x00tsize\x000\x00blksize\x001468"),
            vec![pair("tsize", "0")]
        );
        // A value that is not UTF-8 or empty drops its pair only.
        assert_eq!(
            options(b"\x00\x01f\x00octet\x00tsize\x00\x00blksize\x001468\x00"),
            vec![pair("blksize", "1468")]
        );
        assert_eq!(
            options(b"\x00\x01f\x00octet\x00x-vendor\x00\xff\x00tsize\x000\x00"),
            vec![pair("tsize", "0")]
        );
        // OACKs (which only clients read) stay strict.
        assert_eq!(
            parse(b"\x00\x06blksize\x00"),
            Err(ParseError::OptionWithoutValue)
        );
    }

    #[test]
    fn data_ack_error_oack() {
        assert_eq!(
            parse(b"\x00\x03\xff\xffabc").unwrap(),
            Packet::Data {
                block: 65535,
                data: b"abc"
            }
        );
        assert_eq!(parse(b"\x00\x04\x01\x02").unwrap(), Packet::Ack(0x0102));
        assert_eq!(
            parse(b"\x00\x05\x00\x08User aborted the transfer\x00").unwrap(),
            Packet::Error {
                code: 8,
                message: "User aborted the transfer".into()
            }
        );
        assert_eq!(
            parse(b"\x00\x06tsize\x00123\x00").unwrap(),
            Packet::Oack(vec![("tsize".into(), "123".into())])
        );
    }

    #[test]
    fn encoders_produce_rfc_bytes() {
        assert_eq!(encode_ack(0x0102), *b"\x00\x04\x01\x02");
        assert_eq!(
            encode_error(ErrorCode::AccessViolation, "read-only\0server"),
            b"\x00\x05\x00\x02read-onlyserver\x00".to_vec()
        );
        assert_eq!(
            encode_oack(&[
                ("blksize".into(), "1468".into()),
                ("tsize".into(), "9".into())
            ]),
            b"\x00\x06blksize\x001468\x00tsize\x009\x00".to_vec()
        );
        assert_eq!(&data_header(0xabcd), b"\x00\x03\xab\xcd");
    }

    #[test]
    fn request_round_trips() {
        let req = Request {
            filename: "pxelinux.cfg/01-52-54-00-77-00-01".into(),
            mode: Mode::Octet,
            options: vec![
                ("blksize".into(), "1432".into()),
                ("tsize".into(), "0".into()),
            ],
        };
        let bytes = encode_request(OP_RRQ, &req);
        assert_eq!(parse(&bytes).unwrap(), Packet::Rrq(req));
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..600)) {
            let _ = parse(&bytes);
        }

        #[test]
        fn any_request_round_trips(
            name in "[a-zA-Z0-9._/-]{1,40}",
            opts in proptest::collection::vec(("[a-z]{1,10}", "[0-9a-z]{1,8}"), 0..5),
        ) {
            let req = Request { filename: name, mode: Mode::Octet, options: opts };
            let bytes = encode_request(OP_RRQ, &req);
            proptest::prop_assert_eq!(parse(&bytes).unwrap(), Packet::Rrq(req));
        }
    }
}
