//! File-system controls on an open (MS-SMB2 3.3.5.15, MS-FSCC 2.3,
//! MS-FSA 2.1.5.10): resume keys for server-side copy, sparse files,
//! zeroing and allocated ranges, snapshots (none), object ids, reparse
//! points (none), compression (none), trim. Anything else is
//! STATUS_INVALID_DEVICE_REQUEST, as Windows answers unknown FSCTLs.

use super::ioctl::Output;
use crate::engine::context::Ctx;
use crate::engine::fsa::OpenId;
use crate::engine::fsa::access as fa;
use crate::engine::open::{FileOpen, Open, OpenKind};
use crate::engine::status::{Error, Result};
use crate::storage::MetaUpdate;
use crate::types::FileTime;
use crate::wire::NtStatus;
use crate::wire::fscc::consts::file_attributes;
use crate::wire::fscc::fsctl::{self, AllocatedRange, FileObjectIdBuffer, FileZeroDataInformation};
use crate::wire::ioctl::{CtlCode, IoctlRequest, ResumeKey, SnapshotArray};

/// COMPRESSION_FORMAT_NONE (MS-FSCC 2.3.67).
const COMPRESSION_FORMAT_NONE: u16 = 0;

/// An FSCTL addressed to a file, directory or stream.
pub fn file_fsctl(ctx: &mut Ctx<'_>, req: &IoctlRequest<'_>) -> Result<Output> {
    let id = ctx.resolve_file_id(req.file_id)?;
    // Previous Versions are listed for the session's user on the tree's share.
    let versions_of = match (req.ctl_code, &ctx.tree()?.kind) {
        (CtlCode::SRV_ENUMERATE_SNAPSHOTS, crate::engine::session::TreeKind::Disk(share)) => {
            let p = ctx.session()?.principal.clone().ok_or(Error::Status(NtStatus::ACCESS_DENIED))?;
            Some((share.clone(), crate::engine::acl::token(&p)))
        }
        _ => None,
    };
    let now = FileTime::from_system(ctx.now);
    let server = ctx.server;
    let session = ctx.hdr.session_id;
    let open = ctx.conn.opens.get(&id).ok_or(Error::Status(NtStatus::FILE_CLOSED))?;
    let f = match &open.kind {
        OpenKind::File(f) => f.as_ref(),
        OpenKind::Pipe(_) => return Err(NtStatus::INVALID_DEVICE_REQUEST.into()),
    };
    let max_out = req.max_output_response as usize;
    if f.view != 0
        && matches!(
            req.ctl_code,
            CtlCode::SET_SPARSE
                | CtlCode::SET_ZERO_DATA
                | CtlCode::SET_COMPRESSION
                | CtlCode::SET_REPARSE_POINT
                | CtlCode::DELETE_REPARSE_POINT
                | CtlCode::FILE_LEVEL_TRIM
        )
    {
        // A Previous Versions handle changes nothing (smbtorture `smb2.twrp.write`).
        return Err(NtStatus::MEDIA_WRITE_PROTECTED.into());
    }
    match req.ctl_code {
        CtlCode::SRV_REQUEST_RESUME_KEY => resume_key(open, f, session, max_out),
        CtlCode::SET_SPARSE => set_sparse(open, f, req.input, now),
        CtlCode::SET_ZERO_DATA => {
            zero_data(server, open, f, req.input, now)?;
            Ok(Output::ok(Vec::new()))
        }
        CtlCode::QUERY_ALLOCATED_RANGES => allocated_ranges(open, f, req.input, max_out),
        CtlCode::SRV_ENUMERATE_SNAPSHOTS => {
            // MS-SMB2 3.3.5.15.1: the backup generations that hold this
            // file or folder and let the user read it (`create_view`).
            if max_out < 16 {
                return Err(NtStatus::INVALID_PARAMETER.into());
            }
            let snapshots = match &versions_of {
                Some((share, token)) => super::create_view::versions(server, share, &f.path, token),
                None => Vec::new(),
            };
            let mut out = Vec::new();
            SnapshotArray { snapshots }.encode(max_out, &mut out);
            Ok(Output::ok(out))
        }
        CtlCode::GET_REPARSE_POINT => Err(NtStatus::NOT_A_REPARSE_POINT.into()),
        CtlCode::SET_REPARSE_POINT | CtlCode::DELETE_REPARSE_POINT => Err(NtStatus::ACCESS_DENIED.into()),
        CtlCode::GET_COMPRESSION => {
            if max_out < 2 {
                return Err(NtStatus::INVALID_PARAMETER.into());
            }
            Ok(Output::ok(COMPRESSION_FORMAT_NONE.to_le_bytes().to_vec()))
        }
        CtlCode::SET_COMPRESSION => {
            let state = fsctl::decode_compression_state(req.input)?;
            // The volume does not compress; turning it off is always fine (as ReFS).
            if state == COMPRESSION_FORMAT_NONE {
                Ok(Output::ok(Vec::new()))
            } else {
                Err(NtStatus::NOT_SUPPORTED.into())
            }
        }
        CtlCode::CREATE_OR_GET_OBJECT_ID | CtlCode::GET_OBJECT_ID => object_id(f, max_out),
        CtlCode::FILE_LEVEL_TRIM => {
            // Nothing to trim in an encrypted chunk store; report every range done.
            let ranges = fsctl::trim_range_count(req.input);
            Ok(Output::ok(ranges.to_le_bytes().to_vec()))
        }
        _ => Err(NtStatus::INVALID_DEVICE_REQUEST.into()),
    }
}

