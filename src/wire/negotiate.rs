//! NEGOTIATE (MS-SMB2 2.2.3, 2.2.4) with negotiate contexts (2.2.3.1, 2.2.4.1),
//! and the SMB1 multi-protocol NEGOTIATE that older clients send first (MS-SMB2 3.3.5.3.1).

use nom::number::complete::{le_u8, le_u16, le_u32, le_u64};

use super::{DResult, DecodeError, Guid, HEADER_LEN, PutLe, buffer, check_structure_size, guid};

/// A dialect revision (MS-SMB2 2.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Dialect(pub u16);

#[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
impl Dialect {
    pub const SMB202: Self = Self(0x0202);
    pub const SMB21: Self = Self(0x0210);
    pub const SMB30: Self = Self(0x0300);
    pub const SMB302: Self = Self(0x0302);
    pub const SMB311: Self = Self(0x0311);
    /// "SMB 2.???": answer to an SMB1 negotiate that offers SMB2 (3.3.5.3.1).
    pub const WILDCARD: Self = Self(0x02FF);

    /// True for the SMB 3.x family (encryption, CMAC signing, …).
    pub fn is_smb3(self) -> bool {
        self.0 >= 0x0300 && self != Self::WILDCARD
    }

    /// Dotted name for logs ("3.1.1").
    pub fn name(self) -> &'static str {
        match self.0 {
            0x0202 => "2.0.2",
            0x0210 => "2.1",
            0x0300 => "3.0",
            0x0302 => "3.0.2",
            0x0311 => "3.1.1",
            0x02FF => "2.???",
            _ => "unknown",
        }
    }
}

/// Negotiate context types (MS-SMB2 2.2.3.1).
#[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
pub mod ctx {
    pub const PREAUTH_INTEGRITY: u16 = 0x0001;
    pub const ENCRYPTION: u16 = 0x0002;
    pub const COMPRESSION: u16 = 0x0003;
    pub const NETNAME: u16 = 0x0005;
    pub const TRANSPORT: u16 = 0x0006;
    pub const RDMA_TRANSFORM: u16 = 0x0007;
    pub const SIGNING: u16 = 0x0008;
    pub const POSIX: u16 = 0x0100;
}

/// Hash algorithm id for SHA-512 (2.2.3.1.1), the only one defined.
pub const HASH_SHA512: u16 = 0x0001;

/// Global capabilities (2.2.3).
#[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
pub mod caps {
    pub const DFS: u32 = 0x01;
    pub const LEASING: u32 = 0x02;
    pub const LARGE_MTU: u32 = 0x04;
    pub const MULTI_CHANNEL: u32 = 0x08;
    pub const PERSISTENT_HANDLES: u32 = 0x10;
    pub const DIRECTORY_LEASING: u32 = 0x20;
    pub const ENCRYPTION: u32 = 0x40;
}

/// SecurityMode bits (2.2.3).
#[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
pub mod security_mode {
    pub const SIGNING_ENABLED: u16 = 0x01;
    pub const SIGNING_REQUIRED: u16 = 0x02;
}

/// One negotiate context as sent: its type and raw data (typed views below).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegContext {
    /// ContextType.
    pub context_type: u16,
    /// Data (DataLength bytes).
    pub data: Vec<u8>,
}

/// NEGOTIATE request (MS-SMB2 2.2.3).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NegotiateRequest {
    /// SecurityMode.
    pub security_mode: u16,
    /// Capabilities.
    pub capabilities: u32,
    /// ClientGuid.
    pub client_guid: Guid,
    /// Dialects in client order.
    pub dialects: Vec<Dialect>,
    /// Negotiate contexts (only when 3.1.1 is offered).
    pub contexts: Vec<NegContext>,
}

/// Largest number of dialects or contexts we accept; real clients send ≤ 6.
const MAX_LIST: usize = 64;

impl NegotiateRequest {
    /// Decodes a request from the whole message.
    pub fn decode(msg: &[u8]) -> DResult<Self> {
        check_structure_size(msg, 36)?;
        let b = &msg[HEADER_LEN..];
        let (i, _size) = le_u16(b)?;
        let (i, dialect_count) = le_u16(i)?;
        let (i, security_mode) = le_u16(i)?;
        let (i, _reserved) = le_u16(i)?;
        let (i, capabilities) = le_u32(i)?;
        let (i, client_guid) = guid(i)?;
        let (i, ctx_offset) = le_u32(i)?;
        let (i, ctx_count) = le_u16(i)?;
        let (i, _reserved2) = le_u16(i)?;
        let dialect_count = usize::from(dialect_count);
        if dialect_count == 0 || dialect_count > MAX_LIST {
            return Err(DecodeError::BadLength);
        }
        let mut dialects = Vec::with_capacity(dialect_count);
        let mut i = i;
        for _ in 0..dialect_count {
            let (rest, d) = le_u16(i)?;
            dialects.push(Dialect(d));
            i = rest;
        }
        // Contexts exist only if the client offers 3.1.1 (2.2.3: otherwise the
        // field is ClientStartTime and must be ignored).
        let contexts = if dialects.contains(&Dialect::SMB311) && ctx_count > 0 {
            decode_contexts(msg, ctx_offset, ctx_count)?
        } else {
            Vec::new()
        };
        Ok(Self { security_mode, capabilities, client_guid, dialects, contexts })
    }

