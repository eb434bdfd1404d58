//! SMB2 IOCTL (MS-SMB2 2.2.31, 2.2.32), the FSCTL code table, and the
//! SMB2-specific FSCTL payloads: copychunk (2.2.31.1, 2.2.32.1), resume key
//! (2.2.32.3), validate negotiate (2.2.31.4, 2.2.32.6) and snapshots
//! (2.2.32.2). File-system FSCTL payloads are in `fscc::fsctl`.

use nom::number::complete::{le_u16, le_u32, le_u64};

use super::create::FileId;
use super::{DResult, DecodeError, Guid, PutLe, body, buffer, check_structure_size, guid, pad_to, put_utf16le};

/// An FSCTL/IOCTL code (MS-SMB2 2.2.31 CtlCode, MS-FSCC 2.3).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CtlCode(pub u32);

#[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
impl CtlCode {
    pub const DFS_GET_REFERRALS: Self = Self(0x0006_0194);
    pub const DFS_GET_REFERRALS_EX: Self = Self(0x0006_01B0);
    pub const PIPE_PEEK: Self = Self(0x0011_400C);
    pub const PIPE_WAIT: Self = Self(0x0011_0018);
    pub const PIPE_TRANSCEIVE: Self = Self(0x0011_C017);
    pub const SRV_COPYCHUNK: Self = Self(0x0014_40F2);
    pub const SRV_COPYCHUNK_WRITE: Self = Self(0x0014_80F2);
    pub const SRV_ENUMERATE_SNAPSHOTS: Self = Self(0x0014_4064);
    pub const SRV_REQUEST_RESUME_KEY: Self = Self(0x0014_0078);
    pub const SRV_READ_HASH: Self = Self(0x0014_41BB);
    pub const LMR_REQUEST_RESILIENCY: Self = Self(0x0014_01D4);
    pub const QUERY_NETWORK_INTERFACE_INFO: Self = Self(0x0014_01FC);
    pub const VALIDATE_NEGOTIATE_INFO: Self = Self(0x0014_0204);
    pub const SET_SPARSE: Self = Self(0x0009_00C4);
    pub const SET_ZERO_DATA: Self = Self(0x0009_80C8);
    pub const QUERY_ALLOCATED_RANGES: Self = Self(0x0009_40CF);
    pub const GET_REPARSE_POINT: Self = Self(0x0009_00A8);
    pub const SET_REPARSE_POINT: Self = Self(0x0009_00A4);
    pub const DELETE_REPARSE_POINT: Self = Self(0x0009_00AC);
    pub const GET_COMPRESSION: Self = Self(0x0009_003C);
    pub const SET_COMPRESSION: Self = Self(0x0009_C040);
    pub const CREATE_OR_GET_OBJECT_ID: Self = Self(0x0009_00C0);
    pub const GET_OBJECT_ID: Self = Self(0x0009_009C);
    pub const FILE_LEVEL_TRIM: Self = Self(0x0009_8208);
    pub const GET_INTEGRITY_INFORMATION: Self = Self(0x0009_027C);
    pub const SET_INTEGRITY_INFORMATION: Self = Self(0x0009_C280);
    pub const QUERY_FILE_REGIONS: Self = Self(0x0009_0284);
    pub const DUPLICATE_EXTENTS_TO_FILE: Self = Self(0x0009_8344);
    pub const OFFLOAD_READ: Self = Self(0x0009_4264);
    pub const OFFLOAD_WRITE: Self = Self(0x0009_8268);

