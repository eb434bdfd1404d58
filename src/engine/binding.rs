//! Session binding requests (SMB2_SESSION_FLAG_BINDING, MS-SMB2 3.3.5.5 and
//! 3.3.5.5.2). A bind names a session of *another* connection, and the
//! answer a client gets depends on that session: it is looked up
//! server-wide here, the request's signature checked with its key, and a
//! refusal signed with it, as Windows and Samba do (smbtorture
//! `smb2.session.bind_negative_*`, Samba bug 14512). A bind that is not
//! signed with the session's key is answered as if the session did not
//! exist. With multichannel on (`[server] multichannel`), a bind that
//! passes the checks runs an authentication of the session's own user,
//! and the connection becomes a channel of the session's group
//! (`engine::group`).

use std::collections::HashMap;
use std::sync::{Arc, Weak};

use crate::crypto::{CipherId, PreauthHash, SigningAlg};
use crate::engine::crypto_state::SessionCrypto;
use crate::types::{OrgId, UserId};
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
    /// The session's group (an `engine::group::Group`, where a successful
    /// bind joins; type-erased so that the server's table does not import
    /// the group, which imports what imports the server).
    pub group: Weak<dyn std::any::Any + Send + Sync>,
    /// The session's user: only the same user may bind (3.3.5.5.3).
    pub owner: (OrgId, UserId),
}

/// A bind exchange under way on a connection.
pub struct InProgress {
    /// The session being bound.
    pub session_id: u64,
    /// The authentication of the bind.
    pub ntlm: crate::auth::NtlmServer,
    /// The exchange's preauth integrity hash (3.1.1), from the binding
    /// connection's: the channel's signing key is derived from it.
    pub preauth: Option<PreauthHash>,
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
    pub fn register(
        &self,
        session_id: u64,
        crypto: &Arc<SessionCrypto>,
        dialect: Dialect,
        group: Weak<dyn std::any::Any + Send + Sync>,
        owner: (OrgId, UserId),
    ) {
        let mut map = self.map.lock();
        if map.len() >= 64 && map.len().is_power_of_two() {
            map.retain(|_, t| t.crypto.strong_count() > 0);
        }
        map.insert(session_id, BindTarget { crypto: Arc::downgrade(crypto), dialect, group, owner });
    }

    /// The sessions registered with group `from` belong to `into` now (the
    /// two merged, `engine::group`).
    pub fn regroup(&self, from: &Weak<dyn std::any::Any + Send + Sync>, into: &Weak<dyn std::any::Any + Send + Sync>) {
        let mut map = self.map.lock();
        for t in map.values_mut() {
            if Weak::ptr_eq(&t.group, from) {
                t.group = into.clone();
            }
        }
    }

    /// The live session with this id, if any, and what it was registered with.
    pub fn lookup(&self, session_id: u64) -> Option<(Arc<SessionCrypto>, BindTarget)> {
        let mut map = self.map.lock();
        let t = map.get(&session_id)?;
        match t.crypto.upgrade() {
            Some(c) => Some((c, t.clone())),
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

/// The refusal a bind of `channel` to `session` gets, once its signature
/// verified with the session's key, in the order of the checks of 3.3.5.5.2
/// as Windows and Samba apply them (signing algorithm, dialect family,
/// dialect, cipher); None if it may go on. Without multichannel the caller
/// refuses with STATUS_REQUEST_NOT_ACCEPTED anyway (3.3.5.5).
pub fn refusal(session: &SessionCrypto, session_dialect: Dialect, channel: &Channel) -> Option<NtStatus> {
    let s = check(session, session_dialect, channel);
    (s != NtStatus::SUCCESS).then_some(s)
}

fn check(session: &SessionCrypto, session_dialect: Dialect, channel: &Channel) -> NtStatus {
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
    NtStatus::SUCCESS
}
