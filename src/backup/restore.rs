//! Restoring a database backup generation over the data directory
//! (docs/backup.md "Restore"). The server must be stopped: the caller holds
//! `server.lock`.
//!
//! Steps: verify the generation (MAC, sizes, hashes); move every current
//! database (and its `-wal`/`-shm`) aside into
//! `<data_dir>/backups/replaced-<JST time>/`; copy the generation's files
//! into place; then carry the current shredding over, so a restore never
//! resurrects an organization erased since the backup: its tombstone is
//! written into the restored keys.db, its meta.db is not restored and it is
//! marked erased in the restored accounts.db.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use rusqlite::{Connection, OpenFlags};

use super::db::{ACCOUNTS_DB, DbBackups, Generation, KEYS_DB, SLOTS_FILE, create_private_dir};
use super::manifest::{self, sync_dir};
use crate::accounts::Accounts;
use crate::config::AccountsConfig;
use crate::keys::MasterKey;
use crate::types::OrgId;

/// What a restore did.
#[derive(Debug, Clone)]
pub struct Restored {
    /// Files copied from the generation.
    pub files: usize,
    /// Where the replaced databases were put.
    pub replaced_dir: PathBuf,
    /// Organizations erased since the backup, kept erased.
    pub kept_erased: Vec<OrgId>,
}

/// Restores generation `g` into `data_dir`. The server must not run.
pub fn restore(
    backups: &DbBackups,
    g: &Generation,
    data_dir: &Path,
    mk: &MasterKey,
    accounts_cfg: &AccountsConfig,
    now: SystemTime,
) -> Result<Restored, String> {
    let _lock = backups.lock()?;
    let (problems, m) = manifest::verify_generation(&g.dir, &g.name, backups.mac_key());
    let m = match (problems.is_empty(), m) {
        (true, Some(m)) => m,
        _ => {
            return Err(format!(
                "generation {} failed verification, nothing was changed: {}; restore another generation",
                g.name,
                problems.join("; ")
            ));
        }
    };
    let shredded = tombstones(&data_dir.join(KEYS_DB)).map_err(|e| format!("cannot read the current keys.db: {e}"))?;
    let replaced = data_dir.join("backups").join(format!("replaced-{}", crate::types::jst::stamp(now)));
    create_private_dir(&replaced)?;
    for rel in current_databases(data_dir) {
        set_aside(data_dir, &replaced, &rel)?;
    }
    let mut files = 0;
    for f in &m.files {
        if super::data::is_segment(&f.path) || f.path.starts_with(super::data::AUDIT_PREFIX) {
            continue;
        }
        // The slot file only where there is none (a restore onto an empty
        // directory): the current one may hold slots added since.
        if f.path == SLOTS_FILE && data_dir.join(SLOTS_FILE).exists() {
            continue;
        }
        if let Some(org) = meta_org(&f.path)
            && shredded.contains(&org)
        {
            continue;
        }
        let dst = data_dir.join(&f.path);
        if let Some(p) = dst.parent() {
            create_private_dir(p)?;
        }
        let tmp = dst.with_extension("restore");
        std::fs::copy(g.dir.join(&f.path), &tmp).map_err(|e| format!("cannot copy {}: {e}", f.path))?;
        std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| e.to_string())?;
        std::fs::rename(&tmp, &dst).map_err(|e| format!("cannot put {} in place: {e}", f.path))?;
        if let Some(p) = dst.parent() {
            sync_dir(p).map_err(|e| e.to_string())?;
        }
        files += 1;
    }
    if backups.includes_segments() {
        files += super::data::restore_segments(&g.dir, &m, data_dir, &replaced, &shredded)?;
        files += super::data::restore_audit(&g.dir, &m, data_dir, &shredded)?;
    }
    let kept_erased = carry_over_shredding(data_dir, &shredded, mk, accounts_cfg)?;
    Ok(Restored { files, replaced_dir: replaced, kept_erased })
}

/// The organization of `store/orgs/<16 hex>/meta.db`.
fn meta_org(rel: &str) -> Option<OrgId> {
    let hex = rel.strip_prefix("store/orgs/")?.strip_suffix("/meta.db")?;
    (hex.len() == 16).then(|| u64::from_str_radix(hex, 16).ok().map(OrgId)).flatten()
}

/// Organizations shredded in a keys.db (none if it does not exist).
fn tombstones(keys_db: &Path) -> rusqlite::Result<BTreeSet<OrgId>> {
    if !keys_db.is_file() {
        return Ok(BTreeSet::new());
    }
    let c = Connection::open_with_flags(keys_db, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    let mut st = c.prepare("SELECT org FROM shredded")?;
    let rows = st.query_map([], |r| r.get::<_, i64>(0))?;
    rows.map(|r| r.map(|o| OrgId(o as u64))).collect()
}

fn current_databases(data_dir: &Path) -> Vec<String> {
    let mut v = vec![ACCOUNTS_DB.to_string(), KEYS_DB.to_string()];
    if let Ok(rd) = std::fs::read_dir(data_dir.join("store").join("orgs")) {
        for e in rd.flatten() {
            if let Some(n) = e.file_name().to_str() {
                v.push(format!("store/orgs/{n}/meta.db"));
            }
        }
    }
    v
}

/// Moves `rel` and its WAL and shared-memory files into `replaced`.
fn set_aside(data_dir: &Path, replaced: &Path, rel: &str) -> Result<(), String> {
    for suffix in ["", "-wal", "-shm"] {
        let src = data_dir.join(format!("{rel}{suffix}"));
        if !src.exists() {
            continue;
        }
        let dst = replaced.join(format!("{rel}{suffix}"));
        if let Some(p) = dst.parent() {
            create_private_dir(p)?;
        }
        std::fs::rename(&src, &dst).map_err(|e| format!("cannot move {} aside: {e}", src.display()))?;
    }
    // Fold the WAL into the file set aside: one self-contained file that a
    // later shredding can purge (a leftover -wal could keep a key).
    let kept = replaced.join(rel);
    if kept.is_file() {
        let c = Connection::open(&kept).map_err(|e| format!("{}: {e}", kept.display()))?;
        let _: String = c
            .query_row("PRAGMA journal_mode=DELETE", [], |r| r.get(0))
            .map_err(|e| format!("cannot checkpoint {}: {e}", kept.display()))?;
    }
    Ok(())
}

/// Re-applies the shredding done since the backup to the restored files.
fn carry_over_shredding(
    data_dir: &Path,
    shredded: &BTreeSet<OrgId>,
    mk: &MasterKey,
    accounts_cfg: &AccountsConfig,
) -> Result<Vec<OrgId>, String> {
    if shredded.is_empty() {
        return Ok(Vec::new());
    }
    let keys = data_dir.join(KEYS_DB);
    let restored = tombstones(&keys).map_err(|e| e.to_string())?;
    let new: Vec<OrgId> = shredded.iter().copied().filter(|o| !restored.contains(o)).collect();
    for org in &new {
        super::purge::keys_db(&keys, *org)?;
    }
    let accounts = Accounts::open(&data_dir.join(ACCOUNTS_DB), mk, accounts_cfg)
        .map_err(|e| format!("cannot open the restored accounts.db: {e}"))?;
    for org in &new {
        // Already erased in the backup: nothing to do (NotFound).
        if let Err(e) = accounts.mark_org_erased(*org) {
            tracing::debug!(org = org.0, error = %e, "restore: organization already erased");
        }
    }
    Ok(new)
}
