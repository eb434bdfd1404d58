//! FSCTL_SRV_COPYCHUNK and FSCTL_SRV_COPYCHUNK_WRITE (MS-SMB2 3.3.5.15.6):
//! server-side copy between two opens of the same session. The data never
//! leaves the server: each range is decrypted under the source stream's key
//! and re-encrypted under the destination's (`storage::Content::copy_to`).

use super::ioctl::{Output, respond};
use crate::audit::{EventKind, EventResult};
use crate::engine::context::{Ctx, Reply};
use crate::engine::fsa::OpenId;
use crate::engine::fsa::access as fa;
use crate::engine::open::{FileOpen, OpenKind};
use crate::engine::status::{Error, Result};
use crate::types::FileTime;
use crate::wire::NtStatus;
use crate::wire::ioctl::{CopyChunkCopy, CopyChunkResponse, CtlCode, IoctlRequest};

/// ServerSideCopyMaxNumberofChunks (MS-SMB2 3.3.3: Windows uses 256).
const MAX_CHUNKS: u32 = 256;
/// ServerSideCopyMaxChunkSize: 1 MiB.
const MAX_CHUNK_SIZE: u32 = 1 << 20;
/// ServerSideCopyMaxDataSize: 16 MiB.
const MAX_TOTAL: u32 = 16 << 20;

/// One side of the copy.
struct Side {
    open: OpenId,
    key: crate::engine::fsa::FileKey,
    content: std::sync::Arc<crate::storage::Content>,
    path: String,
    /// The target is a Finder info stream: what lands there is checked as a WRITE is.
    afp_info: bool,
    org: std::sync::Arc<crate::storage::OrgStore>,
}

