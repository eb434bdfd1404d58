use super::*;
use crate::crypto::{KeyDerivation, PreauthHash, SessionKeys};
use crate::wire::hex_bytes;

fn keys30() -> SessionKeys {
    let sk = hex_bytes("B4546771B515F766A86735532DD6C4F0");
    SessionKeys::derive(&sk, KeyDerivation::Smb30, Some(CipherId::Aes128Ccm))
}

fn keys311() -> SessionKeys {
    let sk = hex_bytes("419FDDF34C1E001909D362AE7FB6AF79");
    let mut h = PreauthHash::new();
    h.set_for_test(&hex_bytes(
        "B23F3CBFD69487D9832B79B1594A367CDD950909B774C3A4C412B4FCEA9EDDDBA7DB256BA2EA30E9
         77F11F9B113247578E0E915C6D2A513B8F2FCA5707DC8770",
    ));
    SessionKeys::derive(&sk, KeyDerivation::Smb311(&h), Some(CipherId::Aes128Gcm))
}

fn nonce16(hex: &str) -> [u8; 16] {
    hex_bytes(hex).try_into().unwrap()
}

/// "Encryption in SMB 3.0: a protocol perspective": a WRITE request the
/// client encrypted with "ServerIn " decrypts with our decryption key.
#[test]
fn smb30_client_vector_decrypts() {
    let msg = hex_bytes(
        "FD534D4281A286535415445DAE393921E44FA42E66E69A111892584FB5ED524A
         744DA3EE87000000000001001100001400E4080025C8FEE16605A437832D1CD5
         2DA9F4645333482A175FE5384563F45FCDAFAEF38BC62BA4D5C62897996625A4
         4C29BE5658DE2E6117585779E7B59FFD971278D08580D7FA899E410E910EABF5
         AA1DB43050B33B49182637759AC15D84BFCDF5B6B238993C0F4CF4D6012023F6
         C627297075D84B7803912D0A9639634453595EF3E33FFE4E7AC2AB",
    );
    let want = hex_bytes(
        "FE534D4240000100000000000900400008000000000000000400000000000000
         FFFE0000010000001100001400E4080000000000000000000000000000000000
         3100700017000000000000000000000015010000390000020100000039020000
         00000000000000007000000000000000536D623320656E6372797074696F6E20
         74657374696E67",
    );
    assert_eq!(keys30().decryptor().unwrap().open(&msg).unwrap(), want);
}

/// Same blog: the server's WRITE response, encrypted with "ServerOut" and
/// the nonce the server used, comes out byte for byte.
#[test]
fn smb30_server_vector_encrypts() {
    let plain = hex_bytes(
        "FE534D4240000100000000000900210009000000000000000400000000000000
         FFFE0000010000001100001400E4080000000000000000000000000000000000
         11000000170000000000000000000000",
    );
    let want = hex_bytes(
        "FD534D42A6015530A18F6D9AFFE22AFAE8E66484860000000000000011000014
         00E4080050000000000001001100001400E40800DBF46435C5F14169293CE079
         E344479BF670227E49873F458672C3098DAC467DD5809F369D67409166515787
         1483E01F7BECD02064EAC3E235F913668BBC2F097980D4B378F1993EFF6E60D1
         77309E5B",
    );
    let enc = keys30().encryptor([0; 16]).unwrap();
    let mut frame = vec![0u8; TRANSFORM_HEADER_LEN];
    frame.extend_from_slice(&plain);
    enc.seal_with_nonce(nonce16("86000000000000001100001400E40800"), 0x8_e400_1400_0011, &mut frame).unwrap();
    assert_eq!(frame, want);
}

