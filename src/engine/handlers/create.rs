//! CREATE (MS-SMB2 3.3.5.9, MS-FSA 2.1.5.1): pipes on IPC$, files,
//! directories and named streams on disk shares. The object is resolved
//! and its access decided in [`super::create_disk`]; this file checks the
//! request, registers the open and builds the response.

use crate::audit::{EventKind, EventResult};
use crate::engine::context::{Ctx, Reply, new_message};
use crate::engine::fileops::{attributes, times};
use crate::engine::names;
use crate::engine::open::{FileOpen, HandleTimes, IoStats, Open, OpenKind};
use crate::engine::pending::Rerun;
use crate::engine::pending::{PendingKind, PendingOp};
use crate::engine::replay;
use crate::engine::session::TreeKind;
use crate::engine::status::{Error, Result};
use crate::storage::{Meta, NodeKind};
use crate::types::NodeId;
use crate::wire::NtStatus;
use crate::wire::create::{CreateRequest, CreateResponse};
use crate::wire::create_context::{self as cc, CreateContext, MxAcResponse, QFidResponse};
use crate::wire::fscc::consts::{access, create_action, create_disposition as disp, create_options as opt};
use crate::wire::header::flags;

use super::create_disk::{self, Opened};

/// CREATE.
pub fn create(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let req = CreateRequest::decode(ctx.msg)?;
    let result = create_inner(ctx, &req);
    if let Err(e) = &result {
        // Failed and denied opens are part of the operation log.
        if let Ok(TreeKind::Disk(share)) = ctx.tree().map(|t| t.kind.clone()) {
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
    let durable = super::create_durable::parse(req)?;
    if durable.reconnect.is_some() {
        // A durable reconnect ignores every other field (3.3.5.9.7).
        return super::create_durable::reconnect(ctx, req, &durable);
    }
    validate(req)?;
    let tree = ctx.tree()?;
    let (share, level) = match &tree.kind {
        TreeKind::Ipc => return super::pipe::create(ctx, &req.clone()),
        TreeKind::Disk(share) => (share.clone(), tree.access),
    };
    if req.create_options & opt::OPEN_BY_FILE_ID != 0 {
        // File ids are not names we resolve (MS-SMB2 3.3.5.9: optional).
        return Err(NtStatus::NOT_SUPPORTED.into());
    }
    let mut name = names::parse(&req.name).map_err(Error::Status)?;
    let view_time = super::create_view::requested(req, &mut name, ctx.server.snapshots().is_some())?;
    // AAPL server query (macOS): checked before anything is opened.
    let aapl = match cc::find(&req.contexts, cc::names::AAPL) {
        Some(c) => Some(crate::engine::aapl::server_query(c.data, &mut ctx.conn.aapl)?),
        None => None,
    };
    let principal = ctx.session()?.principal.clone().ok_or(Error::Status(NtStatus::ACCESS_DENIED))?;
    // A Previous Versions open: the share as the generation holds it, and
    // the request planned as a plain OPEN (nothing is created in a view).
    let view_req;
    let (org, share, view, req) = match view_time {
        None => (ctx.server.org_store(share.org_id)?, share, 0, req),
        Some(t) => {
            let token = crate::engine::acl::token(&principal);
            let v = super::create_view::open(ctx.server, &share, req, &name, t, &token)?;
            view_req = CreateRequest { create_disposition: disp::OPEN, ..req.clone() };
            (v.store, v.share, v.time, &view_req)
        }
    };
    let file_id = ctx.new_file_id();
    let cache = crate::engine::caching::request(ctx.conn, req)?;
    let token = ctx.resume.unwrap_or_else(|| ctx.server.files.new_id());
    // 3.3.5.9.10: a CreateGuid already in use is a replay or a duplicate.
    let create_guid = durable.v2.map(|v| v.create_guid);
    if let Some(g) = create_guid {
        match replay::lookup(&ctx.conn.replay, &ctx.conn.pending, &ctx.conn.opens, g, ctx.resume) {
            replay::Lookup::New => {}
            replay::Lookup::Busy => return Err(NtStatus::FILE_NOT_AVAILABLE.into()),
            replay::Lookup::Found(..) if ctx.hdr.flags & flags::REPLAY_OPERATION == 0 => {
                return Err(NtStatus::DUPLICATE_OBJECTID.into());
            }
            replay::Lookup::Found(volatile, action) => {
                return super::create_durable::replay_answer(ctx, req, volatile, action);
            }
        }
    }
    let mailbox = ctx.conn.mailbox.clone();
    let input = create_disk::Input {
        server: ctx.server,
        org: &org,
        share: &share,
        level,
        req,
        name: &name,
        token: crate::engine::acl::token(&principal),
        open_id: crate::engine::fsa::OpenId(file_id.persistent),
        now: ctx.now,
        cache,
        park_token: token,
        first_attempt: ctx.resume.is_none(),
        mailbox: &mailbox,
        mac: ctx.conn.aapl.active,
        view,
    };
    let opened = match create_disk::open(&input)? {
        create_disk::Step::Opened(o) => o,
        create_disk::Step::Parked(key) => {
            // Interim STATUS_PENDING; the CREATE runs again when the
            // breaks it caused are acknowledged or time out (3.3.4.2).
            if ctx.resume.is_none() {
                let rerun = Rerun { key, msg: ctx.msg.to_vec(), related_file_id: ctx.related_file_id, rest: None };
                let op = PendingOp {
                    hdr: ctx.hdr.clone(),
                    encrypted: ctx.encrypted,
                    kind: PendingKind::Rerun(Box::new(rerun)),
                };
                ctx.conn.pending.insert(token, op);
            }
            if let Some(g) = create_guid {
                replay::parked(&mut ctx.conn.replay, g, token);
            }
            return Ok(Reply::Pending(token));
        }
    };
    let path = display_path(&name);
    // The operation log says which version was opened.
    let logged = match view {
        0 => path.clone(),
        t => format!("{}\\{path}", names::gmt_token(t)).trim_end_matches('\\').to_string(),
    };
    ctx.audit(
        EventKind::Open {
            share: share.name.clone(),
            path: logged,
            desired_access: req.desired_access,
            granted_access: opened.granted,
            disposition: disposition_name(req.create_disposition).into(),
            created: opened.created,
        },
        EventResult::Ok,
    );
    if opened.created && opened.is_dir {
        ctx.audit(EventKind::Mkdir { share: share.name.clone(), path: path.clone() }, EventResult::Ok);
    }
    let mut contexts = response_contexts(req, &opened, share.root);
    if let crate::engine::fsa::lease::CacheGrant::Lease(l) = &opened.grant {
        contexts.push((cc::names::RQLS, crate::engine::caching::lease_context(l)));
    }
    if let Some(data) = aapl {
        contexts.push((cc::names::AAPL, data));
    }
    let open_id = crate::engine::fsa::OpenId(file_id.persistent);
    let granted = super::create_durable::grant(ctx, &durable, open_id, &opened.key, &opened.grant, &cache);
    if let Some(g) = create_guid {
        replay::finished(&mut ctx.conn.replay, &ctx.conn.opens, g, Some((file_id.volatile, opened.action)));
    }
    contexts.extend(granted);
    let resp_meta = opened.meta.clone();
    // AlSi (MS-SMB2 2.2.13.2.4): the allocation a created or overwritten
    // file asks for; nothing is reserved, but the open reports it.
    let alloc_hint = match cc::find(&req.contexts, cc::names::ALSI) {
        Some(c)
            if opened.created || matches!(opened.action, create_action::OVERWRITTEN | create_action::SUPERSEDED) =>
        {
            let alsi = cc::AllocationSizeContext::decode(c.data)?;
            alsi.allocation_size.div_ceil(4096) * 4096
        }
        _ => 0,
    };
    let (alloc_size, size) = match &opened.content {
        Some(c) => (c.alloc_size().max(alloc_hint), c.len()),
        None => (0, 0),
    };
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
            level,
            node: opened.meta.id,
            is_dir: opened.is_dir,
            stream: name.stream.clone(),
            key: opened.key,
            content: opened.content,
            path,
            create_options: req.create_options,
            share_access: req.share_access,
            dir_enum: None,
            stats: IoStats::default(),
            times: HandleTimes::default(),
            position: 0,
            alloc_hint,
            mac: ctx.conn.aapl.active,
            view,
            mode: req.create_options
                & (opt::WRITE_THROUGH
                    | opt::SEQUENTIAL_ONLY
                    | opt::NO_INTERMEDIATE_BUFFERING
                    | opt::SYNCHRONOUS_IO_ALERT
                    | opt::SYNCHRONOUS_IO_NONALERT),
        })),
    };
    if opened.created
        && let Some(f) = open.file()
    {
        if f.stream.is_some() {
            crate::engine::notify::stream_added(ctx.server, f);
        } else {
            crate::engine::notify::added(ctx.server, f, f.is_dir);
        }
    }
    ctx.conn.opens.insert(file_id.volatile, open);
    replay::opened(&mut ctx.conn.replay, &ctx.conn.opens, ctx.hdr, file_id.volatile);
    let contexts: Vec<CreateContext<'_>> = contexts.iter().map(|(n, d)| CreateContext { name: n, data: d }).collect();
    let resp = CreateResponse {
        oplock_level: opened.grant.oplock_level(),
        flags: 0,
        create_action: opened.action,
        times: times(&resp_meta),
        allocation_size: alloc_size,
        end_of_file: size,
        file_attributes: attributes(&resp_meta),
        file_id,
        contexts,
    };
    let mut out = new_message();
    resp.encode(&mut out);
    Ok(Reply::ok(out))
}

