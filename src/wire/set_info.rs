//! SMB2 SET_INFO (MS-SMB2 2.2.39, 2.2.40). The buffer is decoded with the
//! `fscc::file_set` / `fscc::file_info` types for InfoType FILE; for
//! SECURITY the handler decodes it with `dtyp::SecurityDescriptor::parse`
//! (this codec only bounds the buffer).

use nom::number::complete::{le_u8, le_u16, le_u32};

use super::create::FileId;
use super::{DResult, PutLe, body, buffer, check_structure_size};

/// SMB2 SET_INFO Request (MS-SMB2 2.2.39).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetInfoRequest<'a> {
    /// InfoType (`fscc::consts::info_type`).
    pub info_type: u8,
    /// FileInfoClass.
    pub file_info_class: u8,
    /// The information to set.
    pub data: &'a [u8],
    /// AdditionalInformation (security_info bits for SECURITY).
    pub additional_information: u32,
    /// The open.
    pub file_id: FileId,
}

impl<'a> SetInfoRequest<'a> {
    /// StructureSize.
    pub const STRUCTURE_SIZE: u16 = 33;

    /// Decodes the request in `msg`.
    pub fn decode(msg: &'a [u8]) -> DResult<Self> {
        check_structure_size(msg, Self::STRUCTURE_SIZE)?;
        let (i, _) = le_u16(body(msg)?)?;
        let (i, info_type) = le_u8(i)?;
        let (i, file_info_class) = le_u8(i)?;
        let (i, length) = le_u32(i)?;
        let (i, offset) = le_u16(i)?;
        let (i, _reserved) = le_u16(i)?;
        let (i, additional_information) = le_u32(i)?;
        let (_, file_id) = FileId::parse(i)?;
        Ok(Self {
            info_type,
            file_info_class,
            data: buffer(msg, offset.into(), length)?,
            additional_information,
            file_id,
        })
    }

    /// Appends the request body with the data at `out.len() + 32` (0x60).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u8(self.info_type);
        out.put_u8(self.file_info_class);
        out.put_u32(self.data.len() as u32);
        out.put_u16((start + 32) as u16);
        out.put_u16(0);
        out.put_u32(self.additional_information);
        self.file_id.encode(out);
        if self.data.is_empty() {
            out.put_u8(0);
        }
        out.extend_from_slice(self.data);
    }
}

/// SMB2 SET_INFO Response (MS-SMB2 2.2.40): StructureSize 2, nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SetInfoResponse;

impl SetInfoResponse {
    /// StructureSize.
    pub const STRUCTURE_SIZE: u16 = 2;

    /// Appends the 2-byte body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(Self::STRUCTURE_SIZE);
    }

    /// Decodes the response in `msg` (client side).
    pub fn decode(msg: &[u8]) -> DResult<Self> {
        check_structure_size(msg, Self::STRUCTURE_SIZE)?;
        Ok(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fscc::InfoClass;
    use crate::wire::fscc::consts::info_type;
    use crate::wire::fscc::file_set::FileRenameInformation;
    use crate::wire::header::Header;
    use proptest::prelude::*;

    /// Frames 78/79 of captures/smbclient-SMB3_11-signed.pcap: rename
    /// d1\a.txt to d1\b.txt.
    #[test]
    fn captured_rename() {
        let req = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/78-set_info-req.bin");
        let s = SetInfoRequest::decode(req).unwrap();
        assert_eq!((s.info_type, InfoClass(s.file_info_class)), (info_type::FILE, InfoClass::RENAME));
        assert_eq!(FileRenameInformation::decode(s.data).unwrap().file_name, "d1\\b.txt");
        let mut out = vec![0u8; 64];
        s.encode(&mut out);
        assert_eq!(&out[64..], &req[64..]);
        let msg = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/79-set_info-resp.bin");
        let r = SetInfoResponse::decode(msg).unwrap();
        let mut out = Vec::new();
        Header::decode(msg).unwrap().encode(&mut out);
        r.encode(&mut out);
        assert_eq!(out, msg);
    }

    proptest! {
        #[test]
        fn round_trips(a in any::<(u8, u8, u32, u64, u64)>(), data in proptest::collection::vec(any::<u8>(), 0..64)) {
            let s = SetInfoRequest { info_type: a.0, file_info_class: a.1, data: &data, additional_information: a.2, file_id: FileId { persistent: a.3, volatile: a.4 } };
            let mut out = vec![0u8; 64];
            s.encode(&mut out);
            prop_assert_eq!(SetInfoRequest::decode(&out).unwrap(), s);
        }

        #[test]
        fn decoder_never_panics(tail in proptest::collection::vec(any::<u8>(), 0..80)) {
            let mut m = vec![0u8; 64];
            m.extend_from_slice(&33u16.to_le_bytes());
            m.extend_from_slice(&tail);
            let _ = SetInfoRequest::decode(&m);
        }
    }
}
