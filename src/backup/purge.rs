//! Purging an erased organization from backup copies (docs/backup.md
//! "Shredding and backups"): its wrapped key from keys.db (plus the same
//! tombstone the live keys.db gets), its users, groups and shares from
//! accounts.db (as `Accounts::mark_org_erased` does live), its meta.db;
//! then the manifest is re-MACed.
//!
//! A database is never edited in place: the change is made in a fresh copy
//! with the journal in memory, `secure_delete=ON` and `VACUUM`, so no
//! journal file or free page keeps the removed cells, and the copy replaces
//! the file by rename. A marker file `.purge-<org>` spans the rewrite: when
//! a crash leaves files newer than the manifest, the next run (the erasure
//! stays due until this succeeded) re-MACs them only if the marker is there,
//! so a purge never blesses a file altered by anyone else.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::db::{ACCOUNTS_DB, KEYS_DB};
use super::manifest::{self, Manifest, sync_dir};
use crate::keys::Key32;
use crate::types::OrgId;

/// Purges `org` from the generation in `dir`. Returns whether anything changed.
pub fn generation(dir: &Path, mac_key: &Key32, org: OrgId) -> Result<bool, String> {
    let mut m = Manifest::read(dir)?;
    let marker = dir.join(format!(".purge-{:016x}", org.0));
    let resumed = marker.exists();
    // Data backup generations also list the organization's segment copies.
    let org_prefix = format!("store/orgs/{:016x}/", org.0);
    let meta_dir = dir.join("store").join("orgs").join(format!("{:016x}", org.0));
    let keys = dir.join(KEYS_DB);
    let accounts = dir.join(ACCOUNTS_DB);
    // Data generations also hold the organization's audit log.
    let audit_prefix = format!("audit/org-{}/", org.0);
    let audit_dir = dir.join("audit").join(format!("org-{}", org.0));
    let needed = has_key(&keys, org)? || has_org_rows(&accounts, org)? || meta_dir.exists() || audit_dir.exists();
    let listed = |p: &str| p.starts_with(&org_prefix) || p.starts_with(&audit_prefix);
    if !needed && !resumed && !m.files.iter().any(|f| listed(&f.path)) {
        return Ok(false);
    }
    // A generation that was already damaged is purged all the same, but
    // not re-MACed: it must keep failing `verify`.
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    let intact = resumed || manifest::verify_generation(dir, name, mac_key).0.is_empty();
    if intact {
        manifest::write_synced(&marker, b"").map_err(|e| e.to_string())?;
        sync_dir(dir).map_err(|e| e.to_string())?;
    }
    keys_db(&keys, org)?;
    accounts_db(&accounts, org)?;
    for d in [&meta_dir, &audit_dir] {
        if d.exists() {
            std::fs::remove_dir_all(d).map_err(|e| e.to_string())?;
        }
    }
    if !intact {
        tracing::warn!(generation = name, "purged an erased organization from a damaged backup generation");
        return Ok(true);
    }
    m.files.retain(|f| !listed(&f.path));
    for f in m.files.iter_mut().filter(|f| f.path == KEYS_DB || f.path == ACCOUNTS_DB) {
        let (size, sha) = manifest::hash_file(&dir.join(&f.path)).map_err(|e| e.to_string())?;
        f.size = size;
        f.sha256 = sha;
    }
    m.seal(mac_key);
    m.write(dir).map_err(|e| e.to_string())?;
    std::fs::remove_file(&marker).map_err(|e| e.to_string())?;
    sync_dir(dir).map_err(|e| e.to_string())?;
    Ok(true)
}

fn open_ro(path: &Path) -> Result<Option<Connection>, String> {
    if !path.is_file() {
        return Ok(None);
    }
    Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).map(Some).map_err(|e| e.to_string())
}

fn count(path: &Path, sql: &str, org: OrgId) -> Result<i64, String> {
    match open_ro(path)? {
        Some(c) => c.query_row(sql, [org.0 as i64], |r| r.get(0)).map_err(|e| format!("{}: {e}", path.display())),
        None => Ok(0),
    }
}

fn has_key(keys_db: &Path, org: OrgId) -> Result<bool, String> {
    Ok(count(keys_db, "SELECT count(*) FROM org_keys WHERE org=?1", org)? > 0)
}

fn has_org_rows(accounts_db: &Path, org: OrgId) -> Result<bool, String> {
    let sql = "SELECT (SELECT count(*) FROM users WHERE org_id=?1) + (SELECT count(*) FROM groups WHERE org_id=?1) \
               + (SELECT count(*) FROM shares WHERE org_id=?1) + (SELECT count(*) FROM orgs WHERE id=?1 AND erased=0)";
    Ok(count(accounts_db, sql, org)? > 0)
}

/// Removes `org`'s wrapped key from a copy of keys.db and adds its
/// tombstone. Returns whether the key was there.
pub fn keys_db(path: &Path, org: OrgId) -> Result<bool, String> {
    if !has_key(path, org)? {
        return Ok(false);
    }
    rewrite(path, |c| {
        c.execute("DELETE FROM org_keys WHERE org=?1", [org.0 as i64])?;
        c.execute("INSERT OR IGNORE INTO shredded(org) VALUES(?1)", [org.0 as i64])?;
        Ok(())
    })?;
    Ok(true)
}

