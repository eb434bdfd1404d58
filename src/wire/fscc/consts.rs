//! Flag and enum values shared by CREATE, QUERY_INFO, SET_INFO and friends.
//! Bit sets are plain `u32` constants grouped in modules named after the
//! field they belong to, so handlers read `access::FILE_READ_DATA`.

/// File attributes (MS-FSCC 2.6).
pub mod file_attributes {
    #![expect(missing_docs, reason = "the constants carry the spec's names; the module doc cites the table")]
    pub const READONLY: u32 = 0x0000_0001;
    pub const HIDDEN: u32 = 0x0000_0002;
    pub const SYSTEM: u32 = 0x0000_0004;
    pub const DIRECTORY: u32 = 0x0000_0010;
    pub const ARCHIVE: u32 = 0x0000_0020;
    pub const NORMAL: u32 = 0x0000_0080;
    pub const TEMPORARY: u32 = 0x0000_0100;
    pub const SPARSE_FILE: u32 = 0x0000_0200;
    pub const REPARSE_POINT: u32 = 0x0000_0400;
    pub const COMPRESSED: u32 = 0x0000_0800;
    pub const OFFLINE: u32 = 0x0000_1000;
    pub const NOT_CONTENT_INDEXED: u32 = 0x0000_2000;
    pub const ENCRYPTED: u32 = 0x0000_4000;
    pub const INTEGRITY_STREAM: u32 = 0x0000_8000;
    pub const NO_SCRUB_DATA: u32 = 0x0002_0000;
    pub const RECALL_ON_OPEN: u32 = 0x0004_0000;
    pub const PINNED: u32 = 0x0008_0000;
    pub const UNPINNED: u32 = 0x0010_0000;
    pub const RECALL_ON_DATA_ACCESS: u32 = 0x0040_0000;
}

/// Access mask bits (MS-SMB2 2.2.13.1, MS-DTYP 2.4.3): the one definition,
/// used by the codecs and by the access rules of `engine::fsa::access`.
pub mod access {
    /// FILE_READ_DATA / FILE_LIST_DIRECTORY.
    pub const FILE_READ_DATA: u32 = 0x0000_0001;
    /// FILE_LIST_DIRECTORY (same bit as FILE_READ_DATA).
    pub const FILE_LIST_DIRECTORY: u32 = FILE_READ_DATA;
    /// FILE_WRITE_DATA / FILE_ADD_FILE.
    pub const FILE_WRITE_DATA: u32 = 0x0000_0002;
    /// FILE_ADD_FILE (same bit as FILE_WRITE_DATA).
    pub const FILE_ADD_FILE: u32 = FILE_WRITE_DATA;
    /// FILE_APPEND_DATA / FILE_ADD_SUBDIRECTORY.
    pub const FILE_APPEND_DATA: u32 = 0x0000_0004;
    /// FILE_ADD_SUBDIRECTORY (same bit as FILE_APPEND_DATA).
    pub const FILE_ADD_SUBDIRECTORY: u32 = FILE_APPEND_DATA;
    /// FILE_READ_EA.
    pub const FILE_READ_EA: u32 = 0x0000_0008;
    /// FILE_WRITE_EA.
    pub const FILE_WRITE_EA: u32 = 0x0000_0010;
    /// FILE_EXECUTE / FILE_TRAVERSE.
    pub const FILE_EXECUTE: u32 = 0x0000_0020;
    /// FILE_TRAVERSE (same bit as FILE_EXECUTE).
    pub const FILE_TRAVERSE: u32 = FILE_EXECUTE;
    /// FILE_DELETE_CHILD.
    pub const FILE_DELETE_CHILD: u32 = 0x0000_0040;
    /// FILE_READ_ATTRIBUTES.
    pub const FILE_READ_ATTRIBUTES: u32 = 0x0000_0080;
    /// FILE_WRITE_ATTRIBUTES.
    pub const FILE_WRITE_ATTRIBUTES: u32 = 0x0000_0100;
    /// DELETE.
    pub const DELETE: u32 = 0x0001_0000;
    /// READ_CONTROL.
    pub const READ_CONTROL: u32 = 0x0002_0000;
    /// WRITE_DAC.
    pub const WRITE_DAC: u32 = 0x0004_0000;
    /// WRITE_OWNER.
    pub const WRITE_OWNER: u32 = 0x0008_0000;
    /// SYNCHRONIZE.
    pub const SYNCHRONIZE: u32 = 0x0010_0000;
    /// ACCESS_SYSTEM_SECURITY (SACL access; needs a privilege we never grant).
    pub const ACCESS_SYSTEM_SECURITY: u32 = 0x0100_0000;
    /// MAXIMUM_ALLOWED.
    pub const MAXIMUM_ALLOWED: u32 = 0x0200_0000;
    /// GENERIC_ALL.
    pub const GENERIC_ALL: u32 = 0x1000_0000;
    /// GENERIC_EXECUTE.
    pub const GENERIC_EXECUTE: u32 = 0x2000_0000;
    /// GENERIC_WRITE.
    pub const GENERIC_WRITE: u32 = 0x4000_0000;
    /// GENERIC_READ.
    pub const GENERIC_READ: u32 = 0x8000_0000;

