//! Per-request security checks and response protection: session lookup,
//! signature verification (MS-SMB2 3.3.5.2.4), decryption (3.3.5.2.1.1),
//! encryption enforcement (3.3.5.2.9, 3.3.5.2.11), signing and sealing of
//! responses (3.3.4.1.1, 3.3.4.1.4). The cryptography lives in `crate::crypto`.

use crate::engine::context::{ConnState, Outgoing};
use crate::engine::crypto_state::{PreauthTarget, SessionCrypto};
use crate::engine::offload::ProtectJob;
use crate::engine::server::Server;
use crate::engine::session::SessionState;
use crate::engine::status::Error;
use crate::wire::NtStatus;
use crate::wire::header::{self, Command, Header, flags};
use crate::wire::transform::TRANSFORM_HEADER_LEN;

/// Extends the hash named by `target` with a response message.
pub fn hash_response(conn: &mut ConnState, target: PreauthTarget, msg: &[u8]) {
    let slot = match target {
        PreauthTarget::Connection => &mut conn.crypto.preauth,
        PreauthTarget::Session(id) => match conn.sessions.get_mut(&id) {
            Some(s) => &mut s.preauth,
            None => return,
        },
        PreauthTarget::Binding => match conn.binding.as_mut() {
            Some(b) => &mut b.preauth,
            None => return,
        },
    };
    if let Some(h) = slot.as_mut() {
        h.update(msg);
    }
}

/// Decrypts a transform message in place (3.3.5.2.1.1) and returns the
/// session id of its header and the plaintext, which is `frame[52..]`: an
/// 8 MiB WRITE is neither copied nor moved. Any failure closes the
/// connection: a tampered or replayed encrypted message is never answered.
/// The connection's reader usually did this already ([`accept_opened`]).
pub fn decrypt_request<'a>(conn: &ConnState, frame: &'a mut [u8]) -> Result<(u64, &'a mut [u8]), Error> {
    // Layout, OriginalMessageSize (exactly the rest of the frame) and Flags
    // are checked by `open_in_place`; a plaintext shorter than a header fails below.
    let sid = crate::wire::transform::session_id(frame).map_err(|_| Error::Disconnect("bad transform header"))?;
    let crypto = conn
        .sessions
        .get(&sid)
        .filter(|_| conn.on_channel(sid))
        .and_then(|s| s.crypto.clone())
        .filter(|c| c.decryptor().is_some())
        .ok_or(Error::Disconnect("transform for a session without keys"))?;
    if let Some(Err(e)) = crypto.decryptor().map(|d| d.open_in_place(frame).map(|_| ())) {
        return Err(undecryptable(sid, &e));
    }
    accept_opened(conn, sid, &crypto, frame).map(|plain| (sid, plain))
}

/// A transform message that does not decrypt: forged, corrupted or
/// replayed, or a key mix-up. Worth a warning; the connection closes.
pub fn undecryptable(session_id: u64, e: &dyn std::fmt::Display) -> Error {
    tracing::warn!(session = session_id, error = %e, "encrypted request does not decrypt: closing the connection");
    Error::Disconnect("decryption failed")
}

/// Accepts a transform message decrypted with `crypto`, by
/// [`decrypt_request`] or by the connection's reader
/// ([`crate::engine::offload::Inbound::Opened`]), checking it against the
/// session as it is when the engine gets to the frame: a LOGOFF or expiry
/// in between refuses it as if it had never been opened. Returns the plaintext.
pub fn accept_opened<'a>(
    conn: &ConnState,
    session_id: u64,
    crypto: &std::sync::Arc<SessionCrypto>,
    frame: &'a mut [u8],
) -> Result<&'a mut [u8], Error> {
    if conn.neg.dialect.is_none_or(|d| !d.is_smb3()) {
        return Err(Error::Disconnect("transform header before SMB 3.x"));
    }
    let current =
        conn.sessions.get(&session_id).filter(|_| conn.on_channel(session_id)).and_then(|s| s.crypto.as_ref());
    if !current.is_some_and(|c| std::sync::Arc::ptr_eq(c, crypto)) {
        return Err(Error::Disconnect("transform for a session without keys"));
    }
    let plain = frame.get_mut(TRANSFORM_HEADER_LEN..).ok_or(Error::Disconnect("bad transform header"))?;
    check_plaintext(plain)?;
    Ok(plain)
}

/// The plaintext of a transform message must be an SMB2 message (3.3.5.2.1.1).
fn check_plaintext(plain: &[u8]) -> Result<(), Error> {
    if plain.len() < crate::wire::HEADER_LEN || header::protocol_id(plain) != Some(header::PROTOCOL_ID) {
        return Err(Error::Disconnect("decrypted message is not SMB2"));
    }
    Ok(())
}

