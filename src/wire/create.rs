//! SMB2 CREATE (MS-SMB2 2.2.13, 2.2.14) and the SMB2_FILEID every later
//! command uses. Contexts are in [`super::create_context`].

use nom::number::complete::{le_u8, le_u16, le_u32, le_u64};

use super::create_context::{CreateContext, decode_chain, encode_chain};
use super::fscc::FileTimes;
use super::{DResult, PResult, PutLe, body, buffer, check_structure_size, pad_to, put_utf16le, utf16_len, utf16le};

/// SMB2_FILEID (MS-SMB2 2.2.14.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FileId {
    /// Persistent (survives reconnects of durable handles).
    pub persistent: u64,
    /// Volatile.
    pub volatile: u64,
}

impl FileId {
    /// All ones: "the file opened by the previous request in this related
    /// compound" (MS-SMB2 3.2.4.1.4), and the FileId of IOCTLs that target
    /// no file (FSCTL_VALIDATE_NEGOTIATE_INFO, DFS referrals).
    pub const ANY: Self = Self { persistent: u64::MAX, volatile: u64::MAX };

    /// Parses 16 bytes.
    pub fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, persistent) = le_u64(i)?;
        let (i, volatile) = le_u64(i)?;
        Ok((i, Self { persistent, volatile }))
    }

    /// Appends 16 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u64(self.persistent);
        out.put_u64(self.volatile);
    }
}

/// SMB2 CREATE Request (MS-SMB2 2.2.13).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateRequest<'a> {
    /// SecurityFlags (reserved, 0).
    pub security_flags: u8,
    /// RequestedOplockLevel (`fscc::consts::oplock`).
    pub requested_oplock_level: u8,
    /// ImpersonationLevel (`fscc::consts::impersonation`).
    pub impersonation_level: u32,
    /// SmbCreateFlags (reserved, 0).
    pub smb_create_flags: u64,
    /// DesiredAccess (`fscc::consts::access`).
    pub desired_access: u32,
    /// FileAttributes for a new file.
    pub file_attributes: u32,
    /// ShareAccess.
    pub share_access: u32,
    /// CreateDisposition.
    pub create_disposition: u32,
    /// CreateOptions.
    pub create_options: u32,
    /// Name relative to the share root, "" for the root itself.
    pub name: String,
    /// Create contexts, borrowed from the message.
    pub contexts: Vec<CreateContext<'a>>,
}

impl<'a> CreateRequest<'a> {
    /// StructureSize.
    pub const STRUCTURE_SIZE: u16 = 57;

    /// Decodes the request in `msg`.
    pub fn decode(msg: &'a [u8]) -> DResult<Self> {
        check_structure_size(msg, Self::STRUCTURE_SIZE)?;
        let (i, _) = le_u16(body(msg)?)?;
        let (i, security_flags) = le_u8(i)?;
        let (i, requested_oplock_level) = le_u8(i)?;
        let (i, impersonation_level) = le_u32(i)?;
        let (i, smb_create_flags) = le_u64(i)?;
        let (i, _reserved) = le_u64(i)?;
        let (i, desired_access) = le_u32(i)?;
        let (i, file_attributes) = le_u32(i)?;
        let (i, share_access) = le_u32(i)?;
        let (i, create_disposition) = le_u32(i)?;
        let (i, create_options) = le_u32(i)?;
        let (i, name_offset) = le_u16(i)?;
        let (i, name_length) = le_u16(i)?;
        let (i, ctx_offset) = le_u32(i)?;
        let (_, ctx_length) = le_u32(i)?;
        let name = utf16le(buffer(msg, name_offset.into(), name_length.into())?)?;
        let contexts = decode_chain(buffer(msg, ctx_offset, ctx_length)?)?;
        Ok(Self {
            security_flags,
            requested_oplock_level,
            impersonation_level,
            smb_create_flags,
            desired_access,
            file_attributes,
            share_access,
            create_disposition,
            create_options,
            name,
            contexts,
        })
    }

    /// Appends the request body. As smbclient does, an empty name still
    /// occupies one zero byte so the Buffer is never empty.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u8(self.security_flags);
        out.put_u8(self.requested_oplock_level);
        out.put_u32(self.impersonation_level);
        out.put_u64(self.smb_create_flags);
        out.put_u64(0);
        out.put_u32(self.desired_access);
        out.put_u32(self.file_attributes);
        out.put_u32(self.share_access);
        out.put_u32(self.create_disposition);
        out.put_u32(self.create_options);
        out.put_u16((start + 56) as u16);
        out.put_u16(utf16_len(&self.name) as u16);
        out.put_u32(0);
        out.put_u32(0);
        if put_utf16le(out, &self.name) == 0 {
            out.put_u8(0);
        }
        if !self.contexts.is_empty() {
            pad_to(out, 8);
            let ctx_start = out.len();
            encode_chain(out, &self.contexts);
            out.set_u32(start + 48, ctx_start as u32);
            out.set_u32(start + 52, (out.len() - ctx_start) as u32);
        }
    }
}

