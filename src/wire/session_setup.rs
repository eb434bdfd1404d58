//! SESSION_SETUP (MS-SMB2 2.2.5, 2.2.6) and LOGOFF's session flags.

use nom::number::complete::{le_u8, le_u16, le_u32, le_u64};

use super::{DResult, HEADER_LEN, PutLe, buffer, check_structure_size};

/// SESSION_SETUP request flags (2.2.5).
pub const FLAG_BINDING: u8 = 0x01;

/// SessionFlags in the response (2.2.6).
#[expect(missing_docs, reason = "the names are the spec's; the doc comment above cites the table")]
pub mod session_flags {
    pub const IS_GUEST: u16 = 0x0001;
    pub const IS_NULL: u16 = 0x0002;
    pub const ENCRYPT_DATA: u16 = 0x0004;
}

/// SESSION_SETUP request (MS-SMB2 2.2.5).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionSetupRequest {
    /// Flags (SMB2_SESSION_FLAG_BINDING).
    pub flags: u8,
    /// SecurityMode.
    pub security_mode: u8,
    /// Capabilities.
    pub capabilities: u32,
    /// PreviousSessionId (reconnect).
    pub previous_session_id: u64,
    /// The GSS token (SPNEGO or raw NTLMSSP).
    pub security_buffer: Vec<u8>,
}

impl SessionSetupRequest {
    /// Decodes from the whole message.
    pub fn decode(msg: &[u8]) -> DResult<Self> {
        check_structure_size(msg, 25)?;
        let b = &msg[HEADER_LEN..];
        let (i, _) = le_u16(b)?;
        let (i, flags) = le_u8(i)?;
        let (i, security_mode) = le_u8(i)?;
        let (i, capabilities) = le_u32(i)?;
        let (i, _channel) = le_u32(i)?;
        let (i, sec_off) = le_u16(i)?;
        let (i, sec_len) = le_u16(i)?;
        let (_, previous_session_id) = le_u64(i)?;
        let security_buffer = buffer(msg, u32::from(sec_off), u32::from(sec_len))?.to_vec();
        Ok(Self { flags, security_mode, capabilities, previous_session_id, security_buffer })
    }

    /// Encodes the body (client side).
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(25);
        out.put_u8(self.flags);
        out.put_u8(self.security_mode);
        out.put_u32(self.capabilities);
        out.put_u32(0);
        out.put_u16((HEADER_LEN + 24) as u16);
        out.put_u16(self.security_buffer.len() as u16);
        out.put_u64(self.previous_session_id);
        out.extend_from_slice(&self.security_buffer);
    }
}

/// SESSION_SETUP response (MS-SMB2 2.2.6).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SessionSetupResponse {
    /// SessionFlags.
    pub session_flags: u16,
    /// The GSS token.
    pub security_buffer: Vec<u8>,
}

impl SessionSetupResponse {
    /// Appends the body.
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.put_u16(9);
        out.put_u16(self.session_flags);
        out.put_u16((HEADER_LEN + 8) as u16);
        out.put_u16(self.security_buffer.len() as u16);
        out.extend_from_slice(&self.security_buffer);
    }

    /// Decodes (client side).
    pub fn decode(msg: &[u8]) -> DResult<Self> {
        check_structure_size(msg, 9)?;
        let b = &msg[HEADER_LEN..];
        let (i, _) = le_u16(b)?;
        let (i, session_flags) = le_u16(i)?;
        let (i, off) = le_u16(i)?;
        let (_, len) = le_u16(i)?;
        let security_buffer = buffer(msg, u32::from(off), u32::from(len))?.to_vec();
        Ok(Self { session_flags, security_buffer })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NEG_REQ: &[u8] = include_bytes!("../../protocol-tests/fixtures/smb311/frame8.bin");
    const CHAL_RESP: &[u8] = include_bytes!("../../protocol-tests/fixtures/smb311/frame9.bin");
    const AUTH_REQ: &[u8] = include_bytes!("../../protocol-tests/fixtures/smb311/frame10.bin");

    /// smbclient's SESSION_SETUP requests re-encode byte for byte.
    #[test]
    fn smbclient_requests_round_trip() {
        for m in [NEG_REQ, AUTH_REQ] {
            let r = SessionSetupRequest::decode(m).unwrap();
            assert!(r.security_buffer.len() > 16);
            let mut out = m[..HEADER_LEN].to_vec();
            r.encode(&mut out);
            assert_eq!(out, m);
        }
    }

    /// Samba's challenge response (STATUS_MORE_PROCESSING_REQUIRED) re-encodes.
    #[test]
    fn samba_response_round_trips() {
        let r = SessionSetupResponse::decode(CHAL_RESP).unwrap();
        assert_eq!(r.session_flags, 0);
        let mut out = CHAL_RESP[..HEADER_LEN].to_vec();
        r.encode(&mut out);
        assert_eq!(out, CHAL_RESP);
    }

    #[test]
    fn truncations_never_panic() {
        for n in 0..AUTH_REQ.len() {
            let _ = SessionSetupRequest::decode(&AUTH_REQ[..n]);
        }
    }
}
