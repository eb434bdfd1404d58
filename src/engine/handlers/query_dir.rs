//! QUERY_DIRECTORY (MS-SMB2 3.3.5.18): listings with wildcards, resumable
//! across requests, snapshotted at the first request of an enumeration.

use unicode_normalization::UnicodeNormalization;

use crate::engine::connection::{Ctx, Reply, new_message};
use crate::engine::fileops::{alloc, attributes, times};
use crate::engine::open::{DirEnum, FileOpen};
use crate::engine::status::{Error, Result};
use crate::storage::{DirEntry, Meta, NodeKind};
use crate::wire::NtStatus;
use crate::wire::fscc::consts::access;
use crate::wire::fscc::dir_info::{self, DirWriter};
use crate::wire::fscc::wildcard::name_matches;
use crate::wire::query_directory::{QueryDirectoryRequest, QueryDirectoryResponse, flags};

/// Largest OutputBufferLength we serve (Windows clients ask for 64 KiB to 1 MiB).
const MAX_OUTPUT: u32 = 8 * 1024 * 1024;

/// QUERY_DIRECTORY.
pub fn query_directory(ctx: &mut Ctx<'_>) -> Result<Reply> {
    let req = QueryDirectoryRequest::decode(ctx.msg)?;
    let id = ctx.resolve_file_id(req.file_id)?;
    let open = ctx.open_mut(id)?;
    let granted = open.granted_access;
    let f = open.file_mut().ok_or(Error::Status(NtStatus::INVALID_PARAMETER))?;
    if !f.is_dir {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    if granted & access::FILE_LIST_DIRECTORY == 0 {
        return Err(NtStatus::ACCESS_DENIED.into());
    }
    if !dir_info::is_directory_class(req.file_information_class) {
        return Err(NtStatus::INVALID_INFO_CLASS.into());
    }
    if req.output_buffer_length == 0 || req.output_buffer_length > MAX_OUTPUT {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let pattern = if req.pattern.is_empty() { "*".to_string() } else { req.pattern.nfc().collect() };
    let restart = req.flags & (flags::RESTART_SCANS | flags::REOPEN) != 0;
    let first = f.dir_enum.is_none() || restart;
    if first {
        f.dir_enum = Some(DirEnum { entries: matching(f, &pattern)?, pattern, pos: 0 });
    }
    let e = f.dir_enum.as_mut().ok_or(Error::Status(NtStatus::INTERNAL_ERROR))?;
    let mut w = DirWriter::new(req.file_information_class, req.output_buffer_length as usize)
        .ok_or(Error::Status(NtStatus::INVALID_INFO_CLASS))?;
    while let Some(entry) = e.entries.get(e.pos) {
        if !w.push(&wire_entry(entry)) {
            break;
        }
        e.pos += 1;
        if req.flags & flags::RETURN_SINGLE_ENTRY != 0 {
            break;
        }
    }
    if w.is_empty() {
        return Err(if e.pos < e.entries.len() {
            // Not even one entry fits (3.3.5.18).
            NtStatus::INFO_LENGTH_MISMATCH
        } else if first && e.entries.is_empty() {
            NtStatus::NO_SUCH_FILE
        } else {
            NtStatus::NO_MORE_FILES
        }
        .into());
    }
    let data = w.into_bytes();
    let mut out = new_message();
    QueryDirectoryResponse { data: &data }.encode(&mut out);
    Ok(Reply::ok(out))
}

/// The entries matching `pattern`: "." and ".." first, then the directory
/// in the store's stable order. A pattern without wildcards is a direct
/// (case-insensitive, normalized) lookup, not a scan.
fn matching(f: &FileOpen, pattern: &str) -> Result<Vec<DirEntry>> {
    let me = f.org.stat(f.node)?;
    let mut out = Vec::new();
    let wild = pattern.contains(['*', '?', '<', '>', '"']);
    if !wild {
        if let Some(n) = f.org.lookup(f.node, pattern)? {
            let meta = f.org.stat(n)?;
            out.push(DirEntry { name: meta.name.clone(), meta, cursor: crate::storage::Cursor::from_bytes([0; 16]) });
        }
        return Ok(out);
    }
    for dot in [".", ".."] {
        if name_matches(pattern, dot) {
            let meta = if dot == ".." { parent_meta(f, &me)? } else { me.clone() };
            out.push(DirEntry { name: dot.to_string(), meta, cursor: crate::storage::Cursor::from_bytes([0; 16]) });
        }
    }
    for e in f.org.list(f.node)? {
        if name_matches(pattern, &e.name) {
            out.push(e);
        }
    }
    Ok(out)
}

fn parent_meta(f: &FileOpen, me: &Meta) -> Result<Meta> {
    match me.parent {
        Some(p) => Ok(f.org.stat(p)?),
        None => Ok(me.clone()),
    }
}

fn wire_entry(e: &DirEntry) -> dir_info::DirEntry {
    let dir = e.meta.kind == NodeKind::Directory;
    dir_info::DirEntry {
        file_index: 0,
        times: times(&e.meta),
        end_of_file: if dir { 0 } else { e.meta.size },
        allocation_size: alloc(&e.meta),
        file_attributes: attributes(&e.meta),
        ea_size: 0,
        reparse_tag: 0,
        file_id: e.meta.id.0,
        short_name: crate::engine::names::short_name(&e.name).unwrap_or_default(),
        name: e.name.clone(),
    }
}
