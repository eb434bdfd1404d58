//! The whole chain against real smbclient ↔ Samba captures: recompute the
//! NTLMv2 session key with `auth`, the 3.1.1 preauth hash over the exact
//! NEGOTIATE/SESSION_SETUP bytes, derive the keys, then verify every signed
//! message and decrypt (and re-encrypt) every transform message.

use super::*;
use crate::auth::Step;
use crate::auth::capture_tests::{OneUser, PASSWORD, logon, replay};
use crate::testutil::pcap::Dir;
use crate::testutil::smb;

struct Session {
    keys: SessionKeys,
    signer: Signer,
    session_id: u64,
}

/// Runs negotiate + logon of a capture through our code.
fn establish(cap: &str) -> (Session, crate::auth::capture_tests::Logon) {
    let l = logon(cap);
    let (neg_req, neg_resp) = &l.negotiate;
    let dialect = smb::negotiated_dialect(neg_resp);
    let Step::Done(auth) = replay(&l, &OneUser(PASSWORD)).1 else { panic!("{cap}: logon failed") };

    let mut cipher = None;
    let mut alg = match dialect {
        0x0202 | 0x0210 => SigningAlg::HmacSha256,
        _ => SigningAlg::AesCmac,
    };
    let mut preauth = PreauthHash::new();
    let kd = if dialect == 0x0311 {
        for (ty, data) in smb::negotiate_contexts(neg_resp) {
            match ty {
                2 => cipher = CipherId::from_wire(smb::u16_at(data, 2)),
                8 => alg = SigningAlg::from_wire(smb::u16_at(data, 2)).unwrap(),
                _ => {}
            }
        }
        // MS-SMB2 3.3.5.4 / 3.3.5.5: NEGOTIATE pair, then every
        // SESSION_SETUP message except the final success response.
        preauth.update(neg_req);
        preauth.update(neg_resp);
        for (req, resp) in &l.setups {
            preauth.update(req);
            if smb::status(resp) != 0 {
                preauth.update(resp);
            }
        }
        KeyDerivation::Smb311(&preauth)
    } else if dialect >= 0x0300 {
        cipher = Some(CipherId::Aes128Ccm);
        KeyDerivation::Smb30
    } else {
        KeyDerivation::Smb2
    };
    let keys = SessionKeys::derive(&*auth.session_key, kd, cipher);
    let signer = keys.signer(alg);
    let session_id = smb::session_id(&l.setups[1].1);
    (Session { keys, signer, session_id }, l)
}

/// Verifies a signed message, then checks that signing it again yields
/// the same bytes.
fn check_signed(s: &Session, m: &[u8], what: &str) {
    let mut m = m.to_vec();
    s.signer.verify(&m).unwrap_or_else(|e| panic!("{what}: {e}"));
    let mut again = m.clone();
    s.signer.sign(&mut again).unwrap();
    assert_eq!(again, m, "{what}: re-signing differs");
    let last = m.len() - 1;
    m[last] ^= 1;
    assert_eq!(s.signer.verify(&m), Err(CryptoError::Integrity), "{what}");
}

#[test]
fn signed_captures_verify_with_derived_keys() {
    // smbclient signs the TREE_CONNECTs (and, before 3.1.1, the
    // VALIDATE_NEGOTIATE_INFO ioctls); Samba signs its answers to them.
    for (cap, want_alg, want_count) in [
        ("smbclient-SMB2_02-signed.pcap", SigningAlg::HmacSha256, 8),
        ("smbclient-SMB2_10-signed.pcap", SigningAlg::HmacSha256, 8),
        ("smbclient-SMB3_00-signed.pcap", SigningAlg::AesCmac, 8),
        ("smbclient-SMB3_02-signed.pcap", SigningAlg::AesCmac, 8),
        ("smbclient-SMB3_11-signed.pcap", SigningAlg::AesGmac, 4),
        ("smbclient-large-3MiB.pcap", SigningAlg::AesGmac, 4),
    ] {
        let (s, l) = establish(cap);
        assert_eq!(s.signer.alg(), want_alg, "{cap}");
        // The final SESSION_SETUP response is signed with Session.SigningKey.
        assert!(smb::is_signed(&l.setups[1].1), "{cap}");
        check_signed(&s, &l.setups[1].1, cap);
        let mut verified = 0;
        for (dir, m) in &l.rest {
            if smb::is_smb2(m) && smb::is_signed(m) && smb::session_id(m) == s.session_id {
                check_signed(&s, m, &format!("{cap} {dir:?} cmd {}", smb::command(m)));
                verified += 1;
            }
        }
        assert_eq!(verified, want_count, "{cap}: signed messages");
    }
}

#[test]
fn encrypted_capture_decrypts_and_re_encrypts() {
    let cap = "smbclient-SMB3_11-encrypted.pcap";
    let (s, l) = establish(cap);
    let from_client = s.keys.decryptor().unwrap();
    let to_client_key = s.keys.encrypt.clone().unwrap();
    let from_server = Decryptor::new(&to_client_key);
    let enc = Encryptor::new(&to_client_key, [0; 16]);
    let mut opened = [0, 0];
    for (dir, m) in &l.rest {
        if !smb::is_transform(m) {
            continue;
        }
        assert_eq!(crate::wire::transform::session_id(m).unwrap(), s.session_id);
        let dec = if *dir == Dir::ToServer { &from_client } else { &from_server };
        let plain = dec.open(m).unwrap_or_else(|e| panic!("{cap} {dir:?}: {e}"));
        assert!(smb::is_smb2(&plain));
        assert_eq!(smb::session_id(&plain), s.session_id);
        if *dir == Dir::ToClient {
            // Our encryptor, given Samba's nonce, produces Samba's bytes.
            let mut frame = vec![0u8; 52];
            frame.extend_from_slice(&plain);
            let nonce: [u8; 16] = m[20..36].try_into().unwrap();
            enc.seal_with_nonce(nonce, s.session_id, &mut frame).unwrap();
            assert_eq!(&frame, m);
        }
        let mut t = m.clone();
        t[60] ^= 1;
        assert_eq!(dec.open(&t), Err(CryptoError::Integrity));
        opened[usize::from(*dir == Dir::ToClient)] += 1;
    }
    assert!(opened[0] >= 10 && opened[1] >= 10, "{opened:?}");
    // The cipher negotiated by smbclient 4.17 with Samba.
    assert_eq!(to_client_key.cipher(), CipherId::Aes128Gcm);
}
