//! One organization's open store: its metadata database, segment files,
//! keys, accounting and group commit.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

use super::StoreOptions;
use super::content::Content;
use super::db::Db;
use super::error::{Result, StorageError};
use super::keyring::OrgKeyring;
use super::segment::{self, Reservation, SEG_HEADER_LEN, Segment, Spare};
use super::segment_rows::{new_segment, persist_segments, recover_segments, segment_referenced};
use super::walmark::{self, Mark};
use crate::keys::Key32;
use crate::types::OrgId;

/// Reads an organization's current quota in bytes (`None`: unlimited).
pub type QuotaSource = Arc<dyn Fn() -> Option<u64> + Send + Sync>;

/// `last_write_ms` of an organization no client wrote to since it was
/// opened (it is quiet from the start: compaction after a restart works
/// segment by segment at once).
const NEVER_WRITTEN: u64 = u64::MAX;

/// The durable commit checkpoints the WAL into `meta.db` once it is this
/// long (automatic checkpoints are off: db.rs).
const CHECKPOINT_WAL_BYTES: u64 = 4 << 20;

/// A compacted-away segment file waits this long to become the next new
/// segment (`Segment::reuse`) before it is deleted: an organization that
/// stopped writing does not keep a segment's worth of disk for nothing.
pub(crate) const SPARE_TTL: Duration = Duration::from_secs(60);
/// Most compacted-away segment files an organization keeps for reuse: a
/// large file deleted and written again (an 8 MiB-at-a-time copy of 512
/// MiB spans three segments) reuses two of them (docs/storage-format.md
/// §10). Each holds at most `segment_size` bytes of freed space for at
/// most [`SPARE_TTL`].
pub(crate) const MAX_SPARES: usize = 2;

/// Bits of a sequence number taken by the per-open counter; the rest is
/// the open epoch, bumped durably at every open so that sequence numbers
/// never repeat, even after a crash lost the counter (format doc §4.3).
const SEQ_COUNTER_BITS: u32 = 40;

/// In-memory effects of a committed savepoint, applied only on success.
#[derive(Default)]
pub(crate) struct Deltas {
    /// (segment id, change of live bytes)
    pub live: Vec<(i64, i64)>,
    /// Change of the organization's allocated bytes.
    pub usage: i64,
    /// Content streams that no longer exist (open handles must fail).
    pub deleted: Vec<i64>,
}

pub(crate) struct OrgCore {
    pub org: OrgId,
    pub keys: OrgKeyring,
    pub opts: StoreOptions,
    /// A std mutex, not parking_lot's: under 32 clients writing to one
    /// organization, parking_lot's waiters yielded the CPU (`sched_yield`)
    /// before parking, a sixth of the worker threads' context switches;
    /// std's spins briefly, then sleeps on a futex. Mixed 64 KiB workload,
    /// 10 interleaved pairs: +4 % throughput and 0.2 ms less p99 (medians;
    /// faster in 8 of 10), small-file operations unchanged over 6 pairs
    /// (docs/benchmarks.md, stop 19).
    db: std::sync::Mutex<Db>,
    segs: RwLock<HashMap<i64, Arc<Segment>>>,
    active: Mutex<Arc<Segment>>,
    seg_dir: PathBuf,
    /// Compacted-away segment files kept for the next segments (at most
    /// [`MAX_SPARES`], oldest first).
    spare: Mutex<Vec<Spare>>,
    /// `meta.db-wal`, fsynced by `commit` after it released the db lock.
    wal: PathBuf,
    /// How far the WAL is durable (written by `commit`, under `commit_lock`).
    mark: Mutex<Mark>,
    epoch: u64,
    counter: AtomicU64,
    usage: AtomicU64,
    quota: AtomicU64,
    /// Where the current quota comes from (the accounts store), asked again
    /// before a write is refused so that a raised quota applies at once.
    quota_source: RwLock<Option<QuotaSource>>,
    pub open: Mutex<HashMap<i64, Weak<Content>>>,
    /// Streams holding an unsealed write-back tail.
    tails: Mutex<HashMap<i64, Weak<Content>>>,
    commit_lock: Mutex<Instant>,
    op_gen: AtomicU64,
    /// Operations committed to the WAL (in the kernel: survives a process crash).
    settled_gen: AtomicU64,
    /// Operations durably committed (survives a power loss).
    committed_gen: AtomicU64,
    shredded: AtomicBool,
    /// When `OrgCore` was opened: the clock of `last_write_ms`.
    born: Instant,
    /// Milliseconds after `born` of the last client write (compaction
    /// policy, compact.rs); `NEVER_WRITTEN` until the first one.
    last_write_ms: AtomicU64,
}

