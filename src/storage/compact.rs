//! Compaction: reclaims the space of dead records (overwritten, truncated,
//! deleted) by copying a segment's live records to the active segment and
//! deleting the old file once a durable commit no longer references it.
//!
//! Version 2 records are copied verbatim (same nonce, same ciphertext,
//! same tag): no key is needed, nothing new is encrypted and nothing new is
//! revealed. Version 1 records (AES-256-CTR + HMAC-SHA256) are verified,
//! decrypted and sealed again as version 2 with the same chunk index and
//! sequence number and a fresh nonce (docs/storage-format.md §12), so
//! compaction moves a store to the current format as it goes, and
//! `migrate` does it for every segment at once. A row is moved only if it
//! still points at the copied record (same segment, offset and sequence
//! number), so a write racing with compaction simply wins and the copy
//! becomes dead.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rusqlite::params;
use zeroize::Zeroizing;

use super::error::Result;
use super::org::{Deltas, OrgCore};
use super::record::{CHUNK, ChunkKeys, Expect, OVERHEAD, RecordVersion, record_version};
use super::segment::{SEG_HEADER_LEN, Segment};

/// Records moved per batch (≤ 1 MiB of 64 KiB chunks). Small batches keep
/// the db lock and the active segment's inode lock (one `pwrite` per
/// batch) short, so client requests are never queued behind a long copy.
const BATCH: usize = 16;
/// Background compaction rests this many times as long as each batch took:
/// it then uses at most a third of a core while clients work.
const PACE: u32 = 2;

/// What one compaction pass over a segment did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Moved {
    /// Version 1 records sealed again as version 2.
    pub rewritten: u64,
    /// Live records left where they were because they could not be read
    /// or did not verify (reads of them report `Integrity`).
    pub unreadable: u64,
}

/// What `OrgStore::migrate` did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MigrateReport {
    /// Segments that held version 1 records and were compacted.
    pub segments: u64,
    /// Version 1 records sealed again as version 2.
    pub rewritten: u64,
    /// Records that failed to verify and were left as they are.
    pub unreadable: u64,
}

struct LiveRow {
    content: i64,
    idx: i64,
    off: u64,
    len: usize,
    seq: i64,
}

impl OrgCore {
    /// The segment compaction should empty next, if any:
    /// - a segment with nothing live, always (it only has to be deleted);
    /// - while clients write to the organization (`quiet` false), once the
    ///   organization's segments together are more than
    ///   `compact_dead_ratio` dead: the non-active segment with the largest
    ///   dead fraction among those past the ratio themselves;
    /// - once it is quiet: the non-active segment with the most dead bytes
    ///   among those past the ratio.
    ///
    /// A candidate also needs `compact_min_dead` dead bytes. Either way no
    /// more than `compact_dead_ratio` of the organization's segment bytes
    /// stay dead for long, beyond what the active segment holds
    /// (docs/storage-format.md §10). Under writes, compaction waits for the
    /// segments it empties to be mostly dead, so it copies less live data
    /// per byte it frees: under random 64 KiB overwrites a segment compacted
    /// at 50 % dead costs one byte copied per byte written, and one picked
    /// at the organization's bound 0.4-0.5 (docs/benchmarks.md, stop 19).
    fn compaction_candidate(&self, quiet: bool) -> Option<Arc<Segment>> {
        let active = self.active_id();
        let ratio = self.opts.compact_dead_ratio;
        let segs: Vec<_> = self
            .segments()
            .into_iter()
            .filter(|s| !s.retired.load(Ordering::Acquire))
            .map(|s| {
                let used = s.end().saturating_sub(SEG_HEADER_LEN);
                let live = s.live.load(Ordering::Acquire);
                (used, live, used.saturating_sub(live), s)
            })
            .collect();
        let (used_all, dead_all) = segs.iter().fold((0u64, 0u64), |(u, d), (used, _, dead, _)| (u + used, d + dead));
        let over_bound = dead_all as f64 > used_all as f64 * ratio;
        // A segment with reservations in flight may be about to gain
        // rows, however empty it looks now.
        let movable = segs.into_iter().filter(|(_, _, _, s)| s.id != active && s.in_flight() == 0);
        let mut best: Option<(f64, Arc<Segment>)> = None;
        for (used, live, dead, s) in movable {
            let frac = if used == 0 { 0.0 } else { dead as f64 / used as f64 };
            let key = if live == 0 {
                f64::INFINITY
            } else if dead < self.opts.compact_min_dead {
                continue;
            } else if quiet && frac > ratio {
                dead as f64
            } else if !quiet && over_bound && frac > ratio {
                frac
            } else {
                continue;
            };
            if best.as_ref().is_none_or(|(k, _)| key > *k) {
                best = Some((key, s));
            }
        }
        best.map(|(_, s)| s)
    }