    /// Encodes the request body (client side; used by the load generator).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let start = out.len();
        out.put_u16(36);
        out.put_u16(self.dialects.len() as u16);
        out.put_u16(self.security_mode);
        out.put_u16(0);
        out.put_u32(self.capabilities);
        out.extend_from_slice(&self.client_guid.0);
        let ctx_off_at = out.len();
        out.put_u32(0);
        out.put_u16(self.contexts.len() as u16);
        out.put_u16(0);
        for d in &self.dialects {
            out.put_u16(d.0);
        }
        debug_assert_eq!(start, HEADER_LEN);
        if !self.contexts.is_empty() {
            super::pad_to(out, 8);
            let off = out.len() as u32;
            out.set_u32(ctx_off_at, off);
            encode_contexts(out, &self.contexts);
        }
    }

    /// The first context of `context_type`, if any.
    pub fn context(&self, context_type: u16) -> Option<&NegContext> {
        self.contexts.iter().find(|c| c.context_type == context_type)
    }
}

/// Parses a negotiate context list (MS-SMB2 2.2.3.1): each context 8-byte
/// aligned relative to the header, DataLength bounded by the message.
pub fn decode_contexts(msg: &[u8], offset: u32, count: u16) -> DResult<Vec<NegContext>> {
    if usize::from(count) > MAX_LIST {
        return Err(DecodeError::BadLength);
    }
    let mut pos = offset as usize;
    if pos < HEADER_LEN || !pos.is_multiple_of(8) {
        return Err(DecodeError::BadOffset);
    }
    let mut out = Vec::with_capacity(usize::from(count));
    for n in 0..count {
        if n > 0 {
            pos = pos.checked_add(7).ok_or(DecodeError::BadOffset)? & !7;
        }
        let hdr = msg.get(pos..pos + 8).ok_or(DecodeError::Truncated)?;
        let (h, context_type) = le_u16(hdr)?;
        let (_, len) = le_u16(h)?;
        let data = msg.get(pos + 8..pos + 8 + usize::from(len)).ok_or(DecodeError::Truncated)?;
        out.push(NegContext { context_type, data: data.to_vec() });
        pos += 8 + usize::from(len);
    }
    Ok(out)
}

/// Appends contexts with 8-byte alignment between them (relative to `out`'s start).
pub fn encode_contexts(out: &mut Vec<u8>, contexts: &[NegContext]) {
    for (n, c) in contexts.iter().enumerate() {
        if n > 0 {
            super::pad_to(out, 8);
        }
        out.put_u16(c.context_type);
        out.put_u16(c.data.len() as u16);
        out.put_u32(0);
        out.extend_from_slice(&c.data);
    }
}

/// Parses a list of u16 ids preceded by its u16 count (encryption, signing
/// contexts), or, for preauth, the hash list + salt. Returns the ids.
pub fn u16_list(data: &[u8]) -> DResult<Vec<u16>> {
    let (i, n) = le_u16(data)?;
    let mut i = i;
    let mut v = Vec::with_capacity(usize::from(n).min(MAX_LIST));
    for _ in 0..n {
        let (rest, x) = le_u16(i)?;
        v.push(x);
        i = rest;
    }
    Ok(v)
}

/// PREAUTH_INTEGRITY_CAPABILITIES data (2.2.3.1.1): (hash algorithms, salt).
pub fn decode_preauth(data: &[u8]) -> DResult<(Vec<u16>, Vec<u8>)> {
    let (i, count) = le_u16(data)?;
    let (mut i, salt_len) = le_u16(i)?;
    if count == 0 {
        return Err(DecodeError::BadLength);
    }
    let mut algs = Vec::new();
    for _ in 0..count.min(MAX_LIST as u16) {
        let (rest, a) = le_u16(i)?;
        algs.push(a);
        i = rest;
    }
    let salt = i.get(..usize::from(salt_len)).ok_or(DecodeError::Truncated)?;
    Ok((algs, salt.to_vec()))
}

/// PREAUTH_INTEGRITY_CAPABILITIES data for the response: SHA-512 and a salt.
pub fn encode_preauth(salt: &[u8]) -> Vec<u8> {
    let mut d = Vec::with_capacity(6 + salt.len());
    d.put_u16(1);
    d.put_u16(salt.len() as u16);
    d.put_u16(HASH_SHA512);
    d.extend_from_slice(salt);
    d
}

