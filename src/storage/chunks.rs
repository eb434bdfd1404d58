//! The chunk layer under `Content`: index lookups, verified record reads,
//! and sealing + appending + publishing new records.
//!
//! Publication order is what makes crashes harmless: records are written
//! to the segment first, index rows go into the open transaction after, and
//! the commit syncs the segments before the transaction (db.rs).

use std::collections::BTreeMap;
use std::io::{IoSlice, IoSliceMut};
use std::sync::Arc;

use rusqlite::params;
use zeroize::Zeroizing;

use super::content::{Content, Sizes};
use super::db::Db;
use super::error::{Result, StorageError};
use super::org::Deltas;
use super::record::{CHUNK, ChunkKeys, Expect, OVERHEAD, RecordVersion, Staged, V2_HEADER, V2_TAG};
use super::segment::{Reservation, Segment};

/// Allocation granularity reported to clients (a cluster).
pub const ALLOC_UNIT: u64 = 4096;

/// Allocation of a stored chunk of `plen` bytes.
pub(super) fn alloc_of(plen: u64) -> i64 {
    plen.div_ceil(ALLOC_UNIT) as i64 * ALLOC_UNIT as i64
}

/// Where the index says a chunk's live record is.
pub(super) struct Loc {
    pub seg: Option<Arc<Segment>>,
    pub off: u64,
    pub plen: u32,
    pub seq: u64,
}

pub(super) type Rows = BTreeMap<u64, Loc>;

/// An index row as stored: the segment by id.
///
/// Why a cached row never needs invalidating except by this stream's own
/// writes (which hold the state lock and update the cache): rows of an
/// existing stream change otherwise only by compaction, which copies
/// records verbatim (same IV, sequence number and tag) and never touches
/// the old copy; the old segment stays in the segment map, readable, until
/// a commit retires it, and from then on the row resolves to no segment and
/// the cache falls back to the index.
#[derive(Clone, Copy)]
pub(super) struct RawLoc {
    seg: i64,
    off: u64,
    plen: u32,
    seq: u64,
}

/// Ranges longer than this many chunks bypass the location cache.
const CACHE_SPAN: u64 = 256;
/// Entries a stream's cache holds before it starts over (4 GiB of chunks).
const CACHE_MAX: usize = 1 << 16;

/// Per-stream cache of chunk locations (`None`: known hole), so that reads
/// and writes of an open file need neither SQLite nor the org's db lock.
#[derive(Default)]
pub(super) struct LocCache {
    map: std::collections::HashMap<u64, Option<RawLoc>>,
}

/// New plaintext for one chunk.
pub(super) struct Put<'a> {
    pub idx: u64,
    pub plain: Plain<'a>,
}

/// Plaintext being written: borrowed, and sealed into a record buffer; or
/// the caller's to overwrite, and sealed where it lies (a WRITE's own
/// data, `Content::write_consuming`). One [`Put`]'s, or a whole write's
/// before [`Plain::pieces`] cuts it at chunk boundaries.
pub(super) enum Plain<'a> {
    Copy(&'a [u8]),
    InPlace(&'a mut [u8]),
}

impl<'a> Plain<'a> {
    pub fn len(&self) -> usize {
        self.bytes().len()
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            Plain::Copy(b) => b,
            Plain::InPlace(b) => b,
        }
    }

    /// Splits at `mid`, as `split_at(_mut)` does.
    pub fn split_at(self, mid: usize) -> (Plain<'a>, Plain<'a>) {
        match self {
            Plain::Copy(b) => {
                let (x, y) = b.split_at(mid);
                (Plain::Copy(x), Plain::Copy(y))
            }
            Plain::InPlace(b) => {
                let (x, y) = b.split_at_mut(mid);
                (Plain::InPlace(x), Plain::InPlace(y))
            }
        }
    }

    /// The data (file bytes from `off`) cut at chunk boundaries, by chunk
    /// index; pieces to overwrite stay so and are sealed where they lie.
    pub fn pieces(self, mut off: u64) -> Vec<(u64, Plain<'a>)> {
        let mut out = Vec::with_capacity(self.len() / CHUNK as usize + 2);
        let mut rest = self;
        while rest.len() > 0 {
            let take = (CHUNK - off % CHUNK).min(rest.len() as u64) as usize;
            let (piece, tail) = rest.split_at(take);
            out.push((off / CHUNK, piece));
            off += take as u64;
            rest = tail;
        }
        out
    }
}

