//! Sparse time index of a segment (`YYYY-MM.idx`): one entry per ~256 KiB
//! region of whole blocks, with the region's time range, so that a query
//! for an hour of a busy month reads a few regions instead of the month.
//!
//! The index only accelerates queries; verification never reads it. Each
//! entry carries a MAC so that a forged entry cannot hide records from a
//! query; an invalid, missing or partial index only makes queries scan more.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::Path;

use super::codec::{Dec, Put, PutLe};
use super::jst::Month;
use super::keys::{FileMac, LogKeys, mac_eq};

/// Close an index region once it holds this many bytes.
pub(crate) const REGION: u64 = 256 * 1024;
const ENTRY_LEN: usize = 5 * 8 + 16;

/// One indexed region `[start, end)` of whole blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) start: u64,
    pub(crate) end: u64,
    pub(crate) first_seq: u64,
    pub(crate) min_ms: i64,
    pub(crate) max_ms: i64,
}

impl Entry {
    fn body(&self, month: Month) -> Vec<u8> {
        let mut b = Vec::with_capacity(ENTRY_LEN);
        b.put_u64(self.start);
        b.put_u64(self.end);
        b.put_u64(self.first_seq);
        b.put_i64(self.min_ms);
        b.put_i64(self.max_ms);
        b.put_u32(month.0);
        b
    }

    fn encode(&self, keys: &LogKeys, month: Month) -> Vec<u8> {
        let mut b = self.body(month);
        let mac = keys.file_mac(FileMac::Index, &b);
        b.truncate(5 * 8);
        b.extend_from_slice(&mac[..16]);
        b
    }
}

/// The region being filled by the writer.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Region {
    pub(crate) start: u64,
    pub(crate) first_seq: u64,
    pub(crate) min_ms: i64,
    pub(crate) max_ms: i64,
    pub(crate) blocks: u32,
}

impl Region {
    pub(crate) fn new(start: u64, first_seq: u64) -> Self {
        Self { start, first_seq, min_ms: i64::MAX, max_ms: i64::MIN, blocks: 0 }
    }

    /// Adds a block; returns the entry to append when the region is full.
    pub(crate) fn add(&mut self, end: u64, last_seq: u64, min_ms: i64, max_ms: i64) -> Option<Entry> {
        self.min_ms = self.min_ms.min(min_ms);
        self.max_ms = self.max_ms.max(max_ms);
        self.blocks += 1;
        if end - self.start < REGION {
            return None;
        }
        let e = Entry { start: self.start, end, first_seq: self.first_seq, min_ms: self.min_ms, max_ms: self.max_ms };
        *self = Region::new(end, last_seq + 1);
        Some(e)
    }
}

/// Appends an entry (not synced: a lost entry only costs a longer scan).
pub(crate) fn append(keys: &LogKeys, path: &Path, month: Month, e: &Entry) -> std::io::Result<()> {
    let mut f = OpenOptions::new().create(true).append(true).open(path)?;
    f.write_all(&e.encode(keys, month))
}

/// The authentic, ordered, non-overlapping entries within `seg_len`.
pub(crate) fn load(keys: &LogKeys, path: &Path, month: Month, seg_len: u64) -> Vec<Entry> {
    let Ok(b) = fs::read(path) else {
        return Vec::new();
    };
    let mut out: Vec<Entry> = Vec::new();
    for chunk in b.chunks_exact(ENTRY_LEN) {
        let mut d = Dec::new(chunk);
        let parsed = (|| {
            Some(Entry {
                start: d.u64().ok()?,
                end: d.u64().ok()?,
                first_seq: d.u64().ok()?,
                min_ms: d.i64().ok()?,
                max_ms: d.i64().ok()?,
            })
        })();
        let Some(e) = parsed else { continue };
        let mac = keys.file_mac(FileMac::Index, &e.body(month));
        let ordered = out.last().is_none_or(|p| p.end <= e.start);
        if mac_eq(&mac[..16], &chunk[5 * 8..]) && ordered && e.start < e.end && e.end <= seg_len {
            out.push(e);
        }
    }
    out
}

/// The last entry's end, or `None` without an index.
pub(crate) fn last_end(keys: &LogKeys, path: &Path, month: Month, seg_len: u64) -> Option<u64> {
    load(keys, path, month, seg_len).last().map(|e| e.end)
}

/// Drops the entries that reach past `end` (after a torn tail was cut off).
pub(crate) fn truncate_after(keys: &LogKeys, path: &Path, month: Month, end: u64) -> std::io::Result<()> {
    let keep = load(keys, path, month, end);
    if !path.exists() {
        return Ok(());
    }
    let mut b = Vec::with_capacity(keep.len() * ENTRY_LEN);
    for e in &keep {
        b.extend_from_slice(&e.encode(keys, month));
    }
    fs::write(path, b)
}
