//! SPNEGO (RFC 4178, MS-SPNG) tokens as an SMB server sees them: the
//! NegTokenInit2 it advertises in the NEGOTIATE response, the client's
//! NegTokenInit and NegTokenResp, and the server's NegTokenResp replies.

use super::der::{self, Malformed, Tlv};

/// DER of the NTLMSSP mechanism OID 1.3.6.1.4.1.311.2.2.10 (value only).
pub(crate) const NTLMSSP_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a];
/// DER of the SPNEGO OID 1.3.6.1.5.5.2 (value only).
pub(crate) const SPNEGO_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02];
/// The NTLMSSP message signature: raw (unwrapped) NTLMSSP tokens start with it.
pub(crate) const NTLMSSP_SIGNATURE: &[u8; 8] = b"NTLMSSP\0";
/// MS-SPNG 3.2.5.2: the hint Windows servers send instead of a principal name.
const NEG_HINT_NAME: &[u8] = b"not_defined_in_RFC4178@please_ignore";

pub(crate) const TAG_APPLICATION_0: u8 = 0x60;
pub(crate) const TAG_OID: u8 = 0x06;
pub(crate) const TAG_SEQUENCE: u8 = 0x30;
pub(crate) const TAG_OCTET_STRING: u8 = 0x04;
pub(crate) const TAG_ENUMERATED: u8 = 0x0a;
const TAG_GENERAL_STRING: u8 = 0x1b;
pub(crate) const fn ctx(n: u8) -> u8 {
    0xa0 | n
}

/// negState values (RFC 4178 4.2.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NegState {
    AcceptCompleted = 0,
    AcceptIncomplete = 1,
}

/// What a client sent in a SESSION_SETUP SecurityBuffer.
#[derive(Debug)]
pub(crate) enum ClientToken<'a> {
    /// NegTokenInit (RFC 4178 4.2.1), normally inside the GSS-API wrapper.
    Init {
        /// The MechTypeList exactly as sent (SEQUENCE TLV): what mechListMIC covers.
        mech_types_raw: &'a [u8],
        /// The mechanism OIDs (values), in the client's order of preference.
        mechs: Vec<&'a [u8]>,
        /// The optimistic token for the first mechanism.
        mech_token: Option<&'a [u8]>,
    },
    /// NegTokenResp (RFC 4178 4.2.2).
    Resp {
        /// The mechanism token (an NTLMSSP message).
        response_token: Option<&'a [u8]>,
        /// The client's mechListMIC.
        mech_list_mic: Option<&'a [u8]>,
    },
    /// A bare NTLMSSP message, sent by clients that skip SPNEGO.
    RawNtlm(&'a [u8]),
}

/// Parses a client token. Never panics; malformed input is an error.
pub(crate) fn parse_client(token: &[u8]) -> Result<ClientToken<'_>, Malformed> {
    if token.starts_with(NTLMSSP_SIGNATURE) {
        return Ok(ClientToken::RawNtlm(token));
    }
    let first = *token.first().ok_or(Malformed)?;
    match first {
        TAG_APPLICATION_0 => {
            // InitialContextToken: thisMech OID, then the NegotiationToken.
            let app = der::exactly(token, TAG_APPLICATION_0)?;
            let (oid, inner) = der::expect(app.value, TAG_OID)?;
            if oid.value != SPNEGO_OID {
                return Err(Malformed);
            }
            parse_init(der::exactly(inner, ctx(0))?)
        }
        t if t == ctx(0) => parse_init(der::exactly(token, ctx(0))?),
        t if t == ctx(1) => parse_resp(der::exactly(token, ctx(1))?),
        _ => Err(Malformed),
    }
}

fn parse_init(wrapper: Tlv<'_>) -> Result<ClientToken<'_>, Malformed> {
    let seq = der::exactly(wrapper.value, TAG_SEQUENCE)?;
    let mut mech_types = None;
    let mut mech_token = None;
    for field in der::elements(seq.value)? {
        match field.tag {
            t if t == ctx(0) => mech_types = Some(der::exactly(field.value, TAG_SEQUENCE)?),
            t if t == ctx(2) => mech_token = Some(der::exactly(field.value, TAG_OCTET_STRING)?.value),
            // reqFlags [1] and the initiator's mechListMIC [3] carry nothing we use.
            _ => {}
        }
    }
    let list = mech_types.ok_or(Malformed)?;
    let mechs = der::elements(list.value)?
        .into_iter()
        .map(|m| if m.tag == TAG_OID { Ok(m.value) } else { Err(Malformed) })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ClientToken::Init { mech_types_raw: list.raw, mechs, mech_token })
}

