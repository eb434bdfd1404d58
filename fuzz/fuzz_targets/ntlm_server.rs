//! The SPNEGO/NTLMv2 server (`auth::NtlmServer`), both legs of a logon fed
//! hostile tokens: NEGOTIATE (or a SPNEGO NegTokenInit), then AUTHENTICATE.
//!
//! Input: u16-LE length of the first token, the first token, the second
//! token. The server runs with the challenge, clock and names Samba used in
//! `smbclient-SMB3_11-signed.pcap`, and the credential store knows that
//! capture's user (alice / Passw0rd!), so the seed from that capture
//! authenticates and the fuzzer starts from a logon that succeeds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use smbvault::auth::{AuthError, Credential, CredentialSource, NtlmServer, ServerNames, Step, nt_hash};
use smbvault::types::{FileTime, OrgId, UserId};

/// Samba's CHALLENGE message in the capture (see fuzz/seeds.py).
const CHALLENGE: [u8; 8] = [0xed, 0xfe, 0x74, 0x57, 0x78, 0x39, 0x93, 0x2f];
const NOW: FileTime = FileTime(134_401_034_342_089_580);

struct OneUser;

impl CredentialSource for OneUser {
    fn lookup(&self, _domain: &str, user: &str) -> Result<Option<Credential>, AuthError> {
        Ok(user.eq_ignore_ascii_case("alice").then(|| Credential {
            user_id: UserId(1),
            org_id: OrgId(1),
            user: "alice".into(),
            org: "WORKGROUP".into(),
            nt_hash: nt_hash("Passw0rd!"),
        }))
    }
}

fn names() -> ServerNames {
    ServerNames {
        netbios_computer: "SMBANCHOR".into(),
        netbios_domain: "SMBANCHOR".into(),
        dns_computer: "vm".into(),
        dns_domain: String::new(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((len, rest)) = data.split_first_chunk::<2>() else { return };
    let n = usize::from(u16::from_le_bytes(*len)).min(rest.len());
    let (t1, t2) = rest.split_at(n);
    let mut s = NtlmServer::new(CHALLENGE, NOW, names());
    match s.step(t1, &OneUser) {
        Step::Continue(_) => {}
        // A first token may also fail or (never) finish: either way the
        // server must refuse a second one cleanly.
        Step::Done(_) => panic!("logon done after one leg"),
        Step::Fail(_) => {}
    }
    if let Step::Done(a) = s.step(t2, &OneUser) {
        // Only the real proof authenticates: the user of the capture.
        assert!(a.credential.user == "alice");
    }
    // A third leg after the exchange is over.
    let _ = s.step(t2, &OneUser);
});