/// A single-id list (the response form of the encryption and signing contexts).
pub fn encode_u16_list(ids: &[u16]) -> Vec<u8> {
    let mut d = Vec::with_capacity(2 + 2 * ids.len());
    d.put_u16(ids.len() as u16);
    for id in ids {
        d.put_u16(*id);
    }
    d
}

/// NEGOTIATE response (MS-SMB2 2.2.4).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NegotiateResponse {
    /// SecurityMode.
    pub security_mode: u16,
    /// DialectRevision.
    pub dialect: Dialect,
    /// ServerGuid.
    pub server_guid: Guid,
    /// Capabilities.
    pub capabilities: u32,
    /// MaxTransactSize.
    pub max_transact_size: u32,
    /// MaxReadSize.
    pub max_read_size: u32,
    /// MaxWriteSize.
    pub max_write_size: u32,
    /// SystemTime (FILETIME).
    pub system_time: u64,
    /// ServerStartTime (FILETIME, 0 is allowed).
    pub server_start_time: u64,
    /// SecurityBuffer: the SPNEGO NegTokenInit.
    pub security_buffer: Vec<u8>,
    /// Negotiate contexts (3.1.1 only).
    pub contexts: Vec<NegContext>,
}

impl NegotiateResponse {
    /// Appends the body (offsets relative to the header at `out[0]`).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(65);
        out.put_u16(self.security_mode);
        out.put_u16(self.dialect.0);
        out.put_u16(self.contexts.len() as u16);
        out.extend_from_slice(&self.server_guid.0);
        out.put_u32(self.capabilities);
        out.put_u32(self.max_transact_size);
        out.put_u32(self.max_read_size);
        out.put_u32(self.max_write_size);
        out.put_u64(self.system_time);
        out.put_u64(self.server_start_time);
        let sec_off = out.len() + 8; // after the two u16 and the context offset
        out.put_u16(sec_off as u16);
        out.put_u16(self.security_buffer.len() as u16);
        let ctx_off_at = out.len();
        out.put_u32(0);
        out.extend_from_slice(&self.security_buffer);
        if !self.contexts.is_empty() {
            super::pad_to(out, 8);
            let off = out.len() as u32;
            out.set_u32(ctx_off_at, off);
            encode_contexts(out, &self.contexts);
        }
    }

    /// Decodes a response (client side).
    pub fn decode(msg: &[u8]) -> DResult<Self> {
        check_structure_size(msg, 65)?;
        let b = &msg[HEADER_LEN..];
        let (i, _) = le_u16(b)?;
        let (i, security_mode) = le_u16(i)?;
        let (i, dialect) = le_u16(i)?;
        let (i, ctx_count) = le_u16(i)?;
        let (i, server_guid) = guid(i)?;
        let (i, capabilities) = le_u32(i)?;
        let (i, max_transact_size) = le_u32(i)?;
        let (i, max_read_size) = le_u32(i)?;
        let (i, max_write_size) = le_u32(i)?;
        let (i, system_time) = le_u64(i)?;
        let (i, server_start_time) = le_u64(i)?;
        let (i, sec_off) = le_u16(i)?;
        let (i, sec_len) = le_u16(i)?;
        let (_, ctx_off) = le_u32(i)?;
        let security_buffer = buffer(msg, u32::from(sec_off), u32::from(sec_len))?.to_vec();
        let contexts = if dialect == Dialect::SMB311.0 && ctx_count > 0 {
            decode_contexts(msg, ctx_off, ctx_count)?
        } else {
            Vec::new()
        };
        Ok(Self {
            security_mode,
            dialect: Dialect(dialect),
            server_guid,
            capabilities,
            max_transact_size,
            max_read_size,
            max_write_size,
            system_time,
            server_start_time,
            security_buffer,
            contexts,
        })
    }
}

/// What an SMB1 NEGOTIATE offers of SMB2 (MS-SMB2 3.3.5.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Smb1Offer {
    /// "SMB 2.???" present: answer with the 0x02FF wildcard dialect.
    Wildcard,
    /// Only "SMB 2.002": answer with dialect 2.0.2.
    Smb202,
    /// No SMB2 dialect: close the connection.
    None,
}