/// The job that encrypts a whole response chain for `session_id`
/// (3.3.4.1.4); it runs in the connection's writer.
pub fn seal_response(conn: &ConnState, session_id: u64, chain: Vec<u8>) -> Result<ProtectJob, Error> {
    let crypto = conn
        .sessions
        .get(&session_id)
        .and_then(|s| s.crypto.as_ref())
        .filter(|c| c.encryptor().is_some())
        .ok_or(Error::Disconnect("no encryption key for response"))?;
    Ok(ProtectJob::seal(chain, session_id, crypto.clone()))
}

/// The job that signs the messages of `chain` at `ranges`, each with its
/// session's key (SIGNED flag, then the signature; 3.3.4.1.1). A session
/// without keys leaves its message unsigned.
pub fn sign_responses(conn: &ConnState, chain: Vec<u8>, ranges: &[(usize, usize, u64)]) -> ProtectJob {
    let keyed = ranges
        .iter()
        .filter_map(|&(s, e, sid)| {
            let c = signing_key(conn, sid)?;
            Some((s..e, c.clone()))
        })
        .collect();
    ProtectJob::sign(chain, keyed)
}

/// The session whose key signs this response, if it must be signed
/// (3.3.4.1.1): every response of a session that has keys (we require
/// signed requests, so every request of such a session was signed or
/// encrypted), including errors, the final SESSION_SETUP response and
/// LOGOFF; except interim STATUS_PENDING responses (3.3.4.2: "SHOULD NOT
/// sign"). Responses that go out encrypted are never signed: the
/// connection seals instead of signing.
pub fn should_sign(conn: &ConnState, resp: &Header, status: NtStatus) -> Option<u64> {
    if status == NtStatus::PENDING && resp.is_async() {
        return None;
    }
    signing_key(conn, resp.session_id)?;
    Some(resp.session_id)
}

/// The key that signs this connection's messages of session `sid`: the
/// channel's key if the session was bound here (3.3.4.1.1: Channel.SigningKey),
/// else the session's own, else the key of another connection's session
/// named by a bind request.
pub fn signing_key(conn: &ConnState, sid: u64) -> Option<&std::sync::Arc<SessionCrypto>> {
    if let Some(c) = conn.crypto.channel_keys.get(&sid) {
        return Some(c);
    }
    match conn.sessions.get(&sid) {
        Some(s) if conn.on_channel(sid) => s.crypto.as_ref(),
        _ => bind_key(conn, sid),
    }
}

/// The keys of another connection's session named by a bind request.
fn bind_key(conn: &ConnState, sid: u64) -> Option<&std::sync::Arc<SessionCrypto>> {
    conn.crypto.bind_key.as_ref().filter(|(id, _)| *id == sid).map(|(_, c)| c)
}

/// The session whose keys must encrypt the response to an *unencrypted*
/// request (3.3.4.1.4; responses to encrypted requests are always
/// encrypted): Session.EncryptData, except for NEGOTIATE and SESSION_SETUP;
/// or the tree's Share.EncryptData, except for TREE_CONNECT too. Such a
/// request was refused with STATUS_ACCESS_DENIED by [`check_request`], and
/// the refusal itself goes out encrypted.
pub fn response_encryption(conn: &ConnState, resp: &Header) -> Option<u64> {
    if matches!(resp.command, Command::NEGOTIATE | Command::SESSION_SETUP) {
        return None;
    }
    let s = conn.sessions.get(&resp.session_id)?;
    if !s.crypto.as_ref().is_some_and(|c| c.can_encrypt()) {
        return None;
    }
    let tree = || !resp.is_async() && s.trees.get(&resp.tree_id).is_some_and(|t| t.encrypt_data);
    (s.encrypt_data || resp.command != Command::TREE_CONNECT && tree()).then_some(resp.session_id)
}

