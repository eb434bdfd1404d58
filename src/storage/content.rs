//! `Content`: one data stream (a file's main data or a named stream),
//! read and written at any offset through 64 KiB encrypted chunks.
//!
//! Writes build new chunk plaintexts (read-modify-write for partially
//! covered chunks, always under a fresh IV and sequence number), encrypt
//! them on all cores, append them to the active segment and then publish
//! the index rows. Reads look the rows up, verify each record's tag over
//! the whole record and only then decrypt. A chunk with no row is a hole
//! and reads as zeros; a row whose record is missing, short or fails its
//! tag is an integrity error, never zeros.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use parking_lot::RwLock;
use rayon::prelude::*;
use rusqlite::params;
use zeroize::Zeroizing;

use super::error::{Result, StorageError};
use super::org::{Deltas, OrgCore};
use super::record::{CHUNK, ChunkKeys, Expect, OVERHEAD};
use super::segment::Segment;

/// Largest file size we accept (16 TiB, like NTFS with 4 KiB clusters).
pub const MAX_FILE_SIZE: u64 = 1 << 44;
/// Allocation granularity reported to clients (a cluster).
pub const ALLOC_UNIT: u64 = 4096;
/// A single write is published in pieces of at most this many bytes.
const WRITE_BATCH: u64 = 8 << 20;
/// Below this many chunks, crypto runs on the calling thread.
const PAR_MIN_CHUNKS: usize = 3;
const MAX_IDX: u64 = MAX_FILE_SIZE / CHUNK;

/// Where the index says a chunk's live record is.
pub(crate) struct Loc {
    seg: Option<Arc<Segment>>,
    off: u64,
    plen: u32,
    seq: u64,
}

struct State {
    size: u64,
    alloc: u64,
}

enum Plain<'a> {
    Borrowed(&'a [u8]),
    Owned(Zeroizing<Vec<u8>>),
}

struct Put<'a> {
    idx: u64,
    plain: Plain<'a>,
}

impl Put<'_> {
    fn bytes(&self) -> &[u8] {
        match &self.plain {
            Plain::Borrowed(b) => b,
            Plain::Owned(v) => v,
        }
    }
}

/// An open content stream. Shared: every opener of the same stream gets
/// the same `Arc<Content>`, so size and locking are common.
pub struct Content {
    core: Arc<OrgCore>,
    id: i64,
    keys: ChunkKeys,
    state: RwLock<State>,
    deleted: AtomicBool,
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Content").field("id", &self.id).finish_non_exhaustive()
    }
}

fn alloc_of(plen: u64) -> i64 {
    plen.div_ceil(ALLOC_UNIT) as i64 * ALLOC_UNIT as i64
}

impl Content {
    pub(crate) fn new(core: Arc<OrgCore>, id: i64, keys: ChunkKeys, size: u64, alloc: u64) -> Self {
        Content { core, id, keys, state: RwLock::new(State { size, alloc }), deleted: AtomicBool::new(false) }
    }

