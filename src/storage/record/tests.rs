use super::*;

const BOTH: [RecordVersion; 2] = [RecordVersion::CtrHmac, RecordVersion::Gcm];

fn keys() -> ChunkKeys {
    ChunkKeys::new(&Key32::random(), 7, 42)
}

fn seal(k: &ChunkKeys, v: RecordVersion, idx: u64, seq: u64, pt: &[u8]) -> Vec<u8> {
    let mut rec = vec![0; ChunkKeys::record_len(pt.len())];
    k.seal_into(v, idx, seq, pt, &mut rec);
    rec
}

fn open(k: &ChunkKeys, rec: &[u8], e: Expect, from: usize, out: &mut [u8]) -> Result<(), BadRecord> {
    k.open_into(&mut rec.to_vec(), e, from, out)
}

#[test]
fn round_trip_and_partial_decrypt() {
    for v in BOTH {
        let k = keys();
        let pt: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let rec = seal(&k, v, 3, 9, &pt);
        assert_eq!(record_version(&rec), Some(if v == RecordVersion::Gcm { 2 } else { 1 }));
        let e = Expect { idx: 3, seq: 9, plen: 5000 };
        let mut out = vec![0; 5000];
        open(&k, &rec, e, 0, &mut out).unwrap();
        assert_eq!(out, pt);
        let mut mid = vec![0; 100];
        let mut scratch = rec.clone();
        k.open_into(&mut scratch, e, 1234, &mut mid).unwrap();
        assert_eq!(mid, pt[1234..1334]);
        // The scratch record holds no plaintext afterwards.
        assert!(!scratch.windows(64).any(|w| w == &pt[1000..1064]), "{v:?}");
    }
}

#[test]
fn every_bit_flip_fails_and_leaves_no_plaintext() {
    for v in BOTH {
        let k = keys();
        let rec = seal(&k, v, 1, 2, b"hello chunk");
        let e = Expect { idx: 1, seq: 2, plen: 11 };
        for bit in 0..rec.len() * 8 {
            let mut t = rec.clone();
            t[bit / 8] ^= 1 << (bit % 8);
            let mut out = [0u8; 11];
            assert!(open(&k, &t, e, 0, &mut out).is_err(), "{v:?} bit {bit}");
            assert_eq!(out, [0u8; 11], "{v:?} bit {bit}: bytes handed out");
        }
    }
}

#[test]
fn binds_index_seq_length_and_content() {
    for v in BOTH {
        let k = keys();
        let rec = seal(&k, v, 1, 2, b"data");
        let mut out = [0u8; 4];
        assert!(open(&k, &rec, Expect { idx: 2, seq: 2, plen: 4 }, 0, &mut out).is_err());
        assert!(open(&k, &rec, Expect { idx: 1, seq: 3, plen: 4 }, 0, &mut out).is_err());
        assert!(open(&k, &rec, Expect { idx: 1, seq: 2, plen: 3 }, 0, &mut out[..3]).is_err());
        // The same file key under another content id or organization gives
        // other keys and other associated data.
        let fk = Key32::random();
        let a = ChunkKeys::new(&fk, 1, 1);
        let rec = seal(&a, v, 0, 0, b"data");
        for other in [ChunkKeys::new(&fk, 1, 2), ChunkKeys::new(&fk, 2, 1)] {
            assert!(open(&other, &rec, Expect { idx: 0, seq: 0, plen: 4 }, 0, &mut out).is_err());
        }
        open(&a, &rec, Expect { idx: 0, seq: 0, plen: 4 }, 0, &mut out).unwrap();
    }
}

#[test]
fn a_record_relabelled_as_the_other_version_fails() {
    let k = keys();
    let e = Expect { idx: 0, seq: 5, plen: 64 };
    let mut out = [0u8; 64];
    for (v, to) in [(RecordVersion::CtrHmac, [2u8, 2]), (RecordVersion::Gcm, [1u8, 1])] {
        let mut rec = seal(&k, v, 0, 5, &[9u8; 64]);
        rec[4..6].copy_from_slice(&to);
        assert!(open(&k, &rec, e, 0, &mut out).is_err(), "{v:?}");
        rec[4..6].copy_from_slice(&[3, 3]);
        assert!(open(&k, &rec, e, 0, &mut out).is_err(), "{v:?} unknown version");
    }
}

#[test]
fn nonces_are_fresh_per_record() {
    let k = keys();
    let a = seal(&k, RecordVersion::Gcm, 0, 1, b"same");
    let b = seal(&k, RecordVersion::Gcm, 0, 1, b"same");
    assert_ne!(record_iv(&a), record_iv(&b));
    assert_eq!(record_iv(&a).unwrap().len(), 24);
    assert_ne!(a[V2_HEADER..], b[V2_HEADER..]);
}

/// The C2SP XAES-256-GCM test vectors (https://c2sp.org/XAES-256-GCM, as
/// carried by RustCrypto's aes-gcm tests/xaes256gcm.rs).
#[test]
fn xaes_matches_the_c2sp_vectors() {
    let cases: [(&[u8; 32], &[u8], &str, &str); 2] = [
        (&[1; 32], b"", "ce546ef63c9cc60765923609", "b33a9a1974e96e52daf2fcf7075e2271"),
        (&[3; 32], b"c2sp.org/XAES-256-GCM", "986ec1832593df5443a17943", "7fd083bf3fdb41abd740a21f71eb769d"),
    ];
    let nonce: &[u8; 24] = b"ABCDEFGHIJKLMNOPQRSTUVWX";
    for (key, aad, ct, tag) in cases {
        let key = Key32::from_bytes(*key);
        let mut buf = b"XAES-256-GCM".to_vec();
        let t = xaes_seal(&key, nonce, aad, &mut buf);
        assert_eq!(hex::encode(&buf), ct);
        assert_eq!(hex::encode(t), tag);
        xaes_open(&key, nonce, aad, t, &mut buf).unwrap();
        assert_eq!(buf, b"XAES-256-GCM");
    }
}
