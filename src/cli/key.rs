//! `smbvault key ...`: the master key's slots, its recovery file and its
//! rotation (operator only; each recorded in the server audit log). docs/backup.md
//! "Disaster recovery" says what to keep off the machine.

use std::time::SystemTime;

use clap::Subcommand;
use serde_json::json;
use zeroize::Zeroizing;

use super::output::{Output, time_json};
use super::{CliError, Global};
use crate::keys::{MasterKey, Unlock};

/// Environment variable with the passphrase for `key add-passphrase`.
pub const NEW_PASSPHRASE_ENV: &str = "SMBVAULT_NEW_PASSPHRASE";
/// Environment variable with the recovery passphrase (`key
/// export-recovery`, `backup restore --recovery`).
pub const RECOVERY_PASSPHRASE_ENV: &str = "SMBVAULT_RECOVERY_PASSPHRASE";

/// Key commands.
#[derive(Debug, Clone, Subcommand)]
pub enum KeyCmd {
    /// Let a passphrase unlock the master key too ([keys] passphrase_env);
    /// from SMBVAULT_NEW_PASSPHRASE or asked twice at the terminal.
    AddPassphrase,
    /// Remove every passphrase slot (the key file keeps working).
    RemovePassphrase,
    /// Write FILE: the master key wrapped under a recovery passphrase
    /// (SMBVAULT_RECOVERY_PASSPHRASE or asked twice). With the backups it
    /// is all a new machine needs; keep it off this machine.
    ExportRecovery {
        /// Where to write it (never overwritten).
        file: std::path::PathBuf,
    },
    /// Replace the master key with a new one: every slot (key file,
    /// passphrase) and every organization key re-wrapped, no data
    /// rewritten. The server must be stopped. Export a new recovery file
    /// afterwards. Asks to type the old key id (or --yes).
    Rotate {
        /// The typed confirmation (or --yes).
        #[command(flatten)]
        confirm: super::confirm::ConfirmArgs,
    },
}

/// Reads a passphrase from `env` or, at a terminal, twice.
pub fn new_passphrase(env: &str, what: &str) -> Result<Zeroizing<String>, CliError> {
    if let Ok(p) = std::env::var(env) {
        return Ok(Zeroizing::new(p));
    }
    let no_tty = |e: std::io::Error| CliError::new(format!("{what} needed: set {env} or run at a terminal ({e})"));
    let a = super::context::prompt_tty(&format!("{what}: ")).map_err(no_tty)?;
    let b = super::context::prompt_tty(&format!("{what} again: ")).map_err(no_tty)?;
    if a != b {
        return Err(CliError::new("the two entries differ; nothing was changed"));
    }
    Ok(a)
}

/// Reads an existing passphrase from `env` or, at a terminal, once.
pub fn passphrase(env: &str, what: &str) -> Result<Zeroizing<String>, CliError> {
    if let Ok(p) = std::env::var(env) {
        return Ok(Zeroizing::new(p));
    }
    super::context::prompt_tty(&format!("{what}: "))
        .map_err(|e| CliError::new(format!("{what} needed: set {env} or run at a terminal ({e})")))
}

/// Runs one `key` command.
pub fn run(g: &Global, cmd: &KeyCmd) -> Result<(), CliError> {
    if g.as_user.is_some() {
        return Err(CliError { message: "key commands are for the operator; run without --as".into(), code: 3 });
    }
    let config = super::context::load_config(g)?;
    if let KeyCmd::Rotate { confirm } = cmd {
        return rotate(&config, confirm, Output { json: g.json });
    }
    let mk = super::context::open_master_key(&config, false)?;
    let slots = crate::app::slots_path(&config);
    let out = Output { json: g.json };
    let (action, text, detail) = match cmd {
        KeyCmd::AddPassphrase => {
            let p = new_passphrase(NEW_PASSPHRASE_ENV, "new passphrase for the master key")?;
            if p.chars().count() < crate::keys::RECOVERY_MIN_LEN {
                return Err(CliError::new(format!(
                    "the passphrase must have at least {} characters",
                    crate::keys::RECOVERY_MIN_LEN
                )));
            }
            mk.add_slot(&slots, &Unlock::Passphrase(p)).map_err(|e| CliError::new(e.to_string()))?;
            let t = "added a passphrase slot; set [keys] passphrase_env to unlock with it".to_string();
            ("key.add-passphrase", t, "passphrase slot added".to_string())
        }
        KeyCmd::RemovePassphrase => {
            let n = MasterKey::remove_passphrase_slots(&slots).map_err(|e| CliError::new(e.to_string()))?;
            (
                "key.remove-passphrase",
                format!("removed {n} passphrase slot(s)"),
                format!("{n} passphrase slot(s) removed"),
            )
        }
        KeyCmd::ExportRecovery { file } => {
            let p = new_passphrase(RECOVERY_PASSPHRASE_ENV, "recovery passphrase")?;
            let now = time_json(SystemTime::now());
            mk.export_recovery(file, &p, &now).map_err(|e| CliError::new(e.to_string()))?;
            let t = format!(
                "wrote the recovery file {} (master key {}); keep it and its passphrase off this machine: \
                 with the data backups they restore everything (docs/backup.md, \"Disaster recovery\")",
                file.display(),
                mk.key_id()
            );
            ("key.export-recovery", t, format!("recovery file written for master key {}", mk.key_id()))
        }
        KeyCmd::Rotate { .. } => unreachable!("handled above"),
    };
    record(&config, &mk, action, detail)?;
    out.done(&text, json!({ "action": action, "key_id": mk.key_id() }));
    Ok(())
}

