//! The chunk record: one encrypted, authenticated piece of a content stream
//! (docs/storage-format.md §4).
//!
//! ```text
//! 0   4  magic "SVC1"            24  8  seq (write sequence number)
//! 4   1  version = 1             32 16  IV (fresh CSPRNG bytes per record)
//! 5   1  alg = 1 (CTR+HMAC EtM)  48  n  ciphertext = AES-256-CTR(K_enc, IV, plaintext)
//! 6   2  flags = 0              48+n 32 tag = HMAC-SHA256(K_mac, MAC input)
//! 8   4  plen (n)
//! 12  4  reserved = 0
//! 16  8  chunk index
//! ```
//! MAC input: `"smbvault/chunk/1" ‖ org id ‖ content id ‖ header[0..48] ‖ ciphertext`.
//! Every field is fixed width and the ciphertext comes last, so the input
//! is unambiguous. All integers are big-endian.

use aes::Aes256;
use ctr::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::keys::Key32;

type Aes256Ctr = ctr::Ctr128BE<Aes256>;
type HmacSha256 = Hmac<Sha256>;

/// Plaintext bytes per chunk (64 KiB: see docs/storage-format.md §3).
pub const CHUNK: u64 = 64 * 1024;
/// Header bytes before the ciphertext.
pub const HEADER_LEN: usize = 48;
/// HMAC-SHA256 tag length.
pub const TAG_LEN: usize = 32;
/// Bytes a record adds to its plaintext.
pub const OVERHEAD: usize = HEADER_LEN + TAG_LEN;

const MAGIC: [u8; 4] = *b"SVC1";
const VERSION: u8 = 1;
const ALG_CTR_HMAC: u8 = 1;
const MAC_LABEL: &[u8; 16] = b"smbvault/chunk/1";

/// What the index says a record must contain; checked before the MAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    pub idx: u64,
    pub seq: u64,
    pub plen: u32,
}

/// The two keys of one content stream (derived from its random file key)
/// plus the identifiers every MAC binds.
pub struct ChunkKeys {
    enc: Key32,
    mac: Key32,
    org: u64,
    content: u64,
}

impl ChunkKeys {
    /// Derives the purpose keys from a content's file key `fk`.
    pub fn new(fk: &Key32, org: u64, content: u64) -> Self {
        let mut ctx = [0u8; 16];
        ctx[..8].copy_from_slice(&org.to_be_bytes());
        ctx[8..].copy_from_slice(&content.to_be_bytes());
        Self {
            enc: fk.derive("smbvault/content/aes-256-ctr", &ctx),
            mac: fk.derive("smbvault/content/hmac-sha256", &ctx),
            org,
            content,
        }
    }

    /// Record length for a plaintext of `plen` bytes.
    pub fn record_len(plen: usize) -> usize {
        plen + OVERHEAD
    }

    fn mac(&self, header: &[u8], ct: &[u8]) -> HmacSha256 {
        let mut m = <HmacSha256 as Mac>::new_from_slice(self.mac.expose())
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        m.update(MAC_LABEL);
        m.update(&self.org.to_be_bytes());
        m.update(&self.content.to_be_bytes());
        m.update(header);
        m.update(ct);
        m
    }

