//! `Content`: one data stream (a file's main data or a named stream),
//! read and written at any offset through 64 KiB encrypted chunks
//! (record layer: chunks.rs).
//!
//! Writes build new chunk plaintexts (read-modify-write for partially
//! covered chunks), seal each under a fresh IV and sequence number, append
//! them and publish the index rows. A chunk with no row is a hole and reads
//! as zeros; a row whose record is missing, short or fails its tag is an
//! integrity error, never zeros.
//!
//! Write-back tail: a write inside one chunk that does not cover all of it
//! (an application writing 4 KiB at a time) is merged into an in-memory
//! plaintext copy of that chunk instead of being sealed at once; the chunk
//! is sealed when the stream next writes elsewhere, changes its size, is
//! flushed or closed, or by the background thread after `commit_interval`.
//! Every publication of a stream carries its tail, so what is stored is
//! always the state after some prefix of the stream's writes.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::RwLock;
use zeroize::Zeroizing;

pub use super::chunks::ALLOC_UNIT;
use super::chunks::{Plain, Put, alloc_of};
use super::error::{Result, StorageError};
use super::org::OrgCore;
use super::record::{CHUNK, ChunkKeys};

mod read;
#[cfg(test)]
pub(super) use read::FORCE_DIRECT;

/// Largest file size we accept (16 TiB, like NTFS with 4 KiB clusters).
pub const MAX_FILE_SIZE: u64 = 1 << 44;
/// A single write is published in pieces of at most this many bytes.
const WRITE_BATCH: u64 = 8 << 20;

const MAX_IDX: u64 = MAX_FILE_SIZE / CHUNK;

/// Size and stored allocation, as published in `contents`.
pub(super) struct Sizes {
    pub size: u64,
    pub alloc: u64,
}

/// The write-back chunk (see the module docs).
struct Tail {
    idx: u64,
    buf: Zeroizing<Vec<u8>>,
    /// `plen` of the stored record it replaces (0: none).
    stored_plen: u32,
    since: Instant,
}

struct State {
    sz: Sizes,
    tail: Option<Tail>,
}

/// An open content stream. Shared: every opener of the same stream gets
/// the same `Arc<Content>`, so size, tail and locking are common.
pub struct Content {
    pub(super) core: Arc<OrgCore>,
    pub(super) id: i64,
    pub(super) keys: ChunkKeys,
    state: RwLock<State>,
    pub(super) locs: parking_lot::Mutex<super::chunks::LocCache>,
    deleted: AtomicBool,
    me: Weak<Content>,
}

impl std::fmt::Debug for Content {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Content").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Content {
    pub(crate) fn new(core: Arc<OrgCore>, id: i64, keys: ChunkKeys, size: u64, alloc: u64, me: Weak<Content>) -> Self {
        let state = RwLock::new(State { sz: Sizes { size, alloc }, tail: None });
        let locs = Default::default();
        Content { core, id, keys, state, locs, deleted: AtomicBool::new(false), me }
    }

    pub(crate) fn mark_deleted(&self) {
        self.deleted.store(true, Ordering::Release);
    }

    pub(super) fn check(&self) -> Result<()> {
        if self.deleted.load(Ordering::Acquire) {
            return Err(StorageError::NotFound);
        }
        Ok(())
    }

    /// Logical size in bytes.
    /// The stream's size in bytes.
    pub fn len(&self) -> u64 {
        self.state.read().sz.size
    }

    /// True if the stream holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes allocated: each stored chunk rounded up to 4 KiB; holes count 0.
    pub fn alloc_size(&self) -> u64 {
        let st = self.state.read();
        let adj = st.tail.as_ref().map_or(0, |t| alloc_of(t.buf.len() as u64) - alloc_of(t.stored_plen.into()));
        (st.sz.alloc as i64 + adj).max(0) as u64
    }

    /// Makes every acknowledged write to this stream durable before
    /// returning (and, as a side effect, everything else of the
    /// organization that was already published).
    pub fn flush(&self) -> Result<()> {
        self.flush_tail()?;
        self.core.commit()
    }