    /// FILE_ALL_ACCESS: every standard and file-specific right (what Samba
    /// reports as MaximalAccess for an owner: 0x001F01FF).
    pub const FILE_ALL_ACCESS: u32 = 0x001F_01FF;
    /// FILE_GENERIC_READ (0x00120089).
    pub const FILE_GENERIC_READ: u32 =
        READ_CONTROL | FILE_READ_DATA | FILE_READ_ATTRIBUTES | FILE_READ_EA | SYNCHRONIZE;
    /// FILE_GENERIC_WRITE (0x00120116).
    pub const FILE_GENERIC_WRITE: u32 =
        READ_CONTROL | FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES | FILE_WRITE_EA | FILE_APPEND_DATA | SYNCHRONIZE;
    /// FILE_GENERIC_EXECUTE (0x001200A0).
    pub const FILE_GENERIC_EXECUTE: u32 = READ_CONTROL | FILE_READ_ATTRIBUTES | FILE_EXECUTE | SYNCHRONIZE;

    /// Replaces the GENERIC_* bits by the file rights they stand for
    /// (MS-DTYP 2.4.3, the file object's generic mapping), as the object
    /// manager does before any access check.
    pub fn map_generic(mask: u32) -> u32 {
        let mut m = mask & !(GENERIC_ALL | GENERIC_EXECUTE | GENERIC_WRITE | GENERIC_READ);
        if mask & GENERIC_READ != 0 {
            m |= FILE_GENERIC_READ;
        }
        if mask & GENERIC_WRITE != 0 {
            m |= FILE_GENERIC_WRITE;
        }
        if mask & GENERIC_EXECUTE != 0 {
            m |= FILE_GENERIC_EXECUTE;
        }
        if mask & GENERIC_ALL != 0 {
            m |= FILE_ALL_ACCESS;
        }
        m
    }
}

/// ShareAccess (MS-SMB2 2.2.13).
pub mod share_access {
    #![expect(missing_docs, reason = "the constants carry the spec's names; the module doc cites the table")]
    pub const READ: u32 = 0x1;
    pub const WRITE: u32 = 0x2;
    pub const DELETE: u32 = 0x4;
    pub const ALL: u32 = READ | WRITE | DELETE;
}

/// CreateDisposition (MS-SMB2 2.2.13).
pub mod create_disposition {
    #![expect(missing_docs, reason = "the constants carry the spec's names; the module doc cites the table")]
    pub const SUPERSEDE: u32 = 0;
    pub const OPEN: u32 = 1;
    pub const CREATE: u32 = 2;
    pub const OPEN_IF: u32 = 3;
    pub const OVERWRITE: u32 = 4;
    pub const OVERWRITE_IF: u32 = 5;
}

/// CreateAction in the CREATE response (MS-SMB2 2.2.14).
pub mod create_action {
    #![expect(missing_docs, reason = "the constants carry the spec's names; the module doc cites the table")]
    pub const SUPERSEDED: u32 = 0;
    pub const OPENED: u32 = 1;
    pub const CREATED: u32 = 2;
    pub const OVERWRITTEN: u32 = 3;
}

