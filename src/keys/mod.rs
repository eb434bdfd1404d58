//! Key material shared by the at-rest layers: the master key, HKDF
//! sub-keys and the encrypt-then-MAC "seal" used to wrap keys and small
//! secrets (NT hashes, names, security descriptors).
//!
//! Every key type zeroizes on drop and prints as `Key32(..)`: keys never
//! reach logs. The at-rest content format (chunks) lives in
//! `storage::`; this module only provides the primitives it builds on.

pub mod custody;
mod master;
pub mod rotate;

pub use master::{MasterKey, RECOVERY_MIN_LEN, Unlock};

use aes::Aes256;
use ctr::cipher::{KeyIvInit, StreamCipher};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, Zeroizing};

type Aes256Ctr = ctr::Ctr128BE<Aes256>;
type HmacSha256 = Hmac<Sha256>;

/// Why a key operation failed. Carries no key material.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum KeyError {
    /// A sealed value failed authentication (tampered, truncated, wrong key or AD).
    #[error("sealed value failed authentication")]
    Integrity,
    /// The master key could not be unlocked (message says why and how to fix it).
    #[error("{0}")]
    Unlock(String),
}

/// A 256-bit secret key. Zeroized on drop; `Debug` never shows the bytes.
#[derive(Clone)]
pub struct Key32(Zeroizing<[u8; 32]>);

impl std::fmt::Debug for Key32 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Key32(..)")
    }
}

impl Key32 {
    /// A fresh key from the operating system's CSPRNG.
    pub fn random() -> Self {
        let mut k = Zeroizing::new([0u8; 32]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut *k);
        Self(k)
    }

    /// Takes ownership of raw bytes (the caller's copy should be zeroized).
    pub fn from_bytes(mut bytes: [u8; 32]) -> Self {
        let k = Self(Zeroizing::new(bytes));
        bytes.zeroize();
        k
    }

    /// Builds a key from a slice of exactly 32 bytes.
    pub fn from_slice(bytes: &[u8]) -> Option<Self> {
        let arr: [u8; 32] = bytes.try_into().ok()?;
        Some(Self::from_bytes(arr))
    }

    /// The raw bytes, for feeding a cipher. Never log or persist them unwrapped.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }

    /// HKDF-SHA256 (RFC 5869) with this key as input key material:
    /// one separate key per purpose, so no key is ever used for two things.
    /// `label` names the purpose ("smbvault/org/name-index"), `context`
    /// binds it to an object (an org id, a file id).
    pub fn derive(&self, label: &str, context: &[u8]) -> Key32 {
        let hk = hkdf::Hkdf::<Sha256>::new(Some(context), self.expose());
        let mut out = [0u8; 32];
        // 32 bytes is far below HKDF's 255*32 limit, so expand cannot fail.
        hk.expand(label.as_bytes(), &mut out).unwrap_or_else(|_| unreachable!("HKDF output length is fixed at 32"));
        Key32::from_bytes(out)
    }
}

/// Length of the IV that starts every sealed value.
pub const SEAL_IV_LEN: usize = 16;
/// Length of the HMAC-SHA256 tag that ends every sealed value.
pub const SEAL_TAG_LEN: usize = 32;
/// Bytes a sealed value adds to its plaintext.
pub const SEAL_OVERHEAD: usize = SEAL_IV_LEN + SEAL_TAG_LEN;

/// A pair of keys for sealing small values: AES-256-CTR for secrecy and
/// HMAC-SHA256 for integrity (encrypt-then-MAC), both derived from one
/// parent so callers hold a single key per purpose.
#[derive(Clone, Debug)]
pub struct SealKey {
    enc: Key32,
    mac: Key32,
}

impl SealKey {
    /// Derives the encryption and MAC halves from `key`.
    pub fn new(key: &Key32) -> Self {
        Self { enc: key.derive("smbvault/seal/aes-256-ctr", b""), mac: key.derive("smbvault/seal/hmac-sha256", b"") }
    }

    fn tag(&self, ad: &[u8], iv: &[u8], ct: &[u8]) -> HmacSha256 {
        let mut m = <HmacSha256 as Mac>::new_from_slice(self.mac.expose())
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        // Length-prefix the associated data so (ad, ct) splits are unambiguous.
        m.update(b"smbvault-seal1");
        m.update(&(ad.len() as u64).to_be_bytes());
        m.update(ad);
        m.update(iv);
        m.update(ct);
        m
    }

