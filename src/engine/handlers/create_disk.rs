//! The disk part of CREATE (MS-FSA 2.1.5.1): resolve the name, decide the
//! access (share permission, security descriptor, read-only attribute:
//! [`fsa::access`]), apply the create disposition, and enter the open in
//! the shared open table (share modes, delete-pending: [`fsa::stream`]).
//!
//! Order (MS-FSA 2.1.5.1.2, as Windows and Samba observe it): path, access,
//! disposition rules, then share modes and delete-pending, and only then
//! anything that changes the file (overwrite, stream creation), so that a
//! refused open never truncates anybody's data.

use std::sync::Arc;
use std::time::SystemTime;

use crate::engine::acl;
use crate::engine::fileops::{self, new_attributes};
use crate::engine::fsa::access::{self as fa, ExistingObject};
use crate::engine::fsa::lease::CacheRequest;
use crate::engine::fsa::sd::SecurityDescriptor;
use crate::engine::fsa::sharing::{self, DeleteTarget};
use crate::engine::fsa::sid::Token;
use crate::engine::fsa::stream::{OpenRequest, OpenResult};
use crate::engine::fsa::{FileKey, OpenId};
use crate::engine::names::{self, ParsedName};
use crate::engine::server::Server;
use crate::engine::services::{Access, ShareRecord};
use crate::engine::status::{Error, Result};
use crate::storage::{Content, Meta, MetaUpdate, NodeKind, OrgStore, StorageError};
use crate::types::{FileTime, NodeId};
use crate::wire::NtStatus;
use crate::wire::create::CreateRequest;
use crate::wire::create_context as cc;
use crate::wire::fscc::consts::{create_action, create_disposition as disp, create_options as opt, file_attributes};

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
}

/// Decided, not yet registered: what the table and the final steps need.
struct Plan {
    node: NodeId,
    granted: u32,
    maximal: u32,
    action: u32,
    overwrite: bool,
    /// The node was created by this CREATE.
    new_node: bool,
    /// The named stream must be created.
    new_stream: bool,
    delete_on_close: bool,
    is_dir: bool,
}

/// Runs the disk CREATE.
pub fn open(i: &Input<'_>) -> Result<Opened> {
    let plan = plan(i)?;
    let key = FileKey::new(i.share.org_id, plan.node, i.name.stream.as_deref().unwrap_or(""));
    register(i, &plan, &key)?;
    match finish(i, &plan) {
        Ok((meta, content)) => Ok(Opened {
            meta,
            key,
            content,
            action: plan.action,
            granted: plan.granted,
            maximal: plan.maximal,
            created: plan.new_node || plan.new_stream,
            is_dir: plan.is_dir,
        }),
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
        t.drop_if_idle(key);
    });
}

fn plan(i: &Input<'_>) -> Result<Plan> {
    let Some((leaf, dirs)) = i.name.components.split_last() else {
        return plan_root(i);
    };
    let parent = fileops::walk(i.org, i.share.root, dirs)?;
    match fileops::lookup(i.org, parent, leaf)? {
        Some(node) => plan_existing(i, parent, node),
        None => plan_new(i, parent, leaf),
    }
}

fn wants(i: &Input<'_>, bit: u32) -> bool {
    i.req.create_options & bit != 0
}

