//! SMB2 CLOSE (MS-SMB2 2.2.15, 2.2.16).

use nom::number::complete::{le_u16, le_u32, le_u64};

use super::create::FileId;
use super::fscc::FileTimes;
use super::{DResult, PutLe, body, check_structure_size};

/// SMB2_CLOSE_FLAG_POSTQUERY_ATTRIB: return the attributes after closing.
pub const POSTQUERY_ATTRIB: u16 = 0x0001;

/// SMB2 CLOSE Request (MS-SMB2 2.2.15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CloseRequest {
    /// Flags ([`POSTQUERY_ATTRIB`]).
    pub flags: u16,
    /// The open to close.
    pub file_id: FileId,
}

impl CloseRequest {
    /// StructureSize.
    pub const STRUCTURE_SIZE: u16 = 24;

    /// Decodes the request in `msg`.
    pub fn decode(msg: &[u8]) -> DResult<Self> {
        check_structure_size(msg, Self::STRUCTURE_SIZE)?;
        let (i, _) = le_u16(body(msg)?)?;
        let (i, flags) = le_u16(i)?;
        let (i, _reserved) = le_u32(i)?;
        let (_, file_id) = FileId::parse(i)?;
        Ok(Self { flags, file_id })
    }

    /// Appends the request body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(self.flags);
        out.put_u32(0);
        self.file_id.encode(out);
    }
}

/// SMB2 CLOSE Response (MS-SMB2 2.2.16). Without POSTQUERY_ATTRIB every
/// field but Flags is zero: use `CloseResponse::default()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CloseResponse {
    /// Flags (echoes POSTQUERY_ATTRIB when the attributes are valid).
    pub flags: u16,
    /// Timestamps.
    pub times: FileTimes,
    /// AllocationSize.
    pub allocation_size: u64,
    /// EndOfFile.
    pub end_of_file: u64,
    /// FileAttributes.
    pub file_attributes: u32,
}

impl CloseResponse {
    /// StructureSize.
    pub const STRUCTURE_SIZE: u16 = 60;

    /// Appends the 60-byte body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(self.flags);
        out.put_u32(0);
        self.times.encode(out);
        out.put_u64(self.allocation_size);
        out.put_u64(self.end_of_file);
        out.put_u32(self.file_attributes);
    }

    /// Decodes the response in `msg` (client side).
    pub fn decode(msg: &[u8]) -> DResult<Self> {
        check_structure_size(msg, Self::STRUCTURE_SIZE)?;
        let (i, _) = le_u16(body(msg)?)?;
        let (i, flags) = le_u16(i)?;
        let (i, _reserved) = le_u32(i)?;
        let (i, times) = FileTimes::parse(i)?;
        let (i, allocation_size) = le_u64(i)?;
        let (i, end_of_file) = le_u64(i)?;
        let (_, file_attributes) = le_u32(i)?;
        Ok(Self { flags, times, allocation_size, end_of_file, file_attributes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::header::Header;
    use proptest::prelude::*;

    /// Frames 26/27 of captures/smbclient-SMB3_11-signed.pcap.
    #[test]
    fn captured_close() {
        let req = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/26-close-req.bin");
        let r = CloseRequest::decode(req).unwrap();
        assert_eq!(r, CloseRequest { flags: 0, file_id: FileId { persistent: 0x17eb_51ff, volatile: 0xa18b_1446 } });
        let mut out = vec![0u8; 64];
        r.encode(&mut out);
        assert_eq!(&out[64..], &req[64..]);
        let msg = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/27-close-resp.bin");
        let resp = CloseResponse::decode(msg).unwrap();
        assert_eq!(resp, CloseResponse::default());
        let mut out = Vec::new();
        Header::decode(msg).unwrap().encode(&mut out);
        resp.encode(&mut out);
        assert_eq!(out, msg);
    }

    proptest! {
        #[test]
        fn round_trips(f: u16, id in any::<(u64, u64)>(), t in any::<[u64; 4]>(), s in any::<(u64, u64, u32)>()) {
            let req = CloseRequest { flags: f, file_id: FileId { persistent: id.0, volatile: id.1 } };
            let mut out = vec![0u8; 64];
            req.encode(&mut out);
            prop_assert_eq!(CloseRequest::decode(&out).unwrap(), req);
            let resp = CloseResponse {
                flags: f,
                times: FileTimes { creation: t[0], last_access: t[1], last_write: t[2], change: t[3] },
                allocation_size: s.0, end_of_file: s.1, file_attributes: s.2,
            };
            let mut out = vec![0u8; 64];
            resp.encode(&mut out);
            prop_assert_eq!(out.len(), 124);
            prop_assert_eq!(CloseResponse::decode(&out).unwrap(), resp);
            prop_assert!(CloseResponse::decode(&out[..123]).is_err());
        }
    }
}
