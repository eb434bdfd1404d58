//! Per-session keys (MS-SMB2 3.3.5.5.3 server side, 3.2.5.3.1 client side).

use zeroize::Zeroizing;

use super::kdf::smb3_kdf;
use super::{CipherId, Decryptor, Encryptor, PreauthHash, Signer, SigningAlg};

/// Which key schedule applies, by negotiated dialect.
#[derive(Debug, Clone, Copy)]
pub enum KeyDerivation<'a> {
    /// 2.0.2 and 2.1: the signing key is the session key itself; no encryption.
    Smb2,
    /// 3.0 and 3.0.2: fixed labels and contexts.
    Smb30,
    /// 3.1.1: the session's preauthentication hash is the KDF context.
    Smb311(&'a PreauthHash),
}

/// An encryption key bound to its cipher. Zeroized on drop.
#[derive(Clone)]
pub struct CipherKey {
    cipher: CipherId,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for CipherKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CipherKey({:?}, ..)", self.cipher)
    }
}

impl CipherKey {
    /// The cipher this key is for.
    pub fn cipher(&self) -> CipherId {
        self.cipher
    }

    /// The key bytes (16 or 32). Never log them.
    pub fn bytes(&self) -> &[u8] {
        &self.key[..self.cipher.key_len()]
    }
}

/// The keys of one session, from the server's point of view.
#[derive(Clone)]
pub struct SessionKeys {
    /// Session.SigningKey: signs the final SESSION_SETUP response and, for
    /// a session's first channel, everything else (Channel.SigningKey).
    pub signing: Zeroizing<[u8; 16]>,
    /// Session.ApplicationKey: handed to RPC over named pipes.
    pub application: Zeroizing<[u8; 16]>,
    /// Session.EncryptionKey: encrypts server→client messages (3.x only).
    pub encrypt: Option<CipherKey>,
    /// Session.DecryptionKey: decrypts client→server messages (3.x only).
    pub decrypt: Option<CipherKey>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionKeys").field("encrypt", &self.encrypt).finish_non_exhaustive()
    }
}

fn kdf16(key: &[u8; 16], label: &[u8], context: &[u8]) -> Zeroizing<[u8; 16]> {
    let mut k = Zeroizing::new([0u8; 16]);
    smb3_kdf(key, label, context, &mut *k);
    k
}

fn cipher_key(cipher: CipherId, key: &[u8], label: &[u8], context: &[u8]) -> CipherKey {
    let mut k = Zeroizing::new([0u8; 32]);
    smb3_kdf(key, label, context, &mut k[..cipher.key_len()]);
    CipherKey { cipher, key: k }
}

impl SessionKeys {
    /// Derives a session's keys from the GSS session key (for NTLM the
    /// 16-byte ExportedSessionKey). `cipher` is the negotiated cipher, or
    /// `None` when encryption was not negotiated (ignored for 2.x).
    ///
    /// MS-SMB2 3.3.5.5.3: Session.SessionKey is the first 16 bytes of the
    /// GSS key, right-padded with zeros. For AES-256 ciphers (3.1.1) the
    /// cipher keys are 256 bits and derived from the *full* GSS key
    /// (Session.FullSessionKey, 3.2.5.3.1); for NTLM both are the same 16 bytes.
    pub fn derive(session_key: &[u8], kd: KeyDerivation<'_>, cipher: Option<CipherId>) -> Self {
        let mut sk = Zeroizing::new([0u8; 16]);
        let n = session_key.len().min(16);
        sk[..n].copy_from_slice(&session_key[..n]);
        match kd {
            KeyDerivation::Smb2 => Self { signing: sk.clone(), application: sk, encrypt: None, decrypt: None },
            KeyDerivation::Smb30 => Self {
                signing: kdf16(&sk, b"SMB2AESCMAC\0", b"SmbSign\0"),
                application: kdf16(&sk, b"SMB2APP\0", b"SmbRpc\0"),
                encrypt: cipher.map(|c| cipher_key(c, &*sk, b"SMB2AESCCM\0", b"ServerOut\0")),
                decrypt: cipher.map(|c| cipher_key(c, &*sk, b"SMB2AESCCM\0", b"ServerIn \0")),
            },
            KeyDerivation::Smb311(h) => {
                let ctx = h.value();
                let full = |c: CipherId| -> &[u8] {
                    if c.key_len() == 32 && session_key.len() > 16 { session_key } else { &*sk }
                };
                Self {
                    signing: kdf16(&sk, b"SMBSigningKey\0", ctx),
                    application: kdf16(&sk, b"SMBAppKey\0", ctx),
                    encrypt: cipher.map(|c| cipher_key(c, full(c), b"SMBS2CCipherKey\0", ctx)),
                    decrypt: cipher.map(|c| cipher_key(c, full(c), b"SMBC2SCipherKey\0", ctx)),
                }
            }
        }
    }

