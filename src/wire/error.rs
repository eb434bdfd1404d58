//! SMB2 ERROR Response (MS-SMB2 2.2.2): the body of every response whose
//! status is an error (and of interim STATUS_PENDING responses), with the
//! 3.1.1 error contexts (2.2.2.1).

use nom::number::complete::{le_u8, le_u16, le_u32};

use super::{DResult, DecodeError, PutLe, body, check_structure_size};

/// ErrorId values (2.2.2.1).
pub mod error_id {
    #![expect(missing_docs, reason = "the constants carry the spec's names; the module doc cites the table")]
    pub const DEFAULT: u32 = 0x0000_0000;
    pub const SHARE_REDIRECT: u32 = 0x7264_5253;
}

/// SMB2 ERROR Context Response (MS-SMB2 2.2.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ErrorContext<'a> {
    /// ErrorId (see [`error_id`]).
    pub error_id: u32,
    /// ErrorContextData.
    pub data: &'a [u8],
}

/// What the ErrorData of an error response holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorData<'a> {
    /// Raw bytes: empty in most errors; a u32 required size for
    /// STATUS_BUFFER_TOO_SMALL (3.3.5.20.1); a symbolic link error
    /// response for STATUS_STOPPED_ON_SYMLINK (2.2.2.2.1).
    Bytes(&'a [u8]),
    /// 3.1.1 error contexts, each 8-byte aligned.
    Contexts(Vec<ErrorContext<'a>>),
}

/// SMB2 ERROR Response (MS-SMB2 2.2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorResponse<'a> {
    /// ErrorData.
    pub data: ErrorData<'a>,
}

impl Default for ErrorResponse<'_> {
    fn default() -> Self {
        Self::EMPTY
    }
}

impl<'a> ErrorResponse<'a> {
    /// StructureSize.
    pub const STRUCTURE_SIZE: u16 = 9;

    /// The usual error body: ByteCount 0 and the one mandatory zero byte.
    pub const EMPTY: ErrorResponse<'static> = ErrorResponse { data: ErrorData::Bytes(&[]) };

