//! The per-organization metadata database (`meta.db`, SQLite in WAL mode).
//!
//! The connection always has one write transaction open. Operations run
//! inside it (each in a savepoint, so it is all-or-nothing). Two kinds of
//! commit end it and open the next one (docs/storage-format.md §8):
//!
//! - the **settle** after every engine pass, before its responses are sent:
//!   `COMMIT` with `synchronous=NORMAL` writes the WAL frames and does not
//!   fsync. A killed process loses none of it (the kernel has the frames).
//! - the **durable commit** (`OrgCore::commit`: flushes and the background
//!   thread every `commit_interval`): the segments are fdatasynced first,
//!   then `COMMIT`, then the WAL is fsynced and its length recorded in the
//!   durable mark (`walmark.rs`). After a power loss, recovery cuts the WAL
//!   back to that mark, so no surviving row points at bytes that were not
//!   durable.
//!
//! Automatic checkpoints are off: a checkpoint would copy settled (not yet
//! durable) pages into the database file, out of reach of that cut. The
//! durable commit checkpoints when the WAL grew large.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use super::error::Result;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS meta(k TEXT PRIMARY KEY, v INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS nodes(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    parent INTEGER,
    kind INTEGER NOT NULL,
    name_key BLOB,
    name_ct BLOB,
    attrs INTEGER NOT NULL,
    created INTEGER NOT NULL,
    accessed INTEGER NOT NULL,
    written INTEGER NOT NULL,
    changed INTEGER NOT NULL,
    content INTEGER,
    sd BLOB,
    eas BLOB,
    mac BLOB,
    meta_mac BLOB);
