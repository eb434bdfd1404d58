//! Access masks (MS-DTYP 2.4.3, MS-SMB2 2.2.13.1): generic mapping,
//! MAXIMUM_ALLOWED, what a share permission allows, the access check for
//! opening an existing object (MS-FSA 2.1.5.1.2.1) and the access each SMB2
//! command needs (MS-SMB2 3.3.5.12-3.3.5.21, MS-FSA 2.1.5.11/2.1.5.14).
//!
//! The security-descriptor evaluation that produces "what the object's ACL
//! grants" lives in [`super::sd`]; this file combines it with the share
//! permission and the read-only attribute.

use crate::engine::services::Access;
use crate::wire::NtStatus;

// The mask bits, FILE_GENERIC_* and the generic mapping are the wire's
// vocabulary; the rules below are written in it and callers of these rules
// find it here too.
pub use crate::wire::fscc::consts::access::*;
pub use crate::wire::fscc::consts::security_info::*;

/// Bits no access mask may carry (bits 9-15, 21-23, 26-27): requests
/// with them are ACCESS_DENIED (smbtorture `smb2.maximum_allowed`).
pub const INVALID_ACCESS_BITS: u32 = 0x0CE0_FE00;

/// Bits a read-only file never grants (MS-FSA 2.1.5.1.2.1; the
/// directory bits share values with the file ones).
pub const READONLY_DENIED: u32 = FILE_WRITE_DATA | FILE_APPEND_DATA | FILE_ADD_SUBDIRECTORY | FILE_DELETE_CHILD;

/// What a share permission allows, as an access mask. It is also the
/// MaximalAccess of the TREE_CONNECT response (MS-SMB2 2.2.10) and caps
/// every open on the share.
///
/// - `Read`: read data, attributes, EAs, security; execute; list.
/// - `ReadWrite`: plus write/append data, attributes, EAs, create and
///   delete (DELETE, FILE_DELETE_CHILD). No WRITE_DAC/WRITE_OWNER.
/// - `Admin`: everything, including changing security descriptors.
pub fn share_mask(perm: Access) -> u32 {
    const READ: u32 = FILE_GENERIC_READ | FILE_GENERIC_EXECUTE;
    const READ_WRITE: u32 = READ | FILE_GENERIC_WRITE | DELETE | FILE_DELETE_CHILD;
    match perm {
        Access::None => 0,
        Access::Read => READ,
        Access::ReadWrite => READ_WRITE,
        Access::Admin => FILE_ALL_ACCESS,
    }
}

/// What access-based enumeration asks of an entry before listing it: the
/// read rights of FILE_GENERIC_READ (without SYNCHRONIZE). Windows ABE hides
/// what the user cannot open for reading; Samba's "hide unreadable" checks
/// the same four bits, and smbtorture `smb2.acls.ACCESSBASED` hides the
/// entry when any one of READ_DATA, READ_ATTRIBUTES or READ_EA is missing.
pub const ABE_READ: u32 = FILE_READ_DATA | FILE_READ_EA | FILE_READ_ATTRIBUTES | READ_CONTROL;

/// True if an entry whose descriptor and share permission grant `granted`
/// is listed on an access-based-enumeration share.
pub fn abe_visible(granted: u32) -> bool {
    granted & ABE_READ == ABE_READ
}

/// True if the share permission allows any modification (DELETE_ON_CLOSE,
/// SET_INFO of attributes, …).
pub fn share_writable(perm: Access) -> bool {
    matches!(perm, Access::ReadWrite | Access::Admin)
}

/// Everything needed to decide what an open of an existing object gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExistingObject {
    /// [`share_mask`] of the session's permission on the share.
    pub share: u32,
    /// What the object's security descriptor grants the user
    /// ([`crate::wire::dtyp::SecurityDescriptor::max_allowed`], a rule of [`super::sd`]).
    pub acl: u32,
    /// The parent directory's security descriptor grants FILE_DELETE_CHILD
    /// (then DELETE is granted even if the object's ACL does not say so).
    pub parent_delete_child: bool,
    /// FILE_ATTRIBUTE_READONLY set on a non-directory.
    pub read_only_file: bool,
}

impl ExistingObject {
    /// The maximal access (MS-SMB2 2.2.14.2.5 MxAc response): ignores the
    /// read-only attribute (smbtorture `smb2.maximum_allowed.read_only_file`).
    pub fn maximal_access(&self) -> u32 {
        let mut m = self.acl | FILE_READ_ATTRIBUTES;
        if self.parent_delete_child {
            m |= DELETE;
        }
        m & self.share
    }

    /// What MAXIMUM_ALLOWED resolves to: the maximal access minus what a
    /// read-only file never grants.
    pub fn max_allowed(&self) -> u32 {
        let m = self.maximal_access();
        if self.read_only_file { m & !READONLY_DENIED } else { m }
    }
}

