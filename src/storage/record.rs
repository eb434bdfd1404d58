//! The chunk record: one encrypted, authenticated piece of a content stream
//! (docs/storage-format.md §4). Two versions, told apart by their own
//! header; both are `plen + 80` bytes long, so the index, the reader and
//! compaction size a record from its plaintext length alone.
//!
//! ```text
//! version 1 (read; written only by tests)   version 2 (written)
//! 0   4  magic "SVC1"                        0   4  magic "SVC1"
//! 4   1  version = 1                         4   1  version = 2
//! 5   1  alg = 1 (AES-256-CTR + HMAC EtM)    5   1  alg = 2 (XAES-256-GCM)
//! 6   2  flags = 0                           6   2  flags = 0
//! 8   4  plen (n)                            8   4  plen (n)
//! 12  4  reserved = 0                        12  4  reserved = 0
//! 16  8  chunk index                         16  8  chunk index
//! 24  8  seq                                 24  8  seq
//! 32 16  IV (random)                         32 24  nonce (random, 192 bits)
//! 48  n  AES-256-CTR(K_enc, IV, plaintext)   56  8  reserved = 0
//! 48+n 32 HMAC-SHA256 tag                    64  n  ciphertext
//!                                            64+n 16 GCM tag
//! ```
//! Version 1 MAC input: `"smbvault/chunk/1" ‖ org id ‖ content id ‖
//! header[0..48] ‖ ciphertext`. Version 2 associated data:
//! `"smbvault/chunk/2" ‖ org id ‖ content id ‖ header[0..64]`, so the AEAD
//! covers everything the MAC covered (organization, content, chunk index,
//! sequence number, length, and the rest of the header). All integers are
//! big-endian.

use std::sync::OnceLock;

use aes::Aes256;
use aes::cipher::{BlockEncrypt, KeyInit};
use ctr::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use hmac::{Hmac, Mac};
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

use crate::keys::Key32;

type Aes256Ctr = ctr::Ctr128BE<Aes256>;
type HmacSha256 = Hmac<Sha256>;

/// Plaintext bytes per chunk (64 KiB: see docs/storage-format.md §3).
pub const CHUNK: u64 = 64 * 1024;
/// Bytes a record adds to its plaintext, in both versions.
pub const OVERHEAD: usize = 80;

const MAGIC: [u8; 4] = *b"SVC1";

/// Version 1: AES-256-CTR + HMAC-SHA256, encrypt-then-MAC.
const V1: u8 = 1;
const ALG_CTR_HMAC: u8 = 1;
const V1_HEADER: usize = 48;
const V1_TAG: usize = 32;
const MAC_LABEL: &[u8; 16] = b"smbvault/chunk/1";

/// Version 2: XAES-256-GCM (AES-256-GCM under a key derived per record).
const V2: u8 = 2;
const ALG_XAES_GCM: u8 = 2;
pub const V2_HEADER: usize = 64;
pub const V2_TAG: usize = 16;
const NONCE: std::ops::Range<usize> = 32..56;
const AAD_LABEL: &[u8; 16] = b"smbvault/chunk/2";
const AAD_LEN: usize = 16 + 8 + 8 + V2_HEADER;

const _: () = assert!(V1_HEADER + V1_TAG == OVERHEAD && V2_HEADER + V2_TAG == OVERHEAD);

/// Which record version new records are written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RecordVersion {
    /// AES-256-CTR + HMAC-SHA256: what stores written before version 2
    /// hold. Still read; written only when a test asks for it.
    CtrHmac,
    /// XAES-256-GCM: written by default.
    #[default]
    Gcm,
}

/// A record that failed its checks (header, length or tag).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadRecord;

/// What the index says a record must contain; checked before the tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expect {
    /// Chunk index being read (from the query, not the row).
    pub idx: u64,
    /// Sequence number of the live record (from the row).
    pub seq: u64,
    /// Plaintext length (from the row).
    pub plen: u32,
}

/// The keys of one content stream (derived from its random file key when
/// first needed) plus the identifiers every record binds.
pub struct ChunkKeys {
    fk: Key32,
    org: u64,
    content: u64,
    /// Version 1: K_enc and K_mac.
    v1: OnceLock<(Key32, Key32)>,
    /// Version 2: the XAES-256-GCM key.
    v2: OnceLock<Key32>,
}

