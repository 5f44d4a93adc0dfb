//! TFTP (RFC 1350 + 2347/2348/2349/7440), read-only. [`packet`] and [`options`]
//! and [`window`] are pure; [`transfer`] runs one session on its own socket;
//! [`server`] receives requests and starts sessions; [`sock`] holds the two
//! socket options std lacks; [`gso`] sends a window as one segmented buffer.
pub(crate) mod gso;
pub mod options;
pub mod packet;
pub(crate) mod server;
pub(crate) mod sock;
pub(crate) mod transfer;
pub(crate) mod window;