    /// Seals the write-back tail, if any (no commit).
    pub(crate) fn flush_tail(&self) -> Result<()> {
        let mut st = self.state.write();
        self.check()?;
        let State { sz, tail } = &mut *st;
        self.publish_tail(sz, tail)
    }

    /// Background write-back: seals the tail if it is older than `age`,
    /// unless the stream is busy.
    pub(crate) fn writeback_if_older(&self, age: Duration) -> Result<()> {
        let Some(mut st) = self.state.try_write() else {
            return Ok(());
        };
        if self.deleted.load(Ordering::Acquire) || st.tail.as_ref().is_none_or(|t| t.since.elapsed() < age) {
            return Ok(());
        }
        let State { sz, tail } = &mut *st;
        self.publish_tail(sz, tail)
    }

    fn publish_tail(&self, sz: &mut Sizes, tail: &mut Option<Tail>) -> Result<()> {
        let Some(t) = tail.as_ref() else {
            return Ok(());
        };
        let rows = self.locate_if(sz, t.idx, t.idx)?;
        let size = sz.size;
        self.apply(sz, &rows, &mut [Put { idx: t.idx, plain: t.buf[..].into() }], &[], size)?;
        *tail = None;
        self.core.unregister_tail(self.id);
        Ok(())
    }

    /// Writes `data` at `off`, extending the size if it ends past it.
    pub fn write(&self, off: u64, data: &[u8]) -> Result<()> {
        self.write_src(off, Plain::Copy(data))
    }

    /// [`Self::write`] of data the caller no longer needs: every piece
    /// stored as it is (not merged with stored bytes) is sealed where it
    /// lies, so afterwards `data` holds ciphertext, partly; what it holds
    /// is unspecified. The WRITE handler passes the request's own buffer,
    /// so the data is not copied (docs/benchmarks.md, stop 22).
    pub fn write_consuming(&self, off: u64, data: &mut [u8]) -> Result<()> {
        self.write_src(off, Plain::InPlace(data))
    }

    fn write_src(&self, off: u64, data: Plain<'_>) -> Result<()> {
        let end = off.checked_add(data.len() as u64).filter(|e| *e <= MAX_FILE_SIZE);
        if end.is_none() {
            return Err(StorageError::InvalidArgument);
        }
        let mut st = self.state.write();
        self.check()?;
        let (mut pos, mut rest) = (off, data);
        while rest.len() > 0 {
            // Batches end on chunk boundaries so they need no extra RMW.
            let room = (WRITE_BATCH - pos % CHUNK).min(rest.len() as u64) as usize;
            let (now, later) = rest.split_at(room);
            self.write_locked(&mut st, pos, now)?;
            pos += room as u64;
            rest = later;
        }
        Ok(())
    }

