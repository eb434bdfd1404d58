//! Golden tests against real smbclient ↔ Samba exchanges (captures/README.md:
//! user alice, password Passw0rd!, domain WORKGROUP): our server, fed the
//! client's tokens with Samba's challenge and clock, must answer exactly as
//! Samba did, and accept the client's proof.

use super::ntlm::{self, av};
use super::*;
use crate::testutil::pcap::{self, Dir};
use crate::testutil::smb;

pub(crate) const PASSWORD: &str = "Passw0rd!";

/// A store with one account, `alice`, under any domain.
pub(crate) struct OneUser(pub &'static str);

impl CredentialSource for OneUser {
    fn lookup(&self, _domain: &str, user: &str) -> Result<Option<Credential>, AuthError> {
        Ok(user.eq_ignore_ascii_case("alice").then(|| Credential {
            user_id: UserId(1),
            org_id: OrgId(1),
            user: "alice".into(),
            org: "default".into(),
            nt_hash: nt_hash(self.0),
        }))
    }
}

/// The messages of the first connection in a capture that matter for logon.
pub(crate) struct Logon {
    pub negotiate: (Vec<u8>, Vec<u8>),
    /// SESSION_SETUP (request, response) pairs of the first session.
    pub setups: Vec<(Vec<u8>, Vec<u8>)>,
    /// Every other plain or transform message, in order.
    pub rest: Vec<(Dir, Vec<u8>)>,
}

pub(crate) fn logon(capture: &str) -> Logon {
    let frames = pcap::frames(&pcap::capture(capture), pcap::CAPTURE_PORT);
    let port = frames[0].client_port;
    let mut msgs = Vec::new();
    for f in frames.iter().filter(|f| f.client_port == port) {
        if smb::is_smb2(&f.bytes) {
            msgs.extend(pcap::split_compound(&f.bytes).into_iter().map(|m| (f.dir, m.to_vec())));
        } else {
            msgs.push((f.dir, f.bytes.clone()));
        }
    }
    let is = |m: &[u8], cmd| smb::is_smb2(m) && smb::command(m) == cmd;
    let neg_req = msgs.iter().position(|(d, m)| *d == Dir::ToServer && is(m, 0)).unwrap();
    let negotiate = (msgs[neg_req].1.clone(), msgs[neg_req + 1].1.clone());
    // The first session's SESSION_SETUP legs run until a response other
    // than STATUS_MORE_PROCESSING_REQUIRED; everything else goes to `rest`.
    const MORE_PROCESSING_REQUIRED: u32 = 0xc000_0016;
    let mut setups = Vec::new();
    let mut rest = Vec::new();
    let mut pending: Option<Vec<u8>> = None;
    let mut logon_done = false;
    for (d, m) in msgs.into_iter().skip(neg_req + 2) {
        if logon_done || !is(&m, 1) {
            rest.push((d, m));
        } else if d == Dir::ToServer {
            pending = Some(m);
        } else {
            logon_done = smb::status(&m) != MORE_PROCESSING_REQUIRED;
            setups.push((pending.take().expect("request before response"), m));
        }
    }
    Logon { negotiate, setups, rest }
}

/// Samba's challenge, clock and names, read back from its CHALLENGE message.
pub(crate) fn samba_params(challenge_token: &[u8]) -> ([u8; 8], FileTimeT, ServerNames) {
    let chal = inner_ntlm(challenge_token);
    let server_challenge: [u8; 8] = chal[24..32].try_into().unwrap();
    let ti_len = usize::from(smb::u16_at(&chal, 40));
    let ti_off = smb::u32_at(&chal, 44) as usize;
    let ti = &chal[ti_off..ti_off + ti_len];
    let s = |id| crate::wire::utf16le(ntlm::find_av(ti, id).unwrap().unwrap()).unwrap();
    let ts = smb::u64_at(ntlm::find_av(ti, av::TIMESTAMP).unwrap().unwrap(), 0);
    let names = ServerNames {
        netbios_computer: s(av::NB_COMPUTER_NAME),
        netbios_domain: s(av::NB_DOMAIN_NAME),
        dns_computer: s(av::DNS_COMPUTER_NAME),
        dns_domain: s(av::DNS_DOMAIN_NAME),
    };
    (server_challenge, crate::types::FileTime(ts), names)
}

use crate::types::FileTime as FileTimeT;

/// The NTLMSSP message inside a SPNEGO token (or the token itself if raw).
pub(crate) fn inner_ntlm(token: &[u8]) -> Vec<u8> {
    match spnego::parse_client(token).unwrap() {
        spnego::ClientToken::RawNtlm(m) => m.to_vec(),
        spnego::ClientToken::Init { mech_token, .. } => mech_token.unwrap().to_vec(),
        spnego::ClientToken::Resp { response_token, .. } => response_token.unwrap().to_vec(),
    }
}

/// Replays a capture's logon through our server; returns the step results.
pub(crate) fn replay(l: &Logon, creds: &dyn CredentialSource) -> (Step, Step) {
    let (c1, s1) = (&l.setups[0].0, &l.setups[0].1);
    let (challenge, now, names) = samba_params(smb::session_setup_token(s1));
    let mut server = NtlmServer::new(challenge, now, names);
    let first = server.step(smb::session_setup_token(c1), creds);
    let second = server.step(smb::session_setup_token(&l.setups[1].0), creds);
    (first, second)
}

const NTLM_CAPTURES: [&str; 8] = [
    "smbclient-SMB2_02-signed.pcap",
    "smbclient-SMB2_10-signed.pcap",
    "smbclient-SMB3_00-signed.pcap",
    "smbclient-SMB3_02-signed.pcap",
    "smbclient-SMB3_11-signed.pcap",
    "smbclient-SMB3_11-encrypted.pcap",
    "smbclient-list-shares.pcap",
    "smbclient-large-3MiB.pcap",
];

#[test]
fn samba_answers_are_reproduced_byte_for_byte() {
    for cap in NTLM_CAPTURES {
        let l = logon(cap);
        assert_eq!(l.setups.len(), 2, "{cap}");
        let (first, second) = replay(&l, &OneUser(PASSWORD));
        match first {
            Step::Continue(t) => assert_eq!(t, smb::session_setup_token(&l.setups[0].1), "{cap}: CHALLENGE"),
            other => panic!("{cap}: {other:?}"),
        }
        match second {
            Step::Done(a) => {
                assert_eq!(a.token, smb::session_setup_token(&l.setups[1].1), "{cap}: final token");
                assert_eq!((a.client_user.as_str(), a.client_domain.as_str()), ("alice", "WORKGROUP"));
                assert_eq!(a.credential.user_id, UserId(1));
            }
            other => panic!("{cap}: {other:?}"),
        }
    }
}

#[test]
fn initial_token_is_samba_s_without_extra_mechanisms() {
    // Samba lists Kerberos too; ours is NTLMSSP only, with the same negHints.
    let l = logon("smbclient-SMB3_11-signed.pcap");
    let samba = smb::negotiate_token(&l.negotiate.1);
    let hint = b"not_defined_in_RFC4178@please_ignore";
    assert!(samba.windows(hint.len()).any(|w| w == hint));
    assert!(initial_token().windows(hint.len()).any(|w| w == hint));
}

#[test]
fn wrong_password_fails() {
    let l = logon("smbclient-SMB3_11-signed.pcap");
    let (_, second) = replay(&l, &OneUser("Passw0rd?"));
    match second {
        Step::Fail(f) => {
            assert_eq!(f.reason, FailReason::BadPassword);
            assert_eq!((f.user.as_str(), f.domain.as_str()), ("alice", "WORKGROUP"));
        }
        other => panic!("{other:?}"),
    }
}

/// The client in this capture typed a wrong password: Samba refused it,
/// and so must we, even though we know alice's real one.
#[test]
fn wrong_password_capture_is_refused() {
    let l = logon("smbclient-wrong-password.pcap");
    assert_eq!(smb::status(&l.setups[1].1), 0xc000_006d, "STATUS_LOGON_FAILURE");
    let (first, second) = replay(&l, &OneUser(PASSWORD));
    assert!(matches!(first, Step::Continue(_)));
    match second {
        Step::Fail(f) => assert_eq!(f.reason, FailReason::BadPassword),
        other => panic!("{other:?}"),
    }
}

struct Nobody;
impl CredentialSource for Nobody {
    fn lookup(&self, _: &str, _: &str) -> Result<Option<Credential>, AuthError> {
        Ok(None)
    }
}

struct Locked;
impl CredentialSource for Locked {
    fn lookup(&self, _: &str, _: &str) -> Result<Option<Credential>, AuthError> {
        Err(AuthError::LockedOut)
    }
}

#[test]
fn unknown_and_locked_users_fail() {
    let l = logon("smbclient-SMB3_11-signed.pcap");
    for (src, want) in [(&Nobody as &dyn CredentialSource, FailReason::UnknownUser), (&Locked, FailReason::LockedOut)] {
        match replay(&l, src).1 {
            Step::Fail(f) => assert_eq!(f.reason, want),
            other => panic!("{other:?}"),
        }
    }
}

/// Tampering with the AUTHENTICATE MIC, the mechListMIC or the NEGOTIATE
/// flags (covered by the MIC) is detected.
#[test]
fn tampering_is_detected() {
    let l = logon("smbclient-SMB3_11-signed.pcap");
    let c1 = smb::session_setup_token(&l.setups[0].0).to_vec();
    let c2 = smb::session_setup_token(&l.setups[1].0).to_vec();
    let (challenge, now, names) = samba_params(smb::session_setup_token(&l.setups[0].1));
    let run = |t1: &[u8], t2: &[u8]| {
        let mut s = NtlmServer::new(challenge, now, names.clone());
        assert!(matches!(s.step(t1, &OneUser(PASSWORD)), Step::Continue(_)));
        match s.step(t2, &OneUser(PASSWORD)) {
            Step::Fail(f) => f.reason,
            Step::Done(_) => panic!("tampered exchange accepted"),
            Step::Continue(_) => panic!("unexpected continue"),
        }
    };
    // The mechListMIC is the token's last 16 bytes.
    let mut t = c2.clone();
    let n = t.len();
    t[n - 5] ^= 1;
    assert_eq!(run(&c1, &t), FailReason::MicMismatch);
    // The NTLM MIC sits at offset 72 of the AUTHENTICATE message.
    let auth = inner_ntlm(&c2);
    let at = c2.windows(auth.len()).position(|w| w == auth).unwrap() + ntlm::MIC_OFFSET;
    let mut t = c2.clone();
    t[at] ^= 1;
    assert_eq!(run(&c1, &t), FailReason::MicMismatch);
    // A NEGOTIATE flag the client did not send (NTLMSSP_NEGOTIATE_SEAL is clear).
    let neg = inner_ntlm(&c1);
    let at = c1.windows(neg.len()).position(|w| w == neg).unwrap() + 12;
    let mut t = c1.clone();
    t[at] |= 0x20;
    assert_eq!(run(&t, &c2), FailReason::MicMismatch);
    // The mechListMIC removed: the NTLM MIC makes it mandatory.
    let stripped = spnego::resp(spnego::NegState::AcceptIncomplete, false, Some(&auth), None);
    assert_eq!(run(&c1, &stripped), FailReason::MicMismatch);
}

/// The same exchange without SPNEGO: raw NTLMSSP tokens.
#[test]
fn raw_ntlmssp_clients_are_accepted() {
    let l = logon("smbclient-SMB3_11-signed.pcap");
    let (challenge, now, names) = samba_params(smb::session_setup_token(&l.setups[0].1));
    let mut s = NtlmServer::new(challenge, now, names);
    let neg = inner_ntlm(smb::session_setup_token(&l.setups[0].0));
    match s.step(&neg, &OneUser(PASSWORD)) {
        Step::Continue(t) => assert_eq!(t, inner_ntlm(smb::session_setup_token(&l.setups[0].1))),
        other => panic!("{other:?}"),
    }
    let auth = inner_ntlm(smb::session_setup_token(&l.setups[1].0));
    match s.step(&auth, &OneUser(PASSWORD)) {
        Step::Done(a) => assert!(a.token.is_empty()),
        other => panic!("{other:?}"),
    }
}

#[test]
fn out_of_order_tokens_are_refused() {
    let l = logon("smbclient-SMB3_11-signed.pcap");
    let (challenge, now, names) = samba_params(smb::session_setup_token(&l.setups[0].1));
    let c2 = smb::session_setup_token(&l.setups[1].0);
    let mut s = NtlmServer::new(challenge, now, names.clone());
    assert!(matches!(
        s.step(c2, &OneUser(PASSWORD)),
        Step::Fail(AuthFailure { reason: FailReason::UnexpectedToken, .. })
    ));
    let (_, second) = replay(&l, &OneUser(PASSWORD));
    assert!(matches!(second, Step::Done(_)));
    let mut s = NtlmServer::new(challenge, now, names);
    let c1 = smb::session_setup_token(&l.setups[0].0);
    assert!(matches!(s.step(c1, &OneUser(PASSWORD)), Step::Continue(_)));
    assert!(matches!(s.step(c2, &OneUser(PASSWORD)), Step::Done(_)));
    assert!(matches!(
        s.step(c2, &OneUser(PASSWORD)),
        Step::Fail(AuthFailure { reason: FailReason::UnexpectedToken, .. })
    ));
}

/// MS-NLMP 4.2.4.3: the specification's AUTHENTICATE message (no MIC,
/// KEY_EXCH) verifies against its CHALLENGE parameters and yields the
/// documented RandomSessionKey.
#[test]
fn ms_nlmp_4_2_4_authenticate_message() {
    let names = ServerNames {
        netbios_computer: "Server".into(),
        netbios_domain: "Domain".into(),
        dns_computer: String::new(),
        dns_domain: String::new(),
    };
    let mut neg = b"NTLMSSP\0\x01\0\0\0".to_vec();
    neg.extend_from_slice(&0xe288_8235u32.to_le_bytes());
    let auth = crate::wire::hex_bytes(
        "4e544c4d535350000300000018001800 6c00000054005400840000000c000c00
         48000000080008005400000010001000 5c00000010001000d8000000358288e2
         0501280a0000000f44006f006d006100 69006e00550073006500720043004f00
         4d005000550054004500520086c35097 ac9cec102554764a57cccc19aaaaaaaa
         aaaaaaaa68cd0ab851e51c96aabc927b ebef6a1c010100000000000000000000
         00000000aaaaaaaaaaaaaaaa00000000 02000c0044006f006d00610069006e00
         01000c00530065007200760065007200 0000000000000000c5dad2544fc97990
         94ce1ce90bc9d03e",
    );
    struct UserPassword;
    impl CredentialSource for UserPassword {
        fn lookup(&self, d: &str, u: &str) -> Result<Option<Credential>, AuthError> {
            assert_eq!((d, u), ("Domain", "User"));
            Ok(Some(Credential {
                user_id: UserId(7),
                org_id: OrgId(7),
                user: "User".into(),
                org: "Domain".into(),
                nt_hash: nt_hash("Password"),
            }))
        }
    }
    let chal = [0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef];
    let mut s = NtlmServer::new(chal, FileTimeT(0), names);
    assert!(matches!(s.step(&neg, &UserPassword), Step::Continue(_)));
    match s.step(&auth, &UserPassword) {
        Step::Done(a) => {
            assert_eq!(*a.session_key, [0x55; 16]);
            assert_eq!(a.workstation, "COMPUTER");
        }
        other => panic!("{other:?}"),
    }
}

/// A client preferring another mechanism (Kerberos, with an optimistic
/// token) gets NTLMSSP selected, must then send a mechListMIC over its own
/// mechanism list (RFC 4178 5), and gets ours back.
#[test]
fn ntlm_selected_over_client_preference_requires_mech_list_mic() {
    let l = logon("smbclient-SMB3_11-signed.pcap");
    let Step::Done(done) = replay(&l, &OneUser(PASSWORD)).1 else { panic!() };
    let exported = *done.session_key;
    let neg = inner_ntlm(smb::session_setup_token(&l.setups[0].0));
    let auth = inner_ntlm(smb::session_setup_token(&l.setups[1].0));
    let auth_flags = smb::u32_at(&auth, 60);

    let krb5: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02];
    let oids = [der::tlv(0x06, krb5), der::tlv(0x06, spnego::NTLMSSP_OID)].concat();
    let mech_types = der::tlv(0x30, &oids);
    let init_body = [der::tlv(0xa0, &mech_types), der::tlv(0xa2, &der::tlv(0x04, b"kerberos AP-REQ"))].concat();
    let mut gss = der::tlv(0x06, &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x02]);
    gss.extend_from_slice(&der::tlv(0xa0, &der::tlv(0x30, &init_body)));
    let init = der::tlv(0x60, &gss);

    let (challenge, now, names) = samba_params(smb::session_setup_token(&l.setups[0].1));
    let client_mic = ntlm_crypto::gss_mic(&exported, auth_flags, ntlm_crypto::Side::Client, 0, &mech_types);
    for with_mic in [true, false] {
        let mut s = NtlmServer::new(challenge, now, names.clone());
        let Step::Continue(t) = s.step(&init, &OneUser(PASSWORD)) else { panic!() };
        assert_eq!(t, spnego::resp(spnego::NegState::AcceptIncomplete, true, None, None));
        let t = spnego::resp(spnego::NegState::AcceptIncomplete, false, Some(&neg), None);
        let Step::Continue(t) = s.step(&t, &OneUser(PASSWORD)) else { panic!() };
        assert_eq!(inner_ntlm(&t), inner_ntlm(smb::session_setup_token(&l.setups[0].1)));
        let mic = with_mic.then_some(&client_mic[..]);
        let t = spnego::resp(spnego::NegState::AcceptIncomplete, false, Some(&auth), mic);
        match (with_mic, s.step(&t, &OneUser(PASSWORD))) {
            (true, Step::Done(a)) => {
                let ours = ntlm_crypto::gss_mic(&exported, auth_flags, ntlm_crypto::Side::Server, 0, &mech_types);
                assert_eq!(a.token, spnego::resp(spnego::NegState::AcceptCompleted, false, None, Some(&ours)));
            }
            (false, Step::Fail(f)) => assert_eq!(f.reason, FailReason::MicMismatch),
            (_, other) => panic!("{other:?}"),
        }
    }
}

