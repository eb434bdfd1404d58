//! Message signing (MS-SMB2 3.1.4.1) and verification (3.1.5.1).
//!
//! The signature covers one whole message — for a compound, each message
//! from its header to the next message's start, padding included — with the
//! 16-byte Signature field (header offset 48) zeroed.

use aes::Aes128;
use cmac::Cmac;
use hmac::{Hmac, Mac};
use ring::aead::{AES_128_GCM, Aad, LessSafeKey, Nonce, UnboundKey};
use sha2::Sha256;
use subtle::ConstantTimeEq;

use super::{CryptoError, SigningAlg};
use crate::wire::HEADER_LEN;
use crate::wire::header::{Command, flags, offsets::SIGNATURE};

const SIG: std::ops::Range<usize> = SIGNATURE..SIGNATURE + 16;

enum Mac16 {
    Hmac(Box<Hmac<Sha256>>),
    Cmac(Box<Cmac<Aes128>>),
    Gmac(Box<LessSafeKey>),
}

/// A keyed signer for one signing key (Session.SigningKey, Channel.SigningKey,
/// or for 2.x Session.SessionKey). Keyed once; cheap per message.
pub struct Signer {
    alg: SigningAlg,
    mac: Mac16,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Signer({:?}, ..)", self.alg)
    }
}

impl Signer {
    /// Keys a signer. All SMB signing keys are 128 bits.
    pub fn new(alg: SigningAlg, key: &[u8; 16]) -> Self {
        let mac = match alg {
            SigningAlg::HmacSha256 => Mac16::Hmac(Box::new(
                <Hmac<Sha256> as Mac>::new_from_slice(key)
                    .unwrap_or_else(|_| unreachable!("HMAC takes any key length")),
            )),
            SigningAlg::AesCmac => Mac16::Cmac(Box::new(
                <Cmac<Aes128> as Mac>::new_from_slice(key)
                    .unwrap_or_else(|_| unreachable!("key is 16 bytes")),
            )),
            SigningAlg::AesGmac => Mac16::Gmac(Box::new(LessSafeKey::new(
                UnboundKey::new(&AES_128_GCM, key)
                    .unwrap_or_else(|_| unreachable!("key is 16 bytes")),
            ))),
        };
        Self { alg, mac }
    }

    /// The algorithm.
    pub fn alg(&self) -> SigningAlg {
        self.alg
    }

    /// Signs one message in place: zeroes the Signature field, computes the
    /// MAC over the whole slice and writes it there. The caller has already
    /// set SMB2_FLAGS_SIGNED (it is covered by the signature).
    pub fn sign(&self, msg: &mut [u8]) -> Result<(), CryptoError> {
        if msg.len() < HEADER_LEN {
            return Err(CryptoError::Malformed);
        }
        msg[SIG].fill(0);
        let tag = self.compute(msg)?;
        msg[SIG].copy_from_slice(&tag);
        Ok(())
    }

    /// Verifies one received message. The Signature field is zeroed while
    /// the MAC is computed (GMAC needs the message contiguous) and restored
    /// before returning, so `msg` is unchanged either way.
    pub fn verify(&self, msg: &mut [u8]) -> Result<(), CryptoError> {
        if msg.len() < HEADER_LEN {
            return Err(CryptoError::Malformed);
        }
        let mut got = [0u8; 16];
        got.copy_from_slice(&msg[SIG]);
        msg[SIG].fill(0);
        let want = self.compute(msg);
        msg[SIG].copy_from_slice(&got);
        if bool::from(want?.ct_eq(&got)) {
            Ok(())
        } else {
            Err(CryptoError::Integrity)
        }
    }

    fn compute(&self, msg: &[u8]) -> Result<[u8; 16], CryptoError> {
        let mut out = [0u8; 16];
        match &self.mac {
            Mac16::Hmac(m) => {
                let mut m = (**m).clone();
                m.update(msg);
                out.copy_from_slice(&m.finalize().into_bytes()[..16]);
            }
            Mac16::Cmac(m) => {
                let mut m = (**m).clone();
                m.update(msg);
                out.copy_from_slice(&m.finalize().into_bytes());
            }
            Mac16::Gmac(k) => {
                // GMAC (RFC 4543) is GCM with everything as AAD and no plaintext.
                let tag = k
                    .seal_in_place_separate_tag(gmac_nonce(msg), Aad::from(msg), &mut [])
                    .map_err(|_| CryptoError::Malformed)?;
                out.copy_from_slice(tag.as_ref());
            }
        }
        Ok(out)
    }
}

