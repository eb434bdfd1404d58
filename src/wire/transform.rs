//! The SMB2 TRANSFORM_HEADER that wraps an encrypted message (MS-SMB2 2.2.41).
//! Layout only; the AEAD lives in `crate::crypto`.
//!
//! ```text
//!  0  ProtocolId          0xFD 'S' 'M' 'B'
//!  4  Signature           16-byte AEAD tag
//! 20  Nonce               16 bytes: 11 used by CCM, 12 by GCM, rest zero
//! 36  OriginalMessageSize u32: length of the plaintext that follows
//! 40  Reserved            u16
//! 42  Flags               u16: 0x0001 Encrypted (3.1.1); EncryptionAlgorithm
//!                          0x0001 AES-128-CCM in 3.0/3.0.2 — the same value
//! 44  SessionId           u64
//! 52  ciphertext
//! ```
//! The AEAD's associated data is bytes 20..52 (Nonce through SessionId,
//! MS-SMB2 3.1.4.3).

use super::header::TRANSFORM_ID;
use super::{DResult, DecodeError};

/// Size of the transform header.
pub const TRANSFORM_HEADER_LEN: usize = 52;
/// Offset of the Signature (AEAD tag).
pub const SIGNATURE_OFFSET: usize = 4;
/// Offset of the Nonce; the associated data starts here.
pub const NONCE_OFFSET: usize = 20;
/// The associated data: Nonce through SessionId (MS-SMB2 3.1.4.3).
pub const AAD_RANGE: std::ops::Range<usize> = NONCE_OFFSET..TRANSFORM_HEADER_LEN;
/// Flags value "Encrypted" (3.1.1), equal to EncryptionAlgorithm AES-128-CCM (3.0.x).
pub const FLAG_ENCRYPTED: u16 = 0x0001;

/// A decoded transform header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformHeader {
    /// The AEAD tag.
    pub signature: [u8; 16],
    /// The nonce field as sent (unused tail bytes included).
    pub nonce: [u8; 16],
    /// Length of the encrypted message that follows the header.
    pub original_message_size: u32,
    /// Flags / EncryptionAlgorithm.
    pub flags: u16,
    /// The session whose keys encrypt the message.
    pub session_id: u64,
}

fn arr16(b: &[u8]) -> [u8; 16] {
    let mut a = [0u8; 16];
    a.copy_from_slice(b);
    a
}

impl TransformHeader {
    /// Decodes the first 52 bytes of `msg` and checks that exactly
    /// OriginalMessageSize bytes follow (a transform message is never
    /// compounded or padded, MS-SMB2 3.3.5.2.1).
    pub fn decode(msg: &[u8]) -> DResult<Self> {
        let h = msg.get(..TRANSFORM_HEADER_LEN).ok_or(DecodeError::Truncated)?;
        if h[..4] != TRANSFORM_ID {
            return Err(DecodeError::BadValue);
        }
        let original_message_size = u32::from_le_bytes([h[36], h[37], h[38], h[39]]);
        let flags = u16::from_le_bytes([h[42], h[43]]);
        let mut sid = [0u8; 8];
        sid.copy_from_slice(&h[44..52]);
        if msg.len() - TRANSFORM_HEADER_LEN != original_message_size as usize {
            return Err(DecodeError::BadLength);
        }
        Ok(Self {
            signature: arr16(&h[4..20]),
            nonce: arr16(&h[20..36]),
            original_message_size,
            flags,
            session_id: u64::from_le_bytes(sid),
        })
    }

    /// Writes the 52-byte encoding into `out` (which must be exactly 52 bytes).
    pub fn write(&self, out: &mut [u8; TRANSFORM_HEADER_LEN]) {
        out[..4].copy_from_slice(&TRANSFORM_ID);
        out[4..20].copy_from_slice(&self.signature);
        out[20..36].copy_from_slice(&self.nonce);
        out[36..40].copy_from_slice(&self.original_message_size.to_le_bytes());
        out[40..42].copy_from_slice(&[0, 0]);
        out[42..44].copy_from_slice(&self.flags.to_le_bytes());
        out[44..52].copy_from_slice(&self.session_id.to_le_bytes());
    }
}

/// The session id of a transform message, for choosing the session's keys
/// before decrypting.
pub fn session_id(msg: &[u8]) -> DResult<u64> {
    let b = msg.get(44..52).ok_or(DecodeError::Truncated)?;
    let mut sid = [0u8; 8];
    sid.copy_from_slice(b);
    Ok(u64::from_le_bytes(sid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::hex_bytes;

    /// Server-to-client message of the "SMB 3.1.1 encryption in Windows 10"
    /// test vector (Microsoft Open Specifications blog).
    #[test]
    fn decodes_published_vector_and_round_trips() {
        let m = hex_bytes(
            "FD534D42ACBE1CB7ED343ADF1725EF144D90D4B0E06831DD2E8EB7B4000000000000000050000000
             00000100250000000010000026BBBF949983A6C1C796559D0F2C510CB651D1F7B6AC8DED32A2A0B8
             F2D793A815C6F6B848D69767A215841A42D400AE6DDB5F0B44173A014973321FDD7950DA6179159B
             82E03C9E18A050FF0EA1C967",
        );
        let h = TransformHeader::decode(&m).unwrap();
        assert_eq!(h.original_message_size, 0x50);
        assert_eq!(h.flags, FLAG_ENCRYPTED);
        assert_eq!(h.session_id, 0x1000_0000_0025);
        assert_eq!(session_id(&m).unwrap(), h.session_id);
        assert_eq!(&h.nonce[12..], &[0, 0, 0, 0]);
        let mut out = [0u8; TRANSFORM_HEADER_LEN];
        h.write(&mut out);
        assert_eq!(&out[..], &m[..TRANSFORM_HEADER_LEN]);
    }

    #[test]
    fn rejects_bad_magic_length_and_truncation() {
        let mut m = vec![0u8; 60];
        m[..4].copy_from_slice(&TRANSFORM_ID);
        m[36] = 8;
        assert!(TransformHeader::decode(&m).is_ok());
        m[36] = 9;
        assert_eq!(TransformHeader::decode(&m), Err(DecodeError::BadLength));
        m[0] = 0xfe;
        assert_eq!(TransformHeader::decode(&m), Err(DecodeError::BadValue));
        assert_eq!(TransformHeader::decode(&m[..51]), Err(DecodeError::Truncated));
        assert_eq!(session_id(&m[..50]), Err(DecodeError::Truncated));
    }
}
