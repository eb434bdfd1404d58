//! Per-request security checks and response protection: session lookup,
//! signature verification (MS-SMB2 3.3.5.2.4), decryption (3.3.5.2.1.1),
//! encryption enforcement (3.3.5.2.9, 3.3.5.2.11), signing and sealing of
//! responses (3.3.4.1.1, 3.3.4.1.4). The cryptography lives in `crate::crypto`.

use crate::crypto::{CipherId, Decryptor, Encryptor, KeyDerivation, PreauthHash, SessionKeys, Signer, SigningAlg};
use crate::engine::connection::ConnState;
use crate::engine::server::Server;
use crate::engine::session::SessionState;
use crate::engine::status::Error;
use crate::wire::NtStatus;
use crate::wire::header::{self, Command, Header, flags};
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
}

/// Which preauth integrity hash a response extends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PreauthTarget {
    /// Connection.PreauthIntegrityHashValue (NEGOTIATE).
    Connection,
    /// Session.PreauthIntegrityHashValue (SESSION_SETUP in progress).
    Session(u64),
}

/// Extends the hash named by `target` with a response message.
pub fn hash_response(conn: &mut ConnState, target: PreauthTarget, msg: &[u8]) {
    let slot = match target {
        PreauthTarget::Connection => &mut conn.crypto.preauth,
        PreauthTarget::Session(id) => match conn.sessions.get_mut(&id) {
            Some(s) => &mut s.preauth,
            None => return,
        },
    };
    if let Some(h) = slot.as_mut() {
        h.update(msg);
    }
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
    ) -> Self {
        let kd = match (dialect, preauth) {
            (Dialect::SMB311, Some(h)) => KeyDerivation::Smb311(h),
            (d, _) if d.is_smb3() => KeyDerivation::Smb30,
            _ => KeyDerivation::Smb2,
        };
        let keys = SessionKeys::derive(session_key, kd, cipher);
        let mut seed = [0u8; 16];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut seed);
        Self { signer: keys.signer(signing), encryptor: keys.encryptor(seed), decryptor: keys.decryptor() }
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
}

/// Decrypts a transform message (3.3.5.2.1.1). Any failure closes the
/// connection: a tampered or replayed encrypted message is never answered.
pub fn decrypt_request(conn: &ConnState, frame: &[u8]) -> Result<(u64, Vec<u8>), Error> {
    if conn.neg.dialect.is_none_or(|d| !d.is_smb3()) {
        return Err(Error::Disconnect("transform header before SMB 3.x"));
    }
    let sid = crate::wire::transform::session_id(frame).map_err(|_| Error::Disconnect("bad transform header"))?;
    let dec = conn
        .sessions
        .get(&sid)
        .and_then(|s| s.crypto.as_ref())
        .and_then(|c| c.decryptor.as_ref())
        .ok_or(Error::Disconnect("transform for a session without keys"))?;
    let plain = dec.open(frame).map_err(|_| Error::Disconnect("decryption failed"))?;
    if plain.get(..4) != Some(&header::PROTOCOL_ID[..]) {
        return Err(Error::Disconnect("decrypted message is not SMB2"));
    }
    Ok((sid, plain))
}

/// Encrypts a whole response chain for `session_id` (3.3.4.1.4).
pub fn encrypt_response(conn: &ConnState, session_id: u64, plain: Vec<u8>) -> Result<Vec<u8>, Error> {
    let enc = conn
        .sessions
        .get(&session_id)
        .and_then(|s| s.crypto.as_ref())
        .and_then(|c| c.encryptor.as_ref())
        .ok_or(Error::Disconnect("no encryption key for response"))?;
    enc.seal(session_id, &plain).map_err(|_| Error::Disconnect("encryption failed"))
}

/// Signs one response message in place (SIGNED flag, then the signature).
pub fn sign_response(conn: &ConnState, session_id: u64, msg: &mut [u8]) {
    let Some(c) = conn.sessions.get(&session_id).and_then(|s| s.crypto.as_ref()) else {
        return;
    };
    let f = u32::from_le_bytes([msg[16], msg[17], msg[18], msg[19]]) | flags::SIGNED;
    msg[header::offsets::FLAGS..header::offsets::FLAGS + 4].copy_from_slice(&f.to_le_bytes());
    if c.signer.sign(msg).is_err() {
        tracing::error!("signing a response failed");
    }
}

