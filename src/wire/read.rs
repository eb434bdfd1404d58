//! SMB2 READ (MS-SMB2 2.2.19, 2.2.20). The response data is borrowed, and
//! [`ReadResponse::encode_prefix`] lets the server read file content
//! straight into the output buffer after the fixed part.

use nom::number::complete::{le_u8, le_u16, le_u32, le_u64};

use super::create::FileId;
use super::{DResult, PutLe, body, buffer, check_structure_size};

/// Request Flags.
pub mod flags {
    #![expect(missing_docs, reason = "the constants carry the spec's names; the module doc cites the table")]
    pub const READ_UNBUFFERED: u8 = 0x01;
    pub const REQUEST_COMPRESSED: u8 = 0x02;
}

/// SMB2 READ Request (MS-SMB2 2.2.19). RDMA channel info is bounds-checked
/// and dropped: we never negotiate SMB Direct.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadRequest {
    /// Padding: the DataOffset the client would like in the response.
    pub padding: u8,
    /// Flags (see [`flags`]).
    pub flags: u8,
    /// Length to read.
    pub length: u32,
    /// Offset in the file.
    pub offset: u64,
    /// The open.
    pub file_id: FileId,
    /// MinimumCount: fewer bytes than this is STATUS_END_OF_FILE.
    pub minimum_count: u32,
    /// Channel (SMB2_CHANNEL_NONE 0 unless RDMA).
    pub channel: u32,
    /// RemainingBytes (a hint).
    pub remaining_bytes: u32,
}

impl ReadRequest {
    /// StructureSize.
    pub const STRUCTURE_SIZE: u16 = 49;

    /// Decodes the request in `msg`.
    pub fn decode(msg: &[u8]) -> DResult<Self> {
        check_structure_size(msg, Self::STRUCTURE_SIZE)?;
        let (i, _) = le_u16(body(msg)?)?;
        let (i, padding) = le_u8(i)?;
        let (i, flags) = le_u8(i)?;
        let (i, length) = le_u32(i)?;
        let (i, offset) = le_u64(i)?;
        let (i, file_id) = FileId::parse(i)?;
        let (i, minimum_count) = le_u32(i)?;
        let (i, channel) = le_u32(i)?;
        let (i, remaining_bytes) = le_u32(i)?;
        let (i, info_offset) = le_u16(i)?;
        let (_, info_length) = le_u16(i)?;
        buffer(msg, info_offset.into(), info_length.into())?;
        Ok(Self { padding, flags, length, offset, file_id, minimum_count, channel, remaining_bytes })
    }

    /// Appends the request body: 48 fixed bytes and the 1-byte Buffer.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u8(self.padding);
        out.put_u8(self.flags);
        out.put_u32(self.length);
        out.put_u64(self.offset);
        self.file_id.encode(out);
        out.put_u32(self.minimum_count);
        out.put_u32(self.channel);
        out.put_u32(self.remaining_bytes);
        out.put_u32(0);
        out.put_u8(0);
    }
}

/// SMB2 READ Response (MS-SMB2 2.2.20).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadResponse<'a> {
    /// The data read.
    pub data: &'a [u8],
    /// DataRemaining (0 unless RDMA).
    pub data_remaining: u32,
    /// Flags (3.1.1 SMB2_READFLAG_RESPONSE_RDMA_TRANSFORM), else Reserved2.
    pub flags: u32,
}

impl<'a> ReadResponse<'a> {
    /// StructureSize.
    pub const STRUCTURE_SIZE: u16 = 17;
    /// Bytes of the fixed part before the data (2.2.20).
    pub const PREFIX_LEN: usize = 16;

    /// Appends the 16-byte fixed part announcing `data_len` bytes of data at
    /// `out.len() + 16` (0x50 for a lone message); the caller appends the
    /// data itself.
    pub fn encode_prefix(out: &mut Vec<u8>, data_len: u32, data_remaining: u32, flags: u32) {
        let data_offset = out.len() + 16;
        out.put_u16(Self::STRUCTURE_SIZE);
        // DataOffset is a u8: messages are encoded one per buffer, so it is 0x50.
        out.put_u8(data_offset as u8);
        out.put_u8(0);
        out.put_u32(data_len);
        out.put_u32(data_remaining);
        out.put_u32(flags);
    }

