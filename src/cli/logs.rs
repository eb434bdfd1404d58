//! `smbvault logs`: placeholder until the audit log reader is wired in
//! (the audit helper replaces this file).

use clap::Args;

use super::{CliError, Global};

/// Options of `logs`.
#[derive(Debug, Args)]
pub struct LogsArgs {}

/// Reads the audit logs.
pub fn run(_g: &Global, _a: &LogsArgs) -> Result<(), CliError> {
    Err(CliError::new("logs: not built yet"))
}