    /// The name without the FSCTL_ prefix, for logs.
    pub fn name(self) -> Option<&'static str> {
        const NAMES: [(CtlCode, &str); 30] = [
            (CtlCode::DFS_GET_REFERRALS, "DFS_GET_REFERRALS"),
            (CtlCode::DFS_GET_REFERRALS_EX, "DFS_GET_REFERRALS_EX"),
            (CtlCode::PIPE_PEEK, "PIPE_PEEK"),
            (CtlCode::PIPE_WAIT, "PIPE_WAIT"),
            (CtlCode::PIPE_TRANSCEIVE, "PIPE_TRANSCEIVE"),
            (CtlCode::SRV_COPYCHUNK, "SRV_COPYCHUNK"),
            (CtlCode::SRV_COPYCHUNK_WRITE, "SRV_COPYCHUNK_WRITE"),
            (CtlCode::SRV_ENUMERATE_SNAPSHOTS, "SRV_ENUMERATE_SNAPSHOTS"),
            (CtlCode::SRV_REQUEST_RESUME_KEY, "SRV_REQUEST_RESUME_KEY"),
            (CtlCode::SRV_READ_HASH, "SRV_READ_HASH"),
            (CtlCode::LMR_REQUEST_RESILIENCY, "LMR_REQUEST_RESILIENCY"),
            (CtlCode::QUERY_NETWORK_INTERFACE_INFO, "QUERY_NETWORK_INTERFACE_INFO"),
            (CtlCode::VALIDATE_NEGOTIATE_INFO, "VALIDATE_NEGOTIATE_INFO"),
            (CtlCode::SET_SPARSE, "SET_SPARSE"),
            (CtlCode::SET_ZERO_DATA, "SET_ZERO_DATA"),
            (CtlCode::QUERY_ALLOCATED_RANGES, "QUERY_ALLOCATED_RANGES"),
            (CtlCode::GET_REPARSE_POINT, "GET_REPARSE_POINT"),
            (CtlCode::SET_REPARSE_POINT, "SET_REPARSE_POINT"),
            (CtlCode::DELETE_REPARSE_POINT, "DELETE_REPARSE_POINT"),
            (CtlCode::GET_COMPRESSION, "GET_COMPRESSION"),
            (CtlCode::SET_COMPRESSION, "SET_COMPRESSION"),
            (CtlCode::CREATE_OR_GET_OBJECT_ID, "CREATE_OR_GET_OBJECT_ID"),
            (CtlCode::GET_OBJECT_ID, "GET_OBJECT_ID"),
            (CtlCode::FILE_LEVEL_TRIM, "FILE_LEVEL_TRIM"),
            (CtlCode::GET_INTEGRITY_INFORMATION, "GET_INTEGRITY_INFORMATION"),
            (CtlCode::SET_INTEGRITY_INFORMATION, "SET_INTEGRITY_INFORMATION"),
            (CtlCode::QUERY_FILE_REGIONS, "QUERY_FILE_REGIONS"),
            (CtlCode::DUPLICATE_EXTENTS_TO_FILE, "DUPLICATE_EXTENTS_TO_FILE"),
            (CtlCode::OFFLOAD_READ, "OFFLOAD_READ"),
            (CtlCode::OFFLOAD_WRITE, "OFFLOAD_WRITE"),
        ];
        NAMES.iter().find(|(c, _)| *c == self).map(|(_, n)| *n)
    }
}

impl std::fmt::Debug for CtlCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.name() {
            Some(n) => write!(f, "FSCTL_{n}"),
            None => write!(f, "CtlCode(0x{:08x})", self.0),
        }
    }
}

/// SMB2_0_IOCTL_IS_FSCTL: the only Flags value (3.3.5.15: anything else is
/// STATUS_NOT_SUPPORTED).
pub const IOCTL_IS_FSCTL: u32 = 0x0000_0001;

/// SMB2 IOCTL Request (MS-SMB2 2.2.31).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoctlRequest<'a> {
    /// CtlCode.
    pub ctl_code: CtlCode,
    /// FileId ([`FileId::ANY`] for VALIDATE_NEGOTIATE_INFO and DFS).
    pub file_id: FileId,
    /// Input buffer.
    pub input: &'a [u8],
    /// MaxInputResponse.
    pub max_input_response: u32,
    /// Output buffer sent by the client (normally empty).
    pub output: &'a [u8],
    /// MaxOutputResponse: the response output must not exceed it.
    pub max_output_response: u32,
    /// Flags ([`IOCTL_IS_FSCTL`]).
    pub flags: u32,
}