impl ChunkKeys {
    /// Keeps the content's file key `fk`; purpose keys are derived on use.
    pub fn new(fk: &Key32, org: u64, content: u64) -> Self {
        Self { fk: fk.clone(), org, content, v1: OnceLock::new(), v2: OnceLock::new() }
    }

    fn ctx(&self) -> [u8; 16] {
        let mut ctx = [0u8; 16];
        ctx[..8].copy_from_slice(&self.org.to_be_bytes());
        ctx[8..].copy_from_slice(&self.content.to_be_bytes());
        ctx
    }

    fn v1_keys(&self) -> &(Key32, Key32) {
        self.v1.get_or_init(|| {
            let ctx = self.ctx();
            (self.fk.derive("smbvault/content/aes-256-ctr", &ctx), self.fk.derive("smbvault/content/hmac-sha256", &ctx))
        })
    }

    fn v2_key(&self) -> &Key32 {
        self.v2.get_or_init(|| self.fk.derive("smbvault/content/xaes-256-gcm", &self.ctx()))
    }

    /// Record length for a plaintext of `plen` bytes (either version).
    pub fn record_len(plen: usize) -> usize {
        plen + OVERHEAD
    }

    fn mac(&self, header: &[u8], ct: &[u8]) -> HmacSha256 {
        let mut m = <HmacSha256 as Mac>::new_from_slice(self.v1_keys().1.expose())
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        m.update(MAC_LABEL);
        m.update(&self.org.to_be_bytes());
        m.update(&self.content.to_be_bytes());
        m.update(header);
        m.update(ct);
        m
    }

    fn aad(&self, header: &[u8]) -> [u8; AAD_LEN] {
        let mut aad = [0u8; AAD_LEN];
        aad[..16].copy_from_slice(AAD_LABEL);
        aad[16..24].copy_from_slice(&self.org.to_be_bytes());
        aad[24..32].copy_from_slice(&self.content.to_be_bytes());
        aad[32..].copy_from_slice(header);
        aad
    }

