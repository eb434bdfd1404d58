//! SMB2 QUERY_INFO (MS-SMB2 2.2.37, 2.2.38). The output is an MS-FSCC
//! structure encoded with the `fscc` types (or a security descriptor from
//! `dtyp`); the input buffer carries an EA name list
//! (`fscc::ea::decode_get_ea_list`) or an SMB2_QUERY_QUOTA_INFO.

use nom::number::complete::{le_u8, le_u16, le_u32};

use super::create::FileId;
use super::query_directory::{decode_output_buffer, encode_output_buffer};
use super::{DResult, DecodeError, PutLe, body, buffer, check_structure_size};

/// Flags for FileFullEaInformation queries (2.2.37).
pub mod flags {
    #![expect(missing_docs, reason = "the constants carry the spec's names; the module doc cites the table")]
    pub const SL_RESTART_SCAN: u32 = 0x0000_0001;
    pub const SL_RETURN_SINGLE_ENTRY: u32 = 0x0000_0002;
    pub const SL_INDEX_SPECIFIED: u32 = 0x0000_0004;
}

/// SMB2 QUERY_INFO Request (MS-SMB2 2.2.37).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueryInfoRequest<'a> {
    /// InfoType (`fscc::consts::info_type`).
    pub info_type: u8,
    /// FileInfoClass: an `InfoClass` or `FsInfoClass` value; 0 for security
    /// and quota.
    pub file_info_class: u8,
    /// OutputBufferLength: the most the client accepts.
    pub output_buffer_length: u32,
    /// Input buffer.
    pub input: &'a [u8],
    /// AdditionalInformation (security_info bits for SECURITY, EA index…).
    pub additional_information: u32,
    /// Flags (see [`flags`]).
    pub flags: u32,
    /// The open.
    pub file_id: FileId,
}

impl<'a> QueryInfoRequest<'a> {
    /// StructureSize.
    pub const STRUCTURE_SIZE: u16 = 41;

    /// Decodes the request in `msg`.
    pub fn decode(msg: &'a [u8]) -> DResult<Self> {
        check_structure_size(msg, Self::STRUCTURE_SIZE)?;
        let (i, _) = le_u16(body(msg)?)?;
        let (i, info_type) = le_u8(i)?;
        let (i, file_info_class) = le_u8(i)?;
        let (i, output_buffer_length) = le_u32(i)?;
        let (i, input_offset) = le_u16(i)?;
        let (i, _reserved) = le_u16(i)?;
        let (i, input_length) = le_u32(i)?;
        let (i, additional_information) = le_u32(i)?;
        let (i, flags) = le_u32(i)?;
        let (_, file_id) = FileId::parse(i)?;
        Ok(Self {
            info_type,
            file_info_class,
            output_buffer_length,
            input: buffer(msg, input_offset.into(), input_length)?,
            additional_information,
            flags,
            file_id,
        })
    }

    /// Appends the request body; the input (if any) at `out.len() + 40`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u8(self.info_type);
        out.put_u8(self.file_info_class);
        out.put_u32(self.output_buffer_length);
        out.put_u16(if self.input.is_empty() { 0 } else { (start + 40) as u16 });
        out.put_u16(0);
        out.put_u32(self.input.len() as u32);
        out.put_u32(self.additional_information);
        out.put_u32(self.flags);
        self.file_id.encode(out);
        if self.input.is_empty() {
            out.put_u8(0);
        }
        out.extend_from_slice(self.input);
    }
}

/// SMB2 QUERY_INFO Response (MS-SMB2 2.2.38).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueryInfoResponse<'a> {
    /// The encoded information (at most OutputBufferLength bytes).
    pub data: &'a [u8],
}

impl<'a> QueryInfoResponse<'a> {
    /// Appends the response body (OutputBufferOffset 0x48).
    pub fn encode(&self, out: &mut Vec<u8>) {
        encode_output_buffer(out, self.data);
    }

    /// Decodes the response in `msg` (client side).
    pub fn decode(msg: &'a [u8]) -> DResult<Self> {
        Ok(Self { data: decode_output_buffer(msg)? })
    }
}

/// SMB2_QUERY_QUOTA_INFO (MS-SMB2 2.2.37.1), the input for InfoType QUOTA.
/// The SID list (FILE_GET_QUOTA_INFORMATION chain) and start SID stay raw:
/// we do not implement quotas and answer STATUS_NOT_SUPPORTED (3.3.5.20.4),
/// but the structure is still validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueryQuotaInfo<'a> {
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub return_single: bool,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub restart_scan: bool,
    /// SidListLength bytes of the SidBuffer.
    pub sid_list: &'a [u8],
    /// StartSidLength bytes at StartSidOffset in the SidBuffer.
    pub start_sid: &'a [u8],
}

