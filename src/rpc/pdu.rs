//! Connection-oriented DCE/RPC PDUs (C706 chapter 12.6, MS-RPCE 2.2.2):
//! the common header, BIND / ALTER_CONTEXT and REQUEST decoders, and the
//! BIND_ACK / ALTER_CONTEXT_RESP / BIND_NAK / RESPONSE / FAULT encoders.
//! Only little-endian data representation is accepted (every Windows,
//! macOS and Samba client sends it).

use crate::wire::PutLe;

/// PDU types (C706 12.6.4).
pub(crate) const PTYPE_REQUEST: u8 = 0;
pub(crate) const PTYPE_RESPONSE: u8 = 2;
pub(crate) const PTYPE_FAULT: u8 = 3;
pub(crate) const PTYPE_BIND: u8 = 11;
pub(crate) const PTYPE_BIND_ACK: u8 = 12;
pub(crate) const PTYPE_BIND_NAK: u8 = 13;
pub(crate) const PTYPE_ALTER_CONTEXT: u8 = 14;
pub(crate) const PTYPE_ALTER_CONTEXT_RESP: u8 = 15;
pub(crate) const PTYPE_CO_CANCEL: u8 = 18;
pub(crate) const PTYPE_ORPHANED: u8 = 19;

/// pfc_flags (C706 12.6.3.1, MS-RPCE 2.2.2.3).
pub(crate) const PFC_FIRST_FRAG: u8 = 0x01;
pub(crate) const PFC_LAST_FRAG: u8 = 0x02;
pub(crate) const PFC_DID_NOT_EXECUTE: u8 = 0x20;
pub(crate) const PFC_OBJECT_UUID: u8 = 0x80;

/// Common header length (C706 12.6.3.1).
pub(crate) const HEADER_LEN: usize = 16;
/// REQUEST / RESPONSE header length including alloc_hint, p_cont_id, opnum.
pub(crate) const REQUEST_HEADER_LEN: usize = 24;
/// sec_trailer length that precedes auth_length bytes of auth value.
const SEC_TRAILER_LEN: usize = 8;

/// packed_drep: little-endian integers, ASCII characters, IEEE floats.
const DREP_LE: [u8; 4] = [0x10, 0, 0, 0];

/// Why a PDU could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PduError {
    /// Not DCE/RPC 5.x little-endian, or frag_length below the header size:
    /// the byte stream cannot be framed any more.
    Framing,
    /// A field or list runs past the end of the fragment.
    Truncated,
}

/// The 16-byte common header (C706 12.6.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    pub(crate) ptype: u8,
    pub(crate) pfc_flags: u8,
    pub(crate) frag_length: u16,
    pub(crate) auth_length: u16,
    pub(crate) call_id: u32,
}

fn le16(b: &[u8], at: usize) -> Result<u16, PduError> {
    let s = b.get(at..at + 2).ok_or(PduError::Truncated)?;
    Ok(u16::from_le_bytes([s[0], s[1]]))
}

fn le32(b: &[u8], at: usize) -> Result<u32, PduError> {
    let s = b.get(at..at + 4).ok_or(PduError::Truncated)?;
    Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
}

/// Decodes the common header from the start of `buf`; `Ok(None)` while
/// fewer than 16 bytes are buffered.
pub(crate) fn header(buf: &[u8]) -> Result<Option<Header>, PduError> {
    let Some(h) = buf.get(..HEADER_LEN) else {
        return Ok(None);
    };
    // rpc_vers 5, rpc_vers_minor 0 or 1 (MS-RPCE 2.2.2.1 allows both);
    // drep[0] high nibble 1 = little-endian integers.
    if h[0] != 5 || h[1] > 1 || h[4] & 0xf0 != 0x10 {
        return Err(PduError::Framing);
    }
    let frag_length = le16(h, 8)?;
    if usize::from(frag_length) < HEADER_LEN {
        return Err(PduError::Framing);
    }
    Ok(Some(Header { ptype: h[2], pfc_flags: h[3], frag_length, auth_length: le16(h, 10)?, call_id: le32(h, 12)? }))
}