/// SRV_COPYCHUNK(_WRITE).
pub fn copychunk(ctx: &mut Ctx<'_>, req: &IoctlRequest<'_>) -> Result<Reply> {
    let dst_id = ctx.resolve_file_id(req.file_id)?;
    if req.max_output_response < 12 {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let copy = CopyChunkCopy::decode(req.input)?;
    let total: u64 = copy.chunks.iter().map(|c| u64::from(c.length)).sum();
    if copy.chunks.len() as u32 > MAX_CHUNKS
        || copy.chunks.iter().any(|c| c.length == 0 || c.length > MAX_CHUNK_SIZE)
        || total > u64::from(MAX_TOTAL)
    {
        // 3.3.5.15.6: the limits go back in the response.
        let limits = CopyChunkResponse {
            chunks_written: MAX_CHUNKS,
            chunk_bytes_written: MAX_CHUNK_SIZE,
            total_bytes_written: MAX_TOTAL,
        };
        return with_status(req, NtStatus::INVALID_PARAMETER, limits);
    }
    let session = ctx.hdr.session_id;
    let (dst, share, dst_granted) = {
        let open = ctx.conn.opens.get(&dst_id).ok_or(Error::Status(NtStatus::FILE_CLOSED))?;
        let OpenKind::File(f) = &open.kind else { return Err(NtStatus::INVALID_DEVICE_REQUEST.into()) };
        if f.view != 0 {
            // Nothing is written into a Previous Versions view.
            return Err(NtStatus::MEDIA_WRITE_PROTECTED.into());
        }
        (side(open.file_id.persistent, f)?, f.share.clone(), open.granted_access)
    };
    let (src, src_granted) = find_source(ctx, &copy.source_key, session)?;
    // 3.3.5.15.6: the target needs write access, and read access too for
    // FSCTL_SRV_COPYCHUNK; the source needs read access.
    let need_dst = if req.ctl_code == CtlCode::SRV_COPYCHUNK {
        fa::FILE_WRITE_DATA | fa::FILE_READ_DATA
    } else {
        fa::FILE_WRITE_DATA
    };
    // The source may be read through an execute handle (smbtorture `copy_chunk_bad_access`).
    if dst_granted & need_dst != need_dst || src_granted & (fa::FILE_READ_DATA | fa::FILE_EXECUTE) == 0 {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    let now = FileTime::from_system(ctx.now);
    let mut done = CopyChunkResponse::default();
    if copy.chunks.is_empty() && ctx.conn.aapl.copyfile && src.key.stream.is_none() && dst.key.stream.is_none() {
        // AAPL copyfile: no chunks copies the whole file with its streams.
        let n = copyfile(ctx, &src, &dst)?;
        done.total_bytes_written = u32::try_from(n).unwrap_or(u32::MAX);
    }
    for c in &copy.chunks {
        let len = u64::from(c.length);
        if c.source_offset.checked_add(len).is_none_or(|end| end > src.content.len()) {
            // The source range runs past its end of file.
            return with_status(req, NtStatus::INVALID_VIEW_SIZE, done);
        }
        let instant = ctx.server.files.instant(ctx.now);
        let locked = ctx.server.files.with(|t| -> std::result::Result<(), NtStatus> {
            if let Some(s) = t.get(&src.key) {
                s.check_read(src.open, c.source_offset, len)?;
            }
            match t.get(&dst.key) {
                Some(_) => t.stream(&dst.key).before_write(dst.open, c.target_offset, len, instant).map(|_| ()),
                None => Ok(()),
            }
        });
        if let Err(status) = locked {
            // FILE_LOCK_CONFLICT still carries the counts (smbtorture `copy_chunk_src_lock`).
            return with_status(req, status, done);
        }
        let n = if dst.afp_info {
            afp_info_copy(ctx, &src, &dst, c.source_offset, c.target_offset, len)?
        } else {
            src.content.copy_to(c.source_offset, &dst.content, c.target_offset, len)?
        };
        done.chunks_written += 1;
        done.total_bytes_written += n as u32;
    }
    if let Some(f) = ctx.conn.opens.get_mut(&dst_id).and_then(|o| o.file_mut()) {
        if done.total_bytes_written > 0 {
            crate::engine::times::on_write(&ctx.server.files, f, now);
        }
        f.stats.bytes_written += u64::from(done.total_bytes_written);
    }
    ctx.audit(
        EventKind::Copy { share, from: src.path, to: dst.path, bytes: u64::from(done.total_bytes_written) },
        EventResult::Ok,
    );
    with_status(req, NtStatus::SUCCESS, done)
}

fn side(persistent: u64, f: &FileOpen) -> Result<Side> {
    let content = f.content.clone().ok_or(Error::Status(NtStatus::INVALID_DEVICE_REQUEST))?;
    let afp_info = f.stream.as_deref().is_some_and(crate::engine::aapl::is_afp_info);
    Ok(Side {
        open: OpenId(persistent),
        key: f.key.clone(),
        content,
        path: f.path.clone(),
        afp_info,
        org: f.org.clone(),
    })
}

/// macOS copyfile (AAPL SUPPORTS_OSX_COPYFILE, as Samba's vfs_fruit
/// `fruit:copyfile`): a copy-chunk request without chunks copies the
/// source's data and every named stream (Finder info, resource fork, tags)
/// to the target, which Finder's server-side copy relies on. Returns the
/// bytes of data copied.
fn copyfile(ctx: &Ctx<'_>, src: &Side, dst: &Side) -> Result<u64> {
    let len = src.content.len();
    let instant = ctx.server.files.instant(ctx.now);
    ctx.server.files.with(|t| -> std::result::Result<(), NtStatus> {
        if let Some(s) = t.get(&src.key) {
            s.check_read(src.open, 0, len)?;
        }
        match t.get(&dst.key) {
            Some(_) => t.stream(&dst.key).before_write(dst.open, 0, len.max(1), instant).map(|_| ()),
            None => Ok(()),
        }
    })?;
    dst.content.set_len(0)?;
    let n = src.content.copy_to(0, &dst.content, 0, len)?;
    for s in src.org.list_streams(src.key.node)? {
        if s.name.is_empty()
            || crate::engine::aapl::hidden_stream(&crate::engine::names::stream_from_store(&s.name), s.size, true)
        {
            continue;
        }
        let from = src.org.open_content(src.key.node, Some(&s.name), false)?;
        let to = dst.org.open_content(dst.key.node, Some(&s.name), true)?;
        to.set_len(0)?;
        from.copy_to(0, &to, 0, from.len())?;
    }
    Ok(n)
}

/// One chunk copied into an `AFP_AfpInfo` stream (Finder copies a file's
/// metadata this way): the bytes go through the same check as a WRITE
/// ([`crate::engine::aapl::afp_info_write`]).
fn afp_info_copy(ctx: &Ctx<'_>, src: &Side, dst: &Side, from: u64, to: u64, len: u64) -> Result<u64> {
    let mut buf = vec![0u8; len as usize];
    let n = src.content.read(from, &mut buf)?;
    buf.truncate(n);
    let w = crate::engine::aapl::afp_info_write(to, &buf)?;
    crate::engine::aapl::apply_afp_write(ctx.server, &dst.key, &dst.content, w)?;
    Ok(n as u64)
}

/// The open a resume key names: one of this session's file opens, on any tree.
fn find_source(ctx: &Ctx<'_>, key: &[u8; 24], session: u64) -> Result<(Side, u32)> {
    let volatile = crate::wire::ioctl::ResumeKey(*key).volatile();
    let open = ctx
        .conn
        .opens
        .get(&volatile)
        .filter(|o| o.session_id == session && super::fsctl::resume_key_of(o, session) == *key)
        .ok_or(Error::Status(NtStatus::OBJECT_NAME_NOT_FOUND))?;
    let OpenKind::File(f) = &open.kind else { return Err(NtStatus::OBJECT_NAME_NOT_FOUND.into()) };
    if f.is_dir {
        return Err(NtStatus::OBJECT_NAME_NOT_FOUND.into());
    }
    Ok((side(open.file_id.persistent, f)?, open.granted_access))
}

/// The IOCTL response with a SRV_COPYCHUNK_RESPONSE, whatever the status.
fn with_status(req: &IoctlRequest<'_>, status: NtStatus, r: CopyChunkResponse) -> Result<Reply> {
    let mut data = Vec::new();
    r.encode(&mut data);
    respond(req, Output { status, data })
}
