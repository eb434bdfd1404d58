//! `smbvault serve`: placeholder until the server is wired in (the lead
//! replaces this file).

use clap::Args;

use super::{CliError, Global};

/// Options of `serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {}

/// Runs the server.
pub fn run(_g: &Global, _a: &ServeArgs) -> Result<(), CliError> {
    Err(CliError::new("serve: not built yet"))
}
