//! Client side of SPNEGO (RFC 4178, MS-SPNG 3.1.5) carrying NTLMSSP
//! (MS-NLMP 3.1.5), NTLMv2 only. Sans-IO: the caller passes in the random
//! client challenge, the random session key and the time.
//!
//! ```text
//! SESSION_SETUP #1  initial_token()        NegTokenInit { mechTypes [NTLMSSP], mechToken NEGOTIATE }
//! SESSION_SETUP #2  respond(server token)  NegTokenResp { responseToken AUTHENTICATE, mechListMIC }
//! final response    finish(server token)   checks the server's mechListMIC
//! ```
//! The codecs and NTLM crypto are the acceptor's (this module's siblings):
//! only the client's message layouts live here. It drives the acceptor in
//! the tests below, and the load client of `protocol-tests/client` (used by
//! `examples/smbbench` and the `client_e2e` test) logs on with it.

use zeroize::Zeroizing;

use crate::auth::der;
use crate::auth::ntlm::{MIC_OFFSET, av, av_pairs, find_av, flags, parse_challenge, push_av, utf16};
use crate::auth::ntlm_crypto::{self, Side};
use crate::auth::spnego::{self, ClientToken, NTLMSSP_OID, NTLMSSP_SIGNATURE};
use crate::types::FileTime;

/// NegotiateFlags we ask for (MS-NLMP 2.2.2.5), the set smbclient sends
/// (0x62088215): Unicode, extended session security, 128-bit keys, key exchange.
const CLIENT_FLAGS: u32 = flags::UNICODE
    | flags::REQUEST_TARGET
    | flags::SIGN
    | flags::NTLM
    | flags::ALWAYS_SIGN
    | flags::EXTENDED_SESSIONSECURITY
    | flags::VERSION
    | flags::N128
    | flags::KEY_EXCH;

/// Version (MS-NLMP 2.2.2.10): 6.1, NTLMSSP_REVISION_W2K3; debugging only.
const VERSION: [u8; 8] = [6, 1, 0, 0, 0, 0, 0, 0x0f];

/// AV_PAIR ids the server module does not name (MS-NLMP 2.2.2.1).
const AV_TARGET_NAME: u16 = 0x0009;
const AV_CHANNEL_BINDINGS: u16 = 0x000A;

/// Size of AUTHENTICATE's fixed part with Version and MIC (MS-NLMP 2.2.1.3).
const AUTH_FIXED: usize = 88;

/// Why the client side of a logon failed (bad token, bad MIC, …): what
/// was wrong, for the caller's error message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthFailed(pub &'static str);

impl std::fmt::Display for AuthFailed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for AuthFailed {}

/// Who logs on.
#[derive(Clone)]
pub struct Credentials {
    /// User name as typed (`alice`).
    pub user: String,
    /// Domain as typed: the organization for smbvault, `WORKGROUP` or empty for Samba.
    pub domain: String,
    /// The password; never logged.
    pub password: Zeroizing<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("user", &self.user).field("domain", &self.domain).finish_non_exhaustive()
    }
}

/// The random inputs of one exchange (the caller's RNG; tests fix them).
pub struct ClientRandom {
    /// ChallengeFromClient (MS-NLMP 3.1.5.1.2).
    pub client_challenge: [u8; 8],
    /// ExportedSessionKey when KEY_EXCH is negotiated.
    pub session_key: Zeroizing<[u8; 16]>,
}

/// One NTLM client exchange. Not reusable.
pub struct NtlmClient {
    creds: Credentials,
    workstation: String,
    target: String,
    random: ClientRandom,
    now: FileTime,
    /// The MechTypeList TLV both mechListMICs cover.
    mech_types: Vec<u8>,
    /// NEGOTIATE exactly as sent (the MIC covers it).
    negotiate: Vec<u8>,
    /// Set once AUTHENTICATE is built.
    done: Option<Done>,
}

struct Done {
    negotiated: u32,
    exported: Zeroizing<[u8; 16]>,
}

impl NtlmClient {
    /// Starts an exchange. `target` is the server's host name, sent as
    /// MsvAvTargetName `cifs/<target>`; `now` is used only when the server's
    /// CHALLENGE carries no timestamp.
    pub fn new(creds: Credentials, workstation: &str, target: &str, random: ClientRandom, now: FileTime) -> Self {
        let mech_types = der::tlv(spnego::TAG_SEQUENCE, &der::tlv(spnego::TAG_OID, NTLMSSP_OID));
        Self {
            creds,
            workstation: workstation.to_string(),
            target: target.to_string(),
            random,
            now,
            mech_types,
            negotiate: negotiate_message(),
            done: None,
        }
    }