    fn write_locked(&self, st: &mut State, off: u64, data: Plain<'_>) -> Result<()> {
        let end = off + data.len() as u64;
        let (first, last) = (off / CHUNK, (end - 1) / CHUNK);
        let whole = off.is_multiple_of(CHUNK) && data.len() as u64 == CHUNK;
        if first == last && !whole && self.core.opts.tail_cache {
            return self.write_tail(st, first, (off % CHUNK) as usize, data.bytes());
        }
        let State { sz, tail } = st;
        let mut rows = self.locate_if(sz, first, last)?;
        // A tail outside this write is published with it (prefix order).
        let outside = tail.as_ref().map(|t| t.idx).filter(|i| *i < first || *i > last);
        if let Some(i) = outside {
            rows.extend(self.locate_if(sz, i, i)?);
        }
        // Only the first and last chunk can be partially covered.
        let mut merged: Vec<(u64, Zeroizing<Vec<u8>>)> = Vec::new();
        for idx in BTreeSet::from([first, last]) {
            let cs = idx * CHUNK;
            let (lo, hi) = ((off.max(cs) - cs) as usize, (end.min(cs + CHUNK) - cs) as usize);
            let t = tail.as_ref().filter(|t| t.idx == idx);
            let base_len = t.map_or_else(|| rows.get(&idx).map_or(0, |l| l.plen as usize), |t| t.buf.len());
            if lo == 0 && hi >= base_len {
                continue; // fully replaced
            }
            let mut buf = match t {
                Some(t) => {
                    let mut b = Zeroizing::new(Vec::with_capacity(CHUNK as usize));
                    b.extend_from_slice(&t.buf);
                    b
                }
                None => self.chunk_plain(idx, rows.get(&idx))?,
            };
            buf.resize(base_len.max(hi), 0);
            let at = (cs + lo as u64 - off) as usize;
            buf[lo..hi].copy_from_slice(&data.bytes()[at..at + (hi - lo)]);
            merged.push((idx, buf));
        }
        let mut puts: Vec<Put<'_>> = data
            .pieces(off)
            .into_iter()
            .map(|(idx, plain)| match merged.iter().find(|(i, _)| *i == idx) {
                Some((_, b)) => Put { idx, plain: b[..].into() },
                None => Put { idx, plain },
            })
            .collect();
        if let Some(t) = tail.as_ref().filter(|t| Some(t.idx) == outside) {
            puts.push(Put { idx: t.idx, plain: t.buf[..].into() });
        }
        let size = end.max(sz.size);
        self.apply(sz, &rows, &mut puts, &[], size)?;
        drop(puts);
        if tail.take().is_some() {
            self.core.unregister_tail(self.id);
        }
        Ok(())
    }

    /// A write inside chunk `idx` that does not replace all of it: merge it
    /// into the tail (reading the stored chunk first if the tail is
    /// another chunk).
    fn write_tail(&self, st: &mut State, idx: u64, lo: usize, data: &[u8]) -> Result<()> {
        let hi = lo + data.len();
        let end = idx * CHUNK + hi as u64;
        let State { sz, tail } = st;
        if let Some(t) = tail.as_mut().filter(|t| t.idx == idx) {
            let old = t.buf.len();
            self.core.check_quota(alloc_of(old.max(hi) as u64) - alloc_of(old as u64))?;
            if old < hi {
                t.buf.resize(hi, 0);
            }
            t.buf[lo..hi].copy_from_slice(data);
            sz.size = sz.size.max(end);
            return Ok(());
        }
        let rows = self.locate_if(sz, idx, idx)?;
        let stored = rows.get(&idx);
        let stored_plen = stored.map_or(0, |l| l.plen);
        // Bytes the write replaces entirely need not be read.
        let mut buf = self.chunk_plain(idx, stored.filter(|l| lo > 0 || hi < l.plen as usize))?;
        self.core.check_quota(alloc_of(hi.max(buf.len()) as u64) - alloc_of(stored_plen.into()))?;
        if buf.len() < hi {
            buf.resize(hi, 0);
        }
        buf[lo..hi].copy_from_slice(data);
        // The older tail goes first: the stored state stays a prefix.
        self.publish_tail(sz, tail)?;
        *tail = Some(Tail { idx, buf, stored_plen, since: Instant::now() });
        self.core.register_tail(self.id, self.me.clone());
        sz.size = sz.size.max(end);
        Ok(())
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
        let State { sz, tail } = &mut *st;
        self.publish_tail(sz, tail)?;
        if n >= sz.size {
            return if n > sz.size { self.apply(sz, &Default::default(), &mut [], &[], n) } else { Ok(()) };
        }
        let keep = n.div_ceil(CHUNK);
        let (b, cut) = (n / CHUNK, (n % CHUNK) as usize);
        let rows = if cut != 0 { self.locate_if(sz, b, b)? } else { Default::default() };
        let boundary = match rows.get(&b).filter(|l| l.plen as usize > cut) {
            Some(loc) => {
                let mut buf = self.chunk_plain(b, Some(loc))?;
                buf.truncate(cut);
                Some(buf)
            }
            None => None,
        };
        let mut puts: Vec<Put<'_>> = boundary.iter().map(|buf| Put { idx: b, plain: buf[..].into() }).collect();
        self.apply(sz, &rows, &mut puts, &[(keep, MAX_IDX)], n)
    }