/// The resume key of an open: its FileId and a check value, so that a
/// key only names opens of the session that asked for it.
pub fn resume_key_of(open: &Open, session: u64) -> [u8; 24] {
    crate::wire::ioctl::ResumeKey::new(open.file_id.persistent, open.file_id.volatile, session ^ 0x5356_4C54_5253_4D4B)
        .0
}

/// FSCTL_SRV_REQUEST_RESUME_KEY (MS-SMB2 3.3.5.15.3).
fn resume_key(open: &Open, f: &FileOpen, session: u64, max_out: usize) -> Result<Output> {
    if f.is_dir {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    if max_out < 32 {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let mut out = Vec::new();
    ResumeKey(resume_key_of(open, session)).encode(&mut out);
    // Windows sends four zero bytes of Context although ContextLength is 0
    // (MS-SMB2 <56>); Samba's client parses them.
    out.extend_from_slice(&[0; 4]);
    Ok(Output::ok(out))
}

/// FSCTL_SET_SPARSE (MS-FSA 2.1.5.10.22): files only; needs some write access.
fn set_sparse(open: &Open, f: &FileOpen, input: &[u8], now: FileTime) -> Result<Output> {
    if f.is_dir {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let write = fa::FILE_WRITE_DATA | fa::FILE_WRITE_ATTRIBUTES | fa::FILE_APPEND_DATA;
    if open.granted_access & write == 0 {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    let sparse = fsctl::decode_set_sparse(input);
    let attrs = f.org.stat(f.node)?.attrs;
    let new = if sparse { attrs | file_attributes::SPARSE_FILE } else { attrs & !file_attributes::SPARSE_FILE };
    if new != attrs {
        f.org.set_meta(f.node, &MetaUpdate { attrs: Some(new), changed: Some(now), ..Default::default() })?;
    }
    Ok(Output::ok(Vec::new()))
}

/// FSCTL_SET_ZERO_DATA (MS-FSA 2.1.5.10.36): zeros a range; whole chunks
/// become holes. Byte-range locks of other opens refuse it.
fn zero_data(server: &crate::engine::Server, open: &Open, f: &FileOpen, input: &[u8], now: FileTime) -> Result<()> {
    if f.is_dir {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    if open.granted_access & fa::FILE_WRITE_DATA == 0 {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    let z = FileZeroDataInformation::decode(input)?;
    if z.file_offset > z.beyond_final_zero || z.beyond_final_zero > i64::MAX as u64 {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let len = z.beyond_final_zero - z.file_offset;
    let content = f.content.clone().ok_or(Error::Status(NtStatus::INVALID_PARAMETER))?;
    let me = OpenId(open.file_id.persistent);
    let instant = server.files.instant(now.to_system());
    server.files.with(|t| match t.get(&f.key) {
        Some(_) => t.stream(&f.key).before_write(me, z.file_offset, len, instant).map(|_| ()),
        None => Ok(()),
    })?;
    if len > 0 {
        content.zero_range(z.file_offset, len)?;
        f.org.set_meta(f.node, &MetaUpdate { written: Some(now), changed: Some(now), ..Default::default() })?;
    }
    Ok(())
}

/// FSCTL_QUERY_ALLOCATED_RANGES (MS-FSA 2.1.5.10.14). A file that is not
/// sparse reports the whole queried range (within the size) as allocated.
fn allocated_ranges(open: &Open, f: &FileOpen, input: &[u8], max_out: usize) -> Result<Output> {
    if f.is_dir {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    if open.granted_access & fa::FILE_READ_DATA == 0 {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    if input.len() < 16 {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let q = AllocatedRange::decode(input)?;
    let content = f.content.clone().ok_or(Error::Status(NtStatus::INVALID_PARAMETER))?;
    let sparse = f.org.stat(f.node)?.attrs & file_attributes::SPARSE_FILE != 0;
    let ranges: Vec<AllocatedRange> = if sparse {
        content
            .allocated_ranges(q.file_offset, q.length)?
            .into_iter()
            .map(|(file_offset, length)| AllocatedRange { file_offset, length })
            .collect()
    } else {
        let end = q.file_offset.saturating_add(q.length).min(content.len());
        if end > q.file_offset {
            vec![AllocatedRange { file_offset: q.file_offset, length: end - q.file_offset }]
        } else {
            Vec::new()
        }
    };
    if !ranges.is_empty() && max_out < 16 {
        return Err(NtStatus::BUFFER_TOO_SMALL.into());
    }
    let mut out = Vec::new();
    let all = AllocatedRange::encode_list(&ranges, max_out, &mut out);
    Ok(Output { status: if all { NtStatus::SUCCESS } else { NtStatus::BUFFER_OVERFLOW }, data: out })
}

/// FSCTL_CREATE_OR_GET_OBJECT_ID / FSCTL_GET_OBJECT_ID (MS-FSCC 2.3.7):
/// a stable id derived from the node id.
fn object_id(f: &FileOpen, max_out: usize) -> Result<Output> {
    if max_out < 64 {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let mut object_id = [0u8; 16];
    object_id[..8].copy_from_slice(&f.node.0.to_le_bytes());
    object_id[8..].copy_from_slice(&f.org_id.0.to_le_bytes());
    let mut out = Vec::new();
    FileObjectIdBuffer { object_id, ..Default::default() }.encode(&mut out);
    Ok(Output::ok(out))
}
