//! Teardown, below the handlers: what goes when an open, a tree, a session
//! or a connection ends, and the durable opens whose timeout passed
//! (MS-SMB2 3.3.2.1 oplock break acknowledgment and 3.3.2.2 durable open
//! scavenger timers, 3.3.5.6 LOGOFF, 3.3.5.8 TREE_DISCONNECT, 3.3.7.1
//! connection loss). Handlers (CLOSE, LOGOFF, TREE_DISCONNECT,
//! SESSION_SETUP's reauthentication), the connection and
//! `engine::revalidate` call in here; nothing here calls a handler.

use std::net::SocketAddr;
use std::time::SystemTime;

use crate::audit::EventKind;
use crate::engine::context::ConnState;
use crate::engine::fsa::OpenId;
use crate::engine::open::Open;
use crate::engine::server::Server;

pub mod close;

pub use close::{close_detached, close_session_opens, close_tree_opens};

/// Closes every open and session of a connection that is going away.
pub fn close_all(server: &Server, conn: &mut ConnState, now: SystemTime, peer: SocketAddr) {
    let ids: Vec<u64> = conn.sessions.keys().copied().collect();
    for sid in ids {
        close_session_opens(server, conn, sid, now, peer);
        if let Some(s) = conn.sessions.get(&sid)
            && s.is_valid()
        {
            crate::engine::audit::record_session(server, s, peer, now, EventKind::Disconnect);
        }
    }
    conn.opens.clear();
    conn.sessions.clear();
}

/// Periodic work (from every connection's tick; cheap when idle): break
/// acknowledgment timers, then durable opens whose timeout passed are closed.
pub fn tick(server: &Server, now: SystemTime) {
    let instant = server.files.instant(now);
    let expired = server.files.with(|t| {
        t.run_timers(instant);
        let overdue = t.durable.overdue(instant);
        t.retry(overdue);
        let mut v = t.durable.expired(instant);
        v.extend(t.durable.take_reaped());
        v
    });
    for d in expired {
        close_detached(server, d.open, now);
    }
}

/// The connection is going away: its durable opens leave it for the
/// server-wide table, without an owner, until they are reconnected or time
/// out (MS-SMB2 3.3.7.1). The others stay to be closed.
pub fn detach(server: &Server, state: &mut ConnState, now: SystemTime) {
    let ids: Vec<u64> = state.opens.keys().copied().collect();
    for id in ids {
        let Some(open) = state.opens.remove(&id) else { continue };
        if let Some(open) = try_detach(server, open, now) {
            state.opens.insert(id, open);
        }
    }
}

/// Preserves one open if it is durable (its session or connection is
/// going away: LOGOFF and TREE_DISCONNECT keep durable opens too, as
/// Samba's SHUTDOWN_CLOSE does); gives it back otherwise.
pub fn try_detach(server: &Server, open: Open, now: SystemTime) -> Option<Open> {
    let instant = server.files.instant(now);
    let open_id = OpenId(open.file_id.persistent);
    let key = open.file().map(|f| f.key.clone());
    server.files.with(|t| {
        if t.durable.get(open_id).is_none() {
            return Some(open);
        }
        let breaking = key.as_ref().and_then(|k| t.get(k)).is_some_and(|s| s.cache.is_breaking(open_id));
        let back = t.durable.disconnect(open, instant, breaking);
        if back.is_none() {
            t.clear_owner(open_id);
            // Reconnects that arrived first can have it now.
            let waits = t.durable.take_waits(open_id);
            t.retry(waits);
        }
        back
    })
}
