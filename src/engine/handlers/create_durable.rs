//! The durable handle contexts of CREATE (MS-SMB2 2.2.13.2.3/.4/.11/.12):
//! which combinations are valid, granting durability to a new open
//! (3.3.5.9.6, 3.3.5.9.10) and reconnecting a disconnected one
//! (3.3.5.9.7, 3.3.5.9.12). The open table side is [`crate::engine::durable`].

use crate::engine::context::{Ctx, Reply, new_message};
use crate::engine::durable::{self, Durable};
use crate::engine::fileops::{attributes, times};
use crate::engine::fsa::lease::{CacheGrant, CacheRequest, Caching, level};
use crate::engine::fsa::{FileKey, OpenId};
use crate::engine::pending::Rerun;
use crate::engine::pending::{PendingKind, PendingOp};
use crate::engine::session::TreeKind;
use crate::engine::status::{Error, Result};
use crate::wire::NtStatus;
use crate::wire::create::{CreateRequest, CreateResponse, FileId};
use crate::wire::create_context::{
    self as cc, CreateContext, DurableReconnectV1, DurableReconnectV2, DurableRequestV2, DurableResponseV2, DurableV1,
};
use crate::wire::fscc::consts::{create_action, oplock};

/// What the durable contexts of a CREATE ask for.
#[derive(Debug, Default, Clone, Copy)]
pub struct Asked {
    /// DHnQ: a v1 durable handle.
    pub v1: bool,
    /// DH2Q: a v2 durable handle.
    pub v2: Option<DurableRequestV2>,
    /// DHnC / DH2C: a reconnect (persistent FileId, CreateGuid for v2).
    pub reconnect: Option<(u64, Option<crate::wire::Guid>)>,
}

/// Reads the durable contexts and checks their combination (Samba
/// `smbd_smb2_create_fetch_create_ctx`, MS-SMB2 3.3.5.9.7/.12): a request
/// and a reconnect of different versions together are INVALID_PARAMETER;
/// a reconnect with other contexts than DHnQ (v1) and RqLs is
/// OBJECT_NAME_NOT_FOUND.
pub fn parse(req: &CreateRequest<'_>) -> Result<Asked> {
    let find = |n: &[u8]| cc::find(&req.contexts, n);
    let (dhnq, dhnc, dh2q, dh2c) =
        (find(cc::names::DHNQ), find(cc::names::DHNC), find(cc::names::DH2Q), find(cc::names::DH2C));
    let bad = NtStatus::INVALID_PARAMETER;
    if (dhnc.is_some() && dh2c.is_some())
        || (dhnc.is_some() && dh2q.is_some())
        || (dh2c.is_some() && dhnq.is_some())
        || (dh2q.is_some() && dh2c.is_some())
        || (dhnq.is_some() && dh2q.is_some())
    {
        return Err(bad.into());
    }
    let rqls = usize::from(find(cc::names::RQLS).is_some());
    let mut asked = Asked::default();
    if let Some(c) = dhnc {
        let r = DurableReconnectV1::decode(c.data)?;
        if c.data.len() != 16 {
            return Err(bad.into());
        }
        if req.contexts.len() != 1 + usize::from(dhnq.is_some()) + rqls {
            return Err(NtStatus::OBJECT_NAME_NOT_FOUND.into());
        }
        asked.reconnect = Some((r.file_id.persistent, None));
        asked.v1 = dhnq.is_some();
        return Ok(asked);
    }
    if let Some(c) = dh2c {
        if c.data.len() != 36 {
            return Err(bad.into());
        }
        let r = DurableReconnectV2::decode(c.data)?;
        if req.contexts.len() != 1 + rqls {
            return Err(NtStatus::OBJECT_NAME_NOT_FOUND.into());
        }
        asked.reconnect = Some((r.file_id.persistent, Some(r.create_guid)));
        return Ok(asked);
    }
    if let Some(c) = dhnq {
        DurableV1::decode(c.data)?;
        asked.v1 = true;
    }
    if let Some(c) = dh2q {
        if c.data.len() != 32 {
            return Err(bad.into());
        }
        asked.v2 = Some(DurableRequestV2::decode(c.data)?);
    }
    Ok(asked)
}

