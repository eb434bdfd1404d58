//! CLOSE (MS-SMB2 3.3.5.10). What closing releases is
//! [`crate::engine::teardown`]'s, shared with tree, session, connection
//! and durable-timeout teardown.

use crate::audit::EventResult;
use crate::engine::context::{Ctx, Reply, new_message};
use crate::engine::status::Result;
use crate::engine::teardown;
use crate::wire::NtStatus;
use crate::wire::close::CloseRequest;

/// CLOSE.
pub fn close(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let req = CloseRequest::decode(ctx.msg)?;
    let id = ctx.resolve_file_id(req.file_id)?;
    let open = ctx.conn.opens.remove(&id).ok_or(NtStatus::FILE_CLOSED)?;
    let (resp, events) = teardown::close::finish(ctx.server, open, ctx.now, req.flags);
    for ev in events {
        ctx.audit(ev, EventResult::Ok);
    }
    let mut out = new_message();
    resp.encode(&mut out);
    Ok(Reply::ok(out))
}
