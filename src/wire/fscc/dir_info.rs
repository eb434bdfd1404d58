//! Directory information classes returned by QUERY_DIRECTORY (MS-FSCC
//! 2.4.10, 2.4.14, 2.4.8, 2.4.17, 2.4.18, 2.4.22, 2.4.33): one [`DirEntry`]
//! type and a [`DirWriter`] that lays entries out on 8-byte boundaries with
//! NextEntryOffset chaining inside the client's OutputBufferLength.

use nom::number::complete::{le_u8, le_u32, le_u64};

use super::{FileTimes, InfoClass, align_up, chain_entries};
use crate::wire::{DResult, DecodeError, PutLe, put_utf16le, utf16_len, utf16le};

/// Everything any supported directory class can report about one entry.
/// Classes that lack a field ignore it when encoding and leave it at its
/// default when decoding.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DirEntry {
    /// FileIndex (0: position is not meaningful, as on NTFS).
    pub file_index: u32,
    /// The four timestamps.
    pub times: FileTimes,
    /// EndOfFile.
    pub end_of_file: u64,
    /// AllocationSize.
    pub allocation_size: u64,
    /// FileAttributes.
    pub file_attributes: u32,
    /// EaSize (the reparse tag instead when FILE_ATTRIBUTE_REPARSE_POINT).
    pub ea_size: u32,
    /// ReparsePointTag (FileIdExtdDirectoryInformation only).
    pub reparse_tag: u32,
    /// FileId; FileIdExtd carries it as the low half of a FILE_ID_128.
    pub file_id: u64,
    /// 8.3 ShortName (Both / IdBoth), at most 12 characters.
    pub short_name: String,
    /// FileName.
    pub name: String,
}

/// True for the classes this module encodes.
pub fn is_directory_class(class: InfoClass) -> bool {
    fixed_len(class).is_some()
}

/// Size of the fixed part of an entry of `class`, before FileName.
fn fixed_len(class: InfoClass) -> Option<usize> {
    Some(match class {
        InfoClass::DIRECTORY => 64,
        InfoClass::FULL_DIRECTORY => 68,
        InfoClass::BOTH_DIRECTORY => 94,
        InfoClass::NAMES => 12,
        InfoClass::ID_BOTH_DIRECTORY => 104,
        InfoClass::ID_FULL_DIRECTORY => 80,
        InfoClass::ID_EXTD_DIRECTORY => 88,
        _ => return None,
    })
}

/// Appends one entry of `class` with NextEntryOffset 0.
fn encode_entry(class: InfoClass, e: &DirEntry, out: &mut Vec<u8>) {
    out.put_u32(0);
    out.put_u32(e.file_index);
    let name_len = utf16_len(&e.name) as u32;
    if class == InfoClass::NAMES {
        out.put_u32(name_len);
        put_utf16le(out, &e.name);
        return;
    }
    e.times.encode(out);
    out.put_u64(e.end_of_file);
    out.put_u64(e.allocation_size);
    out.put_u32(e.file_attributes);
    out.put_u32(name_len);
    if class != InfoClass::DIRECTORY {
        out.put_u32(e.ea_size);
    }
    match class {
        InfoClass::BOTH_DIRECTORY | InfoClass::ID_BOTH_DIRECTORY => {
            put_short_name(out, &e.short_name);
            if class == InfoClass::ID_BOTH_DIRECTORY {
                out.put_u16(0);
                out.put_u64(e.file_id);
            }
        }
        InfoClass::ID_FULL_DIRECTORY => {
            out.put_u32(0);
            out.put_u64(e.file_id);
        }
        InfoClass::ID_EXTD_DIRECTORY => {
            out.put_u32(e.reparse_tag);
            out.put_u64(e.file_id);
            out.put_u64(0);
        }
        _ => {}
    }
    put_utf16le(out, &e.name);
}