    /// Compacts one segment. Returns whether there was anything to do; the
    /// caller commits afterwards so the emptied segment can be deleted.
    /// `paced` (the background thread) sleeps between batches so that
    /// compaction never takes the CPU from client requests for long.
    /// Only the background thread looks at whether clients are writing;
    /// an explicit compaction (`compact`, tests) treats the organization as
    /// quiet.
    pub fn compact_step(&self, paced: bool) -> Result<bool> {
        let quiet = !paced || self.is_quiet(self.opts.compact_quiet);
        let Some(seg) = self.compaction_candidate(quiet) else {
            return Ok(false);
        };
        self.compact_segment(&seg, paced, self.opts.record_version == RecordVersion::Gcm)?;
        Ok(true)
    }

    /// Moves every live record out of `seg` and retires it; `upgrade`
    /// seals version 1 records again as version 2.
    fn compact_segment(&self, seg: &Segment, paced: bool, upgrade: bool) -> Result<Moved> {
        let rows = self.live_rows(seg)?;
        tracing::debug!(
            org = self.org.0,
            segment = seg.id,
            bytes = seg.end().saturating_sub(SEG_HEADER_LEN),
            live = seg.live.load(Ordering::Acquire),
            records = rows.len(),
            "compacting a segment"
        );
        let mut done = Moved::default();
        for batch in rows.chunks(BATCH) {
            let t = std::time::Instant::now();
            let m = self.move_batch(seg, batch, upgrade)?;
            done.rewritten += m.rewritten;
            done.unreadable += m.unreadable;
            if paced {
                std::thread::sleep(t.elapsed() * PACE);
            }
        }
        // Never picked again. The commit deletes it once no row points into
        // it; unreadable records stay where they are (reads of them report
        // Integrity) and keep it alive.
        seg.retired.store(true, Ordering::Release);
        // A segment with nothing live moved nothing: without this the
        // commit that deletes it would wait for the next write.
        self.bump_op_gen();
        if done.unreadable > 0 {
            tracing::warn!(
                segment = seg.id,
                records = done.unreadable,
                "segment keeps unreadable records after compaction"
            );
        }
        Ok(done)
    }

