//! Rotating the master key (`smbvault key rotate`): a new MK, the
//! organization keys re-wrapped under it, no data rewritten.
//!
//! Some keys protect things that are never rewritten: the server audit
//! log's chain and name keys, the backup manifests' MAC, the NT-hash seal in
//! accounts.db and the audit anchors' MAC. Until the first rotation they are
//! derived from MK (HKDF, [`KEPT_LABELS`]). The first rotation stores them,
//! as derived from the old MK, in keys.db (table `mk_kept`, each sealed
//! under the new MK's "smbvault/mk/kept-wrap" key, AD = its label); every
//! later rotation re-wraps them. So old logs, generations and NT hashes keep
//! verifying, while MK itself, the key id and the organization-key wrapping
//! change. The old MK's bytes are nowhere after a rotation (the kept keys
//! are one-way HKDF outputs of it).
//!
//! Crash safety: (1) the new slot file is written beside the old one as
//! `master.rotating` and synced; (2) keys.db is re-wrapped in one SQLite
//! transaction; (3) `master.rotating` is renamed over `master.slots`. A
//! kill before (2) commits leaves the old key working; after, the new one.
//! [`finish_pending`] (run before every unlock) sees a left-over
//! `master.rotating` and completes the rename when keys.db already belongs
//! to the new key, or deletes it when keys.db still belongs to the old one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior};

use super::{Key32, KeyError, MasterKey, SealKey, Unlock};

/// Purpose keys that survive a rotation unchanged (see the module doc).
pub const KEPT_LABELS: [&str; 5] = [
    "smbvault/mk/audit-chain",
    "smbvault/mk/audit-names",
    "smbvault/mk/backup-manifest",
    "smbvault/mk/nt-hash",
    "smbvault/mk/audit-anchor",
];

/// Label of the key (derived from the current MK) sealing the kept keys.
const KEPT_WRAP_LABEL: &str = "smbvault/mk/kept-wrap";

const KEPT_SCHEMA: &str = "CREATE TABLE IF NOT EXISTS mk_kept(label TEXT PRIMARY KEY, wrapped BLOB NOT NULL);";

fn kept_wrap(mk: &Key32) -> SealKey {
    SealKey::new(&mk.derive(KEPT_WRAP_LABEL, b""))
}

/// Where a rotation writes the new slot file before it is committed.
pub fn pending_path(slots: &Path) -> PathBuf {
    slots.with_extension("rotating")
}

fn db_err(path: &Path) -> impl Fn(rusqlite::Error) -> KeyError + '_ {
    move |e| KeyError::Unlock(format!("{}: {e}", path.display()))
}

/// The `mk_kept` rows of a keys.db (none when the file or table is
/// missing). `snapshot`: a copy in a backup generation, opened immutable
/// (no -wal/-shm is created beside it); otherwise the live database.
fn kept_rows(keys_db: &Path, snapshot: bool) -> Result<Vec<(String, Vec<u8>)>, KeyError> {
    if !keys_db.is_file() {
        return Ok(Vec::new());
    }
    let c = open_db(keys_db, snapshot)?;
    let has: Option<String> = c
        .query_row("SELECT name FROM sqlite_master WHERE type='table' AND name='mk_kept'", [], |r| r.get(0))
        .optional()
        .map_err(db_err(keys_db))?;
    if has.is_none() {
        return Ok(Vec::new());
    }
    let mut st = c.prepare("SELECT label, wrapped FROM mk_kept ORDER BY label").map_err(db_err(keys_db))?;
    let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(db_err(keys_db))?;
    rows.collect::<rusqlite::Result<_>>().map_err(db_err(keys_db))
}