    /// The first SESSION_SETUP token: a NegTokenInit (RFC 4178 4.2.1)
    /// offering NTLMSSP with its NEGOTIATE as the optimistic token.
    pub fn initial_token(&self) -> Vec<u8> {
        let mut init = der::tlv(spnego::ctx(0), &self.mech_types);
        init.extend_from_slice(&der::tlv(spnego::ctx(2), &der::tlv(spnego::TAG_OCTET_STRING, &self.negotiate)));
        let mut body = der::tlv(spnego::TAG_OID, spnego::SPNEGO_OID);
        body.extend_from_slice(&der::tlv(spnego::ctx(0), &der::tlv(spnego::TAG_SEQUENCE, &init)));
        der::tlv(spnego::TAG_APPLICATION_0, &body)
    }

    /// The server's NegTokenResp carrying CHALLENGE → our NegTokenResp
    /// carrying AUTHENTICATE and the mechListMIC (MS-SPNG 3.1.5.1).
    pub fn respond(&mut self, server_token: &[u8]) -> Result<Vec<u8>, AuthFailed> {
        let challenge = match spnego::parse_client(server_token) {
            Ok(ClientToken::Resp { response_token: Some(t), .. }) => t,
            Ok(ClientToken::RawNtlm(t)) => t,
            _ => return Err(AuthFailed("server token is not a NegTokenResp with a CHALLENGE")),
        };
        let (auth, done) = self.authenticate(challenge)?;
        let mic = ntlm_crypto::gss_mic(&done.exported, done.negotiated, Side::Client, 0, &self.mech_types);
        let mut fields = der::tlv(spnego::ctx(2), &der::tlv(spnego::TAG_OCTET_STRING, &auth));
        fields.extend_from_slice(&der::tlv(spnego::ctx(3), &der::tlv(spnego::TAG_OCTET_STRING, &mic)));
        self.done = Some(done);
        Ok(der::tlv(spnego::ctx(1), &der::tlv(spnego::TAG_SEQUENCE, &fields)))
    }

    /// ExportedSessionKey, the GSS session key SMB keys derive from.
    pub fn session_key(&self) -> Option<&[u8; 16]> {
        self.done.as_ref().map(|d| &*d.exported)
    }

    /// Checks the server's final token: accept-completed, and its
    /// mechListMIC if it sent one (MS-SPNG 3.1.5.1).
    pub fn finish(&self, server_token: &[u8]) -> Result<(), AuthFailed> {
        let done = self.done.as_ref().ok_or(AuthFailed("finish before respond"))?;
        if server_token.is_empty() {
            return Ok(()); // raw NTLMSSP servers send nothing
        }
        let Ok(ClientToken::Resp { mech_list_mic, .. }) = spnego::parse_client(server_token) else {
            return Err(AuthFailed("final server token is not a NegTokenResp"));
        };
        if let Some(got) = mech_list_mic {
            let want = ntlm_crypto::gss_mic(&done.exported, done.negotiated, Side::Server, 0, &self.mech_types);
            if got != want {
                return Err(AuthFailed("server mechListMIC does not verify"));
            }
        }
        Ok(())
    }

