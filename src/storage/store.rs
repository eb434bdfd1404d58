//! `Store`: the data directory, the organization keys (`keys.db`), the
//! cache of open organizations, shredding and the background thread
//! (periodic group commit and compaction).
//!
//! ```text
//! <data_dir>/keys.db            org keys wrapped under MK (secure_delete, WAL)
//! <data_dir>/orgs/<org hex>/meta.db   names (sealed), tree, index, sizes, times
//! <data_dir>/orgs/<org hex>/seg/<random>.seg   chunk records
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};
use rusqlite::{Connection, OptionalExtension, params};

use super::error::{Result, StorageError};
use super::keyring::{external_subkey, org_key_ad, org_wrap_key};
use super::org::{OrgCore, create_private_dir};
use super::{OrgStore, StoreOptions};
use crate::keys::{Key32, KeyError, MasterKey, OrgKeys, SealKey};
use crate::types::OrgId;

const KEYS_SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS org_keys(org INTEGER PRIMARY KEY, wrapped BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS shredded(org INTEGER PRIMARY KEY);
";

/// How often the background thread wakes up.
const TICK: Duration = Duration::from_millis(100);

type StopSignal = Arc<(Mutex<bool>, Condvar)>;

/// The storage engine for every organization on this server.
pub struct Store {
    dir: PathBuf,
    keys: Mutex<Connection>,
    org_wrap: SealKey,
    orgs: Mutex<HashMap<OrgId, Arc<OrgStore>>>,
    opts: StoreOptions,
    stop: StopSignal,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dir", &self.dir).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens the store in `data_dir`, creating it on first use. Each
    /// organization's crash recovery runs when it is first opened.
    pub fn open(data_dir: &Path, master: &MasterKey, opts: StoreOptions) -> Result<Arc<Store>> {
        create_private_dir(&data_dir.join("orgs"))?;
        let conn = Connection::open(data_dir.join("keys.db"))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        // Deleted key rows are overwritten with zeros, not just unlinked.
        conn.pragma_update(None, "secure_delete", "ON")?;
        conn.execute_batch(KEYS_SCHEMA)?;
        let store = Arc::new(Store {
            dir: data_dir.to_path_buf(),
            keys: Mutex::new(conn),
            org_wrap: org_wrap_key(master),
            orgs: Mutex::new(HashMap::new()),
            opts: opts.clone(),
            stop: Arc::new((Mutex::new(false), Condvar::new())),
            worker: Mutex::new(None),
        });
        if opts.background {
            let weak = Arc::downgrade(&store);
            let stop = store.stop.clone();
            let h = std::thread::Builder::new().name("storage-bg".into()).spawn(move || background(weak, stop))?;
            *store.worker.lock() = Some(h);
        }
        Ok(store)
    }

    fn org_dir(&self, org: OrgId) -> PathBuf {
        self.dir.join("orgs").join(format!("{:016x}", org.0))
    }

    /// Creates an organization with a fresh random key, wrapped under the
    /// master key in keys.db. `Err(Exists)` if it exists or was shredded.
    pub fn create_org(&self, org: OrgId) -> Result<()> {
        let ok = Key32::random();
        let wrapped = self.org_wrap.wrap_key(&org_key_ad(org.0), &ok);
        let keys = self.keys.lock();
        let gone: Option<i64> =
            keys.query_row("SELECT org FROM shredded WHERE org=?1", [org.0 as i64], |r| r.get(0)).optional()?;
        if gone.is_some() {
            return Err(StorageError::Exists);
        }
        match keys.execute("INSERT INTO org_keys(org, wrapped) VALUES(?1, ?2)", params![org.0 as i64, wrapped]) {
            Ok(_) => Ok(()),
            Err(e) if super::error::is_unique_violation(&e) => Err(StorageError::Exists),
            Err(e) => Err(e.into()),
        }
    }

    fn org_key(&self, org: OrgId) -> Result<Key32> {
        let wrapped: Option<Vec<u8>> = self
            .keys
            .lock()
            .query_row("SELECT wrapped FROM org_keys WHERE org=?1", [org.0 as i64], |r| r.get(0))
            .optional()?;
        let wrapped = wrapped.ok_or(StorageError::NotFound)?;
        Ok(self.org_wrap.unwrap_key(&org_key_ad(org.0), &wrapped)?)
    }

    /// The organization's store (opened, and recovered, on first use).
    pub fn org(&self, org: OrgId) -> Result<Arc<OrgStore>> {
        let mut orgs = self.orgs.lock();
        if let Some(o) = orgs.get(&org) {
            return Ok(o.clone());
        }
        let key = self.org_key(org)?;
        let core = OrgCore::open(&self.org_dir(org), org, key, self.opts.clone())?;
        let o = Arc::new(OrgStore { core });
        orgs.insert(org, o.clone());
        Ok(o)
    }

    /// Opens a copy of an organization's directory (`meta.db`, `seg/`: a
    /// fetched backup generation) with the organization's current key,
    /// apart from the live organization. Crash recovery runs on the copy.
    pub fn open_copy(&self, org: OrgId, dir: &Path) -> Result<OrgStore> {
        let key = self.org_key(org)?;
        let opts = StoreOptions { background: false, tail_cache: false, ..self.opts.clone() };
        Ok(OrgStore { core: OrgCore::open(dir, org, key, opts)? })
    }

    /// Crypto-shreds an organization: deletes its key from keys.db and
    /// scrubs it from the WAL and free pages (so no copy of the wrapped key
    /// is left in keys.db's files), then deletes its data directory. Data
    /// backups of the organization become unreadable without touching them.
    pub fn shred_org(&self, org: OrgId) -> Result<()> {
        if let Some(o) = self.orgs.lock().remove(&org) {
            o.core.mark_shredded();
        }
        {
            let keys = self.keys.lock();
            let wrapped: Option<Vec<u8>> =
                keys.query_row("SELECT wrapped FROM org_keys WHERE org=?1", [org.0 as i64], |r| r.get(0)).optional()?;
            keys.execute("DELETE FROM org_keys WHERE org=?1", [org.0 as i64])?;
            keys.execute("INSERT OR IGNORE INTO shredded(org) VALUES(?1)", [org.0 as i64])?;
            // secure_delete zeroes the page in the database file, but WAL
            // frames still hold old copies until checkpointed and truncated,
            // and a checkpoint cannot overwrite pages another process's
            // open read transaction may still need. So the result of each
            // checkpoint is checked, and the files are searched for the
            // wrapped key: until both are clean the shredding is not done
            // (the caller retries later; the row is gone already).
            checkpoint_truncate(&keys)?;
            keys.execute_batch("VACUUM")?;
            checkpoint_truncate(&keys)?;
            if let Some(w) = wrapped {
                for suffix in ["", "-wal", "-shm"] {
                    let p = self.dir.join(format!("keys.db{suffix}"));
                    if std::fs::read(&p).is_ok_and(|b| b.windows(w.len()).any(|x| x == w.as_slice())) {
                        tracing::error!(file = %p.display(), "the shredded key is still in the file; retrying later");
                        return Err(StorageError::Io(std::io::ErrorKind::ResourceBusy));
                    }
                }
            }
        }
        let dir = self.org_dir(org);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        super::segment::sync_dir(&self.dir.join("orgs"))?;
        Ok(())
    }

    /// Commits every organization's operations so far to its WAL, sealing
    /// write-back tails first, without fsync: what the engine does after
    /// each pass, before it answers (a killed process loses none of it;
    /// docs/storage-format.md §8). Returns the first error; every
    /// organization is tried.
    pub fn settle(&self) -> Result<()> {
        // Every engine pass calls this: only the organizations with
        // something to settle are collected (none, most of the time, and
        // then nothing is allocated), not every open organization.
        let orgs: Vec<_> = self.orgs.lock().values().filter(|o| o.core.needs_settle()).cloned().collect();
        let mut first = Ok(());
        for o in orgs {
            if let Err(e) = o.core.settle() {
                tracing::error!(org = o.core.org.0, error = %e, "storage settle failed");
                if first.is_ok() {
                    first = Err(e);
                }
            }
        }
        first
    }

    /// Makes everything acknowledged so far durable (graceful shutdown).
    pub fn flush_all(&self) -> Result<()> {
        let orgs: Vec<_> = self.orgs.lock().values().cloned().collect();
        for o in orgs {
            o.flush()?;
        }
        Ok(())
    }

    /// Stops the background thread and flushes everything.
    pub fn close(&self) -> Result<()> {
        self.stop_worker();
        self.flush_all()
    }

    /// Organizations that have a directory here (maintenance tools).
    pub fn org_ids(&self) -> Result<Vec<OrgId>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(self.dir.join("orgs"))? {
            let name = e?.file_name();
            let id = name.to_str().filter(|n| n.len() == 16).and_then(|n| u64::from_str_radix(n, 16).ok());
            out.extend(id.map(OrgId));
        }
        out.sort_by_key(|o| o.0);
        Ok(out)
    }

    /// Flushes and runs compaction until nothing qualifies (tests,
    /// maintenance tools).
    pub fn compact_now(&self) -> Result<()> {
        let orgs: Vec<_> = self.orgs.lock().values().cloned().collect();
        for o in orgs {
            o.compact()?;
        }
        Ok(())
    }

    fn stop_worker(&self) {
        *self.stop.0.lock() = true;
        self.stop.1.notify_all();
        if let Some(h) = self.worker.lock().take() {
            // The worker may itself drop the last `Arc<Store>`.
            if h.thread().id() != std::thread::current().id() {
                let _ = h.join();
            }
        }
    }

    fn tick(&self) {
        let orgs: Vec<_> = self.orgs.lock().values().cloned().collect();
        for o in orgs {
            let core = &o.core;
            if let Err(e) = core.writeback_tails(Some(self.opts.commit_interval)) {
                tracing::error!(org = core.org.0, error = %e, "background write-back failed");
            }
            // Also early once the WAL grew large, so that the checkpoint
            // (which only the durable commit runs, org.rs) keeps it small.
            if core.dirty()
                && (core.since_commit() >= self.opts.commit_interval || core.wal_is_large())
                && let Err(e) = core.commit()
            {
                tracing::error!(org = core.org.0, error = %e, "background commit failed");
            }
            if let Err(e) = core.expire_spare(super::org::SPARE_TTL) {
                tracing::warn!(org = core.org.0, error = %e, "cannot delete the spare segment file");
            }
            if !self.opts.background_compaction {
                continue;
            }
            match core.compact_step(true) {
                Ok(true) => {
                    if let Err(e) = core.commit() {
                        tracing::error!(org = core.org.0, error = %e, "commit after compaction failed");
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::error!(org = core.org.0, error = %e, "compaction failed"),
            }
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        self.stop_worker();
        if let Err(e) = self.flush_all() {
            tracing::error!(error = %e, "flush on storage shutdown failed");
        }
    }
}

fn background(store: Weak<Store>, stop: StopSignal) {
    loop {
        {
            let mut stopped = stop.0.lock();
            if !*stopped {
                stop.1.wait_for(&mut stopped, TICK);
            }
            if *stopped {
                return;
            }
        }
        let Some(s) = store.upgrade() else { return };
        s.tick();
    }
}

impl OrgKeys for Store {
    fn org_subkey(&self, org: OrgId, label: &str) -> std::result::Result<Key32, KeyError> {
        if let Some(o) = self.orgs.lock().get(&org) {
            return Ok(o.core.keys.external(label));
        }
        let ok = self
            .org_key(org)
            .map_err(|_| KeyError::Unlock("the organization has no key (unknown or shredded)".into()))?;
        Ok(external_subkey(&ok, org.0, label))
    }
}

impl OrgStore {
    /// Flushes, then compacts this organization until no segment
    /// qualifies, then commits (maintenance tools and tests; the
    /// background thread compacts on its own).
    pub fn compact(&self) -> Result<()> {
        self.core.writeback_tails(None)?;
        while self.core.compact_step(false)? {}
        self.core.commit()
    }

    /// Rewrites every version 1 record of this organization as version 2
    /// and commits (`smbvault storage migrate`; docs/storage-format.md §12).
    pub fn migrate(&self) -> Result<super::compact::MigrateReport> {
        self.core.writeback_tails(None)?;
        let rep = self.core.migrate()?;
        self.core.commit()?;
        Ok(rep)
    }

    /// Live version 1 records of this organization (0 once migrated).
    pub fn v1_records(&self) -> Result<u64> {
        self.core.writeback_tails(None)?;
        let mut n = 0;
        for seg in self.core.segments() {
            n += self.core.count_v1(&seg)?;
        }
        Ok(n)
    }

    /// Commits this organization's operations so far to the WAL (no
    /// fsync): they survive a crash of the process (`Store::settle`).
    pub fn settle(&self) -> Result<()> {
        self.core.settle()
    }

    /// Makes every acknowledged change of this organization durable.
    pub fn flush(&self) -> Result<()> {
        self.core.writeback_tails(None)?;
        self.core.commit()
    }
}

/// `PRAGMA wal_checkpoint(TRUNCATE)` until it reports success (not busy,
/// WAL emptied), a dozen times over about five seconds. Busy means another
/// connection (a backup, a CLI command, a `sqlite3` shell) holds a read
/// transaction: the WAL, and pages of the database it still reads, keep
/// old contents. That is reported, never ignored.
fn checkpoint_truncate(conn: &Connection) -> Result<()> {
    // A TRUNCATE checkpoint waits for readers through the busy handler:
    // wait in short steps instead of the connection's 5 s default.
    conn.busy_timeout(Duration::from_millis(250))?;
    let mut done = false;
    for attempt in 0..12 {
        let (busy, log): (i64, i64) =
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| Ok((r.get(0)?, r.get(1)?)))?;
        if busy == 0 && log <= 0 {
            done = true;
            break;
        }
        tracing::debug!(attempt, busy, log, "keys.db checkpoint incomplete; retrying");
        std::thread::sleep(Duration::from_millis(200));
    }
    conn.busy_timeout(Duration::from_secs(5))?;
    if done {
        return Ok(());
    }
    tracing::error!(
        "keys.db is held open by another process (a backup, a CLI command, a sqlite3 shell?): \
         its WAL cannot be truncated, so a shredded key may survive there; retrying later"
    );
    Err(StorageError::Io(std::io::ErrorKind::ResourceBusy))
}
