//! CREATE (MS-SMB2 3.3.5.9, MS-FSA 2.1.5.1): pipes on IPC$, files,
//! directories and named streams on disk shares.

use crate::audit::{EventKind, EventResult};
use crate::engine::connection::{Ctx, Reply, new_message};
use crate::engine::fileops::{self, alloc, attributes, new_attributes, times};
use crate::engine::names::{self, ParsedName};
use crate::engine::open::{FileOpen, IoStats, Open, OpenKind};
use crate::engine::services::{Access, ShareRecord};
use crate::engine::session::TreeKind;
use crate::engine::status::{Error, Result};
use crate::storage::{Meta, MetaUpdate, NodeKind, OrgStore};
use crate::types::{FileTime, NodeId};
use crate::wire::NtStatus;
use crate::wire::create::{CreateRequest, CreateResponse};
use crate::wire::create_context::{self as cc, CreateContext, MxAcResponse, QFidResponse};
use crate::wire::fscc::consts::{
    access, create_action, create_disposition as disp, create_options as opt, file_attributes,
};

/// CREATE.
pub fn create(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let req = CreateRequest::decode(ctx.msg)?;
    let result = create_inner(ctx, &req);
    if let Err(e) = &result {
        // Failed and denied opens are part of the operation log.
        if let Ok(crate::engine::session::TreeKind::Disk(share)) = ctx.tree().map(|t| t.kind.clone()) {
            let kind = EventKind::Open {
                share: share.name,
                path: req.name.clone(),
                desired_access: req.desired_access,
                granted_access: 0,
                disposition: disposition_name(req.create_disposition).into(),
                created: false,
            };
            ctx.audit(kind, crate::engine::audit::result_of(e.status()));
        }
    }
    result
}

/// The spec name of a CreateDisposition, for the log.
fn disposition_name(d: u32) -> &'static str {
    match d {
        disp::SUPERSEDE => "supersede",
        disp::OPEN => "open",
        disp::CREATE => "create",
        disp::OPEN_IF => "open_if",
        disp::OVERWRITE => "overwrite",
        disp::OVERWRITE_IF => "overwrite_if",
        _ => "invalid",
    }
}

