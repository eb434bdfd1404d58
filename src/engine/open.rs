//! Open handles (MS-SMB2 3.3.1.10 Open). Each lives in its connection's
//! table under its volatile FileId.

use std::sync::Arc;

use crate::engine::fsa::FileKey;
use crate::engine::services::Access;
use crate::storage::{Content, Cursor, OrgStore};
use crate::types::{NodeId, OrgId};
use crate::wire::create::FileId;

/// What an open refers to.
pub enum OpenKind {
    /// A named pipe on IPC$ (DCE/RPC endpoint).
    Pipe(Box<dyn crate::rpc::Pipe>),
    /// A file, directory or named stream on a disk share.
    File(Box<FileOpen>),
}

/// An open handle.
pub struct Open {
    /// FileId returned to the client.
    pub file_id: FileId,
    /// Session that owns it.
    pub session_id: u64,
    /// Tree it was opened on.
    pub tree_id: u32,
    /// Access granted at open (MS-SMB2 3.3.1.10 Open.GrantedAccess).
    pub granted_access: u32,
    /// The object.
    pub kind: OpenKind,
}

impl Open {
    /// True if the open belongs to this session and tree (MS-SMB2 3.3.5.x:
    /// "if the Open is not found, or Open.Session/TreeConnect differ → FILE_CLOSED").
    pub fn owned_by(&self, session_id: u64, tree_id: u32) -> bool {
        self.session_id == session_id && self.tree_id == tree_id
    }

    /// The disk open, if this is one.
    pub fn file(&self) -> Option<&FileOpen> {
        match &self.kind {
            OpenKind::File(f) => Some(f),
            OpenKind::Pipe(_) => None,
        }
    }

    /// The disk open, mutably.
    pub fn file_mut(&mut self) -> Option<&mut FileOpen> {
        match &mut self.kind {
            OpenKind::File(f) => Some(f),
            OpenKind::Pipe(_) => None,
        }
    }
}

/// Bytes and calls through one open, reported to the audit log at close.
#[derive(Debug, Default, Clone, Copy)]
pub struct IoStats {
    /// Bytes read.
    pub bytes_read: u64,
    /// READ requests.
    pub reads: u64,
    /// Bytes written.
    pub bytes_written: u64,
    /// WRITE requests.
    pub writes: u64,
}

/// A directory enumeration in progress (MS-SMB2 3.3.1.10 Open.EnumerationLocation).
pub struct DirEnum {
    /// The search pattern this enumeration was started with.
    pub pattern: String,
    /// How many of "." and ".." were handled.
    pub dots: u8,
    /// Storage cursor of the last directory entry returned.
    pub cursor: Option<Cursor>,
    /// Nothing more to return.
    pub done: bool,
    /// Some entry matched (NO_SUCH_FILE vs NO_MORE_FILES).
    pub found_any: bool,
}

impl DirEnum {
    /// A fresh enumeration for `pattern`.
    pub fn new(pattern: String) -> Self {
        Self { pattern, dots: 0, cursor: None, done: false, found_any: false }
    }
}

/// Per-handle timestamp state (MS-FSCC 2.4.7: -1 in FileBasicInformation
/// stops automatic updates of that time through this handle, -2 resumes them).
#[derive(Debug, Default, Clone, Copy)]
pub struct HandleTimes {
    /// The handle has written (its first write scheduled a delayed update).
    pub wrote: bool,
    /// Written again since: LastWriteTime moves at close.
    pub dirty: bool,
    /// Bits of [`frozen`] this handle stopped updating.
    pub frozen: u8,
}

/// Timestamps a handle can freeze.
pub mod frozen {
    /// LastAccessTime.
    pub const ACCESS: u8 = 1;
    /// LastWriteTime.
    pub const WRITE: u8 = 2;
    /// ChangeTime.
    pub const CHANGE: u8 = 4;
}

/// An open of a file, directory or named stream on a disk share.
pub struct FileOpen {
    /// The organization's store.
    pub org: Arc<OrgStore>,
    /// The organization.
    pub org_id: OrgId,
    /// Root directory of the share.
    pub root: NodeId,
    /// Share name (audit log).
    pub share: String,
    /// The session's permission on the share when the open was made.
    pub level: Access,
    /// The node.
    pub node: NodeId,
    /// True for directories.
    pub is_dir: bool,
    /// Named stream, if the open is of one.
    pub stream: Option<String>,
    /// Key of this stream in the server-wide open table.
    pub key: FileKey,
    /// Data of the file or stream (None for directories).
    pub content: Option<Arc<Content>>,
    /// Path below the share root, `\`-separated ("" for the root): audit and notify.
    pub path: String,
    /// CreateOptions of the CREATE.
    pub create_options: u32,
    /// ShareAccess of the CREATE.
    pub share_access: u32,
    /// Directory enumeration state.
    pub dir_enum: Option<DirEnum>,
    /// Traffic counters for the audit log.
    pub stats: IoStats,
    /// Timestamp updates through this handle.
    pub times: HandleTimes,
    /// FilePositionInformation.
    pub position: u64,
    /// FileModeInformation.
    pub mode: u32,
    /// Allocation asked for with FileAllocationInformation beyond what is
    /// stored (nothing is reserved in an encrypted chunk store, but the
    /// handle reports it, as NTFS does).
    pub alloc_hint: u64,
    /// Opened on a connection that negotiated AAPL (a Mac): its empty named
    /// streams do not exist (`aapl::hidden_stream`).
    pub mac: bool,
    /// 0, or the time (Unix seconds) of the backup generation this open
    /// reads (Previous Versions): `org` is then that generation's copy, and
    /// every change through the handle is refused (MEDIA_WRITE_PROTECTED).
    pub view: i64,
}

impl FileOpen {
    /// The share's root directory itself.
    pub fn is_root(&self) -> bool {
        self.node == self.root && self.stream.is_none()
    }
}
