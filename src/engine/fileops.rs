//! Helpers shared by the disk handlers: path resolution below a share root
//! and metadata to MS-FSCC conversions. (Access checks against the share
//! permission are `fsa::access`.)

use crate::engine::status::{Error, Result};
use crate::storage::{Meta, MetaUpdate, NodeKind, OrgStore};
use crate::types::{FileTime, NodeId};
use crate::wire::NtStatus;
use crate::wire::fscc::FileTimes;
use crate::wire::fscc::consts::file_attributes;

/// Walks `components` from `root`; every step must be an existing directory
/// (MS-SMB2 3.3.5.9: a missing or non-directory intermediate component is
/// STATUS_OBJECT_PATH_NOT_FOUND).
pub fn walk(org: &OrgStore, root: NodeId, components: &[String]) -> Result<NodeId> {
    let mut cur = root;
    for c in components {
        let next = lookup(org, cur, c)?.ok_or(Error::Status(NtStatus::OBJECT_PATH_NOT_FOUND))?;
        if org.stat(next)?.kind != NodeKind::Directory {
            return Err(NtStatus::OBJECT_PATH_NOT_FOUND.into());
        }
        cur = next;
    }
    Ok(cur)
}

/// Finds `name` in `dir`: by its (case-insensitive, NFC) name, or else by
/// its 8.3 alternate name (MS-FSCC 2.1.5.2.1: clients may open a file by
/// the short name they were shown).
pub fn lookup(org: &OrgStore, dir: NodeId, name: &str) -> Result<Option<NodeId>> {
    if let Some(n) = org.lookup(dir, name)? {
        return Ok(Some(n));
    }
    if !name.contains('~') || !crate::engine::names::is_8_3(name) {
        return Ok(None);
    }
    let want = name.to_ascii_uppercase();
    Ok(org
        .list(dir)?
        .into_iter()
        .find(|e| crate::engine::names::short_name(&e.name).is_some_and(|s| s == want))
        .map(|e| e.meta.id))
}

/// The four timestamps of a node.
pub fn times(m: &Meta) -> FileTimes {
    FileTimes { creation: m.created.0, last_access: m.accessed.0, last_write: m.written.0, change: m.changed.0 }
}

/// FileAttributes as reported: DIRECTORY for directories, NORMAL when no
/// other bit is set (MS-FSCC 2.6).
pub fn attributes(m: &Meta) -> u32 {
    let mut a = m.attrs & !(file_attributes::DIRECTORY | file_attributes::NORMAL);
    if m.kind == NodeKind::Directory {
        a |= file_attributes::DIRECTORY;
    }
    if a == 0 {
        a = file_attributes::NORMAL;
    }
    a
}

/// Attribute bits a client may set, at CREATE or with FileBasicInformation
/// (MS-FSCC 2.6); the others are the server's to keep.
pub const SETTABLE_ATTRIBUTES: u32 = file_attributes::READONLY
    | file_attributes::HIDDEN
    | file_attributes::SYSTEM
    | file_attributes::ARCHIVE
    | file_attributes::TEMPORARY
    | file_attributes::OFFLINE
    | file_attributes::NOT_CONTENT_INDEXED;

/// Attributes stored for a new or overwritten node from what the client
/// asked for: only the settable bits, plus ARCHIVE for files (NTFS does this).
pub fn new_attributes(requested: u32, dir: bool) -> u32 {
    let mut a = requested & SETTABLE_ATTRIBUTES;
    if dir {
        a |= file_attributes::DIRECTORY;
        a &= !file_attributes::TEMPORARY;
    } else {
        a |= file_attributes::ARCHIVE;
    }
    a
}

/// Allocation size as reported: directories have none.
pub fn alloc(m: &Meta) -> u64 {
    if m.kind == NodeKind::Directory { 0 } else { m.alloc_size }
}

/// A directory's LastWriteTime and ChangeTime move when an entry is added,
/// removed or renamed (NTFS; smbtorture `smb2.dir` and `smb2.timestamps`).
pub fn touch_dir(org: &OrgStore, dir: NodeId, now: FileTime) -> Result<()> {
    org.set_meta(dir, &MetaUpdate { written: Some(now), changed: Some(now), ..Default::default() })?;
    Ok(())
}

/// Largest EA set of one file, as FILE_FULL_EA_INFORMATION entries packed
/// on 4-byte boundaries (MS-FSCC 2.4.15): 64 KiB, the NTFS limit.
pub const MAX_EA_SET: usize = 65_535;

/// STATUS_EA_TOO_LARGE (MS-ERREF: "An EA operation failed because EA set
/// is too large"), what NTFS answers, when the file's EAs after a change
/// would exceed [`MAX_EA_SET`]. (They also count in the quota: storage.)
pub fn check_ea_set(eas: &[(String, Vec<u8>)]) -> crate::engine::status::Result<()> {
    let size: usize = eas.iter().map(|(n, v)| (8 + n.len() + 1 + v.len()).next_multiple_of(4)).sum();
    if size > MAX_EA_SET {
        return Err(crate::wire::NtStatus::EA_TOO_LARGE.into());
    }
    Ok(())
}

#[cfg(test)]
mod ea_limit_tests {
    use super::*;

    /// 64 KiB of packed FILE_FULL_EA_INFORMATION entries fit; one byte more is EA_TOO_LARGE.
    #[test]
    fn the_ea_set_is_capped_at_64_kib() {
        // One entry: 8 + 1 (name) + 1 + value, padded to 4.
        let fits = vec![("A".to_string(), vec![0; 65_522])];
        assert!(check_ea_set(&fits).is_ok());
        let too_big = vec![("A".to_string(), vec![0; 65_523])];
        assert!(check_ea_set(&too_big).is_err());
        let many: Vec<(String, Vec<u8>)> = (0..100).map(|i| (format!("E{i}"), vec![0; 1000])).collect();
        assert!(check_ea_set(&many).is_err());
    }
}