impl<'a> IoctlRequest<'a> {
    /// StructureSize.
    pub const STRUCTURE_SIZE: u16 = 57;

    /// Decodes the request in `msg`.
    pub fn decode(msg: &'a [u8]) -> DResult<Self> {
        check_structure_size(msg, Self::STRUCTURE_SIZE)?;
        let (i, _) = le_u16(body(msg)?)?;
        let (i, _reserved) = le_u16(i)?;
        let (i, ctl_code) = le_u32(i)?;
        let (i, file_id) = FileId::parse(i)?;
        let (i, input_offset) = le_u32(i)?;
        let (i, input_count) = le_u32(i)?;
        let (i, max_input_response) = le_u32(i)?;
        let (i, output_offset) = le_u32(i)?;
        let (i, output_count) = le_u32(i)?;
        let (i, max_output_response) = le_u32(i)?;
        let (i, flags) = le_u32(i)?;
        let (_, _reserved2) = le_u32(i)?;
        Ok(Self {
            ctl_code: CtlCode(ctl_code),
            file_id,
            input: buffer(msg, input_offset, input_count)?,
            max_input_response,
            output: buffer(msg, output_offset, output_count)?,
            max_output_response,
            flags,
        })
    }

    /// Appends the request body as smbclient lays it out: input at the
    /// Buffer, output 8-aligned after it; with no buffers, offsets 0 and a
    /// 1-byte Buffer.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        let buf = start + 56;
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(0);
        out.put_u32(self.ctl_code.0);
        self.file_id.encode(out);
        out.put_zeros(32);
        out.set_u32(start + 28, self.input.len() as u32);
        out.set_u32(start + 32, self.max_input_response);
        out.set_u32(start + 40, self.output.len() as u32);
        out.set_u32(start + 44, self.max_output_response);
        out.set_u32(start + 48, self.flags);
        if self.input.is_empty() && self.output.is_empty() {
            out.put_u8(0);
            return;
        }
        out.set_u32(start + 24, if self.input.is_empty() { 0 } else { buf as u32 });
        out.extend_from_slice(self.input);
        if !self.output.is_empty() {
            pad_to(out, 8);
        }
        let output_offset = if self.output.is_empty() { buf } else { out.len() };
        out.set_u32(start + 36, output_offset as u32);
        out.extend_from_slice(self.output);
    }
}

/// SMB2 IOCTL Response (MS-SMB2 2.2.32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoctlResponse<'a> {
    /// CtlCode (echoed).
    pub ctl_code: CtlCode,
    /// FileId (echoed).
    pub file_id: FileId,
    /// Input echoed back (empty except for some pass-through FSCTLs).
    pub input: &'a [u8],
    /// Output.
    pub output: &'a [u8],
    /// Flags (reserved, 0).
    pub flags: u32,
}

impl<'a> IoctlResponse<'a> {
    /// StructureSize.
    pub const STRUCTURE_SIZE: u16 = 49;

    /// Appends the response body as Samba lays it out: InputOffset and
    /// OutputOffset both at the Buffer (0x70) when the input is empty.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(Self::STRUCTURE_SIZE);
        out.put_u16(0);
        out.put_u32(self.ctl_code.0);
        self.file_id.encode(out);
        out.put_u32((start + 48) as u32);
        out.put_u32(self.input.len() as u32);
        out.put_u32(0);
        out.put_u32(self.output.len() as u32);
        out.put_u32(self.flags);
        out.put_u32(0);
        out.extend_from_slice(self.input);
        if !self.input.is_empty() {
            pad_to(out, 8);
        }
        let output_offset = out.len();
        out.set_u32(start + 32, output_offset as u32);
        out.extend_from_slice(self.output);
    }

    /// Decodes the response in `msg` (client side).
    pub fn decode(msg: &'a [u8]) -> DResult<Self> {
        check_structure_size(msg, Self::STRUCTURE_SIZE)?;
        let (i, _) = le_u16(body(msg)?)?;
        let (i, _reserved) = le_u16(i)?;
        let (i, ctl_code) = le_u32(i)?;
        let (i, file_id) = FileId::parse(i)?;
        let (i, input_offset) = le_u32(i)?;
        let (i, input_count) = le_u32(i)?;
        let (i, output_offset) = le_u32(i)?;
        let (i, output_count) = le_u32(i)?;
        let (i, flags) = le_u32(i)?;
        let (_, _reserved2) = le_u32(i)?;
        Ok(Self {
            ctl_code: CtlCode(ctl_code),
            file_id,
            input: buffer(msg, input_offset, input_count)?,
            output: buffer(msg, output_offset, output_count)?,
            flags,
        })
    }
}