/// MS-FSA 2.1.5.1.2.1 (Check Access to an Existing File) plus the share
/// cap: the access granted for `desired`, or the error.
///
/// - invalid bits: ACCESS_DENIED; ACCESS_SYSTEM_SECURITY:
///   PRIVILEGE_NOT_HELD (smbtorture `smb2.maximum_allowed`);
/// - generic bits are mapped; MAXIMUM_ALLOWED adds everything allowed;
/// - write access to a read-only file: ACCESS_DENIED;
/// - anything else not allowed by ACL or share: ACCESS_DENIED.
pub fn open_existing(desired: u32, obj: &ExistingObject) -> Result<u32, NtStatus> {
    let want = check_bits(desired)?;
    let allowed = obj.max_allowed();
    if obj.read_only_file && want & READONLY_DENIED != 0 {
        return Err(NtStatus::ACCESS_DENIED);
    }
    let explicit = want & !MAXIMUM_ALLOWED;
    if explicit & !allowed != 0 {
        return Err(NtStatus::ACCESS_DENIED);
    }
    if want & MAXIMUM_ALLOWED != 0 { Ok(allowed | explicit) } else { Ok(explicit) }
}

/// The access granted on a newly created object (MS-FSA 2.1.5.1.1: the
/// creator gets what it asked for, capped by the share). The parent's
/// FILE_ADD_FILE / FILE_ADD_SUBDIRECTORY is checked with [`check_create_in`].
pub fn open_new(desired: u32, share: u32) -> Result<u32, NtStatus> {
    let want = check_bits(desired)?;
    let explicit = want & !MAXIMUM_ALLOWED;
    if explicit & !share != 0 {
        return Err(NtStatus::ACCESS_DENIED);
    }
    if want & MAXIMUM_ALLOWED != 0 { Ok(share | explicit) } else { Ok(explicit) }
}

/// Creating a child needs FILE_ADD_FILE or FILE_ADD_SUBDIRECTORY on the
/// parent (`parent_acl`: what the parent's SD grants; `share`: share mask).
pub fn check_create_in(parent_acl: u32, share: u32, directory: bool) -> Result<(), NtStatus> {
    let need = if directory { FILE_ADD_SUBDIRECTORY } else { FILE_ADD_FILE };
    if parent_acl & share & need == need { Ok(()) } else { Err(NtStatus::ACCESS_DENIED) }
}

fn check_bits(desired: u32) -> Result<u32, NtStatus> {
    if desired & INVALID_ACCESS_BITS != 0 {
        return Err(NtStatus::ACCESS_DENIED);
    }
    if desired & ACCESS_SYSTEM_SECURITY != 0 {
        return Err(NtStatus::PRIVILEGE_NOT_HELD);
    }
    Ok(map_generic(desired))
}

fn require(granted: u32, any_of: u32) -> Result<(), NtStatus> {
    if granted & any_of != 0 { Ok(()) } else { Err(NtStatus::ACCESS_DENIED) }
}

/// READ (MS-SMB2 3.3.5.12): FILE_READ_DATA, or FILE_EXECUTE as Windows
/// and Samba also accept (executables are read through execute handles).
pub fn check_read(granted: u32) -> Result<(), NtStatus> {
    require(granted, FILE_READ_DATA | FILE_EXECUTE)
}

/// How a handle may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Anywhere.
    Any,
    /// Only at end of file (FILE_APPEND_DATA without FILE_WRITE_DATA,
    /// MS-FSA 2.1.5.3): the engine writes at EOF whatever the offset.
    AppendOnly,
}

/// WRITE (MS-SMB2 3.3.5.13): FILE_WRITE_DATA or FILE_APPEND_DATA.
pub fn check_write(granted: u32) -> Result<WriteMode, NtStatus> {
    if granted & FILE_WRITE_DATA != 0 {
        Ok(WriteMode::Any)
    } else if granted & FILE_APPEND_DATA != 0 {
        Ok(WriteMode::AppendOnly)
    } else {
        Err(NtStatus::ACCESS_DENIED)
    }
}

/// FLUSH (MS-SMB2 3.3.5.11): FILE_WRITE_DATA or FILE_APPEND_DATA.
pub fn check_flush(granted: u32) -> Result<(), NtStatus> {
    require(granted, FILE_WRITE_DATA | FILE_APPEND_DATA)
}

/// QUERY_DIRECTORY and CHANGE_NOTIFY (MS-SMB2 3.3.5.18, 3.3.5.19).
pub fn check_list_directory(granted: u32) -> Result<(), NtStatus> {
    require(granted, FILE_LIST_DIRECTORY)
}