/// The body of a fragment: between the common header and the optional
/// sec_trailer + auth value (C706 12.6.3, MS-RPCE 2.2.2.11).
fn body<'a>(pdu: &'a [u8], hdr: &Header) -> Result<&'a [u8], PduError> {
    let auth = match usize::from(hdr.auth_length) {
        0 => 0,
        n => n + SEC_TRAILER_LEN,
    };
    let end = pdu.len().checked_sub(auth).ok_or(PduError::Truncated)?;
    pdu.get(HEADER_LEN..end).ok_or(PduError::Truncated)
}

/// p_syntax_id_t: interface or transfer syntax UUID and version
/// (major in the low 16 bits, minor in the high 16 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct SyntaxId {
    pub(crate) uuid: [u8; 16],
    pub(crate) version: u32,
}

impl SyntaxId {
    fn parse(b: &[u8], at: usize) -> Result<SyntaxId, PduError> {
        let s = b.get(at..at + 16).ok_or(PduError::Truncated)?;
        let mut uuid = [0u8; 16];
        uuid.copy_from_slice(s);
        Ok(SyntaxId { uuid, version: le32(b, at + 16)? })
    }

    fn put(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.uuid);
        out.put_u32(self.version);
    }
}

/// p_cont_elem_t: one presentation context offered by the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ContextElem {
    pub(crate) context_id: u16,
    pub(crate) abstract_syntax: SyntaxId,
    pub(crate) transfer_syntaxes: Vec<SyntaxId>,
}

/// rpc_bind / rpc_alter_context body (C706 12.6.4.3, 12.6.4.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Bind {
    pub(crate) max_xmit_frag: u16,
    pub(crate) max_recv_frag: u16,
    pub(crate) assoc_group_id: u32,
    pub(crate) contexts: Vec<ContextElem>,
}

/// Decodes a BIND or ALTER_CONTEXT fragment.
pub(crate) fn parse_bind(pdu: &[u8], hdr: &Header) -> Result<Bind, PduError> {
    let b = body(pdu, hdr)?;
    let n_ctx = *b.get(8).ok_or(PduError::Truncated)?;
    // n_context_elem u8 + reserved u8 + reserved2 u16, then the list.
    let mut at = 12;
    let mut contexts = Vec::with_capacity(usize::from(n_ctx));
    for _ in 0..n_ctx {
        let context_id = le16(b, at)?;
        let n_ts = *b.get(at + 2).ok_or(PduError::Truncated)?;
        let abstract_syntax = SyntaxId::parse(b, at + 4)?;
        at += 24;
        let mut transfer_syntaxes = Vec::with_capacity(usize::from(n_ts));
        for _ in 0..n_ts {
            transfer_syntaxes.push(SyntaxId::parse(b, at)?);
            at += 20;
        }
        contexts.push(ContextElem { context_id, abstract_syntax, transfer_syntaxes });
    }
    Ok(Bind { max_xmit_frag: le16(b, 0)?, max_recv_frag: le16(b, 2)?, assoc_group_id: le32(b, 4)?, contexts })
}

/// rpc_request body (C706 12.6.4.9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request<'a> {
    pub(crate) alloc_hint: u32,
    pub(crate) context_id: u16,
    pub(crate) opnum: u16,
    pub(crate) stub: &'a [u8],
}

/// Decodes a REQUEST fragment; the optional object UUID is skipped.
pub(crate) fn parse_request<'a>(pdu: &'a [u8], hdr: &Header) -> Result<Request<'a>, PduError> {
    let b = body(pdu, hdr)?;
    let stub_at = if hdr.pfc_flags & PFC_OBJECT_UUID != 0 { 24 } else { 8 };
    Ok(Request {
        alloc_hint: le32(b, 0)?,
        context_id: le16(b, 4)?,
        opnum: le16(b, 6)?,
        stub: b.get(stub_at..).ok_or(PduError::Truncated)?,
    })
}

/// Starts a PDU with its common header; frag_length is patched by [`finish`].
fn start(ptype: u8, pfc_flags: u8, call_id: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&[5, 0, ptype, pfc_flags]);
    out.extend_from_slice(&DREP_LE);
    out.put_u16(0); // frag_length
    out.put_u16(0); // auth_length
    out.put_u32(call_id);
    out
}

