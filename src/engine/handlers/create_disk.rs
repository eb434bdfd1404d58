//! The disk part of CREATE (MS-FSA 2.1.5.1): `create_plan` resolves the
//! name and decides access and disposition; this file enters the open in the
//! shared open table (share modes, delete-pending, oplocks and leases:
//! [`crate::engine::fsa::stream`]) and then carries the plan out.
//!
//! Order (MS-FSA 2.1.5.1.2, as Windows and Samba observe it): path, access,
//! disposition rules, then share modes and delete-pending, and only then
//! anything that changes the file (overwrite, stream creation), so that a
//! refused open never truncates anybody's data.

use std::sync::Arc;
use std::time::SystemTime;

use super::create_plan::{Plan, plan};
use crate::engine::fileops::{self, new_attributes};
use crate::engine::files::Mailbox;
use crate::engine::fsa::access as fa;
use crate::engine::fsa::lease::{CacheGrant, CacheRequest};
use crate::engine::fsa::sid::Token;
use crate::engine::fsa::stream::{OpenRequest, OpenResult};
use crate::engine::fsa::{FileKey, OpenId};
use crate::engine::names::{self, ParsedName};
use crate::engine::server::Server;
use crate::engine::services::{Access, ShareRecord};
use crate::engine::status::{Error, Result};
use crate::storage::{Content, Meta, MetaUpdate, OrgStore};
use crate::types::{FileTime, NodeId};
use crate::wire::NtStatus;
use crate::wire::create::CreateRequest;
use crate::wire::create_context as cc;

/// What CREATE needs to know.
pub struct Input<'a> {
    /// Shared server state (open table).
    pub server: &'a Server,
    /// The organization's store.
    pub org: &'a OrgStore,
    /// The share.
    pub share: &'a ShareRecord,
    /// The session's permission on it.
    pub level: Access,
    /// The request.
    pub req: &'a CreateRequest<'a>,
    /// Its parsed name.
    pub name: &'a ParsedName,
    /// The user's token.
    pub token: Token,
    /// The new open's server-wide id.
    pub open_id: OpenId,
    /// Now.
    pub now: SystemTime,
    /// The oplock or lease asked for.
    pub cache: CacheRequest,
    /// The id this CREATE is parked under if it must wait for breaks (its AsyncId).
    pub park_token: u64,
    /// False when a parked CREATE runs again.
    pub first_attempt: bool,
    /// The requesting connection's mailbox (breaks of the new open go there).
    pub mailbox: &'a Arc<Mailbox>,
    /// The requesting connection negotiated AAPL (a Mac): see `aapl::hidden_stream`.
    pub mac: bool,
    /// 0, or the time of the backup generation opened (Previous Versions:
    /// `org` and `share.root` are then that generation's).
    pub view: i64,
}

/// Where the disk CREATE ended.
pub enum Step {
    /// The object is open.
    Opened(Box<Opened>),
    /// Oplock or lease breaks must be acknowledged first: the CREATE is
    /// parked on this stream under [`Input::token`].
    Parked(FileKey),
}

/// The result of a successful CREATE.
pub struct Opened {
    /// The object as it is now (after creation or overwrite).
    pub meta: Meta,
    /// The stream's key in the open table (the open is registered there).
    pub key: FileKey,
    /// The data of a file or named stream.
    pub content: Option<Arc<Content>>,
    /// CreateAction.
    pub action: u32,
    /// Granted access.
    pub granted: u32,
    /// MaximalAccess for the MxAc context.
    pub maximal: u32,
    /// The CREATE created the object (file, directory or stream).
    pub created: bool,
    /// The open is of a directory (not of one of its streams).
    pub is_dir: bool,
    /// The oplock or lease granted.
    pub grant: CacheGrant,
}

/// Runs the disk CREATE.
pub fn open(i: &Input<'_>) -> Result<Step> {
    check_lease_key(i)?;
    exta_list(i)?;
    // A disconnected durable open in the way is closed (maybe deleting
    // the file): then the CREATE starts over. Each round closes one.
    let mut rounds = 0;
    let (plan, key, grant) = loop {
        let plan = plan(i)?;
        let key = FileKey::new(i.share.org_id, plan.node, i.name.stream.as_deref().unwrap_or("")).in_view(i.view);
        match register(i, &plan, &key)? {
            Registered::Granted(g) => break (plan, key, g),
            Registered::Parked => return Ok(Step::Parked(key)),
            Registered::Restart if rounds < 8 => {
                rounds += 1;
                let reaped = i.server.files.with(|t| t.durable.take_reaped());
                for d in reaped {
                    crate::engine::teardown::close_detached(i.server, d.open, i.now);
                }
            }
            Registered::Restart => return Err(NtStatus::SHARING_VIOLATION.into()),
        }
    };
    match finish(i, &plan) {
        Ok((meta, content)) => Ok(Step::Opened(Box::new(Opened {
            meta,
            key,
            content,
            action: plan.action,
            granted: plan.granted,
            maximal: plan.maximal,
            created: plan.new_node || plan.new_stream,
            is_dir: plan.is_dir,
            grant,
        }))),
        Err(e) => {
            abandon(i.server, &key, i.open_id);
            Err(e)
        }
    }
}