    /// A signer with this session's signing key.
    pub fn signer(&self, alg: SigningAlg) -> Signer {
        Signer::new(alg, &self.signing)
    }

    /// An encryptor for server→client messages, if encryption was negotiated.
    /// `nonce_seed` must be fresh random bytes (see [`Encryptor::new`]).
    pub fn encryptor(&self, nonce_seed: [u8; 16]) -> Option<Encryptor> {
        self.encrypt.as_ref().map(|k| Encryptor::new(k, nonce_seed))
    }

    /// A decryptor for client→server messages, if encryption was negotiated.
    pub fn decryptor(&self) -> Option<Decryptor> {
        self.decrypt.as_ref().map(Decryptor::new)
    }
}

#[cfg(test)]
impl CipherKey {
    /// Builds a key directly (tests of the AEAD layer).
    pub(crate) fn from_parts_for_test(cipher: CipherId, key: Zeroizing<[u8; 32]>) -> Self {
        Self { cipher, key }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::hex_bytes;

    /// "Encryption in SMB 3.0: a protocol perspective": the client encrypts
    /// with "ServerIn " (our decrypt key) and decrypts with "ServerOut".
    #[test]
    fn smb30_keys_match_published_vectors() {
        let sk = hex_bytes("B4546771B515F766A86735532DD6C4F0");
        let k = SessionKeys::derive(&sk, KeyDerivation::Smb30, Some(CipherId::Aes128Ccm));
        let dec = k.decrypt.as_ref().unwrap();
        assert_eq!(dec.bytes(), &hex_bytes("261B72350558F2E9DCF613070383EDBF")[..]);
        let enc = k.encrypt.as_ref().unwrap();
        assert_eq!(enc.bytes(), &hex_bytes("8FE2B57EC34D2DB5B1A9727F526BBDB5")[..]);
    }

    /// "SMB 3.1.1 encryption in Windows 10": C2S = A2F5…, S2C = 748C….
    #[test]
    fn smb311_keys_match_published_vectors() {
        let sk = hex_bytes("419FDDF34C1E001909D362AE7FB6AF79");
        let h = preauth(
            "B23F3CBFD69487D9832B79B1594A367CDD950909B774C3A4C412B4FCEA9EDDDBA7DB256BA2EA30E9
             77F11F9B113247578E0E915C6D2A513B8F2FCA5707DC8770",
        );
        let k = SessionKeys::derive(&sk, KeyDerivation::Smb311(&h), Some(CipherId::Aes128Gcm));
        let dec = k.decrypt.as_ref().unwrap();
        assert_eq!(dec.bytes(), &hex_bytes("A2F5E80E5D59103034F32E52F698E5EC")[..]);
        let enc = k.encrypt.as_ref().unwrap();
        assert_eq!(enc.bytes(), &hex_bytes("748C50868C90F302962A5C35F5F9A8BF")[..]);
        assert_eq!(format!("{k:?}"), "SessionKeys { encrypt: Some(CipherKey(Aes128Gcm, ..)), .. }");
    }

    #[test]
    fn smb2_signing_key_is_the_session_key_and_aes256_keys_are_32_bytes() {
        let sk = [7u8; 16];
        let k = SessionKeys::derive(&sk, KeyDerivation::Smb2, Some(CipherId::Aes128Gcm));
        assert_eq!(*k.signing, sk);
        assert!(k.encrypt.is_none());
        let h = PreauthHash::new();
        let k = SessionKeys::derive(&sk, KeyDerivation::Smb311(&h), Some(CipherId::Aes256Gcm));
        let e = k.encrypt.unwrap();
        assert_eq!(e.bytes().len(), 32);
        // L is part of the KDF input, so the 256-bit key does not start with the 128-bit one.
        let k128 = SessionKeys::derive(&sk, KeyDerivation::Smb311(&h), Some(CipherId::Aes128Gcm));
        assert_ne!(&e.bytes()[..16], k128.encrypt.unwrap().bytes());
    }

    pub(crate) fn preauth(hex: &str) -> PreauthHash {
        // Build a PreauthHash holding an arbitrary value, for vectors that
        // give the hash rather than the messages.
        let v = hex_bytes(hex);
        let mut h = PreauthHash::new();
        h.set_for_test(&v);
        h
    }
}
