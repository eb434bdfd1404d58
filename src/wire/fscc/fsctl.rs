//! Input and output buffers of the file-system FSCTLs that SMB2 IOCTL
//! carries (MS-FSCC 2.3). The SMB2-specific ones (copychunk, resume key,
//! validate negotiate, snapshots) live in `wire::ioctl`.

use nom::number::complete::{le_u8, le_u16, le_u32, le_u64};

use crate::wire::create::FileId;
use crate::wire::{DResult, DecodeError, PutLe, put_utf16le, utf16_len, utf16le};

/// FILE_ZERO_DATA_INFORMATION (MS-FSCC 2.3.85), FSCTL_SET_ZERO_DATA input:
/// zero [file_offset, beyond_final_zero).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileZeroDataInformation {
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub file_offset: u64,
    /// First byte after the range.
    pub beyond_final_zero: u64,
}

impl FileZeroDataInformation {
    /// Appends 16 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.file_offset);
        out.put_u64(self.beyond_final_zero);
    }

    /// Decodes 16 bytes; offsets are signed on the wire, so values above
    /// i64::MAX and an inverted range are `BadValue`
    /// (STATUS_INVALID_PARAMETER).
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (i, file_offset) = le_u64(b)?;
        let (_, beyond_final_zero) = le_u64(i)?;
        if file_offset > i64::MAX as u64 || beyond_final_zero > i64::MAX as u64 || file_offset > beyond_final_zero {
            return Err(DecodeError::BadValue);
        }
        Ok(Self { file_offset, beyond_final_zero })
    }
}

/// FILE_ALLOCATED_RANGE_BUFFER (MS-FSCC 2.3.52): the input of
/// FSCTL_QUERY_ALLOCATED_RANGES and each element of its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AllocatedRange {
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub file_offset: u64,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub length: u64,
}

impl AllocatedRange {
    /// Appends 16 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.file_offset);
        out.put_u64(self.length);
    }

    /// Decodes the 16-byte query range; negative offsets or lengths, or a
    /// range that overflows, are `BadValue`.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (i, file_offset) = le_u64(b)?;
        let (_, length) = le_u64(i)?;
        let end = file_offset.checked_add(length).ok_or(DecodeError::BadValue)?;
        if end > i64::MAX as u64 {
            return Err(DecodeError::BadValue);
        }
        Ok(Self { file_offset, length })
    }

    /// Encodes the output array, as many whole ranges as fit in `max_len`;
    /// returns false if some did not fit (STATUS_BUFFER_OVERFLOW).
    pub fn encode_list(ranges: &[Self], max_len: usize, out: &mut Vec<u8>) -> bool {
        let n = ranges.len().min(max_len / 16);
        for r in &ranges[..n] {
            r.encode(out);
        }
        n == ranges.len()
    }

    /// Decodes an output array (client side); a trailing partial element is
    /// `BadLength`.
    pub fn decode_list(b: &[u8]) -> DResult<Vec<Self>> {
        if !b.len().is_multiple_of(16) {
            return Err(DecodeError::BadLength);
        }
        b.chunks_exact(16)
            .map(|c| {
                let (i, file_offset) = le_u64(c)?;
                let (_, length) = le_u64(i)?;
                Ok(Self { file_offset, length })
            })
            .collect()
    }
}

/// FSCTL_PIPE_WAIT request (MS-FSCC 2.3.49).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PipeWaitRequest {
    /// Timeout in 100 ns units, if TimeoutSpecified.
    pub timeout: Option<u64>,
    /// Name of the pipe, without "\pipe\".
    pub name: String,
}

impl PipeWaitRequest {
    /// Appends the request.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.timeout.unwrap_or(0));
        out.put_u32(utf16_len(&self.name) as u32);
        out.put_u8(u8::from(self.timeout.is_some()));
        out.put_u8(0);
        put_utf16le(out, &self.name);
    }

    /// Decodes the request.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (i, timeout) = le_u64(b)?;
        let (i, len) = le_u32(i)?;
        let (i, specified) = le_u8(i)?;
        let (i, _padding) = le_u8(i)?;
        let name = i.get(..len as usize).ok_or(DecodeError::BadLength)?;
        Ok(Self { timeout: (specified != 0).then_some(timeout), name: utf16le(name)? })
    }
}

/// NumRanges of a FILE_LEVEL_TRIM input (MS-FSCC 2.3.73: Key, NumRanges,
/// then the ranges); 0 when the input is too short to hold it.
pub fn trim_range_count(b: &[u8]) -> u32 {
    b.get(4..8).map_or(0, |n| u32::from_le_bytes([n[0], n[1], n[2], n[3]]))
}

