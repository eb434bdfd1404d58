//! Session binding requests (SMB2_SESSION_FLAG_BINDING, MS-SMB2 3.3.5.5 and
//! 3.3.5.5.2). smbvault does not offer multichannel (no
//! SMB2_GLOBAL_CAP_MULTI_CHANNEL), so no binding ever succeeds; but a bind
//! names a session of *another* connection, and the answer a client gets
//! depends on that session: it is looked up server-wide here, the request's
//! signature checked with its key, and the refusal signed with it, as
//! Windows and Samba do (smbtorture `smb2.session.bind_negative_*`,
//! Samba bug 14512). A bind that is not signed with the session's key is
//! answered as if the session did not exist.

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use crate::crypto::{CipherId, SigningAlg};
use crate::engine::crypto_state::SessionCrypto;
use crate::wire::NtStatus;
use crate::wire::negotiate::Dialect;

/// What a bind request is checked against: a valid session's keys and the
/// parameters its connection negotiated (Session.Connection.Dialect,
/// CipherId, SigningAlgorithmId).
#[derive(Clone)]
pub struct BindTarget {
    /// The session's keys; gone when the session is.
    pub crypto: Weak<SessionCrypto>,
    /// The dialect its connection negotiated.
    pub dialect: Dialect,
}

/// Every session that has keys, server-wide (MS-SMB2 3.3.1.5
/// GlobalSessionTable, for binding only). Entries of dropped sessions are
/// pruned as new ones come, so the table is bounded by live sessions.
#[derive(Default)]
pub struct Registry {
    map: parking_lot::Mutex<HashMap<u64, BindTarget>>,
}

impl Registry {
    /// Records a session whose keys were just derived.
    pub fn register(&self, session_id: u64, crypto: &Arc<SessionCrypto>, dialect: Dialect) {
        let mut map = self.map.lock();
        if map.len() >= 64 && map.len().is_power_of_two() {
            map.retain(|_, t| t.crypto.strong_count() > 0);
        }
        map.insert(session_id, BindTarget { crypto: Arc::downgrade(crypto), dialect });
    }

    /// The live session with this id, if any.
    pub fn lookup(&self, session_id: u64) -> Option<(Arc<SessionCrypto>, Dialect)> {
        let mut map = self.map.lock();
        let t = map.get(&session_id)?;
        match t.crypto.upgrade() {
            Some(c) => Some((c, t.dialect)),
            None => {
                map.remove(&session_id);
                None
            }
        }
    }
}

/// What the binding connection negotiated.
pub struct Channel {
    /// Connection.Dialect.
    pub dialect: Dialect,
    /// The signing algorithm a session set up on it would use.
    pub signing: SigningAlg,
    /// The cipher a session set up on it would use.
    pub cipher: Option<CipherId>,
}

/// The status a bind of `channel` to `session` gets, once its signature
/// verified with the session's key, in the order of the checks of 3.3.5.5.2
/// as Windows and Samba apply them (signing algorithm, dialect family,
/// dialect, cipher). Every path ends in a refusal: with nothing wrong,
/// STATUS_REQUEST_NOT_ACCEPTED, the answer for a server without
/// multichannel (3.3.5.5).
pub fn refusal(session: &SessionCrypto, session_dialect: Dialect, channel: &Channel) -> NtStatus {
    let session_alg = session.signing_alg();
    if session_alg == SigningAlg::AesGmac && channel.signing != session_alg {
        return NtStatus::REQUEST_OUT_OF_SEQUENCE;
    }
    if channel.signing == SigningAlg::AesGmac && session_alg != channel.signing {
        return NtStatus::NOT_SUPPORTED;
    }
    if !channel.dialect.is_smb3() {
        return NtStatus::REQUEST_NOT_ACCEPTED;
    }
    if session_dialect != channel.dialect || session.cipher() != channel.cipher {
        return NtStatus::INVALID_PARAMETER;
    }
    NtStatus::REQUEST_NOT_ACCEPTED
}