impl<'a> From<&'a [u8]> for Plain<'a> {
    fn from(b: &'a [u8]) -> Self {
        Plain::Copy(b)
    }
}

/// A record written to a segment, waiting to be published.
struct Placed {
    idx: u64,
    seg: i64,
    off: u64,
    plen: usize,
    seq: u64,
}

impl Content {
    /// Index rows of chunks `first..=last`, from the location cache when
    /// it knows every chunk of the range, else from the index (under the
    /// db lock) and then remembered.
    pub(super) fn locate(&self, first: u64, last: u64) -> Result<Rows> {
        if last - first < CACHE_SPAN
            && let Some(rows) = self.cached(first, last)
        {
            return Ok(rows);
        }
        let rows = self.locate_uncached(first, last)?;
        if last - first < CACHE_SPAN {
            self.remember(first, last, &rows);
        }
        Ok(rows)
    }

    /// Rows of `first..=last` if the cache knows all of them (and their
    /// segments still exist).
    fn cached(&self, first: u64, last: u64) -> Option<Rows> {
        let cache = self.locs.lock();
        let mut out = BTreeMap::new();
        for idx in first..=last {
            if let Some(raw) = cache.map.get(&idx)? {
                let raw = *raw;
                // A segment that is gone means the cache is stale: ask the index.
                let seg = self.core.segment(raw.seg)?;
                out.insert(idx, Loc { seg: Some(seg), off: raw.off, plen: raw.plen, seq: raw.seq });
            }
        }
        Some(out)
    }

    /// Caches what the index said (`None` for holes). A row whose segment
    /// is missing is left out, so it is looked up (and reported) each time.
    fn remember(&self, first: u64, last: u64, rows: &Rows) {
        let mut cache = self.locs.lock();
        if cache.map.len() > CACHE_MAX {
            cache.map.clear();
        }
        for idx in first..=last {
            match rows.get(&idx) {
                None => {
                    cache.map.insert(idx, None);
                }
                Some(Loc { seg: Some(seg), off, plen, seq }) => {
                    cache.map.insert(idx, Some(RawLoc { seg: seg.id, off: *off, plen: *plen, seq: *seq }));
                }
                Some(Loc { seg: None, .. }) => {
                    cache.map.remove(&idx);
                }
            }
        }
    }

    /// Records our own publication in the cache: `placed` chunks now live
    /// where they were written, `dels` ranges are holes.
    fn remember_published(&self, placed: &[Placed], dels: &[(u64, u64)]) {
        let mut cache = self.locs.lock();
        for &(a, b) in dels {
            cache.map.retain(|idx, _| *idx < a || *idx > b);
        }
        for p in placed {
            let raw = RawLoc { seg: p.seg, off: p.off, plen: p.plen as u32, seq: p.seq };
            cache.map.insert(p.idx, Some(raw));
        }
    }

    /// Index rows of chunks `first..=last` from the index, with their
    /// segments resolved under the db lock (so compaction cannot retire one
    /// in between).
    pub(super) fn locate_uncached(&self, first: u64, last: u64) -> Result<Rows> {
        self.core.read(|db| {
            let mut st = db.conn.prepare_cached(
                "SELECT idx, seg, off, plen, seq FROM chunks WHERE content=?1 AND idx BETWEEN ?2 AND ?3",
            )?;
            let mut rows = st.query(params![self.id, first as i64, last as i64])?;
            let mut out = BTreeMap::new();
            while let Some(r) = rows.next()? {
                let idx = r.get::<_, i64>(0)? as u64;
                let plen = u32::try_from(r.get::<_, i64>(3)?).map_err(|_| self.integrity(idx))?;
                if u64::from(plen) > CHUNK || plen == 0 {
                    return Err(self.integrity(idx));
                }
                let loc = Loc {
                    seg: self.core.segment(r.get(1)?),
                    off: r.get::<_, i64>(2)? as u64,
                    plen,
                    seq: r.get::<_, i64>(4)? as u64,
                };
                out.insert(idx, loc);
            }
            Ok(out)
        })
    }