/// Takes a registered open out of the table again (a later step failed).
pub fn abandon(server: &Server, key: &FileKey, open: OpenId) {
    server.files.with(|t| {
        let out = t.stream(key).close(open);
        t.complete(out.lock_completions);
        if let Some(id) = out.released_lease {
            t.leases.remove(&id);
        }
        t.clear_owner(open);
        t.state_changed(key, out.retry);
        t.drop_if_idle(key);
    });
}

/// A lease key already in use names one stream: asking for it on another
/// name is INVALID_PARAMETER, before anything is created (MS-SMB2
/// 3.3.5.9.8; smbtorture `smb2.lease.request`, also for directories).
fn check_lease_key(i: &Input<'_>) -> Result<()> {
    let CacheRequest::Lease(l) = &i.cache else { return Ok(()) };
    let Some(in_use) = i.server.files.with(|t| t.leases.lookup(&l.id).cloned()) else {
        return Ok(());
    };
    let node = match i.name.components.split_last() {
        None => Some(i.share.root),
        Some((leaf, dirs)) => match fileops::walk(i.org, i.share.root, dirs) {
            Ok(parent) => fileops::lookup(i.org, parent, leaf)?,
            Err(_) => None,
        },
    };
    let target = node.map(|n| FileKey::new(i.share.org_id, n, i.name.stream.as_deref().unwrap_or("")).in_view(i.view));
    if target.as_ref() != Some(&in_use) {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    Ok(())
}

/// Share modes, delete-pending state and oplocks/leases (MS-FSA
/// 2.1.5.1.2 "Check Sharing Access", MS-SMB2 3.3.5.9.8): the grant, or
/// parked until the breaks the CREATE caused are acknowledged.
fn register(i: &Input<'_>, plan: &Plan, key: &FileKey) -> Result<Registered> {
    let main = key.main();
    // Any byte-range lock on the stream rules out read caching (Samba
    // `file_has_brlocks()`), wherever it lies.
    let allocation = u64::MAX;
    // No directory leasing (SMB2_GLOBAL_CAP_DIRECTORY_LEASING is not
    // announced): a lease asked for on a directory is ignored.
    let request = if plan.is_dir { CacheRequest::None } else { i.cache };
    let req = OpenRequest {
        open: i.open_id,
        access: plan.granted,
        share: i.req.share_access,
        overwrite: plan.overwrite,
        created: plan.new_node || plan.new_stream,
        is_directory: plan.is_dir,
        delete_on_close: plan.delete_on_close,
        allocation_size: allocation,
        request,
        token: i.park_token,
        first_attempt: i.first_attempt,
    };
    let now = i.server.files.instant(i.now);
    let result = i.server.files.with(|t| {
        let main_pending = *key != main && t.get(&main).is_some_and(|s| s.shares.delete_pending());
        if main_pending || (key.view == 0 && t.is_doomed(key.org, key.node)) {
            return Ok(OpenResult::Failed(NtStatus::DELETE_PENDING));
        }
        if cross_stream_conflict(t, key, plan.granted, i.req.share_access) {
            return Ok(OpenResult::Failed(NtStatus::SHARING_VIOLATION));
        }
        if let CacheRequest::Lease(l) = &request
            && let Err(s) = t.leases.check(&l.id, key)
        {
            return Ok(OpenResult::Failed(s));
        }
        let out = t.stream(key).begin_open(&req, now);
        // A break aimed at a disconnected durable open closes it instead:
        // the CREATE then starts over without it.
        if t.send_breaks(key, out.breaks) {
            match out.result {
                OpenResult::Granted(_) => {
                    let undo = t.stream(key).close(i.open_id);
                    t.complete(undo.lock_completions);
                    t.state_changed(key, undo.retry);
                }
                OpenResult::Wait => {
                    t.stream(key).unpark(req.token);
                }
                OpenResult::Failed(_) => {}
            }
            t.drop_if_idle(key);
            return Err(());
        }
        match out.result {
            OpenResult::Wait => t.park(req.token, i.mailbox.clone()),
            OpenResult::Granted(_) => {
                if let CacheRequest::Lease(l) = &request {
                    t.leases.insert(l.id, key.clone());
                }
                t.set_owner(i.open_id, i.mailbox.clone());
            }
            OpenResult::Failed(_) => t.drop_if_idle(key),
        }
        Ok(out.result)
    });
    match result {
        Err(()) => Ok(Registered::Restart),
        Ok(OpenResult::Granted(g)) => Ok(Registered::Granted(g)),
        Ok(OpenResult::Failed(s)) => Err(s.into()),
        Ok(OpenResult::Wait) => Ok(Registered::Parked),
    }
}

/// What registering a new open in the table came to.
enum Registered {
    Granted(CacheGrant),
    Parked,
    /// Disconnected durable opens were purged: close them, plan again.
    Restart,
}

/// Streams of one file share one delete (MS-FSA 2.1.5.1.2, smbtorture
/// `smb2.streams.delete`): an open of the default stream asking for DELETE
/// conflicts with an open of another stream that does not share delete, and
/// an open of a named stream that does not share delete conflicts with an
/// open of the default stream holding DELETE.
fn cross_stream_conflict(t: &crate::engine::files::Table, key: &FileKey, access: u32, share: u32) -> bool {
    use crate::engine::fsa::sharing::FILE_SHARE_DELETE;
    if key.stream.is_none() {
        return access & fa::DELETE != 0
            && t.other_streams(key).any(|(_, s)| s.shares.entries().iter().any(|e| e.share & FILE_SHARE_DELETE == 0));
    }
    let main = key.main();
    share & FILE_SHARE_DELETE == 0
        && t.get(&main).is_some_and(|s| s.shares.entries().iter().any(|e| e.access & fa::DELETE != 0))
}

/// Steps that change the file once the open is registered: overwrite,
/// stream creation, opening the data.
fn finish(i: &Input<'_>, plan: &Plan) -> Result<(Meta, Option<Arc<Content>>)> {
    let now = FileTime::from_system(i.now);
    let stream = i.name.stream.as_deref();
    let content = if plan.is_dir {
        None
    } else {
        let stored = stream.map(names::stream_to_store);
        Some(i.org.open_content(plan.node, stored.as_deref(), plan.new_stream || plan.new_node)?)
    };
    if plan.overwrite
        && let Some(c) = &content
    {
        c.set_len(0)?;
        let mut upd = MetaUpdate { written: Some(now), changed: Some(now), ..Default::default() };
        if stream.is_none() {
            // The file takes the requested attributes plus ARCHIVE (smbtorture `smb2.openattr`).
            upd.attrs = Some(new_attributes(i.req.file_attributes, false));
        }
        i.org.set_meta(plan.node, &upd)?;
    }
    if plan.overwrite || plan.new_node {
        apply_eas(i, plan.node)?;
    }
    Ok((i.org.stat(plan.node)?, content))
}

/// The ExtA create context (MS-SMB2 2.2.13.2.1): the EAs of a created or
/// overwritten file.
fn apply_eas(i: &Input<'_>, node: NodeId) -> Result<()> {
    let Some(list) = exta_list(i)? else { return Ok(()) };
    i.org.set_eas(node, &list)?;
    Ok(())
}

/// A file's EAs as storage keeps them: (name, value).
type EaList = Vec<(String, Vec<u8>)>;

/// The EA list of the ExtA context, checked against the 64 KiB limit
/// (before anything is created: `begin` calls it first).
fn exta_list(i: &Input<'_>) -> Result<Option<EaList>> {
    let Some(c) = cc::find(&i.req.contexts, cc::names::EXTA) else {
        return Ok(None);
    };
    let eas = crate::wire::fscc::ea::FileFullEaInformation::decode(c.data)?;
    let mut list: EaList = Vec::new();
    for e in eas.entries {
        let name = String::from_utf8(e.name).map_err(|_| Error::Status(NtStatus::INVALID_PARAMETER))?;
        list.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        if !e.value.is_empty() {
            list.push((name.to_ascii_uppercase(), e.value));
        }
    }
    crate::engine::fileops::check_ea_set(&list)?;
    Ok(Some(list))
}

/// True if the named stream is there for clients: an empty Mac metadata
/// stream is not (`aapl::hidden_stream`; smbtorture `vfs.fruit` "truncate
/// resource fork to 0 bytes"): opening it is OBJECT_NAME_NOT_FOUND, and
/// OPEN_IF creates it again (on the same data, so other opens see the writes).
pub(super) fn stream_exists(org: &OrgStore, node: NodeId, name: &str, mac: bool) -> Result<bool> {
    let want = crate::types::fold_name(name);
    Ok(org.list_streams(node)?.iter().any(|s| {
        !s.name.is_empty()
            && crate::types::fold_name(&names::stream_from_store(&s.name)) == want
            && !crate::engine::aapl::hidden_stream(name, s.size, mac)
    }))
}