/// One wrapped organization key of a keys.db, if it has any.
fn some_org_key(keys_db: &Path, snapshot: bool) -> Result<Option<(i64, Vec<u8>)>, KeyError> {
    if !keys_db.is_file() {
        return Ok(None);
    }
    let c = open_db(keys_db, snapshot)?;
    c.query_row("SELECT org, wrapped FROM org_keys LIMIT 1", [], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()
        .map_err(db_err(keys_db))
}

fn open_db(keys_db: &Path, snapshot: bool) -> Result<Connection, KeyError> {
    if snapshot {
        let uri = format!("file:{}?immutable=1", keys_db.display());
        Connection::open_with_flags(uri, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI)
    } else {
        Connection::open_with_flags(keys_db, OpenFlags::SQLITE_OPEN_READ_WRITE)
    }
    .map_err(db_err(keys_db))
}

fn open_kept(mk: &Key32, rows: &[(String, Vec<u8>)]) -> Result<BTreeMap<String, Key32>, KeyError> {
    let w = kept_wrap(mk);
    rows.iter().map(|(label, sealed)| Ok((label.clone(), w.unwrap_key(label.as_bytes(), sealed)?))).collect()
}

/// `mk` with the kept purpose keys of `keys_db` (unchanged when it has
/// none: a key never rotated). Fails when keys.db belongs to another master
/// key (for example a recovery file exported before a rotation).
pub fn load_kept(mk: &MasterKey, keys_db: &Path, snapshot: bool) -> Result<MasterKey, KeyError> {
    let rows = kept_rows(keys_db, snapshot)?;
    if rows.is_empty() {
        return Ok(mk.clone());
    }
    let kept = open_kept(mk.key(), &rows).map_err(|_| {
        KeyError::Unlock(format!(
            "{} belongs to another master key than {} (it was rotated since, or before): use the key \
             file, passphrase or recovery file of the master key in use when it was written",
            keys_db.display(),
            mk.key_id()
        ))
    })?;
    Ok(mk.with_kept_keys(kept))
}

/// Whether a keys.db (live or a generation's copy) is wrapped under `mk`:
/// its kept keys open with it, or it has none and neither has `mk` (both
/// date from before the first rotation) and its organization keys open.
pub fn belongs_to(keys_db: &Path, mk: &MasterKey, snapshot: bool) -> Result<bool, KeyError> {
    let rows = kept_rows(keys_db, snapshot)?;
    if !rows.is_empty() {
        return Ok(open_kept(mk.key(), &rows).is_ok());
    }
    if mk.has_kept_keys() {
        return Ok(false);
    }
    Ok(match some_org_key(keys_db, snapshot)? {
        Some((org, wrapped)) => SealKey::new(&mk.derive(crate::storage::ORG_WRAP_LABEL))
            .unwrap_key(&crate::storage::org_key_ad(org as u64), &wrapped)
            .is_ok(),
        None => true,
    })
}

/// What `key rotate --dry-run` checks: every slot can be re-wrapped (the
/// new slot file is written and removed again) and every organization key
/// opens. Returns (slots, organization keys).
pub fn check(slots: &Path, keys_db: &Path, old: &MasterKey, unlocks: &[Unlock]) -> Result<(usize, usize), KeyError> {
    let old = load_kept(old, keys_db, false)?;
    let pending = pending_path(slots);
    let n = old.write_rotated_slots(slots, &Key32::random(), unlocks, &pending);
    let _ = std::fs::remove_file(&pending);
    let n = n?;
    let e = db_err(keys_db);
    let c = open_db(keys_db, false)?;
    let mut st = c.prepare("SELECT org, wrapped FROM org_keys").map_err(&e)?;
    let rows: Vec<(i64, Vec<u8>)> =
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(&e)?.collect::<rusqlite::Result<_>>().map_err(&e)?;
    let ow = SealKey::new(&old.derive(crate::storage::ORG_WRAP_LABEL));
    for (org, w) in &rows {
        ow.unwrap_key(&crate::storage::org_key_ad(*org as u64), w).map_err(|_| {
            KeyError::Unlock(format!("the key of organization {org} does not open with master key {}", old.key_id()))
        })?;
    }
    Ok((n, rows.len()))
}

/// What a rotation did.
#[derive(Debug)]
pub struct Rotated {
    /// The new master key (with the kept keys).
    pub key: MasterKey,
    /// Slots re-wrapped.
    pub slots: usize,
    /// Organization keys re-wrapped.
    pub org_keys: usize,
    /// Whether this was the first rotation (the kept keys were stored now).
    pub first: bool,
}

/// Rotates the master key `old` (opened from `slots`) to a fresh random
/// one: every slot re-wrapped (each must open with one of `unlocks`), the
/// organization keys and the kept keys in `keys_db` re-wrapped, in the
/// crash-safe order of the module doc. The server must be stopped.
pub fn rotate(slots: &Path, keys_db: &Path, old: &MasterKey, unlocks: &[Unlock]) -> Result<Rotated, KeyError> {
    let old = load_kept(old, keys_db, false)?;
    if !keys_db.is_file() {
        return Err(KeyError::Unlock(format!(
            "{} is missing: is this an initialized data directory?",
            keys_db.display()
        )));
    }
    let pending = pending_path(slots);
    let new = Key32::random();
    let n_slots = old.write_rotated_slots(slots, &new, unlocks, &pending)?;
    let (org_keys, first) = match rewrap_keys_db(keys_db, &old, &new) {
        Ok(r) => r,
        Err(e) => {
            // Not committed: keys.db is still the old key's.
            let _ = std::fs::remove_file(&pending);
            return Err(e);
        }
    };
    commit_slots(&pending, slots)?;
    let kept = KEPT_LABELS.iter().map(|l| (l.to_string(), old.derive(l))).collect();
    Ok(Rotated { key: MasterKey::from_key(new).with_kept_keys(kept), slots: n_slots, org_keys, first })
}

/// Re-wraps the organization keys and the kept keys of `keys_db` from `old`
/// to `new` in one transaction (storing the kept keys the first time).
/// Returns (organization keys re-wrapped, first rotation). Also used by a
/// restore of a generation taken before a rotation.
pub fn rewrap_keys_db(keys_db: &Path, old: &MasterKey, new: &Key32) -> Result<(usize, bool), KeyError> {
    let e = db_err(keys_db);
    let mut c = Connection::open_with_flags(keys_db, OpenFlags::SQLITE_OPEN_READ_WRITE).map_err(&e)?;
    c.busy_timeout(std::time::Duration::from_secs(5)).map_err(&e)?;
    // Old wrappings are overwritten, not just unlinked.
    c.pragma_update(None, "secure_delete", "ON").map_err(&e)?;
    let tx = c.transaction_with_behavior(TransactionBehavior::Immediate).map_err(&e)?;
    tx.execute_batch(KEPT_SCHEMA).map_err(&e)?;
    let first: i64 = tx.query_row("SELECT count(*) FROM mk_kept", [], |r| r.get(0)).map_err(&e)?;
    let kw = kept_wrap(new);
    for label in KEPT_LABELS {
        tx.execute(
            "INSERT OR REPLACE INTO mk_kept(label, wrapped) VALUES(?1, ?2)",
            rusqlite::params![label, kw.wrap_key(label.as_bytes(), &old.derive(label))],
        )
        .map_err(&e)?;
    }
    let (ow, nw) = (SealKey::new(&old.derive(crate::storage::ORG_WRAP_LABEL)), {
        SealKey::new(&new.derive(crate::storage::ORG_WRAP_LABEL, b""))
    });
    let rows: Vec<(i64, Vec<u8>)> = {
        let mut st = tx.prepare("SELECT org, wrapped FROM org_keys").map_err(&e)?;
        st.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).map_err(&e)?.collect::<rusqlite::Result<_>>().map_err(&e)?
    };
    for (org, wrapped) in &rows {
        let ad = crate::storage::org_key_ad(*org as u64);
        let k = ow.unwrap_key(&ad, wrapped).map_err(|_| {
            KeyError::Unlock(format!(
                "the key of organization {org} in {} does not open with master key {}; nothing was changed",
                keys_db.display(),
                old.key_id()
            ))
        })?;
        tx.execute("UPDATE org_keys SET wrapped=?2 WHERE org=?1", rusqlite::params![org, nw.wrap_key(&ad, &k)])
            .map_err(&e)?;
    }
    tx.commit().map_err(&e)?;
    // Fold the WAL in (best effort: a later open does it too).
    let _ = c.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
    Ok((rows.len(), first == 0))
}