    /// Encrypts `plaintext` under a fresh random IV and authenticates it
    /// together with `ad`. Output: IV (16) || ciphertext || tag (32).
    pub fn seal(&self, ad: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let mut iv = [0u8; SEAL_IV_LEN];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut iv);
        let mut out = Vec::with_capacity(plaintext.len() + SEAL_OVERHEAD);
        out.extend_from_slice(&iv);
        out.extend_from_slice(plaintext);
        let mut c = Aes256Ctr::new(self.enc.expose().into(), &iv.into());
        c.apply_keystream(&mut out[SEAL_IV_LEN..]);
        let tag = self.tag(ad, &iv, &out[SEAL_IV_LEN..]).finalize().into_bytes();
        out.extend_from_slice(&tag);
        out
    }

    /// Verifies (in constant time) and then decrypts a value made by
    /// [`SealKey::seal`] with the same `ad`. Nothing is decrypted unless
    /// the tag over the whole value checks out.
    pub fn open(&self, ad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, KeyError> {
        if sealed.len() < SEAL_OVERHEAD {
            return Err(KeyError::Integrity);
        }
        let (iv, rest) = sealed.split_at(SEAL_IV_LEN);
        let (ct, tag) = rest.split_at(rest.len() - SEAL_TAG_LEN);
        self.tag(ad, iv, ct).verify_slice(tag).map_err(|_| KeyError::Integrity)?;
        let mut pt = Zeroizing::new(ct.to_vec());
        let iv: [u8; SEAL_IV_LEN] = iv.try_into().map_err(|_| KeyError::Integrity)?;
        let mut c = Aes256Ctr::new(self.enc.expose().into(), &iv.into());
        c.apply_keystream(&mut pt);
        Ok(pt)
    }

    /// Seals a key (for example an organization key under the master key).
    pub fn wrap_key(&self, ad: &[u8], key: &Key32) -> Vec<u8> {
        self.seal(ad, key.expose())
    }

    /// Opens a key sealed by [`SealKey::wrap_key`].
    pub fn unwrap_key(&self, ad: &[u8], sealed: &[u8]) -> Result<Key32, KeyError> {
        let pt = self.open(ad, sealed)?;
        Key32::from_slice(&pt).ok_or(KeyError::Integrity)
    }
}

/// Access to keys derived from an organization's key. Implemented by the
/// storage engine (which keeps the wrapped organization keys); used by the
/// audit log so that shredding an organization also shreds its log's names.
pub trait OrgKeys: Send + Sync {
    /// HKDF sub-key of `org`'s key for `label` (e.g. "smbvault/org/audit-names").
    /// Fails with `KeyError::Unlock` if the organization has no key (unknown or shredded).
    fn org_subkey(&self, org: crate::types::OrgId, label: &str) -> Result<Key32, KeyError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trips_and_binds_ad() {
        let k = SealKey::new(&Key32::random());
        let s = k.seal(b"ad", b"hello");
        assert_eq!(s.len(), 5 + SEAL_OVERHEAD);
        assert_eq!(&k.open(b"ad", &s).unwrap()[..], b"hello");
        assert_eq!(k.open(b"other", &s), Err(KeyError::Integrity));
    }

    #[test]
    fn every_bit_flip_is_rejected() {
        let k = SealKey::new(&Key32::random());
        let s = k.seal(b"", b"secret name");
        for i in 0..s.len() * 8 {
            let mut t = s.clone();
            t[i / 8] ^= 1 << (i % 8);
            assert!(k.open(b"", &t).is_err(), "bit {i} accepted");
        }
        assert!(k.open(b"", &s[..s.len() - 1]).is_err());
    }

    #[test]
    fn same_plaintext_seals_differently() {
        let k = SealKey::new(&Key32::random());
        assert_ne!(k.seal(b"", b"x"), k.seal(b"", b"x"));
    }

    #[test]
    fn derive_separates_purposes() {
        let k = Key32::random();
        assert_ne!(k.derive("a", b"").expose(), k.derive("b", b"").expose());
        assert_ne!(k.derive("a", b"1").expose(), k.derive("a", b"2").expose());
        assert_eq!(k.derive("a", b"1").expose(), k.derive("a", b"1").expose());
        assert_eq!(format!("{k:?}"), "Key32(..)");
    }

    /// RFC 5869 test case 1 (SHA-256), truncated to our 32-byte output.
    #[test]
    fn hkdf_matches_rfc5869_case1() {
        let ikm = [0x0bu8; 22];
        let salt: Vec<u8> = (0u8..=0x0c).collect();
        let info: Vec<u8> = (0xf0u8..=0xf9).collect();
        let hk = hkdf::Hkdf::<Sha256>::new(Some(&salt), &ikm);
        let mut okm = [0u8; 42];
        hk.expand(&info, &mut okm).unwrap();
        assert_eq!(
            hex::encode(okm),
            "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
        );
    }
}
