//! Command-line subcommands.

pub mod logs;