/// One SRV_COPYCHUNK range (MS-SMB2 2.2.31.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyChunk {
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub source_offset: u64,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub target_offset: u64,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub length: u32,
}

/// SRV_COPYCHUNK_COPY (MS-SMB2 2.2.31.1): the input of SRV_COPYCHUNK(_WRITE).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CopyChunkCopy {
    /// SourceKey from SRV_REQUEST_RESUME_KEY.
    pub source_key: [u8; 24],
    /// The chunks (the server enforces its ChunkCount limit, 3.3.5.15.6).
    pub chunks: Vec<CopyChunk>,
}

impl CopyChunkCopy {
    /// Decodes the input; ChunkCount must match the buffer.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let mut source_key = [0u8; 24];
        source_key.copy_from_slice(b.get(..24).ok_or(DecodeError::Truncated)?);
        let (i, count) = le_u32(&b[24..])?;
        let (mut i, _reserved) = le_u32(i)?;
        if (i.len() / 24) < count as usize {
            return Err(DecodeError::BadLength);
        }
        let mut chunks = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let (rest, source_offset) = le_u64(i)?;
            let (rest, target_offset) = le_u64(rest)?;
            let (rest, length) = le_u32(rest)?;
            let (rest, _reserved) = le_u32(rest)?;
            chunks.push(CopyChunk { source_offset, target_offset, length });
            i = rest;
        }
        Ok(Self { source_key, chunks })
    }

    /// Appends the input.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.source_key);
        out.put_u32(self.chunks.len() as u32);
        out.put_u32(0);
        for c in &self.chunks {
            out.put_u64(c.source_offset);
            out.put_u64(c.target_offset);
            out.put_u32(c.length);
            out.put_u32(0);
        }
    }
}

/// SRV_COPYCHUNK_RESPONSE (MS-SMB2 2.2.32.1). On STATUS_INVALID_PARAMETER
/// for exceeded limits the same fields carry the server's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CopyChunkResponse {
    /// ChunksWritten (or the maximum chunk count).
    pub chunks_written: u32,
    /// ChunkBytesWritten (or the maximum chunk size).
    pub chunk_bytes_written: u32,
    /// TotalBytesWritten (or the maximum total).
    pub total_bytes_written: u32,
}

impl CopyChunkResponse {
    /// Appends 12 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.chunks_written);
        out.put_u32(self.chunk_bytes_written);
        out.put_u32(self.total_bytes_written);
    }

    /// Decodes 12 bytes.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (i, chunks_written) = le_u32(b)?;
        let (i, chunk_bytes_written) = le_u32(i)?;
        let (_, total_bytes_written) = le_u32(i)?;
        Ok(Self { chunks_written, chunk_bytes_written, total_bytes_written })
    }
}

/// SRV_REQUEST_RESUME_KEY response (MS-SMB2 2.2.32.3): a 24-byte key that
/// names the source open in a later copychunk, ContextLength 0.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ResumeKey(pub [u8; 24]);

impl ResumeKey {
    /// This server's key (its content is the server's choice, opaque to
    /// clients): the source open's FileId and a check value, little-endian.
    pub fn new(persistent: u64, volatile: u64, check: u64) -> Self {
        let mut k = [0u8; 24];
        k[..8].copy_from_slice(&persistent.to_le_bytes());
        k[8..16].copy_from_slice(&volatile.to_le_bytes());
        k[16..].copy_from_slice(&check.to_le_bytes());
        Self(k)
    }

