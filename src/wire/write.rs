//! SMB2 WRITE (MS-SMB2 2.2.21, 2.2.22). The request borrows its data.

use nom::number::complete::{le_u16, le_u32, le_u64};

use super::create::FileId;
use super::{DResult, PutLe, body, buffer, check_structure_size};

/// Request Flags.
pub mod flags {
    #![expect(missing_docs, reason = "the constants carry the spec's names; the module doc cites the table")]
    pub const WRITE_THROUGH: u32 = 0x0000_0001;
    pub const WRITE_UNBUFFERED: u32 = 0x0000_0002;
}

/// SMB2 WRITE Request (MS-SMB2 2.2.21). RDMA channel info is checked and
/// dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteRequest<'a> {
    /// Offset in the file.
    pub offset: u64,
    /// The open.
    pub file_id: FileId,
    /// Channel (0 unless RDMA).
    pub channel: u32,
    /// RemainingBytes (a hint).
    pub remaining_bytes: u32,
    /// Flags (see [`flags`]).
    pub flags: u32,
    /// The data to write, borrowed from the message.
    pub data: &'a [u8],
}

impl<'a> WriteRequest<'a> {
    /// StructureSize.
    pub const STRUCTURE_SIZE: u16 = 49;

    /// Decodes the request in `msg`.
    pub fn decode(msg: &'a [u8]) -> DResult<Self> {
        check_structure_size(msg, Self::STRUCTURE_SIZE)?;
        let (i, _) = le_u16(body(msg)?)?;
        let (i, data_offset) = le_u16(i)?;
        let (i, length) = le_u32(i)?;
        let (i, offset) = le_u64(i)?;
        let (i, file_id) = FileId::parse(i)?;
        let (i, channel) = le_u32(i)?;
        let (i, remaining_bytes) = le_u32(i)?;
        let (i, info_offset) = le_u16(i)?;
        let (i, info_length) = le_u16(i)?;
        let (_, flags) = le_u32(i)?;
        buffer(msg, info_offset.into(), info_length.into())?;
        let data = buffer(msg, data_offset.into(), length)?;
        Ok(Self { offset, file_id, channel, remaining_bytes, flags, data })
    }

    /// Appends the request body with the data at `out.len() + 48` (0x70).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let data_offset = out.len() + 48;
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(data_offset as u16);
        out.put_u32(self.data.len() as u32);
        out.put_u64(self.offset);
        self.file_id.encode(out);
        out.put_u32(self.channel);
        out.put_u32(self.remaining_bytes);
        out.put_u32(0);
        out.put_u32(self.flags);
        if self.data.is_empty() {
            out.put_u8(0);
        }
        out.extend_from_slice(self.data);
    }
}

/// SMB2 WRITE Response (MS-SMB2 2.2.22).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteResponse {
    /// Count of bytes written.
    pub count: u32,
    /// Remaining (reserved, 0).
    pub remaining: u32,
}

impl WriteResponse {
    /// StructureSize.
    pub const STRUCTURE_SIZE: u16 = 17;

    /// Appends the body: 16 bytes, as Samba and Windows send it.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(0);
        out.put_u32(self.count);
        out.put_u32(self.remaining);
        out.put_u32(0);
    }

    /// Decodes the response in `msg` (client side).
    pub fn decode(msg: &[u8]) -> DResult<Self> {
        check_structure_size(msg, Self::STRUCTURE_SIZE)?;
        let (i, _) = le_u16(body(msg)?)?;
        let (i, _reserved) = le_u16(i)?;
        let (i, count) = le_u32(i)?;
        let (i, remaining) = le_u32(i)?;
        let (i, _info_offset) = le_u16(i)?;
        let (_, _info_length) = le_u16(i)?;
        Ok(Self { count, remaining })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::DecodeError;
    use crate::wire::header::Header;
    use proptest::prelude::*;

    /// Frames 40/41 of captures/smbclient-SMB3_11-signed.pcap: a 14-byte write.
    #[test]
    fn captured_write() {
        let req = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/40-write-req.bin");
        let w = WriteRequest::decode(req).unwrap();
        assert_eq!(w.data, b"hello capture\n");
        assert_eq!(w.offset, 0);
        let mut out = vec![0u8; 64];
        w.encode(&mut out);
        assert_eq!(&out[64..], &req[64..]);
        let msg = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/41-write-resp.bin");
        let resp = WriteResponse::decode(msg).unwrap();
        assert_eq!(resp.count, 14);
        let mut out = Vec::new();
        Header::decode(msg).unwrap().encode(&mut out);
        resp.encode(&mut out);
        assert_eq!(out, msg);
    }

    #[test]
    fn rejects_length_past_the_end() {
        let mut out = vec![0u8; 64];
        WriteRequest { data: b"abcd", ..Default::default() }.encode(&mut out);
        out[64 + 4] = 5;
        assert_eq!(WriteRequest::decode(&out), Err(DecodeError::BadOffset));
        out[64 + 4] = 4;
        out[64 + 2] = 0x10; // DataOffset inside the header
        assert_eq!(WriteRequest::decode(&out), Err(DecodeError::BadOffset));
    }

    proptest! {
        #[test]
        fn round_trips(a in any::<(u64, u64, u64, u32, u32, u32)>(), data in proptest::collection::vec(any::<u8>(), 0..100), c in any::<(u32, u32)>()) {
            let req = WriteRequest {
                offset: a.0, file_id: FileId { persistent: a.1, volatile: a.2 }, channel: a.3, remaining_bytes: a.4, flags: a.5, data: &data,
            };
            let mut out = vec![0u8; 64];
            req.encode(&mut out);
            prop_assert_eq!(WriteRequest::decode(&out).unwrap(), req);
            let resp = WriteResponse { count: c.0, remaining: c.1 };
            let mut out = vec![0u8; 64];
            resp.encode(&mut out);
            prop_assert_eq!(WriteResponse::decode(&out).unwrap(), resp);
        }

        #[test]
        fn decoders_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..80)) {
            let mut m = vec![0u8; 64];
            m.extend_from_slice(&49u16.to_le_bytes());
            m.extend_from_slice(&tail);
            let _ = WriteRequest::decode(&m);
            m[64] = 17;
            let _ = WriteResponse::decode(&m);
        }
    }
}