impl OrgCore {
    /// Opens an organization's directory and runs crash recovery: segments
    /// are cut back to their committed length, files no committed row knows
    /// are deleted, and the sequence epoch is bumped durably.
    pub fn open(dir: &Path, org: OrgId, org_key: Key32, opts: StoreOptions) -> Result<Arc<OrgCore>> {
        let seg_dir = dir.join("seg");
        create_private_dir(&seg_dir)?;
        let db_path = dir.join("meta.db");
        walmark::recover(dir, &db_path)?;
        let mut db = Db::open(&db_path)?;
        let keys = OrgKeyring::new(org.0, org_key);
        if db.needs_row_macs {
            super::rowmac::backfill(&db, &keys)?;
        }
        let segs = recover_segments(&db, &seg_dir)?;
        let newest = segs.values().max_by_key(|s| s.id).cloned();
        let active = match newest {
            Some(s) if s.end() < opts.segment_size => s,
            _ => new_segment(&mut db, &seg_dir, None)?,
        };
        let mut segs = segs;
        segs.insert(active.id, active.clone());
        // Usage: allocated content plus the (sealed) EA lists, which count
        // against the quota too.
        let usage: i64 = db.conn.query_row(
            "SELECT (SELECT COALESCE(SUM(alloc), 0) FROM contents) + (SELECT COALESCE(SUM(length(eas)), 0) FROM nodes)",
            [],
            |r| r.get(0),
        )?;
        let epoch = db.meta_get("epoch")?.unwrap_or(0) + 1;
        db.meta_set("epoch", epoch)?;
        persist_segments(&mut db, segs.values())?;
        db.commit()?;
        // The new epoch must be durable before any sequence number of it is
        // used; the checkpoint also leaves the WAL empty.
        let mut mark = Mark::open(&db_path)?;
        if db.checkpoint().is_err() {
            db.sync_wal()?;
            if let Some((ident, len)) = walmark::wal_state(db.wal_path())? {
                mark.write(&ident, len)?;
            }
        }
        walmark::record_boot(dir)?;
        let wal = db.wal_path().to_path_buf();
        Ok(Arc::new(OrgCore {
            org,
            keys,
            opts,
            db: std::sync::Mutex::new(db),
            segs: RwLock::new(segs),
            active: Mutex::new(active),
            seg_dir,
            spare: Mutex::new(Vec::new()),
            wal,
            mark: Mutex::new(mark),
            epoch: epoch as u64,
            counter: AtomicU64::new(0),
            usage: AtomicU64::new(usage as u64),
            quota: AtomicU64::new(u64::MAX),
            quota_source: RwLock::new(None),
            open: Mutex::new(HashMap::new()),
            tails: Mutex::new(HashMap::new()),
            commit_lock: Mutex::new(Instant::now()),
            op_gen: AtomicU64::new(0),
            settled_gen: AtomicU64::new(0),
            committed_gen: AtomicU64::new(0),
            shredded: AtomicBool::new(false),
            born: Instant::now(),
            last_write_ms: AtomicU64::new(NEVER_WRITTEN),
        }))
    }