/// ShortNameLength, Reserved, and the 24-byte ShortName field (MS-FSCC 2.4.8).
fn put_short_name(out: &mut Vec<u8>, short: &str) {
    let mut field = Vec::with_capacity(24);
    put_utf16le(&mut field, short);
    field.truncate(24);
    out.put_u8(field.len() as u8);
    out.put_u8(0);
    let len = field.len();
    out.extend_from_slice(&field);
    out.put_zeros(24 - len);
}

/// Builds a QUERY_DIRECTORY output buffer (MS-SMB2 3.3.5.18): entries are
/// 8-byte aligned, each NextEntryOffset points at the next one, the last is
/// 0 and unpadded, and the total never exceeds the client's
/// OutputBufferLength.
#[derive(Debug)]
pub struct DirWriter {
    class: InfoClass,
    max_len: usize,
    buf: Vec<u8>,
    last: Option<usize>,
    count: usize,
}

impl DirWriter {
    /// A writer for `class` bounded by `max_len` bytes; `None` if the class
    /// is not a supported directory class (STATUS_INVALID_INFO_CLASS).
    pub fn new(class: InfoClass, max_len: usize) -> Option<Self> {
        fixed_len(class)?;
        Some(Self { class, max_len, buf: Vec::new(), last: None, count: 0 })
    }

    /// Appends `e` and returns true, or returns false and writes nothing if
    /// it does not fit. A false on the first entry means the buffer cannot
    /// hold even one entry (the handler answers STATUS_INFO_LENGTH_MISMATCH
    /// or STATUS_BUFFER_OVERFLOW per MS-SMB2 3.3.5.18); later a false means
    /// "stop here and resume at this entry next time".
    pub fn push(&mut self, e: &DirEntry) -> bool {
        let Some(fixed) = fixed_len(self.class) else {
            return false;
        };
        let start = if self.last.is_some() { align_up(self.buf.len(), 8) } else { 0 };
        if start + fixed + utf16_len(&e.name) > self.max_len {
            return false;
        }
        self.buf.resize(start, 0);
        if let Some(prev) = self.last {
            self.buf.set_u32(prev, (start - prev) as u32);
        }
        self.last = Some(start);
        encode_entry(self.class, e, &mut self.buf);
        self.count += 1;
        true
    }

    /// Number of entries written.
    pub fn count(&self) -> usize {
        self.count
    }

    /// True if no entry has been written.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The bytes written so far.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// Consumes the writer, returning the output buffer.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

/// Decodes a QUERY_DIRECTORY output buffer of `class` (client side).
pub fn decode_entries(class: InfoClass, b: &[u8]) -> DResult<Vec<DirEntry>> {
    if !is_directory_class(class) {
        return Err(DecodeError::BadValue);
    }
    chain_entries(b, 8)?.into_iter().map(|e| decode_entry(class, e)).collect()
}

fn decode_entry(class: InfoClass, b: &[u8]) -> DResult<DirEntry> {
    let mut e = DirEntry::default();
    let (i, _next) = le_u32(b)?;
    let (i, file_index) = le_u32(i)?;
    e.file_index = file_index;
    if class == InfoClass::NAMES {
        let (i, len) = le_u32(i)?;
        e.name = name_at(i, len)?;
        return Ok(e);
    }
    let (i, times) = FileTimes::parse(i)?;
    let (i, end_of_file) = le_u64(i)?;
    let (i, allocation_size) = le_u64(i)?;
    let (i, file_attributes) = le_u32(i)?;
    let (mut i, name_len) = le_u32(i)?;
    (e.times, e.end_of_file, e.allocation_size, e.file_attributes) =
        (times, end_of_file, allocation_size, file_attributes);
    if class != InfoClass::DIRECTORY {
        (i, e.ea_size) = le_u32(i)?;
    }
    match class {
        InfoClass::BOTH_DIRECTORY | InfoClass::ID_BOTH_DIRECTORY => {
            let (rest, short_len) = le_u8(i)?;
            let field = rest.get(1..25).ok_or(DecodeError::Truncated)?;
            let short = field.get(..usize::from(short_len)).ok_or(DecodeError::BadLength)?;
            e.short_name = utf16le(short)?;
            i = rest.get(25..).ok_or(DecodeError::Truncated)?;
            if class == InfoClass::ID_BOTH_DIRECTORY {
                let rest = i.get(2..).ok_or(DecodeError::Truncated)?;
                (i, e.file_id) = le_u64(rest)?;
            }
        }
        InfoClass::ID_FULL_DIRECTORY => {
            let (rest, _reserved) = le_u32(i)?;
            (i, e.file_id) = le_u64(rest)?;
        }
        InfoClass::ID_EXTD_DIRECTORY => {
            let (rest, tag) = le_u32(i)?;
            let (rest, id) = le_u64(rest)?;
            let (rest, _id_high) = le_u64(rest)?;
            (i, e.reparse_tag, e.file_id) = (rest, tag, id);
        }
        _ => {}
    }
    e.name = name_at(i, name_len)?;
    Ok(e)
}

fn name_at(i: &[u8], len: u32) -> DResult<String> {
    utf16le(i.get(..len as usize).ok_or(DecodeError::BadLength)?)
}

/// The Mac metadata of one directory entry, as AAPL READDIR_ATTR puts it
/// into a FileIdBothDirectoryInformation entry (see [`patch_id_both`]).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct EntryAttr {
    /// Maximal access of the user (goes in EaSize).
    pub max_access: u32,
    /// Length of the resource fork.
    pub rfork_len: u64,
    /// Compressed FinderInfo: type, creator (files), flags, extended flags,
    /// date added (big endian, seconds since 2000).
    pub finder_info: [u8; 16],
    /// UNIX mode (type and permission bits).
    pub unix_mode: u16,
}

