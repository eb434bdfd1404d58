//! Finding where a segment's valid chain ends: used by the writer when it
//! (re)opens a log and by purge to read the last hash of a month.
//!
//! A block is *good* when it parses, continues the chain (sequence number
//! and previous hash) and every record's hash checks out. The scan stops at
//! the first block that is not good; what follows is a torn tail when it
//! lies after the head's durable end (see `signed.rs`), tampering otherwise.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use super::codec::Dec;
use super::index::Region;
use super::keys::{LogKeys, mac_eq};
use super::segment::{ANCHOR_LEN, Anchor, Hash, SegReader, TRL_LEN, check_block, parse_block};

/// Where the good part of a segment ends.
#[derive(Debug, Clone)]
pub(crate) struct Scan {
    /// End offset of the last good block (the anchor's end if none).
    pub(crate) end: u64,
    /// Sequence number the next record gets.
    pub(crate) next_seq: u64,
    /// Hash of the last good record (the anchor hash if none).
    pub(crate) last_hash: Hash,
    /// Index region from `region_start` to `end`.
    pub(crate) region: Region,
    /// Offset of the first bad block, if the file goes on past `end`.
    pub(crate) bad_at: Option<u64>,
    /// File length at the time of the scan.
    pub(crate) len: u64,
}

/// A starting point for the scan: a block boundary with the chain state there.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Start {
    pub(crate) offset: u64,
    pub(crate) next_seq: u64,
    pub(crate) last_hash: Hash,
}

/// Reads the trailer of the block ending at `end` (last seq and hash).
fn trailer_before(path: &Path, end: u64) -> Option<Start> {
    if end < ANCHOR_LEN + TRL_LEN as u64 {
        return None;
    }
    let mut f = File::open(path).ok()?;
    f.seek(SeekFrom::Start(end - TRL_LEN as u64)).ok()?;
    let mut t = [0u8; TRL_LEN];
    f.read_exact(&mut t).ok()?;
    let mut d = Dec::new(&t);
    let last_seq = d.u64().ok()?;
    let last_hash = d.array().ok()?;
    let total = d.u32().ok()?;
    let magic = d.u32().ok()?;
    (magic == 0x454b_4241 && u64::from(total) <= end - ANCHOR_LEN).then_some(Start {
        offset: end,
        next_seq: last_seq + 1,
        last_hash,
    })
}

/// Scans `path` (whose anchor is `anchor`) from the earliest of the hints,
/// falling back to the anchor when a hint does not fit the file. The index
/// region starts at `region_start` (blocks before it are not added).
pub(crate) fn scan(
    keys: &LogKeys,
    path: &Path,
    anchor: &Anchor,
    head_hint: Option<Start>,
    region_start: u64,
) -> std::io::Result<Scan> {
    let from_anchor = Start { offset: ANCHOR_LEN, next_seq: anchor.first_seq, last_hash: anchor.hash };
    let mut starts = Vec::new();
    let region_hint = (region_start > ANCHOR_LEN).then(|| trailer_before(path, region_start)).flatten();
    let hint = match (head_hint, region_hint) {
        (Some(h), Some(r)) => Some(if h.offset <= r.offset { h } else { r }),
        (h, r) => h.or(r),
    };
    starts.extend(hint);
    starts.push(from_anchor);
    let mut last = None;
    for st in starts {
        let s = scan_from(keys, path, st, region_start)?;
        // A hint is only trusted if the block right after it continues it.
        if s.bad_at != Some(st.offset) || st.offset == ANCHOR_LEN {
            return Ok(s);
        }
        last = Some(s);
    }
    last.ok_or_else(|| std::io::Error::other("no scan start"))
}

fn scan_from(keys: &LogKeys, path: &Path, st: Start, region_start: u64) -> std::io::Result<Scan> {
    let (mut r, _) = SegReader::open(path)?;
    let len = r.len();
    let rs = region_start.max(st.offset);
    let mut out = Scan {
        end: st.offset,
        next_seq: st.next_seq,
        last_hash: st.last_hash,
        region: Region::new(rs, st.next_seq),
        bad_at: None,
        len,
    };
    if st.offset > len {
        out.bad_at = Some(st.offset);
        return Ok(out);
    }
    r.seek(st.offset)?;
    while let Some(next) = r.next_block()? {
        let good = match next {
            Ok((_, bytes)) => good_block(keys, bytes, out.next_seq, &out.last_hash),
            Err(_) => None,
        };
        let Some((last_seq, last_hash, min, max)) = good else {
            out.bad_at = Some(out.end);
            return Ok(out);
        };
        let end = r.pos();
        if out.end >= rs {
            // A full region was indexed when it was written (or its entry was
            // lost, which only widens a query's scan): keep the open one.
            let _ = out.region.add(end, last_seq, min, max);
        } else if end > rs {
            out.region = Region::new(end, last_seq + 1);
        }
        out.end = end;
        out.next_seq = last_seq + 1;
        out.last_hash = last_hash;
    }
    Ok(out)
}

/// Checks one block against the chain; returns its last seq and hash and its
/// time range when it is good.
fn good_block(keys: &LogKeys, bytes: &[u8], next_seq: u64, prev: &Hash) -> Option<(u64, Hash, i64, i64)> {
    let b = parse_block(bytes).ok()?;
    if b.hdr.first_seq != next_seq || !mac_eq(&b.hdr.prev_hash, prev) {
        return None;
    }
    if !check_block(keys, &b).ok()?.is_empty() {
        return None;
    }
    let recs = b.records().ok()?;
    let last = recs.last()?;
    let count = u64::from(b.hdr.count);
    if b.last_seq != next_seq + count - 1 || !mac_eq(&last.hash, &b.last_hash) {
        return None;
    }
    Some((b.last_seq, b.last_hash, b.hdr.min_ms, b.hdr.max_ms))
}
