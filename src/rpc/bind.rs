//! Presentation context negotiation for BIND and ALTER_CONTEXT
//! (C706 12.6.4.3, MS-RPCE 3.3.1.5.3 and 3.3.1.5.3 bind time feature
//! negotiation). Only NDR 2.0 is offered; NDR64 contexts are rejected with
//! `proposed_transfer_syntaxes_not_supported` so that Windows falls back to
//! the NDR 2.0 context it offers alongside.
//!
//! The rules follow Samba's `dcesrv_bind` / `dcesrv_negotiate_contexts`,
//! which Windows clients are known to accept: every context starts as
//! "abstract syntax not supported", at most one bind time feature context is
//! answered with `negotiate_ack`, and at most one new context is accepted
//! per BIND or ALTER_CONTEXT.

use super::pdu::{AckResult, ContextElem, SyntaxId};

/// p_cont_def_result_t (C706 12.6.3.1, MS-RPCE 2.2.2.4).
pub(crate) const RESULT_ACCEPTANCE: u16 = 0;
pub(crate) const RESULT_USER_REJECTION: u16 = 1;
pub(crate) const RESULT_PROVIDER_REJECTION: u16 = 2;
pub(crate) const RESULT_NEGOTIATE_ACK: u16 = 3;

/// p_provider_reason_t (C706 12.6.3.1).
pub(crate) const REASON_NOT_SPECIFIED: u16 = 0;
pub(crate) const REASON_ABSTRACT_SYNTAX_NOT_SUPPORTED: u16 = 1;
pub(crate) const REASON_TRANSFER_SYNTAXES_NOT_SUPPORTED: u16 = 2;
pub(crate) const REASON_LOCAL_LIMIT_EXCEEDED: u16 = 3;

/// Bind time feature bits (MS-RPCE 2.2.2.14).
pub(crate) const FEATURE_SECURITY_CONTEXT_MULTIPLEXING: u64 = 0x01;
pub(crate) const FEATURE_KEEP_CONNECTION_ON_ORPHAN: u64 = 0x02;

/// Presentation contexts a pipe keeps at most; later ones are refused with
/// `local_limit_exceeded` so a client cannot grow our state without bound.
pub(crate) const MAX_CONTEXTS: usize = 16;

/// Builds the wire form of a UUID from its textual fields.
pub(crate) const fn uuid(d1: u32, d2: u16, d3: u16, d4: [u8; 8]) -> [u8; 16] {
    let a = d1.to_le_bytes();
    let b = d2.to_le_bytes();
    let c = d3.to_le_bytes();
    [a[0], a[1], a[2], a[3], b[0], b[1], c[0], c[1], d4[0], d4[1], d4[2], d4[3], d4[4], d4[5], d4[6], d4[7]]
}

/// NDR 2.0 transfer syntax 8a885d04-1ceb-11c9-9fe8-08002b104860 v2 (C706 Appendix I).
pub(crate) const NDR20: SyntaxId =
    SyntaxId { uuid: uuid(0x8a88_5d04, 0x1ceb, 0x11c9, [0x9f, 0xe8, 0x08, 0x00, 0x2b, 0x10, 0x48, 0x60]), version: 2 };

/// NDR64 transfer syntax 71710533-beba-4937-8319-b5dbef9ccc36 v1 (MS-RPCE 2.2.5).
#[cfg(test)]
pub(crate) const NDR64: SyntaxId =
    SyntaxId { uuid: uuid(0x7171_0533, 0xbeba, 0x4937, [0x83, 0x19, 0xb5, 0xdb, 0xef, 0x9c, 0xcc, 0x36]), version: 1 };

/// Bind time feature negotiation syntax 6cb71c2c-9812-4540-xxxx-xxxxxxxxxxxx
/// v1: the last 8 UUID bytes carry the feature bitmask (MS-RPCE 3.3.1.5.3).
fn bind_time_features(s: &SyntaxId) -> Option<u64> {
    let prefix = uuid(0x6cb7_1c2c, 0x9812, 0x4540, [0; 8]);
    if s.version != 1 || s.uuid[..8] != prefix[..8] {
        return None;
    }
    let mut bits = [0u8; 8];
    bits.copy_from_slice(&s.uuid[8..]);
    Some(u64::from_le_bytes(bits))
}

/// True when the client's abstract syntax names our interface: same UUID and
/// major version, client minor not above ours (C706 12.6.3.1 p_syntax_id_t).
fn same_interface(offered: &SyntaxId, ours: &SyntaxId) -> bool {
    offered.uuid == ours.uuid
        && offered.version & 0xffff == ours.version & 0xffff
        && offered.version >> 16 <= ours.version >> 16
}

/// The negotiation failed as a whole: BIND answers BIND_NAK, ALTER_CONTEXT
/// answers a FAULT (nca_s_proto_error) and the pipe is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProtocolError;