/// Offsets in a FileIdBothDirectoryInformation entry (MS-FSCC 2.4.17).
mod off {
    pub const EA_SIZE: usize = 64;
    pub const SHORT_NAME_LENGTH: usize = 68;
    pub const SHORT_NAME: usize = 70;
    pub const RESERVED2: usize = 94;
}

/// Rewrites the entries of a FileIdBothDirectoryInformation buffer with
/// their Mac metadata, in order (Samba `smbd_marshall_dir_entry` with
/// RDATTR_AAPL): ShortNameLength 24, the resource fork length and the
/// compressed FinderInfo in ShortName, the mode in Reserved2.
pub fn patch_id_both(buf: &mut [u8], attrs: &[EntryAttr]) {
    let mut pos = 0usize;
    for a in attrs {
        let Some(e) = buf.get_mut(pos..pos + off::RESERVED2 + 2) else {
            return;
        };
        e[off::EA_SIZE..off::EA_SIZE + 4].copy_from_slice(&a.max_access.to_le_bytes());
        e[off::SHORT_NAME_LENGTH] = 24;
        e[off::SHORT_NAME_LENGTH + 1] = 0;
        e[off::SHORT_NAME..off::SHORT_NAME + 8].copy_from_slice(&a.rfork_len.to_le_bytes());
        e[off::SHORT_NAME + 8..off::SHORT_NAME + 24].copy_from_slice(&a.finder_info);
        e[off::RESERVED2..off::RESERVED2 + 2].copy_from_slice(&a.unix_mode.to_le_bytes());
        let next = u32::from_le_bytes([e[0], e[1], e[2], e[3]]) as usize;
        if next == 0 {
            return;
        }
        pos += next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CLASSES: [InfoClass; 7] = [
        InfoClass::DIRECTORY,
        InfoClass::FULL_DIRECTORY,
        InfoClass::BOTH_DIRECTORY,
        InfoClass::NAMES,
        InfoClass::ID_BOTH_DIRECTORY,
        InfoClass::ID_FULL_DIRECTORY,
        InfoClass::ID_EXTD_DIRECTORY,
    ];

    /// QUERY_DIRECTORY FileIdBothDirectoryInformation output from
    /// captures/smbclient-SMB3_11-signed.pcap frame 23 ("." and ".." of the
    /// share root): decode, then re-encode with DirWriter to Samba's bytes.
    #[test]
    fn id_both_matches_samba() {
        let msg =
            include_bytes!("../../../protocol-tests/fixtures/smbclient-SMB3_11-signed/23-query_directory-resp.bin");
        let buf = &msg[72..];
        let entries = decode_entries(InfoClass::ID_BOTH_DIRECTORY, buf).unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].name, ".");
        assert_eq!(entries[1].name, "..");
        assert_eq!(entries[0].file_attributes, 0x10);
        assert_eq!(entries[0].file_id, 0x0099_41a7);
        let mut w = DirWriter::new(InfoClass::ID_BOTH_DIRECTORY, 0x8000).unwrap();
        for e in &entries {
            assert!(w.push(e));
        }
        assert_eq!(w.as_bytes(), buf);
    }

    #[test]
    fn writer_stops_at_the_limit() {
        let e = DirEntry { name: "a.txt".into(), ..Default::default() };
        // One IdBoth entry is 104 + 10 = 114 bytes; the second starts at 120.
        let mut w = DirWriter::new(InfoClass::ID_BOTH_DIRECTORY, 233).unwrap();
        assert!(w.push(&e));
        assert!(!w.push(&e));
        assert_eq!(w.as_bytes().len(), 114);
        let mut w = DirWriter::new(InfoClass::ID_BOTH_DIRECTORY, 234).unwrap();
        assert!(w.push(&e) && w.push(&e));
        assert_eq!(w.as_bytes().len(), 234);
        assert!(DirWriter::new(InfoClass::BASIC, 100).is_none());
        assert!(!DirWriter::new(InfoClass::NAMES, 10).unwrap().push(&e));
    }

    /// Clears what `class` does not carry, so round trips compare equal.
    fn carried(class: InfoClass, mut e: DirEntry) -> DirEntry {
        if class == InfoClass::NAMES {
            return DirEntry { file_index: e.file_index, name: e.name, ..Default::default() };
        }
        if class == InfoClass::DIRECTORY {
            e.ea_size = 0;
        }
        if !matches!(class, InfoClass::BOTH_DIRECTORY | InfoClass::ID_BOTH_DIRECTORY) {
            e.short_name.clear();
        }
        if !matches!(class, InfoClass::ID_BOTH_DIRECTORY | InfoClass::ID_FULL_DIRECTORY | InfoClass::ID_EXTD_DIRECTORY)
        {
            e.file_id = 0;
        }
        if class != InfoClass::ID_EXTD_DIRECTORY {
            e.reparse_tag = 0;
        }
        e
    }

    fn entry() -> impl Strategy<Value = DirEntry> {
        (
            any::<(u32, [u64; 4], u64, u64, u32, u32, u32, u64)>(),
            "[A-Z0-9~.]{0,12}",
            "[a-zA-Z0-9 ._\u{3041}-\u{30ff}]{1,40}",
        )
            .prop_map(|(n, short_name, name)| DirEntry {
                file_index: n.0,
                times: FileTimes { creation: n.1[0], last_access: n.1[1], last_write: n.1[2], change: n.1[3] },
                end_of_file: n.2,
                allocation_size: n.3,
                file_attributes: n.4,
                ea_size: n.5,
                reparse_tag: n.6,
                file_id: n.7,
                short_name,
                name,
            })
    }

    proptest! {
        #[test]
        fn every_class_round_trips(c in 0usize..7, v in proptest::collection::vec(entry(), 1..6), limit in 100usize..2000) {
            let class = CLASSES[c];
            let mut w = DirWriter::new(class, limit).unwrap();
            let mut written = Vec::new();
            for e in v {
                if !w.push(&e) {
                    break;
                }
                written.push(carried(class, e));
            }
            prop_assert!(w.as_bytes().len() <= limit);
            prop_assert_eq!(decode_entries(class, w.as_bytes()).unwrap(), written);
        }

        #[test]
        fn decode_never_panics(c in 0usize..7, b in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = decode_entries(CLASSES[c], &b);
        }
    }
}
