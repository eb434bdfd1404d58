//! Oplocks and leases on the wire: what a CREATE asks for (RequestedOplockLevel
//! and the RqLs context, MS-SMB2 2.2.13, 2.2.13.2.8/.10), the lease context
//! of its response (2.2.14.2.10/.11), and the break notifications sent to a
//! holder's connection (2.2.23.1, 2.2.23.2; 3.3.4.6, 3.3.4.7). The
//! decisions themselves are [`crate::engine::fsa::oplock`]'s.

use crate::engine::context::{ConnState, Outgoing, put_header};
use crate::engine::fsa::lease::{Break, CacheRequest, Caching, LeaseGrant, LeaseId, LeaseKey, LeaseRequest};
use crate::engine::security;
use crate::engine::status::Result;
use crate::wire::NtStatus;
use crate::wire::create::{CreateRequest, FileId};
use crate::wire::create_context::{self as cc, Lease, LeaseV2};
use crate::wire::fscc::consts::{lease as lease_flags, oplock};
use crate::wire::header::{Command, Header, flags};
use crate::wire::negotiate::Dialect;
use crate::wire::oplock_break::{LEASE_BREAK_ACK_REQUIRED, LeaseBreakNotification, OplockBreak, OplockBreakBody};

/// What the CREATE asks for. A lease needs SMB 2.1 and a RqLs context
/// with a nonzero key; a v2 lease needs SMB 3.x (otherwise the request
/// gets no caching at all, as on Samba). Unknown levels ask for nothing.
pub fn request(conn: &ConnState, req: &CreateRequest<'_>) -> Result<CacheRequest> {
    Ok(match req.requested_oplock_level {
        oplock::II | oplock::EXCLUSIVE | oplock::BATCH => CacheRequest::Oplock(req.requested_oplock_level),
        oplock::LEASE => lease_request(conn, req)?.map_or(CacheRequest::None, CacheRequest::Lease),
        _ => CacheRequest::None,
    })
}

/// The RqLs context of a CREATE, whatever its RequestedOplockLevel (a
/// durable reconnect names its lease this way: `smb2.durable-open.lock-lease`).
pub fn lease_request(conn: &ConnState, req: &CreateRequest<'_>) -> Result<Option<LeaseRequest>> {
    let dialect = conn.neg.dialect.unwrap_or(Dialect::SMB202);
    if dialect < Dialect::SMB21 {
        return Ok(None);
    }
    let Some(c) = cc::find(&req.contexts, cc::names::RQLS) else {
        return Ok(None);
    };
    if c.data.len() != 32 && c.data.len() != 52 {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let l = Lease::decode(c.data)?;
    if l.key == [0; 16] || (l.v2.is_some() && !dialect.is_smb3()) {
        return Ok(None);
    }
    let v2 = l.v2.map(|v| {
        let parent = (l.flags & lease_flags::FLAG_PARENT_LEASE_KEY_SET != 0).then_some(LeaseKey(v.parent_key));
        (parent, v.epoch)
    });
    Ok(Some(LeaseRequest {
        id: LeaseId { client: conn.neg.client_guid, key: LeaseKey(l.key) },
        state: Caching::from_bits(l.state),
        v2,
    }))
}

/// The RqLs response context data: v1 (32 bytes) or v2 (52 bytes), as the
/// lease was created.
pub fn lease_context(g: &LeaseGrant) -> Vec<u8> {
    let l = Lease {
        key: g.key.0,
        state: g.state.bits(),
        flags: g.flags,
        duration: 0,
        v2: g.v2.then(|| LeaseV2 { parent_key: g.parent.map(|k| k.0).unwrap_or_default(), epoch: g.epoch }),
    };
    let mut out = Vec::new();
    l.encode(&mut out);
    out
}

/// Builds the break notification for this connection (MS-SMB2 3.3.4.6,
/// 3.3.4.7): MessageId all ones, no credits; an oplock break carries its
/// open's SessionId, a lease break SessionId 0. Either is sealed with the
/// session of the (a) lease's open when that session encrypts, and never
/// signed: clients do not verify unsolicited breaks (MS-SMB2 3.2.5.1.3),
/// and Samba's client refuses a signature on a message with MessageId
/// all ones (`smb2_signing_calc_signature`), as Samba's server sends none.
pub fn notification(state: &ConnState, b: &Break) -> Option<Outgoing> {
    let (body, sid) = match b {
        Break::Oplock { open, level, .. } => {
            let o = state.opens.get(&open.0)?;
            let body = OplockBreak::Oplock(OplockBreakBody {
                oplock_level: *level,
                file_id: FileId { persistent: o.file_id.persistent, volatile: o.file_id.volatile },
            });
            (body, o.session_id)
        }
        Break::Lease { id, opens, from, to, epoch, ack_required } => {
            let sid = opens.iter().find_map(|o| state.opens.get(&o.0)).map(|o| o.session_id)?;
            let body = OplockBreak::LeaseNotification(LeaseBreakNotification {
                new_epoch: *epoch,
                flags: if *ack_required { LEASE_BREAK_ACK_REQUIRED } else { 0 },
                lease_key: id.key.0,
                current_lease_state: from.bits(),
                new_lease_state: to.bits(),
            });
            (body, sid)
        }
    };
    let session = state.sessions.get(&sid)?;
    let encrypt = session.encrypt_data && session.crypto.is_some();
    let is_oplock = matches!(b, Break::Oplock { .. });
    let hdr = Header {
        credit_charge: 0,
        status: NtStatus::SUCCESS,
        command: Command::OPLOCK_BREAK,
        credits: 0,
        flags: flags::SERVER_TO_REDIR,
        next_command: 0,
        message_id: u64::MAX,
        async_id: 0,
        tree_id: 0,
        session_id: if is_oplock { sid } else { 0 },
        signature: [0; 16],
    };
    let mut msg = crate::engine::context::new_message();
    body.encode(&mut msg);
    put_header(&hdr, &mut msg);
    security::protect(state, msg, encrypt.then_some(sid), None).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fsa::lease::LEASE_FLAG_BREAK_IN_PROGRESS;

    #[test]
    fn lease_contexts_keep_the_version_the_lease_was_created_with() {
        let g = LeaseGrant {
            key: LeaseKey([3; 16]),
            state: Caching::RH,
            flags: LEASE_FLAG_BREAK_IN_PROGRESS,
            v2: false,
            parent: None,
            epoch: 0,
        };
        let v1 = lease_context(&g);
        assert_eq!(v1.len(), 32);
        let l = Lease::decode(&v1).unwrap();
        assert_eq!((l.key, l.state, l.flags, l.v2), ([3; 16], 3, LEASE_FLAG_BREAK_IN_PROGRESS, None));
        let v2 = lease_context(&LeaseGrant { v2: true, epoch: 5, parent: Some(LeaseKey([9; 16])), ..g });
        assert_eq!(v2.len(), 52);
        let l = Lease::decode(&v2).unwrap();
        assert_eq!(l.v2, Some(LeaseV2 { parent_key: [9; 16], epoch: 5 }));
    }
}