    /// Appends the body. ErrorData is never empty on the wire: a zero
    /// ByteCount is followed by one zero byte (2.2.2).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(Self::STRUCTURE_SIZE);
        let count = match &self.data {
            ErrorData::Bytes(_) => 0,
            ErrorData::Contexts(c) => c.len().min(255) as u8,
        };
        out.put_u8(count);
        out.put_u8(0);
        out.put_u32(0);
        let data_start = out.len();
        match &self.data {
            ErrorData::Bytes(b) => out.extend_from_slice(b),
            ErrorData::Contexts(c) => {
                for (k, ctx) in c.iter().take(255).enumerate() {
                    if k > 0 {
                        let pad = (8 - (out.len() - data_start) % 8) % 8;
                        out.put_zeros(pad);
                    }
                    out.put_u32(ctx.data.len() as u32);
                    out.put_u32(ctx.error_id);
                    out.extend_from_slice(ctx.data);
                }
            }
        }
        let byte_count = out.len() - data_start;
        out.set_u32(start + 4, byte_count as u32);
        if byte_count == 0 {
            out.put_u8(0);
        }
    }

    /// Appends the STATUS_BUFFER_TOO_SMALL body: ErrorData is the u32 size
    /// the client's buffer needs (MS-SMB2 3.3.5.20.1).
    pub fn encode_buffer_too_small(required: u32, out: &mut Vec<u8>) {
        ErrorResponse { data: ErrorData::Bytes(&required.to_le_bytes()) }.encode(out);
    }

    /// Decodes the error body of `msg` (client side). The single padding
    /// byte after a zero ByteCount is not required.
    pub fn decode(msg: &'a [u8]) -> DResult<Self> {
        check_structure_size(msg, Self::STRUCTURE_SIZE)?;
        let (i, _) = le_u16(body(msg)?)?;
        let (i, count) = le_u8(i)?;
        let (i, _reserved) = le_u8(i)?;
        let (i, byte_count) = le_u32(i)?;
        let data = i.get(..byte_count as usize).ok_or(DecodeError::BadLength)?;
        if count == 0 {
            return Ok(Self { data: ErrorData::Bytes(data) });
        }
        let mut contexts = Vec::with_capacity(usize::from(count));
        let mut pos = 0usize;
        for _ in 0..count {
            let rest = data.get(pos..).ok_or(DecodeError::BadLength)?;
            let (r, len) = le_u32(rest)?;
            let (r, error_id) = le_u32(r)?;
            let d = r.get(..len as usize).ok_or(DecodeError::BadLength)?;
            contexts.push(ErrorContext { error_id, data: d });
            pos = super::fscc::align_up(pos + 8 + d.len(), 8);
        }
        Ok(Self { data: ErrorData::Contexts(contexts) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::NtStatus;
    use crate::wire::header::Header;
    use proptest::prelude::*;

    /// STATUS_NOT_FOUND for FSCTL_DFS_GET_REFERRALS, frame 15 of
    /// captures/smbclient-SMB3_11-signed.pcap, and the STATUS_PENDING interim
    /// response of captures/smbclient-list-shares.pcap frame 19 (whose pad
    /// byte Samba sets to 0x21).
    #[test]
    fn captured_errors() {
        let msg = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/15-ioctl-resp.bin");
        let h = Header::decode(msg).unwrap();
        assert_eq!(h.status, NtStatus::NOT_FOUND);
        let e = ErrorResponse::decode(msg).unwrap();
        assert_eq!(e, ErrorResponse::EMPTY);
        let mut out = Vec::new();
        h.encode(&mut out);
        e.encode(&mut out);
        assert_eq!(out, msg);

        let msg = include_bytes!("../../protocol-tests/fixtures/smbclient-list-shares/19-ioctl-resp.bin");
        let h = Header::decode(msg).unwrap();
        assert_eq!(h.status, NtStatus::PENDING);
        assert!(h.is_async());
        assert_eq!(ErrorResponse::decode(msg).unwrap(), ErrorResponse::EMPTY);

        let msg = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/25-query_directory-resp.bin");
        assert_eq!(Header::decode(msg).unwrap().status, NtStatus::NO_MORE_FILES);
        assert_eq!(ErrorResponse::decode(msg).unwrap(), ErrorResponse::EMPTY);
    }

    #[test]
    fn buffer_too_small_carries_the_size() {
        let mut out = vec![0u8; 64];
        ErrorResponse::encode_buffer_too_small(0x76, &mut out);
        assert_eq!(&out[64..], &[9, 0, 0, 0, 4, 0, 0, 0, 0x76, 0, 0, 0]);
    }

    proptest! {
        #[test]
        fn round_trips(bytes in proptest::collection::vec(any::<u8>(), 0..20), ctx in proptest::collection::vec((any::<u32>(), proptest::collection::vec(any::<u8>(), 0..20)), 1..4)) {
            let e = ErrorResponse { data: ErrorData::Bytes(&bytes) };
            let mut out = vec![0u8; 64];
            e.encode(&mut out);
            prop_assert!(out.len() >= 64 + 9);
            prop_assert_eq!(ErrorResponse::decode(&out).unwrap(), e);
            let e = ErrorResponse { data: ErrorData::Contexts(ctx.iter().map(|(id, d)| ErrorContext { error_id: *id, data: d }).collect()) };
            let mut out = vec![0u8; 64];
            e.encode(&mut out);
            prop_assert_eq!(ErrorResponse::decode(&out).unwrap(), e);
        }

        #[test]
        fn decoder_never_panics(count: u8, tail in proptest::collection::vec(any::<u8>(), 0..80)) {
            let mut m = vec![0u8; 64];
            m.extend_from_slice(&9u16.to_le_bytes());
            m.push(count);
            m.extend_from_slice(&tail);
            let _ = ErrorResponse::decode(&m);
        }
    }
}