/// Protects one message the connection sends outside the answer to a
/// request chain (an interim or final asynchronous response, an oplock or
/// lease break): sealed with `encrypt`'s keys if given, else signed with
/// `sign`'s, else sent as it is.
pub fn protect(conn: &ConnState, msg: Vec<u8>, encrypt: Option<u64>, sign: Option<u64>) -> Result<Outgoing, Error> {
    if let Some(sid) = encrypt {
        return seal_response(conn, sid, msg).map(Outgoing::Protect);
    }
    if let Some(sid) = sign {
        let len = msg.len();
        return Ok(Outgoing::Protect(sign_responses(conn, msg, &[(0, len, sid)])));
    }
    Ok(Outgoing::Frame(msg))
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
/// order of MS-SMB2 3.3.5.2. `encrypted` is the SessionId of the transform
/// header the request arrived in.
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
    if hdr.command == Command::NEGOTIATE && hdr.is_signed() {
        // 3.3.5.2.4: a NEGOTIATE cannot be signed.
        return Err(NtStatus::INVALID_PARAMETER.into());
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
        // A bind names a session of another connection: the handler looks
        // it up server-wide and checks the signature with its key
        // (`engine::binding`).
        Command::SESSION_SETUP if !conn.on_channel(hdr.session_id) && is_bind(msg) => return Ok(()),
        Command::ECHO | Command::CANCEL if hdr.session_id == 0 => return Ok(()),
        _ => {}
    }
    // A session of the group that is not set up or bound on this channel
    // does not exist here (3.3.5.2.9; smbtorture `smb2.session.bind2`).
    let session = match conn.sessions.get(&hdr.session_id) {
        Some(s) if conn.on_channel(hdr.session_id) => s,
        _ => return Err(NtStatus::USER_SESSION_DELETED.into()),
    };
    if encrypted.is_some_and(|sid| sid != hdr.session_id) {
        // A message of a decrypted chain names another existing session
        // than the transform header (3.3.5.2.1.1 only looks the transform's
        // session up). Refused like Samba; an unknown one got
        // USER_SESSION_DELETED above (smbtorture smb2.compound.invalid2).
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    if encrypted.is_none() {
        // 3.3.5.2.4, skipped for requests that decrypted (their AEAD tag
        // already proved integrity).
        verify_signature(session, conn.crypto.channel_keys.get(&hdr.session_id), hdr, msg, server)?;
    }
    // 3.3.5.2.9: expired and half-authenticated sessions may still log off
    // and close (LOCK too, which we do not implement).
    let lenient = matches!(hdr.command, Command::LOGOFF | Command::CLOSE | Command::LOCK);
    match session.state {
        SessionState::Expired if !lenient => return Err(NtStatus::NETWORK_SESSION_EXPIRED.into()),
        SessionState::InProgress(_) if hdr.command != Command::SESSION_SETUP && !lenient => {
            return Err(NtStatus::USER_SESSION_DELETED.into());
        }
        _ => {}
    }
    let first_setup = hdr.command == Command::SESSION_SETUP && session.crypto.is_none();
    if encrypted.is_none() && session.encrypt_data && !first_setup {
        // 3.3.5.2.9: Session.EncryptData and an unencrypted request; a
        // re-authentication's legs too (as Samba refuses them), so that an
        // on-path party cannot run one on the session.
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    if needs_tree(hdr.command) {
        // 3.3.5.2.11: the tree exists, and Share.EncryptData wants encryption.
        let tree = session.trees.get(&hdr.tree_id).ok_or(Error::Status(NtStatus::NETWORK_NAME_DELETED))?;
        if tree.encrypt_data && encrypted.is_none() {
            return Err(NtStatus::ACCESS_DENIED.into());
        }
    }
    Ok(())
}

/// True for a SESSION_SETUP request with SMB2_SESSION_FLAG_BINDING.
fn is_bind(msg: &[u8]) -> bool {
    crate::wire::session_setup::SessionSetupRequest::decode(msg)
        .is_ok_and(|r| r.flags & crate::wire::session_setup::FLAG_BINDING != 0)
}

/// 3.3.5.2.4: a signed request must verify, else STATUS_ACCESS_DENIED; an
/// unsigned one is refused when the session requires signing (every
/// session here: Session.SigningRequired). The legs of a first
/// SESSION_SETUP come before the keys exist; a re-authentication's legs
/// must be signed whatever the signing policy.
fn verify_signature(
    session: &crate::engine::session::Session,
    channel_key: Option<&std::sync::Arc<SessionCrypto>>,
    hdr: &Header,
    msg: &[u8],
    _server: &Server,
) -> Result<(), Error> {
    // A bound channel's requests are signed with Channel.SigningKey (3.3.5.2.4).
    let Some(c) = channel_key.or(session.crypto.as_ref()) else {
        return Ok(());
    };
    if hdr.is_signed() {
        if c.signer().verify(msg).is_err() {
            tracing::warn!(session = session.id, cmd = ?hdr.command, "request signature does not verify");
            return Err(NtStatus::ACCESS_DENIED.into());
        }
        return Ok(());
    }
    // A session with keys is re-authenticated only by legs signed with them
    // (or encrypted): an unsigned one could come from anybody on the path,
    // and is refused before it touches the session.
    if session.signing_required || hdr.command == Command::SESSION_SETUP {
        tracing::warn!(session = session.id, cmd = ?hdr.command, "unsigned request on a signing session");
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    Ok(())
}