/// FileInformationClass values (MS-FSCC 2.4) that have access rules.
pub mod class {
    /// FileBasicInformation.
    pub const BASIC: u8 = 4;
    /// FileStandardInformation.
    pub const STANDARD: u8 = 5;
    /// FileEaInformation.
    pub const EA: u8 = 7;
    /// FileRenameInformation.
    pub const RENAME: u8 = 10;
    /// FileLinkInformation.
    pub const LINK: u8 = 11;
    /// FileDispositionInformation.
    pub const DISPOSITION: u8 = 13;
    /// FileFullEaInformation.
    pub const FULL_EA: u8 = 15;
    /// FileAllInformation.
    pub const ALL: u8 = 18;
    /// FileAllocationInformation.
    pub const ALLOCATION: u8 = 19;
    /// FileEndOfFileInformation.
    pub const END_OF_FILE: u8 = 20;
    /// FileNetworkOpenInformation.
    pub const NETWORK_OPEN: u8 = 34;
    /// FileAttributeTagInformation.
    pub const ATTRIBUTE_TAG: u8 = 35;
    /// FileValidDataLengthInformation.
    pub const VALID_DATA_LENGTH: u8 = 39;
    /// FileShortNameInformation.
    pub const SHORT_NAME: u8 = 40;
    /// FileDispositionInformationEx.
    pub const DISPOSITION_EX: u8 = 64;
    /// FileRenameInformationEx.
    pub const RENAME_EX: u8 = 65;
}

/// SMB2_0_INFO_* (MS-SMB2 2.2.37).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InfoType {
    /// SMB2_0_INFO_FILE.
    File,
    /// SMB2_0_INFO_FILESYSTEM.
    FileSystem,
    /// SMB2_0_INFO_SECURITY.
    Security,
    /// SMB2_0_INFO_QUOTA.
    Quota,
}

/// QUERY_INFO (MS-SMB2 3.3.5.20): the access the class needs (MS-FSA
/// 2.1.5.11). `info` is the FileInformationClass for `InfoType::File`
/// and the AdditionalInformation (security information) for `Security`.
pub fn check_query_info(granted: u32, kind: InfoType, info: u32) -> Result<(), NtStatus> {
    match kind {
        InfoType::File => match u8::try_from(info).unwrap_or(0) {
            class::BASIC | class::ALL | class::NETWORK_OPEN | class::ATTRIBUTE_TAG => {
                require(granted, FILE_READ_ATTRIBUTES)
            }
            class::EA | class::FULL_EA => require(granted, FILE_READ_EA),
            _ => Ok(()),
        },
        InfoType::FileSystem | InfoType::Quota => Ok(()),
        InfoType::Security => {
            if info & SACL_SECURITY_INFORMATION != 0 {
                return require(granted, ACCESS_SYSTEM_SECURITY);
            }
            let normal = OWNER_SECURITY_INFORMATION
                | GROUP_SECURITY_INFORMATION
                | DACL_SECURITY_INFORMATION
                | LABEL_SECURITY_INFORMATION;
            if info & normal != 0 { require(granted, READ_CONTROL) } else { Ok(()) }
        }
    }
}

/// SET_INFO (MS-SMB2 3.3.5.21): the access the class needs (MS-FSA
/// 2.1.5.14). Rename and disposition need DELETE, size changes
/// FILE_WRITE_DATA, basic FILE_WRITE_ATTRIBUTES, EAs FILE_WRITE_EA;
/// security: WRITE_OWNER for owner/group/label, WRITE_DAC for the DACL,
/// ACCESS_SYSTEM_SECURITY for the SACL.
pub fn check_set_info(granted: u32, kind: InfoType, info: u32) -> Result<(), NtStatus> {
    match kind {
        InfoType::File => match u8::try_from(info).unwrap_or(0) {
            class::BASIC => require(granted, FILE_WRITE_ATTRIBUTES),
            class::END_OF_FILE | class::ALLOCATION | class::VALID_DATA_LENGTH => require(granted, FILE_WRITE_DATA),
            class::RENAME | class::RENAME_EX | class::DISPOSITION | class::DISPOSITION_EX | class::SHORT_NAME => {
                require(granted, DELETE)
            }
            class::FULL_EA => require(granted, FILE_WRITE_EA),
            _ => Ok(()),
        },
        InfoType::FileSystem | InfoType::Quota => Ok(()),
        InfoType::Security => {
            if info & SACL_SECURITY_INFORMATION != 0 {
                require(granted, ACCESS_SYSTEM_SECURITY)?;
            }
            let owner = OWNER_SECURITY_INFORMATION | GROUP_SECURITY_INFORMATION | LABEL_SECURITY_INFORMATION;
            if info & owner != 0 {
                require(granted, WRITE_OWNER)?;
            }
            if info & DACL_SECURITY_INFORMATION != 0 {
                require(granted, WRITE_DAC)?;
            }
            Ok(())
        }
    }
}

/// A rename or hard link into a directory needs FILE_ADD_FILE (or
/// FILE_ADD_SUBDIRECTORY for a directory) there (MS-FSA 2.1.5.14.11), and
/// replacing an existing target needs DELETE on it (checked by the engine
/// when it opens the target).
pub fn check_rename_into(target_parent_acl: u32, share: u32, directory: bool) -> Result<(), NtStatus> {
    check_create_in(target_parent_acl, share, directory)
}
