//! File information classes returned by QUERY_INFO (MS-FSCC 2.4). Each type
//! encodes what the server returns and decodes it back (for the client and
//! for round-trip tests). Classes that SET_INFO also accepts (basic,
//! position, mode) are decoded by the server with the same `decode`.

use nom::number::complete::{le_u8, le_u16, le_u32, le_u64};

use super::{FileTimes, align_up, chain_entries};
use crate::wire::{DResult, DecodeError, PutLe, put_utf16le, utf16_len, utf16le};

/// FileBasicInformation (MS-FSCC 2.4.7), 40 bytes. In SET_INFO a time of 0
/// means "leave unchanged" and -1 (u64::MAX) "stop updating it".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileBasicInformation {
    /// The four timestamps.
    pub times: FileTimes,
    /// FileAttributes (0 in SET_INFO: leave unchanged).
    pub file_attributes: u32,
}

impl FileBasicInformation {
    /// Encoded size.
    pub const LEN: usize = 40;

    /// Appends 40 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.times.encode(out);
        out.put_u32(self.file_attributes);
        out.put_u32(0);
    }

    /// Decodes; SET_INFO buffers shorter than 40 bytes are `Truncated`
    /// (STATUS_INFO_LENGTH_MISMATCH).
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (i, times) = FileTimes::parse(b)?;
        let (_, file_attributes) = le_u32(i)?;
        // The trailing Reserved u32 is optional on input (Windows sends 36).
        Ok(Self { times, file_attributes })
    }
}

/// FileStandardInformation (MS-FSCC 2.4.41), 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileStandardInformation {
    /// AllocationSize.
    pub allocation_size: u64,
    /// EndOfFile.
    pub end_of_file: u64,
    /// NumberOfLinks.
    pub number_of_links: u32,
    /// DeletePending.
    pub delete_pending: bool,
    /// Directory.
    pub directory: bool,
}

impl FileStandardInformation {
    /// Encoded size.
    pub const LEN: usize = 24;

    /// Appends 24 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.allocation_size);
        out.put_u64(self.end_of_file);
        out.put_u32(self.number_of_links);
        out.put_u8(u8::from(self.delete_pending));
        out.put_u8(u8::from(self.directory));
        out.put_u16(0);
    }

    /// Decodes 24 bytes.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (i, allocation_size) = le_u64(b)?;
        let (i, end_of_file) = le_u64(i)?;
        let (i, number_of_links) = le_u32(i)?;
        let (i, delete_pending) = le_u8(i)?;
        let (i, directory) = le_u8(i)?;
        let (_, _reserved) = le_u16(i)?;
        Ok(Self {
            allocation_size,
            end_of_file,
            number_of_links,
            delete_pending: delete_pending != 0,
            directory: directory != 0,
        })
    }
}

/// Defines a class that is a single little-endian integer.
macro_rules! scalar_info {
    ($(#[$doc:meta])* $name:ident { $field:ident: $ty:ty, $put:ident, $parse:ident }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name {
            #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
            pub $field: $ty,
        }

        impl $name {
            /// Encoded size.
            pub const LEN: usize = std::mem::size_of::<$ty>();

            /// Appends the value.
            pub fn encode(&self, out: &mut Vec<u8>) {
                out.$put(self.$field);
            }

            /// Decodes the value (extra trailing bytes are ignored).
            pub fn decode(b: &[u8]) -> DResult<Self> {
                let (_, $field) = $parse(b)?;
                Ok(Self { $field })
            }
        }
    };
}