    /// Encrypts `plain` as chunk `idx` with sequence number `seq` into
    /// `out`, which must be exactly `record_len(plain.len())` bytes. The IV
    /// is fresh from the OS CSPRNG on every call: a rewrite of the same
    /// chunk never reuses one (docs/storage-format.md §4.2).
    pub fn seal_into(&self, idx: u64, seq: u64, plain: &[u8], out: &mut [u8]) {
        assert_eq!(out.len(), Self::record_len(plain.len()), "record buffer size");
        let plen = u32::try_from(plain.len()).unwrap_or_else(|_| unreachable!("plen ≤ CHUNK"));
        let mut iv = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut iv);
        let (header, rest) = out.split_at_mut(HEADER_LEN);
        header[0..4].copy_from_slice(&MAGIC);
        header[4] = VERSION;
        header[5] = ALG_CTR_HMAC;
        header[6..8].fill(0);
        header[8..12].copy_from_slice(&plen.to_be_bytes());
        header[12..16].fill(0);
        header[16..24].copy_from_slice(&idx.to_be_bytes());
        header[24..32].copy_from_slice(&seq.to_be_bytes());
        header[32..48].copy_from_slice(&iv);
        let (ct, tag) = rest.split_at_mut(plain.len());
        // Encrypts straight from `plain` into the record (no extra copy).
        Aes256Ctr::new(self.enc.expose().into(), &iv.into())
            .apply_keystream_b2b(plain, ct)
            .unwrap_or_else(|_| unreachable!("ct is plain.len() bytes"));
        tag.copy_from_slice(&self.mac(header, ct).finalize().into_bytes());
    }

    /// Checks `rec` against the index (`expect`) and its tag over the whole
    /// record, in constant time, and only then decrypts plaintext bytes
    /// `from..from + out.len()` into `out`. No byte is decrypted unless the
    /// record authenticates.
    pub fn open_into(&self, rec: &[u8], expect: Expect, from: usize, out: &mut [u8]) -> Result<(), ()> {
        let plen = expect.plen as usize;
        if rec.len() != Self::record_len(plen) || from + out.len() > plen {
            return Err(());
        }
        let (header, rest) = rec.split_at(HEADER_LEN);
        let (ct, tag) = rest.split_at(plen);
        let be64 = |r: std::ops::Range<usize>| header.get(r).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
        let fixed_ok = header[0..4] == MAGIC
            && header[4] == VERSION
            && header[5] == ALG_CTR_HMAC
            && header[6..8] == [0, 0]
            && header[8..12] == expect.plen.to_be_bytes()
            && header[12..16] == [0; 4]
            && be64(16..24) == Some(expect.idx)
            && be64(24..32) == Some(expect.seq);
        if !fixed_ok {
            return Err(());
        }
        self.mac(header, ct).verify_slice(tag).map_err(|_| ())?;
        let iv: [u8; 16] = header[32..48].try_into().map_err(|_| ())?;
        let mut c = Aes256Ctr::new(self.enc.expose().into(), &iv.into());
        c.seek(from as u64);
        c.apply_keystream_b2b(&ct[from..from + out.len()], out).map_err(|_| ())
    }
}

/// The IV of a well-formed record (tests and forensic tools).
pub fn record_iv(rec: &[u8]) -> Option<[u8; 16]> {
    rec.get(32..48)?.try_into().ok()
}

/// The plaintext length a record header claims (tests and scanning tools).
pub fn record_plen(header: &[u8]) -> Option<u32> {
    if header.get(0..4)? != MAGIC {
        return None;
    }
    Some(u32::from_be_bytes(header.get(8..12)?.try_into().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> ChunkKeys {
        ChunkKeys::new(&Key32::random(), 7, 42)
    }

    fn seal(k: &ChunkKeys, idx: u64, seq: u64, pt: &[u8]) -> Vec<u8> {
        let mut rec = vec![0; ChunkKeys::record_len(pt.len())];
        k.seal_into(idx, seq, pt, &mut rec);
        rec
    }

    #[test]
    fn round_trip_and_partial_decrypt() {
        let k = keys();
        let pt: Vec<u8> = (0..5000u32).map(|i| i as u8).collect();
        let rec = seal(&k, 3, 9, &pt);
        let e = Expect { idx: 3, seq: 9, plen: 5000 };
        let mut out = vec![0; 5000];
        k.open_into(&rec, e, 0, &mut out).unwrap();
        assert_eq!(out, pt);
        let mut mid = vec![0; 100];
        k.open_into(&rec, e, 1234, &mut mid).unwrap();
        assert_eq!(mid, pt[1234..1334]);
    }

    #[test]
    fn every_bit_flip_fails() {
        let k = keys();
        let rec = seal(&k, 1, 2, b"hello chunk");
        let e = Expect { idx: 1, seq: 2, plen: 11 };
        let mut out = [0u8; 11];
        for bit in 0..rec.len() * 8 {
            let mut t = rec.clone();
            t[bit / 8] ^= 1 << (bit % 8);
            assert!(k.open_into(&t, e, 0, &mut out).is_err(), "bit {bit}");
        }
    }

    #[test]
    fn binds_index_seq_and_content() {
        let k = keys();
        let rec = seal(&k, 1, 2, b"data");
        let mut out = [0u8; 4];
        assert!(k.open_into(&rec, Expect { idx: 2, seq: 2, plen: 4 }, 0, &mut out).is_err());
        assert!(k.open_into(&rec, Expect { idx: 1, seq: 3, plen: 4 }, 0, &mut out).is_err());
        assert!(k.open_into(&rec, Expect { idx: 1, seq: 2, plen: 3 }, 0, &mut out[..3]).is_err());
        // The same file key under another content id gives other keys.
        let fk = Key32::random();
        let a = ChunkKeys::new(&fk, 1, 1);
        let b = ChunkKeys::new(&fk, 1, 2);
        let rec = seal(&a, 0, 0, b"data");
        assert!(b.open_into(&rec, Expect { idx: 0, seq: 0, plen: 4 }, 0, &mut out).is_err());
    }
}
