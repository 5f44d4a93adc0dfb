//! Any datagram: the TFTP codec must not panic, a parsed request must survive a
//! round trip through the encoder, and option negotiation must stay in range.
#![no_main]

use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use pxebuild::serve::tftp::options::{self, Limits};
use pxebuild::serve::tftp::packet::{self, Packet};

fuzz_target!(|data: &[u8]| {
    let Ok(parsed) = packet::parse(data) else { return };
    let (opcode, req) = match parsed {
        Packet::Rrq(req) => (packet::OP_RRQ, req),
        Packet::Wrq(req) => (packet::OP_WRQ, req),
        _ => return,
    };
    let again = packet::encode_request(opcode, &req);
    let reparsed = packet::parse(&again).expect("an encoded request parses");
    assert!(matches!(reparsed, Packet::Rrq(ref r) | Packet::Wrq(ref r) if *r == req));
    let limits = Limits { blksize_max: 1468, windowsize_max: 64, default_timeout: Duration::from_secs(2) };
    let agreed = options::negotiate(&req.options, &limits, data.len() as u64);
    assert!((8..=1468).contains(&agreed.blksize) || agreed.blksize == 512);
    assert!((1..=64).contains(&agreed.windowsize));
    let _ = pxebuild::serve::root::normalize(&req.filename);
});