scalar_info!(
    /// FileInternalInformation (MS-FSCC 2.4.22): the file id.
    FileInternalInformation { index_number: u64, put_u64, le_u64 }
);
scalar_info!(
    /// FileEaInformation (MS-FSCC 2.4.13): size of the EAs as FILE_FULL_EA_INFORMATION.
    FileEaInformation { ea_size: u32, put_u32, le_u32 }
);
scalar_info!(
    /// FileAccessInformation (MS-FSCC 2.4.1): the open's granted access.
    FileAccessInformation { access_flags: u32, put_u32, le_u32 }
);
scalar_info!(
    /// FilePositionInformation (MS-FSCC 2.4.35); also accepted by SET_INFO.
    FilePositionInformation { current_byte_offset: u64, put_u64, le_u64 }
);
scalar_info!(
    /// FileModeInformation (MS-FSCC 2.4.26); also accepted by SET_INFO.
    FileModeInformation { mode: u32, put_u32, le_u32 }
);
scalar_info!(
    /// FileAlignmentInformation (MS-FSCC 2.4.3).
    FileAlignmentInformation { alignment_requirement: u32, put_u32, le_u32 }
);

/// FileNameInformation (MS-FSCC 2.4.27): FileNameLength u32 + UTF-16 name.
/// The same layout serves FileAlternateNameInformation (2.4.5, the 8.3
/// name) and FileNormalizedNameInformation (2.4.30).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileNameInformation {
    /// FileName, without terminator.
    pub file_name: String,
}

/// FileAlternateNameInformation (MS-FSCC 2.4.5).
pub type FileAlternateNameInformation = FileNameInformation;
/// FileNormalizedNameInformation (MS-FSCC 2.4.30).
pub type FileNormalizedNameInformation = FileNameInformation;

impl FileNameInformation {
    /// Appends FileNameLength and the name.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(utf16_len(&self.file_name) as u32);
        put_utf16le(out, &self.file_name);
    }

    /// Decodes; the name must lie inside `b`.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (i, len) = le_u32(b)?;
        let name = i.get(..len as usize).ok_or(DecodeError::BadLength)?;
        Ok(Self { file_name: utf16le(name)? })
    }
}

/// FileAllInformation (MS-FSCC 2.4.2): the concatenation of basic,
/// standard, internal, EA, access, position, mode, alignment and name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileAllInformation {
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub basic: FileBasicInformation,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub standard: FileStandardInformation,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub internal: FileInternalInformation,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub ea: FileEaInformation,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub access: FileAccessInformation,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub position: FilePositionInformation,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub mode: FileModeInformation,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub alignment: FileAlignmentInformation,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub name: FileNameInformation,
}

impl FileAllInformation {
    /// Size of everything before the name (MS-FSCC 2.4.2).
    pub const FIXED_LEN: usize = 100;

    /// Appends the structure.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.basic.encode(out);
        self.standard.encode(out);
        self.internal.encode(out);
        self.ea.encode(out);
        self.access.encode(out);
        self.position.encode(out);
        self.mode.encode(out);
        self.alignment.encode(out);
        self.name.encode(out);
    }

    /// Decodes the structure.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let part = |from: usize| b.get(from..).ok_or(DecodeError::Truncated);
        Ok(Self {
            basic: FileBasicInformation::decode(part(0)?)?,
            standard: FileStandardInformation::decode(part(40)?)?,
            internal: FileInternalInformation::decode(part(64)?)?,
            ea: FileEaInformation::decode(part(72)?)?,
            access: FileAccessInformation::decode(part(76)?)?,
            position: FilePositionInformation::decode(part(80)?)?,
            mode: FileModeInformation::decode(part(88)?)?,
            alignment: FileAlignmentInformation::decode(part(92)?)?,
            name: FileNameInformation::decode(part(96)?)?,
        })
    }
}

/// One FILE_STREAM_INFORMATION entry (MS-FSCC 2.4.43).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamEntry {
    /// StreamName in the ":name:$DATA" form ("::$DATA" for the unnamed stream).
    pub name: String,
    /// StreamSize.
    pub size: u64,
    /// StreamAllocationSize.
    pub allocation_size: u64,
}

/// FileStreamInformation (MS-FSCC 2.4.43): a chain of entries, each
/// starting on an 8-byte boundary.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FileStreamInformation {
    /// The streams, unnamed data stream first by convention.
    pub entries: Vec<StreamEntry>,
}

