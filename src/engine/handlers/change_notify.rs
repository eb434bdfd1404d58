//! CHANGE_NOTIFY (MS-SMB2 3.3.5.19): watch a directory handle for changes.
//! The request is answered at once when changes are already buffered,
//! otherwise it goes asynchronous until a change, a CANCEL or the handle's
//! close completes it ([`crate::engine::notify`]).

use crate::engine::context::{Ctx, Reply, new_message};
use crate::engine::fsa::OpenId;
use crate::engine::fsa::access::FILE_LIST_DIRECTORY;
use crate::engine::pending::{PendingKind, PendingOp};
use crate::engine::server::MAX_IO;
use crate::engine::status::{Error, Result};
use crate::engine::watches::{Answer, WatchSpec};
use crate::wire::NtStatus;
use crate::wire::change_notify::{ChangeNotifyRequest, ChangeNotifyResponse, WATCH_TREE};
use crate::wire::negotiate::Dialect;

/// CHANGE_NOTIFY.
pub fn change_notify(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let req = ChangeNotifyRequest::decode(ctx.msg)?;
    let id = ctx.resolve_file_id(req.file_id)?;
    let max = if ctx.conn.neg.dialect.is_some_and(|d| d >= Dialect::SMB21) { MAX_IO } else { 65536 };
    let open = ctx.conn.opens.get(&id).ok_or(Error::Status(NtStatus::FILE_CLOSED))?;
    let f = open.file().ok_or(Error::Status(NtStatus::INVALID_PARAMETER))?;
    if !f.is_dir {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    if open.granted_access & FILE_LIST_DIRECTORY == 0 {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    if req.output_buffer_length > max {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    // A Previous Versions view never changes: its watch is scoped to a
    // share key no live change reports to (its nodes reuse the live ids).
    let share = if f.view == 0 { (f.org_id, f.root) } else { (f.org_id, crate::types::NodeId(u64::MAX)) };
    let spec = WatchSpec {
        share,
        node: f.node,
        path: f.path.clone(),
        tree: req.flags & WATCH_TREE != 0,
        filter: req.completion_filter,
    };
    // A directory already delete-pending gets DELETE_PENDING at once, as
    // a watch waiting when it became so does (smbtorture `smb2.notify.rmdir3`
    // and `rmdir4`, where the other connection's delete can overtake this
    // request; it then waited until the handle closed).
    if ctx.server.files.with(|t| t.get(&f.key).is_some_and(|s| s.shares.delete_pending())) {
        return Err(NtStatus::DELETE_PENDING.into());
    }
    let open_id = OpenId(open.file_id.persistent);
    let token = ctx.resume.unwrap_or_else(|| ctx.server.files.new_id());
    // Only the last request of a compound may go asynchronous (MS-SMB2
    // 3.3.5.2.7, <206>): in the middle of one, a CHANGE_NOTIFY that would
    // wait fails with STATUS_INTERNAL_ERROR, as on Windows
    // (smbtorture `smb2.compound.interim2`).
    let may_wait = ctx.hdr.next_command == 0;
    let mailbox = ctx.conn.mailbox.clone();
    let answer = ctx
        .server
        .files
        .with(|t| t.watches.request(open_id, &spec, req.output_buffer_length, may_wait.then_some(token), &mailbox));
    match answer {
        Answer::Now(status, data) => {
            let mut out = new_message();
            ChangeNotifyResponse { data: &data }.encode(&mut out);
            Ok(Reply::Body(status, out))
        }
        Answer::Wait if !may_wait => Err(NtStatus::INTERNAL_ERROR.into()),
        Answer::Wait => {
            let op = PendingOp { hdr: ctx.hdr.clone(), encrypted: ctx.encrypted, kind: PendingKind::Notify };
            ctx.conn.pending.insert(token, op);
            Ok(Reply::Pending(token))
        }
    }
}