/// Records an operator key action in the server audit log.
pub fn record(config: &crate::config::Config, mk: &MasterKey, action: &str, detail: String) -> Result<(), CliError> {
    if !config.audit.enabled {
        return Ok(());
    }
    let store = crate::app::open_store(config, mk, false).map_err(CliError::new)?;
    let audit = crate::app::CliAudit::open(config, mk, store).map_err(CliError::new)?;
    audit.operator_event(action, detail);
    Ok(())
}

/// `key rotate` (keys::rotate): with the server stopped (its lock held for
/// the whole rotation), every slot opened with the configured key file and
/// passphrase and re-wrapped, keys.db re-wrapped, audited.
fn rotate(config: &crate::config::Config, confirm: &super::confirm::ConfirmArgs, out: Output) -> Result<(), CliError> {
    use crate::keys::rotate;
    let data = &config.server.data_dir;
    // Opening the key first also finishes an interrupted rotation.
    let mk = super::context::open_master_key(config, false)?;
    let _lock = super::serve::lock_data_dir(data).map_err(|_| {
        CliError::new(format!(
            "the server is running on {} (it holds server.lock): stop it first, then rotate the key, then start it",
            data.display()
        ))
    })?;
    let slots = crate::app::slots_path(config);
    let keys_db = data.join(crate::backup::db::KEYS_DB);
    let mut unlocks = vec![Unlock::KeyFile(config.key_file())];
    if let u @ Unlock::Passphrase(_) = crate::app::unlock_method(config) {
        unlocks.push(u);
    }
    let (n_slots, n_orgs) = rotate::check(&slots, &keys_db, &mk, &unlocks).map_err(|e| CliError::new(e.to_string()))?;
    let old_id = mk.key_id();
    let what = format!(
        "replace master key {old_id} with a new one, re-wrapping {n_slots} slot(s) and {n_orgs} organization \
         key(s); recovery files exported before then open only backup generations taken before"
    );
    if confirm.dry_run {
        out.done(
            &format!("dry run, nothing changed: would {what}"),
            json!({ "action": "key.rotate", "dry_run": true, "key_id": old_id, "slots": n_slots, "org_keys": n_orgs }),
        );
        return Ok(());
    }
    confirm.confirm(&what, &old_id)?;
    let r = rotate::rotate(&slots, &keys_db, &mk, &unlocks).map_err(|e| CliError::new(e.to_string()))?;
    drop(mk);
    let new_id = r.key.key_id();
    record(
        config,
        &r.key,
        "key.rotate",
        format!(
            "master key {old_id} replaced by {new_id}; {} slot(s) and {} organization key(s) re-wrapped",
            r.slots, r.org_keys
        ),
    )?;
    out.done(
        &format!(
            "rotated the master key: {old_id} -> {new_id} ({} slot(s), {} organization key(s) re-wrapped, no data \
             rewritten). Now export a new recovery file (`smbvault key export-recovery FILE`) and take a backup: \
             recovery files made before open only generations taken before the rotation (keep them as long as \
             you keep those generations; see docs/backup.md, \"Key rotation\")",
            r.slots, r.org_keys
        ),
        json!({ "action": "key.rotate", "old_key_id": old_id, "key_id": new_id, "slots": r.slots,
                "org_keys": r.org_keys, "first": r.first }),
    );
    Ok(())
}