    /// CHALLENGE → AUTHENTICATE (MS-NLMP 3.1.5.1.2).
    fn authenticate(&self, chal: &[u8]) -> Result<(Vec<u8>, Done), AuthFailed> {
        let c = parse_challenge(chal).map_err(|_| AuthFailed("malformed CHALLENGE"))?;
        if c.target_info.is_empty() {
            return Err(AuthFailed("CHALLENGE without TargetInfo (NTLMv2 needs it)"));
        }
        let negotiated = c.flags & CLIENT_FLAGS;
        if negotiated & flags::EXTENDED_SESSIONSECURITY == 0 || negotiated & flags::UNICODE == 0 {
            return Err(AuthFailed("server refused extended session security or Unicode"));
        }
        let server_time = find_av(c.target_info, av::TIMESTAMP).map_err(|_| AuthFailed("bad TargetInfo"))?;
        let time = match server_time {
            Some(t) => t.try_into().map_err(|_| AuthFailed("bad MsvAvTimestamp"))?,
            None => self.now.0.to_le_bytes(),
        };
        let temp = self.client_blob(c.target_info, &time, server_time.is_some())?;
        let nt_hash = crate::auth::nt_hash(&self.creds.password);
        let key = ntlm_crypto::ntowfv2(&nt_hash, &self.creds.user, &self.creds.domain);
        let proof = ntlm_crypto::hmac_md5(&*key, &[&c.server_challenge[..], &temp[..]]);
        // NTLMv2: KeyExchangeKey = SessionBaseKey = HMAC_MD5(ResponseKeyNT, NTProofStr) (3.3.2, 3.4.5.1).
        let kek = Zeroizing::new(ntlm_crypto::hmac_md5(&*key, &[&proof[..]]));
        let (exported, encrypted_key) = if negotiated & flags::KEY_EXCH != 0 {
            let mut enc = *self.random.session_key;
            ntlm_crypto::rc4_16(&kek, &mut enc);
            (self.random.session_key.clone(), enc.to_vec())
        } else {
            (kek.clone(), Vec::new())
        };
        let nt_response = [&proof[..], &temp].concat();
        // With a server timestamp the LM response is Z(24) and a MIC is due (3.1.5.1.2).
        let lm_response = vec![0u8; 24];
        let mut msg = self.authenticate_layout(negotiated, &lm_response, &nt_response, &encrypted_key);
        if server_time.is_some() {
            let mic = ntlm_crypto::message_mic(&exported, &self.negotiate, chal, &msg);
            msg[MIC_OFFSET..MIC_OFFSET + 16].copy_from_slice(&mic);
        }
        Ok((msg, Done { negotiated, exported }))
    }

    /// NTLMv2_CLIENT_CHALLENGE (MS-NLMP 2.2.2.7): the server's AV pairs plus
    /// MsvAvFlags (MIC present), empty channel bindings and the SPN.
    fn client_blob(&self, target_info: &[u8], time: &[u8; 8], with_mic: bool) -> Result<Vec<u8>, AuthFailed> {
        let mut t = vec![1, 1, 0, 0, 0, 0, 0, 0];
        t.extend_from_slice(time);
        t.extend_from_slice(&self.random.client_challenge);
        t.extend_from_slice(&[0; 4]);
        for (id, value) in av_pairs(target_info).map_err(|_| AuthFailed("malformed TargetInfo"))? {
            if id != av::FLAGS {
                push_av(&mut t, id, value);
            }
        }
        if with_mic {
            push_av(&mut t, av::FLAGS, &av::FLAG_MIC_PRESENT.to_le_bytes());
        }
        push_av(&mut t, AV_CHANNEL_BINDINGS, &[0; 16]);
        push_av(&mut t, AV_TARGET_NAME, &utf16(&format!("cifs/{}", self.target)));
        push_av(&mut t, av::EOL, &[]);
        t.extend_from_slice(&[0; 4]);
        Ok(t)
    }

    /// Lays out AUTHENTICATE with a zero MIC: 88 fixed bytes, then the payload.
    fn authenticate_layout(&self, negotiated: u32, lm: &[u8], nt: &[u8], enc_key: &[u8]) -> Vec<u8> {
        let domain = utf16(&self.creds.domain);
        let user = utf16(&self.creds.user);
        let ws = utf16(&self.workstation);
        let mut m = Vec::with_capacity(AUTH_FIXED + lm.len() + nt.len() + 128);
        m.extend_from_slice(NTLMSSP_SIGNATURE);
        m.extend_from_slice(&3u32.to_le_bytes());
        let mut off = AUTH_FIXED;
        // Fields in the fixed order Lm, Nt, Domain, User, Workstation, EncryptedRandomSessionKey.
        for b in [lm, nt, &domain[..], &user[..], &ws[..], enc_key] {
            put_field(&mut m, b.len(), off);
            off += b.len();
        }
        m.extend_from_slice(&negotiated.to_le_bytes());
        m.extend_from_slice(&VERSION);
        m.extend_from_slice(&[0; 16]); // MIC
        for b in [lm, nt, &domain[..], &user[..], &ws[..], enc_key] {
            m.extend_from_slice(b);
        }
        m
    }
}