/// After a successful CREATE: durability for an open that holds a batch
/// oplock or a lease with handle caching (3.3.5.9.6, 3.3.5.9.10); the
/// response context to add, if any.
pub fn grant(
    ctx: &Ctx<'_>,
    asked: &Asked,
    open: OpenId,
    key: &FileKey,
    grant: &CacheGrant,
    cache: &CacheRequest,
) -> Option<(&'static [u8], Vec<u8>)> {
    if !asked.v1 && asked.v2.is_none() {
        return None;
    }
    let handle_caching = match grant {
        CacheGrant::Oplock(l) => *l == level::BATCH,
        CacheGrant::Lease(l) => l.state.contains(Caching::H),
        CacheGrant::None => false,
    };
    if !handle_caching {
        return None;
    }
    let principal = ctx.session().ok()?.principal.clone()?;
    let timeout_ms = match &asked.v2 {
        None => durable::V1_TIMEOUT_MS,
        Some(v) if v.timeout == 0 => durable::V2_DEFAULT_TIMEOUT_MS,
        Some(v) => v.timeout.min(durable::V2_MAX_TIMEOUT_MS),
    };
    let lease = match cache {
        CacheRequest::Lease(l) => Some(l.id),
        _ => None,
    };
    let d = Durable {
        create_guid: asked.v2.map(|v| v.create_guid),
        timeout_ms,
        org: principal.org_id,
        user: principal.user_id,
        lease,
        key: key.clone(),
    };
    ctx.server.files.with(|t| t.durable.mark(open, d));
    let mut data = Vec::new();
    if asked.v2.is_some() {
        // No persistent handles: the flags stay 0 (3.3.5.9.10).
        DurableResponseV2 { timeout: timeout_ms, flags: 0 }.encode(&mut data);
        Some((cc::names::DH2Q, data))
    } else {
        DurableV1::encode_response(&mut data);
        Some((cc::names::DHNQ, data))
    }
}