/// MxAc and QFid response contexts (MS-SMB2 2.2.14.2.5, 2.2.14.2.9).
fn response_contexts(req: &CreateRequest<'_>, opened: &Opened, volume: NodeId) -> Vec<(&'static [u8], Vec<u8>)> {
    let mut out: Vec<(&'static [u8], Vec<u8>)> = Vec::new();
    if cc::find(&req.contexts, cc::names::MXAC).is_some() {
        let mut d = Vec::new();
        MxAcResponse { query_status: NtStatus::SUCCESS, maximal_access: opened.maximal }.encode(&mut d);
        out.push((cc::names::MXAC, d));
    }
    if cc::find(&req.contexts, cc::names::QFID).is_some() {
        let mut d = Vec::new();
        QFidResponse { disk_file_id: opened.meta.id.0, volume_id: volume.0 }.encode(&mut d);
        out.push((cc::names::QFID, d));
    }
    out
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
    if req.create_options & (opt::RESERVE_OPFILTER | 0x80) != 0 {
        // FILE_RESERVE_OPFILTER and FILE_OPEN_FOR_RECOVERY: Windows answers NOT_SUPPORTED.
        return Err(NtStatus::NOT_SUPPORTED.into());
    }
    // Invalid access bits are refused before invalid attributes (smbtorture
    // `smb2.create.gentest` against Windows).
    if req.desired_access & crate::engine::fsa::access::INVALID_ACCESS_BITS != 0 {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    // Settable attribute bits only: VOLUME, DEVICE, INTEGRITY_STREAM and
    // everything above 0x8000 are invalid (smbtorture `smb2.create.gentest`).
    if req.file_attributes & !0x0000_7FB7 != 0 {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    // Create context names are at least four bytes (smbtorture `smb2.create.blob`).
    if req.contexts.iter().any(|c| c.name.len() < 4) {
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

/// `dir\file[:stream]` for logs.
fn display_path(name: &names::ParsedName) -> String {
    let mut p = name.components.join("\\");
    if let Some(s) = &name.stream {
        p.push(':');
        p.push_str(s);
    }
    p
}

/// Sizes as a CREATE or CLOSE response reports them.
pub fn sizes(meta: &Meta) -> (u64, u64) {
    (crate::engine::fileops::alloc(meta), if meta.kind == NodeKind::Directory { 0 } else { meta.size })
}