    pub(crate) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
    }

    fn check(&self) -> Result<()> {
        if self.deleted.load(Ordering::Acquire) {
            return Err(StorageError::NotFound);
        }
        Ok(())
    }

    /// Logical size in bytes.
    pub fn len(&self) -> u64 {
        self.state.read().size
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes allocated: each stored chunk rounded up to 4 KiB; holes count 0.
    pub fn alloc_size(&self) -> u64 {
        self.state.read().alloc
    }

    /// Makes every acknowledged write (of every stream of the organization)
    /// durable before returning.
    pub fn flush(&self) -> Result<()> {
        self.check()?;
        self.core.commit()
    }

    /// Reads up to `buf.len()` bytes at `off`; returns fewer at end of file
    /// (0 at or past it). Holes read as zeros.
    pub fn read(&self, off: u64, buf: &mut [u8]) -> Result<usize> {
        let st = self.state.read();
        self.check()?;
        if off >= st.size || buf.is_empty() {
            return Ok(0);
        }
        let n = (st.size - off).min(buf.len() as u64) as usize;
        let pieces = split(off, &mut buf[..n]);
        let (first, last) = (off / CHUNK, (off + n as u64 - 1) / CHUNK);
        let rows = if st.alloc == 0 { BTreeMap::new() } else { self.locate(first, last)? };
        let work = |(idx, from, out): (u64, usize, &mut [u8])| -> Result<()> {
            let avail = match rows.get(&idx) {
                None => 0,
                Some(loc) => {
                    let avail = (loc.plen as usize).saturating_sub(from).min(out.len());
                    if avail > 0 {
                        self.read_chunk(idx, loc, from, &mut out[..avail])?;
                    }
                    avail
                }
            };
            out[avail..].fill(0);
            Ok(())
        };
        if pieces.len() >= PAR_MIN_CHUNKS {
            pieces.into_par_iter().try_for_each(work)?;
        } else {
            pieces.into_iter().try_for_each(work)?;
        }
        Ok(n)
    }

    /// Writes `data` at `off`, extending the size if it ends past it.
    pub fn write(&self, off: u64, data: &[u8]) -> Result<()> {
        let end = off.checked_add(data.len() as u64).filter(|e| *e <= MAX_FILE_SIZE);
        if end.is_none() {
            return Err(StorageError::InvalidArgument);
        }
        let mut st = self.state.write();
        self.check()?;
        let (mut pos, mut rest) = (off, data);
        while !rest.is_empty() {
            // Batches end on chunk boundaries so they need no extra RMW.
            let room = (WRITE_BATCH - pos % CHUNK).min(rest.len() as u64) as usize;
            let (now, later) = rest.split_at(room);
            self.write_locked(&mut st, pos, now)?;
            pos += room as u64;
            rest = later;
        }
        Ok(())
    }

    fn write_locked(&self, st: &mut State, off: u64, data: &[u8]) -> Result<()> {
        let end = off + data.len() as u64;
        let (first, last) = (off / CHUNK, (end - 1) / CHUNK);
        // Every row holds ≥ 1 byte, so nothing allocated means no rows.
        let rows = if st.alloc == 0 { BTreeMap::new() } else { self.locate(first, last)? };
        let mut puts = Vec::with_capacity((last - first + 1) as usize);
        for idx in first..=last {
            let cs = idx * CHUNK;
            let lo = (off.max(cs) - cs) as usize;
            let hi = (end.min(cs + CHUNK) - cs) as usize;
            let src = &data[(cs + lo as u64 - off) as usize..(cs + hi as u64 - off) as usize];
            let old = rows.get(&idx);
            let old_plen = old.map_or(0, |l| l.plen as usize);
            if lo == 0 && hi >= old_plen {
                puts.push(Put { idx, plain: Plain::Borrowed(src) });
                continue;
            }
            let mut buf = match old {
                Some(loc) => self.chunk_plain(idx, loc)?,
                None => Zeroizing::new(Vec::with_capacity(CHUNK as usize)),
            };
            buf.resize(old_plen.max(hi), 0);
            buf[lo..hi].copy_from_slice(src);
            puts.push(Put { idx, plain: Plain::Owned(buf) });
        }
        self.apply(st, &rows, puts, &[], end.max(st.size))
    }

    /// Sets the end of file. Shrinking drops the chunks past it and
    /// rewrites the boundary chunk (new IV) so that no stale byte survives
    /// for a later extension to expose; growing just leaves a hole.
    pub fn set_len(&self, n: u64) -> Result<()> {
        if n > MAX_FILE_SIZE {
            return Err(StorageError::InvalidArgument);
        }
        let mut st = self.state.write();
        self.check()?;
        if n >= st.size {
            return if n > st.size { self.apply(&mut st, &BTreeMap::new(), Vec::new(), &[], n) } else { Ok(()) };
        }
        let keep = n.div_ceil(CHUNK);
        let mut puts = Vec::new();
        let mut rows = BTreeMap::new();
        if n % CHUNK != 0 {
            let b = n / CHUNK;
            rows = self.locate(b, b)?;
            let tail = (n % CHUNK) as usize;
            if let Some(loc) = rows.get(&b).filter(|l| l.plen as usize > tail) {
                let mut buf = self.chunk_plain(b, loc)?;
                buf.truncate(tail);
                puts.push(Put { idx: b, plain: Plain::Owned(buf) });
            }
        }
        self.apply(&mut st, &rows, puts, &[(keep, MAX_IDX)], n)
    }

    /// FSCTL_SET_ZERO_DATA (MS-FSCC 2.3.85): zeros `[off, off+len)` within
    /// the file; whole chunks become holes, edges are rewritten. Never
    /// changes the size.
    pub fn zero_range(&self, off: u64, len: u64) -> Result<()> {
        let mut st = self.state.write();
        self.check()?;
        let end = off.saturating_add(len).min(st.size);
        if off >= end {
            return Ok(());
        }
        let (first, last) = (off / CHUNK, (end - 1) / CHUNK);
        let rows = self.locate(first, last)?;
        let (mut puts, mut dels) = (Vec::new(), Vec::new());
        for (&idx, loc) in &rows {
            let cs = idx * CHUNK;
            let lo = (off.max(cs) - cs) as usize;
            let hi = (end.min(cs + CHUNK) - cs) as usize;
            let plen = loc.plen as usize;
            if lo >= plen {
                continue; // already zeros past the stored bytes
            }
            if lo == 0 && hi >= plen {
                dels.push((idx, idx));
                continue;
            }
            let mut buf = self.chunk_plain(idx, loc)?;
            if hi >= plen {
                buf.truncate(lo);
            } else {
                buf[lo..hi].fill(0);
            }
            puts.push(Put { idx, plain: Plain::Owned(buf) });
        }
        let size = st.size;
        self.apply(&mut st, &rows, puts, &dels, size)
    }

    /// FSCTL_QUERY_ALLOCATED_RANGES (MS-FSCC 2.3.48): the parts of
    /// `[off, off+len)` backed by stored chunks, merged, within the size.
    pub fn allocated_ranges(&self, off: u64, len: u64) -> Result<Vec<(u64, u64)>> {
        let st = self.state.read();
        self.check()?;
        let end = off.saturating_add(len).min(st.size);
        if off >= end {
            return Ok(Vec::new());
        }
        let rows = self.locate(off / CHUNK, (end - 1) / CHUNK)?;
        let mut out: Vec<(u64, u64)> = Vec::new();
        for &idx in rows.keys() {
            let (a, b) = ((idx * CHUNK).max(off), ((idx + 1) * CHUNK).min(end));
            match out.last_mut() {
                Some(last) if last.0 + last.1 == a => last.1 += b - a,
                _ => out.push((a, b - a)),
            }
        }
        Ok(out)
    }

    /// Server-side copy (FSCTL_SRV_COPYCHUNK): reads, verifies and decrypts
    /// under this stream's key, re-encrypts under `dst`'s key with fresh
    /// IVs. Returns the bytes copied (fewer if the source ends first).
    pub fn copy_to(&self, src_off: u64, dst: &Content, dst_off: u64, len: u64) -> Result<u64> {
        let size = self.len();
        let n = len.min(size.saturating_sub(src_off));
        if dst_off.checked_add(n).is_none_or(|e| e > MAX_FILE_SIZE) {
            return Err(StorageError::InvalidArgument);
        }
        const STEP: u64 = 1 << 20;
        // Overlapping copy inside one stream: go backwards (memmove).
        let backwards = std::ptr::eq(self, dst) && dst_off > src_off && dst_off < src_off + n;
        let mut buf = Zeroizing::new(vec![0u8; STEP.min(n) as usize]);
        let mut done = 0u64;
        while done < n {
            let k = STEP.min(n - done);
            let at = if backwards { n - done - k } else { done };
            let got = self.read(src_off + at, &mut buf[..k as usize])? as u64;
            dst.write(dst_off + at, &buf[..got as usize])?;
            done += got;
            if got < k {
                break; // the source shrank meanwhile
            }
        }
        Ok(done)
    }

    /// Index rows of chunks `first..=last`, with their segments resolved
    /// under the db lock (so compaction cannot retire one in between).
    fn locate(&self, first: u64, last: u64) -> Result<BTreeMap<u64, Loc>> {
        self.core.read(|db| {
            let mut st = db.conn.prepare_cached(
                "SELECT idx, seg, off, plen, seq FROM chunks WHERE content=?1 AND idx BETWEEN ?2 AND ?3",
            )?;
            let mut rows = st.query(params![self.id, first as i64, last as i64])?;
            let mut out = BTreeMap::new();
            while let Some(r) = rows.next()? {
                let loc = Loc {
                    seg: self.core.segment(r.get(1)?),
                    off: r.get::<_, i64>(2)? as u64,
                    plen: u32::try_from(r.get::<_, i64>(3)?).map_err(|_| StorageError::Integrity)?,
                    seq: r.get::<_, i64>(4)? as u64,
                };
                if u64::from(loc.plen) > CHUNK {
                    return Err(self.integrity(r.get::<_, i64>(0)? as u64));
                }
                out.insert(r.get::<_, i64>(0)? as u64, loc);
            }
            Ok(out)
        })
    }

    fn integrity(&self, idx: u64) -> StorageError {
        tracing::error!(org = self.core.org.0, content = self.id, chunk = idx, "stored chunk failed its integrity check");
        StorageError::Integrity
    }

    /// Verifies the record of chunk `idx` and decrypts `from..from+out.len()`.
    fn read_chunk(&self, idx: u64, loc: &Loc, from: usize, out: &mut [u8]) -> Result<()> {
        let Some(seg) = &loc.seg else { return Err(self.integrity(idx)) };
        let mut rec = vec![0u8; ChunkKeys::record_len(loc.plen as usize)];
        match seg.read_at(&mut rec, loc.off) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Err(self.integrity(idx)),
            Err(e) => return Err(e.into()),
        }
        let expect = Expect { idx, seq: loc.seq, plen: loc.plen };
        self.keys.open_into(&rec, expect, from, out).map_err(|()| self.integrity(idx))
    }

    /// The whole verified plaintext of a stored chunk (for read-modify-write).
    fn chunk_plain(&self, idx: u64, loc: &Loc) -> Result<Zeroizing<Vec<u8>>> {
        let mut buf = Zeroizing::new(Vec::with_capacity(CHUNK as usize));
        buf.resize(loc.plen as usize, 0);
        self.read_chunk(idx, loc, 0, &mut buf)?;
        Ok(buf)
    }

    /// Encrypts and appends `puts`, then publishes them, the deletions in
    /// `dels` (inclusive index ranges) and the new size in one savepoint.
    fn apply(&self, st: &mut State, old: &BTreeMap<u64, Loc>, puts: Vec<Put<'_>>, dels: &[(u64, u64)], size: u64) -> Result<()> {
        let grow: i64 = puts
            .iter()
            .map(|p| alloc_of(p.bytes().len() as u64) - old.get(&p.idx).map_or(0, |l| alloc_of(l.plen.into())))
            .sum();
        self.core.check_quota(grow)?;
        let placed = self.seal_and_append(&puts)?;
        let new_alloc = self.core.mutate(|db| {
            // Checked under the db lock, where deletion sets the flag.
            self.check()?;
            let mut d = Deltas::default();
            let mut alloc = st.alloc as i64;
            for &(a, b) in dels {
                let mut q = db.conn.prepare_cached(
                    "SELECT seg, SUM(plen), COUNT(*), SUM((plen + 4095) / 4096 * 4096) FROM chunks \
                     WHERE content=?1 AND idx BETWEEN ?2 AND ?3 GROUP BY seg",
                )?;
                let mut rows = q.query(params![self.id, a as i64, b as i64])?;
                while let Some(r) = rows.next()? {
                    let (seg, bytes, n, al): (i64, i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
                    d.live.push((seg, -(bytes + n * OVERHEAD as i64)));
                    alloc -= al;
                }
                db.conn
                    .prepare_cached("DELETE FROM chunks WHERE content=?1 AND idx BETWEEN ?2 AND ?3")?
                    .execute(params![self.id, a as i64, b as i64])?;
            }
            for p in &placed {
                // A chunk without a row when we planned cannot have gained
                // one since (we hold the write lock); one with a row may
                // have been moved by compaction, so look it up again.
                alloc += publish_chunk(db, self.id, p, old.contains_key(&p.idx), &mut d)?;
            }
            let n = db
                .conn
                .prepare_cached("UPDATE contents SET size=?2, alloc=?3 WHERE id=?1")?
                .execute(params![self.id, size as i64, alloc])?;
            if n == 0 {
                return Err(StorageError::NotFound); // deleted before this handle was registered
            }
            d.usage = alloc - st.alloc as i64;
            Ok((alloc.max(0) as u64, d))
        })?;
        st.size = size;
        st.alloc = new_alloc;
        Ok(())
    }

    /// Seals every put under a fresh IV and sequence number and writes the
    /// records to one reserved range of the active segment (in parallel for
    /// large writes: crypto and copying into the page cache on all cores).
    fn seal_and_append(&self, puts: &[Put<'_>]) -> Result<Vec<Placed>> {
        if puts.is_empty() {
            return Ok(Vec::new());
        }
        let mut placed = Vec::with_capacity(puts.len());
        let mut rel = 0u64;
        for p in puts {
            let plen = p.bytes().len();
            placed.push(Placed { idx: p.idx, seg: 0, off: rel, plen, seq: self.core.next_seq()? });
            rel += ChunkKeys::record_len(plen) as u64;
        }
        let (seg, base) = self.core.append(rel)?;
        for p in &mut placed {
            p.seg = seg.id;
            p.off += base;
        }
        let job = |(p, at): (&Put<'_>, &Placed)| -> Result<()> {
            let mut rec = vec![0u8; ChunkKeys::record_len(at.plen)];
            self.keys.seal_into(p.idx, at.seq, p.bytes(), &mut rec);
            Ok(seg.write_at(&rec, at.off)?)
        };
        if puts.len() >= PAR_MIN_CHUNKS {
            puts.par_iter().zip(placed.par_iter()).try_for_each(job)?;
        } else {
            puts.iter().zip(placed.iter()).try_for_each(job)?;
        }
        seg.mark_dirty();
        Ok(placed)
    }

    /// Test and tooling access: where chunk `idx`'s record lives.
    #[doc(hidden)]
    pub fn debug_location(&self, idx: u64) -> Result<Option<(std::path::PathBuf, u64, u32, u64)>> {
        let rows = self.locate(idx, idx)?;
        Ok(rows.get(&idx).and_then(|l| Some((l.seg.as_ref()?.path().to_path_buf(), l.off, l.plen, l.seq))))
    }

    /// Content id (bound into every record's MAC).
    #[doc(hidden)]
    pub fn debug_id(&self) -> i64 {
        self.id
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

/// Upserts one chunk row, accounting for the row it replaces. Returns the
/// change of allocated bytes.
fn publish_chunk(db: &super::db::Db, content: i64, p: &Placed, had_row: bool, d: &mut Deltas) -> Result<i64> {
    let mut delta = 0;
    let old: Option<(i64, i64)> = if !had_row {
        None
    } else {
        let mut q = db.conn.prepare_cached("SELECT seg, plen FROM chunks WHERE content=?1 AND idx=?2")?;
        let mut rows = q.query(params![content, p.idx as i64])?;
        match rows.next()? {
            Some(r) => Some((r.get(0)?, r.get(1)?)),
            None => None,
        }
    };
    if let Some((seg, plen)) = old {
        d.live.push((seg, -(plen + OVERHEAD as i64)));
        delta -= alloc_of(plen as u64);
    }
    db.conn
        .prepare_cached("INSERT OR REPLACE INTO chunks(content, idx, seg, off, plen, seq) VALUES(?1, ?2, ?3, ?4, ?5, ?6)")?
        .execute(params![content, p.idx as i64, p.seg, p.off as i64, p.plen as i64, p.seq as i64])?;
    d.live.push((p.seg, (p.plen + OVERHEAD) as i64));
    Ok(delta + alloc_of(p.plen as u64))
}

/// Splits `buf` (file bytes from `off`) into per-chunk pieces:
/// (chunk index, offset within the chunk, bytes).
fn split(off: u64, buf: &mut [u8]) -> Vec<(u64, usize, &mut [u8])> {
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