/// SMB2 CREATE Response (MS-SMB2 2.2.14).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CreateResponse<'a> {
    /// OplockLevel granted.
    pub oplock_level: u8,
    /// Flags (SMB2_CREATE_FLAG_REPARSEPOINT 0x01, 3.x).
    pub flags: u8,
    /// CreateAction (`fscc::consts::create_action`).
    pub create_action: u32,
    /// Timestamps.
    pub times: FileTimes,
    /// AllocationSize.
    pub allocation_size: u64,
    /// EndofFile.
    pub end_of_file: u64,
    /// FileAttributes.
    pub file_attributes: u32,
    /// FileId.
    pub file_id: FileId,
    /// Response contexts (MxAc, QFid, RqLs, DH2Q, AAPL…).
    pub contexts: Vec<CreateContext<'a>>,
}

impl<'a> CreateResponse<'a> {
    /// StructureSize.
    pub const STRUCTURE_SIZE: u16 = 89;

    /// Appends the response body: 88 fixed bytes, then the 8-aligned
    /// context chain if any (Samba sends exactly 88 bytes without one).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u8(self.oplock_level);
        out.put_u8(self.flags);
        out.put_u32(self.create_action);
        self.times.encode(out);
        out.put_u64(self.allocation_size);
        out.put_u64(self.end_of_file);
        out.put_u32(self.file_attributes);
        out.put_u32(0);
        self.file_id.encode(out);
        out.put_u32(0);
        out.put_u32(0);
        if !self.contexts.is_empty() {
            pad_to(out, 8);
            let ctx_start = out.len();
            encode_chain(out, &self.contexts);
            out.set_u32(start + 80, ctx_start as u32);
            out.set_u32(start + 84, (out.len() - ctx_start) as u32);
        }
    }

    /// Decodes the response in `msg` (client side).
    pub fn decode(msg: &'a [u8]) -> DResult<Self> {
        check_structure_size(msg, Self::STRUCTURE_SIZE)?;
        let (i, _) = le_u16(body(msg)?)?;
        let (i, oplock_level) = le_u8(i)?;
        let (i, flags) = le_u8(i)?;
        let (i, create_action) = le_u32(i)?;
        let (i, times) = FileTimes::parse(i)?;
        let (i, allocation_size) = le_u64(i)?;
        let (i, end_of_file) = le_u64(i)?;
        let (i, file_attributes) = le_u32(i)?;
        let (i, _reserved2) = le_u32(i)?;
        let (i, file_id) = FileId::parse(i)?;
        let (i, ctx_offset) = le_u32(i)?;
        let (_, ctx_length) = le_u32(i)?;
        let contexts = decode_chain(buffer(msg, ctx_offset, ctx_length)?)?;
        Ok(Self {
            oplock_level,
            flags,
            create_action,
            times,
            allocation_size,
            end_of_file,
            file_attributes,
            file_id,
            contexts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::create_context::{MxAcResponse, QFidResponse, names};
    use crate::wire::fscc::consts::{access, create_disposition, create_options, file_attributes};
    use crate::wire::header::Header;
    use crate::wire::{DecodeError, NtStatus};
    use proptest::prelude::*;

    macro_rules! fixture {
        ($f:literal) => {
            include_bytes!(concat!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/", $f))
        };
    }

    /// Re-encodes a captured response: header as captured, body from `enc`.
    fn reencode(msg: &[u8], enc: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        Header::decode(msg).unwrap().encode(&mut out);
        enc(&mut out);
        out
    }

    /// Frame 38/39: smbclient creates d1\a.txt for writing; Samba answers.
    #[test]
    fn captured_create_of_a_file() {
        let req = CreateRequest::decode(fixture!("38-create-req.bin")).unwrap();
        assert_eq!(req.name, "d1\\a.txt");
        assert_eq!(req.create_disposition, create_disposition::OVERWRITE_IF);
        assert_eq!(req.create_options, create_options::NON_DIRECTORY_FILE);
        assert_eq!(req.desired_access, 0x0012_019f);
        assert_eq!(req.impersonation_level, 2);
        assert!(req.contexts.is_empty());
        let mut out = vec![0u8; 64];
        req.encode(&mut out);
        assert_eq!(&out[64..], &fixture!("38-create-req.bin")[64..]);

        let msg = fixture!("39-create-resp.bin");
        let resp = CreateResponse::decode(msg).unwrap();
        assert_eq!(resp.create_action, 2);
        assert_eq!(resp.file_attributes, file_attributes::ARCHIVE);
        assert_eq!(resp.file_id, FileId { persistent: 0x245b_8753, volatile: 0x6c8c_d2b7 });
        assert_eq!(reencode(msg, |o| resp.encode(o)), msg);
    }

    /// Frame 20/21: opening the share root with an empty name.
    #[test]
    fn captured_create_of_the_root() {
        let req = CreateRequest::decode(fixture!("20-create-req.bin")).unwrap();
        assert_eq!(req.name, "");
        assert_eq!(req.desired_access, access::FILE_READ_DATA | access::FILE_READ_ATTRIBUTES);
        let mut out = vec![0u8; 64];
        req.encode(&mut out);
        assert_eq!(&out[64..], &fixture!("20-create-req.bin")[64..]);
        let msg = fixture!("21-create-resp.bin");
        let resp = CreateResponse::decode(msg).unwrap();
        assert_eq!(resp.file_attributes, file_attributes::DIRECTORY);
        assert_eq!(reencode(msg, |o| resp.encode(o)), msg);
    }

    #[test]
    fn response_with_mxac_and_qfid_contexts() {
        let mut mx = Vec::new();
        MxAcResponse { query_status: NtStatus::SUCCESS, maximal_access: 0x001f_01ff }.encode(&mut mx);
        let mut qf = Vec::new();
        QFidResponse { disk_file_id: 0x99449c, volume_id: 0xfd00 }.encode(&mut qf);
        let resp = CreateResponse {
            contexts: vec![CreateContext::new(names::MXAC, &mx), CreateContext::new(names::QFID, &qf)],
            ..Default::default()
        };
        let mut out = vec![0u8; 64];
        resp.encode(&mut out);
        // Contexts start right after the 88-byte fixed part (152 is 8-aligned).
        assert_eq!(u32::from_le_bytes(out[144..148].try_into().unwrap()), 152);
        let back = CreateResponse::decode(&out).unwrap();
        let q = crate::wire::create_context::find(&back.contexts, names::QFID).unwrap();
        assert_eq!(QFidResponse::decode(q.data).unwrap().disk_file_id, 0x99449c);
        assert_eq!(back, resp);
    }

    #[test]
    fn rejects_bad_name_buffer() {
        let req = CreateRequest { name: "ab".into(), ..Default::default() };
        let mut out = vec![0u8; 64];
        req.encode(&mut out);
        let mut bad = out.clone();
        bad[64 + 44] = 0x10; // NameOffset into the header.
        assert_eq!(CreateRequest::decode(&bad), Err(DecodeError::BadOffset));
        let mut bad = out.clone();
        bad[64 + 46] = 3; // odd NameLength.
        assert_eq!(CreateRequest::decode(&bad), Err(DecodeError::BadValue));
        assert_eq!(CreateRequest::decode(&out[..out.len() - 1]), Err(DecodeError::BadOffset));
    }

    fn arb_ctx() -> impl Strategy<Value = Vec<(Vec<u8>, Vec<u8>)>> {
        proptest::collection::vec(
            (proptest::collection::vec(any::<u8>(), 4..5), proptest::collection::vec(any::<u8>(), 0..40)),
            0..4,
        )
    }

    proptest! {
        #[test]
        fn request_round_trips(a in any::<(u8, u8, u32, u64, u32, u32, u32, u32, u32)>(), name in "[a-zA-Z0-9\\\\ ._\u{3041}-\u{30ff}]{0,30}", c in arb_ctx(),
                               flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..6)) {
            let req = CreateRequest {
                security_flags: a.0, requested_oplock_level: a.1, impersonation_level: a.2, smb_create_flags: a.3,
                desired_access: a.4, file_attributes: a.5, share_access: a.6, create_disposition: a.7, create_options: a.8,
                name, contexts: c.iter().map(|(n, d)| CreateContext::new(n, d)).collect(),
            };
            let mut out = vec![0u8; 64];
            req.encode(&mut out);
            prop_assert_eq!(CreateRequest::decode(&out).unwrap(), req);
            for (at, x) in flips {
                let n = out.len();
                out[64 + at % (n - 64)] ^= x;
            }
            let _ = CreateRequest::decode(&out);
        }

        #[test]
        fn response_round_trips(a in any::<(u8, u8, u32, [u64; 4], u64, u64, u32, u64, u64)>(), c in arb_ctx()) {
            let resp = CreateResponse {
                oplock_level: a.0, flags: a.1, create_action: a.2,
                times: FileTimes { creation: a.3[0], last_access: a.3[1], last_write: a.3[2], change: a.3[3] },
                allocation_size: a.4, end_of_file: a.5, file_attributes: a.6,
                file_id: FileId { persistent: a.7, volatile: a.8 },
                contexts: c.iter().map(|(n, d)| CreateContext::new(n, d)).collect(),
            };
            let mut out = vec![0u8; 64];
            resp.encode(&mut out);
            prop_assert_eq!(CreateResponse::decode(&out).unwrap(), resp);
        }

        #[test]
        fn decoders_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut m = vec![0u8; 64];
            m.extend_from_slice(&57u16.to_le_bytes());
            m.extend_from_slice(&tail);
            let _ = CreateRequest::decode(&m);
            m[64] = 89;
            let _ = CreateResponse::decode(&m);
        }
    }
}