/// The erased organization's rows in a copy of accounts.db, removed the way
/// `Accounts::mark_org_erased` removes them live (the org row stays,
/// anonymous and erased, so its id is never reused).
pub fn accounts_db(path: &Path, org: OrgId) -> Result<bool, String> {
    if !has_org_rows(path, org)? {
        return Ok(false);
    }
    rewrite(path, |c| {
        c.pragma_update(None, "foreign_keys", "ON")?;
        let tx = c.unchecked_transaction()?;
        for sql in [
            "DELETE FROM shares WHERE org_id = ?1",
            "DELETE FROM groups WHERE org_id = ?1",
            "DELETE FROM users WHERE org_id = ?1",
            "UPDATE orgs SET erased = 1, name_key = NULL, name = '#' || id WHERE id = ?1",
        ] {
            tx.execute(sql, [org.0 as i64])?;
        }
        // Copies made before schema 3 have no UPN suffix column.
        let has_upn: bool =
            tx.query_row("SELECT count(*) > 0 FROM pragma_table_info('orgs') WHERE name = 'upn_suffix'", [], |r| {
                r.get(0)
            })?;
        if has_upn {
            tx.execute("UPDATE orgs SET upn_suffix = NULL WHERE id = ?1", [org.0 as i64])?;
        }
        tx.commit()
    })?;
    Ok(true)
}

/// Applies `change` to a fresh copy of `path` (journal in memory,
/// `secure_delete`, then `VACUUM`) and renames the copy over it.
fn rewrite(path: &Path, change: impl FnOnce(&Connection) -> rusqlite::Result<()>) -> Result<(), String> {
    let tmp = path.with_extension("db.purge");
    let _ = std::fs::remove_file(&tmp);
    std::fs::copy(path, &tmp).map_err(|e| e.to_string())?;
    let run = || -> rusqlite::Result<()> {
        let c = Connection::open(&tmp)?;
        let _: String = c.query_row("PRAGMA journal_mode=MEMORY", [], |r| r.get(0))?;
        c.pragma_update(None, "secure_delete", "ON")?;
        change(&c)?;
        c.execute_batch("VACUUM")
    };
    run().map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, path).map_err(|e| e.to_string())?;
    if let Some(p) = path.parent() {
        sync_dir(p).map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::db::DbBackups;
    use crate::backup::test_schema;
    use std::time::{Duration, SystemTime};

    fn generation_with_org_1() -> (tempfile::TempDir, DbBackups, std::path::PathBuf) {
        let d = tempfile::tempdir().unwrap();
        Connection::open(d.path().join(ACCOUNTS_DB))
            .unwrap()
            .execute_batch(
                &[
                    test_schema::ACCOUNTS,
                    "INSERT INTO orgs VALUES(1, 'GONE', x'01', 0); INSERT INTO users VALUES(7, 1);",
                ]
                .concat(),
            )
            .unwrap();
        std::fs::create_dir_all(d.path().join("store/orgs")).unwrap();
        Connection::open(d.path().join(KEYS_DB))
            .unwrap()
            .execute_batch(&[test_schema::KEYS, "INSERT INTO org_keys VALUES(1, x'5ec2e75ec2e75ec2e7');"].concat())
            .unwrap();
        let b = DbBackups::new(d.path(), d.path().join("backups/db"), 7, Key32::random());
        let g = b.create(SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_564_800)).unwrap();
        (d, b, g.dir)
    }

    #[test]
    fn a_crash_mid_purge_is_finished_only_with_the_marker() {
        let (_d, b, dir) = generation_with_org_1();
        // Crash after keys.db was rewritten, before the manifest: marker present.
        std::fs::write(dir.join(".purge-0000000000000001"), b"").unwrap();
        assert!(keys_db(&dir.join(KEYS_DB), OrgId(1)).unwrap());
        assert!(generation(&dir, b.mac_key(), OrgId(1)).unwrap());
        let name = dir.file_name().unwrap().to_str().unwrap();
        assert!(manifest::verify_generation(&dir, name, b.mac_key()).0.is_empty());
        assert!(!generation(&dir, b.mac_key(), OrgId(1)).unwrap(), "idempotent");
        assert_eq!(count(&dir.join(ACCOUNTS_DB), "SELECT count(*) FROM users WHERE org_id=?1", OrgId(1)).unwrap(), 0);
        let bytes = std::fs::read(dir.join(KEYS_DB)).unwrap();
        assert!(!bytes.windows(9).any(|w| w == [0x5e, 0xc2, 0xe7, 0x5e, 0xc2, 0xe7, 0x5e, 0xc2, 0xe7]));
    }

    #[test]
    fn a_purge_never_blesses_a_file_altered_by_someone_else() {
        let (_d, b, dir) = generation_with_org_1();
        let name = dir.file_name().unwrap().to_str().unwrap().to_string();
        // Someone else changes keys.db (no marker); then org 2, which the
        // generation does not hold, is purged: nothing is re-MACed.
        Connection::open(dir.join(KEYS_DB)).unwrap().execute("INSERT INTO org_keys VALUES(9, x'00')", []).unwrap();
        assert!(!generation(&dir, b.mac_key(), OrgId(2)).unwrap());
        assert!(!manifest::verify_generation(&dir, &name, b.mac_key()).0.is_empty());
        // Purging org 1 from the damaged generation removes its key but
        // leaves the generation failing verification.
        assert!(generation(&dir, b.mac_key(), OrgId(1)).unwrap());
        assert!(!has_key(&dir.join(KEYS_DB), OrgId(1)).unwrap());
        assert!(!manifest::verify_generation(&dir, &name, b.mac_key()).0.is_empty());
    }
}