    /// The volatile FileId half of a key made by [`ResumeKey::new`].
    pub fn volatile(&self) -> u64 {
        let mut v = [0u8; 8];
        v.copy_from_slice(&self.0[8..16]);
        u64::from_le_bytes(v)
    }

    /// Appends 28 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.0);
        out.put_u32(0);
    }

    /// Decodes the key; any context must fit the buffer and is ignored.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let mut k = [0u8; 24];
        k.copy_from_slice(b.get(..24).ok_or(DecodeError::Truncated)?);
        let (i, context_len) = le_u32(&b[24..])?;
        if i.len() < context_len as usize {
            return Err(DecodeError::BadLength);
        }
        Ok(Self(k))
    }
}

/// VALIDATE_NEGOTIATE_INFO request (MS-SMB2 2.2.31.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ValidateNegotiateInfoRequest {
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub capabilities: u32,
    /// The client's ClientGuid.
    pub guid: Guid,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub security_mode: u16,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub dialects: Vec<u16>,
}

impl ValidateNegotiateInfoRequest {
    /// Decodes the input; DialectCount must match the buffer
    /// (3.3.5.15.12: otherwise terminate the connection).
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (i, capabilities) = le_u32(b)?;
        let (i, guid) = guid(i)?;
        let (i, security_mode) = le_u16(i)?;
        let (i, count) = le_u16(i)?;
        let n = usize::from(count);
        if i.len() < n * 2 {
            return Err(DecodeError::BadLength);
        }
        let dialects = i[..n * 2].chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect();
        Ok(Self { capabilities, guid, security_mode, dialects })
    }

    /// Appends the input.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.capabilities);
        out.extend_from_slice(&self.guid.0);
        out.put_u16(self.security_mode);
        out.put_u16(self.dialects.len() as u16);
        for d in &self.dialects {
            out.put_u16(*d);
        }
    }
}

/// VALIDATE_NEGOTIATE_INFO response (MS-SMB2 2.2.32.6), 24 bytes; must be
/// signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ValidateNegotiateInfoResponse {
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub capabilities: u32,
    /// The server's ServerGuid.
    pub guid: Guid,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub security_mode: u16,
    #[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
    pub dialect: u16,
}

impl ValidateNegotiateInfoResponse {
    /// Appends 24 bytes.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u32(self.capabilities);
        out.extend_from_slice(&self.guid.0);
        out.put_u16(self.security_mode);
        out.put_u16(self.dialect);
    }

    /// Decodes 24 bytes.
    pub fn decode(b: &[u8]) -> DResult<Self> {
        let (i, capabilities) = le_u32(b)?;
        let (i, guid) = guid(i)?;
        let (i, security_mode) = le_u16(i)?;
        let (_, dialect) = le_u16(i)?;
        Ok(Self { capabilities, guid, security_mode, dialect })
    }
}

/// SRV_SNAPSHOT_ARRAY (MS-SMB2 2.2.32.2): "@GMT-YYYY.MM.DD-HH.MM.SS" tokens.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SnapshotArray {
    /// The snapshot tokens, newest first.
    pub snapshots: Vec<String>,
}

impl SnapshotArray {
    /// Appends the array if it fits in `max_output` (3.3.5.15.1); otherwise
    /// the 16-byte form that only reports the count and the size needed.
    pub fn encode(&self, max_output: usize, out: &mut Vec<u8>) {
        let mut array = Vec::new();
        for s in &self.snapshots {
            put_utf16le(&mut array, s);
            array.put_u16(0);
        }
        array.put_u16(0);
        let fits = 12 + array.len() <= max_output;
        out.put_u32(self.snapshots.len() as u32);
        out.put_u32(if fits { self.snapshots.len() as u32 } else { 0 });
        out.put_u32(array.len() as u32);
        if fits {
            out.extend_from_slice(&array);
        } else {
            out.put_u32(0);
        }
    }

