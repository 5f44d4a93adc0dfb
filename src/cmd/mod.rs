//! One module per subcommand: its clap arguments and a `run` that resolves them
//! into domain values and calls the library. [`global`] holds what they all
//! share; `cli` routes each parsed command here (commands never import `cli`).
pub(crate) mod build;
pub(crate) mod butane;
pub(crate) mod check;
pub(crate) mod day2;
pub(crate) mod docs;
pub(crate) mod global;
pub(crate) mod images;
pub(crate) mod init;
pub(crate) mod lab;
pub(crate) mod mirror;
pub(crate) mod secrets;
pub(crate) mod serve;