impl FileStreamInformation {
    /// Appends the chain; the last entry is not padded. Positions are
    /// relative to where the chain starts in `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let base = out.len();
        let mut prev: Option<usize> = None;
        for e in &self.entries {
            if let Some(p) = prev {
                let start = base + align_up(out.len() - base, 8);
                out.resize(start, 0);
                out.set_u32(p, (start - p) as u32);
            }
            prev = Some(out.len());
            out.put_u32(0);
            out.put_u32(utf16_len(&e.name) as u32);
            out.put_u64(e.size);
            out.put_u64(e.allocation_size);
            put_utf16le(out, &e.name);
        }
    }

    /// Decodes the chain.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let mut entries = Vec::new();
        for e in chain_entries(b, 8)? {
            let (i, _next) = le_u32(e)?;
            let (i, len) = le_u32(i)?;
            let (i, size) = le_u64(i)?;
            let (i, allocation_size) = le_u64(i)?;
            let name = i.get(..len as usize).ok_or(DecodeError::BadLength)?;
            entries.push(StreamEntry { name: utf16le(name)?, size, allocation_size });
        }
        Ok(Self { entries })
    }
}

/// FileNetworkOpenInformation (MS-FSCC 2.4.29), 56 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileNetworkOpenInformation {
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub times: FileTimes,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub allocation_size: u64,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub end_of_file: u64,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub file_attributes: u32,
}

impl FileNetworkOpenInformation {
    /// Appends 56 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.times.encode(out);
        out.put_u64(self.allocation_size);
        out.put_u64(self.end_of_file);
        out.put_u32(self.file_attributes);
        out.put_u32(0);
    }

    /// Decodes 56 bytes.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (i, times) = FileTimes::parse(b)?;
        let (i, allocation_size) = le_u64(i)?;
        let (i, end_of_file) = le_u64(i)?;
        let (i, file_attributes) = le_u32(i)?;
        let (_, _reserved) = le_u32(i)?;
        Ok(Self { times, allocation_size, end_of_file, file_attributes })
    }
}

/// FileAttributeTagInformation (MS-FSCC 2.4.6), 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileAttributeTagInformation {
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub file_attributes: u32,
    /// ReparseTag (0 unless FILE_ATTRIBUTE_REPARSE_POINT).
    pub reparse_tag: u32,
}

impl FileAttributeTagInformation {
    /// Appends 8 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.file_attributes);
        out.put_u32(self.reparse_tag);
    }

    /// Decodes 8 bytes.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (i, file_attributes) = le_u32(b)?;
        let (_, reparse_tag) = le_u32(i)?;
        Ok(Self { file_attributes, reparse_tag })
    }
}

/// FileCompressionInformation (MS-FSCC 2.4.9), 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileCompressionInformation {
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub compressed_file_size: u64,
    /// CompressionFormat (0 = COMPRESSION_FORMAT_NONE).
    pub compression_format: u16,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub compression_unit_shift: u8,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub chunk_shift: u8,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub cluster_shift: u8,
}

impl FileCompressionInformation {
    /// Appends 16 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.compressed_file_size);
        out.put_u16(self.compression_format);
        out.put_u8(self.compression_unit_shift);
        out.put_u8(self.chunk_shift);
        out.put_u8(self.cluster_shift);
        out.put_zeros(3);
    }

    /// Decodes 16 bytes.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (i, compressed_file_size) = le_u64(b)?;
        let (i, compression_format) = le_u16(i)?;
        let (i, compression_unit_shift) = le_u8(i)?;
        let (i, chunk_shift) = le_u8(i)?;
        let (i, cluster_shift) = le_u8(i)?;
        if i.len() < 3 {
            return Err(DecodeError::Truncated);
        }
        Ok(Self { compressed_file_size, compression_format, compression_unit_shift, chunk_shift, cluster_shift })
    }
}

