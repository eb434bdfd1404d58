//! The encrypted storage engine: every file, stream, name, security
//! descriptor and EA the SMB server stores (format: docs/storage-format.md).
//!
//! - Content is cut into 64 KiB chunks, each an AES-256-CTR + HMAC-SHA256
//!   (encrypt-then-MAC) record under the stream's own random key, with a
//!   fresh random IV per record. Records are appended to per-organization
//!   segment files; a SQLite index (`meta.db`) points at the live ones.
//! - Names exist on disk only sealed, plus a keyed hash of their
//!   case-folded NFC form for case-insensitive lookups.
//! - Organization keys live in `keys.db`, apart from the data: deleting a
//!   key shreds the organization, backups included.
//!
//! Synchronous and `Send + Sync`; the SMB engine calls it from a blocking
//! pool. Timestamps are data: this module never reads the clock for them.

mod census;
mod chunks;
mod compact;
mod content;
mod db;
mod error;
mod keyring;
mod names;
mod namespace;
mod org;
mod par;
mod record;
mod rowmac;
mod segment;
mod segment_rows;
mod store;
mod streams;
mod walmark;

#[cfg(test)]
mod tests;

use std::time::Duration;

use crate::config::StorageConfig;
use crate::types::{FileTime, NodeId};

pub use census::Census;
pub use compact::MigrateReport;
pub use content::{ALLOC_UNIT, Content, MAX_FILE_SIZE};
pub use error::StorageError;
pub use keyring::{ORG_WRAP_LABEL, org_key_ad};
pub use names::MAX_NAME_UTF16;
pub use org::QuotaSource;
pub use record::CHUNK as CHUNK_SIZE;
pub use record::RecordVersion;
pub use store::Store;

/// Record layout helpers for tests and forensic tools (not an API).
#[doc(hidden)]
pub mod debug {
    pub use super::record::{ChunkKeys, Expect, OVERHEAD, bench_keys, record_iv, record_plen, record_version};
    pub use super::segment::SEG_HEADER_LEN;
}

/// Tuning knobs. `Default` is what the server uses.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Longest time changes wait for a background group commit (fdatasync
    /// of the segments, then the SQLite commit). `flush` commits at once.
    pub commit_interval: Duration,
    /// Compact a segment when more than this fraction of it is dead; while
    /// clients write to the organization (within `compact_quiet`), only
    /// once the organization's segments together are past it too
    /// (compact.rs).
    pub compact_dead_ratio: f64,
    /// ... and at least this many bytes are dead (a segment with nothing
    /// live is compacted whatever its size).
    pub compact_min_dead: u64,
    /// How long an organization goes without a client write before
    /// compaction applies `compact_dead_ratio` segment by segment again.
    pub compact_quiet: Duration,
    /// Start a new segment file after this many bytes.
    pub segment_size: u64,
    /// Run the background thread (commit timer, compaction).
    pub background: bool,
    /// Let the background thread compact (tests turn it off to look at
    /// dead records).
    pub background_compaction: bool,
    /// Keep the last partially written chunk of each stream in memory
    /// until it is complete or flushed (content.rs, "write-back tail").
    pub tail_cache: bool,
    /// Record version of new records (docs/storage-format.md §4). Always
    /// version 2 in the server; tests write version 1 to check that older
    /// stores stay readable and migrate.
    pub record_version: RecordVersion,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            commit_interval: Duration::from_secs(2),
            compact_dead_ratio: 0.5,
            compact_min_dead: 4 << 20,
            compact_quiet: Duration::from_secs(2),
            segment_size: 256 << 20,
            background: true,
            background_compaction: true,
            tail_cache: true,
            record_version: RecordVersion::Gcm,
        }
    }
}

impl StoreOptions {
    /// Options from the `[storage]` config section.
    pub fn from_config(c: &StorageConfig) -> Self {
        Self {
            commit_interval: Duration::from_secs(c.commit_interval_secs.max(1)),
            compact_dead_ratio: c.compact_dead_ratio.clamp(0.05, 0.95),
            ..Self::default()
        }
    }
}

/// One organization's namespace and data. Get it from [`Store::org`].
pub struct OrgStore {
    core: std::sync::Arc<org::OrgCore>,
}

impl std::fmt::Debug for OrgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrgStore").field("org", &self.core.org).finish_non_exhaustive()
    }
}

/// File or directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    /// A file (with a main data stream).
    File,
    /// A directory.
    Directory,
}

/// What `stat` and listings return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The node.
    pub id: NodeId,
    /// File or directory.
    pub kind: NodeKind,
    /// `None` for a share root.
    pub parent: Option<NodeId>,
    /// Display name as the client gave it (NFC); "" for a root.
    pub name: String,
    /// Size of the main data stream (0 for directories).
    pub size: u64,
    /// Allocation of the main data stream (stored chunks, 4 KiB units).
    pub alloc_size: u64,
    /// FILE_ATTRIBUTE_* as given (MS-FSCC 2.6).
    pub attrs: u32,
    /// CreationTime.
    pub created: FileTime,
    /// LastAccessTime.
    pub accessed: FileTime,
    /// LastWriteTime.
    pub written: FileTime,
    /// ChangeTime.
    pub changed: FileTime,
    /// Always 1: no hard links.
    pub nlink: u32,
}

/// Fields `set_meta` changes (`None` leaves a field alone).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaUpdate {
    /// New FILE_ATTRIBUTE_* bits.
    pub attrs: Option<u32>,
    /// New CreationTime.
    pub created: Option<FileTime>,
    /// New LastAccessTime.
    pub accessed: Option<FileTime>,
    /// New LastWriteTime.
    pub written: Option<FileTime>,
    /// New ChangeTime.
    pub changed: Option<FileTime>,
}

/// Position in a directory listing: resume with `list_after(dir, Some(&c), n)`.
/// Opaque; `to_bytes`/`from_bytes` let the engine keep it anywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor([u8; keyring::NAME_KEY_LEN]);

impl Cursor {
    /// The cursor as 16 bytes, to keep with a search.
    pub fn to_bytes(&self) -> [u8; 16] {
        self.0
    }

    /// A cursor back from [`Cursor::to_bytes`].
    pub fn from_bytes(b: [u8; 16]) -> Self {
        Cursor(b)
    }
}

/// A directory entry: its display name, metadata and listing position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirEntry {
    /// Display name (NFC).
    pub name: String,
    /// Its metadata.
    pub meta: Meta,
    /// Resume a listing right after this entry.
    pub cursor: Cursor,
}

/// A data stream of a node ("" = the main data stream of a file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamInfo {
    /// Stream name as stored ("" for the main data stream).
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// Allocation (stored chunks, 4 KiB units).
    pub alloc_size: u64,
}