/// The session whose key signs this response, if it must be signed: every
/// response of a session that has keys (we require signed requests), except
/// interim STATUS_PENDING responses, which Windows leaves unsigned.
pub fn should_sign(conn: &ConnState, resp: &Header, status: NtStatus) -> Option<u64> {
    if status == NtStatus::PENDING && resp.is_async() {
        return None;
    }
    let s = conn.sessions.get(&resp.session_id)?;
    s.crypto.as_ref()?;
    Some(resp.session_id)
}

/// Commands that need a tree connect (3.3.5.2.11).
fn needs_tree(cmd: Command) -> bool {
    !matches!(
        cmd,
        Command::NEGOTIATE
            | Command::SESSION_SETUP
            | Command::LOGOFF
            | Command::TREE_CONNECT
            | Command::ECHO
            | Command::CANCEL
    )
}

/// Session, signature, encryption and tree checks for one request, in the
/// order of MS-SMB2 3.3.5.2.
pub fn check_request(
    conn: &ConnState,
    server: &Server,
    hdr: &Header,
    msg: &[u8],
    encrypted: Option<u64>,
) -> Result<(), Error> {
    if hdr.flags & flags::SERVER_TO_REDIR != 0 {
        // A reflected response is never a request.
        return Err(Error::Disconnect("request with the response flag"));
    }
    if conn.neg.dialect.is_none() {
        return if hdr.command == Command::NEGOTIATE {
            Ok(())
        } else {
            Err(Error::Disconnect("request before NEGOTIATE"))
        };
    }
    match hdr.command {
        Command::NEGOTIATE => return Ok(()),
        Command::SESSION_SETUP if hdr.session_id == 0 => return Ok(()),
        Command::ECHO | Command::CANCEL if hdr.session_id == 0 => return Ok(()),
        _ => {}
    }
    let session = conn.sessions.get(&hdr.session_id).ok_or(Error::Status(NtStatus::USER_SESSION_DELETED))?;
    if let Some(sid) = encrypted
        && sid != hdr.session_id
    {
        return Err(Error::Disconnect("transform session id mismatch"));
    }
    match session.state {
        SessionState::Expired => return Err(NtStatus::NETWORK_SESSION_EXPIRED.into()),
        SessionState::InProgress(_) => {
            return if hdr.command == Command::SESSION_SETUP {
                Ok(())
            } else {
                Err(NtStatus::USER_SESSION_DELETED.into())
            };
        }
        SessionState::Valid => {}
    }
    if encrypted.is_none() {
        verify_signature(session, hdr, msg, server)?;
        if session.encrypt_data && hdr.command != Command::SESSION_SETUP {
            // 3.3.5.2.9: Session.EncryptData and an unencrypted request.
            return Err(NtStatus::ACCESS_DENIED.into());
        }
    }
    if needs_tree(hdr.command) {
        let tree = session.trees.get(&hdr.tree_id).ok_or(Error::Status(NtStatus::NETWORK_NAME_DELETED))?;
        if tree.encrypt_data && encrypted.is_none() {
            return Err(NtStatus::ACCESS_DENIED.into());
        }
    }
    Ok(())
}

/// 3.3.5.2.4: a signed request must verify; an unsigned one is refused
/// when the session requires signing.
fn verify_signature(
    session: &crate::engine::session::Session,
    hdr: &Header,
    msg: &[u8],
    _server: &Server,
) -> Result<(), Error> {
    let Some(c) = &session.crypto else {
        return Ok(());
    };
    if hdr.is_signed() {
        if c.signer.verify(msg).is_err() {
            tracing::warn!(session = session.id, cmd = ?hdr.command, "request signature does not verify");
            return Err(NtStatus::ACCESS_DENIED.into());
        }
        return Ok(());
    }
    if session.signing_required && hdr.command != Command::SESSION_SETUP {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    Ok(())
}
