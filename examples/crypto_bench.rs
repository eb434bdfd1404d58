//! Throughput of the SMB transport crypto on 1 MiB messages, one core.
//!
//! ```text
//! cargo run --release --example crypto_bench
//! ```
//! Also times the alternatives we did not pick (RustCrypto `aes-gcm` for GCM
//! and GMAC), so the choice of `ring` stays justified by numbers.

use std::time::{Duration, Instant};

use aes_gcm::aead::{AeadInPlace, KeyInit};
use smbvault::crypto::{
    CipherId, Decryptor, KeyDerivation, PreauthHash, SessionKeys, Signer, SigningAlg,
};

const SIZE: usize = 1 << 20;
const MIN_TIME: Duration = Duration::from_millis(1500);

/// Runs `f` repeatedly for at least MIN_TIME; returns MB/s (10^6 bytes/s).
fn rate(mut f: impl FnMut()) -> f64 {
    f(); // warm up
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < MIN_TIME {
        f();
        n += 1;
    }
    (n as f64 * SIZE as f64) / start.elapsed().as_secs_f64() / 1e6
}

fn main() {
    let mut preauth = PreauthHash::new();
    preauth.update(b"benchmark");
    let plain: Vec<u8> = (0..SIZE).map(|i| (i * 31) as u8).collect();

    println!("{:<34} {:>10}", "operation (1 MiB messages)", "MB/s");
    for c in [
        CipherId::Aes128Ccm,
        CipherId::Aes128Gcm,
        CipherId::Aes256Ccm,
        CipherId::Aes256Gcm,
    ] {
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

    for alg in [
        SigningAlg::HmacSha256,
        SigningAlg::AesCmac,
        SigningAlg::AesGmac,
    ] {
        let s = Signer::new(alg, &[9; 16]);
        let mut msg = plain.clone();
        msg[..4].copy_from_slice(b"\xfeSMB");
        let sign = rate(|| s.sign(&mut msg).expect("sign"));
        let verify = rate(|| s.verify(&mut msg).expect("verify"));
        println!("{:<34} {:>10.0}", format!("{alg:?} sign"), sign);
        println!("{:<34} {:>10.0}", format!("{alg:?} verify"), verify);
    }

    // Alternatives, for the record.
    let rc_gcm = aes_gcm::Aes128Gcm::new_from_slice(&[3; 16]).expect("key");
    let nonce = aes_gcm::Nonce::from_slice(&[0; 12]);
    let mut buf = plain.clone();
    let r = rate(|| {
        rc_gcm
            .encrypt_in_place_detached(nonce, &[0; 32], &mut buf)
            .expect("seal");
    });
    println!("{:<34} {:>10.0}", "(alt) RustCrypto aes-gcm AES-128-GCM", r);
    let r = rate(|| {
        rc_gcm
            .encrypt_in_place_detached(nonce, &plain, &mut [])
            .expect("gmac");
    });
    println!("{:<34} {:>10.0}", "(alt) RustCrypto aes-gcm GMAC", r);
    let mut sink = 0u8;
    let r = rate(|| sink ^= ghash_gmac(&[3; 16], &plain)[0]);
    println!("{:<34} {:>10.0}  ({sink})", "(alt) ghash crate GMAC", r);
}

/// Streaming GMAC from `ghash` + `aes` (kept here only to compare).
fn ghash_gmac(key: &[u8; 16], msg: &[u8]) -> [u8; 16] {
    use aes::cipher::{BlockEncrypt, KeyInit as _};
    use ghash::universal_hash::UniversalHash;
    let aes = aes::Aes128::new(key.into());
    let mut h = aes::Block::default();
    aes.encrypt_block(&mut h);
    let mut g = ghash::GHash::new(&h);
    g.update_padded(msg);
    let mut lens = [0u8; 16];
    lens[..8].copy_from_slice(&((msg.len() as u64) * 8).to_be_bytes());
    g.update(&[lens.into()]);
    let s = g.finalize();
    let mut j0 = aes::Block::default();
    j0[15] = 1;
    aes.encrypt_block(&mut j0);
    let mut out = [0u8; 16];
    for i in 0..16 {
        out[i] = s[i] ^ j0[i];
    }
    out
}
