//! `smbvault storage migrate`: rewrites every chunk record still in record
//! version 1 (AES-256-CTR + HMAC-SHA256) as version 2 (XAES-256-GCM),
//! docs/storage-format.md §12. Compaction does the same as it goes; this
//! does it for every segment of every organization at once.
//!
//! It asks first (or `--yes`): no data is lost either way and every byte
//! reads the same afterwards, but there is no way back: binaries from
//! before record version 2 cannot read the migrated data directory, and the
//! version 1 records are deleted. Audited in the server log
//! (`storage.migrate`). The server must be stopped (its lock is held for
//! the whole run), as for `key rotate`.

use clap::Subcommand;
use serde_json::json;

use super::output::Output;
use super::{CliError, Global};

/// Storage engine maintenance.
#[derive(Debug, Clone, Subcommand)]
pub enum StorageCmd {
    /// Rewrite every chunk record still in record version 1 (AES-256-CTR +
    /// HMAC-SHA256) as version 2 (XAES-256-GCM), in every organization.
    /// The server must be stopped. Asks to type "migrate" (or --yes);
    /// --dry-run only counts.
    Migrate {
        /// The typed confirmation (or --yes), or --dry-run.
        #[command(flatten)]
        confirm: super::confirm::ConfirmArgs,
    },
}

/// Runs one `storage` command.
pub fn run(g: &Global, cmd: &StorageCmd) -> Result<(), CliError> {
    if g.as_user.is_some() {
        return Err(CliError { message: "storage commands are for the operator; run without --as".into(), code: 3 });
    }
    if g.org.is_some() {
        return Err(CliError {
            message: "`storage migrate` covers every organization; leave out --org".into(),
            code: 2,
        });
    }
    let StorageCmd::Migrate { confirm } = cmd;
    let out = Output { json: g.json };
    let config = super::context::load_config(g)?;
    let mk = super::context::open_master_key(&config, false)?;
    let data = &config.server.data_dir;
    let lock = super::serve::lock_data_dir(data).map_err(|_| {
        CliError::new(format!(
            "the server is running on {} (it holds server.lock): stop it first, then migrate, then start it",
            data.display()
        ))
    })?;
    let store = crate::app::open_store(&config, &mk, false).map_err(CliError::new)?;
    let err = |e: crate::storage::StorageError| CliError::new(format!("storage engine: {e}"));
    let mut orgs = Vec::new();
    for id in store.org_ids().map_err(err)? {
        let o = store.org(id).map_err(|e| CliError::new(format!("organization {:016x}: {e}", id.0)))?;
        let n = o.v1_records().map_err(err)?;
        orgs.push((id, o, n));
    }
    let total: u64 = orgs.iter().map(|(_, _, n)| n).sum();
    let with: usize = orgs.iter().filter(|(_, _, n)| *n > 0).count();
    if total == 0 {
        out.done(
            "nothing to migrate: every record is already version 2 (XAES-256-GCM)",
            json!({ "action": "storage.migrate", "records": 0, "organizations": 0 }),
        );
        return Ok(());
    }
    let what = format!(
        "rewrite {total} record(s) of {with} organization(s) from record version 1 (AES-256-CTR + HMAC-SHA256) \
         to version 2 (XAES-256-GCM) and delete the old records; every file reads the same afterwards, but \
         smbvault binaries from before record version 2 can no longer read this data directory"
    );
    if confirm.dry_run {
        out.done(
            &format!("dry run, nothing changed: would {what}"),
            json!({ "action": "storage.migrate", "dry_run": true, "records": total, "organizations": with }),
        );
        return Ok(());
    }
    confirm.confirm(&what, "migrate")?;
    let (mut rewritten, mut unreadable, mut segments) = (0, 0, 0);
    for (id, o, n) in &orgs {
        if *n == 0 {
            continue;
        }
        let rep = o.migrate().map_err(|e| CliError::new(format!("organization {:016x}: {e}", id.0)))?;
        rewritten += rep.rewritten;
        unreadable += rep.unreadable;
        segments += rep.segments;
    }
    drop(orgs);
    store.close().map_err(err)?;
    drop(store);
    drop(lock);
    let detail = format!(
        "{rewritten} record(s) in {segments} segment(s) of {with} organization(s) rewritten from version 1 to \
         version 2; {unreadable} record(s) failed verification and were left as they are"
    );
    super::key::record(&config, &mk, "storage.migrate", detail.clone())?;
    let mut text = format!("migrated: {detail}");
    if unreadable > 0 {
        text.push_str(" (they read as I/O errors, as before; the server log names their files)");
    }
    out.done(
        &text,
        json!({ "action": "storage.migrate", "records": rewritten, "segments": segments,
                "organizations": with, "unreadable": unreadable }),
    );
    if unreadable > 0 {
        return Err(CliError::new(format!("{unreadable} record(s) failed verification; see the log above")));
    }
    Ok(())
}