/// CreateOptions (MS-SMB2 2.2.13).
pub mod create_options {
    #![expect(missing_docs, reason = "the constants carry the spec's names; the module doc cites the table")]
    pub const DIRECTORY_FILE: u32 = 0x0000_0001;
    pub const WRITE_THROUGH: u32 = 0x0000_0002;
    pub const SEQUENTIAL_ONLY: u32 = 0x0000_0004;
    pub const NO_INTERMEDIATE_BUFFERING: u32 = 0x0000_0008;
    pub const SYNCHRONOUS_IO_ALERT: u32 = 0x0000_0010;
    pub const SYNCHRONOUS_IO_NONALERT: u32 = 0x0000_0020;
    pub const NON_DIRECTORY_FILE: u32 = 0x0000_0040;
    pub const COMPLETE_IF_OPLOCKED: u32 = 0x0000_0100;
    pub const NO_EA_KNOWLEDGE: u32 = 0x0000_0200;
    pub const OPEN_REMOTE_INSTANCE: u32 = 0x0000_0400;
    pub const RANDOM_ACCESS: u32 = 0x0000_0800;
    pub const DELETE_ON_CLOSE: u32 = 0x0000_1000;
    pub const OPEN_BY_FILE_ID: u32 = 0x0000_2000;
    pub const OPEN_FOR_BACKUP_INTENT: u32 = 0x0000_4000;
    pub const NO_COMPRESSION: u32 = 0x0000_8000;
    pub const OPEN_REQUIRING_OPLOCK: u32 = 0x0001_0000;
    pub const DISALLOW_EXCLUSIVE: u32 = 0x0002_0000;
    pub const RESERVE_OPFILTER: u32 = 0x0010_0000;
    pub const OPEN_REPARSE_POINT: u32 = 0x0020_0000;
    pub const OPEN_NO_RECALL: u32 = 0x0040_0000;
    pub const OPEN_FOR_FREE_SPACE_QUERY: u32 = 0x0080_0000;
}

/// ImpersonationLevel (MS-SMB2 2.2.13).
pub mod impersonation {
    #![expect(missing_docs, reason = "the constants carry the spec's names; the module doc cites the table")]
    pub const ANONYMOUS: u32 = 0;
    pub const IDENTIFICATION: u32 = 1;
    pub const IMPERSONATION: u32 = 2;
    pub const DELEGATE: u32 = 3;
}

/// Oplock levels (MS-SMB2 2.2.13 RequestedOplockLevel, 2.2.14, 2.2.23.1).
pub mod oplock {
    #![expect(missing_docs, reason = "the constants carry the spec's names; the module doc cites the table")]
    pub const NONE: u8 = 0x00;
    pub const II: u8 = 0x01;
    pub const EXCLUSIVE: u8 = 0x08;
    pub const BATCH: u8 = 0x09;
    pub const LEASE: u8 = 0xFF;
}

/// Lease states and flags (MS-SMB2 2.2.13.2.8).
pub mod lease {
    #![expect(missing_docs, reason = "the constants carry the spec's names; the module doc cites the table")]
    pub const NONE: u32 = 0x00;
    pub const READ_CACHING: u32 = 0x01;
    pub const HANDLE_CACHING: u32 = 0x02;
    pub const WRITE_CACHING: u32 = 0x04;
    /// LeaseFlags: a break is in progress (responses only).
    pub const FLAG_BREAK_IN_PROGRESS: u32 = 0x02;
    /// LeaseFlags (v2): ParentLeaseKey is set.
    pub const FLAG_PARENT_LEASE_KEY_SET: u32 = 0x04;
}

