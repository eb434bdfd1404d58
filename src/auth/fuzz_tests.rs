//! Hostile input never panics: truncations, bit flips and random bytes fed
//! to every leg of the exchange, and to the transport crypto decoders.

use proptest::prelude::*;

use super::capture_tests::{OneUser, PASSWORD, logon, samba_params};
use super::*;
use crate::testutil::smb;

type Params = ([u8; 8], crate::types::FileTime, ServerNames);

fn tokens() -> (Vec<u8>, Vec<u8>, Params) {
    let l = logon("smbclient-SMB3_11-signed.pcap");
    (
        smb::session_setup_token(&l.setups[0].0).to_vec(),
        smb::session_setup_token(&l.setups[1].0).to_vec(),
        samba_params(smb::session_setup_token(&l.setups[0].1)),
    )
}

fn run(t1: &[u8], t2: &[u8], p: &Params) -> bool {
    let mut s = NtlmServer::new(p.0, p.1, p.2.clone());
    let _ = s.step(t1, &OneUser(PASSWORD));
    matches!(s.step(t2, &OneUser(PASSWORD)), Step::Done(_))
}

#[test]
fn every_truncation_fails_cleanly() {
    let (t1, t2, p) = tokens();
    for n in 0..t1.len() {
        assert!(!run(&t1[..n], &t2, &p));
    }
    for n in 0..t2.len() {
        assert!(!run(&t1, &t2[..n], &p), "truncated AUTHENTICATE at {n} accepted");
    }
    assert!(run(&t1, &t2, &p));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn random_tokens_never_panic(a in proptest::collection::vec(any::<u8>(), 0..600),
                                 b in proptest::collection::vec(any::<u8>(), 0..600)) {
        let (t1, _, p) = tokens();
        let _ = run(&a, &b, &p);
        let _ = run(&t1, &b, &p);
        let mut raw = b"NTLMSSP\0\x03\0\0\0".to_vec();
        raw.extend_from_slice(&b);
        let _ = run(&t1, &raw, &p);
    }

    #[test]
    fn flipped_bytes_never_panic(i in 0usize..1000, x in 1u8..=255, second in any::<bool>()) {
        let (mut t1, mut t2, p) = tokens();
        let t = if second { &mut t2 } else { &mut t1 };
        let n = t.len();
        t[i % n] ^= x;
        // A flip may hit a byte nobody checks (reqFlags, Version, LM padding);
        // what matters is no panic, and no success from a flipped NTLM proof.
        let _ = run(&t1, &t2, &p);
    }

    #[test]
    fn crypto_decoders_never_panic(m in proptest::collection::vec(any::<u8>(), 0..200)) {
        use crate::crypto::{CipherId, KeyDerivation, SessionKeys, Signer, SigningAlg};
        let k = SessionKeys::derive(&[1; 16], KeyDerivation::Smb30, Some(CipherId::Aes128Ccm));
        let mut with_magic = b"\xfdSMB".to_vec();
        with_magic.extend_from_slice(&m);
        prop_assert!(k.decryptor().unwrap().open(&m).is_err());
        prop_assert!(k.decryptor().unwrap().open(&with_magic).is_err());
        let _ = crate::wire::transform::TransformHeader::decode(&with_magic);
        for alg in [SigningAlg::HmacSha256, SigningAlg::AesCmac, SigningAlg::AesGmac] {
            prop_assert!(Signer::new(alg, &[2; 16]).verify(&m).is_err());
        }
    }
}
