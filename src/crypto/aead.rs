//! Message encryption (MS-SMB2 3.1.4.3) and decryption (3.3.5.2.1.1) with
//! the SMB2 TRANSFORM_HEADER (2.2.41, `crate::wire::transform`).
//!
//! GCM goes through `ring` (AES-NI + CLMUL; several times faster than the
//! RustCrypto `aes-gcm` on this hardware, see `examples/crypto_bench.rs`),
//! CCM through RustCrypto `ccm` (ring has no CCM).
//!
//! Nonces: a nonce must never repeat under a key. Each session has its own
//! keys, and one [`Encryptor`] per session is shared by all its channels
//! (`seal` takes `&self`). The nonce is a 64-bit message counter followed by
//! a salt (32 bits for GCM, 24 for CCM). Counter and salt start from a random
//! seed, so even two encryptors mistakenly built for the same key would
//! collide only if their salts matched *and* their counter ranges overlapped;
//! the counter alone rules out repeats within one encryptor. The counter
//! starts below 2^63 and sealing fails (re-key) before it wraps.

use std::sync::atomic::{AtomicU64, Ordering};

use aes::{Aes128, Aes256};
use ccm::Ccm;
use ccm::aead::AeadInPlace;
use ccm::aead::generic_array::GenericArray;
use ccm::consts::{U11, U16};
use ring::aead::{AES_128_GCM, AES_256_GCM, Aad, LessSafeKey, Nonce, Tag, UnboundKey};

use super::{CipherId, CipherKey, CryptoError};
use crate::wire::transform::{
    AAD_RANGE, FLAG_ENCRYPTED, NONCE_OFFSET, SIGNATURE_OFFSET, TRANSFORM_HEADER_LEN, TransformHeader,
};

type Aes128Ccm = Ccm<Aes128, U16, U11>;
type Aes256Ccm = Ccm<Aes256, U16, U11>;

enum Aead {
    Gcm(Box<LessSafeKey>),
    Ccm128(Box<Aes128Ccm>),
    Ccm256(Box<Aes256Ccm>),
}

impl Aead {
    fn new(key: &CipherKey) -> Self {
        use ccm::aead::KeyInit;
        let k = key.bytes();
        let gcm = |alg| {
            Box::new(LessSafeKey::new(
                UnboundKey::new(alg, k).unwrap_or_else(|_| unreachable!("key length fits cipher")),
            ))
        };
        match key.cipher() {
            CipherId::Aes128Gcm => Aead::Gcm(gcm(&AES_128_GCM)),
            CipherId::Aes256Gcm => Aead::Gcm(gcm(&AES_256_GCM)),
            CipherId::Aes128Ccm => Aead::Ccm128(Box::new(Aes128Ccm::new(GenericArray::from_slice(k)))),
            CipherId::Aes256Ccm => Aead::Ccm256(Box::new(Aes256Ccm::new(GenericArray::from_slice(k)))),
        }
    }

    /// Encrypts `body` in place; returns the 16-byte tag.
    fn seal(&self, nonce: &[u8; 16], aad: &[u8], body: &mut [u8]) -> Result<[u8; 16], CryptoError> {
        let mut tag = [0u8; 16];
        match self {
            Aead::Gcm(k) => {
                let t = k
                    .seal_in_place_separate_tag(gcm_nonce(nonce), Aad::from(aad), body)
                    .map_err(|_| CryptoError::Malformed)?;
                tag.copy_from_slice(t.as_ref());
            }
            Aead::Ccm128(c) => tag.copy_from_slice(&ccm_seal(&**c, nonce, aad, body)?),
            Aead::Ccm256(c) => tag.copy_from_slice(&ccm_seal(&**c, nonce, aad, body)?),
        }
        Ok(tag)
    }

    /// Decrypts `body` in place if `tag` verifies; on failure `body` holds garbage.
    fn open(&self, nonce: &[u8; 16], aad: &[u8], body: &mut [u8], tag: &[u8; 16]) -> Result<(), CryptoError> {
        match self {
            Aead::Gcm(k) => k
                .open_in_place_separate_tag(gcm_nonce(nonce), Aad::from(aad), Tag::from(*tag), body, 0..)
                .map(|_| ())
                .map_err(|_| ()),
            Aead::Ccm128(c) => ccm_open(&**c, nonce, aad, body, tag),
            Aead::Ccm256(c) => ccm_open(&**c, nonce, aad, body, tag),
        }
        .map_err(|_| CryptoError::Integrity)
    }
}

fn gcm_nonce(n: &[u8; 16]) -> Nonce {
    let mut b = [0u8; 12];
    b.copy_from_slice(&n[..12]);
    Nonce::assume_unique_for_key(b)
}

fn ccm_seal<C: AeadInPlace<NonceSize = U11, TagSize = U16>>(
    c: &C,
    n: &[u8; 16],
    aad: &[u8],
    body: &mut [u8],
) -> Result<GenericArray<u8, U16>, CryptoError> {
    c.encrypt_in_place_detached(GenericArray::from_slice(&n[..11]), aad, body).map_err(|_| CryptoError::Malformed)
}

fn ccm_open<C: AeadInPlace<NonceSize = U11, TagSize = U16>>(
    c: &C,
    n: &[u8; 16],
    aad: &[u8],
    body: &mut [u8],
    tag: &[u8; 16],
) -> Result<(), ()> {
    c.decrypt_in_place_detached(GenericArray::from_slice(&n[..11]), aad, body, GenericArray::from_slice(tag))
        .map_err(|_| ())
}

