//! LOGOFF (MS-SMB2 3.3.5.6) and connection teardown.

use std::net::SocketAddr;
use std::time::SystemTime;

use crate::audit::{EventKind, EventResult};
use crate::engine::connection::{ConnState, Ctx, Reply};
use crate::engine::server::Server;
use crate::engine::session::SessionState;
use crate::engine::status::Result;
use crate::wire::logoff::LogoffResponse;

/// LOGOFF: closes the session's opens and trees; the session itself is
/// removed after its (signed) response is sent.
pub fn logoff(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let sid = ctx.hdr.session_id;
    super::close::close_session_opens(ctx.server, ctx.conn, sid, ctx.now, ctx.peer);
    ctx.audit(EventKind::Logoff, EventResult::Ok);
    let session = ctx.session_mut()?;
    session.trees.clear();
    session.state = SessionState::Expired;
    ctx.conn.retire.push(sid);
    let mut body = crate::engine::connection::new_message();
    LogoffResponse.encode(&mut body);
    Ok(Reply::ok(body))
}

/// Closes every open and session of a connection that is going away.
pub fn close_all(server: &Server, conn: &mut ConnState, now: SystemTime, peer: SocketAddr) {
    let ids: Vec<u64> = conn.sessions.keys().copied().collect();
    for sid in ids {
        super::close::close_session_opens(server, conn, sid, now, peer);
        if let Some(s) = conn.sessions.get(&sid)
            && s.is_valid()
        {
            crate::engine::audit::record_session(server, s, peer, now, EventKind::Disconnect);
        }
    }
    conn.opens.clear();
    conn.sessions.clear();
}
