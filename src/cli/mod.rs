//! The `smbvault` command line: the server (`serve`) and the
//! administration commands (`org`, `user`, `group`, `share`, `logs`,
//! `backup`).
//!
//! Errors go to stderr as one line that says what is wrong and how to fix
//! it (JSON `{"error": ...}` with `--json`); the exit code is 1, or 3 when
//! the acting administrator is not allowed to do it (2 for usage errors and
//! bad arguments, 4 when an irreversible action was not confirmed).

pub mod backup;
pub mod backup_remote;
pub mod confirm;
pub mod context;
pub mod group;
pub mod key;
pub mod logs;
pub mod org;
pub mod output;
pub mod progress;
pub mod serve;
pub mod service;
pub mod share;
pub mod storage;
pub mod user;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::accounts::AccountsError;

/// smbvault: encrypted multi-tenant SMB file server.
#[derive(Debug, Parser)]
#[command(name = "smbvault", version, about)]
pub struct Cli {
    /// Options for every command.
    #[command(flatten)]
    pub global: Global,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Options accepted by every command.
#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Configuration file [default: $SMBVAULT_CONFIG, else /etc/smbvault/smbvault.toml].
    #[arg(long, global = true, value_name = "PATH", env = "SMBVAULT_CONFIG", hide_env = true)]
    pub config: Option<PathBuf>,
    /// Use this data directory instead of `server.data_dir`.
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Machine-readable JSON output.
    #[arg(long, global = true)]
    pub json: bool,
    /// Act as this organization administrator (ORG\user or user@ORG) instead
    /// of the operator; password from SMBVAULT_ADMIN_PASSWORD or the terminal.
    #[arg(long = "as", global = true, value_name = "ORG\\USER")]
    pub as_user: Option<String>,
    /// Organization the command is about (default: your own, or the only one).
    #[arg(long, global = true, value_name = "ORG")]
    pub org: Option<String>,
}

/// Where the configuration is read from when neither `--config` nor
/// `SMBVAULT_CONFIG` names it.
pub const DEFAULT_CONFIG: &str = "/etc/smbvault/smbvault.toml";

impl Global {
    /// `--config`, else `SMBVAULT_CONFIG`, else [`DEFAULT_CONFIG`].
    pub fn resolved_config(&self) -> PathBuf {
        self.config.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG))
    }
}

/// Top-level commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the master key and the accounts database of a new data directory.
    Init {
        /// Create a new master key even though the data directory is not
        /// empty or a key file already exists.
        #[arg(long)]
        force_new_key: bool,
    },
    /// Organizations (tenants).
    #[command(subcommand)]
    Org(org::OrgCmd),
    /// User accounts.
    #[command(subcommand)]
    User(user::UserCmd),
    /// Groups of users.
    #[command(subcommand)]
    Group(group::GroupCmd),
    /// Shares and their permissions.
    #[command(subcommand)]
    Share(share::ShareCmd),
    /// Run the SMB server.
    Serve(serve::ServeArgs),
    /// Read, verify and purge the audit logs.
    #[command(subcommand)]
    Logs(logs::LogsCmd),
    /// Database backups: make, list, verify, restore (operator only).
    #[command(subcommand)]
    Backup(backup::BackupCmd),
    /// The master key: passphrase slots, recovery file (operator only).
    #[command(subcommand)]
    Key(key::KeyCmd),
    /// Storage engine maintenance: `storage migrate` (operator only).
    #[command(subcommand)]
    Storage(storage::StorageCmd),
    /// Who is connected, their open files and locks (like Samba's smbstatus).
    Status(service::StatusArgs),
    /// Live sessions of the running server.
    #[command(subcommand)]
    Session(service::SessionCmd),
    /// Configuration file tools.
    #[command(subcommand)]
    Config(service::ConfigCmd),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print a manual page (roff): `smbvault man > /usr/local/share/man/man1/smbvault.1`,
    /// `smbvault man status > …/smbvault-status.1`.
    Man {
        /// A subcommand's page instead of the main one.
        command: Option<String>,
    },
}

/// A failed command: message for stderr and exit code.
#[derive(Debug)]
pub struct CliError {
    /// What went wrong and how to fix it.
    pub message: String,
    /// Process exit code (nonzero).
    pub code: u8,
}

impl CliError {
    /// A general failure (exit code 1).
    pub fn new(message: impl Into<String>) -> Self {
        Self { message: message.into(), code: 1 }
    }
}

impl From<AccountsError> for CliError {
    fn from(e: AccountsError) -> Self {
        let hint = match &e {
            AccountsError::NotFound { what: "organization", .. } => " (see `smbvault org list`)",
            AccountsError::NotFound { what: "user", .. } => " (see `smbvault user list --org ORG`)",
            AccountsError::NotFound { what: "share", .. } => " (see `smbvault share list`)",
            AccountsError::NotFound { what: "group", .. } => " (see `smbvault group list --org ORG`)",
            AccountsError::Exists { .. } => "; choose another name",
            AccountsError::WeakPassword(_) => "; or use --generate",
            AccountsError::Db(_) => "; check that the data directory exists, is writable and is on a local disk",
            _ => "",
        };
        let code = if matches!(e, AccountsError::Denied(_)) { 3 } else { 1 };
        Self { message: format!("{e}{hint}"), code }
    }
}

