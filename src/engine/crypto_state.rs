//! The cryptographic state of a connection and of its sessions (MS-SMB2
//! 3.3.1.7 Connection.PreauthIntegrityHashValue, CipherId and
//! SigningAlgorithmId; 3.3.1.8 Session.SigningKey, EncryptionKey and
//! DecryptionKey). Data only: the checks and the protection of responses
//! that use it are in `engine::security`, the algorithms in `crate::crypto`.

use crate::crypto::{CipherId, Decryptor, Encryptor, KeyDerivation, PreauthHash, SessionKeys, Signer, SigningAlg};
use crate::wire::negotiate::Dialect;

/// Connection-level crypto state: the preauth hash and negotiated algorithms.
#[derive(Default)]
pub struct ConnCrypto {
    /// Connection.PreauthIntegrityHashValue (3.1.1).
    pub preauth: Option<PreauthHash>,
    /// Connection.CipherId (0: none).
    pub cipher: u16,
    /// Connection.SigningAlgorithmId (3.1.1 signing context), if negotiated.
    pub signing_alg: Option<u16>,
    /// The session id SESSION_SETUP just created or used (for its response header).
    pub last_session_id: Option<u64>,
    /// Chain the response being built into this preauth hash (3.1.1).
    pub hash_response: Option<PreauthTarget>,
    /// The keys of another connection's session that sign the refusal of a
    /// bind request naming it (`engine::binding`); for the current chain only.
    pub bind_key: Option<(u64, std::sync::Arc<SessionCrypto>)>,
    /// Channel.SigningKey of the sessions bound to this connection
    /// (MS-SMB2 3.3.5.5.3 for a binding): requests of those sessions here
    /// are verified, and responses signed, with it rather than the
    /// session's key; encryption keys stay the session's.
    pub channel_keys: std::collections::HashMap<u64, std::sync::Arc<SessionCrypto>>,
}

/// Which preauth integrity hash a response extends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreauthTarget {
    /// Connection.PreauthIntegrityHashValue (NEGOTIATE).
    Connection,
    /// Session.PreauthIntegrityHashValue (SESSION_SETUP in progress).
    Session(u64),
    /// The hash of the bind exchange in progress on this connection
    /// (Channel.PreauthIntegrityHashValue, 3.3.5.5.2).
    Binding,
}

/// A valid session's keys: the signer and, for SMB 3.x with a cipher, the
/// two directions of the transform encryption.
pub struct SessionCrypto {
    signer: Signer,
    encryptor: Option<Encryptor>,
    decryptor: Option<Decryptor>,
}

impl SessionCrypto {
    /// Derives the session's keys (MS-SMB2 3.3.5.5.3) for the negotiated dialect.
    pub fn derive(
        dialect: Dialect,
        session_key: &[u8],
        preauth: Option<&PreauthHash>,
        cipher: Option<CipherId>,
        signing: SigningAlg,
        nonce_seed: [u8; 16],
    ) -> Self {
        let kd = match (dialect, preauth) {
            (Dialect::SMB311, Some(h)) => KeyDerivation::Smb311(h),
            (d, _) if d.is_smb3() => KeyDerivation::Smb30,
            _ => KeyDerivation::Smb2,
        };
        let keys = SessionKeys::derive(session_key, kd, cipher);
        Self { signer: keys.signer(signing), encryptor: keys.encryptor(nonce_seed), decryptor: keys.decryptor() }
    }

    /// True if the session has encryption keys (SMB 3.x with a cipher).
    pub fn can_encrypt(&self) -> bool {
        self.encryptor.is_some() && self.decryptor.is_some()
    }

    /// The signing algorithm in use.
    pub fn signing_alg(&self) -> SigningAlg {
        self.signer.alg()
    }

    /// The cipher in use, if any.
    pub fn cipher(&self) -> Option<CipherId> {
        self.encryptor.as_ref().map(Encryptor::cipher)
    }

    /// Session.Signing key.
    pub(crate) fn signer(&self) -> &Signer {
        &self.signer
    }

    /// Session.EncryptionKey (server to client).
    pub(crate) fn encryptor(&self) -> Option<&Encryptor> {
        self.encryptor.as_ref()
    }

    /// Session.DecryptionKey (client to server).
    pub(crate) fn decryptor(&self) -> Option<&Decryptor> {
        self.decryptor.as_ref()
    }
}
