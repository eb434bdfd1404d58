//! LOGOFF (MS-SMB2 3.3.5.6).

use crate::audit::{EventKind, EventResult};
use crate::engine::context::{Ctx, Reply};
use crate::engine::session::SessionState;
use crate::engine::status::Result;
use crate::wire::logoff::LogoffResponse;

/// LOGOFF: closes the session's opens and trees; the session itself is
/// removed after its (signed) response is sent.
pub fn logoff(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let sid = ctx.hdr.session_id;
    crate::engine::teardown::close_session_opens(ctx.server, ctx.conn, sid, ctx.now, ctx.peer);
    ctx.audit(EventKind::Logoff, EventResult::Ok);
    let session = ctx.session_mut()?;
    session.trees.clear();
    session.state = SessionState::Expired;
    ctx.conn.retire.push(sid);
    let mut body = crate::engine::context::new_message();
    LogoffResponse.encode(&mut body);
    Ok(Reply::ok(body))
}
