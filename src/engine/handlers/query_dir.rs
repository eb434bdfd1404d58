//! QUERY_DIRECTORY (MS-SMB2 3.3.5.18): listings with wildcards (`*`, `?`,
//! `<`, `>`, `"`), resumable across requests. The enumeration keeps the
//! storage cursor of the last entry returned and reads on from there, so
//! entries deleted meanwhile (by any handle) are not returned and the
//! metadata is current; "." and ".." come first.

use unicode_normalization::UnicodeNormalization;

use crate::engine::connection::{Ctx, Reply, new_message};
use crate::engine::fileops::{alloc, attributes, times};
use crate::engine::fsa::access as fa;
use crate::engine::open::{DirEnum, FileOpen};
use crate::engine::status::{Error, Result};
use crate::storage::{DirEntry, Meta, NodeKind};
use crate::wire::NtStatus;
use crate::wire::fscc::dir_info::{self, DirWriter};
use crate::wire::fscc::wildcard::name_matches;
use crate::wire::query_directory::{QueryDirectoryRequest, QueryDirectoryResponse, flags};

/// Largest OutputBufferLength we serve (Windows clients ask for 64 KiB to 1 MiB).
const MAX_OUTPUT: u32 = 8 * 1024 * 1024;
/// Entries read from storage per step.
const BATCH: usize = 256;

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
    fa::check_list_directory(granted)?;
    if !dir_info::is_directory_class(req.file_information_class) {
        return Err(NtStatus::INVALID_INFO_CLASS.into());
    }
    if req.output_buffer_length == 0 || req.output_buffer_length > MAX_OUTPUT {
        return Err(NtStatus::INVALID_PARAMETER.into());
    }
    let restart = req.flags & (flags::RESTART_SCANS | flags::REOPEN) != 0;
    let first = f.dir_enum.is_none() || restart;
    if first {
        let pattern = if req.pattern.is_empty() { "*".to_string() } else { req.pattern.nfc().collect() };
        f.dir_enum = Some(DirEnum::new(pattern));
    }
    let mut w = DirWriter::new(req.file_information_class, req.output_buffer_length as usize)
        .ok_or(Error::Status(NtStatus::INVALID_INFO_CLASS))?;
    let single = req.flags & flags::RETURN_SINGLE_ENTRY != 0;
    let mut e = f.dir_enum.take().ok_or(Error::Status(NtStatus::INTERNAL_ERROR))?;
    let filled = fill(f, &mut e, &mut w, single);
    let found_any = e.found_any;
    let stopped_on_full = matches!(filled, Ok(Fill::Full));
    f.dir_enum = Some(e);
    filled?;
    if w.is_empty() {
        return Err(if stopped_on_full {
            // Not even one entry fits (3.3.5.18).
            NtStatus::INFO_LENGTH_MISMATCH
        } else if first && !found_any {
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

/// Why filling stopped.
enum Fill {
    /// The buffer (or the single-entry request) is full.
    Full,
    /// The enumeration has no more entries.
    End,
}

/// Adds entries to `w` from where the enumeration stands.
fn fill(f: &FileOpen, e: &mut DirEnum, w: &mut DirWriter, single: bool) -> Result<Fill> {
    // "." and "..", then (for a pattern without wildcards) one lookup, or
    // the directory in the store's stable order.
    while e.dots < 2 {
        let (name, meta) = if e.dots == 0 { (".", f.org.stat(f.node)?) } else { ("..", parent_meta(f)?) };
        if name_matches(&e.pattern, name) {
            e.found_any = true;
            if !w.push(&wire_entry(name, &meta)) {
                return Ok(Fill::Full);
            }
            e.dots += 1;
            if single {
                return Ok(Fill::Full);
            }
        } else {
            e.dots += 1;
        }
    }
    if e.done {
        return Ok(Fill::End);
    }
    if !has_wildcards(&e.pattern) {
        e.done = true;
        if let Some(n) = crate::engine::fileops::lookup(&f.org, f.node, &e.pattern)? {
            let meta = f.org.stat(n)?;
            e.found_any = true;
            if !w.push(&wire_entry(&meta.name, &meta)) {
                e.done = false;
                return Ok(Fill::Full);
            }
        }
        return Ok(Fill::End);
    }
    loop {
        let batch = f.org.list_after(f.node, e.cursor.as_ref(), BATCH)?;
        if batch.is_empty() {
            e.done = true;
            return Ok(Fill::End);
        }
        for entry in batch {
            if matches(&e.pattern, &entry) {
                e.found_any = true;
                if !w.push(&wire_entry(&entry.name, &entry.meta)) {
                    return Ok(Fill::Full);
                }
            }
            e.cursor = Some(entry.cursor);
            if single && !w.is_empty() {
                return Ok(Fill::Full);
            }
        }
    }
}

/// The pattern matches the name or its 8.3 alternate (MS-FSA 2.1.5.6.3).
fn matches(pattern: &str, e: &DirEntry) -> bool {
    name_matches(pattern, &e.name)
        || crate::engine::names::short_name(&e.name).is_some_and(|s| name_matches(pattern, &s))
}

fn has_wildcards(p: &str) -> bool {
    p.contains(['*', '?', '<', '>', '"'])
}

fn parent_meta(f: &FileOpen) -> Result<Meta> {
    let me = f.org.stat(f.node)?;
    match me.parent {
        Some(p) if f.node != f.root => Ok(f.org.stat(p)?),
        _ => Ok(me),
    }
}

fn wire_entry(name: &str, m: &Meta) -> dir_info::DirEntry {
    let dir = m.kind == NodeKind::Directory;
    dir_info::DirEntry {
        file_index: 0,
        times: times(m),
        end_of_file: if dir { 0 } else { m.size },
        allocation_size: alloc(m),
        file_attributes: attributes(m),
        ea_size: 0,
        reparse_tag: 0,
        file_id: m.id.0,
        short_name: crate::engine::names::short_name(name).unwrap_or_default(),
        name: name.to_string(),
    }
}
