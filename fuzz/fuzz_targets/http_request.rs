//! Any bytes as an HTTP request head: parsing, path decoding, the path rules,
//! the conditional fields (HTTP dates, entity-tag lists) and Range evaluation
//! must not panic, and a satisfiable range stays inside the file.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pxebuild::serve::http::conditional::{self, Validators};
use pxebuild::serve::http::range::{self, RangeReply};
use pxebuild::serve::http::request;

fuzz_target!(|data: &[u8]| {
    let Ok(Some((req, used))) = request::parse(data) else { return };
    assert!(used <= data.len());
    if let Some(path) = request::decode_path(&req.target) {
        let _ = pxebuild::serve::root::normalize(path.trim_start_matches('/'));
    }
    let conditions = req.conditions();
    for modified in [0, 784_111_777, i64::MAX / 2] {
        let file = Validators {
            etag: "\"5d-2e-6b\"",
            modified,
        };
        let _ = conditional::evaluate(&conditions, &file, 1_795_730_400);
    }
    for size in [0u64, 1, 1000] {
        if let RangeReply::Partial { start, end } = range::evaluate(req.range.as_deref(), size) {
            assert!(start <= end && end < size);
        }
    }
});