fn parse_resp(wrapper: Tlv<'_>) -> Result<ClientToken<'_>, Malformed> {
    let seq = der::exactly(wrapper.value, TAG_SEQUENCE)?;
    let mut response_token = None;
    let mut mech_list_mic = None;
    for field in der::elements(seq.value)? {
        match field.tag {
            t if t == ctx(0) => {
                der::exactly(field.value, TAG_ENUMERATED)?;
            }
            t if t == ctx(1) => {
                der::exactly(field.value, TAG_OID)?;
            }
            t if t == ctx(2) => response_token = Some(der::exactly(field.value, TAG_OCTET_STRING)?.value),
            t if t == ctx(3) => mech_list_mic = Some(der::exactly(field.value, TAG_OCTET_STRING)?.value),
            _ => return Err(Malformed),
        }
    }
    Ok(ClientToken::Resp { response_token, mech_list_mic })
}

/// The NegTokenInit2 (MS-SPNG 2.2.1) for the SMB2 NEGOTIATE response's
/// SecurityBuffer: NTLMSSP as the only mechanism, plus the customary negHints.
pub fn initial_token() -> Vec<u8> {
    let mech_types = der::tlv(ctx(0), &der::tlv(TAG_SEQUENCE, &der::tlv(TAG_OID, NTLMSSP_OID)));
    let hint = der::tlv(ctx(0), &der::tlv(TAG_GENERAL_STRING, NEG_HINT_NAME));
    let neg_hints = der::tlv(ctx(3), &der::tlv(TAG_SEQUENCE, &hint));
    let init = der::tlv(TAG_SEQUENCE, &[mech_types, neg_hints].concat());
    let mut body = der::tlv(TAG_OID, SPNEGO_OID);
    body.extend_from_slice(&der::tlv(ctx(0), &init));
    der::tlv(TAG_APPLICATION_0, &body)
}

/// A NegTokenResp from the server.
pub(crate) fn resp(
    state: NegState,
    supported_mech: bool,
    response_token: Option<&[u8]>,
    mech_list_mic: Option<&[u8]>,
) -> Vec<u8> {
    let mut fields = der::tlv(ctx(0), &der::tlv(TAG_ENUMERATED, &[state as u8]));
    if supported_mech {
        fields.extend_from_slice(&der::tlv(ctx(1), &der::tlv(TAG_OID, NTLMSSP_OID)));
    }
    if let Some(t) = response_token {
        fields.extend_from_slice(&der::tlv(ctx(2), &der::tlv(TAG_OCTET_STRING, t)));
    }
    if let Some(m) = mech_list_mic {
        fields.extend_from_slice(&der::tlv(ctx(3), &der::tlv(TAG_OCTET_STRING, m)));
    }
    der::tlv(ctx(1), &der::tlv(TAG_SEQUENCE, &fields))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::hex_bytes;

    #[test]
    fn initial_token_parses_as_init_listing_ntlm() {
        let t = initial_token();
        let hint = hex::encode(NEG_HINT_NAME);
        let want = format!(
            "6048 0606 2b0601050502 a03e 303c a00e 300c 060a 2b06010401823702020a
             a32a 3028 a026 1b24 {hint}"
        );
        assert_eq!(t, hex_bytes(&want));
        match parse_client(&t).unwrap() {
            ClientToken::Init { mechs, mech_token, .. } => {
                assert_eq!(mechs, vec![NTLMSSP_OID]);
                assert!(mech_token.is_none());
            }
            other => panic!("{other:?}"),
        }
    }

    /// smbclient's first SESSION_SETUP token (SMB3_11 capture, frame 8) and
    /// Samba's final reply (frame 11), byte for byte.
    #[test]
    fn golden_tokens_from_capture() {
        let init = hex_bytes(
            "604806062b0601050502a03e303ca00e300c060a2b06010401823702020aa22a04284e544c4d5353
             5000010000001582086200000000280000000000000028000000060100000000000f",
        );
        match parse_client(&init).unwrap() {
            ClientToken::Init { mech_types_raw, mechs, mech_token } => {
                assert_eq!(mech_types_raw, &hex_bytes("300c060a2b06010401823702020a")[..]);
                assert_eq!(mechs, vec![NTLMSSP_OID]);
                assert!(mech_token.unwrap().starts_with(NTLMSSP_SIGNATURE));
            }
            other => panic!("{other:?}"),
        }
        let fin = hex_bytes("a11b3019a0030a0100a312041001000000b901d83ee4b2e81500000000");
        let mic = &fin[fin.len() - 16..];
        assert_eq!(resp(NegState::AcceptCompleted, false, None, Some(mic)), fin);
    }

    #[test]
    fn rejects_garbage_and_trailing_bytes() {
        for bad in [
            &[][..],
            &[0x60, 0x00][..],
            &[0xa1, 0x02, 0x30, 0x00, 0x00][..],
            &[0xa1, 0x04, 0x30, 0x02, 0xa7, 0x00][..],
            &[0x30, 0x00][..],
        ] {
            assert!(parse_client(bad).is_err(), "{bad:?}");
        }
    }
}
