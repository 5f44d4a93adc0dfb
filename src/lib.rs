//! pxebuild: builds an immutable PXE boot tree (`dist/`) that turns bare metal into a
//! Flatcar + kubeadm + Cilium cluster, and serves it.
//!
//! Module map (dependencies point downwards only; docs/architecture.md):
//! `cli` → `cmd` → `recipe` (and `recipe::mirror`) → {`render`, `boot`, `fetch`,
//! `serve`, `lab`, `day2`} → {`engine`, `site`, `secrets`, `butane`} → leaves
//! (`layout`, `manifest`, `fsutil`, `digest`, `clock`, `beacon`, `error`, `log`,
//! `embedded`).
//! The `engine` runs steps and publishes trees and knows nothing of PXE; the
//! `recipe` says which steps a site needs. `boot` imports `render`, never the
//! reverse. `serve` reads only the published tree, never the engine.

#![warn(unreachable_pub)]

pub mod beacon;
pub mod boot;
pub mod butane;
pub mod cli;
pub mod clock;
pub mod cmd;
pub mod day2;
pub mod digest;
pub mod embedded;
pub mod engine;
pub mod error;
pub mod fetch;
pub mod fsutil;
pub mod images;
pub mod lab;
pub mod layout;
pub mod log;
pub mod manifest;
pub mod recipe;
pub mod render;
pub mod secrets;
pub mod serve;
pub mod site;
pub mod starter;
