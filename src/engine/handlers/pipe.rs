//! Named pipes on IPC$ (MS-SMB2 3.3.5.9 for CREATE, 3.3.5.12/13 READ/WRITE,
//! 3.3.5.15.1 FSCTL_PIPE_TRANSCEIVE), backed by `crate::rpc` endpoints.

use crate::engine::context::{Ctx, Reply, new_message};
use crate::engine::open::{Open, OpenKind};
use crate::engine::status::{Error, Result};
use crate::rpc::{self, RpcError, ShareDirectory, ShareInfo};
use crate::wire::NtStatus;
use crate::wire::create::{CreateRequest, CreateResponse};
use crate::wire::fscc::consts::{create_action, file_attributes as attributes};

/// What srvsvc may show this session: its organization's visible shares and IPC$.
struct SessionShares {
    shares: Vec<ShareInfo>,
    server: String,
    domain: String,
}

impl ShareDirectory for SessionShares {
    fn shares(&self) -> Vec<ShareInfo> {
        self.shares.clone()
    }
    fn server_name(&self) -> String {
        self.server.clone()
    }
    fn domain_name(&self) -> String {
        self.domain.clone()
    }
}

fn directory(ctx: &Ctx<'_>) -> Result<SessionShares> {
    let p = ctx.session()?.principal.clone().ok_or(Error::Status(NtStatus::ACCESS_DENIED))?;
    let mut shares: Vec<ShareInfo> = ctx
        .server
        .directory
        .visible_shares(p.org_id, p.user_id)
        .into_iter()
        .map(|s| ShareInfo { name: s.name, share_type: rpc::STYPE_DISKTREE, comment: s.comment, path: "C:\\".into() })
        .collect();
    shares.push(ShareInfo {
        name: "IPC$".into(),
        share_type: rpc::STYPE_IPC | rpc::STYPE_SPECIAL,
        comment: "IPC Service".into(),
        path: String::new(),
    });
    Ok(SessionShares { shares, server: ctx.server.config.server.name.clone(), domain: p.org })
}

fn rpc_status(e: RpcError) -> Error {
    Error::Status(match e {
        RpcError::Busy => NtStatus::PIPE_BUSY,
        RpcError::Overflow => NtStatus::INSUFFICIENT_RESOURCES,
        RpcError::Protocol | RpcError::Disconnected => NtStatus::PIPE_DISCONNECTED,
    })
}

/// CREATE on IPC$: opens a pipe endpoint by name.
pub fn create(ctx: &mut Ctx<'_>, req: &CreateRequest<'_>) -> Result<Reply> {
    let pipe = rpc::open_pipe(&req.name).ok_or(Error::Status(NtStatus::OBJECT_NAME_NOT_FOUND))?;
    let file_id = ctx.new_file_id();
    let open = Open {
        file_id,
        session_id: ctx.hdr.session_id,
        tree_id: ctx.hdr.tree_id,
        granted_access: req.desired_access,
        kind: OpenKind::Pipe(pipe),
    };
    ctx.conn.opens.insert(file_id.volatile, open);
    let resp = CreateResponse {
        create_action: create_action::OPENED,
        allocation_size: 4096,
        file_attributes: attributes::NORMAL,
        file_id,
        ..Default::default()
    };
    let mut out = new_message();
    resp.encode(&mut out);
    Ok(Reply::ok(out))
}

/// WRITE to a pipe: the whole buffer is one RPC input.
pub fn write(ctx: &mut Ctx<'_>, volatile: u64, data: &[u8]) -> Result<u32> {
    let dir = directory(ctx)?;
    let OpenKind::Pipe(p) = &mut ctx.open_mut(volatile)?.kind else {
        return Err(NtStatus::INVALID_DEVICE_REQUEST.into());
    };
    p.write(data, &dir).map_err(rpc_status)?;
    Ok(data.len() as u32)
}

/// READ from a pipe. STATUS_BUFFER_OVERFLOW when a message was cut short.
pub fn read(ctx: &mut Ctx<'_>, volatile: u64, max: usize) -> Result<(NtStatus, Vec<u8>)> {
    let OpenKind::Pipe(p) = &mut ctx.open_mut(volatile)?.kind else {
        return Err(NtStatus::INVALID_DEVICE_REQUEST.into());
    };
    let data = p.read(max).map_err(rpc_status)?;
    let status = if p.partial_message_pending() { NtStatus::BUFFER_OVERFLOW } else { NtStatus::SUCCESS };
    Ok((status, data))
}

/// FSCTL_PIPE_TRANSCEIVE: write then read in one round trip.
pub fn transceive(ctx: &mut Ctx<'_>, volatile: u64, input: &[u8], max_out: usize) -> Result<(NtStatus, Vec<u8>)> {
    let dir = directory(ctx)?;
    let OpenKind::Pipe(p) = &mut ctx.open_mut(volatile)?.kind else {
        return Err(NtStatus::INVALID_DEVICE_REQUEST.into());
    };
    let out = p.transact(input, max_out, &dir).map_err(rpc_status)?;
    let status = if p.has_pending() { NtStatus::BUFFER_OVERFLOW } else { NtStatus::SUCCESS };
    Ok((status, out))
}