/// Parses an SMB1 NEGOTIATE (MS-CIFS 2.2.4.52.1): 32-byte header with command
/// 0x72, WordCount 0, ByteCount, then 0x02-prefixed NUL-terminated dialect strings.
pub fn parse_smb1_negotiate(msg: &[u8]) -> DResult<Smb1Offer> {
    if msg.get(..4) != Some(&super::header::SMB1_ID[..]) {
        return Err(DecodeError::BadValue);
    }
    if msg.get(4) != Some(&0x72) {
        return Err(DecodeError::BadValue);
    }
    let rest = msg.get(32..).ok_or(DecodeError::Truncated)?;
    let (i, word_count) = le_u8(rest)?;
    let (i, _) = nom::bytes::complete::take(usize::from(word_count) * 2)(i)?;
    let (i, byte_count) = le_u16(i)?;
    let mut bytes = i.get(..usize::from(byte_count)).ok_or(DecodeError::Truncated)?;
    let mut offer = Smb1Offer::None;
    while let Some((&0x02, tail)) = bytes.split_first() {
        let end = tail.iter().position(|&b| b == 0).ok_or(DecodeError::BadValue)?;
        match &tail[..end] {
            b"SMB 2.???" => offer = Smb1Offer::Wildcard,
            b"SMB 2.002" if offer == Smb1Offer::None => offer = Smb1Offer::Smb202,
            _ => {}
        }
        bytes = &tail[end + 1..];
    }
    Ok(offer)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REQ: &[u8] = include_bytes!("../../protocol-tests/fixtures/smb311/frame4.bin");
    const RESP: &[u8] = include_bytes!("../../protocol-tests/fixtures/smb311/frame6.bin");

    /// smbclient 4.17's NEGOTIATE from captures/smbclient-SMB3_11-signed.pcap.
    #[test]
    fn decodes_smbclient_negotiate() {
        let r = NegotiateRequest::decode(REQ).unwrap();
        assert_eq!(r.dialects, vec![Dialect::SMB202, Dialect::SMB21, Dialect::SMB30, Dialect::SMB302, Dialect::SMB311]);
        assert_eq!(r.security_mode, security_mode::SIGNING_ENABLED);
        assert_eq!(r.capabilities, 0x7f);
        let types: Vec<u16> = r.contexts.iter().map(|c| c.context_type).collect();
        assert_eq!(types, vec![ctx::PREAUTH_INTEGRITY, ctx::ENCRYPTION, ctx::SIGNING, ctx::NETNAME]);
        let (algs, salt) = decode_preauth(&r.context(ctx::PREAUTH_INTEGRITY).unwrap().data).unwrap();
        assert_eq!((algs, salt.len()), (vec![HASH_SHA512], 32));
        assert_eq!(u16_list(&r.context(ctx::ENCRYPTION).unwrap().data).unwrap(), vec![2, 1, 4, 3]);
        assert_eq!(u16_list(&r.context(ctx::SIGNING).unwrap().data).unwrap(), vec![2, 1, 0]);
        // Re-encoding gives back smbclient's exact bytes.
        let mut out = REQ[..HEADER_LEN].to_vec();
        r.encode(&mut out);
        assert_eq!(out, REQ);
    }

    /// Samba's NEGOTIATE response from the same capture re-encodes byte for byte.
    #[test]
    fn samba_negotiate_response_round_trips() {
        let r = NegotiateResponse::decode(RESP).unwrap();
        assert_eq!(r.dialect, Dialect::SMB311);
        assert_eq!(r.max_read_size, 8 * 1024 * 1024);
        assert_eq!(r.contexts.len(), 3);
        let mut out = RESP[..HEADER_LEN].to_vec();
        r.encode(&mut out);
        assert_eq!(out, RESP);
    }

    #[test]
    fn rejects_hostile_lists() {
        let mut bad = REQ.to_vec();
        bad[HEADER_LEN + 2] = 0; // DialectCount 0
        assert_eq!(NegotiateRequest::decode(&bad), Err(DecodeError::BadLength));
        let mut bad = REQ.to_vec();
        bad[HEADER_LEN + 28] = 0x41; // context offset not 8-aligned
        assert!(NegotiateRequest::decode(&bad).is_err());
        for n in 0..REQ.len() {
            let _ = NegotiateRequest::decode(&REQ[..n]);
        }
    }

    #[test]
    fn parses_smb1_negotiate_offers() {
        let mut m = vec![0xff, b'S', b'M', b'B', 0x72];
        m.resize(32, 0);
        let dialects = b"\x02NT LM 0.12\0\x02SMB 2.002\0\x02SMB 2.???\0";
        m.push(0);
        m.extend_from_slice(&(dialects.len() as u16).to_le_bytes());
        m.extend_from_slice(dialects);
        assert_eq!(parse_smb1_negotiate(&m), Ok(Smb1Offer::Wildcard));
        let only_nt = b"\x02NT LM 0.12\0";
        m.truncate(33);
        m.extend_from_slice(&(only_nt.len() as u16).to_le_bytes());
        m.extend_from_slice(only_nt);
        assert_eq!(parse_smb1_negotiate(&m), Ok(Smb1Offer::None));
    }
}