/// FILE_SET_SPARSE_BUFFER (MS-FSCC 2.3.64): an empty input means TRUE.
pub fn decode_set_sparse(b: &[u8]) -> bool {
    b.first().is_none_or(|&v| v != 0)
}

/// CompressionState of FSCTL_GET/SET_COMPRESSION (MS-FSCC 2.3.12, 2.3.67).
pub fn decode_compression_state(b: &[u8]) -> DResult<u16> {
    Ok(le_u16(b)?.1)
}

/// COMPRESSION_FORMAT_NONE: the only state we report.
pub const COMPRESSION_FORMAT_NONE: u16 = 0;

/// FILE_OBJECTID_BUFFER (MS-FSCC 2.1.3), output of FSCTL_GET_OBJECT_ID and
/// FSCTL_CREATE_OR_GET_OBJECT_ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FileObjectIdBuffer {
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub object_id: [u8; 16],
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub birth_volume_id: [u8; 16],
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub birth_object_id: [u8; 16],
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub domain_id: [u8; 16],
}

impl FileObjectIdBuffer {
    /// Appends 64 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        for g in [&self.object_id, &self.birth_volume_id, &self.birth_object_id, &self.domain_id] {
            out.extend_from_slice(g);
        }
    }

    /// Decodes 64 bytes.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let b = b.get(..64).ok_or(DecodeError::Truncated)?;
        let mut s = Self::default();
        s.object_id.copy_from_slice(&b[..16]);
        s.birth_volume_id.copy_from_slice(&b[16..32]);
        s.birth_object_id.copy_from_slice(&b[32..48]);
        s.domain_id.copy_from_slice(&b[48..]);
        Ok(s)
    }
}

/// FSCTL_GET_INTEGRITY_INFORMATION_BUFFER (MS-FSCC 2.3.30), 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IntegrityInformation {
    /// ChecksumAlgorithm (0: none).
    pub checksum_algorithm: u16,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub flags: u32,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub checksum_chunk_size: u32,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub cluster_size: u32,
}

impl IntegrityInformation {
    /// Appends 16 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(self.checksum_algorithm);
        out.put_u16(0);
        out.put_u32(self.flags);
        out.put_u32(self.checksum_chunk_size);
        out.put_u32(self.cluster_size);
    }

    /// Decodes 16 bytes.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (i, checksum_algorithm) = le_u16(b)?;
        let (i, _reserved) = le_u16(i)?;
        let (i, flags) = le_u32(i)?;
        let (i, checksum_chunk_size) = le_u32(i)?;
        let (_, cluster_size) = le_u32(i)?;
        Ok(Self { checksum_algorithm, flags, checksum_chunk_size, cluster_size })
    }
}

/// DUPLICATE_EXTENTS_DATA (MS-FSCC 2.3.8) as SMB2 sends it: the source is
/// an SMB2 FileId (16 bytes) rather than a local handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DuplicateExtentsData {
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub source_file_id: FileId,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub source_file_offset: u64,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub target_file_offset: u64,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub byte_count: u64,
}

impl DuplicateExtentsData {
    /// Appends 40 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        self.source_file_id.encode(out);
        out.put_u64(self.source_file_offset);
        out.put_u64(self.target_file_offset);
        out.put_u64(self.byte_count);
    }

    /// Decodes 40 bytes.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (i, source_file_id) = FileId::parse(b)?;
        let (i, source_file_offset) = le_u64(i)?;
        let (i, target_file_offset) = le_u64(i)?;
        let (_, byte_count) = le_u64(i)?;
        Ok(Self { source_file_id, source_file_offset, target_file_offset, byte_count })
    }
}

/// REPARSE_DATA_BUFFER (MS-FSCC 2.1.2.2), generic form: the tag and its
/// opaque data. Used by FSCTL_GET/SET_REPARSE_POINT.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReparseDataBuffer {
    /// ReparseTag (IO_REPARSE_TAG_SYMLINK 0xA000000C, …).
    pub tag: u32,
    /// DataBuffer (ReparseDataLength bytes).
    pub data: Vec<u8>,
}

/// IO_REPARSE_TAG_SYMLINK (MS-FSCC 2.1.2.1).
pub const IO_REPARSE_TAG_SYMLINK: u32 = 0xA000_000C;
/// IO_REPARSE_TAG_MOUNT_POINT (MS-FSCC 2.1.2.1).
pub const IO_REPARSE_TAG_MOUNT_POINT: u32 = 0xA000_0003;

