//! LOCK (MS-SMB2 3.3.5.14): byte-range locks through the shared open
//! table. The rules are [`fsa::locks`]; here the request is decoded, run
//! against the stream's state, and a blocking lock that must wait goes
//! asynchronous (interim STATUS_PENDING, final response when another open
//! unlocks or closes, possibly on another connection).

use crate::engine::context::{Ctx, Reply, new_message};
use crate::engine::fsa;
use crate::engine::fsa::locks::LockRequest as FsaLock;
use crate::engine::open::OpenKind;
use crate::engine::pending::{PendingKind, PendingOp};
use crate::engine::status::{Error, Result};
use crate::wire::NtStatus;
use crate::wire::lock::flags::{FAIL_IMMEDIATELY, UNLOCK};
use crate::wire::lock::{LockRequest, LockResponse};

/// LOCK.
pub fn lock(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let req = LockRequest::decode(ctx.msg)?;
    let id = ctx.resolve_file_id(req.file_id)?;
    let open = ctx.conn.opens.get(&id).ok_or(Error::Status(NtStatus::FILE_CLOSED))?;
    let open_id = fsa::OpenId(open.file_id.persistent);
    let f = match &open.kind {
        OpenKind::File(f) => f,
        OpenKind::Pipe(_) => return Err(NtStatus::INVALID_DEVICE_REQUEST.into()),
    };
    if f.is_dir {
        return Err(NtStatus::INVALID_DEVICE_REQUEST.into());
    }
    let key = f.key.clone();
    // Any granted lock breaks read caching, wherever it lies (Samba
    // `brl_lock()`; smbtorture `smb2.lease.lock1` locks an empty file).
    let allocation = u64::MAX;
    let limits = ctx.server.live().locks.clone();
    if req.locks.len() > limits.elements_per_request {
        return Err(fsa::locks::TOO_MANY_LOCKS.into());
    }
    let token = ctx.server.files.new_id();
    let check_sequence = ctx.conn.neg.dialect.is_some_and(|d| d.is_smb3());
    let lreq = FsaLock {
        elements: &req.locks,
        lock_sequence: u32::from(req.lock_sequence_number & 0xF) | (req.lock_sequence_index << 4),
        // MS-SMB2 3.3.5.14 checks lock sequences for resilient, durable and
        // persistent handles; like Samba we check them on every 3.x open
        // (smbtorture `smb2.lock.replay_broken_windows` then skips).
        check_sequence,
        token,
        max_held: limits.per_open,
    };
    let now = ctx.server.files.instant(ctx.now);
    let mailbox = ctx.conn.mailbox.clone();
    // The stream's locks are found under the open table's lock, but the
    // request runs against them under the stream's own lock only, so that
    // a request of thousands of elements stalls nobody else's files. The
    // waiter is registered first: another connection's unlock may grant
    // this request as soon as it is queued.
    let may_wait = matches!(req.locks.as_slice(), [e] if e.flags & (FAIL_IMMEDIATELY | UNLOCK) == 0);
    let locks = ctx.server.files.with(|t| {
        if may_wait {
            t.park(token, mailbox);
        }
        t.stream(&key).locks.clone()
    });
    let mut reply = locks.lock().smb2_lock(open_id, &lreq);
    let status = ctx.server.files.with(|t| {
        t.complete(std::mem::take(&mut reply.completed));
        // A lock breaks read caching (smbtorture `smb2.oplock.brl1`).
        let breaks = t.stream(&key).after_lock(open_id, &lreq, &reply, allocation, now);
        t.send_breaks(&key, breaks);
        if may_wait && reply.status.is_some() {
            t.unpark(token);
        }
        t.drop_if_idle(&key);
        reply.status
    });
    match status {
        None => {
            let op = PendingOp { hdr: ctx.hdr.clone(), encrypted: ctx.encrypted, kind: PendingKind::Lock(key) };
            ctx.conn.pending.insert(token, op);
            Ok(Reply::Pending(token))
        }
        Some(s) if s.is_error() => Err(s.into()),
        Some(_) => {
            let mut out = new_message();
            LockResponse.encode(&mut out);
            Ok(Reply::ok(out))
        }
    }
}