    /// Sets DataLength (body offset 4) of a response message whose prefix
    /// [`Self::encode_prefix`] wrote, once the data read is known.
    pub fn set_data_length(msg: &mut [u8], data_len: u32) {
        let at = super::HEADER_LEN + 4;
        msg[at..at + 4].copy_from_slice(&data_len.to_le_bytes());
    }

    /// Appends the response body with its data.
    pub fn encode(&self, out: &mut Vec<u8>) {
        Self::encode_prefix(out, self.data.len() as u32, self.data_remaining, self.flags);
        out.extend_from_slice(self.data);
    }

    /// Decodes the response in `msg` (client side).
    pub fn decode(msg: &'a [u8]) -> DResult<Self> {
        check_structure_size(msg, Self::STRUCTURE_SIZE)?;
        let (i, _) = le_u16(body(msg)?)?;
        let (i, data_offset) = le_u8(i)?;
        let (i, _reserved) = le_u8(i)?;
        let (i, data_length) = le_u32(i)?;
        let (i, data_remaining) = le_u32(i)?;
        let (_, flags) = le_u32(i)?;
        let data = buffer(msg, data_offset.into(), data_length)?;
        Ok(Self { data, data_remaining, flags })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::DecodeError;
    use crate::wire::header::Header;
    use proptest::prelude::*;

    /// Frames 48/49 of captures/smbclient-SMB3_11-signed.pcap: read 14 bytes.
    #[test]
    fn captured_read() {
        let req = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/48-read-req.bin");
        let r = ReadRequest::decode(req).unwrap();
        assert_eq!((r.length, r.offset, r.minimum_count), (14, 0, 0));
        let mut out = vec![0u8; 64];
        r.encode(&mut out);
        assert_eq!(&out[64..], &req[64..]);

        let msg = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/49-read-resp.bin");
        let resp = ReadResponse::decode(msg).unwrap();
        assert_eq!(resp.data, b"hello capture\n");
        let mut out = Vec::new();
        Header::decode(msg).unwrap().encode(&mut out);
        resp.encode(&mut out);
        assert_eq!(out, msg);
    }

    #[test]
    fn rejects_data_past_the_end_and_bad_channel_info() {
        let mut out = vec![0u8; 64];
        ReadResponse { data: b"abc", ..Default::default() }.encode(&mut out);
        out.pop();
        assert_eq!(ReadResponse::decode(&out), Err(DecodeError::BadOffset));
        let mut out = vec![0u8; 64];
        ReadRequest::default().encode(&mut out);
        out[64 + 44] = 0x70; // ReadChannelInfoOffset
        out[64 + 46] = 0x10; // ReadChannelInfoLength past the end
        assert_eq!(ReadRequest::decode(&out), Err(DecodeError::BadOffset));
    }

    proptest! {
        #[test]
        fn round_trips(a in any::<(u8, u8, u32, u64, u64, u64, u32, u32, u32)>(), data in proptest::collection::vec(any::<u8>(), 0..100), f in any::<(u32, u32)>()) {
            let req = ReadRequest {
                padding: a.0, flags: a.1, length: a.2, offset: a.3, file_id: FileId { persistent: a.4, volatile: a.5 },
                minimum_count: a.6, channel: a.7, remaining_bytes: a.8,
            };
            let mut out = vec![0u8; 64];
            req.encode(&mut out);
            prop_assert_eq!(ReadRequest::decode(&out).unwrap(), req);
            let resp = ReadResponse { data: &data, data_remaining: f.0, flags: f.1 };
            let mut out = vec![0u8; 64];
            resp.encode(&mut out);
            prop_assert_eq!(out[66], 0x50);
            prop_assert_eq!(ReadResponse::decode(&out).unwrap(), resp);
        }

        #[test]
        fn decoders_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..80)) {
            let mut m = vec![0u8; 64];
            m.extend_from_slice(&49u16.to_le_bytes());
            m.extend_from_slice(&tail);
            let _ = ReadRequest::decode(&m);
            m[64] = 17;
            let _ = ReadResponse::decode(&m);
        }
    }
}
