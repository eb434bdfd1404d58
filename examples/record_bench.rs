//! Seal/open throughput of one 64 KiB chunk record, one core, per record
//! cipher (docs/storage-format.md §4, docs/benchmarks.md "Record cipher").
//!
//! ```text
//! cargo run --release --example record_bench
//! ```
//! Times the primitives (AES-256-CTR + HMAC-SHA256 as format 1 records use
//! them; AES-256-GCM through `ring` with one key; the same with a key
//! derived per record as XAES-256-GCM does) and then the real records of
//! both versions through `storage::debug`.

use std::time::{Duration, Instant};

use aes::Aes256;
use aes::cipher::{BlockEncrypt, KeyInit as _};
use ctr::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use rand::RngCore;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use sha2::Sha256;

const CHUNK: usize = 64 * 1024;
const ROUND: Duration = Duration::from_millis(300);
const ROUNDS: usize = 5;

/// Best of ROUNDS rounds of `f` on 64 KiB (the machine is shared: the best
/// round is the least disturbed). MiB/s.
fn rate(mut f: impl FnMut()) -> f64 {
    f();
    let mut best = 0f64;
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let mut n = 0u64;
        while start.elapsed() < ROUND {
            f();
            n += 1;
        }
        best = best.max(n as f64 * CHUNK as f64 / (1 << 20) as f64 / start.elapsed().as_secs_f64());
    }
    best
}

fn ctr_hmac(key: &[u8; 32], buf: &mut [u8]) -> [u8; 32] {
    let mut iv = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut iv);
    ctr::Ctr128BE::<Aes256>::new(key.into(), &iv.into()).apply_keystream(buf);
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    m.update(&iv);
    m.update(buf);
    m.finalize().into_bytes().into()
}

fn xaes_key(aes: &Aes256, k1: &[u8; 16], n: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, half) in out.chunks_mut(16).enumerate() {
        let mut m = [0u8; 16];
        m[1] = i as u8 + 1;
        m[2] = b'X';
        m[4..].copy_from_slice(&n[..12]);
        for (a, b) in m.iter_mut().zip(k1) {
            *a ^= b;
        }
        let mut blk = m.into();
        aes.encrypt_block(&mut blk);
        half.copy_from_slice(&blk);
    }
    out
}

fn main() {
    let key = [7u8; 32];
    let mut buf = vec![0x5au8; CHUNK];
    println!("{:<52} {:>9}", "64 KiB records, one core", "MiB/s");
    let r = rate(|| {
        std::hint::black_box(ctr_hmac(&key, &mut buf));
    });
    println!("{:<52} {:>9.0}", "primitive AES-256-CTR + HMAC-SHA256", r);
    let gcm = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &key).expect("key"));
    let r = rate(|| {
        let mut n = [0u8; 12];
        rand::rngs::OsRng.fill_bytes(&mut n);
        let t = gcm.seal_in_place_separate_tag(Nonce::assume_unique_for_key(n), Aad::from(&[0u8; 80]), &mut buf);
        let _ = std::hint::black_box(t.expect("seal"));
    });
    println!("{:<52} {:>9.0}", "primitive AES-256-GCM (ring), one key", r);
    let aes = Aes256::new(&key.into());
    let k1 = [3u8; 16];
    let r = rate(|| {
        let mut n = [0u8; 24];
        rand::rngs::OsRng.fill_bytes(&mut n);
        let kx = xaes_key(&aes, &k1, &n);
        let k = LessSafeKey::new(UnboundKey::new(&AES_256_GCM, &kx).expect("key"));
        let nonce = Nonce::assume_unique_for_key(n[12..].try_into().expect("12"));
        let t = k.seal_in_place_separate_tag(nonce, Aad::from(&[0u8; 80]), &mut buf);
        let _ = std::hint::black_box(t.expect("seal"));
    });
    println!("{:<52} {:>9.0}", "primitive AES-256-GCM (ring), key per record (XAES)", r);

    // The real records (storage::record), both versions.
    use smbvault::storage::RecordVersion;
    use smbvault::storage::debug::{ChunkKeys, Expect, bench_keys};
    let keys = bench_keys();
    let plain = vec![0x5au8; CHUNK];
    let mut rec = vec![0u8; ChunkKeys::record_len(CHUNK)];
    let mut out = vec![0u8; CHUNK];
    let e = Expect { idx: 0, seq: 1, plen: CHUNK as u32 };
    for (v, name) in
        [(RecordVersion::CtrHmac, "version 1 (CTR+HMAC)"), (RecordVersion::Gcm, "version 2 (XAES-256-GCM)")]
    {
        let seal = rate(|| keys.seal_into(v, 0, 1, &plain, &mut rec));
        keys.seal_into(v, 0, 1, &plain, &mut rec);
        let sealed = rec.clone();
        let open = rate(|| {
            rec.copy_from_slice(&sealed);
            keys.open_into(&mut rec, e, 0, &mut out).expect("open");
        });
        let part = rate(|| {
            rec.copy_from_slice(&sealed);
            keys.open_into(&mut rec, e, 100, &mut out[..4096]).expect("open");
        });
        println!("{:<52} {:>9.0}", format!("record {name} seal"), seal);
        println!("{:<52} {:>9.0}", format!("record {name} open, whole chunk"), open);
        println!("{:<52} {:>9.0}", format!("record {name} open, 4 KiB of it (per 64 KiB)"), part);
    }
}
