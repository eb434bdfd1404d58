//! Share modes, delete-pending state and delete-on-close of one stream
//! (MS-FSA 2.1.5.1.2 "Check Sharing Access", 2.1.5.4 cleanup,
//! 2.1.5.14.3 FileDispositionInformation; MS-SMB2 3.3.5.9).
//!
//! Only the data-access bits take part in share checks (Samba
//! `share_conflict()`, smbtorture `smb2.sharemode`): an open asking for none
//! of them never conflicts, and an existing open holding none of them
//! restricts nobody (`smb2.sharemode.bug14375`).

use super::OpenId;
use super::access::{DELETE, FILE_APPEND_DATA, FILE_EXECUTE, FILE_READ_DATA, FILE_WRITE_DATA};
use crate::wire::NtStatus;

/// FILE_SHARE_READ (MS-SMB2 2.2.13).
pub const FILE_SHARE_READ: u32 = 0x1;
/// FILE_SHARE_WRITE.
pub const FILE_SHARE_WRITE: u32 = 0x2;
/// FILE_SHARE_DELETE.
pub const FILE_SHARE_DELETE: u32 = 0x4;

/// The access bits that take part in share-mode checks.
pub const SHARING_ACCESS: u32 = FILE_READ_DATA | FILE_WRITE_DATA | FILE_APPEND_DATA | FILE_EXECUTE | DELETE;

/// True if an open with `access`/`share` cannot coexist with an existing
/// open holding `e_access`/`e_share`: either side wants an access the other
/// does not share.
pub fn share_conflict(e_access: u32, e_share: u32, access: u32, share: u32) -> bool {
    if e_access & SHARING_ACCESS == 0 || access & SHARING_ACCESS == 0 {
        return false;
    }
    let pairs = [
        (FILE_WRITE_DATA | FILE_APPEND_DATA, FILE_SHARE_WRITE),
        (FILE_READ_DATA | FILE_EXECUTE, FILE_SHARE_READ),
        (DELETE, FILE_SHARE_DELETE),
    ];
    pairs.iter().any(|&(bits, share_bit)| {
        (access & bits != 0 && e_share & share_bit == 0) || (e_access & bits != 0 && share & share_bit == 0)
    })
}

/// One open as the share check sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShareEntry {
    /// The open.
    pub open: OpenId,
    /// Its granted access.
    pub access: u32,
    /// Its share access (FILE_SHARE_*).
    pub share: u32,
    /// Opened with FILE_DELETE_ON_CLOSE: the stream becomes delete-pending
    /// when this open closes (MS-FSA 2.1.5.4).
    pub delete_on_close: bool,
}

/// What closing an open means for the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseEffect {
    /// The last open closed while delete was pending: remove the stream
    /// (or the file, for the default stream) now. For a non-empty
    /// directory the removal fails and the directory stays (Windows
    /// ignores that failure at close).
    pub delete: bool,
    /// Opens left on the stream.
    pub remaining: usize,
}

/// Opens of one stream and its delete-pending flag.
#[derive(Debug, Default)]
pub struct ShareModes {
    entries: Vec<ShareEntry>,
    delete_pending: bool,
}

impl ShareModes {
    /// No opens.
    pub fn new() -> Self {
        Self::default()
    }

    /// A delete is pending: new opens fail with STATUS_DELETE_PENDING
    /// (checked before share modes and oplocks, smbtorture
    /// `smb2.oplock.doc`).
    pub fn delete_pending(&self) -> bool {
        self.delete_pending
    }

    /// True if an open with `access`/`share` conflicts with an existing open.
    pub fn sharing_violation(&self, access: u32, share: u32) -> bool {
        self.entries.iter().any(|e| share_conflict(e.access, e.share, access, share))
    }

    /// DELETE_PENDING, then SHARING_VIOLATION (for callers that don't go
    /// through the oplock logic, e.g. internal opens).
    pub fn check(&self, access: u32, share: u32) -> Result<(), NtStatus> {
        if self.delete_pending {
            return Err(NtStatus::DELETE_PENDING);
        }
        if self.sharing_violation(access, share) {
            return Err(NtStatus::SHARING_VIOLATION);
        }
        Ok(())
    }

    /// Record a granted open.
    pub fn insert(&mut self, entry: ShareEntry) {
        self.entries.push(entry);
    }

    /// The open's entry, if present.
    pub fn get(&self, open: OpenId) -> Option<&ShareEntry> {
        self.entries.iter().find(|e| e.open == open)
    }

    /// All opens.
    pub fn entries(&self) -> &[ShareEntry] {
        &self.entries
    }

