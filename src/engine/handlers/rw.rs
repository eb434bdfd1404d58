//! READ (MS-SMB2 3.3.5.12), WRITE (3.3.5.13) and FLUSH (3.3.5.11).

use crate::engine::connection::{Ctx, Reply, new_message};
use crate::engine::open::OpenKind;
use crate::engine::status::{Error, Result};
use crate::wire::NtStatus;
use crate::wire::flush::{FlushRequest, FlushResponse};
use crate::wire::fscc::consts::access;
use crate::wire::read::{ReadRequest, ReadResponse};
use crate::wire::write::{WriteRequest, WriteResponse};

/// SMB2_WRITEFLAG_WRITE_THROUGH (2.2.21).
const WRITEFLAG_WRITE_THROUGH: u32 = 0x0000_0001;
/// Offset meaning "append at end of file" (MS-FSA 2.1.5.3).
const APPEND_OFFSET: u64 = u64::MAX;

/// READ.
pub fn read(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let req = ReadRequest::decode(ctx.msg)?;
    let id = ctx.resolve_file_id(req.file_id)?;
    if req.length > crate::engine::server::MAX_IO {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let open = ctx.open_mut(id)?;
    let granted = open.granted_access;
    let f = match &mut open.kind {
        OpenKind::Pipe(_) => {
            let (status, data) = super::pipe::read(ctx, id, req.length as usize)?;
            let mut out = new_message();
            ReadResponse { data: &data, data_remaining: 0, flags: 0 }.encode(&mut out);
            return Ok(Reply::Body(status, out));
        }
        OpenKind::File(f) => f,
    };
    if granted & (access::FILE_READ_DATA | access::FILE_EXECUTE) == 0 {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    let content = f.content.clone().ok_or(Error::Status(NtStatus::INVALID_DEVICE_REQUEST))?;
    let size = content.len();
    if req.offset >= size && req.length > 0 || req.offset > size {
        return Err(NtStatus::END_OF_FILE.into());
    }
    // Read straight into the response buffer: no intermediate copy of up to 8 MiB.
    let mut out = new_message();
    let want = (req.length as u64).min(size - req.offset) as usize;
    ReadResponse::encode_prefix(&mut out, 0, 0, 0);
    let data_at = out.len();
    out.resize(data_at + want, 0);
    let n = content.read(req.offset, &mut out[data_at..])?;
    out.truncate(data_at + n);
    if (n as u32) < req.minimum_count {
        return Err(NtStatus::END_OF_FILE.into());
    }
    // DataLength sits 4 bytes into the body (2.2.20).
    out[crate::wire::HEADER_LEN + 4..crate::wire::HEADER_LEN + 8].copy_from_slice(&(n as u32).to_le_bytes());
    f.stats.bytes_read += n as u64;
    f.stats.reads += 1;
    f.position = req.offset + n as u64;
    Ok(Reply::ok(out))
}

/// WRITE.
pub fn write(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let req = WriteRequest::decode(ctx.msg)?;
    let id = ctx.resolve_file_id(req.file_id)?;
    let open = ctx.open_mut(id)?;
    let granted = open.granted_access;
    let count = match &mut open.kind {
        OpenKind::Pipe(_) => super::pipe::write(ctx, id, req.data)?,
        OpenKind::File(f) => {
            let content = f.content.clone().ok_or(Error::Status(NtStatus::INVALID_DEVICE_REQUEST))?;
            let offset = if req.offset == APPEND_OFFSET {
                if granted & access::FILE_APPEND_DATA == 0 {
                    return Err(NtStatus::ACCESS_DENIED.into());
                }
                content.len()
            } else {
                if granted & access::FILE_WRITE_DATA == 0 {
                    // Append-only handles may write only at the end (MS-FSA 2.1.5.3).
                    if granted & access::FILE_APPEND_DATA == 0 || req.offset < content.len() {
                        return Err(NtStatus::ACCESS_DENIED.into());
                    }
                }
                req.offset
            };
            if offset.checked_add(req.data.len() as u64).is_none() {
                return Err(NtStatus::INVALID_PARAMETER.into());
            }
            if !req.data.is_empty() {
                content.write(offset, req.data)?;
                f.written = true;
            }
            if req.flags & WRITEFLAG_WRITE_THROUGH != 0
                || f.create_options & crate::wire::fscc::consts::create_options::WRITE_THROUGH != 0
            {
                content.flush()?;
            }
            f.stats.bytes_written += req.data.len() as u64;
            f.stats.writes += 1;
            f.position = offset + req.data.len() as u64;
            req.data.len() as u32
        }
    };
    let mut out = new_message();
    WriteResponse { count, remaining: 0 }.encode(&mut out);
    Ok(Reply::ok(out))
}

/// FLUSH: makes every acknowledged write of the file durable before answering.
pub fn flush(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let req = FlushRequest::decode(ctx.msg)?;
    let id = ctx.resolve_file_id(req.file_id)?;
    let open = ctx.open_mut(id)?;
    if let OpenKind::File(f) = &open.kind {
        if open.granted_access & (access::FILE_WRITE_DATA | access::FILE_APPEND_DATA) == 0 && !f.is_dir {
            return Err(NtStatus::ACCESS_DENIED.into());
        }
        match &f.content {
            Some(c) => c.flush()?,
            None => f.org.flush()?,
        }
    }
    let mut out = new_message();
    FlushResponse.encode(&mut out);
    Ok(Reply::ok(out))
}