/// CompletionFilter of CHANGE_NOTIFY (MS-SMB2 2.2.35).
pub mod notify_filter {
    #![expect(missing_docs, reason = "the constants carry the spec's names; the module doc cites the table")]
    pub const FILE_NAME: u32 = 0x0000_0001;
    pub const DIR_NAME: u32 = 0x0000_0002;
    pub const ATTRIBUTES: u32 = 0x0000_0004;
    pub const SIZE: u32 = 0x0000_0008;
    pub const LAST_WRITE: u32 = 0x0000_0010;
    pub const LAST_ACCESS: u32 = 0x0000_0020;
    pub const CREATION: u32 = 0x0000_0040;
    pub const EA: u32 = 0x0000_0080;
    pub const SECURITY: u32 = 0x0000_0100;
    pub const STREAM_NAME: u32 = 0x0000_0200;
    pub const STREAM_SIZE: u32 = 0x0000_0400;
    pub const STREAM_WRITE: u32 = 0x0000_0800;
}

/// Action of a FILE_NOTIFY_INFORMATION entry (MS-FSCC 2.7.1).
pub mod notify_action {
    #![expect(missing_docs, reason = "the constants carry the spec's names; the module doc cites the table")]
    pub const ADDED: u32 = 0x1;
    pub const REMOVED: u32 = 0x2;
    pub const MODIFIED: u32 = 0x3;
    pub const RENAMED_OLD_NAME: u32 = 0x4;
    pub const RENAMED_NEW_NAME: u32 = 0x5;
    pub const ADDED_STREAM: u32 = 0x6;
    pub const REMOVED_STREAM: u32 = 0x7;
    pub const MODIFIED_STREAM: u32 = 0x8;
    pub const REMOVED_BY_DELETE: u32 = 0x9;
    pub const ID_NOT_TUNNELLED: u32 = 0xA;
    pub const TUNNELLED_ID_COLLISION: u32 = 0xB;
}

/// InfoType of QUERY_INFO / SET_INFO (MS-SMB2 2.2.37).
pub mod info_type {
    #![expect(missing_docs, reason = "the constants carry the spec's names; the module doc cites the table")]
    pub const FILE: u8 = 0x01;
    pub const FILESYSTEM: u8 = 0x02;
    pub const SECURITY: u8 = 0x03;
    pub const QUOTA: u8 = 0x04;
}

/// AdditionalInformation for InfoType SECURITY (MS-SMB2 2.2.37, MS-DTYP
/// 2.4.7 SECURITY_INFORMATION), under the spec's names.
pub mod security_info {
    /// OWNER_SECURITY_INFORMATION.
    pub const OWNER_SECURITY_INFORMATION: u32 = 0x0000_0001;
    /// GROUP_SECURITY_INFORMATION.
    pub const GROUP_SECURITY_INFORMATION: u32 = 0x0000_0002;
    /// DACL_SECURITY_INFORMATION.
    pub const DACL_SECURITY_INFORMATION: u32 = 0x0000_0004;
    /// SACL_SECURITY_INFORMATION.
    pub const SACL_SECURITY_INFORMATION: u32 = 0x0000_0008;
    /// LABEL_SECURITY_INFORMATION.
    pub const LABEL_SECURITY_INFORMATION: u32 = 0x0000_0010;
    /// ATTRIBUTE_SECURITY_INFORMATION.
    pub const ATTRIBUTE_SECURITY_INFORMATION: u32 = 0x0000_0020;
    /// SCOPE_SECURITY_INFORMATION.
    pub const SCOPE_SECURITY_INFORMATION: u32 = 0x0000_0040;
    /// BACKUP_SECURITY_INFORMATION.
    pub const BACKUP_SECURITY_INFORMATION: u32 = 0x0001_0000;
}

#[cfg(test)]
mod tests {
    use super::access::*;

    #[test]
    fn generic_read_maps_to_file_generic_read() {
        assert_eq!(map_generic(GENERIC_READ), FILE_GENERIC_READ);
        assert_eq!(map_generic(GENERIC_ALL | SYNCHRONIZE), FILE_ALL_ACCESS);
        assert_eq!(map_generic(FILE_READ_DATA), FILE_READ_DATA);
        // The composed generic rights are the spec's literal values.
        assert_eq!(FILE_GENERIC_READ, 0x0012_0089);
        assert_eq!(FILE_GENERIC_WRITE, 0x0012_0116);
        assert_eq!(FILE_GENERIC_EXECUTE, 0x0012_00A0);
    }
}
