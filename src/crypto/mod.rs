//! SMB2/SMB3 transport crypto (MS-SMB2 3.1.4): key derivation, message
//! signing, message encryption and the 3.1.1 preauthentication hash.
//!
//! Pure functions and small keyed objects: no I/O, no clocks, no RNG (nonce
//! seeds are passed in). Never touches at-rest keys (`crate::keys`).
//!
//! Typical server flow:
//! 1. [`PreauthHash`] over NEGOTIATE and SESSION_SETUP messages (3.1.1).
//! 2. [`SessionKeys::derive`] from the NTLM session key once authentication
//!    succeeds.
//! 3. [`Signer`] for signed messages, [`Encryptor`] / [`Decryptor`] for
//!    transform messages (`crate::wire::transform`).

mod aead;
pub mod kdf;
mod keys;
mod preauth;
mod signing;

#[cfg(test)]
mod capture_tests;

pub use aead::{Decryptor, Encryptor};
pub use keys::{CipherKey, KeyDerivation, SessionKeys};
pub use preauth::PreauthHash;
pub use signing::Signer;

/// Why a crypto operation failed. Carries no key material or plaintext.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CryptoError {
    /// The message is too short or its framing is inconsistent.
    #[error("malformed message")]
    Malformed,
    /// A signature or AEAD tag did not verify.
    #[error("integrity check failed")]
    Integrity,
    /// A key has the wrong length for the algorithm.
    #[error("bad key length")]
    BadKeyLength,
    /// The encryptor used up its nonce space: the session must be re-keyed.
    #[error("nonce space exhausted")]
    NonceExhausted,
}

/// Signing algorithm (MS-SMB2 2.2.3.1.7 SigningAlgorithms ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlg {
    /// HMAC-SHA256 truncated to 16 bytes (2.0.2, 2.1).
    HmacSha256,
    /// AES-128-CMAC (3.0, 3.0.2, 3.1.1 default).
    AesCmac,
    /// AES-128-GMAC (3.1.1 with SMB2_SIGNING_CAPABILITIES).
    AesGmac,
}

impl SigningAlg {
    /// From the wire id in SMB2_SIGNING_CAPABILITIES.
    pub fn from_wire(id: u16) -> Option<Self> {
        match id {
            0 => Some(Self::HmacSha256),
            1 => Some(Self::AesCmac),
            2 => Some(Self::AesGmac),
            _ => None,
        }
    }

    /// The wire id.
    pub fn wire_id(self) -> u16 {
        match self {
            Self::HmacSha256 => 0,
            Self::AesCmac => 1,
            Self::AesGmac => 2,
        }
    }
}

/// Encryption cipher (MS-SMB2 2.2.3.1.2 Ciphers ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CipherId {
    /// AES-128-CCM (the only cipher of 3.0 and 3.0.2).
    Aes128Ccm,
    /// AES-128-GCM.
    Aes128Gcm,
    /// AES-256-CCM.
    Aes256Ccm,
    /// AES-256-GCM.
    Aes256Gcm,
}

impl CipherId {
    /// From the wire id in SMB2_ENCRYPTION_CAPABILITIES.
    pub fn from_wire(id: u16) -> Option<Self> {
        match id {
            1 => Some(Self::Aes128Ccm),
            2 => Some(Self::Aes128Gcm),
            3 => Some(Self::Aes256Ccm),
            4 => Some(Self::Aes256Gcm),
            _ => None,
        }
    }

    /// The wire id.
    pub fn wire_id(self) -> u16 {
        match self {
            Self::Aes128Ccm => 1,
            Self::Aes128Gcm => 2,
            Self::Aes256Ccm => 3,
            Self::Aes256Gcm => 4,
        }
    }

    /// Key length in bytes (16 or 32).
    pub fn key_len(self) -> usize {
        match self {
            Self::Aes128Ccm | Self::Aes128Gcm => 16,
            Self::Aes256Ccm | Self::Aes256Gcm => 32,
        }
    }

    /// Bytes of the 16-byte Nonce field the cipher uses (MS-SMB2 2.2.41).
    pub fn nonce_len(self) -> usize {
        match self {
            Self::Aes128Ccm | Self::Aes256Ccm => 11,
            Self::Aes128Gcm | Self::Aes256Gcm => 12,
        }
    }
}
