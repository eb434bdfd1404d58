//! SMB2 WRITE (MS-SMB2 2.2.21, 2.2.22). The request borrows its data.

use std::ops::Range;

use nom::number::complete::{le_u16, le_u32, le_u64};

use super::create::FileId;
use super::{DResult, DecodeError, PutLe, body, buffer, check_structure_size};

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
        let (fixed, data) = Fixed::parse(msg)?;
        Ok(fixed.with(buffer(msg, data.0, data.1)?))
    }

    /// Decodes a WRITE whose message was cut where its data starts (at
    /// [`detachable_data`]): `head` is the message up to there, `data` the
    /// data. Fails unless DataOffset is exactly `head.len()` and Length
    /// exactly `data.len()`.
    pub fn decode_detached(head: &'a [u8], data: &'a [u8]) -> DResult<Self> {
        let (fixed, (offset, length)) = Fixed::parse(head)?;
        if offset as usize != head.len() || length as usize != data.len() {
            return Err(DecodeError::BadOffset);
        }
        Ok(fixed.with(data))
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

/// Where the data of the WRITE request in `msg` lies, if the message can
/// be cut there: the request is valid, its data is not empty and comes
/// after the fixed part and after any channel info. The engine cuts such a
/// message in two so that the handler may seal the data where it lies
/// ([`WriteRequest::decode_detached`] decodes the two parts).
pub fn detachable_data(msg: &[u8]) -> Option<Range<usize>> {
    let (_, (offset, length)) = Fixed::parse(msg).ok()?;
    let data = buffer(msg, offset, length).ok()?;
    let r = offset as usize..offset as usize + data.len();
    if data.is_empty() || r.start < FIXED_END {
        return None;
    }
    // The channel info must lie in the head too (it usually is empty).
    let (head, rest) = msg.split_at(r.start);
    WriteRequest::decode_detached(head, &rest[..r.len()]).ok().map(|_| r)
}

/// The end of the fixed part of a WRITE request: header and 48 bytes.
const FIXED_END: usize = crate::wire::HEADER_LEN + 48;

/// A WRITE request's fields other than its data, and where the data is
/// (DataOffset, Length). Parsing checks the channel info buffer lies in
/// `msg`, not the data.
struct Fixed {
    offset: u64,
    file_id: FileId,
    channel: u32,
    remaining_bytes: u32,
    flags: u32,
}

impl Fixed {
    fn parse(msg: &[u8]) -> DResult<(Self, (u32, u32))> {
        check_structure_size(msg, WriteRequest::STRUCTURE_SIZE)?;
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
        Ok((Self { offset, file_id, channel, remaining_bytes, flags }, (data_offset.into(), length)))
    }

    fn with(self, data: &[u8]) -> WriteRequest<'_> {
        let Self { offset, file_id, channel, remaining_bytes, flags } = self;
        WriteRequest { offset, file_id, channel, remaining_bytes, flags, data }
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

    /// The captured 14-byte write, cut where its data starts, decodes to
    /// the same request; a cut anywhere else is refused.
    #[test]
    fn captured_write_detached() {
        let req = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/40-write-req.bin");
        let whole = WriteRequest::decode(req).unwrap();
        let r = detachable_data(req).unwrap();
        assert_eq!(&req[r.clone()], b"hello capture\n");
        let (head, data) = req.split_at(r.start);
        assert_eq!(WriteRequest::decode_detached(head, &data[..r.len()]).unwrap(), whole);
        assert!(WriteRequest::decode_detached(&req[..r.start - 1], &data[..r.len()]).is_err());
        assert_eq!(WriteRequest::decode_detached(head, &data[..r.len() - 1]), Err(DecodeError::BadOffset));
    }

    #[test]
    fn nothing_to_detach_without_data_or_inside_the_fixed_part() {
        let mut out = vec![0u8; 64];
        WriteRequest { data: b"", ..Default::default() }.encode(&mut out);
        assert_eq!(detachable_data(&out), None);
        let mut out = vec![0u8; 64];
        WriteRequest { data: b"abcd", ..Default::default() }.encode(&mut out);
        out[64 + 2] = 64 + 44; // DataOffset inside the fixed part (over Flags)
        assert_eq!(detachable_data(&out), None);
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

        /// Any message: whatever `detachable_data` offers, cutting there
        /// decodes to what the whole message decodes to.
        #[test]
        fn detached_decodes_as_whole(body in proptest::collection::vec(any::<u8>(), 48..200), doff in 0u16..260, len in 0u32..200, ioff in 0u16..260, ilen in 0u16..8) {
            let mut m = vec![0u8; 64];
            m.extend_from_slice(&body);
            m[64..66].copy_from_slice(&49u16.to_le_bytes());
            m[66..68].copy_from_slice(&doff.to_le_bytes());
            m[68..72].copy_from_slice(&len.to_le_bytes());
            m[100..102].copy_from_slice(&ioff.to_le_bytes());
            m[102..104].copy_from_slice(&ilen.to_le_bytes());
            if let Some(r) = detachable_data(&m) {
                let whole = WriteRequest::decode(&m).unwrap();
                let (head, data) = m.split_at(r.start);
                prop_assert_eq!(WriteRequest::decode_detached(head, &data[..r.len()]).unwrap(), whole);
                prop_assert!(r.start >= 112 && !r.is_empty());
            }
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
