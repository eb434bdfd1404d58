//! The two small signed files of a log directory.
//!
//! - `head`: where the log's durable end is (month, offset, last sequence
//!   number and hash). Rewritten after every fsync, in two alternating
//!   slots so that a torn write leaves the previous one intact. Verification
//!   uses it to tell a crash-torn tail (after the head: tolerated) from a
//!   truncation (before it: tampering).
//! - `checkpoint`: written by a purge before it deletes months: the last
//!   purged month and the hash the remaining chain continues from.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::codec::{Dec, Put, PutLe};
use super::jst::Month;
use super::keys::{FileMac, LogKeys, mac_eq};
use super::segment::Hash;

const HEAD_MAGIC: u32 = 0x3144_4841; // "AHD1"
const HEAD_BODY: usize = 4 + 8 + 4 + 8 + 8 + 32;
const HEAD_SLOT: usize = HEAD_BODY + 32;
const CK_MAGIC: &[u8; 8] = b"SVAUDCK1";

/// The durable end of a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    /// Write counter: the slot with the higher one is current.
    pub(crate) generation: u64,
    /// Month of the segment holding the last durable record (0: none yet).
    pub(crate) month: Month,
    /// Sequence number of the last durable record (0: none).
    pub(crate) last_seq: u64,
    /// End offset of the last durable block in that segment.
    pub(crate) end: u64,
    /// Chain hash of the last durable record.
    pub(crate) last_hash: Hash,
}

impl Head {
    pub(crate) fn empty() -> Self {
        Self { generation: 0, month: Month(0), last_seq: 0, end: 0, last_hash: [0; 32] }
    }

    fn encode(&self, keys: &LogKeys) -> Vec<u8> {
        let mut b = Vec::with_capacity(HEAD_SLOT);
        b.put_u32(HEAD_MAGIC);
        b.put_u64(self.generation);
        b.put_u32(self.month.0);
        b.put_u64(self.last_seq);
        b.put_u64(self.end);
        b.extend_from_slice(&self.last_hash);
        let mac = keys.file_mac(FileMac::Head, &b);
        b.extend_from_slice(&mac);
        b
    }

    fn decode(keys: &LogKeys, b: &[u8]) -> Option<Self> {
        let (body, mac) = (b.get(..HEAD_BODY)?, b.get(HEAD_BODY..HEAD_SLOT)?);
        if !mac_eq(&keys.file_mac(FileMac::Head, body), mac) {
            return None;
        }
        let mut d = Dec::new(body);
        if d.u32().ok()? != HEAD_MAGIC {
            return None;
        }
        Some(Self {
            generation: d.u64().ok()?,
            month: Month(d.u32().ok()?),
            last_seq: d.u64().ok()?,
            end: d.u64().ok()?,
            last_hash: d.array().ok()?,
        })
    }
}

/// What reading a head file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HeadState {
    /// No head file.
    Missing,
    /// Neither slot authenticates.
    Invalid,
    /// The newest authentic slot.
    Valid(Head),
}

pub(crate) fn read_head(keys: &LogKeys, path: &Path) -> std::io::Result<HeadState> {
    let b = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HeadState::Missing),
        Err(e) => return Err(e),
    };
    let slots = [b.get(..HEAD_SLOT), b.get(HEAD_SLOT..2 * HEAD_SLOT)];
    let best = slots.iter().flatten().filter_map(|s| Head::decode(keys, s)).max_by_key(|h| h.generation);
    Ok(best.map_or(HeadState::Invalid, HeadState::Valid))
}

/// Writes `head` into the slot its generation selects and syncs it.
pub(crate) fn write_head(keys: &LogKeys, file: &File, head: &Head) -> std::io::Result<()> {
    let slot = (head.generation % 2) as usize;
    file.write_all_at(&head.encode(keys), (slot * HEAD_SLOT) as u64)?;
    file.sync_data()
}

/// Opens (creating if needed) the head file for writing.
pub(crate) fn open_head(path: &Path) -> std::io::Result<File> {
    OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)
}

/// The record of a purge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Checkpoint {
    /// Last month deleted (all months up to it are gone).
    pub(crate) purged_through: Month,
    /// Sequence number of the last deleted record.
    pub(crate) last_seq: u64,
    /// Its chain hash: the first remaining segment's anchor continues from it.
    pub(crate) last_hash: Hash,
    /// When the purge ran (Unix ms).
    pub(crate) purged_at_ms: i64,
}

impl Checkpoint {
    fn encode(&self, keys: &LogKeys) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(CK_MAGIC);
        b.put_u32(self.purged_through.0);
        b.put_u64(self.last_seq);
        b.extend_from_slice(&self.last_hash);
        b.put_i64(self.purged_at_ms);
        let mac = keys.file_mac(FileMac::Checkpoint, &b);
        b.extend_from_slice(&mac);
        b
    }

    fn decode(keys: &LogKeys, b: &[u8]) -> Option<Self> {
        let body = b.get(..b.len().checked_sub(32)?)?;
        if !mac_eq(&keys.file_mac(FileMac::Checkpoint, body), b.get(body.len()..)?) {
            return None;
        }
        let mut d = Dec::new(body);
        if d.bytes(8).ok()? != CK_MAGIC {
            return None;
        }
        let c = Self {
            purged_through: Month(d.u32().ok()?),
            last_seq: d.u64().ok()?,
            last_hash: d.array().ok()?,
            purged_at_ms: d.i64().ok()?,
        };
        d.is_empty().then_some(c)
    }
}

/// `Ok(None)`: no checkpoint; `Err(None)`-like states are `Some(Err(()))`:
/// a file that does not authenticate.
pub(crate) fn read_checkpoint(keys: &LogKeys, path: &Path) -> std::io::Result<Option<Result<Checkpoint, ()>>> {
    match fs::read(path) {
        Ok(b) => Ok(Some(Checkpoint::decode(keys, &b).ok_or(()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces the checkpoint atomically (temporary file, fsync, rename, fsync dir).
pub(crate) fn write_checkpoint(keys: &LogKeys, dir: &Path, c: &Checkpoint) -> std::io::Result<()> {
    let tmp = dir.join("checkpoint.tmp");
    {
        let mut f = File::create(&tmp)?;
        f.write_all(&c.encode(keys))?;
        f.sync_all()?;
    }
    fs::rename(&tmp, dir.join("checkpoint"))?;
    sync_dir(dir)
}

/// Makes a directory's entries (new, renamed or deleted files) durable.
pub(crate) fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}