/// Encrypts server→client messages of one session (Session.EncryptionKey).
pub struct Encryptor {
    cipher: CipherId,
    aead: Aead,
    salt: [u8; 4],
    counter: AtomicU64,
}

impl std::fmt::Debug for Encryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Encryptor({:?}, ..)", self.cipher)
    }
}

impl Encryptor {
    /// Keys an encryptor. `nonce_seed` must be fresh random bytes (the
    /// caller's RNG; `crypto` never reads one): bytes 0..8 pick the counter's
    /// start, 8..12 the salt.
    pub fn new(key: &CipherKey, nonce_seed: [u8; 16]) -> Self {
        let mut c = [0u8; 8];
        c.copy_from_slice(&nonce_seed[..8]);
        let mut salt = [0u8; 4];
        salt.copy_from_slice(&nonce_seed[8..12]);
        if key.cipher().nonce_len() == 11 {
            salt[3] = 0; // CCM uses only 11 nonce bytes; the rest must be zero
        }
        Self { cipher: key.cipher(), aead: Aead::new(key), salt, counter: AtomicU64::new(u64::from_le_bytes(c) >> 1) }
    }

    /// The cipher.
    pub fn cipher(&self) -> CipherId {
        self.cipher
    }

    fn next_nonce(&self) -> Result<[u8; 16], CryptoError> {
        // Never wraps: once the counter reaches u64::MAX it stays there and
        // every further seal fails, so no nonce can come round again.
        let n = self
            .counter
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_add(1))
            .map_err(|_| CryptoError::NonceExhausted)?;
        let mut nonce = [0u8; 16];
        nonce[..8].copy_from_slice(&n.to_le_bytes());
        nonce[8..12].copy_from_slice(&self.salt);
        Ok(nonce)
    }

    /// Encrypts in place, avoiding copies of large payloads: `frame` is
    /// `[52 bytes of room][plaintext message]` (build responses after
    /// `TRANSFORM_HEADER_LEN` reserved bytes). On return it is the complete
    /// transform message: header, then ciphertext.
    pub fn seal_in_place(&self, session_id: u64, frame: &mut [u8]) -> Result<(), CryptoError> {
        if frame.len() < TRANSFORM_HEADER_LEN {
            return Err(CryptoError::Malformed);
        }
        self.seal_with_nonce(self.next_nonce()?, session_id, frame)
    }

    pub(super) fn seal_with_nonce(
        &self,
        nonce: [u8; 16],
        session_id: u64,
        frame: &mut [u8],
    ) -> Result<(), CryptoError> {
        let len = frame.len().checked_sub(TRANSFORM_HEADER_LEN).ok_or(CryptoError::Malformed)?;
        let size = u32::try_from(len).map_err(|_| CryptoError::Malformed)?;
        let header = TransformHeader {
            signature: [0; 16],
            nonce,
            original_message_size: size,
            flags: FLAG_ENCRYPTED,
            session_id,
        };
        let (head, body) = frame.split_at_mut(TRANSFORM_HEADER_LEN);
        let head: &mut [u8; TRANSFORM_HEADER_LEN] =
            head.try_into().unwrap_or_else(|_| unreachable!("split at header length"));
        header.write(head);
        let tag = self.aead.seal(&header.nonce, &head[AAD_RANGE], body)?;
        head[SIGNATURE_OFFSET..NONCE_OFFSET].copy_from_slice(&tag);
        Ok(())
    }

    /// Encrypts one plaintext message (or compound) into a new transform
    /// message. Costs one copy of the plaintext; see [`Self::seal_in_place`].
    pub fn seal(&self, session_id: u64, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut frame = Vec::with_capacity(TRANSFORM_HEADER_LEN + plaintext.len());
        frame.resize(TRANSFORM_HEADER_LEN, 0);
        frame.extend_from_slice(plaintext);
        self.seal_in_place(session_id, &mut frame)?;
        Ok(frame)
    }
}

/// Decrypts client→server messages of one session (Session.DecryptionKey).
pub struct Decryptor {
    cipher: CipherId,
    aead: Aead,
}

impl std::fmt::Debug for Decryptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Decryptor({:?}, ..)", self.cipher)
    }
}

impl Decryptor {
    /// Keys a decryptor.
    pub fn new(key: &CipherKey) -> Self {
        Self { cipher: key.cipher(), aead: Aead::new(key) }
    }

    /// The cipher.
    pub fn cipher(&self) -> CipherId {
        self.cipher
    }

    /// Verifies and decrypts a transform message in place; returns the
    /// plaintext, which is `frame[52..]`. Checks the header layout and
    /// Flags; the caller chose this decryptor by the header's SessionId
    /// (`wire::transform::session_id`) and must still check that the
    /// plaintext is an SMB2 message of that session (MS-SMB2 3.3.5.2.1.1).
    /// On failure the frame's body is garbage.
    pub fn open_in_place<'a>(&self, frame: &'a mut [u8]) -> Result<&'a mut [u8], CryptoError> {
        let h = TransformHeader::decode(frame).map_err(|_| CryptoError::Malformed)?;
        if h.flags != FLAG_ENCRYPTED {
            return Err(CryptoError::Malformed);
        }
        let (head, body) = frame.split_at_mut(TRANSFORM_HEADER_LEN);
        self.aead.open(&h.nonce, &head[AAD_RANGE], body, &h.signature)?;
        Ok(body)
    }

    /// Verifies and decrypts a transform message into a new buffer.
    pub fn open(&self, msg: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut frame = msg.to_vec();
        self.open_in_place(&mut frame)?;
        frame.drain(..TRANSFORM_HEADER_LEN);
        Ok(frame)
    }
}

#[cfg(test)]
mod tests;
