//! Compaction: reclaims the space of dead records (overwritten, truncated,
//! deleted) by copying a segment's live records to the active segment and
//! deleting the old file once a durable commit no longer references it.
//!
//! Records are copied verbatim (same IV, same ciphertext, same tag): no
//! key is needed, nothing new is encrypted and nothing new is revealed. A
//! row is moved only if it still points at the copied record (same
//! segment, offset and sequence number), so a write racing with compaction
//! simply wins and the copy becomes dead.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use rusqlite::params;

use super::error::Result;
use super::org::{Deltas, OrgCore};
use super::record::{CHUNK, OVERHEAD};
use super::segment::{SEG_HEADER_LEN, Segment};

/// Records moved per batch (≤ 1 MiB of 64 KiB chunks). Small batches keep
/// the db lock and the active segment's inode lock (one `pwrite` per
/// batch) short, so client requests are never queued behind a long copy.
const BATCH: usize = 16;
/// Background compaction rests this many times as long as each batch took:
/// it then uses at most a third of a core while clients work.
const PACE: u32 = 2;

struct LiveRow {
    content: i64,
    idx: i64,
    off: u64,
    len: usize,
    seq: i64,
}

impl OrgCore {
    /// The non-active segment with the most dead bytes, if it passes the
    /// thresholds (`compact_dead_ratio` and `compact_min_dead`) or holds
    /// nothing live at all.
    fn compaction_candidate(&self) -> Option<Arc<Segment>> {
        let active = self.active_id();
        self.segments()
            .into_iter()
            // A segment with reservations in flight may be about to gain
            // rows, however empty it looks now.
            .filter(|s| s.id != active && !s.retired.load(Ordering::Acquire) && s.in_flight() == 0)
            .filter_map(|s| {
                let used = s.end().saturating_sub(SEG_HEADER_LEN);
                let live = s.live.load(Ordering::Acquire);
                let dead = used.saturating_sub(live);
                let worth = live == 0
                    || (dead as f64 > used as f64 * self.opts.compact_dead_ratio && dead >= self.opts.compact_min_dead);
                worth.then_some((dead, s))
            })
            .max_by_key(|(dead, _)| *dead)
            .map(|(_, s)| s)
    }

    /// Compacts one segment. Returns whether there was anything to do; the
    /// caller commits afterwards so the emptied segment can be deleted.
    /// `paced` (the background thread) sleeps between batches so that
    /// compaction never takes the CPU from client requests for long.
    pub fn compact_step(&self, paced: bool) -> Result<bool> {
        let Some(seg) = self.compaction_candidate() else {
            return Ok(false);
        };
        let rows = self.read(|db| {
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
        })?;
        let mut stuck = false;
        for batch in rows.chunks(BATCH) {
            let t = std::time::Instant::now();
            stuck |= self.move_batch(&seg, batch)?;
            if paced {
                std::thread::sleep(t.elapsed() * PACE);
            }
        }
        // Never picked again. The commit deletes it once no row points into
        // it; unreadable records stay where they are (reads of them report
        // Integrity) and keep it alive.
        seg.retired.store(true, Ordering::Release);
        if stuck {
            tracing::warn!(segment = seg.id, "segment keeps unreadable records after compaction");
        }
        Ok(true)
    }

    /// Copies one batch of records (inside the kernel: `copy_range_to`)
    /// and repoints their rows. Returns true if some record could not be
    /// read.
    fn move_batch(&self, seg: &Segment, batch: &[LiveRow]) -> Result<bool> {
        let mut stuck = batch.iter().any(|r| r.len == 0);
        let total: u64 = batch.iter().map(|r| r.len as u64).sum();
        if total == 0 {
            return Ok(stuck);
        }
        let space = self.append(total)?;
        let (dst, base) = (&space.seg, space.off);
        let mut moved = Vec::with_capacity(batch.len());
        let mut at = 0u64;
        for r in batch.iter().filter(|r| r.len > 0) {
            match seg.copy_range_to(r.off, r.len, dst, base + at) {
                Ok(()) => moved.push((r, at)),
                // A short or unreadable source record stays where it is (the
                // bytes reserved for it are dead); anything else (the
                // destination full, say) stops compaction.
                Err(e)
                    if matches!(e.kind(), std::io::ErrorKind::UnexpectedEof)
                        || e.raw_os_error() == Some(rustix::io::Errno::IO.raw_os_error()) =>
                {
                    stuck = true;
                }
                Err(e) => return Err(e.into()),
            }
            at += r.len as u64;
        }
        dst.mark_dirty();
        if moved.is_empty() {
            return Ok(stuck);
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
        Ok(stuck)
    }
}
