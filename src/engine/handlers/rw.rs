//! READ (MS-SMB2 3.3.5.12), WRITE (3.3.5.13) and FLUSH (3.3.5.11).

use crate::engine::context::{Ctx, Reply, new_message, new_message_for};
use crate::engine::fsa::OpenId;
use crate::engine::fsa::access as fa;
use crate::engine::open::{FileOpen, OpenKind};
use crate::engine::server::Server;
use crate::engine::status::{Error, Result};
use crate::types::FileTime;
use crate::wire::NtStatus;
use crate::wire::flush::{FlushRequest, FlushResponse};
use crate::wire::fscc::consts::access;
use crate::wire::fscc::consts::create_options;
use crate::wire::fscc::consts::notify_filter;
use crate::wire::read::{ReadRequest, ReadResponse};
use crate::wire::write::{WriteRequest, WriteResponse};

/// SMB2_WRITEFLAG_WRITE_THROUGH (2.2.21).
const WRITEFLAG_WRITE_THROUGH: u32 = 0x0000_0001;
/// Largest end of file a write may reach (MS-FSA 2.1.5.3: 0xFFFFFFF0000).
const MAX_FILE_END: u64 = 0x0FFF_FFFF_0000;

/// READ.
pub fn read(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let req = ReadRequest::decode(ctx.msg)?;
    let id = ctx.resolve_file_id(req.file_id)?;
    if req.length > crate::engine::server::MAX_IO {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let server = ctx.server;
    let open = ctx.open_mut(id)?;
    let granted = open.granted_access;
    let open_persistent = open.file_id.persistent;
    let f = match &mut open.kind {
        OpenKind::Pipe(_) => {
            let (status, data) = super::pipe::read(ctx, id, req.length as usize)?;
            let mut out = new_message();
            ReadResponse { data: &data, data_remaining: 0, flags: 0 }.encode(&mut out);
            return Ok(Reply::Body(status, out));
        }
        OpenKind::File(f) => f,
    };
    fa::check_read(granted)?;
    let content = f.content.clone().ok_or(Error::Status(NtStatus::INVALID_DEVICE_REQUEST))?;
    let open_id = OpenId(open_persistent);
    let key = f.key.clone();
    // The stream's locks are checked under their own lock, not the open
    // table's (see `fsa::locks::StreamLocks`).
    if let Some(locks) = server.files.with(|t| t.get(&key).map(|s| s.locks.clone())) {
        locks.lock().check_io(open_id, req.offset, u64::from(req.length), false)?;
    }
    // Offsets are signed 64-bit in the object store (MS-FSA 2.1.5.2).
    if req.offset.checked_add(u64::from(req.length)).is_none_or(|end| end > i64::MAX as u64) {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    if f.stream.as_deref().is_some_and(crate::engine::aapl::is_afp_info) && req.length > 0 {
        let data = afp_info_read(&content, req.offset, req.length)?;
        let mut out = new_message();
        ReadResponse { data: &data, data_remaining: 0, flags: 0 }.encode(&mut out);
        f.stats.reads += 1;
        return Ok(Reply::ok(out));
    }
    let size = content.len();
    if req.length == 0 {
        if req.minimum_count > 0 {
            return Err(NtStatus::END_OF_FILE.into());
        }
        let mut out = new_message();
        ReadResponse { data: &[], data_remaining: 0, flags: 0 }.encode(&mut out);
        return Ok(Reply::ok(out));
    }
    if req.offset >= size {
        return Err(NtStatus::END_OF_FILE.into());
    }
    // Read straight into the response buffer: no intermediate copy of up to
    // 8 MiB. `read_append` writes every byte it appends (stored chunks are
    // decrypted where their ciphertext lands), so a kept buffer
    // (`crate::buffers`) shows nothing of its last message.
    let want = req.length.min(u32::try_from(size - req.offset).unwrap_or(u32::MAX)) as usize;
    let mut out = new_message_for(ReadResponse::PREFIX_LEN + want);
    ReadResponse::encode_prefix(&mut out, 0, 0, 0);
    let n = content.read_append(req.offset, req.length as usize, &mut out)?;
    if (n as u32) < req.minimum_count {
        return Err(NtStatus::END_OF_FILE.into());
    }
    ReadResponse::set_data_length(&mut out, n as u32);
    f.stats.bytes_read += n as u64;
    f.stats.reads += 1;
    f.position = req.offset + n as u64;
    Ok(Reply::ok(out))
}

/// WRITE.
pub fn write(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let detached = ctx.write_data.take();
    let req = match detached.as_deref() {
        Some(data) => WriteRequest::decode_detached(ctx.msg, data)?,
        None => WriteRequest::decode(ctx.msg)?,
    };
    let args = WriteArgs { offset: req.offset, flags: req.flags, len: req.data.len() as u64 };
    let file_id = req.file_id;
    let data = match detached {
        Some(d) => Payload::Owned(d),
        None => Payload::Shared(req.data),
    };
    let id = ctx.resolve_file_id(file_id)?;
    let now = FileTime::from_system(ctx.now);
    let server = ctx.server;
    let open = ctx.open_mut(id)?;
    let granted = open.granted_access;
    let open_id = OpenId(open.file_id.persistent);
    let count = match &mut open.kind {
        OpenKind::Pipe(_) => super::pipe::write(ctx, id, data.bytes())?,
        OpenKind::File(f) => write_file(server, f, open_id, granted, &args, data, now)?,
    };
    let mut out = new_message();
    WriteResponse { count, remaining: 0 }.encode(&mut out);
    Ok(Reply::ok(out))
}

/// A WRITE request's fields the storage path needs besides its data.
struct WriteArgs {
    offset: u64,
    flags: u32,
    len: u64,
}

/// A WRITE's data: in the message, or cut off it and ours to overwrite
/// (storage seals it where it lies: `Content::write_consuming`).
enum Payload<'a> {
    Shared(&'a [u8]),
    Owned(&'a mut [u8]),
}

impl Payload<'_> {
    fn bytes(&self) -> &[u8] {
        match self {
            Payload::Shared(b) => b,
            Payload::Owned(b) => b,
        }
    }
}

/// WRITE to a file or stream (MS-SMB2 3.3.5.13, MS-FSA 2.1.5.3).
fn write_file(
    server: &Server,
    f: &mut FileOpen,
    open_id: OpenId,
    granted: u32,
    req: &WriteArgs,
    data: Payload<'_>,
    now: FileTime,
) -> Result<u32> {
    let content = f.content.clone().ok_or(Error::Status(NtStatus::INVALID_DEVICE_REQUEST))?;
    if f.view != 0 {
        // A Previous Versions handle (smbtorture `smb2.twrp.write`).
        return Err(NtStatus::MEDIA_WRITE_PROTECTED.into());
    }
    let mode = fa::check_write(granted)?;
    let len = req.len;
    // Offsets are signed 64-bit, and nothing may reach past the largest
    // file NTFS allows (MS-FSA 2.1.5.3); -1 is not "append" in SMB2.
    if req.offset.checked_add(len).is_none_or(|end| end > i64::MAX as u64) {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    // Append-only handles write at the end whatever the offset.
    let offset = if mode == fa::WriteMode::AppendOnly { content.len() } else { req.offset };
    if len > 0 && offset.checked_add(len).is_none_or(|end| end > MAX_FILE_END) {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let key = f.key.clone();
    let instant = server.files.instant(now.to_system());
    // Lock check under the stream's own lock (`fsa::locks::StreamLocks`),
    // then Level II oplocks and read leases of other opens break to none
    // (MS-FSA 2.1.4.12); nothing waits for that.
    if let Some(locks) = server.files.with(|t| t.get(&key).map(|s| s.locks.clone())) {
        locks.lock().check_io(open_id, offset, len, true)?;
        server.files.with(|t| {
            if t.get(&key).is_some() {
                let breaks = t.stream(&key).before_truncate(open_id, instant);
                t.send_breaks(&key, breaks);
            }
        });
    }
    if f.stream.as_deref().is_some_and(crate::engine::aapl::is_afp_info) {
        return afp_info_write(server, f, &content, offset, data.bytes());
    }
    if len > 0 {
        let before = content.len();
        match data {
            Payload::Shared(d) => content.write(offset, d)?,
            Payload::Owned(d) => content.write_consuming(offset, d)?,
        }
        crate::engine::times::on_write(&server.files, f, now);
        if content.len() != before {
            crate::engine::notify::modified(server, f, notify_filter::SIZE);
        }
    }
    if req.flags & WRITEFLAG_WRITE_THROUGH != 0 || f.create_options & create_options::WRITE_THROUGH != 0 {
        content.flush()?;
    }
    f.stats.bytes_written += len;
    f.stats.writes += 1;
    f.position = offset + len;
    Ok(len as u32)
}

/// A WRITE to a file's `AFP_AfpInfo` stream (macOS Finder info), checked
/// and stored as a Mac server does (see [`crate::engine::aapl::afp_info_write`]):
/// a record with empty FinderInfo empties the stream, which then goes at
/// its last close. The count is what the client asked to write.
fn afp_info_write(
    server: &Server,
    f: &mut FileOpen,
    content: &crate::storage::Content,
    offset: u64,
    data: &[u8],
) -> Result<u32> {
    let w = crate::engine::aapl::afp_info_write(offset, data)?;
    crate::engine::aapl::apply_afp_write(server, &f.key, content, w)?;
    f.stats.bytes_written += data.len() as u64;
    f.stats.writes += 1;
    Ok(data.len() as u32)
}

/// A READ of a file's `AFP_AfpInfo` stream: the record from offset 0
/// whatever the offset, or the empty record if none was written yet
/// ([`crate::engine::aapl::afp_info_read`]).
fn afp_info_read(content: &crate::storage::Content, offset: u64, length: u32) -> Result<Vec<u8>> {
    use crate::engine::aapl::AFP_INFO_LEN;
    let mut rec = vec![0u8; AFP_INFO_LEN];
    let stored = if content.len() == AFP_INFO_LEN as u64 && content.read(0, &mut rec)? == AFP_INFO_LEN {
        Some(&rec[..])
    } else {
        None
    };
    crate::engine::aapl::afp_info_read(offset, length as usize, stored).ok_or(Error::Status(NtStatus::END_OF_FILE))
}

/// FLUSH: makes every acknowledged write of the file durable before answering.
pub fn flush(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let req = FlushRequest::decode(ctx.msg)?;
    let id = ctx.resolve_file_id(req.file_id)?;
    let (server, now) = (ctx.server, FileTime::from_system(ctx.now));
    let open = ctx.open_mut(id)?;
    if let OpenKind::File(f) = &open.kind {
        if open.granted_access & (access::FILE_WRITE_DATA | access::FILE_APPEND_DATA) == 0 && !f.is_dir {
            return Err(NtStatus::ACCESS_DENIED.into());
        }
        match &f.content {
            Some(c) => c.flush()?,
            None => f.org.flush()?,
        }
        crate::engine::times::settle(&server.files, &f.org, f.org_id, f.node, now, true)?;
    }
    let mut out = new_message();
    FlushResponse.encode(&mut out);
    Ok(Reply::ok(out))
}
