//! Everything a command needs, built from the config: the master key, the
//! accounts store, the acting administrator, the audit sink and output.
//!
//! The CLI acts as the operator by default: reading the local key file is
//! the operator's credential. `--as ORG\user` narrows that to one
//! organization administrator, whose password is checked with Argon2id.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::time::SystemTime;

use zeroize::Zeroizing;

use super::{CliError, Global, output::Output};
use crate::accounts::{Accounts, Actor, Admin, AdminAudit, NoAudit, Provisioner};
use crate::config::Config;
use crate::keys::{MasterKey, Unlock};

pub use crate::accounts::{GeneratedAdmin, bootstrap};

/// Environment variable with the `--as` administrator's password.
pub const ADMIN_PASSWORD_ENV: &str = "SMBVAULT_ADMIN_PASSWORD";
/// Environment variable with a new password for `user add` / `user passwd`.
pub const NEW_PASSWORD_ENV: &str = "SMBVAULT_NEW_PASSWORD";

/// Loads the config named by `--config` and applies `--data-dir`. Without
/// `keys.key_file` the key file is looked up as
/// [`crate::keys::custody::default_key_file`] says (outside the data directory).
pub fn load_config(g: &Global) -> Result<Config, CliError> {
    let mut cfg = Config::load(&g.resolved_config()).map_err(|e| CliError::new(e.to_string()))?;
    if let Some(d) = &g.data_dir {
        cfg.server.data_dir = d.clone();
    }
    if cfg.keys.key_file.is_none() {
        cfg.keys.key_file = Some(crate::keys::custody::default_key_file(&g.resolved_config(), &cfg.server.data_dir));
    }
    Ok(cfg)
}

/// `<data_dir>/keys/master.slots`.
pub fn slots_path(cfg: &Config) -> PathBuf {
    crate::app::slots_path(cfg)
}

/// `<data_dir>/accounts.db`.
pub fn accounts_path(cfg: &Config) -> PathBuf {
    cfg.server.data_dir.join("accounts.db")
}

/// The passphrase from `keys.passphrase_env` when that variable is set,
/// else the key file.
pub fn unlock_method(cfg: &Config) -> Unlock {
    crate::app::unlock_method(cfg)
}

/// Opens the master key; with `create`, makes a new one (and its key file)
/// in an empty data directory (`serve`, `init`).
pub fn open_master_key(cfg: &Config, create: bool) -> Result<MasterKey, CliError> {
    crate::app::open_master_key(cfg, create).map(|(mk, _)| mk).map_err(CliError::new)
}

/// Opens the accounts store of the configured data directory.
pub fn open_accounts(cfg: &Config, mk: &MasterKey) -> Result<Accounts, CliError> {
    Ok(Accounts::open(&accounts_path(cfg), mk, &cfg.accounts)?.with_erase_after_days(cfg.backup.erase_after_days))
}

/// What an administrative command runs with.
pub struct Context {
    /// The loaded config (with `--data-dir` applied).
    pub config: Config,
    /// The accounts store.
    pub accounts: Accounts,
    /// Text or JSON.
    pub out: Output,
    /// Where administrative events go. LEAD: connect to `audit::AuditSink` at merge.
    pub audit: Box<dyn AdminAudit>,
    store: std::sync::Arc<crate::storage::Store>,
    as_user: Option<String>,
}

impl Context {
    /// Loads config, master key and accounts store.
    pub fn open(g: &Global) -> Result<Self, CliError> {
        let config = load_config(g)?;
        let mk = open_master_key(&config, false)?;
        let accounts = open_accounts(&config, &mk)?;
        // Only for organization keys (keys.db): the CLI never opens an
        // organization's data, which the running server owns.
        let store = crate::app::open_store(&config, &mk, false).map_err(CliError::new)?;
        let audit: Box<dyn AdminAudit> = if config.audit.enabled {
            Box::new(crate::app::CliAudit::open(&config, &mk, store.clone()).map_err(CliError::new)?)
        } else {
            Box::new(NoAudit)
        };
        Ok(Self { config, accounts, out: Output { json: g.json }, audit, store, as_user: g.as_user.clone() })
    }

    /// The storage engine, opened without background work (organization keys).
    pub fn store(&self) -> &std::sync::Arc<crate::storage::Store> {
        &self.store
    }

    /// The administrator this invocation acts as (`--as`, else the operator).
    pub fn admin(&self) -> Result<Admin<'_>, CliError> {
        let Some(spec) = &self.as_user else {
            return Ok(Admin::new(&self.accounts, Actor::operator(), self.audit.as_ref()));
        };
        let pw = admin_password(spec)?;
        Ok(Admin::login(&self.accounts, spec, &pw, SystemTime::now(), self.audit.as_ref())?)
    }

    /// Storage side of administrative changes: an organization's key now,
    /// its data and share roots by the server on first use (the CLI never
    /// opens an organization's data, which the running server owns).
    pub fn provisioner(&self) -> Box<dyn Provisioner> {
        Box::new(crate::app::DeferredProvisioner { keys: Some(self.store.clone()) })
    }
}

fn admin_password(spec: &str) -> Result<Zeroizing<String>, CliError> {
    if let Ok(p) = std::env::var(ADMIN_PASSWORD_ENV) {
        return Ok(Zeroizing::new(p));
    }
    prompt_tty(&format!("password for {spec}: ")).map_err(|e| {
        CliError::new(format!("--as {spec} needs a password: set {ADMIN_PASSWORD_ENV} or run on a terminal ({e})"))
    })
}

/// Reads a line from the controlling terminal with echo off (via stty,
/// which keeps this crate free of unsafe terminal calls).
pub fn prompt_tty(prompt: &str) -> std::io::Result<Zeroizing<String>> {
    let mut tty = std::fs::OpenOptions::new().read(true).write(true).open("/dev/tty")?;
    let stty = |arg: &str| -> std::io::Result<()> {
        let input = std::fs::File::open("/dev/tty")?;
        std::process::Command::new("stty").arg(arg).stdin(input).status().map(|_| ())
    };
    tty.write_all(prompt.as_bytes())?;
    tty.flush()?;
    stty("-echo")?;
    let mut line = Zeroizing::new(String::new());
    let res = std::io::BufReader::new(&tty).read_line(&mut line);
    let _ = stty("echo");
    let _ = tty.write_all(b"\n");
    res?;
    trim_newline(&mut line);
    Ok(line)
}

/// Drops one trailing "\n" or "\r\n".
pub fn trim_newline(s: &mut String) {
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
}