impl ReparseDataBuffer {
    /// Appends the buffer (data is at most 16 KiB, MS-FSCC 2.1.2.2).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.tag);
        out.put_u16(self.data.len() as u16);
        out.put_u16(0);
        out.extend_from_slice(&self.data);
    }

    /// Decodes the buffer.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (i, tag) = le_u32(b)?;
        let (i, len) = le_u16(i)?;
        let (i, _reserved) = le_u16(i)?;
        let data = i.get(..usize::from(len)).ok_or(DecodeError::BadLength)?;
        Ok(Self { tag, data: data.to_vec() })
    }
}

/// REQ_GET_DFS_REFERRAL (MS-DFSC 2.2.2), the FSCTL_DFS_GET_REFERRALS input.
/// We are not a DFS server and answer STATUS_NOT_FOUND, but parse it for
/// logging.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DfsReferralRequest {
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub max_referral_level: u16,
    /// RequestFileName without its NUL terminator.
    pub request_file_name: String,
}

impl DfsReferralRequest {
    /// Appends the request with its NUL terminator.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(self.max_referral_level);
        put_utf16le(out, &self.request_file_name);
        out.put_u16(0);
    }

    /// Decodes the request; the name runs to the first NUL unit.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (i, max_referral_level) = le_u16(b)?;
        let end = i.chunks_exact(2).position(|c| c == [0, 0]).ok_or(DecodeError::BadValue)?;
        Ok(Self { max_referral_level, request_file_name: utf16le(&i[..end * 2])? })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// FSCTL_DFS_GET_REFERRALS input from captures/smbclient-SMB3_11-signed.pcap frame 14.
    #[test]
    fn decodes_captured_dfs_referral_request() {
        let msg = include_bytes!("../../../protocol-tests/fixtures/smbclient-SMB3_11-signed/14-ioctl-req.bin");
        let r = DfsReferralRequest::decode(&msg[0x78..0x78 + 0x22]).unwrap();
        assert_eq!(r.max_referral_level, 3);
        assert_eq!(r.request_file_name, "\\127.0.0.1\\data");
        let mut out = Vec::new();
        r.encode(&mut out);
        assert_eq!(out, &msg[0x78..0x78 + 0x22]);
    }

    #[test]
    fn zero_data_and_ranges_validate() {
        let mut b = Vec::new();
        FileZeroDataInformation { file_offset: 10, beyond_final_zero: 5 }.encode(&mut b);
        assert_eq!(FileZeroDataInformation::decode(&b), Err(DecodeError::BadValue));
        b.clear();
        AllocatedRange { file_offset: u64::MAX, length: 2 }.encode(&mut b);
        assert_eq!(AllocatedRange::decode(&b), Err(DecodeError::BadValue));
        let ranges = [AllocatedRange { file_offset: 0, length: 4096 }; 3];
        let mut out = Vec::new();
        assert!(!AllocatedRange::encode_list(&ranges, 40, &mut out));
        assert_eq!(AllocatedRange::decode_list(&out).unwrap().len(), 2);
        assert!(decode_set_sparse(&[]));
        assert!(!decode_set_sparse(&[0]));
    }

    proptest! {
        #[test]
        fn round_trips(t in proptest::option::of(any::<u64>()), name in "[a-z\u{3041}-\u{3096}]{0,20}", v in any::<(u64, u64, u64, u64, u64)>(), data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let mut out = Vec::new();
            let p = PipeWaitRequest { timeout: t, name };
            p.encode(&mut out);
            prop_assert_eq!(PipeWaitRequest::decode(&out).unwrap(), p);
            out.clear();
            let d = DuplicateExtentsData { source_file_id: FileId { persistent: v.0, volatile: v.1 }, source_file_offset: v.2, target_file_offset: v.3, byte_count: v.4 };
            d.encode(&mut out);
            prop_assert_eq!(DuplicateExtentsData::decode(&out).unwrap(), d);
            out.clear();
            let r = ReparseDataBuffer { tag: v.0 as u32, data };
            r.encode(&mut out);
            prop_assert_eq!(ReparseDataBuffer::decode(&out).unwrap(), r);
        }

        #[test]
        fn decoders_never_panic(b in proptest::collection::vec(any::<u8>(), 0..80)) {
            let _ = PipeWaitRequest::decode(&b);
            let _ = ReparseDataBuffer::decode(&b);
            let _ = DfsReferralRequest::decode(&b);
            let _ = AllocatedRange::decode_list(&b);
            let _ = FileObjectIdBuffer::decode(&b);
            let _ = IntegrityInformation::decode(&b);
        }
    }
}