/// The share root: always an existing directory that cannot be replaced or deleted.
fn plan_root(i: &Input<'_>) -> Result<Plan> {
    let root = i.share.root;
    if i.name.stream.is_none() && wants(i, opt::NON_DIRECTORY_FILE) {
        return Err(NtStatus::FILE_IS_A_DIRECTORY.into());
    }
    match i.req.create_disposition {
        disp::CREATE => return Err(NtStatus::OBJECT_NAME_COLLISION.into()),
        disp::OPEN | disp::OPEN_IF => {}
        _ => return Err(NtStatus::INVALID_PARAMETER.into()),
    }
    let acl = acl::granted(i.org, i.share.org_id, root, true, true, &i.token)?;
    let obj = ExistingObject { share: fa::share_mask(i.level), acl, parent_delete_child: false, read_only_file: false };
    let granted = fa::open_existing(i.req.desired_access, &obj)?;
    if wants(i, opt::DELETE_ON_CLOSE) {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    Ok(Plan {
        node: root,
        granted,
        maximal: obj.maximal_access(),
        action: create_action::OPENED,
        overwrite: false,
        new_node: false,
        new_stream: false,
        delete_on_close: false,
        is_dir: i.name.stream.is_none(),
    })
}

fn plan_existing(i: &Input<'_>, parent: NodeId, node: NodeId) -> Result<Plan> {
    let meta = i.org.stat(node)?;
    let node_is_dir = meta.kind == NodeKind::Directory;
    let stream = i.name.stream.as_deref();
    let exists = match stream {
        None => true,
        Some(s) => stream_exists(i.org, node, s)?,
    };
    let d = i.req.create_disposition;
    if exists && d == disp::CREATE {
        // A name collision wins over the file/directory type checks (smbtorture `smb2.mkdir`).
        return Err(NtStatus::OBJECT_NAME_COLLISION.into());
    }
    if i.name.data_stream_type {
        // `name::$DATA` is a data stream: never a directory (smbtorture `smb2.streams.dir`).
        if wants(i, opt::DIRECTORY_FILE) {
            return Err(NtStatus::NOT_A_DIRECTORY.into());
        }
        if node_is_dir {
            return Err(NtStatus::FILE_IS_A_DIRECTORY.into());
        }
    }
    match stream {
        None if wants(i, opt::DIRECTORY_FILE) && !node_is_dir => return Err(NtStatus::NOT_A_DIRECTORY.into()),
        None if wants(i, opt::NON_DIRECTORY_FILE) && node_is_dir => {
            return Err(NtStatus::FILE_IS_A_DIRECTORY.into());
        }
        Some(_) if wants(i, opt::DIRECTORY_FILE) => return Err(NtStatus::NOT_A_DIRECTORY.into()),
        _ => {}
    }
    if i.name.dir_stream_type && !node_is_dir {
        return Err(NtStatus::NOT_A_DIRECTORY.into());
    }
    let read_only = meta.attrs & file_attributes::READONLY != 0;
    let acl = acl::granted(i.org, i.share.org_id, node, node_is_dir, false, &i.token)?;
    let parent_acl = acl::granted(i.org, i.share.org_id, parent, true, parent == i.share.root, &i.token)?;
    let obj = ExistingObject {
        share: fa::share_mask(i.level),
        acl,
        parent_delete_child: parent_acl & fa::FILE_DELETE_CHILD != 0,
        read_only_file: read_only && !node_is_dir,
    };
    let (action, overwrite) = if exists {
        match d {
            disp::SUPERSEDE => (create_action::SUPERSEDED, true),
            disp::OVERWRITE | disp::OVERWRITE_IF => (create_action::OVERWRITTEN, true),
            _ => (create_action::OPENED, false),
        }
    } else {
        match d {
            disp::OPEN | disp::OVERWRITE => return Err(NtStatus::OBJECT_NAME_NOT_FOUND.into()),
            _ => (create_action::CREATED, false),
        }
    };
    if overwrite && node_is_dir && stream.is_none() {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let granted = fa::open_existing(i.req.desired_access, &obj)?;
    let modifies = overwrite || !exists;
    if modifies {
        // Overwriting or adding a stream writes the file whatever access
        // was asked for (MS-FSA 2.1.5.1.2.1).
        if obj.max_allowed() & fa::FILE_WRITE_DATA == 0 {
            return Err(NtStatus::ACCESS_DENIED.into());
        }
        if overwrite && stream.is_none() {
            sharing::check_overwrite(meta.attrs, i.req.file_attributes)?;
        }
    }
    let delete_on_close = if wants(i, opt::DELETE_ON_CLOSE) {
        let dir_empty = !node_is_dir || i.org.list_after(node, None, 1)?.is_empty();
        let target = DeleteTarget {
            granted,
            read_only: read_only && stream.is_none(),
            is_directory: node_is_dir && stream.is_none(),
            dir_empty,
            is_share_root: false,
            share_writable: fa::share_writable(i.level),
        };
        sharing::check_create_delete_on_close(&target)?
    } else {
        false
    };
    Ok(Plan {
        node,
        granted,
        maximal: obj.maximal_access(),
        action,
        overwrite,
        new_node: false,
        new_stream: !exists,
        delete_on_close,
        is_dir: node_is_dir && stream.is_none(),
    })
}

fn plan_new(i: &Input<'_>, parent: NodeId, leaf: &str) -> Result<Plan> {
    let d = i.req.create_disposition;
    if d == disp::OPEN || d == disp::OVERWRITE {
        return Err(NtStatus::OBJECT_NAME_NOT_FOUND.into());
    }
    if wants(i, opt::DIRECTORY_FILE) && (i.name.stream.is_some() || i.name.data_stream_type) {
        return Err(NtStatus::NOT_A_DIRECTORY.into());
    }
    let is_dir = wants(i, opt::DIRECTORY_FILE);
    if is_dir && d != disp::CREATE && d != disp::OPEN_IF {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    if i.req.file_attributes & file_attributes::ENCRYPTED != 0 {
        // No EFS (FILE_SUPPORTS_ENCRYPTION is not announced): refused as a
        // standalone Windows server refuses it.
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    let share = fa::share_mask(i.level);
    let parent_sd = acl::load(i.org, i.share.org_id, parent, true, parent == i.share.root)?;
    fa::check_create_in(parent_sd.max_allowed(&i.token), share, is_dir)?;
    let granted = fa::open_new(i.req.desired_access, share)?;
    let delete_on_close = if wants(i, opt::DELETE_ON_CLOSE) {
        let target = DeleteTarget {
            granted,
            read_only: !is_dir && i.req.file_attributes & file_attributes::READONLY != 0,
            is_directory: is_dir,
            dir_empty: true,
            is_share_root: false,
            share_writable: fa::share_writable(i.level),
        };
        sharing::check_create_delete_on_close(&target)?
    } else {
        false
    };
    let sd = new_descriptor(i, &parent_sd, is_dir)?;
    let kind = if is_dir { NodeKind::Directory } else { NodeKind::File };
    let now = FileTime::from_system(i.now);
    // Name tunneling: a name that just left comes back with its long form
    // and creation time (see `files::Tunnel`).
    let tunneled = i.server.files.with(|t| t.tunnel_arrive((i.share.org_id, parent), leaf, now));
    let name = tunneled.as_ref().map_or(leaf, |(n, _)| n.as_str());
    let node = match i.org.create(parent, name, kind, new_attributes(i.req.file_attributes, is_dir), now) {
        Ok(n) => n,
        // Created by someone else in between.
        Err(StorageError::Exists) => return Err(NtStatus::OBJECT_NAME_COLLISION.into()),
        Err(e) => return Err(e.into()),
    };
    i.org.set_security(node, &sd.encode(ALL_PARTS))?;
    if let Some((_, created)) = tunneled {
        i.org.set_meta(node, &MetaUpdate { created: Some(created), ..Default::default() })?;
    }
    super::create::touch_dir(i.org, parent, now)?;
    Ok(Plan {
        node,
        granted,
        maximal: share | fa::FILE_READ_ATTRIBUTES,
        action: create_action::CREATED,
        overwrite: false,
        new_node: true,
        new_stream: i.name.stream.is_some(),
        delete_on_close,
        is_dir,
    })
}

/// OWNER | GROUP | DACL security information.
pub const ALL_PARTS: u32 =
    fa::OWNER_SECURITY_INFORMATION | fa::GROUP_SECURITY_INFORMATION | fa::DACL_SECURITY_INFORMATION;

/// The new object's descriptor: the SecD create context's parts where it
/// has them (MS-SMB2 2.2.13.2.2), the inherited ones otherwise.
fn new_descriptor(i: &Input<'_>, parent: &SecurityDescriptor, is_dir: bool) -> Result<SecurityDescriptor> {
    let mut sd = acl::for_new(parent, &i.token, i.share.org_id, is_dir);
    if let Some(c) = cc::find(&i.req.contexts, cc::names::SECD) {
        let mut given = SecurityDescriptor::parse(c.data).map_err(Error::Status)?;
        acl::prepare_for_set(&mut given);
        let mut parts = 0;
        if given.owner.is_some() {
            parts |= fa::OWNER_SECURITY_INFORMATION;
        }
        if given.group.is_some() {
            parts |= fa::GROUP_SECURITY_INFORMATION;
        }
        if given.control & crate::engine::fsa::sd::control::DACL_PRESENT != 0 {
            parts |= fa::DACL_SECURITY_INFORMATION;
        }
        sd.apply(&given, parts, &i.token).map_err(Error::Status)?;
    }
    Ok(sd)
}

/// Share modes and delete-pending state (MS-FSA 2.1.5.1.2, "Check Sharing
/// Access"); a named stream of a delete-pending file cannot be opened either.
fn register(i: &Input<'_>, plan: &Plan, key: &FileKey) -> Result<()> {
    let main = FileKey::new(key.org, key.node, "");
    let allocation = if plan.is_dir { 0 } else { i.org.stat(plan.node).map(|m| m.alloc_size).unwrap_or(0) };
    let req = OpenRequest {
        open: i.open_id,
        access: plan.granted,
        share: i.req.share_access,
        overwrite: plan.overwrite,
        created: plan.new_node || plan.new_stream,
        is_directory: plan.is_dir,
        delete_on_close: plan.delete_on_close,
        allocation_size: allocation,
        request: CacheRequest::None,
        token: i.open_id.0,
        first_attempt: true,
    };
    let now = i.server.files.instant(i.now);
    let result = i.server.files.with(|t| {
        let main_pending = *key != main && t.get(&main).is_some_and(|s| s.shares.delete_pending());
        if main_pending || t.is_doomed(key.org, key.node) {
            return OpenResult::Failed(NtStatus::DELETE_PENDING);
        }
        if cross_stream_conflict(t, key, plan.granted, i.req.share_access) {
            return OpenResult::Failed(NtStatus::SHARING_VIOLATION);
        }
        let out = t.stream(key).begin_open(&req, now);
        if out.result == OpenResult::Wait {
            // No oplocks are granted yet, so nothing should make us wait.
            t.stream(key).unpark(req.token);
        }
        if !matches!(out.result, OpenResult::Granted(_)) {
            t.drop_if_idle(key);
        }
        out.result
    });
    match result {
        OpenResult::Granted(_) => Ok(()),
        OpenResult::Failed(s) => Err(s.into()),
        OpenResult::Wait => Err(NtStatus::SHARING_VIOLATION.into()),
    }
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
    let main = FileKey::new(key.org, key.node, "");
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
    let Some(c) = cc::find(&i.req.contexts, cc::names::EXTA) else {
        return Ok(());
    };
    let eas = crate::wire::fscc::ea::FileFullEaInformation::decode(c.data)?;
    let mut list: Vec<(String, Vec<u8>)> = Vec::new();
    for e in eas.entries {
        let name = String::from_utf8(e.name).map_err(|_| Error::Status(NtStatus::INVALID_PARAMETER))?;
        list.retain(|(n, _)| !n.eq_ignore_ascii_case(&name));
        if !e.value.is_empty() {
            list.push((name.to_ascii_uppercase(), e.value));
        }
    }
    i.org.set_eas(node, &list)?;
    Ok(())
}

fn stream_exists(org: &OrgStore, node: NodeId, name: &str) -> Result<bool> {
    let want = name.to_uppercase();
    Ok(org
        .list_streams(node)?
        .iter()
        .any(|s| !s.name.is_empty() && names::stream_from_store(&s.name).to_uppercase() == want))
}
