//! smbvault binary (temporary entry point until the CLI lands).
use clap::Parser;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "config/smbvault.toml")]
    config: std::path::PathBuf,
    #[command(flatten)]
    serve: smbvault::cli::serve::ServeArgs,
}

fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .init();
    let a = Args::parse();
    let cfg = match smbvault::config::Config::load(&a.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match smbvault::cli::serve::run(cfg, &a.serve) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