/// DHnC / DH2C: gives a disconnected durable open back to the same user
/// on this connection. Every other field of the CREATE is ignored; a
/// lease must be named again with the same key, and then the name must be
/// the open's (INVALID_PARAMETER otherwise, as on Windows).
pub fn reconnect(ctx: &mut Ctx<'_>, req: &CreateRequest<'_>, asked: &Asked) -> Result<Reply> {
    let Some((persistent, create_guid)) = asked.reconnect else {
        return Err(NtStatus::INTERNAL_ERROR.into());
    };
    let not_found = || Error::Status(NtStatus::OBJECT_NAME_NOT_FOUND);
    let tree = ctx.tree()?;
    let share = match &tree.kind {
        TreeKind::Disk(s) => s.clone(),
        TreeKind::Ipc => return Err(not_found()),
    };
    let principal = ctx.session()?.principal.clone().ok_or(Error::Status(NtStatus::ACCESS_DENIED))?;
    let lease = crate::engine::caching::lease_request(ctx.conn, req).ok().flatten().map(|l| l.id);
    let name = crate::engine::names::parse(&req.name)
        .map(|n| {
            let mut p = n.components.join("\\");
            if let Some(s) = &n.stream {
                p.push(':');
                p.push_str(s);
            }
            crate::types::fold_name(&p)
        })
        .unwrap_or_default();
    let mailbox = ctx.conn.mailbox.clone();
    let token = ctx.resume.unwrap_or_else(|| ctx.server.files.new_id());
    let now = ctx.server.files.instant(ctx.now);
    let reclaimed = ctx.server.files.with(|t| {
        if let Some(key) = held_elsewhere(t, persistent, &principal, &mailbox)
            && !t.durable.wait_expired(token, now)
        {
            // Still attached to a connection that is going away (or
            // whose session the client's PreviousSessionId ends): wait
            // until it lets go, as its task may not have run yet.
            t.park(token, mailbox.clone());
            t.durable.wait_detach(OpenId(persistent), token, now + durable::DETACH_WAIT);
            return Ok(Err(key));
        }
        let d = t.durable.reclaim(persistent, create_guid, principal.org_id, principal.user_id, |d, open| {
            if d.lease != lease {
                return Err(NtStatus::OBJECT_NAME_NOT_FOUND);
            }
            let f = open.file().ok_or(NtStatus::OBJECT_NAME_NOT_FOUND)?;
            if f.share != share.name {
                return Err(NtStatus::OBJECT_NAME_NOT_FOUND);
            }
            if d.lease.is_some() && crate::types::fold_name(&f.path) != name {
                return Err(NtStatus::INVALID_PARAMETER);
            }
            Ok(())
        })?;
        let id = OpenId(d.open.file_id.persistent);
        t.set_owner(id, mailbox);
        t.durable.mark(id, d.durable.clone());
        Ok::<_, NtStatus>(Ok((id, d)))
    })?;
    let (open_id, d) = match reclaimed {
        Ok(r) => r,
        Err(key) => return Ok(park(ctx, token, key)),
    };
    let mut open = d.open;
    open.session_id = ctx.hdr.session_id;
    open.tree_id = ctx.hdr.tree_id;
    let file_id = open.file_id;
    let f = open.file().ok_or_else(not_found)?;
    let meta = f.org.stat(f.node)?;
    let (alloc, size) = match &f.content {
        Some(c) => (c.alloc_size().max(f.alloc_hint), c.len()),
        None => (0, 0),
    };
    let grant = ctx.server.files.with(|t| t.get(&f.key).map(|s| s.cache.grant_of(open_id)));
    let grant = grant.unwrap_or(CacheGrant::None);
    let mut contexts: Vec<(&'static [u8], Vec<u8>)> = Vec::new();
    if let CacheGrant::Lease(l) = &grant {
        contexts.push((cc::names::RQLS, crate::engine::caching::lease_context(l)));
    }
    if asked.v1 {
        let mut data = Vec::new();
        DurableV1::encode_response(&mut data);
        contexts.push((cc::names::DHNQ, data));
    }
    let resp_contexts: Vec<CreateContext<'_>> =
        contexts.iter().map(|(n, d)| CreateContext { name: n, data: d }).collect();
    let resp = CreateResponse {
        oplock_level: grant.oplock_level(),
        flags: 0,
        create_action: create_action::OPENED,
        times: times(&meta),
        allocation_size: alloc,
        end_of_file: size,
        file_attributes: attributes(&meta),
        file_id: FileId { persistent: file_id.persistent, volatile: file_id.volatile },
        contexts: resp_contexts,
    };
    let mut out = new_message();
    resp.encode(&mut out);
    ctx.conn.opens.insert(file_id.volatile, open);
    crate::engine::replay::opened(&mut ctx.conn.replay, &ctx.conn.opens, ctx.hdr, file_id.volatile);
    Ok(Reply::ok(out))
}

/// The FileKey of a durable open of this user that another connection
/// still holds (a reconnect on the connection that holds it fails at once).
fn held_elsewhere(
    t: &crate::engine::files::Table,
    persistent: u64,
    principal: &crate::engine::services::Principal,
    mailbox: &std::sync::Arc<crate::engine::files::Mailbox>,
) -> Option<FileKey> {
    let id = OpenId(persistent);
    let d = t.durable.get(id)?;
    let mine = d.org == principal.org_id && d.user == principal.user_id;
    (mine && t.has_owner(id) && !t.owner_is(id, mailbox)).then(|| d.key.clone())
}

/// Interim STATUS_PENDING: the reconnect runs again when the open is let
/// go of, or after [`durable::DETACH_WAIT`] (MS-SMB2 3.3.4.2).
fn park(ctx: &mut Ctx<'_>, token: u64, key: FileKey) -> Reply {
    if ctx.resume.is_none() {
        let rerun = Rerun { key, msg: ctx.msg.to_vec(), related_file_id: ctx.related_file_id, rest: None };
        let op =
            PendingOp { hdr: ctx.hdr.clone(), encrypted: ctx.encrypted, kind: PendingKind::Rerun(Box::new(rerun)) };
        ctx.conn.pending.insert(token, op);
    }
    Reply::Pending(token)
}

/// Answers a replayed CREATE with the open it made, as Samba does
/// (3.3.5.9.10 leaves the response to the server): the other fields of the
/// replay are ignored, OplockLevel echoes the replay's request, the lease
/// context comes back only for the open's own lease key (ACCESS_DENIED
/// otherwise), and the durable context only if the replay asks for a batch
/// oplock or a lease.
pub fn replay_answer(ctx: &mut Ctx<'_>, req: &CreateRequest<'_>, volatile: u64, action: u32) -> Result<Reply> {
    let lease = crate::engine::caching::lease_request(ctx.conn, req)?;
    let open = ctx.conn.opens.get(&volatile).ok_or(Error::Status(NtStatus::FILE_NOT_AVAILABLE))?;
    let file_id = open.file_id;
    let f = open.file().ok_or(Error::Status(NtStatus::FILE_NOT_AVAILABLE))?;
    let open_id = OpenId(file_id.persistent);
    let (grant, durable) = ctx.server.files.with(|t| {
        let g = t.get(&f.key).map(|s| s.cache.grant_of(open_id)).unwrap_or(CacheGrant::None);
        (g, t.durable.get(open_id).map(|d| d.timeout_ms))
    });
    let mut contexts: Vec<(&'static [u8], Vec<u8>)> = Vec::new();
    if let Some(l) = &lease {
        match &grant {
            CacheGrant::Lease(g) if g.key == l.id.key => {
                contexts.push((cc::names::RQLS, crate::engine::caching::lease_context(g)))
            }
            _ => return Err(NtStatus::ACCESS_DENIED.into()),
        }
    }
    if let Some(timeout) = durable
        && matches!(req.requested_oplock_level, oplock::BATCH | oplock::LEASE)
    {
        let mut data = Vec::new();
        DurableResponseV2 { timeout, flags: 0 }.encode(&mut data);
        contexts.push((cc::names::DH2Q, data));
    }
    let meta = f.org.stat(f.node)?;
    let (alloc, size) = match &f.content {
        Some(c) => (c.alloc_size().max(f.alloc_hint), c.len()),
        None => (0, 0),
    };
    let resp = CreateResponse {
        oplock_level: req.requested_oplock_level,
        flags: 0,
        create_action: action,
        times: times(&meta),
        allocation_size: alloc,
        end_of_file: size,
        file_attributes: attributes(&meta),
        file_id,
        contexts: contexts.iter().map(|(n, d)| CreateContext { name: n, data: d }).collect(),
    };
    let mut out = new_message();
    resp.encode(&mut out);
    Ok(Reply::ok(out))
}