/// FileIdInformation (MS-FSCC 2.4.21), 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileIdInformation {
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub volume_serial_number: u64,
    /// FileId as a 128-bit FILE_ID_128.
    pub file_id: [u8; 16],
}

impl FileIdInformation {
    /// Appends 24 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.volume_serial_number);
        out.extend_from_slice(&self.file_id);
    }

    /// Decodes 24 bytes.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (i, volume_serial_number) = le_u64(b)?;
        let id = i.get(..16).ok_or(DecodeError::Truncated)?;
        let mut file_id = [0u8; 16];
        file_id.copy_from_slice(id);
        Ok(Self { volume_serial_number, file_id })
    }
}

/// FilePipeInformation (MS-FSCC 2.4.33), 8 bytes; also settable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FilePipeInformation {
    /// ReadMode: 0 byte stream, 1 message.
    pub read_mode: u32,
    /// CompletionMode: 0 queue, 1 complete.
    pub completion_mode: u32,
}

impl FilePipeInformation {
    /// Appends 8 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.read_mode);
        out.put_u32(self.completion_mode);
    }

    /// Decodes 8 bytes.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (i, read_mode) = le_u32(b)?;
        let (_, completion_mode) = le_u32(i)?;
        Ok(Self { read_mode, completion_mode })
    }
}

/// FilePipeLocalInformation (MS-FSCC 2.4.34), ten u32 fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FilePipeLocalInformation {
    /// NamedPipeType, NamedPipeConfiguration, MaximumInstances,
    /// CurrentInstances, InboundQuota, ReadDataAvailable, OutboundQuota,
    /// WriteQuotaAvailable, NamedPipeState, NamedPipeEnd, in wire order.
    pub fields: [u32; 10],
}

