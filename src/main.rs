//! The `smbvault` binary: everything lives in [`smbvault::cli`].
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    smbvault::cli::main()
}
