//! CREATE (MS-SMB2 3.3.5.9): pipes on IPC$, files and directories on disk shares.

use crate::engine::connection::{Ctx, Reply};
use crate::engine::session::TreeKind;
use crate::engine::status::Result;
use crate::wire::NtStatus;
use crate::wire::create::CreateRequest;

/// CREATE.
pub fn create(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let req = CreateRequest::decode(ctx.msg)?;
    match ctx.tree()?.kind {
        TreeKind::Ipc => super::pipe::create(ctx, &req),
        TreeKind::Disk(_) => Err(NtStatus::NOT_SUPPORTED.into()),
    }
}
