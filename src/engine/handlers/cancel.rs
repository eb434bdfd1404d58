//! CANCEL (MS-SMB2 3.3.5.16): finishes a pending request with
//! STATUS_CANCELLED. CANCEL itself is never answered.

use crate::engine::context::{Ctx, Reply};
use crate::engine::files::Notice;
use crate::engine::pending::PendingKind;
use crate::engine::status::Result;
use crate::wire::NtStatus;
use crate::wire::header::flags;

/// CANCEL.
pub fn cancel(ctx: &mut Ctx<'_>) -> Result<Reply> {
    // An async CANCEL names the AsyncId; a sync one the MessageId of a
    // request that may have gone async meanwhile (3.3.5.16).
    let (hdr, pending) = (ctx.hdr, &ctx.conn.pending);
    let found = if hdr.flags & flags::ASYNC_COMMAND != 0 {
        pending.get_key_value(&hdr.async_id)
    } else {
        pending.iter().find(|(_, p)| p.hdr.message_id == hdr.message_id)
    };
    let Some((&async_id, op)) = found.filter(|(_, p)| p.hdr.session_id == hdr.session_id) else {
        return Ok(Reply::None);
    };
    match &op.kind {
        PendingKind::Lock(key) => {
            let key = key.clone();
            ctx.server.files.with(|t| {
                let done = t.stream(&key).locks.lock().cancel(async_id);
                if let Some(done) = done {
                    t.complete(vec![done]);
                }
                t.drop_if_idle(&key);
            });
        }
        PendingKind::Notify => {
            ctx.server.files.with(|t| t.watches.cancel(async_id));
        }
        PendingKind::Rerun(r) => {
            // A CREATE or SET_INFO waiting for a break: it stops waiting
            // and ends with STATUS_CANCELLED.
            let key = r.key.clone();
            ctx.server.files.with(|t| {
                t.stream(&key).unpark(async_id);
                t.unpark(async_id);
                t.drop_if_idle(&key);
            });
            ctx.conn.mailbox.post(Notice::Completed { async_id, status: NtStatus::CANCELLED });
        }
    }
    Ok(Reply::None)
}