impl FilePipeLocalInformation {
    /// Appends 40 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        for f in self.fields {
            out.put_u32(f);
        }
    }

    /// Decodes 40 bytes.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let mut fields = [0u32; 10];
        let mut i = b;
        for f in &mut fields {
            let (rest, v) = le_u32(i)?;
            *f = v;
            i = rest;
        }
        Ok(Self { fields })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn times() -> impl Strategy<Value = FileTimes> {
        any::<[u64; 4]>().prop_map(|t| FileTimes { creation: t[0], last_access: t[1], last_write: t[2], change: t[3] })
    }

    fn name() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 ._:$\u{3041}-\u{30ff}\u{4e00}-\u{4e20}]{0,24}"
    }

    /// QUERY_INFO FileAllInformation response body from
    /// captures/smbclient-SMB3_11-signed.pcap frame 47 (after the 8-byte
    /// response fixed part): Samba's bytes for \d1\a.txt, 14 bytes long.
    #[test]
    fn all_information_matches_samba() {
        let msg = include_bytes!("../../../protocol-tests/fixtures/smbclient-SMB3_11-signed/47-query_info-resp.bin");
        let buf = &msg[72..];
        let all = FileAllInformation::decode(buf).unwrap();
        assert_eq!(all.basic.file_attributes, 0x20);
        assert_eq!(all.standard.end_of_file, 14);
        assert_eq!(all.standard.allocation_size, 4096);
        assert_eq!(all.standard.number_of_links, 1);
        assert_eq!(all.access.access_flags, 0x0012_0089);
        assert_eq!(all.name.file_name, "\\d1\\a.txt");
        let mut out = Vec::new();
        all.encode(&mut out);
        assert_eq!(out, buf);
    }

    /// FileAlternateNameInformation (frame 55) and FileStreamInformation
    /// (frame 67) from the same capture.
    #[test]
    fn alternate_name_and_streams_match_samba() {
        let msg = include_bytes!("../../../protocol-tests/fixtures/smbclient-SMB3_11-signed/55-query_info-resp.bin");
        let alt = FileAlternateNameInformation::decode(&msg[72..]).unwrap();
        assert_eq!(alt.file_name, "a.txt");
        let mut out = Vec::new();
        alt.encode(&mut out);
        assert_eq!(out, &msg[72..]);

        let msg = include_bytes!("../../../protocol-tests/fixtures/smbclient-SMB3_11-signed/67-query_info-resp.bin");
        let s = FileStreamInformation::decode(&msg[72..]).unwrap();
        assert_eq!(s.entries, vec![StreamEntry { name: "::$DATA".into(), size: 14, allocation_size: 4096 }]);
        let mut out = Vec::new();
        s.encode(&mut out);
        assert_eq!(out, &msg[72..]);
    }

    proptest! {
        #[test]
        fn all_information_round_trips(t in times(), a in any::<u32>(), s in any::<(u64, u64, u32, bool, bool)>(),
                                       n in any::<(u64, u32, u32, u64, u32, u32)>(), file_name in name()) {
            let all = FileAllInformation {
                basic: FileBasicInformation { times: t, file_attributes: a },
                standard: FileStandardInformation { allocation_size: s.0, end_of_file: s.1, number_of_links: s.2, delete_pending: s.3, directory: s.4 },
                internal: FileInternalInformation { index_number: n.0 },
                ea: FileEaInformation { ea_size: n.1 },
                access: FileAccessInformation { access_flags: n.2 },
                position: FilePositionInformation { current_byte_offset: n.3 },
                mode: FileModeInformation { mode: n.4 },
                alignment: FileAlignmentInformation { alignment_requirement: n.5 },
                name: FileNameInformation { file_name },
            };
            let mut out = Vec::new();
            all.encode(&mut out);
            prop_assert_eq!(FileAllInformation::decode(&out).unwrap(), all);
        }

        #[test]
        fn streams_round_trip(v in proptest::collection::vec((name(), any::<u64>(), any::<u64>()), 0..5)) {
            let s = FileStreamInformation {
                entries: v.into_iter().map(|(name, size, allocation_size)| StreamEntry { name, size, allocation_size }).collect(),
            };
            let mut out = Vec::new();
            s.encode(&mut out);
            prop_assert_eq!(FileStreamInformation::decode(&out).unwrap(), s);
        }

        #[test]
        fn small_classes_round_trip(t in times(), x in any::<(u64, u64, u32, u16, u8, u8, u8)>(), id in any::<[u8; 16]>()) {
            let mut out = Vec::new();
            let n = FileNetworkOpenInformation { times: t, allocation_size: x.0, end_of_file: x.1, file_attributes: x.2 };
            n.encode(&mut out);
            prop_assert_eq!(FileNetworkOpenInformation::decode(&out).unwrap(), n);
            out.clear();
            let c = FileCompressionInformation { compressed_file_size: x.0, compression_format: x.3, compression_unit_shift: x.4, chunk_shift: x.5, cluster_shift: x.6 };
            c.encode(&mut out);
            prop_assert_eq!(FileCompressionInformation::decode(&out).unwrap(), c);
            out.clear();
            let f = FileIdInformation { volume_serial_number: x.1, file_id: id };
            f.encode(&mut out);
            prop_assert_eq!(FileIdInformation::decode(&out).unwrap(), f);
            out.clear();
            let a = FileAttributeTagInformation { file_attributes: x.2, reparse_tag: 7 };
            a.encode(&mut out);
            prop_assert_eq!(FileAttributeTagInformation::decode(&out).unwrap(), a);
        }

        #[test]
        fn decoders_never_panic(b in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = FileAllInformation::decode(&b);
            let _ = FileStreamInformation::decode(&b);
            let _ = FileNameInformation::decode(&b);
            let _ = FileBasicInformation::decode(&b);
            let _ = FileCompressionInformation::decode(&b);
            let _ = FilePipeLocalInformation::decode(&b);
            let _ = FileIdInformation::decode(&b);
        }
    }
}