/// "SMB 3.1.1 encryption in Windows 10" (AES-128-GCM), both directions.
#[test]
fn smb311_gcm_vectors() {
    let k = keys311();
    let client_msg = hex_bytes(
        "FD534D42BD73D97D2BC9001BCAFAC0FDFF5FEEBCC7D6822D269CAF48904C664C0000000087000000
         0000010025000000001000006ECDD2A7AFC7B47763057A041B8FD4DAFFE990B70C9E09D36C084E02
         D14EF247F8BDE38ACF6256F8B1D3B56F77FBDEB312FEA5E92CBCC1ED8FB2EBBFAA75E49A4A394BB4
         4576545567C24D4C014D47C9FBDFDAFD2C4F9B72F8D256452620A299F48E29E53D6B61D1C13A19E9
         1AF013F00D17E3ABC2FC3D36C8C1B6B93973253852DBD442E46EE8",
    );
    let client_plain = hex_bytes(
        "FE534D4240000100000000000900010008000000000000000500000000000000FFFE000001000000
         25000000001000000000000000000000000000000000000031007000170000000000000000000000
         0600000004000000010000000400000000000000000000007000000000000000536D623320656E63
         72797074696F6E2074657374696E67",
    );
    assert_eq!(k.decryptor().unwrap().open(&client_msg).unwrap(), client_plain);

    let server_plain = hex_bytes(
        "FE534D4240000100000000000900010001000000000000000500000000000000FFFE000001000000
         25000000001000000000000000000000000000000000000011000000170000000000000000000000",
    );
    let server_msg = hex_bytes(
        "FD534D42ACBE1CB7ED343ADF1725EF144D90D4B0E06831DD2E8EB7B4000000000000000050000000
         00000100250000000010000026BBBF949983A6C1C796559D0F2C510CB651D1F7B6AC8DED32A2A0B8
         F2D793A815C6F6B848D69767A215841A42D400AE6DDB5F0B44173A014973321FDD7950DA6179159B
         82E03C9E18A050FF0EA1C967",
    );
    let enc = k.encryptor([0; 16]).unwrap();
    let mut frame = vec![0u8; TRANSFORM_HEADER_LEN];
    frame.extend_from_slice(&server_plain);
    enc.seal_with_nonce(nonce16("E06831DD2E8EB7B40000000000000000"), 0x1000_0000_0025, &mut frame).unwrap();
    assert_eq!(frame, server_msg);
}

fn key(c: CipherId, b: u8) -> CipherKey {
    let mut k = zeroize::Zeroizing::new([0u8; 32]);
    k.fill(b);
    CipherKey::from_parts_for_test(c, k)
}

#[test]
fn every_cipher_round_trips_and_detects_tampering() {
    for c in [CipherId::Aes128Ccm, CipherId::Aes128Gcm, CipherId::Aes256Ccm, CipherId::Aes256Gcm] {
        let k = key(c, 3);
        let enc = Encryptor::new(&k, [7; 16]);
        let dec = Decryptor::new(&k);
        let plain: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
        let sealed = enc.seal(42, &plain).unwrap();
        assert_eq!(sealed.len(), plain.len() + TRANSFORM_HEADER_LEN);
        assert_eq!(crate::wire::transform::session_id(&sealed).unwrap(), 42);
        assert_eq!(dec.open(&sealed).unwrap(), plain);
        // Every header byte after ProtocolId is authenticated or is the tag.
        for i in 4..TRANSFORM_HEADER_LEN {
            let mut t = sealed.clone();
            t[i] ^= 0x10;
            assert!(dec.open(&t).is_err(), "{c:?}: header byte {i} not authenticated");
        }
        let mut t = sealed.clone();
        t[500] ^= 1;
        assert_eq!(dec.open(&t), Err(CryptoError::Integrity));
        assert_eq!(dec.open(&sealed[..51]), Err(CryptoError::Malformed));
        assert!(Decryptor::new(&key(c, 4)).open(&sealed).is_err());
    }
}

#[test]
fn nonces_never_repeat_and_ccm_tail_is_zero() {
    let enc = Encryptor::new(&key(CipherId::Aes128Ccm, 1), [0xff; 16]);
    let mut seen = std::collections::HashSet::new();
    for _ in 0..1000 {
        let s = enc.seal(1, b"x").unwrap();
        let n: [u8; 16] = s[20..36].try_into().unwrap();
        assert_eq!(&n[11..], &[0; 5]);
        assert!(seen.insert(n));
    }
    let gcm = Encryptor::new(&key(CipherId::Aes128Gcm, 1), [0xff; 16]);
    let s = gcm.seal(1, b"x").unwrap();
    assert_eq!(&s[32..36], &[0; 4]);
    assert_ne!(&s[28..32], &[0; 4], "salt present");
}

#[test]
fn counter_exhaustion_is_an_error() {
    let enc = Encryptor::new(&key(CipherId::Aes128Gcm, 1), [0; 16]);
    enc.counter.store(u64::MAX - 1, Ordering::Relaxed);
    assert!(enc.seal(1, b"x").is_ok());
    for _ in 0..3 {
        assert_eq!(enc.seal(1, b"x"), Err(CryptoError::NonceExhausted));
    }
}

#[test]
fn empty_and_zero_flag_messages_are_rejected_or_handled() {
    let k = key(CipherId::Aes128Gcm, 9);
    let enc = Encryptor::new(&k, [1; 16]);
    let dec = Decryptor::new(&k);
    let sealed = enc.seal(5, b"").unwrap();
    assert_eq!(dec.open(&sealed).unwrap(), b"");
    let mut bad = enc.seal(5, b"abc").unwrap();
    bad[42] = 0;
    assert_eq!(dec.open(&bad), Err(CryptoError::Malformed));
    assert_eq!(enc.seal_in_place(1, &mut [0u8; 10]), Err(CryptoError::Malformed));
}