    /// Decodes the returned tokens (client side); returns the array and
    /// NumberOfSnapShots (which exceeds the array when it did not fit).
    pub fn decode(b: &[u8]) -> DResult<(Self, u32)> {
        let (i, total) = le_u32(b)?;
        let (i, returned) = le_u32(i)?;
        let (i, size) = le_u32(i)?;
        let mut snapshots = Vec::new();
        if returned > 0 {
            let array = i.get(..size as usize).ok_or(DecodeError::BadLength)?;
            for s in array.chunks_exact(2).collect::<Vec<_>>().split(|c| *c == [0, 0]) {
                if !s.is_empty() {
                    snapshots.push(super::utf16le(&s.concat())?);
                }
            }
        }
        Ok((Self { snapshots }, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::header::Header;
    use proptest::prelude::*;

    fn reencode(msg: &[u8], enc: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = Vec::new();
        Header::decode(msg).unwrap().encode(&mut out);
        enc(&mut out);
        out
    }

    /// FSCTL_VALIDATE_NEGOTIATE_INFO, captures/smbclient-SMB3_00-signed.pcap frames 14/15.
    #[test]
    fn captured_validate_negotiate() {
        let req = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_00-signed/14-ioctl-req.bin");
        let r = IoctlRequest::decode(req).unwrap();
        assert_eq!(r.ctl_code, CtlCode::VALIDATE_NEGOTIATE_INFO);
        assert_eq!(r.file_id, FileId::ANY);
        assert_eq!(r.flags, IOCTL_IS_FSCTL);
        assert_eq!(r.max_output_response, 24);
        let v = ValidateNegotiateInfoRequest::decode(r.input).unwrap();
        assert_eq!(v.dialects, vec![0x0202, 0x0210, 0x0300]);
        assert_eq!(v.security_mode, 1);
        let mut out = vec![0u8; 64];
        r.encode(&mut out);
        assert_eq!(&out[64..], &req[64..]);

        let msg = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_00-signed/15-ioctl-resp.bin");
        let resp = IoctlResponse::decode(msg).unwrap();
        let vr = ValidateNegotiateInfoResponse::decode(resp.output).unwrap();
        assert_eq!(vr.dialect, 0x0300);
        let mut body = Vec::new();
        vr.encode(&mut body);
        assert_eq!(body, resp.output);
        assert_eq!(reencode(msg, |o| resp.encode(o)), msg);
    }

    /// FSCTL_PIPE_TRANSCEIVE (DCE/RPC bind) from captures/smbclient-list-shares.pcap
    /// frames 17 and 21, and FSCTL_SRV_ENUMERATE_SNAPSHOTS (SMB3_11 frame 72).
    #[test]
    fn captured_pipe_transceive_and_snapshots() {
        let req = include_bytes!("../../protocol-tests/fixtures/smbclient-list-shares/17-ioctl-req.bin");
        let r = IoctlRequest::decode(req).unwrap();
        assert_eq!(r.ctl_code, CtlCode::PIPE_TRANSCEIVE);
        assert_eq!(r.input.len(), 0x48);
        assert_eq!(r.max_output_response, 0x10b8);
        let mut out = vec![0u8; 64];
        r.encode(&mut out);
        assert_eq!(&out[64..], &req[64..]);
        let msg = include_bytes!("../../protocol-tests/fixtures/smbclient-list-shares/21-ioctl-resp.bin");
        let resp = IoctlResponse::decode(msg).unwrap();
        assert_eq!(resp.output.len(), 0x44);
        assert_eq!(reencode(msg, |o| resp.encode(o)), msg);

        let req = include_bytes!("../../protocol-tests/fixtures/smbclient-SMB3_11-signed/72-ioctl-req.bin");
        let r = IoctlRequest::decode(req).unwrap();
        assert_eq!(r.ctl_code, CtlCode::SRV_ENUMERATE_SNAPSHOTS);
        assert!(r.input.is_empty());
        assert_eq!(r.max_output_response, 16);
        let mut out = vec![0u8; 64];
        r.encode(&mut out);
        assert_eq!(&out[64..], &req[64..]);
        assert_eq!(format!("{:?}", r.ctl_code), "FSCTL_SRV_ENUMERATE_SNAPSHOTS");
    }

    #[test]
    fn snapshot_array_fits_or_reports_size() {
        let a = SnapshotArray { snapshots: vec!["@GMT-2024.01.02-03.04.05".into(), "@GMT-2024.01.01-00.00.00".into()] };
        let mut out = Vec::new();
        a.encode(16, &mut out);
        assert_eq!(out.len(), 16);
        let (d, total) = SnapshotArray::decode(&out).unwrap();
        assert_eq!((d.snapshots.len(), total), (0, 2));
        // 2 × (24 chars + NUL) × 2 bytes + final NUL = 102.
        assert_eq!(u32::from_le_bytes(out[8..12].try_into().unwrap()), 102);
        out.clear();
        a.encode(1000, &mut out);
        assert_eq!(out.len(), 12 + 102);
        assert_eq!(SnapshotArray::decode(&out).unwrap(), (a, 2));
    }

    proptest! {
        #[test]
        fn ioctl_round_trips(code: u32, id in any::<(u64, u64)>(), input in proptest::collection::vec(any::<u8>(), 0..50),
                             output in proptest::collection::vec(any::<u8>(), 0..50), m in any::<(u32, u32, u32)>()) {
            let file_id = FileId { persistent: id.0, volatile: id.1 };
            let req = IoctlRequest { ctl_code: CtlCode(code), file_id, input: &input, max_input_response: m.0, output: &output, max_output_response: m.1, flags: m.2 };
            let mut out = vec![0u8; 64];
            req.encode(&mut out);
            prop_assert_eq!(IoctlRequest::decode(&out).unwrap(), req);
            let resp = IoctlResponse { ctl_code: CtlCode(code), file_id, input: &input, output: &output, flags: m.2 };
            let mut out = vec![0u8; 64];
            resp.encode(&mut out);
            prop_assert_eq!(IoctlResponse::decode(&out).unwrap(), resp);
        }

        #[test]
        fn payloads_round_trip(key in any::<[u8; 24]>(), v in proptest::collection::vec(any::<(u64, u64, u32)>(), 0..5), g in any::<[u8; 16]>(), d in proptest::collection::vec(any::<u16>(), 0..6)) {
            let c = CopyChunkCopy { source_key: key, chunks: v.into_iter().map(|(source_offset, target_offset, length)| CopyChunk { source_offset, target_offset, length }).collect() };
            let mut out = Vec::new();
            c.encode(&mut out);
            prop_assert_eq!(CopyChunkCopy::decode(&out).unwrap(), c);
            out.clear();
            let q = ValidateNegotiateInfoRequest { capabilities: 7, guid: Guid(g), security_mode: 2, dialects: d };
            q.encode(&mut out);
            prop_assert_eq!(ValidateNegotiateInfoRequest::decode(&out).unwrap(), q);
            out.clear();
            ResumeKey(key).encode(&mut out);
            prop_assert_eq!(out.len(), 28);
            prop_assert_eq!(ResumeKey::decode(&out).unwrap(), ResumeKey(key));
        }

        #[test]
        fn decoders_never_panic(tail in proptest::collection::vec(any::<u8>(), 0..120)) {
            let mut m = vec![0u8; 64];
            m.extend_from_slice(&57u16.to_le_bytes());
            m.extend_from_slice(&tail);
            let _ = IoctlRequest::decode(&m);
            m[64] = 49;
            let _ = IoctlResponse::decode(&m);
            let _ = CopyChunkCopy::decode(&tail);
            let _ = ValidateNegotiateInfoRequest::decode(&tail);
            let _ = SnapshotArray::decode(&tail);
            let _ = ResumeKey::decode(&tail);
        }
    }
}
