//! READ (MS-SMB2 3.3.5.12) and WRITE (3.3.5.13).

use crate::engine::connection::{Ctx, Reply, new_message};
use crate::engine::open::OpenKind;
use crate::engine::status::Result;
use crate::wire::NtStatus;
use crate::wire::read::{ReadRequest, ReadResponse};
use crate::wire::write::{WriteRequest, WriteResponse};

/// READ.
pub fn read(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let req = ReadRequest::decode(ctx.msg)?;
    let id = ctx.resolve_file_id(req.file_id)?;
    if req.length > crate::engine::server::MAX_IO {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    match ctx.open_mut(id)?.kind {
        OpenKind::Pipe(_) => {
            let (status, data) = super::pipe::read(ctx, id, req.length as usize)?;
            let mut out = new_message();
            ReadResponse {
                data: &data,
                data_remaining: 0,
                flags: 0,
            }
            .encode(&mut out);
            Ok(Reply::Body(status, out))
        }
    }
}

/// WRITE.
pub fn write(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let req = WriteRequest::decode(ctx.msg)?;
    let id = ctx.resolve_file_id(req.file_id)?;
    let count = match ctx.open_mut(id)?.kind {
        OpenKind::Pipe(_) => super::pipe::write(ctx, id, req.data)?,
    };
    let mut out = new_message();
    WriteResponse {
        count,
        remaining: 0,
    }
    .encode(&mut out);
    Ok(Reply::ok(out))
}