/// NEGOTIATE_MESSAGE (MS-NLMP 2.2.1.1): no domain or workstation supplied.
fn negotiate_message() -> Vec<u8> {
    let mut m = Vec::with_capacity(40);
    m.extend_from_slice(NTLMSSP_SIGNATURE);
    m.extend_from_slice(&1u32.to_le_bytes());
    m.extend_from_slice(&CLIENT_FLAGS.to_le_bytes());
    put_field(&mut m, 0, 40);
    put_field(&mut m, 0, 40);
    m.extend_from_slice(&VERSION);
    m
}

/// A (Len, MaxLen, Offset) field.
fn put_field(m: &mut Vec<u8>, len: usize, off: usize) {
    let len = len as u16;
    m.extend_from_slice(&len.to_le_bytes());
    m.extend_from_slice(&len.to_le_bytes());
    m.extend_from_slice(&(off as u32).to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::capture_tests::{OneUser, PASSWORD};
    use crate::auth::{NtlmServer, ServerNames, Step};

    fn creds(password: &str) -> Credentials {
        Credentials { user: "alice".into(), domain: "WORKGROUP".into(), password: Zeroizing::new(password.into()) }
    }

    fn client(password: &str) -> NtlmClient {
        let random = ClientRandom { client_challenge: [7; 8], session_key: Zeroizing::new([0x55; 16]) };
        NtlmClient::new(creds(password), "BENCH", "127.0.0.1", random, FileTime(133_000_000_000_000_000))
    }

    fn server() -> NtlmServer {
        let names = ServerNames {
            netbios_computer: "SMBVAULT".into(),
            netbios_domain: "SMBVAULT".into(),
            dns_computer: "smbvault".into(),
            dns_domain: String::new(),
        };
        NtlmServer::new([1, 2, 3, 4, 5, 6, 7, 8], FileTime(133_000_000_000_000_000), names)
    }

    /// Our client against our server: NTProofStr, KEY_EXCH, the AUTHENTICATE
    /// MIC and both mechListMICs all verify, and both ends hold the same key.
    #[test]
    fn logs_on_to_our_server() {
        let mut c = client(PASSWORD);
        let mut s = server();
        let Step::Continue(chal) = s.step(&c.initial_token(), &OneUser(PASSWORD)) else { panic!("no challenge") };
        let auth = c.respond(&chal).unwrap();
        let Step::Done(done) = s.step(&auth, &OneUser(PASSWORD)) else { panic!("logon failed") };
        assert_eq!(c.session_key(), Some(&*done.session_key));
        assert_eq!(*done.session_key, [0x55; 16]);
        c.finish(&done.token).unwrap();
        assert_eq!(done.client_user, "alice");
    }

    #[test]
    fn wrong_password_fails_and_tampered_final_token_is_caught() {
        let mut c = client("not-the-password");
        let mut s = server();
        let Step::Continue(chal) = s.step(&c.initial_token(), &OneUser(PASSWORD)) else { panic!() };
        let auth = c.respond(&chal).unwrap();
        assert!(matches!(s.step(&auth, &OneUser(PASSWORD)), Step::Fail(_)));

        let mut c = client(PASSWORD);
        let mut s = server();
        let Step::Continue(chal) = s.step(&c.initial_token(), &OneUser(PASSWORD)) else { panic!() };
        let auth = c.respond(&chal).unwrap();
        let Step::Done(done) = s.step(&auth, &OneUser(PASSWORD)) else { panic!() };
        let mut bad = done.token.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert!(c.finish(&bad).is_err());
    }

    /// smbclient's NEGOTIATE carries the same flags (captures, SMB3_11 frame 8).
    #[test]
    fn negotiate_matches_smbclient() {
        let m = negotiate_message();
        assert_eq!(hex::encode(&m), "4e544c4d53535000010000001582086200000000280000000000000028000000060100000000000f");
    }

    #[test]
    fn hostile_challenges_are_errors() {
        let mut c = client(PASSWORD);
        for bad in [&b""[..], b"NTLMSSP\0\x02\0\0\0", &[0xa1, 0x03, 0x30, 0x01, 0x00]] {
            assert!(c.respond(bad).is_err());
        }
        let mut m = vec![0u8; 56];
        m[..8].copy_from_slice(NTLMSSP_SIGNATURE);
        m[8] = 2;
        m[40] = 200; // TargetInfo past the end
        assert!(parse_challenge(&m).is_err());
        assert!(av_pairs(&[1, 0, 9, 0, 1]).is_err());
    }
}