/// Answers every offered context. `accepted` holds the context ids already
/// bound on this pipe and receives the new one; `features` is true for a
/// BIND (ALTER_CONTEXT does not negotiate features).
pub(crate) fn negotiate(
    offered: &[ContextElem],
    iface: &SyntaxId,
    accepted: &mut Vec<u16>,
    features: bool,
) -> Result<Vec<AckResult>, ProtocolError> {
    let mut results = Vec::with_capacity(offered.len());
    let mut feature_ctx_seen = false;
    for c in offered {
        let first = c.transfer_syntaxes.first().ok_or(ProtocolError)?;
        let mut r = AckResult {
            result: RESULT_PROVIDER_REJECTION,
            reason: REASON_ABSTRACT_SYNTAX_NOT_SUPPORTED,
            transfer_syntax: SyntaxId::default(),
        };
        // Only the first transfer syntax can ask for features; one such
        // context per BIND at most.
        if let Some(bits) = features.then(|| bind_time_features(first)).flatten() {
            if feature_ctx_seen {
                return Err(ProtocolError);
            }
            feature_ctx_seen = true;
            r.result = RESULT_NEGOTIATE_ACK;
            // The reason field carries the features we support (Samba answers
            // both bits: we keep no security state that multiplexing breaks).
            let ours = FEATURE_SECURITY_CONTEXT_MULTIPLEXING | FEATURE_KEEP_CONNECTION_ON_ORPHAN;
            r.reason = u16::try_from(bits & ours).unwrap_or(0);
        }
        results.push(r);
    }

    let mut one_accepted = false;
    for (c, r) in offered.iter().zip(results.iter_mut()) {
        if r.result == RESULT_NEGOTIATE_ACK || !same_interface(&c.abstract_syntax, iface) {
            continue;
        }
        r.reason = REASON_TRANSFER_SYNTAXES_NOT_SUPPORTED;
        if one_accepted {
            continue;
        }
        let ndr = c.transfer_syntaxes.contains(&NDR20);
        if accepted.contains(&c.context_id) {
            // Re-offering a bound context id is fine as long as it still
            // names NDR 2.0; every context on a pipe has the same interface.
            if ndr {
                accept(r);
            }
            continue;
        }
        if !ndr {
            continue;
        }
        if accepted.len() >= MAX_CONTEXTS {
            r.result = RESULT_USER_REJECTION;
            r.reason = REASON_LOCAL_LIMIT_EXCEEDED;
            continue;
        }
        accepted.push(c.context_id);
        accept(r);
        one_accepted = true;
    }
    Ok(results)
}

fn accept(r: &mut AckResult) {
    r.result = RESULT_ACCEPTANCE;
    r.reason = REASON_NOT_SPECIFIED;
    r.transfer_syntax = NDR20;
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRVSVC: SyntaxId = SyntaxId {
        uuid: uuid(0x4b32_4fc8, 0x1670, 0x01d3, [0x12, 0x78, 0x5a, 0x47, 0xbf, 0x6e, 0xe1, 0x88]),
        version: 3,
    };

    fn btfn(bits: u8) -> SyntaxId {
        let mut u = uuid(0x6cb7_1c2c, 0x9812, 0x4540, [0; 8]);
        u[8] = bits;
        SyntaxId { uuid: u, version: 1 }
    }

    fn ctx(id: u16, abs: SyntaxId, ts: &[SyntaxId]) -> ContextElem {
        ContextElem { context_id: id, abstract_syntax: abs, transfer_syntaxes: ts.to_vec() }
    }

    /// What Windows 10/11 offers: NDR, NDR64 and bind time features 0x3.
    #[test]
    fn windows_three_context_bind() {
        let offered = [ctx(0, SRVSVC, &[NDR20]), ctx(1, SRVSVC, &[NDR64]), ctx(2, SRVSVC, &[btfn(3)])];
        let mut accepted = vec![];
        let r = negotiate(&offered, &SRVSVC, &mut accepted, true).unwrap();
        assert_eq!(accepted, [0]);
        assert_eq!((r[0].result, r[0].reason, r[0].transfer_syntax), (0, 0, NDR20));
        assert_eq!((r[1].result, r[1].reason), (2, 2));
        assert_eq!(r[1].transfer_syntax, SyntaxId::default());
        assert_eq!((r[2].result, r[2].reason), (3, 3));
        assert_eq!(r[2].transfer_syntax, SyntaxId::default());
    }

    #[test]
    fn unknown_interface_and_second_context() {
        let mut other = SRVSVC;
        other.uuid[0] ^= 1;
        let mut newer_minor = SRVSVC;
        newer_minor.version |= 1 << 16;
        let offered = [
            ctx(0, other, &[NDR20]),
            ctx(1, newer_minor, &[NDR20]),
            ctx(2, SRVSVC, &[NDR64, NDR20]),
            ctx(3, SRVSVC, &[NDR20]),
        ];
        let mut accepted = vec![];
        let r = negotiate(&offered, &SRVSVC, &mut accepted, true).unwrap();
        assert_eq!((r[0].result, r[0].reason), (2, 1));
        assert_eq!((r[1].result, r[1].reason), (2, 1));
        assert_eq!((r[2].result, r[2].reason), (0, 0));
        // Only one new context per BIND.
        assert_eq!((r[3].result, r[3].reason), (2, 2));
        assert_eq!(accepted, [2]);
    }

    #[test]
    fn protocol_errors() {
        let mut accepted = vec![];
        let empty = [ctx(0, SRVSVC, &[])];
        assert_eq!(negotiate(&empty, &SRVSVC, &mut accepted, true), Err(ProtocolError));
        let two = [ctx(0, SRVSVC, &[btfn(1)]), ctx(1, SRVSVC, &[btfn(2)])];
        assert_eq!(negotiate(&two, &SRVSVC, &mut accepted, true), Err(ProtocolError));
        // ALTER_CONTEXT: a feature syntax is just an unknown transfer syntax.
        let r = negotiate(&two, &SRVSVC, &mut accepted, false).unwrap();
        assert_eq!((r[0].result, r[0].reason), (2, 2));
    }

    #[test]
    fn context_limit() {
        let mut accepted: Vec<u16> = (0..MAX_CONTEXTS as u16).collect();
        let r = negotiate(&[ctx(99, SRVSVC, &[NDR20])], &SRVSVC, &mut accepted, false).unwrap();
        assert_eq!((r[0].result, r[0].reason), (1, 3));
        // Re-binding an existing id is still fine.
        let r = negotiate(&[ctx(3, SRVSVC, &[NDR20])], &SRVSVC, &mut accepted, false).unwrap();
        assert_eq!(r[0].result, 0);
    }
}
