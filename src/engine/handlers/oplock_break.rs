//! OPLOCK_BREAK acknowledgments (MS-SMB2 3.3.5.22): an oplock break
//! acknowledgment names the open (3.3.5.22.1), a lease break
//! acknowledgment the lease key (3.3.5.22.2). Either lets CREATEs parked
//! on the break run again.

use crate::engine::context::{Ctx, Reply, new_message};
use crate::engine::fsa::OpenId;
use crate::engine::fsa::lease::{Caching, LeaseId, LeaseKey, level};
use crate::engine::status::{Error, Result};
use crate::wire::NtStatus;
use crate::wire::negotiate::Dialect;
use crate::wire::oplock_break::{LeaseBreakAck, OplockBreak, OplockBreakBody};

/// OPLOCK_BREAK (acknowledgment).
pub fn oplock_break(ctx: &mut Ctx<'_>) -> Result<Reply> {
    match OplockBreak::decode(ctx.msg)? {
        OplockBreak::Oplock(b) => oplock_ack(ctx, b),
        OplockBreak::LeaseAck(a) => lease_ack(ctx, a),
        OplockBreak::LeaseNotification(_) => Err(NtStatus::INVALID_PARAMETER.into()),
    }
}

fn oplock_ack(ctx: &mut Ctx<'_>, b: OplockBreakBody) -> Result<Reply> {
    let id = ctx.resolve_file_id(b.file_id)?;
    let open = ctx.conn.opens.get(&id).ok_or(Error::Status(NtStatus::FILE_CLOSED))?;
    let file_id = open.file_id;
    let open_id = OpenId(file_id.persistent);
    let key = open.file().map(|f| f.key.clone()).ok_or(Error::Status(NtStatus::INVALID_OPLOCK_PROTOCOL))?;
    if b.oplock_level == level::LEASE {
        // 3.3.5.22.1: a lease level in an oplock acknowledgment.
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let granted = ctx.server.files.with(|t| {
        let r = match t.get(&key) {
            Some(_) => t.stream(&key).oplock_ack(open_id, b.oplock_level),
            None => Err(NtStatus::INVALID_OPLOCK_PROTOCOL),
        };
        if let Ok((_, retry)) = &r {
            t.state_changed(&key, retry.clone());
        }
        t.drop_if_idle(&key);
        r.map(|(lvl, _)| lvl)
    })?;
    let mut out = new_message();
    OplockBreak::Oplock(OplockBreakBody { oplock_level: granted, file_id }).encode(&mut out);
    Ok(Reply::ok(out))
}

fn lease_ack(ctx: &mut Ctx<'_>, a: LeaseBreakAck) -> Result<Reply> {
    if ctx.conn.neg.dialect.is_none_or(|d| d < Dialect::SMB21) {
        // No leases before SMB 2.1 (3.3.5.22.2).
        return Err(NtStatus::NOT_SUPPORTED.into());
    }
    let id = LeaseId { client: ctx.conn.neg.client_guid, key: LeaseKey(a.lease_key) };
    let now = ctx.server.files.instant(ctx.now);
    let state = ctx.server.files.with(|t| {
        let key = t.leases.lookup(&id).cloned().ok_or(NtStatus::OBJECT_NAME_NOT_FOUND)?;
        let ack = t.stream(&key).lease_ack(&id, Caching::from_bits(a.lease_state), now);
        let r = ack.map(|ack| {
            t.send_breaks(&key, ack.breaks);
            t.state_changed(&key, ack.retry);
            ack.state
        });
        t.drop_if_idle(&key);
        r
    })?;
    let mut out = new_message();
    OplockBreak::LeaseAck(LeaseBreakAck {
        flags: 0,
        lease_key: a.lease_key,
        lease_state: state.bits(),
        lease_duration: 0,
    })
    .encode(&mut out);
    Ok(Reply::ok(out))
}