#[test]
fn no_common_mechanism_and_refused_flavours() {
    let names = ServerNames {
        netbios_computer: "S".into(),
        netbios_domain: "S".into(),
        dns_computer: "s".into(),
        dns_domain: String::new(),
    };
    let krb_only = {
        let mt = der::tlv(0x30, &der::tlv(0x06, &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02]));
        der::tlv(0xa0, &der::tlv(0x30, &der::tlv(0xa0, &mt)))
    };
    let mut s = NtlmServer::new([1; 8], FileTimeT(0), names.clone());
    assert!(matches!(
        s.step(&krb_only, &Nobody),
        Step::Fail(AuthFailure { reason: FailReason::NoCommonMechanism, .. })
    ));

    // OEM-only NEGOTIATE.
    let mut oem = b"NTLMSSP\0\x01\0\0\0".to_vec();
    oem.extend_from_slice(&0x0008_0002u32.to_le_bytes());
    let mut s = NtlmServer::new([1; 8], FileTimeT(0), names.clone());
    assert!(matches!(s.step(&oem, &Nobody), Step::Fail(AuthFailure { reason: FailReason::Unsupported, .. })));

    // AUTHENTICATE messages: anonymous, NTLMv1 (24-byte NT response), LM only.
    let mut neg = b"NTLMSSP\0\x01\0\0\0".to_vec();
    neg.extend_from_slice(&0x6208_8215u32.to_le_bytes());
    let auth_msg = |user: &str, nt: &[u8], lm: &[u8], extra_flags: u32| {
        let user16: Vec<u8> = user.encode_utf16().flat_map(u16::to_le_bytes).collect();
        let mut m = b"NTLMSSP\0\x03\0\0\0".to_vec();
        let mut payload = Vec::new();
        for buf in [lm, nt, b"", &user16[..], b"", b""] {
            let off = 88 + payload.len();
            m.extend_from_slice(&(buf.len() as u16).to_le_bytes());
            m.extend_from_slice(&(buf.len() as u16).to_le_bytes());
            m.extend_from_slice(&(off as u32).to_le_bytes());
            payload.extend_from_slice(buf);
        }
        m.extend_from_slice(&(0x6208_8215u32 | extra_flags).to_le_bytes());
        m.extend_from_slice(&[0; 24]);
        m.extend_from_slice(&payload);
        m
    };
    for (msg, want) in [
        (auth_msg("", b"", &[0], flags_anonymous()), FailReason::Anonymous),
        (auth_msg("alice", &[7; 24], &[7; 24], 0), FailReason::NtlmV1Refused),
        (auth_msg("alice", b"", &[7; 24], 0), FailReason::NtlmV1Refused),
        (auth_msg("alice", &[7; 40], b"", 0), FailReason::Malformed),
    ] {
        let mut s = NtlmServer::new([1; 8], FileTimeT(0), names.clone());
        assert!(matches!(s.step(&neg, &OneUser(PASSWORD)), Step::Continue(_)));
        match s.step(&msg, &OneUser(PASSWORD)) {
            Step::Fail(f) => assert_eq!(f.reason, want),
            other => panic!("{other:?}"),
        }
    }
}

fn flags_anonymous() -> u32 {
    ntlm::flags::ANONYMOUS
}

use super::der;
use super::ntlm_crypto;
