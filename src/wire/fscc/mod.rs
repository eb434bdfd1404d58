//! MS-FSCC structures carried inside SMB2 messages: information classes
//! returned by QUERY_INFO / QUERY_DIRECTORY and accepted by SET_INFO, FSCTL
//! payloads, extended attributes, and the name-matching rules of
//! QUERY_DIRECTORY.
//!
//! These buffers are self-contained, so decoders take the buffer itself
//! (`&[u8]`, offsets relative to its start) rather than the whole message.
//! Encoders append to `out`; lengths written as `u32` come from buffers that
//! fit in one SMB2 message (< 2^24 bytes, MS-SMB2 2.1), so `as u32` cannot
//! truncate. Names are assumed to have been length-checked by the caller
//! (at most 32767 UTF-16 units, MS-FSCC 2.1.5).

pub mod consts;
pub mod dir_info;
pub mod ea;
pub mod file_info;
pub mod file_set;
pub mod fs_info;
pub mod fsctl;
pub mod wildcard;

use nom::number::complete::le_u64;

use super::{PResult, PutLe};

/// A file information class (MS-FSCC 2.4), the FileInfoClass of QUERY_INFO /
/// SET_INFO with InfoType FILE and the FileInformationClass of
/// QUERY_DIRECTORY. A newtype so unknown classes decode and can be answered
/// with STATUS_INVALID_INFO_CLASS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct InfoClass(pub u8);

#[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
impl InfoClass {
    pub const DIRECTORY: Self = Self(1);
    pub const FULL_DIRECTORY: Self = Self(2);
    pub const BOTH_DIRECTORY: Self = Self(3);
    pub const BASIC: Self = Self(4);
    pub const STANDARD: Self = Self(5);
    pub const INTERNAL: Self = Self(6);
    pub const EA: Self = Self(7);
    pub const ACCESS: Self = Self(8);
    pub const NAME: Self = Self(9);
    pub const RENAME: Self = Self(10);
    pub const LINK: Self = Self(11);
    pub const NAMES: Self = Self(12);
    pub const DISPOSITION: Self = Self(13);
    pub const POSITION: Self = Self(14);
    pub const FULL_EA: Self = Self(15);
    pub const MODE: Self = Self(16);
    pub const ALIGNMENT: Self = Self(17);
    pub const ALL: Self = Self(18);
    pub const ALLOCATION: Self = Self(19);
    pub const END_OF_FILE: Self = Self(20);
    pub const ALTERNATE_NAME: Self = Self(21);
    pub const STREAM: Self = Self(22);
    pub const PIPE: Self = Self(23);
    pub const PIPE_LOCAL: Self = Self(24);
    pub const PIPE_REMOTE: Self = Self(25);
    pub const COMPRESSION: Self = Self(28);
    pub const OBJECT_ID: Self = Self(29);
    pub const QUOTA: Self = Self(32);
    pub const REPARSE_POINT: Self = Self(33);
    pub const NETWORK_OPEN: Self = Self(34);
    pub const ATTRIBUTE_TAG: Self = Self(35);
    pub const ID_BOTH_DIRECTORY: Self = Self(37);
    pub const ID_FULL_DIRECTORY: Self = Self(38);
    pub const VALID_DATA_LENGTH: Self = Self(39);
    pub const SHORT_NAME: Self = Self(40);
    pub const SFIO_RESERVE: Self = Self(44);
    pub const SFIO_VOLUME: Self = Self(45);
    pub const HARD_LINK: Self = Self(46);
    pub const NORMALIZED_NAME: Self = Self(48);
    pub const ID_GLOBAL_TX_DIRECTORY: Self = Self(50);
    pub const STANDARD_LINK: Self = Self(54);
    pub const ID: Self = Self(59);
    pub const ID_EXTD_DIRECTORY: Self = Self(60);
    pub const DISPOSITION_EX: Self = Self(64);
    pub const RENAME_EX: Self = Self(65);
    pub const STAT: Self = Self(68);
    pub const CASE_SENSITIVE: Self = Self(71);
}

/// A file-system information class (MS-FSCC 2.5), the FileInfoClass of
/// QUERY_INFO / SET_INFO with InfoType FILESYSTEM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FsInfoClass(pub u8);

#[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
impl FsInfoClass {
    pub const VOLUME: Self = Self(1);
    pub const LABEL: Self = Self(2);
    pub const SIZE: Self = Self(3);
    pub const DEVICE: Self = Self(4);
    pub const ATTRIBUTE: Self = Self(5);
    pub const CONTROL: Self = Self(6);
    pub const FULL_SIZE: Self = Self(7);
    pub const OBJECT_ID: Self = Self(8);
    pub const DRIVER_PATH: Self = Self(9);
    pub const VOLUME_FLAGS: Self = Self(10);
    pub const SECTOR_SIZE: Self = Self(11);
}

/// The four FILETIMEs that lead many structures (CREATE and CLOSE responses,
/// FileBasicInformation, directory entries), in wire order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FileTimes {
    /// CreationTime.
    pub creation: u64,
    /// LastAccessTime.
    pub last_access: u64,
    /// LastWriteTime.
    pub last_write: u64,
    /// ChangeTime.
    pub change: u64,
}

impl FileTimes {
    /// Parses 32 bytes.
    pub fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, creation) = le_u64(i)?;
        let (i, last_access) = le_u64(i)?;
        let (i, last_write) = le_u64(i)?;
        let (i, change) = le_u64(i)?;
        Ok((i, Self { creation, last_access, last_write, change }))
    }

    /// Appends 32 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.creation);
        out.put_u64(self.last_access);
        out.put_u64(self.last_write);
        out.put_u64(self.change);
    }
}

/// Walks a NextEntryOffset chain (MS-FSCC 2.4: directory entries, streams,
/// EAs, notify records) and yields each entry as a slice that starts at the
/// entry and ends at the next one (or the end of `buf`). Every offset must
/// be a multiple of `align`, non-zero and inside the buffer, so a hostile
/// chain can neither loop nor point outside.
pub(crate) fn chain_entries(buf: &[u8], align: usize) -> super::DResult<Vec<&[u8]>> {
    use super::DecodeError;
    let mut entries = Vec::new();
    let mut pos = 0usize;
    if buf.is_empty() {
        return Ok(entries);
    }
    loop {
        let rest = buf.get(pos..).ok_or(DecodeError::BadOffset)?;
        let next = rest
            .get(..4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize)
            .ok_or(DecodeError::Truncated)?;
        if next == 0 {
            entries.push(rest);
            return Ok(entries);
        }
        if !next.is_multiple_of(align) || next > rest.len() {
            return Err(DecodeError::BadOffset);
        }
        entries.push(&rest[..next]);
        pos += next;
    }
}

/// Rounds `n` up to a multiple of `align` (a power of two).
pub(crate) fn align_up(n: usize, align: usize) -> usize {
    (n + align - 1) & !(align - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::DecodeError;

    #[test]
    fn chain_rejects_loops_and_misalignment() {
        // Entry points at itself (offset 0 is "last", so use a bad 4 for align 8).
        let mut b = vec![0u8; 16];
        b[0] = 4;
        assert_eq!(chain_entries(&b, 8), Err(DecodeError::BadOffset));
        b[0] = 24;
        assert_eq!(chain_entries(&b, 8), Err(DecodeError::BadOffset));
        b[0] = 8;
        assert_eq!(chain_entries(&b, 8).unwrap().len(), 2);
        assert_eq!(chain_entries(&b[..3], 8), Err(DecodeError::Truncated));
    }
}