    /// Number of opens.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// No opens.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// FileDispositionInformation (MS-FSA 2.1.5.14.3) after
    /// [`check_set_disposition`] passed: set or clear the pending delete.
    pub fn set_delete_pending(&mut self, pending: bool) {
        self.delete_pending = pending;
    }

    /// CLOSE (MS-FSA 2.1.5.4): an open with FILE_DELETE_ON_CLOSE makes the
    /// delete pending; the last close of a delete-pending stream deletes it.
    pub fn remove(&mut self, open: OpenId) -> CloseEffect {
        if let Some(pos) = self.entries.iter().position(|e| e.open == open) {
            let e = self.entries.remove(pos);
            if e.delete_on_close {
                self.delete_pending = true;
            }
        }
        let remaining = self.entries.len();
        let delete = remaining == 0 && self.delete_pending;
        if delete {
            self.delete_pending = false;
        }
        CloseEffect { delete, remaining }
    }
}

/// Facts about the object for delete-on-close decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeleteTarget {
    /// Access granted to the open (after MAXIMUM_ALLOWED resolution).
    pub granted: u32,
    /// FILE_ATTRIBUTE_READONLY is (or, for a new file, will be) set.
    pub read_only: bool,
    /// A directory.
    pub is_directory: bool,
    /// For a directory: it has no entries.
    pub dir_empty: bool,
    /// The share's root directory.
    pub is_share_root: bool,
    /// The session may write on this share.
    pub share_writable: bool,
}

/// FILE_DELETE_ON_CLOSE in a CREATE (MS-SMB2 3.3.5.9, MS-FSA 2.1.5.1).
/// `Ok(true)`: record it on the open; `Ok(false)`: accept the open but
/// ignore the flag (a non-empty directory, as Samba and Windows do).
pub fn check_create_delete_on_close(t: &DeleteTarget) -> Result<bool, NtStatus> {
    // MS-FSA 2.1.5.1: FILE_DELETE_ON_CLOSE without DELETE access.
    if t.granted & DELETE == 0 {
        return Err(NtStatus::INVALID_PARAMETER);
    }
    // smbtorture `smb2.delete-on-close-perms.READONLY`: files only.
    if t.read_only && !t.is_directory {
        return Err(NtStatus::CANNOT_DELETE);
    }
    if !t.share_writable || t.is_share_root {
        return Err(NtStatus::ACCESS_DENIED);
    }
    Ok(!t.is_directory || t.dir_empty)
}

/// FileDispositionInformation with DeletePending (MS-FSA 2.1.5.14.3).
/// Clearing needs only DELETE access; setting also needs a writable,
/// non-read-only object and, for a directory, an empty one.
pub fn check_set_disposition(t: &DeleteTarget, delete: bool) -> Result<(), NtStatus> {
    if t.granted & DELETE == 0 {
        return Err(NtStatus::ACCESS_DENIED);
    }
    if !delete {
        return Ok(());
    }
    if t.read_only {
        return Err(NtStatus::CANNOT_DELETE);
    }
    if !t.share_writable || t.is_share_root {
        return Err(NtStatus::ACCESS_DENIED);
    }
    if t.is_directory && !t.dir_empty {
        return Err(NtStatus::DIRECTORY_NOT_EMPTY);
    }
    Ok(())
}

/// FILE_ATTRIBUTE_READONLY (MS-FSCC 2.6).
pub const FILE_ATTRIBUTE_READONLY: u32 = 0x1;
/// FILE_ATTRIBUTE_HIDDEN.
pub const FILE_ATTRIBUTE_HIDDEN: u32 = 0x2;
/// FILE_ATTRIBUTE_SYSTEM.
pub const FILE_ATTRIBUTE_SYSTEM: u32 = 0x4;
/// FILE_ATTRIBUTE_DIRECTORY.
pub const FILE_ATTRIBUTE_DIRECTORY: u32 = 0x10;

/// MS-FSA 2.1.5.1.2: overwriting (SUPERSEDE, OVERWRITE, OVERWRITE_IF) a
/// read-only file is ACCESS_DENIED, and so is overwriting a hidden or system
/// file without asking to keep that attribute.
pub fn check_overwrite(existing_attrs: u32, new_attrs: u32) -> Result<(), NtStatus> {
    if existing_attrs & FILE_ATTRIBUTE_READONLY != 0 {
        return Err(NtStatus::ACCESS_DENIED);
    }
    for bit in [FILE_ATTRIBUTE_HIDDEN, FILE_ATTRIBUTE_SYSTEM] {
        if existing_attrs & bit != 0 && new_attrs & bit == 0 {
            return Err(NtStatus::ACCESS_DENIED);
        }
    }
    Ok(())
}