CREATE UNIQUE INDEX IF NOT EXISTS nodes_dirent ON nodes(parent, name_key);
CREATE TABLE IF NOT EXISTS streams(
    node INTEGER NOT NULL,
    name_key BLOB NOT NULL,
    name_ct BLOB NOT NULL,
    content INTEGER NOT NULL,
    mac BLOB,
    PRIMARY KEY(node, name_key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS contents(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    wrapped_key BLOB NOT NULL,
    size INTEGER NOT NULL,
    alloc INTEGER NOT NULL,
    mac BLOB);
CREATE TABLE IF NOT EXISTS chunks(
    content INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    seg INTEGER NOT NULL,
    off INTEGER NOT NULL,
    plen INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY(content, idx)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS chunks_by_seg ON chunks(seg, off);
CREATE TABLE IF NOT EXISTS segments(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name BLOB NOT NULL,
    len INTEGER NOT NULL,
    live INTEGER NOT NULL);
";

/// Format version stored in `meta` (docs/storage-format.md §7).
/// 2: row MACs (`nodes.mac`, `nodes.meta_mac`, `streams.mac`,
/// `contents.mac`; docs/storage-format.md §4).
pub const FORMAT_VERSION: i64 = 2;

/// Columns version 2 added to a version 1 database.
const V2_COLUMNS: &str = "
ALTER TABLE nodes ADD COLUMN mac BLOB;
ALTER TABLE nodes ADD COLUMN meta_mac BLOB;
ALTER TABLE streams ADD COLUMN mac BLOB;
ALTER TABLE contents ADD COLUMN mac BLOB;
";

/// SQLite page size of new databases. Every commit writes each page it
/// changed to the WAL whole, and a 64 KiB WRITE changes small rows on
/// several pages (its chunk row, the chunk's entry in `chunks_by_seg`, its
/// content's and the segments' rows). With 1 KiB pages instead of the
/// default 4 KiB, in 32 clients' mixed 64 KiB reads and writes
/// (docs/benchmarks.md, stop 22): a third fewer WAL checkpoints, which
/// hold the organization's lock, and each shorter (lock holds over 1 ms:
/// 13-20 ms per 2 s against 37-41); whole-server stalls 6.7 a second
/// against 8.8, p99 lower in 5 of 6 pairs; small-file and sequential
/// workloads unchanged; 512-byte pages no better.
const PAGE_SIZE: i64 = 1024;

/// The connection plus id counters. Always used under the org's db mutex.
pub struct Db {
    pub conn: Connection,
    wal: std::path::PathBuf,
    /// (len, live) of each segment as last written to `segments`, so that
    /// a commit only updates the rows that changed.
    pub persisted: std::collections::HashMap<i64, (u64, u64)>,
    next_node: i64,
    next_content: i64,
    /// The database was version 1 when opened: its rows have no MACs yet
    /// and the organization's store computes them (`OrgCore::open`).
    pub needs_row_macs: bool,
}

impl Db {
    /// Opens (creating if needed) and checks the format version.
    pub fn open(path: &Path) -> Result<Db> {
        let conn = Connection::open(path)?;
        // Only takes effect on a new database (before WAL mode): an older
        // one keeps its 4 KiB pages, which work the same.
        conn.pragma_update(None, "page_size", PAGE_SIZE)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // NORMAL: COMMIT does not fsync; the owner does (see module docs).
        // Checkpoints still fsync the WAL before copying it into the db.
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // Checkpoints only from the durable commit (module docs).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        // A WAL restarted after a checkpoint is truncated at its first
        // commit, so the file always ends with its last frame: the durable
        // mark records that length (walmark.rs).
        conn.pragma_update(None, "journal_size_limit", 0)?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        conn.pragma_update(None, "cache_size", -32_000)?;
        conn.set_prepared_statement_cache_capacity(64);
        conn.execute_batch(SCHEMA)?;
        let version: Option<i64> =
            conn.query_row("SELECT v FROM meta WHERE k='format'", [], |r| r.get(0)).optional()?;
        let mut needs_row_macs = false;
        match version {
            None => {
                conn.execute("INSERT INTO meta(k, v) VALUES('format', ?1)", [FORMAT_VERSION])?;
            }
            Some(FORMAT_VERSION) => {}
            Some(1) => {
                // Upgraded in the same transaction as the MACs are
                // computed (OrgCore::open): a crash leaves version 1.
                needs_row_macs = true;
            }
            Some(v) => {
                tracing::error!(version = v, "meta.db has an unsupported format version");
                return Err(super::StorageError::Database);
            }
        }
        let seq = |t: &str| -> Result<i64> {
            let v: Option<i64> =
                conn.query_row("SELECT seq FROM sqlite_sequence WHERE name=?1", [t], |r| r.get(0)).optional()?;
            Ok(v.unwrap_or(0) + 1)
        };
        let (next_node, next_content) = (seq("nodes")?, seq("contents")?);
        conn.execute_batch("BEGIN IMMEDIATE")?;
        if needs_row_macs {
            conn.execute_batch(V2_COLUMNS)?;
            conn.execute("UPDATE meta SET v=?1 WHERE k='format'", [FORMAT_VERSION])?;
        }
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        Ok(Db { conn, wal: wal.into(), persisted: Default::default(), next_node, next_content, needs_row_macs })
    }

    /// Runs `f` in a savepoint: either all its changes stay or none.
    pub fn atomic<T>(&mut self, f: impl FnOnce(&mut Db) -> Result<T>) -> Result<T> {
        self.conn.prepare_cached("SAVEPOINT op")?.execute([])?;
        match f(self) {
            Ok(v) => {
                self.conn.prepare_cached("RELEASE op")?.execute([])?;
                Ok(v)
            }
            Err(e) => {
                self.conn.prepare_cached("ROLLBACK TO op")?.execute([])?;
                self.conn.prepare_cached("RELEASE op")?.execute([])?;
                Err(e)
            }
        }
    }

    /// Ends the open transaction and starts the next one. The WAL frames
    /// are written, not fsynced (see the module docs).
    pub fn commit(&mut self) -> Result<()> {
        let r = self.conn.prepare_cached("COMMIT")?.execute([]);
        // A failed COMMIT (disk full) may or may not have ended the
        // transaction; make sure the next operation runs inside one again.
        if r.is_err() {
            self.persisted.clear(); // may not have been written
        }
        if self.conn.is_autocommit() {
            self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        }
        r?;
        Ok(())
    }

    /// Copies the whole WAL into the database file (fsyncing both) and
    /// truncates it. Runs between transactions; fails if the copy was not
    /// complete (another process reading an old snapshot).
    pub fn checkpoint(&mut self) -> Result<()> {
        let r = self.conn.prepare_cached("COMMIT")?.execute([]);
        let ck = r.map_err(Into::into).and_then(|_| -> Result<()> {
            let busy: i64 = self.conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| r.get(0))?;
            if busy != 0 {
                return Err(super::StorageError::Database);
            }
            Ok(())
        });
        if self.conn.is_autocommit() {
            self.conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
        }
        ck
    }

    /// The WAL file (`<db>-wal`).
    pub fn wal_path(&self) -> &Path {
        &self.wal
    }

    /// Makes every committed transaction durable (fsync of the WAL).
    pub fn sync_wal(&self) -> Result<()> {
        Ok(super::segment::sync_file(&self.wal)?)
    }

    /// Allocates a node id. Ids come from `sqlite_sequence` so they are not
    /// reused after deletion (the name seal binds the id).
    pub fn alloc_node_id(&mut self) -> i64 {
        let id = self.next_node;
        self.next_node += 1;
        id
    }

    /// Allocates a content id (the chunk MAC and the key wrap bind it).
    pub fn alloc_content_id(&mut self) -> i64 {
        let id = self.next_content;
        self.next_content += 1;
        id
    }

    pub fn meta_get(&self, k: &str) -> Result<Option<i64>> {
        Ok(self.conn.prepare_cached("SELECT v FROM meta WHERE k=?1")?.query_row([k], |r| r.get(0)).optional()?)
    }

    pub fn meta_set(&self, k: &str, v: i64) -> Result<()> {
        self.conn.prepare_cached("INSERT OR REPLACE INTO meta(k, v) VALUES(?1, ?2)")?.execute(params![k, v])?;
        Ok(())
    }
}