fn create_inner(ctx: &mut Ctx<'_>, req: &CreateRequest<'_>) -> Result<Reply> {
    let req = req.clone();
    validate(&req)?;
    let tree = ctx.tree()?;
    let (share, level) = match &tree.kind {
        TreeKind::Ipc => return super::pipe::create(ctx, &req),
        TreeKind::Disk(share) => (share.clone(), tree.access),
    };
    let name = names::parse(&req.name).map_err(Error::Status)?;
    let org = ctx.server.org_store(share.org_id)?;
    let now = FileTime::from_system(ctx.now);
    let opened = open_node(&org, &share, level, &req, &name, now)?;
    let meta = org.stat(opened.node)?;
    let content = if meta.kind == NodeKind::File || name.stream.is_some() {
        Some(org.open_content(opened.node, name.stream.as_deref(), opened.action == create_action::CREATED)?)
    } else {
        None
    };
    if matches!(opened.action, create_action::OVERWRITTEN | create_action::SUPERSEDED)
        && let Some(c) = &content
    {
        c.set_len(0)?;
    }
    let (size, alloc_size) = match &content {
        Some(c) => (c.len(), c.alloc_size()),
        None => (0, 0),
    };
    let file_id = ctx.conn.new_file_id();
    let maximal = fileops::effective_max(level, meta.attrs & file_attributes::READONLY != 0);
    let mut resp_ctx_data: Vec<(&'static [u8], Vec<u8>)> = Vec::new();
    if cc::find(&req.contexts, cc::names::MXAC).is_some() {
        let mut d = Vec::new();
        MxAcResponse { query_status: NtStatus::SUCCESS, maximal_access: maximal }.encode(&mut d);
        resp_ctx_data.push((cc::names::MXAC, d));
    }
    if cc::find(&req.contexts, cc::names::QFID).is_some() {
        let mut d = Vec::new();
        QFidResponse { disk_file_id: meta.id.0, volume_id: share.root.0 }.encode(&mut d);
        resp_ctx_data.push((cc::names::QFID, d));
    }
    let path = display_path(&name);
    let created = opened.action == create_action::CREATED;
    let is_dir = meta.kind == NodeKind::Directory && name.stream.is_none();
    ctx.audit(
        EventKind::Open {
            share: share.name.clone(),
            path: path.clone(),
            desired_access: req.desired_access,
            granted_access: opened.granted,
            disposition: disposition_name(req.create_disposition).into(),
            created,
        },
        EventResult::Ok,
    );
    if created && is_dir {
        ctx.audit(EventKind::Mkdir { share: share.name.clone(), path: path.clone() }, EventResult::Ok);
    }
    let open = Open {
        file_id,
        session_id: ctx.hdr.session_id,
        tree_id: ctx.hdr.tree_id,
        granted_access: opened.granted,
        kind: OpenKind::File(Box::new(FileOpen {
            org,
            org_id: share.org_id,
            root: share.root,
            share: share.name.clone(),
            node: meta.id,
            is_dir: meta.kind == NodeKind::Directory && name.stream.is_none(),
            stream: name.stream.clone(),
            content,
            path,
            create_options: req.create_options,
            share_access: req.share_access,
            delete_on_close: req.create_options & opt::DELETE_ON_CLOSE != 0,
            dir_enum: None,
            stats: IoStats::default(),
            written: false,
            sticky_write_time: false,
            position: 0,
            mode: req.create_options
                & (opt::WRITE_THROUGH
                    | opt::SEQUENTIAL_ONLY
                    | opt::NO_INTERMEDIATE_BUFFERING
                    | opt::SYNCHRONOUS_IO_ALERT
                    | opt::SYNCHRONOUS_IO_NONALERT),
        })),
    };
    ctx.conn.opens.insert(file_id.volatile, open);
    let contexts: Vec<CreateContext<'_>> =
        resp_ctx_data.iter().map(|(n, d)| CreateContext { name: n, data: d }).collect();
    let resp = CreateResponse {
        oplock_level: 0,
        flags: 0,
        create_action: opened.action,
        times: times(&meta),
        allocation_size: if meta.kind == NodeKind::Directory && name.stream.is_none() { 0 } else { alloc_size },
        end_of_file: if meta.kind == NodeKind::Directory && name.stream.is_none() { 0 } else { size },
        file_attributes: attributes(&meta),
        file_id,
        contexts,
    };
    let mut out = new_message();
    resp.encode(&mut out);
    Ok(Reply::ok(out))
}

/// Parameter checks of MS-SMB2 3.3.5.9 that need no file system.
fn validate(req: &CreateRequest<'_>) -> Result<()> {
    if req.impersonation_level > 3 {
        return Err(NtStatus::BAD_IMPERSONATION_LEVEL.into());
    }
    if req.create_disposition > disp::OVERWRITE_IF {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    if req.create_options & opt::DIRECTORY_FILE != 0 && req.create_options & opt::NON_DIRECTORY_FILE != 0 {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    // Reserved option bits the server must refuse (3.3.5.9).
    const RESERVED: u32 = 0xFF00_0000;
    if req.create_options & RESERVED != 0 {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    if req.file_attributes & !0x0007_FFB7 != 0 {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    if req.desired_access == 0 {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    if req.create_options & opt::DELETE_ON_CLOSE != 0
        && access::map_generic(req.desired_access) & access::DELETE == 0
        && req.desired_access & access::MAXIMUM_ALLOWED == 0
    {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    Ok(())
}

/// The node a CREATE ends up on, what happened to it, and the access granted.
struct Opened {
    node: NodeId,
    action: u32,
    granted: u32,
}

/// Resolves the name and applies the create disposition (MS-FSA 2.1.5.1).
fn open_node(
    org: &OrgStore,
    share: &ShareRecord,
    level: Access,
    req: &CreateRequest<'_>,
    name: &ParsedName,
    now: FileTime,
) -> Result<Opened> {
    let want_dir = req.create_options & opt::DIRECTORY_FILE != 0;
    let want_file = req.create_options & opt::NON_DIRECTORY_FILE != 0;
    let Some((leaf, dirs)) = name.components.split_last() else {
        // The share root itself.
        if want_file && name.stream.is_none() {
            return Err(NtStatus::FILE_IS_A_DIRECTORY.into());
        }
        let granted = fileops::grant(req.desired_access, level, false)?;
        return Ok(Opened { node: share.root, action: create_action::OPENED, granted });
    };
    let parent = fileops::walk(org, share.root, dirs)?;
    let existing = org.lookup(parent, leaf)?;
    let d = req.create_disposition;
    let Some(node) = existing else {
        if d == disp::OPEN || d == disp::OVERWRITE {
            return Err(NtStatus::OBJECT_NAME_NOT_FOUND.into());
        }
        if want_dir && d != disp::CREATE && d != disp::OPEN_IF {
            return Err(NtStatus::INVALID_PARAMETER.into());
        }
        if level < Access::ReadWrite {
            return Err(NtStatus::ACCESS_DENIED.into());
        }
        let granted = fileops::grant(req.desired_access, level, false)?;
        // A stream of a missing file creates the file too (NTFS behaviour).
        let kind = if want_dir && name.stream.is_none() { NodeKind::Directory } else { NodeKind::File };
        let attrs = new_attributes(req.file_attributes, kind == NodeKind::Directory);
        let node = org.create(parent, leaf, kind, attrs, now)?;
        touch_dir(org, parent, now)?;
        return Ok(Opened { node, action: create_action::CREATED, granted });
    };
    let meta = org.stat(node)?;
    let is_dir = meta.kind == NodeKind::Directory;
    if name.stream.is_none() {
        if want_dir && !is_dir {
            return Err(NtStatus::NOT_A_DIRECTORY.into());
        }
        if want_file && is_dir {
            return Err(NtStatus::FILE_IS_A_DIRECTORY.into());
        }
    }
    let readonly = meta.attrs & file_attributes::READONLY != 0;
    if d == disp::CREATE {
        // A named stream may be created on an existing file.
        if name.stream.is_none() || stream_exists(org, node, name)? {
            return Err(NtStatus::OBJECT_NAME_COLLISION.into());
        }
    }
    if readonly && req.create_options & opt::DELETE_ON_CLOSE != 0 {
        return Err(NtStatus::CANNOT_DELETE.into());
    }
    let overwrite = matches!(d, disp::OVERWRITE | disp::OVERWRITE_IF | disp::SUPERSEDE);
    if overwrite && is_dir && name.stream.is_none() {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    if overwrite && readonly {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    let mut granted = fileops::grant(req.desired_access, level, readonly)?;
    if overwrite {
        // Overwriting needs write access whatever was asked (MS-FSA 2.1.5.1.2).
        if level < Access::ReadWrite {
            return Err(NtStatus::ACCESS_DENIED.into());
        }
        granted |= 0;
        let attrs = new_attributes(req.file_attributes, false) | (meta.attrs & !0x0000_0027);
        org.set_meta(
            node,
            &MetaUpdate {
                attrs: Some(attrs & !file_attributes::NORMAL),
                written: Some(now),
                changed: Some(now),
                ..Default::default()
            },
        )?;
    }
    let action = match d {
        disp::SUPERSEDE => create_action::SUPERSEDED,
        disp::OVERWRITE | disp::OVERWRITE_IF => create_action::OVERWRITTEN,
        disp::CREATE => create_action::CREATED,
        _ => create_action::OPENED,
    };
    Ok(Opened { node, action, granted })
}

fn stream_exists(org: &OrgStore, node: NodeId, name: &ParsedName) -> Result<bool> {
    let Some(s) = &name.stream else {
        return Ok(true);
    };
    Ok(org
        .list_streams(node)?
        .iter()
        .any(|i| i.name.eq_ignore_ascii_case(s) || i.name.to_uppercase() == s.to_uppercase()))
}

/// A directory's LastWriteTime and ChangeTime move when an entry is added or removed.
pub fn touch_dir(org: &OrgStore, dir: NodeId, now: FileTime) -> Result<()> {
    org.set_meta(dir, &MetaUpdate { written: Some(now), changed: Some(now), ..Default::default() })?;
    Ok(())
}

/// `dir\file[:stream]` for logs.
fn display_path(name: &ParsedName) -> String {
    let mut p = name.components.join("\\");
    if let Some(s) = &name.stream {
        p.push(':');
        p.push_str(s);
    }
    p
}

/// Sizes as a CREATE or CLOSE response reports them.
pub fn sizes(meta: &Meta) -> (u64, u64) {
    (alloc(meta), if meta.kind == NodeKind::Directory { 0 } else { meta.size })
}