fn commit_slots(pending: &Path, slots: &Path) -> Result<(), KeyError> {
    std::fs::rename(pending, slots).map_err(|e| {
        KeyError::Unlock(format!(
            "cannot rename {} to {}: {e}; keys.db already uses the new master key, so do it by hand \
             (or run any smbvault command, which completes it)",
            pending.display(),
            slots.display()
        ))
    })?;
    if let Some(dir) = slots.parent() {
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// Completes or undoes a rotation interrupted by a crash (see the module
/// doc). Returns what it did, if anything. Files are only removed when
/// keys.db is positively known to belong to the old key.
pub fn finish_pending(slots: &Path, keys_db: &Path, unlock: &Unlock) -> Result<Option<&'static str>, KeyError> {
    let pending = pending_path(slots);
    if !pending.exists() {
        return Ok(None);
    }
    let rows = kept_rows(keys_db, false)?;
    if let Ok(new) = MasterKey::open(&pending, unlock)
        && !rows.is_empty()
        && open_kept(new.key(), &rows).is_ok()
    {
        commit_slots(&pending, slots)?;
        return Ok(Some("completed an interrupted key rotation (keys.db already used the new key)"));
    }
    if let Ok(old) = MasterKey::open(slots, unlock)
        && (rows.is_empty() || open_kept(old.key(), &rows).is_ok())
    {
        std::fs::remove_file(&pending)
            .map_err(|e| KeyError::Unlock(format!("cannot remove {}: {e}", pending.display())))?;
        return Ok(Some("undid an interrupted key rotation (keys.db still used the old key)"));
    }
    Err(KeyError::Unlock(format!(
        "an interrupted key rotation left {}, and neither it nor {} opens keys.db with this key file \
         or passphrase; keep both files and unlock with the credential used for the rotation",
        pending.display(),
        slots.display()
    )))
}

#[cfg(test)]
mod tests;