/// MS-SMB2 3.1.4.1: MessageId (8 bytes) then a little-endian u32 whose bit 0
/// says the sender is the server and bit 1 that the message is a CANCEL
/// request. Taken from the message's own header; the engine rejects
/// requests that carry SERVER_TO_REDIR, so a reflected response cannot pass
/// for a request.
fn gmac_nonce(msg: &[u8]) -> Nonce {
    let hflags = u32::from_le_bytes([msg[16], msg[17], msg[18], msg[19]]);
    let command = u16::from_le_bytes([msg[12], msg[13]]);
    let from_server = hflags & flags::SERVER_TO_REDIR != 0;
    let mut role = u32::from(from_server);
    if !from_server && command == Command::CANCEL.0 {
        role |= 2;
    }
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&msg[24..32]);
    n[8..].copy_from_slice(&role.to_le_bytes());
    Nonce::assume_unique_for_key(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(len: usize) -> Vec<u8> {
        let mut m: Vec<u8> = (0..len).map(|i| i as u8).collect();
        m[..4].copy_from_slice(b"\xfeSMB");
        m
    }

    #[test]
    fn sign_then_verify_and_tamper_detection() {
        for alg in [
            SigningAlg::HmacSha256,
            SigningAlg::AesCmac,
            SigningAlg::AesGmac,
        ] {
            let s = Signer::new(alg, &[9; 16]);
            let mut m = msg(200);
            s.sign(&mut m).unwrap();
            assert_ne!(&m[48..64], &[0; 16]);
            let before = m.clone();
            s.verify(&mut m).unwrap();
            assert_eq!(m, before, "verify restores the message");
            m[100] ^= 1;
            assert_eq!(s.verify(&mut m), Err(CryptoError::Integrity));
            assert_eq!(s.verify(&mut m[..10]), Err(CryptoError::Malformed));
            let other = Signer::new(alg, &[8; 16]);
            assert!(other.verify(&mut before.clone()).is_err());
        }
    }

    #[test]
    fn gmac_nonce_binds_direction_and_message_id() {
        let s = Signer::new(SigningAlg::AesGmac, &[1; 16]);
        let mut m = msg(80);
        m[16..20].copy_from_slice(&0u32.to_le_bytes());
        s.sign(&mut m).unwrap();
        let mut flipped = m.clone();
        // Same bytes but signed as if sent by the server: the nonce differs.
        flipped[16] |= 1;
        s.sign(&mut flipped).unwrap();
        assert_ne!(&m[48..64], &flipped[48..64]);
    }

    /// A 2.x signature is the first 16 bytes of HMAC-SHA256 (RFC 4231 case 2
    /// would need a 4-byte key; here we cross-check against hmac directly).
    #[test]
    fn hmac_is_truncated_sha256() {
        let key = [0x0b; 16];
        let mut m = msg(64);
        Signer::new(SigningAlg::HmacSha256, &key)
            .sign(&mut m)
            .unwrap();
        let mut z = m.clone();
        z[48..64].fill(0);
        let mut h = <Hmac<Sha256> as Mac>::new_from_slice(&key).unwrap();
        h.update(&z);
        assert_eq!(&h.finalize().into_bytes()[..16], &m[48..64]);
    }

    /// RFC 4493 example 2 (16-byte message) checks our CMAC wiring.
    #[test]
    fn cmac_rfc4493_example() {
        let key: [u8; 16] = hex::decode("2b7e151628aed2a6abf7158809cf4f3c")
            .unwrap()
            .try_into()
            .unwrap();
        let s = Signer::new(SigningAlg::AesCmac, &key);
        let tag = s
            .compute(&hex::decode("6bc1bee22e409f96e93d7e117393172a").unwrap())
            .unwrap();
        assert_eq!(hex::encode(tag), "070a16b46b4d4144f79bdd9dd04a287c");
    }
}
