//! Any bytes as an HTTP request head: parsing, path decoding, the path rules and
//! Range evaluation must not panic, and a satisfiable range stays inside the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pxebuild::serve::http::range::{self, RangeReply};
use pxebuild::serve::http::request;

fuzz_target!(|data: &[u8]| {
    let Ok(Some((req, used))) = request::parse(data) else { return };
    assert!(used <= data.len());
    if let Some(path) = request::decode_path(&req.target) {
        let _ = pxebuild::serve::root::normalize(path.trim_start_matches('/'));
    }
    for size in [0u64, 1, 1000] {
        if let RangeReply::Partial { start, end } = range::evaluate(req.range.as_deref(), size) {
            assert!(start <= end && end < size);
        }
    }
});
