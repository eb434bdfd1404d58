//! The `smbvault` binary: everything lives in [`smbvault::cli`].
#![forbid(unsafe_code)]
#![deny(clippy::unwrap_used)]

fn main() -> std::process::ExitCode {
    smbvault::cli::main()
}