    /// The db lock. A poisoned lock is taken as is, as parking_lot's
    /// (which has no poisoning) was: refusing every later operation of the
    /// organization would not undo what the panicking thread left.
    fn db(&self) -> std::sync::MutexGuard<'_, Db> {
        self.db.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn check_live(&self) -> Result<()> {
        if self.shredded.load(Ordering::Acquire) {
            return Err(StorageError::NotFound);
        }
        Ok(())
    }

    /// Runs a read-only query under the db lock.
    pub fn read<T>(&self, f: impl FnOnce(&Db) -> Result<T>) -> Result<T> {
        self.check_live()?;
        let db = self.db();
        f(&db)
    }

    /// Runs a change atomically (savepoint) and applies its in-memory
    /// effects once it succeeded. It reaches the WAL at the next `settle`
    /// and becomes durable at the next `commit`.
    pub fn mutate<T>(&self, f: impl FnOnce(&mut Db) -> Result<(T, Deltas)>) -> Result<T> {
        self.check_live()?;
        let mut db = self.db();
        let (v, d) = db.atomic(f)?;
        self.apply(d);
        self.bump_op_gen();
        drop(db);
        Ok(v)
    }

    /// Records that a client wrote just now (compaction waits for a quiet
    /// organization before it compacts segments below the whole
    /// organization's dead-space bound; compact.rs).
    pub(super) fn note_write(&self) {
        self.last_write_ms.store(self.born.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// True if no client wrote to this organization for `quiet` (or at
    /// all since it was opened).
    pub(super) fn is_quiet(&self, quiet: Duration) -> bool {
        match self.last_write_ms.load(Ordering::Relaxed) {
            NEVER_WRITTEN => true,
            last => self.born.elapsed().saturating_sub(Duration::from_millis(last)) >= quiet,
        }
    }

    /// Counts a change the next commit must make durable.
    pub(super) fn bump_op_gen(&self) {
        self.op_gen.fetch_add(1, Ordering::AcqRel);
    }

    fn apply(&self, d: Deltas) {
        let segs = self.segs.read();
        for (id, delta) in d.live {
            if let Some(s) = segs.get(&id) {
                add_signed(&s.live, delta);
            }
        }
        add_signed(&self.usage, d.usage);
        if !d.deleted.is_empty() {
            let open = self.open.lock();
            for id in d.deleted {
                if let Some(c) = open.get(&id).and_then(Weak::upgrade) {
                    c.mark_deleted();
                }
            }
        }
    }

    /// The segment with row id `id`, if it exists.
    pub fn segment(&self, id: i64) -> Option<Arc<Segment>> {
        self.segs.read().get(&id).cloned()
    }

    /// Reserves `n` bytes in the active segment, rotating to a new segment
    /// once the active one reached `segment_size`.
    pub fn append(&self, n: u64) -> Result<Reservation> {
        let mut active = self.active.lock();
        if active.end() + n > self.opts.segment_size && active.end() > SEG_HEADER_LEN {
            self.check_live()?;
            *active = self.start_segment()?;
        }
        let off = active.reserve(n);
        Ok(Reservation { seg: active.clone(), off })
    }

    /// Starts a new active segment unless the active one is still empty,
    /// so that the old one can be compacted (`migrate`).
    pub fn roll_active(&self) -> Result<()> {
        self.check_live()?;
        let mut active = self.active.lock();
        if active.end() > SEG_HEADER_LEN {
            *active = self.start_segment()?;
        }
        Ok(())
    }

    /// A new segment (in the spare file if there is one), known to the
    /// store and counted for the next commit; the caller makes it active.
    fn start_segment(&self) -> Result<Arc<Segment>> {
        let mut db = self.db();
        // The most recently kept file: the likeliest to still have its pages.
        let spare = self.spare.lock().pop();
        let seg = db.atomic(|db| new_segment(db, &self.seg_dir, spare))?;
        self.segs.write().insert(seg.id, seg.clone());
        self.bump_op_gen();
        Ok(seg)
    }

    /// Id of the segment new records go to (compaction leaves it alone).
    pub fn active_id(&self) -> i64 {
        self.active.lock().id
    }

    /// All segments (for compaction's choice).
    pub fn segments(&self) -> Vec<Arc<Segment>> {
        self.segs.read().values().cloned().collect()
    }

    /// A sequence number never used before in this organization.
    pub fn next_seq(&self) -> Result<u64> {
        let c = self.counter.fetch_add(1, Ordering::Relaxed);
        if c >= 1 << SEQ_COUNTER_BITS {
            // 2^40 chunk writes without a restart: refuse rather than wrap.
            return Err(StorageError::Io(std::io::ErrorKind::Other));
        }
        Ok((self.epoch << SEQ_COUNTER_BITS) | c)
    }

    pub fn usage(&self) -> u64 {
        self.usage.load(Ordering::Acquire)
    }

    pub fn set_quota(&self, q: Option<u64>) {
        self.quota.store(q.unwrap_or(u64::MAX), Ordering::Release);
    }

    pub fn set_quota_source(&self, source: QuotaSource) {
        *self.quota_source.write() = Some(source);
    }

    /// Fails with `QuotaExceeded` if growing allocation by `grow` bytes
    /// would pass the quota. Before refusing, the quota is read again from
    /// its source (if any): the cached value may predate a raise.
    pub fn check_quota(&self, grow: i64) -> Result<()> {
        if grow <= 0 {
            return Ok(());
        }
        let fits = |q: u64| q == u64::MAX || self.usage().saturating_add(grow as u64) <= q;
        if fits(self.quota.load(Ordering::Acquire)) {
            return Ok(());
        }
        let fresh = self.quota_source.read().as_ref().map(|f| f().unwrap_or(u64::MAX));
        match fresh {
            Some(q) => {
                self.quota.store(q, Ordering::Release);
                if fits(q) { Ok(()) } else { Err(StorageError::QuotaExceeded) }
            }
            None => Err(StorageError::QuotaExceeded),
        }
    }

    pub fn register_tail(&self, id: i64, c: Weak<Content>) {
        self.tails.lock().insert(id, c);
    }

    pub fn unregister_tail(&self, id: i64) {
        self.tails.lock().remove(&id);
    }

    /// Seals the write-back tails: all of them (`None`, for flushes), or
    /// those older than `age` whose stream is not busy (background).
    pub fn writeback_tails(&self, age: Option<Duration>) -> Result<()> {
        let live: Vec<Arc<Content>> = {
            let mut tails = self.tails.lock();
            tails.retain(|_, w| w.strong_count() > 0);
            tails.values().filter_map(Weak::upgrade).collect()
        };
        for c in live {
            let r = match age {
                None => c.flush_tail(),
                Some(age) => c.writeback_if_older(age),
            };
            match r {
                Ok(()) | Err(StorageError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Size and allocation of a stream whose tail is not sealed yet (the
    /// database still has the sizes of its last publication).
    pub fn unsealed_sizes(&self, content: i64) -> Option<(u64, u64)> {
        let w = self.tails.lock().get(&content).cloned()?;
        let c = w.upgrade()?;
        Some((c.len(), c.alloc_size()))
    }

    /// Seals every write-back tail and commits every operation so far to
    /// the WAL, without fsync: from then on a crash of the process loses
    /// none of them (the kernel has the records and the frames). The engine
    /// calls this after each pass, before sending its responses.
    pub fn settle(&self) -> Result<()> {
        self.writeback_tails(None)?;
        // Every operation of the caller's pass is done, and `op_gen` is
        // bumped under the db lock after each: ours are all at or below
        // `mine`.
        let mine = self.op_gen.load(Ordering::Acquire);
        if mine <= self.settled_gen.load(Ordering::Acquire) {
            return Ok(());
        }
        self.check_live()?;
        let mut db = self.db();
        // Group commit: whoever held the lock before us may have committed
        // ours with its own (under 32 clients writing, most passes find
        // their operations committed by the time they get the lock).
        if self.settled_gen.load(Ordering::Acquire) >= mine {
            return Ok(());
        }
        let upto = self.op_gen.load(Ordering::Acquire);
        // Recovery cuts each segment to its committed length: the rows
        // committed now may point up to the current ends.
        persist_segments(&mut db, self.segments().iter())?;
        db.commit()?;
        self.settled_gen.fetch_max(upto, Ordering::AcqRel);
        Ok(())
    }

    /// True if a settle has anything to do: operations since the last one,
    /// or a write-back tail not sealed yet. Atomic loads and one short
    /// lock, so that the per-pass settle skips idle organizations.
    pub fn needs_settle(&self) -> bool {
        self.op_gen.load(Ordering::Acquire) > self.settled_gen.load(Ordering::Acquire) || !self.tails.lock().is_empty()
    }

    /// True once the WAL is long enough for the durable commit to
    /// checkpoint it.
    pub fn wal_is_large(&self) -> bool {
        std::fs::metadata(&self.wal).is_ok_and(|m| m.len() >= CHECKPOINT_WAL_BYTES)
    }

    /// True if changes are waiting for a commit.
    pub fn dirty(&self) -> bool {
        self.op_gen.load(Ordering::Acquire) > self.committed_gen.load(Ordering::Acquire)
    }

    pub fn since_commit(&self) -> Duration {
        self.commit_lock.lock().elapsed()
    }

    /// Makes every change made before the call durable (group commit:
    /// concurrent callers share one fdatasync + WAL fsync). The WAL is
    /// fsynced after the db lock is released, so operations go on while the
    /// disk works; the commit only counts (and compacted segments are only
    /// deleted) once that fsync returned and the durable mark says so
    /// (walmark.rs). When the WAL grew past `CHECKPOINT_WAL_BYTES` it is
    /// checkpointed instead, under the lock: a checkpoint must not copy
    /// frames the mark does not cover.
    pub fn commit(&self) -> Result<()> {
        self.check_live()?;
        let target = self.op_gen.load(Ordering::Acquire);
        let mut last = self.commit_lock.lock();
        if self.committed_gen.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        self.check_live()?;
        // Phase 0 syncs the bulk of the data without blocking operations;
        // phase 1, under the db lock, catches records written meanwhile.
        self.sync_segments()?;
        let mut db = self.db();
        let upto = self.op_gen.load(Ordering::Acquire);
        self.sync_segments()?;
        let all = self.segments();
        let mut retired = Vec::new();
        for s in all.iter().filter(|s| s.retired.load(Ordering::Acquire)) {
            // The live counter says empty, no write is about to publish
            // rows into it, and the index agrees.
            if s.live.load(Ordering::Acquire) == 0 && s.in_flight() == 0 && !segment_referenced(&db, s.id)? {
                retired.push(s.clone());
            }
        }
        persist_segments(&mut db, all.iter())?;
        drop(all);
        for s in &retired {
            db.conn.prepare_cached("DELETE FROM segments WHERE id=?1")?.execute([s.id])?;
            db.persisted.remove(&s.id);
        }
        db.commit()?;
        self.settled_gen.fetch_max(upto, Ordering::AcqRel);
        {
            let mut segs = self.segs.write();
            for s in &retired {
                segs.remove(&s.id);
            }
        }
        let wal = walmark::wal_state(&self.wal)?;
        let mut mark = self.mark.lock();
        match wal {
            Some((_, len)) if len >= CHECKPOINT_WAL_BYTES => {
                // Everything in the WAL is durable-safe now (the segments
                // were synced under this lock); mark it before the copy, so
                // that a power loss during the checkpoint keeps it whole.
                segment::sync_file(&self.wal)?;
                if let Some((ident, len)) = wal {
                    mark.write(&ident, len)?;
                }
                // Incomplete while another connection (a backup's `VACUUM
                // INTO`) reads: then it copied only marked frames, and the
                // next durable commit tries again. The commit stands.
                if let Err(e) = db.checkpoint() {
                    tracing::warn!(org = self.org.0, error = %e, "meta.db checkpoint postponed");
                }
                drop(db);
            }
            _ => {
                drop(db);
                // COMMIT wrote the frames (synchronous=NORMAL, no fsync):
                // make them durable now. Operations that continue meanwhile
                // only append frames past the length we mark.
                if let Some((ident, len)) = wal {
                    segment::sync_file(&self.wal)?;
                    mark.write(&ident, len)?;
                }
            }
        }
        drop(mark);
        self.committed_gen.store(upto, Ordering::Release);
        *last = Instant::now();
        // The commit that forgot these segments is durable: delete them,
        // or keep one for the next new segment. Only a file nobody else
        // holds is kept: a reader that found a record there before
        // compaction moved it still reads it from the old file (unlinked,
        // but open), and must never meet a new record's bytes instead.
        let mut unlinked = false;
        for s in retired {
            let id = s.id;
            let r = match Arc::try_unwrap(s) {
                Ok(seg) => {
                    let mut spare = self.spare.lock();
                    if spare.len() < MAX_SPARES {
                        spare.push(seg.into_spare());
                        continue;
                    }
                    seg.unlink()
                }
                Err(s) => s.unlink(),
            };
            unlinked = true;
            if let Err(e) = r {
                tracing::warn!(segment = id, error = %e, "cannot delete compacted segment");
            }
        }
        if unlinked {
            segment::sync_dir(&self.seg_dir)?;
        }
        Ok(())
    }

    /// Deletes the spare segment files that waited `ttl` unused.
    pub fn expire_spare(&self, ttl: Duration) -> Result<()> {
        let old: Vec<Spare> = {
            let mut spare = self.spare.lock();
            // Every 100 ms tick asks: most find nothing to do.
            if spare.iter().all(|s| s.age() < ttl) {
                return Ok(());
            }
            let (old, keep) = std::mem::take(&mut *spare).into_iter().partition(|s| s.age() >= ttl);
            *spare = keep;
            old
        };
        for s in old {
            s.discard()?;
        }
        segment::sync_dir(&self.seg_dir)?;
        Ok(())
    }

    fn sync_segments(&self) -> Result<()> {
        for s in self.segments() {
            s.sync_if_dirty()?;
        }
        Ok(())
    }

    /// Marks the organization shredded: every later call fails NotFound.
    /// Waits for a running commit so that none touches the files after.
    pub fn mark_shredded(&self) {
        let _c = self.commit_lock.lock();
        let _db = self.db();
        self.shredded.store(true, Ordering::Release);
    }
}

impl Drop for OrgCore {
    fn drop(&mut self) {
        if !self.shredded.load(Ordering::Acquire)
            && self.dirty()
            && let Err(e) = self.commit()
        {
            tracing::error!(org = self.org.0, error = %e, "final storage commit failed");
        }
        // Recovery would delete it too; a clean close leaves no such file.
        for s in std::mem::take(self.spare.get_mut()) {
            if let Err(e) = s.discard() {
                tracing::debug!(org = self.org.0, error = %e, "spare segment file not deleted");
            }
        }
    }
}

fn add_signed(a: &AtomicU64, d: i64) {
    if d >= 0 {
        a.fetch_add(d as u64, Ordering::AcqRel);
    } else {
        let sub = d.unsigned_abs();
        let _ = a.fetch_update(Ordering::AcqRel, Ordering::Acquire, |v| Some(v.saturating_sub(sub)));
    }
}

/// `mkdir -p` with mode 0700 for the directories we create.
pub(crate) fn create_private_dir(path: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(path)?;
    Ok(())
}