    /// `locate`, skipped when nothing is stored (every row holds ≥ 1 byte,
    /// so no allocation means no rows).
    pub(super) fn locate_if(&self, sizes: &Sizes, first: u64, last: u64) -> Result<Rows> {
        if sizes.alloc == 0 { Ok(BTreeMap::new()) } else { self.locate(first, last) }
    }

    pub(super) fn integrity(&self, idx: u64) -> StorageError {
        tracing::error!(
            org = self.core.org.0,
            content = self.id,
            chunk = idx,
            "stored chunk failed its integrity check"
        );
        StorageError::Integrity
    }

    /// Reads chunk `idx`'s record into `rec`; a record cut short by the end
    /// of its segment is an integrity error, like a bad tag.
    fn read_record(&self, seg: &Segment, idx: u64, loc: &Loc, rec: &mut [u8]) -> Result<()> {
        match seg.read_at(rec, loc.off) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(self.integrity(idx)),
            Err(e) => Err(e.into()),
        }
    }

    /// Verifies the record of chunk `idx` and decrypts `from..from+out.len()`.
    pub(super) fn read_chunk(&self, idx: u64, loc: &Loc, from: usize, out: &mut [u8]) -> Result<()> {
        let Some(seg) = &loc.seg else {
            return Err(self.integrity(idx));
        };
        with_record_buf(ChunkKeys::record_len(loc.plen as usize), |rec| {
            self.read_record(seg, idx, loc, rec)?;
            let expect = Expect { idx, seq: loc.seq, plen: loc.plen };
            self.keys.open_into(rec, expect, from, out).map_err(|_| self.integrity(idx))
        })
    }

    /// Reads the record of chunk `idx` and, if it is a whole version 2
    /// record, appends its ciphertext to `out` for [`Self::open_appended`]
    /// to decrypt in place. `None` (nothing appended): take the
    /// [`Self::read_chunk`] path, which also rejects a bad header.
    pub(super) fn append_chunk(&self, idx: u64, loc: &Loc, out: &mut Vec<u8>) -> Result<Option<Staged>> {
        let Some(seg) = &loc.seg else {
            return Err(self.integrity(idx));
        };
        with_record_buf(ChunkKeys::record_len(loc.plen as usize), |rec| {
            self.read_record(seg, idx, loc, rec)?;
            let expect = Expect { idx, seq: loc.seq, plen: loc.plen };
            Ok(ChunkKeys::stage_v2(rec, expect).map(|(staged, ct)| {
                out.extend_from_slice(ct);
                staged
            }))
        })
    }

    /// Decrypts in place a ciphertext [`Self::append_chunk`] appended.
    pub(super) fn open_appended(&self, idx: u64, staged: &Staged, buf: &mut [u8]) -> Result<()> {
        self.keys.open_staged(staged, buf).map_err(|_| self.integrity(idx))
    }

    /// Reads the record of chunk `idx` with its ciphertext landing in `out`
    /// (which holds exactly the chunk) and decrypts it there: no staging
    /// buffer, no copy. A record that is not whole version 2 with the header
    /// the index expects goes through [`Self::read_chunk`], which checks it
    /// fully. On error `out` holds nothing of the record: GCM leaves no
    /// unauthenticated plaintext and the caller wipes the ciphertext.
    pub(super) fn read_direct(&self, idx: u64, loc: &Loc, out: &mut [u8]) -> Result<()> {
        let Some(seg) = &loc.seg else {
            return Err(self.integrity(idx));
        };
        let (mut header, mut tag) = ([0u8; V2_HEADER], [0u8; V2_TAG]);
        let mut parts = [IoSliceMut::new(&mut header), IoSliceMut::new(out), IoSliceMut::new(&mut tag)];
        match seg.read_parts_at(&mut parts, loc.off) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(self.integrity(idx)),
            Err(e) => return Err(e.into()),
        }
        let expect = Expect { idx, seq: loc.seq, plen: loc.plen };
        match ChunkKeys::stage_v2_parts(&header, &tag, expect) {
            Some(staged) => self.keys.open_staged(&staged, out).map_err(|_| self.integrity(idx)),
            None => self.read_chunk(idx, loc, 0, out),
        }
    }

    /// The whole verified plaintext of a stored chunk (for read-modify-write),
    /// with room for a full chunk so merging never reallocates (a
    /// reallocation would leave a plaintext copy behind unzeroized).
    pub(super) fn chunk_plain(&self, idx: u64, loc: Option<&Loc>) -> Result<Zeroizing<Vec<u8>>> {
        let mut buf = Zeroizing::new(Vec::with_capacity(CHUNK as usize));
        if let Some(loc) = loc {
            buf.resize(loc.plen as usize, 0);
            self.read_chunk(idx, loc, 0, &mut buf)?;
        }
        Ok(buf)
    }

    /// Encrypts and appends `puts`, then publishes them, the deletions in
    /// `dels` (inclusive index ranges) and the new size in one savepoint.
    /// `old` must hold the rows of every put's chunk as planned.
    pub(super) fn apply(
        &self,
        sz: &mut Sizes,
        old: &Rows,
        puts: &mut [Put<'_>],
        dels: &[(u64, u64)],
        size: u64,
    ) -> Result<()> {
        let grow: i64 = puts
            .iter()
            .map(|p| alloc_of(p.plain.len() as u64) - old.get(&p.idx).map_or(0, |l| alloc_of(l.plen.into())))
            .sum();
        self.core.check_quota(grow)?;
        self.core.note_write();
        // `_space` lives until the rows are published (segment.rs).
        let (placed, _space) = self.seal_and_append(puts)?;
        let new_alloc = self.core.mutate(|db| {
            // Checked under the db lock, where deletion sets the flag.
            self.check()?;
            let mut d = Deltas::default();
            let mut alloc = sz.alloc as i64;
            for &(a, b) in dels {
                alloc += delete_range(db, self.id, a, b, &mut d)?;
            }
            for p in &placed {
                // A chunk without a row when we planned cannot have gained
                // one since (we hold the write lock); one with a row may
                // have been moved by compaction, so look it up again.
                alloc += publish_chunk(db, self.id, p, old.contains_key(&p.idx), &mut d)?;
            }
            let mac = self.core.keys.content_mac(self.id, size as i64, alloc);
            let n = db
                .conn
                .prepare_cached("UPDATE contents SET size=?2, alloc=?3, mac=?4 WHERE id=?1")?
                .execute(params![self.id, size as i64, alloc, mac.as_slice()])?;
            if n == 0 {
                return Err(StorageError::NotFound); // deleted before this handle was registered
            }
            d.usage = alloc - sz.alloc as i64;
            Ok((alloc.max(0) as u64, d))
        })?;
        self.remember_published(&placed, dels);
        sz.size = size;
        sz.alloc = new_alloc;
        Ok(())
    }

    /// Seals every put under a fresh IV and sequence number and writes the
    /// records to one reserved range of the active segment (in parallel for
    /// large writes: crypto and copying into the page cache on all cores).
    fn seal_and_append(&self, puts: &mut [Put<'_>]) -> Result<(Vec<Placed>, Option<Reservation>)> {
        if puts.is_empty() {
            return Ok((Vec::new(), None));
        }
        let mut placed = Vec::with_capacity(puts.len());
        let mut rel = 0u64;
        for p in puts.iter() {
            let plen = p.plain.len();
            placed.push(Placed { idx: p.idx, seg: 0, off: rel, plen, seq: self.core.next_seq()? });
            rel += ChunkKeys::record_len(plen) as u64;
        }
        let space = self.core.append(rel)?;
        let seg = &space.seg;
        for p in &mut placed {
            p.seg = seg.id;
            p.off += space.off;
        }
        let version = self.core.opts.record_version;
        if version == RecordVersion::Gcm && puts.iter().any(|p| matches!(p.plain, Plain::InPlace(_))) {
            self.seal_in_place(puts, &placed, seg, space.off)?;
        } else {
            // Records are sealed side by side into one buffer and written
            // with one pwrite: parallel pwrites to one segment serialize on
            // its inode lock, and spinning on it cost 7 % of the CPU of a
            // 1 MiB write.
            with_batch_buf(rel as usize, |buf| -> Result<()> {
                let mut recs = Vec::with_capacity(placed.len());
                let mut rest = &mut buf[..];
                for at in &placed {
                    let (rec, tail) = std::mem::take(&mut rest).split_at_mut(ChunkKeys::record_len(at.plen));
                    recs.push(rec);
                    rest = tail;
                }
                let jobs = puts.iter().zip(placed.iter()).zip(recs).collect();
                super::par::map(jobs, |((p, at), rec)| {
                    self.keys.seal_into(version, p.idx, at.seq, p.plain.bytes(), rec)
                });
                Ok(seg.write_at(buf, space.off)?)
            })?;
        }
        seg.mark_dirty();
        Ok((placed, Some(space)))
    }

    /// [`Self::seal_and_append`] for version 2 records when some puts may
    /// be overwritten: those are sealed where they lie, with only their
    /// header and tag apart; the others are sealed into a buffer as usual;
    /// one `pwritev` writes them all in order. Saves copying every byte of
    /// a large WRITE (measured: 10 % of the server's CPU per MiB of an
    /// smbclient put, docs/benchmarks.md).
    fn seal_in_place(&self, puts: &mut [Put<'_>], placed: &[Placed], seg: &Segment, off: u64) -> Result<()> {
        let copied: usize = puts
            .iter()
            .filter(|p| matches!(p.plain, Plain::Copy(_)))
            .map(|p| ChunkKeys::record_len(p.plain.len()))
            .sum();
        let mut ends = vec![[0u8; OVERHEAD]; puts.len()];
        with_batch_buf(copied, |buf| -> Result<()> {
            enum Job<'b> {
                InPlace(&'b mut [u8], &'b mut [u8; V2_HEADER], &'b mut [u8; V2_TAG]),
                Copy(&'b [u8], &'b mut [u8]),
            }
            let mut rest = &mut buf[..];
            let mut jobs = Vec::with_capacity(puts.len());
            for ((p, at), ends) in puts.iter_mut().zip(placed).zip(ends.iter_mut()) {
                let job = match &mut p.plain {
                    Plain::InPlace(data) => {
                        let (h, t) = ends.split_at_mut(V2_HEADER);
                        let h = h.try_into().unwrap_or_else(|_| unreachable!("split at V2_HEADER"));
                        let t = t.try_into().unwrap_or_else(|_| unreachable!("OVERHEAD - V2_HEADER"));
                        Job::InPlace(data, h, t)
                    }
                    Plain::Copy(plain) => {
                        let (rec, tail) = std::mem::take(&mut rest).split_at_mut(ChunkKeys::record_len(plain.len()));
                        rest = tail;
                        Job::Copy(plain, rec)
                    }
                };
                jobs.push((at.idx, at.seq, job));
            }
            let done = super::par::map(jobs, |(idx, seq, job)| match job {
                Job::InPlace(data, h, t) => {
                    self.keys.seal_v2_in_place(idx, seq, data, h, t);
                    Job::InPlace(data, h, t)
                }
                Job::Copy(plain, rec) => {
                    self.keys.seal_into(RecordVersion::Gcm, idx, seq, plain, rec);
                    Job::Copy(plain, rec)
                }
            });
            let mut parts = Vec::with_capacity(done.len() * 3);
            for job in &done {
                match job {
                    Job::InPlace(data, h, t) => {
                        parts.extend([IoSlice::new(&h[..]), IoSlice::new(data), IoSlice::new(&t[..])]);
                    }
                    Job::Copy(_, rec) => parts.push(IoSlice::new(rec)),
                }
            }
            Ok(seg.write_parts_at(&mut parts, off)?)
        })
    }
}

/// Deletes chunk rows `a..=b`, accounting for what they held. Returns the
/// change of allocated bytes.
fn delete_range(db: &Db, content: i64, a: u64, b: u64, d: &mut Deltas) -> Result<i64> {
    let mut alloc = 0;
    let mut q = db.conn.prepare_cached(
        "SELECT seg, SUM(plen), COUNT(*), SUM((plen + 4095) / 4096 * 4096) FROM chunks \
         WHERE content=?1 AND idx BETWEEN ?2 AND ?3 GROUP BY seg",
    )?;
    let mut rows = q.query(params![content, a as i64, b as i64])?;
    while let Some(r) = rows.next()? {
        let (seg, bytes, n, al): (i64, i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
        d.live.push((seg, -(bytes + n * OVERHEAD as i64)));
        alloc -= al;
    }
    db.conn
        .prepare_cached("DELETE FROM chunks WHERE content=?1 AND idx BETWEEN ?2 AND ?3")?
        .execute(params![content, a as i64, b as i64])?;
    Ok(alloc)
}

/// Upserts one chunk row, accounting for the row it replaces. Returns the
/// change of allocated bytes.
fn publish_chunk(db: &Db, content: i64, p: &Placed, had_row: bool, d: &mut Deltas) -> Result<i64> {
    let mut delta = 0;
    if had_row {
        let mut q = db.conn.prepare_cached("SELECT seg, plen FROM chunks WHERE content=?1 AND idx=?2")?;
        let mut rows = q.query(params![content, p.idx as i64])?;
        if let Some(r) = rows.next()? {
            let (seg, plen): (i64, i64) = (r.get(0)?, r.get(1)?);
            d.live.push((seg, -(plen + OVERHEAD as i64)));
            delta -= alloc_of(plen as u64);
        }
    }
    db.conn
        .prepare_cached(
            "INSERT OR REPLACE INTO chunks(content, idx, seg, off, plen, seq) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![content, p.idx as i64, p.seg, p.off as i64, p.plen as i64, p.seq as i64])?;
    d.live.push((p.seg, (p.plen + OVERHEAD) as i64));
    Ok(delta + alloc_of(p.plen as u64))
}

/// Runs `f` on this thread's record buffer, `len` bytes long: records go
/// through it on their way to and from segments, so a chunk read or
/// written costs no allocation (nor zeroing). It only ever holds records,
/// i.e. ciphertext, so it needs no zeroizing.
fn with_record_buf<T>(len: usize, f: impl FnOnce(&mut [u8]) -> T) -> T {
    thread_local! {
        static REC: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    REC.with(|b| match b.try_borrow_mut() {
        Ok(mut b) => {
            if b.len() < len {
                b.resize(len, 0);
            }
            f(&mut b[..len])
        }
        // Not reentered today; a nested call just allocates.
        Err(_) => f(&mut vec![0u8; len]),
    })
}

/// Buffers up to this size are worth keeping several of ...
const BATCH_SMALL: usize = 2 << 20;
/// ... and two of this size, the records of one 8 MiB write batch
/// (smbclient and Windows write 8 MiB at a time): each such write used to
/// allocate and zero-fill 8.6 MiB first, 3.4 % of the server's samples in
/// an smbclient put (docs/benchmarks.md).
const BATCH_LARGE: usize = (8 << 20) + ((8 << 20) / CHUNK as usize + 1) * super::record::OVERHEAD;

/// Buffers of sealed records kept for the next write, with their length:
/// they only ever hold ciphertext, so the next write may see the old bytes
/// (it overwrites them) and need not zero-fill them first; a 1 MiB write
/// would otherwise fault in 256 fresh pages. At most 4 buffers and
/// 2 × 8.6 + 2 × 2 MiB.
static BATCHES: crate::buffers::Pool = crate::buffers::Pool::new(0, 4, 2 * BATCH_LARGE + 2 * BATCH_SMALL, true);

/// Runs `f` on a buffer of `len` bytes from the batch pool.
fn with_batch_buf<T>(len: usize, f: impl FnOnce(&mut [u8]) -> T) -> T {
    let mut b = BATCHES.take(len);
    if b.len() < len {
        b.resize(len, 0);
    }
    let out = f(&mut b[..len]);
    BATCHES.give(b);
    out
}

/// Splits `buf` (file bytes from `off`) into per-chunk pieces:
/// (chunk index, offset within the chunk, bytes).
pub(super) fn split(off: u64, buf: &mut [u8]) -> Vec<(u64, usize, &mut [u8])> {
    let mut out = Vec::with_capacity(buf.len() / CHUNK as usize + 2);
    let (mut pos, mut rest) = (off, buf);
    while !rest.is_empty() {
        let from = (pos % CHUNK) as usize;
        let take = (CHUNK as usize - from).min(rest.len());
        let (piece, tail) = std::mem::take(&mut rest).split_at_mut(take);
        out.push((pos / CHUNK, from, piece));
        pos += take as u64;
        rest = tail;
    }
    out
}