    /// The rows pointing into `seg`, in file order.
    fn live_rows(&self, seg: &Segment) -> Result<Vec<LiveRow>> {
        self.read(|db| {
            let mut st =
                db.conn.prepare_cached("SELECT content, idx, off, plen, seq FROM chunks WHERE seg=?1 ORDER BY off")?;
            let rows = st.query_map([seg.id], |r| {
                Ok(LiveRow {
                    content: r.get(0)?,
                    idx: r.get(1)?,
                    off: r.get::<_, i64>(2)? as u64,
                    // A plen outside 1..=CHUNK (a damaged row) reads as
                    // an impossible length, so the record is left alone.
                    len: usize::try_from(r.get::<_, i64>(3)?)
                        .ok()
                        .filter(|p| (1..=CHUNK as usize).contains(p))
                        .map_or(0, |p| p + OVERHEAD),
                    seq: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// Live version 1 records in `seg` (one header read per row).
    pub fn count_v1(&self, seg: &Segment) -> Result<u64> {
        let mut n = 0;
        for r in self.live_rows(seg)? {
            let mut h = [0u8; 8];
            if r.len > 0 && seg.read_at(&mut h, r.off).is_ok() && record_version(&h) == Some(1) {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Rewrites every version 1 record of this organization as version 2
    /// (`smbvault storage migrate`): starts a new active segment, then
    /// compacts every segment that still holds a version 1 record,
    /// however little of it is dead. The caller commits.
    pub fn migrate(&self) -> Result<MigrateReport> {
        self.roll_active()?;
        let active = self.active_id();
        let mut rep = MigrateReport::default();
        for seg in self.segments() {
            // Retired segments too: one that kept a record it could not
            // verify is tried again (and reported again).
            if seg.id == active || seg.in_flight() > 0 {
                continue;
            }
            if self.count_v1(&seg)? == 0 {
                continue;
            }
            let m = self.compact_segment(&seg, false, true)?;
            rep.segments += 1;
            rep.rewritten += m.rewritten;
            rep.unreadable += m.unreadable;
        }
        Ok(rep)
    }

    /// The keys of the contents in `batch` whose records are version 1.
    fn keys_for(&self, ids: impl Iterator<Item = i64>) -> Result<HashMap<i64, Option<ChunkKeys>>> {
        let mut out = HashMap::new();
        for id in ids {
            if out.contains_key(&id) {
                continue;
            }
            let wrapped: Option<Vec<u8>> = self.read(|db| {
                let mut st = db.conn.prepare_cached("SELECT wrapped_key FROM contents WHERE id=?1")?;
                let mut rows = st.query([id])?;
                Ok(match rows.next()? {
                    Some(r) => Some(r.get(0)?),
                    None => None,
                })
            })?;
            // A key that does not unwrap leaves the records in place.
            let keys = wrapped.and_then(|w| self.keys.content_keys(id as u64, &w).ok());
            out.insert(id, keys);
        }
        Ok(out)
    }

    /// Copies one batch of records (inside the kernel: `copy_range_to`;
    /// version 1 records through user space, sealed again) and repoints
    /// their rows.
    fn move_batch(&self, seg: &Segment, batch: &[LiveRow], upgrade: bool) -> Result<Moved> {
        let mut done = Moved { unreadable: batch.iter().filter(|r| r.len == 0).count() as u64, ..Moved::default() };
        let total: u64 = batch.iter().map(|r| r.len as u64).sum();
        if total == 0 {
            return Ok(done);
        }
        let mut old = Vec::new();
        if upgrade {
            for r in batch.iter().filter(|r| r.len > 0) {
                let mut h = [0u8; 8];
                if seg.read_at(&mut h, r.off).is_ok() && record_version(&h) == Some(1) {
                    old.push(r.content);
                }
            }
        }
        let keys = self.keys_for(old.iter().copied())?;
        let space = self.append(total)?;
        let (dst, base) = (&space.seg, space.off);
        let mut moved = Vec::with_capacity(batch.len());
        let mut at = 0u64;
        for r in batch.iter().filter(|r| r.len > 0) {
            let res = if old.contains(&r.content) {
                match self.reseal(seg, r, keys.get(&r.content).and_then(Option::as_ref), dst, base + at) {
                    Ok(true) => {
                        done.rewritten += 1;
                        Ok(())
                    }
                    Ok(false) => Err(std::io::ErrorKind::InvalidData.into()),
                    Err(e) => Err(e),
                }
            } else {
                seg.copy_range_to(r.off, r.len, dst, base + at)
            };
            match res {
                Ok(()) => moved.push((r, at)),
                // A short, unreadable or unverifiable source record stays
                // where it is (the bytes reserved for it are dead);
                // anything else (the destination full, say) stops compaction.
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::InvalidData)
                        || e.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) =>
                {
                    done.unreadable += 1;
                }
                Err(e) => return Err(e.into()),
            }
            at += r.len as u64;
        }
        dst.mark_dirty();
        if moved.is_empty() {
            return Ok(done);
        }
        self.mutate(|db| {
            let mut d = Deltas::default();
            let mut st = db.conn.prepare_cached(
                "UPDATE chunks SET seg=?1, off=?2 WHERE content=?3 AND idx=?4 AND seg=?5 AND off=?6 AND seq=?7",
            )?;
            for (r, at) in &moved {
                let n =
                    st.execute(params![dst.id, (base + at) as i64, r.content, r.idx, seg.id, r.off as i64, r.seq])?;
                if n == 1 {
                    d.live.push((seg.id, -(r.len as i64)));
                    d.live.push((dst.id, r.len as i64));
                }
            }
            Ok(((), d))
        })?;
        Ok(done)
    }

    /// Reads the version 1 record `r`, verifies it against its row and
    /// writes it sealed as version 2 (same index and sequence number, so the
    /// row needs only its new place) at `dst_off`. `Ok(false)`: it did not
    /// verify (or its key did not unwrap) and was not copied.
    fn reseal(
        &self,
        seg: &Segment,
        r: &LiveRow,
        keys: Option<&ChunkKeys>,
        dst: &Segment,
        dst_off: u64,
    ) -> std::io::Result<bool> {
        let Some(keys) = keys else { return Ok(false) };
        let plen = r.len - OVERHEAD;
        let mut rec = vec![0u8; r.len];
        seg.read_at(&mut rec, r.off)?;
        let mut plain = Zeroizing::new(vec![0u8; plen]);
        let expect = Expect { idx: r.idx as u64, seq: r.seq as u64, plen: plen as u32 };
        if keys.open_into(&mut rec, expect, 0, &mut plain).is_err() {
            tracing::error!(
                org = self.org.0,
                content = r.content,
                chunk = r.idx,
                "stored chunk failed its integrity check"
            );
            return Ok(false);
        }
        keys.seal_into(RecordVersion::Gcm, expect.idx, expect.seq, &plain, &mut rec);
        dst.write_at(&rec, dst_off)?;
        Ok(true)
    }
}