    /// Encrypts `plain` as chunk `idx` with sequence number `seq` into
    /// `out`, which must be exactly `record_len(plain.len())` bytes, as a
    /// record of `version`. The IV or nonce is fresh from the OS CSPRNG on
    /// every call: a rewrite of the same chunk never reuses one
    /// (docs/storage-format.md §4.4).
    pub fn seal_into(&self, version: RecordVersion, idx: u64, seq: u64, plain: &[u8], out: &mut [u8]) {
        assert_eq!(out.len(), Self::record_len(plain.len()), "record buffer size");
        match version {
            RecordVersion::CtrHmac => {
                let (header, rest) = out.split_at_mut(V1_HEADER);
                write_header(header, V1, ALG_CTR_HMAC, plain.len(), idx, seq);
                let (ct, tag) = rest.split_at_mut(plain.len());
                let mut iv = [0u8; 16];
                rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut iv);
                header[32..48].copy_from_slice(&iv);
                // Encrypts straight from `plain` into the record (no extra copy).
                Aes256Ctr::new(self.v1_keys().0.expose().into(), &iv.into())
                    .apply_keystream_b2b(plain, ct)
                    .unwrap_or_else(|_| unreachable!("ct is plain.len() bytes"));
                tag.copy_from_slice(&self.mac(header, ct).finalize().into_bytes());
            }
            RecordVersion::Gcm => {
                let (header, rest) = out.split_at_mut(V2_HEADER);
                let (ct, tag) = rest.split_at_mut(plain.len());
                ct.copy_from_slice(plain);
                let header: &mut [u8; V2_HEADER] =
                    header.try_into().unwrap_or_else(|_| unreachable!("split at V2_HEADER"));
                let tag: &mut [u8; V2_TAG] = tag.try_into().unwrap_or_else(|_| unreachable!("OVERHEAD - V2_HEADER"));
                self.seal_v2_in_place(idx, seq, ct, header, tag);
            }
        }
    }

    /// Seals `data` in place as the ciphertext of a version 2 record of
    /// chunk `idx`, filling in its `header` and `tag`: the record is
    /// `header ‖ data ‖ tag`, laid out exactly as [`Self::seal_into`] lays
    /// it out (which calls this). A large WRITE's data is sealed where it
    /// arrived and written with `pwritev`, so it is never copied
    /// (docs/benchmarks.md, stop 22). The nonce is fresh from the OS CSPRNG.
    pub fn seal_v2_in_place(
        &self,
        idx: u64,
        seq: u64,
        data: &mut [u8],
        header: &mut [u8; V2_HEADER],
        tag: &mut [u8; V2_TAG],
    ) {
        write_header(header, V2, ALG_XAES_GCM, data.len(), idx, seq);
        let mut nonce = [0u8; 24];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut nonce);
        header[NONCE].copy_from_slice(&nonce);
        *tag = xaes_seal(self.v2_key(), &nonce, &self.aad(header), data);
    }

    /// Checks `rec` against the index (`expect`) and its tag over the whole
    /// record, and only then hands out plaintext bytes
    /// `from..from + out.len()` in `out`. No byte of `out` holds
    /// plaintext unless the record authenticates (on failure it is zeroed).
    /// `rec` is scratch: a version 2 record read partly is decrypted in
    /// place and wiped again.
    pub fn open_into(&self, rec: &mut [u8], expect: Expect, from: usize, out: &mut [u8]) -> Result<(), BadRecord> {
        self.open_checked(rec, expect, from, out).map_err(|()| BadRecord)
    }

    /// Splits a whole version 2 record whose header matches `expect` into
    /// what [`Self::open_staged`] needs and its ciphertext, which the caller
    /// copies into its own buffer (a READ response) and has decrypted there:
    /// one copy and no zero-fill of the response. `None` for anything else
    /// (version 1, a header that does not match): use [`Self::open_into`],
    /// which rejects a bad one.
    pub fn stage_v2(rec: &[u8], expect: Expect) -> Option<(Staged, &[u8])> {
        let plen = expect.plen as usize;
        // The fields are checked once, by `stage_v2_parts`.
        if rec.len() != Self::record_len(plen) {
            return None;
        }
        let header: &[u8; V2_HEADER] = rec[..V2_HEADER].try_into().ok()?;
        let tag: &[u8; V2_TAG] = rec[V2_HEADER + plen..].try_into().ok()?;
        Some((Self::stage_v2_parts(header, tag, expect)?, &rec[V2_HEADER..V2_HEADER + plen]))
    }

    /// [`Self::stage_v2`] for a record whose parts were read apart (the
    /// ciphertext straight into a READ's response): the fields `expect`
    /// names, and version 2 with XAES-256-GCM.
    pub fn stage_v2_parts(header: &[u8; V2_HEADER], tag: &[u8; V2_TAG], expect: Expect) -> Option<Staged> {
        if !fields_ok(header, expect) || header[4..6] != [V2, ALG_XAES_GCM] || header[56..64] != [0; 8] {
            return None;
        }
        Some(Staged { header: *header, tag: *tag })
    }

    /// Decrypts in place the ciphertext of a record staged by
    /// [`Self::stage_v2`]. On failure `buf` is wiped: it never holds
    /// unauthenticated plaintext (nor is left holding the ciphertext).
    pub fn open_staged(&self, staged: &Staged, buf: &mut [u8]) -> Result<(), BadRecord> {
        let nonce: [u8; 24] = staged.header[NONCE].try_into().map_err(|_| BadRecord)?;
        let r = if buf.len() == plen_of(&staged.header) {
            xaes_open(self.v2_key(), &nonce, &self.aad(&staged.header), staged.tag, buf)
        } else {
            Err(())
        };
        if r.is_err() {
            buf.zeroize();
        }
        r.map_err(|()| BadRecord)
    }

    fn open_checked(&self, rec: &mut [u8], expect: Expect, from: usize, out: &mut [u8]) -> Result<(), ()> {
        let plen = expect.plen as usize;
        if from + out.len() > plen || !header_ok(rec, expect) {
            return Err(());
        }
        match (rec[4], rec[5]) {
            (V1, ALG_CTR_HMAC) => self.open_v1(rec, from, out),
            (V2, ALG_XAES_GCM) if rec[56..64] == [0; 8] => {
                let r = self.open_v2(rec, plen, from, out);
                if r.is_err() {
                    out.zeroize();
                }
                r
            }
            _ => Err(()),
        }
    }

    fn open_v1(&self, rec: &[u8], from: usize, out: &mut [u8]) -> Result<(), ()> {
        let (header, rest) = rec.split_at(V1_HEADER);
        let (ct, tag) = rest.split_at(rest.len() - V1_TAG);
        self.mac(header, ct).verify_slice(tag).map_err(|_| ())?;
        let iv: [u8; 16] = header[32..48].try_into().map_err(|_| ())?;
        let mut c = Aes256Ctr::new(self.v1_keys().0.expose().into(), &iv.into());
        c.seek(from as u64);
        c.apply_keystream_b2b(&ct[from..from + out.len()], out).map_err(|_| ())
    }

    fn open_v2(&self, rec: &mut [u8], plen: usize, from: usize, out: &mut [u8]) -> Result<(), ()> {
        let (header, rest) = rec.split_at_mut(V2_HEADER);
        let (ct, tag) = rest.split_at_mut(plen);
        let nonce: [u8; 24] = header[NONCE].try_into().map_err(|_| ())?;
        let tag: [u8; V2_TAG] = (&*tag).try_into().map_err(|_| ())?;
        let aad = self.aad(header);
        if from == 0 && out.len() == plen {
            // The whole chunk (every bulk read): decrypt in the caller's
            // buffer, so no plaintext is left behind here.
            out.copy_from_slice(ct);
            xaes_open(self.v2_key(), &nonce, &aad, tag, out)
        } else {
            // GCM authenticates the whole ciphertext either way; decrypt it
            // in place, copy the range out, wipe the plaintext.
            let r = xaes_open(self.v2_key(), &nonce, &aad, tag, ct);
            if r.is_ok() {
                out.copy_from_slice(&ct[from..from + out.len()]);
            }
            ct.zeroize();
            r
        }
    }
}