/// Cross-implementation vectors made with Python `cryptography` (OpenSSL):
/// KBKDFHMAC counter mode for the 128- and 256-bit S2C/C2S keys, then
/// AESGCM/AESCCM over a transform header's AAD. Session key 00..0f,
/// preauth hash SHA-512("smbvault preauth"), SessionId 0x1122334455667788.
#[test]
fn aes256_and_ccm_match_openssl() {
    let mut h = PreauthHash::new();
    h.set_for_test(&hex_bytes(
        "56e2921e0d8a7d9ed77f0aa3f74e29546ac15a0b5f75b25925ad00b01a33e7b2
         3fe7484d93cfce11962ea9bb35db09a20c90a05433fc5d09b287c6ec76b7af41",
    ));
    let sk: Vec<u8> = (0..16).collect();
    let plain = hex_bytes(
        "fe534d42000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f2021222324
         25262728292a2b2c2d2e2f303132333435363738393a3b31584a54f8662e00740078007400",
    );
    let cases = [
        (
            CipherId::Aes128Ccm,
            "4e6dddcc367a3348853ebe144215a22e",
            "78e3e5c12ed1ad7193387fc92f158ada",
            "a0a1a2a3a4a5a6a7a8a9aa0000000000",
            "fd534d4269d98c228d53fa7d6334cb6e1d3388d0a0a1a2a3a4a5a6a7a8a9aa00000000004e0000000000
             01008877665544332211 9d4a1a15de433a9dbe6a3a1b60d31d6b2e3872f648198dc73a7a6c2427d1e26e
             4070d648075a4fe22f24e93f272f8eb0d2ba124c716906d6be20d8b13e18a3ab20873b056c22a13b52faf618a7f3",
        ),
        (
            CipherId::Aes256Ccm,
            "c45357d8307ea7c1d6085478a43eb660e920315cc79c3603d1a06d7c489ff942",
            "4b62a51ab21fc2646d50972d8b5f71d9dfd864b6547478e6d817791ec0d71f2e",
            "a0a1a2a3a4a5a6a7a8a9aa0000000000",
            "fd534d424136f18a6fb9cd71df54bd9508a0a5bba0a1a2a3a4a5a6a7a8a9aa00000000004e0000000000
             01008877665544332211b58e92631389ee50274642702fb63a21158dd82e31a07a2c33d59ab99d001017
             8af85167079182b1b01e09d95bcda6809272a150e4129363778d8a204c307c3e05b9dee0ad9d299cb70a4e16fb76",
        ),
        (
            CipherId::Aes256Gcm,
            "c45357d8307ea7c1d6085478a43eb660e920315cc79c3603d1a06d7c489ff942",
            "4b62a51ab21fc2646d50972d8b5f71d9dfd864b6547478e6d817791ec0d71f2e",
            "a0a1a2a3a4a5a6a7a8a9aaab00000000",
            "fd534d42933e3e41db47615d5ecaabe7cbfd65d2a0a1a2a3a4a5a6a7a8a9aaab000000004e0000000000
             01008877665544332211c8f747ce87781485df3646d3ffecd7d08dca7b43bdd60f5a79424061aac62c69
             492881dd749a6b5e65814649f414116dde86d2d86de4bd25d17a6075d80c89599a7dfb872cbda367368e98306bbf",
        ),
    ];
    for (c, s2c, c2s, nonce, want) in cases {
        let k = SessionKeys::derive(&sk, KeyDerivation::Smb311(&h), Some(c));
        assert_eq!(k.encrypt.as_ref().unwrap().bytes(), &hex_bytes(s2c)[..], "{c:?} S2C");
        assert_eq!(k.decrypt.as_ref().unwrap().bytes(), &hex_bytes(c2s)[..], "{c:?} C2S");
        let mut frame = vec![0u8; TRANSFORM_HEADER_LEN];
        frame.extend_from_slice(&plain);
        let enc = k.encryptor([0; 16]).unwrap();
        enc.seal_with_nonce(nonce16(nonce), 0x1122_3344_5566_7788, &mut frame).unwrap();
        assert_eq!(frame, hex_bytes(want), "{c:?}");
        // And the client side of the same key opens it.
        let dec = Decryptor::new(k.encrypt.as_ref().unwrap());
        assert_eq!(dec.open(&frame).unwrap(), plain);
    }
}

#[test]
fn keyed_objects_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Encryptor>();
    check::<Decryptor>();
    check::<crate::crypto::Signer>();
    check::<SessionKeys>();
}