impl<'a> QueryQuotaInfo<'a> {
    /// Decodes the input buffer.
    pub fn decode(b: &'a [u8]) -> DResult<Self> {
        let (i, return_single) = le_u8(b)?;
        let (i, restart_scan) = le_u8(i)?;
        let (i, _reserved) = le_u16(i)?;
        let (i, sid_list_length) = le_u32(i)?;
        let (i, start_sid_length) = le_u32(i)?;
        let (sid_buffer, start_sid_offset) = le_u32(i)?;
        let sid_list = sid_buffer.get(..sid_list_length as usize).ok_or(DecodeError::BadLength)?;
        let start = start_sid_offset as usize;
        let start_sid = if start_sid_length == 0 {
            &[][..]
        } else {
            sid_buffer.get(start..start + start_sid_length as usize).ok_or(DecodeError::BadOffset)?
        };
        Ok(Self { return_single: return_single != 0, restart_scan: restart_scan != 0, sid_list, start_sid })
    }

    /// Appends the structure (SID list first, then the start SID).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u8(u8::from(self.return_single));
        out.put_u8(u8::from(self.restart_scan));
        out.put_u16(0);
        out.put_u32(self.sid_list.len() as u32);
        out.put_u32(self.start_sid.len() as u32);
        out.put_u32(if self.start_sid.is_empty() { 0 } else { self.sid_list.len() as u32 });
        out.extend_from_slice(self.sid_list);
        out.extend_from_slice(self.start_sid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::fscc::consts::info_type;
    use crate::wire::fscc::{FsInfoClass, InfoClass};
    use crate::wire::header::Header;
    use proptest::prelude::*;

    fn reencode(msg: &[u8], enc: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        Header::decode(msg).unwrap().encode(&mut out);
        enc(&mut out);
        out
    }

    /// Frames 30/31 (FileFsSizeInformation) and 46/47 (FileAllInformation)
    /// of captures/smbclient-SMB3_11-signed.pcap.
    #[test]
    fn captured_query_info() {
        let req = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/30-query_info-req.bin");
        let q = QueryInfoRequest::decode(req).unwrap();
        assert_eq!((q.info_type, FsInfoClass(q.file_info_class)), (info_type::FILESYSTEM, FsInfoClass::SIZE));
        assert_eq!(q.output_buffer_length, 0xffff);
        let mut out = vec![0u8; 64];
        q.encode(&mut out);
        assert_eq!(&out[64..], &req[64..]);
        let msg = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/31-query_info-resp.bin");
        let r = QueryInfoResponse::decode(msg).unwrap();
        assert_eq!(r.data.len(), 24);
        assert_eq!(reencode(msg, |o| r.encode(o)), msg);

        let req = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/46-query_info-req.bin");
        let q = QueryInfoRequest::decode(req).unwrap();
        assert_eq!((q.info_type, InfoClass(q.file_info_class)), (info_type::FILE, InfoClass::ALL));
        let msg = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/47-query_info-resp.bin");
        let r = QueryInfoResponse::decode(msg).unwrap();
        assert_eq!(reencode(msg, |o| r.encode(o)), msg);
    }

    #[test]
    fn quota_info_bounds() {
        let q = QueryQuotaInfo {
            return_single: true,
            restart_scan: false,
            sid_list: &[],
            start_sid: &[1, 1, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0],
        };
        let mut b = Vec::new();
        q.encode(&mut b);
        assert_eq!(QueryQuotaInfo::decode(&b).unwrap(), q);
        b.pop();
        assert_eq!(QueryQuotaInfo::decode(&b), Err(DecodeError::BadOffset));
    }

    proptest! {
        #[test]
        fn round_trips(a in any::<(u8, u8, u32, u32, u32, u64, u64)>(), input in proptest::collection::vec(any::<u8>(), 0..64)) {
            let q = QueryInfoRequest {
                info_type: a.0, file_info_class: a.1, output_buffer_length: a.2, input: &input,
                additional_information: a.3, flags: a.4, file_id: FileId { persistent: a.5, volatile: a.6 },
            };
            let mut out = vec![0u8; 64];
            q.encode(&mut out);
            prop_assert_eq!(QueryInfoRequest::decode(&out).unwrap(), q);
            let r = QueryInfoResponse { data: &input };
            let mut out = vec![0u8; 64];
            r.encode(&mut out);
            prop_assert_eq!(QueryInfoResponse::decode(&out).unwrap(), r);
        }

        #[test]
        fn decoders_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..80)) {
            let mut m = vec![0u8; 64];
            m.extend_from_slice(&41u16.to_le_bytes());
            m.extend_from_slice(&tail);
            let _ = QueryInfoRequest::decode(&m);
            let _ = QueryQuotaInfo::decode(&tail);
        }
    }
}