/// The header and tag of a version 2 record whose ciphertext the caller
/// holds (see [`ChunkKeys::stage_v2`]), checked against the index.
pub struct Staged {
    header: [u8; V2_HEADER],
    tag: [u8; V2_TAG],
}

/// The checks common to both versions: length, magic, and the fields the
/// index says the record must have (`expect`).
fn header_ok(rec: &[u8], expect: Expect) -> bool {
    rec.len() == ChunkKeys::record_len(expect.plen as usize) && rec.len() >= V2_HEADER && fields_ok(rec, expect)
}

/// The header fields both versions share (the first 32 bytes of `rec`).
fn fields_ok(rec: &[u8], expect: Expect) -> bool {
    if rec.len() < 32 {
        return false;
    }
    let be64 = |r: std::ops::Range<usize>| rec.get(r).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes);
    rec[0..4] == MAGIC
        && rec[6..8] == [0, 0]
        && rec[8..12] == expect.plen.to_be_bytes()
        && rec[12..16] == [0; 4]
        && be64(16..24) == Some(expect.idx)
        && be64(24..32) == Some(expect.seq)
}

fn plen_of(header: &[u8; V2_HEADER]) -> usize {
    u32::from_be_bytes([header[8], header[9], header[10], header[11]]) as usize
}

/// XAES-256-GCM key derivation (C2SP XAES-256-GCM; NIST SP 800-108r1
/// counter-mode KDF with CMAC-AES-256): the per-record AES-256-GCM key
/// from the content key and the first 96 bits of the 192-bit nonce.
fn xaes_derive(key: &Key32, n: &[u8; 24]) -> Zeroizing<[u8; 32]> {
    let aes = Aes256::new(key.expose().into());
    let mut l = aes::Block::default();
    aes.encrypt_block(&mut l);
    // K1 = L·x in GF(2^128) (the CMAC subkey), in constant time.
    let mut k1 = [0u8; 16];
    for i in 0..16 {
        k1[i] = (l[i] << 1) | l.get(i + 1).map_or(0, |b| b >> 7);
    }
    k1[15] ^= 0x87 & (l[0] >> 7).wrapping_neg();
    l.zeroize();
    let mut out = Zeroizing::new([0u8; 32]);
    for (i, half) in out.chunks_mut(16).enumerate() {
        let mut m = aes::Block::default();
        m[1] = i as u8 + 1;
        m[2] = b'X';
        m[4..].copy_from_slice(&n[..12]);
        for (a, b) in m.iter_mut().zip(&k1) {
            *a ^= b;
        }
        aes.encrypt_block(&mut m);
        half.copy_from_slice(&m);
        m.zeroize();
    }
    k1.zeroize();
    out
}