fn finish(mut out: Vec<u8>) -> Vec<u8> {
    let len = u16::try_from(out.len()).unwrap_or(u16::MAX);
    out.set_u16(8, len);
    out
}

/// p_result_t: the answer for one offered presentation context.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AckResult {
    pub(crate) result: u16,
    pub(crate) reason: u16,
    pub(crate) transfer_syntax: SyntaxId,
}

/// Fields shared by BIND_ACK and ALTER_CONTEXT_RESP (C706 12.6.4.4/12.6.4.2).
pub(crate) struct BindAck<'a> {
    pub(crate) ptype: u8,
    pub(crate) call_id: u32,
    pub(crate) max_xmit_frag: u16,
    pub(crate) max_recv_frag: u16,
    pub(crate) assoc_group_id: u32,
    /// port_spec, e.g. `\PIPE\srvsvc`; empty in ALTER_CONTEXT_RESP.
    pub(crate) secondary_address: &'a str,
    pub(crate) results: &'a [AckResult],
}

/// Encodes a BIND_ACK or ALTER_CONTEXT_RESP.
pub(crate) fn encode_bind_ack(a: &BindAck<'_>) -> Vec<u8> {
    let mut out = start(a.ptype, PFC_FIRST_FRAG | PFC_LAST_FRAG, a.call_id);
    out.put_u16(a.max_xmit_frag);
    out.put_u16(a.max_recv_frag);
    out.put_u32(a.assoc_group_id);
    // port_any_t: length including the NUL, or 0 with no bytes at all.
    if a.secondary_address.is_empty() {
        out.put_u16(0);
    } else {
        let len = u16::try_from(a.secondary_address.len() + 1).unwrap_or(0);
        out.put_u16(len);
        out.extend_from_slice(a.secondary_address.as_bytes());
        out.push(0);
    }
    // The result list is 4-aligned relative to the PDU start.
    crate::wire::pad_to(&mut out, 4);
    out.push(u8::try_from(a.results.len()).unwrap_or(u8::MAX));
    out.put_zeros(3);
    for r in a.results {
        out.put_u16(r.result);
        out.put_u16(r.reason);
        r.transfer_syntax.put(&mut out);
    }
    finish(out)
}

/// Encodes a BIND_NAK (C706 12.6.4.5): reason plus the one protocol version
/// we support (5.0), padded to 4 bytes.
pub(crate) fn encode_bind_nak(call_id: u32, reason: u16) -> Vec<u8> {
    let mut out = start(PTYPE_BIND_NAK, PFC_FIRST_FRAG | PFC_LAST_FRAG, call_id);
    out.put_u16(reason);
    out.extend_from_slice(&[1, 5, 0]);
    crate::wire::pad_to(&mut out, 4);
    finish(out)
}

/// Encodes one RESPONSE fragment (C706 12.6.4.10). `alloc_hint` is the stub
/// length still to come, this fragment included (MS-RPCE 3.3.1.5.2.2).
pub(crate) fn encode_response(call_id: u32, context_id: u16, pfc_flags: u8, alloc_hint: u32, stub: &[u8]) -> Vec<u8> {
    let mut out = start(PTYPE_RESPONSE, pfc_flags, call_id);
    out.put_u32(alloc_hint);
    out.put_u16(context_id);
    out.put_u8(0); // cancel_count
    out.put_u8(0); // reserved
    out.extend_from_slice(stub);
    finish(out)
}

/// Encodes a FAULT (C706 12.6.4.7, MS-RPCE 2.2.2.12) without extended error
/// information: alloc_hint, p_cont_id, cancel_count, flags, status, reserved.
pub(crate) fn encode_fault(call_id: u32, context_id: u16, status: u32, extra_flags: u8) -> Vec<u8> {
    let mut out = start(PTYPE_FAULT, PFC_FIRST_FRAG | PFC_LAST_FRAG | extra_flags, call_id);
    out.put_u32(0);
    out.put_u16(context_id);
    out.put_u8(0);
    out.put_u8(0);
    out.put_u32(status);
    out.put_u32(0);
    finish(out)
}

/// Client-side decoders, for tests that read our answers like a client.
#[cfg(test)]
pub(crate) mod client {
    use super::*;

