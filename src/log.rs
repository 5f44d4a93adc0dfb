//! Minimal leveled logging to stderr, set once from `-q`/`-v`.
use std::sync::atomic::{AtomicU8, Ordering};

/// 0 = quiet (errors and warnings only), 1 = normal, 2 = verbose, 3+ = debug.
static LEVEL: AtomicU8 = AtomicU8::new(1);

pub fn init(level: u8) {
    LEVEL.store(level, Ordering::Relaxed);
}

pub fn level() -> u8 {
    LEVEL.load(Ordering::Relaxed)
}

/// Normal progress output (suppressed by `-q`).
#[macro_export]
macro_rules! info {
    ($($arg:tt)*) => { if $crate::log::level() >= 1 { eprintln!($($arg)*); } };
}

/// Detail shown with `-v`.
#[macro_export]
macro_rules! verbose {
    ($($arg:tt)*) => { if $crate::log::level() >= 2 { eprintln!($($arg)*); } };
}

/// Debug output shown with `-vv`: each request, each cache decision.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)*) => { if $crate::log::level() >= 3 { eprintln!("debug: {}", format!($($arg)*)); } };
}

/// Warnings are always shown.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)*) => {{ eprintln!("warning: {}", format!($($arg)*)); }};
}
