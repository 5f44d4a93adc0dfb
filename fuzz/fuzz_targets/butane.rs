//! Any text as a Butane config: the translator must answer with diagnostics,
//! never a panic; what it accepts must be deterministic JSON whose version is
//! the one it reports and which its own Ignition validation passes.
//! Seed it with the config in `fuzz/seeds/butane`:
//! `cargo +nightly fuzz run butane fuzz/corpus/butane fuzz/seeds/butane`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pxebuild::butane::{self, verify, Options};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    // No files directory: `local:` references must fail cleanly, not read.
    let opts = Options::default();
    let translation = match butane::translate(text, &opts) {
        Ok(translation) => translation,
        Err(diagnostics) => {
            assert!(!diagnostics.is_empty(), "an error without a diagnostic");
            return;
        }
    };
    let value: serde_json::Value =
        serde_json::from_str(&translation.json).expect("the translator emits JSON");
    assert_eq!(value["ignition"]["version"], translation.spec_version.as_str());
    let errors: Vec<_> = verify::check(&value).into_iter().filter(|f| !f.warning).collect();
    assert!(errors.is_empty(), "emitted a config its validation refuses: {errors:?}");
    let again = butane::translate(text, &opts).expect("the same text translates again");
    assert_eq!(again.json, translation.json, "translation is not deterministic");
});