    /// FSCTL_SET_ZERO_DATA (MS-FSCC 2.3.85): zeros `[off, off+len)` within
    /// the file; whole chunks become holes, edges are rewritten. Never
    /// changes the size.
    pub fn zero_range(&self, off: u64, len: u64) -> Result<()> {
        let mut st = self.state.write();
        self.check()?;
        let State { sz, tail } = &mut *st;
        self.publish_tail(sz, tail)?;
        let end = off.saturating_add(len).min(sz.size);
        if off >= end {
            return Ok(());
        }
        let (first, last) = (off / CHUNK, (end - 1) / CHUNK);
        let rows = self.locate_if(sz, first, last)?;
        let (mut bufs, mut dels) = (Vec::new(), Vec::new());
        for (&idx, loc) in &rows {
            let cs = idx * CHUNK;
            let (lo, hi) = ((off.max(cs) - cs) as usize, (end.min(cs + CHUNK) - cs) as usize);
            let plen = loc.plen as usize;
            if lo >= plen {
                continue; // already zeros past the stored bytes
            }
            if lo == 0 && hi >= plen {
                dels.push((idx, idx));
                continue;
            }
            let mut buf = self.chunk_plain(idx, Some(loc))?;
            if hi >= plen {
                buf.truncate(lo);
            } else {
                buf[lo..hi].fill(0);
            }
            bufs.push((idx, buf));
        }
        let mut puts: Vec<Put<'_>> = bufs.iter().map(|(idx, b)| Put { idx: *idx, plain: b[..].into() }).collect();
        let size = sz.size;
        self.apply(sz, &rows, &mut puts, &dels, size)
    }

    /// FSCTL_QUERY_ALLOCATED_RANGES (MS-FSCC 2.3.48): the parts of
    /// `[off, off+len)` backed by stored chunks, merged, within the size.
    pub fn allocated_ranges(&self, off: u64, len: u64) -> Result<Vec<(u64, u64)>> {
        let st = self.state.read();
        self.check()?;
        let end = off.saturating_add(len).min(st.sz.size);
        if off >= end {
            return Ok(Vec::new());
        }
        let (first, last) = (off / CHUNK, (end - 1) / CHUNK);
        let mut idxs: BTreeSet<u64> = self.locate_if(&st.sz, first, last)?.into_keys().collect();
        idxs.extend(st.tail.as_ref().map(|t| t.idx).filter(|i| (first..=last).contains(i)));
        let mut out: Vec<(u64, u64)> = Vec::new();
        for idx in idxs {
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

    /// Test and tooling access: where chunk `idx`'s record lives
    /// (segment path, offset, plaintext length, sequence number).
    #[doc(hidden)]
    pub fn debug_location(&self, idx: u64) -> Result<Option<(std::path::PathBuf, u64, u32, u64)>> {
        let rows = self.locate_uncached(idx, idx)?;
        Ok(rows.get(&idx).and_then(|l| Some((l.seg.as_ref()?.path().to_path_buf(), l.off, l.plen, l.seq))))
    }

    /// Content id (bound into every record's MAC).
    #[doc(hidden)]
    pub fn debug_id(&self) -> i64 {
        self.id
    }
}

impl Drop for Content {
    /// Closing the last handle seals the tail (errors can only be logged).
    fn drop(&mut self) {
        let st = self.state.get_mut();
        if st.tail.is_none() || self.deleted.load(Ordering::Acquire) {
            return;
        }
        let mut tail = st.tail.take();
        let mut sz = Sizes { size: st.sz.size, alloc: st.sz.alloc };
        match self.publish_tail(&mut sz, &mut tail) {
            Ok(()) | Err(StorageError::NotFound) => {}
            Err(e) => {
                tracing::error!(org = self.core.org.0, content = self.id, error = %e, "sealing a stream on close failed")
            }
        }
    }
}