    /// A decoded BIND_ACK / ALTER_CONTEXT_RESP.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub(crate) struct DecodedAck {
        pub(crate) max_xmit_frag: u16,
        pub(crate) max_recv_frag: u16,
        pub(crate) assoc_group_id: u32,
        pub(crate) secondary_address: String,
        pub(crate) results: Vec<AckResult>,
    }

    pub(crate) fn parse_bind_ack(pdu: &[u8]) -> DecodedAck {
        let hdr = header(pdu).unwrap().unwrap();
        assert_eq!(usize::from(hdr.frag_length), pdu.len());
        let b = body(pdu, &hdr).unwrap();
        let sec_len = usize::from(le16(b, 8).unwrap());
        let sec = &b[10..10 + sec_len];
        let secondary_address = String::from_utf8(sec.split_last().map_or(vec![], |(_, s)| s.to_vec())).unwrap();
        // Results start 4-aligned relative to the PDU (body starts at 16).
        let at = (10 + sec_len).div_ceil(4) * 4;
        let n = usize::from(b[at]);
        let results = (0..n)
            .map(|i| {
                let o = at + 4 + i * 24;
                AckResult {
                    result: le16(b, o).unwrap(),
                    reason: le16(b, o + 2).unwrap(),
                    transfer_syntax: SyntaxId::parse(b, o + 4).unwrap(),
                }
            })
            .collect();
        DecodedAck {
            max_xmit_frag: le16(b, 0).unwrap(),
            max_recv_frag: le16(b, 2).unwrap(),
            assoc_group_id: le32(b, 4).unwrap(),
            secondary_address,
            results,
        }
    }

    /// A decoded RESPONSE fragment.
    pub(crate) struct Resp {
        pub(crate) hdr: Header,
        pub(crate) alloc_hint: u32,
        pub(crate) stub: Vec<u8>,
    }

    /// A RESPONSE, or the header and status of a FAULT.
    pub(crate) fn parse_response(pdu: &[u8]) -> Result<Resp, (Header, u32)> {
        let hdr = header(pdu).unwrap().unwrap();
        assert_eq!(usize::from(hdr.frag_length), pdu.len());
        let b = body(pdu, &hdr).unwrap();
        match hdr.ptype {
            PTYPE_RESPONSE => Ok(Resp { hdr, alloc_hint: le32(b, 0).unwrap(), stub: b[8..].to_vec() }),
            PTYPE_FAULT => Err((hdr, le32(b, 8).unwrap())),
            t => panic!("unexpected ptype {t}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_rejects_what_cannot_be_framed() {
        assert_eq!(header(&[5, 0, 0]), Ok(None));
        let mut h = [5, 0, 0, 3, 0x10, 0, 0, 0, 16, 0, 0, 0, 1, 0, 0, 0];
        assert!(header(&h).unwrap().is_some());
        h[8] = 15;
        assert_eq!(header(&h), Err(PduError::Framing));
        h[8] = 16;
        h[4] = 0x00; // big-endian
        assert_eq!(header(&h), Err(PduError::Framing));
        h[4] = 0x10;
        h[0] = 4;
        assert_eq!(header(&h), Err(PduError::Framing));
    }

    #[test]
    fn bind_with_truncated_context_list_fails() {
        let pdu = include_bytes!("../../protocol-tests/fixtures/rpc/bind-req.bin");
        let hdr = header(pdu).unwrap().unwrap();
        assert!(parse_bind(pdu, &hdr).is_ok());
        for cut in 16..pdu.len() {
            assert!(parse_bind(&pdu[..cut], &hdr).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn bind_nak_layout() {
        let nak = encode_bind_nak(7, 4);
        assert_eq!(nak, [5, 0, 13, 3, 0x10, 0, 0, 0, 24, 0, 0, 0, 7, 0, 0, 0, 4, 0, 1, 5, 0, 0, 0, 0]);
    }

    #[test]
    fn fault_layout() {
        let f = encode_fault(2, 1, 0x1c01_0002, PFC_DID_NOT_EXECUTE);
        assert_eq!(f.len(), 32);
        assert_eq!(f[3], 0x23);
        assert_eq!(&f[20..22], &[1, 0]);
        assert_eq!(&f[24..28], &0x1c01_0002u32.to_le_bytes());
    }
}