fn gcm_key(key: &Key32, n: &[u8; 24]) -> (LessSafeKey, Nonce) {
    let kx = xaes_derive(key, n);
    let k = UnboundKey::new(&AES_256_GCM, kx.as_slice()).unwrap_or_else(|_| unreachable!("32-byte key"));
    let mut nx = [0u8; 12];
    nx.copy_from_slice(&n[12..]);
    (LessSafeKey::new(k), Nonce::assume_unique_for_key(nx))
}

/// The fields both record versions share, over a zeroed header: magic,
/// version, algorithm, plaintext length, chunk index, sequence number
/// (docs/storage-format.md §4.2). The IV or nonce is the caller's.
fn write_header(header: &mut [u8], version: u8, alg: u8, plen: usize, idx: u64, seq: u64) {
    let plen = u32::try_from(plen).unwrap_or_else(|_| unreachable!("plen ≤ CHUNK"));
    header.fill(0);
    header[0..4].copy_from_slice(&MAGIC);
    header[4] = version;
    header[5] = alg;
    header[8..12].copy_from_slice(&plen.to_be_bytes());
    header[16..24].copy_from_slice(&idx.to_be_bytes());
    header[24..32].copy_from_slice(&seq.to_be_bytes());
}

/// XAES-256-GCM seal of `buf` in place; returns the tag.
fn xaes_seal(key: &Key32, n: &[u8; 24], aad: &[u8], buf: &mut [u8]) -> [u8; V2_TAG] {
    let (k, nonce) = gcm_key(key, n);
    let tag = k
        .seal_in_place_separate_tag(nonce, Aad::from(aad), buf)
        .unwrap_or_else(|_| unreachable!("a chunk is far below GCM's length limit"));
    let mut out = [0u8; V2_TAG];
    out.copy_from_slice(tag.as_ref());
    out
}

/// XAES-256-GCM open of `buf` in place (ring wipes it on a bad tag).
fn xaes_open(key: &Key32, n: &[u8; 24], aad: &[u8], tag: [u8; V2_TAG], buf: &mut [u8]) -> Result<(), ()> {
    let (k, nonce) = gcm_key(key, n);
    k.open_in_place_separate_tag(nonce, Aad::from(aad), Tag::from(tag), buf, 0..).map(|_| ()).map_err(|_| ())
}

/// The record version of a record header (1 or 2), if it has the magic.
pub fn record_version(header: &[u8]) -> Option<u8> {
    if header.get(0..4)? != MAGIC {
        return None;
    }
    header.get(4).copied()
}

/// The IV (version 1, 16 bytes) or nonce (version 2, 24 bytes) of a
/// well-formed record (tests and forensic tools).
pub fn record_iv(rec: &[u8]) -> Option<Vec<u8>> {
    match record_version(rec)? {
        V1 => rec.get(32..48).map(<[u8]>::to_vec),
        V2 => rec.get(NONCE).map(<[u8]>::to_vec),
        _ => None,
    }
}

/// The plaintext length a record header claims (tests and scanning tools).
pub fn record_plen(header: &[u8]) -> Option<u32> {
    if header.get(0..4)? != MAGIC {
        return None;
    }
    Some(u32::from_be_bytes(header.get(8..12)?.try_into().ok()?))
}

/// Seal and open through the real record code (examples/record_bench.rs).
#[doc(hidden)]
pub fn bench_keys() -> ChunkKeys {
    ChunkKeys::new(&Key32::random(), 1, 1)
}

#[cfg(test)]
mod tests;