/// Entry point of the `smbvault` binary.
pub fn main() -> ExitCode {
    // Everything this process creates (databases, segments, logs, backups,
    // key files) is private to its user from the first file on.
    crate::keys::custody::private_umask();
    let cli = Cli::parse();
    // Diagnostics go to stderr; RUST_LOG selects (default: warnings). The
    // server sets up its own from `[log]` once its configuration is read.
    // File names and keys never reach this channel.
    if !matches!(cli.command, Command::Serve(_)) {
        crate::service::logging::init(crate::config::LogFormat::Text, "warn");
    }
    // The passphrase variable must not stay in the environment of the
    // process (readable in /proc for its whole life): move it to a pipe and
    // start again without it.
    if !crate::keys::custody::passphrase_was_passed()
        && let Ok(cfg) = context::load_config(&cli.global)
        && let Some(var) = cfg.keys.passphrase_env.as_deref()
        && std::env::var_os(var).is_some()
    {
        let e = crate::keys::custody::reexec_without_passphrase(var);
        eprintln!("warning: could not restart without the passphrase variable {var} in the environment: {e}");
    }
    let json = cli.global.json;
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if json {
                eprintln!("{}", serde_json::json!({ "error": e.message }));
            } else {
                eprintln!("smbvault: {}", e.message);
            }
            ExitCode::from(e.code)
        }
    }
}

/// `--as` and `--org` are accepted everywhere (clap globals) but mean
/// something only for administration; elsewhere they are a mistake worth
/// saying rather than ignoring.
fn check_globals(cli: &Cli) -> Result<(), CliError> {
    let name = match &cli.command {
        Command::Init { .. } => "init",
        Command::Serve(_) => "serve",
        Command::Config(_) => "config",
        Command::Completions { .. } => "completions",
        Command::Man { .. } => "man",
        _ => return Ok(()),
    };
    for (set, opt) in [(cli.global.as_user.is_some(), "--as"), (cli.global.org.is_some(), "--org")] {
        if set {
            return Err(CliError {
                message: format!("{opt} has no meaning for `smbvault {name}`; leave it out"),
                code: 2,
            });
        }
    }
    Ok(())
}

/// Runs one parsed command.
pub fn run(cli: Cli) -> Result<(), CliError> {
    check_globals(&cli)?;
    let g = &cli.global;
    match &cli.command {
        Command::Init { force_new_key } => init(g, *force_new_key),
        Command::Org(c) => org::run(g, c),
        Command::User(c) => user::run(g, c),
        Command::Group(c) => group::run(g, c),
        Command::Share(c) => share::run(g, c),
        Command::Serve(a) => serve::run(g, a),
        Command::Logs(c) => run_logs(g, c.clone()),
        Command::Backup(c) => backup::run(g, c),
        Command::Key(c) => key::run(g, c),
        Command::Storage(c) => storage::run(g, c),
        Command::Status(a) => service::status(g, a),
        Command::Session(c) => service::session(g, c),
        Command::Config(c) => service::config(g, c),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            let mut buf = Vec::new();
            clap_complete::generate(*shell, &mut cmd, "smbvault", &mut buf);
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &buf);
            Ok(())
        }
        Command::Man { command } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            cmd.build();
            let page = match command {
                None => cmd,
                Some(name) => cmd.find_subcommand(name).cloned().ok_or_else(|| CliError {
                    message: format!("no command {name}; see `smbvault --help`"),
                    code: 2,
                })?,
            };
            let mut buf = Vec::new();
            clap_mangen::Man::new(page).render(&mut buf).map_err(|e| CliError::new(e.to_string()))?;
            let _ = std::io::Write::write_all(&mut std::io::stdout(), &buf);
            Ok(())
        }
    }
}

/// `smbvault logs …`: the operator sees every log, an organization
/// administrator (`--as`) only their organization's.
fn run_logs(g: &Global, cmd: logs::LogsCmd) -> Result<(), CliError> {
    let ctx = context::Context::open(g)?;
    let allowed_org = match ctx.admin()?.actor() {
        crate::accounts::Actor::OrgAdmin { org, .. } => Some(*org),
        crate::accounts::Actor::Operator { .. } => None,
    };
    let (mk, _) = crate::app::open_master_key(&ctx.config, false).map_err(CliError::new)?;
    let store = crate::app::open_store(&ctx.config, &mk, false).map_err(CliError::new)?;
    let orgs = crate::app::AccountsOrgs(&ctx.accounts);
    let lctx =
        logs::LogsContext { config: &ctx.config, master: &mk, org_keys: store, orgs: &orgs, allowed_org, json: g.json };
    logs::run(&lctx, cmd).map_err(|e| match e {
        logs::LogsError::Forbidden(m) => CliError { message: m, code: 3 },
        logs::LogsError::NotConfirmed(m) => CliError { message: m, code: confirm::NOT_CONFIRMED },
        other => CliError::new(other.to_string()),
    })
}

fn init(g: &Global, force_new_key: bool) -> Result<(), CliError> {
    let cfg = context::load_config(g)?;
    serve::create_private_dir(&cfg.server.data_dir)?;
    let (mk, created) = crate::app::open_master_key_forced(&cfg, true, force_new_key, true).map_err(CliError::new)?;
    let existed = !created;
    context::open_accounts(&cfg, &mk)?;
    let dir = cfg.server.data_dir.display().to_string();
    let text = if existed {
        format!("data directory {dir} was already initialized")
    } else {
        format!("initialized data directory {dir}; key file {} (keep it safe)", cfg.key_file().display())
    };
    output::Output { json: g.json }
        .done(&text, serde_json::json!({ "data_dir": dir, "created": !existed, "key_file": cfg.key_file() }));
    Ok(())
}
