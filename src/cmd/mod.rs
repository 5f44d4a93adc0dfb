//! One module per subcommand: its clap arguments and a `run` that resolves them
//! into domain values and calls the library. [`global`] holds what they all
//! share; `cli` routes each parsed command here (commands never import `cli`).
pub mod build;
pub mod butane;
pub mod check;
pub mod day2;
pub mod docs;
pub mod global;
pub mod init;
pub mod lab;
pub mod mirror;
pub mod secrets;
pub mod serve;
