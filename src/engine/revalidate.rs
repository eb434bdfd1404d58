//! Immediate effect of account changes (issue: organizations and accounts):
//! a disabled or deleted user, a suspended organization, a removed share or
//! a revoked permission takes effect on live sessions within about a
//! second, not at the next logon. A lockout does not end sessions: it only
//! refuses new logons (Windows behaves the same), so a password guesser
//! cannot disconnect the account's owner.

use std::net::SocketAddr;
use std::time::SystemTime;

use crate::audit::EventKind;
use crate::engine::audit::record_session;
use crate::engine::context::ConnState;
use crate::engine::server::Server;
use crate::engine::services::Access;
use crate::engine::session::{SessionState, TreeKind};
use crate::engine::teardown as close;

/// Re-checks every valid session and tree of a connection.
pub fn connection(server: &Server, conn: &mut ConnState, now: SystemTime, peer: SocketAddr) {
    let ids: Vec<u64> = conn.sessions.iter().filter(|(_, s)| s.is_valid()).map(|(id, _)| *id).collect();
    for sid in ids {
        session(server, conn, sid, now, peer);
    }
}

/// Re-checks one valid session and its trees against the accounts as they
/// are now (also after a re-authentication, MS-SMB2 3.3.5.5.3).
pub fn session(server: &Server, conn: &mut ConnState, sid: u64, now: SystemTime, peer: SocketAddr) {
    let Some(p) = conn.sessions.get(&sid).filter(|s| s.is_valid()).and_then(|s| s.principal.clone()) else {
        return;
    };
    if !server.directory.account_active(p.user_id, now) || !trees(server, conn, sid, p.user_id, now, peer) {
        expire(server, conn, sid, now, peer);
    }
}

/// Cuts a session: its opens close, its trees go, and every further
/// request gets STATUS_NETWORK_SESSION_EXPIRED.
fn expire(server: &Server, conn: &mut ConnState, sid: u64, now: SystemTime, peer: SocketAddr) {
    close::close_session_opens(server, conn, sid, now, peer);
    if let Some(s) = conn.sessions.get_mut(&sid) {
        s.trees.clear();
        s.state = SessionState::Expired;
        tracing::info!(session = sid, "session expired: the account can no longer log on");
        record_session(server, s, peer, now, EventKind::SessionExpired);
    }
}

/// Drops trees whose share is gone or no longer accessible, and closes the
/// opens of trees whose access level went down (they were granted under
/// the old one). A raised level keeps the opens: they ask for less than
/// the tree now allows. Returns false, changing nothing, when the account
/// itself went inactive meanwhile (an administrator's change committed
/// between the account check and the share checks): the session expires
/// then, rather than its trees vanishing one tick before it does.
fn trees(
    server: &Server,
    conn: &mut ConnState,
    sid: u64,
    user: crate::types::UserId,
    now: SystemTime,
    peer: SocketAddr,
) -> bool {
    let Some(s) = conn.sessions.get(&sid) else { return true };
    let mut changed = Vec::new();
    for (tid, t) in &s.trees {
        let TreeKind::Disk(share) = &t.kind else { continue };
        let Some(found) = server.directory.find_share_now(share.org_id, &share.name) else {
            continue; // unreadable just now: unchanged until the next tick
        };
        let level = match found {
            Some(cur) if cur.id == share.id => match server.directory.access_now(&cur, user) {
                Some(level) => level,
                None => continue, // unreadable just now: unchanged until the next tick
            },
            _ => Access::None,
        };
        if level != t.access {
            changed.push((*tid, level, level < t.access));
        }
    }
    if changed.iter().any(|(_, level, _)| *level == Access::None) && !server.directory.account_active(user, now) {
        return false;
    }
    for (tid, level, lowered) in changed {
        if lowered {
            close::close_tree_opens(server, conn, sid, tid, now, peer);
        }
        let Some(s) = conn.sessions.get_mut(&sid) else { return true };
        if level == Access::None {
            if let Some(t) = s.trees.remove(&tid) {
                tracing::info!(session = sid, "tree disconnected: access revoked");
                record_session(server, s, peer, now, EventKind::TreeDisconnect { share: t.share_name().to_string() });
            }
        } else if let Some(t) = s.trees.get_mut(&tid) {
            t.access = level;
        }
    }
    true
}
