//! Throughput of the SMB transport crypto on 1 MiB messages, one core.
//!
//! ```text
//! cargo run --release --example crypto_bench
//! ```
//! Also times the alternatives we did not pick (RustCrypto `aes-gcm` for GCM
//! and GMAC), so the choice of `ring` stays justified by numbers.

use std::time::{Duration, Instant};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use smbvault::crypto::{CipherId, Decryptor, KeyDerivation, PreauthHash, SessionKeys, Signer, SigningAlg};

const SIZE: usize = 1 << 20;
const ROUND: Duration = Duration::from_millis(300);
const ROUNDS: usize = 5;

/// Best of ROUNDS timed rounds of `f` (the machine is shared: the best round
/// is the least disturbed one). Returns MB/s (10^6 bytes/s) of SIZE-byte messages.
fn rate(mut f: impl FnMut()) -> f64 {
    f(); // warm up
    let mut best = 0f64;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < ROUND {
            f();
            n += 1;
        }
        best = best.max((n as f64 * SIZE as f64) / start.elapsed().as_secs_f64() / 1e6);
    }
    best
}

fn main() {
    let mut preauth = PreauthHash::new();
    preauth.update(b"benchmark");
    let plain: Vec<u8> = (0..SIZE).map(|i| (i * 31) as u8).collect();

    println!("{:<34} {:>10}", "operation (1 MiB messages)", "MB/s");
    for c in [CipherId::Aes128Ccm, CipherId::Aes128Gcm, CipherId::Aes256Ccm, CipherId::Aes256Gcm] {
        let keys = SessionKeys::derive(&[7; 16], KeyDerivation::Smb311(&preauth), Some(c));
        let key = keys.encrypt.clone().expect("cipher negotiated");
        let enc = keys.encryptor([1; 16]).expect("cipher negotiated");
        let dec = Decryptor::new(&key);
        let mut frame = vec![0u8; 52 + SIZE];
        let seal = rate(|| {
            frame[52..].copy_from_slice(&plain);
            enc.seal_in_place(1, &mut frame).expect("seal");
        });
        let sealed = enc.seal(1, &plain).expect("seal");
        let mut buf = sealed.clone();
        let open = rate(|| {
            buf.copy_from_slice(&sealed);
            dec.open_in_place(&mut buf).expect("open");
        });
        println!("{:<34} {:>10.0}", format!("{c:?} seal_in_place"), seal);
        println!("{:<34} {:>10.0}", format!("{c:?} open_in_place"), open);
    }

    for alg in [SigningAlg::HmacSha256, SigningAlg::AesCmac, SigningAlg::AesGmac] {
        let s = Signer::new(alg, &[9; 16]);
        let mut msg = plain.clone();
        msg[..4].copy_from_slice(b"\xfeSMB");
        let sign = rate(|| s.sign(&mut msg).expect("sign"));
        let verify = rate(|| s.verify(&msg).expect("verify"));
        println!("{:<34} {:>10.0}", format!("{alg:?} sign"), sign);
        println!("{:<34} {:>10.0}", format!("{alg:?} verify"), verify);
    }

    // Alternatives, for the record.
    let rc_gcm = aes_gcm::Aes128Gcm::new_from_slice(&[3; 16]).expect("key");
    let nonce = aes_gcm::Nonce::from_slice(&[0; 12]);
    let mut buf = plain.clone();
    let r = rate(|| {
        rc_gcm.encrypt_in_place_detached(nonce, &[0; 32], &mut buf).expect("seal");
    });
    println!("{:<34} {:>10.0}", "(alt) RustCrypto aes-gcm AES-128-GCM", r);
    let r = rate(|| {
        rc_gcm.encrypt_in_place_detached(nonce, &plain, &mut []).expect("gmac");
    });
    println!("{:<34} {:>10.0}", "(alt) RustCrypto aes-gcm GMAC", r);
    let ring_gmac =
        ring::aead::LessSafeKey::new(ring::aead::UnboundKey::new(&ring::aead::AES_128_GCM, &[3; 16]).expect("key"));
    let r = rate(|| {
        let n = ring::aead::Nonce::assume_unique_for_key([0; 12]);
        let aad = ring::aead::Aad::from(&plain[..]);
        let _tag = ring_gmac.seal_in_place_separate_tag(n, aad, &mut []).expect("gmac");
    });
    println!("{:<34} {:>10.0}", "(alt) ring GMAC (AAD only)", r);
    let r = rate(|| {
        let n = ring::aead::Nonce::assume_unique_for_key([0; 12]);
        let _tag = ring_gmac.seal_in_place_separate_tag(n, ring::aead::Aad::empty(), &mut buf).expect("seal");
    });
    println!("{:<34} {:>10.0}", "(alt) ring AES-128-GCM, no AAD", r);
    let r = rate(|| {
        use ctr::cipher::{KeyIvInit, StreamCipher};
        ctr::Ctr32BE::<aes::Aes128>::new(&[3; 16].into(), &[0; 16].into()).apply_keystream(&mut buf);
    });
    println!("{:<34} {:>10.0}", "(alt) RustCrypto AES-128-CTR", r);
}
